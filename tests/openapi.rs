//! The OpenAPI 3.1 description of the admin API (`docs/openapi.json`,
//! served at `GET /openapi.json`) against the running server:
//!
//! - the served description is the committed file (`MEDIAGATE_WRITE_OPENAPI=1
//!   cargo test --test openapi` rewrites the file from the served one);
//! - a scripted session against s3s-fs and a local integration calls every
//!   path and method of the description and provokes each status it lists;
//!   every JSON answer is validated (JSON Schema 2020-12, the `jsonschema`
//!   crate) against the schema the description gives for that path, method
//!   and status, and every body sent against the request schema;
//! - the reverse: every method the description does not list on one of its
//!   paths, and paths it does not list, answer `404 not_found`;
//! - the file is valid OpenAPI 3.1 for `openapi-spec-validator`
//!   (`MEDIAGATE_TEST_OPENAPI_VALIDATOR`, installed by `scripts/test.sh`).
//!
//! Needs the S3 peer (s3s-fs) for the session; without it the session is
//! skipped, or a failure under `CI=true`.

mod common;

use std::collections::{BTreeSet, HashMap};
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Duration;

use bytes::Bytes;
use common::{MediaGate, S3Peer, TestResponse, config, local_integration, s3_peer, toml_str, unique_bucket};
use http::{Method, Request};
use http_body_util::Full;
use serde_json::{Value, json};

const TOKEN: &str = "openapi-test-token-0123456789abcdef";
const WRONG_SECRET: &str = "not-the-secret-of-the-openapi-test";
const MARKER: &str = "********";
/// Where the description is committed, from the crate root.
const COMMITTED: &str = "docs/openapi.json";
/// Set to `1` to rewrite [`COMMITTED`] from the served description.
const WRITE_VAR: &str = "MEDIAGATE_WRITE_OPENAPI";
/// The methods the reverse check tries on every documented path (HEAD is
/// answered like GET on the public routes, RFC 9110 section 9.3.2).
const METHODS: [&str; 6] = ["get", "put", "post", "delete", "patch", "options"];
/// Statuses the description lists that no session can provoke on purpose, and why.
const NOT_PROVOKED: [(&str, &str, u16, &str); 6] = [
    ("/readyz", "get", 503, "this version is ready once its listeners are up"),
    ("/api/integrations/{name}", "put", 500, "a config file that cannot be written (the tests run as root)"),
    ("/api/integrations/{name}", "delete", 500, "a config file that cannot be written (the tests run as root)"),
    ("/api/integrations/{name}", "put", 503, "only with [store] and the database down: tests/store.rs provokes it"),
    ("/api/integrations/{name}", "delete", 503, "only with [store] and the database down: tests/store.rs provokes it"),
    ("/api/cache/purge", "post", 503, "only with [store] and the database down: tests/store.rs provokes it"),
];

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

fn admin_section(extra: &str) -> String {
    format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = {}\n{extra}", toml_str(TOKEN))
}

// ------------------------------------------------------------------ the description

/// The description, with validators for its schemas.
struct Description {
    doc: Value,
    validators: HashMap<String, jsonschema::Validator>,
}

impl Description {
    fn new(doc: Value) -> Description {
        Description { doc, validators: HashMap::new() }
    }

    /// Every `(path, method)` it lists, methods lower-case.
    fn operations(&self) -> Vec<(String, String)> {
        let paths = self.doc["paths"].as_object().expect("the description has paths");
        let mut out = Vec::new();
        for (path, item) in paths {
            for method in ["get", "put", "post", "delete", "patch", "head", "options", "trace"] {
                if item.get(method).is_some() {
                    out.push((path.clone(), method.to_owned()));
                }
            }
        }
        out
    }

    fn operation(&self, path: &str, method: &str) -> Option<&Value> {
        self.doc["paths"].get(path)?.get(method)
    }

    /// Follows a `$ref` to a place in the document (`#/components/...`).
    fn deref<'a>(&'a self, v: &'a Value) -> &'a Value {
        match v.get("$ref").and_then(Value::as_str).and_then(|r| r.strip_prefix('#')) {
            Some(pointer) => self.doc.pointer(pointer).unwrap_or_else(|| panic!("the description has no {pointer}")),
            None => v,
        }
    }

