//! The processes a fault test runs and breaks: the real `chatgate` binary,
//! a private `redis-server`, a private PostgreSQL cluster, and a small
//! tmpfs. Each is torn down when its guard drops, the test failing or not.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use tempfile::TempDir;

/// The binary cargo built for this test run.
pub const CHATGATE_BIN: &str = env!("CARGO_BIN_EXE_chatgate");

/// What the first start printed.
#[derive(Debug, Clone)]
pub struct FirstStart {
    pub admin_email: String,
    pub admin_password: String,
    pub channel_id: String,
}

/// One running `chatgate` process.
pub struct Chatgate {
    pub name: String,
    pub base: String,
    env: Vec<(String, String)>,
    child: Option<Child>,
    /// stderr of every start of this instance, shown when a test fails.
    log: PathBuf,
    _log_dir: TempDir,
}

impl Chatgate {
    /// Starts the binary with `env` (plus `CHATGATE_LISTEN=127.0.0.1:0`) and
    /// waits for its "listening on" line; returns what a first start printed.
    pub fn start(name: &str, env: &[(&str, String)]) -> (Chatgate, Option<FirstStart>) {
        let log_dir = tempfile::tempdir().expect("temp dir");
        let mut chatgate = Chatgate {
            name: name.to_string(),
            base: String::new(),
            env: env
                .iter()
                .map(|(k, v)| (k.to_string(), v.clone()))
                .collect(),
            child: None,
            log: log_dir.path().join("stderr.log"),
            _log_dir: log_dir,
        };
        let first = chatgate.spawn();
        (chatgate, first)
    }

    fn spawn(&mut self) -> Option<FirstStart> {
        let log = std::fs::OpenOptions::new()
            .create(true)
            .append(true)
            .open(&self.log)
            .expect("log file");
        let mut child = Command::new(CHATGATE_BIN)
            .envs(self.env.iter().map(|(k, v)| (k.as_str(), v.as_str())))
            .env("CHATGATE_LISTEN", "127.0.0.1:0")
            .env("RUST_LOG", "chatgate=warn,warn")
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .spawn()
            .unwrap_or_else(|e| panic!("cannot run {CHATGATE_BIN}: {e}"));
        let stdout = child.stdout.take().expect("stdout");
        let (lines, read) = mpsc::channel();
        std::thread::spawn(move || {
            for line in BufReader::new(stdout).lines() {
                let Ok(line) = line else { return };
                if lines.send(line).is_err() {
                    return;
                }
            }
        });
        self.child = Some(child);
        let mut printed = Vec::new();
        loop {
            match read.recv_timeout(Duration::from_secs(60)) {
                Ok(line) => {
                    if let Some(url) = line.split("listening on ").nth(1) {
                        self.base = url.trim().trim_end_matches('/').to_string();
                        break;
                    }
                    printed.push(line);
                }
                Err(_) => panic!(
                    "{} did not print \"listening on\"; printed {printed:?}; stderr:\n{}",
                    self.name,
                    self.stderr()
                ),
            }
        }
        let field = |label: &str| {
            printed
                .iter()
                .find_map(|l| l.split(label).nth(1).map(|v| v.trim().to_string()))
        };
        Some(FirstStart {
            admin_email: field("admin login:")?,
            admin_password: field("admin password:")?,
            channel_id: field("demo channel:")?,
        })
    }

    /// Starts this instance again with the same environment (a new port).
    /// The load keeps running meanwhile (the wait blocks this thread only;
    /// the tests run on a multi-thread runtime).
    pub fn restart(&mut self) {
        assert!(self.child.is_none(), "{} is still running", self.name);
        tokio::task::block_in_place(|| self.spawn());
    }

    pub fn ws_base(&self) -> String {
        self.base.replacen("http", "ws", 1)
    }

