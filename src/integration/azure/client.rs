//! The Azure Blob backend: builds, authorizes and sends [Get Blob],
//! [Get Blob Properties], [List Blobs] and [List Containers] requests.
//!
//! [Get Blob]: https://learn.microsoft.com/rest/api/storageservices/get-blob
//! [Get Blob Properties]: https://learn.microsoft.com/rest/api/storageservices/get-blob-properties
//! [List Blobs]: https://learn.microsoft.com/rest/api/storageservices/list-blobs
//! [List Containers]: https://learn.microsoft.com/rest/api/storageservices/list-containers2

use std::fmt;
use std::sync::Arc;
use std::time::SystemTime;

use bytes::Bytes;
use http::{HeaderMap, HeaderName, HeaderValue, Method, Request, StatusCode, Uri, header};
use http_body_util::Empty;
use hyper::body::Incoming;

use super::credential::SharedKeyCredential;
use super::identity::Identity;
use super::secret_file::{Held, Parse, WatchedSecret};
use crate::error::{Error, Kind, Result};
use crate::http::conditional::Conditions;
use crate::http::range::RangeSpec;
use crate::integration::azure::config::{AzureConfig, AzureCredential};
use crate::integration::probe::{self, AzureAuth, Context, Problem, Storage, Target};
use crate::integration::upstream::UpstreamClient;
use crate::integration::upstream::UpstreamConfig;
use crate::integration::{ObjectRequest, ObjectResponse, Part};
use crate::locator::{check_upstream_path, encode_key};
use crate::secret::Secret;

/// The `x-ms-version` sent with every request
/// (<https://learn.microsoft.com/rest/api/storageservices/versioning-for-the-azure-storage-services>).
///
/// 2021-08-06 is generally available on every public Azure region, signs
/// with the 2015-02-21+ SharedKey string, returns quoted ETags, and serves
/// `x-ms-range` of any size. Azurite must run with `--skipApiVersionCheck`
/// when its own newest version is older than this (it is not, as of 3.37).
pub const API_VERSION: &str = "2021-08-06";

const X_MS_VERSION: HeaderName = HeaderName::from_static("x-ms-version");
const X_MS_DATE: HeaderName = HeaderName::from_static("x-ms-date");
const X_MS_RANGE: HeaderName = HeaderName::from_static("x-ms-range");

/// How an integration authorizes its requests.
enum Auth {
    /// `account_key` or `account_key_file`: SharedKey signing.
    SharedKey(Held<SharedKeyCredential>),
    /// `sas_token` or `sas_token_file`: the SAS query string, appended to every URL as given.
    Sas(Held<Secret>),
    /// An Entra ID identity: `Authorization: Bearer <token>`.
    Bearer(Identity),
}

/// An Azure Blob integration's client.
///
/// Reads blobs of one storage account (the account of `storage_url`); the
/// registry only hands it locators of that account and, when `storage_url`
/// names a container, of that container.
pub struct AzureBackend {
    client: UpstreamClient,
    /// `http` or `https`.
    scheme: String,
    /// `host[:port]`, IPv6 literals bracketed.
    authority: String,
    account: String,
    /// The container of `storage_url`, if it names one.
    container: Option<String>,
    /// Emulator form: the account is the first path segment.
    path_style: bool,
    auth: Auth,
}

impl fmt::Debug for AzureBackend {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let auth = match &self.auth {
            Auth::SharedKey(_) => "account_key",
            Auth::Sas(_) => "sas_token",
            Auth::Bearer(identity) => identity.source(),
        };
        f.debug_struct("AzureBackend")
            .field("integration", &self.client.integration())
            .field("endpoint", &format_args!("{}://{}", self.scheme, self.authority))
            .field("account", &self.account)
            .field("container", &self.container)
            .field("path_style", &self.path_style)
            .field("auth", &auth)
            .finish()
    }
}

/// One request to send: method, encoded path and our own query parameters.
struct Call<'a> {
    method: Method,
    /// Percent-encoded, exactly as sent and signed.
    path: String,
    /// Names and values that need no percent-encoding (`comp=list` and the like).
    query: &'a [(&'a str, &'a str)],
    headers: HeaderMap,
}

