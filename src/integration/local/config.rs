//! The keys of `type = "local"` (CONTRACT.md section 2): a directory on
//! the proxy's disk, one sub-directory per bucket.

use std::path::PathBuf;

use crate::integration::scope::{Read, Scope, read_buckets};
use crate::locator::Scheme;
use crate::schema::values::as_nonempty;
use crate::schema::{Ctx, KeyDef, Section, ValueKind};

/// Every key of a local integration besides `name`, `type` and `cache_control`.
pub const KEYS: &[KeyDef] = &[
    KeyDef::string("root", "The directory holding one sub-directory per bucket").required(),
    KeyDef::string("buckets", "The buckets (sub-directories) it serves; empty: every one by default")
        .kind(ValueKind::StringList),
];

/// `type = "local"`.
#[derive(Debug, Clone)]
pub struct LocalConfig {
    /// `root`: one sub-directory per bucket (`local://demo/a.jpg` is
    /// `<root>/demo/a.jpg`). Stored as written: a relative `root` is relative
    /// to the process's working directory, not to the config file.
    pub root: PathBuf,
    /// `buckets`: the scope; empty = applies to all buckets by default.
    pub buckets: Vec<String>,
}

/// The keys of `type = "local"`.
pub fn read(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Read<LocalConfig> {
    let root = t.required(cx, "root", as_nonempty);
    let buckets = read_buckets(cx, t);
    let scopes = buckets.as_deref().map_or_else(Vec::new, |b| Scope::buckets(Scheme::Local, b));
    let config = match (root, buckets) {
        (Some(root), Some(buckets)) => Some(LocalConfig { root: PathBuf::from(root), buckets }),
        _ => None,
    };
    Read { config, scopes }
}
