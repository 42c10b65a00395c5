//! The keys of `type = "azure-blob"` (CONTRACT.md section 2): their one
//! definition ([`KEYS`]), how they are read ([`read`]), and the parsed
//! `storage_url`.

use std::path::PathBuf;

use crate::integration::scope::{Read, Scope};
use crate::integration::secret_file::{SecretValue, read_secret_text};
use crate::locator::Scheme;
use crate::schema::InSource::{May, Needs};
use crate::schema::values::{as_existing_file, as_nonempty, as_secret, is_host_name, split_port};
use crate::schema::{Ctx, KeyDef, Scalar, Section, SourceDef, ValueKind};
use crate::secret::Secret;

/// Every key of an azure-blob integration besides `name`, `type` and `cache_control`.
pub const KEYS: &[KeyDef] = &[
    KeyDef::string(
        "storage_url",
        "The container URL (https://<account>.blob.core.windows.net/<container>), also the scope",
    )
    .required(),
    KeyDef::string("account_key", "The storage account key, in base64; or give account_key_file instead")
        .secret()
        .sources(&[Needs("account-key")]),
    KeyDef::string("account_key_file", "A file holding the account key (read less a trailing newline)")
        .sources(&[May("account-key")]),
    KeyDef::string(
        "sas_token",
        "A SAS with read (r) and list (l) permissions: its query string, sv=...&sig=...; or give sas_token_file instead",
    )
    .secret()
    .sources(&[Needs("sas")]),
    KeyDef::string("sas_token_file", "A file holding the SAS query string (read less a trailing newline)")
        .sources(&[May("sas")]),
    KeyDef::string(
        "tenant_id",
        "Service principal or workload identity: the Entra ID tenant (default: AZURE_TENANT_ID)",
    )
    .sources(&[Needs("service-principal"), May("workload-identity")]),
    KeyDef::string(
        "client_id",
        "Service principal or workload identity: the application (client) ID (default: AZURE_CLIENT_ID); \
         managed identity: the client ID of a user-assigned identity",
    )
    .sources(&[Needs("service-principal"), May("workload-identity"), May("managed-identity")]),
    KeyDef::string("client_secret", "Service principal: the client secret; or give client_secret_file instead")
        .secret()
        .sources(&[Needs("service-principal")]),
    KeyDef::string(
        "client_secret_file",
        "Service principal: a file holding the client secret, re-read when it changes",
    )
    .sources(&[May("service-principal")]),
    KeyDef::string(
        "authority_host",
        "The Entra ID authority (default: AZURE_AUTHORITY_HOST, else https://login.microsoftonline.com)",
    )
    .sources(&[May("service-principal"), May("workload-identity")]),
    KeyDef::string(
        "credential",
        "workload-identity (AZURE_FEDERATED_TOKEN_FILE, as on AKS) or managed-identity (IMDS, App Service, containers)",
    )
    .kind(ValueKind::Enum(&["workload-identity", "managed-identity"])),
    KeyDef::string("ca_file", "PEM file of extra trusted roots, for a storage behind a private CA"),
];

/// The credential sources of an azure-blob integration (the
/// `credential_source` names); one must be given, the first is what a
/// form offers first.
pub const SOURCES: &[SourceDef] = &[
    SourceDef {
        name: "account-key",
        label: "Account key",
        help: "The storage account's shared key (base64), inline or in a file; mediagate signs each request",
        selector: None,
    },
    SourceDef {
        name: "sas",
        label: "SAS token",
        help: "A shared access signature with read (r) and list (l) permissions, inline or in a file",
        selector: None,
    },
    SourceDef {
        name: "service-principal",
        label: "Service principal",
        help: "An Entra ID application with a client secret, granted Storage Blob Data Reader on the container",
        selector: None,
    },
    SourceDef {
        name: "workload-identity",
        label: "Workload identity (AKS)",
        help: "A federated token from AZURE_FEDERATED_TOKEN_FILE, as an AKS pod with workload identity has; \
               tenant and client ID default to AZURE_TENANT_ID and AZURE_CLIENT_ID",
        selector: Some(("credential", "workload-identity")),
    },
    SourceDef {
        name: "managed-identity",
        label: "Managed identity",
        help: "The identity of the VM (IMDS; AZURE_POD_IDENTITY_AUTHORITY_HOST overrides its address), or of \
               App Service or a container (IDENTITY_ENDPOINT); a client ID picks a user-assigned identity",
        selector: Some(("credential", "managed-identity")),
    },
];

/// `type = "azure-blob"`.
#[derive(Debug, Clone)]
pub struct AzureConfig {
    /// `storage_url`, parsed.
    pub storage_url: AzureStorageUrl,
    pub credential: AzureCredential,
    /// `ca_file`: a PEM bundle of extra trusted roots.
    pub ca_file: Option<PathBuf>,
}