impl AzureBackend {
    /// Builds the backend of integration `name`: its own pooled client
    /// (`ca_file` trusted), the base URL, and the credential (a SharedKey
    /// account key is base64-decoded here, once; a bad one is an error).
    /// Errors name the integration, never a secret.
    pub fn new(name: &str, cfg: &AzureConfig, upstream: &UpstreamConfig) -> Result<AzureBackend, String> {
        let url = &cfg.storage_url;
        if url.scheme != "http" && url.scheme != "https" {
            return Err(format!(
                "integration \"{name}\": storage_url must be http:// or https://, not {}://",
                url.scheme
            ));
        }
        if url.account.is_empty() {
            return Err(format!("integration \"{name}\": storage_url names no storage account"));
        }
        let host = if url.host.contains(':') && !url.host.starts_with('[') {
            format!("[{}]", url.host)
        } else {
            url.host.clone()
        };
        let authority = match url.port {
            Some(port) => format!("{host}:{port}"),
            None => host,
        };
        if format!("{}://{authority}/", url.scheme).parse::<Uri>().is_err() {
            return Err(format!("integration \"{name}\": storage_url has an unusable host \"{authority}\""));
        }
        let auth = match &cfg.credential {
            AzureCredential::AccountKey(key) => Auth::SharedKey(Held::Fixed(Arc::new(
                SharedKeyCredential::from_base64(&url.account, key.expose())
                    .map_err(|e| format!("integration \"{name}\": {e}"))?,
            ))),
            AzureCredential::AccountKeyFile(path) => {
                let account = url.account.clone();
                let parse: Parse<SharedKeyCredential> =
                    Box::new(move |key| SharedKeyCredential::from_base64(&account, key));
                Auth::SharedKey(Held::File(WatchedSecret::new(name, "account_key_file", path, parse)?))
            }
            AzureCredential::Sas(token) => Auth::Sas(Held::Fixed(Arc::new(
                sas_query(&url.scheme, &authority, token.expose())
                    .map_err(|e| format!("integration \"{name}\": {e}"))?,
            ))),
            AzureCredential::SasFile(path) => {
                let (scheme, authority) = (url.scheme.clone(), authority.clone());
                let parse: Parse<Secret> = Box::new(move |token| sas_query(&scheme, &authority, token));
                Auth::Sas(Held::File(WatchedSecret::new(name, "sas_token_file", path, parse)?))
            }
            other => match Identity::new(name, other, upstream, cfg.ca_file.as_deref())? {
                Some(identity) => Auth::Bearer(identity),
                None => return Err(format!("integration \"{name}\": no credential")),
            },
        };
        let client = UpstreamClient::new(upstream, cfg.ca_file.as_deref(), name)?;
        Ok(AzureBackend {
            client,
            scheme: url.scheme.clone(),
            authority,
            account: url.account.clone(),
            container: url.container.clone(),
            path_style: url.path_style,
            auth,
        })
    }

    /// Records this integration's requests to its storage in `metrics`.
    pub fn with_metrics(mut self, metrics: &crate::metrics::Metrics) -> Self {
        self.client = self.client.with_metrics(metrics);
        if let Auth::Bearer(identity) = &self.auth {
            identity.observe(metrics.credential_observer(self.client.integration()));
        }
        self
    }

    /// Reads a blob, its properties (`HEAD`), or one range of it.
    ///
    /// - `GET` is [Get Blob](https://learn.microsoft.com/rest/api/storageservices/get-blob),
    ///   a range goes in `x-ms-range`.
    /// - A suffix range (`bytes=-n`) is first resolved against the size given
    ///   by a `HEAD`, then read as an absolute range with `If-Match` on the
    ///   `HEAD`'s ETag, so both answers come from one version of the blob;
    ///   when the blob changed in between, the pair is retried once.
    /// - `HEAD` is [Get Blob Properties](https://learn.microsoft.com/rest/api/storageservices/get-blob-properties);
    ///   with a range it answers what a `GET` would: [`Part::Range`] or a 416.
    /// - `If-Match`, `If-None-Match`, `If-Modified-Since` and
    ///   `If-Unmodified-Since` are forwarded (and signed); `If-Range` is not.
    pub async fn fetch(&self, req: &ObjectRequest<'_>) -> Result<ObjectResponse> {
        let what = self.what(req.bucket, req.key);
        if req.key.is_empty() {
            return Err(Error::bad_locator(format!("{what} names no blob")));
        }
        // The registry routes only in-scope locators here; this keeps the
        // promise that nothing outside the scope is ever signed.
        if let Some(container) = &self.container
            && container != req.bucket
        {
            return Err(Error::new(
                Kind::NoIntegration,
                format!("integration \"{}\" serves container {container} only, not {what}", self.client.integration()),
            ));
        }
        let result = match (req.head, req.range) {
            (true, _) => self.head(req, &what).await,
            (false, Some(RangeSpec::Suffix(n))) => self.get_suffix(req, n, &what).await,
            (false, range) => self.get(req, range, &what).await,
        };
        result.map_err(|e| self.role_missing(e, req.bucket))
    }

