//! Headless Chromium for the browser tests (`tests/browser.rs`,
//! `tests/admin_page.rs`): finds the browser, playwright-core and node, and
//! runs a driver script under `tests/browser/` with a JSON job.
//!
//! `MEDIAGATE_TEST_CHROMIUM` is the browser, `MEDIAGATE_TEST_PLAYWRIGHT` the
//! playwright-core package directory; `scripts/test.sh` installs and sets
//! them. Missing: the test prints `skipped: ...` and returns, or fails under
//! `CI=true`.

use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// A tool the test needs: panics under `CI=true` when missing, else prints
/// `skipped: ...` and returns `None`.
pub fn need(value: Option<String>, what: &str) -> Option<String> {
    match value {
        Some(v) if !v.is_empty() => Some(v),
        _ if super::is_ci() => {
            panic!("{what} is missing: run the tests through scripts/test.sh (CI=true requires it)")
        }
        _ => {
            eprintln!("skipped: {what} is missing (run scripts/test.sh)");
            None
        }
    }
}

/// The path in `var`, if it is set and exists.
pub fn env_path(var: &str) -> Option<String> {
    std::env::var(var).ok().filter(|p| !p.is_empty() && Path::new(p).exists())
}

/// `tool` if `tool --version` runs.
pub fn on_path(tool: &str) -> Option<String> {
    let ok = Command::new(tool).arg("--version").stdout(Stdio::null()).stderr(Stdio::null()).status();
    ok.is_ok_and(|s| s.success()).then(|| tool.to_owned())
}

/// Chromium, playwright-core and node.
pub struct Browser {
    pub node: String,
    pub chromium: String,
    pub playwright: String,
}

/// The browser tools, or `None` (skipped) when one is missing.
pub fn browser() -> Option<Browser> {
    let chromium = need(env_path("MEDIAGATE_TEST_CHROMIUM"), "MEDIAGATE_TEST_CHROMIUM (headless chromium)")?;
    let playwright = need(env_path("MEDIAGATE_TEST_PLAYWRIGHT"), "MEDIAGATE_TEST_PLAYWRIGHT (playwright-core)")?;
    let node = need(on_path("node"), "node")?;
    Some(Browser { node, chromium, playwright })
}

/// The crate root.
pub fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
}

impl Browser {
    /// Runs `tests/browser/<script>` with `job` (its one argument) and returns
    /// the JSON line it prints; panics with its output when it fails or takes
    /// longer than `limit`.
    pub fn run(&self, script: &str, job: &Value, limit: Duration) -> Value {
        let started = Instant::now();
        let out = super::run_bounded(
            Command::new(&self.node)
                .arg(root().join("tests/browser").join(script))
                .arg(job.to_string())
                .env("MEDIAGATE_TEST_CHROMIUM", &self.chromium)
                .env("MEDIAGATE_TEST_PLAYWRIGHT", &self.playwright),
            limit,
        );
        let stdout = String::from_utf8_lossy(&out.stdout);
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(out.status.success(), "the browser job failed ({}):\n{stderr}\n{stdout}\njob: {job}", out.status);
        let report: Value = serde_json::from_str(stdout.trim())
            .unwrap_or_else(|e| panic!("{script} printed no JSON ({e}):\n{stdout}\n{stderr}"));
        eprintln!("browser job done in {:.1} s", started.elapsed().as_secs_f64());
        report
    }
}
