//! AWS credential sources and their life cycle, end to end: mediagate gets
//! temporary keys from an identity endpoint and signs its requests to the
//! real S3 peer (s3s-fs) with them.
//!
//! What is real and what is a stand-in: the S3 server (s3s-fs) is real and
//! verifies every SigV4 signature, so a `200` proves mediagate signed with
//! the access key and secret the identity endpoint issued (the session token
//! travels in `x-amz-security-token` and is covered by the signature, but
//! s3s-fs does not check its value). STS, the container credentials endpoint
//! and IMDSv2 are stand-ins written here, on 127.0.0.1: they issue the
//! peer's own key pair with a made-up session token, and record what they
//! were asked (the web identity token, the `Authorization` header, the IMDS
//! session token).

mod common;

use std::convert::Infallible;
use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU32, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use common::*;
use http::{Response, StatusCode};
use http_body_util::Full;
use hyper::service::service_fn;
use hyper_util::rt::TokioIo;

// ------------------------------------------------------------------ stand-ins

/// One request as a stand-in saw it.
#[derive(Debug, Clone)]
struct Seen {
    method: String,
    /// Path and query, decoded query pairs in `query`.
    path: String,
    query: Vec<(String, String)>,
    headers: http::HeaderMap,
}

impl Seen {
    fn param(&self, name: &str) -> Option<&str> {
        self.query.iter().find(|(k, _)| k == name).map(|(_, v)| v.as_str())
    }
}

/// What a stand-in answers to its `n`-th request (1 for the first): status,
/// body, and a gate to hold the answer at until the test opens it (a slow
/// endpoint whose slowness ends when the test says).
type Answer = dyn Fn(u32, &Seen) -> (u16, String, Hold) + Send + Sync;

/// A gate an answer waits at: a semaphore that the test gives a permit.
type Hold = Option<Arc<tokio::sync::Semaphore>>;

struct StandIn {
    /// `https://sts.localhost:P` or `http://127.0.0.1:P`.
    url: String,
    seen: Arc<Mutex<Vec<Seen>>>,
    /// Answers sent (past their gate).
    answered: Arc<AtomicU32>,
    /// The certificate to trust (`ca_file`), for an HTTPS stand-in.
    ca_file: Option<PathBuf>,
    _dir: tempfile::TempDir,
}

impl StandIn {
    /// A stand-in on 127.0.0.1; with `tls`, HTTPS under the name
    /// `sts.localhost` (mediagate resolves `.localhost` to loopback) with a
    /// fresh rcgen certificate.
    fn start(tls: bool, answer: impl Fn(u32, &Seen) -> (u16, String, Hold) + Send + Sync + 'static) -> StandIn {
        let dir = tempfile::tempdir().unwrap();
        let answer: Arc<Answer> = Arc::new(answer);
        let seen = Arc::new(Mutex::new(Vec::new()));
        let calls = Arc::new(AtomicU32::new(0));
        let answered = Arc::new(AtomicU32::new(0));
        let listener = runtime().block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
        let port = listener.local_addr().unwrap().port();
        let (acceptor, ca_file) = if tls {
            let rcgen::CertifiedKey { cert, signing_key } =
                rcgen::generate_simple_self_signed(vec!["sts.localhost".to_owned()]).unwrap();
            let ca = dir.path().join("ca.pem");
            std::fs::write(&ca, pem("CERTIFICATE", cert.der())).unwrap();
            let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
            let cfg = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
                .with_safe_default_protocol_versions()
                .unwrap()
                .with_no_client_auth()
                .with_single_cert(vec![cert.der().clone()], key)
                .unwrap();
            (Some(tokio_rustls::TlsAcceptor::from(Arc::new(cfg))), Some(ca))
        } else {
            (None, None)
        };
        let (seen2, calls2, answered2) = (seen.clone(), calls.clone(), answered.clone());
        runtime().spawn(async move {
            while let Ok((tcp, _)) = listener.accept().await {
                let (answer, seen, calls, acceptor) = (answer.clone(), seen2.clone(), calls2.clone(), acceptor.clone());
                let answered = answered2.clone();
                tokio::spawn(async move {
                    let service = service_fn(move |req: http::Request<hyper::body::Incoming>| {
                        let (answer, seen, calls, answered) =
                            (answer.clone(), seen.clone(), calls.clone(), answered.clone());
                        async move {
                            let query = req
                                .uri()
                                .query()
                                .map(|q| form_urlencoded::parse(q.as_bytes()).into_owned().collect())
                                .unwrap_or_default();
                            let s = Seen {
                                method: req.method().to_string(),
                                path: req.uri().path().to_owned(),
                                query,
                                headers: req.headers().clone(),
                            };
                            let n = calls.fetch_add(1, Ordering::SeqCst) + 1;
                            seen.lock().unwrap().push(s.clone());
                            let (status, body, hold) = answer(n, &s);
                            if let Some(gate) = hold {
                                let _ = gate.acquire().await;
                            }
                            answered.fetch_add(1, Ordering::SeqCst);
                            let mut resp = Response::new(Full::new(Bytes::from(body)));
                            *resp.status_mut() = StatusCode::from_u16(status).unwrap();
                            Ok::<_, Infallible>(resp)
                        }
                    });
                    let builder = hyper::server::conn::http1::Builder::new();
                    match acceptor {
                        Some(acceptor) => {
                            if let Ok(tls) = acceptor.accept(tcp).await {
                                let _ = builder.serve_connection(TokioIo::new(tls), service).await;
                            }
                        }
                        None => {
                            let _ = builder.serve_connection(TokioIo::new(tcp), service).await;
                        }
                    }
                });
            }
        });
        let url = if tls { format!("https://sts.localhost:{port}") } else { format!("http://127.0.0.1:{port}") };
        StandIn { url, seen, answered, ca_file, _dir: dir }
    }

