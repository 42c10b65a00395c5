//! The connection test (CONTRACT.md section 6, docs/CONNECTION-TEST.md)
//! against real peers: s3s-fs and Azurite from `scripts/test.sh`, a local
//! directory, and stand-ins written here for what no peer does on demand (a
//! port nothing listens on, a certificate nobody trusts, a storage that
//! accepts and never answers).
//!
//! Each test builds one integration from a config text with the library
//! (`config::parse`, `Registry::build`) and runs
//! `Integration::test_connection`, as `mediagate check` and the admin API do.
//! The codes asserted for the peers are the ones they really answer; where
//! a peer differs from the cloud it imitates, the test says so.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use common::{AzurePeer, S3Peer, azure_peer, config, local_integration, runtime, s3_peer, toml_str, unique_bucket};
use mediagate::integration::{ConnectionTest, Registry};

/// Generous: a peer on loopback answers in milliseconds.
const LIMIT: Duration = Duration::from_secs(20);

/// Builds the one integration of `integration_toml` and tests it within `limit`.
fn test_connection(integration_toml: &str, limit: Duration) -> ConnectionTest {
    let text = config(&[integration_toml]);
    let cfg = mediagate::config::parse(&text, Path::new("connection_test.toml"), &|_| None)
        .unwrap_or_else(|e| panic!("the config does not parse: {e}\n{text}"));
    let registry = Registry::build(&cfg.integrations, &cfg.upstream, &cfg.source)
        .unwrap_or_else(|e| panic!("the integration does not build: {e}\n{text}"));
    let integration = registry.all()[0].clone();
    runtime().block_on(integration.test_connection(limit))
}

/// Asserts the code, that the sentence names the integration and holds each
/// fragment, and that it holds none of `secrets`.
fn assert_test(t: &ConnectionTest, code: &str, integration: &str, fragments: &[&str], secrets: &[&str]) {
    eprintln!("{}: {}", t.code, t.message); // shown with --nocapture: the sentences as a person reads them
    assert_eq!(t.code, code, "{t:?}");
    assert_eq!(t.ok, code == "ok", "{t:?}");
    assert!(t.message.contains(&format!("integration \"{integration}\"")), "{t:?}");
    for fragment in fragments {
        assert!(t.message.contains(fragment), "the message lacks {fragment:?}: {}", t.message);
    }
    for secret in secrets {
        assert!(!t.message.contains(secret), "a secret leaked: {}", t.message);
    }
}

// ------------------------------------------------------------------ S3 (s3s-fs)

/// `integration` with another access key id.
fn with_access_key(s3: &S3Peer, integration: &str, access_key_id: &str) -> String {
    let written = format!("access_key_id = {}", toml_str(&s3.access_key));
    assert!(integration.contains(&written));
    integration.replace(&written, &format!("access_key_id = {}", toml_str(access_key_id)))
}

#[test]
fn good_keys_list_the_scoped_bucket_and_the_result_has_the_contract_shape() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("probe-good");
    s3.seed(&bucket, &[("a.txt", b"a")]);
    let t = test_connection(&s3.integration("good", &[&bucket], ""), LIMIT);
    assert_test(&t, "ok", "good", &[&format!("listed bucket {bucket}")], &[&s3.secret_key]);
    let json = serde_json::to_value(&t).unwrap();
    let keys: Vec<&str> = json.as_object().unwrap().keys().map(String::as_str).collect();
    assert_eq!(keys.len(), 5, "{json}");
    for key in ["ok", "code", "message", "at", "duration_ms"] {
        assert!(keys.contains(&key), "{json}");
    }
    let at = json["at"].as_str().unwrap();
    let shape = at.len() == 20 && at.ends_with('Z') && at.as_bytes()[10] == b'T' && at.as_bytes()[4] == b'-';
    assert!(shape, "not RFC 3339 UTC seconds: {at}");
    assert!(json["duration_ms"].as_u64().unwrap() < LIMIT.as_millis() as u64);
}

