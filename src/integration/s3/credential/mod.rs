//! Where an S3 integration's keys come from, one provider per source
//! (CONTRACT.md section 2):
//! - static keys from the config, each secret inline or in a file re-read
//!   when it changes ([`crate::integration::secret_file`]);
//! - `credentials = "env"`: the AWS SDKs' environment variables, read when
//!   the integration is built (`AWS_ACCESS_KEY_ID`...; without it, web
//!   identity from `AWS_ROLE_ARN` + `AWS_WEB_IDENTITY_TOKEN_FILE`);
//! - web identity ([`web_identity`]): STS `AssumeRoleWithWebIdentity`;
//! - `credentials = "instance"` ([`instance`]): the ECS/EKS container
//!   endpoint when its variables are set, else EC2 IMDSv2.
//!
//! Temporary keys go through [`TokenCache`]: refreshed ahead of expiry, one
//! fetch at a time. Identity endpoints are reached through an
//! [`UpstreamClient`] of their own, which trusts the integration's
//! `ca_file`, `SSL_CERT_FILE` and the built-in roots like the storage's.

pub mod instance;
pub mod web_identity;

use std::path::PathBuf;
use std::sync::Arc;
use std::time::SystemTime;

use aws_credential_types::Credentials;
use http_body_util::{BodyExt, Limited};
use hyper::body::Incoming;

use super::config::S3Credentials;
use crate::error::{Error, Kind, Result};
use crate::integration::secret_file::SecretSource;
use crate::integration::token::TokenCache;
use crate::integration::upstream::UpstreamClient;
use crate::secret::Secret;

/// The name of a source, as `mediagate check` and the admin API show it.
pub type SourceName = &'static str;

/// An S3 integration's keys, as the requests sign with them.
pub struct S3Keys {
    source: SourceName,
    provider: Provider,
}

enum Provider {
    Static(Box<StaticKeys>),
    Temporary(TokenCache<Credentials>),
}

struct StaticKeys {
    access_key_id: String,
    secret: SecretSource,
    token: Option<SecretSource>,
}

/// What a temporary source needs to reach its endpoint and word its errors.
#[derive(Clone)]
pub struct Ctx {
    pub integration: Arc<str>,
    pub client: Arc<UpstreamClient>,
    pub region: String,
}

impl Ctx {
    /// An error of source `source` of this integration: its origin first.
    pub fn error(&self, kind: Kind, source: &str, what: impl std::fmt::Display) -> Error {
        Error::new(kind, format!("integration \"{}\" ({source} credentials): {what}", self.integration))
    }
}

impl S3Keys {
    /// The provider of `cfg`; fails when the environment it needs is
    /// missing or a secret file is unreadable.
    pub fn new(cfg: &S3Credentials, cx: Ctx) -> Result<S3Keys, String> {
        let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
        match cfg {
            S3Credentials::Static { access_key_id, secret_access_key, session_token } => Ok(S3Keys {
                source: "static",
                provider: Provider::Static(Box::new(StaticKeys {
                    access_key_id: access_key_id.clone(),
                    secret: SecretSource::new(secret_access_key)?,
                    token: session_token.as_ref().map(SecretSource::new).transpose()?,
                })),
            }),
            S3Credentials::Env => match (var("AWS_ACCESS_KEY_ID"), var("AWS_SECRET_ACCESS_KEY")) {
                (Some(ak), Some(sk)) => Ok(S3Keys {
                    source: "env",
                    provider: Provider::Static(Box::new(StaticKeys {
                        access_key_id: ak,
                        secret: SecretSource::Inline(Secret::new(sk)),
                        token: var("AWS_SESSION_TOKEN").map(|t| SecretSource::Inline(Secret::new(t))),
                    })),
                }),
                (None, _) if var("AWS_ROLE_ARN").is_some() && var("AWS_WEB_IDENTITY_TOKEN_FILE").is_some() => {
                    S3Keys::new(
                        &S3Credentials::WebIdentity { role_arn: None, token_file: None, sts_endpoint: None },
                        cx,
                    )
                }
                _ => Err("credentials = \"env\" but AWS_ACCESS_KEY_ID and AWS_SECRET_ACCESS_KEY are not both set \
                          (nor AWS_ROLE_ARN and AWS_WEB_IDENTITY_TOKEN_FILE)"
                    .into()),
            },
            S3Credentials::WebIdentity { role_arn, token_file, sts_endpoint } => {
                let role_arn = role_arn
                    .clone()
                    .or_else(|| var("AWS_ROLE_ARN"))
                    .ok_or("web identity needs role_arn (or AWS_ROLE_ARN in the environment)".to_string())?;
                let token_file = token_file.clone().or_else(|| var("AWS_WEB_IDENTITY_TOKEN_FILE").map(PathBuf::from));
                let token_file = token_file.ok_or(
                    "web identity needs web_identity_token_file (or AWS_WEB_IDENTITY_TOKEN_FILE in the environment)"
                        .to_string(),
                )?;
                let endpoint = sts_endpoint
                    .clone()
                    .or_else(|| var("AWS_ENDPOINT_URL_STS"))
                    .unwrap_or_else(|| format!("https://sts.{}.amazonaws.com", cx.region));
                // STS allows 2 to 64 characters of [\w+=,.@-]; an integration name is [a-z0-9-]+.
                let session_name = var("AWS_ROLE_SESSION_NAME").unwrap_or_else(|| {
                    let mut name = format!("mediagate-{}", cx.integration);
                    name.truncate(64);
                    name
                });
                let source = web_identity::WebIdentity { cx, role_arn, token_file, endpoint, session_name };
                Ok(S3Keys::temporary("web-identity", Arc::new(source), |s| Box::pin(async move { s.fetch().await })))
            }
            S3Credentials::Instance => {
                let source = Arc::new(instance::Instance::from_env(cx)?);
                Ok(S3Keys::temporary("instance", source, |s| Box::pin(async move { s.fetch().await })))
            }
        }
    }

