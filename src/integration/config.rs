//! `[[integration]]` tables (CONTRACT.md section 2): the keys every type
//! shares, the one list of types and their keys ([`TYPES`]), the rules across
//! integrations (unique names, scopes that do not overlap), and an
//! integration as written ([`IntegrationConfig::raw`]) for the admin API.
//!
//! Each provider folder owns its keys (`s3/config.rs`, `azure/config.rs`,
//! `local/config.rs`); this file only dispatches on `type`.
//!
//! An integration that lacks keys it needs (a secret, its buckets) but has
//! no wrong value is kept as [`IntegrationKind::Incomplete`]: it owns its
//! scope and serves nothing until finished ("save the unfinished
//! configuration", CONTRACT.md section 6).

use std::collections::HashMap;
use std::ops::Range;

use serde_json::{Map, Value};
use toml::de::{DeTable, DeValue};

use super::azure::config::{self as azure, AzureConfig};
use super::local::config::{self as local, LocalConfig};
use super::s3::config::{self as s3, S3Config};
use super::scope::{Read, Scope};
use crate::schema::env::is_reference;
use crate::schema::values::{as_header_value, as_string};
use crate::schema::{Ctx, KeyDef, Problem, Scalar, Section, SourceDef};

/// The default `cache_control` of an integration.
pub const DEFAULT_CACHE_CONTROL: &str = "max-age=300";

/// What a secret's value is shown as, in every answer (CONTRACT.md section 6).
pub const SECRET_MARKER: &str = "********";

/// One integration type: its `type` value, a title for people, its keys,
/// and the credential sources those keys belong to.
#[derive(Debug)]
pub struct TypeDef {
    pub name: &'static str,
    pub title: &'static str,
    pub keys: &'static [KeyDef],
    /// Empty for a type without credentials (`local`).
    pub sources: &'static [SourceDef],
}

/// Every integration type; the page's form and the OpenAPI description are built from it.
pub const TYPES: &[TypeDef] = &[
    TypeDef {
        name: "s3",
        title: "S3-compatible storage (AWS S3, MinIO, Google Cloud Storage HMAC, R2, ...)",
        keys: s3::KEYS,
        sources: s3::SOURCES,
    },
    TypeDef { name: "azure-blob", title: "Azure Blob Storage", keys: azure::KEYS, sources: azure::SOURCES },
    TypeDef { name: "local", title: "A directory on the proxy's disk", keys: local::KEYS, sources: &[] },
];

/// Keys of every type besides `name` and `type`.
pub const COMMON_KEYS: &[KeyDef] =
    &[KeyDef::string("cache_control", "The Cache-Control header sent with this integration's media")
        .default(DEFAULT_CACHE_CONTROL)];

/// The definition of type `name`.
pub fn type_def(name: &str) -> Option<&'static TypeDef> {
    TYPES.iter().find(|t| t.name == name)
}

/// One `[[integration]]` table.
#[derive(Debug, Clone)]
pub struct IntegrationConfig {
    /// `name`: unique, `[a-z0-9-]+` ([`check_name`]).
    pub name: String,
    /// `type`: one of [`TYPES`].
    pub type_name: &'static str,
    /// `cache_control`: the `Cache-Control` sent with this integration's media,
    /// default `max-age=300`.
    pub cache_control: String,
    /// What it claims, complete or not.
    pub scopes: Vec<Scope>,
    pub kind: IntegrationKind,
    /// The table as written (`${VAR}` not expanded), for the admin API.
    pub raw: Map<String, Value>,
}

/// The keys of its `type`, or what it still lacks.
#[derive(Debug, Clone)]
pub enum IntegrationKind {
    S3(S3Config),
    Azure(AzureConfig),
    Local(LocalConfig),
    /// Saved unfinished: one problem per missing key.
    Incomplete(Vec<Problem>),
}

impl IntegrationConfig {
    /// The table as written, each secret shown as [`SECRET_MARKER`] unless
    /// written as a `${VAR}` reference (shown as written, never its value).
    pub fn redacted(&self) -> Map<String, Value> {
        redact(&self.raw, self.type_name)
    }

    /// The keys it lacks, when incomplete.
    pub fn missing(&self) -> &[Problem] {
        match &self.kind {
            IntegrationKind::Incomplete(problems) => problems,
            _ => &[],
        }
    }
}

/// `raw` with every secret of `type_name` masked (see [`IntegrationConfig::redacted`]).
pub fn redact(raw: &Map<String, Value>, type_name: &str) -> Map<String, Value> {
    let secret = |key: &str| type_def(type_name).is_some_and(|t| t.keys.iter().any(|k| k.secret && k.name == key));
    raw.iter()
        .map(|(key, value)| {
            let shown = match value {
                Value::String(s) if secret(key) && !is_reference(s) => Value::from(SECRET_MARKER),
                other => other.clone(),
            };
            (key.clone(), shown)
        })
        .collect()
}