#[test]
fn an_integration_without_buckets_lists_the_buckets() {
    let Some(s3) = s3_peer() else { return };
    let t = test_connection(&s3.integration("all", &[], ""), LIMIT);
    assert_test(&t, "ok", "all", &["listed the buckets at"], &[]);
}

#[test]
fn a_wrong_secret_is_signature_does_not_match_and_says_to_re_enter_it() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("probe-secret");
    s3.seed(&bucket, &[]);
    let wrong = "wrong-secret-0123456789abcdefghij";
    let t = test_connection(&s3.integration_at("wrongsecret", &s3.host, s3.port, &[&bucket], wrong, ""), LIMIT);
    assert_test(
        &t,
        "SignatureDoesNotMatch",
        "wrongsecret",
        &[&format!("does not match the access key id {}", s3.access_key), "re-enter the secret access key"],
        &[wrong, &s3.secret_key],
    );
}

#[test]
fn an_unknown_access_key_id_is_refused_as_unknown_with_s3s_fs_not_signed_up() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("probe-akid");
    s3.seed(&bucket, &[]);
    let integration = with_access_key(&s3, &s3.integration("unknownkey", &[&bucket], ""), "nobody-knows-this-key");
    let t = test_connection(&integration, LIMIT);
    // s3s-fs answers an unknown key with 403 NotSignedUp; AWS with InvalidAccessKeyId.
    // Both get the same sentence.
    assert_test(
        &t,
        "NotSignedUp",
        "unknownkey",
        &["does not know the access key id nobody-knows-this-key", "check access_key_id"],
        &[&s3.secret_key],
    );
}

#[test]
fn a_missing_bucket_is_no_such_bucket_and_suggests_a_typo() {
    let Some(s3) = s3_peer() else { return };
    let good = unique_bucket("probe-there");
    s3.seed(&good, &[]);
    let missing = unique_bucket("probe-missing");
    // The first bucket lists; the second ends the test.
    let t = test_connection(&s3.integration("typo", &[&good, &missing], ""), LIMIT);
    assert_test(&t, "NoSuchBucket", "typo", &[&format!("bucket {missing} does not exist"), "typo"], &[]);
}

// ------------------------------------------------------------------ transport (stand-ins)

/// An S3 integration for `endpoint:port`, `tls` as given, scoped to one bucket.
fn s3_at(name: &str, endpoint: &str, port: u16, tls: bool) -> String {
    format!(
        "[[integration]]\nname = \"{name}\"\ntype = \"s3\"\nendpoint = {}\nport = {port}\ntls = {tls}\n\
         access_key_id = \"ak\"\nsecret_access_key = \"not-a-real-secret-123\"\nbuckets = [\"media\"]\n",
        toml_str(endpoint)
    )
}

#[test]
fn a_port_nothing_listens_on_is_connect_naming_host_and_port() {
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    drop(listener);
    let t = test_connection(&s3_at("closed", "127.0.0.1", port, false), LIMIT);
    assert_test(
        &t,
        "connect",
        "closed",
        &[&format!("127.0.0.1:{port}"), "connection refused", "is the storage running"],
        &["not-a-real-secret-123"],
    );
}

#[test]
fn a_host_that_does_not_resolve_is_dns_naming_the_host() {
    let t = test_connection(&s3_at("nowhere", "no-such-storage.invalid", 9000, true), LIMIT);
    assert_test(&t, "dns", "nowhere", &["could not resolve no-such-storage.invalid", "check the host name"], &[]);
}

