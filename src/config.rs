//! The configuration: parsed once at start-up from TOML, every problem
//! reported at once with the file and the key.
//!
//! Types here are what the rest of mediagate consumes; [`load`] and [`parse`]
//! turn a file into them. Strings may use `${VAR}` to read the environment,
//! sizes take human units (`64MiB`), durations too (`5m`), and unknown keys
//! are rejected.

use std::collections::HashMap;
use std::net::SocketAddr;
use std::ops::Range;
use std::path::{Path, PathBuf};
use std::time::Duration;

use toml::de::{DeTable, DeValue};

use crate::locator::Scheme;
use crate::secret::Secret;

/// The whole configuration of one mediagate process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages and `SIGHUP` re-reads).
    pub source: PathBuf,
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub cache: CacheConfig,
    pub auth: AuthConfig,
    pub cors: CorsConfig,
    pub integrations: Vec<IntegrationConfig>,
}

/// `[server]`: the media listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `listen`, default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `public_base_url`, used by `mediagate sign`: `http://` or `https://`,
    /// stored without a trailing `/`.
    pub public_base_url: Option<String>,
    /// `max_connections`, default 4096: past it a new connection closes the
    /// longest-idle one, or gets `503 overloaded` when none is idle.
    pub max_connections: usize,
    /// `max_connections_per_ip`, default 256; 0: no cap. Past it a client's
    /// new connection closes that client's longest-idle one, or gets `503
    /// overloaded`. Behind a CDN or load balancer all clients share its address.
    pub max_connections_per_ip: usize,
    /// `header_read_timeout`, default `10s` (HTTP/1.1).
    pub header_read_timeout: Duration,
    /// `shutdown_grace`, default `30s`: how long SIGTERM waits for in-flight responses.
    pub shutdown_grace: Duration,
    /// `tls_cert` and `tls_key` (PEM files, both or neither): serve HTTPS
    /// with ALPN `h2` and `http/1.1` instead of plain HTTP.
    pub tls: Option<TlsFiles>,
}

/// The certificate chain and private key of the HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `tls_cert`: the PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// `tls_key`: the PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
}

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

/// `[upstream]`: how mediagate talks to storage, for every integration.
#[derive(Debug, Clone)]
pub struct UpstreamConfig {
    /// `connect_timeout`, default `5s` (TCP + TLS).
    pub connect_timeout: Duration,
    /// `first_byte_timeout`, default `30s`: request sent to response head received.
    pub first_byte_timeout: Duration,
    /// `read_timeout`, default `30s`: longest silence between two body chunks.
    pub read_timeout: Duration,
    /// `pool_idle_timeout`, default `90s`.
    pub pool_idle_timeout: Duration,
    /// `pool_max_idle_per_host`, default 64.
    pub pool_max_idle_per_host: usize,
}

/// `[cache]`: the in-memory cache (CONTRACT.md section 4).
#[derive(Debug, Clone)]
pub struct CacheConfig {
    /// `enabled`, default true.
    pub enabled: bool,
    /// `max_bytes`, default `256MiB`: the budget of cached bytes (objects,
    /// slices and their metadata).
    pub max_bytes: u64,
    /// `max_object_bytes`, default `4MiB`: objects up to this size are one
    /// entry; larger ones are cut into `slice_bytes` slices. At most `slice_bytes`
    /// (a cold object's first storage read is one slice, which must hold it whole).
    pub max_object_bytes: u64,
    /// `slice_bytes`, default `4MiB`, from 64KiB to 1GiB: the aligned unit a
    /// large object is fetched and kept in.
    pub slice_bytes: u64,
    /// `ttl`, default `5m`: entries older than this are revalidated upstream.
    pub ttl: Duration,
    /// `stale_if_error`, default `0s` (off): how long past `ttl` an entry may
    /// still be served when revalidation fails.
    pub stale_if_error: Duration,
    /// `negative_ttl`, default `0s` (off): how long a 404 is remembered.
    pub negative_ttl: Duration,
    /// `max_fills`, default 16: storage reads filling the cache at once;
    /// past it, requests stream straight through. Bounds fill memory to
    /// `max_fills × slice_bytes`.
    pub max_fills: usize,
}

/// One `[[integration]]` table.
#[derive(Debug, Clone)]
pub struct IntegrationConfig {
    /// `name`: unique, `[a-z0-9-]+`.
    pub name: String,
    /// `cache_control`: the `Cache-Control` sent with this integration's media,
    /// default `max-age=300`.
    pub cache_control: String,
    pub kind: IntegrationKind,
}

/// `type = "s3" | "azure-blob" | "local"` and the keys of that type.
#[derive(Debug, Clone)]
pub enum IntegrationKind {
    S3(S3Config),
    Azure(AzureConfig),
    Local(LocalConfig),
}

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

/// `type = "azure-blob"`.
#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// `storage_url`, parsed.
    pub storage_url: AzureStorageUrl,
    pub credential: AzureCredential,
    /// `ca_file`: a PEM bundle of extra trusted roots.
    pub ca_file: Option<PathBuf>,
}

/// A parsed Azure `storage_url`: the container URL, which is also the scope.
///
/// With a cloud host (`https://acct.blob.core.windows.net/media`) the account
/// is the host's first label; with an IP, `localhost` or a single-label host
/// such as `azurite` in docker compose (the Azurite emulator,
/// `http://127.0.0.1:10000/devstoreaccount1/media`) it is the first path
/// segment, and `path_style` is true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureStorageUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// The host as written (no port).
    pub host: String,
    pub port: Option<u16>,
    pub account: String,
    /// The container; `None` when the URL names the account only (the
    /// integration then serves every container of that account).
    pub container: Option<String>,
    /// True when the account is the first path segment (emulator form).
    pub path_style: bool,
}

/// How an Azure integration authenticates.
#[derive(Clone, Debug)]
pub enum AzureCredential {
    /// `account_key`: base64 key; mediagate signs with SharedKey.
    AccountKey(Secret),
    /// `sas_token`: the query string of a SAS (a leading `?` is dropped).
    Sas(Secret),
}

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

/// Every problem found in a configuration, each naming file and key.
#[derive(Debug, thiserror::Error)]
#[error("{}", .problems.join("\n"))]
pub struct ConfigErrors {
    pub problems: Vec<String>,
}

/// Reads and validates `path`, with `${VAR}` from the process environment.
pub fn load(path: &Path) -> Result<Config, ConfigErrors> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigErrors {
        problems: vec![format!("{}: cannot read the config file: {e}", path.display())],
    })?;
    parse(&text, path, &|name| std::env::var(name).ok())
}

/// Parses and validates config text; `env` resolves `${VAR}`.
///
/// Every problem is collected, in file order, as
/// `<file>:<line>: <key path>: <what is wrong>`, where array elements are
/// numbered from 0 and an integration also shows its name:
/// `config/mediagate.toml:14: integration[2] ("minio").port: expected ...`.
pub fn parse(text: &str, path: &Path, env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    let file = path.display().to_string();
    let (root, syntax) = DeTable::parse_recoverable(text);
    let mut cx = Ctx { file, text, env, problems: Vec::new() };
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
    let server = server(cx, section);
    let section = root.table(cx, "upstream", empty);
    let upstream = upstream(cx, section);
    let section = root.table(cx, "cache", empty);
    let cache = cache(cx, section);
    let section = root.table(cx, "auth", empty);
    let auth = auth(cx, section);
    let section = root.table(cx, "cors", empty);
    let cors = cors(cx, section);
    let integrations = integrations(cx, &mut root);
    let later = "this section of the contract is not supported yet by this version of mediagate";
    root.unsupported(cx, &["admin"], later);
    root.finish(cx, "");
    Config { source: path.to_path_buf(), server, upstream, cache, auth, cors, integrations }
}

impl Default for ServerConfig {
    fn default() -> Self {
        ServerConfig {
            listen: SocketAddr::from(([127, 0, 0, 1], 8080)),
            public_base_url: None,
            max_connections: 4096,
            max_connections_per_ip: 256,
            header_read_timeout: Duration::from_secs(10),
            shutdown_grace: Duration::from_secs(30),
            tls: None,
        }
    }
}

impl Default for UpstreamConfig {
    fn default() -> Self {
        UpstreamConfig {
            connect_timeout: Duration::from_secs(5),
            first_byte_timeout: Duration::from_secs(30),
            read_timeout: Duration::from_secs(30),
            pool_idle_timeout: Duration::from_secs(90),
            pool_max_idle_per_host: 64,
        }
    }
}

impl Default for CacheConfig {
    fn default() -> Self {
        CacheConfig {
            enabled: true,
            max_bytes: 256 << 20,
            max_object_bytes: 4 << 20,
            slice_bytes: 4 << 20,
            ttl: Duration::from_secs(300),
            stale_if_error: Duration::ZERO,
            negative_ttl: Duration::ZERO,
            max_fills: 16,
        }
    }
}

