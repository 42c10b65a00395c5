//! The keys of `type = "s3"` (CONTRACT.md section 2): their one
//! definition ([`KEYS`]), how they are read ([`read`]), and the config an
//! [`S3Backend`](super::S3Backend) is built from.

use std::path::PathBuf;

use crate::integration::scope::{Read, Scope, read_buckets};
use crate::integration::secret_file::SecretValue;
use crate::locator::Scheme;
use crate::schema::InSource::{May, Needs};
use crate::schema::values::{
    as_base_url, as_bool, as_existing_file, as_nonempty, as_port, as_secret, as_string, is_host_name, split_port,
};
use crate::schema::{Ctx, KeyDef, Scalar, Section, SourceDef, ValueKind};

/// Every key of an s3 integration besides `name`, `type` and `cache_control`.
pub const KEYS: &[KeyDef] = &[
    KeyDef::string(
        "endpoint",
        "Host name or IP of the storage, without scheme or port (default: AWS S3 of the region, or storage.googleapis.com for gs)",
    ),
    KeyDef::string("port", "TCP port (default 443 with TLS, 80 without)").kind(ValueKind::Integer),
    KeyDef::string("tls", "Use HTTPS").kind(ValueKind::Boolean).default("true"),
    KeyDef::string("region", "Signing region").default("us-east-1"),
    KeyDef::string("access_key_id", "Access key id").sources(&[Needs("static")]),
    KeyDef::string("secret_access_key", "Secret access key; or give secret_access_key_file instead")
        .secret()
        .sources(&[Needs("static")]),
    KeyDef::string("secret_access_key_file", "File holding the secret access key, re-read when it changes")
        .sources(&[May("static")]),
    KeyDef::string("session_token", "Session token of temporary keys").secret().sources(&[May("static")]),
    KeyDef::string("session_token_file", "File holding the session token, re-read when it changes")
        .sources(&[May("static")]),
    KeyDef::string(
        "credentials",
        "Instead of static keys: \"env\" (AWS_ACCESS_KEY_ID..., else AWS_ROLE_ARN + AWS_WEB_IDENTITY_TOKEN_FILE), \
         \"web-identity\" (STS AssumeRoleWithWebIdentity), \"instance\" (container credentials, then EC2 IMDSv2)",
    )
    .kind(ValueKind::Enum(&["env", "web-identity", "instance"])),
    KeyDef::string("role_arn", "Web identity: the role to assume (default: AWS_ROLE_ARN)")
        .sources(&[May("web-identity")]),
    KeyDef::string(
        "web_identity_token_file",
        "Web identity: the token file, re-read at each refresh (default: AWS_WEB_IDENTITY_TOKEN_FILE)",
    )
    .sources(&[May("web-identity")]),
    KeyDef::string(
        "sts_endpoint",
        "Web identity: the STS URL (default: AWS_ENDPOINT_URL_STS, else https://sts.<region>.amazonaws.com)",
    )
    .sources(&[May("web-identity")]),
    KeyDef::string("buckets", "The buckets this integration serves; empty: every bucket by default")
        .kind(ValueKind::StringList),
    KeyDef::string("addressing", "path (endpoint/bucket/key) or virtual-host (bucket.endpoint/key)")
        .kind(ValueKind::Enum(&["path", "virtual-host"])),
    KeyDef::string("locator_scheme", "Which locators it serves: s3:// or gs:// (Google Cloud Storage HMAC keys)")
        .kind(ValueKind::Enum(&["s3", "gs"]))
        .default("s3"),
    KeyDef::string("ca_file", "PEM file of extra trusted roots, for a storage behind a private CA"),
];

