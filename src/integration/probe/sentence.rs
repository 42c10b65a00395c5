//! The one table of the connection test: a [`Problem`] and the
//! integration's [`Context`] in, the code and the sentence out
//! (docs/CONNECTION-TEST.md lists them). Pure, so every row is tested here.

use super::{AzureAuth, Context, Limit, Problem, Storage, Target};
use crate::integration::transport::Failure;
use crate::integration::upstream::Refusal;

/// The code and the sentence for a problem: the one table of
/// docs/CONNECTION-TEST.md.
pub fn describe(ctx: &Context<'_>, problem: &Problem) -> (String, String) {
    let who = format!("integration \"{}\"", ctx.integration);
    match problem {
        Problem::Refused { target, refusal } => refused(ctx, &who, target, refusal),
        Problem::Unreachable { host, failure } => unreachable(ctx, host, failure),
        Problem::Timeout { host, limit, after } => {
            let (code, why) = match limit {
                Limit::Test => ("timeout", format!("did not answer the connection test within {after:?}")),
                Limit::Connect => {
                    ("timeout", format!("did not accept a connection within connect_timeout ({after:?})"))
                }
                Limit::FirstByte => ("timeout", format!("did not answer within first_byte_timeout ({after:?})")),
            };
            let advice = if matches!(ctx.storage, Storage::Local { .. }) {
                "is the file system (a network mount?) responding?"
            } else {
                "is the host reachable from this machine (a firewall that drops packets looks like this), and is it the storage's port?"
            };
            (code.to_owned(), format!("{who}: {host} {why}; {advice}"))
        }
        Problem::NotStorage { target, host } => {
            let (api, key) = match ctx.storage {
                Storage::Azure { .. } => ("an Azure Blob listing", "storage_url"),
                _ => ("an S3 listing", "endpoint (and port)"),
            };
            (
                "not_storage".to_owned(),
                format!(
                    "{who}: {host} answered the listing of {target} with 200, but not with {api}: check that {key} \
                     is the storage's API address, not a web page or a proxy in front of it"
                ),
            )
        }
        Problem::Local { target, kind, detail } => local(&who, target, *kind, detail),
        Problem::Credentials(message) => ("credentials".to_owned(), message.clone()),
        Problem::Internal(why) => ("internal".to_owned(), format!("{who}: the connection test could not run: {why}")),
    }
}

/// Codes for a local directory: `not_found`, `not_a_directory`,
/// `permission_denied`, else `io_error`.
pub fn local_code(kind: std::io::ErrorKind) -> &'static str {
    match kind {
        std::io::ErrorKind::NotFound => "not_found",
        std::io::ErrorKind::NotADirectory => "not_a_directory",
        std::io::ErrorKind::PermissionDenied => "permission_denied",
        _ => "io_error",
    }
}

fn local(who: &str, target: &Target, kind: std::io::ErrorKind, detail: &str) -> (String, String) {
    let code = local_code(kind);
    let (path, bucket) = match target {
        Target::Directory { bucket, path } => (path.display().to_string(), bucket.as_deref()),
        other => (other.to_string(), None),
    };
    let message = match (code, bucket) {
        ("not_found", None) => format!("{who}: the root directory {path} does not exist: create it, or correct root"),
        ("not_found", Some(b)) => format!(
            "{who}: the directory {path} of bucket {b} does not exist: create it (root holds one sub-directory per \
             bucket), or correct buckets"
        ),
        ("not_a_directory", _) => format!(
            "{who}: {path} is not a directory: root, and each bucket under it, must be a directory (a symbolic link \
             to one is fine)"
        ),
        ("permission_denied", _) => format!(
            "{who}: mediagate may not list {path} (permission denied): give the user mediagate runs as read and \
             execute (r-x) permission on it"
        ),
        _ => format!("{who}: cannot list {path}: {detail}"),
    };
    (code.to_owned(), message)
}

