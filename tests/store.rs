//! The shared store (CONTRACT.md section 9): several replicas on one PostgreSQL 15 (a server of
//! each test's own, `tests/common/postgres.rs`), integrations and purges changed through any
//! replica applied on all within a second, secrets sealed, outages survived.

mod common;

use std::path::Path;
use std::time::{Duration, Instant};

use common::admin::{AdminApi, admin_section};
use common::postgres::Postgres;
use common::{MediaGate, config, get, local_integration, toml_str, wait_for, wait_until};
use http::{Method, StatusCode};
use serde_json::{Value, json};

const TOKEN: &str = "store-test-admin-token-0123456789";
/// `[store] encryption_key`: the base64 of 32 bytes.
const KEY: &str = "MDEyMzQ1Njc4OWFiY2RlZjAxMjM0NTY3ODlhYmNkZWY=";
const OTHER_KEY: &str = "ZmVkY2JhOTg3NjU0MzIxMGZlZGNiYTk4NzY1NDMyMTA=";
/// What the contract promises for a change to reach every replica.
const PROPAGATION: Duration = Duration::from_secs(1);
const WAIT: Duration = Duration::from_secs(20);

fn store_section(pg: &Postgres, key: &str) -> String {
    format!("[store]\nurl = {}\nencryption_key = {}\n", toml_str(&pg.url()), toml_str(key))
}

const CACHE: &str = "[cache]\nmax_bytes = \"16MiB\"\n";

/// A media folder with bucket `b` holding `a.txt`.
fn media() -> tempfile::TempDir {
    let dir = tempfile::tempdir().expect("temp dir");
    std::fs::create_dir_all(dir.path().join("b")).expect("bucket");
    std::fs::write(dir.path().join("b/a.txt"), b"hello from the shared store").expect("object");
    dir
}

fn local_json(root: &Path) -> Value {
    json!({"type": "local", "root": root.to_string_lossy(), "buckets": ["b"]})
}

/// A replica with `[store]`, the admin API, a cache and `parts` (integrations of its file).
fn replica(pg: &Postgres, key: &str, parts: &[&str]) -> (MediaGate, AdminApi) {
    let (store, admin) = (store_section(pg, key), admin_section(TOKEN));
    let mut all = vec![store.as_str(), admin.as_str(), CACHE];
    all.extend_from_slice(parts);
    let mg = MediaGate::start(&config(&all));
    let api = AdminApi::of(&mg, TOKEN);
    (mg, api)
}

fn status_of(mg: &MediaGate, path: &str) -> StatusCode {
    get(&mg.url(path), &[]).status
}

/// Waits (polling every 10 ms) until `mg` answers `path` with `want`; how long it took.
fn time_until(mg: &MediaGate, path: &str, want: StatusCode) -> Duration {
    let start = Instant::now();
    let answered = common::wait_until_every(WAIT, Duration::from_millis(10), || status_of(mg, path) == want);
    assert!(answered, "{path} never answered {want} on {}", mg.base_url);
    start.elapsed()
}

fn entries(api: &AdminApi) -> u64 {
    api.get("/api/cache").json()["entries"].as_u64().unwrap_or(u64::MAX)
}

