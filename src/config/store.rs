//! `[store]`: the shared store of integrations and purges for several replicas
//! (CONTRACT.md section 9, `docs/STORE.md`).
//!
//! ```toml
//! [store]
//! url = "postgres://mediagate:${PGPASSWORD}@db.internal:5432/mediagate"
//! encryption_key = "${MEDIAGATE_STORE_KEY}"   # base64 of 32 bytes
//! ca_file = "/etc/ssl/db-ca.pem"              # optional: a private CA for the database's TLS
//! ```
//!
//! Neither the URL (it may hold a password) nor the key is ever printed: messages say what is
//! wrong with them, never what they are.

use std::path::PathBuf;
use std::time::Duration;

use base64::Engine as _;

use crate::schema::values::{as_existing_file, as_secret, as_timeout};
use crate::schema::{Ctx, Scalar, Section};
use crate::secret::Secret;
use crate::store::seal::SealKey;

/// `[store]`; absent section: integrations live in the config file.
#[derive(Clone)]
pub struct StoreConfig {
    /// `url`: `postgres://user:password@host:port/database?sslmode=...`, parsed.
    pub url: Secret,
    pub pg: tokio_postgres::Config,
    /// `encryption_key`: seals every secret an integration holds (AES-256-GCM).
    pub key: SealKey,
    /// `ca_file`: a PEM bundle trusted for the database's TLS, beside the built-in roots
    /// and `SSL_CERT_FILE`.
    pub ca_file: Option<PathBuf>,
    /// `connect_timeout`, default 5 s: how long one connection attempt may take.
    pub connect_timeout: Duration,
}

impl std::fmt::Debug for StoreConfig {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("StoreConfig").field("where", &self.describe()).field("ca_file", &self.ca_file).finish()
    }
}

impl StoreConfig {
    /// Where the store is, for messages: `host:port/database`, never the user or password.
    pub fn describe(&self) -> String {
        let host = match self.pg.get_hosts().first() {
            Some(tokio_postgres::config::Host::Tcp(h)) => h.clone(),
            Some(tokio_postgres::config::Host::Unix(p)) => p.display().to_string(),
            None => "localhost".to_owned(),
        };
        let port = self.pg.get_ports().first().copied().unwrap_or(5432);
        let db = self.pg.get_dbname().or(self.pg.get_user()).unwrap_or("postgres");
        format!("postgres://{host}:{port}/{db}")
    }
}

/// The default of `connect_timeout`.
pub const DEFAULT_CONNECT_TIMEOUT: Duration = Duration::from_secs(5);

