//! HTTPS for the media listener: rustls (ring provider) with ALPN `h2` and
//! `http/1.1` (RFC 7301), from the PEM files `[server] tls_cert` /
//! `tls_key`.
//!
//! The certificate is served through a [`ResolvesServerCert`] that holds the
//! current chain and key; [`watch`] re-reads both files when either one's
//! modification time changes (checked every [`RELOAD_CHECK`]), so a renewed
//! certificate (certbot, cert-manager) is picked up without a restart. A
//! pair that does not load (half-written, mismatched) is logged and the
//! running certificate stays.

use std::fmt;
use std::path::Path;
use std::sync::{Arc, RwLock};
use std::time::{Duration, SystemTime};

use rustls::server::{ClientHello, ResolvesServerCert};
use rustls::sign::CertifiedKey;
use rustls_pki_types::pem::PemObject;
use rustls_pki_types::{CertificateDer, PrivateKeyDer};

use crate::config::TlsFiles;

/// How often [`watch`] looks at the certificate files' modification times.
pub const RELOAD_CHECK: Duration = Duration::from_secs(5);

/// The certificate the listener presents, replaceable while it runs.
pub struct CertStore {
    files: TlsFiles,
    current: RwLock<Arc<CertifiedKey>>,
}

impl fmt::Debug for CertStore {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("CertStore").field("cert", &self.files.cert).field("key", &self.files.key).finish()
    }
}

impl CertStore {
    /// Loads the pair once; the error names the file and what is wrong.
    pub fn load(files: &TlsFiles) -> Result<Arc<CertStore>, String> {
        let key = load_pair(files)?;
        Ok(Arc::new(CertStore { files: files.clone(), current: RwLock::new(key) }))
    }

    /// Re-reads the files; on failure the running certificate stays.
    pub fn reload(&self) -> Result<(), String> {
        let key = load_pair(&self.files)?;
        match self.current.write() {
            Ok(mut current) => *current = key,
            Err(poisoned) => *poisoned.into_inner() = key,
        }
        Ok(())
    }

    /// The leaf certificate now served (DER), for tests and logs.
    pub fn leaf(&self) -> Option<CertificateDer<'static>> {
        let current = match self.current.read() {
            Ok(c) => c.clone(),
            Err(poisoned) => poisoned.into_inner().clone(),
        };
        current.cert.first().cloned()
    }
}

impl ResolvesServerCert for CertStore {
    fn resolve(&self, _hello: ClientHello<'_>) -> Option<Arc<CertifiedKey>> {
        match self.current.read() {
            Ok(c) => Some(c.clone()),
            Err(poisoned) => Some(poisoned.into_inner().clone()),
        }
    }
}

/// The rustls server configuration: TLS 1.2 and 1.3, no client
/// certificates, ALPN `h2` then `http/1.1`.
pub fn server_config(store: Arc<CertStore>) -> Result<Arc<rustls::ServerConfig>, String> {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ServerConfig::builder_with_provider(provider)
        .with_safe_default_protocol_versions()
        .map_err(|e| format!("TLS set-up failed: {e}"))?
        .with_no_client_auth()
        .with_cert_resolver(store);
    cfg.alpn_protocols = vec![b"h2".to_vec(), b"http/1.1".to_vec()];
    Ok(Arc::new(cfg))
}

/// Reloads the certificate whenever `tls_cert` or `tls_key` changes on disk;
/// runs until the task is dropped.
pub async fn watch(store: Arc<CertStore>) {
    let mut seen = stamps(&store.files);
    let mut tick = tokio::time::interval(RELOAD_CHECK);
    tick.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    tick.tick().await;
    loop {
        tick.tick().await;
        let now = stamps(&store.files);
        if now == seen {
            continue;
        }
        match store.reload() {
            Ok(()) => {
                tracing::info!(cert = %store.files.cert.display(), "TLS certificate reloaded");
                seen = now;
            }
            // Maybe half-written: keep the old one and look again next tick.
            Err(e) => {
                tracing::warn!(error = %e, "TLS certificate changed but does not load; still serving the previous one")
            }
        }
    }
}

fn stamps(files: &TlsFiles) -> (Option<SystemTime>, Option<SystemTime>) {
    let mtime = |p: &Path| std::fs::metadata(p).and_then(|m| m.modified()).ok();
    (mtime(&files.cert), mtime(&files.key))
}

/// Reads the chain and key and checks that they belong together.
fn load_pair(files: &TlsFiles) -> Result<Arc<CertifiedKey>, String> {
    let cert_path = files.cert.display();
    let certs: Vec<CertificateDer<'static>> = CertificateDer::pem_file_iter(&files.cert)
        .map_err(|e| format!("tls_cert {cert_path}: {e}"))?
        .collect::<Result<_, _>>()
        .map_err(|e| format!("tls_cert {cert_path}: not a PEM certificate chain: {e}"))?;
    if certs.is_empty() {
        return Err(format!("tls_cert {cert_path}: no CERTIFICATE block found (expected PEM)"));
    }
    let key = PrivateKeyDer::from_pem_file(&files.key)
        .map_err(|e| format!("tls_key {}: no PEM private key found: {e}", files.key.display()))?;
    let provider = rustls::crypto::ring::default_provider();
    let certified = CertifiedKey::from_der(certs, key, &provider)
        .map_err(|e| format!("tls_cert {cert_path} and tls_key {}: {e}", files.key.display()))?;
    Ok(Arc::new(certified))
}
