//! Several mediagate replicas behind the load balancers of `deploy/`
//! (Debian's HAProxy 2.6 and nginx 1.22, on the shipped config files with
//! only the addresses changed), against the real S3 peer (s3s-fs) through a
//! counting relay: one storage connection per request, so the relay's
//! connection count is the number of storage requests all replicas made.
//!
//! The workload: a data set three times one replica's cache budget, read
//! with a Zipf popularity (seeded, bounded: a few thousand requests, 8 at a
//! time), every request a signed URL with its own `exp` and `sig`, in the
//! path form or the query form at random (path form only through nginx,
//! which cannot decode the query form's locator; docs/REPLICAS.md).
//! The figures are printed (`-- --nocapture`); `MEDIAGATE_TEST_BIN` runs
//! another build (a release build for docs/BENCHMARKS.md).

mod common;

use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::net::SocketAddr;
use std::sync::Mutex;
use std::sync::atomic::{AtomicUsize, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

use bytes::Bytes;
use common::lb::{HaProxy, Nginx, haproxy_bin, haproxy_config, nginx_bin, wait_refused};
use common::relay::{Fault, Relay};
use common::{MediaGate, S3Peer, config, encode_component, encode_key, runtime, s3_peer, unique_bucket};
use http_body_util::{BodyExt, Empty};
use hyper_util::client::legacy::Client;
use hyper_util::rt::TokioExecutor;

/// One object's size, and how many: 768 x 32 KiB = 24 MiB, three times
/// one replica's `max_bytes`.
const OBJECT_BYTES: usize = 32 * 1024;
const OBJECTS: usize = 768;
/// Each replica's cache: 8 MiB (the fill reserve, 4 x 64 KiB, leaves 7.75 MiB for entries).
const CACHE: &str = "[cache]\nmax_bytes = \"8MiB\"\nmax_object_bytes = \"64KiB\"\nslice_bytes = \"64KiB\"\nmax_fills = 4\nttl = \"1h\"\n";
/// One storage request per connection (so the relay counts requests); the
/// load comes from one address (the balancer).
const UPSTREAM: &str = "[upstream]\npool_max_idle_per_host = 0\n";
const SERVER_EXTRA: &str = "[server]\nmax_connections_per_ip = 0\n";
const URL_KEY: &str = "replicas-test-url-key";
const REQUESTS: usize = 6000;
const CONCURRENCY: usize = 8;
/// Zipf exponent and seed of the workload.
const ZIPF_S: f64 = 1.0;
const SEED: u64 = 11;
const REQUEST_TIMEOUT: Duration = Duration::from_secs(30);

fn auth_section() -> String {
    format!("[auth]\nmode = \"signed-url\"\n[[auth.keys]]\nid = \"k1\"\nsecret = \"{URL_KEY}\"\n")
}

/// Object `i`'s key: spaces, `+` and a non-ASCII letter, so that the
/// balancer's decoding is exercised.
fn key(i: usize) -> String {
    format!("set/obj {i:04} +é.bin")
}

// ------------------------------------------------------------------ the cluster

struct Cluster {
    relay: Relay,
    replicas: Vec<Option<MediaGate>>,
}

/// The bucket with the data set, seeded once per test.
fn seed(s3: &S3Peer, tag: &str) -> String {
    let bucket = unique_bucket(tag);
    s3.create_bucket(&bucket);
    for i in 0..OBJECTS {
        s3.put(&bucket, &key(i), Bytes::from(common::pattern_bytes(OBJECT_BYTES, i as u64)));
    }
    bucket
}

impl Cluster {
    /// `n` fresh replicas (empty caches) over `bucket`, through one new counting relay.
    fn start(s3: &S3Peer, bucket: &str, n: usize) -> Cluster {
        let relay = Relay::start(s3.addr(), Fault::None);
        let integration = s3.integration_at("media", "127.0.0.1", relay.addr().port(), &[bucket], &s3.secret_key, "");
        let cfg = config(&[&integration, UPSTREAM, CACHE, &auth_section()]);
        // `[server]` is the harness's first table: add the per-IP limit to it.
        let cfg = cfg.replacen("[server]\n", SERVER_EXTRA, 1);
        let replicas = (0..n).map(|_| Some(MediaGate::start(&cfg))).collect();
        Cluster { relay, replicas }
    }

    fn addrs(&self) -> Vec<SocketAddr> {
        self.replicas.iter().map(|r| r.as_ref().expect("a live replica").addr).collect()
    }

    /// Waits until no storage request is open, then the count so far.
    fn upstream_requests(&self) -> u64 {
        common::wait_for("every storage request to end", Duration::from_secs(20), || {
            self.relay.open_connections() == 0
        });
        self.relay.connections()
    }
}

// ------------------------------------------------------------------ the workload

#[derive(Debug, Clone, Copy)]
struct Req {
    obj: usize,
    query_form: bool,
}

/// `n` requests over `OBJECTS` objects, object `i` with weight 1/(i+1)^s.
fn zipf_workload(n: usize, seed: u64, both_forms: bool) -> Vec<Req> {
    let mut rng = fastrand::Rng::with_seed(seed);
    let mut cumulative = Vec::with_capacity(OBJECTS);
    let mut total = 0.0;
    for i in 0..OBJECTS {
        total += 1.0 / ((i + 1) as f64).powf(ZIPF_S);
        cumulative.push(total);
    }
    (0..n)
        .map(|_| {
            let x = rng.f64() * total;
            let obj = cumulative.partition_point(|c| *c < x).min(OBJECTS - 1);
            Req { obj, query_form: both_forms && rng.bool() }
        })
        .collect()
}

/// A signed URL for object `obj` in either form, valid until `exp` (each
/// request its own `exp`, hence its own signature).
fn signed_url(base: &str, bucket: &str, obj: usize, query_form: bool, exp: u64) -> String {
    let k = key(obj);
    let canonical = format!("/s3/{bucket}/{}", encode_key(&k));
    let sig = mediagate::auth::sign(URL_KEY.as_bytes(), &canonical, exp);
    let params = format!("exp={exp}&kid=k1&sig={sig}");
    if query_form {
        format!("{base}/media?locator={}&{params}", encode_component(&format!("s3://{bucket}/{k}")))
    } else {
        format!("{base}{canonical}?{params}")
    }
}

#[derive(Debug, Clone)]
struct Outcome {
    obj: usize,
    /// `X-Mediagate-Replica`: which replica answered.
    replica: Option<String>,
    hit: bool,
    /// The status, or why there was none (connection error, timeout, short body).
    result: Result<u16, String>,
}

struct Run {
    outcomes: Vec<Outcome>,
    elapsed: Duration,
    /// Request indices in flight at the kill: those in flight when the kill
    /// hook started, and those the other workers took while it ran (until
    /// the victim refused connections).
    in_flight_at_kill: Vec<usize>,
    kill_index: Option<usize>,
    /// The first request index taken after the kill hook returned.
    after_kill: Option<usize>,
}

impl Run {
    fn errors(&self) -> Vec<(usize, &Outcome)> {
        self.outcomes.iter().enumerate().filter(|(_, o)| !matches!(o.result, Ok(200))).collect()
    }
    fn hits(&self) -> usize {
        self.outcomes.iter().filter(|o| o.hit).count()
    }
    fn distinct(&self) -> usize {
        self.outcomes.iter().map(|o| o.obj).collect::<HashSet<_>>().len()
    }
    /// Which replicas served each object.
    fn servers_of(&self, range: std::ops::Range<usize>) -> BTreeMap<usize, BTreeSet<String>> {
        let mut map: BTreeMap<usize, BTreeSet<String>> = BTreeMap::new();
        for o in &self.outcomes[range] {
            if let Some(r) = &o.replica {
                map.entry(o.obj).or_default().insert(r.clone());
            }
        }
        map
    }
}

/// Replays `reqs` against `base`, `CONCURRENCY` at a time (keep-alive
/// connections to the balancer); `kill` runs once, just before request
/// `kill.0` is sent, while others are in flight.
fn replay(base: &str, bucket: &str, reqs: &[Req], exp_base: u64, kill: Option<(usize, &(dyn Fn() + Sync))>) -> Run {
    let client: Client<_, Empty<Bytes>> = Client::builder(TokioExecutor::new()).build_http();
    let next = AtomicUsize::new(0);
    let in_flight: Mutex<HashSet<usize>> = Mutex::new(HashSet::new());
    let at_kill: Mutex<Vec<usize>> = Mutex::new(Vec::new());
    let after_kill: Mutex<Option<usize>> = Mutex::new(None);
    let outcomes: Mutex<Vec<Option<Outcome>>> = Mutex::new(vec![None; reqs.len()]);
    let start = Instant::now();
    std::thread::scope(|scope| {
        for _ in 0..CONCURRENCY {
            scope.spawn(|| {
                runtime().block_on(async {
                    loop {
                        let i = next.fetch_add(1, Ordering::SeqCst);
                        let Some(req) = reqs.get(i) else { break };
                        if let Some((k, hook)) = kill
                            && k == i
                        {
                            let mut flying: Vec<usize> = in_flight.lock().unwrap().iter().copied().collect();
                            hook();
                            // The other workers went on while the hook ran: what they took meanwhile was in flight too.
                            let done = next.load(Ordering::SeqCst);
                            flying.extend(k..done);
                            *at_kill.lock().unwrap() = flying;
                            *after_kill.lock().unwrap() = Some(done);
                        }
                        in_flight.lock().unwrap().insert(i);
                        let url = signed_url(base, bucket, req.obj, req.query_form, exp_base + i as u64);
                        let outcome = fetch(&client, &url, req.obj).await;
                        in_flight.lock().unwrap().remove(&i);
                        outcomes.lock().unwrap()[i] = Some(outcome);
                    }
                })
            });
        }
    });
    let elapsed = start.elapsed();
    let outcomes = outcomes.into_inner().unwrap().into_iter().map(|o| o.expect("every request ran")).collect();
    Run {
        outcomes,
        elapsed,
        in_flight_at_kill: at_kill.into_inner().unwrap(),
        kill_index: kill.map(|k| k.0),
        after_kill: after_kill.into_inner().unwrap(),
    }
}

async fn fetch(
    client: &Client<hyper_util::client::legacy::connect::HttpConnector, Empty<Bytes>>,
    url: &str,
    obj: usize,
) -> Outcome {
    let uri: http::Uri = match url.parse() {
        Ok(u) => u,
        Err(e) => return Outcome { obj, replica: None, hit: false, result: Err(format!("bad URL {url}: {e}")) },
    };
    let work = async {
        let resp = client.get(uri).await.map_err(|e| format!("{e:?}"))?;
        let (parts, body) = resp.into_parts();
        let body = body.collect().await.map_err(|e| format!("body: {e}"))?.to_bytes();
        let header = |n: &str| parts.headers.get(n).and_then(|v| v.to_str().ok()).map(str::to_owned);
        if parts.status == http::StatusCode::OK && body.len() != OBJECT_BYTES {
            return Err(format!("short body: {} bytes", body.len()));
        }
        Ok((parts.status.as_u16(), header("x-mediagate-replica"), header("cache-status").unwrap_or_default()))
    };
    match tokio::time::timeout(REQUEST_TIMEOUT, work).await {
        Ok(Ok((status, replica, cache))) => Outcome { obj, replica, hit: cache.contains("; hit"), result: Ok(status) },
        Ok(Err(e)) => Outcome { obj, replica: None, hit: false, result: Err(e) },
        Err(_) => Outcome { obj, replica: None, hit: false, result: Err(format!("no answer in {REQUEST_TIMEOUT:?}")) },
    }
}

fn now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).expect("clock").as_secs()
}

