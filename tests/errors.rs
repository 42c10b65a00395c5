//! Black-box tests of the error surface (CONTRACT.md sections 1, 2 and 7):
//! unparsable locators and paths, methods, and configs that must be refused
//! with every problem named. No storage peer needed.

mod common;

use common::*;
use http::{Method, StatusCode};

/// A mediagate with one local integration (bucket `b`, one file `k.txt`).
fn gate() -> (tempfile::TempDir, MediaGate) {
    let dir = tempfile::Builder::new().prefix("mediagate-errors-").tempdir().unwrap();
    std::fs::create_dir_all(dir.path().join("b")).unwrap();
    std::fs::write(dir.path().join("b/k.txt"), b"k").unwrap();
    let mg = MediaGate::start(&config(&[&local_integration("files", dir.path(), &["b"])]));
    (dir, mg)
}

/// Asserts a JSON error `{"error": {"code": code, "message": <non-empty>}}`.
fn assert_error(r: &TestResponse, status: StatusCode, code: &str, what: &str) {
    assert_eq!(r.status, status, "{what}: {}", r.describe());
    assert!(
        r.header("content-type").is_some_and(|t| t.starts_with("application/json")),
        "{what}: the error is not application/json: {}",
        r.describe()
    );
    assert_eq!(r.error_code(), code, "{what}");
    assert!(!r.error_message().trim().is_empty(), "{what}: empty message");
}

