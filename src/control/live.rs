//! The live configuration: the registry every request reads, changed as a
//! whole by the admin API and by reloads (CONTRACT.md section 6).
//!
//! Every change runs under one lock, in this order: validate, write the file
//! ([`persist`](super::persist), atomic), build the new registry (reusing the
//! integrations whose table did not change), swap it in, drop the cached
//! objects of every integration that was replaced or deleted. A request in
//! flight keeps the registry it started with; the next request sees the new
//! one. The file is always written before the swap, so a restart serves
//! exactly what the API last answered.
//!
//! With `[store]` the integrations are kept in the shared store instead of the file
//! ([`Keeper`]); the flow is the same, and every other replica applies the change when the
//! store announces it ([`super::follow`]).

use std::collections::HashMap;
use std::hash::{DefaultHasher, Hash, Hasher};
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::{Duration, SystemTime};

use serde_json::{Map, Value};

use super::keep::Keeper;
use super::persist::{self, ConfigFile, PersistError};
use crate::cache::Cache;
use crate::config::{self, ConfigErrors};
use crate::error::{Error, Kind, Result};
use crate::integration::config::{
    COMMON_KEYS, IntegrationConfig, IntegrationKind, SECRET_MARKER, check_name, conflict, type_def,
};
use crate::integration::probe::ConnectionTest;
use crate::integration::registry::{Registry, SharedRegistry};
use crate::integration::upstream::UpstreamConfig;
use crate::metrics::Metrics;
use crate::schema::Problem;
use crate::store::{Purge, Store};
use crate::sync::lock;

/// Resolves `${VAR}` (the process environment in production).
pub type Env = Arc<dyn Fn(&str) -> Option<String> + Send + Sync>;

/// How long a connection test may take.
pub const TEST_TIMEOUT: Duration = Duration::from_secs(10);

/// The live configuration; cheap to clone, shared by the admin listener and the reload watchers.
#[derive(Clone)]
pub struct Live {
    inner: Arc<Inner>,
}

struct Inner {
    /// Where the integrations are kept: the file or the shared store.
    kept: Keeper,
    registry: SharedRegistry,
    upstream: UpstreamConfig,
    cache: Option<Cache>,
    metrics: Metrics,
    env: Env,
    /// One change at a time, from validation to swap.
    ops: tokio::sync::Mutex<()>,
    /// The last connection test of each integration, by name.
    tests: Mutex<HashMap<String, ConnectionTest>>,
    status: Mutex<ConfigStatus>,
    /// Set once the media listener is up (`/readyz`).
    ready: std::sync::atomic::AtomicBool,
    /// Set once the integrations were loaded from where they are kept (at once for the file;
    /// with the store, at its first successful read).
    loaded: std::sync::atomic::AtomicBool,
}

/// What `/readyz` says about the config.
#[derive(Debug, Clone)]
pub struct ConfigStatus {
    pub loaded_at: SystemTime,
    /// Why the last reload kept the running config, if it did.
    pub last_reload_error: Option<String>,
    /// A hash of the file text the running config came from (or last wrote).
    seen: u64,
}

/// The answer to a PUT (CONTRACT.md section 6).
#[derive(Debug)]
pub struct Saved {
    pub created: bool,
    pub listed: Listed,
}

/// One integration as the admin API lists it.
#[derive(Debug, Clone)]
pub struct Listed {
    /// The table as written, secrets masked.
    pub integration: Map<String, Value>,
    pub status: &'static str,
    pub test: Option<ConnectionTest>,
    /// What an incomplete integration lacks: `(key, message)`.
    pub problems: Vec<(String, String)>,
    /// The credential source in use and when its credentials expire (never the credentials).
    pub credentials: Option<(&'static str, Option<SystemTime>)>,
}

/// What a reload did.
#[derive(Debug, PartialEq, Eq)]
pub enum Reloaded {
    /// The file did not change since it was last loaded or written.
    Unchanged,
    Applied,
}

impl Live {
    /// The live configuration of `config`, whose integrations `registry` serves.
    pub fn new(
        config: &config::Config,
        registry: SharedRegistry,
        cache: Option<Cache>,
        metrics: Metrics,
        env: Env,
    ) -> Live {
        let seen = std::fs::read_to_string(&config.source).map_or(0, |text| hash(&text));
        let kept = Keeper::File(ConfigFile::new(config.source.clone()));
        Live::build(config, kept, seen, registry, cache, metrics, env)
    }

