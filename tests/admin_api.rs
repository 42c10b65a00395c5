//! The admin API (CONTRACT.md section 6), black-box, against the real peers
//! (s3s-fs, Azurite): save-unfinished, connection tests with the storage's
//! reason, the secret marker, wrong kinds and conflicts, delete, the cache
//! dropped on a replacement, auth, and the audit lines. Reloads, restarts and
//! the no-secret sweep are in `tests/admin_reload.rs`.
//!
//! Run through `scripts/test.sh cargo test --test admin_api`; without a peer
//! a test is skipped, or fails under `CI=true`.

mod common;

use std::net::SocketAddr;
use std::time::Duration;

use common::admin::{AdminApi, admin_section, s3_json, s3_json_at};
use common::relay::{Fault, Relay};
use common::{MediaGate, azure_peer, config, get, pattern_bytes, s3_peer, sha256_hex, unique_bucket, wait_until};
use http::Method;
use serde_json::{Value, json};

const TOKEN: &str = "admin-api-test-token-4b7d2e91c0";
const WRONG_SECRET: &str = "admin-api-test-wrong-secret-8e3f";
const MARKER: &str = "********";
const WAIT: Duration = Duration::from_secs(20);

/// mediagate with the admin listener and `parts`, and its admin API.
fn start(parts: &[&str]) -> (MediaGate, AdminApi) {
    let admin = admin_section(TOKEN);
    let mut all = vec![admin.as_str()];
    all.extend_from_slice(parts);
    let mg = MediaGate::start(&config(&all));
    let api = AdminApi::of(&mg, TOKEN);
    (mg, api)
}

/// The `key`s of the `problems` of an answer.
fn problem_keys(body: &Value) -> Vec<String> {
    let problems = body["problems"].as_array().unwrap_or_else(|| panic!("no problems array: {body}"));
    problems
        .iter()
        .map(|p| {
            assert!(p["message"].as_str().is_some_and(|m| !m.is_empty()), "a problem without a message: {p}");
            p["key"].as_str().unwrap_or_else(|| panic!("a problem without a key: {p}")).to_owned()
        })
        .collect()
}

fn config_file(mg: &MediaGate) -> Vec<u8> {
    std::fs::read(&mg.config_path).expect("reading the config file")
}

#[test]
fn an_integration_saved_with_a_wrong_secret_is_failing_and_a_second_put_fixes_it_without_a_restart() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("api-fix");
    s3.seed(&bucket, &[("hello.txt", b"hello through the admin API")]);
    let (mut mg, api) = start(&[]);
    let url = mg.path_url("s3", &bucket, "hello.txt");

    let r = api.put("gallery", &s3_json(&s3, &[&bucket], WRONG_SECRET));
    assert_eq!(r.status, 201, "{}", r.describe());
    let body = r.json();
    assert_eq!(body["status"], "failing", "{body}");
    assert_eq!(body["test"]["ok"], false, "{body}");
    assert_eq!(body["test"]["code"], "SignatureDoesNotMatch", "{body}");
    let listed = api.listed("gallery").expect("the failing integration is saved");
    assert_eq!(listed["status"], "failing");
    assert_eq!(listed["last_test"]["code"], "SignatureDoesNotMatch");
    let media = get(&url, &[]);
    assert_eq!(media.status, 502, "{}", media.describe());
    assert_eq!(media.error_code(), "upstream_denied");

    let r = api.put("gallery", &s3_json(&s3, &[&bucket], &s3.secret_key));
    assert_eq!(r.status, 200, "a replacement answers 200: {}", r.describe());
    let body = r.json();
    assert_eq!(body["status"], "ok", "{body}");
    assert_eq!(body["test"]["ok"], true, "{body}");
    assert_eq!(body["test"]["code"], "ok", "{body}");
    let media = get(&url, &[]);
    assert_eq!(media.status, 200, "{}", media.describe());
    assert_eq!(media.body.as_ref(), b"hello through the admin API");
    assert!(mg.is_running(), "the same process serves the fixed integration");
    let starts = || mg.logs().iter().filter(|l| l["message"] == "mediagate started").count();
    assert!(wait_until(WAIT, || starts() > 0), "no start-up line:\n{}", mg.stderr_text());
    assert_eq!(starts(), 1, "mediagate started once:\n{}", mg.stderr_text());
}

