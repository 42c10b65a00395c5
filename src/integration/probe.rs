//! The connection test's result (CONTRACT.md section 6, `<test>`), what a
//! test can run into ([`Problem`]), and the listing request every remote
//! backend's test sends ([`list`]).
//!
//! Each backend's test (`S3Backend::test_connection`, ...) reports a
//! [`Problem`]; [`describe`] (the one table, in `sentence.rs`) turns it into
//! a code and a sentence a person can act on, a pure function of the
//! problem and the integration's [`Context`]. docs/CONNECTION-TEST.md lists
//! every code. Transport failures are classified in one place,
//! [`crate::integration::transport::classify`]; here they are only worded.

use std::fmt;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::{BodyExt, Empty};
use serde::ser::{Serialize, SerializeStruct, Serializer};

use crate::integration::transport::Failure;
use crate::integration::upstream::{NoAnswer, Refusal, UpstreamClient};

mod sentence;

pub use sentence::{describe, local_code};

/// The code of a test that passed.
pub const OK: &str = "ok";

/// A connection test's outcome, serialised as the contract's `<test>`:
/// `{"ok": bool, "code": "...", "message": "...", "at": "<RFC 3339>", "duration_ms": n}`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ConnectionTest {
    pub ok: bool,
    /// `ok`, the storage's own error code (`SignatureDoesNotMatch`, ...),
    /// `timeout`, `dns`, `tls`, `connect`, or a local code (`not_found`, ...).
    pub code: String,
    /// One sentence: the integration, what was tested, and what to do.
    pub message: String,
    /// When the test started.
    pub at: SystemTime,
    pub duration: Duration,
}

impl ConnectionTest {
    /// The result for a test that started `at` and took `duration`:
    /// `Ok(checked)` names what was listed; `Err` is worded by [`describe`].
    pub fn new(ctx: &Context<'_>, outcome: Result<String, Problem>, at: SystemTime, duration: Duration) -> Self {
        let (code, message) = match outcome {
            Ok(checked) => (OK.to_owned(), format!("integration \"{}\": {checked}", ctx.integration)),
            Err(problem) => describe(ctx, &problem),
        };
        ConnectionTest { ok: code == OK, code, message, at, duration }
    }
}

impl Serialize for ConnectionTest {
    fn serialize<S: Serializer>(&self, serializer: S) -> Result<S::Ok, S::Error> {
        let mut s = serializer.serialize_struct("ConnectionTest", 5)?;
        s.serialize_field("ok", &self.ok)?;
        s.serialize_field("code", &self.code)?;
        s.serialize_field("message", &self.message)?;
        s.serialize_field("at", &rfc3339(self.at))?;
        s.serialize_field("duration_ms", &u64::try_from(self.duration.as_millis()).unwrap_or(u64::MAX))?;
        s.end()
    }
}

/// `2026-12-02T22:40:11Z`: RFC 3339 section 5.6, UTC, whole seconds
/// (formatted by the `time` crate).
pub fn rfc3339(t: SystemTime) -> String {
    let utc = time::OffsetDateTime::from(t);
    let whole = utc.replace_nanosecond(0).unwrap_or(utc);
    whole.format(&time::format_description::well_known::Rfc3339).unwrap_or_else(|_| "1970-01-01T00:00:00Z".to_owned())
}

/// What the sentence needs to know about the integration. Never a secret.
#[derive(Debug, Clone, Copy)]
pub struct Context<'a> {
    pub integration: &'a str,
    pub storage: Storage<'a>,
}

/// The integration's type and the non-secret parts of its configuration.
#[derive(Debug, Clone, Copy)]
pub enum Storage<'a> {
    S3 {
        /// `host` or `host:port`.
        endpoint: &'a str,
        tls: bool,
        /// The configured region.
        region: &'a str,
        access_key_id: &'a str,
    },
    Azure {
        /// `host` or `host:port`.
        endpoint: &'a str,
        tls: bool,
        account: &'a str,
        auth: AzureAuth,
    },
    Local {
        root: &'a Path,
    },
}