    /// The response object for `status`, if listed.
    fn response(&self, path: &str, method: &str, status: u16) -> Option<&Value> {
        let responses = &self.operation(path, method)?["responses"];
        responses.get(status.to_string()).map(|r| self.deref(r))
    }

    /// The errors of `instance` against `schema` (a schema of the
    /// description: its `$ref`s resolve within the description's components).
    fn errors(&mut self, schema: &Value, instance: &Value) -> Vec<String> {
        let key = schema.to_string();
        if !self.validators.contains_key(&key) {
            let mut root = schema.clone();
            root["$schema"] = json!("https://json-schema.org/draft/2020-12/schema");
            root["components"] = self.doc["components"].clone();
            let validator = jsonschema::draft202012::options()
                .should_validate_formats(true)
                .build(&root)
                .unwrap_or_else(|e| panic!("the description's schema {schema} does not compile: {e}"));
            self.validators.insert(key.clone(), validator);
        }
        self.validators[&key]
            .iter_errors(instance)
            .map(|e| format!("at {:?}: {e}", e.instance_path().to_string()))
            .collect()
    }

    /// The errors of a request body against the operation's request schema.
    fn request_errors(&mut self, path: &str, method: &str, body: &Value) -> Vec<String> {
        let schema = self
            .operation(path, method)
            .and_then(|op| op.pointer("/requestBody/content/application~1json/schema"))
            .unwrap_or_else(|| panic!("{} {path}: the description lists no JSON request body", method.to_uppercase()))
            .clone();
        self.errors(&schema, body)
    }
}

/// `path` with `{name}` filled in.
fn concrete(path: &str, name: &str) -> String {
    path.replace("{name}", name)
}

// ------------------------------------------------------------------ the session

#[derive(Clone, Copy, PartialEq, Eq)]
enum Auth {
    Token,
    None,
    Wrong,
}

/// A scripted session: each call is checked against the description and recorded.
struct Session {
    admin: String,
    api: Description,
    /// `(path, method, status)` answered so far, as the description names the path.
    seen: BTreeSet<(String, String, u16)>,
    bodies_checked: usize,
}

impl Session {
    fn new(admin: String, doc: Value) -> Session {
        Session { admin, api: Description::new(doc), seen: BTreeSet::new(), bodies_checked: 0 }
    }

    /// Sends `method path` (`path` as the description names it, `{name}`
    /// filled with `name`), asserts the status, and checks the answer against
    /// the description. A body sent with a call not expected to be a `400`
    /// must match the request schema (a `400` call says which way it goes:
    /// [`refused`], [`Session::refused_by_rule`]).
    fn call(
        &mut self,
        method: &str,
        path: &str,
        name: &str,
        body: Option<&Value>,
        auth: Auth,
        expect: u16,
    ) -> TestResponse {
        let what = format!("{} {path} ({})", method.to_uppercase(), concrete(path, name));
        if let Some(body) = body.filter(|_| expect != 400 && self.api.operation(path, method).is_some()) {
            let errors = self.api.request_errors(path, method, body);
            assert!(
                errors.is_empty(),
                "{what}: the request body {body} does not match the request schema: {errors:#?}"
            );
            self.bodies_checked += 1;
        }
        let resp = self.send(method, &concrete(path, name), body, auth);
        assert_eq!(resp.status.as_u16(), expect, "{what}: {}", resp.describe());
        self.check(path, method, &resp);
        resp
    }

    fn send(&self, method: &str, path: &str, body: Option<&Value>, auth: Auth) -> TestResponse {
        let method: Method = method.to_uppercase().parse().expect("a method");
        let mut req = Request::builder().method(method).uri(format!("{}{path}", self.admin));
        match auth {
            Auth::Token => req = req.header("authorization", format!("Bearer {TOKEN}")),
            Auth::Wrong => req = req.header("authorization", "Bearer not-the-token"),
            Auth::None => {}
        }
        let bytes = match body {
            Some(b) => {
                req = req.header("content-type", "application/json");
                Bytes::from(b.to_string())
            }
            None => Bytes::new(),
        };
        common::send(req.body(Full::new(bytes)).expect("a request"))
    }