#[test]
fn the_secret_marker_keeps_the_stored_secret_and_a_var_reference_is_shown_as_written() {
    let Some(s3) = s3_peer() else { return };
    let (plain_bucket, var_bucket) = (unique_bucket("api-marker"), unique_bucket("api-var"));
    s3.seed(&plain_bucket, &[("a.txt", b"plain secret")]);
    s3.seed(&var_bucket, &[("a.txt", b"secret from the environment")]);
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("mediagate.toml");
    std::fs::write(&path, config(&[&admin_section(TOKEN)])).expect("writing the config");
    let mg = MediaGate::start_file(&path, &[("MEDIAGATE_APITEST_MARKER_SECRET", &s3.secret_key)]);
    let api = AdminApi::of(&mg, TOKEN);

    let r = api.put("plain", &s3_json(&s3, &[&plain_bucket], &s3.secret_key));
    assert_eq!(r.status, 201, "{}", r.describe());
    assert_eq!(r.json()["integration"]["secret_access_key"], MARKER);
    assert_eq!(api.listed("plain").expect("listed")["secret_access_key"], MARKER);

    // The form sends the marker back with another change: the secret stays.
    let mut edit = s3_json(&s3, &[&plain_bucket], MARKER);
    edit["cache_control"] = json!("public, max-age=77");
    let r = api.put("plain", &edit);
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["status"], "ok", "the stored secret still signs: {}", r.text());
    assert_eq!(api.listed("plain").expect("listed")["cache_control"], "public, max-age=77");
    let media = get(&mg.path_url("s3", &plain_bucket, "a.txt"), &[]);
    assert_eq!(media.status, 200, "{}", media.describe());
    assert_eq!(media.body.as_ref(), b"plain secret");
    assert_eq!(media.header("cache-control"), Some("public, max-age=77"));
    let file = std::fs::read_to_string(&path).expect("reading the config");
    let line = format!("secret_access_key = {}", common::toml_str(&s3.secret_key));
    assert!(file.contains(&line) && !file.contains(MARKER), "the file keeps the secret, never the marker:\n{file}");

    // A ${VAR} reference is shown as written, resolved only to sign.
    let r = api.put("fromenv", &s3_json(&s3, &[&var_bucket], "${MEDIAGATE_APITEST_MARKER_SECRET}"));
    assert_eq!(r.status, 201, "{}", r.describe());
    assert_eq!(r.json()["status"], "ok", "{}", r.text());
    assert_eq!(r.json()["integration"]["secret_access_key"], "${MEDIAGATE_APITEST_MARKER_SECRET}");
    let media = get(&mg.path_url("s3", &var_bucket, "a.txt"), &[]);
    assert_eq!(media.status, 200, "{}", media.describe());
    let list = api.get("/api/integrations");
    assert!(list.text().contains("${MEDIAGATE_APITEST_MARKER_SECRET}"), "{}", list.text());
    assert!(!list.text().contains(&s3.secret_key), "a secret in the list: {}", list.text());

    // The marker with nothing stored is refused, naming the key.
    let r = api.put("newcomer", &s3_json(&s3, &[&unique_bucket("api-none")], MARKER));
    assert_eq!(r.status, 400, "{}", r.describe());
    assert_eq!(r.error_code(), "bad_config");
    assert_eq!(problem_keys(&r.json()), ["secret_access_key"]);
}