    fn seen(&self) -> Vec<Seen> {
        self.seen.lock().unwrap().clone()
    }

    fn calls(&self) -> usize {
        self.seen.lock().unwrap().len()
    }

    fn answered(&self) -> u32 {
        self.answered.load(Ordering::SeqCst)
    }
}

/// `2026-12-03T01:02:03Z` for `now + d`.
fn rfc3339_in(d: Duration) -> String {
    let t = time::OffsetDateTime::from(SystemTime::now() + d);
    t.format(&time::format_description::well_known::Rfc3339).unwrap()
}

/// An STS `AssumeRoleWithWebIdentity` answer issuing the peer's key pair.
fn sts_answer(s3: &S3Peer, token: &str, valid_for: Duration) -> String {
    format!(
        "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
         <AssumeRoleWithWebIdentityResult><Credentials><AccessKeyId>{}</AccessKeyId>\
         <SecretAccessKey>{}</SecretAccessKey><SessionToken>{token}</SessionToken>\
         <Expiration>{}</Expiration></Credentials></AssumeRoleWithWebIdentityResult>\
         </AssumeRoleWithWebIdentityResponse>",
        s3.access_key,
        s3.secret_key,
        rfc3339_in(valid_for)
    )
}

/// The JSON of the container endpoint and of IMDS, issuing the peer's key pair.
fn metadata_answer(s3: &S3Peer, valid_for: Duration) -> String {
    serde_json::json!({
        "Code": "Success",
        "AccessKeyId": s3.access_key,
        "SecretAccessKey": s3.secret_key,
        "Token": "session-token-from-metadata",
        "Expiration": rfc3339_in(valid_for),
    })
    .to_string()
}

// ------------------------------------------------------------------ set-up

/// An s3 integration `name` for the peer's `bucket` with `credential_lines`
/// instead of static keys.
fn integration(s3: &S3Peer, name: &str, bucket: &str, credential_lines: &str) -> String {
    format!(
        "[[integration]]\nname = {}\ntype = \"s3\"\nendpoint = {}\nport = {}\ntls = {}\nregion = {}\n\
         buckets = [{}]\naddressing = \"path\"\n{credential_lines}\n",
        toml_str(name),
        toml_str(&s3.host),
        s3.port,
        s3.tls,
        toml_str(&s3.region),
        toml_str(bucket)
    )
}

/// Web identity lines for `sts`, with the token in `token_file`.
fn web_identity_lines(sts: &StandIn, token_file: &Path) -> String {
    format!(
        "role_arn = \"arn:aws:iam::123456789012:role/media-reader\"\nweb_identity_token_file = {}\n\
         sts_endpoint = {}\nca_file = {}\n",
        toml_str(&token_file.display().to_string()),
        toml_str(&sts.url),
        toml_str(&sts.ca_file.as_ref().unwrap().display().to_string())
    )
}

