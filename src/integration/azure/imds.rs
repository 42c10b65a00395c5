//! A managed identity's token from the Azure Instance Metadata Service
//! ([IMDS: get a token](https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#get-a-token-using-http)),
//! as a [`TokenCredential`] that [`super::identity`] keeps in its token cache.
//!
//! `azure_identity` 1.0 asks only `http://169.254.169.254`; the other Azure
//! SDKs (Python, .NET) take the base URL from `AZURE_POD_IDENTITY_AUTHORITY_HOST`,
//! and so does this: the same request in production and in the tests,
//! which point it at a stand-in on loopback.
//!
//! `GET <base>/metadata/identity/oauth2/token?api-version=2018-02-01&resource=<resource>`
//! (`&client_id=` for a user-assigned identity) with `Metadata: true`,
//! through the integration's own transport ([`HyperTransport`]). The
//! answer's `expires_on` (epoch seconds, sent as a string) or else
//! `expires_in` says when the token expires. 404 and 410 (IMDS being
//! updated), 429 and 5xx are retried a few times with exponential backoff,
//! as the IMDS guidance says
//! ([retry guidance](https://learn.microsoft.com/entra/identity/managed-identities-azure-resources/how-to-use-vm-token#retry-guidance));
//! their last answer is an outage (`upstream_error`), another 4xx a refusal
//! (`upstream_denied`).

use std::time::{Duration, SystemTime};

use azure_core::credentials::{AccessToken, TokenCredential, TokenRequestOptions};
use azure_core::error::{Error as AzError, ErrorKind as AzErrorKind};
use azure_core::http::{HttpClient, Method, Request, StatusCode, Url};
use azure_core::time::OffsetDateTime;
use serde_json::Value;

use super::transport::HyperTransport;

/// The environment variable that overrides the IMDS base URL (as the Python and .NET SDKs read it).
pub const AUTHORITY_VAR: &str = "AZURE_POD_IDENTITY_AUTHORITY_HOST";
/// IMDS's address on every Azure VM.
pub const DEFAULT_AUTHORITY: &str = "http://169.254.169.254";
const TOKEN_PATH: &str = "/metadata/identity/oauth2/token";
const API_VERSION: &str = "2018-02-01";
/// Retries of a 404, 410, 429 or 5xx answer, after the first request.
const RETRIES: u32 = 3;
/// The first pause between attempts, doubled each time.
const FIRST_BACKOFF: Duration = Duration::from_millis(100);

/// IMDS tokens for a system-assigned identity, or with `client_id` a user-assigned one.
#[derive(Debug)]
pub struct Imds {
    /// `<base>/metadata/identity/oauth2/token`.
    endpoint: Url,
    client_id: Option<String>,
    transport: HyperTransport,
}

impl Imds {
    /// IMDS at `base` (the `AZURE_POD_IDENTITY_AUTHORITY_HOST` value or
    /// [`DEFAULT_AUTHORITY`], see [`Imds::base_from_env`]).
    pub fn new(base: &str, client_id: Option<String>, transport: HyperTransport) -> Result<Imds, String> {
        let url = format!("{}{TOKEN_PATH}", base.trim_end_matches('/'));
        let endpoint = Url::parse(&url).map_err(|e| format!("{AUTHORITY_VAR} {base:?} is not a URL: {e}"))?;
        if !matches!(endpoint.scheme(), "http" | "https") {
            return Err(format!("{AUTHORITY_VAR} {base:?} is not an http:// or https:// URL"));
        }
        Ok(Imds { endpoint, client_id, transport })
    }

    /// The base URL: `AZURE_POD_IDENTITY_AUTHORITY_HOST` when set, else IMDS's own address.
    pub fn base_from_env(var: impl Fn(&str) -> Option<String>) -> String {
        var(AUTHORITY_VAR).filter(|v| !v.is_empty()).unwrap_or_else(|| DEFAULT_AUTHORITY.to_owned())
    }

    fn request(&self, resource: &str) -> Request {
        let mut url = self.endpoint.clone();
        url.query_pairs_mut().append_pair("api-version", API_VERSION).append_pair("resource", resource);
        if let Some(id) = &self.client_id {
            url.query_pairs_mut().append_pair("client_id", id);
        }
        let mut req = Request::new(url, Method::Get);
        req.insert_header("metadata", "true");
        req
    }

    /// Where this asks, for messages (no query).
    fn at(&self) -> String {
        let mut base = self.endpoint.clone();
        base.set_path("");
        format!("IMDS at {}", base.as_str().trim_end_matches('/'))
    }

    /// One exchange: the status and the body.
    async fn exchange(&self, resource: &str) -> azure_core::Result<(StatusCode, bytes::Bytes)> {
        let (status, _, body) = self.transport.execute_request(&self.request(resource)).await?.deconstruct();
        Ok((status, body.collect().await?))
    }
}

/// 404 and 410 (IMDS is being updated), 429 (throttled) and 5xx: worth another try.
fn retryable(status: StatusCode) -> bool {
    let code = u16::from(status);
    matches!(code, 404 | 410 | 429) || code >= 500
}