#[test]
fn an_incomplete_integration_is_saved_owns_its_bucket_and_names_what_it_lacks() {
    let Some(s3) = s3_peer() else { return };
    let (bucket, other) = (unique_bucket("api-unfinished"), unique_bucket("api-bare"));
    s3.seed(&bucket, &[("a.txt", b"served by the default until claimed")]);
    // A default integration with credentials for every bucket of the peer.
    let (mg, api) = start(&[&s3.integration("default", &[], "")]);
    let url = mg.path_url("s3", &bucket, "a.txt");
    assert_eq!(get(&url, &[]).status, 200, "the default serves the bucket before it is claimed");

    let mut body = s3_json(&s3, &[&bucket], "");
    body.as_object_mut().expect("an object").remove("secret_access_key");
    let r = api.put("unfinished", &body);
    assert_eq!(r.status, 201, "{}", r.describe());
    let answer = r.json();
    assert_eq!(answer["status"], "incomplete", "{answer}");
    assert_eq!(answer["test"], Value::Null, "an incomplete integration is not tested: {answer}");
    assert_eq!(problem_keys(&answer), ["secret_access_key"]);
    let listed = api.listed("unfinished").expect("saved");
    assert_eq!(listed["status"], "incomplete");
    assert_eq!(problem_keys(&listed), ["secret_access_key"]);

    let r = api.put("bare", &json!({"type": "s3", "buckets": [other]}));
    assert_eq!(r.status, 201, "{}", r.describe());
    let mut keys = problem_keys(&r.json());
    keys.sort();
    assert_eq!(keys, ["access_key_id", "secret_access_key"], "one problem per missing key");

    // Its bucket never falls through to the default.
    let media = get(&url, &[]);
    assert_eq!(media.status, 404, "{}", media.describe());
    assert_eq!(media.error_code(), "no_integration");
    let message = media.error_message();
    assert!(message.contains("unfinished") && message.contains("secret_access_key"), "{message}");
    let test = api.test("unfinished");
    assert_eq!(test.status, 200, "{}", test.describe());
    assert_eq!(test.json()["ok"], false, "{}", test.text());
}

#[test]
fn values_of_the_wrong_kind_are_bad_config_with_problems_and_leave_the_file_unchanged() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("api-kinds");
    let (mg, api) = start(&[]);
    let r = api.put("kept", &s3_json(&s3, &[&unique_bucket("api-kept")], &s3.secret_key));
    assert_eq!(r.status, 201, "{}", r.describe());
    let before = config_file(&mg);
    let valid = s3_json(&s3, &[&bucket], &s3.secret_key);
    let with = |key: &str, value: Value| {
        let mut body = valid.clone();
        body[key] = value;
        body.to_string()
    };

    let cases: Vec<(&str, &str, String, Option<&str>)> = vec![
        ("a port that is not a number", "kinds", with("port", json!("x")), Some("port")),
        ("an unknown key", "kinds", with("colour", json!("blue")), Some("colour")),
        ("an unknown type", "kinds", with("type", json!("ftp")), Some("type")),
        ("a bad name in the URL", "Bad_Name", valid.to_string(), Some("name")),
        ("a body naming another integration", "kinds", with("name", json!("other")), Some("name")),
        ("a null value", "kinds", with("region", Value::Null), Some("region")),
        ("JSON that is an array", "kinds", "[1, 2]".to_owned(), None),
        ("JSON that is a string", "kinds", "\"kinds\"".to_owned(), None),
        ("text that is not JSON", "kinds", "{type = s3".to_owned(), None),
    ];
    for (what, name, body, key) in cases {
        let r = api.put_raw(name, &body);
        assert_eq!(r.status, 400, "{what}: {}", r.describe());
        assert_eq!(r.error_code(), "bad_config", "{what}");
        let keys = problem_keys(&r.json());
        assert!(!keys.is_empty(), "{what}: no problems: {}", r.text());
        if let Some(key) = key {
            assert!(keys.iter().any(|k| k == key), "{what}: no problem for {key}: {}", r.text());
        }
        assert_eq!(config_file(&mg), before, "{what}: the file changed");
        assert!(api.listed(name).is_none(), "{what}: saved anyway");
    }
}

#[test]
fn an_overlapping_scope_is_a_conflict_naming_both_and_nothing_is_saved() {
    let Some(s3) = s3_peer() else { return };
    let (bucket, other) = (unique_bucket("api-overlap"), unique_bucket("api-other"));
    let (mg, api) = start(&[]);
    assert_eq!(api.put("first", &s3_json(&s3, &[&bucket], &s3.secret_key)).status, 201);
    let before = config_file(&mg);

    let r = api.put("second", &s3_json(&s3, &[&other, &bucket], &s3.secret_key));
    assert_eq!(r.status, 409, "{}", r.describe());
    assert_eq!(r.error_code(), "conflict");
    let message = r.error_message();
    assert!(message.contains("\"first\"") && message.contains("\"second\""), "{message}");
    assert!(!problem_keys(&r.json()).is_empty(), "{}", r.text());
    assert_eq!(config_file(&mg), before, "the file changed");
    assert!(api.listed("second").is_none());
}