    /// The live configuration of `config` with its integrations kept in `store`: `registry`
    /// starts empty and not ready, and is filled by the first read of the store
    /// ([`super::follow`]).
    pub fn with_store(
        config: &config::Config,
        store: Store,
        registry: SharedRegistry,
        cache: Option<Cache>,
        metrics: Metrics,
        env: Env,
    ) -> Live {
        // No text hashes to 0, so the first read always applies.
        let live = Live::build(config, Keeper::store(store), 0, registry, cache, metrics, env);
        live.inner.loaded.store(false, std::sync::atomic::Ordering::Release);
        live
    }

    fn build(
        config: &config::Config,
        kept: Keeper,
        seen: u64,
        registry: SharedRegistry,
        cache: Option<Cache>,
        metrics: Metrics,
        env: Env,
    ) -> Live {
        let status = ConfigStatus { loaded_at: SystemTime::now(), last_reload_error: None, seen };
        Live {
            inner: Arc::new(Inner {
                kept,
                registry,
                upstream: config.upstream.clone(),
                cache,
                metrics,
                env,
                ops: tokio::sync::Mutex::new(()),
                tests: Mutex::new(HashMap::new()),
                status: Mutex::new(status),
                ready: std::sync::atomic::AtomicBool::new(false),
                loaded: std::sync::atomic::AtomicBool::new(true),
            }),
        }
    }

    pub fn registry(&self) -> &SharedRegistry {
        &self.inner.registry
    }

    pub fn cache(&self) -> Option<&Cache> {
        self.inner.cache.as_ref()
    }

    /// Marks the process ready: the config is loaded and the listeners are up.
    pub fn set_ready(&self) {
        self.inner.ready.store(true, std::sync::atomic::Ordering::Release);
    }

    /// Ready: the listeners are up and the integrations were loaded.
    pub fn is_ready(&self) -> bool {
        self.inner.ready.load(std::sync::atomic::Ordering::Acquire) && self.is_loaded()
    }

    /// Whether the integrations were loaded from where they are kept.
    pub fn is_loaded(&self) -> bool {
        self.inner.loaded.load(std::sync::atomic::Ordering::Acquire)
    }

    /// The shared store, when integrations are kept there.
    pub fn store(&self) -> Option<&Store> {
        match &self.inner.kept {
            Keeper::Store(store, _) => Some(store),
            Keeper::File(_) => None,
        }
    }

    /// Purges the cache here and, with a shared store, on every replica (CONTRACT.md
    /// section 9); returns the entries dropped here. When the store cannot be told, the purge
    /// is done here only and the answer is `503 store_unavailable` saying so.
    pub async fn purge(&self, purge: Purge) -> Result<usize> {
        let purged = self.purge_here(&purge);
        if let Some(store) = self.store() {
            store.purge(&purge).await.map_err(|e| {
                Error::new(e.kind, format!("{purged} cached entries were purged on this replica only: {}", e.message))
            })?;
        }
        Ok(purged)
    }

    /// Purges this replica's cache only (an announcement from another replica).
    pub fn purge_here(&self, purge: &Purge) -> usize {
        match (&self.inner.cache, purge) {
            (None, _) => 0,
            (Some(cache), Purge::Locator(locator)) => cache.purge_locator(locator),
            (Some(cache), Purge::Prefix(prefix)) => cache.purge_prefix(prefix),
        }
    }

    pub fn status(&self) -> ConfigStatus {
        lock(&self.inner.status).clone()
    }

