//! The admin API's routes (CONTRACT.md section 6), each a short function
//! from the request to JSON. Bodies and shapes are the contract's; the
//! OpenAPI description ([`super::openapi`]) says the same and a test checks
//! the running server against it.

use std::net::SocketAddr;

use bytes::Bytes;
use http::{Method, Response, StatusCode};
use serde_json::{Map, Value, json};

use super::{Admin, json, openapi, text};
use crate::control::live::{Listed, Live};
use crate::error::{Error, Kind, Result};
use crate::http::body::Body;
use crate::integration::config::{COMMON_KEYS, TYPES};
use crate::integration::probe::rfc3339;
use crate::schema::{KeyDef, SourceDef};
use crate::store::Purge;

/// Routes an authorized request.
pub async fn route(
    admin: &Admin,
    method: &Method,
    path: &str,
    body: Bytes,
    peer: SocketAddr,
) -> Result<Response<Body>> {
    let live = &admin.live;
    // HEAD is answered as GET; hyper sends no body for it.
    let method = if method == Method::HEAD { &Method::GET } else { method };
    let segments: Vec<&str> = path.trim_start_matches('/').split('/').collect();
    match (method, segments.as_slice()) {
        (&Method::GET, ["api", "integrations"]) => Ok(list(live)),
        (&Method::GET, ["api", "integrations", name]) => Ok(json(StatusCode::OK, &listed(live.get(name)?))),
        (&Method::PUT, ["api", "integrations", name]) => put(live, name, &body, peer).await,
        (&Method::DELETE, ["api", "integrations", name]) => delete(live, name, peer).await,
        (&Method::POST, ["api", "integrations", name, "test"]) => {
            let test = live.test(name).await?;
            audit("test", name, &test.code, peer);
            Ok(json(StatusCode::OK, &json!(test)))
        }
        (&Method::POST, ["api", "cache", "purge"]) => {
            let outcome = purge(live, &body).await;
            match &outcome {
                Ok((what, purged)) => {
                    tracing::info!(target: "mediagate::audit", action = "purge", what, objects = purged, outcome = "purged", client = %peer, "admin change");
                }
                Err(e) => {
                    tracing::info!(target: "mediagate::audit", action = "purge", outcome = e.kind.code(), client = %peer, "admin change");
                }
            }
            let (_, purged) = outcome?;
            Ok(json(StatusCode::OK, &json!({ "purged": purged })))
        }
        (&Method::GET, ["api", "cache"]) => Ok(cache_figures(live)),
        (&Method::GET, ["api", "types"]) => Ok(json(StatusCode::OK, &types())),
        (&Method::GET, ["openapi.json"]) => Ok(json(StatusCode::OK, &openapi::document())),
        (&Method::GET, ["metrics"]) => {
            let page = admin.metrics.render_with(live.cache());
            Ok(text(StatusCode::OK, "text/plain; version=0.0.4; charset=utf-8", Bytes::from(page)))
        }
        _ => Err(Error::new(Kind::NotFound, format!("{method} {path} is not a route of the admin API"))),
    }
}

/// `GET /readyz`: `{"ready", "config": {"loaded_at", "last_reload_error"}}`, and with
/// `[store]` also `"store": {"connected", "error", "since"}`.
/// Ready (`200`) once the listeners are up, `503` before; a failed reload is shown but keeps the
/// replica ready (it serves the last good config), so a bad ConfigMap push
/// does not take every replica out of its Service. With `[store]`, ready once the
/// integrations were first loaded from the store; losing the store later keeps the replica
/// ready (it serves what it last loaded, CONTRACT.md section 9) and says so in `store`.
pub fn readyz(live: &Live) -> Response<Body> {
    let status = live.status();
    let ready = live.is_ready();
    let mut body = json!({
        "ready": ready,
        "config": {
            "loaded_at": rfc3339(status.loaded_at),
            "last_reload_error": status.last_reload_error,
        }
    });
    if let Some(store) = live.store() {
        let s = store.status();
        body["store"] = json!({ "connected": s.connected, "error": s.error, "since": rfc3339(s.since) });
    }
    json(if ready { StatusCode::OK } else { StatusCode::SERVICE_UNAVAILABLE }, &body)
}

fn list(live: &Live) -> Response<Body> {
    let all: Vec<Value> = live.list().into_iter().map(listed).collect();
    json(StatusCode::OK, &json!({ "integrations": all }))
}

/// One integration of `GET /api/integrations`: its keys, `status`, `last_test`, `problems`.
fn listed(l: Listed) -> Value {
    let mut out = l.integration;
    out.insert("status".to_owned(), Value::from(l.status));
    out.insert("last_test".to_owned(), json!(l.test));
    out.insert("problems".to_owned(), problems(&l.problems));
    // Beside the table's own keys (`credentials` and `credential` are config keys), so flat and distinct.
    let (source, expires) = l.credentials.map_or((None, None), |(s, e)| (Some(s), e.map(rfc3339)));
    out.insert("credential_source".to_owned(), json!(source));
    out.insert("credentials_expire".to_owned(), json!(expires));
    Value::Object(out)
}

fn problems(list: &[(String, String)]) -> Value {
    list.iter().map(|(key, message)| json!({"key": key, "message": message})).collect()
}