    /// SIGTERM, then waits (up to 60 s) for a clean exit.
    pub async fn terminate(&mut self) {
        let mut child = self.child.take().expect("running");
        signal(child.id(), "TERM");
        let name = self.name.clone();
        let status = tokio::task::spawn_blocking(move || child.wait())
            .await
            .expect("waiter")
            .expect("wait");
        assert!(
            status.success(),
            "{name} exited with {status} after SIGTERM; stderr:\n{}",
            self.stderr()
        );
    }

    /// SIGKILL: the process dies at once, mid-whatever.
    pub fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }

    /// The last lines the process wrote on stderr.
    pub fn stderr(&self) -> String {
        let all = std::fs::read_to_string(&self.log).unwrap_or_default();
        let lines: Vec<&str> = all.lines().collect();
        lines[lines.len().saturating_sub(40)..].join("\n")
    }
}

impl Drop for Chatgate {
    fn drop(&mut self) {
        self.kill();
    }
}

fn signal(pid: u32, name: &str) {
    let status = Command::new("kill")
        .args([format!("-{name}"), pid.to_string()])
        .status()
        .expect("kill runs");
    assert!(status.success(), "kill -{name} {pid} failed");
}

/// A free TCP port on 127.0.0.1 (free when asked; the caller binds it soon).
pub fn free_port() -> u16 {
    std::net::TcpListener::bind("127.0.0.1:0")
        .expect("bind")
        .local_addr()
        .expect("addr")
        .port()
}

/// Panics with a clear message unless `tool` is on the PATH (or a path that exists).
pub fn require_tool(tool: &str) {
    let found = Path::new(tool).is_file()
        || std::env::var_os("PATH")
            .is_some_and(|paths| std::env::split_paths(&paths).any(|dir| dir.join(tool).is_file()));
    assert!(
        found,
        "the fault tests need `{tool}`, which is missing: install it (they never skip)"
    );
}

/// Panics unless the tests run as root (mounting a tmpfs, running PostgreSQL as `postgres`).
pub fn require_root() {
    let uid = Command::new("id")
        .arg("-u")
        .output()
        .expect("id runs")
        .stdout;
    assert_eq!(
        String::from_utf8_lossy(&uid).trim(),
        "0",
        "the fault tests must run as root (they mount a tmpfs and run PostgreSQL as `postgres`); \
         they never skip"
    );
}

