//! A PostgreSQL server of a test's own (CONTRACT.md section 9's shared store): `initdb` in a
//! temp dir, `postgres` on a free port of 127.0.0.1 with its socket in that dir, stopped and
//! removed on drop. The binaries come from `MEDIAGATE_TEST_PG_BIN` (scripts/test.sh installs
//! Debian's `postgresql` and sets it) or Debian's default place. `initdb` and `postgres` refuse
//! to run as root, so as root they run as the user `postgres` (`runuser`), in a dir it owns.
//!
//! ```ignore
//! let Some(mut pg) = Postgres::start() else { return };
//! let url = pg.url();          // postgres://mediagate:<password>@127.0.0.1:<port>/mediagate
//! pg.stop(); pg.restart();     // an outage
//! ```

use std::path::{Path, PathBuf};
use std::process::{Command, Output};

/// The database and the user the tests' replicas use.
pub const USER: &str = "mediagate";
const PASSWORD: &str = "pg-test-password-0123";

pub struct Postgres {
    bin: PathBuf,
    dir: tempfile::TempDir,
    pub port: u16,
    running: bool,
    /// More `postgres` options (`-c ssl=on ...`).
    options: String,
}

/// Where the PostgreSQL binaries are, or `None` (a skip; a failure under `CI=true`).
fn bin_dir() -> Option<PathBuf> {
    let dir = std::env::var_os("MEDIAGATE_TEST_PG_BIN")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("/usr/lib/postgresql/15/bin"));
    if dir.join("initdb").exists() {
        return Some(dir);
    }
    assert!(
        std::env::var("CI").as_deref() != Ok("true"),
        "PostgreSQL is missing ({} has no initdb) and CI=true: run the tests through scripts/test.sh",
        dir.display()
    );
    eprintln!("skipped: PostgreSQL is not installed (set MEDIAGATE_TEST_PG_BIN or run scripts/test.sh)");
    None
}

fn is_root() -> bool {
    Command::new("id").arg("-u").output().is_ok_and(|o| String::from_utf8_lossy(&o.stdout).trim() == "0")
}

impl Postgres {
    /// A new, empty server, running; `None` when PostgreSQL is not installed (outside CI).
    pub fn start() -> Option<Postgres> {
        Postgres::start_with(false)
    }

    /// A new server that also speaks TLS, with a self-signed certificate for 127.0.0.1
    /// ([`Postgres::ca_file`]).
    pub fn start_tls() -> Option<Postgres> {
        Postgres::start_with(true)
    }

    /// The PEM certificate of a TLS server, to trust as `ca_file`.
    pub fn ca_file(&self) -> String {
        self.path("server.crt")
    }

    fn start_with(tls: bool) -> Option<Postgres> {
        let bin = bin_dir()?;
        let dir = tempfile::Builder::new().prefix("mediagate-pg-").tempdir().expect("temp dir");
        if is_root() {
            let owned = Command::new("chown").arg("postgres:").arg(dir.path()).status().expect("chown");
            assert!(owned.success(), "cannot give {} to the user postgres", dir.path().display());
        }
        let port = std::net::TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("addr").port();
        let mut pg = Postgres { bin, dir, port, running: false, options: String::new() };
        std::fs::write(pg.path("pw"), format!("{PASSWORD}\n")).expect("password file");
        if tls {
            let rcgen::CertifiedKey { cert, signing_key } =
                rcgen::generate_simple_self_signed(vec!["127.0.0.1".to_owned()]).expect("a certificate");
            std::fs::write(pg.path("server.crt"), super::pem("CERTIFICATE", cert.der())).expect("cert");
            std::fs::write(pg.path("server.key"), super::pem("PRIVATE KEY", &signing_key.serialize_der()))
                .expect("key");
            // PostgreSQL refuses a key that others may read.
            use std::os::unix::fs::PermissionsExt;
            std::fs::set_permissions(pg.path("server.key"), std::fs::Permissions::from_mode(0o600)).expect("chmod");
            pg.options = format!(
                " -c ssl=on -c ssl_cert_file={} -c ssl_key_file={}",
                pg.path("server.crt"),
                pg.path("server.key")
            );
        }
        if is_root() {
            for file in ["pw", "server.crt", "server.key"] {
                let _ = Command::new("chown").arg("postgres:").arg(pg.path(file)).status();
            }
        }
        let data = pg.path("data");
        let init = pg.run(
            "initdb",
            &[
                "-D",
                &data,
                "-U",
                USER,
                "--auth=scram-sha-256",
                &format!("--pwfile={}", pg.path("pw")),
                "-E",
                "UTF8",
                "--no-sync",
            ],
        );
        assert!(init.status.success(), "initdb failed: {}", String::from_utf8_lossy(&init.stderr));
        pg.restart();
        let created = pg.psql_on("postgres", &format!("CREATE DATABASE {USER}"));
        assert!(created.status.success(), "CREATE DATABASE: {}", String::from_utf8_lossy(&created.stderr));
        Some(pg)
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_string_lossy().into_owned()
    }

