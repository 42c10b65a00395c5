//! Entra ID credentials against a real Azurite in OAuth mode
//! (`--oauth basic`, HTTPS with a certificate this test makes), with an
//! identity endpoint written here standing in for Entra ID (the token
//! endpoint `/<tenant>/oauth2/v2.0/token`) and for the App Service /
//! container managed identity endpoint (`IDENTITY_ENDPOINT`).
//!
//! What is real: Azurite checks each bearer token mediagate sends (`aud`,
//! `iss`, `nbf`, `exp`; not the signature) and serves the blob. What only
//! the stand-in sees: the token requests themselves (client secret,
//! federated assertion, managed identity header and client id) and their
//! count. IMDS (a managed identity on a VM) has its own stand-in, in
//! [`imds`].

#[path = "../common/mod.rs"]
mod common;
mod imds;

use std::convert::Infallible;
use std::net::{SocketAddr, TcpListener as StdListener};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::{MediaGate, config, get, pem, runtime, toml_str, wait_for};
use http::{Request, Response, StatusCode};
use http_body_util::{BodyExt, Full};
use hyper::body::Incoming;
use rcgen::{BasicConstraints, CertificateParams, CertifiedIssuer, IsCa, KeyPair};
use rustls_pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};

const ACCOUNT: &str = "devstoreaccount1";
const TENANT: &str = "72f988bf-86f1-41af-91ab-2d7cd011db47";
const CLIENT_ID: &str = "11111111-1111-1111-1111-111111111111";
const SECRET: &str = "the-right-secret";
const IDENTITY_HEADER: &str = "identity-header-value";
/// The published Azurite development account key (not a secret).
const AZURITE_KEY: &str = "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

// ------------------------------------------------------------------ certificates

/// A private CA and one leaf for `127.0.0.1` / `localhost`, as PEM files.
struct Pki {
    dir: tempfile::TempDir,
    leaf_chain: Vec<CertificateDer<'static>>,
    leaf_key: Vec<u8>,
}

impl Pki {
    fn new() -> Pki {
        let mut params = CertificateParams::new(Vec::<String>::new()).unwrap();
        params.is_ca = IsCa::Ca(BasicConstraints::Unconstrained);
        params.distinguished_name.push(rcgen::DnType::CommonName, "mediagate test CA");
        let issuer = CertifiedIssuer::self_signed(params, KeyPair::generate().unwrap()).unwrap();
        let leaf = CertificateParams::new(vec!["127.0.0.1".to_owned(), "localhost".to_owned()]).unwrap();
        let key = KeyPair::generate().unwrap();
        let cert = leaf.signed_by(&key, &issuer).unwrap();
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("ca.pem"), pem("CERTIFICATE", issuer.as_ref().der())).unwrap();
        std::fs::write(dir.path().join("cert.pem"), pem("CERTIFICATE", cert.der())).unwrap();
        std::fs::write(dir.path().join("key.pem"), pem("PRIVATE KEY", &key.serialize_der())).unwrap();
        Pki { dir, leaf_chain: vec![cert.der().clone()], leaf_key: key.serialize_der() }
    }

    fn ca(&self) -> PathBuf {
        self.dir.path().join("ca.pem")
    }

    fn server_config(&self) -> rustls::ServerConfig {
        let key = PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(self.leaf_key.clone()));
        rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_no_client_auth()
            .with_single_cert(self.leaf_chain.clone(), key)
            .unwrap()
    }

    /// A client trusting the CA, to seed Azurite.
    fn client(
        &self,
    ) -> hyper_util::client::legacy::Client<
        hyper_rustls::HttpsConnector<hyper_util::client::legacy::connect::HttpConnector>,
        Full<Bytes>,
    > {
        use rustls_pki_types::pem::PemObject;
        let mut roots = rustls::RootCertStore::empty();
        for cert in CertificateDer::pem_file_iter(self.ca()).unwrap() {
            roots.add(cert.unwrap()).unwrap();
        }
        let tls = rustls::ClientConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth();
        let https = hyper_rustls::HttpsConnectorBuilder::new().with_tls_config(tls).https_only().enable_http1().build();
        hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new()).build(https)
    }
}

// ------------------------------------------------------------------ tokens

fn now_secs() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_secs()
}

/// An unsigned JWT-shaped token as Entra ID issues for Azure Storage
/// (Azurite decodes it without checking the signature).
fn storage_token(lifetime: u64, n: usize) -> String {
    token_for("https://storage.azure.com", lifetime, n)
}