#[test]
fn an_integration_put_on_one_replica_serves_on_the_others_within_a_second_and_a_delete_likewise() {
    let Some(pg) = Postgres::start() else { return };
    let dir = media();
    let replicas: Vec<_> = (0..3).map(|_| replica(&pg, KEY, &[])).collect();
    for (mg, _) in &replicas {
        assert_eq!(status_of(mg, "/local/b/a.txt"), StatusCode::NOT_FOUND);
    }
    let put = replicas[0].1.put("shared", &local_json(dir.path()));
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.describe());
    for (mg, _) in &replicas[1..] {
        let took = time_until(mg, "/local/b/a.txt", StatusCode::OK);
        assert!(took <= PROPAGATION, "the PUT reached {} after {took:?}", mg.base_url);
        eprintln!("PUT reached {} after {took:?}", mg.base_url);
    }
    let listed = replicas[2].1.listed("shared").expect("listed on replica 3");
    assert_eq!(listed["root"], dir.path().to_string_lossy().as_ref());

    let deleted = replicas[0].1.delete("shared");
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.describe());
    for (mg, _) in &replicas[1..] {
        let took = time_until(mg, "/local/b/a.txt", StatusCode::NOT_FOUND);
        assert!(took <= PROPAGATION, "the DELETE reached {} after {took:?}", mg.base_url);
        eprintln!("DELETE reached {} after {took:?}", mg.base_url);
        assert_eq!(get(&mg.url("/local/b/a.txt"), &[]).error_code(), "no_integration");
    }
}

