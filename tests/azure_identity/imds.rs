//! A managed identity on a VM: tokens from IMDS, here a stand-in on loopback
//! that `AZURE_POD_IDENTITY_AUTHORITY_HOST` points at (the address the other
//! Azure SDKs read too), in front of the real Azurite of [`super::setup`].
//!
//! What is real: Azurite checks the bearer token mediagate got from the
//! stand-in and serves the blob. What only the stand-in sees: each token
//! request (`Metadata: true`, `api-version`, `resource`, `client_id`).

use std::convert::Infallible;
use std::net::SocketAddr;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use bytes::Bytes;
use http::{Request, Response, StatusCode};
use http_body_util::Full;
use hyper::body::Incoming;

use super::common::{get, wait_for};
use super::{Setup, now_secs, setup, storage_token};

/// One token request IMDS received.
#[derive(Debug, Clone)]
struct ImdsRequest {
    path: String,
    /// The `Metadata` header.
    metadata: Option<String>,
    api_version: Option<String>,
    resource: Option<String>,
    client_id: Option<String>,
}

/// How the stand-in answers.
#[derive(Debug, Clone, Copy)]
enum Mode {
    /// A token living this many seconds.
    Tokens(u64),
    /// This status with an IMDS-like error body.
    Fail(u16),
}

/// IMDS on `http://127.0.0.1:P` (IMDS speaks plain HTTP).
struct ImdsStandIn {
    addr: SocketAddr,
    state: Arc<Mutex<(Mode, Vec<ImdsRequest>)>>,
}

impl ImdsStandIn {
    fn start(mode: Mode) -> ImdsStandIn {
        let state = Arc::new(Mutex::new((mode, Vec::new())));
        let st = state.clone();
        let addr = super::serve_stand_in(None, move |req| answer(req, st.clone()));
        ImdsStandIn { addr, state }
    }

    /// The `AZURE_POD_IDENTITY_AUTHORITY_HOST` value.
    fn base(&self) -> String {
        format!("http://127.0.0.1:{}", self.addr.port())
    }

    fn requests(&self) -> Vec<ImdsRequest> {
        self.state.lock().unwrap().1.clone()
    }

    fn set_mode(&self, mode: Mode) {
        self.state.lock().unwrap().0 = mode;
    }
}

async fn answer(
    req: Request<Incoming>,
    state: Arc<Mutex<(Mode, Vec<ImdsRequest>)>>,
) -> Result<Response<Full<Bytes>>, Infallible> {
    let params: Vec<(String, String)> =
        form_urlencoded::parse(req.uri().query().unwrap_or_default().as_bytes()).into_owned().collect();
    let param = |k: &str| params.iter().find(|(n, _)| n == k).map(|(_, v)| v.clone());
    let seen = ImdsRequest {
        path: req.uri().path().to_owned(),
        metadata: req.headers().get("metadata").and_then(|v| v.to_str().ok()).map(str::to_owned),
        api_version: param("api-version"),
        resource: param("resource"),
        client_id: param("client_id"),
    };
    let (mode, n) = {
        let mut st = state.lock().unwrap();
        st.1.push(seen.clone());
        (st.0, st.1.len())
    };
    let json = |status: u16, v: serde_json::Value| {
        Ok(Response::builder()
            .status(status)
            .header("content-type", "application/json")
            .body(Full::new(Bytes::from(v.to_string())))
            .unwrap())
    };
    // What IMDS itself refuses: a request without the header, another path.
    if seen.metadata.as_deref() != Some("true") || seen.path != "/metadata/identity/oauth2/token" {
        return json(
            400,
            serde_json::json!({"error": "invalid_request", "error_description": "Required metadata header not specified"}),
        );
    }
    match mode {
        Mode::Fail(400) => {
            json(400, serde_json::json!({"error": "invalid_request", "error_description": "Identity not found"}))
        }
        Mode::Fail(status) => {
            json(status, serde_json::json!({"error": "unavailable", "error_description": "IMDS is busy"}))
        }
        Mode::Tokens(lifetime) => {
            let resource = seen.resource.unwrap_or_default();
            // IMDS sends every number as a string.
            json(
                200,
                serde_json::json!({
                    "access_token": storage_token(lifetime, n),
                    "client_id": seen.client_id.unwrap_or_else(|| "system-assigned".into()),
                    "expires_in": lifetime.to_string(),
                    "expires_on": (now_secs() + lifetime).to_string(),
                    "ext_expires_in": lifetime.to_string(),
                    "not_before": (now_secs() - 60).to_string(),
                    "resource": resource,
                    "token_type": "Bearer",
                }),
            )
        }
    }
}

