//! Saving integrations into the config file as a person would have written them.
//!
//! The admin API (CONTRACT.md section 6) changes `[[integration]]` tables at run time, and a
//! restart must serve exactly what the API last answered, so every change is written back into
//! the config file. The file belongs to a person: its comments, blank lines, key order, quoting
//! and `${VAR}` references (plain strings here, expanded only when the config is loaded) must
//! survive. The edits therefore go through [`toml_edit`], which keeps each key's surrounding
//! text (its *decor*): an unchanged value keeps its exact text, a changed one keeps its place and
//! its trailing comment, and the rest of the file is left byte for byte as it was.
//!
//! The text functions ([`upsert_integration`], [`remove_integration`], [`integration_tables`])
//! are pure; [`ConfigFile`] reads, edits and replaces the file on disk under one lock:
//!
//! - atomically: a temporary file beside the real one, written, flushed (`fsync`), renamed over
//!   it (rename(2) is atomic within a file system), then the directory flushed, so a crash
//!   leaves either the old file or the new one, never half of one;
//! - with mode `0600` from the moment the temporary file exists: the file holds storage
//!   secrets, so no other user may read it, not even for an instant. A file that was `0644`
//!   becomes `0600` on the first save;
//! - through symbolic links: a Kubernetes Secret or ConfigMap volume, or a dotfiles checkout,
//!   makes the configured path a link; the link's target is replaced and the link kept.

use serde_json::{Map, Value as Json};
use toml_edit::visit::{self, Visit};
use toml_edit::visit_mut::{self, VisitMut};
use toml_edit::{Array, ArrayOfTables, Decor, DocumentMut, InlineTable, Item, Table, Value};

mod file;

pub use file::{ConfigFile, FileError, Step, UpdateError, write_atomic};

/// The key of the `[[integration]]` array of tables.
const INTEGRATION: &str = "integration";

/// A JSON object: the keys of one `[[integration]]` table.
pub type Fields = Map<String, Json>;

/// Why an edit of the config text is refused; every message says what to do.
#[derive(Debug, thiserror::Error)]
pub enum PersistError {
    /// Only the parser's message: its `Display` quotes the broken line, which may hold a secret.
    #[error("the config file is not valid TOML, so it cannot be edited: {}; fix the file first", .0.message())]
    Parse(#[from] toml_edit::TomlError),
    #[error(
        "`integration` in the config file is not a list of [[integration]] tables; write each \
         integration as its own [[integration]] table so it can be edited in place"
    )]
    NotTables,
    #[error("no [[integration]] table is named \"{0}\" in the config file")]
    NotFound(String),
    #[error(
        "the config file has several [[integration]] tables named \"{0}\"; keep one so it is \
         clear which to change"
    )]
    Duplicate(String),
    #[error("the body names \"{body}\" but the address names \"{name}\"; leave `name` out or make them equal")]
    NameMismatch { name: String, body: String },
    #[error("`{0}`: null is not a value: leave the key out")]
    Null(String),
    #[error("`{0}`: the number is too large for a TOML integer (at most 9223372036854775807)")]
    OutOfRange(String),
}

/// In the TOML document `text`, makes the keys of the `[[integration]]` table named `name`
/// exactly `fields` (a PUT: keys absent from `fields` are removed), or appends a new table.
///
/// `name` and `type` are the table's identity: `fields` may leave them out, and then the table
/// keeps them; a `name` in `fields` must equal `name`. Unchanged values keep their exact text,
/// changed ones keep their place and trailing comment, new keys go at the end of the table. A
/// new table goes after the last `[[integration]]` (or at the end of the file), after a blank
/// line, with `name` and `type` first. Returns the new text and whether the table was created.
pub fn upsert_integration(text: &str, name: &str, fields: &Fields) -> Result<(String, bool), PersistError> {
    check_name(name, fields)?;
    let mut doc: DocumentMut = text.parse()?;
    let created = match find_mut(&mut doc, name)? {
        Some(table) => {
            replace_keys(table, fields)?;
            false
        }
        None => {
            let table = new_table(name, fields, !text.trim().is_empty())?;
            append_table(&mut doc, table)?;
            true
        }
    };
    Ok((render(&doc, text), created))
}