/// A token file holding `token`, and a mediagate whose integration "wi"
/// reads `bucket` with web identity through `sts` (the directory holds the file).
fn web_identity_gate(s3: &S3Peer, bucket: &str, sts: &StandIn, token: &str) -> (MediaGate, PathBuf, tempfile::TempDir) {
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, token).unwrap();
    let mg = MediaGate::start(&config(&[&integration(s3, "wi", bucket, &web_identity_lines(sts, &token_file))]));
    (mg, token_file, dir)
}

/// Seeds `count` small objects `o/<i>.txt` (distinct keys, so each request
/// reaches the storage instead of mediagate's cache).
fn seed_many(s3: &S3Peer, bucket: &str, count: usize) {
    let objects: Vec<(String, Vec<u8>)> =
        (0..count).map(|i| (format!("o/{i}.txt"), format!("object {i}").into_bytes())).collect();
    let refs: Vec<(&str, &[u8])> = objects.iter().map(|(k, v)| (k.as_str(), v.as_slice())).collect();
    s3.seed(bucket, &refs);
}

fn expect_object(mg: &MediaGate, bucket: &str, i: usize) {
    let r = get(&mg.path_url("s3", bucket, &format!("o/{i}.txt")), &[]);
    assert_eq!(r.status, StatusCode::OK, "object {i}: {}", r.describe());
    assert_eq!(r.text(), format!("object {i}"));
}

// ------------------------------------------------------------------ tests

#[test]
fn web_identity_keys_from_sts_sign_requests_that_the_real_s3_server_verifies() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("wi-read");
    seed_many(&s3, &bucket, 2);
    let s3c = s3.clone();
    let sts =
        StandIn::start(true, move |n, _| (200, sts_answer(&s3c, &format!("tok-{n}"), Duration::from_secs(3600)), None));
    let (mg, _token_file, _dir) = web_identity_gate(&s3, &bucket, &sts, "jwt-one\n");

    expect_object(&mg, &bucket, 0);
    expect_object(&mg, &bucket, 1);
    let seen = sts.seen();
    assert_eq!(seen.len(), 1, "one STS call for both requests: {seen:?}");
    let call = &seen[0];
    assert_eq!(call.param("Action"), Some("AssumeRoleWithWebIdentity"));
    assert_eq!(call.param("Version"), Some("2011-06-15"));
    assert_eq!(call.param("RoleArn"), Some("arn:aws:iam::123456789012:role/media-reader"));
    assert_eq!(call.param("WebIdentityToken"), Some("jwt-one"), "the file's content less its newline");
    assert_eq!(call.param("RoleSessionName"), Some("mediagate-wi"));
}

#[test]
fn short_lived_keys_are_refreshed_before_expiry_with_the_token_file_read_again() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("wi-short");
    seed_many(&s3, &bucket, 60);
    let s3c = s3.clone();
    // Every answer expires 2 s ahead: each refresh is due 1 s after its fetch.
    let sts =
        StandIn::start(true, move |n, _| (200, sts_answer(&s3c, &format!("tok-{n}"), Duration::from_secs(2)), None));
    let (mg, token_file, _dir) = web_identity_gate(&s3, &bucket, &sts, "jwt-one");

    expect_object(&mg, &bucket, 0);
    std::fs::write(&token_file, "jwt-two").unwrap();
    // Requests keep flowing, none failing, until two refreshes were asked
    // (longer than two lifetimes).
    let mut i = 0;
    wait_for("two refreshes", Duration::from_secs(15), || {
        i += 1;
        expect_object(&mg, &bucket, 1 + i % 59);
        sts.calls() >= 3
    });
    let seen = sts.seen();
    assert!(seen.len() >= 3, "refreshed while serving: {} STS calls", seen.len());
    assert_eq!(seen[0].param("WebIdentityToken"), Some("jwt-one"));
    assert_eq!(
        seen.last().unwrap().param("WebIdentityToken"),
        Some("jwt-two"),
        "the token file is read at each refresh"
    );
}