/// As [`storage_token`], for audience `aud`.
fn token_for(aud: &str, lifetime: u64, n: usize) -> String {
    use base64::Engine;
    let b64 = |v: serde_json::Value| base64::engine::general_purpose::URL_SAFE_NO_PAD.encode(v.to_string());
    let now = now_secs();
    let header = b64(serde_json::json!({"typ": "JWT", "alg": "RS256", "kid": "test"}));
    let claims = b64(serde_json::json!({
        "aud": aud,
        "iss": format!("https://sts.windows.net/{TENANT}/"),
        "iat": now - 60, "nbf": now - 60, "exp": now + lifetime,
        "oid": "22222222-2222-2222-2222-222222222222", "tid": TENANT, "n": n,
    }));
    format!("{header}.{claims}.c2lnbmF0dXJl")
}

/// One request the identity stand-in received.
#[derive(Debug, Clone)]
struct TokenRequest {
    /// `client_credentials` (secret), `client_assertion` (workload identity) or `managed-identity`.
    kind: String,
    client_id: Option<String>,
    /// The federated assertion, for workload identity.
    assertion: Option<String>,
    /// The `X-IDENTITY-HEADER` value, for managed identity.
    identity_header: Option<String>,
}

#[derive(Default)]
struct StandInState {
    requests: Vec<TokenRequest>,
    /// Answer every token request with a 503 (an identity endpoint outage).
    failing: bool,
    /// Token requests answered with a 503.
    failed: usize,
    /// Issue tokens for this audience instead of Azure Storage's.
    audience: Option<String>,
}

/// Serves `handler` over HTTP/1.1 on a free loopback port (over TLS with
/// `tls`): the stand-ins' one accept loop. Returns the address.
fn serve_stand_in<F, Fut>(tls: Option<Arc<rustls::ServerConfig>>, handler: F) -> SocketAddr
where
    F: Fn(Request<Incoming>) -> Fut + Clone + Send + Sync + 'static,
    Fut: std::future::Future<Output = Result<Response<Full<Bytes>>, Infallible>> + Send + 'static,
{
    let listener = runtime().block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let addr = listener.local_addr().unwrap();
    runtime().spawn(async move {
        loop {
            let Ok((tcp, _)) = listener.accept().await else { return };
            let (tls, handler) = (tls.clone(), handler.clone());
            tokio::spawn(async move {
                let svc = hyper::service::service_fn(handler);
                let http = hyper::server::conn::http1::Builder::new();
                let _ = match tls {
                    Some(tls) => {
                        let Ok(stream) = tokio_rustls::TlsAcceptor::from(tls).accept(tcp).await else { return };
                        http.serve_connection(hyper_util::rt::TokioIo::new(stream), svc).await
                    }
                    None => http.serve_connection(hyper_util::rt::TokioIo::new(tcp), svc).await,
                };
            });
        }
    });
    addr
}

/// Stands in for Entra ID's token endpoint and the managed identity
/// endpoint, over HTTPS with the test's CA.
struct IdentityStandIn {
    addr: SocketAddr,
    state: Arc<Mutex<StandInState>>,
}

impl IdentityStandIn {
    /// Tokens live `lifetime` seconds (`expires_in`).
    fn start(pki: &Pki, lifetime: u64) -> IdentityStandIn {
        let state = Arc::new(Mutex::new(StandInState::default()));
        let tls = Arc::new(pki.server_config());
        let st = state.clone();
        let addr = serve_stand_in(Some(tls), move |req| answer(req, st.clone(), lifetime));
        IdentityStandIn { addr, state }
    }

    fn authority(&self) -> String {
        format!("https://127.0.0.1:{}", self.addr.port())
    }

    fn requests(&self) -> Vec<TokenRequest> {
        self.state.lock().unwrap().requests.clone()
    }

    fn set_failing(&self, failing: bool) {
        self.state.lock().unwrap().failing = failing;
    }

    fn set_audience(&self, aud: &str) {
        self.state.lock().unwrap().audience = Some(aud.to_owned());
    }

    fn failed(&self) -> usize {
        self.state.lock().unwrap().failed
    }
}