impl Storage<'_> {
    /// Where the storage is: `host[:port]`, or the local root.
    pub fn location(&self) -> String {
        match self {
            Storage::S3 { endpoint, .. } | Storage::Azure { endpoint, .. } => (*endpoint).to_owned(),
            Storage::Local { root } => root.display().to_string(),
        }
    }
}

/// How an Azure integration authorizes its requests.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum AzureAuth {
    /// `account_key` (SharedKey).
    AccountKey,
    /// `sas_token`.
    Sas,
    /// A bearer token of an identity (service principal, workload or managed identity).
    Bearer,
}

/// What a test was listing when it failed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Target {
    /// S3 ListObjectsV2 in this bucket.
    Bucket(String),
    /// S3 ListBuckets.
    BucketList,
    /// Azure List Blobs in this container.
    Container(String),
    /// Azure List Containers.
    ContainerList,
    /// A local directory: the root (`bucket` `None`) or a bucket's.
    Directory { bucket: Option<String>, path: PathBuf },
}

impl fmt::Display for Target {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Target::Bucket(b) => write!(f, "bucket {b}"),
            Target::BucketList => f.write_str("the bucket list"),
            Target::Container(c) => write!(f, "container {c}"),
            Target::ContainerList => f.write_str("the container list"),
            Target::Directory { bucket: None, path } => write!(f, "root directory {}", path.display()),
            Target::Directory { bucket: Some(b), path } => write!(f, "directory {} of bucket {b}", path.display()),
        }
    }
}

/// Which time limit ran out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Limit {
    /// The limit the caller gave the whole test.
    Test,
    /// `[upstream] connect_timeout`: TCP and TLS.
    Connect,
    /// `[upstream] first_byte_timeout`: request sent to response head.
    FirstByte,
}

/// Why a test failed, as data; [`describe`] words it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Problem {
    /// The storage answered the listing with an error.
    Refused { target: Target, refusal: Refusal },
    /// No answer: DNS, TCP or TLS (a connect timeout is [`Problem::Timeout`]).
    Unreachable { host: String, failure: Failure },
    /// A time limit ran out; `host` is the storage (or the local root).
    Timeout { host: String, limit: Limit, after: Duration },
    /// A `200` that is not the storage's listing: the endpoint is something else.
    NotStorage { target: Target, host: String },
    /// A local directory that cannot be listed.
    Local { target: Target, kind: std::io::ErrorKind, detail: String },
    /// The integration's credential source gave no credentials (an identity
    /// endpoint refused or could not be reached, a token file is
    /// unreadable): its message, which names the integration and the source.
    Credentials(String),
    /// The test could not even be sent (a bug): the text says why.
    Internal(String),
}

impl Problem {
    /// The problem for a request that got no answer; a connect timeout
    /// names `connect_timeout`.
    pub fn from_no_answer(e: NoAnswer, connect_timeout: Duration) -> Problem {
        match e {
            NoAnswer::Transport { failure: Failure::TimedOut, host, .. } => {
                Problem::Timeout { host, limit: Limit::Connect, after: connect_timeout }
            }
            NoAnswer::Transport { failure, host, .. } => Problem::Unreachable { host, failure },
            NoAnswer::Timeout { host, after } => Problem::Timeout { host, limit: Limit::FirstByte, after },
        }
    }

    /// A local directory's I/O error.
    pub fn local(target: Target, e: &std::io::Error) -> Problem {
        Problem::Local { target, kind: e.kind(), detail: e.to_string() }
    }
}

/// The longest part of a listing a test reads.
const LISTING_READ_LIMIT: usize = 64 * 1024;