async fn put(live: &Live, name: &str, body: &[u8], peer: SocketAddr) -> Result<Response<Body>> {
    let fields = match object(body) {
        Ok(fields) => fields,
        Err(e) => {
            audit("put", name, "bad_config", peer);
            return Err(e);
        }
    };
    match live.put(name, fields).await {
        Ok(saved) => {
            let outcome = if saved.created { "created" } else { "replaced" };
            audit("put", name, &format!("{outcome}, {}", saved.listed.status), peer);
            let status = if saved.created { StatusCode::CREATED } else { StatusCode::OK };
            let l = saved.listed;
            let answer = json!({
                "integration": Value::Object(l.integration),
                "status": l.status,
                "test": l.test,
                "problems": problems(&l.problems),
            });
            Ok(json(status, &answer))
        }
        Err(e) => {
            audit("put", name, e.kind.code(), peer);
            Err(e)
        }
    }
}

async fn delete(live: &Live, name: &str, peer: SocketAddr) -> Result<Response<Body>> {
    let outcome = live.delete(name).await;
    audit("delete", name, outcome.as_ref().map_or_else(|e| e.kind.code(), |()| "deleted"), peer);
    outcome?;
    let mut resp = Response::new(crate::http::body::empty());
    *resp.status_mut() = StatusCode::NO_CONTENT;
    Ok(resp)
}

/// `POST /api/cache/purge` with `{"locator": ...}` or `{"prefix": ...}`:
/// what was purged and how many entries (here; with a shared store, every replica purges).
async fn purge(live: &Live, body: &[u8]) -> Result<(String, usize)> {
    let fields = object(body)?;
    let by = |k: &str| fields.get(k).and_then(Value::as_str).filter(|s| !s.is_empty());
    let (what, locator) = match (by("locator"), by("prefix")) {
        (Some(locator), None) => (locator, true),
        (None, Some(prefix)) => (prefix, false),
        _ => {
            let msg = "send {\"locator\": \"s3://bucket/key\"} or {\"prefix\": \"s3://bucket/\"}, one of them";
            return Err(Error::new(Kind::BadConfig, msg));
        }
    };
    let purge = if locator { Purge::Locator(what.to_owned()) } else { Purge::Prefix(what.to_owned()) };
    let purged = live.purge(purge).await?;
    Ok((what.to_owned(), purged))
}

/// `GET /api/cache`: the figures the page shows.
fn cache_figures(live: &Live) -> Response<Body> {
    use std::sync::atomic::Ordering::Relaxed;
    let Some(cache) = live.cache() else {
        return json(StatusCode::OK, &json!({ "enabled": false }));
    };
    let stats = cache.stats();
    let (hits, misses) = (stats.hits.load(Relaxed), stats.misses.load(Relaxed));
    let ratio = if hits + misses == 0 { 0.0 } else { hits as f64 / (hits + misses) as f64 };
    let body = json!({
        "enabled": true,
        "max_bytes": cache.max_bytes(),
        "bytes": cache.weighted_size(),
        "entries": cache.object_count(),
        "hits": hits,
        "misses": misses,
        "evictions": stats.evictions.load(Relaxed),
        "coalesced": stats.coalesced_waits.load(Relaxed),
        "hit_ratio": ratio,
    });
    json(StatusCode::OK, &body)
}

/// `GET /api/types`: every type, its keys and its credential sources, from
/// the one definition. A key that no source names is shown with every
/// source; a source lists its own keys, each needed or optional.
pub fn types() -> Value {
    let types: Vec<Value> = TYPES
        .iter()
        .map(|t| {
            let keys: Vec<Value> = t.keys.iter().chain(COMMON_KEYS).map(key_def).collect();
            let sources: Vec<Value> = t.sources.iter().map(|s| source_def(s, t.keys)).collect();
            json!({ "type": t.name, "title": t.title, "keys": keys, "sources": sources })
        })
        .collect();
    json!({ "types": types })
}

fn source_def(s: &SourceDef, keys: &[KeyDef]) -> Value {
    let own: Vec<Value> = s.keys(keys).map(|(k, required)| json!({ "name": k.name, "required": required })).collect();
    json!({
        "name": s.name,
        "label": s.label,
        "help": s.help,
        "selector": s.selector.map(|(key, value)| json!({ "key": key, "value": value })),
        "keys": own,
    })
}

fn key_def(k: &KeyDef) -> Value {
    let mut v = json!({
        "name": k.name,
        "kind": k.kind.name(),
        "secret": k.secret,
        "required": k.required,
        "default": k.default,
        "help": k.help,
    });
    if let crate::schema::ValueKind::Enum(values) = k.kind {
        v["values"] = json!(values);
    }
    v
}

/// A JSON object body, or `400 bad_config`.
fn object(body: &[u8]) -> Result<Map<String, Value>> {
    match serde_json::from_slice::<Value>(body) {
        Ok(Value::Object(map)) => Ok(map),
        Ok(_) => Err(body_problem("the body must be a JSON object".to_owned())),
        Err(e) => Err(body_problem(format!("the body is not JSON: {e}"))),
    }
}

/// A body that is not a JSON object: `400 bad_config` with the one problem
/// in `problems` (key `""`: the whole body), as every `bad_config` has.
fn body_problem(message: String) -> Error {
    Error::new(Kind::BadConfig, message.clone()).with_problems(vec![(String::new(), message)])
}

/// The audit line of an admin change: action, integration, outcome, client; never a value.
fn audit(action: &str, integration: &str, outcome: &str, peer: SocketAddr) {
    tracing::info!(target: "mediagate::audit", action, integration, outcome, client = %peer, "admin change");
}