/// A parsed Azure `storage_url`: the container URL, which is also the scope.
///
/// With a cloud host (`https://acct.blob.core.windows.net/media`) the account
/// is the host's first label; with an IP, `localhost` or a single-label host
/// such as `azurite` in docker compose (the Azurite emulator,
/// `http://127.0.0.1:10000/devstoreaccount1/media`) it is the first path
/// segment, and `path_style` is true.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AzureStorageUrl {
    /// `http` or `https`.
    pub scheme: String,
    /// The host as written (no port).
    pub host: String,
    pub port: Option<u16>,
    pub account: String,
    /// The container; `None` when the URL names the account only (the
    /// integration then serves every container of that account).
    pub container: Option<String>,
    /// True when the account is the first path segment (emulator form).
    pub path_style: bool,
}

impl AzureStorageUrl {
    /// The account and container it serves (no container: the whole account).
    pub fn scope(&self) -> Scope {
        Scope { scheme: Scheme::Az, account: Some(self.account.clone()), bucket: self.container.clone() }
    }
}

/// How an Azure integration authenticates.
#[derive(Clone, Debug)]
pub enum AzureCredential {
    /// `account_key`: base64 key; mediagate signs with SharedKey.
    AccountKey(Secret),
    /// `account_key_file`: a file holding the key, read again when it changes.
    AccountKeyFile(PathBuf),
    /// `sas_token`: the query string of a SAS (a leading `?` is dropped).
    Sas(Secret),
    /// `sas_token_file`: a file holding the SAS, read again when it changes.
    SasFile(PathBuf),
    /// `client_secret` or `client_secret_file`: an Entra ID service principal.
    ServicePrincipal {
        tenant_id: String,
        client_id: String,
        client_secret: SecretValue,
        authority_host: Option<String>,
    },
    /// `credential = "workload-identity"`: a federated token file.
    WorkloadIdentity { tenant_id: String, client_id: String, token_file: PathBuf, authority_host: Option<String> },
    /// `credential = "managed-identity"`, system-assigned or, with `client_id`, user-assigned.
    ManagedIdentity { client_id: Option<String> },
}

impl AzureCredential {
    /// Its source in [`SOURCES`].
    pub fn source_name(&self) -> &'static str {
        match self {
            AzureCredential::AccountKey(_) | AzureCredential::AccountKeyFile(_) => "account-key",
            AzureCredential::Sas(_) | AzureCredential::SasFile(_) => "sas",
            AzureCredential::ServicePrincipal { .. } => "service-principal",
            AzureCredential::WorkloadIdentity { .. } => "workload-identity",
            AzureCredential::ManagedIdentity { .. } => "managed-identity",
        }
    }
}

