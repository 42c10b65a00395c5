//! Which integration serves a locator (CONTRACT.md section 2):
//!
//! 1. the one whose scope names that bucket (Azure: that account and container);
//! 2. else the one integration of that locator scheme with no scope
//!    ("applies to all buckets by default"; Azure: an integration naming the
//!    account without a container);
//! 3. else `404 no_integration`.
//!
//! An integration therefore never signs a request for a bucket outside its
//! scope. Overlapping scopes are refused when the configuration is parsed.

use std::collections::HashMap;
use std::sync::Arc;

use http::HeaderValue;

use crate::config::{Config, ConfigErrors, IntegrationConfig, IntegrationKind};
use crate::error::{Error, Kind, Result};
use crate::integration::azure::AzureBackend;
use crate::integration::local::LocalBackend;
use crate::integration::s3::S3Backend;
use crate::integration::{Backend, Integration};
use crate::locator::{Locator, Scheme};
use crate::metrics::Metrics;

/// The scheme, account (Azure only) and bucket an integration is scoped to.
type ScopeKey = (Scheme, Option<String>, String);
/// The scheme and account (Azure only) of a default integration.
type DefaultKey = (Scheme, Option<String>);

/// All integrations, indexed by scope.
pub struct Registry {
    integrations: Vec<Arc<Integration>>,
    scoped: HashMap<ScopeKey, usize>,
    defaults: HashMap<DefaultKey, usize>,
}

impl Registry {
    /// Builds every integration of `config`, reporting every failure at once.
    pub fn build(config: &Config) -> Result<Registry, ConfigErrors> {
        Self::build_with_metrics(config, &Metrics::disabled())
    }

    /// [`Self::build`], the storage clients recording into `metrics`.
    pub fn build_with_metrics(config: &Config, metrics: &Metrics) -> Result<Registry, ConfigErrors> {
        let mut registry = Registry { integrations: Vec::new(), scoped: HashMap::new(), defaults: HashMap::new() };
        let mut problems = Vec::new();
        for cfg in &config.integrations {
            match build_integration(cfg, config, metrics) {
                Ok(integration) => registry.add(cfg, integration),
                Err(e) => problems.push(format!("{}: integration \"{}\": {e}", config.source.display(), cfg.name)),
            }
        }
        if problems.is_empty() { Ok(registry) } else { Err(ConfigErrors { problems }) }
    }

    fn add(&mut self, cfg: &IntegrationConfig, integration: Integration) {
        let index = self.integrations.len();
        self.integrations.push(Arc::new(integration));
        let (scheme, account, buckets) = scope_of(cfg);
        if buckets.is_empty() {
            self.defaults.insert((scheme, account), index);
        } else {
            for bucket in buckets {
                self.scoped.insert((scheme, account.clone(), bucket), index);
            }
        }
    }

    /// The integration that serves `loc`, by the rules in the module doc.
    pub fn resolve(&self, loc: &Locator) -> Result<&Arc<Integration>> {
        let scoped = self.scoped.get(&(loc.scheme, loc.account.clone(), loc.bucket.clone()));
        let index = scoped.or_else(|| self.defaults.get(&(loc.scheme, loc.account.clone())));
        match index {
            Some(&i) => Ok(&self.integrations[i]),
            None => Err(Error::new(
                Kind::NoIntegration,
                format!(
                    "no integration serves {}: add the {} to an integration's buckets, or configure a default {} integration",
                    describe_scope(loc),
                    if loc.scheme == Scheme::Az { "container" } else { "bucket" },
                    loc.scheme
                ),
            )),
        }
    }

    pub fn all(&self) -> &[Arc<Integration>] {
        &self.integrations
    }
}

fn describe_scope(loc: &Locator) -> String {
    match &loc.account {
        Some(account) => format!("az://{account}/{}", loc.bucket),
        None => format!("{}://{}", loc.scheme, loc.bucket),
    }
}

/// The locator scheme, Azure account and scoped buckets of an integration.
fn scope_of(cfg: &IntegrationConfig) -> (Scheme, Option<String>, Vec<String>) {
    match &cfg.kind {
        IntegrationKind::S3(s3) => (s3.locator_scheme, None, s3.buckets.clone()),
        IntegrationKind::Local(local) => (Scheme::Local, None, local.buckets.clone()),
        IntegrationKind::Azure(az) => {
            (Scheme::Az, Some(az.storage_url.account.clone()), az.storage_url.container.iter().cloned().collect())
        }
    }
}

