//! What an integration claims (CONTRACT.md section 2): the one home of the
//! scope rules, used by the config reader (overlaps are refused), the admin
//! API (`409 conflict`) and the [`Registry`](super::Registry) (which
//! integration serves a locator).

use std::fmt;

use crate::locator::{Locator, Scheme};
use crate::schema::{Ctx, Section};

/// A scheme, the Azure account, and a bucket or container (`None`: every
/// bucket of the scheme, or of the Azure account: "applies to all buckets by default").
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct Scope {
    pub scheme: Scheme,
    pub account: Option<String>,
    pub bucket: Option<String>,
}

impl Scope {
    /// The scopes of `buckets` of `scheme`; none listed: the scheme's default.
    pub fn buckets(scheme: Scheme, buckets: &[String]) -> Vec<Scope> {
        if buckets.is_empty() {
            return vec![Scope { scheme, account: None, bucket: None }];
        }
        buckets.iter().map(|b| Scope { scheme, account: None, bucket: Some(b.clone()) }).collect()
    }

    /// The exact scope of a locator's bucket (rule 1).
    pub fn of(loc: &Locator) -> Scope {
        Scope { scheme: loc.scheme, account: loc.account.clone(), bucket: Some(loc.bucket.clone()) }
    }

    /// The default scope for a locator's scheme (and Azure account) (rule 2).
    pub fn default_for(loc: &Locator) -> Scope {
        Scope { scheme: loc.scheme, account: loc.account.clone(), bucket: None }
    }

    /// What to say when `second` claims this scope, which `first` holds.
    pub fn overlap_message(&self, first: &str, second: &str) -> String {
        let both = format!("{first} and {second}");
        match (self.scheme, &self.account, &self.bucket) {
            (Scheme::Az, Some(account), Some(container)) => {
                format!("{both} both serve Azure account {account:?}, container {container:?}")
            }
            (Scheme::Az, Some(account), None) => {
                format!("{both} both serve the whole Azure account {account:?}; name a container in storage_url")
            }
            (scheme, _, Some(bucket)) => format!("{both} both scope bucket {bucket:?} of {scheme}:// locators"),
            (scheme, _, None) => format!(
                "{both} are both the default for {scheme}:// locators (neither lists buckets); give one of them `buckets`"
            ),
        }
    }
}

impl fmt::Display for Scope {
    /// `s3://media`, `az://acct/media`, `s3://*`.
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        let bucket = self.bucket.as_deref().unwrap_or("*");
        match &self.account {
            Some(account) => write!(f, "{}://{account}/{bucket}", self.scheme),
            None => write!(f, "{}://{bucket}", self.scheme),
        }
    }
}

/// What a provider's reader returns: the config when complete, and the
/// scopes it claims in any case (an unfinished integration keeps its scope,
/// so its buckets never fall through to a default with other credentials).
pub struct Read<T> {
    pub config: Option<T>,
    pub scopes: Vec<Scope>,
}

/// A bucket (or local sub-directory) in `buckets`: the locator's bucket
/// name rule ([`crate::locator::check_bucket_name`]).
pub fn check_bucket(name: &str) -> Result<(), String> {
    crate::locator::check_bucket_name(name).map_err(|why| format!("expected a bucket name of {why}, got {name:?}"))
}

/// `buckets`: the list (empty when the key is absent: the default scope);
/// `None` when written empty, which is reported as missing (an unfinished
/// integration that will name its buckets later serves nothing meanwhile).
pub fn read_buckets(cx: &mut Ctx<'_>, t: &mut Section<'_, '_>) -> Option<Vec<String>> {
    if t.is_empty_array("buckets") {
        let span = t.entry("buckets").map(|v| v.span());
        let msg = "is empty: list the buckets this integration serves, or leave `buckets` out to serve every bucket by default";
        cx.missing(span, &t.path, "buckets", msg);
        return None;
    }
    Some(t.list(cx, "buckets", check_bucket).unwrap_or_default())
}
