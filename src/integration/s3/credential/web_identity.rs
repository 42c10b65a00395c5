//! Web identity (Kubernetes IRSA): the pod's token file traded at STS for
//! temporary keys, [AssumeRoleWithWebIdentity] over the query API. The
//! request is unsigned (the token is the proof) and sent as a `GET` with the
//! parameters in the query string, which STS's query API accepts; the token
//! file is read again at each refresh, since the kubelet rotates it.
//!
//! [AssumeRoleWithWebIdentity]: https://docs.aws.amazon.com/STS/latest/APIReference/API_AssumeRoleWithWebIdentity.html

use std::path::PathBuf;

use aws_credential_types::Credentials;
use bytes::Bytes;
use http::{Request, StatusCode};
use http_body_util::Empty;

use super::{Ctx, parse_time, read_text, temporary_keys};
use crate::error::{Kind, Result};
use crate::integration::secret_file::read_secret_text;
use crate::integration::token::Expiring;
use crate::integration::upstream::{Refusal, xml_element};

const SOURCE: &str = "web-identity";

/// One integration's web identity.
pub struct WebIdentity {
    pub cx: Ctx,
    pub role_arn: String,
    pub token_file: PathBuf,
    /// The STS URL, without a trailing slash.
    pub endpoint: String,
    pub session_name: String,
}

impl WebIdentity {
    /// Asks STS for keys with the token file's content now.
    ///
    /// Errors: `UpstreamDenied` for an unreadable token file or a refusal
    /// ("STS refused: <Code>: <Message>"), `UpstreamError` when STS cannot
    /// be reached, fails (5xx) or answers something else.
    pub async fn fetch(&self) -> Result<Expiring<Credentials>> {
        let cx = &self.cx;
        let token = read_secret_text(&self.token_file)
            .map_err(|e| cx.error(Kind::UpstreamDenied, SOURCE, format!("web identity token file unreadable: {e}")))?;
        let query = form_urlencoded::Serializer::new(String::new())
            .append_pair("Action", "AssumeRoleWithWebIdentity")
            .append_pair("Version", "2011-06-15")
            .append_pair("RoleArn", &self.role_arn)
            .append_pair("RoleSessionName", &self.session_name)
            .append_pair("WebIdentityToken", &token)
            .finish();
        let url = format!("{}/?{query}", self.endpoint.trim_end_matches('/'));
        let req = Request::get(url).header("accept", "application/xml").body(Empty::<Bytes>::new()).map_err(|e| {
            cx.error(Kind::UpstreamError, SOURCE, format!("sts_endpoint {:?} is unusable: {e}", self.endpoint))
        })?;
        let resp = cx.client.try_send(req).await.map_err(|e| {
            let e = e.into_error(&cx.integration);
            cx.error(Kind::UpstreamError, SOURCE, format!("STS at {} unreachable: {}", self.endpoint, e.message))
        })?;
        let status = resp.status();
        if status != StatusCode::OK {
            let r = Refusal::read(resp).await;
            let said = format!(
                "{}: {}",
                r.code.as_deref().unwrap_or(status.as_str()),
                r.message.as_deref().unwrap_or("(no message)")
            );
            return Err(if status.is_client_error() {
                cx.error(Kind::UpstreamDenied, SOURCE, format!("STS refused: {said}"))
            } else {
                cx.error(Kind::UpstreamError, SOURCE, format!("STS failed ({status}): {said}"))
            });
        }
        let text = read_text(resp.into_body()).await.map_err(|e| cx.error(Kind::UpstreamError, SOURCE, e))?;
        parse_answer(&text).map_err(|e| cx.error(Kind::UpstreamError, SOURCE, format!("STS answered {e}")))
    }
}

/// The keys of an `AssumeRoleWithWebIdentityResponse`.
fn parse_answer(text: &str) -> Result<Expiring<Credentials>, String> {
    let field = |name: &str| xml_element(text, name).ok_or(format!("without <{name}>"));
    let expires = parse_time(&field("Expiration")?).ok_or("an unreadable <Expiration>")?;
    Ok(temporary_keys(field("AccessKeyId")?, field("SecretAccessKey")?, field("SessionToken")?, Some(expires), SOURCE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_and_expiry_are_read_from_the_sts_answer() {
        let answer = "<AssumeRoleWithWebIdentityResponse xmlns=\"https://sts.amazonaws.com/doc/2011-06-15/\">\
            <AssumeRoleWithWebIdentityResult><Credentials>\
            <AccessKeyId>ASIAEXAMPLE</AccessKeyId><SecretAccessKey>sk</SecretAccessKey>\
            <SessionToken>tok</SessionToken><Expiration>2026-12-03T01:02:03Z</Expiration>\
            </Credentials></AssumeRoleWithWebIdentityResult></AssumeRoleWithWebIdentityResponse>";
        let keys = parse_answer(answer).unwrap();
        assert_eq!(keys.value.access_key_id(), "ASIAEXAMPLE");
        assert_eq!(keys.value.secret_access_key(), "sk");
        assert_eq!(keys.value.session_token(), Some("tok"));
        assert_eq!(keys.expires, parse_time("2026-12-03T01:02:03Z"));
        assert_eq!(parse_answer("<x/>").unwrap_err(), "without <Expiration>");
    }
}