#[test]
fn two_hundred_concurrent_requests_during_a_refresh_cause_exactly_one_sts_call() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("wi-burst");
    seed_many(&s3, &bucket, 201);
    let s3c = s3.clone();
    // The first keys live 6 s (refresh due at 3 s); the refresh's answer is
    // held until the burst is over, so every request meets it in flight.
    let gate = Arc::new(tokio::sync::Semaphore::new(0));
    let held = gate.clone();
    let sts = StandIn::start(true, move |n, _| {
        let (life, hold) = if n == 1 { (6, None) } else { (3600, Some(held.clone())) };
        (200, sts_answer(&s3c, &format!("tok-{n}"), Duration::from_secs(life)), hold)
    });
    let (mg, _token_file, _dir) = web_identity_gate(&s3, &bucket, &sts, "jwt");

    expect_object(&mg, &bucket, 200);
    wait_for("the refresh to be asked", Duration::from_secs(5), || sts.calls() >= 2);
    std::thread::scope(|scope| {
        for i in 0..200 {
            let (mg, bucket) = (&mg, &bucket);
            scope.spawn(move || expect_object(mg, bucket, i));
        }
    });
    gate.add_permits(1);
    // A request after the refresh answered: a second refresh wrongly started
    // during the burst has reached the stand-in by then.
    wait_for("the refresh to be answered", Duration::from_secs(5), || sts.answered() >= 2);
    expect_object(&mg, &bucket, 200);
    assert_eq!(sts.calls(), 2, "the first fetch and exactly one refresh");
}

#[test]
fn an_sts_outage_does_not_interrupt_service_while_the_old_keys_are_valid() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("wi-outage");
    seed_many(&s3, &bucket, 50);
    let s3c = s3.clone();
    // Keys for 8 s (refresh due at 4 s); STS fails (503) for its calls 2 to 6, then recovers.
    let sts = StandIn::start(true, move |n, _| match n {
        1 => (200, sts_answer(&s3c, "tok-1", Duration::from_secs(8)), None),
        2..=6 => (503, "<ErrorResponse><Error><Code>ServiceUnavailable</Code></Error></ErrorResponse>".into(), None),
        _ => (200, sts_answer(&s3c, &format!("tok-{n}"), Duration::from_secs(3600)), None),
    });
    let (mg, _token_file, _dir) = web_identity_gate(&s3, &bucket, &sts, "jwt");

    // Requests keep flowing, none failing, across the refresh point and the
    // outage, until STS recovered (its 7th call answers).
    let mut i = 0;
    wait_for("STS to recover", Duration::from_secs(20), || {
        i += 1;
        expect_object(&mg, &bucket, i % 50);
        sts.calls() >= 7
    });
    let seen = sts.seen();
    assert!(seen.len() >= 7, "STS failed, was retried and recovered: {} calls", seen.len());
}

#[test]
fn sts_refusing_gives_502_upstream_denied_naming_the_integration_and_the_source() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("wi-refused");
    seed_many(&s3, &bucket, 1);
    let body = "<ErrorResponse><Error><Type>Sender</Type><Code>InvalidIdentityToken</Code>\
                <Message>Couldn't retrieve verification key from your identity provider</Message></Error></ErrorResponse>";
    let sts = StandIn::start(true, move |_, _| (400, body.to_owned(), None));
    let (mg, token_file, _dir) = web_identity_gate(&s3, &bucket, &sts, "jwt-secret-looking-value");

    let r = get(&mg.path_url("s3", &bucket, "o/0.txt"), &[]);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
    assert_eq!(r.error_code(), "upstream_denied");
    let text = r.text();
    for part in ["integration \\\"wi\\\"", "web-identity", "STS refused: InvalidIdentityToken: Couldn't retrieve"] {
        assert!(text.contains(part), "{part:?} in {text}");
    }
    assert!(!text.contains("jwt-secret-looking-value"), "{text}");

    // An unreadable token file: the same code, saying so.
    std::fs::remove_file(&token_file).unwrap();
    let mg2 = MediaGate::start(&config(&[&integration(&s3, "wi2", &bucket, &web_identity_lines(&sts, &token_file))]));
    let r = get(&mg2.path_url("s3", &bucket, "o/0.txt"), &[]);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
    assert_eq!(r.error_code(), "upstream_denied");
    assert!(r.text().contains("web identity token file unreadable"), "{}", r.text());
}

