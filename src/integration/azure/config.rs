//! The keys of `type = "azure-blob"` (CONTRACT.md section 2): their one
//! definition ([`KEYS`]), how they are read ([`read`]), and the parsed
//! `storage_url`.

use std::path::PathBuf;

use crate::integration::scope::{Read, Scope};
use crate::locator::Scheme;
use crate::schema::values::{as_existing_file, as_nonempty, as_secret, is_host_name, split_port};
use crate::schema::{Ctx, KeyDef, Scalar, Section};
use crate::secret::Secret;

/// Every key of an azure-blob integration besides `name`, `type` and `cache_control`.
pub const KEYS: &[KeyDef] = &[
    KeyDef::string(
        "storage_url",
        "The container URL (https://<account>.blob.core.windows.net/<container>), also the scope",
    )
    .required(),
    KeyDef::string("account_key", "The storage account key (base64); or give sas_token").secret().required(),
    KeyDef::string("sas_token", "A SAS with read (r) and list (l) permissions: its query string, sv=...&sig=...")
        .secret(),
    KeyDef::string("ca_file", "PEM file of extra trusted roots, for a storage behind a private CA"),
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
    /// `sas_token`: the query string of a SAS (a leading `?` is dropped).
    Sas(Secret),
}

/// The keys of `type = "azure-blob"`: exactly one of `account_key` / `sas_token`.
pub fn read(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Read<AzureConfig> {
    let storage_url = t.required(cx, "storage_url", as_azure_storage_url);
    let account_key = t.get(cx, "account_key", as_account_key);
    let sas_token = t.get(cx, "sas_token", as_sas_token);
    let ca_file = t.get(cx, "ca_file", as_existing_file);
    let later = "is not supported yet: use account_key or sas_token";
    let principal = format!("service principal credentials (tenant_id + client_id + client_secret) {later}");
    t.unsupported(cx, &["tenant_id", "client_id", "client_secret", "authority_host"], &principal);
    t.unsupported(cx, &["credential"], &format!("credential (workload or managed identity) {later}"));
    let credential = match (t.has("account_key"), t.has("sas_token")) {
        (true, true) => {
            t.report_key(cx, "sas_token", "give account_key or sas_token, not both");
            None
        }
        (true, false) => account_key.map(AzureCredential::AccountKey),
        (false, true) => sas_token.map(AzureCredential::Sas),
        (false, false) => {
            let msg = "missing credentials: give account_key or sas_token";
            cx.missing(Some(t.span.clone()), &t.path, "account_key", msg);
            None
        }
    };
    let scopes = storage_url.iter().map(AzureStorageUrl::scope).collect();
    let config = match (storage_url, credential) {
        (Some(storage_url), Some(credential)) => Some(AzureConfig { storage_url, credential, ca_file }),
        _ => None,
    };
    Read { config, scopes }
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