    /// A bearer identity refused with `AuthorizationPermissionMismatch`
    /// authenticated but has no data role: say which one it lacks
    /// ([Azure roles for blob data](https://learn.microsoft.com/azure/storage/blobs/authorize-access-azure-active-directory)).
    fn role_missing(&self, e: Error, container: &str) -> Error {
        let mismatch = e.kind == Kind::UpstreamDenied && e.message.contains("AuthorizationPermissionMismatch");
        if !mismatch || !matches!(self.auth, Auth::Bearer(_)) {
            return e;
        }
        Error::new(
            Kind::UpstreamDenied,
            format!(
                "integration \"{}\": the identity lacks Storage Blob Data Reader on container {container} of \
                 account {} (AuthorizationPermissionMismatch): assign it that role on the container or the account",
                self.client.integration(),
                self.account
            ),
        )
    }

    /// The connection test: [List Blobs](https://learn.microsoft.com/rest/api/storageservices/list-blobs)
    /// with `maxresults=1` in the configured container, or, when the
    /// configuration names no container,
    /// [List Containers](https://learn.microsoft.com/rest/api/storageservices/list-containers2).
    /// `Ok` says what was listed; a failure carries the storage's code
    /// (`AuthorizationPermissionMismatch`, `ContainerNotFound`, ...).
    pub async fn test_connection(&self) -> Result<String, Problem> {
        let (call, target, ok) = match &self.container {
            Some(container) => (
                Call {
                    method: Method::GET,
                    path: self.container_path(container),
                    query: &[("restype", "container"), ("comp", "list"), ("maxresults", "1")],
                    headers: HeaderMap::new(),
                },
                Target::Container(container.clone()),
                format!("listed container {container} of account {}", self.account),
            ),
            None => (
                Call {
                    method: Method::GET,
                    path: self.account_path(),
                    query: &[("comp", "list"), ("maxresults", "1")],
                    headers: HeaderMap::new(),
                },
                Target::ContainerList,
                format!("listed the containers of account {}", self.account),
            ),
        };
        let bearer = self.bearer().await.map_err(|e| Problem::Credentials(e.message))?;
        let req = self.request(call, &target.to_string(), bearer).map_err(|e| Problem::Internal(e.message))?;
        let sas = match &self.auth {
            Auth::Sas(token) => token.get(),
            Auth::SharedKey(_) | Auth::Bearer(_) => Arc::new(Secret::new("")),
        };
        let sas = sas.expose();
        let sig = sas.split('&').find_map(|p| p.strip_prefix("sig=")).unwrap_or_default();
        probe::list(&self.client, req, target, "<EnumerationResults", &[sas, sig]).await?;
        Ok(ok)
    }

