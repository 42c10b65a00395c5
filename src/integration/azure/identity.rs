//! Microsoft Entra ID bearer tokens for Azure Blob requests
//! ([Authorize with Microsoft Entra ID](https://learn.microsoft.com/rest/api/storageservices/authorize-with-azure-active-directory)):
//! a service principal with a client secret (`ClientSecretCredential`),
//! workload identity (a federated token file, as on AKS), or a managed
//! identity (the App Service / container endpoint named by
//! `IDENTITY_ENDPOINT` + `IDENTITY_HEADER`), all from `azure_identity` over
//! the project's own transport ([`super::transport`]); or a managed identity
//! on a VM, from IMDS ([`super::imds`], whose address
//! `AZURE_POD_IDENTITY_AUTHORITY_HOST` may override, as in the other SDKs).
//!
//! Tokens are for the scope `https://storage.azure.com/.default` and are
//! kept in a [`TokenCache`] (refreshed ahead of expiry, one refresh at a
//! time, a failed refresh retried with backoff while the token in hand still
//! serves). `azure_identity` keeps its own cache under it, which never holds
//! a token back past our refresh point (it refreshes 5 minutes before
//! expiry; ours at that point or earlier), and its own retries are off.

use std::path::{Path, PathBuf};
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use azure_core::cloud::{CloudConfiguration, CustomConfiguration};
use azure_core::credentials::{AccessToken, Secret as AzSecret, TokenCredential};
use azure_core::error::ErrorKind as AzErrorKind;
use azure_core::http::{ClientMethodOptions, ClientOptions, RetryOptions};
use azure_identity::{
    ClientAssertion, ClientAssertionCredential, ClientAssertionCredentialOptions, ClientSecretCredential,
    ClientSecretCredentialOptions, ManagedIdentityCredential, ManagedIdentityCredentialOptions, UserAssignedId,
};

use super::config::AzureCredential;
use super::imds::Imds;
use super::secret_file::{Held, Parse, WatchedSecret};
use super::transport::HyperTransport;
use crate::error::{Error, Kind, Result};
use crate::integration::secret_file::SecretValue;
use crate::integration::token::{Expiring, Fetch, TokenCache};
use crate::integration::upstream::UpstreamConfig;
use crate::secret::Secret;

/// The OAuth scope of Azure Storage.
pub const STORAGE_SCOPE: &str = "https://storage.azure.com/.default";

/// An integration's source of bearer tokens.
pub struct Identity {
    source: &'static str,
    /// `Bearer <token>`.
    tokens: TokenCache<Secret>,
}

/// What a token fetch needs.
struct Fetcher {
    integration: Arc<str>,
    source: &'static str,
    /// Rebuilt when a `client_secret_file` changes.
    credential: Held<Arc<dyn TokenCredential>>,
}

impl std::fmt::Debug for Identity {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Identity").field("source", &self.source).finish_non_exhaustive()
    }
}

impl Identity {
    /// The identity of integration `name`, or `None` for a key or SAS.
    /// Errors name the integration, never a secret.
    pub fn new(
        name: &str,
        credential: &AzureCredential,
        upstream: &UpstreamConfig,
        ca_file: Option<&Path>,
    ) -> Result<Option<Identity>, String> {
        let transport = HyperTransport::new(upstream, ca_file, name)?;
        let options = |authority_host: Option<&str>| {
            // Retries and backoff are the token cache's.
            let mut o = ClientOptions {
                transport: Some(transport.clone().into_transport()),
                retry: RetryOptions::none(),
                ..Default::default()
            };
            if let Some(host) = authority_host {
                let mut custom = CustomConfiguration::default();
                custom.authority_host = host.to_owned();
                o.cloud = Some(Arc::new(CloudConfiguration::Custom(custom)));
            }
            o
        };
        let err = |e: azure_core::Error| format!("integration \"{name}\": {}", first_line(&e.to_string()));
        let (source, credential): (&'static str, Held<Arc<dyn TokenCredential>>) = match credential {
            AzureCredential::AccountKey(_)
            | AzureCredential::AccountKeyFile(_)
            | AzureCredential::Sas(_)
            | AzureCredential::SasFile(_) => return Ok(None),
            AzureCredential::ServicePrincipal { tenant_id, client_id, client_secret, authority_host } => {
                let (tenant, client) = (tenant_id.clone(), client_id.clone());
                let client_options = options(authority_host.as_deref());
                let build = move |secret: AzSecret| -> azure_core::Result<Arc<dyn TokenCredential>> {
                    let options = ClientSecretCredentialOptions { client_options: client_options.clone() };
                    Ok(ClientSecretCredential::new(&tenant, client.clone(), secret, Some(options))?)
                };
                let cred = match client_secret {
                    SecretValue::Inline(s) => {
                        Held::Fixed(Arc::new(build(AzSecret::new(s.expose().to_owned())).map_err(err)?))
                    }
                    SecretValue::File(path) => {
                        let parse: Parse<Arc<dyn TokenCredential>> = Box::new(move |text: &str| {
                            build(AzSecret::new(text.to_owned())).map_err(|e| first_line(&e.to_string()))
                        });
                        Held::File(WatchedSecret::new(name, "client_secret_file", path, parse)?)
                    }
                };
                ("service-principal", cred)
            }
            AzureCredential::WorkloadIdentity { tenant_id, client_id, token_file, authority_host } => {
                let options = ClientAssertionCredentialOptions { client_options: options(authority_host.as_deref()) };
                let assertion = TokenFile(token_file.clone());
                let cred: Arc<dyn TokenCredential> =
                    ClientAssertionCredential::new(tenant_id.clone(), client_id.clone(), assertion, Some(options))
                        .map_err(err)?;
                ("workload-identity", Held::Fixed(Arc::new(cred)))
            }
            AzureCredential::ManagedIdentity { client_id } => {
                let var = |name: &str| std::env::var(name).ok().filter(|v| !v.is_empty());
                // azure_identity's own choice of endpoint, less its fixed IMDS address.
                let other_endpoint = (var("IDENTITY_ENDPOINT").is_some()
                    && (var("IDENTITY_HEADER").is_some() || var("IMDS_ENDPOINT").is_some()))
                    || var("MSI_ENDPOINT").is_some();
                let cred: Arc<dyn TokenCredential> = if other_endpoint {
                    // App Service, Functions, Container Apps (and what azure_identity
                    // refuses by name: Azure Arc, Service Fabric, Cloud Shell, Azure ML).
                    let options = ManagedIdentityCredentialOptions {
                        user_assigned_id: client_id.clone().map(UserAssignedId::ClientId),
                        client_options: options(None),
                    };
                    ManagedIdentityCredential::new(Some(options)).map_err(err)?
                } else {
                    let base = Imds::base_from_env(var);
                    let imds = Imds::new(&base, client_id.clone(), transport.clone())
                        .map_err(|e| format!("integration \"{name}\": {e}"))?;
                    Arc::new(imds)
                };
                ("managed-identity", Held::Fixed(Arc::new(cred)))
            }
        };
        let fetcher = Arc::new(Fetcher { integration: Arc::from(name), source, credential });
        let fetch: Fetch<Secret> = Arc::new(move || {
            let fetcher = fetcher.clone();
            Box::pin(async move { fetcher.fetch().await })
        });
        Ok(Some(Identity { source, tokens: TokenCache::new(fetch) }))
    }