/// The name rule of an integration: `[a-z0-9-]+`, at most 63 characters
/// (it appears in URLs of the admin API and in metric labels).
pub fn check_name(name: &str) -> Result<(), String> {
    let ok = (1..=63).contains(&name.len())
        && name.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok {
        Ok(())
    } else {
        Err(format!("expected 1 to 63 lower-case letters, digits and '-' ([a-z0-9-]+), got {name:?}"))
    }
}

fn as_name(v: Scalar) -> Result<String, String> {
    let s = as_string(v)?;
    check_name(&s).map(|()| s)
}

fn as_type(v: Scalar) -> Result<&'static str, String> {
    let s = as_string(v)?;
    let names: Vec<String> = TYPES.iter().map(|t| format!("{:?}", t.name)).collect();
    type_def(&s).map(|t| t.name).ok_or_else(|| format!("expected one of {}, got {s:?}", names.join(", ")))
}

/// An integration as read, with what messages need to point at it.
struct Item {
    label: String,
    span: Range<usize>,
    config: IntegrationConfig,
}

/// Every `[[integration]]` of `root`, then the rules across them (names, scopes).
pub fn read_all(cx: &mut Ctx<'_>, root: &mut Section<'_, '_>) -> Vec<IntegrationConfig> {
    let Some(value) = root.entry("integration") else { return Vec::new() };
    let DeValue::Array(items) = value.get_ref() else {
        let msg = "expected [[integration]] tables (an array of tables: note the double brackets)";
        cx.report(Some(value.span()), "", "integration", msg);
        return Vec::new();
    };
    let mut read = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("integration[{i}]");
        let DeValue::Table(map) = item.get_ref() else {
            cx.report(Some(item.span()), &path, "", "expected a table, as written by [[integration]]");
            continue;
        };
        read.extend(integration(cx, Section::new(map, path, item.span())));
    }
    check_unique_names(cx, &read);
    check_scopes(cx, &read);
    read.into_iter().map(|r| r.config).collect()
}