/// `[cache]`; absent keys take their defaults.
fn cache(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> CacheConfig {
    let d = CacheConfig::default();
    let slice_bytes = t.get(cx, "slice_bytes", |v| as_size_in(v, 64 << 10, 1 << 30)).unwrap_or(d.slice_bytes);
    let config = CacheConfig {
        enabled: t.get(cx, "enabled", as_bool).unwrap_or(d.enabled),
        max_bytes: t.get(cx, "max_bytes", |v| as_size_in(v, 1 << 20, u64::MAX)).unwrap_or(d.max_bytes),
        max_object_bytes: t
            .get(cx, "max_object_bytes", |v| as_size_in(v, 0, slice_bytes))
            .unwrap_or(d.max_object_bytes.min(slice_bytes)),
        slice_bytes,
        ttl: t.get(cx, "ttl", as_duration).unwrap_or(d.ttl),
        stale_if_error: t.get(cx, "stale_if_error", as_duration).unwrap_or(d.stale_if_error),
        negative_ttl: t.get(cx, "negative_ttl", as_duration).unwrap_or(d.negative_ttl),
        max_fills: t.get(cx, "max_fills", |v| as_count(v, 1)).unwrap_or(d.max_fills),
    };
    t.finish(cx, "");
    config
}

/// A size (`"64MiB"`, `"4 KiB"`, an integer of bytes) from `lo` to `hi`.
fn as_size_in(v: Scalar, lo: u64, hi: u64) -> Result<u64, String> {
    let n = match v {
        Scalar::Int(n) if n >= 0 => n as u64,
        Scalar::Str(s) => parse_size(&s)?,
        other => return Err(format!("expected a size such as \"64MiB\" or a number of bytes, got {}", other.shown())),
    };
    if n < lo || n > hi {
        return Err(format!("{n} bytes is outside the allowed {lo} to {hi} bytes"));
    }
    Ok(n)
}

/// `[server]`; absent keys take their defaults.
fn server(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> ServerConfig {
    let d = ServerConfig::default();
    let config = ServerConfig {
        listen: t.get(cx, "listen", as_socket_addr).unwrap_or(d.listen),
        public_base_url: t.get(cx, "public_base_url", as_base_url),
        max_connections: t.get(cx, "max_connections", |v| as_count(v, 1)).unwrap_or(d.max_connections),
        max_connections_per_ip: t
            .get(cx, "max_connections_per_ip", |v| as_count(v, 0))
            .unwrap_or(d.max_connections_per_ip),
        header_read_timeout: t.get(cx, "header_read_timeout", as_timeout).unwrap_or(d.header_read_timeout),
        shutdown_grace: t.get(cx, "shutdown_grace", as_duration).unwrap_or(d.shutdown_grace),
        tls: None,
    };
    let cert = t.get(cx, "tls_cert", as_existing_file);
    let key = t.get(cx, "tls_key", as_existing_file);
    let config = match (t.has("tls_cert"), t.has("tls_key")) {
        (true, false) => {
            t.report_key(cx, "tls_cert", "tls_cert needs tls_key (the certificate's private key, PEM) beside it");
            config
        }
        (false, true) => {
            t.report_key(cx, "tls_key", "tls_key needs tls_cert (the PEM certificate chain) beside it");
            config
        }
        _ => match (cert, key) {
            (Some(cert), Some(key)) => ServerConfig { tls: Some(TlsFiles { cert, key }), ..config },
            _ => config,
        },
    };
    t.finish(cx, "");
    config
}

/// `[auth]`: `mode`, `[[auth.keys]]`, `clock_skew`, `max_ttl`.
fn auth(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> AuthConfig {
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

/// The shortest URL-signing secret accepted, in bytes.
const MIN_URL_SECRET: usize = 16;

/// Every `[[auth.keys]]`: ids unique, secrets long enough.
fn url_keys(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Vec<crate::auth::UrlKey> {
    let Some(value) = t.entry("keys") else { return Vec::new() };
    let path = t.key_path("keys");
    let DeValue::Array(items) = value.get_ref() else {
        cx.report(Some(value.span()), &path, "expected [[auth.keys]] tables (note the double brackets)");
        return Vec::new();
    };
    let mut keys: Vec<crate::auth::UrlKey> = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let item_path = format!("{path}[{i}]");
        let DeValue::Table(map) = item.get_ref() else {
            cx.report(Some(item.span()), &item_path, "expected a table, as written by [[auth.keys]]");
            continue;
        };
        let mut k = Section::new(map, item_path, item.span());
        let id = k.required(cx, "id", as_key_id);
        let secret = k.required(cx, "secret", |v| {
            let s = as_secret(v)?;
            if s.expose().len() < MIN_URL_SECRET {
                return Err(format!(
                    "is shorter than {MIN_URL_SECRET} bytes: use a long random string, e.g. from `openssl rand -base64 32`"
                ));
            }
            Ok(s)
        });
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
        cx.report(Some(value.span()), &path, "is empty: add at least one [[auth.keys]] table");
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
fn cors(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> CorsConfig {
    let d = CorsConfig::default();
    let present = !t.map.is_empty();
    let allowed_origins = if present {
        if !t.has("allowed_origins") {
            cx.report(
                Some(t.span.clone()),
                &t.path,
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

/// `[upstream]`; absent keys take their defaults.
fn upstream(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> UpstreamConfig {
    let d = UpstreamConfig::default();
    let config = UpstreamConfig {
        connect_timeout: t.get(cx, "connect_timeout", as_timeout).unwrap_or(d.connect_timeout),
        first_byte_timeout: t.get(cx, "first_byte_timeout", as_timeout).unwrap_or(d.first_byte_timeout),
        read_timeout: t.get(cx, "read_timeout", as_timeout).unwrap_or(d.read_timeout),
        pool_idle_timeout: t.get(cx, "pool_idle_timeout", as_duration).unwrap_or(d.pool_idle_timeout),
        pool_max_idle_per_host: t
            .get(cx, "pool_max_idle_per_host", |v| as_count(v, 0))
            .unwrap_or(d.pool_max_idle_per_host),
    };
    t.finish(cx, "");
    config
}

// ---------------------------------------------------------------------------
// Integrations

/// The default `cache_control` of an integration.
const DEFAULT_CACHE_CONTROL: &str = "max-age=300";

/// An integration as read, with what messages need to point at it.
struct Read {
    label: String,
    span: Range<usize>,
    config: IntegrationConfig,
}

/// Every `[[integration]]`, then the rules across them (names, scopes).
fn integrations(cx: &mut Ctx<'_>, root: &mut Section<'_, '_>) -> Vec<IntegrationConfig> {
    let Some(value) = root.entry("integration") else { return Vec::new() };
    let DeValue::Array(items) = value.get_ref() else {
        let msg = "expected [[integration]] tables (an array of tables: note the double brackets)";
        cx.report(Some(value.span()), "integration", msg);
        return Vec::new();
    };
    let mut read = Vec::new();
    for (i, item) in items.iter().enumerate() {
        let path = format!("integration[{i}]");
        let DeValue::Table(map) = item.get_ref() else {
            cx.report(Some(item.span()), &path, "expected a table, as written by [[integration]]");
            continue;
        };
        read.extend(integration(cx, Section::new(map, path, item.span())));
    }
    check_unique_names(cx, &read);
    check_scopes(cx, &read);
    read.into_iter().map(|r| r.config).collect()
}

/// One `[[integration]]`: the common keys, then those of its `type`.
fn integration(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> Option<Read> {
    let (label, span) = (t.path.clone(), t.span.clone());
    let name = t.required(cx, "name", as_name);
    if let Some(name) = &name {
        t.path = format!("{label} ({name:?})");
    }
    let kind_name = t.required(cx, "type", as_integration_type);
    let cache_control = t.get(cx, "cache_control", as_header_value);
    let kind = match kind_name {
        Some("s3") => s3(cx, &mut t).map(IntegrationKind::S3),
        Some("azure-blob") => azure(cx, &mut t).map(IntegrationKind::Azure),
        Some("local") => local(cx, &mut t).map(IntegrationKind::Local),
        _ => return None, // without a type, other keys cannot be judged
    };
    t.finish(cx, &format!(" for type {:?}", kind_name.unwrap_or_default()));
    let config = IntegrationConfig {
        cache_control: cache_control.unwrap_or_else(|| DEFAULT_CACHE_CONTROL.to_string()),
        name: name?,
        kind: kind?,
    };
    Some(Read { label: t.path, span, config })
}

/// The keys of `type = "s3"`, with the defaults that depend on each other.
fn s3(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Option<S3Config> {
    let endpoint = t.get(cx, "endpoint", as_endpoint);
    let port = t.get(cx, "port", as_port);
    let tls = t.get(cx, "tls", as_bool).unwrap_or(true);
    let locator_scheme = t.get(cx, "locator_scheme", as_locator_scheme).unwrap_or(Scheme::S3);
    let gs = locator_scheme == Scheme::Gs;
    let region = t.get(cx, "region", as_region).unwrap_or_else(|| if gs { "auto" } else { "us-east-1" }.to_string());
    let credentials = s3_credentials(cx, t);
    let buckets = t.list(cx, "buckets", check_bucket).unwrap_or_default();
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
    Some(S3Config {
        endpoint,
        custom_endpoint,
        port,
        tls,
        region,
        credentials: credentials?,
        buckets,
        addressing: addressing.unwrap_or(default_addressing),
        locator_scheme,
        ca_file,
    })
}

const S3_STATIC_KEYS: [&str; 3] = ["access_key_id", "secret_access_key", "session_token"];

/// Static keys, or `credentials = "env"`, never both.
fn s3_credentials(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Option<S3Credentials> {
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
    if !missing.is_empty() {
        let msg = format!("missing {}: give static keys, or set credentials = \"env\"", missing.join(" and "));
        cx.report(Some(t.span.clone()), &t.path, msg);
        return None;
    }
    Some(S3Credentials::Static {
        access_key_id: access_key_id?,
        secret_access_key: secret_access_key?,
        session_token: if t.has("session_token") { Some(session_token?) } else { None },
    })
}

/// The keys of `type = "azure-blob"`: exactly one of `account_key` / `sas_token`.
fn azure(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Option<AzureConfig> {
    let storage_url = t.required(cx, "storage_url", as_azure_storage_url);
    let account_key = t.get(cx, "account_key", as_account_key);
    let sas_token = t.get(cx, "sas_token", as_sas_token);
    let ca_file = t.get(cx, "ca_file", as_existing_file);
    let later = "is not supported yet: use account_key or sas_token";
    let principal = format!("service principal credentials (tenant_id + client_id + client_secret) {later}");
    t.unsupported(cx, &["tenant_id", "client_id", "client_secret", "authority_host"], &principal);
    t.unsupported(cx, &["credential"], &format!("credential (workload or managed identity) {later}"));
    let credential = match (t.has("account_key"), t.has("sas_token")) {
        (true, true) => {
            t.report_key(cx, "sas_token", "give account_key or sas_token, not both");
            None
        }
        (true, false) => account_key.map(AzureCredential::AccountKey),
        (false, true) => sas_token.map(AzureCredential::Sas),
        (false, false) => {
            cx.report(Some(t.span.clone()), &t.path, "missing credentials: give account_key or sas_token");
            None
        }
    };
    Some(AzureConfig { storage_url: storage_url?, credential: credential?, ca_file })
}

/// The keys of `type = "local"`.
fn local(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Option<LocalConfig> {
    let root = t.required(cx, "root", as_nonempty);
    let buckets = t.list(cx, "buckets", check_bucket).unwrap_or_default();
    Some(LocalConfig { root: PathBuf::from(root?), buckets })
}

// ---------------------------------------------------------------------------
// Rules across integrations

/// Two integrations with one name: the second one names the first.
fn check_unique_names(cx: &mut Ctx<'_>, read: &[Read]) {
    let mut seen: HashMap<&str, &Read> = HashMap::new();
    for r in read {
        if let Some(first) = seen.insert(&r.config.name, r) {
            let msg = format!("name {:?} is already used by {}", r.config.name, first.label);
            cx.report(Some(r.span.clone()), &r.label, msg);
            seen.insert(&first.config.name, first);
        }
    }
}

/// What an integration claims: a scheme, the Azure account, and a bucket or
/// container (`None`: every bucket of the scheme, or of the Azure account).
#[derive(Debug, PartialEq, Eq, Hash)]
struct Scope {
    scheme: Scheme,
    account: Option<String>,
    bucket: Option<String>,
}

/// The scopes an integration claims: one per bucket, or its default.
fn scopes(kind: &IntegrationKind) -> Vec<Scope> {
    let buckets = |scheme: Scheme, buckets: &[String]| -> Vec<Scope> {
        if buckets.is_empty() {
            return vec![Scope { scheme, account: None, bucket: None }];
        }
        buckets.iter().map(|b| Scope { scheme, account: None, bucket: Some(b.clone()) }).collect()
    };
    match kind {
        IntegrationKind::S3(s3) => buckets(s3.locator_scheme, &s3.buckets),
        IntegrationKind::Local(local) => buckets(Scheme::Local, &local.buckets),
        IntegrationKind::Azure(az) => vec![Scope {
            scheme: Scheme::Az,
            account: Some(az.storage_url.account.clone()),
            bucket: az.storage_url.container.clone(),
        }],
    }
}

/// Two integrations claiming one scope: the error names both.
fn check_scopes(cx: &mut Ctx<'_>, read: &[Read]) {
    let mut owner: HashMap<Scope, &Read> = HashMap::new();
    for r in read {
        for scope in scopes(&r.config.kind) {
            if let Some(first) = owner.get(&scope) {
                cx.report(Some(r.span.clone()), &r.label, overlap_message(&scope, first, r));
            } else {
                owner.insert(scope, r);
            }
        }
    }
}

/// What to say when `second` claims a scope `first` already holds.
fn overlap_message(scope: &Scope, first: &Read, second: &Read) -> String {
    let both = format!("{} and {}", first.label, second.label);
    match (scope.scheme, &scope.account, &scope.bucket) {
        (Scheme::Az, Some(account), Some(container)) => {
            format!("{both} both serve Azure account {account:?}, container {container:?}")
        }
        (Scheme::Az, Some(account), None) => {
            format!("{both} both serve the whole Azure account {account:?}; name a container in storage_url")
        }
        (scheme, _, Some(bucket)) => format!("{both} both scope bucket {bucket:?} of {scheme}:// locators"),
        (scheme, _, None) => format!(
            "{both} are both the default for {scheme}:// locators (neither lists buckets); give one of them `buckets`"
        ),
    }
}

// ---------------------------------------------------------------------------
// Walking tables and reporting

/// The problems found so far, and what reporting them needs.
struct Ctx<'a> {
    file: String,
    text: &'a str,
    env: &'a dyn Fn(&str) -> Option<String>,
    /// (line, message); line 0 when unknown.
    problems: Vec<(usize, String)>,
}

impl Ctx<'_> {
    fn report(&mut self, span: Option<Range<usize>>, path: &str, msg: impl std::fmt::Display) {
        let line = span.map_or(0, |s| self.line(s.start));
        let at = if line == 0 { self.file.clone() } else { format!("{}:{line}", self.file) };
        self.problems.push((line, format!("{at}: {path}: {msg}")));
    }

    /// The 1-based line of a byte offset.
    fn line(&self, offset: usize) -> usize {
        let before = &self.text.as_bytes()[..offset.min(self.text.len())];
        before.iter().filter(|&&b| b == b'\n').count() + 1
    }

    /// TOML syntax errors, with line and column; only the first of each
    /// line, as the others usually follow from it.
    fn syntax_errors(&self, errors: &[toml::de::Error]) -> ConfigErrors {
        let mut lines = Vec::new();
        let mut problems = Vec::new();
        for e in errors {
            let line = e.span().map(|s| self.line(s.start));
            if line.is_none() || !lines.contains(&line) {
                lines.push(line);
                problems.push(format!("{}: {}", self.file, e.to_string().trim_end()));
            }
        }
        ConfigErrors { problems }
    }

    fn into_result(mut self, config: Config) -> Result<Config, ConfigErrors> {
        if self.problems.is_empty() {
            return Ok(config);
        }
        self.problems.sort_by_key(|(line, _)| *line);
        Err(ConfigErrors { problems: self.problems.into_iter().map(|(_, p)| p).collect() })
    }
}

/// A value as read, `${VAR}` already expanded in strings.
enum Scalar {
    Str(String),
    Int(i64),
    Bool(bool),
    /// Any other TOML value, described (`an array`, `the float 1.5`).
    Other(String),
}

impl Scalar {
    /// The value as a message shows it.
    fn shown(&self) -> String {
        match self {
            Scalar::Str(s) => format!("{s:?}"),
            Scalar::Int(n) => n.to_string(),
            Scalar::Bool(b) => b.to_string(),
            Scalar::Other(what) => what.clone(),
        }
    }

    /// What kind of value it is, without the value (for secrets).
    fn kind(&self) -> &str {
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
struct Section<'t, 'i> {
    map: &'t DeTable<'i>,
    /// The key path of the table (`server`, `integration[2] ("minio")`).
    path: String,
    span: Range<usize>,
    read: Vec<&'static str>,
}

type Entry<'t, 'i> = &'t toml::Spanned<DeValue<'i>>;

impl<'t, 'i> Section<'t, 'i> {
    fn new(map: &'t DeTable<'i>, path: String, span: Range<usize>) -> Self {
        Section { map, path, span, read: Vec::new() }
    }

    fn key_path(&self, key: &str) -> String {
        if self.path.is_empty() { key.to_string() } else { format!("{}.{key}", self.path) }
    }

    fn has(&self, key: &str) -> bool {
        self.map.contains_key(key)
    }

    fn entry(&mut self, key: &'static str) -> Option<Entry<'t, 'i>> {
        self.read.push(key);
        self.map.get(key)
    }

    fn report_key(&self, cx: &mut Ctx<'_>, key: &str, msg: impl std::fmt::Display) {
        let span = self.map.get(key).map(|v| v.span());
        cx.report(span, &self.key_path(key), msg);
    }

    /// The sub-table `key`, or `empty` when it is absent.
    fn table(&mut self, cx: &mut Ctx<'_>, key: &'static str, empty: &'t DeTable<'i>) -> Section<'t, 'i> {
        let path = self.key_path(key);
        match self.entry(key) {
            None => Section::new(empty, path, self.span.clone()),
            Some(v) => match v.get_ref() {
                DeValue::Table(map) => Section::new(map, path, v.span()),
                _ => {
                    cx.report(Some(v.span()), &path, format!("expected a table, written [{key}]"));
                    Section::new(empty, path, v.span())
                }
            },
        }
    }

    /// Reads `key` as a scalar; a bad `${VAR}` is reported here.
    fn scalar(&mut self, cx: &mut Ctx<'_>, key: &'static str) -> Option<Scalar> {
        let value = self.entry(key)?;
        let scalar = match value.get_ref() {
            DeValue::String(s) => match expand(s, cx.env) {
                Ok(s) => Scalar::Str(s),
                Err(msg) => {
                    cx.report(Some(value.span()), &self.key_path(key), msg);
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
    fn get<T>(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        convert: impl FnOnce(Scalar) -> Result<T, String>,
    ) -> Option<T> {
        let scalar = self.scalar(cx, key)?;
        convert(scalar).map_err(|msg| self.report_key(cx, key, msg)).ok()
    }

    /// As [`Section::get`], and reports the key missing when absent.
    fn required<T>(
        &mut self,
        cx: &mut Ctx<'_>,
        key: &'static str,
        convert: impl FnOnce(Scalar) -> Result<T, String>,
    ) -> Option<T> {
        if !self.has(key) {
            cx.report(Some(self.span.clone()), &self.path, format!("missing required key `{key}`"));
        }
        self.get(cx, key, convert)
    }

    /// Reads an array of strings, each `${VAR}`-expanded and checked.
    fn list(
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
                Err(msg) => cx.report(Some(item.span()), &format!("{}[{i}]", self.key_path(key)), msg),
            }
        }
        Some(out)
    }

    /// Reports each of `keys` that is present as not supported yet.
    fn unsupported(&mut self, cx: &mut Ctx<'_>, keys: &[&'static str], why: &str) {
        for &key in keys {
            if self.entry(key).is_some() {
                self.report_key(cx, key, why);
            }
        }
    }

    /// Rejects every key that was not read; `context` ends the message.
    fn finish(&self, cx: &mut Ctx<'_>, context: &str) {
        for (key, value) in self.map.iter() {
            let key_str: &str = key.get_ref();
            if self.read.contains(&key_str) {
                continue;
            }
            let what = if value.get_ref().is_table() { "unknown section" } else { "unknown key" };
            let known = if self.path.is_empty() { "known sections" } else { "known keys" };
            let msg = format!("{what}{context}; {}", suggestion(key_str, &self.read, known));
            cx.report(Some(key.span()), &self.key_path(key_str), msg);
        }
    }
}

/// "did you mean `x`?" when a known key is close, else the list of known keys.
fn suggestion(unknown: &str, known: &[&str], noun: &str) -> String {
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
fn edit_distance(a: &str, b: &str) -> usize {
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

/// Expands `${VAR}` from `env`; `$${` is a literal `${`, and any other `$`
/// is kept as is.
fn expand(text: &str, env: &dyn Fn(&str) -> Option<String>) -> Result<String, String> {
    let mut out = String::with_capacity(text.len());
    let mut missing = Vec::new();
    let mut rest = text;
    while let Some(at) = rest.find('$') {
        out.push_str(&rest[..at]);
        rest = &rest[at..];
        if let Some(after) = rest.strip_prefix("$${") {
            out.push_str("${");
            rest = after;
        } else if let Some(after) = rest.strip_prefix("${") {
            let Some(end) = after.find('}') else {
                return Err("unterminated ${ (write $${ for a literal ${)".to_string());
            };
            let name = &after[..end];
            if !is_env_name(name) {
                return Err(format!(
                    "${{{name}}} is not a valid environment variable name (write $${{ for a literal ${{)"
                ));
            }
            match env(name) {
                Some(value) => out.push_str(&value),
                None => missing.push(name),
            }
            rest = &after[end + 1..];
        } else {
            out.push('$');
            rest = &rest[1..];
        }
    }
    out.push_str(rest);
    match missing.as_slice() {
        [] => Ok(out),
        [one] => Err(format!("environment variable {one} is not set")),
        many => Err(format!("environment variables {} are not set", many.join(", "))),
    }
}

fn is_env_name(name: &str) -> bool {
    let mut chars = name.chars();
    chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && chars.all(|c| c.is_ascii_alphanumeric() || c == '_')
}

// ---------------------------------------------------------------------------
// Values

fn as_string(v: Scalar) -> Result<String, String> {
    match v {
        Scalar::Str(s) => Ok(s),
        other => Err(format!("expected a string, got {}", other.shown())),
    }
}

fn as_nonempty(v: Scalar) -> Result<String, String> {
    let s = as_string(v)?;
    if s.trim().is_empty() { Err("must not be empty".to_string()) } else { Ok(s) }
}

/// A secret: never shown in a message, never empty.
fn as_secret(v: Scalar) -> Result<Secret, String> {
    match v {
        Scalar::Str(s) if s.is_empty() => {
            Err("is empty (if it reads ${VAR}, that variable is set but empty)".to_string())
        }
        Scalar::Str(s) => Ok(Secret::new(s)),
        other => Err(format!("expected a string, got {}", other.kind())),
    }
}

fn as_bool(v: Scalar) -> Result<bool, String> {
    match v {
        Scalar::Bool(b) => Ok(b),
        Scalar::Str(s) if s == "true" || s == "false" => Ok(s == "true"),
        other => Err(format!("expected true or false, got {}", other.shown())),
    }
}

/// An integer from `lo` to `hi`; a string holding one is accepted (`${VAR}`).
fn as_int(v: Scalar, lo: i64, hi: i64) -> Result<i64, String> {
    let n = match &v {
        Scalar::Int(n) => Some(*n),
        Scalar::Str(s) => s.trim().parse().ok(),
        _ => None,
    };
    match n {
        Some(n) if (lo..=hi).contains(&n) => Ok(n),
        _ if hi == i64::MAX => Err(format!("expected an integer of at least {lo}, got {}", v.shown())),
        _ => Err(format!("expected an integer from {lo} to {hi}, got {}", v.shown())),
    }
}

fn as_count(v: Scalar, min: i64) -> Result<usize, String> {
    as_int(v, min, i64::MAX).and_then(|n| usize::try_from(n).map_err(|_| format!("{n} is too large")))
}

fn as_port(v: Scalar) -> Result<u16, String> {
    as_int(v, 1, 65535).map(|n| n as u16)
}

/// A duration: `"500ms"`, `"10s"`, `"1m30s"`, or an integer of seconds.
fn as_duration(v: Scalar) -> Result<Duration, String> {
    match v {
        Scalar::Int(n) if n >= 0 => Ok(Duration::from_secs(n as u64)),
        Scalar::Str(s) => parse_duration(&s),
        other => Err(format!("expected a duration such as \"500ms\", \"10s\" or \"5m\", got {}", other.shown())),
    }
}

/// A duration greater than zero.
fn as_timeout(v: Scalar) -> Result<Duration, String> {
    let d = as_duration(v)?;
    if d.is_zero() { Err("must be more than zero".to_string()) } else { Ok(d) }
}

fn as_socket_addr(v: Scalar) -> Result<SocketAddr, String> {
    let s = as_string(v)?;
    s.trim()
        .parse()
        .map_err(|_| format!("expected an IP address and port such as \"127.0.0.1:8080\" or \"[::]:8080\", got {s:?}"))
}

fn as_base_url(v: Scalar) -> Result<String, String> {
    let s = as_string(v)?;
    let rest = s.strip_prefix("https://").or_else(|| s.strip_prefix("http://"));
    match rest {
        Some(rest) if !rest.is_empty() && !rest.starts_with('/') => Ok(s.trim_end_matches('/').to_string()),
        _ => Err(format!(
            "expected a URL starting with http:// or https://, such as \"https://media.example.com\", got {s:?}"
        )),
    }
}

fn as_name(v: Scalar) -> Result<String, String> {
    let s = as_string(v)?;
    let ok = !s.is_empty() && s.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    if ok { Ok(s) } else { Err(format!("expected lower-case letters, digits and '-' ([a-z0-9-]+), got {s:?}")) }
}

fn as_integration_type(v: Scalar) -> Result<&'static str, String> {
    let s = as_string(v)?;
    ["s3", "azure-blob", "local"]
        .into_iter()
        .find(|t| *t == s)
        .ok_or_else(|| format!("expected \"s3\", \"azure-blob\" or \"local\", got {s:?}"))
}

fn as_header_value(v: Scalar) -> Result<String, String> {
    let s = as_string(v)?;
    match http::HeaderValue::from_str(&s) {
        Ok(_) if !s.trim().is_empty() => Ok(s),
        _ => Err(format!("expected a valid header value such as \"public, max-age=300\", got {s:?}")),
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

/// A path to a file that exists (relative to the working directory).
fn as_existing_file(v: Scalar) -> Result<PathBuf, String> {
    let path = PathBuf::from(as_nonempty(v)?);
    match std::fs::metadata(&path) {
        Ok(meta) if meta.is_file() => Ok(path),
        Ok(_) => Err(format!("{} is not a file", path.display())),
        Err(e) => Err(format!("cannot read {}: {e}", path.display())),
    }
}

fn as_account_key(v: Scalar) -> Result<Secret, String> {
    use base64::Engine as _;
    let key = as_secret(v)?;
    match base64::engine::general_purpose::STANDARD.decode(key.expose().trim()) {
        Ok(bytes) if !bytes.is_empty() => Ok(Secret::new(key.expose().trim())),
        _ => Err("is not valid base64 (copy the key as the Azure portal shows it)".to_string()),
    }
}

fn as_sas_token(v: Scalar) -> Result<Secret, String> {
    let token = as_secret(v)?;
    let token = token.expose().trim().trim_start_matches('?');
    if token.is_empty() {
        return Err("is empty".to_string());
    }
    if !token.split('&').any(|pair| pair.starts_with("sig=")) {
        return Err("has no sig= parameter: expected the query string of a SAS, like \"sv=...&sig=...\"".to_string());
    }
    Ok(Secret::new(token))
}

/// A bucket (or local sub-directory) name: `[a-zA-Z0-9._-]+`, not `.` or `..`.
fn check_bucket(name: &str) -> Result<(), String> {
    let chars_ok = name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    if name.is_empty() || !chars_ok || name == "." || name == ".." {
        return Err(format!("expected a bucket name of letters, digits, '.', '_' and '-', got {name:?}"));
    }
    Ok(())
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

/// Splits `host:port` (the port as written); `[v6]:port` keeps its brackets.
fn split_port(authority: &str) -> (&str, Option<&str>) {
    match authority.rsplit_once(':') {
        Some((host, port)) if !port.is_empty() && port.bytes().all(|b| b.is_ascii_digit()) && !host.ends_with(':') => {
            (host, Some(port))
        }
        _ => (authority, None),
    }
}

/// Letters, digits, '-' and '.', in non-empty labels (IPv4 fits too).
fn is_host_name(host: &str) -> bool {
    !host.is_empty()
        && host
            .split('.')
            .all(|label| !label.is_empty() && label.bytes().all(|b| b.is_ascii_alphanumeric() || b == b'-'))
}

fn as_azure_storage_url(v: Scalar) -> Result<AzureStorageUrl, String> {
    parse_azure_storage_url(&as_nonempty(v)?)
}

/// Parses an Azure `storage_url` (see [`AzureStorageUrl`]).
pub fn parse_azure_storage_url(url: &str) -> Result<AzureStorageUrl, String> {
    let (scheme, host, port, path) = split_azure_url(url)?;
    let path_style = is_emulator_host(host);
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let account = match path_style {
        false => host.split('.').next().unwrap_or_default(),
        true if segments.is_empty() => {
            return Err(format!(
                "with host {host:?} the account is the first path segment, as in \
                 \"http://127.0.0.1:10000/devstoreaccount1/media\"; it is missing"
            ));
        }
        true => segments.remove(0),
    };
    check_azure_account(account)?;
    let container = match segments.as_slice() {
        [] => None,
        [container] => Some(check_azure_container(container)?),
        [container, ..] => {
            return Err(format!("names a blob or folder, not a container: stop the URL at /{container}"));
        }
    };
    let (scheme, host, account) = (scheme.to_string(), host.to_string(), account.to_string());
    Ok(AzureStorageUrl { scheme, host, port, account, container, path_style })
}

/// Splits `http[s]://host[:port]/path`, refusing a query, a fragment or user info.
fn split_azure_url(url: &str) -> Result<(&str, &str, Option<u16>, &str), String> {
    let bad = || {
        format!(
            "expected a container URL such as \"https://acct.blob.core.windows.net/media\" \
             or \"http://127.0.0.1:10000/devstoreaccount1/media\", got {url:?}"
        )
    };
    let (scheme, rest) = url.split_once("://").filter(|(s, _)| *s == "http" || *s == "https").ok_or_else(bad)?;
    if rest.contains('?') {
        return Err("must not carry a query string: put the SAS (sv=...&sig=...) in `sas_token`".to_string());
    }
    if rest.contains('#') || rest.contains('@') {
        return Err(bad());
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = split_port(authority);
    let port = port.map(|p| p.parse::<u16>().map_err(|_| format!("port {p} is out of range"))).transpose()?;
    let ipv6 = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok());
    if !(is_host_name(host) || ipv6) {
        return Err(bad());
    }
    Ok((scheme, host, port, path))
}

/// An IP address, `localhost`, or a single-label host such as `azurite` in
/// docker compose: the account is then in the path.
fn is_emulator_host(host: &str) -> bool {
    host == "localhost" || host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() || !host.contains('.')
}

fn check_azure_account(account: &str) -> Result<(), String> {
    let ok = (3..=24).contains(&account.len()) && account.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit());
    if ok {
        Ok(())
    } else {
        Err(format!("{account:?} is not a storage account name (3 to 24 lower-case letters and digits)"))
    }
}

fn check_azure_container(container: &str) -> Result<String, String> {
    let special = container == "$root" || container == "$web";
    let chars_ok = container.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok = (3..=63).contains(&container.len()) && chars_ok && !container.starts_with('-');
    if ok || special {
        Ok(container.to_string())
    } else {
        Err(format!("{container:?} is not a container name (3 to 63 lower-case letters, digits and '-')"))
    }
}

// ---------------------------------------------------------------------------
// Human units

/// Parses a duration: `"500ms"`, `"10s"`, `"5m"`, `"1h"`, `"1d"`, or a sum
/// such as `"1m30s"` / `"1h 30m"`; a bare number is seconds.
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let bad = || format!("expected a duration such as \"500ms\", \"10s\", \"5m\", \"1h\" or \"1d\", got {text:?}");
    let mut rest = text.trim();
    if rest.is_empty() {
        return Err(bad());
    }
    if rest.bytes().all(|b| b.is_ascii_digit()) {
        return rest.parse().map(Duration::from_secs).map_err(|_| bad());
    }
    let mut total = Duration::ZERO;
    while !rest.is_empty() {
        let digits = rest.find(|c: char| !c.is_ascii_digit()).unwrap_or(rest.len());
        let n: u64 = rest[..digits].parse().map_err(|_| bad())?;
        rest = rest[digits..].trim_start();
        let letters = rest.find(|c: char| !c.is_ascii_alphabetic()).unwrap_or(rest.len());
        let millis_per_unit: u64 = match &rest[..letters] {
            "ms" => 1,
            "s" => 1_000,
            "m" => 60_000,
            "h" => 3_600_000,
            "d" => 86_400_000,
            _ => return Err(bad()),
        };
        let millis = n.checked_mul(millis_per_unit).ok_or_else(bad)?;
        total = total.checked_add(Duration::from_millis(millis)).ok_or_else(bad)?;
        rest = rest[letters..].trim_start();
    }
    Ok(total)
}

/// Parses a size in bytes: `"64MiB"`, `"4 KiB"`, `"1GB"`, `"1.5GiB"`, `"512"`
/// (units are case-insensitive; KB/MB/GB/TB are powers of 1000, KiB/MiB/GiB/TiB
/// of 1024; a fraction is rounded down to whole bytes).
pub fn parse_size(text: &str) -> Result<u64, String> {
    let bad = || format!("expected a size such as \"512KiB\", \"64MiB\" or \"1GB\", got {text:?}");
    let s = text.trim();
    let number_len = s.find(|c: char| !(c.is_ascii_digit() || c == '.')).unwrap_or(s.len());
    let (number, unit) = (&s[..number_len], s[number_len..].trim_start());
    let multiplier: u128 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "kb" => 1_000,
        "mb" => 1_000_000,
        "gb" => 1_000_000_000,
        "tb" => 1_000_000_000_000,
        "kib" => 1 << 10,
        "mib" => 1 << 20,
        "gib" => 1 << 30,
        "tib" => 1 << 40,
        _ => return Err(bad()),
    };
    let (whole, fraction) = number.split_once('.').unwrap_or((number, ""));
    let digits_ok = |d: &str| d.len() <= 18 && d.bytes().all(|b| b.is_ascii_digit());
    if whole.is_empty() || !digits_ok(whole) || !digits_ok(fraction) || (number.ends_with('.')) {
        return Err(bad());
    }
    let whole: u128 = whole.parse().map_err(|_| bad())?;
    let fraction_value: u128 = if fraction.is_empty() { 0 } else { fraction.parse().map_err(|_| bad())? };
    let scale = 10u128.pow(fraction.len() as u32);
    let bytes = whole * multiplier + fraction_value * multiplier / scale;
    u64::try_from(bytes).map_err(|_| bad())
}

#[cfg(test)]
mod tests {
    use super::*;

    const FILE: &str = "test.toml";

    fn parse_env(text: &str, vars: &[(&str, &str)]) -> Result<Config, Vec<String>> {
        let env = |name: &str| vars.iter().find(|(k, _)| *k == name).map(|(_, v)| v.to_string());
        parse(text, Path::new(FILE), &env).map_err(|e| e.problems)
    }

    fn ok(text: &str) -> Config {
        parse_env(text, &[]).unwrap_or_else(|p| panic!("expected no problems, got:\n{}", p.join("\n")))
    }

    fn problems(text: &str) -> Vec<String> {
        problems_env(text, &[])
    }

    fn problems_env(text: &str, vars: &[(&str, &str)]) -> Vec<String> {
        match parse_env(text, vars) {
            Ok(_) => panic!("expected problems, the config was accepted:\n{text}"),
            Err(problems) => problems,
        }
    }

    /// Asserts that exactly one problem was found and that it contains every fragment.
    fn assert_one_problem(text: &str, fragments: &[&str]) {
        let problems = problems(text);
        assert_eq!(problems.len(), 1, "expected one problem, got:\n{}", problems.join("\n"));
        for fragment in fragments {
            assert!(problems[0].contains(fragment), "{fragment:?} not in {:?}", problems[0]);
        }
    }

    const S3_KEYS: &str = "access_key_id = \"id\"\nsecret_access_key = \"secret\"\n";

    fn s3_toml(extra: &str) -> String {
        format!("[[integration]]\nname = \"s\"\ntype = \"s3\"\n{S3_KEYS}{extra}\n")
    }

    fn s3_config(config: &Config) -> &S3Config {
        match &config.integrations[0].kind {
            IntegrationKind::S3(s3) => s3,
            other => panic!("expected s3, got {other:?}"),
        }
    }

    fn azure_toml(extra: &str) -> String {
        format!("[[integration]]\nname = \"a\"\ntype = \"azure-blob\"\n{extra}\n")
    }

    fn azure_config(config: &Config) -> &AzureConfig {
        match &config.integrations[0].kind {
            IntegrationKind::Azure(az) => az,
            other => panic!("expected azure-blob, got {other:?}"),
        }
    }

    const SAS: &str = "sas_token = \"sv=2022-11-02&sig=abc\"";

    #[test]
    fn durations_take_human_units() {
        let ms = Duration::from_millis;
        let cases = [
            ("500ms", ms(500)),
            ("10s", ms(10_000)),
            ("5m", ms(300_000)),
            ("1h", ms(3_600_000)),
            ("1d", ms(86_400_000)),
            ("1m30s", ms(90_000)),
            ("1h 30m", ms(5_400_000)),
            ("2 s", ms(2_000)),
            ("0s", ms(0)),
            ("45", ms(45_000)),
            (" 10s ", ms(10_000)),
        ];
        for (text, want) in cases {
            assert_eq!(parse_duration(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn bad_durations_are_rejected() {
        for text in ["", "s", "10", "10x", "1.5s", "-1s", "10 minutes", "5m3", "99999999999999999999d"] {
            if text == "10" {
                continue; // a bare number is seconds
            }
            let err = parse_duration(text).expect_err(text);
            assert!(err.contains("expected a duration"), "{err}");
        }
    }

    #[test]
    fn sizes_take_human_units() {
        let cases = [
            ("512", 512),
            ("0", 0),
            ("1B", 1),
            ("4 KiB", 4096),
            ("64MiB", 64 << 20),
            ("64mib", 64 << 20),
            ("1GB", 1_000_000_000),
            ("2GiB", 2 << 30),
            ("1TiB", 1 << 40),
            ("3kb", 3000),
            ("1.5GiB", 3 << 29),
            ("0.5KiB", 512),
        ];
        for (text, want) in cases {
            assert_eq!(parse_size(text), Ok(want), "{text:?}");
        }
    }

    #[test]
    fn bad_sizes_are_rejected() {
        for text in ["", "MiB", "64M", "64 mebibytes", "-1", "1.MiB", ".5MiB", "1e3", "99999999999TiB"] {
            let err = parse_size(text).expect_err(text);
            assert!(err.contains("expected a size"), "{err}");
        }
    }

    #[test]
    fn an_empty_file_gives_the_defaults() {
        let config = ok("");
        assert_eq!(config.source, Path::new(FILE));
        assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
        assert_eq!(config.server.public_base_url, None);
        assert_eq!(config.server.max_connections, 4096);
        assert_eq!(config.server.header_read_timeout, Duration::from_secs(10));
        assert_eq!(config.server.shutdown_grace, Duration::from_secs(30));
        assert_eq!(config.upstream.connect_timeout, Duration::from_secs(5));
        assert_eq!(config.upstream.first_byte_timeout, Duration::from_secs(30));
        assert_eq!(config.upstream.read_timeout, Duration::from_secs(30));
        assert_eq!(config.upstream.pool_idle_timeout, Duration::from_secs(90));
        assert_eq!(config.upstream.pool_max_idle_per_host, 64);
        assert!(config.integrations.is_empty());
    }

    #[test]
    fn server_and_upstream_keys_are_read() {
        let config = ok(r#"
            [server]
            listen = "0.0.0.0:0"
            public_base_url = "https://media.example.com/"
            max_connections = 10
            header_read_timeout = "2s"
            shutdown_grace = 0
            [upstream]
            connect_timeout = "1s"
            first_byte_timeout = "2s"
            read_timeout = "3s"
            pool_idle_timeout = "1m"
            pool_max_idle_per_host = 0
        "#);
        assert_eq!(config.server.listen, "0.0.0.0:0".parse().unwrap());
        assert_eq!(config.server.public_base_url.as_deref(), Some("https://media.example.com"));
        assert_eq!(config.server.max_connections, 10);
        assert_eq!(config.server.header_read_timeout, Duration::from_secs(2));
        assert_eq!(config.server.shutdown_grace, Duration::ZERO);
        assert_eq!(config.upstream.connect_timeout, Duration::from_secs(1));
        assert_eq!(config.upstream.first_byte_timeout, Duration::from_secs(2));
        assert_eq!(config.upstream.read_timeout, Duration::from_secs(3));
        assert_eq!(config.upstream.pool_idle_timeout, Duration::from_secs(60));
        assert_eq!(config.upstream.pool_max_idle_per_host, 0);
    }

    #[test]
    fn every_problem_is_reported_at_once() {
        let problems = problems(
            r#"
            [server]
            listen = "localhost"
            max_connections = 0
            [upstream]
            read_timeout = "forever"
            [[integration]]
            name = "Bad Name"
            type = "s3"
            port = "abc"
        "#,
        );
        let expected = [
            "test.toml:3: server.listen: expected an IP address and port",
            "test.toml:4: server.max_connections: expected an integer of at least 1, got 0",
            "test.toml:6: upstream.read_timeout: expected a duration",
            "test.toml:7: integration[0]: missing access_key_id and secret_access_key",
            "test.toml:8: integration[0].name: expected lower-case letters",
            "test.toml:10: integration[0].port: expected an integer from 1 to 65535, got \"abc\"",
        ];
        assert_eq!(problems.len(), expected.len(), "{}", problems.join("\n"));
        for (problem, want) in problems.iter().zip(expected) {
            assert!(problem.starts_with(want), "{problem:?} does not start with {want:?}");
        }
    }

    #[test]
    fn a_toml_syntax_error_names_its_line_and_column() {
        let problems = problems("[server]\nlisten = \"127.0.0.1:8080\"\nmax_connections = = 3\n");
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].starts_with("test.toml: TOML parse error at line 3, column"), "{}", problems[0]);
    }

    #[test]
    fn syntax_errors_on_several_lines_are_all_reported() {
        let problems = problems("[server\nlisten = = 1\n");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("line 1, column 8"), "{}", problems[0]);
        assert!(problems[1].contains("line 2, column 10"), "{}", problems[1]);
    }

    #[test]
    fn a_key_given_twice_is_a_syntax_error() {
        let problems = problems("[server]\nlisten = \"127.0.0.1:1\"\nlisten = \"127.0.0.1:2\"\n");
        assert!(problems[0].contains("line 3"), "{}", problems[0]);
    }

    #[test]
    fn an_unknown_key_is_rejected_with_its_path() {
        assert_one_problem(
            "[server]\nlistn = \"127.0.0.1:8080\"\n",
            &["test.toml:2: server.listn: unknown key; did you mean `listen`?"],
        );
    }

    #[test]
    fn an_unknown_key_far_from_any_known_one_lists_the_known_keys() {
        assert_one_problem("[upstream]\nbanana = 1\n", &["upstream.banana: unknown key; known keys: connect_timeout"]);
    }

    #[test]
    fn an_unknown_section_is_rejected() {
        assert_one_problem(
            "[cahce]\nmax_bytes = \"1GiB\"\n",
            &["test.toml:1: cahce: unknown section; did you mean `cache`?"],
        );
        assert_one_problem(
            "verbose = true\n",
            &["verbose: unknown key; known sections: server, upstream, cache, auth, cors, integration"],
        );
    }

    #[test]
    fn a_section_of_the_contract_not_implemented_yet_says_so() {
        assert_one_problem(
            "[admin]\nx = 1\n",
            &["test.toml:1: admin: this section of the contract is not supported yet"],
        );
    }

    #[test]
    fn an_unknown_integration_key_names_the_integration_and_its_type() {
        assert_one_problem(
            &s3_toml("bucket = [\"a\"]"),
            &["integration[0] (\"s\").bucket: unknown key for type \"s3\"; did you mean `buckets`?"],
        );
    }

    #[test]
    fn a_section_that_is_not_a_table_is_rejected() {
        assert_one_problem("server = \"0.0.0.0:80\"\n", &["server: expected a table, written [server]"]);
    }

    #[test]
    fn a_single_integration_table_asks_for_double_brackets() {
        assert_one_problem("[integration]\nname = \"x\"\n", &["integration: expected [[integration]] tables"]);
    }

    #[test]
    fn a_value_of_the_wrong_type_is_reported_with_the_value() {
        assert_one_problem(&s3_toml("tls = \"yes\""), &["tls: expected true or false, got \"yes\""]);
        assert_one_problem(&s3_toml("region = 5"), &["region: expected a string, got 5"]);
        assert_one_problem(&s3_toml("buckets = \"a\""), &["buckets: expected an array of strings"]);
        assert_one_problem("[server]\nheader_read_timeout = 1.5\n", &["got the float 1.5"]);
    }

    #[test]
    fn variables_are_expanded_in_every_string() {
        let text = r#"
            [server]
            listen = "${HOST}:${PORT}"
            shutdown_grace = "${GRACE}"
            [[integration]]
            name = "${NAME}"
            type = "local"
            root = "${ROOT}/media"
            buckets = ["${BUCKET}"]
        "#;
        let vars = [
            ("HOST", "0.0.0.0"),
            ("PORT", "9000"),
            ("GRACE", "5s"),
            ("NAME", "files"),
            ("ROOT", "/srv"),
            ("BUCKET", "pics"),
        ];
        let config = parse_env(text, &vars).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(config.server.listen, "0.0.0.0:9000".parse().unwrap());
        assert_eq!(config.server.shutdown_grace, Duration::from_secs(5));
        assert_eq!(config.integrations[0].name, "files");
        let IntegrationKind::Local(local) = &config.integrations[0].kind else { panic!("not local") };
        assert_eq!(local.root, Path::new("/srv/media"));
        assert_eq!(local.buckets, ["pics"]);
    }

    #[test]
    fn numbers_and_booleans_may_come_from_variables() {
        let config = parse_env(
            &s3_toml("endpoint = \"minio\"\nport = \"${P}\"\ntls = \"${T}\""),
            &[("P", "9000"), ("T", "false")],
        )
        .unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(s3_config(&config).port, Some(9000));
        assert!(!s3_config(&config).tls);
    }

    #[test]
    fn a_missing_variable_names_the_key_and_the_variable() {
        let problems = problems(&s3_toml("region = \"${REGION}-${ZONE}\""));
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(
            problems[0].contains("integration[0] (\"s\").region: environment variables REGION, ZONE are not set"),
            "{}",
            problems[0]
        );
    }

    #[test]
    fn a_missing_variable_in_a_list_names_the_element() {
        assert_one_problem(&s3_toml("buckets = [\"a\", \"${B}\"]"), &["buckets[1]: environment variable B is not set"]);
    }

    #[test]
    fn a_bad_variable_reference_is_reported() {
        assert_one_problem(&s3_toml("region = \"${REGION\""), &["region: unterminated ${"]);
        assert_one_problem(&s3_toml("region = \"${1X}\""), &["region: ${1X} is not a valid environment variable name"]);
    }

    #[test]
    fn a_double_dollar_is_a_literal_dollar_brace() {
        assert_eq!(expand("a$${B}c", &|_| None), Ok("a${B}c".to_string()));
        assert_eq!(expand("$5 and $$ and $", &|_| None), Ok("$5 and $$ and $".to_string()));
        assert_eq!(expand("${A}${A}", &|_| Some("x".to_string())), Ok("xx".to_string()));
        let config = ok(&s3_toml("cache_control = \"x-$${literal}\""));
        assert_eq!(config.integrations[0].cache_control, "x-${literal}");
    }

    #[test]
    fn an_empty_variable_is_allowed_but_not_for_a_secret() {
        let text = "[[integration]]\nname = \"s\"\ntype = \"s3\"\naccess_key_id = \"id\"\n\
                    secret_access_key = \"${SECRET}\"\ncache_control = \"public${SUFFIX}\"\n";
        let config = parse_env(text, &[("SECRET", "s"), ("SUFFIX", "")]).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(config.integrations[0].cache_control, "public");
        let problems = problems_env(text, &[("SECRET", ""), ("SUFFIX", "")]);
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("secret_access_key: is empty"), "{}", problems[0]);
    }

    #[test]
    fn every_secret_key_must_not_be_empty() {
        assert_one_problem(&s3_toml("session_token = \"\""), &["session_token: is empty"]);
        assert_one_problem(
            &azure_toml("storage_url = \"https://acct.blob.core.windows.net/media\"\naccount_key = \"\""),
            &["account_key: is empty"],
        );
        assert_one_problem(
            &azure_toml("storage_url = \"https://acct.blob.core.windows.net/media\"\nsas_token = \"\""),
            &["sas_token: is empty"],
        );
    }

    #[test]
    fn a_secret_never_appears_in_a_message() {
        let text = azure_toml(
            "storage_url = \"https://acct.blob.core.windows.net/media\"\naccount_key = \"not base64 SECRETVALUE!\"",
        );
        let found = problems(&text);
        assert!(found[0].contains("account_key: is not valid base64"), "{found:?}");
        assert!(!found[0].contains("SECRETVALUE"), "{found:?}");
        let found = problems(&azure_toml(
            "storage_url = \"https://acct.blob.core.windows.net/media\"\nsas_token = \"sv=1&SECRETVALUE\"",
        ));
        assert!(!found[0].contains("SECRETVALUE"), "{found:?}");
        let found = problems(&s3_toml("session_token = 12345"));
        assert!(found[0].contains("expected a string, got an integer") && !found[0].contains("12345"), "{found:?}");
    }

    #[test]
    fn listen_must_be_a_socket_address_and_port_zero_is_allowed() {
        assert_eq!(ok("[server]\nlisten = \"127.0.0.1:0\"").server.listen.port(), 0);
        assert_eq!(ok("[server]\nlisten = \"[::]:8080\"").server.listen, "[::]:8080".parse().unwrap());
        assert_one_problem(
            "[server]\nlisten = \"localhost:8080\"",
            &["server.listen: expected an IP address and port"],
        );
        assert_one_problem("[server]\nlisten = \"0.0.0.0\"", &["server.listen: expected an IP address and port"]);
        assert_one_problem("[server]\nlisten = 8080", &["server.listen: expected a string, got 8080"]);
    }

    #[test]
    fn public_base_url_must_start_with_http_or_https() {
        assert_eq!(
            ok("[server]\npublic_base_url = \"http://x:8080\"").server.public_base_url.as_deref(),
            Some("http://x:8080")
        );
        for bad in ["media.example.com", "ftp://x", "https://", "https:///x"] {
            assert_one_problem(
                &format!("[server]\npublic_base_url = \"{bad}\""),
                &["server.public_base_url: expected a URL starting with http:// or https://"],
            );
        }
    }

    #[test]
    fn timeouts_must_be_more_than_zero() {
        assert_one_problem(
            "[upstream]\nconnect_timeout = \"0s\"",
            &["upstream.connect_timeout: must be more than zero"],
        );
        assert_one_problem(
            "[server]\nheader_read_timeout = 0",
            &["server.header_read_timeout: must be more than zero"],
        );
        assert_one_problem("[upstream]\nread_timeout = -1", &["upstream.read_timeout: expected a duration"]);
    }

    #[test]
    fn counts_must_be_in_range() {
        assert_one_problem(
            "[server]\nmax_connections = -5",
            &["server.max_connections: expected an integer of at least 1, got -5"],
        );
        assert_one_problem(
            "[upstream]\npool_max_idle_per_host = \"many\"",
            &["upstream.pool_max_idle_per_host: expected an integer of at least 0, got \"many\""],
        );
    }

    #[test]
    fn an_integration_needs_a_name_and_a_type() {
        let problems = problems("[[integration]]\nroot = \"x\"\n");
        assert_eq!(problems.len(), 2, "{problems:?}");
        assert!(problems[0].contains("test.toml:1: integration[0]: missing required key `name`"), "{}", problems[0]);
        assert!(problems[1].contains("integration[0]: missing required key `type`"), "{}", problems[1]);
    }

    #[test]
    fn an_integration_name_is_lower_case_letters_digits_and_dashes() {
        assert_eq!(ok(&s3_toml("").replace("\"s\"", "\"minio-2\"")).integrations[0].name, "minio-2");
        for bad in ["", "Minio", "mi_nio", "mi nio", "é"] {
            assert_one_problem(
                &s3_toml("").replace("name = \"s\"", &format!("name = \"{bad}\"")),
                &["integration[0].name: expected lower-case letters"],
            );
        }
    }

    #[test]
    fn an_unknown_integration_type_is_rejected() {
        assert_one_problem(
            "[[integration]]\nname = \"g\"\ntype = \"gcs\"\nbucket = 1\n",
            &["integration[0] (\"g\").type: expected \"s3\", \"azure-blob\" or \"local\", got \"gcs\""],
        );
    }

    #[test]
    fn duplicate_names_name_both_integrations() {
        let text = format!("{}{}", s3_toml("buckets = [\"a\"]"), s3_toml("buckets = [\"b\"]"));
        assert_one_problem(&text, &["integration[1] (\"s\"): name \"s\" is already used by integration[0] (\"s\")"]);
    }

    #[test]
    fn cache_control_has_a_default_and_must_be_a_header_value() {
        assert_eq!(ok(&s3_toml("")).integrations[0].cache_control, "max-age=300");
        assert_eq!(ok(&s3_toml("cache_control = \"no-store\"")).integrations[0].cache_control, "no-store");
        assert_one_problem(&s3_toml("cache_control = \"a\\nb\""), &["cache_control: expected a valid header value"]);
        assert_one_problem(&s3_toml("cache_control = \"\""), &["cache_control: expected a valid header value"]);
    }

    #[test]
    fn an_s3_integration_without_endpoint_talks_to_aws() {
        let config = ok(&s3_toml(""));
        let s3 = s3_config(&config);
        assert_eq!(s3.endpoint, "s3.us-east-1.amazonaws.com");
        assert!(!s3.custom_endpoint);
        assert_eq!(s3.port, None);
        assert!(s3.tls);
        assert_eq!(s3.region, "us-east-1");
        assert_eq!(s3.addressing, Addressing::VirtualHost);
        assert_eq!(s3.locator_scheme, Scheme::S3);
        assert!(s3.buckets.is_empty());
        assert!(s3.ca_file.is_none());
        let S3Credentials::Static { access_key_id, secret_access_key, session_token } = &s3.credentials else {
            panic!("expected static keys")
        };
        assert_eq!((access_key_id.as_str(), secret_access_key.expose()), ("id", "secret"));
        assert!(session_token.is_none());
        assert_eq!(s3_config(&ok(&s3_toml("region = \"eu-west-3\""))).endpoint, "s3.eu-west-3.amazonaws.com");
    }

    #[test]
    fn a_gs_integration_defaults_to_google_cloud_storage() {
        let config = ok(&s3_toml("locator_scheme = \"gs\""));
        let gs = s3_config(&config);
        assert_eq!(gs.endpoint, "storage.googleapis.com");
        assert_eq!(gs.region, "auto");
        assert_eq!(gs.locator_scheme, Scheme::Gs);
        assert_eq!(gs.addressing, Addressing::VirtualHost);
        assert_one_problem(
            &s3_toml("locator_scheme = \"az\""),
            &["locator_scheme: expected \"s3\" or \"gs\", got \"az\""],
        );
    }

    #[test]
    fn a_custom_endpoint_defaults_to_path_addressing() {
        let config = ok(&s3_toml(
            "endpoint = \"minio.internal\"\nport = 9000\ntls = false\nsession_token = \"t\"\nbuckets = [\"a.b\", \"c_d-1\"]",
        ));
        let s3 = s3_config(&config);
        assert_eq!(s3.endpoint, "minio.internal");
        assert!(s3.custom_endpoint);
        assert_eq!(s3.port, Some(9000));
        assert!(!s3.tls);
        assert_eq!(s3.addressing, Addressing::Path);
        assert_eq!(s3.buckets, ["a.b", "c_d-1"]);
        assert!(matches!(&s3.credentials, S3Credentials::Static { session_token: Some(t), .. } if t.expose() == "t"));
        let vhost = ok(&s3_toml("endpoint = \"10.0.0.5\"\naddressing = \"virtual-host\""));
        assert_eq!(s3_config(&vhost).addressing, Addressing::VirtualHost);
        assert_one_problem(
            &s3_toml("addressing = \"vhost\""),
            &["addressing: expected \"path\" or \"virtual-host\", got \"vhost\""],
        );
    }

    #[test]
    fn an_endpoint_written_as_a_url_is_answered_with_the_keys_to_write() {
        assert_one_problem(
            &s3_toml("endpoint = \"http://minio.internal:9000\""),
            &[
                "endpoint: expected a host name or IP without scheme, got \"http://minio.internal:9000\"; write endpoint = \"minio.internal\", port = 9000, tls = false",
            ],
        );
        assert_one_problem(
            &s3_toml("endpoint = \"https://s3.example.com/\""),
            &["write endpoint = \"s3.example.com\", tls = true"],
        );
    }

    #[test]
    fn an_endpoint_with_a_port_or_a_path_is_rejected() {
        assert_one_problem(
            &s3_toml("endpoint = \"minio:9000\""),
            &["endpoint: expected a host name or IP without a port", "write endpoint = \"minio\", port = 9000"],
        );
        assert_one_problem(
            &s3_toml("endpoint = \"minio/bucket\""),
            &["endpoint: expected a host name or IP without a path"],
        );
        assert_one_problem(
            &s3_toml("endpoint = \"bad host\""),
            &["endpoint: expected a host name or IP, got \"bad host\""],
        );
        assert_one_problem(&s3_toml("endpoint = \"\""), &["endpoint: must not be empty"]);
    }

    #[test]
    fn an_ipv6_endpoint_is_stored_in_brackets() {
        assert_eq!(s3_config(&ok(&s3_toml("endpoint = \"::1\""))).endpoint, "[::1]");
        assert_eq!(s3_config(&ok(&s3_toml("endpoint = \"[fd00::5]\""))).endpoint, "[fd00::5]");
    }

    #[test]
    fn a_port_must_be_from_1_to_65535() {
        assert_one_problem(
            &s3_toml("port = 0"),
            &["integration[0] (\"s\").port: expected an integer from 1 to 65535, got 0"],
        );
        assert_one_problem(&s3_toml("port = 70000"), &["port: expected an integer from 1 to 65535, got 70000"]);
        assert_one_problem(&s3_toml("port = \"abc\""), &["port: expected an integer from 1 to 65535, got \"abc\""]);
    }

    #[test]
    fn missing_static_keys_are_named() {
        let base = "[[integration]]\nname = \"s\"\ntype = \"s3\"\n";
        assert_one_problem(
            base,
            &[
                "integration[0] (\"s\"): missing access_key_id and secret_access_key: give static keys, or set credentials = \"env\"",
            ],
        );
        assert_one_problem(&format!("{base}access_key_id = \"id\""), &["missing secret_access_key:"]);
        assert_one_problem(&format!("{base}secret_access_key = \"s\""), &["missing access_key_id:"]);
    }

    #[test]
    fn env_credentials_read_the_environment_later_and_exclude_static_keys() {
        let base = "[[integration]]\nname = \"s\"\ntype = \"s3\"\ncredentials = \"env\"\n";
        assert!(matches!(s3_config(&ok(base)).credentials, S3Credentials::Env));
        assert_one_problem(
            &format!("{base}{S3_KEYS}"),
            &["credentials: credentials = \"env\" reads AWS_ACCESS_KEY_ID", "remove access_key_id, secret_access_key"],
        );
        assert_one_problem(&s3_toml("credentials = \"vault\""), &["credentials: expected \"env\""]);
    }

    #[test]
    fn s3_credentials_we_do_not_support_yet_say_so() {
        let base = "[[integration]]\nname = \"s\"\ntype = \"s3\"\n";
        assert_one_problem(
            &format!("{base}credentials = \"instance\""),
            &["credentials: credentials = \"instance\" is not supported yet"],
        );
        let problems = problems(&s3_toml(
            "role_arn = \"arn:aws:iam::1:role/x\"\nweb_identity_token_file = \"/t\"\nsts_endpoint = \"sts\"",
        ));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems.iter().all(|p| p.contains("web identity credentials") && p.contains("not supported yet")),
            "{problems:?}"
        );
    }

    #[test]
    fn bucket_names_are_checked() {
        assert_one_problem(
            &s3_toml("buckets = [\"ok\", \"a/b\"]"),
            &["integration[0] (\"s\").buckets[1]: expected a bucket name", "\"a/b\""],
        );
        assert_one_problem(&s3_toml("buckets = [\"..\"]"), &["buckets[0]: expected a bucket name"]);
        assert_one_problem(&s3_toml("buckets = [\"\"]"), &["buckets[0]: expected a bucket name"]);
        assert_one_problem(&s3_toml("buckets = [1]"), &["buckets[0]: expected a string"]);
        assert_one_problem(&s3_toml("buckets = [\"a\", \"a\"]"), &["buckets[1]: \"a\" is listed twice"]);
        assert_one_problem(&s3_toml("buckets = []"), &["buckets: is empty, which would serve nothing; omit `buckets`"]);
    }

    #[test]
    fn a_ca_file_must_exist() {
        let dir = tempfile::tempdir().unwrap();
        let pem = dir.path().join("ca.pem");
        std::fs::write(&pem, "-----BEGIN CERTIFICATE-----\n").unwrap();
        let config = ok(&s3_toml(&format!("ca_file = {:?}", pem.display().to_string())));
        assert_eq!(s3_config(&config).ca_file.as_deref(), Some(pem.as_path()));
        let missing = dir.path().join("missing.pem");
        assert_one_problem(
            &s3_toml(&format!("ca_file = {:?}", missing.display().to_string())),
            &["ca_file: cannot read", "missing.pem"],
        );
        assert_one_problem(
            &s3_toml(&format!("ca_file = {:?}", dir.path().display().to_string())),
            &["ca_file:", "is not a file"],
        );
    }

    #[test]
    fn an_azure_cloud_url_names_the_account_in_its_host() {
        let config = ok(&azure_toml(&format!("storage_url = \"https://acct.blob.core.windows.net/media\"\n{SAS}")));
        let az = azure_config(&config);
        let want = AzureStorageUrl {
            scheme: "https".into(),
            host: "acct.blob.core.windows.net".into(),
            port: None,
            account: "acct".into(),
            container: Some("media".into()),
            path_style: false,
        };
        assert_eq!(az.storage_url, want);
        assert!(matches!(&az.credential, AzureCredential::Sas(s) if s.expose() == "sv=2022-11-02&sig=abc"));
        assert!(az.ca_file.is_none());
    }

    #[test]
    fn an_azurite_url_names_the_account_in_its_path() {
        let want = |host: &str, port, container: Option<&str>| AzureStorageUrl {
            scheme: "http".into(),
            host: host.into(),
            port,
            account: "devstoreaccount1".into(),
            container: container.map(Into::into),
            path_style: true,
        };
        let cases = [
            ("http://127.0.0.1:10000/devstoreaccount1/media", want("127.0.0.1", Some(10000), Some("media"))),
            ("http://localhost:10000/devstoreaccount1/media/", want("localhost", Some(10000), Some("media"))),
            ("http://azurite:10000/devstoreaccount1", want("azurite", Some(10000), None)),
            ("http://[::1]/devstoreaccount1/media", want("[::1]", None, Some("media"))),
        ];
        for (url, want) in cases {
            assert_eq!(parse_azure_storage_url(url), Ok(want), "{url}");
        }
    }

    #[test]
    fn an_azure_url_without_a_container_serves_the_whole_account() {
        let url = parse_azure_storage_url("https://acct.blob.core.windows.net").unwrap();
        assert_eq!((url.account.as_str(), url.container), ("acct", None));
        assert_eq!(parse_azure_storage_url("https://acct.blob.core.windows.net/").unwrap().container, None);
    }

    #[test]
    fn bad_azure_urls_are_explained() {
        let cases = [
            ("https://acct.blob.core.windows.net/media?sv=2022&sig=x", "put the SAS (sv=...&sig=...) in `sas_token`"),
            (
                "https://acct.blob.core.windows.net/media/photos/a.jpg",
                "names a blob or folder, not a container: stop the URL at /media",
            ),
            ("acct.blob.core.windows.net/media", "expected a container URL"),
            ("ftp://acct.blob.core.windows.net/media", "expected a container URL"),
            ("http://127.0.0.1:10000/", "the account is the first path segment"),
            ("https://Acct.blob.core.windows.net/media", "\"Acct\" is not a storage account name"),
            ("https://acct.blob.core.windows.net/Media", "\"Media\" is not a container name"),
            ("http://127.0.0.1:99999/devstoreaccount1", "port 99999 is out of range"),
        ];
        for (url, want) in cases {
            let err = parse_azure_storage_url(url).expect_err(url);
            assert!(err.contains(want), "{url}: {err}");
        }
        assert_one_problem(&azure_toml(SAS), &["integration[0] (\"a\"): missing required key `storage_url`"]);
        assert_one_problem(
            &azure_toml(&format!("storage_url = \"https://a.blob.core.windows.net/m?sv=1\"\n{SAS}")),
            &["storage_url: must not carry a query string"],
        );
    }

    #[test]
    fn an_azure_account_key_must_be_base64() {
        let url = "storage_url = \"http://127.0.0.1:10000/devstoreaccount1/media\"";
        let config = ok(&azure_toml(&format!("{url}\naccount_key = \"a2V5\"")));
        assert!(matches!(&azure_config(&config).credential, AzureCredential::AccountKey(k) if k.expose() == "a2V5"));
        assert_one_problem(
            &azure_toml(&format!("{url}\naccount_key = \"not-base64!\"")),
            &["account_key: is not valid base64"],
        );
    }

    #[test]
    fn a_sas_token_drops_its_question_mark_and_needs_a_signature() {
        let url = "storage_url = \"https://acct.blob.core.windows.net/media\"";
        let config = ok(&azure_toml(&format!("{url}\nsas_token = \"?sv=1&sig=x\"")));
        assert!(matches!(&azure_config(&config).credential, AzureCredential::Sas(s) if s.expose() == "sv=1&sig=x"));
        assert_one_problem(&azure_toml(&format!("{url}\nsas_token = \"?\"")), &["sas_token: is empty"]);
        assert_one_problem(&azure_toml(&format!("{url}\nsas_token = \"sv=1\"")), &["sas_token: has no sig= parameter"]);
    }

    #[test]
    fn an_azure_integration_needs_exactly_one_credential() {
        let url = "storage_url = \"https://acct.blob.core.windows.net/media\"";
        assert_one_problem(
            &azure_toml(url),
            &["integration[0] (\"a\"): missing credentials: give account_key or sas_token"],
        );
        assert_one_problem(
            &azure_toml(&format!("{url}\naccount_key = \"a2V5\"\n{SAS}")),
            &["sas_token: give account_key or sas_token, not both"],
        );
    }

    #[test]
    fn azure_credentials_we_do_not_support_yet_say_so() {
        let url = "storage_url = \"https://acct.blob.core.windows.net/media\"";
        let problems = problems(&azure_toml(&format!(
            "{url}\n{SAS}\ntenant_id = \"t\"\nclient_id = \"c\"\nclient_secret = \"s\""
        )));
        assert_eq!(problems.len(), 3, "{problems:?}");
        assert!(
            problems.iter().all(|p| p.contains("service principal") && p.contains("not supported yet")),
            "{problems:?}"
        );
        assert_one_problem(
            &azure_toml(&format!("{url}\n{SAS}\ncredential = \"managed-identity\"")),
            &["credential: credential (workload or managed identity) is not supported yet"],
        );
    }

    #[test]
    fn a_local_root_is_required_and_stored_as_written() {
        let config = ok("[[integration]]\nname = \"demo\"\ntype = \"local\"\nroot = \"examples/media\"\n");
        let IntegrationKind::Local(local) = &config.integrations[0].kind else { panic!("not local") };
        assert_eq!(local.root, Path::new("examples/media"));
        assert!(local.buckets.is_empty());
        assert_one_problem(
            "[[integration]]\nname = \"d\"\ntype = \"local\"\n",
            &["integration[0] (\"d\"): missing required key `root`"],
        );
        assert_one_problem(
            "[[integration]]\nname = \"d\"\ntype = \"local\"\nroot = \"\"\n",
            &["root: must not be empty"],
        );
    }

    fn local_toml(name: &str, buckets: &str) -> String {
        format!("[[integration]]\nname = \"{name}\"\ntype = \"local\"\nroot = \"r\"\n{buckets}\n")
    }

    #[test]
    fn two_defaults_for_one_scheme_name_both_integrations() {
        let text = format!("{}{}", local_toml("one", ""), local_toml("two", ""));
        assert_one_problem(
            &text,
            &[
                "test.toml:6: integration[1] (\"two\"): integration[0] (\"one\") and integration[1] (\"two\") are both the default for local:// locators",
            ],
        );
        let gs = |name: &str| s3_toml("locator_scheme = \"gs\"").replace("\"s\"", &format!("\"{name}\""));
        assert_one_problem(
            &format!("{}{}", gs("g1"), gs("g2")),
            &["integration[0] (\"g1\") and integration[1] (\"g2\") are both the default for gs:// locators"],
        );
    }

    #[test]
    fn two_integrations_scoping_one_bucket_name_both() {
        let text = format!(
            "{}{}",
            local_toml("one", "buckets = [\"a\", \"b\"]"),
            local_toml("two", "buckets = [\"c\", \"b\"]")
        );
        assert_one_problem(
            &text,
            &["integration[0] (\"one\") and integration[1] (\"two\") both scope bucket \"b\" of local:// locators"],
        );
    }

    #[test]
    fn the_same_bucket_under_different_schemes_does_not_overlap() {
        let gs = s3_toml("locator_scheme = \"gs\"\nbuckets = [\"a\"]").replace("\"s\"", "\"g\"");
        let text = format!("{}{gs}{}", s3_toml("buckets = [\"a\"]"), local_toml("l", "buckets = [\"a\"]"));
        assert_eq!(ok(&text).integrations.len(), 3);
        // A default and a scoped integration of one scheme do not overlap either.
        assert_eq!(
            ok(&format!("{}{}", local_toml("one", ""), local_toml("two", "buckets = [\"a\"]"))).integrations.len(),
            2
        );
    }

    #[test]
    fn two_azure_integrations_for_one_container_name_both() {
        let az = |name: &str, url: &str| {
            azure_toml(&format!("storage_url = \"{url}\"\n{SAS}")).replace("\"a\"", &format!("\"{name}\""))
        };
        let cloud = "https://acct.blob.core.windows.net";
        let text = format!("{}{}", az("x", &format!("{cloud}/media")), az("y", &format!("{cloud}/media/")));
        assert_one_problem(
            &text,
            &[
                "integration[0] (\"x\") and integration[1] (\"y\") both serve Azure account \"acct\", container \"media\"",
            ],
        );
        let text = format!("{}{}", az("x", cloud), az("y", cloud));
        assert_one_problem(
            &text,
            &["integration[0] (\"x\") and integration[1] (\"y\") both serve the whole Azure account \"acct\""],
        );
        let text =
            format!("{}{}{}", az("x", cloud), az("y", &format!("{cloud}/media")), az("z", &format!("{cloud}/other")));
        assert_eq!(ok(&text).integrations.len(), 3);
    }

    fn example_env(name: &str) -> Option<String> {
        let value = match name {
            "AZURITE_ACCOUNT_KEY" => "a2V5",
            "AZURE_MEDIA_SAS" => "sv=2022-11-02&sig=abc",
            "MEDIAGATE_URL_KEY" => "an-example-url-signing-key",
            _ => "fake-value",
        };
        Some(value.to_string())
    }

    #[test]
    fn the_example_config_parses_with_its_variables_set() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mediagate.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let config = parse(&text, &path, &example_env).unwrap_or_else(|e| panic!("{e}"));
        let names: Vec<&str> = config.integrations.iter().map(|i| i.name.as_str()).collect();
        assert_eq!(names, ["minio-share", "aws", "gcs", "azure-media", "azurite", "demo"]);
        assert_eq!(config.server.public_base_url.as_deref(), Some("https://media.example.com"));
        assert_eq!(config.auth.mode, AuthMode::SignedUrl);
        assert_eq!(config.auth.keys[0].id, "k1");
        assert_eq!(config.cors.allowed_origins, ["https://app.example.com"]);
    }

    #[test]
    fn the_example_config_reads_every_secret_from_the_environment() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/mediagate.toml");
        let text = std::fs::read_to_string(&path).unwrap();
        let err = parse(&text, &path, &|_| None).expect_err("variables are unset");
        let missing = err.problems.iter().filter(|p| p.contains("is not set")).count();
        assert_eq!(missing, 6, "{err}");
    }

    #[test]
    fn the_demo_config_parses() {
        let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("config/demo.toml");
        let config = load(&path).unwrap_or_else(|e| panic!("{e}"));
        assert_eq!(config.server.listen, "127.0.0.1:8080".parse().unwrap());
        let [demo] = config.integrations.as_slice() else { panic!("expected one integration") };
        assert_eq!(demo.name, "demo");
        let IntegrationKind::Local(local) = &demo.kind else { panic!("not local") };
        assert_eq!(local.root, Path::new("examples/media"));
        assert_eq!(local.buckets, ["demo"]);
    }

    #[test]
    fn a_missing_config_file_is_reported_with_its_path() {
        let err = load(Path::new("/nonexistent/mediagate.toml")).expect_err("no such file");
        assert!(err.problems[0].starts_with("/nonexistent/mediagate.toml: cannot read the config file"), "{err}");
    }

    #[test]
    fn signed_url_auth_reads_keys_from_the_environment() {
        let text = "[auth]\nmode = \"signed-url\"\nclock_skew = \"10s\"\nmax_ttl = \"1d\"\n\
                    [[auth.keys]]\nid = \"k1\"\nsecret = \"${URL_KEY}\"\n\
                    [[auth.keys]]\nid = \"k2\"\nsecret = \"another-long-secret-value\"\n";
        let config = parse_env(text, &[("URL_KEY", "0123456789abcdef0123")]).unwrap_or_else(|p| panic!("{p:?}"));
        assert_eq!(config.auth.mode, AuthMode::SignedUrl);
        let ids: Vec<&str> = config.auth.keys.iter().map(|k| k.id.as_str()).collect();
        assert_eq!(ids, ["k1", "k2"]);
        assert_eq!(config.auth.keys[0].secret.expose(), "0123456789abcdef0123");
        assert_eq!(config.auth.clock_skew, Duration::from_secs(10));
        assert_eq!(config.auth.max_ttl, Duration::from_secs(86_400));
        assert_eq!(ok("").auth.mode, AuthMode::None);
    }

    #[test]
    fn bad_auth_sections_say_what_to_fix() {
        assert_one_problem(
            "[auth]\nmode = \"signed-url\"\n",
            &["auth.mode: mode = \"signed-url\" needs at least one key"],
        );
        assert_one_problem("[auth]\nmode = \"hmac\"\n", &["auth.mode: expected \"none\" or \"signed-url\""]);
        let key = "[[auth.keys]]\nid = \"k1\"\nsecret = \"0123456789abcdef\"\n";
        assert_one_problem(
            &format!("[auth]\nmode = \"none\"\n{key}"),
            &["auth.keys: signing keys are configured but mode is \"none\""],
        );
        assert_one_problem(
            "[auth]\nmode = \"signed-url\"\n[[auth.keys]]\nid = \"k1\"\nsecret = \"short\"\n",
            &["auth.keys[0].secret: is shorter than 16 bytes"],
        );
        assert_one_problem(
            &format!("[auth]\nmode = \"signed-url\"\n{key}{key}"),
            &["auth.keys[1].id: \"k1\" is used by another key"],
        );
        assert_one_problem(
            "[auth]\nmode = \"signed-url\"\n[[auth.keys]]\nid = \"k 1\"\nsecret = \"0123456789abcdef\"\n",
            &["auth.keys[0].id: expected 1 to 64 letters"],
        );
        let problems =
            problems_env("[auth]\nmode = \"signed-url\"\n[[auth.keys]]\nid = \"k1\"\nsecret = \"${NOPE}\"\n", &[]);
        assert!(problems.iter().any(|p| p.contains("NOPE is not set")), "{problems:?}");
    }

    #[test]
    fn cors_takes_exact_origins_or_a_wildcard() {
        let config = ok(
            "[cors]\nallowed_origins = [\"https://app.example.com\", \"http://127.0.0.1:3000\"]\nmax_age = \"10m\"\n",
        );
        assert_eq!(config.cors.allowed_origins, ["https://app.example.com", "http://127.0.0.1:3000"]);
        assert_eq!(config.cors.max_age, Duration::from_secs(600));
        assert_eq!(ok("[cors]\nallowed_origins = [\"*\"]\n").cors.allowed_origins, ["*"]);
        assert!(ok("").cors.allowed_origins.is_empty());
        for (bad, why) in [
            ("https://app.example.com/", "no path"),
            ("app.example.com", "no scheme"),
            ("ftp://a.example", "http or https"),
            ("https://App.example.com", "lower case"),
            ("https://a.example:99999", "out of range"),
        ] {
            assert_one_problem(&format!("[cors]\nallowed_origins = [\"{bad}\"]\n"), &["cors.allowed_origins[0]", why]);
        }
        assert_one_problem("[cors]\nallowed_origins = [\"*\", \"https://a.example\"]\n", &["give it alone"]);
        assert_one_problem("[cors]\nmax_age = \"1h\"\n", &["missing required key `allowed_origins`"]);
    }

    #[test]
    fn tls_needs_both_files() {
        let dir = tempfile::tempdir().unwrap();
        let (cert, key) = (dir.path().join("c.pem"), dir.path().join("k.pem"));
        std::fs::write(&cert, "x").unwrap();
        std::fs::write(&key, "x").unwrap();
        let both = format!(
            "[server]\ntls_cert = {:?}\ntls_key = {:?}\n",
            cert.display().to_string(),
            key.display().to_string()
        );
        let tls = ok(&both).server.tls.expect("tls");
        assert_eq!((tls.cert, tls.key), (cert.clone(), key));
        assert_one_problem(
            &format!("[server]\ntls_cert = {:?}\n", cert.display().to_string()),
            &["server.tls_cert: tls_cert needs tls_key"],
        );
        let missing = problems("[server]\ntls_cert = \"/nonexistent.pem\"\ntls_key = \"/nonexistent.key\"\n");
        assert!(missing[0].contains("server.tls_cert: cannot read /nonexistent.pem"), "{missing:?}");
        assert!(missing[1].contains("server.tls_key: cannot read /nonexistent.key"), "{missing:?}");
    }

    #[test]
    fn close_keys_are_suggested() {
        assert_eq!(edit_distance("listn", "listen"), 1);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(suggestion("Region", &["region", "port"], "known keys"), "did you mean `region`?");
        assert_eq!(suggestion("zzz", &["region", "port"], "known keys"), "known keys: region, port");
    }

    #[test]
    fn the_cache_section_takes_sizes_and_durations_and_defaults_the_rest() {
        let text =
            "[cache]\nmax_bytes = \"64MiB\"\nslice_bytes = \"1MiB\"\nmax_object_bytes = \"512KiB\"\nttl = \"1m\"\n";
        let config = parse(text, Path::new("test.toml"), &|_| None).expect("parses");
        assert_eq!(config.cache.max_bytes, 64 << 20);
        assert_eq!(config.cache.slice_bytes, 1 << 20);
        assert_eq!(config.cache.max_object_bytes, 512 << 10);
        assert_eq!(config.cache.ttl, Duration::from_secs(60));
        assert!(config.cache.enabled);
        assert_eq!(config.cache.negative_ttl, Duration::ZERO);
    }

    #[test]
    fn a_whole_object_larger_than_a_slice_is_refused() {
        let text = "[cache]\nslice_bytes = \"1MiB\"\nmax_object_bytes = \"2MiB\"\n";
        let problems = parse(text, Path::new("test.toml"), &|_| None).expect_err("must fail").problems;
        assert_eq!(problems.len(), 1, "{problems:?}");
        assert!(problems[0].contains("cache.max_object_bytes"), "{problems:?}");
    }

    #[test]
    fn a_slice_size_out_of_range_and_a_bad_size_are_both_reported() {
        let text = "[cache]\nslice_bytes = \"1KiB\"\nmax_bytes = \"lots\"\n";
        let problems = parse(text, Path::new("test.toml"), &|_| None).expect_err("must fail").problems;
        assert_eq!(problems.len(), 2, "{problems:?}");
    }

    #[test]
    fn max_connections_per_ip_defaults_to_256_and_zero_turns_it_off() {
        assert_eq!(ok("").server.max_connections_per_ip, 256);
        assert_eq!(ok("[server]\nmax_connections_per_ip = 0\n").server.max_connections_per_ip, 0);
        assert_eq!(ok("[server]\nmax_connections_per_ip = 8\n").server.max_connections_per_ip, 8);
        assert_one_problem("[server]\nmax_connections_per_ip = -1", &["expected an integer of at least 0, got -1"]);
    }
}
