//! `credentials = "instance"`: the role of the container or machine
//! mediagate runs on, as the AWS SDKs find it:
//! - the [container credentials endpoint] (ECS task roles, EKS Pod Identity)
//!   when `AWS_CONTAINER_CREDENTIALS_FULL_URI` or `_RELATIVE_URI` is set,
//!   with `AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE` (read at each refresh) or
//!   `AWS_CONTAINER_AUTHORIZATION_TOKEN` as the `Authorization` header;
//! - else EC2's [IMDSv2]: a session token from `PUT /latest/api/token`, then
//!   the role name and its keys, at `AWS_EC2_METADATA_SERVICE_ENDPOINT`
//!   (default `http://169.254.169.254`).
//!
//! Which one is decided when the integration is built.
//!
//! [container credentials endpoint]: https://docs.aws.amazon.com/sdkref/latest/guide/feature-container-credentials.html
//! [IMDSv2]: https://docs.aws.amazon.com/AWSEC2/latest/UserGuide/instance-metadata-retrieval.html

use std::path::PathBuf;

use aws_credential_types::Credentials;
use bytes::Bytes;
use http::{Method, Request, StatusCode};
use http_body_util::Empty;
use hyper::body::Incoming;

use super::{Ctx, parse_time, read_text, temporary_keys};
use crate::error::{Error, Kind, Result};
use crate::integration::secret_file::read_secret_text;
use crate::integration::token::Expiring;

const SOURCE: &str = "instance";

/// The ECS container endpoint, for a `_RELATIVE_URI`.
pub const ECS_ENDPOINT: &str = "http://169.254.170.2";
/// EC2's instance metadata service.
pub const IMDS_ENDPOINT: &str = "http://169.254.169.254";
/// The session token's life asked of IMDSv2 (the SDKs' default, 6 hours).
const IMDS_TOKEN_TTL: &str = "21600";

pub enum Instance {
    Container { cx: Ctx, url: String, auth: Option<Auth> },
    Imds { cx: Ctx, endpoint: String },
}

/// The container endpoint's `Authorization` value.
pub enum Auth {
    Token(String),
    File(PathBuf),
}

impl Instance {
    /// The endpoint the environment names (see the module doc).
    pub fn from_env(cx: Ctx) -> Result<Instance, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        let url = match (var("AWS_CONTAINER_CREDENTIALS_RELATIVE_URI"), var("AWS_CONTAINER_CREDENTIALS_FULL_URI")) {
            (Some(relative), _) => Some(format!("{ECS_ENDPOINT}{relative}")),
            (None, Some(full)) => Some(check_full_uri(&full)?),
            (None, None) => None,
        };
        if let Some(url) = url {
            let auth = match (var("AWS_CONTAINER_AUTHORIZATION_TOKEN_FILE"), var("AWS_CONTAINER_AUTHORIZATION_TOKEN")) {
                (Some(file), _) => Some(Auth::File(PathBuf::from(file))),
                (None, Some(token)) => Some(Auth::Token(token)),
                (None, None) => None,
            };
            return Ok(Instance::Container { cx, url, auth });
        }
        let endpoint = var("AWS_EC2_METADATA_SERVICE_ENDPOINT").unwrap_or_else(|| IMDS_ENDPOINT.to_owned());
        Ok(Instance::Imds { cx, endpoint: endpoint.trim_end_matches('/').to_owned() })
    }

    /// Asks the endpoint for the role's keys now.
    ///
    /// Errors: `UpstreamDenied` for a refusal (4xx) or an unreadable
    /// authorization token file, `UpstreamError` otherwise.
    pub async fn fetch(&self) -> Result<Expiring<Credentials>> {
        match self {
            Instance::Container { cx, url, auth } => {
                let auth = match auth {
                    None => None,
                    Some(Auth::Token(t)) => Some(t.clone()),
                    Some(Auth::File(path)) => Some(read_secret_text(path).map_err(|e| {
                        cx.error(
                            Kind::UpstreamDenied,
                            SOURCE,
                            format!("container authorization token file unreadable: {e}"),
                        )
                    })?),
                };
                let headers: Vec<(&str, &str)> = auth.as_deref().map(|a| ("authorization", a)).into_iter().collect();
                let text = call(cx, Method::GET, url, &headers, "the container credentials endpoint").await?;
                parse_json(&text)
                    .map_err(|e| cx.error(Kind::UpstreamError, SOURCE, format!("the container endpoint answered {e}")))
            }
            Instance::Imds { cx, endpoint } => {
                let what = "the instance metadata service (IMDSv2)";
                let ttl = [("x-aws-ec2-metadata-token-ttl-seconds", IMDS_TOKEN_TTL)];
                let token = call(cx, Method::PUT, &format!("{endpoint}/latest/api/token"), &ttl, what).await?;
                let auth = [("x-aws-ec2-metadata-token", token.trim())];
                let base = format!("{endpoint}/latest/meta-data/iam/security-credentials/");
                let roles = call(cx, Method::GET, &base, &auth, what).await?;
                let Some(role) = roles.lines().map(str::trim).find(|l| !l.is_empty()) else {
                    return Err(cx.error(
                        Kind::UpstreamDenied,
                        SOURCE,
                        "this instance has no IAM role (instance profile)",
                    ));
                };
                let url = format!("{base}{}", crate::locator::encode_key(role));
                let text = call(cx, Method::GET, &url, &auth, what).await?;
                parse_json(&text).map_err(|e| cx.error(Kind::UpstreamError, SOURCE, format!("IMDS answered {e}")))
            }
        }
    }
}