#[async_trait::async_trait]
impl TokenCredential for Imds {
    async fn get_token(&self, scopes: &[&str], _: Option<TokenRequestOptions<'_>>) -> azure_core::Result<AccessToken> {
        let [scope] = scopes else {
            return Err(AzError::with_message(AzErrorKind::Credential, "IMDS takes exactly one scope"));
        };
        // An Entra ID v2 scope names the v1 resource IMDS asks for.
        let resource = scope.strip_suffix("/.default").unwrap_or(scope);
        let mut pause = FIRST_BACKOFF;
        let mut attempt = 0;
        loop {
            let (status, body) = self.exchange(resource).await?;
            if status.is_success() {
                return parse_token(&body, SystemTime::now()).map_err(|why| {
                    AzError::with_message(AzErrorKind::DataConversion, format!("{} answered {why}", self.at()))
                });
            }
            let said = what_it_said(&body);
            if retryable(status) && attempt < RETRIES {
                attempt += 1;
                tracing::debug!(status = u16::from(status), attempt, "IMDS token request: retrying");
                tokio::time::sleep(pause).await;
                pause *= 2;
                continue;
            }
            let code = u16::from(status);
            if retryable(status) {
                // Still failing after the retries: an outage, not a refusal.
                let tries = attempt + 1;
                let msg = format!("{} answered {code} {said} ({tries} attempts)", self.at());
                return Err(AzError::with_message(AzErrorKind::Io, msg));
            }
            let msg = format!("{} answered {code} {said}", self.at());
            let kind = AzErrorKind::HttpResponse { status, error_code: None, raw_response: None };
            return Err(AzError::with_message(kind, msg));
        }
    }
}

/// The reason in an IMDS error body (`error_description`, else `error`),
/// else the start of the body; never a token (error bodies carry none).
fn what_it_said(body: &[u8]) -> String {
    let json: Option<Value> = serde_json::from_slice(body).ok();
    let field = |k: &str| json.as_ref().and_then(|j| j.get(k)).and_then(Value::as_str).map(str::to_owned);
    let said = field("error_description").or_else(|| field("error")).unwrap_or_else(|| {
        let text = String::from_utf8_lossy(body);
        text.chars().take(200).collect()
    });
    let said = said.trim();
    if said.is_empty() { String::new() } else { format!(": {said}") }
}

/// A seconds value as IMDS sends it: a string of digits (or a number).
fn seconds(v: &Value) -> Option<i64> {
    match v {
        Value::String(s) => s.trim().parse().ok(),
        other => other.as_i64(),
    }
}

/// The token of a successful answer: `access_token`, and its expiry from
/// `expires_on` (epoch seconds) or else `expires_in` (seconds from `now`).
fn parse_token(body: &[u8], now: SystemTime) -> Result<AccessToken, String> {
    let json: Value = serde_json::from_slice(body).map_err(|e| format!("a body that is not JSON: {e}"))?;
    let token = json.get("access_token").and_then(Value::as_str).filter(|t| !t.is_empty());
    let token = token.ok_or("no access_token")?;
    let now_secs = now.duration_since(SystemTime::UNIX_EPOCH).map_or(0, |d| d.as_secs() as i64);
    let expires = match (json.get("expires_on").and_then(seconds), json.get("expires_in").and_then(seconds)) {
        (Some(on), _) => on,
        (None, Some(within)) => now_secs + within,
        (None, None) => return Err("a token with neither expires_on nor expires_in".into()),
    };
    let expires_on = OffsetDateTime::from_unix_timestamp(expires).map_err(|e| format!("expires_on {expires}: {e}"))?;
    Ok(AccessToken::new(token.to_owned(), expires_on))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn at(secs: u64) -> SystemTime {
        SystemTime::UNIX_EPOCH + Duration::from_secs(secs)
    }

    #[test]
    fn expires_on_is_read_as_epoch_seconds_sent_as_a_string() {
        let body = br#"{"access_token":"t","expires_on":"1800000000","expires_in":"3599","token_type":"Bearer"}"#;
        let token = parse_token(body, at(1_700_000_000)).unwrap();
        assert_eq!(token.token.secret(), "t");
        assert_eq!(token.expires_on.unix_timestamp(), 1_800_000_000);
    }

    #[test]
    fn without_expires_on_the_token_expires_expires_in_seconds_from_now() {
        let token = parse_token(br#"{"access_token":"t","expires_in":60}"#, at(1_000)).unwrap();
        assert_eq!(token.expires_on.unix_timestamp(), 1_060);
    }

    #[test]
    fn an_answer_without_a_token_or_an_expiry_is_refused_with_the_reason() {
        assert!(parse_token(br#"{"expires_in":"60"}"#, at(0)).unwrap_err().contains("access_token"));
        assert!(parse_token(br#"{"access_token":"t"}"#, at(0)).unwrap_err().contains("expires_in"));
        assert!(parse_token(b"<html>", at(0)).unwrap_err().contains("not JSON"));
    }

    #[test]
    fn an_error_body_gives_its_description() {
        let body = br#"{"error":"invalid_request","error_description":"Identity not found"}"#;
        assert_eq!(what_it_said(body), ": Identity not found");
        assert_eq!(what_it_said(b""), "");
    }

    #[test]
    fn the_base_url_comes_from_azure_pod_identity_authority_host_else_imds_own_address() {
        let base = Imds::base_from_env(|v| (v == AUTHORITY_VAR).then(|| "http://127.0.0.1:8080/".to_owned()));
        assert_eq!(base, "http://127.0.0.1:8080/");
        assert_eq!(Imds::base_from_env(|_| None), "http://169.254.169.254");
    }

    #[test]
    fn only_updating_throttled_and_server_errors_are_retried() {
        for (code, retried) in
            [(404, true), (410, true), (429, true), (500, true), (503, true), (400, false), (403, false)]
        {
            assert_eq!(retryable(StatusCode::from(code)), retried, "{code}");
        }
    }
}