#[test]
fn a_deleted_integration_is_gone_from_the_api_the_file_and_its_bucket() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("api-delete");
    s3.seed(&bucket, &[("a.txt", b"soon gone")]);
    let (mg, api) = start(&[]);
    assert_eq!(api.put("doomed", &s3_json(&s3, &[&bucket], &s3.secret_key)).status, 201);
    let url = mg.path_url("s3", &bucket, "a.txt");
    assert_eq!(get(&url, &[]).status, 200);

    let r = api.delete("doomed");
    assert_eq!(r.status, 204, "{}", r.describe());
    assert!(r.body.is_empty());
    for r in [api.get("/api/integrations/doomed"), api.delete("doomed")] {
        assert_eq!(r.status, 404, "{}", r.describe());
        assert_eq!(r.error_code(), "not_found");
    }
    assert!(api.listed("doomed").is_none());
    let file = String::from_utf8(config_file(&mg)).expect("UTF-8");
    assert!(!file.contains("doomed"), "{file}");
    let media = get(&url, &[]);
    assert_eq!(media.status, 404, "{}", media.describe());
    assert_eq!(media.error_code(), "no_integration");
}

/// No idle upstream connections: the relay's connection count is the
/// number of storage requests (as in `tests/cache.rs`).
const ONE_REQUEST_PER_CONNECTION: &str = "[upstream]\npool_max_idle_per_host = 0\n";
const CACHE: &str = "[cache]\nttl = \"1h\"\n";

fn settle(relay: &Relay) {
    let settled = wait_until(WAIT, || relay.open_connections() == 0);
    assert!(settled, "{} storage requests still open", relay.open_connections());
}

#[test]
fn replacing_an_integration_drops_its_cached_objects_and_other_changes_keep_them() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("api-cache");
    let data = pattern_bytes(64 * 1024, 5);
    s3.seed(&bucket, &[("a.bin", &data)]);
    let relay = Relay::start(s3.addr(), Fault::None);
    let (mg, api) = start(&[ONE_REQUEST_PER_CONNECTION, CACHE]);
    let body = s3_json_at(&s3, "127.0.0.1", relay.addr().port(), &[&bucket], &s3.secret_key);
    assert_eq!(api.put("cached", &body).json()["status"], "ok");
    let url = mg.path_url("s3", &bucket, "a.bin");
    let fetch = || {
        let r = get(&url, &[]);
        assert_eq!(r.status, 200, "{}", r.describe());
        assert_eq!(r.body.as_ref(), &data[..]);
        settle(&relay);
        r
    };
    fetch();
    let before = relay.connections();
    fetch();
    assert_eq!(relay.connections(), before, "the second GET is a cache hit");

    // Another integration changes: this one's objects stay cached.
    assert_eq!(api.put("unrelated", &s3_json(&s3, &[&unique_bucket("api-unrelated")], &s3.secret_key)).status, 201);
    let before = relay.connections();
    fetch();
    assert_eq!(relay.connections(), before, "a change to another integration keeps this one's cache");

    let mut changed = body.clone();
    changed["cache_control"] = json!("public, max-age=5");
    let r = api.put("cached", &changed);
    assert_eq!(r.status, 200, "{}", r.describe());
    settle(&relay);
    let before = relay.connections();
    let r = fetch();
    assert!(relay.connections() > before, "bytes fetched with the old settings are never served under the new ones");
    assert_eq!(r.header("cache-control"), Some("public, max-age=5"));
}