async fn answer(
    req: Request<Incoming>,
    state: Arc<Mutex<StandInState>>,
    lifetime: u64,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let path = req.uri().path().to_owned();
    let query = req.uri().query().unwrap_or_default().to_owned();
    let identity_header = req.headers().get("x-identity-header").and_then(|v| v.to_str().ok()).map(str::to_owned);
    let body = req.into_body().collect().await.map(|b| b.to_bytes()).unwrap_or_default();
    {
        let mut st = state.lock().unwrap();
        if st.failing {
            st.failed += 1;
            let resp = Response::builder().status(StatusCode::SERVICE_UNAVAILABLE).body(Full::new(Bytes::new()));
            return Ok(resp.unwrap());
        }
    }
    let json = |status: StatusCode, v: serde_json::Value| {
        Ok(Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(v.to_string())))
            .unwrap())
    };
    if path.starts_with(&format!("/{ACCOUNT}/")) {
        // A storage account where the identity has no data role.
        let body = "<?xml version=\"1.0\" encoding=\"utf-8\"?><Error><Code>AuthorizationPermissionMismatch</Code>\
            <Message>This request is not authorized to perform this operation using this permission.</Message></Error>";
        let resp = Response::builder()
            .status(StatusCode::FORBIDDEN)
            .header("x-ms-error-code", "AuthorizationPermissionMismatch")
            .header("content-type", "application/xml")
            .body(Full::new(Bytes::from(body)));
        return Ok(resp.unwrap());
    }
    if path == "/msi/token" {
        let params: Vec<(String, String)> = form_urlencoded::parse(query.as_bytes()).into_owned().collect();
        let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
        let n = {
            let mut st = state.lock().unwrap();
            st.requests.push(TokenRequest {
                kind: "managed-identity".into(),
                client_id: param("client_id"),
                assertion: None,
                identity_header: identity_header.clone(),
            });
            st.requests.len()
        };
        if identity_header.as_deref() != Some(IDENTITY_HEADER)
            || param("resource").as_deref() != Some("https://storage.azure.com")
        {
            return json(StatusCode::BAD_REQUEST, serde_json::json!({"error": "invalid_request"}));
        }
        return json(
            StatusCode::OK,
            serde_json::json!({
                "access_token": storage_token(lifetime, n),
                "expires_on": (now_secs() + lifetime).to_string(),
                "resource": "https://storage.azure.com",
                "token_type": "Bearer",
            }),
        );
    }
    if path != format!("/{TENANT}/oauth2/v2.0/token") {
        return json(StatusCode::NOT_FOUND, serde_json::json!({"error": "not_found"}));
    }
    let form: Vec<(String, String)> = form_urlencoded::parse(&body).into_owned().collect();
    let field = |k: &str| form.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let kind = if field("client_assertion").is_some() { "client_assertion" } else { "client_credentials" };
    let (n, audience) = {
        let mut st = state.lock().unwrap();
        st.requests.push(TokenRequest {
            kind: kind.into(),
            client_id: field("client_id"),
            assertion: field("client_assertion"),
            identity_header: None,
        });
        (st.requests.len(), st.audience.clone().unwrap_or_else(|| "https://storage.azure.com".to_owned()))
    };
    let scope_ok = field("scope").as_deref() == Some("https://storage.azure.com/.default");
    let secret_ok = kind == "client_assertion" || field("client_secret").as_deref() == Some(SECRET);
    if !secret_ok {
        return json(
            StatusCode::UNAUTHORIZED,
            serde_json::json!({
                "error": "invalid_client",
                "error_description": format!("AADSTS7000215: Invalid client secret provided. Ensure the secret \
                    being sent in the request is the client secret value, not the client secret ID, for a secret \
                    added to app '{CLIENT_ID}'. Trace ID: 0 Correlation ID: 0 Timestamp: 2026-12-03 00:00:00Z"),
                "error_codes": [7000215],
            }),
        );
    }
    if !scope_ok || field("client_id").as_deref() != Some(CLIENT_ID) {
        return json(StatusCode::BAD_REQUEST, serde_json::json!({"error": "invalid_request", "error_codes": [900144]}));
    }
    json(
        StatusCode::OK,
        serde_json::json!({"token_type": "Bearer", "expires_in": lifetime, "ext_expires_in": lifetime,
            "access_token": token_for(&audience, lifetime, n)}),
    )
}

// ------------------------------------------------------------------ Azurite

/// Azurite's blob service with `--oauth basic` over HTTPS, killed on drop.
struct Azurite {
    child: Child,
    port: u16,
    _dir: tempfile::TempDir,
}