    /// What the connection test's sentences may name: never a secret.
    pub fn probe_context(&self) -> Context<'_> {
        Context {
            integration: self.client.integration(),
            storage: Storage::Azure {
                endpoint: &self.authority,
                tls: self.scheme == "https",
                account: &self.account,
                auth: match self.auth {
                    Auth::SharedKey(_) => AzureAuth::AccountKey,
                    Auth::Sas(_) => AzureAuth::Sas,
                    Auth::Bearer(_) => AzureAuth::Bearer,
                },
            },
        }
    }

    /// `GET` of the whole blob or of an absolute range.
    async fn get(&self, req: &ObjectRequest<'_>, range: Option<RangeSpec>, what: &str) -> Result<ObjectResponse> {
        let mut headers = HeaderMap::new();
        if let Some(spec) = range {
            headers.insert(X_MS_RANGE, header_value(spec.to_header())?);
        }
        forward_conditions(req.conditions, &mut headers);
        let resp = self.send(self.blob_call(Method::GET, req, headers), what).await?;
        if let Some(size) = range_past_the_end(resp.status(), resp.headers()) {
            return Err(unsatisfiable(size, what));
        }
        match self.client.object_response(resp, false, what).await {
            Err(e) if e.kind == (Kind::RangeNotSatisfiable { len: None }) => Err(self.with_length(req, e, what).await),
            other => other,
        }
    }

    /// `GET` of the last `n` bytes: `HEAD` for size and ETag, then an
    /// absolute range pinned to that ETag; retried once if the blob changed.
    async fn get_suffix(&self, req: &ObjectRequest<'_>, n: u64, what: &str) -> Result<ObjectResponse> {
        for attempt in 0..2 {
            let mut headers = HeaderMap::new();
            forward_conditions(req.conditions, &mut headers);
            let resp = self.send(self.blob_call(Method::HEAD, req, headers), what).await?;
            let props = self.client.object_response(resp, true, what).await?;
            if props.part == Part::NotModified {
                return Ok(props);
            }
            let size = props.meta.size;
            let Some(span) = RangeSpec::Suffix(n).resolve(size) else {
                return Err(unsatisfiable(size, what));
            };
            let mut headers = HeaderMap::new();
            headers.insert(X_MS_RANGE, header_value(format!("bytes={}-{}", span.start, span.end))?);
            let pinned = props.meta.etag.is_some();
            if let Some(etag) = &props.meta.etag {
                headers.insert(header::IF_MATCH, header_value(etag.clone())?);
            }
            let resp = self.send(self.blob_call(Method::GET, req, headers), what).await?;
            if pinned && resp.status() == StatusCode::PRECONDITION_FAILED {
                // Read the short error body so the connection goes back to the pool.
                let _ = self.client.error_from_response(resp, what).await;
                tracing::debug!(
                    integration = self.client.integration(),
                    object = what,
                    attempt,
                    "the blob changed between its properties and the suffix read"
                );
                continue;
            }
            return self.client.object_response(resp, false, what).await;
        }
        Err(Error::new(
            Kind::UpstreamError,
            format!(
                "{what} changed twice while the storage of integration \"{}\" was reading its last bytes; try again",
                self.client.integration()
            ),
        ))
    }

    /// `HEAD` (Get Blob Properties); a range is resolved locally against the size.
    async fn head(&self, req: &ObjectRequest<'_>, what: &str) -> Result<ObjectResponse> {
        let mut headers = HeaderMap::new();
        forward_conditions(req.conditions, &mut headers);
        let resp = self.send(self.blob_call(Method::HEAD, req, headers), what).await?;
        let mut props = self.client.object_response(resp, true, what).await?;
        if let (Some(spec), Part::Whole) = (req.range, props.part) {
            match spec.resolve(props.meta.size) {
                Some(span) => props.part = Part::Range(span),
                None => return Err(unsatisfiable(props.meta.size, what)),
            }
        }
        Ok(props)
    }

    /// Completes a 416 that came without `Content-Range: bytes */N` with the
    /// blob's size from a `HEAD`; keeps the 416 as it is if that fails.
    async fn with_length(&self, req: &ObjectRequest<'_>, err: Error, what: &str) -> Error {
        let Ok(resp) = self.send(self.blob_call(Method::HEAD, req, HeaderMap::new()), what).await else {
            return err;
        };
        match self.client.object_response(resp, true, what).await {
            Ok(props) if props.part == Part::Whole => unsatisfiable(props.meta.size, what),
            _ => err,
        }
    }

    /// A request for the blob of `req`.
    fn blob_call<'a>(&self, method: Method, req: &ObjectRequest<'_>, headers: HeaderMap) -> Call<'a> {
        let path = format!("{}/{}", self.container_path(req.bucket), encode_key(req.key));
        Call { method, path, query: &[], headers }
    }

    /// `/<container>`, or `/<account>/<container>` in the emulator form.
    fn container_path(&self, container: &str) -> String {
        if self.path_style {
            format!("/{}/{}", encode_key(&self.account), encode_key(container))
        } else {
            format!("/{}", encode_key(container))
        }
    }

    /// The account's service root: `/`, or `/<account>` in the emulator form.
    fn account_path(&self) -> String {
        if self.path_style { format!("/{}", encode_key(&self.account)) } else { "/".to_owned() }
    }

    /// The locator text of a blob, for messages.
    fn what(&self, container: &str, key: &str) -> String {
        format!("az://{}/{container}/{key}", self.account)
    }

    /// Adds the version, date and authorization, and sends; a path with a
    /// dot segment is never signed nor sent ([`check_upstream_path`]).
    async fn send(&self, call: Call<'_>, what: &str) -> Result<http::Response<Incoming>> {
        let bearer = self.bearer().await?;
        self.client.send(self.request(call, what, bearer)?).await
    }

    /// The `Authorization` value of a bearer credential (cached token or a
    /// new one); `None` for a key or SAS.
    async fn bearer(&self) -> Result<Option<String>> {
        match &self.auth {
            Auth::Bearer(identity) => identity.authorization().await.map(|s| Some(s.expose().to_owned())),
            Auth::SharedKey(_) | Auth::Sas(_) => Ok(None),
        }
    }

    /// The credential source in use (`account-key`, `sas`,
    /// `service-principal`, `workload-identity`, `managed-identity`) and,
    /// for a token, when the last one handed out expires; never a secret.
    /// For `mediagate check` and the admin API.
    pub fn credential_status(&self) -> (&'static str, Option<SystemTime>) {
        match &self.auth {
            Auth::SharedKey(_) => ("account-key", None),
            Auth::Sas(_) => ("sas", None),
            Auth::Bearer(identity) => (identity.source(), identity.expires()),
        }
    }

    /// The authorized request; `what` names it in errors (never the URL,
    /// which may hold a SAS).
    fn request(&self, call: Call<'_>, what: &str, bearer: Option<String>) -> Result<Request<Empty<Bytes>>> {
        check_upstream_path(&call.path, self.client.integration())?;
        let mut headers = call.headers;
        headers.insert(X_MS_VERSION, HeaderValue::from_static(API_VERSION));
        headers.insert(X_MS_DATE, header_value(httpdate::fmt_http_date(SystemTime::now()))?);
        headers.insert(header::USER_AGENT, HeaderValue::from_static(concat!("mediagate/", env!("CARGO_PKG_VERSION"))));
        let mut query: String = call.query.iter().map(|(k, v)| format!("{k}={v}")).collect::<Vec<_>>().join("&");
        match &self.auth {
            Auth::SharedKey(cred) => {
                let pairs: Vec<(String, String)> =
                    call.query.iter().map(|(k, v)| ((*k).to_owned(), (*v).to_owned())).collect();
                let authorization = cred.get().authorization(&call.method, &call.path, &pairs, &headers);
                headers.insert(header::AUTHORIZATION, header_value(authorization)?);
            }
            Auth::Sas(token) => {
                if !query.is_empty() {
                    query.push('&');
                }
                query.push_str(token.get().expose());
            }
            Auth::Bearer(_) => {
                let value = bearer.ok_or_else(|| Error::internal("a bearer credential without its token"))?;
                let mut value = header_value(value)?;
                value.set_sensitive(true);
                headers.insert(header::AUTHORIZATION, value);
            }
        }
        let mut url = format!("{}://{}{}", self.scheme, self.authority, call.path);
        if !query.is_empty() {
            url.push('?');
            url.push_str(&query);
        }
        // The URL may hold a SAS: the message names the object, never the URL.
        let uri: Uri = url.parse().map_err(|_| Error::internal(format!("cannot build the request URL for {what}")))?;
        let mut request = Request::new(Empty::<Bytes>::new());
        *request.method_mut() = call.method;
        *request.uri_mut() = uri;
        *request.headers_mut() = headers;
        Ok(request)
    }
}