/// Removes the `[[integration]]` table named `name` with the comment block directly above it
/// (the comment lines after the last blank line before its header); all else stays as written.
pub fn remove_integration(text: &str, name: &str) -> Result<String, PersistError> {
    let not_found = || PersistError::NotFound(name.to_owned());
    let mut doc: DocumentMut = text.parse()?;
    let tables = integrations_mut(&mut doc)?.ok_or_else(not_found)?;
    let index = index_of(tables, name)?.ok_or_else(not_found)?;
    let removed = tables.remove(index);
    if tables.is_empty() {
        doc.remove(INTEGRATION);
    }
    let (kept, _block) = split_prefix(prefix_of(removed.decor()));
    if !kept.trim().is_empty() {
        hand_over(&mut doc, removed.position(), kept);
    }
    Ok(render(&doc, text))
}

/// The edited document's text, with the line endings of the original (toml_edit writes `\n`).
fn render(doc: &DocumentMut, original: &str) -> String {
    let text = doc.to_string();
    match original.find('\n') {
        Some(at) if original[..at].ends_with('\r') => text.replace("\r\n", "\n").replace('\n', "\r\n"),
        _ => text,
    }
}

/// Every `[[integration]]` table of `text` as written: strings exactly as written (`${VAR}`
/// stays a reference), sub-tables as objects, dates as their text.
pub fn integration_tables(text: &str) -> Result<Vec<Fields>, PersistError> {
    let doc: DocumentMut = text.parse()?;
    let Some(tables) = integrations(&doc)? else {
        return Ok(Vec::new());
    };
    Ok(tables.iter().map(table_json).collect())
}

fn check_name(name: &str, fields: &Fields) -> Result<(), PersistError> {
    match fields.get("name") {
        Some(body) if body.as_str() != Some(name) => {
            let body = body.as_str().map_or_else(|| body.to_string(), str::to_owned);
            Err(PersistError::NameMismatch { name: name.to_owned(), body })
        }
        _ => Ok(()),
    }
}

fn integrations(doc: &DocumentMut) -> Result<Option<&ArrayOfTables>, PersistError> {
    match doc.get(INTEGRATION) {
        None => Ok(None),
        Some(Item::ArrayOfTables(tables)) => Ok(Some(tables)),
        Some(_) => Err(PersistError::NotTables),
    }
}

fn integrations_mut(doc: &mut DocumentMut) -> Result<Option<&mut ArrayOfTables>, PersistError> {
    match doc.get_mut(INTEGRATION) {
        None => Ok(None),
        Some(Item::ArrayOfTables(tables)) => Ok(Some(tables)),
        Some(_) => Err(PersistError::NotTables),
    }
}

/// The index of the one table named `name`; several of that name is an error.
fn index_of(tables: &ArrayOfTables, name: &str) -> Result<Option<usize>, PersistError> {
    let named = |table: &Table| table.get("name").and_then(Item::as_str) == Some(name);
    let mut hits = tables.iter().enumerate().filter(|(_, table)| named(table));
    match (hits.next(), hits.next()) {
        (_, Some(_)) => Err(PersistError::Duplicate(name.to_owned())),
        (hit, None) => Ok(hit.map(|(index, _)| index)),
    }
}

fn find_mut<'d>(doc: &'d mut DocumentMut, name: &str) -> Result<Option<&'d mut Table>, PersistError> {
    let Some(tables) = integrations_mut(doc)? else {
        return Ok(None);
    };
    let index = index_of(tables, name)?;
    Ok(index.and_then(|index| tables.get_mut(index)))
}

/// Keys that identify the table: kept when `fields` leaves them out.
fn is_identity(key: &str) -> bool {
    key == "name" || key == "type"
}

/// The keys of `fields` as a person writes them: `name`, `type`, then the others.
fn in_order(fields: &Fields) -> impl Iterator<Item = (&str, &Json)> {
    let identity = ["name", "type"].into_iter().filter_map(|key| Some((key, fields.get(key)?)));
    let rest = fields.iter().filter(|(key, _)| !is_identity(key));
    identity.chain(rest.map(|(key, json)| (key.as_str(), json)))
}

fn replace_keys(table: &mut Table, fields: &Fields) -> Result<(), PersistError> {
    let gone: Vec<String> = table
        .iter()
        .map(|(key, _)| key.to_owned())
        .filter(|key| !fields.contains_key(key) && !is_identity(key))
        .collect();
    for key in gone {
        table.remove(&key);
    }
    for (key, json) in in_order(fields) {
        let value = to_toml(key, json)?;
        match table.get_mut(key) {
            Some(item) => set_value(item, value),
            None => {
                table.insert(key, Item::Value(value));
            }
        }
    }
    Ok(())
}