#[test]
fn a_rotated_secret_access_key_file_is_picked_up_without_restart() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("secret-file");
    seed_many(&s3, &bucket, 40);
    let dir = tempfile::tempdir().unwrap();
    let secret_file = dir.path().join("secret");
    std::fs::write(&secret_file, "an-old-secret-that-the-server-refuses\n").unwrap();
    let lines = format!(
        "access_key_id = {}\nsecret_access_key_file = {}\n",
        toml_str(&s3.access_key),
        toml_str(&secret_file.display().to_string())
    );
    let mg = MediaGate::start(&config(&[&integration(&s3, "rotating", &bucket, &lines)]));
    let r = get(&mg.path_url("s3", &bucket, "o/0.txt"), &[]);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
    assert_eq!(r.error_code(), "upstream_denied");

    std::fs::write(&secret_file, format!("{}\n", s3.secret_key)).unwrap();
    let mut i = 1;
    wait_for("the rotated secret to be used", Duration::from_secs(10), || {
        i += 1;
        get(&mg.path_url("s3", &bucket, &format!("o/{i}.txt")), &[]).status == StatusCode::OK
    });
}

#[test]
fn container_credentials_are_asked_with_the_authorization_token_from_its_file() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("container");
    seed_many(&s3, &bucket, 1);
    let s3c = s3.clone();
    let endpoint =
        StandIn::start(false, move |_, seen| match seen.headers.get("authorization").and_then(|v| v.to_str().ok()) {
            Some("container-auth-token") => (200, metadata_answer(&s3c, Duration::from_secs(3600)), None),
            _ => (401, "unauthorized".into(), None),
        });
    let dir = tempfile::tempdir().unwrap();
    let auth_file = dir.path().join("auth");
    std::fs::write(&auth_file, "container-auth-token\n").unwrap();
    let config_path = dir.path().join("mediagate.toml");
    std::fs::write(&config_path, config(&[&integration(&s3, "ecs", &bucket, "credentials = \"instance\"")])).unwrap();
    let full_uri = format!("{}/v2/credentials/task", endpoint.url);
    let mg = MediaGate::start_file(
        &config_path,
        &[
            ("AWS_CONTAINER_CREDENTIALS_FULL_URI", &full_uri),
            ("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE", &auth_file.display().to_string()),
        ],
    );
    expect_object(&mg, &bucket, 0);
    let seen = endpoint.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].path, "/v2/credentials/task");
    assert_eq!(seen[0].headers["authorization"], "container-auth-token");
}

#[test]
fn instance_credentials_without_a_container_endpoint_follow_the_imdsv2_token_flow() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("imds");
    seed_many(&s3, &bucket, 1);
    let s3c = s3.clone();
    let imds = StandIn::start(false, move |_, seen| {
        let token_ok = seen.headers.get("x-aws-ec2-metadata-token").is_some_and(|v| v == "imds-session-token");
        match (seen.method.as_str(), seen.path.as_str()) {
            ("PUT", "/latest/api/token") if seen.headers.contains_key("x-aws-ec2-metadata-token-ttl-seconds") => {
                (200, "imds-session-token".into(), None)
            }
            ("GET", "/latest/meta-data/iam/security-credentials/") if token_ok => (200, "media-role\n".into(), None),
            ("GET", "/latest/meta-data/iam/security-credentials/media-role") if token_ok => {
                (200, metadata_answer(&s3c, Duration::from_secs(3600)), None)
            }
            _ => (401, String::new(), None),
        }
    });
    let dir = tempfile::tempdir().unwrap();
    let config_path = dir.path().join("mediagate.toml");
    std::fs::write(&config_path, config(&[&integration(&s3, "ec2", &bucket, "credentials = \"instance\"")])).unwrap();
    let mg = MediaGate::start_file(&config_path, &[("AWS_EC2_METADATA_SERVICE_ENDPOINT", &imds.url)]);
    expect_object(&mg, &bucket, 0);
    let calls: Vec<(String, String)> = imds.seen().into_iter().map(|s| (s.method, s.path)).collect();
    assert_eq!(
        calls,
        [
            ("PUT".to_owned(), "/latest/api/token".to_owned()),
            ("GET".to_owned(), "/latest/meta-data/iam/security-credentials/".to_owned()),
            ("GET".to_owned(), "/latest/meta-data/iam/security-credentials/media-role".to_owned()),
        ]
    );
}

