//! [`Section`]: one TOML table being read, and [`Scalar`]: one value of it.

use std::ops::Range;

use toml::de::{DeTable, DeValue};

use super::env::expand;
use super::{Ctx, suggestion};

/// A value as read, `${VAR}` already expanded in strings.
pub enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
    /// Any other TOML value, described (`an array`, `the float 1.5`).
    Other(String),
}

impl Scalar {
    /// The value as a message shows it.
    pub fn shown(&self) -> String {
        match self {
            Scalar::Str(s) => format!("{s:?}"),
            Scalar::Int(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Other(what) => what.clone(),
        }
    }

    /// What kind of value it is, without the value (for secrets).
    pub fn kind(&self) -> &str {
        match self {
            Scalar::Str(_) => "a string",
            Scalar::Int(_) => "an integer",
            Scalar::Bool(_) => "a boolean",
            Scalar::Other(what) => what,
        }
    }
}

/// One TOML table being read: every key read is remembered, so that
/// [`Section::finish`] can reject the others.
pub struct Section<'t, 'i> {
    pub map: &'t DeTable<'i>,
    /// The key path of the table (`server`, `integration[2] ("minio")`).
    pub path: String,
    pub span: Range<usize>,
    pub read: Vec<&'static str>,
}

pub type Entry<'t, 'i> = &'t toml::Spanned<DeValue<'i>>;

impl<'t, 'i> Section<'t, 'i> {
    pub fn new(map: &'t DeTable<'i>, path: String, span: Range<usize>) -> Self {
        Section { map, path, span, read: Vec::new() }
    }

    pub fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    pub fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    /// Whether `key` is an empty array (`buckets = []`).
    pub fn is_empty_array(&self, key: &str) -> bool {
        self.map.get(key).is_some_and(|v| matches!(v.get_ref(), DeValue::Array(items) if items.is_empty()))
    }

    pub fn entry(&mut self, key: &'static str) -> Option<Entry<'t, 'i>> {
        self.read.push(key);
        self.map.get(key)
    }

    pub fn report_key(&self, cx: &mut Ctx<'_>, key: &str, msg: impl std::fmt::Display) {
        let span = self.map.get(key).map(|v| v.span());
        cx.report(span, &self.path, key, msg);
    }

    /// The sub-table `key`, or `empty` when it is absent.
    pub fn table(&mut self, cx: &mut Ctx<'_>, key: &'static str, empty: &'t DeTable<'i>) -> Section<'t, 'i> {
        let path = self.key_path(key);
        match self.entry(key) {
            None => Section::new(empty, path, self.span.clone()),
            Some(v) => match v.get_ref() {
                DeValue::Table(map) => Section::new(map, path, v.span()),
                _ => {
                    cx.report(Some(v.span()), &self.path, key, format!("expected a table, written [{key}]"));
                    Section::new(empty, path, v.span())
                }
            },
        }
    }

    /// Reads `key` as a scalar; a bad `${VAR}` is reported here.
    pub fn scalar(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<Scalar> {
        let value = self.entry(key)?;
        let scalar = match value.get_ref() {
            DeValue::String(s) => match expand(s, cx.env) {
                Ok(s) => Scalar::Str(s),
                Err(msg) => {
                    cx.report(Some(value.span()), &self.path, key, msg);
                    return None;
                }
            },
            DeValue::Integer(n) => match i64::from_str_radix(n.as_str(), n.radix()) {
                Ok(n) => Scalar::Int(n),
                Err(_) => Scalar::Other(format!("the integer {n}, out of range")),
            },
            DeValue::Boolean(b) => Scalar::Bool(*b),
            DeValue::Float(f) => Scalar::Other(format!("the float {f}")),
            DeValue::Datetime(d) => Scalar::Other(format!("the date-time {d}")),
            DeValue::Array(_) => Scalar::Other("an array".to_string()),
            DeValue::Table(_) => Scalar::Other("a table".to_string()),
        };
        Some(scalar)
    }

    /// Reads and converts `key`; `None` when absent or wrong (then reported).
    pub fn get<T>(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        convert: impl FnOnce(Scalar) -> Result<T, String>,
    ) -> Option<T> {
        let scalar = self.scalar(cx, key)?;
        convert(scalar).map_err(|msg| self.report_key(cx, key, msg)).ok()
    }

    /// As [`Section::get`], and reports the key missing when absent.
    pub fn required<T>(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        convert: impl FnOnce(Scalar) -> Result<T, String>,
    ) -> Option<T> {
        if !self.has(key) {
            cx.missing(Some(self.span.clone()), &self.path, key, format!("missing required key `{key}`"));
        }
        self.get(cx, key, convert)
    }

    /// Reads an array of strings, each `${VAR}`-expanded and checked.
    pub fn list(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        check: fn(&str) -> Result<(), String>,
    ) -> Option<Vec<String>> {
        let value = self.entry(key)?;
        let DeValue::Array(items) = value.get_ref() else {
            self.report_key(cx, key, "expected an array of strings, like [\"a\", \"b\"]");
            return None;
        };
        if items.is_empty() {
            self.report_key(
                cx,
                key,
                format!("is empty, which would serve nothing; omit `{key}` to serve every bucket"),
            );
            return None;
        }
        let mut out: Vec<String> = Vec::new();
        for (i, item) in items.iter().enumerate() {
            let checked = match item.get_ref() {
                DeValue::String(s) => expand(s, cx.env).and_then(|s| check(&s).map(|()| s)),
                _ => Err("expected a string".to_string()),
            };
            let checked = checked.and_then(|s| match out.contains(&s) {
                true => Err(format!("{s:?} is listed twice")),
                false => Ok(s),
            });
            match checked {
                Ok(s) => out.push(s),
                Err(msg) => cx.report(Some(item.span()), &self.path, &format!("{key}[{i}]"), msg),
            }
        }
        Some(out)
    }

    /// Reports each of `keys` that is present as not supported yet.
    pub fn unsupported(&mut self, cx: &mut Ctx<'_>, keys: &[&'static str], why: &str) {
        for &key in keys {
            if self.entry(key).is_some() {
                self.report_key(cx, key, why);
            }
        }
    }

    /// Rejects every key that was not read; `context` ends the message.
    pub fn finish(&self, cx: &mut Ctx<'_>, context: &str) {
        for (key, value) in self.map.iter() {
            let key_str: &str = key.get_ref();
            if self.read.contains(&key_str) {
                continue;
            }
            let what = if value.get_ref().is_table() { "unknown section" } else { "unknown key" };
            let known = if self.path.is_empty() { "known sections" } else { "known keys" };
            let msg = format!("{what}{context}; {}", suggestion(key_str, &self.read, known));
            cx.report(Some(key.span()), &self.path, key_str, msg);
        }
    }
}
