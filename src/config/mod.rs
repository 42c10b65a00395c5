//! The configuration: parsed once from TOML, every problem reported at once
//! with file, line and key.
//!
//! One file per section ([`server`], [`cache`], [`clients`], [`admin`]);
//! `[[integration]]` tables belong to their provider folders
//! ([`crate::integration::config`]). The reading machinery is
//! [`crate::schema`]. Strings may use `${VAR}` to read the environment,
//! sizes take human units (`64MiB`), durations too (`5m`), and unknown keys
//! are rejected.

pub mod admin;
pub mod cache;
pub mod clients;
pub mod server;
pub mod store;
#[cfg(test)]
mod tests;

use std::path::{Path, PathBuf};

use toml::de::DeTable;

pub use self::admin::AdminConfig;
pub use self::cache::CacheConfig;
pub use self::clients::{AuthConfig, AuthMode, CorsConfig};
pub use self::server::{ServerConfig, TlsFiles};
pub use self::store::StoreConfig;
pub use crate::integration::config::IntegrationConfig;
pub use crate::integration::upstream::UpstreamConfig;
pub use crate::schema::ConfigErrors;
pub use crate::schema::values::{parse_duration, parse_size};
use crate::schema::{Ctx, Section};

/// The whole configuration of one mediagate process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages, reloads and saving).
    pub source: PathBuf,
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub cache: CacheConfig,
    pub auth: AuthConfig,
    pub cors: CorsConfig,
    /// `[admin]`; `None`: no admin listener.
    pub admin: Option<AdminConfig>,
    pub integrations: Vec<IntegrationConfig>,
    /// `[store]`; `None`: integrations live in this file.
    pub store: Option<StoreConfig>,
}

/// Reads and validates `path`, with `${VAR}` from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path)
        .map_err(|e| ConfigErrors::messages(vec![format!("{}: cannot read the config file: {e}", path.display())]))?;
    parse(&text, path, &|name| std::env::var(name).ok())
}

/// Parses and validates config text; `env` resolves `${VAR}`.
///
/// Every problem is collected, in file order, as
/// `<file>:<line>: <key path>: <what is wrong>`, where array elements are
/// numbered from 0 and an integration also shows its name:
/// `config/mediagate.toml:14: integration[2] ("minio").port: expected ...`.
/// An integration that only lacks keys is no problem: it is kept as
/// incomplete ([`crate::integration::config::IntegrationKind::Incomplete`]).
pub fn parse(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let (root, syntax) = DeTable::parse_recoverable(text);
    let mut cx = Ctx::new(path.display().to_string(), text, env);
    if !syntax.is_empty() {
        return Err(cx.syntax_errors(&syntax));
    }
    let empty = DeTable::new();
    let config = walk(&mut cx, Section::new(root.get_ref(), String::new(), root.span()), &empty, path);
    cx.into_result(config)
}

/// Reads the top-level sections. Adding a section is one line here, one
/// field in [`Config`] and one function; any key not read is rejected.
fn walk<'t, 'i>(cx: &mut Ctx<'_>, mut root: Section<'t, 'i>, empty: &'t DeTable<'i>, path: &Path) -> Config {
    let section = root.table(cx, "server", empty);
    let server = server::server(cx, section);
    let section = root.table(cx, "upstream", empty);
    let upstream = server::upstream(cx, section);
    let section = root.table(cx, "cache", empty);
    let cache = cache::cache(cx, section);
    let section = root.table(cx, "auth", empty);
    let auth = clients::auth(cx, section);
    let section = root.table(cx, "cors", empty);
    let cors = clients::cors(cx, section);
    let admin = root.has("admin").then(|| {
        let section = root.table(cx, "admin", empty);
        admin::admin(cx, section)
    });
    let store = root
        .has("store")
        .then(|| {
            let section = root.table(cx, "store", empty);
            store::store(cx, section)
        })
        .flatten();
    let integrations = crate::integration::config::read_all(cx, &mut root);
    root.finish(cx, "");
    Config { source: path.to_path_buf(), server, upstream, cache, auth, cors, admin, integrations, store }
}