/// `AWS_CONTAINER_CREDENTIALS_FULL_URI` must be HTTPS, or HTTP to a
/// loopback address or one of the ECS / EKS link-local addresses, as the SDKs require.
fn check_full_uri(full: &str) -> Result<String, String> {
    let uri: http::Uri = full.parse().map_err(|e| format!("AWS_CONTAINER_CREDENTIALS_FULL_URI {full:?}: {e}"))?;
    let host = uri.host().unwrap_or_default().trim_matches(['[', ']']);
    let allowed_http = host == "localhost"
        || ["169.254.170.2", "169.254.170.23", "fd00:ec2::23"].contains(&host)
        || host.parse::<std::net::IpAddr>().is_ok_and(|ip| ip.is_loopback());
    match uri.scheme_str() {
        Some("https") => Ok(full.to_owned()),
        Some("http") if allowed_http => Ok(full.to_owned()),
        _ => Err(format!(
            "AWS_CONTAINER_CREDENTIALS_FULL_URI {full:?} must be https, or http to a loopback or the ECS/EKS address"
        )),
    }
}

/// One request to a metadata endpoint; the body of its `200`.
async fn call(cx: &Ctx, method: Method, url: &str, headers: &[(&str, &str)], what: &str) -> Result<String> {
    let mut builder = Request::builder().method(method).uri(url);
    for (name, value) in headers {
        builder = builder.header(*name, *value);
    }
    let req = builder
        .body(Empty::<Bytes>::new())
        .map_err(|e| cx.error(Kind::UpstreamError, SOURCE, format!("cannot ask {what} at {url}: {e}")))?;
    let resp: http::Response<Incoming> = cx.client.try_send(req).await.map_err(|e| {
        let e: Error = e.into_error(&cx.integration);
        cx.error(Kind::UpstreamError, SOURCE, format!("{what} unreachable: {}", e.message))
    })?;
    let status = resp.status();
    let text = read_text(resp.into_body()).await.map_err(|e| cx.error(Kind::UpstreamError, SOURCE, e))?;
    if status != StatusCode::OK {
        let said: String = text.chars().take(200).collect();
        let kind = if status.is_client_error() { Kind::UpstreamDenied } else { Kind::UpstreamError };
        return Err(cx.error(kind, SOURCE, format!("{what} refused ({status}): {}", said.trim())));
    }
    Ok(text)
}

/// The keys of a container or IMDS answer: `AccessKeyId`, `SecretAccessKey`,
/// `Token`, `Expiration` (JSON).
fn parse_json(text: &str) -> Result<Expiring<Credentials>, String> {
    let v: serde_json::Value = serde_json::from_str(text).map_err(|_| "something that is not JSON".to_string())?;
    let field = |name: &str| v[name].as_str().map(str::to_owned).ok_or(format!("without {name}"));
    if let Some(code) = v["Code"].as_str().filter(|c| *c != "Success") {
        return Err(format!("Code {code:?}: {}", v["Message"].as_str().unwrap_or("")));
    }
    let expires = parse_time(&field("Expiration")?).ok_or("an unreadable Expiration")?;
    Ok(temporary_keys(field("AccessKeyId")?, field("SecretAccessKey")?, field("Token")?, Some(expires), SOURCE))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_keys_and_expiry_are_read_from_a_metadata_answer() {
        let text = r#"{"Code":"Success","AccessKeyId":"ASIA1","SecretAccessKey":"sk","Token":"tok","Expiration":"2026-12-03T01:02:03Z"}"#;
        let keys = parse_json(text).unwrap();
        assert_eq!((keys.value.access_key_id(), keys.value.session_token()), ("ASIA1", Some("tok")));
        assert_eq!(keys.expires, parse_time("2026-12-03T01:02:03Z"));
        assert!(parse_json(r#"{"Code":"Failed","Message":"no"}"#).unwrap_err().contains("Failed"));
        assert_eq!(parse_json("<x/>").unwrap_err(), "something that is not JSON");
    }

    #[test]
    fn a_full_uri_is_https_or_http_to_loopback_or_the_container_address() {
        for ok in [
            "https://creds.example/x",
            "http://127.0.0.1:9/x",
            "http://localhost/x",
            "http://169.254.170.23/v1",
            "http://[::1]:8/x",
        ] {
            assert!(check_full_uri(ok).is_ok(), "{ok}");
        }
        for bad in ["http://10.0.0.1/x", "http://creds.example/x", "ftp://127.0.0.1/"] {
            assert!(check_full_uri(bad).is_err(), "{bad}");
        }
    }
}