/// A TLS listener presenting a self-signed certificate for `name`; the
/// handshake is all it does. Returns its port.
fn untrusted_tls_listener(name: &str) -> u16 {
    let rcgen::CertifiedKey { cert, signing_key } = rcgen::generate_simple_self_signed(vec![name.to_owned()]).unwrap();
    let key = rustls::pki_types::PrivateKeyDer::Pkcs8(signing_key.serialize_der().into());
    let tls = rustls::ServerConfig::builder_with_provider(Arc::new(rustls::crypto::ring::default_provider()))
        .with_safe_default_protocol_versions()
        .unwrap()
        .with_no_client_auth()
        .with_single_cert(vec![cert.der().clone()], key)
        .unwrap();
    let acceptor = tokio_rustls::TlsAcceptor::from(Arc::new(tls));
    let listener = runtime().block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    runtime().spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            let acceptor = acceptor.clone();
            // The client refuses the certificate: the handshake fails, as it should.
            tokio::spawn(async move { drop(acceptor.accept(tcp).await) });
        }
    });
    port
}

#[test]
fn an_untrusted_certificate_is_tls_saying_unknown_issuer_and_set_ca_file() {
    // Under .localhost, which mediagate resolves to loopback.
    let host = "storage.localhost";
    let port = untrusted_tls_listener(host);
    let t = test_connection(&s3_at("selfsigned", host, port, true), LIMIT);
    assert_test(&t, "tls", "selfsigned", &["unknown issuer", "set ca_file", host], &[]);
}

#[test]
fn a_storage_that_accepts_and_never_answers_is_timeout_within_the_given_limit() {
    let listener = runtime().block_on(tokio::net::TcpListener::bind("127.0.0.1:0")).unwrap();
    let port = listener.local_addr().unwrap().port();
    let held = Arc::new(Mutex::new(Vec::new()));
    let keep = held.clone();
    runtime().spawn(async move {
        while let Ok((tcp, _)) = listener.accept().await {
            keep.lock().unwrap().push(tcp); // never read, never answered, never closed
        }
    });
    let limit = Duration::from_millis(1500);
    let t = test_connection(&s3_at("silent", "127.0.0.1", port, false), limit);
    assert_test(&t, "timeout", "silent", &[&format!("127.0.0.1:{port}"), "within 1.5s"], &[]);
    assert!(t.duration >= limit && t.duration < limit + Duration::from_secs(2), "took {:?}", t.duration);
    assert!(!held.lock().unwrap().is_empty(), "the stand-in saw no connection");
}

// ------------------------------------------------------------------ Azure (Azurite)

fn azure_container(az: &AzurePeer, tag: &str) -> String {
    let container = unique_bucket(tag);
    az.create_container(&container);
    container
}

#[test]
fn a_good_account_key_lists_the_container() {
    let Some(az) = azure_peer() else { return };
    let container = azure_container(&az, "probe-az-good");
    let t = test_connection(&az.integration("azgood", &container, ""), LIMIT);
    assert_test(&t, "ok", "azgood", &[&format!("listed container {container}")], &[&az.key]);
}

#[test]
fn a_wrong_account_key_is_refused_with_azurites_authorization_failure() {
    let Some(az) = azure_peer() else { return };
    let container = azure_container(&az, "probe-az-key");
    // A well-formed key of 64 bytes, not the account's.
    let wrong = "d3Jvbmcta2V5LXdyb25nLWtleS13cm9uZy1rZXktd3Jvbmcta2V5LXdyb25nLWtleS0xMjM0NQ==";
    let t = test_connection(&az.integration("azkey", &container, &format!("account_key = \"{wrong}\"")), LIMIT);
    // Azurite answers AuthorizationFailure; real Azure answers AuthenticationFailed
    // (docs/CONNECTION-TEST.md words both).
    assert_test(&t, "AuthorizationFailure", "azkey", &["check account_key", &az.account], &[wrong, &az.key]);
}

#[test]
fn a_sas_with_read_and_list_lists_the_container() {
    let Some(az) = azure_peer() else { return };
    let container = azure_container(&az, "probe-az-sasrl");
    let sas = az.container_sas(&container, "rl");
    let t = test_connection(&az.integration("azsas", &container, &format!("sas_token = {}", toml_str(&sas))), LIMIT);
    assert_test(&t, "ok", "azsas", &[&format!("listed container {container}")], &[&sas]);
}

