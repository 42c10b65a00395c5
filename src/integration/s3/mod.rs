//! S3 and S3-compatible storage (MinIO, Ceph RGW, R2, Wasabi, and Google
//! Cloud Storage through its XML API with HMAC keys), signed with SigV4.
//!
//! - [`sign`]: the signature, a pure function tested against AWS's examples;
//! - [`S3Backend`]: URLs (path or virtual-host addressing), the request
//!   headers mediagate forwards, and the connection test.

pub mod config;
pub mod credential;
pub mod sign;

use std::fmt;
use std::time::SystemTime;

use std::sync::Arc;

use bytes::Bytes;
use http::{HeaderValue, Method, Request, header};
use http_body_util::Empty;

use self::config::{Addressing, S3Config};
use self::credential::S3Keys;
use crate::error::{Error, Kind, Result};
use crate::integration::probe::{self, Context, Problem, Storage, Target};
use crate::integration::upstream::UpstreamClient;
use crate::integration::upstream::UpstreamConfig;
use crate::integration::{ObjectRequest, ObjectResponse};
use crate::locator::{Scheme, check_upstream_path, encode_key};

/// An S3 integration's client.
pub struct S3Backend {
    name: String,
    client: UpstreamClient,
    /// `http` or `https`.
    scheme: &'static str,
    /// `host` or `host:port`.
    endpoint: String,
    region: String,
    addressing: Addressing,
    locator_scheme: Scheme,
    buckets: Vec<String>,
    keys: S3Keys,
}

impl fmt::Debug for S3Backend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("S3Backend")
            .field("name", &self.name)
            .field("endpoint", &self.endpoint)
            .field("region", &self.region)
            .field("credentials", &self.keys.status().0)
            .finish()
    }
}

impl S3Backend {
    /// Builds the client of integration `name`; fails on an unreadable
    /// `ca_file` or missing environment credentials.
    pub fn new(name: &str, cfg: &S3Config, upstream: &UpstreamConfig) -> Result<S3Backend, String> {
        let client = UpstreamClient::new(upstream, cfg.ca_file.as_deref(), name)?;
        let identity = UpstreamClient::new(upstream, cfg.ca_file.as_deref(), name)?;
        let cx =
            credential::Ctx { integration: Arc::from(name), client: Arc::new(identity), region: cfg.region.clone() };
        let keys = S3Keys::new(&cfg.credentials, cx)?;
        let endpoint = match cfg.port {
            Some(port) => format!("{}:{port}", cfg.endpoint),
            None => cfg.endpoint.clone(),
        };
        Ok(S3Backend {
            name: name.to_owned(),
            client,
            scheme: if cfg.tls { "https" } else { "http" },
            endpoint,
            region: cfg.region.clone(),
            addressing: cfg.addressing,
            locator_scheme: cfg.locator_scheme,
            buckets: cfg.buckets.clone(),
            keys,
        })
    }

    /// Records this integration's requests to its storage in `metrics`.
    pub fn with_metrics(mut self, metrics: &crate::metrics::Metrics) -> Self {
        self.client = self.client.with_metrics(metrics);
        self.keys.observe(metrics.credential_observer(&self.name));
        self
    }

    /// Reads an object: `GetObject` or `HeadObject`, with the range and
    /// preconditions forwarded.
    pub async fn fetch(&self, req: &ObjectRequest<'_>) -> Result<ObjectResponse> {
        let method = if req.head { Method::HEAD } else { Method::GET };
        let mut builder = Request::builder().method(method).uri(self.url(req.bucket, &encode_key(req.key), ""));
        if let Some(range) = req.range {
            builder = builder.header(header::RANGE, range.to_header());
        }
        for (name, value) in forwarded_conditions(req) {
            builder = builder.header(name, value);
        }
        let resp = self.send(builder).await?;
        let what = format!("{}://{}/{}", self.locator_scheme, req.bucket, req.key);
        self.client.object_response(resp, req.head, &what).await
    }

    /// The connection test: [ListObjectsV2] with `max-keys=1` in each scoped
    /// bucket, or [ListBuckets] for a default integration; the first failure
    /// ends it. `Ok` says what was listed.
    ///
    /// [ListObjectsV2]: https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListObjectsV2.html
    /// [ListBuckets]: https://docs.aws.amazon.com/AmazonS3/latest/API/API_ListBuckets.html
    pub async fn test_connection(&self) -> Result<String, Problem> {
        let creds = self.keys.current().await.map_err(|e| Problem::Credentials(e.message))?;
        let secrets = [creds.secret_access_key(), creds.session_token().unwrap_or_default()];
        if self.buckets.is_empty() {
            let req = self.signed(Request::get(format!("{}://{}/", self.scheme, self.endpoint)), &creds);
            let req = req.map_err(|e| Problem::Internal(e.message))?;
            probe::list(&self.client, req, Target::BucketList, "<ListAllMyBucketsResult", &secrets).await?;
            return Ok(format!("listed the buckets at {}", self.endpoint));
        }
        for bucket in &self.buckets {
            let req = self.signed(Request::get(self.url(bucket, "", "list-type=2&max-keys=1")), &creds);
            let req = req.map_err(|e| Problem::Internal(e.message))?;
            probe::list(&self.client, req, Target::Bucket(bucket.clone()), "<ListBucketResult", &secrets).await?;
        }
        let noun = if self.buckets.len() == 1 { "bucket" } else { "buckets" };
        Ok(format!("listed {noun} {} at {}", self.buckets.join(", "), self.endpoint))
    }