#[test]
fn a_response_in_flight_is_not_broken_by_a_replacement_of_its_integration() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("api-inflight");
    let data = pattern_bytes(16 << 20, 6);
    s3.seed(&bucket, &[("big.bin", &data)]);
    let relay = Relay::start(s3.addr(), Fault::None);
    // Without the cache the body streams straight through: while the client
    // pauses, back-pressure keeps the storage response open (a cache fill
    // could read the whole object ahead and close it).
    let (mg, api) = start(&[ONE_REQUEST_PER_CONNECTION, "[cache]\nenabled = false\n"]);
    let body = s3_json_at(&s3, "127.0.0.1", relay.addr().port(), &[&bucket], &s3.secret_key);
    assert_eq!(api.put("streamed", &body).status, 201);

    let mut changed = body.clone();
    changed["cache_control"] = json!("public, max-age=9");
    let url = mg.path_url("s3", &bucket, "big.bin");
    let (status, _, outcome, sha) = common::get_streaming_with_pause(&url, &[], 256 * 1024, || {
        assert!(relay.open_connections() > 0, "the storage response is still in flight during the change");
        let r = api.put("streamed", &changed);
        assert_eq!(r.status, 200, "the replacement while a response is in flight: {}", r.describe());
    });
    assert_eq!(status, 200);
    assert_eq!(outcome, Ok(data.len() as u64), "the response in flight ended early");
    assert_eq!(sha, sha256_hex(&data), "the bytes of the response in flight changed");
    let after = get(&url, &[("range", "bytes=0-0")]);
    assert_eq!(after.header("cache-control"), Some("public, max-age=9"), "the next request sees the change");
}

#[test]
fn the_api_answers_401_unauthorized_without_the_token_or_with_a_wrong_one() {
    let (_mg, api) = start(&[]);
    for token in [None, Some("not-the-admin-token-at-all"), Some("")] {
        for (method, path) in
            [(Method::GET, "/api/integrations"), (Method::PUT, "/api/integrations/x"), (Method::GET, "/metrics")]
        {
            let r = api.call_as(method.clone(), path, Some("{}"), token);
            assert_eq!(r.status, 401, "{method} {path} with {token:?}: {}", r.describe());
            assert_eq!(r.error_code(), "unauthorized");
            assert!(r.header("www-authenticate").is_some_and(|h| h.starts_with("Bearer")), "{}", r.describe());
        }
    }
    assert!(api.listed("x").is_none(), "a refused PUT saved nothing");
}

#[test]
fn health_readiness_and_the_page_answer_without_a_token() {
    let (_mg, api) = start(&[]);
    for path in ["/healthz", "/readyz", "/"] {
        let r = api.call_as(Method::GET, path, None, None);
        assert_eq!(r.status, 200, "{path}: {}", r.describe());
    }
    let ready = api.readyz();
    assert_eq!(ready["ready"], true, "{ready}");
    assert_eq!(ready["config"]["last_reload_error"], Value::Null, "{ready}");
    assert!(ready["config"]["loaded_at"].is_string(), "{ready}");
}

#[test]
fn unknown_routes_and_integration_names_are_404_not_found() {
    let (_mg, api) = start(&[]);
    let calls = [
        (Method::GET, "/api/nothing-here"),
        (Method::GET, "/api/integrations/nobody"),
        (Method::DELETE, "/api/integrations/nobody"),
        (Method::POST, "/api/integrations/nobody/test"),
        (Method::PATCH, "/api/integrations"),
    ];
    for (method, path) in calls {
        let r = api.call(method.clone(), path, None);
        assert_eq!(r.status, 404, "{method} {path}: {}", r.describe());
        assert_eq!(r.error_code(), "not_found", "{method} {path}");
    }
}

#[test]
fn start_up_is_refused_when_the_admin_listener_is_beyond_loopback_without_a_token() {
    let err = match MediaGate::try_start(&config(&["[admin]\nlisten = \"0.0.0.0:0\"\n"])) {
        Ok(_) => panic!("mediagate started with an admin listener on 0.0.0.0 and no token"),
        Err(e) => e,
    };
    assert!(err.contains("exit status: 2"), "{err}");
    assert!(err.contains("admin.listen") && err.contains("token"), "the message names the key: {err}");
}