fn unreachable(ctx: &Context<'_>, host: &str, failure: &Failure) -> (String, String) {
    let base = failure.message(ctx.integration, host);
    let (tls, tls_on, tls_off) = match ctx.storage {
        Storage::S3 { tls, .. } => (tls, "set tls = true", "set tls = false"),
        Storage::Azure { tls, .. } => (tls, "use https:// in storage_url", "use http:// in storage_url"),
        Storage::Local { .. } => (false, "", ""),
    };
    // The code is the one transport rule (`Failure::code`); the advice is this table's.
    let advice = match failure {
        Failure::Resolve(_) => "check the host name for a typo, and this machine's DNS".to_owned(),
        Failure::Refused => {
            format!(
                "is the storage running at {host}, and is the port right (the storage's API port, not its console)?"
            )
        }
        // A TLS port answers plain HTTP with an alert (not HTTP) or a close.
        Failure::Reset | Failure::Other(_) if !tls => {
            format!("if that port expects TLS (HTTPS), {tls_on}; otherwise check the host and port")
        }
        Failure::Reset | Failure::Other(_) => "check the host and port, and any proxy in between".to_owned(),
        Failure::UnknownIssuer | Failure::WrongName(_) | Failure::NotValidYet(_) => String::new(),
        Failure::Expired(_) => "the storage's certificate must be renewed".to_owned(),
        Failure::Tls(_) => format!("if that port serves plain HTTP, {tls_off}"),
        Failure::TimedOut => "is the host reachable from this machine?".to_owned(),
    };
    let message = if advice.is_empty() { base } else { format!("{base}; {advice}") };
    (failure.code().to_owned(), message)
}

/// The first line of what the storage said, at most 200 characters.
fn storage_said(refusal: &Refusal) -> String {
    let status = refusal.status.as_u16();
    let code = refusal.code.as_deref().map(|c| format!(" {c}")).unwrap_or_default();
    let message = refusal.message.as_deref().and_then(|m| m.lines().next()).map(str::trim).unwrap_or_default();
    let message: String = message.chars().take(200).collect();
    if message.is_empty() { format!("{status}{code}") } else { format!("{status}{code}: {message}") }
}

fn refused(ctx: &Context<'_>, who: &str, target: &Target, r: &Refusal) -> (String, String) {
    let code = r.code.clone().unwrap_or_else(|| format!("http_{}", r.status.as_u16()));
    let said = storage_said(r);
    let message = match ctx.storage {
        Storage::S3 { endpoint, region, access_key_id, .. } => {
            s3_sentence(who, target, r, &said, endpoint, region, access_key_id)
        }
        Storage::Azure { endpoint, account, auth, .. } => {
            azure_sentence(who, target, r, &said, endpoint, account, auth)
        }
        Storage::Local { .. } => None,
    };
    let message = message.unwrap_or_else(|| generic_sentence(who, target, r, &said));
    (code, message)
}

fn s3_sentence(
    who: &str,
    target: &Target,
    r: &Refusal,
    said: &str,
    endpoint: &str,
    region: &str,
    akid: &str,
) -> Option<String> {
    let bucket = match target {
        Target::Bucket(b) => Some(b.as_str()),
        _ => None,
    };
    let in_bucket = bucket.map(|b| format!("bucket {b} ")).unwrap_or_default();
    let wrong_region = |r: &Refusal| match &r.region {
        Some(right) if right != region => format!(
            "{who}: {in_bucket}is in region {right}, not {region}: set region = \"{right}\" (and an endpoint of that \
             region, if endpoint is set)"
        ),
        _ => format!(
            "{who}: the storage refused region {region} for {target} ({said}): set region to the bucket's region"
        ),
    };
    let sentence = match r.code.as_deref() {
        Some("SignatureDoesNotMatch") => format!(
            "{who}: the secret access key does not match the access key id {akid} (the storage computed another \
             signature): re-enter the secret access key that belongs to {akid}"
        ),
        Some("InvalidAccessKeyId" | "NotSignedUp") => format!(
            "{who}: the storage at {endpoint} does not know the access key id {akid}: check access_key_id for a \
             typo, and that the key exists, is active, and belongs to this storage"
        ),
        Some("AccessDenied" | "AllAccessDisabled") => match bucket {
            Some(b) => format!(
                "{who}: access key {akid} may not list bucket {b}: grant it s3:ListBucket on arn:aws:s3:::{b} \
                 (and s3:GetObject on arn:aws:s3:::{b}/* to read media), or the storage's equivalent"
            ),
            None => format!(
                "{who}: access key {akid} may not list the buckets: grant it s3:ListAllMyBuckets, or set buckets to \
                 the buckets it may read"
            ),
        },
        Some("NoSuchBucket") => no_such_bucket(who, bucket, endpoint),
        Some("AuthorizationHeaderMalformed" | "PermanentRedirect" | "IncorrectEndpoint") => wrong_region(r),
        _ if r.status.is_redirection() => wrong_region(r),
        Some("RequestTimeTooSkewed") => format!(
            "{who}: this machine's clock and the storage's differ by more than 15 minutes: set the clock right (NTP)"
        ),
        Some("InvalidToken" | "ExpiredToken" | "TokenRefreshRequired") => format!(
            "{who}: the storage refused the session token of access key {akid} ({said}): renew the temporary \
             credentials"
        ),
        Some("InvalidBucketName") => {
            format!("{who}: the storage refused the name of {target} ({said}): correct it in buckets")
        }
        _ if r.status.as_u16() == 404 && bucket.is_some() => no_such_bucket(who, bucket, endpoint),
        _ => return None,
    };
    Some(sentence)
}