    /// The answer is one the description lists for this path, method and
    /// status: its media type, and a JSON body valid against its schema.
    fn check(&mut self, path: &str, method: &str, resp: &TestResponse) {
        let status = resp.status.as_u16();
        let what = format!("{} {path} answered {status}", method.to_uppercase());
        let listed = self.api.response(path, method, status).cloned();
        let listed =
            listed.unwrap_or_else(|| panic!("{what}, which the description does not list: {}", resp.describe()));
        self.seen.insert((path.to_owned(), method.to_owned(), status));
        let Some(content) = listed.get("content").and_then(Value::as_object) else {
            assert!(resp.body.is_empty(), "{what}: the description lists no body, but one came: {}", resp.describe());
            return;
        };
        let media_type = resp.header("content-type").unwrap_or_default().split(';').next().unwrap_or_default().trim();
        let media_type = media_type.to_ascii_lowercase();
        let Some(media) = content.get(&media_type) else {
            panic!(
                "{what} with Content-Type {media_type:?}; the description lists {:?}",
                content.keys().collect::<Vec<_>>()
            );
        };
        if media_type != "application/json" {
            return;
        }
        let body: Value = serde_json::from_slice(&resp.body)
            .unwrap_or_else(|e| panic!("{what}: the body is not JSON ({e}): {}", resp.describe()));
        let errors = self.api.errors(&media["schema"], &body);
        assert!(
            errors.is_empty(),
            "{what}: the answer does not match the description's schema: {errors:#?}\nbody: {body:#}"
        );
    }

    fn ok(&mut self, method: &str, path: &str, name: &str, body: Option<&Value>, expect: u16) -> Value {
        let resp = self.call(method, path, name, body, Auth::Token, expect);
        let json = resp.header("content-type").is_some_and(|t| t.starts_with("application/json"));
        if json { resp.json() } else { Value::Null }
    }

    /// A body the request schema accepts but the server refuses with `400
    /// bad_config`, by a rule across values that a schema cannot state.
    fn refused_by_rule(&mut self, path: &str, name: &str, body: &Value) {
        let errors = self.api.request_errors(path, "put", body);
        assert!(errors.is_empty(), "PUT {path}: the request schema refuses {body}: {errors:#?}");
        self.bodies_checked += 1;
        let resp = self.call("put", path, name, Some(body), Auth::Token, 400);
        assert_eq!(resp.error_code(), "bad_config");
    }

    /// Asserts that the request schema refuses `body` (which the server refuses with 400).
    fn refused_by_schema(&mut self, path: &str, method: &str, body: &Value) {
        let errors = self.api.request_errors(path, method, body);
        assert!(
            !errors.is_empty(),
            "{} {path}: the request schema accepts {body}, which the server refuses",
            method.to_uppercase()
        );
        self.bodies_checked += 1;
    }
}

// ------------------------------------------------------------------ bodies

fn s3_body(s3: &S3Peer, buckets: &[&str], secret: &str) -> Value {
    json!({
        "type": "s3",
        "endpoint": s3.host,
        "port": s3.port,
        "tls": s3.tls,
        "region": s3.region,
        "access_key_id": s3.access_key,
        "secret_access_key": secret,
        "buckets": buckets,
        "addressing": "path",
    })
}

// ------------------------------------------------------------------ tests

/// The served description, from a server with no integration and no cache.
fn served_description() -> (MediaGate, Value) {
    let mg = MediaGate::start(&config(&[&admin_section(""), "[cache]\nenabled = false\n"]));
    let resp =
        common::get(&format!("{}/openapi.json", mg.admin_url()), &[("authorization", &format!("Bearer {TOKEN}"))]);
    assert_eq!(resp.status, 200, "GET /openapi.json: {}", resp.describe());
    let doc = resp.json();
    (mg, doc)
}

