//! Connection accounting: the global limit (`[server] max_connections`), the
//! per-client cap (`max_connections_per_ip`), and which connection gives way
//! when a limit is reached.
//!
//! A connection is *idle* while no request of it is being answered: from
//! accept (or a TLS handshake) to its first request ([`Phase::Fresh`]), and
//! between two keep-alive requests ([`Phase::KeepAlive`]). At a limit, the
//! newcomer takes the place of the idle connection that has waited longest,
//! fresh ones before keep-alive ones (as nginx reuses its "reusable"
//! keep-alive connections when it runs short): a flood of sockets that send
//! nothing cannot keep other clients out. Only when no connection is idle
//! is the newcomer refused (`503 overloaded`).
//!
//! The per-client cap counts connections by source address (IPv6 by /64,
//! what one host is usually given). Behind a CDN or a load balancer every
//! client shares the balancer's address: raise the cap or set it to 0 (off).

use std::collections::{BTreeSet, HashMap};
use std::net::IpAddr;
use std::sync::{Arc, Mutex, MutexGuard};

use tokio::sync::Notify;

type Hasher = foldhash::quality::RandomState;

/// Where an idle connection stands; the earlier variant gives way first.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
enum Phase {
    /// Accepted, no request answered yet.
    Fresh,
    /// Between two requests of a keep-alive connection.
    KeepAlive,
}

/// Why a new connection was refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refusal {
    /// `max_connections` busy connections.
    Full,
    /// `max_connections_per_ip` busy connections from this client.
    PerClient,
}

/// The connection counts of one listener; shared by the accept loop and
/// every connection task.
pub struct Limits {
    max_total: usize,
    /// 0: no per-client cap.
    max_per_client: usize,
    state: Mutex<State>,
}

#[derive(Default)]
struct State {
    next_id: u64,
    /// Orders idle connections by how long they have waited.
    clock: u64,
    /// foldhash, randomly seeded (as the cache's keys): two lookups per
    /// request, and SipHash cost more than the lookups themselves.
    per_client: HashMap<IpAddr, usize, Hasher>,
    conns: HashMap<u64, Conn, Hasher>,
    /// Idle connections, the first to give way first: `(phase, since, id)`.
    idle: BTreeSet<(Phase, u64, u64)>,
}

struct Conn {
    client: IpAddr,
    in_flight: usize,
    /// Its key in `State::idle` while it is idle.
    idle_key: Option<(Phase, u64, u64)>,
    close: Arc<Notify>,
}

impl Limits {
    pub fn new(max_total: usize, max_per_client: usize) -> Arc<Limits> {
        Arc::new(Limits { max_total, max_per_client, state: Mutex::new(State::default()) })
    }

    fn lock(&self) -> MutexGuard<'_, State> {
        // A panic while holding the lock leaves only counters behind: keep going.
        crate::sync::lock(&self.state)
    }

    /// Admits a connection from `peer`, closing idle connections to make
    /// room when a limit is reached; `Err` when nothing could give way.
    pub fn admit(self: &Arc<Self>, peer: IpAddr) -> Result<Slot, Refusal> {
        let client = client_key(peer);
        let mut s = self.lock();
        if self.max_per_client > 0 && s.per_client.get(&client).copied().unwrap_or(0) >= self.max_per_client {
            let victim = s.idle.iter().find(|(_, _, id)| s.conns.get(id).is_some_and(|c| c.client == client));
            match victim.map(|&(_, _, id)| id) {
                Some(id) => s.evict(id),
                None => return Err(Refusal::PerClient),
            }
        }
        if s.conns.len() >= self.max_total {
            match s.idle.first().map(|&(_, _, id)| id) {
                Some(id) => s.evict(id),
                None => return Err(Refusal::Full),
            }
        }
        s.next_id += 1;
        let id = s.next_id;
        let close = Arc::new(Notify::new());
        s.clock += 1;
        let key = (Phase::Fresh, s.clock, id);
        s.idle.insert(key);
        s.conns.insert(id, Conn { client, in_flight: 0, idle_key: Some(key), close: close.clone() });
        *s.per_client.entry(client).or_insert(0) += 1;
        Ok(Slot { tracker: Tracker { limits: self.clone(), id }, close })
    }

    /// Connections counted now (for tests and logs).
    pub fn open(&self) -> usize {
        self.lock().conns.len()
    }
}

impl State {
    /// Stops counting connection `id` and tells its task to close it.
    fn evict(&mut self, id: u64) {
        if let Some(conn) = self.forget(id) {
            tracing::debug!(client = %conn.client, "connection limit reached; closing the longest-idle connection");
            conn.close.notify_one();
        }
    }

    fn forget(&mut self, id: u64) -> Option<Conn> {
        let conn = self.conns.remove(&id)?;
        if let Some(key) = conn.idle_key {
            self.idle.remove(&key);
        }
        if let Some(n) = self.per_client.get_mut(&conn.client) {
            *n -= 1;
            if *n == 0 {
                self.per_client.remove(&conn.client);
            }
        }
        Some(conn)
    }
}

/// The address a client is counted under: IPv4 as is, IPv6 by its /64.
fn client_key(peer: IpAddr) -> IpAddr {
    match peer.to_canonical() {
        IpAddr::V6(v6) => IpAddr::V6((u128::from(v6) & !((1u128 << 64) - 1)).into()),
        v4 => v4,
    }
}