fn azurite_main() -> Option<PathBuf> {
    let path = std::env::var_os("MEDIAGATE_TEST_AZURITE_MAIN").map(PathBuf::from).or_else(|| {
        let home = std::env::var_os("HOME")?;
        Some(Path::new(&home).join(".cache/mediagate/peers/azurite/node_modules/azurite/dist/src/blob/main.js"))
    })?;
    if path.is_file() {
        return Some(path);
    }
    if std::env::var("CI").as_deref() == Ok("true") {
        panic!("Azurite is not installed at {}: run the tests through scripts/test.sh", path.display());
    }
    eprintln!("skipped: Azurite is not installed at {} (run scripts/test.sh)", path.display());
    None
}

impl Azurite {
    /// Starts Azurite in OAuth mode over HTTPS and waits for its own
    /// "successfully listens on" line (a port taken by another test's listener in between
    /// makes it exit: then again on another port).
    fn start(pki: &Pki) -> Option<Azurite> {
        let main = azurite_main()?;
        for _ in 0..3 {
            if let Some(azurite) = Azurite::try_start(&main, pki) {
                return Some(azurite);
            }
        }
        panic!("Azurite did not start on three ports in a row");
    }

    fn try_start(main: &Path, pki: &Pki) -> Option<Azurite> {
        let port = StdListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let dir = tempfile::tempdir().unwrap();
        let mut child = Command::new("node")
            .arg(main)
            .args(["--blobHost", "127.0.0.1", "--blobPort", &port.to_string()])
            .args(["--inMemoryPersistence", "--skipApiVersionCheck", "--loose", "--disableTelemetry"])
            .args(["--oauth", "basic"])
            .arg("--cert")
            .arg(pki.dir.path().join("cert.pem"))
            .arg("--key")
            .arg(pki.dir.path().join("key.pem"))
            .current_dir(dir.path())
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("cannot run node");
        let stdout = child.stdout.take().expect("piped stdout");
        let (tx, rx) = std::sync::mpsc::channel();
        std::thread::spawn(move || {
            use std::io::BufRead;
            for line in std::io::BufReader::new(stdout).lines().map_while(Result::ok) {
                if line.contains("successfully listens on") && tx.send(()).is_err() {
                    return;
                }
            }
        });
        let mut azurite = Azurite { child, port, _dir: dir };
        match rx.recv_timeout(Duration::from_secs(30)) {
            Ok(()) => Some(azurite),
            Err(std::sync::mpsc::RecvTimeoutError::Disconnected) => {
                let _ = azurite.child.wait(); // it closed its stdout: it exited (the port was taken)
                None
            }
            Err(std::sync::mpsc::RecvTimeoutError::Timeout) => panic!("Azurite did not listen on {port} within 30 s"),
        }
    }

    fn container_url(&self, container: &str) -> String {
        format!("https://127.0.0.1:{}/{ACCOUNT}/{container}", self.port)
    }

    /// Creates `container` and puts `blob` in it, with a bearer token of our own.
    fn seed(&self, pki: &Pki, container: &str, blob: &str, bytes: &[u8]) {
        let client = pki.client();
        let token = format!("Bearer {}", storage_token(3600, 0));
        let send = |method: &str, url: String, body: Vec<u8>, blob: bool| {
            let mut b = Request::builder()
                .method(method)
                .uri(url)
                .header("authorization", &token)
                .header("x-ms-version", "2021-08-06");
            if blob {
                b = b.header("x-ms-blob-type", "BlockBlob");
            }
            let resp = runtime().block_on(client.request(b.body(Full::new(Bytes::from(body))).unwrap())).unwrap();
            assert!(resp.status().is_success(), "{method}: {}", resp.status());
        };
        send("PUT", format!("{}?restype=container", self.container_url(container)), Vec::new(), false);
        send("PUT", format!("{}/{blob}", self.container_url(container)), bytes.to_vec(), true);
    }
}