/// Replaces `item` by `value` unless they are equal; a replaced value keeps the old one's decor
/// (the space after `=` and the trailing comment).
fn set_value(item: &mut Item, mut value: Value) {
    if let Item::Value(old) = item {
        if same(old, &value) {
            return;
        }
        if let (Value::Array(was), Value::Array(new)) = (&*old, &mut value) {
            *new = laid_out_like(was, new);
        }
        *value.decor_mut() = old.decor().clone();
    }
    *item = Item::Value(value);
}

/// `new` laid out as `old` was (one element a line stays one a line): an unchanged element is
/// kept as written, a changed one takes its predecessor's place and comments, an added one is
/// spaced like the last one.
fn laid_out_like(old: &Array, new: &Array) -> Array {
    let Some(last) = old.iter().last() else {
        return new.clone();
    };
    let mut out = Array::new();
    for (i, value) in new.iter().enumerate() {
        let mut value = value.clone();
        match old.get(i) {
            Some(was) if same(was, &value) => value = was.clone(),
            Some(was) => *value.decor_mut() = was.decor().clone(),
            None => *value.decor_mut() = Decor::new(spacing(prefix_of(last.decor())), ""),
        }
        out.push_formatted(value);
    }
    out.set_trailing(old.trailing().clone());
    out.set_trailing_comma(old.trailing_comma());
    out
}

/// The space before an added array element: a new line with the same indent, or one space.
fn spacing(prefix: &str) -> String {
    match prefix.rfind('\n') {
        Some(at) => format!("\n{}", &prefix[at + 1..]),
        None => " ".to_owned(),
    }
}

/// Equal as data, whatever the spelling (`'x'` and `"x"`, `0x10` and `16`).
fn same(old: &Value, new: &Value) -> bool {
    match (old, new) {
        (Value::String(a), Value::String(b)) => a.value() == b.value(),
        (Value::Integer(a), Value::Integer(b)) => a.value() == b.value(),
        (Value::Float(a), Value::Float(b)) => a.value() == b.value(),
        (Value::Boolean(a), Value::Boolean(b)) => a.value() == b.value(),
        (Value::Array(a), Value::Array(b)) => a.len() == b.len() && a.iter().zip(b.iter()).all(|(x, y)| same(x, y)),
        (Value::InlineTable(a), Value::InlineTable(b)) => {
            a.len() == b.len() && a.iter().all(|(key, x)| b.get(key).is_some_and(|y| same(x, y)))
        }
        _ => false,
    }
}

/// A new table: `name`, then `type`, then the other keys.
fn new_table(name: &str, fields: &Fields, blank_line_before: bool) -> Result<Table, PersistError> {
    let mut table = Table::new();
    table.insert("name", toml_edit::value(name));
    for (key, json) in in_order(fields) {
        table.insert(key, Item::Value(to_toml(key, json)?));
    }
    table.decor_mut().set_prefix(if blank_line_before { "\n" } else { "" });
    Ok(table)
}

/// Appends after the last `[[integration]]` table, or at the end of the file when none exists.
fn append_table(doc: &mut DocumentMut, mut table: Table) -> Result<(), PersistError> {
    if let Some(tables) = integrations_mut(doc)? {
        // A table without a position is written right after the table before it in the
        // array, i.e. after the last `[[integration]]`, whatever follows in the file.
        tables.push(table);
        return Ok(());
    }
    let mut last = LastPosition(0);
    last.visit_document(doc);
    table.set_position(Some(last.0 + 1));
    let mut tables = ArrayOfTables::new();
    tables.push(table);
    doc.insert(INTEGRATION, Item::ArrayOfTables(tables));
    Ok(())
}

/// JSON to TOML: strings, integers, booleans, floats, arrays, objects (inline tables).
/// `key` names the value in errors (`buckets[1]`, `tags.team`).
fn to_toml(key: &str, json: &Json) -> Result<Value, PersistError> {
    Ok(match json {
        Json::Null => return Err(PersistError::Null(key.to_owned())),
        Json::Bool(b) => Value::from(*b),
        Json::String(s) => Value::from(s.as_str()),
        Json::Number(n) => match (n.as_i64(), n.as_f64()) {
            (Some(i), _) => Value::from(i),
            (None, Some(_)) if n.is_u64() => return Err(PersistError::OutOfRange(key.to_owned())),
            (None, Some(f)) => Value::from(f),
            (None, None) => return Err(PersistError::OutOfRange(key.to_owned())),
        },
        Json::Array(items) => {
            let mut array = Array::new();
            for (i, item) in items.iter().enumerate() {
                array.push(to_toml(&format!("{key}[{i}]"), item)?);
            }
            Value::Array(array)
        }
        Json::Object(map) => {
            let mut table = InlineTable::new();
            for (k, v) in map {
                table.insert(k, to_toml(&format!("{key}.{k}"), v)?);
            }
            table.fmt();
            Value::InlineTable(table)
        }
    })
}