    fn temporary<S: Send + Sync + 'static>(
        source: SourceName,
        state: Arc<S>,
        fetch: fn(Arc<S>) -> crate::integration::token::FetchFuture<Credentials>,
    ) -> S3Keys {
        let cache = TokenCache::new(Arc::new(move || fetch(state.clone())));
        S3Keys { source, provider: Provider::Temporary(cache) }
    }

    /// The keys to sign with now.
    ///
    /// Errors: `UpstreamDenied` when the identity endpoint refused (or its
    /// token file is unreadable), `UpstreamError` when it could not be
    /// reached, while no valid keys remain; `Internal` for an unreadable secret file.
    pub async fn current(&self) -> Result<Credentials> {
        match &self.provider {
            Provider::Static(keys) => {
                let StaticKeys { access_key_id, secret, token } = &**keys;
                let secret = secret.current().map_err(Error::internal)?;
                let token = token.as_ref().map(|t| t.current()).transpose().map_err(Error::internal)?;
                Ok(Credentials::new(
                    access_key_id.clone(),
                    secret.expose().to_owned(),
                    token.map(|t| t.expose().to_owned()),
                    None,
                    self.source,
                ))
            }
            Provider::Temporary(cache) => cache.get().await,
        }
    }

    /// The source in use (`static`, `env`, `web-identity`, `instance`) and,
    /// for temporary keys, when those held now expire.
    /// Tells `observer` the outcome of each refresh of temporary credentials.
    pub fn observe(&self, observer: crate::integration::token::Observer) {
        if let Provider::Temporary(cache) = &self.provider {
            cache.observe(observer);
        }
    }

    pub fn status(&self) -> (SourceName, Option<SystemTime>) {
        match &self.provider {
            Provider::Static(_) => (self.source, None),
            Provider::Temporary(cache) => (self.source, cache.expires()),
        }
    }

    /// The access key id to name in the connection test's sentences.
    pub fn access_key_id(&self) -> &str {
        match &self.provider {
            Provider::Static(keys) => &keys.access_key_id,
            Provider::Temporary(_) => "(temporary)",
        }
    }
}

/// Temporary keys and their expiry, from an identity endpoint's answer.
pub fn temporary_keys(
    access_key_id: String,
    secret: String,
    token: String,
    expires: Option<SystemTime>,
    source: SourceName,
) -> crate::integration::token::Expiring<Credentials> {
    crate::integration::token::Expiring {
        value: Credentials::new(access_key_id, secret, Some(token), expires, source),
        expires,
    }
}

/// At most 64 KiB of an identity endpoint's answer, as text.
pub async fn read_text(body: Incoming) -> Result<String, String> {
    let bytes = Limited::new(body, 64 << 10).collect().await.map_err(|e| format!("cannot read the answer: {e}"))?;
    String::from_utf8(bytes.to_bytes().to_vec()).map_err(|_| "the answer is not UTF-8".to_string())
}

/// An RFC 3339 time (`2026-12-03T01:02:03Z`), as STS and the metadata endpoints write expiries.
pub fn parse_time(s: &str) -> Option<SystemTime> {
    time::OffsetDateTime::parse(s.trim(), &time::format_description::well_known::Rfc3339).ok().map(SystemTime::from)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn expiries_are_read_as_rfc_3339() {
        let t = parse_time("2026-12-03T01:02:03Z").unwrap();
        assert_eq!(t.duration_since(SystemTime::UNIX_EPOCH).unwrap().as_secs(), 1_796_259_723);
        assert_eq!(parse_time("2026-12-03T02:02:03+01:00"), Some(t));
        assert_eq!(parse_time("yesterday"), None);
    }
}
