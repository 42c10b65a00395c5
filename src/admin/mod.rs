//! The admin listener (CONTRACT.md section 6): a second listener, loopback
//! by default, that manages integrations at run time.
//!
//! The request pipeline, top to bottom:
//! 1. public routes: `/healthz`, `/readyz`, and the page (`/`, `/assets/*`),
//!    which holds no data and asks for the token;
//! 2. every other route needs `Authorization: Bearer <[admin] token>`,
//!    compared in constant time (`401 unauthorized`);
//! 3. the API ([`api`]): integrations, connection tests, purge, cache
//!    figures, `/metrics`, the OpenAPI description ([`openapi`]).
//!
//! Every answer carries a strict `Content-Security-Policy`; every error is
//! an [`Error`] made a response by [`Error::into_response`], as on the media
//! listener. Every change writes one audit line (target `mediagate::audit`).

pub mod api;
pub mod openapi;
pub mod page;

use std::convert::Infallible;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, Response, StatusCode, header};
use http_body_util::BodyExt;
use hyper::body::Incoming;
use hyper_util::rt::{TokioExecutor, TokioIo};
use hyper_util::server::conn::auto;
use subtle::ConstantTimeEq;
use tokio::net::TcpListener;

use crate::config::AdminConfig;
use crate::control::live::Live;
use crate::error::{Error, Kind, Result};
use crate::http::body::{self, Body};
use crate::metrics::Metrics;

/// The largest request body the admin API reads (an integration is a few hundred bytes).
const MAX_BODY: usize = 64 * 1024;

/// The Content-Security-Policy of every admin answer: the page loads its
/// own script and style and talks to its own origin, nothing else; no
/// inline script or style, no framing.
pub const CSP: &str = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; \
                       img-src 'self' data:; form-action 'none'; frame-ancestors 'none'; base-uri 'none'";

/// What the admin listener serves; cheap to clone.
#[derive(Clone)]
pub struct Admin {
    pub live: Live,
    pub metrics: Metrics,
    token: Option<Arc<[u8]>>,
}

impl Admin {
    pub fn new(cfg: &AdminConfig, live: Live, metrics: Metrics) -> Admin {
        let token = cfg.token.as_ref().map(|t| Arc::from(t.expose().as_bytes()));
        Admin { live, metrics, token }
    }

    /// Answers one request; never fails (errors become responses).
    pub async fn handle(&self, req: Request<Incoming>, peer: SocketAddr) -> Response<Body> {
        let head = req.method() == Method::HEAD;
        let mut resp = match self.route(req, peer).await {
            Ok(resp) => resp,
            Err(e) => e.into_response(head),
        };
        secure(resp.headers_mut());
        resp
    }

    async fn route(&self, req: Request<Incoming>, peer: SocketAddr) -> Result<Response<Body>> {
        let path = req.uri().path().to_owned();
        let method = req.method().clone();
        if let Some(resp) = public(&method, &path, &self.live) {
            return Ok(resp);
        }
        self.authorize(&req, peer)?;
        let (parts, incoming) = req.into_parts();
        let body = if matches!(method, Method::PUT | Method::POST) { read_body(incoming).await? } else { Bytes::new() };
        api::route(self, &parts.method, &path, body, peer).await
    }

    /// Step 2 of the module doc: the bearer token, in constant time.
    fn authorize<B>(&self, req: &Request<B>, peer: SocketAddr) -> Result<()> {
        let Some(token) = &self.token else { return Ok(()) };
        let given = req
            .headers()
            .get(header::AUTHORIZATION)
            .and_then(|v| v.to_str().ok())
            .and_then(|v| v.strip_prefix("Bearer "))
            .map(str::trim);
        let Some(given) = given else {
            return Err(Error::new(Kind::Unauthorized, "send the admin token as `Authorization: Bearer <token>`"));
        };
        if bool::from(given.as_bytes().ct_eq(token)) {
            return Ok(());
        }
        tracing::warn!(target: "mediagate::audit", client = %peer, path = %req.uri().path(), "admin request with a wrong token refused");
        Err(Error::new(Kind::Unauthorized, "the admin token is wrong"))
    }
}

/// The routes that need no token, or `None`.
fn public(method: &Method, path: &str, live: &Live) -> Option<Response<Body>> {
    if method != Method::GET && method != Method::HEAD {
        return None;
    }
    match path {
        "/healthz" => Some(text(StatusCode::OK, "text/plain; charset=utf-8", Bytes::from_static(b"ok\n"))),
        "/readyz" => Some(api::readyz(live)),
        _ => page::asset(path),
    }
}

/// Hardening headers of every admin answer.
fn secure(h: &mut http::HeaderMap) {
    h.insert(header::CONTENT_SECURITY_POLICY, HeaderValue::from_static(CSP));
    h.insert(header::X_CONTENT_TYPE_OPTIONS, HeaderValue::from_static("nosniff"));
    h.insert(header::REFERRER_POLICY, HeaderValue::from_static("no-referrer"));
    h.insert(header::X_FRAME_OPTIONS, HeaderValue::from_static("DENY"));
    h.entry(header::CACHE_CONTROL).or_insert(HeaderValue::from_static("no-store"));
}

/// The request body, at most [`MAX_BODY`] bytes.
async fn read_body(incoming: Incoming) -> Result<Bytes> {
    let limited = http_body_util::Limited::new(incoming, MAX_BODY);
    match limited.collect().await {
        Ok(collected) => Ok(collected.to_bytes()),
        Err(e) => {
            Err(Error::new(Kind::BadConfig, format!("the request body cannot be read (at most {MAX_BODY} bytes): {e}")))
        }
    }
}

/// A response with a fixed body.
pub fn text(status: StatusCode, content_type: &'static str, bytes: Bytes) -> Response<Body> {
    let len = bytes.len();
    let mut resp = Response::new(body::full(bytes));
    *resp.status_mut() = status;
    resp.headers_mut().insert(header::CONTENT_TYPE, HeaderValue::from_static(content_type));
    resp.headers_mut().insert(header::CONTENT_LENGTH, HeaderValue::from(len));
    resp
}

/// A JSON response.
pub fn json(status: StatusCode, value: &serde_json::Value) -> Response<Body> {
    let mut text_body = value.to_string();
    text_body.push('\n');
    text(status, "application/json", Bytes::from(text_body))
}

/// Binds the admin listener.
pub async fn bind(cfg: &AdminConfig) -> std::io::Result<TcpListener> {
    TcpListener::bind(cfg.listen).await
}

/// Serves the admin listener until `shutdown` resolves.
pub async fn serve(listener: TcpListener, admin: Admin, shutdown: impl Future<Output = ()>) {
    let builder = Arc::new(auto::Builder::new(TokioExecutor::new()));
    tokio::pin!(shutdown);
    loop {
        let (stream, peer) = tokio::select! {
            accepted = listener.accept() => match accepted {
                Ok(accepted) => accepted,
                Err(e) => {
                    tracing::warn!(error = %e, "admin accept failed");
                    continue;
                }
            },
            () = &mut shutdown => return,
        };
        let (admin, builder) = (admin.clone(), builder.clone());
        tokio::spawn(async move {
            let service = hyper::service::service_fn(move |req: Request<Incoming>| {
                let admin = admin.clone();
                async move { Ok::<_, Infallible>(admin.handle(req, peer).await) }
            });
            if let Err(e) = builder.serve_connection(TokioIo::new(stream), service).await {
                tracing::debug!(error = %e, client = %peer, "admin connection ended with an error");
            }
        });
    }
}