    /// `program args...` from the PostgreSQL binaries, as the user `postgres` when root.
    fn run(&self, program: &str, args: &[&str]) -> Output {
        let exe = self.bin.join(program);
        let mut cmd = if is_root() {
            let mut c = Command::new("runuser");
            c.args(["-u", "postgres", "--"]).arg(&exe);
            c
        } else {
            Command::new(&exe)
        };
        cmd.args(args).current_dir(self.dir.path()).env("PGPASSWORD", PASSWORD);
        cmd.output().unwrap_or_else(|e| panic!("cannot run {}: {e}", exe.display()))
    }

    /// Starts the server (again) on its port and waits for its
    /// `database system is ready to accept connections` line.
    pub fn restart(&mut self) {
        let options = format!(
            "-k {} -p {} -h 127.0.0.1 -c fsync=off -c shared_buffers=16MB -c max_connections=30{}",
            self.path(""),
            self.port,
            self.options
        );
        let log = self.path("postgres.log");
        let before = std::fs::read_to_string(&log).map_or(0, |t| t.matches(READY).count());
        let started =
            self.run("pg_ctl", &["start", "-w", "-t", "30", "-D", &self.path("data"), "-l", &log, "-o", &options]);
        assert!(
            started.status.success(),
            "pg_ctl start failed: {}\n{}",
            String::from_utf8_lossy(&started.stdout),
            self.log()
        );
        let ready = std::fs::read_to_string(&log).map_or(0, |t| t.matches(READY).count());
        assert!(ready > before, "PostgreSQL started without its ready line:\n{}", self.log());
        self.running = true;
    }

    /// Stops the server (fast shutdown: clients are disconnected at once).
    pub fn stop(&mut self) {
        let stopped = self.run("pg_ctl", &["stop", "-w", "-m", "fast", "-D", &self.path("data")]);
        assert!(stopped.status.success(), "pg_ctl stop failed: {}", String::from_utf8_lossy(&stopped.stderr));
        self.running = false;
    }

    /// The URL of the tests' database, password included.
    pub fn url(&self) -> String {
        format!("postgres://{USER}:{PASSWORD}@127.0.0.1:{}/{USER}", self.port)
    }

    /// Runs `sql` in the tests' database with psql; its output, one row a line, `|` between columns.
    pub fn psql(&self, sql: &str) -> String {
        let out = self.psql_on(USER, sql);
        assert!(out.status.success(), "psql {sql:?}: {}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn psql_on(&self, db: &str, sql: &str) -> Output {
        let port = self.port.to_string();
        self.run(
            "psql",
            &["-X", "-At", "-v", "ON_ERROR_STOP=1", "-h", "127.0.0.1", "-p", &port, "-U", USER, "-d", db, "-c", sql],
        )
    }

    /// The server's log so far.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.path("postgres.log")).unwrap_or_default()
    }

    pub fn dir(&self) -> &Path {
        self.dir.path()
    }
}

const READY: &str = "database system is ready to accept connections";

impl Drop for Postgres {
    fn drop(&mut self) {
        if self.running {
            let _ = self.run("pg_ctl", &["stop", "-w", "-m", "immediate", "-D", &self.path("data")]);
        }
    }
}