    fn path(&self) -> &Path {
        self.inner.kept.label()
    }

    /// Every integration, in file order.
    pub fn list(&self) -> Vec<Listed> {
        let registry = self.inner.registry.load();
        registry.configs().iter().map(|c| self.listed(&registry, c)).collect()
    }

    /// One integration, or `404 not_found`.
    pub fn get(&self, name: &str) -> Result<Listed> {
        let registry = self.inner.registry.load();
        let cfg = registry.configs().iter().find(|c| c.name == name).ok_or_else(|| not_found(name))?;
        Ok(self.listed(&registry, cfg))
    }

    fn listed(&self, registry: &Registry, cfg: &IntegrationConfig) -> Listed {
        let test = lock(&self.inner.tests).get(&cfg.name).cloned();
        let status = match (&cfg.kind, &test) {
            (IntegrationKind::Incomplete(_), _) => "incomplete",
            (_, Some(t)) if t.ok => "ok",
            (_, Some(_)) => "failing",
            (_, None) => "untested",
        };
        let problems = cfg.missing().iter().map(|p| (p.key.clone(), p.message.clone())).collect();
        let credentials = registry.get(&cfg.name).and_then(|i| i.credential_status());
        Listed { integration: cfg.redacted(), status, test, problems, credentials }
    }

    /// Creates or replaces integration `name` with `body`, saves it, swaps
    /// it in, then tests it (unless incomplete).
    pub async fn put(&self, name: &str, body: Map<String, Value>) -> Result<Saved> {
        check_name(name)
            .map_err(|m| bad_config("the integration name in the URL is not valid", vec![key("name", m)]))?;
        let (live, owned) = (self.clone(), name.to_owned());
        let created = finish(tokio::spawn(async move { live.save(&owned, body).await })).await?;
        let test = self.test_if_complete(name).await;
        let mut listed = self.get(name)?;
        listed.test = test;
        Ok(Saved { created, listed })
    }

    /// Validates and saves one integration, swaps it in; `true` when created.
    async fn save(&self, name: &str, body: Map<String, Value>) -> Result<bool> {
        let _guard = self.inner.ops.lock().await;
        let current = self.inner.registry.load_full();
        let previous = current.configs().iter().find(|c| c.name == name);
        let fields = in_definition_order(keep_stored_secrets(body, previous)?);
        let candidate = self.validate(name, &fields)?;
        if let Some(msg) = conflict(&candidate, current.configs()) {
            let problem_key = if candidate.type_name == "azure-blob" { "storage_url" } else { "buckets" };
            return Err(Error::new(Kind::Conflict, format!("{msg}; nothing was saved"))
                .with_problems(vec![key(problem_key, msg)]));
        }
        // Built once, by the rebuild in `write`: a failure there saves nothing.
        let created = self.write(&current, |text| persist::upsert_integration(text, name, &fields)).await?;
        lock(&self.inner.tests).remove(name);
        Ok(created)
    }

    /// Removes integration `name` from the file and the registry.
    pub async fn delete(&self, name: &str) -> Result<()> {
        let (live, owned) = (self.clone(), name.to_owned());
        finish(tokio::spawn(async move { live.remove(&owned).await })).await
    }

    async fn remove(&self, name: &str) -> Result<()> {
        let _guard = self.inner.ops.lock().await;
        let current = self.inner.registry.load_full();
        if !current.configs().iter().any(|c| c.name == name) {
            return Err(not_found(name));
        }
        self.write(&current, |text| persist::remove_integration(text, name).map(|t| (t, false))).await?;
        lock(&self.inner.tests).remove(name);
        Ok(())
    }

    /// Tests integration `name` now and remembers the result.
    pub async fn test(&self, name: &str) -> Result<ConnectionTest> {
        let registry = self.inner.registry.load_full();
        let cfg = registry.configs().iter().find(|c| c.name == name).ok_or_else(|| not_found(name))?;
        let test = match registry.get(name) {
            Some(integration) => integration.test_connection(TEST_TIMEOUT).await,
            None => incomplete_test(cfg),
        };
        lock(&self.inner.tests).insert(name.to_owned(), test.clone());
        Ok(test)
    }