/// The SAS query string to append to every URL (a leading `?` dropped),
/// checked: it has a signature and is a valid, percent-encoded query.
/// Messages never show it.
fn sas_query(scheme: &str, authority: &str, token: &str) -> Result<Secret, String> {
    let token = token.trim().trim_start_matches('?');
    if token.is_empty() {
        return Err("sas_token is empty".to_owned());
    }
    if !token.split('&').any(|p| p.starts_with("sig=")) {
        return Err("sas_token has no sig parameter; give the whole query string of the SAS".to_owned());
    }
    if format!("{scheme}://{authority}/?{token}").parse::<Uri>().is_err() {
        return Err("sas_token is not a valid URL query string (it must stay percent-encoded)".to_owned());
    }
    Ok(Secret::new(token))
}

/// The 416 for a range outside a blob of `size` bytes.
fn unsatisfiable(size: u64, what: &str) -> Error {
    Error::new(Kind::RangeNotSatisfiable { len: Some(size) }, format!("the requested range lies outside {what}"))
}

/// The blob size when a 206 answer's `Content-Range` starts at or past the
/// end of the blob (`bytes 100-99/100`, `bytes 0--1/0`): Azurite's answer to
/// a range that real Azure refuses with 416. `None` for every other answer.
fn range_past_the_end(status: StatusCode, headers: &HeaderMap) -> Option<u64> {
    if status != StatusCode::PARTIAL_CONTENT {
        return None;
    }
    let value = headers.get(header::CONTENT_RANGE)?.to_str().ok()?;
    let (unit, rest) = value.trim().split_once(' ')?;
    let (range, complete) = rest.rsplit_once('/')?;
    let (first, _) = range.split_once('-')?;
    let (first, complete) = (first.parse::<u64>().ok()?, complete.parse::<u64>().ok()?);
    (unit.eq_ignore_ascii_case("bytes") && first >= complete).then_some(complete)
}