/// `[store]`: `url`, `encryption_key`, `ca_file`, `connect_timeout`.
pub fn store(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> Option<StoreConfig> {
    let url = t.required(cx, "url", as_postgres_url);
    let key = t.required(cx, "encryption_key", as_seal_key);
    let ca_file = t.get(cx, "ca_file", as_existing_file);
    let connect_timeout = t.get(cx, "connect_timeout", as_timeout).unwrap_or(DEFAULT_CONNECT_TIMEOUT);
    t.finish(cx, " in [store]");
    let ((url, pg), key) = (url?, key?);
    Some(StoreConfig { url, pg, key, ca_file, connect_timeout })
}

/// A `postgres://` or `postgresql://` URL that names a host; never echoed (it may hold a password).
fn as_postgres_url(v: Scalar) -> Result<(Secret, tokio_postgres::Config), String> {
    let url = as_secret(v)?;
    let text = url.expose();
    if !(text.starts_with("postgres://") || text.starts_with("postgresql://")) {
        return Err("expected a URL such as \"postgres://mediagate:${PGPASSWORD}@db.internal:5432/mediagate\" \
                    (it must start with postgres:// or postgresql://)"
            .to_owned());
    }
    let pg: tokio_postgres::Config = text.parse().map_err(|e: tokio_postgres::Error| {
        // The parser's messages name the part that is wrong, never the URL itself.
        format!("is not a valid PostgreSQL URL ({e}); expected postgres://user:password@host:port/database")
    })?;
    if pg.get_hosts().is_empty() {
        return Err("names no host: expected postgres://user:password@host:port/database".to_owned());
    }
    if pg.get_user().is_none() {
        return Err("names no user: expected postgres://user:password@host:port/database".to_owned());
    }
    Ok((url, pg))
}

/// The base64 (standard alphabet, padding optional) of exactly 32 bytes; never echoed.
fn as_seal_key(v: Scalar) -> Result<SealKey, String> {
    let text = as_secret(v)?;
    let trimmed = text.expose().trim();
    let engine = base64::engine::general_purpose::GeneralPurpose::new(
        &base64::alphabet::STANDARD,
        base64::engine::GeneralPurposeConfig::new()
            .with_decode_padding_mode(base64::engine::DecodePaddingMode::Indifferent),
    );
    let bytes = engine.decode(trimmed).map_err(|_| {
        "is not base64: expected the base64 of 32 random bytes, e.g. from `openssl rand -base64 32`".to_owned()
    })?;
    let bytes: [u8; 32] = bytes.as_slice().try_into().map_err(|_| {
        format!(
            "decodes to {} bytes, not 32: expected the base64 of 32 random bytes, e.g. from `openssl rand -base64 32`",
            bytes.len()
        )
    })?;
    Ok(SealKey::new(bytes))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn problems(text: &str) -> Vec<String> {
        let env = |name: &str| (name == "PGPASSWORD").then(|| "p@ss".to_owned());
        match crate::config::parse(text, Path::new("m.toml"), &env) {
            Ok(_) => Vec::new(),
            Err(e) => e.problems,
        }
    }

    const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";

    #[test]
    fn a_good_store_section_is_read_with_the_password_from_the_environment() {
        let text = format!(
            "[store]\nurl = \"postgres://mg:${{PGPASSWORD}}@db.internal:5433/media\"\nencryption_key = \"{KEY}\"\n"
        );
        let config = crate::config::parse(&text, Path::new("m.toml"), &|n: &str| {
            (n == "PGPASSWORD").then(|| "secret-pw".to_owned())
        })
        .expect("valid");
        let store = config.store.expect("a store");
        assert_eq!(store.pg.get_password(), Some(&b"secret-pw"[..]));
        assert_eq!(store.describe(), "postgres://db.internal:5433/media");
        assert!(!format!("{store:?}").contains("secret-pw"));
    }

    #[test]
    fn a_key_of_the_wrong_length_is_reported_with_line_and_key_and_never_shown() {
        let short = "c2hvcnQta2V5"; // "short-key"
        let text = format!("[store]\nurl = \"postgres://mg@db:5432/m\"\nencryption_key = \"{short}\"\n");
        let found = problems(&text);
        assert_eq!(found.len(), 1, "{found:?}");
        assert!(found[0].starts_with("m.toml:3: store.encryption_key: decodes to 9 bytes, not 32"), "{found:?}");
        assert!(!found[0].contains(short));
        let text = "[store]\nurl = \"postgres://mg@db:5432/m\"\nencryption_key = \"not base64!\"\n";
        assert!(problems(text)[0].starts_with("m.toml:3: store.encryption_key: is not base64"));
    }

    #[test]
    fn a_bad_url_is_reported_with_line_and_key_and_never_shown() {
        let text = format!("[store]\nurl = \"mysql://u:hunter2@db/m\"\nencryption_key = \"{KEY}\"\n");
        let found = problems(&text);
        assert!(found[0].starts_with("m.toml:2: store.url: expected a URL such as"), "{found:?}");
        assert!(!found[0].contains("hunter2"));
        let text = format!("[store]\nurl = \"postgres://u:hunter2@db:notaport/m\"\nencryption_key = \"{KEY}\"\n");
        let found = problems(&text);
        assert!(found[0].starts_with("m.toml:2: store.url: is not a valid PostgreSQL URL"), "{found:?}");
        assert!(!found[0].contains("hunter2"));
    }

    #[test]
    fn missing_and_unknown_keys_are_reported() {
        let found = problems("[store]\nuri = \"postgres://u@db/m\"\n");
        assert!(found.iter().any(|p| p.contains("store") && p.contains("missing required key `url`")), "{found:?}");
        assert!(found.iter().any(|p| p.contains("missing required key `encryption_key`")), "{found:?}");
        assert!(found.iter().any(|p| p.contains("store.uri: unknown key in [store]")), "{found:?}");
    }
}
