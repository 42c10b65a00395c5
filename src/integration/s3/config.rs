//! The keys of `type = "s3"` (CONTRACT.md section 2): their one
//! definition ([`KEYS`]), how they are read ([`read`]), and the config an
//! [`S3Backend`](super::S3Backend) is built from.

use std::path::PathBuf;

use crate::integration::scope::{Read, Scope, read_buckets};
use crate::locator::Scheme;
use crate::schema::values::{
    as_bool, as_existing_file, as_nonempty, as_port, as_secret, as_string, is_host_name, split_port,
};
use crate::schema::{Ctx, KeyDef, Scalar, Section, ValueKind};
use crate::secret::Secret;

/// Every key of an s3 integration besides `name`, `type` and `cache_control`.
pub const KEYS: &[KeyDef] = &[
    KeyDef::string(
        "endpoint",
        "Host name or IP of the storage, without scheme or port (default: AWS S3 of the region, or storage.googleapis.com for gs)",
    ),
    KeyDef::string("port", "TCP port (default 443 with TLS, 80 without)").kind(ValueKind::Integer),
    KeyDef::string("tls", "Use HTTPS").kind(ValueKind::Boolean).default("true"),
    KeyDef::string("region", "Signing region").default("us-east-1"),
    KeyDef::string("access_key_id", "Access key id").required(),
    KeyDef::string("secret_access_key", "Secret access key").secret().required(),
    KeyDef::string("session_token", "Session token of temporary keys").secret(),
    KeyDef::string("credentials", "\"env\": read AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY instead of static keys")
        .kind(ValueKind::Enum(&["env"])),
    KeyDef::string("buckets", "The buckets this integration serves; empty: every bucket by default")
        .kind(ValueKind::StringList),
    KeyDef::string("addressing", "path (endpoint/bucket/key) or virtual-host (bucket.endpoint/key)")
        .kind(ValueKind::Enum(&["path", "virtual-host"])),
    KeyDef::string("locator_scheme", "Which locators it serves: s3:// or gs:// (Google Cloud Storage HMAC keys)")
        .kind(ValueKind::Enum(&["s3", "gs"]))
        .default("s3"),
    KeyDef::string("ca_file", "PEM file of extra trusted roots, for a storage behind a private CA"),
];

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Addressing {
    /// `https://endpoint/bucket/key`
    Path,
    /// `https://bucket.endpoint/key`
    VirtualHost,
}

/// `type = "s3"`.
#[derive(Debug, Clone)]
pub struct S3Config {
    /// `endpoint`: host name or IP, without scheme, port or path; an IPv6
    /// address is stored in brackets (`[::1]`), ready for a URL. Default: `s3.<region>.amazonaws.com`
    /// (`storage.googleapis.com` when `locator_scheme = "gs"`).
    pub endpoint: String,
    /// Whether `endpoint` was given (custom endpoints default to path addressing).
    pub custom_endpoint: bool,
    /// `port`: default 443 with TLS, 80 without.
    pub port: Option<u16>,
    /// `tls`, default true.
    pub tls: bool,
    /// `region`, default `us-east-1` (`auto` for gs).
    pub region: String,
    pub credentials: S3Credentials,
    /// `buckets`: the scope; empty = applies to all buckets of `locator_scheme` by default.
    pub buckets: Vec<String>,
    /// `addressing`: default path for custom endpoints, virtual-host for AWS / GCS.
    pub addressing: Addressing,
    /// `locator_scheme`: `s3` (default) or `gs`.
    pub locator_scheme: Scheme,
    /// `ca_file`: a PEM bundle of extra trusted roots.
    pub ca_file: Option<PathBuf>,
}

/// Where an S3 integration gets its keys.
#[derive(Clone, Debug)]
pub enum S3Credentials {
    /// `access_key_id`, `secret_access_key`, optional `session_token`.
    Static { access_key_id: String, secret_access_key: Secret, session_token: Option<Secret> },
    /// `credentials = "env"`: `AWS_ACCESS_KEY_ID`, `AWS_SECRET_ACCESS_KEY`,
    /// `AWS_SESSION_TOKEN`, read when the integration is built.
    Env,
}