/// One printed row: name, req/s, hit ratio, upstream GETs, per distinct object.
fn report(name: &str, run: &Run, upstream: u64) -> f64 {
    let per_object = upstream as f64 / run.distinct() as f64;
    println!(
        "| {name} | {} | {:.0} req/s | {:.1} % hits | {upstream} upstream GETs | {} distinct objects | {per_object:.2} GETs per object | {} errors |",
        run.outcomes.len(),
        run.outcomes.len() as f64 / run.elapsed.as_secs_f64(),
        100.0 * run.hits() as f64 / run.outcomes.len() as f64,
        run.distinct(),
        run.errors().len(),
    );
    per_object
}

/// The shipped HAProxy config with another `balance` line (round robin, for comparison).
fn haproxy_with_balance(balance: &str) -> String {
    let shipped = std::fs::read_to_string(haproxy_config()).expect("deploy/haproxy/haproxy.cfg");
    let line = shipped.lines().find(|l| l.trim_start().starts_with("balance ")).expect("a balance line");
    shipped.replacen(line, &format!("    balance {balance}"), 1)
}

fn shipped_haproxy() -> String {
    std::fs::read_to_string(haproxy_config()).expect("deploy/haproxy/haproxy.cfg")
}

// ------------------------------------------------------------------ tests

