//! The HTTPS listener (`[server] tls_cert` / `tls_key`): ALPN `h2` and
//! `http/1.1`, certificate reload without restart, handshake and
//! first-request timeouts, and a clear start-up error for a bad pair.
//! Certificates are made by the test with the openssl CLI.

mod common;

use std::io::Read;
use std::path::Path;
use std::process::{Command, Stdio};
use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use common::{MediaGate, config, local_integration, runtime, toml_str};
use http::{Request, StatusCode, Version};
use http_body_util::{BodyExt, Empty};
use hyper_util::rt::{TokioExecutor, TokioIo};
use rustls::client::danger::{HandshakeSignatureValid, ServerCertVerified, ServerCertVerifier};
use rustls::pki_types::{CertificateDer, ServerName, UnixTime};
use rustls::{DigitallySignedStruct, SignatureScheme};

fn openssl() -> Option<&'static str> {
    let ok = Command::new("openssl").arg("version").stdout(Stdio::null()).status().is_ok_and(|s| s.success());
    if ok {
        return Some("openssl");
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("the openssl CLI is needed to make test certificates");
    }
    eprintln!("skipped: the openssl CLI is not installed");
    None
}

/// A self-signed EC certificate for 127.0.0.1 named `cn`, written to `<dir>/<name>.{crt,key}`.
fn make_cert(openssl: &str, dir: &Path, name: &str, cn: &str) {
    let out = Command::new(openssl)
        .args(["req", "-x509", "-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes", "-days", "2"])
        .args(["-subj", &format!("/CN={cn}"), "-addext", "subjectAltName=IP:127.0.0.1"])
        .arg("-keyout")
        .arg(dir.join(format!("{name}.key")))
        .arg("-out")
        .arg(dir.join(format!("{name}.crt")))
        .output()
        .expect("running openssl");
    assert!(out.status.success(), "openssl: {}", String::from_utf8_lossy(&out.stderr));
}

fn tls_server(dir: &Path, name: &str, extra: &str) -> String {
    format!(
        "tls_cert = {}\ntls_key = {}\n{extra}",
        toml_str(&dir.join(format!("{name}.crt")).to_string_lossy()),
        toml_str(&dir.join(format!("{name}.key")).to_string_lossy())
    )
}

fn media() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    std::fs::write(dir.path().join("b/a.bin"), vec![9u8; 10_000]).unwrap();
    dir
}

/// Accepts any certificate: these tests check what the server presents.
#[derive(Debug)]
struct AcceptAny(Arc<rustls::crypto::CryptoProvider>);