fn build_integration(cfg: &IntegrationConfig, config: &Config, metrics: &Metrics) -> Result<Integration, String> {
    let backend = match &cfg.kind {
        IntegrationKind::S3(s3) => Backend::S3(S3Backend::new(&cfg.name, s3, &config.upstream)?.with_metrics(metrics)),
        IntegrationKind::Azure(az) => {
            Backend::Azure(AzureBackend::new(&cfg.name, az, &config.upstream)?.with_metrics(metrics))
        }
        IntegrationKind::Local(local) => Backend::Local(LocalBackend::new(&cfg.name, local)?),
    };
    let cache_control =
        HeaderValue::from_str(&cfg.cache_control).map_err(|_| "cache_control is not a valid header value")?;
    Ok(Integration { name: cfg.name.clone(), cache_control, backend })
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::path::Path;

    fn registry(integrations: &str) -> Registry {
        let text = format!("[server]\nlisten = \"127.0.0.1:0\"\n{integrations}");
        let config = crate::config::parse(&text, Path::new("test.toml"), &|_| None).expect("config parses");
        Registry::build(&config).unwrap_or_else(|e| panic!("registry builds: {e}"))
    }

    fn s3(name: &str, scheme: &str, buckets: &str) -> String {
        format!(
            "[[integration]]\nname = \"{name}\"\ntype = \"s3\"\nendpoint = \"127.0.0.1\"\nport = 9\ntls = false\n\
             access_key_id = \"a\"\nsecret_access_key = \"s\"\nlocator_scheme = \"{scheme}\"\n{buckets}\n"
        )
    }

    fn served_by(r: &Registry, locator: &str) -> std::result::Result<String, Kind> {
        let loc = Locator::parse(locator).expect("locator parses");
        r.resolve(&loc).map(|i| i.name.clone()).map_err(|e| e.kind)
    }

    #[test]
    fn a_scoped_bucket_wins_over_the_default_and_others_fall_to_the_default() {
        let r = registry(
            &[
                s3("scoped", "s3", "buckets = [\"media\", \"thumbs\"]"),
                s3("default", "s3", ""),
                s3("gcs", "gs", "buckets = [\"media\"]"),
            ]
            .concat(),
        );
        let table = [
            ("s3://media/a.jpg", Ok("scoped")),
            ("s3://thumbs/a.jpg", Ok("scoped")),
            ("s3://anything/a.jpg", Ok("default")),
            ("gs://media/a.jpg", Ok("gcs")),
            ("gs://other/a.jpg", Err(Kind::NoIntegration)),
            ("local://media/a.jpg", Err(Kind::NoIntegration)),
            ("az://acct/media/a.jpg", Err(Kind::NoIntegration)),
        ];
        for (locator, want) in table {
            assert_eq!(served_by(&r, locator), want.map(str::to_owned), "{locator}");
        }
    }

    #[test]
    fn without_a_default_an_unscoped_bucket_has_no_integration() {
        let r = registry(&s3("only", "s3", "buckets = [\"media\"]"));
        assert_eq!(served_by(&r, "s3://other/k"), Err(Kind::NoIntegration));
        let loc = Locator::parse("s3://other/k").expect("parses");
        let msg = r.resolve(&loc).err().map(|e| e.message).unwrap_or_default();
        assert!(msg.contains("s3://other"), "{msg}");
    }

    #[test]
    fn a_local_root_that_does_not_exist_is_a_start_up_error_naming_the_integration() {
        let text = "[server]\nlisten = \"127.0.0.1:0\"\n[[integration]]\nname = \"disk\"\ntype = \"local\"\n\
                    root = \"/nonexistent/mediagate-root\"\n";
        let config = crate::config::parse(text, Path::new("test.toml"), &|_| None).expect("config parses");
        let err = Registry::build(&config).err().expect("must fail");
        assert!(err.problems[0].contains("integration \"disk\""), "{err}");
        assert!(err.problems[0].contains("/nonexistent/mediagate-root"), "{err}");
    }
}