impl Drop for Azurite {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

// ------------------------------------------------------------------ set-up

struct Setup {
    pki: Pki,
    azurite: Azurite,
    standin: IdentityStandIn,
    dir: tempfile::TempDir,
    container: String,
}

const BLOB: &str = "clip/poster.png";

fn setup(lifetime: u64) -> Option<Setup> {
    let pki = Pki::new();
    let azurite = Azurite::start(&pki)?;
    let standin = IdentityStandIn::start(&pki, lifetime);
    let container = common::unique_bucket("oauth");
    azurite.seed(&pki, &container, BLOB, b"a poster, read with a bearer token");
    Some(Setup { pki, azurite, standin, dir: tempfile::tempdir().unwrap(), container })
}

impl Setup {
    /// Starts mediagate with one azure-blob integration `az` (`extra` keys
    /// give the credential), the cache off, and `env` set.
    fn mediagate(&self, extra: &str, env: &[(&str, &str)]) -> MediaGate {
        self.mediagate_trusting(&format!("ca_file = {}\n{extra}", toml_str(&self.pki.ca().to_string_lossy())), env)
    }

    /// As [`Setup::mediagate`], without `ca_file` unless `extra` gives it.
    fn mediagate_trusting(&self, extra: &str, env: &[(&str, &str)]) -> MediaGate {
        let integration = format!(
            "[[integration]]\nname = \"az\"\ntype = \"azure-blob\"\nstorage_url = {}\n{extra}\n",
            toml_str(&self.azurite.container_url(&self.container)),
        );
        let path = self.dir.path().join("mediagate.toml");
        std::fs::write(&path, config(&["[cache]\nenabled = false\n", &integration])).unwrap();
        MediaGate::start_file(&path, env)
    }

    fn service_principal(&self, secret: &str) -> String {
        format!(
            "tenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret = {}\nauthority_host = {}\n",
            toml_str(secret),
            toml_str(&self.standin.authority())
        )
    }