#[test]
fn the_served_description_is_the_committed_docs_openapi_json() {
    let (_mg, served) = served_description();
    let path = root().join(COMMITTED);
    if std::env::var(WRITE_VAR).as_deref() == Ok("1") {
        let mut text = serde_json::to_string_pretty(&served).expect("the description as JSON");
        text.push('\n');
        std::fs::write(&path, text).unwrap_or_else(|e| panic!("writing {}: {e}", path.display()));
        eprintln!("wrote {}", path.display());
    }
    let committed = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("reading {}: {e}", path.display()));
    let committed: Value = serde_json::from_str(&committed).unwrap_or_else(|e| panic!("{COMMITTED} is not JSON: {e}"));
    assert!(
        committed == served,
        "{COMMITTED} is not the description the server serves (GET /openapi.json): after changing \
         src/admin/openapi.rs or an integration type's keys, regenerate it with \
         `{WRITE_VAR}=1 cargo test --test openapi` and commit it"
    );
    assert_eq!(served, mediagate::admin::openapi::document(), "GET /openapi.json is not admin::openapi::document()");
}

#[test]
fn every_schema_of_the_description_compiles_as_json_schema_2020_12() {
    let doc = mediagate::admin::openapi::document();
    let mut api = Description::new(doc.clone());
    let names: Vec<String> = doc["components"]["schemas"].as_object().expect("schemas").keys().cloned().collect();
    for name in &names {
        // Compiling validates the schema against the 2020-12 meta-schema; the instance does not matter.
        api.errors(&json!({ "$ref": format!("#/components/schemas/{name}") }), &Value::Null);
    }
    assert!(names.len() > 10, "only {} schemas: {names:?}", names.len());
}

#[test]
fn without_a_cache_the_cache_routes_answer_as_described() {
    let (mg, doc) = served_description();
    let mut s = Session::new(mg.admin_url(), doc);
    let figures = s.ok("get", "/api/cache", "", None, 200);
    assert_eq!(figures, json!({ "enabled": false }));
    let purged = s.ok("post", "/api/cache/purge", "", Some(&json!({ "prefix": "s3://any/" })), 200);
    assert_eq!(purged, json!({ "purged": 0 }));
}

#[test]
fn the_committed_description_is_valid_openapi_3_1_for_openapi_spec_validator() {
    let Some(validator) = common::required_env("MEDIAGATE_TEST_OPENAPI_VALIDATOR", "openapi-spec-validator") else {
        return;
    };
    let path = root().join(COMMITTED);
    let out = Command::new(&validator).arg(&path).output().unwrap_or_else(|e| panic!("cannot run {validator}: {e}"));
    let said = format!("{}{}", String::from_utf8_lossy(&out.stdout), String::from_utf8_lossy(&out.stderr));
    assert!(out.status.success(), "openapi-spec-validator refuses {COMMITTED}:\n{said}");
    assert!(said.contains("OK"), "openapi-spec-validator said no OK:\n{said}");
}

#[test]
fn a_session_over_every_route_answers_as_the_description_says() {
    let Some(s3) = s3_peer() else { return };
    let bucket = unique_bucket("openapi");
    let other_bucket = unique_bucket("openapi-unfinished");
    s3.seed(&bucket, &[("hello.txt", b"hello from the openapi test")]);
    let dir = tempfile::tempdir().expect("a temp dir");
    std::fs::create_dir_all(dir.path().join("pics")).expect("the pics bucket");
    std::fs::write(dir.path().join("pics/a.txt"), b"a picture, say").expect("an object");
    let files = local_integration("files", dir.path(), &["pics"]);
    let mg = MediaGate::start(&config(&[&admin_section(""), &files]));
    let doc =
        common::get(&format!("{}/openapi.json", mg.admin_url()), &[("authorization", &format!("Bearer {TOKEN}"))])
            .json();
    let mut s = Session::new(mg.admin_url(), doc);

    public_routes(&mut s);
    every_protected_operation_needs_the_token(&mut s, &s3, &bucket);
    reading(&mut s);
    saving(&mut s, &s3, &bucket, &other_bucket, dir.path());
    testing_and_the_cache(&mut s, &mg, &bucket);
    deleting(&mut s);
    a_broken_file_on_disk(&mut s, &mg, &s3, &bucket);
    undocumented_routes_answer_404(&mut s);
    every_listed_status_was_answered(&s);
    eprintln!("{} (path, method, status) answers checked, {} request bodies validated", s.seen.len(), s.bodies_checked);
}