    /// What the connection test's sentences may name: never a secret.
    pub fn probe_context<'a>(&'a self) -> Context<'a> {
        Context {
            integration: &self.name,
            storage: Storage::S3 {
                endpoint: &self.endpoint,
                tls: self.scheme == "https",
                region: &self.region,
                access_key_id: self.keys.access_key_id(),
            },
        }
    }

    /// The URL of `encoded_key` in `bucket` (an empty key names the bucket).
    fn url(&self, bucket: &str, encoded_key: &str, query: &str) -> String {
        let q = if query.is_empty() { String::new() } else { format!("?{query}") };
        match self.addressing {
            Addressing::Path => format!("{}://{}/{bucket}/{encoded_key}{q}", self.scheme, self.endpoint),
            Addressing::VirtualHost => format!("{}://{bucket}.{}/{encoded_key}{q}", self.scheme, self.endpoint),
        }
    }

    /// Signs and sends; a path with a dot segment is never signed nor sent
    /// ([`check_upstream_path`]).
    async fn send(&self, builder: http::request::Builder) -> Result<http::Response<hyper::body::Incoming>> {
        if let Some(uri) = builder.uri_ref() {
            check_upstream_path(uri.path(), &self.name)?; // before asking an identity endpoint
        }
        let creds = self.keys.current().await?;
        self.client.send(self.signed(builder, &creds)?).await
    }

    /// The credential source in use (`static`, `env`, `web-identity`,
    /// `instance`) and when the keys held now expire (temporary keys only).
    pub fn credential_status(&self) -> (&'static str, Option<SystemTime>) {
        self.keys.status()
    }

    /// The signed request; a path with a dot segment is refused, unsigned.
    fn signed(
        &self,
        builder: http::request::Builder,
        creds: &aws_credential_types::Credentials,
    ) -> Result<Request<Empty<Bytes>>> {
        let mut req = builder
            .body(Empty::<Bytes>::new())
            .map_err(|e| Error::internal(format!("integration \"{}\": cannot build the request: {e}", self.name)))?;
        check_upstream_path(req.uri().path(), &self.name)?;
        sign::sign_request(&mut req, creds, &self.region, SystemTime::now())
            .map_err(|e| Error::new(Kind::Internal, format!("integration \"{}\": {e}", self.name)))?;
        Ok(req)
    }
}

/// The precondition headers S3 understands, as the client sent them.
fn forwarded_conditions(req: &ObjectRequest<'_>) -> Vec<(header::HeaderName, HeaderValue)> {
    let c = req.conditions;
    let mut out = Vec::new();
    let mut push = |name, value: Option<String>| {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(&v).ok()) {
            out.push((name, v));
        }
    };
    push(header::IF_MATCH, c.if_match.clone());
    push(header::IF_NONE_MATCH, c.if_none_match.clone());
    push(header::IF_MODIFIED_SINCE, c.if_modified_since.map(httpdate::fmt_http_date));
    push(header::IF_UNMODIFIED_SINCE, c.if_unmodified_since.map(httpdate::fmt_http_date));
    out
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::http::conditional::Conditions;
    use crate::integration::s3::config::S3Credentials;
    use crate::integration::secret_file::SecretValue;
    use crate::secret::Secret;

    /// A backend for 127.0.0.1:9 (discard): were a request sent, it would
    /// fail with a connection error, not with the refusal under test.
    fn backend(addressing: Addressing) -> S3Backend {
        let cfg = S3Config {
            endpoint: "127.0.0.1".to_owned(),
            custom_endpoint: true,
            port: Some(9),
            tls: false,
            region: "us-east-1".to_owned(),
            credentials: S3Credentials::Static {
                access_key_id: "AKID".to_owned(),
                secret_access_key: SecretValue::Inline(Secret::new("secret")),
                session_token: None,
            },
            buckets: vec!["media".to_owned()],
            addressing,
            locator_scheme: Scheme::S3,
            ca_file: None,
        };
        let upstream = UpstreamConfig {
            connect_timeout: Duration::from_secs(1),
            first_byte_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(5),
            pool_max_idle_per_host: 4,
        };
        S3Backend::new("s3", &cfg, &upstream).unwrap()
    }

    #[tokio::test]
    async fn a_key_with_a_dot_segment_is_never_signed_nor_sent() {
        let cond = Conditions::default();
        for addressing in [Addressing::Path, Addressing::VirtualHost] {
            let b = backend(addressing);
            for key in ["../outside/o.txt", "a/./b", "x/..", ".", ".."] {
                for head in [false, true] {
                    let req = ObjectRequest { head, bucket: "media", key, range: None, conditions: &cond };
                    let err = b.fetch(&req).await.unwrap_err();
                    assert_eq!(err.kind, Kind::Internal, "{key:?}: {}", err.message);
                    assert!(err.message.contains("integration \"s3\" refused"), "{}", err.message);
                }
            }
        }
    }
}
