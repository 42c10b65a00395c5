//! `[auth]` and `[cors]`: who may load media (CONTRACT.md section 5).

use std::time::Duration;

use toml::de::DeValue;

use crate::schema::values::{as_duration, as_key_secret, as_string, as_timeout, is_host_name, split_port};
use crate::schema::{Ctx, Scalar, Section};

/// `[auth]`: who may load media (CONTRACT.md section 5).
#[derive(Debug, Clone)]
pub struct AuthConfig {
    /// `mode`: `"none"` (default) or `"signed-url"`.
    pub mode: AuthMode,
    /// `[[auth.keys]]`: `id` and `secret`; at least one in `signed-url` mode.
    pub keys: Vec<crate::auth::UrlKey>,
    /// `clock_skew`, default `30s`: a URL is still accepted this long after its `exp`.
    pub clock_skew: Duration,
    /// `max_ttl`, default `7d`: a URL whose `exp` lies further ahead is refused.
    pub max_ttl: Duration,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AuthMode {
    None,
    SignedUrl,
}

/// `[cors]`: which web origins may read media responses.
#[derive(Debug, Clone)]
pub struct CorsConfig {
    /// `allowed_origins`: exact origins (`https://app.example.com`), or
    /// `["*"]`; empty (no `[cors]` section) disables CORS.
    pub allowed_origins: Vec<String>,
    /// `max_age`, default `1h`: how long a browser may cache a preflight answer.
    pub max_age: Duration,
}

impl Default for AuthConfig {
    fn default() -> Self {
        AuthConfig {
            mode: AuthMode::None,
            keys: Vec::new(),
            clock_skew: crate::auth::DEFAULT_CLOCK_SKEW,
            max_ttl: crate::auth::DEFAULT_MAX_TTL,
        }
    }
}

impl Default for CorsConfig {
    fn default() -> Self {
        CorsConfig { allowed_origins: Vec::new(), max_age: Duration::from_secs(3600) }
    }
}

/// `[auth]`: `mode`, `[[auth.keys]]`, `clock_skew`, `max_ttl`.
pub fn auth(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> AuthConfig {
    let d = AuthConfig::default();
    let mode = t.get(cx, "mode", |v| match as_string(v)?.as_str() {
        "none" => Ok(AuthMode::None),
        "signed-url" => Ok(AuthMode::SignedUrl),
        other => Err(format!("expected \"none\" or \"signed-url\", got {other:?}")),
    });
    let clock_skew = t.get(cx, "clock_skew", as_duration).unwrap_or(d.clock_skew);
    let max_ttl = t.get(cx, "max_ttl", as_timeout).unwrap_or(d.max_ttl);
    let keys = url_keys(cx, &mut t);
    let mode_ok = mode.is_some() || !t.has("mode");
    let mode = mode.unwrap_or(if t.has("mode") { AuthMode::SignedUrl } else { AuthMode::None });
    match mode {
        AuthMode::SignedUrl if mode_ok && keys.is_empty() && !t.has("keys") => {
            let msg = "mode = \"signed-url\" needs at least one key: add [[auth.keys]] with id = \"k1\" and secret = \"${MEDIAGATE_URL_KEY}\"";
            t.report_key(cx, "mode", msg);
        }
        AuthMode::None if t.has("keys") => {
            let msg = "signing keys are configured but mode is \"none\", so no URL is checked: set mode = \"signed-url\" or remove [[auth.keys]]";
            t.report_key(cx, "keys", msg);
        }
        _ => {}
    }
    t.finish(cx, "");
    AuthConfig { mode, keys, clock_skew, max_ttl }
}

/// Every `[[auth.keys]]`: ids unique, secrets long enough.
fn url_keys(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Vec<crate::auth::UrlKey> {
    let Some(value) = t.entry("keys") else { return Vec::new() };
    let path = t.key_path("keys");
    let DeValue::Array(items) = value.get_ref() else {
        cx.report(Some(value.span()), &t.path, "keys", "expected [[auth.keys]] tables (note the double brackets)");
        return Vec::new();
    };
    let mut keys: Vec<crate::auth::UrlKey> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let DeValue::Table(map) = item.get_ref() else {
            cx.report(Some(item.span()), &item_path, "", "expected a table, as written by [[auth.keys]]");
            continue;
        };
        let mut k = Section::new(map, item_path, item.span());
        let id = k.required(cx, "id", as_key_id);
        let secret = k.required(cx, "secret", as_key_secret);
        k.finish(cx, "");
        if let Some(id) = &id
            && keys.iter().any(|other| &other.id == id)
        {
            k.report_key(cx, "id", format!("{id:?} is used by another key: each key needs its own id"));
            continue;
        }
        if let (Some(id), Some(secret)) = (id, secret) {
            keys.push(crate::auth::UrlKey { id, secret });
        }
    }
    if items.is_empty() {
        cx.report(Some(value.span()), &t.path, "keys", "is empty: add at least one [[auth.keys]] table");
    }
    keys
}

/// A key id, as sent in `kid`: 1 to 64 of `A-Z a-z 0-9 - . _`.
fn as_key_id(v: Scalar) -> Result<String, String> {
    let s = as_string(v)?;
    let ok = (1..=64).contains(&s.len()) && s.bytes().all(|b| b.is_ascii_alphanumeric() || b"-._".contains(&b));
    if ok { Ok(s) } else { Err(format!("expected 1 to 64 letters, digits, '-', '.' or '_', got {s:?}")) }
}

/// `[cors]`: `allowed_origins` (required in the section), `max_age`.
pub fn cors(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> CorsConfig {
    let d = CorsConfig::default();
    let present = !t.map.is_empty();
    let allowed_origins = if present {
        if !t.has("allowed_origins") {
            cx.report(
                Some(t.span.clone()),
                &t.path,
                "allowed_origins",
                "missing required key `allowed_origins`, e.g. [\"https://app.example.com\"] or [\"*\"]",
            );
        }
        t.list(cx, "allowed_origins", check_origin).unwrap_or_default()
    } else {
        Vec::new()
    };
    if allowed_origins.len() > 1 && allowed_origins.iter().any(|o| o == "*") {
        t.report_key(cx, "allowed_origins", "\"*\" allows every origin: give it alone, or list exact origins");
    }
    let max_age = t.get(cx, "max_age", as_duration).unwrap_or(d.max_age);
    t.finish(cx, "");
    CorsConfig { allowed_origins, max_age }
}

/// A web origin as browsers send it in `Origin` (RFC 6454 section 6.1):
/// `scheme://host[:port]`, lower case, no path; or `*`.
fn check_origin(origin: &str) -> Result<(), String> {
    if origin == "*" {
        return Ok(());
    }
    let bad =
        |why: &str| Err(format!("{origin:?} is not an origin ({why}); write it like \"https://app.example.com\""));
    let Some((scheme, authority)) = origin.split_once("://") else { return bad("no scheme") };
    if scheme != "http" && scheme != "https" {
        return bad("the scheme must be http or https");
    }
    if authority.is_empty() || authority.contains(['/', '?', '#', '@']) {
        return bad("an origin has no path, query, user or trailing slash");
    }
    if authority.bytes().any(|b| b.is_ascii_uppercase()) {
        return bad("browsers send origins in lower case");
    }
    let (host, port) = split_port(authority);
    if let Some(port) = port
        && port.parse::<u16>().map_or(true, |p| p == 0)
    {
        return bad("the port is out of range");
    }
    let ipv6 = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok());
    if !(is_host_name(host) || ipv6) {
        return bad("the host is not a host name or IP");
    }
    Ok(())
}
