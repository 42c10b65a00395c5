//! Reloads: `SIGHUP`, and a change of the file's content (polled, which
//! also sees a Kubernetes ConfigMap or Secret update: the kubelet swaps a
//! symbolic link, which inotify on the file itself would miss).

use std::time::Duration;

use super::live::{Live, Reloaded};

/// Why a reload ran, for its log line.
#[derive(Debug, Clone, Copy)]
pub enum Trigger {
    Signal,
    FileChanged,
}

/// Reloads `live` on `SIGHUP` and, when `poll` is not zero, whenever the
/// file's content changes; the future runs until the process ends.
/// `on_reload` hears each outcome (`"ok"` or `"error"`), for the metrics.
/// With `test`, new and changed integrations get a connection test (their
/// status in the admin API).
///
/// The `SIGHUP` handler is installed by this call, not when the future is
/// first polled: call it before the `listening` line is printed, since a
/// `SIGHUP` that comes before the handler ends the process.
pub fn watch(
    live: Live,
    poll: Duration,
    test: bool,
    on_reload: impl Fn(&str) + Send + 'static,
) -> impl std::future::Future<Output = ()> + Send {
    let hup = match tokio::signal::unix::signal(tokio::signal::unix::SignalKind::hangup()) {
        Ok(s) => Some(s),
        Err(e) => {
            tracing::warn!(error = %e, "cannot listen for SIGHUP; reloads come from file changes only");
            None
        }
    };
    run(live, poll, test, hup, on_reload)
}

async fn run(
    live: Live,
    poll: Duration,
    test: bool,
    mut hup: Option<tokio::signal::unix::Signal>,
    on_reload: impl Fn(&str) + Send + 'static,
) {
    let mut tick = (!poll.is_zero()).then(|| tokio::time::interval(poll));
    loop {
        let trigger = tokio::select! {
            Some(()) = async { hup.as_mut()?.recv().await } => Trigger::Signal,
            Some(_) = async { Some(tick.as_mut()?.tick().await) } => Trigger::FileChanged,
            else => return,
        };
        match live.reload().await {
            Ok(Reloaded::Unchanged) => {
                if matches!(trigger, Trigger::Signal) {
                    tracing::info!("SIGHUP: the config file is unchanged");
                }
            }
            Ok(Reloaded::Applied) => {
                on_reload("ok");
                tracing::info!(trigger = ?trigger, integrations = live.list().len(), "config reloaded; changes to sections other than [[integration]] apply at the next restart");
                if test {
                    let live = live.clone();
                    tokio::spawn(async move { live.test_untested().await });
                }
            }
            Err(problems) => {
                on_reload("error");
                tracing::error!(trigger = ?trigger, problems = problems.len(), "the config file has problems; the running config is kept");
                for p in &problems {
                    tracing::error!("  {p}");
                }
            }
        }
    }
}
