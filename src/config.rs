//! The configuration: parsed once at start-up from TOML, every problem
//! reported at once with the file and the key.
//!
//! Types here are what the rest of mediagate consumes; [`load`] and [`parse`]
//! turn a file into them. Strings may use `${VAR}` to read the environment,
//! sizes take human units (`64MiB`), durations too (`5m`), and unknown keys
//! are rejected.

use std::net::SocketAddr;
use std::path::{Path, PathBuf};
use std::time::Duration;

use crate::locator::Scheme;
use crate::secret::Secret;

/// The whole configuration of one mediagate process.
#[derive(Debug, Clone)]
pub struct Config {
    /// The file it was read from (for messages and `SIGHUP` re-reads).
    pub source: PathBuf,
    pub server: ServerConfig,
    pub upstream: UpstreamConfig,
    pub integrations: Vec<IntegrationConfig>,
}

/// `[server]`: the media listener.
#[derive(Debug, Clone)]
pub struct ServerConfig {
    /// `listen`, default `127.0.0.1:8080`.
    pub listen: SocketAddr,
    /// `public_base_url`, used by `mediagate sign`.
    pub public_base_url: Option<String>,
    /// `max_connections`, default 4096: past it new connections get `503 overloaded`.
    pub max_connections: usize,
    /// `header_read_timeout`, default `10s` (HTTP/1.1).
    pub header_read_timeout: Duration,
    /// `shutdown_grace`, default `30s`: how long SIGTERM waits for in-flight responses.
    pub shutdown_grace: Duration,
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

/// One `[[integration]]` table.
#[derive(Debug, Clone)]
pub struct IntegrationConfig {
    /// `name`: unique, `[a-z0-9-]+`.
    pub name: String,
    /// `cache_control`: the `Cache-Control` sent with this integration's media,
    /// default `public, max-age=300`.
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
    /// `endpoint`: host name or IP. Default: `s3.<region>.amazonaws.com`
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
/// is the host's first label; with an IP or `localhost` host (the Azurite
/// emulator, `http://127.0.0.1:10000/devstoreaccount1/media`) it is the first
/// path segment, and `path_style` is true.
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
    /// `root`: one sub-directory per bucket. Relative paths are taken from the
    /// config file's directory's parent... see `load` for the exact rule.
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
pub fn parse(_text: &str, _path: &Path, _env: &dyn Fn(&str) -> Option<String>) -> Result<Config, ConfigErrors> {
    todo!("config parsing")
}