/// One admitted connection: counted until dropped (or evicted).
pub struct Slot {
    tracker: Tracker,
    close: Arc<Notify>,
}

impl Slot {
    /// Resolves when the connection must give way to a newcomer.
    pub async fn evicted(&self) {
        self.close.notified().await
    }

    /// The handle the connection's requests report through.
    pub fn tracker(&self) -> Tracker {
        self.tracker.clone()
    }
}

impl Drop for Slot {
    fn drop(&mut self) {
        self.tracker.limits.lock().forget(self.tracker.id);
    }
}

/// Reports a connection's requests, so that it counts as busy while one is answered.
#[derive(Clone)]
pub struct Tracker {
    limits: Arc<Limits>,
    id: u64,
}

impl Tracker {
    /// A request of this connection starts; it is busy until the guard drops
    /// (keep it with the response body).
    pub fn request(&self) -> RequestGuard {
        let mut s = self.limits.lock();
        if let Some(conn) = s.conns.get_mut(&self.id) {
            conn.in_flight += 1;
            if let Some(key) = conn.idle_key.take() {
                s.idle.remove(&key);
            }
        }
        RequestGuard { tracker: self.clone() }
    }
}

/// A request being answered; dropping it may make its connection idle again.
pub struct RequestGuard {
    tracker: Tracker,
}

impl Drop for RequestGuard {
    fn drop(&mut self) {
        let mut s = self.tracker.limits.lock();
        s.clock += 1;
        let since = s.clock;
        if let Some(conn) = s.conns.get_mut(&self.tracker.id) {
            conn.in_flight = conn.in_flight.saturating_sub(1);
            if conn.in_flight == 0 {
                let key = (Phase::KeepAlive, since, self.tracker.id);
                conn.idle_key = Some(key);
                s.idle.insert(key);
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Whether the slot was told to close (without waiting).
    fn told_to_close(slot: &Slot) -> bool {
        futures_util::FutureExt::now_or_never(slot.evicted()).is_some()
    }

    fn ip(s: &str) -> IpAddr {
        s.parse().expect("ip")
    }

    #[test]
    fn a_new_connection_past_the_limit_closes_the_longest_idle_fresh_one() {
        let limits = Limits::new(2, 0);
        let first = limits.admit(ip("10.0.0.1")).expect("first");
        let second = limits.admit(ip("10.0.0.1")).expect("second");
        let _busy = second.tracker().request();
        let third = limits.admit(ip("10.0.0.2")).expect("room is made");
        assert_eq!(limits.open(), 2);
        assert!(told_to_close(&first));
        drop(first);
        assert_eq!(limits.open(), 2, "an evicted slot is not counted twice");
        drop(third);
        assert_eq!(limits.open(), 1);
    }

    #[test]
    fn fresh_connections_give_way_before_keep_alive_ones() {
        let limits = Limits::new(2, 0);
        let kept = limits.admit(ip("10.0.0.1")).expect("kept");
        drop(kept.tracker().request()); // one request answered: keep-alive idle
        let fresh = limits.admit(ip("10.0.0.1")).expect("fresh");
        let _new = limits.admit(ip("10.0.0.3")).expect("room is made");
        assert!(told_to_close(&fresh));
        assert!(!told_to_close(&kept));
    }

    #[test]
    fn with_every_connection_busy_a_newcomer_is_refused() {
        let limits = Limits::new(1, 0);
        let only = limits.admit(ip("10.0.0.1")).expect("only");
        let guard = only.tracker().request();
        assert_eq!(limits.admit(ip("10.0.0.2")).err(), Some(Refusal::Full));
        drop(guard);
        assert!(limits.admit(ip("10.0.0.2")).is_ok(), "idle again, it gives way");
    }

    #[test]
    fn the_per_client_cap_refuses_only_that_client_and_closes_its_own_idle_ones_first() {
        let limits = Limits::new(100, 2);
        let a: Vec<Slot> = (0..2).map(|_| limits.admit(ip("10.0.0.1")).expect("a")).collect();
        let _busy: Vec<RequestGuard> = a.iter().map(|s| s.tracker().request()).collect();
        assert_eq!(limits.admit(ip("10.0.0.1")).err(), Some(Refusal::PerClient));
        let b1 = limits.admit(ip("10.0.0.2")).expect("another client is served");
        let _b2 = limits.admit(ip("10.0.0.2")).expect("b2");
        let _b3 = limits.admit(ip("10.0.0.2")).expect("b3 takes b1's place");
        assert!(told_to_close(&b1));
        assert_eq!(limits.open(), 4);
    }

    #[test]
    fn a_zero_per_client_cap_is_no_cap_and_ipv6_counts_by_its_64() {
        let limits = Limits::new(10, 0);
        let _all: Vec<Slot> = (0..10).map(|_| limits.admit(ip("10.0.0.1")).expect("admit")).collect();
        assert_eq!(client_key(ip("2001:db8:1:2:aaaa::1")), client_key(ip("2001:db8:1:2:bbbb::2")));
        assert_ne!(client_key(ip("2001:db8:1:2::1")), client_key(ip("2001:db8:1:3::1")));
        assert_eq!(client_key(ip("::ffff:10.0.0.1")), ip("10.0.0.1"));
    }
}