    async fn test_if_complete(&self, name: &str) -> Option<ConnectionTest> {
        let complete = self.inner.registry.load().get(name).is_some();
        if complete { self.test(name).await.ok() } else { None }
    }

    /// Tests every integration that has no result yet (at start and after a reload).
    pub async fn test_untested(&self) {
        let names: Vec<String> = {
            let tested = lock(&self.inner.tests);
            let registry = self.inner.registry.load();
            registry.all().iter().map(|i| i.name.clone()).filter(|n| !tested.contains_key(n)).collect()
        };
        // At once, not one after another: each may take up to TEST_TIMEOUT.
        futures_util::future::join_all(names.iter().map(|name| self.test(name))).await;
    }

    /// Re-reads the file (or the shared store); an invalid one keeps the running config and says why.
    pub async fn reload(&self) -> std::result::Result<Reloaded, Vec<String>> {
        let _guard = self.inner.ops.lock().await;
        let text = match self.inner.kept.read().await {
            Ok(text) => text,
            Err(e) if self.store().is_some() => {
                let mut status = lock(&self.inner.status);
                status.last_reload_error = Some(e.clone());
                // The next read that works applies (and clears the error), even if unchanged.
                status.seen = 0;
                return Err(vec![e]);
            }
            Err(e) => return Err(vec![e]),
        };
        if hash(&text) == lock(&self.inner.status).seen {
            return Ok(Reloaded::Unchanged);
        }
        let current = self.inner.registry.load_full();
        let built = config::parse(&text, self.path(), &*self.inner.env).and_then(|c| {
            Registry::rebuild(Some(&current), &c.integrations, &self.inner.upstream, self.path(), &self.inner.metrics)
        });
        let mut status = lock(&self.inner.status);
        status.seen = hash(&text);
        match built {
            Ok(registry) => {
                drop(status);
                self.swap(&current, registry, hash(&text));
                Ok(Reloaded::Applied)
            }
            Err(errors) => {
                status.last_reload_error = Some(errors.problems.join("; "));
                Err(errors.problems)
            }
        }
    }

    /// Validates one integration alone, as the file would read it.
    fn validate(&self, name: &str, fields: &Map<String, Value>) -> Result<IntegrationConfig> {
        let (doc, _) = persist::upsert_integration("", name, fields).map_err(persist_problem)?;
        let mut parsed = config::parse(&doc, Path::new("request body"), &*self.inner.env)
            .map_err(|e| bad_config("the integration has problems; nothing was saved", problems(e)))?;
        parsed.integrations.pop().ok_or_else(|| Error::internal("the validated body holds no integration"))
    }

    /// Edits the file with `edit`, checks the whole new file, writes it,
    /// swaps the registry in. Returns `edit`'s flag.
    async fn write(
        &self,
        current: &Arc<Registry>,
        edit: impl FnOnce(&str) -> std::result::Result<(String, bool), PersistError>,
    ) -> Result<bool> {
        let (upstream, path, env) = (&self.inner.upstream, self.path().to_path_buf(), &self.inner.env);
        let metrics = &self.inner.metrics;
        let in_store = self.store().is_some();
        let (flag, (registry, seen)) = self
            .inner
            .kept
            .update(
                |text| edit(text).map_err(persist_problem),
                |new_text| {
                    let config = config::parse(new_text, &path, &**env).map_err(|e| kept_problems(e, in_store))?;
                    let registry = Registry::rebuild(Some(current), &config.integrations, upstream, &path, metrics)
                        .map_err(|e| bad_config("the integration cannot be built; nothing was saved", messages(e)))?;
                    Ok((registry, hash(new_text)))
                },
            )
            .await?;
        self.swap(current, registry, seen);
        Ok(flag)
    }