/// The credential sources of an s3 integration (the `credential_source`
/// names), the first being what [`read`] picks when none is chosen.
/// Web identity is also chosen by `role_arn` or `web_identity_token_file`
/// alone; a form sets `credentials` for it all the same.
pub const SOURCES: &[SourceDef] = &[
    SourceDef {
        name: "static",
        label: "Access keys",
        help: "An access key id and its secret (inline or in a file), with a session token for temporary keys",
        selector: None,
    },
    SourceDef {
        name: "env",
        label: "Environment",
        help: "The variables the AWS SDKs read: AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY and AWS_SESSION_TOKEN, \
               else AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE",
        selector: Some(("credentials", "env")),
    },
    SourceDef {
        name: "web-identity",
        label: "Web identity (IRSA)",
        help: "Temporary keys from STS AssumeRoleWithWebIdentity, as a Kubernetes pod with IRSA has them; \
               each key left empty is read from its AWS_* variable",
        selector: Some(("credentials", "web-identity")),
    },
    SourceDef {
        name: "instance",
        label: "Container or instance role",
        help: "The role of the ECS/EKS container (AWS_CONTAINER_CREDENTIALS_*), else of the EC2 instance (IMDSv2)",
        selector: Some(("credentials", "instance")),
    },
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

/// Where an S3 integration gets its keys (built into a provider by
/// [`super::credential`]).
#[derive(Clone, Debug)]
pub enum S3Credentials {
    /// `access_key_id`, `secret_access_key` (or `_file`), optional `session_token` (or `_file`).
    Static { access_key_id: String, secret_access_key: SecretValue, session_token: Option<SecretValue> },
    /// `credentials = "env"`, as the AWS SDKs' default chain reads the
    /// environment when the integration is built: `AWS_ACCESS_KEY_ID`,
    /// `AWS_SECRET_ACCESS_KEY`, `AWS_SESSION_TOKEN`; without
    /// `AWS_ACCESS_KEY_ID`, web identity from `AWS_ROLE_ARN` +
    /// `AWS_WEB_IDENTITY_TOKEN_FILE` (what an IRSA pod has).
    Env,
    /// Web identity: each `None` is read from the environment
    /// (`AWS_ROLE_ARN`, `AWS_WEB_IDENTITY_TOKEN_FILE`, `AWS_ENDPOINT_URL_STS`).
    WebIdentity { role_arn: Option<String>, token_file: Option<PathBuf>, sts_endpoint: Option<String> },
    /// `credentials = "instance"`: the container endpoint, else EC2 IMDSv2.
    Instance,
}

impl S3Credentials {
    /// Its source in [`SOURCES`], as the config chose it (`env` may turn
    /// into web identity when the integration is built).
    pub fn source_name(&self) -> &'static str {
        match self {
            S3Credentials::Static { .. } => "static",
            S3Credentials::Env => "env",
            S3Credentials::WebIdentity { .. } => "web-identity",
            S3Credentials::Instance => "instance",
        }
    }
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

/// Static keys (each secret inline or in a `*_file`), `credentials = "env"`,
/// web identity (`credentials = "web-identity"`, or `role_arn` /
/// `web_identity_token_file` given), or `credentials = "instance"`; the keys
/// of one source only.
fn credentials(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Option<S3Credentials> {
    let mode = t.get(cx, "credentials", as_string);
    let access_key_id = t.get(cx, "access_key_id", as_nonempty);
    let secret = secret_value(cx, t, "secret_access_key");
    let session_token = secret_value(cx, t, "session_token");
    let role_arn = t.get(cx, "role_arn", as_nonempty);
    let token_file = t.get(cx, "web_identity_token_file", as_nonempty).map(PathBuf::from);
    let sts_endpoint = t.get(cx, "sts_endpoint", as_base_url);
    // The keys of a source are those [`KEYS`] gives it.
    let given = |source: &str| -> Vec<&'static str> {
        KEYS.iter()
            .filter(|k| k.sources.iter().any(|s| s.source() == source) && t.has(k.name))
            .map(|k| k.name)
            .collect()
    };
    let (statics, web) = (given("static"), given("web-identity"));
    let mode = match mode.as_deref() {
        None if t.has("credentials") => return None, // a bad value, already reported
        None if !web.is_empty() => "web-identity",
        None => "static",
        Some(m @ ("env" | "web-identity" | "instance")) => m,
        Some(other) => {
            let msg = format!("expected \"env\", \"web-identity\" or \"instance\" (or static keys), got {other:?}");
            t.report_key(cx, "credentials", msg);
            return None;
        }
    };
    let foreign: Vec<&str> = match mode {
        "static" => vec![],
        "web-identity" => statics,
        _ => statics.into_iter().chain(web).collect(),
    };
    if !foreign.is_empty() {
        let reads = match mode {
            "env" => "credentials = \"env\" reads AWS_ACCESS_KEY_ID / AWS_SECRET_ACCESS_KEY / AWS_SESSION_TOKEN",
            "instance" => "credentials = \"instance\" asks the container or instance metadata endpoint",
            _ => "web identity gets its keys from STS",
        };
        let msg = format!("{reads}; remove {} or remove credentials", foreign.join(", "));
        let key = if t.has("credentials") { "credentials" } else { foreign[0] };
        t.report_key(cx, key, msg);
        return None;
    }
    match mode {
        "env" => return Some(S3Credentials::Env),
        "instance" => return Some(S3Credentials::Instance),
        "web-identity" => {
            // A key given with a bad value was reported by `get`.
            let bad = (t.has("role_arn") && role_arn.is_none())
                || (t.has("web_identity_token_file") && token_file.is_none())
                || (t.has("sts_endpoint") && sts_endpoint.is_none());
            return (!bad).then_some(S3Credentials::WebIdentity { role_arn, token_file, sts_endpoint });
        }
        _ => {}
    }
    let mut missing = Vec::new();
    if !t.has("access_key_id") {
        missing.push("access_key_id");
    }
    if !t.has("secret_access_key") && !t.has("secret_access_key_file") {
        missing.push("secret_access_key");
    }
    for key in &missing {
        let msg =
            format!("missing {key}: give static keys, or set credentials = \"env\", \"web-identity\" or \"instance\"");
        cx.missing(Some(t.span.clone()), &t.path, key, msg);
    }
    if !missing.is_empty() {
        return None;
    }
    Some(S3Credentials::Static {
        access_key_id: access_key_id?,
        secret_access_key: secret??,
        session_token: session_token?,
    })
}

/// `key` inline or `<key>_file`, not both: `None` on a problem (reported),
/// `Some(None)` when neither is given.
fn secret_value(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>, key: &'static str) -> Option<Option<SecretValue>> {
    let file_key: &'static str = match key {
        "secret_access_key" => "secret_access_key_file",
        _ => "session_token_file",
    };
    let inline = t.get(cx, key, as_secret);
    let file = t.get(cx, file_key, as_existing_file);
    match (t.has(key), t.has(file_key)) {
        (true, true) => {
            t.report_key(cx, file_key, format!("give {key} or {file_key}, not both"));
            None
        }
        (true, false) => Some(Some(SecretValue::Inline(inline?))),
        (false, true) => Some(Some(SecretValue::File(file?))),
        (false, false) => Some(None),
    }
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
