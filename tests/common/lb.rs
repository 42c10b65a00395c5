//! The load balancers of `deploy/` as test peers: Debian's HAProxy 2.6 and
//! nginx 1.22 (installed by `scripts/test.sh`, named by
//! `MEDIAGATE_TEST_HAPROXY` / `MEDIAGATE_TEST_NGINX`), each run on the
//! shipped config file with only the addresses changed, on 127.0.0.1.
//!
//! ```ignore
//! let Some(haproxy) = haproxy_bin() else { return };
//! let lb = HaProxy::start(&haproxy, &haproxy_config(), &[mg1.addr, mg2.addr, mg3.addr]);
//! lb.wait_for_servers(&["UP", "UP", "UP"]);
//! ```

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpListener, TcpStream};
use std::os::unix::net::UnixStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Output, Stdio};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use super::{pump_lines, required_env, wait_for, wait_until};

/// The repository's `deploy/` folder.
pub fn deploy_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("deploy")
}

/// The shipped HAProxy config, `deploy/haproxy/haproxy.cfg`.
pub fn haproxy_config() -> PathBuf {
    deploy_dir().join("haproxy/haproxy.cfg")
}

/// The shipped nginx include, `deploy/nginx/mediagate.conf`.
pub fn nginx_config() -> PathBuf {
    deploy_dir().join("nginx/mediagate.conf")
}

/// The `haproxy` command (`None`, with a `skipped:` line, outside CI when unset).
pub fn haproxy_bin() -> Option<String> {
    required_env("MEDIAGATE_TEST_HAPROXY", "HAProxy")
}

/// The `nginx` command (`None`, with a `skipped:` line, outside CI when unset).
pub fn nginx_bin() -> Option<String> {
    required_env("MEDIAGATE_TEST_NGINX", "nginx")
}

/// A TCP port free on 127.0.0.1 a moment ago (HAProxy and nginx print no
/// address when given port 0, so the port is chosen here).
pub fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).map(|a| a.port()).expect("a free port")
}

/// Runs `cmd` with a time limit; its output.
pub fn run_bounded(cmd: &mut Command, limit: Duration) -> Output {
    let what = format!("{cmd:?}");
    let child = cmd
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| panic!("cannot run {what}: {e}"));
    let pid = child.id();
    let (tx, rx) = std::sync::mpsc::channel();
    std::thread::spawn(move || {
        let _ = tx.send(child.wait_with_output());
    });
    match rx.recv_timeout(limit) {
        Ok(out) => out.unwrap_or_else(|e| panic!("waiting for {what}: {e}")),
        Err(_) => {
            let _ = Command::new("kill").arg("-9").arg(pid.to_string()).status();
            panic!("{what} did not finish within {limit:?}");
        }
    }
}

/// The environment the shipped HAProxy config reads: its stats socket, its
/// bind address and the replicas' addresses (`MEDIAGATE_1`...).
pub fn haproxy_env(socket: &Path, bind: SocketAddr, replicas: &[SocketAddr]) -> Vec<(String, String)> {
    let mut env = vec![
        ("MEDIAGATE_HAPROXY_SOCKET".to_owned(), socket.display().to_string()),
        ("MEDIAGATE_HAPROXY_BIND".to_owned(), bind.to_string()),
    ];
    for (i, addr) in replicas.iter().enumerate() {
        env.push((format!("MEDIAGATE_{}", i + 1), addr.to_string()));
    }
    env
}

/// One running `haproxy -db` (foreground), killed on drop.
pub struct HaProxy {
    child: Child,
    pub addr: SocketAddr,
    pub socket: PathBuf,
    stderr: Arc<Mutex<Vec<String>>>,
    _dir: tempfile::TempDir,
}

