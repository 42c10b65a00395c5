//! How a configuration table is read: keys, values and problems.
//!
//! The one machinery behind every table of the config file and every body of
//! the admin API ([`crate::config`], [`crate::integration::config`]): a
//! [`Section`] reads keys of one TOML table and remembers which it read, so
//! that [`Section::finish`] rejects the others; converters in [`values`] turn
//! a [`Scalar`] into a typed value or a message; every problem is collected
//! in [`Ctx`], with its line, its key path and whether it is only a missing
//! key (an unfinished integration, which may still be saved).
//!
//! Each integration type declares its keys once, as [`KeyDef`]s; the page's
//! form, the OpenAPI description and the redaction of secrets read them.

pub mod env;
mod section;
pub mod values;

use std::fmt;
use std::ops::Range;

pub use section::{Entry, Scalar, Section};

/// One problem of a configuration.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Problem {
    /// The 1-based line in the file, 0 when unknown.
    pub line: usize,
    /// The path of the table (`server`, `integration[2] ("minio")`).
    pub table: String,
    /// The key inside that table (`port`, `buckets[1]`), empty for the table itself.
    pub key: String,
    pub message: String,
    /// A key the table needs but does not have yet: an unfinished
    /// integration may still be saved (CONTRACT.md section 6, "incomplete").
    pub missing: bool,
}

impl Problem {
    /// The full key path, `integration[2] ("minio").port`.
    pub fn path(&self) -> String {
        match (self.table.is_empty(), self.key.is_empty()) {
            (_, true) => self.table.clone(),
            (true, false) => self.key.clone(),
            (false, false) => format!("{}.{}", self.table, self.key),
        }
    }
}

/// Every problem found in a configuration, each naming file, line and key.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigErrors {
    /// `<file>:<line>: <key path>: <what is wrong>`, in file order.
    pub problems: Vec<String>,
    /// The same problems, structured (empty for syntax errors and for
    /// problems found after parsing, such as a local root that is missing).
    pub found: Vec<Problem>,
}

impl ConfigErrors {
    /// Problems that are only messages (no key to point at).
    pub fn messages(problems: Vec<String>) -> Self {
        ConfigErrors { problems, found: Vec::new() }
    }
}

/// The kind of value a key takes, as a form or a schema shows it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ValueKind {
    String,
    Integer,
    Boolean,
    /// An array of strings (`buckets`).
    StringList,
    /// One of these strings.
    Enum(&'static [&'static str]),
}

impl ValueKind {
    /// The name the admin API uses (`/api/types`).
    pub fn name(self) -> &'static str {
        match self {
            ValueKind::String => "string",
            ValueKind::Integer => "integer",
            ValueKind::Boolean => "boolean",
            ValueKind::StringList => "string-list",
            ValueKind::Enum(_) => "enum",
        }
    }
}

/// One key of an integration type: the single definition the reader, the
/// admin API, the page's form and the OpenAPI description share.
#[derive(Debug, Clone, Copy)]
pub struct KeyDef {
    pub name: &'static str,
    pub kind: ValueKind,
    /// Shown as `"********"` in every answer, never logged.
    pub secret: bool,
    /// Needed for the integration to be complete (a form marks it).
    pub required: bool,
    /// The default, as a person would write it; `None`: no default.
    pub default: Option<&'static str>,
    pub help: &'static str,
    /// The credential sources of its type this key belongs to, each with
    /// whether that source needs it; empty: a key of every source
    /// (`endpoint`, `buckets`, ...).
    pub sources: &'static [InSource],
}

/// A key's part in one credential source ([`SourceDef`]), by its name.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum InSource {
    /// The source needs it (a form marks it).
    Needs(&'static str),
    /// The source may take it.
    May(&'static str),
}

impl InSource {
    pub fn source(self) -> &'static str {
        match self {
            InSource::Needs(s) | InSource::May(s) => s,
        }
    }

    pub fn required(self) -> bool {
        matches!(self, InSource::Needs(_))
    }
}

/// One way an integration type gets its credentials (CONTRACT.md section
/// 2): the page's form offers each with its own keys (those whose
/// [`KeyDef::sources`] name it) and submits only those.
#[derive(Debug, Clone, Copy)]
pub struct SourceDef {
    /// As `credential_source` names it (`static`, `web-identity`, `sas`, ...).
    pub name: &'static str,
    /// A short title for people.
    pub label: &'static str,
    pub help: &'static str,
    /// The key and value that choose it (`credentials = "instance"`);
    /// `None`: its own keys choose it.
    pub selector: Option<(&'static str, &'static str)>,
}

impl SourceDef {
    /// Its keys among `keys`, each with whether it needs it, in `keys`' order.
    pub fn keys<'k>(&self, keys: &'k [KeyDef]) -> impl Iterator<Item = (&'k KeyDef, bool)> + use<'k, '_> {
        keys.iter().filter_map(move |k| k.sources.iter().find(|s| s.source() == self.name).map(|s| (k, s.required())))
    }
}

impl KeyDef {
    /// A plain optional string key.
    pub const fn string(name: &'static str, help: &'static str) -> KeyDef {
        KeyDef { name, kind: ValueKind::String, secret: false, required: false, default: None, help, sources: &[] }
    }

    pub const fn kind(self, kind: ValueKind) -> KeyDef {
        KeyDef { kind, ..self }
    }

    pub const fn secret(self) -> KeyDef {
        KeyDef { secret: true, ..self }
    }

