//! The listening connection of one replica: `LISTEN`, forward announcements, ping, and
//! reconnect with exponential backoff and full jitter when the connection breaks.

use std::future::poll_fn;
use std::sync::Arc;
use std::time::{Duration, SystemTime};

use tokio::sync::mpsc;
use tokio_postgres::AsyncMessage;

use super::client::describe;
use super::{CHANNEL, Event, Store};

/// The first wait before reconnecting; doubled after each failure up to [`MAX_BACKOFF`].
const MIN_BACKOFF: Duration = Duration::from_millis(250);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

/// How often the connection is checked with a query (a silent network loss shows within this
/// plus [`PING_TIMEOUT`]; a database that shuts down closes the connection at once).
const PING_EVERY: Duration = Duration::from_secs(5);
const PING_TIMEOUT: Duration = Duration::from_secs(5);

/// Keeps `store` connected and listening until `events` is closed, sending what it hears.
pub async fn listen(store: Store, events: mpsc::UnboundedSender<Event>) {
    let mut backoff = MIN_BACKOFF;
    // When the connection was lost; `None` until it was first made.
    let mut away: Option<SystemTime> = None;
    let mut first = true;
    loop {
        match session(&store, &events, away).await {
            Ok(lost) => {
                backoff = MIN_BACKOFF;
                away = Some(SystemTime::now());
                tracing::warn!(store = %store.location(), error = %lost, "lost the shared store; serving the integrations last loaded, reconnecting");
                store.set_connected(None, Some(lost));
                store.failed("connection");
            }
            Err(e) => {
                if first || store.status().error.as_deref() != Some(e.as_str()) {
                    tracing::warn!(store = %store.location(), error = %e, retry_in = ?backoff, "cannot connect to the shared store");
                }
                store.set_connected(None, Some(e));
                store.failed("connect");
            }
        }
        first = false;
        if events.is_closed() {
            return;
        }
        // Full jitter: replicas that lost the database together do not come back in step.
        let wait = backoff.mul_f64(0.5 + fastrand::f64() / 2.0);
        tokio::time::sleep(wait).await;
        backoff = (backoff * 2).min(MAX_BACKOFF);
    }
}

/// One connection: set up (`Err` if that fails), then listen until it breaks (`Ok(why)`).
async fn session(
    store: &Store,
    events: &mpsc::UnboundedSender<Event>,
    away: Option<SystemTime>,
) -> Result<String, String> {
    let (client, mut connection) = store.connect().await?;
    let (heard, mut hearing) = mpsc::unbounded_channel::<Result<String, String>>();
    // Polling the connection runs the client's queries too; announcements go to `hearing`.
    let driver = tokio::spawn(async move {
        loop {
            let message = poll_fn(|cx| connection.poll_message(cx)).await;
            let sent = match message {
                Some(Ok(AsyncMessage::Notification(n))) => heard.send(Ok(n.payload().to_owned())),
                Some(Ok(_notice)) => Ok(()),
                Some(Err(e)) => {
                    let _ = heard.send(Err(describe(&e)));
                    return;
                }
                None => {
                    let _ = heard.send(Err("the database closed the connection".to_owned()));
                    return;
                }
            };
            if sent.is_err() {
                return;
            }
        }
    });
    let _stop = AbortOnDrop(driver);
    let client = Arc::new(client);
    client.batch_execute(&format!("LISTEN {CHANNEL}")).await.map_err(|e| describe(&e))?;
    let copied = store.prepare().await?;
    if copied > 0 {
        tracing::info!(store = %store.location(), integrations = copied, "the config file's integrations were copied into the empty shared store");
    }
    store.set_connected(Some(client.clone()), None);
    tracing::info!(store = %store.location(), "connected to the shared store");
    if events.send(Event::Connected { away }).is_err() {
        return Ok("stopping".to_owned());
    }
    let mut ping = tokio::time::interval(PING_EVERY);
    ping.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    loop {
        tokio::select! {
            heard = hearing.recv() => match heard {
                Some(Ok(payload)) => {
                    let Some(event) = event_of(store, &payload) else { continue };
                    if events.send(event).is_err() {
                        return Ok("stopping".to_owned());
                    }
                }
                Some(Err(e)) => return Ok(e),
                None => return Ok("the connection ended".to_owned()),
            },
            _ = ping.tick() => {
                match tokio::time::timeout(PING_TIMEOUT, client.simple_query("SELECT 1")).await {
                    Ok(Ok(_)) => {}
                    Ok(Err(e)) => return Ok(describe(&e)),
                    Err(_) => return Ok(format!("no answer to a check within {PING_TIMEOUT:?}")),
                }
            }
        }
    }
}

/// The event of an announcement, unless this replica made it (then it is applied already).
fn event_of(store: &Store, payload: &str) -> Option<Event> {
    if store.is_own(payload) {
        return None;
    }
    let mut parts = payload.splitn(3, ':');
    match (parts.next(), parts.next(), parts.next()) {
        (Some("integration"), Some(_), _) => Some(Event::Changed),
        (Some("purge"), Some(_), Some(id)) => id.parse().ok().map(Event::Purge),
        _ => {
            tracing::debug!(payload, "an announcement mediagate does not know; ignored");
            None
        }
    }
}

struct AbortOnDrop(tokio::task::JoinHandle<()>);

impl Drop for AbortOnDrop {
    fn drop(&mut self) {
        self.0.abort();
    }
}
