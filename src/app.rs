//! What each command of the binary does; `main.rs` only parses the command line.

use std::path::Path;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use crate::admin::{self, Admin};
use crate::auth::Auth;
use crate::config::{self, AdminConfig, AuthMode, Config};
use crate::control::live::{Env, Live};
use crate::control::{follow, reload};
use crate::http::cors::Cors;
use crate::integration::Registry;
use crate::integration::registry::SharedRegistry;
use crate::locator::Locator;
use crate::logging::AccessLog;
use crate::metrics::Metrics;
use crate::proxy::Proxy;
use crate::server;

/// Exit code for a configuration that does not load.
const EXIT_CONFIG: u8 = 2;

/// `mediagate serve`: load, build, listen (media, and admin when
/// configured), reload on SIGHUP and file changes, drain on SIGTERM / SIGINT.
///
/// Access lines go to `access` ([`crate::logging::LogGuard::access_log`]).
pub async fn serve(path: &Path, access: AccessLog) -> ExitCode {
    let shutdown = shutdown_signal();
    let metrics = Metrics::new();
    let Some((config, registry)) = load(path, &metrics) else { return ExitCode::from(EXIT_CONFIG) };
    warn_about_exposure(&config);
    let tls = match media_tls(&config) {
        Ok(tls) => tls,
        Err(problem) => {
            report(&[problem]);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let cache = config.cache.enabled.then(|| crate::cache::Cache::new(&config.cache));
    let env: Env = Arc::new(|name: &str| std::env::var(name).ok());
    let (live, registry) = match &config.store {
        None => {
            let registry: SharedRegistry = Arc::new(arc_swap::ArcSwap::from_pointee(registry));
            (Live::new(&config, registry.clone(), cache.clone(), metrics.clone(), env), registry)
        }
        // Integrations come from the shared store (CONTRACT.md section 9).
        Some(store) => match follow::start(&config, store, cache.clone(), metrics.clone(), env).await {
            Ok(live) => (live.clone(), live.registry().clone()),
            Err(problem) => {
                report(&[problem]);
                return ExitCode::from(EXIT_CONFIG);
            }
        },
    };
    // SIGHUP is caught from here on (its default action would end the process).
    let reloads = metrics.clone();
    // With the store, the file's integrations are not read again: nothing to poll.
    let poll = if config.store.is_some() { Duration::ZERO } else { config.server.config_poll_interval };
    let watcher = reload::watch(live.clone(), poll, config.admin.is_some(), move |o| reloads.config_reload(o));
    if let Some(admin) = &config.admin
        && let Err(code) = start_admin(admin, live.clone(), metrics.clone()).await
    {
        return code;
    }
    // The media listener last: its `listening` line tells scripts everything is up, so
    // /readyz says ready before it is printed (a failed bind ends the process anyway).
    live.set_ready();
    let listener = match server::bind(&config.server).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %config.server.listen, error = %e, "cannot listen");
            return ExitCode::FAILURE;
        }
    };
    tokio::spawn(watcher);
    // Statuses are for the admin API: without it, no storage request is made at start.
    if config.admin.is_some() {
        tokio::spawn(async move { live.test_untested().await });
    }
    tracing::info!(integrations = registry.load().configs().len(), config = %path.display(), "mediagate started");
    let proxy = Proxy::new(registry)
        .with_auth(Auth::from_config(&config.auth))
        .with_cors(Cors::from_config(&config.cors))
        .with_cache(cache)
        .with_metrics(metrics)
        .with_access_log(access);
    server::serve(listener, proxy, &config.server, tls, shutdown).await;
    ExitCode::SUCCESS
}

fn warn_about_exposure(config: &Config) {
    if config.auth.mode == AuthMode::None && !config.server.listen.ip().is_loopback() {
        tracing::warn!(
            listen = %config.server.listen,
            "auth mode is none and the listener is reachable beyond loopback: anyone who can reach it can read the configured buckets"
        );
    }
    for cfg in &config.integrations {
        for p in cfg.missing() {
            tracing::warn!(integration = %cfg.name, key = %p.key, "integration is incomplete and serves nothing: {}", p.message);
        }
    }
}