/// Round robin vs consistent hashing on the same workload, then one replica
/// killed mid-run: only its objects move, and nothing but the requests in
/// flight on it can fail. One test, so that the runs share the seeded data.
#[test]
fn consistent_hashing_fetches_each_object_once_and_a_killed_replica_moves_only_its_own_objects() {
    let Some(s3) = s3_peer() else { return };
    let Some(haproxy) = haproxy_bin() else { return };
    let bucket = seed(&s3, "replicas-haproxy");
    let reqs = zipf_workload(REQUESTS, SEED, true);
    println!("| run | requests | rate | hit ratio | upstream | distinct | per object | errors |");
    println!("|---|---|---|---|---|---|---|---|");

    // 1 replica behind the same balancer (all three server lines point at it): the baseline.
    let one = Cluster::start(&s3, &bucket, 1);
    let a = one.addrs()[0];
    let lb = HaProxy::start(&haproxy, &shipped_haproxy(), &[a, a, a]);
    lb.wait_for_servers(&["UP", "UP", "UP"]);
    let run1 = replay(&lb.base_url(), &bucket, &reqs, now() + 3600, None);
    let up1 = one.upstream_requests();
    report("1 replica, HAProxy", &run1, up1);
    assert!(run1.errors().is_empty(), "errors with one replica: {:?}", &run1.errors()[..run1.errors().len().min(5)]);
    drop(lb);
    drop(one);

    // 3 replicas, round robin.
    let rr = Cluster::start(&s3, &bucket, 3);
    let lb = HaProxy::start(&haproxy, &haproxy_with_balance("roundrobin"), &rr.addrs());
    lb.wait_for_servers(&["UP", "UP", "UP"]);
    let run_rr = replay(&lb.base_url(), &bucket, &reqs, now() + 3600, None);
    let up_rr = rr.upstream_requests();
    report("3 replicas, HAProxy round robin", &run_rr, up_rr);
    assert!(
        run_rr.errors().is_empty(),
        "errors with round robin: {:?}",
        &run_rr.errors()[..run_rr.errors().len().min(5)]
    );
    drop(lb);
    drop(rr);

    // 3 replicas, the shipped config: consistent hashing on the object.
    let mut ch = Cluster::start(&s3, &bucket, 3);
    let lb = HaProxy::start(&haproxy, &shipped_haproxy(), &ch.addrs());
    lb.wait_for_servers(&["UP", "UP", "UP"]);
    let run_ch = replay(&lb.base_url(), &bucket, &reqs, now() + 3600, None);
    let up_ch = ch.upstream_requests();
    let per_object = report("3 replicas, HAProxy consistent hash (shipped)", &run_ch, up_ch);
    assert!(
        run_ch.errors().is_empty(),
        "errors with consistent hashing: {:?}",
        &run_ch.errors()[..run_ch.errors().len().min(5)]
    );
    // Every signed URL of one object, in either form, was answered by one replica
    // (bar the hot objects hash-balance-factor spilled to the next replica).
    let owners = run_ch.servers_of(0..REQUESTS);
    let spilled: Vec<_> = owners.iter().filter(|(_, s)| s.len() > 1).collect();
    println!("objects answered by more than one replica (bounded-load spill): {} of {}", spilled.len(), owners.len());
    assert!(
        spilled.len() * 50 <= owners.len(),
        "{} of {} objects went to several replicas: {spilled:?}",
        spilled.len(),
        owners.len()
    );
    let share: BTreeMap<&String, usize> = owners.values().filter(|s| s.len() == 1).fold(BTreeMap::new(), |mut m, s| {
        *m.entry(s.iter().next().unwrap()).or_default() += 1;
        m
    });
    println!("objects per replica: {share:?}");
    let (misses_ch, misses_rr) = (run_ch.outcomes.len() - run_ch.hits(), run_rr.outcomes.len() - run_rr.hits());
    assert!(
        per_object <= 1.1,
        "consistent hashing made {per_object:.2} upstream GETs per distinct object (target <= 1.1)"
    );
    assert!(
        2 * misses_ch <= misses_rr,
        "consistent hashing missed {misses_ch} times, round robin {misses_rr}: expected at most half"
    );

    // The same workload again on the warm cluster (new signatures); mg2 is killed a third of the way in.
    let victim = ch.replicas[1].as_ref().expect("mg2").addr;
    let victim_pid = ch.replicas[1].as_ref().expect("mg2").pid();
    let kill = move || {
        let status = std::process::Command::new("kill").arg("-9").arg(victim_pid.to_string()).status();
        assert!(status.is_ok_and(|s| s.success()), "kill -9 {victim_pid} failed");
        // Dead only once it refuses connections; requests taken until then may still reach it.
        wait_refused(victim);
    };
    let before = ch.relay.connections();
    let run_kill = replay(&lb.base_url(), &bucket, &reqs, now() + 7200, Some((REQUESTS / 3, &kill)));
    let up_kill = ch.upstream_requests() - before;
    report("same, warm, mg2 killed a third of the way in", &run_kill, up_kill);
    // HAProxy's health checks take it out.
    lb.wait_for_servers(&["UP", "DOWN", "UP"]);
    ch.replicas[1] = None;

    // No client error beyond the requests in flight when it died.
    let kill_at = run_kill.kill_index.expect("the kill ran");
    let errors = run_kill.errors();
    println!(
        "requests in flight at the kill: {:?}; errors: {:?}",
        run_kill.in_flight_at_kill,
        errors.iter().map(|(i, o)| (i, o.result.clone())).collect::<Vec<_>>()
    );
    for (i, o) in &errors {
        assert!(
            run_kill.in_flight_at_kill.contains(i),
            "request {i} failed though it was not in flight at the kill: {o:?}"
        );
    }
    // Only mg2's objects moved: after the kill, every object a survivor owned is still answered there, from its cache.
    let single: BTreeMap<usize, String> =
        owners.iter().filter(|(_, s)| s.len() == 1).map(|(o, s)| (*o, s.iter().next().unwrap().clone())).collect();
    let after_kill = run_kill.after_kill.expect("the kill ran");
    let after = (kill_at + CONCURRENCY).max(after_kill)..REQUESTS;
    let (mut kept, mut survivors_reqs, mut kept_hits, mut moved_objects) = (0, 0, 0, BTreeSet::new());
    for o in &run_kill.outcomes[after.clone()] {
        let Some(owner) = single.get(&o.obj) else { continue };
        if owner == "mg2" {
            moved_objects.insert(o.obj);
            assert_ne!(o.replica.as_deref(), Some("mg2"), "a request after the kill reached mg2");
            continue;
        }
        survivors_reqs += 1;
        if o.replica.as_deref() == Some(owner.as_str()) {
            kept += 1;
            kept_hits += usize::from(o.hit);
        }
    }
    println!(
        "after the kill: {kept} of {survivors_reqs} requests for the survivors' objects stayed on their replica \
         ({kept_hits} hits); {} of mg2's objects moved; {up_kill} upstream GETs",
        moved_objects.len()
    );
    assert!(kept * 100 >= survivors_reqs * 98, "only {kept} of {survivors_reqs} requests stayed on their replica");
    // Most of them from its cache: the survivors now also hold mg2's share in the same budget,
    // so some of their own objects are evicted (the run prints how many hits and storage reads).
    assert!(kept_hits * 100 >= kept * 90, "only {kept_hits} of {kept} requests on the survivors were hits");
}