fn public_routes(s: &mut Session) {
    for path in ["/healthz", "/readyz", "/", "/index.html", "/assets/app.js", "/assets/app.css"] {
        s.call("get", path, "", None, Auth::None, 200);
    }
}

/// `401` for every operation that needs the token, without one and with a wrong one.
fn every_protected_operation_needs_the_token(s: &mut Session, s3: &S3Peer, bucket: &str) {
    let body = s3_body(s3, &[bucket], &s3.secret_key);
    for (path, method) in s.api.operations() {
        let op = s.api.operation(&path, &method).expect("listed").clone();
        if op.get("security").is_some_and(|sec| sec == &json!([])) {
            continue;
        }
        let body = match (path.as_str(), op.get("requestBody")) {
            (_, None) => None,
            ("/api/cache/purge", Some(_)) => Some(json!({ "prefix": "local://pics/" })),
            (_, Some(_)) => Some(body.clone()),
        };
        for auth in [Auth::None, Auth::Wrong] {
            let resp = s.call(&method, &path, "files", body.as_ref(), auth, 401);
            assert_eq!(resp.error_code(), "unauthorized");
        }
    }
}

fn reading(s: &mut Session) {
    s.ok("get", "/openapi.json", "", None, 200);
    let metrics = s.call("get", "/metrics", "", None, Auth::Token, 200);
    assert!(metrics.text().contains("# TYPE mediagate_"), "{}", metrics.describe());
    let types = s.ok("get", "/api/types", "", None, 200);
    let names: Vec<&str> =
        types["types"].as_array().expect("types").iter().filter_map(|t| t["type"].as_str()).collect();
    assert_eq!(names, ["s3", "azure-blob", "local"]);
    let list = s.ok("get", "/api/integrations", "", None, 200);
    assert_eq!(list["integrations"][0]["name"], "files", "{list:#}");
    s.ok("get", "/api/integrations/{name}", "files", None, 200);
    s.call("get", "/api/integrations/{name}", "nope", None, Auth::Token, 404);
}

fn saving(s: &mut Session, s3: &S3Peer, bucket: &str, other_bucket: &str, dir: &Path) {
    let path = "/api/integrations/{name}";
    // Created with a wrong secret: saved, failing, with the storage's reason.
    let saved = s.ok("put", path, "store", Some(&s3_body(s3, &[bucket], WRONG_SECRET)), 201);
    assert_eq!(
        (saved["status"].as_str(), saved["test"]["code"].as_str()),
        (Some("failing"), Some("SignatureDoesNotMatch")),
        "{saved:#}"
    );
    assert_eq!(saved["integration"]["secret_access_key"], MARKER);
    // Replaced with the right one, the port as a string; then the marker keeps it.
    let mut fixed = s3_body(s3, &[bucket], &s3.secret_key);
    fixed["port"] = json!(s3.port.to_string());
    let saved = s.ok("put", path, "store", Some(&fixed), 200);
    assert_eq!(saved["status"], "ok", "{saved:#}");
    let saved = s.ok("put", path, "store", Some(&s3_body(s3, &[bucket], MARKER)), 200);
    assert_eq!(saved["status"], "ok", "{saved:#}");
    // A `${VAR}` secret is answered as written.
    let by_reference = s3_body(s3, &[bucket], "${MEDIAGATE_TEST_S3_SECRET_KEY}");
    let saved = s.ok("put", path, "store", Some(&by_reference), 200);
    assert_eq!(saved["integration"]["secret_access_key"], "${MEDIAGATE_TEST_S3_SECRET_KEY}", "{saved:#}");
    // Unfinished: no secret yet; saved, incomplete, not tested.
    let mut unfinished = s3_body(s3, &[other_bucket], "");
    unfinished.as_object_mut().expect("an object").remove("secret_access_key");
    unfinished["name"] = json!("unfinished");
    let saved = s.ok("put", path, "unfinished", Some(&unfinished), 201);
    assert_eq!((saved["status"].as_str(), &saved["test"]), (Some("incomplete"), &Value::Null), "{saved:#}");
    // Another integration's bucket: 409, naming both.
    let resp = s.call("put", path, "clash", Some(&s3_body(s3, &[bucket], &s3.secret_key)), Auth::Token, 409);
    assert!(resp.error_message().contains("store") && resp.error_message().contains("clash"), "{}", resp.describe());
    refused(s, path, "bad-port", json!({ "type": "s3", "port": "not-a-port", "buckets": ["x"] }));
    refused(s, path, "odd-key", json!({ "type": "local", "root": dir.display().to_string(), "colour": "blue" }));
    refused(s, path, "odd-type", json!({ "type": "ftp" }));
    refused(s, path, "no-type", json!({ "root": "/srv" }));
    refused(s, path, "list", json!(["not", "an", "object"]));
    // Refused by the server though the schema cannot say so: `name` unlike the address, a bad name.
    let local = json!({ "type": "local", "root": dir.display().to_string(), "buckets": ["other"], "name": "else" });
    s.refused_by_rule(path, "mismatch", &local);
    s.refused_by_rule(path, "Not_A_Name", &json!({ "type": "local", "root": "/srv" }));
}