async fn wait_for_port(port: u16, what: &str) {
    for _ in 0..200 {
        if tokio::net::TcpStream::connect(("127.0.0.1", port))
            .await
            .is_ok()
        {
            return;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("{what} did not listen on port {port}");
}

/// A redis-server of the test's own, on a fixed port so it can be restarted.
pub struct PrivateRedis {
    pub port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    pub async fn start() -> PrivateRedis {
        require_tool("redis-server");
        let mut redis = PrivateRedis {
            port: free_port(),
            child: None,
        };
        redis.start_again().await;
        redis
    }

    pub fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    /// Starts it (empty: nothing is saved) after a `stop`.
    pub async fn start_again(&mut self) {
        let child = Command::new("redis-server")
            .args(["--port", &self.port.to_string()])
            .args(["--bind", "127.0.0.1", "--save", "", "--appendonly", "no"])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server runs");
        self.child = Some(child);
        wait_for_port(self.port, "redis-server").await;
    }

    /// Kills it; every connection to it breaks.
    pub fn stop(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.stop();
    }
}

/// A PostgreSQL cluster of the test's own (initdb in a temp dir, run as the
/// `postgres` OS user on a free port, trust authentication), stopped and
/// removed when dropped.
pub struct PrivatePostgres {
    pub port: u16,
    dir: TempDir,
    bin: PathBuf,
}

impl PrivatePostgres {
    pub async fn start() -> PrivatePostgres {
        require_root();
        require_tool("runuser");
        let bin = postgres_bin();
        let dir = tempfile::Builder::new()
            .prefix("chatgate-faults-pg-")
            .tempdir()
            .expect("temp dir");
        run_checked(
            Command::new("chown")
                .args(["-R", "postgres:postgres"])
                .arg(dir.path()),
        );
        let pg = PrivatePostgres {
            port: free_port(),
            dir,
            bin,
        };
        run_checked(
            pg.as_postgres("initdb")
                .args(["-A", "trust", "-U", "postgres", "--no-sync", "-D"])
                .arg(pg.data()),
        );
        pg.start_again().await;
        pg
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn as_postgres(&self, tool: &str) -> Command {
        let mut command = Command::new("runuser");
        command
            .args(["-u", "postgres", "--"])
            .arg(self.bin.join(tool))
            .stdout(Stdio::null())
            .stderr(Stdio::piped());
        command
    }

    pub fn url(&self) -> String {
        format!("postgres://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Starts the cluster (after `stop`) and waits until it accepts connections.
    pub async fn start_again(&self) {
        let options = format!(
            "-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off -c max_connections=200",
            self.port,
            self.dir.path().display()
        );
        tokio::task::block_in_place(|| {
            run_checked(
                self.as_postgres("pg_ctl")
                    .args(["-w", "-t", "60", "-D"])
                    .arg(self.data())
                    .args(["-l"])
                    .arg(self.dir.path().join("log"))
                    .args(["-o", &options, "start"]),
            )
        });
        wait_for_port(self.port, "postgres").await;
    }

    /// Stops the cluster the fast way: open connections are ended.
    /// The load keeps running meanwhile (see `Chatgate::restart`).
    pub fn stop(&self) {
        tokio::task::block_in_place(|| {
            run_checked(
                self.as_postgres("pg_ctl")
                    .args(["-w", "-t", "60", "-m", "fast", "-D"])
                    .arg(self.data())
                    .arg("stop"),
            )
        });
    }
}

impl Drop for PrivatePostgres {
    fn drop(&mut self) {
        let _ = self
            .as_postgres("pg_ctl")
            .args(["-w", "-t", "30", "-m", "immediate", "-D"])
            .arg(self.data())
            .arg("stop")
            .output();
    }
}

/// The directory of `initdb` and `pg_ctl`: the newest under /usr/lib/postgresql.
fn postgres_bin() -> PathBuf {
    let mut versions: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .expect("PostgreSQL is installed under /usr/lib/postgresql (the fault tests never skip)")
        .filter_map(|entry| {
            let entry = entry.ok()?;
            let version = entry.file_name().to_str()?.parse().ok()?;
            Some((version, entry.path().join("bin")))
        })
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    versions.sort();
    versions
        .pop()
        .map(|(_, bin)| bin)
        .expect("initdb and pg_ctl under /usr/lib/postgresql/<version>/bin")
}

fn run_checked(command: &mut Command) {
    let output = command.output().expect("command runs");
    assert!(
        output.status.success(),
        "{command:?} failed: {}",
        String::from_utf8_lossy(&output.stderr)
    );
}

/// A tmpfs of `size` bytes mounted on a temp dir, unmounted when dropped.
pub struct Tmpfs {
    dir: TempDir,
    mounted: bool,
}

impl Tmpfs {
    pub fn mount(bytes: u64) -> Tmpfs {
        require_root();
        require_tool("mount");
        let dir = tempfile::Builder::new()
            .prefix("chatgate-faults-disk-")
            .tempdir()
            .expect("temp dir");
        run_checked(
            Command::new("mount")
                .args(["-t", "tmpfs", "-o", &format!("size={bytes},mode=0700")])
                .arg("tmpfs")
                .arg(dir.path()),
        );
        Tmpfs { dir, mounted: true }
    }

    pub fn path(&self) -> &Path {
        self.dir.path()
    }
}

impl Drop for Tmpfs {
    fn drop(&mut self) {
        if self.mounted {
            // Lazy: a process that still has a file open cannot keep it mounted.
            let _ = Command::new("umount")
                .arg("-l")
                .arg(self.dir.path())
                .status();
            self.mounted = false;
        }
    }
}