#[test]
fn a_sas_without_list_permission_is_authorization_permission_mismatch_asking_for_r_and_l() {
    let Some(az) = azure_peer() else { return };
    let container = azure_container(&az, "probe-az-sasr");
    let sas = az.container_sas(&container, "r");
    let sig = sas.split("sig=").nth(1).unwrap().to_owned();
    let t = test_connection(&az.integration("azread", &container, &format!("sas_token = {}", toml_str(&sas))), LIMIT);
    assert_test(
        &t,
        "AuthorizationPermissionMismatch",
        "azread",
        &[&format!("may not list container {container}"), "needs read (r) and list (l) permissions"],
        &[&sas, &sig, "sig="],
    );
}

#[test]
fn a_missing_container_is_container_not_found() {
    let Some(az) = azure_peer() else { return };
    let missing = unique_bucket("probe-az-missing");
    let t = test_connection(&az.integration("azmissing", &missing, ""), LIMIT);
    assert_test(&t, "ContainerNotFound", "azmissing", &[&format!("container {missing} does not exist"), "typo"], &[]);
}

// ------------------------------------------------------------------ local

#[test]
fn a_local_root_and_its_bucket_directories_pass() {
    let root = tempfile::tempdir().unwrap();
    std::fs::create_dir(root.path().join("demo")).unwrap();
    let t = test_connection(&local_integration("disk", root.path(), &["demo"]), LIMIT);
    assert_test(&t, "ok", "disk", &["listed root directory", "bucket demo"], &[]);
}

#[test]
fn a_bucket_that_is_a_file_is_not_a_directory() {
    let root = tempfile::tempdir().unwrap();
    std::fs::write(root.path().join("demo"), b"not a directory").unwrap();
    let t = test_connection(&local_integration("filebucket", root.path(), &["demo"]), LIMIT);
    assert_test(&t, "not_a_directory", "filebucket", &["demo is not a directory"], &[]);
}

#[test]
fn a_missing_bucket_directory_is_not_found_naming_the_bucket() {
    let root = tempfile::tempdir().unwrap();
    let t = test_connection(&local_integration("nobucket", root.path(), &["demo"]), LIMIT);
    assert_test(&t, "not_found", "nobucket", &["of bucket demo does not exist"], &[]);
}

#[test]
fn a_root_removed_after_start_up_is_not_found_naming_the_root() {
    let root = tempfile::tempdir().unwrap();
    let path = root.path().join("media");
    std::fs::create_dir(&path).unwrap();
    let text = config(&[&local_integration("gone", &path, &[])]);
    let cfg = mediagate::config::parse(&text, Path::new("connection_test.toml"), &|_| None).unwrap();
    let registry = Registry::build(&cfg.integrations, &cfg.upstream, &cfg.source).unwrap();
    std::fs::remove_dir(&path).unwrap();
    let t = runtime().block_on(registry.all()[0].test_connection(LIMIT));
    assert_test(&t, "not_found", "gone", &["the root directory", "does not exist"], &[]);
}

// ------------------------------------------------------------------ TLS set the wrong way round

#[test]
fn tls_against_a_plain_http_port_is_tls_saying_set_tls_false() {
    let Some(s3) = s3_peer() else { return };
    if s3.tls {
        return; // the peer speaks HTTPS: nothing to mix up
    }
    let t = test_connection(&s3_at("tlsonplain", &s3.host, s3.port, true), LIMIT);
    assert_test(&t, "tls", "tlsonplain", &["set tls = false"], &[]);
}

#[test]
fn plain_http_against_a_tls_port_is_connect_saying_set_tls_true() {
    let host = "storage.localhost";
    let port = untrusted_tls_listener(host);
    let t = test_connection(&s3_at("plainontls", host, port, false), LIMIT);
    assert_test(&t, "connect", "plainontls", &["set tls = true"], &[]);
}