/// The hash key is the object, whatever the form and the spelling: HAProxy
/// decodes both forms to one locator (Azure's https:// form included).
/// No storage is needed: every answer (404 here) names its replica.
#[test]
fn every_form_and_spelling_of_one_locator_lands_on_one_haproxy_replica() {
    let Some(haproxy) = haproxy_bin() else { return };
    let cfg = config(&[&auth_section()]);
    let replicas: Vec<MediaGate> = (0..3).map(|_| MediaGate::start(&cfg)).collect();
    let addrs: Vec<SocketAddr> = replicas.iter().map(|r| r.addr).collect();
    let lb = HaProxy::start(&haproxy, &shipped_haproxy(), &addrs);
    lb.wait_for_servers(&["UP", "UP", "UP"]);
    let base = lb.base_url();
    let mut seen = BTreeSet::new();
    for i in 0..40 {
        let blob = format!("dir/clip {i} +ü.mp4");
        let az = format!("az://acct/media/{blob}");
        let https = format!("https://ACCT.blob.core.windows.net/media/{}", encode_key(&blob));
        let s3 = format!("s3://bucket/{blob}");
        let forms = [
            (format!("/az/acct/media/{}?exp=1&sig=a", encode_key(&blob)), &az),
            (format!("/media?locator={}&exp=2&sig=b", encode_component(&az)), &az),
            (format!("/media?exp=3&locator={}&kid=k1&sig=c", encode_component(&https)), &az),
            (format!("/s3/bucket/{}?exp=4&sig=d", encode_key(&blob)), &s3),
            // lower-case escapes, the slash escaped too: the same key once decoded
            (format!("/s3/bucket/{}?exp=5&sig=e", encode_component(&blob).to_lowercase()), &s3),
            (format!("/media?locator={}&exp=6&sig=f", encode_component(&s3)), &s3),
        ];
        let mut by_locator: BTreeMap<&String, BTreeSet<String>> = BTreeMap::new();
        for (path, locator) in &forms {
            let r = common::get(&format!("{base}{path}"), &[]);
            let replica =
                r.header("x-mediagate-replica").unwrap_or_else(|| panic!("no replica header: {}", r.describe()));
            seen.insert(replica.to_owned());
            by_locator.entry(locator).or_default().insert(replica.to_owned());
        }
        for (locator, replicas) in by_locator {
            assert_eq!(replicas.len(), 1, "the forms of {locator} went to {replicas:?}: {forms:?}");
        }
    }
    assert_eq!(seen.len(), 3, "40 objects should spread over the 3 replicas: {seen:?}");
}