/// The media listener's TLS config, watched for certificate changes.
fn media_tls(config: &Config) -> Result<Option<Arc<rustls::ServerConfig>>, String> {
    let Some(files) = &config.server.tls else { return Ok(None) };
    let store = crate::tls::CertStore::load(files).map_err(|e| format!("{}: [server] {e}", config.source.display()))?;
    let cfg =
        crate::tls::server_config(store.clone()).map_err(|e| format!("{}: [server] {e}", config.source.display()))?;
    tokio::spawn(crate::tls::watch(store));
    Ok(Some(cfg))
}

/// Binds and serves the admin listener (CONTRACT.md section 6).
async fn start_admin(cfg: &AdminConfig, live: Live, metrics: Metrics) -> Result<(), ExitCode> {
    let listener = match admin::bind(cfg).await {
        Ok(l) => l,
        Err(e) => {
            tracing::error!(listen = %cfg.listen, error = %e, "cannot listen for the admin API");
            return Err(ExitCode::FAILURE);
        }
    };
    if cfg.token.is_none() {
        tracing::warn!(listen = %cfg.listen, "the admin API has no token: any local process can change integrations; set [admin] token");
    }
    match listener.local_addr() {
        Ok(addr) => println!("mediagate admin API listening on http://{addr}"),
        Err(e) => tracing::warn!(error = %e, "the admin listener has no local address"),
    }
    tokio::spawn(admin::serve(listener, Admin::new(cfg, live, metrics), std::future::pending()));
    Ok(())
}