/// A body the server refuses with `400 bad_config`, and the schema too.
fn refused(s: &mut Session, path: &str, name: &str, body: Value) {
    s.refused_by_schema(path, "put", &body);
    let resp = s.call("put", path, name, Some(&body), Auth::Token, 400);
    assert_eq!(resp.error_code(), "bad_config");
}

fn testing_and_the_cache(s: &mut Session, mg: &MediaGate, bucket: &str) {
    let path = "/api/integrations/{name}/test";
    let test = s.ok("post", path, "store", None, 200);
    assert_eq!((test["ok"].as_bool(), test["code"].as_str()), (Some(true), Some("ok")), "{test:#}");
    let test = s.ok("post", path, "unfinished", None, 200);
    assert_eq!((test["ok"].as_bool(), test["code"].as_str()), (Some(false), Some("incomplete")), "{test:#}");
    s.call("post", path, "nope", None, Auth::Token, 404);
    // The list now holds every status but untested, and tests run.
    let list = s.ok("get", "/api/integrations", "", None, 200);
    let statuses: BTreeSet<&str> =
        list["integrations"].as_array().expect("a list").iter().filter_map(|i| i["status"].as_str()).collect();
    assert!(statuses.contains("ok") && statuses.contains("incomplete"), "{list:#}");

    // An object through the media listener, then its cache entry purged.
    let media = common::get(&mg.path_url("s3", bucket, "hello.txt"), &[]);
    assert_eq!(media.status, 200, "{}", media.describe());
    let cached = common::wait_until(Duration::from_secs(20), || {
        s.send("get", "/api/cache", None, Auth::Token).json()["entries"].as_u64() >= Some(1)
    });
    assert!(cached, "the object never showed in the cache figures");
    let figures = s.ok("get", "/api/cache", "", None, 200);
    assert_eq!(figures["enabled"], true, "{figures:#}");
    let purge = "/api/cache/purge";
    let locator = format!("s3://{bucket}/hello.txt");
    let purged = s.ok("post", purge, "", Some(&json!({ "locator": locator })), 200);
    assert_eq!(purged["purged"], 1, "{purged:#}");
    s.ok("post", purge, "", Some(&json!({ "prefix": "local://pics/" })), 200);
    for body in [json!({}), json!({ "locator": locator, "prefix": "s3://" })] {
        s.refused_by_schema(purge, "post", &body);
        let resp = s.call("post", purge, "", Some(&body), Auth::Token, 400);
        assert_eq!(resp.error_code(), "bad_config");
    }
}

fn deleting(s: &mut Session) {
    let path = "/api/integrations/{name}";
    s.call("delete", path, "unfinished", None, Auth::Token, 204);
    s.call("delete", path, "unfinished", None, Auth::Token, 404);
    s.call("get", path, "unfinished", None, Auth::Token, 404);
}