fn header_value(value: String) -> Result<HeaderValue> {
    HeaderValue::try_from(value).map_err(|_| Error::internal("a request header for the storage is not valid"))
}

/// Adds the preconditions the storage evaluates. One that cannot be sent as
/// a header is left out: the proxy evaluates every precondition again on
/// the answer.
fn forward_conditions(c: &Conditions, headers: &mut HeaderMap) {
    let texts = [(header::IF_MATCH, c.if_match.as_deref()), (header::IF_NONE_MATCH, c.if_none_match.as_deref())];
    for (name, value) in texts {
        if let Some(v) = value.and_then(|v| HeaderValue::from_str(v).ok()) {
            headers.insert(name, v);
        }
    }
    let dates =
        [(header::IF_MODIFIED_SINCE, c.if_modified_since), (header::IF_UNMODIFIED_SINCE, c.if_unmodified_since)];
    for (name, value) in dates {
        if let Some(v) = value.and_then(|t| HeaderValue::try_from(httpdate::fmt_http_date(t)).ok()) {
            headers.insert(name, v);
        }
    }
}

#[cfg(test)]
mod tests {
    use std::time::Duration;

    use super::*;
    use crate::integration::azure::config::AzureStorageUrl;

    const AZURITE_KEY: &str =
        "Eby8vdM02xNOcqFlqUwJPLlmEtlCDXJ1OUzFT50uSRZ6IFsuFq2UVErCz4I6tq/K1SZFPTOtr/KBHBeksoGMGw==";

    fn upstream() -> UpstreamConfig {
        UpstreamConfig {
            connect_timeout: Duration::from_secs(1),
            first_byte_timeout: Duration::from_secs(5),
            read_timeout: Duration::from_secs(5),
            pool_idle_timeout: Duration::from_secs(5),
            pool_max_idle_per_host: 4,
        }
    }

    fn config(host: &str, port: Option<u16>, path_style: bool, credential: AzureCredential) -> AzureConfig {
        AzureConfig {
            storage_url: AzureStorageUrl {
                scheme: if path_style { "http" } else { "https" }.to_owned(),
                host: host.to_owned(),
                port,
                account: "acct".to_owned(),
                container: Some("media".to_owned()),
                path_style,
            },
            credential,
            ca_file: None,
        }
    }

    fn key() -> AzureCredential {
        AzureCredential::AccountKey(Secret::new(AZURITE_KEY))
    }

    fn request<'a>(conditions: &'a Conditions, key: &'a str) -> ObjectRequest<'a> {
        ObjectRequest { head: false, bucket: "media", key, range: None, conditions }
    }