/// `mediagate check`: validate, then connection-test every integration;
/// one line per integration on standard output, non-zero exit on any failure.
pub async fn check(path: &Path) -> ExitCode {
    let Some((config, mut registry)) = load(path, &Metrics::disabled()) else { return ExitCode::from(EXIT_CONFIG) };
    // With [store], the integrations to check are the store's (docs/STORE.md).
    if let Some(store) = &config.store {
        match follow::check(&config, store).await {
            Ok((from_store, note)) => {
                println!("ok   store: {note}");
                registry = from_store;
            }
            Err(problem) => {
                report(&[problem]);
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    if let Some(files) = &config.server.tls {
        match crate::tls::CertStore::load(files) {
            Ok(_) => println!("ok   tls: {} and {} load and match", files.cert.display(), files.key.display()),
            Err(e) => {
                report(&[format!("{}: [server] {e}", path.display())]);
                return ExitCode::from(EXIT_CONFIG);
            }
        }
    }
    let all = registry.all();
    let tests = all.iter().map(|i| async move { (i, i.test_connection(Duration::from_secs(20)).await) });
    let mut failed = false;
    for (integration, test) in futures_util::future::join_all(tests).await {
        failed |= !test.ok;
        let verdict = if test.ok { "ok  " } else { "FAIL" };
        // One line per integration, the credential source (never the credentials) last.
        let credentials = integration.credential_status().map_or_else(String::new, |(source, expires)| {
            let until =
                expires.map(|t| format!(" until {}", crate::integration::probe::rfc3339(t))).unwrap_or_default();
            format!(" [credentials: {source}{until}]")
        });
        let (name, kind) = (&integration.name, integration.kind_name());
        println!("{verdict} {name} ({kind}): {}: {}{credentials}", test.code, test.message);
    }
    for cfg in registry.configs().iter().filter(|c| !c.missing().is_empty()) {
        failed = true;
        let lacks: Vec<String> = cfg.missing().iter().map(|p| format!("{}: {}", p.key, p.message)).collect();
        println!("FAIL {} ({}): incomplete: {}", cfg.name, cfg.type_name, lacks.join("; "));
    }
    if failed { ExitCode::FAILURE } else { ExitCode::SUCCESS }
}

/// `mediagate sign`: prints a signed URL for `locator` (a locator string,
/// or a path-form path such as `/local/demo/clip.mp4`) valid for `ttl`, on
/// `[server] public_base_url`.
pub fn sign(path: &Path, locator: &str, ttl: &str, kid: Option<&str>, query_form: bool) -> ExitCode {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            report(&errors.problems);
            return ExitCode::from(EXIT_CONFIG);
        }
    };
    let ttl = match config::parse_duration(ttl) {
        Ok(d) if !d.is_zero() => d,
        Ok(_) => return usage("--ttl must be more than zero"),
        Err(e) => return usage(&format!("--ttl: {e}")),
    };
    let parsed = if locator.starts_with('/') { Locator::from_path(locator) } else { Locator::parse(locator) };
    let loc = match parsed {
        Ok(loc) => loc,
        Err(e) => return usage(&format!("{locator:?}: {}", e.message)),
    };
    if config.auth.mode == AuthMode::None {
        eprintln!(
            "mediagate sign: note: {} has [auth] mode = \"none\", so mediagate does not check signatures",
            path.display()
        );
    }
    let auth = Auth::signed_url(config.auth.keys.clone(), config.auth.clock_skew, config.auth.max_ttl);
    let signed = match auth.sign_url(&loc, ttl, kid, std::time::SystemTime::now(), query_form) {
        Ok(s) => s,
        Err(e) => return usage(&e),
    };
    let base = match &config.server.public_base_url {
        Some(base) => base.clone(),
        None => {
            let scheme = if config.server.tls.is_some() { "https" } else { "http" };
            let base = format!("{scheme}://{}", config.server.listen);
            eprintln!("mediagate sign: note: [server] public_base_url is not set; using {base}");
            base
        }
    };
    println!("{base}{signed}");
    ExitCode::SUCCESS
}

fn usage(message: &str) -> ExitCode {
    eprintln!("mediagate sign: {message}");
    ExitCode::from(EXIT_CONFIG)
}

/// `mediagate healthcheck`: GET the URL (the media listener's `/healthz`),
/// exit 0 on a 200; for container health checks, where no curl is at hand.
pub async fn healthcheck(url: &str) -> ExitCode {
    let client = hyper_util::client::legacy::Client::builder(hyper_util::rt::TokioExecutor::new())
        .build_http::<http_body_util::Empty<bytes::Bytes>>();
    let Ok(uri) = url.parse::<http::Uri>() else {
        eprintln!("mediagate healthcheck: {url:?} is not a URL");
        return ExitCode::FAILURE;
    };
    match tokio::time::timeout(Duration::from_secs(3), client.get(uri)).await {
        Ok(Ok(resp)) if resp.status().is_success() => ExitCode::SUCCESS,
        Ok(Ok(resp)) => {
            eprintln!("mediagate healthcheck: {url} answered {}", resp.status());
            ExitCode::FAILURE
        }
        Ok(Err(e)) => {
            eprintln!("mediagate healthcheck: {url}: {e}");
            ExitCode::FAILURE
        }
        Err(_) => {
            eprintln!("mediagate healthcheck: {url} did not answer within 3s");
            ExitCode::FAILURE
        }
    }
}

/// Loads the config and builds the integrations, printing every problem.
fn load(path: &Path, metrics: &Metrics) -> Option<(Config, Registry)> {
    let config = match config::load(path) {
        Ok(c) => c,
        Err(errors) => {
            report(&errors.problems);
            return None;
        }
    };
    match Registry::rebuild(None, &config.integrations, &config.upstream, &config.source, metrics) {
        Ok(registry) => Some((config, registry)),
        Err(errors) => {
            report(&errors.problems);
            None
        }
    }
}

fn report(problems: &[String]) {
    eprintln!("mediagate: the configuration has {} problem(s):", problems.len());
    for p in problems {
        eprintln!("  {p}");
    }
}

/// Resolves on SIGTERM or SIGINT. Both handlers are installed when this is
/// called, not when the future is first polled: a SIGTERM that arrives in
/// between would otherwise take its default action and end the process in
/// the middle of a response instead of draining it.
fn shutdown_signal() -> impl std::future::Future<Output = ()> {
    use tokio::signal::unix::{SignalKind, signal};
    let term = signal(SignalKind::terminate());
    let int = signal(SignalKind::interrupt());
    async move {
        let wait = |s: std::io::Result<tokio::signal::unix::Signal>| async move {
            match s {
                Ok(mut s) => {
                    s.recv().await;
                }
                Err(_) => std::future::pending::<()>().await,
            }
        };
        tokio::select! {
            () = wait(int) => tracing::info!("SIGINT received"),
            () = wait(term) => tracing::info!("SIGTERM received"),
        }
    }
}