    pub const fn required(self) -> KeyDef {
        KeyDef { required: true, ..self }
    }

    pub const fn default(self, default: &'static str) -> KeyDef {
        KeyDef { default: Some(default), ..self }
    }

    /// A key of these credential sources only.
    pub const fn sources(self, sources: &'static [InSource]) -> KeyDef {
        KeyDef { sources, ..self }
    }
}

/// The problems found so far, and what reporting them needs.
pub struct Ctx<'a> {
    file: String,
    text: &'a str,
    pub env: &'a dyn Fn(&str) -> Option<String>,
    problems: Vec<Problem>,
}

impl<'a> Ctx<'a> {
    /// Reading `text`, from the file named `file`; `env` resolves `${VAR}`.
    pub fn new(file: String, text: &'a str, env: &'a dyn Fn(&str) -> Option<String>) -> Self {
        Ctx { file, text, env, problems: Vec::new() }
    }

    /// A wrong value (or table) at `table`.`key`.
    pub fn report(&mut self, span: Option<Range<usize>>, table: &str, key: &str, msg: impl fmt::Display) {
        self.push(span, table, key, msg.to_string(), false);
    }

    /// A key that is needed but absent.
    pub fn missing(&mut self, span: Option<Range<usize>>, table: &str, key: &str, msg: impl fmt::Display) {
        self.push(span, table, key, msg.to_string(), true);
    }

    fn push(&mut self, span: Option<Range<usize>>, table: &str, key: &str, message: String, missing: bool) {
        let line = span.map_or(0, |s| self.line(s.start));
        self.problems.push(Problem { line, table: table.to_owned(), key: key.to_owned(), message, missing });
    }

    /// How many problems were found so far (to tell which a table added).
    pub fn count(&self) -> usize {
        self.problems.len()
    }

    /// Takes the problems found since `from` out of the list.
    pub fn take_since(&mut self, from: usize) -> Vec<Problem> {
        self.problems.split_off(from.min(self.problems.len()))
    }

    /// Returns problems taken with [`Ctx::take_since`].
    pub fn put_back(&mut self, problems: Vec<Problem>) {
        self.problems.extend(problems);
    }

    /// The 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        let before = &self.text.as_bytes()[..offset.min(self.text.len())];
        before.iter().filter(|&&b| b == b'\n').count() + 1
    }

    /// `<file>:<line>: <path>: <message>`.
    pub fn format(&self, p: &Problem) -> String {
        let at = if p.line == 0 { self.file.clone() } else { format!("{}:{}", self.file, p.line) };
        format!("{at}: {}: {}", p.path(), p.message)
    }

    /// TOML syntax errors, with line and column; only the first of each
    /// line, as the others usually follow from it. The parser's message
    /// only, never the text of the line (its `Display` quotes it): a string
    /// left unclosed may be a secret, and these problems go to the log and
    /// to `/readyz`.
    pub fn syntax_errors(&self, errors: &[toml::de::Error]) -> ConfigErrors {
        let mut lines = Vec::new();
        let mut problems = Vec::new();
        for e in errors {
            let line = e.span().map(|s| self.line(s.start));
            if line.is_none() || !lines.contains(&line) {
                lines.push(line);
                let at = e.span().map_or(String::new(), |s| {
                    format!(" at line {}, column {}", self.line(s.start), self.column(s.start))
                });
                problems.push(format!("{}: TOML parse error{at}: {}", self.file, e.message().trim_end()));
            }
        }
        ConfigErrors::messages(problems)
    }

    /// The 1-based column (in characters) of a byte offset.
    fn column(&self, offset: usize) -> usize {
        let offset = offset.min(self.text.len());
        let start = self.text.as_bytes()[..offset].iter().rposition(|&b| b == b'\n').map_or(0, |i| i + 1);
        self.text.get(start..offset).map_or(0, |s| s.chars().count()) + 1
    }

    /// `value` when nothing was found, else every problem in file order.
    pub fn into_result<T>(mut self, value: T) -> Result<T, ConfigErrors> {
        if self.problems.is_empty() {
            return Ok(value);
        }
        self.problems.sort_by_key(|p| p.line);
        let problems = self.problems.iter().map(|p| self.format(p)).collect();
        Err(ConfigErrors { problems, found: self.problems })
    }
}

/// "did you mean `x`?" when a known key is close, else the list of known keys.
pub fn suggestion(unknown: &str, known: &[&str], noun: &str) -> String {
    let close = known
        .iter()
        .map(|k| (edit_distance(&unknown.to_lowercase(), k), *k))
        .filter(|(d, k)| *d <= (k.len() / 3).max(2))
        .min();
    match close {
        Some((_, k)) => format!("did you mean `{k}`?"),
        None => format!("{noun}: {}", known.join(", ")),
    }
}

/// Levenshtein distance, by characters.
pub(crate) fn edit_distance(a: &str, b: &str) -> usize {
    let b: Vec<char> = b.chars().collect();
    let mut row: Vec<usize> = (0..=b.len()).collect();
    for (i, ca) in a.chars().enumerate() {
        let mut diagonal = row[0];
        row[0] = i + 1;
        for (j, cb) in b.iter().enumerate() {
            let substitute = diagonal + usize::from(ca != *cb);
            diagonal = row[j + 1];
            row[j + 1] = substitute.min(row[j] + 1).min(diagonal + 1);
        }
    }
    row[b.len()]
}