    fn blob_url(&self, mg: &MediaGate) -> String {
        mg.url(&format!("/az/{ACCOUNT}/{}/{BLOB}", self.container))
    }
}

// ------------------------------------------------------------------ tests

#[test]
fn a_service_principal_reads_a_blob_from_azurite_with_a_bearer_token_and_refreshes_it_before_expiry() {
    // A token is refreshed at half its life when that comes before 5
    // minutes ahead of expiry: a 4-second token 2 seconds after it was issued.
    let Some(s) = setup(4) else { return };
    let mg = s.mediagate(&s.service_principal(SECRET), &[]);
    let r = get(&s.blob_url(&mg), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(&r.body[..], b"a poster, read with a bearer token");
    let first = s.standin.requests();
    assert_eq!(first.len(), 1, "{first:?}");
    assert_eq!(first[0].kind, "client_credentials");
    assert_eq!(first[0].client_id.as_deref(), Some(CLIENT_ID));
    // Every read succeeds while the token is renewed ahead of its expiry.
    wait_for("a second token request", Duration::from_secs(20), || {
        let r = get(&s.blob_url(&mg), &[]);
        assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
        s.standin.requests().len() >= 2
    });
}

#[test]
fn two_hundred_concurrent_reads_cause_one_token_request_at_start_and_one_at_the_refresh() {
    // A 10-second token: due for refresh 5 seconds after it was issued.
    let Some(s) = setup(10) else { return };
    let mg = s.mediagate(&s.service_principal(SECRET), &[]);
    let url = s.blob_url(&mg);
    let burst = || {
        std::thread::scope(|scope| {
            let handles: Vec<_> = (0..200).map(|_| scope.spawn(|| get(&url, &[]).status)).collect();
            for h in handles {
                assert_eq!(h.join().unwrap(), StatusCode::OK);
            }
        })
    };
    burst();
    assert_eq!(s.standin.requests().len(), 1, "{:?}", s.standin.requests());
    // The token cache refreshes in the background at the refresh point: its
    // token request is the event; the second burst must cause no other.
    wait_for("the refresh", Duration::from_secs(10), || s.standin.requests().len() >= 2);
    burst();
    assert_eq!(s.standin.requests().len(), 2, "{:?}", s.standin.requests());
}

#[test]
fn a_wrong_client_secret_is_upstream_denied_with_entra_ids_reason() {
    let Some(s) = setup(3600) else { return };
    let mg = s.mediagate(&s.service_principal("a-wrong-secret"), &[]);
    let r = get(&s.blob_url(&mg), &[]);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
    assert_eq!(r.error_code(), "upstream_denied", "{}", r.describe());
    let msg = r.error_message();
    assert!(msg.contains("integration \"az\""), "{msg}");
    assert!(msg.contains("service principal"), "{msg}");
    assert!(msg.contains("AADSTS7000215"), "{msg}");
    assert!(!msg.contains("a-wrong-secret"), "{msg}");
}

#[test]
fn workload_identity_sends_the_token_file_as_it_is_at_each_refresh() {
    let Some(s) = setup(4) else { return };
    let token_file = s.dir.path().join("federated-token");
    std::fs::write(&token_file, "assertion-one\n").unwrap();
    let authority = s.standin.authority();
    let file = token_file.to_string_lossy().into_owned();
    let ca = s.pki.ca().to_string_lossy().into_owned();
    // As on an AKS pod: everything from the environment, the private CA
    // through SSL_CERT_FILE (no ca_file), for the storage and Entra ID alike.
    let env = [
        ("AZURE_TENANT_ID", TENANT),
        ("AZURE_CLIENT_ID", CLIENT_ID),
        ("AZURE_FEDERATED_TOKEN_FILE", file.as_str()),
        ("AZURE_AUTHORITY_HOST", authority.as_str()),
        ("SSL_CERT_FILE", ca.as_str()),
    ];
    let mg = s.mediagate_trusting("credential = \"workload-identity\"", &env);
    let r = get(&s.blob_url(&mg), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    let first = s.standin.requests();
    assert_eq!(first[0].kind, "client_assertion");
    assert_eq!(first[0].assertion.as_deref(), Some("assertion-one"));
    // The kubelet rotates the file: the next refresh sends the new one.
    std::fs::write(&token_file, "assertion-two\n").unwrap();
    wait_for("a token request with the new assertion", Duration::from_secs(20), || {
        let r = get(&s.blob_url(&mg), &[]);
        assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
        s.standin.requests().iter().any(|t| t.assertion.as_deref() == Some("assertion-two"))
    });
}

#[test]
fn a_user_assigned_managed_identity_gets_its_token_from_the_identity_endpoint() {
    let Some(s) = setup(3600) else { return };
    let endpoint = format!("{}/msi/token", s.standin.authority());
    let env = [("IDENTITY_ENDPOINT", endpoint.as_str()), ("IDENTITY_HEADER", IDENTITY_HEADER)];
    let mg = s.mediagate("credential = \"managed-identity\"\nclient_id = \"user-assigned-id\"", &env);
    let r = get(&s.blob_url(&mg), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(&r.body[..], b"a poster, read with a bearer token");
    let seen = s.standin.requests();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].kind, "managed-identity");
    assert_eq!(seen[0].client_id.as_deref(), Some("user-assigned-id"));
    assert_eq!(seen[0].identity_header.as_deref(), Some(IDENTITY_HEADER));
}

#[test]
fn a_rotated_client_secret_file_is_used_without_a_restart() {
    let Some(s) = setup(3600) else { return };
    let file = s.dir.path().join("client-secret");
    std::fs::write(&file, "an-old-secret\n").unwrap();
    let keys = format!(
        "tenant_id = \"{TENANT}\"\nclient_id = \"{CLIENT_ID}\"\nclient_secret_file = {}\nauthority_host = {}\n",
        toml_str(&file.to_string_lossy()),
        toml_str(&s.standin.authority())
    );
    let mg = s.mediagate(&keys, &[]);
    let r = get(&s.blob_url(&mg), &[]);
    assert_eq!(r.error_code(), "upstream_denied", "{}", r.describe());
    // A Kubernetes Secret update: the file changes under the running process.
    std::fs::write(&file, format!("{SECRET}\n")).unwrap();
    wait_for("a read with the rotated secret", Duration::from_secs(20), || {
        get(&s.blob_url(&mg), &[]).status == StatusCode::OK
    });
    let last = s.standin.requests().pop().unwrap();
    assert_eq!(last.kind, "client_credentials");
}

#[test]
fn a_rotated_account_key_file_is_used_without_a_restart() {
    let Some(s) = setup(3600) else { return };
    let file = s.dir.path().join("account-key");
    // A valid base64 key that is not the account's.
    std::fs::write(&file, "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXk=\n").unwrap();
    let mg = s.mediagate(&format!("account_key_file = {}", toml_str(&file.to_string_lossy())), &[]);
    let r = get(&s.blob_url(&mg), &[]);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
    std::fs::write(&file, format!("{AZURITE_KEY}\n")).unwrap();
    wait_for("a read with the rotated key", Duration::from_secs(20), || {
        get(&s.blob_url(&mg), &[]).status == StatusCode::OK
    });
    assert!(s.standin.requests().is_empty());
}

#[test]
fn an_identity_endpoint_outage_during_a_refresh_does_not_interrupt_reads_while_the_token_is_valid() {
    // An 8-second token: refreshed from 4 s on; the outage spans attempts.
    let Some(s) = setup(8) else { return };
    let mg = s.mediagate(&s.service_principal(SECRET), &[]);
    let read = || {
        let r = get(&s.blob_url(&mg), &[]);
        assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    };
    read();
    s.standin.set_failing(true);
    wait_for("two failed refresh attempts", Duration::from_secs(20), || {
        read();
        s.standin.failed() >= 2
    });
    s.standin.set_failing(false);
    wait_for("a refreshed token", Duration::from_secs(20), || {
        read();
        s.standin.requests().len() >= 2
    });
    read();
}

#[test]
fn an_identity_without_a_data_role_is_told_which_role_it_lacks() {
    let Some(s) = setup(3600) else { return };
    // The stand-in also plays a storage account that answers 403
    // AuthorizationPermissionMismatch (Azurite does not check roles).
    let integration = format!(
        "[[integration]]\nname = \"az\"\ntype = \"azure-blob\"\nstorage_url = \"{}/{ACCOUNT}/media\"\nca_file = {}\n{}",
        s.standin.authority(),
        toml_str(&s.pki.ca().to_string_lossy()),
        s.service_principal(SECRET)
    );
    let path = s.dir.path().join("denied.toml");
    std::fs::write(&path, config(&["[cache]\nenabled = false\n", &integration])).unwrap();
    let mg = MediaGate::start_file(&path, &[]);
    let r = get(&mg.url(&format!("/az/{ACCOUNT}/media/a.png")), &[]);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
    assert_eq!(r.error_code(), "upstream_denied");
    let msg = r.error_message();
    assert!(msg.contains("the identity lacks Storage Blob Data Reader on container media"), "{msg}");
    assert!(msg.contains("integration \"az\""), "{msg}");
}

/// The integration of `integration_toml`, built in this process (as
/// `mediagate check` and the admin API build it).
fn build(integration_toml: &str) -> Arc<mediagate::integration::Integration> {
    let text = config(&[integration_toml]);
    let cfg = mediagate::config::parse(&text, Path::new("azure_identity.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("the config does not parse: {e}\n{text}"));
    let registry = mediagate::integration::Registry::build(&cfg.integrations, &cfg.upstream, &cfg.source)
        .unwrap_or_else(|e| panic!("the integration does not build: {e}\n{text}"));
    registry.all()[0].clone()
}

#[test]
fn the_credential_status_shows_the_source_and_the_token_expiry_and_the_connection_test_names_a_refusal() {
    let Some(s) = setup(3600) else { return };
    let table = |secret: &str| {
        format!(
            "[[integration]]\nname = \"az\"\ntype = \"azure-blob\"\nstorage_url = {}\nca_file = {}\n{}",
            toml_str(&s.azurite.container_url(&s.container)),
            toml_str(&s.pki.ca().to_string_lossy()),
            s.service_principal(secret)
        )
    };
    let az = build(&table(SECRET));
    assert_eq!(az.credential_status(), Some(("service-principal", None)), "no token fetched yet");
    let t = runtime().block_on(az.test_connection(Duration::from_secs(10)));
    assert_eq!(t.code, "ok", "{t:?}");
    let (source, expires) = az.credential_status().unwrap();
    assert_eq!(source, "service-principal");
    let left = expires.expect("an expiry").duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600), "{left:?}");

    let denied = build(&table("a-wrong-secret"));
    let t = runtime().block_on(denied.test_connection(Duration::from_secs(10)));
    assert_eq!(t.code, "credentials", "{t:?}");
    for part in ["integration \"az\"", "service principal", "AADSTS7000215"] {
        assert!(t.message.contains(part), "{part:?} in {}", t.message);
    }
}

#[test]
fn azurite_itself_refuses_a_token_for_another_audience() {
    // The check is Azurite's: mediagate forwards what Entra ID gave it.
    let Some(s) = setup(3600) else { return };
    s.standin.set_audience("https://vault.azure.net");
    let mg = s.mediagate(&s.service_principal(SECRET), &[]);
    let r = get(&s.blob_url(&mg), &[]);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
    assert_eq!(r.error_code(), "upstream_denied", "{}", r.describe());
    assert_eq!(s.standin.requests().len(), 1);
}