    /// `service-principal`, `workload-identity` or `managed-identity`.
    /// Tells `observer` the outcome of each token fetch.
    pub fn observe(&self, observer: crate::integration::token::Observer) {
        self.tokens.observe(observer);
    }

    pub fn source(&self) -> &'static str {
        self.source
    }

    /// When the token in hand expires (`None` before the first).
    pub fn expires(&self) -> Option<SystemTime> {
        self.tokens.expires()
    }

    /// The `Authorization` value, `Bearer <token>`: the token in hand, or a
    /// new one. A refusal by the identity endpoint is `upstream_denied`, an
    /// endpoint that cannot be reached `upstream_error`; both name the
    /// integration and the source.
    pub async fn authorization(&self) -> Result<Secret> {
        self.tokens.get().await
    }
}

impl Fetcher {
    async fn fetch(&self) -> Result<Expiring<Secret>> {
        let cred = self.credential.get();
        let token: AccessToken = cred.get_token(&[STORAGE_SCOPE], None).await.map_err(|e| self.error(e))?;
        let expires = SystemTime::UNIX_EPOCH + Duration::from_secs(token.expires_on.unix_timestamp().max(0) as u64);
        let value = Secret::new(format!("Bearer {}", token.token.secret()));
        Ok(Expiring { value, expires: Some(expires) })
    }

    fn error(&self, e: azure_core::Error) -> Error {
        let what = match self.source {
            "service-principal" => "service principal",
            "workload-identity" => "workload identity",
            _ => "managed identity",
        };
        let text = e.to_string();
        let detail = first_line(text.split_once("authentication failed.").map_or(&text, |(_, rest)| rest));
        let integration = &self.integration;
        match refused_status(&e) {
            Some(status) if status < 500 => Error::new(
                Kind::UpstreamDenied,
                format!("integration \"{integration}\": the identity endpoint refused the {what}: {detail}"),
            ),
            _ => Error::new(
                Kind::UpstreamError,
                format!("integration \"{integration}\": no token for the {what}: {detail}"),
            ),
        }
    }
}

/// The HTTP status of the identity endpoint's refusal, wherever it sits in
/// the error chain (`azure_identity` wraps it in a credential error).
fn refused_status(e: &azure_core::Error) -> Option<u16> {
    let mut cur: Option<&(dyn std::error::Error + 'static)> = Some(e);
    while let Some(err) = cur {
        if let Some(AzErrorKind::HttpResponse { status, .. }) =
            err.downcast_ref::<azure_core::Error>().map(|a| a.kind())
        {
            return Some(u16::from(*status));
        }
        cur = err.source();
    }
    None
}

fn first_line(text: &str) -> String {
    text.trim().lines().next().unwrap_or_default().trim().to_owned()
}

/// The federated token file of workload identity, read again at each token
/// request (the kubelet rotates it).
#[derive(Debug)]
struct TokenFile(PathBuf);

#[async_trait::async_trait]
impl ClientAssertion for TokenFile {
    async fn secret(&self, _: Option<ClientMethodOptions<'_>>) -> azure_core::Result<String> {
        let text = tokio::fs::read_to_string(&self.0).await.map_err(|e| {
            azure_core::Error::with_message(
                AzErrorKind::Credential,
                format!("federated token file {} unreadable: {e}", self.0.display()),
            )
        })?;
        Ok(text.trim().to_owned())
    }
}