    #[test]
    fn cloud_urls_put_the_account_in_the_host_and_emulator_urls_in_the_path() {
        let cloud =
            AzureBackend::new("az", &config("acct.blob.core.windows.net", None, false, key()), &upstream()).unwrap();
        let emu = AzureBackend::new("az", &config("127.0.0.1", Some(10000), true, key()), &upstream()).unwrap();
        let cond = Conditions::default();
        let req = request(&cond, "dir/a b+c.mp4");
        assert_eq!(cloud.blob_call(Method::GET, &req, HeaderMap::new()).path, "/media/dir/a%20b%2Bc.mp4");
        assert_eq!(emu.blob_call(Method::GET, &req, HeaderMap::new()).path, "/acct/media/dir/a%20b%2Bc.mp4");
        assert_eq!(cloud.account_path(), "/");
        assert_eq!(emu.account_path(), "/acct");
        assert_eq!(cloud.authority, "acct.blob.core.windows.net");
        assert_eq!(emu.authority, "127.0.0.1:10000");
    }

    #[test]
    fn ipv6_hosts_are_bracketed() {
        let b = AzureBackend::new("az", &config("::1", Some(10000), true, key()), &upstream()).unwrap();
        assert_eq!(b.authority, "[::1]:10000");
    }

    #[test]
    fn a_bad_account_key_is_a_construction_error_naming_the_integration_but_not_the_key() {
        let cfg = config("127.0.0.1", None, true, AzureCredential::AccountKey(Secret::new("zz!!notakey")));
        let err = AzureBackend::new("azure-media", &cfg, &upstream()).unwrap_err();
        assert!(err.contains("\"azure-media\""), "{err}");
        assert!(!err.contains("notakey"), "{err}");
    }

    #[test]
    fn a_sas_token_must_be_a_whole_query_string_and_is_never_shown() {
        for bad in ["", "?", "sv=2020-12-06&sp=rl&SECRETVALUE", "sv=1&sig=SECRET VALUE"] {
            let cfg = config("127.0.0.1", None, true, AzureCredential::Sas(Secret::new(bad)));
            let err = AzureBackend::new("az", &cfg, &upstream()).unwrap_err();
            assert!(err.contains("integration \"az\": sas_token"), "{err}");
            assert!(!err.contains("SECRET"), "{err}");
        }
        let cfg = config("127.0.0.1", None, true, AzureCredential::Sas(Secret::new("?sv=2020-12-06&sig=abc%2B")));
        let b = AzureBackend::new("az", &cfg, &upstream()).unwrap();
        let shown = format!("{b:?}");
        assert!(shown.contains("sas_token"));
        assert!(!shown.contains("abc%2B"));
    }

    #[test]
    fn debug_never_shows_the_account_key() {
        let b = AzureBackend::new("az", &config("127.0.0.1", None, true, key()), &upstream()).unwrap();
        let shown = format!("{b:?}");
        assert!(shown.contains("account_key"));
        assert!(!shown.contains("Eby8"));
    }

    #[test]
    fn every_forwardable_precondition_is_forwarded_and_if_range_is_not() {
        let t = SystemTime::UNIX_EPOCH + Duration::from_secs(1_700_000_000);
        let c = Conditions {
            if_match: Some("\"a\"".to_owned()),
            if_none_match: Some("\"b\", \"c\"".to_owned()),
            if_modified_since: Some(t),
            if_unmodified_since: Some(t),
            if_range: Some(crate::http::conditional::IfRange::ETag("\"a\"".to_owned())),
        };
        let mut h = HeaderMap::new();
        forward_conditions(&c, &mut h);
        assert_eq!(h[header::IF_MATCH], "\"a\"");
        assert_eq!(h[header::IF_NONE_MATCH], "\"b\", \"c\"");
        assert_eq!(h[header::IF_MODIFIED_SINCE], "Tue, 14 Nov 2023 22:13:20 GMT");
        assert_eq!(h[header::IF_UNMODIFIED_SINCE], "Tue, 14 Nov 2023 22:13:20 GMT");
        assert!(!h.contains_key(header::IF_RANGE));
        assert_eq!(h.len(), 4);
    }

    #[tokio::test]
    async fn a_container_outside_the_configured_one_is_never_requested() {
        // Port 9 (discard) on loopback: were a request sent, it would fail differently.
        let b = AzureBackend::new("az", &config("127.0.0.1", Some(9), true, key()), &upstream()).unwrap();
        let cond = Conditions::default();
        let req = ObjectRequest { head: false, bucket: "other", key: "a.bin", range: None, conditions: &cond };
        let err = b.fetch(&req).await.unwrap_err();
        assert_eq!(err.kind, Kind::NoIntegration);
        assert!(err.message.contains("\"az\" serves container media only"), "{}", err.message);
    }

