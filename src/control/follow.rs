//! Following the shared store (CONTRACT.md section 9): what another replica changed or
//! purged is applied here as a local change would be ([`Live::reload`] rebuilds the registry
//! and drops the cached objects of replaced integrations; [`Live::purge_here`] purges).

use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;

use super::live::{Env, Live, Reloaded};
use super::persist;
use crate::cache::Cache;
use crate::config::{Config, StoreConfig};
use crate::integration::Registry;
use crate::metrics::Metrics;
use crate::store::{self, Event, PURGE_RETENTION, Purge, Store};

/// Starts following the shared store of `config`: connects (in the background, reconnecting
/// as needed), copies the file's integrations into a new store, and waits a while for the
/// first load so that a replica that can reach its database starts serving at once. A
/// replica that cannot reach it starts anyway, not ready (`/readyz`), and loads when it can.
/// Fails when the store's integrations cannot be used here (a secret that does not decrypt
/// with this `encryption_key`, a `${VAR}` this replica lacks): nothing is written then.
pub async fn start(
    config: &Config,
    cfg: &StoreConfig,
    cache: Option<Cache>,
    metrics: Metrics,
    env: Env,
) -> Result<Live, String> {
    let text = std::fs::read_to_string(&config.source).map_err(|e| format!("{}: {e}", config.source.display()))?;
    let seed = persist::integration_tables(&text).map_err(|e| format!("{}: {e}", config.source.display()))?;
    let store = Store::new(cfg.clone(), seed, metrics.clone())?;
    let empty = Registry::build(&[], &config.upstream, &config.source).map_err(|e| e.problems.join("; "))?;
    let registry = Arc::new(arc_swap::ArcSwap::from_pointee(empty));
    let live = Live::with_store(config, store.clone(), registry, cache, metrics.clone(), env);
    let (tx, rx) = mpsc::unbounded_channel();
    tokio::spawn(store::listen(store.clone(), tx));
    let reloads = metrics.clone();
    tokio::spawn(follow(live.clone(), rx, config.admin.is_some(), move |o| reloads.config_reload(o)));
    // Connecting, creating the schema and reading take a few round trips.
    let deadline = tokio::time::Instant::now() + cfg.connect_timeout * 2 + Duration::from_secs(1);
    while tokio::time::Instant::now() < deadline {
        if live.is_loaded() {
            return Ok(live);
        }
        if let (true, Some(error)) = (store.is_connected(), live.status().last_reload_error) {
            return Err(error);
        }
        // The first attempt failed: start now, not ready, and keep trying in the background.
        if store.status().error.as_deref().is_some_and(|e| e != store::NOT_TRIED) {
            break;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    let why = store.status().error.unwrap_or_default();
    tracing::warn!(store = %store.location(), error = %why, "the shared store is not reachable yet: starting without integrations, not ready, until it is");
    Ok(live)
}

/// Applies the store's events to `live` until the listener ends. `on_reload` hears each
/// reload's outcome (`"ok"` or `"error"`) for the metrics; with `test`, new and changed
/// integrations get a connection test.
pub async fn follow(
    live: Live,
    mut events: mpsc::UnboundedReceiver<Event>,
    test: bool,
    on_reload: impl Fn(&str) + Send + 'static,
) {
    while let Some(event) = events.recv().await {
        match event {
            Event::Connected { away } => {
                reload(&live, test, &on_reload).await;
                if let Some(away) = away {
                    replay(&live, away).await;
                }
            }
            Event::Changed => reload(&live, test, &on_reload).await,
            Event::Purge(id) => {
                let Some(store) = live.store() else { continue };
                match store.purge_of(id).await {
                    Ok(Some(purge)) => {
                        let dropped = live.purge_here(&purge);
                        tracing::info!(?purge, objects = dropped, "purge from another replica applied");
                    }
                    Ok(None) => tracing::debug!(id, "an announced purge is gone from the store"),
                    Err(e) => tracing::warn!(error = %e.message, "an announced purge could not be read"),
                }
            }
        }
    }
}

/// For `mediagate check`: the registry of the integrations in the shared store of `config`
/// (the file's own when the store is new), built as a replica would build it; nothing is
/// written. The `Ok` line says where they came from.
pub async fn check(config: &Config, cfg: &StoreConfig) -> Result<(Registry, String), String> {
    let store = Store::new(cfg.clone(), Vec::new(), Metrics::disabled())?;
    let location = store.location();
    let tables = store.read_once().await.map_err(|e| format!("the shared store {location}: {e}"))?;
    let Some(tables) = tables else {
        let registry = Registry::build(&config.integrations, &config.upstream, &config.source)
            .map_err(|e| e.problems.join("; "))?;
        let note = format!("{location} is new: the file's integrations would be copied in");
        return Ok((registry, note));
    };
    let text = super::keep::text_of(&tables).map_err(|e| e.to_string())?;
    let label = std::path::PathBuf::from(format!("shared store {location}"));
    let env = |name: &str| std::env::var(name).ok();
    let parsed = crate::config::parse(&text, &label, &env).map_err(|e| e.problems.join("; "))?;
    let registry =
        Registry::build(&parsed.integrations, &config.upstream, &label).map_err(|e| e.problems.join("; "))?;
    Ok((registry, format!("{location}: {} integration(s), every secret decrypts", tables.len())))
}

async fn reload(live: &Live, test: bool, on_reload: &(impl Fn(&str) + Send)) {
    match live.reload().await {
        Ok(Reloaded::Unchanged) => {}
        Ok(Reloaded::Applied) => {
            on_reload("ok");
            tracing::info!(integrations = live.list().len(), "integrations loaded from the shared store");
            if test {
                let live = live.clone();
                tokio::spawn(async move { live.test_untested().await });
            }
        }
        Err(problems) => {
            on_reload("error");
            tracing::error!(
                problems = problems.len(),
                "the shared store's integrations could not be applied; the running ones are kept"
            );
            for p in &problems {
                tracing::error!("  {p}");
            }
        }
    }
}

/// The purges made while this replica was away (`NOTIFY` is not kept for absent listeners).
async fn replay(live: &Live, away: SystemTime) {
    let Some(store) = live.store() else { return };
    if away.elapsed().is_ok_and(|gone| gone >= PURGE_RETENTION) {
        let dropped = live.purge_here(&Purge::Prefix(String::new()));
        tracing::warn!(
            objects = dropped,
            "away from the shared store longer than purges are kept: the whole cache was dropped"
        );
        return;
    }
    match store.purges_since(away).await {
        Ok(purges) => {
            let dropped: usize = purges.iter().map(|p| live.purge_here(p)).sum();
            if !purges.is_empty() {
                tracing::info!(
                    purges = purges.len(),
                    objects = dropped,
                    "purges made while away from the shared store applied"
                );
            }
        }
        Err(e) => {
            // Not knowing what was purged, the safe choice is to drop everything.
            let dropped = live.purge_here(&Purge::Prefix(String::new()));
            tracing::warn!(error = %e.message, objects = dropped, "the purges made while away could not be read: the whole cache was dropped");
        }
    }
}