    /// Swaps `next` in and drops the cached objects of every integration of
    /// `current` that `next` does not keep.
    fn swap(&self, current: &Arc<Registry>, next: Registry, seen: u64) {
        let kept: Vec<_> = next.all();
        self.inner.registry.store(Arc::new(next));
        self.inner.loaded.store(true, std::sync::atomic::Ordering::Release);
        {
            let mut status = lock(&self.inner.status);
            status.seen = seen;
            status.loaded_at = SystemTime::now();
            status.last_reload_error = None;
        }
        for old in current.all() {
            if kept.iter().any(|k| Arc::ptr_eq(k, &old)) {
                continue;
            }
            lock(&self.inner.tests).remove(&old.name);
            if let Some(cache) = &self.inner.cache {
                let dropped = cache.purge_integration(&old.cache_id);
                tracing::info!(integration = %old.name, objects = dropped, "cached objects of the replaced integration dropped");
            }
        }
    }
}

/// Awaits a change run in a task of its own: once it started, a change is
/// saved and swapped in even if the client that asked for it goes away.
async fn finish<T>(task: tokio::task::JoinHandle<Result<T>>) -> Result<T> {
    task.await.map_err(|e| Error::internal(format!("the change did not finish: {e}")))?
}

/// The body with every secret sent as the marker replaced by the stored
/// value (as written, `${VAR}` included), so a form can be saved without
/// retyping secrets. A marker with nothing stored is a `bad_config`.
fn keep_stored_secrets(
    mut body: Map<String, Value>,
    previous: Option<&IntegrationConfig>,
) -> Result<Map<String, Value>> {
    let type_name = body.get("type").and_then(Value::as_str).or(previous.map(|p| p.type_name)).unwrap_or_default();
    let Some(def) = type_def(type_name) else { return Ok(body) };
    let mut problems = Vec::new();
    for k in def.keys.iter().filter(|k| k.secret) {
        if body.get(k.name).and_then(Value::as_str) != Some(SECRET_MARKER) {
            continue;
        }
        match previous.and_then(|p| p.raw.get(k.name)) {
            Some(stored) => {
                body.insert(k.name.to_owned(), stored.clone());
            }
            None => problems.push(key(
                k.name,
                format!("{SECRET_MARKER} keeps the stored secret, but none is stored: enter the secret"),
            )),
        }
    }
    if problems.is_empty() { Ok(body) } else { Err(bad_config("a secret is missing; nothing was saved", problems)) }
}

/// The body's keys in the order a person reads them: `name`, `type`, the
/// type's keys as [`TYPES`](crate::integration::config::TYPES) lists them,
/// `cache_control`, then anything else (refused by validation).
fn in_definition_order(mut body: Map<String, Value>) -> Map<String, Value> {
    let type_name = body.get("type").and_then(Value::as_str).unwrap_or_default().to_owned();
    let keys = type_def(&type_name).map_or(&[][..], |t| t.keys);
    let order = ["name", "type"].into_iter().chain(keys.iter().chain(COMMON_KEYS).map(|k| k.name));
    let mut out = Map::new();
    for k in order {
        if let Some(v) = body.remove(k) {
            out.insert(k.to_owned(), v);
        }
    }
    out.extend(body);
    out
}

/// The answer of a test of an incomplete integration.
fn incomplete_test(cfg: &IntegrationConfig) -> ConnectionTest {
    let keys: Vec<&str> = cfg.missing().iter().map(|p| p.key.as_str()).collect();
    ConnectionTest {
        ok: false,
        code: "incomplete".to_owned(),
        message: format!(
            "integration \"{}\" is incomplete: it lacks {}; save it with the missing keys first",
            cfg.name,
            keys.join(", ")
        ),
        at: SystemTime::now(),
        duration: Duration::ZERO,
    }
}

fn key(key: &str, message: impl Into<String>) -> (String, String) {
    (key.to_owned(), message.into())
}

fn bad_config(message: &str, problems: Vec<(String, String)>) -> Error {
    Error::new(Kind::BadConfig, message).with_problems(problems)
}

fn not_found(name: &str) -> Error {
    Error::new(Kind::NotFound, format!("no integration is named {name:?}"))
}

/// Structured problems as `(key, message)`; messages only when unstructured.
fn problems(e: ConfigErrors) -> Vec<(String, String)> {
    if e.found.is_empty() {
        return messages(e);
    }
    e.found.into_iter().map(|Problem { key, message, .. }| (key, message)).collect()
}

fn messages(e: ConfigErrors) -> Vec<(String, String)> {
    e.problems.into_iter().map(|m| (String::new(), m)).collect()
}

fn persist_problem(e: PersistError) -> Error {
    let k = match &e {
        PersistError::NameMismatch { .. } => "name".to_owned(),
        PersistError::Null(k) | PersistError::OutOfRange(k) => k.clone(),
        _ => String::new(),
    };
    match e {
        PersistError::NotFound(name) => not_found(&name),
        // The file on disk, not the body, is in the way.
        PersistError::Parse(_) | PersistError::NotTables | PersistError::Duplicate(_) => {
            Error::new(Kind::Conflict, "the config file on disk has problems; fix them first, nothing was saved")
                .with_problems(vec![key("", e.to_string())])
        }
        other => bad_config("the integration cannot be saved; nothing was saved", vec![key(&k, other.to_string())]),
    }
}

/// The file on disk (or the shared store) has problems besides this change: nothing is saved.
fn kept_problems(e: ConfigErrors, in_store: bool) -> Error {
    let message = match in_store {
        true => {
            "the change does not fit the integrations in the shared store (another replica may have changed \
             them meanwhile); nothing was saved"
        }
        false => "the config file on disk has problems; fix them first, nothing was saved",
    };
    Error::new(Kind::Conflict, message).with_problems(messages(e))
}

fn hash(text: &str) -> u64 {
    let mut h = DefaultHasher::new();
    text.hash(&mut h);
    h.finish()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn object(json: &str) -> Map<String, Value> {
        serde_json::from_str(json).expect("a JSON object")
    }

    fn stored(json: &str) -> IntegrationConfig {
        let (text, _) = persist::upsert_integration("", "s", &object(json)).expect("toml");
        let mut config = config::parse(&text, Path::new("t.toml"), &|_| Some("x".into())).expect("config");
        config.integrations.remove(0)
    }

    #[test]
    fn the_marker_keeps_the_stored_secret_as_written_and_a_new_value_replaces_it() {
        let previous =
            stored(r#"{"type": "s3", "access_key_id": "a", "secret_access_key": "${S}", "session_token": "t1"}"#);
        let body =
            object(r#"{"type": "s3", "access_key_id": "a", "secret_access_key": "********", "session_token": "t2"}"#);
        let kept = keep_stored_secrets(body, Some(&previous)).expect("kept");
        assert_eq!(kept["secret_access_key"], "${S}");
        assert_eq!(kept["session_token"], "t2");
    }

    #[test]
    fn the_marker_without_a_stored_secret_is_bad_config_naming_the_key() {
        let body = object(r#"{"type": "s3", "secret_access_key": "********"}"#);
        let err = keep_stored_secrets(body, None).expect_err("nothing stored");
        assert_eq!(err.kind, Kind::BadConfig);
        assert_eq!(err.problems[0].0, "secret_access_key");
    }

    #[test]
    fn a_body_is_saved_in_the_order_of_the_type_definition() {
        let body = object(
            r#"{"zzz": 1, "buckets": ["b"], "cache_control": "no-store", "endpoint": "e", "type": "s3", "name": "s"}"#,
        );
        let keys: Vec<String> = in_definition_order(body).keys().cloned().collect();
        assert_eq!(keys, ["name", "type", "endpoint", "buckets", "cache_control", "zzz"]);
    }
}
