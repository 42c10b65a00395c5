//! The transport of the `azure_identity` credentials: their token requests go
//! through the project's own hyper client and rustls (the integration's
//! connector, [`crate::integration::upstream::connector`]), so the crate needs
//! neither reqwest nor a second TLS stack, and `ca_file` and `SSL_CERT_FILE`
//! are trusted for the identity endpoints as for the storage.

use std::path::Path;
use std::sync::Arc;

use azure_core::error::{Error as AzError, ErrorKind as AzErrorKind};
use azure_core::http::headers::{HeaderName, HeaderValue, Headers};
use azure_core::http::{AsyncRawResponse, Body, HttpClient, Request, StatusCode, Transport};
use bytes::Bytes;
use http_body_util::{BodyExt, Full};
use hyper_util::client::legacy::Client;
use hyper_util::rt::{TokioExecutor, TokioTimer};

use crate::integration::upstream::{Connector, UpstreamConfig, connector};

/// The most an identity endpoint's answer may hold (a token answer is a few KiB).
const MAX_ANSWER_BYTES: usize = 1 << 20;

/// An [`HttpClient`] over hyper-util, for `ClientOptions.transport`.
#[derive(Clone)]
pub struct HyperTransport {
    client: Client<Connector, Full<Bytes>>,
    /// Whole exchange, connect to last byte.
    timeout: std::time::Duration,
    /// The integration's name, for messages.
    integration: Arc<str>,
}

impl std::fmt::Debug for HyperTransport {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("HyperTransport").finish_non_exhaustive()
    }
}

impl HyperTransport {
    /// A client trusting what the storage client trusts (`ca_file`, `SSL_CERT_FILE`).
    pub fn new(cfg: &UpstreamConfig, ca_file: Option<&Path>, integration: &str) -> Result<HyperTransport, String> {
        let client = Client::builder(TokioExecutor::new())
            .pool_idle_timeout(cfg.pool_idle_timeout)
            .pool_max_idle_per_host(2)
            .pool_timer(TokioTimer::new())
            .timer(TokioTimer::new())
            .build(connector(cfg, ca_file)?);
        let timeout = cfg.connect_timeout + cfg.first_byte_timeout;
        Ok(HyperTransport { client, timeout, integration: Arc::from(integration) })
    }

    /// As `ClientOptions.transport`.
    pub fn into_transport(self) -> Transport {
        Transport::new(Arc::new(self))
    }
}

fn io_error(message: String) -> AzError {
    AzError::with_message(AzErrorKind::Io, message)
}

#[async_trait::async_trait]
impl HttpClient for HyperTransport {
    async fn execute_request(&self, request: &Request) -> azure_core::Result<AsyncRawResponse> {
        let body = match request.body() {
            Body::Bytes(b) => Full::new(Bytes::copy_from_slice(b)),
            #[allow(unreachable_patterns)]
            _ => return Err(io_error("a streamed request body is not supported by this transport".into())),
        };
        let mut builder = http::Request::builder().method(request.method().as_ref()).uri(request.url().as_str());
        for (name, value) in request.headers().iter() {
            builder = builder.header(name.as_str(), value.as_str());
        }
        let req = builder.body(body).map_err(|e| io_error(format!("cannot build the request: {e}")))?;
        let host = request.url().host_str().unwrap_or_default().to_owned();
        let exchange = async {
            let resp = self.client.request(req).await.map_err(|e| {
                let failure = crate::integration::transport::classify(&e);
                // The transport's sentences speak of "the storage of integration ...".
                let message = failure.message(&self.integration, &host);
                io_error(message.replacen("the storage of", "the identity endpoint of", 1))
            })?;
            let (parts, body) = resp.into_parts();
            let limited = http_body_util::Limited::new(body, MAX_ANSWER_BYTES);
            let bytes = limited.collect().await.map_err(|e| io_error(format!("reading the answer of {host}: {e}")))?;
            Ok::<_, AzError>((parts, bytes.to_bytes()))
        };
        let (parts, bytes) = tokio::time::timeout(self.timeout, exchange)
            .await
            .map_err(|_| io_error(format!("{host} did not answer within {:?}", self.timeout)))??;
        let mut headers = Headers::new();
        for (name, value) in &parts.headers {
            if let Ok(v) = value.to_str() {
                headers.insert(HeaderName::from(name.as_str().to_owned()), HeaderValue::from(v.to_owned()));
            }
        }
        Ok(AsyncRawResponse::from_bytes(StatusCode::from(parts.status.as_u16()), headers, bytes))
    }
}