#[test]
fn an_azure_sas_without_list_permission_is_failing_and_a_read_list_sas_fixes_it() {
    let Some(az) = azure_peer() else { return };
    let container = unique_bucket("api-sas");
    az.create_container(&container);
    az.put_blob(&container, "clip.txt", b"served with a SAS".to_vec());
    let (mg, api) = start(&[]);
    let body =
        |sas: String| json!({"type": "azure-blob", "storage_url": az.container_url(&container), "sas_token": sas});

    let r = api.put("blobs", &body(az.container_sas(&container, "r")));
    assert_eq!(r.status, 201, "{}", r.describe());
    let answer = r.json();
    assert_eq!(answer["status"], "failing", "{answer}");
    assert_eq!(answer["test"]["code"], "AuthorizationPermissionMismatch", "{answer}");
    let message = answer["test"]["message"].as_str().unwrap_or_default();
    assert!(message.contains("list"), "the message says which permission is missing: {message}");

    let r = api.put("blobs", &body(az.container_sas(&container, "rl")));
    assert_eq!(r.status, 200, "{}", r.describe());
    assert_eq!(r.json()["status"], "ok", "{}", r.text());
    assert_eq!(r.json()["integration"]["sas_token"], MARKER);
    let media = get(&mg.url(&format!("/az/{}/{container}/clip.txt", az.account)), &[]);
    assert_eq!(media.status, 200, "{}", media.describe());
    assert_eq!(media.body.as_ref(), b"served with a SAS");
}

/// The audit lines (target `mediagate::audit`) of admin changes so far.
fn audit_lines(mg: &MediaGate) -> Vec<Value> {
    mg.logs().into_iter().filter(|l| l["target"] == "mediagate::audit" && l["action"].is_string()).collect()
}

#[test]
fn every_change_writes_one_audit_line_with_action_integration_outcome_and_client() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("api-audit");
    let (mg, api) = start(&[]);
    let good = s3_json(&s3, &[&bucket], &s3.secret_key);
    let mut bad = good.clone();
    bad["port"] = json!("x");
    let purge =
        || api.call(Method::POST, "/api/cache/purge", Some(&json!({"prefix": format!("s3://{bucket}/")}).to_string()));
    // (action, integration, what the outcome says, the change, answering its status)
    type Change<'a> = (&'a str, Option<&'a str>, &'a str, Box<dyn Fn() -> u16 + 'a>);
    let changes: Vec<Change> = vec![
        ("put", Some("audited"), "created", Box::new(|| api.put("audited", &good).status.as_u16())),
        ("put", Some("audited"), "replaced", Box::new(|| api.put("audited", &good).status.as_u16())),
        ("put", Some("audited"), "bad_config", Box::new(|| api.put("audited", &bad).status.as_u16())),
        ("delete", Some("audited"), "deleted", Box::new(|| api.delete("audited").status.as_u16())),
        ("delete", Some("audited"), "not_found", Box::new(|| api.delete("audited").status.as_u16())),
        ("purge", None, "purged", Box::new(|| purge().status.as_u16())),
        (
            "purge",
            None,
            "bad_config",
            Box::new(|| api.call(Method::POST, "/api/cache/purge", Some("{}")).status.as_u16()),
        ),
    ];
    for (n, (action, integration, outcome, change)) in changes.iter().enumerate() {
        let status = change();
        let logged = wait_until(WAIT, || audit_lines(&mg).len() > n);
        assert!(logged, "no audit line for {action} {integration:?} (answered {status}):\n{}", mg.stderr_text());
        let lines = audit_lines(&mg);
        assert_eq!(lines.len(), n + 1, "one audit line per change: {lines:#?}");
        let line = &lines[n];
        assert_eq!(line["action"], *action, "{line}");
        if let Some(name) = integration {
            assert_eq!(line["integration"], *name, "{line}");
        }
        let said = line["outcome"].as_str().unwrap_or_else(|| panic!("no outcome: {line}"));
        assert!(said.contains(outcome), "{action} answered {status}; outcome {said:?} should say {outcome}: {line}");
        let client: SocketAddr =
            line["client"].as_str().and_then(|c| c.parse().ok()).unwrap_or_else(|| panic!("{line}"));
        assert!(client.ip().is_loopback(), "{line}");
    }
}