fn no_such_bucket(who: &str, bucket: Option<&str>, endpoint: &str) -> String {
    let bucket = bucket.unwrap_or("?");
    format!(
        "{who}: bucket {bucket} does not exist at {endpoint}: check the name in buckets for a typo (and the endpoint \
         and region)"
    )
}

fn azure_sentence(
    who: &str,
    target: &Target,
    r: &Refusal,
    said: &str,
    endpoint: &str,
    account: &str,
    auth: AzureAuth,
) -> Option<String> {
    let container = match target {
        Target::Container(c) => Some(c.as_str()),
        _ => None,
    };
    let scope = container.map_or_else(|| format!("the containers of account {account}"), |c| format!("container {c}"));
    let covering = container.map_or_else(
        || "an account SAS for the blob service (ss=b) with resource type service (srt=s)".to_owned(),
        |c| format!("a container SAS (sr=c) for {c}, or an account SAS covering it (ss=b, srt=co)"),
    );
    let sentence = match (r.code.as_deref(), auth) {
        (Some("AuthenticationFailed" | "SignatureDoesNotMatch"), AzureAuth::AccountKey) => format!(
            "{who}: the account key does not match storage account {account}: re-enter account_key (key1 or key2 \
             under the account's Access keys)"
        ),
        (Some("AuthenticationFailed" | "SignatureDoesNotMatch"), AzureAuth::Sas) => format!(
            "{who}: the storage refused the SAS token ({said}): it is expired, not yet valid, altered, or signed \
             with a key rotated since; create a new one: {covering}, with read (r) and list (l) permissions"
        ),
        (Some("AuthenticationFailed" | "InvalidAuthenticationInfo"), AzureAuth::Bearer) => format!(
            "{who}: the storage refused the identity's token ({said}): check the tenant, client id and secret \
             (or the federated credential) of the identity"
        ),
        (Some("AuthorizationPermissionMismatch"), AzureAuth::Sas) => format!(
            "{who}: the SAS token may not list {scope}: a SAS needs read (r) and list (l) permissions (sp=rl), \
             and must be {covering}"
        ),
        (Some("AuthorizationPermissionMismatch"), AzureAuth::Bearer) => format!(
            "{who}: the identity lacks Storage Blob Data Reader on {scope}: assign it that role on the container \
             or the storage account {account}"
        ),
        (Some("AuthorizationFailure"), AzureAuth::Sas) => format!(
            "{who}: the SAS token does not authorize listing {scope} ({said}): it must be {covering}, with read \
             (r) and list (l) permissions; also check its allowed IP range (sip) and the account's network rules"
        ),
        (Some("AuthorizationFailure"), AzureAuth::AccountKey) => format!(
            "{who}: storage account {account} refused the request ({said}): check account_key (re-enter key1 or \
             key2 of {account}; the Azurite emulator answers a wrong key this way) and the account's network rules \
             (firewall, private endpoint) for this machine"
        ),
        (Some("AuthorizationFailure"), AzureAuth::Bearer) => format!(
            "{who}: storage account {account} refused the identity ({said}): check the account's network rules \
             (firewall, private endpoint) for this machine, and the identity's role on {scope}"
        ),
        (Some("AuthorizationResourceTypeMismatch"), _) => {
            format!("{who}: the SAS token does not cover {scope}: it must be {covering}, not a SAS for a single blob")
        }
        (Some("AuthorizationServiceMismatch"), _) => {
            format!("{who}: the SAS token is not for the blob service: an account SAS needs the blob service (ss=b)")
        }
        (Some("AuthorizationSourceIPMismatch"), _) => format!(
            "{who}: the SAS token allows other IP addresses (sip) than this machine's: create one that allows it"
        ),
        (Some("AuthorizationProtocolMismatch"), _) => {
            format!("{who}: the SAS token allows HTTPS only (spr=https): use https:// in storage_url")
        }
        (Some("ContainerNotFound"), _) => format!(
            "{who}: container {} does not exist in storage account {account}: check the container in storage_url \
             for a typo",
            container.unwrap_or("?")
        ),
        (Some("AccountIsDisabled"), _) => format!("{who}: storage account {account} is disabled ({said})"),
        (_, _) if r.status.as_u16() == 404 && container.is_some() => format!(
            "{who}: container {} or storage account {account} does not exist at {endpoint} ({said}): check \
             storage_url for a typo",
            container.unwrap_or("?")
        ),
        _ => return None,
    };
    Some(sentence)
}