/// The keys of `type = "azure-blob"`: one credential, of `account_key`,
/// `sas_token`, a service principal (`client_secret`) or `credential`.
pub fn read(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Read<AzureConfig> {
    let storage_url = t.required(cx, "storage_url", as_azure_storage_url);
    let account_key = t.get(cx, "account_key", as_account_key);
    let account_key_file = t.get(cx, "account_key_file", |v| as_secret_file(v, as_account_key_text));
    let sas_token = t.get(cx, "sas_token", as_sas_token);
    let sas_token_file = t.get(cx, "sas_token_file", |v| as_secret_file(v, as_sas_text));
    let tenant_id = t.get(cx, "tenant_id", as_nonempty);
    let client_id = t.get(cx, "client_id", as_nonempty);
    let client_secret = t.get(cx, "client_secret", as_secret);
    let client_secret_file = t.get(cx, "client_secret_file", as_existing_file);
    let authority_host = t.get(cx, "authority_host", as_authority_host);
    let kind = t.get(cx, "credential", as_credential_kind);
    let ca_file = t.get(cx, "ca_file", as_existing_file);
    let given: Vec<&str> = ["account_key", "account_key_file", "sas_token", "sas_token_file", "client_secret"]
        .into_iter()
        .chain(["client_secret_file", "credential"])
        .filter(|k| t.has(k))
        .collect();
    let env_fn = cx.env;
    let env = |name: &str| env_fn(name).filter(|v| !v.is_empty());
    let credential = match given.as_slice() {
        [] => {
            let msg = "missing credentials: give account_key, sas_token, a service principal (tenant_id, client_id, \
                       client_secret) or credential = \"workload-identity\" | \"managed-identity\"";
            cx.missing(Some(t.span.clone()), &t.path, "account_key", msg);
            None
        }
        [_, second, ..] => {
            t.report_key(cx, second, format!("give one credential, not both {} and {second}", given[0]));
            None
        }
        ["account_key"] => account_key.map(AzureCredential::AccountKey),
        ["account_key_file"] => account_key_file.map(AzureCredential::AccountKeyFile),
        ["sas_token"] => sas_token.map(AzureCredential::Sas),
        ["sas_token_file"] => sas_token_file.map(AzureCredential::SasFile),
        [secret @ ("client_secret" | "client_secret_file")] => {
            let tenant = tenant_id.clone().or_else(|| env("AZURE_TENANT_ID"));
            let client = client_id.clone().or_else(|| env("AZURE_CLIENT_ID"));
            let client_secret = match *secret {
                "client_secret" => client_secret.map(SecretValue::Inline),
                _ => client_secret_file.map(SecretValue::File),
            };
            for (key, value) in [("tenant_id", &tenant), ("client_id", &client)] {
                if value.is_none() && !t.has(key) {
                    let var = if key == "tenant_id" { "AZURE_TENANT_ID" } else { "AZURE_CLIENT_ID" };
                    cx.missing(
                        Some(t.span.clone()),
                        &t.path,
                        key,
                        format!("a service principal needs {key} (or {var})"),
                    );
                }
            }
            match (tenant, client, client_secret) {
                (Some(tenant_id), Some(client_id), Some(client_secret)) => Some(AzureCredential::ServicePrincipal {
                    tenant_id,
                    client_id,
                    client_secret,
                    authority_host: authority_host.clone(),
                }),
                _ => None,
            }
        }
        _ => match kind {
            Some(CredentialKind::Workload) => {
                let tenant = tenant_id.clone().or_else(|| env("AZURE_TENANT_ID"));
                let client = client_id.clone().or_else(|| env("AZURE_CLIENT_ID"));
                let file = env("AZURE_FEDERATED_TOKEN_FILE").map(PathBuf::from);
                let mut missing = Vec::new();
                for (var, ok) in [
                    ("AZURE_TENANT_ID (or tenant_id)", tenant.is_some()),
                    ("AZURE_CLIENT_ID (or client_id)", client.is_some()),
                    ("AZURE_FEDERATED_TOKEN_FILE", file.is_some()),
                ] {
                    if !ok {
                        missing.push(var);
                    }
                }
                if !missing.is_empty() {
                    let msg =
                        format!("workload identity needs {} in the environment (AKS sets them)", missing.join(", "));
                    t.report_key(cx, "credential", msg);
                }
                match (tenant, client, file) {
                    (Some(tenant_id), Some(client_id), Some(token_file)) => Some(AzureCredential::WorkloadIdentity {
                        tenant_id,
                        client_id,
                        token_file,
                        authority_host: authority_host.clone().or_else(|| env("AZURE_AUTHORITY_HOST")),
                    }),
                    _ => None,
                }
            }
            Some(CredentialKind::Managed) => {
                for key in ["tenant_id", "authority_host"] {
                    if t.has(key) {
                        let msg =
                            format!("a managed identity takes no {key} (only client_id, for a user-assigned one)");
                        t.report_key(cx, key, msg);
                    }
                }
                Some(AzureCredential::ManagedIdentity { client_id: client_id.clone() })
            }
            None => None,
        },
    };
    if matches!(given.as_slice(), ["account_key" | "account_key_file" | "sas_token" | "sas_token_file"]) {
        for key in ["tenant_id", "client_id", "authority_host"] {
            if t.has(key) {
                t.report_key(cx, key, format!("is for an Entra ID identity, not with {}", given[0]));
            }
        }
    }
    let scopes = storage_url.iter().map(AzureStorageUrl::scope).collect();
    let config = match (storage_url, credential) {
        (Some(storage_url), Some(credential)) => Some(AzureConfig { storage_url, credential, ca_file }),
        _ => None,
    };
    Read { config, scopes }
}

/// `credential`.
#[derive(Clone, Copy, Debug)]
enum CredentialKind {
    Workload,
    Managed,
}

fn as_credential_kind(v: Scalar) -> Result<CredentialKind, String> {
    match as_nonempty(v)?.as_str() {
        "workload-identity" => Ok(CredentialKind::Workload),
        "managed-identity" => Ok(CredentialKind::Managed),
        other => Err(format!("{other:?} is not a credential: expected \"workload-identity\" or \"managed-identity\"")),
    }
}

fn as_authority_host(v: Scalar) -> Result<String, String> {
    let host = as_nonempty(v)?;
    if !host.starts_with("https://") || host.parse::<http::Uri>().is_err() {
        return Err(format!("{host:?} is not an https:// URL, like \"https://login.microsoftonline.com\""));
    }
    Ok(host)
}

/// A `*_file` secret key: a file whose content (less a trailing newline,
/// [`read_secret_text`]) passes `check` now; the backend reads it again
/// when it changes.
fn as_secret_file(v: Scalar, check: fn(&str) -> Result<Secret, String>) -> Result<PathBuf, String> {
    let path = as_existing_file(v)?;
    check(&read_secret_text(&path)?)?;
    Ok(path)
}

/// An account key as a file holds it.
pub fn as_account_key_text(key: &str) -> Result<Secret, String> {
    as_account_key(Scalar::Str(key.to_owned()))
}

/// A SAS as a file holds it.
pub fn as_sas_text(token: &str) -> Result<Secret, String> {
    as_sas_token(Scalar::Str(token.to_owned()))
}

fn as_account_key(v: Scalar) -> Result<Secret, String> {
    use base64::Engine as _;
    let key = as_secret(v)?;
    match base64::engine::general_purpose::STANDARD.decode(key.expose().trim()) {
        Ok(bytes) if !bytes.is_empty() => Ok(Secret::new(key.expose().trim())),
        _ => Err("is not valid base64 (copy the key as the Azure portal shows it)".to_string()),
    }
}

fn as_sas_token(v: Scalar) -> Result<Secret, String> {
    let token = as_secret(v)?;
    let token = token.expose().trim().trim_start_matches('?');
    if token.is_empty() {
        return Err("is empty".to_string());
    }
    if !token.split('&').any(|pair| pair.starts_with("sig=")) {
        return Err("has no sig= parameter: expected the query string of a SAS, like \"sv=...&sig=...\"".to_string());
    }
    Ok(Secret::new(token))
}

fn as_azure_storage_url(v: Scalar) -> Result<AzureStorageUrl, String> {
    parse_azure_storage_url(&as_nonempty(v)?)
}

/// Parses an Azure `storage_url` (see [`AzureStorageUrl`]).
pub fn parse_azure_storage_url(url: &str) -> Result<AzureStorageUrl, String> {
    let (scheme, host, port, path) = split_azure_url(url)?;
    let path_style = is_emulator_host(host);
    let mut segments: Vec<&str> = path.split('/').filter(|s| !s.is_empty()).collect();
    let account = match path_style {
        false => host.split('.').next().unwrap_or_default(),
        true if segments.is_empty() => {
            return Err(format!(
                "with host {host:?} the account is the first path segment, as in \
                 \"http://127.0.0.1:10000/devstoreaccount1/media\"; it is missing"
            ));
        }
        true => segments.remove(0),
    };
    check_azure_account(account)?;
    let container = match segments.as_slice() {
        [] => None,
        [container] => Some(check_azure_container(container)?),
        [container, ..] => {
            return Err(format!("names a blob or folder, not a container: stop the URL at /{container}"));
        }
    };
    let (scheme, host, account) = (scheme.to_string(), host.to_string(), account.to_string());
    Ok(AzureStorageUrl { scheme, host, port, account, container, path_style })
}

/// Splits `http[s]://host[:port]/path`, refusing a query, a fragment or user info.
fn split_azure_url(url: &str) -> Result<(&str, &str, Option<u16>, &str), String> {
    let bad = || {
        format!(
            "expected a container URL such as \"https://acct.blob.core.windows.net/media\" \
             or \"http://127.0.0.1:10000/devstoreaccount1/media\", got {url:?}"
        )
    };
    let (scheme, rest) = url.split_once("://").filter(|(s, _)| *s == "http" || *s == "https").ok_or_else(bad)?;
    if rest.contains('?') {
        return Err("must not carry a query string: put the SAS (sv=...&sig=...) in `sas_token`".to_string());
    }
    if rest.contains('#') || rest.contains('@') {
        return Err(bad());
    }
    let (authority, path) = rest.split_once('/').unwrap_or((rest, ""));
    let (host, port) = split_port(authority);
    let port = port.map(|p| p.parse::<u16>().map_err(|_| format!("port {p} is out of range"))).transpose()?;
    let ipv6 = host
        .strip_prefix('[')
        .and_then(|h| h.strip_suffix(']'))
        .is_some_and(|h| h.parse::<std::net::Ipv6Addr>().is_ok());
    if !(is_host_name(host) || ipv6) {
        return Err(bad());
    }
    Ok((scheme, host, port, path))
}

/// An IP address, `localhost`, or a single-label host such as `azurite` in
/// docker compose: the account is then in the path.
fn is_emulator_host(host: &str) -> bool {
    host == "localhost" || host.starts_with('[') || host.parse::<std::net::Ipv4Addr>().is_ok() || !host.contains('.')
}

fn check_azure_account(account: &str) -> Result<(), String> {
    crate::locator::check_account_name(account)
        .map_err(|why| format!("{account:?} is not a storage account name ({why})"))
}

fn check_azure_container(container: &str) -> Result<String, String> {
    let special = container == "$root" || container == "$web";
    let chars_ok = container.bytes().all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'-');
    let ok = (3..=63).contains(&container.len()) && chars_ok && !container.starts_with('-');
    if ok || special {
        Ok(container.to_string())
    } else {
        Err(format!("{container:?} is not a container name (3 to 63 lower-case letters, digits and '-')"))
    }
}