#[test]
fn credentials_env_on_an_irsa_pod_uses_web_identity_from_the_standard_variables_and_trusts_ssl_cert_file() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("wi-env");
    seed_many(&s3, &bucket, 1);
    let s3c = s3.clone();
    let sts = StandIn::start(true, move |_, _| (200, sts_answer(&s3c, "tok", Duration::from_secs(3600)), None));
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "jwt-from-env").unwrap();
    let config_path = dir.path().join("mediagate.toml");
    // No ca_file: the stand-in's certificate is trusted through SSL_CERT_FILE only.
    std::fs::write(&config_path, config(&[&integration(&s3, "irsa", &bucket, "credentials = \"env\"")])).unwrap();
    let ca = sts.ca_file.as_ref().unwrap().display().to_string();
    let token_path = token_file.display().to_string();
    let mg = MediaGate::start_file(
        &config_path,
        &[
            ("AWS_ROLE_ARN", "arn:aws:iam::123456789012:role/from-env"),
            ("AWS_WEB_IDENTITY_TOKEN_FILE", &token_path),
            ("AWS_ENDPOINT_URL_STS", &sts.url),
            ("AWS_ROLE_SESSION_NAME", "pod-session"),
            ("SSL_CERT_FILE", &ca),
        ],
    );
    expect_object(&mg, &bucket, 0);
    let seen = sts.seen();
    assert_eq!(seen.len(), 1, "{seen:?}");
    assert_eq!(seen[0].param("RoleArn"), Some("arn:aws:iam::123456789012:role/from-env"));
    assert_eq!(seen[0].param("WebIdentityToken"), Some("jwt-from-env"));
    assert_eq!(seen[0].param("RoleSessionName"), Some("pod-session"));
}

/// The integration of `integration_toml`, built in this process (as
/// `mediagate check` and the admin API build it).
fn build(integration_toml: &str) -> std::sync::Arc<mediagate::integration::Integration> {
    let text = config(&[integration_toml]);
    let cfg = mediagate::config::parse(&text, Path::new("aws_credentials.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("the config does not parse: {e}\n{text}"));
    let registry = mediagate::integration::Registry::build(&cfg.integrations, &cfg.upstream, &cfg.source)
        .unwrap_or_else(|e| panic!("the integration does not build: {e}\n{text}"));
    registry.all()[0].clone()
}

#[test]
fn the_credential_status_shows_the_source_and_when_the_keys_expire_and_the_connection_test_names_a_refusal() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("wi-status");
    seed_many(&s3, &bucket, 1);
    let s3c = s3.clone();
    let sts = StandIn::start(true, move |_, _| (200, sts_answer(&s3c, "tok", Duration::from_secs(3600)), None));
    let dir = tempfile::tempdir().unwrap();
    let token_file = dir.path().join("token");
    std::fs::write(&token_file, "jwt").unwrap();
    let wi = build(&integration(&s3, "wi", &bucket, &web_identity_lines(&sts, &token_file)));
    assert_eq!(wi.credential_status(), Some(("web-identity", None)), "no keys fetched yet");
    let t = runtime().block_on(wi.test_connection(Duration::from_secs(10)));
    assert_eq!(t.code, "ok", "{t:?}");
    let (source, expires) = wi.credential_status().unwrap();
    assert_eq!(source, "web-identity");
    let left = expires.expect("an expiry").duration_since(SystemTime::now()).unwrap();
    assert!(left > Duration::from_secs(3500) && left <= Duration::from_secs(3600), "{left:?}");

    let static_keys =
        format!("access_key_id = {}\nsecret_access_key = {}\n", toml_str(&s3.access_key), toml_str(&s3.secret_key));
    assert_eq!(build(&integration(&s3, "st", &bucket, &static_keys)).credential_status(), Some(("static", None)));
    assert_eq!(
        build(&integration(&s3, "in", &bucket, "credentials = \"instance\"")).credential_status(),
        Some(("instance", None))
    );

    let body = "<ErrorResponse><Error><Code>AccessDenied</Code><Message>Not authorized to perform \
                sts:AssumeRoleWithWebIdentity</Message></Error></ErrorResponse>";
    let refusing = StandIn::start(true, move |_, _| (403, body.to_owned(), None));
    let denied = build(&integration(&s3, "denied", &bucket, &web_identity_lines(&refusing, &token_file)));
    let t = runtime().block_on(denied.test_connection(Duration::from_secs(10)));
    assert_eq!(t.code, "credentials", "{t:?}");
    for part in ["integration \"denied\"", "web-identity", "STS refused: AccessDenied: Not authorized"] {
        assert!(t.message.contains(part), "{part:?} in {}", t.message);
    }
}