fn table_json(table: &Table) -> Fields {
    table.iter().map(|(key, item)| (key.to_owned(), item_json(item))).collect()
}

fn item_json(item: &Item) -> Json {
    match item {
        Item::None => Json::Null,
        Item::Value(value) => value_json(value),
        Item::Table(table) => Json::Object(table_json(table)),
        Item::ArrayOfTables(tables) => Json::Array(tables.iter().map(|t| Json::Object(table_json(t))).collect()),
    }
}

fn value_json(value: &Value) -> Json {
    match value {
        Value::String(s) => Json::String(s.value().clone()),
        Value::Integer(i) => Json::from(*i.value()),
        Value::Float(f) => {
            serde_json::Number::from_f64(*f.value()).map_or_else(|| Json::String(f.value().to_string()), Json::Number)
        }
        Value::Boolean(b) => Json::Bool(*b.value()),
        Value::Datetime(d) => Json::String(d.value().to_string()),
        Value::Array(array) => Json::Array(array.iter().map(value_json).collect()),
        Value::InlineTable(table) => Json::Object(table.iter().map(|(k, v)| (k.to_owned(), value_json(v))).collect()),
    }
}

fn prefix_of(decor: &Decor) -> &str {
    decor.prefix().and_then(|raw| raw.as_str()).unwrap_or("")
}

/// Splits the text above a table header into what stays (up to and including the last blank
/// line) and the comment block directly above the header.
fn split_prefix(prefix: &str) -> (&str, &str) {
    let mut cut = 0;
    let mut start = 0;
    for line in prefix.split_inclusive('\n') {
        start += line.len();
        if line.ends_with('\n') && line.trim().is_empty() {
            cut = start;
        }
    }
    prefix.split_at(cut)
}

/// `kept` (text that stood above a removed table) goes in front of whatever the file shows
/// next: the next table's header, or the end of the file.
fn hand_over(doc: &mut DocumentMut, after: Option<isize>, kept: &str) {
    let mut next = NextTable { after: after.unwrap_or(isize::MAX), found: None };
    next.visit_document(doc);
    if let Some(at) = next.found {
        Prepend { at, text: kept, done: false }.visit_document_mut(doc);
        return;
    }
    let trailing = doc.trailing().as_str().unwrap_or("").to_owned();
    let merged = join_blocks(kept, &trailing);
    doc.set_trailing(format!("{}\n", merged.trim_end()));
}

/// `kept` then `next` without `next`'s leading blank lines (`kept` already ends with one).
fn join_blocks(kept: &str, next: &str) -> String {
    let mut rest = next;
    while let Some(end) = rest.find('\n')
        && rest[..end].trim().is_empty()
    {
        rest = &rest[end + 1..];
    }
    format!("{kept}{rest}")
}

/// A table written with a header of its own (not implied by a sub-table, not dotted keys).
fn has_header(table: &Table) -> bool {
    !table.is_implicit() && !table.is_dotted()
}

struct LastPosition(isize);

impl<'d> Visit<'d> for LastPosition {
    fn visit_table(&mut self, table: &'d Table) {
        self.0 = self.0.max(table.position().unwrap_or(0));
        visit::visit_table(self, table);
    }
}

struct NextTable {
    after: isize,
    found: Option<isize>,
}

impl<'d> Visit<'d> for NextTable {
    fn visit_table(&mut self, table: &'d Table) {
        if let Some(at) = table.position()
            && has_header(table)
            && at > self.after
            && self.found.is_none_or(|found| at < found)
        {
            self.found = Some(at);
        }
        visit::visit_table(self, table);
    }
}

struct Prepend<'a> {
    at: isize,
    text: &'a str,
    done: bool,
}

impl VisitMut for Prepend<'_> {
    fn visit_table_mut(&mut self, table: &mut Table) {
        if !self.done && has_header(table) && table.position() == Some(self.at) {
            let merged = join_blocks(self.text, prefix_of(table.decor()));
            table.decor_mut().set_prefix(merged);
            self.done = true;
        }
        visit_mut::visit_table_mut(self, table);
    }
}

#[cfg(test)]
mod tests;