    #[tokio::test]
    async fn a_blob_name_with_a_dot_segment_is_never_requested() {
        // Port 9 (discard) on loopback: were a request sent, it would fail differently.
        let b = AzureBackend::new("az", &config("127.0.0.1", Some(9), true, key()), &upstream()).unwrap();
        let cond = Conditions::default();
        for key in ["../other/a.bin", "a/./b", "x/..", "."] {
            for head in [false, true] {
                let req = ObjectRequest { head, bucket: "media", key, range: None, conditions: &cond };
                let err = b.fetch(&req).await.unwrap_err();
                assert_eq!(err.kind, Kind::Internal, "{key:?}: {}", err.message);
                assert!(err.message.contains("'.' or '..' segment"), "{}", err.message);
            }
        }
    }

    #[tokio::test]
    async fn credential_status_names_the_source_and_no_expiry_before_a_token() {
        use crate::integration::secret_file::SecretValue;
        let status = |credential| {
            AzureBackend::new("az", &config("acct.blob.core.windows.net", None, false, credential), &upstream())
                .unwrap()
                .credential_status()
        };
        assert_eq!(status(key()), ("account-key", None));
        assert_eq!(status(AzureCredential::Sas(Secret::new("sv=1&sig=x"))), ("sas", None));
        let principal = AzureCredential::ServicePrincipal {
            tenant_id: "t".to_owned(),
            client_id: "c".to_owned(),
            client_secret: SecretValue::Inline(Secret::new("s3cr3t")),
            authority_host: Some("https://login.example".to_owned()),
        };
        assert_eq!(status(principal), ("service-principal", None));
        let workload = AzureCredential::WorkloadIdentity {
            tenant_id: "t".to_owned(),
            client_id: "c".to_owned(),
            token_file: "/nonexistent/token".into(),
            authority_host: None,
        };
        assert_eq!(status(workload), ("workload-identity", None));
        assert_eq!(status(AzureCredential::ManagedIdentity { client_id: None }), ("managed-identity", None));
    }

    #[tokio::test]
    async fn debug_never_shows_the_client_secret() {
        use crate::integration::secret_file::SecretValue;
        let principal = AzureCredential::ServicePrincipal {
            tenant_id: "t".to_owned(),
            client_id: "c".to_owned(),
            client_secret: SecretValue::Inline(Secret::new("s3cr3t-value")),
            authority_host: None,
        };
        let b = AzureBackend::new("az", &config("acct.blob.core.windows.net", None, false, principal), &upstream())
            .unwrap();
        let shown = format!("{b:?}");
        assert!(shown.contains("service-principal"), "{shown}");
        assert!(!shown.contains("s3cr3t"), "{shown}");
    }

    #[test]
    fn a_206_starting_past_the_end_is_read_as_unsatisfiable() {
        let with = |cr: &str| {
            let mut h = HeaderMap::new();
            h.insert(header::CONTENT_RANGE, HeaderValue::from_str(cr).unwrap());
            h
        };
        let partial = StatusCode::PARTIAL_CONTENT;
        assert_eq!(range_past_the_end(partial, &with("bytes 100-99/100")), Some(100));
        assert_eq!(range_past_the_end(partial, &with("bytes 0--1/0")), Some(0));
        assert_eq!(range_past_the_end(partial, &with("bytes 0-9/100")), None);
        assert_eq!(range_past_the_end(partial, &with("bytes 99-99/100")), None);
        assert_eq!(range_past_the_end(partial, &with("bytes 0-9/*")), None);
        assert_eq!(range_past_the_end(StatusCode::OK, &with("bytes 100-99/100")), None);
        assert_eq!(range_past_the_end(partial, &HeaderMap::new()), None);
    }

    #[test]
    fn a_precondition_that_is_not_a_valid_header_is_left_to_the_proxy() {
        let c = Conditions { if_match: Some("\"a\"\n".to_owned()), ..Conditions::default() };
        let mut h = HeaderMap::new();
        forward_conditions(&c, &mut h);
        assert!(h.is_empty());
    }
}