/// One `[[integration]]`: the common keys, then those of its `type`.
fn integration(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> Option<Item> {
    let (label, span) = (t.path.clone(), t.span.clone());
    let before = cx.count();
    let name = t.required(cx, "name", as_name);
    if let Some(name) = &name {
        t.path = format!("{label} ({name:?})");
    }
    let type_name = t.required(cx, "type", as_type);
    let cache_control = t.get(cx, "cache_control", as_header_value);
    let (kind, scopes) = match type_name {
        Some("s3") => split(s3::read(cx, &mut t), IntegrationKind::S3),
        Some("azure-blob") => split(azure::read(cx, &mut t), IntegrationKind::Azure),
        Some("local") => split(local::read(cx, &mut t), IntegrationKind::Local),
        _ => return None, // without a type, other keys cannot be judged
    };
    t.finish(cx, &format!(" for type {:?}", type_name.unwrap_or_default()));
    let problems = cx.take_since(before);
    let unfinished = problems.iter().all(|p| p.missing && p.key != "name" && p.key != "type");
    let kind = match kind {
        Some(kind) if problems.is_empty() => kind,
        _ if unfinished => IntegrationKind::Incomplete(problems),
        _ => {
            cx.put_back(problems);
            return None;
        }
    };
    let config = IntegrationConfig {
        cache_control: cache_control.unwrap_or_else(|| DEFAULT_CACHE_CONTROL.to_string()),
        name: name?,
        type_name: type_name?,
        scopes,
        kind,
        raw: raw_table(t.map),
    };
    Some(Item { label: t.path, span, config })
}

fn split<T>(read: Read<T>, kind: fn(T) -> IntegrationKind) -> (Option<IntegrationKind>, Vec<Scope>) {
    (read.config.map(kind), read.scopes)
}

/// Two integrations with one name: the second one names the first.
fn check_unique_names(cx: &mut Ctx<'_>, read: &[Item]) {
    let mut seen: HashMap<&str, &Item> = HashMap::new();
    for r in read {
        if let Some(first) = seen.insert(&r.config.name, r) {
            let msg = format!("name {:?} is already used by {}", r.config.name, first.label);
            cx.report(Some(r.span.clone()), &r.label, "", msg);
            seen.insert(&first.config.name, first);
        }
    }
}

/// Two integrations claiming one scope: the error names both.
fn check_scopes(cx: &mut Ctx<'_>, read: &[Item]) {
    let mut owner: HashMap<&Scope, &Item> = HashMap::new();
    for r in read {
        for scope in &r.config.scopes {
            match owner.get(scope) {
                Some(first) => {
                    cx.report(Some(r.span.clone()), &r.label, "", scope.overlap_message(&first.label, &r.label))
                }
                None => {
                    owner.insert(scope, r);
                }
            }
        }
    }
}

/// The first scope of `candidate` that another integration of `others`
/// (by name) already claims, with the message naming both.
pub fn conflict(candidate: &IntegrationConfig, others: &[IntegrationConfig]) -> Option<String> {
    others.iter().filter(|o| o.name != candidate.name).find_map(|other| {
        let scope = candidate.scopes.iter().find(|s| other.scopes.contains(s))?;
        let (first, second) = (format!("integration {:?}", other.name), format!("integration {:?}", candidate.name));
        Some(scope.overlap_message(&first, &second))
    })
}

/// A TOML table as JSON, strings as written.
fn raw_table(map: &DeTable<'_>) -> Map<String, Value> {
    map.iter().map(|(k, v)| (k.get_ref().to_string(), raw_value(v.get_ref()))).collect()
}

fn raw_value(v: &DeValue<'_>) -> Value {
    match v {
        DeValue::String(s) => Value::from(s.as_ref()),
        DeValue::Integer(n) => {
            i64::from_str_radix(n.as_str(), n.radix()).map_or_else(|_| Value::from(n.as_str()), Value::from)
        }
        DeValue::Boolean(b) => Value::from(*b),
        DeValue::Float(f) => Value::from(f.as_str()),
        DeValue::Datetime(d) => Value::from(d.to_string()),
        DeValue::Array(items) => Value::Array(items.iter().map(|i| raw_value(i.get_ref())).collect()),
        DeValue::Table(t) => Value::Object(raw_table(t)),
    }
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    use super::*;
    use crate::schema::ValueKind;

    /// A value of `kind` that the reader accepts for `key`.
    fn sample(key: &KeyDef) -> String {
        match (key.name, key.kind) {
            ("storage_url", _) => "\"https://acct.blob.core.windows.net/media\"".into(),
            ("account_key", _) => "\"a2V5\"".into(),
            ("sas_token", _) => "\"sv=1&sig=x\"".into(),
            ("ca_file", _) => format!("{:?}", concat!(env!("CARGO_MANIFEST_DIR"), "/Cargo.toml")),
            ("endpoint", _) => "\"storage.example\"".into(),
            ("region", _) => "\"eu-west-1\"".into(),
            ("sts_endpoint", _) => "\"https://sts.example\"".into(),
            ("authority_host", _) => "\"https://login.example\"".into(),
            (_, ValueKind::Integer) => "9000".into(),
            (_, ValueKind::Boolean) => "true".into(),
            (_, ValueKind::StringList) => "[\"media\"]".into(),
            (_, ValueKind::Enum(values)) => format!("{:?}", values[0]),
            (_, ValueKind::String) => "\"value\"".into(),
        }
    }

    /// The problems of one `[[integration]]` of `type_name` with `keys`.
    fn problems(type_name: &str, keys: &[(&str, String)]) -> Vec<String> {
        let mut text = format!("[[integration]]\nname = \"t\"\ntype = \"{type_name}\"\n");
        for (k, v) in keys {
            text.push_str(&format!("{k} = {v}\n"));
        }
        crate::config::parse(&text, Path::new("t.toml"), &|_| Some("x".into()))
            .err()
            .map_or_else(Vec::new, |e| e.problems)
    }

    #[test]
    fn every_key_of_a_type_definition_is_read_by_the_reader_of_that_type() {
        for t in TYPES {
            for key in t.keys.iter().chain(COMMON_KEYS) {
                let unknown: Vec<String> = problems(t.name, &[(key.name, sample(key))])
                    .into_iter()
                    .filter(|p| p.contains("unknown key"))
                    .collect();
                assert!(unknown.is_empty(), "{}.{} is defined but not read: {unknown:?}", t.name, key.name);
            }
        }
    }

    #[test]
    fn every_key_the_reader_of_a_type_knows_is_in_its_definition() {
        for t in TYPES {
            let all = problems(t.name, &[("zzzzzzzzzzzzzzzzzzzz", "1".into())]);
            let message = all.iter().find(|p| p.contains("unknown key")).expect("an unknown key is reported");
            let known = message.rsplit("known keys: ").next().unwrap_or_default();
            for key in known.split(", ") {
                let defined =
                    ["name", "type"].contains(&key) || t.keys.iter().chain(COMMON_KEYS).any(|k| k.name == key);
                assert!(defined, "{}: the reader knows {key:?}, the definition does not", t.name);
            }
        }
    }

    /// The credential source the reader chose for one `[[integration]]`.
    /// `aks`: the environment has what workload identity reads (AKS sets it).
    fn source_read(type_name: &str, keys: &[(&str, String)], aks: bool) -> Result<&'static str, Vec<String>> {
        let mut text = format!("[[integration]]\nname = \"t\"\ntype = \"{type_name}\"\n");
        for (k, v) in keys {
            text.push_str(&format!("{k} = {v}\n"));
        }
        let env = |var: &str| match var {
            "AZURE_FEDERATED_TOKEN_FILE" if aks => Some("/var/run/token".into()),
            "AZURE_TENANT_ID" | "AZURE_CLIENT_ID" if aks => Some("x".into()),
            _ => None,
        };
        let cfg = crate::config::parse(&text, Path::new("t.toml"), &env).map_err(|e| e.problems)?;
        match &cfg.integrations[0].kind {
            IntegrationKind::S3(c) => Ok(c.credentials.source_name()),
            IntegrationKind::Azure(c) => Ok(c.credential.source_name()),
            other => Err(vec![format!("not a credential type: {other:?}")]),
        }
    }

    /// What a form that offers `source` submits: the type's keys needed
    /// everywhere, the source's selector, and each of its keys (a `*_file`
    /// twin left out: a secret is inline or in a file, not both).
    fn form_of(t: &TypeDef, source: &SourceDef, only_needed: bool) -> Vec<(&'static str, String)> {
        let mut keys: Vec<(&str, String)> =
            t.keys.iter().filter(|k| k.required && k.sources.is_empty()).map(|k| (k.name, sample(k))).collect();
        if let Some((key, value)) = source.selector {
            keys.push((key, format!("{value:?}")));
        }
        let own: Vec<(&KeyDef, bool)> = source.keys(t.keys).collect();
        for (k, needed) in &own {
            let twin = k.name.strip_suffix("_file").is_some_and(|inline| own.iter().any(|(o, _)| o.name == inline));
            if (*needed || !only_needed) && !twin {
                keys.push((k.name, sample(k)));
            }
        }
        keys
    }

    #[test]
    fn each_credential_source_with_its_own_keys_is_read_as_that_source() {
        for t in TYPES {
            for source in t.sources {
                for only_needed in [true, false] {
                    let keys = form_of(t, source, only_needed);
                    let read = source_read(t.name, &keys, true);
                    assert_eq!(read, Ok(source.name), "{}: {keys:?}", t.name);
                }
            }
        }
    }

    #[test]
    fn a_credential_source_missing_a_key_it_needs_is_incomplete_or_refused() {
        for t in TYPES {
            for source in t.sources {
                for (needed, _) in source.keys(t.keys).filter(|(_, needed)| *needed) {
                    let keys: Vec<_> =
                        form_of(t, source, true).into_iter().filter(|(k, _)| *k != needed.name).collect();
                    let read = source_read(t.name, &keys, false);
                    assert!(read.is_err(), "{}: {} read without {}: {read:?}", t.name, source.name, needed.name);
                }
            }
        }
    }

    #[test]
    fn every_credential_source_is_named_in_its_types_keys_and_every_key_names_a_source_of_its_type() {
        for t in TYPES {
            for key in t.keys {
                for s in key.sources {
                    assert!(
                        t.sources.iter().any(|d| d.name == s.source()),
                        "{}.{} names source {:?}, which the type does not have",
                        t.name,
                        key.name,
                        s.source()
                    );
                }
            }
            for source in t.sources {
                let selected = source.selector.is_some();
                assert!(
                    selected || source.keys(t.keys).any(|(_, needed)| needed),
                    "{}: {} has no key",
                    t.name,
                    source.name
                );
                if let Some((key, value)) = source.selector {
                    let def = t.keys.iter().find(|k| k.name == key).expect("the selector is a key of the type");
                    let ValueKind::Enum(values) = def.kind else { panic!("{}.{key} is not an enum", t.name) };
                    assert!(values.contains(&value), "{}.{key} does not allow {value:?}", t.name);
                    assert!(def.sources.is_empty(), "{}.{key} chooses a source: it is no source's own key", t.name);
                }
            }
            // Every value of a selector key chooses a source.
            for (key, _) in t.sources.iter().filter_map(|s| s.selector) {
                let def = t.keys.iter().find(|k| k.name == key).expect("a key");
                if let ValueKind::Enum(values) = def.kind {
                    for v in values {
                        assert!(t.sources.iter().any(|s| s.selector == Some((key, v))), "{}.{key} = {v:?}", t.name);
                    }
                }
            }
        }
    }

    #[test]
    fn secrets_are_masked_unless_written_as_a_reference() {
        let raw: Map<String, Value> = serde_json::from_str(
            r#"{"name": "s", "type": "s3", "access_key_id": "AK", "secret_access_key": "plain", "session_token": "${TOKEN}"}"#,
        )
        .expect("json");
        let shown = redact(&raw, "s3");
        assert_eq!(shown["secret_access_key"], SECRET_MARKER);
        assert_eq!(shown["session_token"], "${TOKEN}");
        assert_eq!(shown["access_key_id"], "AK", "an access key id is no secret");
    }
}