impl ServerCertVerifier for AcceptAny {
    fn verify_server_cert(
        &self,
        _: &CertificateDer<'_>,
        _: &[CertificateDer<'_>],
        _: &ServerName<'_>,
        _: &[u8],
        _: UnixTime,
    ) -> Result<ServerCertVerified, rustls::Error> {
        Ok(ServerCertVerified::assertion())
    }

    fn verify_tls12_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls12_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn verify_tls13_signature(
        &self,
        message: &[u8],
        cert: &CertificateDer<'_>,
        dss: &DigitallySignedStruct,
    ) -> Result<HandshakeSignatureValid, rustls::Error> {
        rustls::crypto::verify_tls13_signature(message, cert, dss, &self.0.signature_verification_algorithms)
    }

    fn supported_verify_schemes(&self) -> Vec<SignatureScheme> {
        self.0.signature_verification_algorithms.supported_schemes()
    }
}

/// What one HTTPS request saw.
struct Seen {
    alpn: Option<Vec<u8>>,
    version: Version,
    status: StatusCode,
    body_len: usize,
    peer_cert: Vec<u8>,
}

/// A TLS client that offers `alpn` and accepts any certificate.
fn connector(alpn: &[&[u8]]) -> tokio_rustls::TlsConnector {
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let mut cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    cfg.alpn_protocols = alpn.iter().map(|p| p.to_vec()).collect();
    tokio_rustls::TlsConnector::from(Arc::new(cfg))
}

/// `GET path` over a fresh TLS connection offering `alpn`.
fn https_get(mg: &MediaGate, path: &str, alpn: &[&[u8]]) -> Seen {
    let connector = connector(alpn);
    let addr = mg.addr;
    let uri = mg.url(path);
    runtime().block_on(async move {
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let tls = connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.expect("TLS handshake");
        let (_, conn) = tls.get_ref();
        let alpn = conn.alpn_protocol().map(<[u8]>::to_vec);
        let peer_cert = conn.peer_certificates().and_then(|c| c.first()).map(|c| c.to_vec()).unwrap_or_default();
        let io = TokioIo::new(tls);
        let req = Request::get(uri).body(Empty::<Bytes>::new()).unwrap();
        let resp = if alpn.as_deref() == Some(b"h2") {
            let (mut send, conn) = hyper::client::conn::http2::handshake(TokioExecutor::new(), io).await.unwrap();
            tokio::spawn(conn);
            send.send_request(req).await.unwrap()
        } else {
            let (mut send, conn) = hyper::client::conn::http1::handshake(io).await.unwrap();
            tokio::spawn(conn);
            let mut req = req;
            req.headers_mut().insert("host", "127.0.0.1".parse().unwrap());
            *req.uri_mut() = path.parse().unwrap();
            send.send_request(req).await.unwrap()
        };
        let (version, status) = (resp.version(), resp.status());
        let body = resp.into_body().collect().await.unwrap().to_bytes();
        Seen { alpn, version, status, body_len: body.len(), peer_cert }
    })
}

#[test]
fn https_negotiates_http2_by_alpn_and_still_serves_http1_1() {
    let Some(openssl) = openssl() else { return };
    let certs = tempfile::tempdir().unwrap();
    make_cert(openssl, certs.path(), "server", "mediagate one");
    let root = media();
    let mg = MediaGate::start(&config(&[
        &tls_server(certs.path(), "server", ""),
        &local_integration("f", root.path(), &["b"]),
    ]));
    assert!(mg.base_url.starts_with("https://127.0.0.1:"), "{}", mg.base_url);

    let h2 = https_get(&mg, "/local/b/a.bin", &[b"h2", b"http/1.1"]);
    assert_eq!(h2.alpn.as_deref(), Some(&b"h2"[..]));
    assert_eq!(h2.version, Version::HTTP_2);
    assert_eq!(h2.status, 200);
    assert_eq!(h2.body_len, 10_000);

    let h1 = https_get(&mg, "/local/b/a.bin", &[b"http/1.1"]);
    assert_eq!(h1.alpn.as_deref(), Some(&b"http/1.1"[..]));
    assert_eq!(h1.version, Version::HTTP_11);
    assert_eq!(h1.status, 200);
    assert_eq!(h1.body_len, 10_000);
}

#[test]
fn a_renewed_certificate_is_served_without_a_restart() {
    let Some(openssl) = openssl() else { return };
    let certs = tempfile::tempdir().unwrap();
    make_cert(openssl, certs.path(), "server", "before renewal");
    make_cert(openssl, certs.path(), "renewed", "after renewal");
    let root = media();
    let mg = MediaGate::start(&config(&[
        &tls_server(certs.path(), "server", ""),
        &local_integration("f", root.path(), &["b"]),
    ]));
    let before = https_get(&mg, "/healthz", &[b"h2"]).peer_cert;
    let renewed = std::fs::read(certs.path().join("renewed.crt")).unwrap();

    // Replace both files the way certbot does: write aside, then rename over.
    for ext in ["key", "crt"] {
        let tmp = certs.path().join(format!("tmp.{ext}"));
        std::fs::copy(certs.path().join(format!("renewed.{ext}")), &tmp).unwrap();
        std::fs::rename(&tmp, certs.path().join(format!("server.{ext}"))).unwrap();
    }
    let mut after = before.clone();
    let changed = common::wait_until(Duration::from_secs(30), || {
        after = https_get(&mg, "/healthz", &[b"h2"]).peer_cert;
        after != before
    });
    assert!(changed, "still the old certificate 30 s after renewal; logs:\n{}", mg.stderr_text());
    let pem = String::from_utf8(renewed).unwrap();
    let der = pem_to_der(&pem);
    assert_eq!(after, der, "the served certificate is not the renewed one");
    // The log line is flushed in the background: wait for it.
    let logged = common::wait_until(Duration::from_secs(10), || mg.stderr_text().contains("TLS certificate reloaded"));
    assert!(logged, "no `TLS certificate reloaded` log line:\n{}", mg.stderr_text());
}

fn pem_to_der(pem: &str) -> Vec<u8> {
    use base64::Engine;
    let body: String = pem.lines().filter(|l| !l.starts_with("-----")).collect();
    base64::engine::general_purpose::STANDARD.decode(body).unwrap()
}

#[test]
fn a_client_that_connects_and_says_nothing_is_closed_after_the_header_timeout() {
    let Some(openssl) = openssl() else { return };
    let certs = tempfile::tempdir().unwrap();
    make_cert(openssl, certs.path(), "server", "quiet");
    let root = media();
    let server = tls_server(certs.path(), "server", "header_read_timeout = \"1s\"\n");
    let mg = MediaGate::start(&config(&[&server, &local_integration("f", root.path(), &["b"])]));

    // No TLS handshake at all.
    let mut tcp = std::net::TcpStream::connect(mg.addr).unwrap();
    tcp.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut buf = [0u8; 64];
    match tcp.read(&mut buf) {
        Ok(0) => {}
        Ok(n) => panic!("the server sent {n} bytes to a client that said nothing"),
        Err(e) if e.kind() == std::io::ErrorKind::ConnectionReset => {}
        Err(e) => panic!("the silent connection was not closed within 20 s: {e}"),
    }

    // A handshake, then silence.
    let provider = Arc::new(rustls::crypto::ring::default_provider());
    let cfg = rustls::ClientConfig::builder_with_provider(provider.clone())
        .with_safe_default_protocol_versions()
        .unwrap()
        .dangerous()
        .with_custom_certificate_verifier(Arc::new(AcceptAny(provider)))
        .with_no_client_auth();
    let addr = mg.addr;
    let closed = runtime().block_on(async move {
        use tokio::io::AsyncReadExt;
        let tcp = tokio::net::TcpStream::connect(addr).await.unwrap();
        let connector = tokio_rustls::TlsConnector::from(Arc::new(cfg));
        let mut tls = connector.connect(ServerName::try_from("127.0.0.1").unwrap(), tcp).await.unwrap();
        let mut buf = [0u8; 64];
        tokio::time::timeout(Duration::from_secs(20), tls.read(&mut buf)).await
    });
    assert!(matches!(closed, Ok(Ok(0)) | Ok(Err(_))), "the silent TLS connection stayed open: {closed:?}");
    // And the listener still serves.
    assert_eq!(https_get(&mg, "/healthz", &[b"h2"]).status, 200);
}

#[test]
fn a_key_that_does_not_match_the_certificate_stops_start_up_with_a_clear_message() {
    let Some(openssl) = openssl() else { return };
    let certs = tempfile::tempdir().unwrap();
    make_cert(openssl, certs.path(), "one", "one");
    make_cert(openssl, certs.path(), "two", "two");
    let server = format!(
        "tls_cert = {}\ntls_key = {}\n",
        toml_str(&certs.path().join("one.crt").to_string_lossy()),
        toml_str(&certs.path().join("two.key").to_string_lossy())
    );
    let err = MediaGate::try_start(&config(&[&server])).err().expect("a mismatched pair must not start");
    assert!(err.contains("tls_cert") && err.contains("tls_key"), "{err}");
    let not_pem = certs.path().join("junk.crt");
    std::fs::write(&not_pem, "not a certificate").unwrap();
    let server = format!(
        "tls_cert = {}\ntls_key = {}\n",
        toml_str(&not_pem.to_string_lossy()),
        toml_str(&certs.path().join("one.key").to_string_lossy())
    );
    let err = MediaGate::try_start(&config(&[&server])).err().expect("a file without a certificate must not start");
    assert!(err.contains("no CERTIFICATE"), "{err}");
}

#[test]
fn past_the_connection_limit_an_https_client_gets_a_503_it_can_read() {
    let Some(openssl) = openssl() else { return };
    let certs = tempfile::tempdir().unwrap();
    make_cert(openssl, certs.path(), "server", "busy");
    let root = media();
    std::fs::write(root.path().join("b/big.bin"), vec![7u8; 32 << 20]).unwrap();
    let server = tls_server(certs.path(), "server", "max_connections = 1\n");
    let mg = MediaGate::start(&config(&[&server, &local_integration("f", root.path(), &["b"])]));
    // One connection that holds the only slot with a download it leaves
    // unread (an idle one would give way to the newcomer).
    let _holder = runtime().block_on(async {
        use tokio::io::{AsyncReadExt, AsyncWriteExt};
        let tcp = tokio::net::TcpStream::connect(mg.addr).await.unwrap();
        let name = ServerName::try_from("127.0.0.1").unwrap();
        let mut tls = connector(&[b"http/1.1"]).connect(name, tcp).await.expect("TLS handshake");
        tls.write_all(b"GET /local/b/big.bin HTTP/1.1\r\nHost: x\r\n\r\n").await.unwrap();
        let mut head = [0u8; 12];
        tls.read_exact(&mut head).await.expect("the download starts");
        assert_eq!(&head, b"HTTP/1.1 200");
        tls
    });
    let mut seen = None;
    let answered = common::wait_until(Duration::from_secs(10), || {
        let got = https_get(&mg, "/local/b/a.bin", &[b"h2", b"http/1.1"]);
        let busy = got.status == StatusCode::SERVICE_UNAVAILABLE;
        seen = Some(got.status);
        busy
    });
    assert!(answered, "expected 503 overloaded over TLS, got {seen:?}");
    let h1 = https_get(&mg, "/local/b/a.bin", &[b"http/1.1"]);
    assert_eq!(h1.status, StatusCode::SERVICE_UNAVAILABLE);
}