fn generic_sentence(who: &str, target: &Target, r: &Refusal, said: &str) -> String {
    match r.status.as_u16() {
        401 | 403 => format!(
            "{who}: the storage refused to list {target} ({said}): check the credentials and their permission to \
             list {target}"
        ),
        404 => format!(
            "{who}: the storage has no {target} ({said}): check the name, and that the endpoint is the storage's \
             address"
        ),
        429 | 500..=599 => format!(
            "{who}: the storage failed to list {target} ({said}), also when asked again: it may be overloaded or \
             down; test again later"
        ),
        _ => format!("{who}: the storage refused to list {target} ({said})"),
    }
}

#[cfg(test)]
mod tests {
    use std::path::{Path, PathBuf};
    use std::time::{Duration, SystemTime};

    use http::StatusCode;

    use super::*;

    use crate::integration::probe::test_s3_context as s3;

    fn azure(auth: AzureAuth) -> Context<'static> {
        Context {
            integration: "az",
            storage: Storage::Azure { endpoint: "acct.blob.core.windows.net", tls: true, account: "acct", auth },
        }
    }

    fn refusal(status: u16, code: Option<&str>, region: Option<&str>) -> Refusal {
        Refusal {
            status: StatusCode::from_u16(status).unwrap(),
            code: code.map(str::to_owned),
            message: Some("what the storage said\nsecond line".to_owned()),
            region: region.map(str::to_owned),
        }
    }

    fn refused_in(target: Target, status: u16, code: Option<&str>, region: Option<&str>) -> Problem {
        Problem::Refused { target, refusal: refusal(status, code, region) }
    }

    fn bucket() -> Target {
        Target::Bucket("photos".to_owned())
    }

    fn container() -> Target {
        Target::Container("media".to_owned())
    }

    /// Context, problem -> the code and fragments the sentence must hold.
    type Row = (Context<'static>, Problem, &'static str, &'static [&'static str]);

    #[test]
    fn each_storage_code_gets_its_code_and_a_sentence_that_says_what_to_do() {
        let sas = azure(AzureAuth::Sas);
        let key = azure(AzureAuth::AccountKey);
        let bearer = azure(AzureAuth::Bearer);
        let table: Vec<Row> = vec![
            (
                s3(),
                refused_in(bucket(), 403, Some("SignatureDoesNotMatch"), None),
                "SignatureDoesNotMatch",
                &["secret access key does not match the access key id AKID1", "re-enter the secret"],
            ),
            (
                s3(),
                refused_in(bucket(), 403, Some("InvalidAccessKeyId"), None),
                "InvalidAccessKeyId",
                &["does not know the access key id AKID1", "check access_key_id"],
            ),
            (
                s3(),
                refused_in(bucket(), 403, Some("NotSignedUp"), None),
                "NotSignedUp",
                &["does not know the access key id AKID1"],
            ),
            (
                s3(),
                refused_in(bucket(), 403, Some("AccessDenied"), None),
                "AccessDenied",
                &["may not list bucket photos", "s3:ListBucket on arn:aws:s3:::photos"],
            ),
            (
                s3(),
                refused_in(Target::BucketList, 403, Some("AccessDenied"), None),
                "AccessDenied",
                &["s3:ListAllMyBuckets", "set buckets"],
            ),
            (
                s3(),
                refused_in(bucket(), 404, Some("NoSuchBucket"), None),
                "NoSuchBucket",
                &["bucket photos does not exist at s3.example:9000", "typo"],
            ),
            (
                s3(),
                refused_in(bucket(), 404, Some("NoSuchKey"), None),
                "NoSuchKey",
                &["bucket photos does not exist", "typo"],
            ),
            (
                s3(),
                refused_in(bucket(), 400, Some("AuthorizationHeaderMalformed"), Some("eu-west-1")),
                "AuthorizationHeaderMalformed",
                &["bucket photos is in region eu-west-1, not us-east-1", "set region = \"eu-west-1\""],
            ),
            (
                s3(),
                refused_in(bucket(), 301, Some("PermanentRedirect"), Some("ap-south-1")),
                "PermanentRedirect",
                &["is in region ap-south-1", "set region = \"ap-south-1\""],
            ),
            (
                s3(),
                refused_in(bucket(), 301, None, None),
                "http_301",
                &["refused region us-east-1 for bucket photos", "set region to the bucket's region"],
            ),
            (s3(), refused_in(bucket(), 403, Some("RequestTimeTooSkewed"), None), "RequestTimeTooSkewed", &["NTP"]),
            (s3(), refused_in(bucket(), 400, Some("ExpiredToken"), None), "ExpiredToken", &["renew"]),
            (
                s3(),
                refused_in(bucket(), 503, Some("SlowDown"), None),
                "SlowDown",
                &["503 SlowDown: what the storage said", "test again later"],
            ),
            (
                s3(),
                refused_in(bucket(), 403, None, None),
                "http_403",
                &["refused to list bucket photos (403: what the storage said)", "check the credentials"],
            ),
            (
                key,
                refused_in(container(), 403, Some("AuthenticationFailed"), None),
                "AuthenticationFailed",
                &["account key does not match storage account acct", "re-enter account_key"],
            ),
            (
                key,
                refused_in(container(), 403, Some("AuthorizationFailure"), None),
                "AuthorizationFailure",
                &["check account_key", "network rules"],
            ),
            (
                sas,
                refused_in(container(), 403, Some("AuthenticationFailed"), None),
                "AuthenticationFailed",
                &["refused the SAS token", "expired", "read (r) and list (l)"],
            ),
            (
                sas,
                refused_in(container(), 403, Some("AuthorizationPermissionMismatch"), None),
                "AuthorizationPermissionMismatch",
                &[
                    "may not list container media",
                    "needs read (r) and list (l) permissions",
                    "container SAS (sr=c) for media, or an account SAS covering it",
                ],
            ),
            (
                sas,
                refused_in(container(), 403, Some("AuthorizationFailure"), None),
                "AuthorizationFailure",
                &["does not authorize listing container media", "read (r) and list (l)"],
            ),
            (
                sas,
                refused_in(container(), 403, Some("AuthorizationResourceTypeMismatch"), None),
                "AuthorizationResourceTypeMismatch",
                &["does not cover container media"],
            ),
            (
                bearer,
                refused_in(container(), 403, Some("AuthorizationPermissionMismatch"), None),
                "AuthorizationPermissionMismatch",
                &["lacks Storage Blob Data Reader on container media"],
            ),
            (
                key,
                refused_in(container(), 404, Some("ContainerNotFound"), None),
                "ContainerNotFound",
                &["container media does not exist in storage account acct", "typo"],
            ),
            (
                key,
                refused_in(Target::ContainerList, 400, Some("InvalidQueryParameterValue"), None),
                "InvalidQueryParameterValue",
                &["refused to list the container list (400 InvalidQueryParameterValue: what the storage said)"],
            ),
        ];
        for (ctx, problem, code, fragments) in table {
            let (got_code, message) = describe(&ctx, &problem);
            assert_eq!(got_code, code, "{problem:?}: {message}");
            assert!(message.starts_with(&format!("integration \"{}\": ", ctx.integration)), "{message}");
            for fragment in fragments {
                assert!(message.contains(fragment), "{problem:?}: {message:?} lacks {fragment:?}");
            }
            assert!(!message.contains("second line"), "{message}");
        }
    }

    #[test]
    fn transport_failures_are_dns_tls_connect_or_timeout_and_say_what_to_check() {
        let day = SystemTime::UNIX_EPOCH + Duration::from_secs(1_577_923_200);
        let plain = Context {
            integration: "minio",
            storage: Storage::S3 { endpoint: "minio:9000", tls: false, region: "us-east-1", access_key_id: "a" },
        };
        let unreachable = |failure| Problem::Unreachable { host: "s3.example:9000".to_owned(), failure };
        let table: Vec<Row> = vec![
            (
                s3(),
                unreachable(Failure::Resolve("could not resolve s3.example".to_owned())),
                "dns",
                &["could not resolve s3.example", "check the host name"],
            ),
            (
                s3(),
                unreachable(Failure::Refused),
                "connect",
                &["connection refused", "is the storage running at s3.example:9000", "port"],
            ),
            (plain, unreachable(Failure::Reset), "connect", &["set tls = true"]),
            (
                plain,
                unreachable(Failure::Other("invalid HTTP version parsed".to_owned())),
                "connect",
                &["set tls = true"],
            ),
            (s3(), unreachable(Failure::Reset), "connect", &["closed the connection", "check the host and port"]),
            (s3(), unreachable(Failure::UnknownIssuer), "tls", &["unknown issuer", "set ca_file"]),
            (s3(), unreachable(Failure::Expired(Some(day))), "tls", &["expired on Thu, 02 Jan 2020", "renewed"]),
            (
                s3(),
                unreachable(Failure::WrongName(vec!["other.example".to_owned()])),
                "tls",
                &["not valid for s3.example (it names other.example)"],
            ),
            (s3(), unreachable(Failure::Tls("corrupt message".to_owned())), "tls", &["set tls = false"]),
            (
                azure(AzureAuth::Sas),
                unreachable(Failure::Tls("corrupt message".to_owned())),
                "tls",
                &["use http:// in storage_url"],
            ),
            (
                s3(),
                Problem::Timeout {
                    host: "s3.example:9000".to_owned(),
                    limit: Limit::Test,
                    after: Duration::from_secs(3),
                },
                "timeout",
                &["s3.example:9000 did not answer the connection test within 3s", "firewall"],
            ),
            (
                s3(),
                Problem::Timeout {
                    host: "s3.example:9000".to_owned(),
                    limit: Limit::Connect,
                    after: Duration::from_secs(5),
                },
                "timeout",
                &["within connect_timeout (5s)"],
            ),
            (
                s3(),
                Problem::NotStorage { target: bucket(), host: "s3.example:9000".to_owned() },
                "not_storage",
                &["not with an S3 listing", "endpoint"],
            ),
        ];
        for (ctx, problem, code, fragments) in table {
            let (got_code, message) = describe(&ctx, &problem);
            assert_eq!(got_code, code, "{problem:?}: {message}");
            assert!(message.contains(&format!("integration \"{}\"", ctx.integration)), "{message}");
            for fragment in fragments {
                assert!(message.contains(fragment), "{problem:?}: {message:?} lacks {fragment:?}");
            }
        }
    }
    #[test]
    fn local_directories_get_not_found_not_a_directory_or_permission_denied() {
        use std::io::ErrorKind;
        let local = Context { integration: "disk", storage: Storage::Local { root: Path::new("/srv/media") } };
        let root = Target::Directory { bucket: None, path: PathBuf::from("/srv/media") };
        let dir = Target::Directory { bucket: Some("demo".to_owned()), path: PathBuf::from("/srv/media/demo") };
        let table: [(Target, ErrorKind, &str, &str); 5] = [
            (root.clone(), ErrorKind::NotFound, "not_found", "root directory /srv/media does not exist"),
            (dir.clone(), ErrorKind::NotFound, "not_found", "directory /srv/media/demo of bucket demo does not exist"),
            (dir.clone(), ErrorKind::NotADirectory, "not_a_directory", "/srv/media/demo is not a directory"),
            (root, ErrorKind::PermissionDenied, "permission_denied", "read and execute (r-x) permission"),
            (dir, ErrorKind::Other, "io_error", "cannot list /srv/media/demo: boom"),
        ];
        for (target, kind, code, fragment) in table {
            let (got, message) = describe(&local, &Problem::Local { target, kind, detail: "boom".to_owned() });
            assert_eq!(got, code, "{message}");
            assert!(message.contains(fragment), "{message:?} lacks {fragment:?}");
            assert!(message.starts_with("integration \"disk\": "), "{message}");
        }
    }
}