/// The keys of `type = "s3"`, with the defaults that depend on each other.
pub fn read(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Read<S3Config> {
    let endpoint = t.get(cx, "endpoint", as_endpoint);
    let port = t.get(cx, "port", as_port);
    let tls = t.get(cx, "tls", as_bool).unwrap_or(true);
    let locator_scheme = t.get(cx, "locator_scheme", as_locator_scheme).unwrap_or(Scheme::S3);
    let gs = locator_scheme == Scheme::Gs;
    let region = t.get(cx, "region", as_region).unwrap_or_else(|| if gs { "auto" } else { "us-east-1" }.to_string());
    let credentials = credentials(cx, t);
    let buckets = read_buckets(cx, t);
    let addressing = t.get(cx, "addressing", as_addressing);
    let ca_file = t.get(cx, "ca_file", as_existing_file);
    let web_identity = "web identity credentials (role_arn + web_identity_token_file) are not supported yet: \
                        use access_key_id + secret_access_key or credentials = \"env\"";
    t.unsupported(cx, &["role_arn", "web_identity_token_file", "sts_endpoint"], web_identity);
    let custom_endpoint = t.has("endpoint");
    let endpoint = match endpoint {
        Some(endpoint) => endpoint,
        None if gs => "storage.googleapis.com".to_string(),
        None => format!("s3.{region}.amazonaws.com"),
    };
    let default_addressing = if custom_endpoint { Addressing::Path } else { Addressing::VirtualHost };
    let scopes = buckets.as_deref().map_or_else(Vec::new, |b| Scope::buckets(locator_scheme, b));
    let config = match (credentials, buckets) {
        (Some(credentials), Some(buckets)) => Some(S3Config {
            endpoint,
            custom_endpoint,
            port,
            tls,
            region,
            credentials,
            buckets,
            addressing: addressing.unwrap_or(default_addressing),
            locator_scheme,
            ca_file,
        }),
        _ => None,
    };
    Read { config, scopes }
}

const S3_STATIC_KEYS: [&str; 3] = ["access_key_id", "secret_access_key", "session_token"];

/// Static keys, or `credentials = "env"`, never both.
fn credentials(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Option<S3Credentials> {
    let mode = t.get(cx, "credentials", as_string);
    let access_key_id = t.get(cx, "access_key_id", as_nonempty);
    let secret_access_key = t.get(cx, "secret_access_key", as_secret);
    let session_token = t.get(cx, "session_token", as_secret);
    match mode.as_deref() {
        None if t.has("credentials") => return None, // a bad value, already reported
        None => {}
        Some("env") => {
            let given: Vec<&str> = S3_STATIC_KEYS.into_iter().filter(|k| t.has(k)).collect();
            if given.is_empty() {
                return Some(S3Credentials::Env);
            }
            let msg = format!(
                "credentials = \"env\" reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN; \
                 remove {} or remove credentials",
                given.join(", ")
            );
            t.report_key(cx, "credentials", msg);
            return None;
        }
        Some("instance") => {
            let msg = "credentials = \"instance\" is not supported yet: use access_key_id + secret_access_key \
                       or credentials = \"env\"";
            t.report_key(cx, "credentials", msg);
            return None;
        }
        Some(other) => {
            let msg = format!("expected \"env\" (or static keys without `credentials`), got {other:?}");
            t.report_key(cx, "credentials", msg);
            return None;
        }
    }
    let missing: Vec<&str> = S3_STATIC_KEYS[..2].iter().copied().filter(|k| !t.has(k)).collect();
    for key in &missing {
        let msg = format!("missing {key}: give static keys, or set credentials = \"env\"");
        cx.missing(Some(t.span.clone()), &t.path, key, msg);
    }
    if !missing.is_empty() {
        return None;
    }
    Some(S3Credentials::Static {
        access_key_id: access_key_id?,
        secret_access_key: secret_access_key?,
        session_token: if t.has("session_token") { Some(session_token?) } else { None },
    })
}

fn as_region(v: Scalar) -> Result<String, String> {
    let s = as_nonempty(v)?;
    if s.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_') {
        Ok(s)
    } else {
        Err(format!("expected a region name such as \"us-east-1\", got {s:?}"))
    }
}

fn as_locator_scheme(v: Scalar) -> Result<Scheme, String> {
    match as_string(v)?.as_str() {
        "s3" => Ok(Scheme::S3),
        "gs" => Ok(Scheme::Gs),
        other => Err(format!("expected \"s3\" or \"gs\", got {other:?}")),
    }
}

fn as_addressing(v: Scalar) -> Result<Addressing, String> {
    match as_string(v)?.as_str() {
        "path" => Ok(Addressing::Path),
        "virtual-host" => Ok(Addressing::VirtualHost),
        other => Err(format!("expected \"path\" or \"virtual-host\", got {other:?}")),
    }
}

/// An S3 `endpoint`: a host name or IP alone. Common mistakes (a URL, a
/// port, a path) are answered with the keys to write instead.
fn as_endpoint(v: Scalar) -> Result<String, String> {
    let s = as_nonempty(v)?;
    if let Some((scheme, rest)) = s.split_once("://") {
        let authority = rest.split('/').next().unwrap_or_default();
        let (host, port) = split_port(authority);
        let mut fix = format!("endpoint = {host:?}");
        if let Some(port) = port {
            fix.push_str(&format!(", port = {port}"));
        }
        fix.push_str(if scheme == "http" { ", tls = false" } else { ", tls = true (the default)" });
        return Err(format!("expected a host name or IP without scheme, got {s:?}; write {fix}"));
    }
    if s.contains('/') {
        return Err(format!("expected a host name or IP without a path, got {s:?}; buckets go in `buckets`"));
    }
    if let Ok(ip) = s.trim_matches(['[', ']']).parse::<std::net::Ipv6Addr>() {
        return Ok(format!("[{ip}]"));
    }
    if let (host, Some(port)) = split_port(&s) {
        return Err(format!(
            "expected a host name or IP without a port, got {s:?}; write endpoint = {host:?}, port = {port}"
        ));
    }
    if is_host_name(&s) { Ok(s) } else { Err(format!("expected a host name or IP, got {s:?}")) }
}