#[test]
fn the_local_integration_used_here_works() {
    let (_dir, mg) = gate();
    let r = get(&mg.path_url("local", "b", "k.txt"), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
}

#[test]
fn a_locator_without_a_scheme_is_a_bad_locator() {
    let (_dir, mg) = gate();
    let r = get(&mg.query_url("b/k.txt"), &[]);
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_locator", "no scheme");
}

#[test]
fn a_locator_with_an_unknown_scheme_is_a_bad_locator() {
    let (_dir, mg) = gate();
    for locator in ["ftp://b/k.txt", "file:///etc/passwd", "http://example.com/b/k.txt"] {
        let r = get(&mg.query_url(locator), &[]);
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_locator", locator);
    }
    let r = get(&mg.url("/ftp/b/k.txt"), &[]);
    assert_error(&r, StatusCode::BAD_REQUEST, "bad_locator", "/ftp/b/k.txt");
}

#[test]
fn a_locator_with_an_empty_key_or_bucket_is_a_bad_locator() {
    let (_dir, mg) = gate();
    for locator in ["local://b/", "local://b", "s3://b/", "local:///k.txt", "s3://"] {
        let r = get(&mg.query_url(locator), &[]);
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_locator", locator);
    }
    for path in ["/local/b/", "/local/b", "/s3/b/", "/local//k.txt"] {
        let r = get(&mg.url(path), &[]);
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_locator", path);
    }
}

#[test]
fn a_malformed_percent_escape_is_a_bad_locator() {
    let (_dir, mg) = gate();
    for path_and_query in
        ["/local/b/a%zz.txt", "/local/b/a%2", "/media?locator=local%3A%2F%2Fb%2Fa%zz", "/media?locator=%"]
    {
        let r = get(&mg.url(path_and_query), &[]);
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_locator", path_and_query);
    }
}

#[test]
fn a_repeated_or_missing_locator_parameter_is_a_bad_locator() {
    let (_dir, mg) = gate();
    let one = encode_component("local://b/k.txt");
    for path_and_query in [
        format!("/media?locator={one}&locator={one}"),
        "/media".to_owned(),
        "/media?loc=x".to_owned(),
        "/media?locator=".to_owned(),
    ] {
        let r = get(&mg.url(&path_and_query), &[]);
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_locator", &path_and_query);
    }
}

#[test]
fn an_unknown_path_is_a_bad_locator() {
    let (_dir, mg) = gate();
    for path in ["/nothing-here", "/favicon.ico", "/s4/b/k.txt", "/media/extra"] {
        let r = get(&mg.url(path), &[]);
        assert_error(&r, StatusCode::BAD_REQUEST, "bad_locator", path);
    }
}

#[test]
fn post_put_and_delete_are_405_with_an_allow_header() {
    let (_dir, mg) = gate();
    for method in [Method::POST, Method::PUT, Method::DELETE, Method::PATCH] {
        let r = request(method.clone(), &mg.path_url("local", "b", "k.txt"), &[]);
        assert_eq!(r.status, StatusCode::METHOD_NOT_ALLOWED, "{method}: {}", r.describe());
        let allow = r.header("allow").unwrap_or_else(|| panic!("{method}: 405 without Allow: {}", r.describe()));
        assert!(allow.contains("GET") && allow.contains("HEAD"), "{method}: Allow {allow:?}");
        assert!(r.json()["error"]["code"].is_string(), "{method}: not a JSON error: {}", r.describe());
    }
    // The file is still there.
    assert_eq!(get(&mg.path_url("local", "b", "k.txt"), &[]).status, StatusCode::OK);
}

#[test]
fn head_of_a_bad_locator_is_400_without_a_body() {
    let (_dir, mg) = gate();
    let r = head(&mg.query_url("nonsense"), &[]);
    assert_eq!(r.status, StatusCode::BAD_REQUEST, "{}", r.describe());
    assert!(r.body.is_empty());
}

// ------------------------------------------------------------------ config problems

fn combined(out: &std::process::Output) -> String {
    format!("{}\n{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr))
}

const MANY_PROBLEMS: &str = r#"
[server]
listen = "127.0.0.1:0"
colour_scheme = "blue"

[[integration]]
name = "first-default"
type = "local"
root = "/tmp"

[[integration]]
name = "second-default"
type = "local"
root = "/var/tmp"

[[integration]]
name = "bad-port"
type = "s3"
endpoint = "127.0.0.1"
port = 70000
tls = false
region = "us-east-1"
access_key_id = "ak"
secret_access_key = "sk"
buckets = ["x"]
"#;

#[test]
fn check_reports_every_problem_of_a_config_at_once() {
    let out = MediaGate::check(MANY_PROBLEMS);
    let text = combined(&out);
    assert!(!out.status.success(), "check accepted a broken config:\n{text}");
    assert!(text.contains("colour_scheme"), "the unknown key is not named:\n{text}");
    assert!(text.contains("70000") || text.contains("port"), "the bad port is not reported:\n{text}");
    assert!(
        text.contains("first-default") && text.contains("second-default"),
        "the two default local integrations are not both named:\n{text}"
    );
}

#[test]
fn serve_refuses_a_broken_config_without_listening() {
    match MediaGate::try_start(MANY_PROBLEMS) {
        Ok(mg) => panic!("mediagate started with a broken config at {}", mg.base_url),
        Err(e) => assert!(e.contains("colour_scheme"), "the problem is not reported: {e}"),
    }
}

#[test]
fn two_integrations_scoping_the_same_bucket_are_refused_naming_both() {
    let cfg = config(&[
        &local_integration("alpha-files", std::path::Path::new("/tmp"), &["shared", "a"]),
        &local_integration("beta-files", std::path::Path::new("/var/tmp"), &["shared"]),
    ]);
    let out = MediaGate::check(&cfg);
    let text = combined(&out);
    assert!(!out.status.success(), "check accepted two scopes of one bucket:\n{text}");
    assert!(text.contains("alpha-files") && text.contains("beta-files"), "both are not named:\n{text}");
    assert!(text.contains("shared"), "the bucket is not named:\n{text}");
}

#[test]
fn an_unset_environment_variable_in_the_config_is_named() {
    let cfg = config(&[&format!(
        "[[integration]]\nname = \"env-s3\"\ntype = \"s3\"\nendpoint = \"127.0.0.1\"\nport = 9\ntls = false\n\
         access_key_id = \"ak\"\nsecret_access_key = \"${{MEDIAGATE_TEST_SURELY_UNSET_{}}}\"\nbuckets = [\"x\"]\n",
        std::process::id()
    )]);
    let out = MediaGate::check(&cfg);
    let text = combined(&out);
    assert!(!out.status.success(), "check accepted an unset variable:\n{text}");
    assert!(text.contains("MEDIAGATE_TEST_SURELY_UNSET"), "the variable is not named:\n{text}");
}

#[test]
fn an_invalid_integration_name_is_refused() {
    let cfg = config(&[&local_integration("Not_Valid Name", std::path::Path::new("/tmp"), &["b"])]);
    let out = MediaGate::check(&cfg);
    assert!(!out.status.success(), "check accepted an invalid name:\n{}", combined(&out));
    assert!(combined(&out).contains("Not_Valid Name"), "{}", combined(&out));
}
