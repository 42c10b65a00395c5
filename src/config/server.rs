//! `[server]` (the media listener) and `[upstream]` (how mediagate talks to storage).

use std::net::SocketAddr;
use std::path::PathBuf;
use std::time::Duration;

use crate::integration::upstream::UpstreamConfig;
use crate::schema::values::{as_base_url, as_count, as_duration, as_existing_file, as_socket_addr, as_timeout};
use crate::schema::{Ctx, Section};

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
    /// `config_poll_interval`, default `2s`; `0s`: off. How often the config
    /// file is checked for a change of its content (then re-read, as on `SIGHUP`).
    pub config_poll_interval: Duration,
}

/// The certificate chain and private key of the HTTPS listener.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct TlsFiles {
    /// `tls_cert`: the PEM certificate chain, leaf first.
    pub cert: PathBuf,
    /// `tls_key`: the PEM private key (PKCS#8, PKCS#1 or SEC1).
    pub key: PathBuf,
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
            config_poll_interval: Duration::from_secs(2),
        }
    }
}

/// `[server]`; absent keys take their defaults.
pub fn server(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> ServerConfig {
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
        config_poll_interval: t.get(cx, "config_poll_interval", as_duration).unwrap_or(d.config_poll_interval),
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

/// `[upstream]`; absent keys take their defaults.
pub fn upstream(cx: &mut Ctx<'_>, mut t: Section<'_, '_>) -> UpstreamConfig {
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