/// A config file that gained a problem on disk: the reload keeps the
/// running config (`/readyz` says why), and changes are refused with 409.
fn a_broken_file_on_disk(s: &mut Session, mg: &MediaGate, s3: &S3Peer, bucket: &str) {
    let good = std::fs::read_to_string(&mg.config_path).expect("the config file");
    std::fs::write(&mg.config_path, format!("not_a_key_of_mediagate = 1\n{good}")).expect("writing the config");
    let _ = Command::new("kill").arg("-HUP").arg(mg.pid().to_string()).status();
    let said = common::wait_until(Duration::from_secs(20), || {
        let ready = s.send("get", "/readyz", None, Auth::None).json();
        ready["config"]["last_reload_error"].is_string()
    });
    assert!(said, "/readyz never named the reload error:\n{}", mg.stderr_text());
    let ready = s.call("get", "/readyz", "", None, Auth::None, 200).json();
    assert!(
        ready["config"]["last_reload_error"].as_str().unwrap_or_default().contains("not_a_key_of_mediagate"),
        "{ready:#}"
    );
    let path = "/api/integrations/{name}";
    s.call("put", path, "store", Some(&s3_body(s3, &[bucket], MARKER)), Auth::Token, 409);
    s.call("delete", path, "store", None, Auth::Token, 409);
    std::fs::write(&mg.config_path, good).expect("restoring the config");
}

/// The reverse check: methods the description does not list on its paths,
/// and paths it does not list, answer `404 not_found`.
fn undocumented_routes_answer_404(s: &mut Session) {
    let error_schema = json!({ "$ref": "#/components/schemas/Error" });
    let mut tried = 0;
    let mut expect_404 = |s: &mut Session, method: &str, path: &str| {
        let body = (method == "put" || method == "post").then(|| json!({}));
        let resp = s.send(method, path, body.as_ref(), Auth::Token);
        let what = format!("{} {path}", method.to_uppercase());
        assert_eq!(resp.status, 404, "{what} is not in the description, yet answers {}", resp.describe());
        let errors = s.api.errors(&error_schema, &resp.json());
        assert!(errors.is_empty() && resp.error_code() == "not_found", "{what}: {errors:?} {}", resp.describe());
        tried += 1;
    };
    let listed = s.api.operations();
    let paths: BTreeSet<String> = listed.iter().map(|(p, _)| p.clone()).collect();
    for path in &paths {
        for method in METHODS {
            if !listed.contains(&(path.clone(), method.to_owned())) {
                expect_404(s, method, &concrete(path, "store"));
            }
        }
    }
    for path in [
        "/api",
        "/api/",
        "/api/integration",
        "/api/integrations/store/test/again",
        "/api/cache/purge/all",
        "/api/types/s3",
        "/assets/",
        "/assets/other.js",
        "/openapi.yaml",
        "/metrics/",
        "/healthz/x",
        "/docs",
        "/admin",
    ] {
        expect_404(s, "get", path);
    }
    assert!(tried > 40, "only {tried} undocumented routes tried");
    // Without the token, an unknown route is refused before it is looked up.
    let resp = s.send("get", "/api/nothing", None, Auth::None);
    assert_eq!(resp.status, 401, "{}", resp.describe());
}

/// Every path, method and status the description lists was answered in the
/// session, but for the few [`NOT_PROVOKED`].
fn every_listed_status_was_answered(s: &Session) {
    let mut missing = Vec::new();
    for (path, method) in s.api.operations() {
        let responses = s.api.operation(&path, &method).and_then(|op| op["responses"].as_object()).expect("responses");
        for status in responses.keys() {
            let status: u16 =
                status.parse().unwrap_or_else(|_| panic!("{method} {path}: status {status:?} is not a number"));
            let excused =
                NOT_PROVOKED.iter().any(|(p, m, st, _)| (*p, *m, *st) == (path.as_str(), method.as_str(), status));
            if !excused && !s.seen.contains(&(path.clone(), method.clone(), status)) {
                missing.push(format!("{} {path} {status}", method.to_uppercase()));
            }
        }
    }
    assert!(missing.is_empty(), "the session never saw these answers the description lists: {missing:#?}");
}