impl HaProxy {
    /// Starts `haproxy` on `config` (a copy of the shipped file, possibly
    /// edited) with the replicas' addresses, and waits until its stats
    /// socket answers (by then every listener is bound).
    pub fn start(bin: &str, config: &str, replicas: &[SocketAddr]) -> HaProxy {
        let dir = tempfile::Builder::new().prefix("mediagate-haproxy-").tempdir().expect("temp dir");
        let cfg = dir.path().join("haproxy.cfg");
        std::fs::write(&cfg, config).expect("writing haproxy.cfg");
        let socket = dir.path().join("stats.sock");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let mut child = Command::new(bin)
            .arg("-db")
            .arg("-f")
            .arg(&cfg)
            .envs(haproxy_env(&socket, addr, replicas))
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        let stderr = Arc::new(Mutex::new(Vec::new()));
        pump_lines(child.stdout.take().expect("stdout"), stderr.clone(), None);
        pump_lines(child.stderr.take().expect("stderr"), stderr.clone(), None);
        let mut lb = HaProxy { child, addr, socket, stderr, _dir: dir };
        let up = wait_until(Duration::from_secs(10), || lb.exited() || lb.command("show info").is_ok());
        assert!(up && !lb.exited(), "HAProxy did not start; its output:\n{}", lb.output());
        lb
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// `http://127.0.0.1:P` of the frontend.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    /// Everything HAProxy printed so far (alerts, health changes, the log).
    pub fn output(&self) -> String {
        self.stderr.lock().unwrap_or_else(|p| p.into_inner()).join("\n")
    }

    /// One command on the stats socket; its answer.
    pub fn command(&self, cmd: &str) -> std::io::Result<String> {
        let mut s = UnixStream::connect(&self.socket)?;
        s.set_read_timeout(Some(Duration::from_secs(5)))?;
        s.write_all(format!("{cmd}\n").as_bytes())?;
        let mut out = String::new();
        s.read_to_string(&mut out)?;
        Ok(out)
    }

    /// `(server, status, check status)` of each server of backend `mediagate`,
    /// from `show stat` (status `UP`, `DOWN`, `UP 1/2`...; check `L7OK`, `L4CON`...).
    pub fn servers(&self) -> Vec<(String, String, String)> {
        let csv = self.command("show stat").unwrap_or_else(|e| panic!("HAProxy stats socket: {e}"));
        let mut lines = csv.lines();
        let header: Vec<&str> = lines.next().unwrap_or("").trim_start_matches("# ").split(',').collect();
        let col = |name: &str| header.iter().position(|h| *h == name).unwrap_or_else(|| panic!("no {name} in {csv}"));
        let (px, sv, status, check) = (col("pxname"), col("svname"), col("status"), col("check_status"));
        lines
            .map(|l| l.split(',').collect::<Vec<_>>())
            .filter(|f| f.len() > check && f[px] == "mediagate" && f[sv] != "BACKEND")
            .map(|f| (f[sv].to_owned(), f[status].to_owned(), f[check].to_owned()))
            .collect()
    }

    /// Waits (up to 15 s) until the servers' statuses, in config order, are
    /// `states` (e.g. `["UP", "DOWN", "UP"]`), each `UP` one checked at least once.
    pub fn wait_for_servers(&self, states: &[&str]) {
        let ok = wait_until(Duration::from_secs(15), || {
            let servers = self.servers();
            servers.len() == states.len()
                && servers
                    .iter()
                    .zip(states)
                    .all(|((_, status, check), want)| status == want && (*want != "UP" || check.starts_with("L7OK")))
        });
        assert!(ok, "HAProxy servers are not {states:?} after 15 s: {:?}\n{}", self.servers(), self.output());
    }
}

impl Drop for HaProxy {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A whole `nginx.conf` for `nginx -p dir -c dir/nginx.conf` around the
/// `http {}` include `include` (the shipped `deploy/nginx/mediagate.conf`
/// or an edited copy): foreground, one worker, every path inside `dir`.
pub fn nginx_main_config(dir: &Path, include: &Path) -> String {
    let d = dir.display();
    // As root, nginx's workers would run as nobody; the temp dir is root's.
    let is_root = Command::new("id").arg("-u").output().map(|o| o.stdout.trim_ascii() == b"0").unwrap_or(false);
    let user = if is_root { "user root;\n" } else { "" };
    format!(
        "{user}worker_processes 1;\ndaemon off;\npid {d}/nginx.pid;\nerror_log {d}/error.log notice;\n\
         events {{ worker_connections 1024; }}\n\
         http {{\n    access_log off;\n    client_body_temp_path {d}/body;\n    proxy_temp_path {d}/proxy;\n    \
         fastcgi_temp_path {d}/fastcgi;\n    uwsgi_temp_path {d}/uwsgi;\n    scgi_temp_path {d}/scgi;\n    \
         include {};\n}}\n",
        include.display()
    )
}

/// The shipped nginx include with its `server 10.0.0.1N:8080` lines pointing
/// at `replicas` and its `listen 8080;` at `listen`.
pub fn nginx_include_for(replicas: &[SocketAddr], listen: SocketAddr) -> String {
    let shipped = std::fs::read_to_string(nginx_config()).expect("reading deploy/nginx/mediagate.conf");
    let mut out = String::new();
    let mut next = replicas.iter();
    let mut servers = 0;
    for line in shipped.lines() {
        let t = line.trim_start();
        if t.starts_with("server 10.0.0.") {
            servers += 1;
            if let Some(addr) = next.next() {
                let rest = t.split_once(' ').and_then(|(_, r)| r.split_once(' ')).map(|(_, r)| r).unwrap_or(";");
                out.push_str(&format!("    server {addr} {rest}\n"));
            }
        } else if t == "listen 8080;" {
            out.push_str(&format!("    listen {listen};\n"));
        } else {
            out.push_str(line);
            out.push('\n');
        }
    }
    assert_eq!(
        servers,
        replicas.len(),
        "deploy/nginx/mediagate.conf lists {servers} servers, the test has {}",
        replicas.len()
    );
    out
}

/// One running nginx (`daemon off`), killed on drop.
pub struct Nginx {
    child: Child,
    pub addr: SocketAddr,
    dir: tempfile::TempDir,
}

impl Nginx {
    /// Starts nginx on the shipped include pointed at `replicas`, and waits
    /// (up to 10 s) until its listener accepts connections.
    pub fn start(bin: &str, replicas: &[SocketAddr]) -> Nginx {
        let dir = tempfile::Builder::new().prefix("mediagate-nginx-").tempdir().expect("temp dir");
        let addr: SocketAddr = ([127, 0, 0, 1], free_port()).into();
        let include = dir.path().join("mediagate.conf");
        std::fs::write(&include, nginx_include_for(replicas, addr)).expect("writing mediagate.conf");
        let main = dir.path().join("nginx.conf");
        std::fs::write(&main, nginx_main_config(dir.path(), &include)).expect("writing nginx.conf");
        let child = Command::new(bin)
            .arg("-p")
            .arg(dir.path())
            .arg("-c")
            .arg(&main)
            .stdin(Stdio::null())
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {bin}: {e}"));
        let mut ng = Nginx { child, addr, dir };
        let up = wait_until(Duration::from_secs(10), || {
            ng.exited() || TcpStream::connect_timeout(&addr, Duration::from_secs(1)).is_ok()
        });
        assert!(up && !ng.exited(), "nginx did not start; its error log:\n{}", ng.error_log());
        ng
    }

    fn exited(&mut self) -> bool {
        !matches!(self.child.try_wait(), Ok(None))
    }

    /// `http://127.0.0.1:P`.
    pub fn base_url(&self) -> String {
        format!("http://{}", self.addr)
    }

    pub fn error_log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("error.log")).unwrap_or_default()
    }
}

impl Drop for Nginx {
    /// `SIGTERM` first: the master then stops its workers (a `SIGKILL`ed
    /// master would leave them running, holding the port).
    fn drop(&mut self) {
        let _ = Command::new("kill").arg("-s").arg("TERM").arg(self.child.id().to_string()).status();
        if !wait_until(Duration::from_secs(10), || self.exited()) {
            let _ = self.child.kill();
        }
        let _ = self.child.wait();
    }
}

/// Waits until `addr` refuses connections (a killed replica's port is closed).
pub fn wait_refused(addr: SocketAddr) {
    wait_for(&format!("{addr} to refuse connections"), Duration::from_secs(10), || {
        TcpStream::connect_timeout(&addr, Duration::from_millis(500)).is_err()
    });
}
