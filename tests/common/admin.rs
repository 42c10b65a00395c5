//! A client of mediagate's admin API (CONTRACT.md section 6) for black-box
//! tests: the `[admin]` table, requests with the bearer token, and the JSON
//! bodies of integrations on the test peers.
//!
//! ```ignore
//! let mg = MediaGate::start(&config(&[&admin_section(TOKEN)]));
//! let api = AdminApi::of(&mg, TOKEN);
//! let r = api.put("gallery", &s3_json(&s3, &[&bucket], &s3.secret_key));
//! ```

use bytes::Bytes;
use http::{Method, Request};
use http_body_util::Full;
use serde_json::{Value, json};

use super::{MediaGate, S3Peer, TestResponse, send, toml_str};

/// The `[admin]` table: the admin listener on `127.0.0.1:0` (so tests can
/// run in parallel; [`MediaGate::admin_url`] tells where it is) with `token`.
pub fn admin_section(token: &str) -> String {
    format!("[admin]\nlisten = \"127.0.0.1:0\"\ntoken = {}\n", toml_str(token))
}

/// The admin API of one mediagate process.
#[derive(Debug, Clone)]
pub struct AdminApi {
    /// `http://127.0.0.1:P`, without a trailing slash.
    pub url: String,
    token: String,
}

impl AdminApi {
    /// The admin API of `mg`, called with `token`.
    pub fn of(mg: &MediaGate, token: &str) -> AdminApi {
        AdminApi { url: mg.admin_url(), token: token.to_owned() }
    }

    /// `method path` with `Authorization: Bearer <token>` and `body` as JSON (if any).
    pub fn call(&self, method: Method, path: &str, body: Option<&str>) -> TestResponse {
        self.call_as(method, path, body, Some(&self.token))
    }

    /// Like [`AdminApi::call`] with another token, or none.
    pub fn call_as(&self, method: Method, path: &str, body: Option<&str>, token: Option<&str>) -> TestResponse {
        let mut b = Request::builder().method(method).uri(format!("{}{path}", self.url));
        if let Some(token) = token {
            b = b.header("authorization", format!("Bearer {token}"));
        }
        if body.is_some() {
            b = b.header("content-type", "application/json");
        }
        let bytes = Bytes::from(body.unwrap_or_default().to_owned());
        send(b.body(Full::new(bytes)).unwrap_or_else(|e| panic!("bad admin request {path}: {e}")))
    }

    pub fn get(&self, path: &str) -> TestResponse {
        self.call(Method::GET, path, None)
    }

    /// `PUT /api/integrations/{name}` with `body`.
    pub fn put(&self, name: &str, body: &Value) -> TestResponse {
        self.put_raw(name, &body.to_string())
    }

    /// `PUT /api/integrations/{name}` with a body as is (maybe not JSON).
    pub fn put_raw(&self, name: &str, body: &str) -> TestResponse {
        self.call(Method::PUT, &format!("/api/integrations/{name}"), Some(body))
    }

    /// `DELETE /api/integrations/{name}`.
    pub fn delete(&self, name: &str) -> TestResponse {
        self.call(Method::DELETE, &format!("/api/integrations/{name}"), None)
    }

    /// `POST /api/integrations/{name}/test`.
    pub fn test(&self, name: &str) -> TestResponse {
        self.call(Method::POST, &format!("/api/integrations/{name}/test"), Some(""))
    }

    /// The `integrations` array of `GET /api/integrations` (asserting a 200).
    pub fn list(&self) -> Vec<Value> {
        let r = self.get("/api/integrations");
        assert_eq!(r.status, 200, "GET /api/integrations: {}", r.describe());
        r.json()["integrations"].as_array().cloned().unwrap_or_else(|| panic!("no integrations array: {}", r.text()))
    }

    /// Integration `name` as `GET /api/integrations` lists it, if it does.
    pub fn listed(&self, name: &str) -> Option<Value> {
        self.list().into_iter().find(|i| i["name"] == name)
    }

    /// `GET /metrics` as text (asserting a 200).
    pub fn metrics(&self) -> String {
        let r = self.get("/metrics");
        assert_eq!(r.status, 200, "GET /metrics: {}", r.describe());
        r.text()
    }

    /// The value of the sample `name_and_labels` (e.g.
    /// `mediagate_config_reloads_total{outcome="error"}`) in `/metrics`; 0 when absent.
    pub fn metric(&self, name_and_labels: &str) -> f64 {
        self.metrics()
            .lines()
            .find_map(|l| l.strip_prefix(name_and_labels)?.strip_prefix(' ')?.trim().parse().ok())
            .unwrap_or(0.0)
    }

    /// `GET /readyz` (no token) as JSON, asserting a 200.
    pub fn readyz(&self) -> Value {
        let r = self.call_as(Method::GET, "/readyz", None, None);
        assert_eq!(r.status, 200, "GET /readyz: {}", r.describe());
        r.json()
    }
}

/// The JSON body of an `s3` integration on `s3` (path addressing), scoped
/// to `buckets`, signed with `secret`: the API form of [`S3Peer::integration`].
pub fn s3_json(s3: &S3Peer, buckets: &[&str], secret: &str) -> Value {
    s3_json_at(s3, &s3.host, s3.port, buckets, secret)
}

/// Like [`s3_json`] with another endpoint host and port (a relay).
pub fn s3_json_at(s3: &S3Peer, endpoint: &str, port: u16, buckets: &[&str], secret: &str) -> Value {
    let mut body = json!({
        "type": "s3",
        "endpoint": endpoint,
        "port": port,
        "tls": s3.tls,
        "region": s3.region,
        "access_key_id": s3.access_key,
        "secret_access_key": secret,
        "addressing": "path",
    });
    if !buckets.is_empty() {
        body["buckets"] = json!(buckets);
    }
    body
}