/// nginx `hash ... consistent` (deploy/nginx/mediagate.conf): every signed
/// URL of one object (path form) goes to one replica, and the storage sees
/// each object about once.
#[test]
fn nginx_consistent_hashing_sends_every_signed_url_of_one_object_to_one_replica() {
    let Some(s3) = s3_peer() else { return };
    let Some(nginx) = nginx_bin() else { return };
    let bucket = seed(&s3, "replicas-nginx");
    let reqs = zipf_workload(REQUESTS, SEED, false);
    let cluster = Cluster::start(&s3, &bucket, 3);
    let ng = Nginx::start(&nginx, &cluster.addrs());
    let run = replay(&ng.base_url(), &bucket, &reqs, now() + 3600, None);
    let upstream = cluster.upstream_requests();
    let per_object = report("3 replicas, nginx hash consistent (shipped)", &run, upstream);
    assert!(
        run.errors().is_empty(),
        "errors through nginx: {:?}\n{}",
        &run.errors()[..run.errors().len().min(5)],
        ng.error_log()
    );
    let owners = run.servers_of(0..REQUESTS);
    let several: Vec<_> = owners.iter().filter(|(_, s)| s.len() > 1).collect();
    assert!(several.is_empty(), "objects answered by several replicas through nginx: {several:?}");
    let used: BTreeSet<&String> = owners.values().flatten().collect();
    assert_eq!(used.len(), 3, "the objects should spread over the 3 replicas: {used:?}");
    assert!(per_object <= 1.1, "nginx: {per_object:.2} upstream GETs per distinct object (target <= 1.1)");
}