impl Setup {
    /// mediagate with a managed identity (`client_id` for a user-assigned
    /// one) whose IMDS is `imds`.
    fn managed_identity(&self, imds: &ImdsStandIn, client_id: Option<&str>) -> super::common::MediaGate {
        let mut keys = "credential = \"managed-identity\"\n".to_owned();
        if let Some(id) = client_id {
            keys.push_str(&format!("client_id = \"{id}\"\n"));
        }
        self.mediagate(&keys, &[("AZURE_POD_IDENTITY_AUTHORITY_HOST", &imds.base())])
    }
}

#[test]
fn a_system_assigned_managed_identity_reads_a_blob_with_a_token_from_imds() {
    let Some(s) = setup(3600) else { return };
    let imds = ImdsStandIn::start(Mode::Tokens(3600));
    let mg = s.managed_identity(&imds, None);
    let r = get(&s.blob_url(&mg), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    assert_eq!(&r.body[..], b"a poster, read with a bearer token");
    let seen = imds.requests();
    assert_eq!(seen.len(), 1, "one token for the start-up test and the read: {seen:?}");
    assert_eq!(seen[0].metadata.as_deref(), Some("true"));
    assert_eq!(seen[0].api_version.as_deref(), Some("2018-02-01"));
    assert_eq!(seen[0].resource.as_deref(), Some("https://storage.azure.com"));
    assert_eq!(seen[0].client_id, None, "a system-assigned identity names no client: {seen:?}");
    assert!(s.standin.requests().is_empty(), "Entra ID is not asked");
}

#[test]
fn a_user_assigned_managed_identity_names_its_client_id_and_refreshes_its_imds_token_before_expiry() {
    // A 4-second token: refreshed at half its life.
    let Some(s) = setup(3600) else { return };
    let imds = ImdsStandIn::start(Mode::Tokens(4));
    let mg = s.managed_identity(&imds, Some("user-assigned-id"));
    let r = get(&s.blob_url(&mg), &[]);
    assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
    wait_for("a second IMDS token request", Duration::from_secs(20), || {
        let r = get(&s.blob_url(&mg), &[]);
        assert_eq!(r.status, StatusCode::OK, "{}", r.describe());
        imds.requests().len() >= 2
    });
    for seen in imds.requests() {
        assert_eq!(seen.client_id.as_deref(), Some("user-assigned-id"), "{seen:?}");
        assert_eq!(seen.metadata.as_deref(), Some("true"), "{seen:?}");
        assert_eq!(seen.resource.as_deref(), Some("https://storage.azure.com"), "{seen:?}");
    }
}

#[test]
fn an_imds_that_fails_gives_502_naming_the_integration_and_the_managed_identity() {
    let Some(s) = setup(3600) else { return };
    // Busy: retried with backoff, then an outage (upstream_error).
    let imds = ImdsStandIn::start(Mode::Fail(503));
    let mg = s.managed_identity(&imds, None);
    let r = get(&s.blob_url(&mg), &[]);
    assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
    assert_eq!(r.error_code(), "upstream_error", "{}", r.describe());
    let msg = r.error_message();
    for part in ["integration \"az\"", "managed identity", "IMDS at", "503", "IMDS is busy", "4 attempts"] {
        assert!(msg.contains(part), "{part:?} in {msg}");
    }
    assert!(imds.requests().len() >= 4, "retried: {:?}", imds.requests());
    // No identity assigned to this VM: a refusal, not retried. (Within the
    // backoff after the outage, reads get the outage's error at once.)
    imds.set_mode(Mode::Fail(400));
    let before = imds.requests().len();
    let mut r = get(&s.blob_url(&mg), &[]);
    wait_for("a read after the backoff", Duration::from_secs(30), || {
        r = get(&s.blob_url(&mg), &[]);
        assert_eq!(r.status, StatusCode::BAD_GATEWAY, "{}", r.describe());
        r.error_code() == "upstream_denied"
    });
    let msg = r.error_message();
    for part in ["integration \"az\"", "managed identity", "400", "Identity not found"] {
        assert!(msg.contains(part), "{part:?} in {msg}");
    }
    assert_eq!(imds.requests().len(), before + 1, "a refusal is not retried");
}