#[test]
fn a_purge_on_one_replica_empties_the_object_on_every_replica() {
    let Some(pg) = Postgres::start() else { return };
    let dir = media();
    let file = local_integration("files", dir.path(), &["b"]);
    let replicas: Vec<_> = (0..3).map(|_| replica(&pg, KEY, &[&file])).collect();
    for (mg, api) in &replicas {
        assert_eq!(status_of(mg, "/local/b/a.txt"), StatusCode::OK);
        let again = get(&mg.url("/local/b/a.txt"), &[]);
        assert!(again.header("cache-status").unwrap_or("").contains("hit"), "{}", again.describe());
        assert_eq!(entries(api), 1);
    }
    let purged = replicas[1].1.call(Method::POST, "/api/cache/purge", Some(r#"{"locator": "local://b/a.txt"}"#));
    assert_eq!(purged.status, StatusCode::OK, "{}", purged.describe());
    assert_eq!(purged.json()["purged"], 1);
    for (mg, api) in &replicas {
        let start = Instant::now();
        wait_for("the purge on every replica", WAIT, || entries(api) == 0);
        assert!(start.elapsed() <= PROPAGATION, "the purge reached {} after {:?}", mg.base_url, start.elapsed());
        eprintln!("purge seen on {} after {:?} (polled every 50 ms)", mg.base_url, start.elapsed());
        let next = get(&mg.url("/local/b/a.txt"), &[]);
        assert!(next.header("cache-status").unwrap_or("").contains("fwd=miss"), "{}", next.describe());
    }
}

#[test]
fn secrets_are_sealed_in_the_store_and_never_stored_in_clear() {
    let Some(pg) = Postgres::start() else { return };
    let (_mg, api) = replica(&pg, KEY, &[]);
    let (_mg2, api2) = replica(&pg, KEY, &[]);
    let secret = "SuperSecretStorageKey-never-in-clear-42";
    let body = json!({"type": "s3", "endpoint": "127.0.0.1", "port": 1, "tls": false, "region": "us-east-1",
        "access_key_id": "AKIDSTORE", "secret_access_key": secret, "buckets": ["sealed"]});
    let put = api.put("sealed", &body);
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.describe());
    let stored = pg.psql("SELECT body::text FROM mediagate_integrations WHERE name = 'sealed'");
    assert!(stored.contains("AKIDSTORE"), "the row: {stored}");
    assert!(!stored.contains(secret) && !stored.contains("SuperSecret"), "a secret in clear: {stored}");
    assert!(stored.contains("\"sealed\""), "the secret is not sealed: {stored}");
    let everything = pg.psql("SELECT string_agg(t::text, ' ') FROM (SELECT * FROM mediagate_integrations) t");
    assert!(!everything.contains(secret), "a secret in clear: {everything}");
    // The other replica opened it: the marker keeps the stored secret on a PUT there.
    wait_for("the integration on replica 2", WAIT, || api2.listed("sealed").is_some());
    let listed = api2.listed("sealed").expect("listed");
    assert_eq!(listed["secret_access_key"], "********");
    let mut again = body.clone();
    again["secret_access_key"] = json!("********");
    again["region"] = json!("eu-west-1");
    let kept = api2.put("sealed", &again);
    assert_eq!(kept.status, StatusCode::OK, "{}", kept.describe());
    assert!(!pg.psql("SELECT body::text FROM mediagate_integrations").contains(secret));
}

#[test]
fn the_file_integrations_are_copied_into_an_empty_store_once() {
    let Some(pg) = Postgres::start() else { return };
    let dir = media();
    let file = local_integration("from-file", dir.path(), &["b"]);
    let (mg, api) = replica(&pg, KEY, &[&file]);
    assert_eq!(status_of(&mg, "/local/b/a.txt"), StatusCode::OK);
    assert_eq!(pg.psql("SELECT name FROM mediagate_integrations").trim(), "from-file");
    let deleted = api.delete("from-file");
    assert_eq!(deleted.status, StatusCode::NO_CONTENT, "{}", deleted.describe());
    drop(mg);
    // The same file again: the store is empty now, but it was filled once already.
    let (mg, api) = replica(&pg, KEY, &[&file]);
    assert_eq!(status_of(&mg, "/local/b/a.txt"), StatusCode::NOT_FOUND);
    assert!(api.list().is_empty(), "{:?}", api.list());
    assert_eq!(pg.psql("SELECT count(*) FROM mediagate_integrations").trim(), "0");
}

#[test]
fn a_wrong_encryption_key_is_a_clear_error_naming_what_cannot_be_decrypted_and_loses_nothing() {
    let Some(pg) = Postgres::start() else { return };
    let (mg, api) = replica(&pg, KEY, &[]);
    let body = json!({"type": "s3", "endpoint": "127.0.0.1", "port": 1, "tls": false, "region": "us-east-1",
        "access_key_id": "AKIDKEY", "secret_access_key": "the-secret", "buckets": ["k"]});
    assert_eq!(api.put("keyed", &body).status, StatusCode::CREATED);
    drop(mg);
    let before = pg.psql("SELECT body::text FROM mediagate_integrations");
    let (store, admin) = (store_section(&pg, OTHER_KEY), admin_section(TOKEN));
    let refused = MediaGate::try_start(&config(&[&store, &admin])).err().expect("a wrong key must not start");
    assert!(refused.contains("integration \\\"keyed\\\"") || refused.contains("integration \"keyed\""), "{refused}");
    assert!(refused.contains("secret_access_key") && refused.contains("encryption_key"), "{refused}");
    assert!(refused.contains("cannot be decrypted"), "{refused}");
    assert_eq!(pg.psql("SELECT body::text FROM mediagate_integrations"), before, "the store changed");
    // `mediagate check` reads the store too: the same message, and the integrations it holds.
    let checked = MediaGate::check(&config(&[&store, &admin]));
    assert_eq!(checked.status.code(), Some(2), "{checked:?}");
    let stderr = String::from_utf8_lossy(&checked.stderr);
    assert!(stderr.contains("\"keyed\"") && stderr.contains("cannot be decrypted"), "{stderr}");
    let right = store_section(&pg, KEY);
    let checked = MediaGate::check(&config(&[&right, &admin]));
    let stdout = String::from_utf8_lossy(&checked.stdout);
    assert!(stdout.contains("ok   store: ") && stdout.contains("1 integration(s), every secret decrypts"), "{stdout}");
    assert!(stdout.contains("FAIL keyed (s3)"), "the store's integration is tested: {stdout}");
    let (_mg, api) = replica(&pg, KEY, &[]);
    assert!(api.listed("keyed").is_some(), "the right key reads it again");
}

#[test]
fn bad_store_values_are_reported_with_line_and_key() {
    let text = config(&["[store]\nurl = \"mysql://u:hunter2@db/m\"\nencryption_key = \"c2hvcnQ=\"\n"]);
    let refused = MediaGate::try_start(&text).err().expect("a bad [store] must not start");
    assert!(refused.contains("mediagate.toml:5: store.url: expected a URL such as"), "{refused}");
    assert!(refused.contains("mediagate.toml:6: store.encryption_key: decodes to 5 bytes, not 32"), "{refused}");
    let stderr = refused.split("stderr:").nth(1).unwrap_or_default();
    assert!(!stderr.contains("hunter2"), "the URL's password was printed: {stderr}");
}

#[test]
fn a_store_outage_keeps_media_flowing_refuses_admin_writes_clearly_and_catches_up_after() {
    let Some(mut pg) = Postgres::start() else { return };
    let dir = media();
    let file = local_integration("files", dir.path(), &["b"]);
    let replicas: Vec<_> = (0..3).map(|_| replica(&pg, KEY, &[&file])).collect();
    for (_, api) in &replicas {
        let ready = api.readyz();
        assert_eq!(ready["store"]["connected"], true, "{ready}");
        assert_eq!(api.metric("mediagate_store_connected"), 1.0);
    }
    pg.stop();
    for (mg, api) in &replicas {
        wait_for("the replica to see the store gone", WAIT, || api.readyz()["store"]["connected"] == false);
        let ready = api.readyz();
        assert_eq!(ready["ready"], true, "a replica that knows its integrations stays ready: {ready}");
        assert!(ready["store"]["error"].as_str().is_some_and(|e| !e.is_empty()), "{ready}");
        assert_eq!(api.metric("mediagate_store_connected"), 0.0);
        assert!(api.metric("mediagate_store_errors_total{operation=\"connection\"}") >= 1.0);
        assert_eq!(status_of(mg, "/local/b/a.txt"), StatusCode::OK, "media during the outage");
    }
    let other = json!({"type": "local", "root": dir.path().to_string_lossy(), "buckets": ["c"]});
    let refused = replicas[0].1.put("other", &other);
    assert_eq!(refused.status, StatusCode::SERVICE_UNAVAILABLE, "{}", refused.describe());
    assert_eq!(refused.error_code(), "store_unavailable");
    assert!(refused.error_message().contains("nothing was saved"), "{}", refused.describe());
    assert!(replicas[0].1.listed("other").is_none());
    let purge = replicas[1].1.call(Method::POST, "/api/cache/purge", Some(r#"{"prefix": "local://b/"}"#));
    assert_eq!(purge.status, StatusCode::SERVICE_UNAVAILABLE, "{}", purge.describe());
    assert_eq!(purge.error_code(), "store_unavailable");
    assert!(purge.error_message().contains("purged on this replica only"), "{}", purge.describe());
    assert_eq!(entries(&replicas[1].1), 0, "the purge was done here");

    pg.restart();
    for (mg, api) in &replicas {
        wait_for("the replica to reconnect", WAIT, || api.readyz()["store"]["connected"] == true);
        assert_eq!(status_of(mg, "/local/b/a.txt"), StatusCode::OK);
        assert_eq!(api.metric("mediagate_store_connected"), 1.0);
    }
    // A change written while a replica is away reaches it when it comes back: written straight
    // into the table (no announcement), then every replica's connection is cut.
    let dir2 = media();
    let row = json!({"name": "missed", "type": "local", "root": dir2.path().to_string_lossy(), "buckets": ["missed"]});
    std::fs::create_dir_all(dir2.path().join("missed")).expect("bucket");
    std::fs::write(dir2.path().join("missed/m.txt"), b"missed while away").expect("object");
    pg.psql(&format!("INSERT INTO mediagate_integrations (name, body) VALUES ('missed', '{row}')"));
    for (mg, _) in &replicas {
        assert_eq!(status_of(mg, "/local/missed/m.txt"), StatusCode::NOT_FOUND, "nothing announced it");
    }
    pg.psql("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE application_name = 'mediagate'");
    for (mg, _) in &replicas {
        wait_for("the change to be caught up", WAIT, || status_of(mg, "/local/missed/m.txt") == StatusCode::OK);
    }
    // And a change through one replica reaches the others again.
    let put = replicas[2].1.put("other", &other);
    assert_eq!(put.status, StatusCode::CREATED, "{}", put.describe());
    for (_, api) in &replicas[..2] {
        wait_for("the change after the outage", WAIT, || api.listed("other").is_some());
    }
}

#[test]
fn readyz_says_not_ready_until_a_replica_could_load_from_the_store() {
    let Some(mut pg) = Postgres::start() else { return };
    pg.stop();
    let (mg, api) = replica(&pg, KEY, &[]);
    let r = api.call_as(Method::GET, "/readyz", None, None);
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.describe());
    assert_eq!(r.json()["store"]["connected"], false);
    pg.restart();
    wait_for("ready once the store is reached", WAIT, || {
        api.call_as(Method::GET, "/readyz", None, None).status == StatusCode::OK
    });
    assert!(wait_until(WAIT, || mg.stderr_text().contains("connected to the shared store")));
}

#[test]
fn tls_to_the_database_is_verified_against_ca_file() {
    let Some(pg) = Postgres::start_tls() else { return };
    let url = format!("{}?sslmode=require", pg.url());
    let store = |ca: &str| format!("[store]\nurl = {}\nencryption_key = {}\n{ca}", toml_str(&url), toml_str(KEY));
    let trusted = store(&format!("ca_file = {}\n", toml_str(&pg.ca_file())));
    let admin = admin_section(TOKEN);
    let mg = MediaGate::start(&config(&[&trusted, &admin]));
    let api = AdminApi::of(&mg, TOKEN);
    assert_eq!(api.readyz()["store"]["connected"], true);
    let ssl = pg.psql(
        "SELECT bool_and(s.ssl) FROM pg_stat_ssl s JOIN pg_stat_activity a USING (pid) WHERE a.application_name = 'mediagate'",
    );
    assert_eq!(ssl.trim(), "t", "the replica's connection is not TLS");
    // Without ca_file the self-signed certificate is not trusted: no connection, not ready.
    let untrusted = MediaGate::start(&config(&[&store(""), &admin]));
    let api = AdminApi::of(&untrusted, TOKEN);
    let r = api.call_as(Method::GET, "/readyz", None, None);
    assert_eq!(r.status, StatusCode::SERVICE_UNAVAILABLE, "{}", r.describe());
    let error = r.json()["store"]["error"].as_str().unwrap_or_default().to_owned();
    assert!(error.to_lowercase().contains("certificate"), "{error}");
}

#[test]
fn changes_made_at_once_on_two_replicas_are_serialized_and_an_overlap_is_refused() {
    let Some(pg) = Postgres::start() else { return };
    let dir = media();
    let (_a, api_a) = replica(&pg, KEY, &[]);
    let (_b, api_b) = replica(&pg, KEY, &[]);
    // Both claim bucket b: whichever the store takes first wins, the other is a conflict.
    let body = local_json(dir.path());
    let (ra, rb) = std::thread::scope(|s| {
        let a = s.spawn(|| api_a.put("first", &body));
        let b = s.spawn(|| api_b.put("second", &body));
        (a.join().expect("put a"), b.join().expect("put b"))
    });
    let mut statuses = [ra.status, rb.status];
    statuses.sort();
    assert_eq!(statuses, [StatusCode::CREATED, StatusCode::CONFLICT], "{} / {}", ra.describe(), rb.describe());
    assert_eq!(pg.psql("SELECT count(*) FROM mediagate_integrations").trim(), "1");
    let winner = if ra.status == StatusCode::CREATED { "first" } else { "second" };
    for api in [&api_a, &api_b] {
        wait_for("one integration on both", WAIT, || api.list().len() == 1 && api.listed(winner).is_some());
    }
}
