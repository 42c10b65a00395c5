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
use std::path::Path;
use std::sync::Arc;

use http::HeaderValue;

use crate::error::{Error, Kind, Result};
use crate::integration::azure::AzureBackend;
use crate::integration::config::{IntegrationConfig, IntegrationKind};
use crate::integration::local::LocalBackend;
use crate::integration::s3::S3Backend;
use crate::integration::scope::Scope;
use crate::integration::upstream::UpstreamConfig;
use crate::integration::{Backend, Integration};
use crate::locator::{Locator, Scheme};
use crate::metrics::Metrics;
use crate::schema::ConfigErrors;

/// The registry every request reads and the admin API replaces as a whole
/// (an atomic swap: requests in flight keep the registry they started with).
pub type SharedRegistry = Arc<arc_swap::ArcSwap<Registry>>;

/// An integration of the registry: ready to serve, or saved unfinished.
enum Entry {
    Ready(Arc<Integration>),
    /// Owns its scope and serves nothing; its config says what it lacks.
    Incomplete,
}

/// All integrations, indexed by scope.
pub struct Registry {
    entries: Vec<Entry>,
    /// The configs the entries were built from, in the same order.
    configs: Vec<IntegrationConfig>,
    /// foldhash, randomly seeded: every request looks its scope up.
    scopes: HashMap<Scope, usize, foldhash::quality::RandomState>,
    /// The number of the next integration built: a replaced integration
    /// never shares cache entries with the one it replaces ([`Integration::cache_id`]).
    next_build: u64,
}

impl Registry {
    /// Builds every integration, reporting every failure at once.
    pub fn build(
        configs: &[IntegrationConfig],
        upstream: &UpstreamConfig,
        source: &Path,
    ) -> Result<Registry, ConfigErrors> {
        Registry::rebuild(None, configs, upstream, source, &Metrics::disabled())
    }

    /// As [`Registry::build`], reusing the integrations of `previous` whose
    /// table is unchanged (their connection pools and cached objects stay).
    pub fn rebuild(
        previous: Option<&Registry>,
        configs: &[IntegrationConfig],
        upstream: &UpstreamConfig,
        source: &Path,
        metrics: &Metrics,
    ) -> Result<Registry, ConfigErrors> {
        let next_build = previous.map_or(0, |p| p.next_build);
        let mut registry =
            Registry { entries: Vec::new(), configs: Vec::new(), scopes: HashMap::default(), next_build };
        let mut problems = Vec::new();
        for cfg in configs {
            if let Some(kept) = previous.and_then(|p| p.unchanged(cfg)) {
                registry.add(cfg, Entry::Ready(kept));
                continue;
            }
            registry.next_build += 1;
            match build_entry(cfg, upstream, metrics, registry.next_build) {
                Ok(entry) => registry.add(cfg, entry),
                Err(e) => problems.push(format!("{}: integration \"{}\": {e}", source.display(), cfg.name)),
            }
        }
        if problems.is_empty() { Ok(registry) } else { Err(ConfigErrors::messages(problems)) }
    }

    /// The ready integration built from exactly `cfg`'s table, if any.
    fn unchanged(&self, cfg: &IntegrationConfig) -> Option<Arc<Integration>> {
        let i = self.configs.iter().position(|c| c.name == cfg.name && c.raw == cfg.raw)?;
        match &self.entries[i] {
            Entry::Ready(integration) => Some(integration.clone()),
            Entry::Incomplete => None,
        }
    }

    fn add(&mut self, cfg: &IntegrationConfig, entry: Entry) {
        let index = self.entries.len();
        self.entries.push(entry);
        self.configs.push(cfg.clone());
        for scope in &cfg.scopes {
            self.scopes.insert(scope.clone(), index);
        }
    }

    /// The integration that serves `loc`, by the rules in the module doc.
    pub fn resolve(&self, loc: &Locator) -> Result<&Arc<Integration>> {
        let index = self.scopes.get(&Scope::of(loc)).or_else(|| self.scopes.get(&Scope::default_for(loc)));
        match index.map(|&i| (&self.entries[i], &self.configs[i])) {
            Some((Entry::Ready(integration), _)) => Ok(integration),
            Some((Entry::Incomplete, cfg)) => Err(incomplete(cfg, loc)),
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

    /// Every integration ready to serve.
    pub fn all(&self) -> Vec<Arc<Integration>> {
        self.entries
            .iter()
            .filter_map(|e| match e {
                Entry::Ready(i) => Some(i.clone()),
                Entry::Incomplete => None,
            })
            .collect()
    }

    /// The configs of every integration, ready or incomplete, in file order.
    pub fn configs(&self) -> &[IntegrationConfig] {
        &self.configs
    }

    /// The ready integration named `name`.
    pub fn get(&self, name: &str) -> Option<Arc<Integration>> {
        self.entries.iter().find_map(|e| match e {
            Entry::Ready(i) if i.name == name => Some(i.clone()),
            _ => None,
        })
    }
}

/// `404 no_integration` for a locator in the scope of incomplete `cfg`, naming what it lacks.
fn incomplete(cfg: &IntegrationConfig, loc: &Locator) -> Error {
    let keys: Vec<String> = cfg.missing().iter().map(|p| format!("{}: {}", p.key, p.message)).collect();
    Error::new(
        Kind::NoIntegration,
        format!(
            "integration \"{}\" serves {} but is incomplete: it lacks {}; finish it in the config file or the admin API",
            cfg.name,
            describe_scope(loc),
            keys.join("; ")
        ),
    )
}

fn describe_scope(loc: &Locator) -> String {
    match &loc.account {
        Some(account) => format!("az://{account}/{}", loc.bucket),
        None => format!("{}://{}", loc.scheme, loc.bucket),
    }
}

fn build_entry(
    cfg: &IntegrationConfig,
    upstream: &UpstreamConfig,
    metrics: &Metrics,
    build: u64,
) -> Result<Entry, String> {
    let backend = match &cfg.kind {
        IntegrationKind::S3(s3) => Backend::S3(S3Backend::new(&cfg.name, s3, upstream)?.with_metrics(metrics)),
        IntegrationKind::Azure(az) => Backend::Azure(AzureBackend::new(&cfg.name, az, upstream)?.with_metrics(metrics)),
        IntegrationKind::Local(local) => Backend::Local(LocalBackend::new(&cfg.name, local)?),
        IntegrationKind::Incomplete(_) => return Ok(Entry::Incomplete),
    };
    let cache_control =
        HeaderValue::from_str(&cfg.cache_control).map_err(|_| "cache_control is not a valid header value")?;
    let cache_id = Arc::from(format!("{}#{build}", cfg.name));
    Ok(Entry::Ready(Arc::new(Integration { name: cfg.name.clone(), cache_id, cache_control, backend })))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn registry(integrations: &str) -> Registry {
        let text = format!("[server]\nlisten = \"127.0.0.1:0\"\n{integrations}");
        let config = crate::config::parse(&text, Path::new("test.toml"), &|_| None).expect("config parses");
        Registry::build(&config.integrations, &config.upstream, &config.source)
            .unwrap_or_else(|e| panic!("registry builds: {e}"))
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
        let err = Registry::build(&config.integrations, &config.upstream, &config.source).err().expect("must fail");
        assert!(err.problems[0].contains("integration \"disk\""), "{err}");
        assert!(err.problems[0].contains("/nonexistent/mediagate-root"), "{err}");
    }
}