/// Sends one listing request of a test and checks the answer: a `200`
/// whose body holds `marker` (`<ListBucketResult`, `<EnumerationResults`,
/// ...). Never retried beyond the client's own policy. `secrets` are removed
/// from whatever the storage says back.
pub async fn list(
    client: &UpstreamClient,
    req: Request<Empty<Bytes>>,
    target: Target,
    marker: &str,
    secrets: &[&str],
) -> Result<(), Problem> {
    let host = req.uri().authority().map(|a| a.to_string()).unwrap_or_default();
    let resp = client.try_send(req).await.map_err(|e| Problem::from_no_answer(e, client.connect_timeout()))?;
    if resp.status() != StatusCode::OK {
        let mut refusal = Refusal::read(resp).await;
        refusal.message = refusal.message.map(|m| scrub(&m, secrets));
        return Err(Problem::Refused { target, refusal });
    }
    let body = client.stream_body(resp.into_body());
    let text = match read_at_most(body, LISTING_READ_LIMIT).await {
        Ok(text) => text,
        Err(e) => {
            let failure = Failure::Other(format!("the listing of {target} broke off: {e}"));
            return Err(Problem::Unreachable { host, failure });
        }
    };
    let marker = marker.as_bytes();
    if text.windows(marker.len()).any(|w| w == marker) { Ok(()) } else { Err(Problem::NotStorage { target, host }) }
}

/// The first `limit` bytes of `body` (or all of it, when shorter). Read
/// frame by frame rather than with `http_body_util::Limited`, whose boxed
/// error conversion keeps the future from being provably `Send`.
async fn read_at_most(mut body: crate::http::body::Body, limit: usize) -> Result<Vec<u8>, crate::http::body::BoxError> {
    let mut out = Vec::new();
    while out.len() < limit {
        let Some(frame) = body.frame().await else { break };
        if let Some(data) = frame?.data_ref() {
            out.extend_from_slice(data);
        }
    }
    out.truncate(limit);
    Ok(out)
}

/// Removes every occurrence of each secret from a text the storage sent
/// (which is shown only when no sentence of the table fits).
pub fn scrub(text: &str, secrets: &[&str]) -> String {
    let marker = crate::integration::config::SECRET_MARKER;
    secrets.iter().filter(|s| s.len() >= 4).fold(text.to_owned(), |t, s| t.replace(s, marker))
}

/// The context of an S3 integration "media", for the tests of this module and of [`sentence`].
#[cfg(test)]
fn test_s3_context() -> Context<'static> {
    Context {
        integration: "media",
        storage: Storage::S3 { endpoint: "s3.example:9000", tls: true, region: "us-east-1", access_key_id: "AKID1" },
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    use super::test_s3_context as s3;

    #[test]
    fn a_connect_timeout_names_connect_timeout_and_a_first_byte_timeout_names_its_setting() {
        let e = NoAnswer::Timeout { host: "h:1".to_owned(), after: Duration::from_secs(30) };
        let p = Problem::from_no_answer(e, Duration::from_secs(5));
        assert_eq!(
            p,
            Problem::Timeout { host: "h:1".to_owned(), limit: Limit::FirstByte, after: Duration::from_secs(30) }
        );
        assert!(describe(&s3(), &p).1.contains("first_byte_timeout (30s)"));
    }
    #[test]
    fn a_test_serialises_as_the_contract_shape() {
        let at = SystemTime::UNIX_EPOCH + Duration::from_millis(1_796_251_211_789);
        let t = ConnectionTest::new(&s3(), Ok("listed bucket photos".to_owned()), at, Duration::from_micros(42_900));
        let json = serde_json::to_value(&t).unwrap();
        assert_eq!(
            json,
            serde_json::json!({
                "ok": true,
                "code": "ok",
                "message": "integration \"media\": listed bucket photos",
                "at": "2026-12-02T22:40:11Z",
                "duration_ms": 42,
            })
        );
        let failed = ConnectionTest::new(&s3(), Err(Problem::Internal("x".to_owned())), at, Duration::ZERO);
        assert!(!failed.ok);
        assert_eq!(serde_json::to_value(&failed).unwrap()["ok"], false);
    }

    #[test]
    fn scrub_removes_secrets_from_storage_text() {
        assert_eq!(scrub("sig=abcd1234&x", &["abcd1234", ""]), "sig=********&x");
        assert_eq!(scrub("nothing here", &["abcd1234"]), "nothing here");
    }
}
