//! Targets: a running chatgate, chatgate spawned by the bench (SQLite, or two
//! instances on PostgreSQL + Redis), or the built-in relay.
//!
//! Spawned servers are child processes with `kill_on_drop`, so they die with
//! the bench even when it fails or panics; [`Deployment::shutdown`] is the
//! orderly path that also removes the temporary database or schema. (A
//! PostgreSQL schema is left behind only when the bench panics; its
//! `chatgate_bench_` prefix makes it recognisable.)

use std::path::{Path, PathBuf};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use sqlx::{Connection, Executor, PgConnection};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use uuid::Uuid;

use crate::cli::{Backend, TargetArgs};

/// How long a spawned server may take to print its address (migrations run first).
const START_TIMEOUT: Duration = Duration::from_secs(60);
/// Rate limits for spawned chatgate: far above anything the bench sends, as
/// the bench measures throughput, not the limiter.
const UNLIMITED: &str = "100000000";
const UNLIMITED_BURST: &str = "10000000";

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Flavor {
    Chatgate,
    Relay,
}

/// What clients need to know about a target; sent to worker processes.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TargetSpec {
    /// e.g. `chatgate/sqlite`, `chatgate/postgres+redis x2`, `relay`.
    pub label: String,
    pub flavor: Flavor,
    /// Base URL senders (and idle sessions) use: instance A.
    pub front: String,
    /// Base URL receivers use: instance B, or A again with one instance.
    pub back: String,
    /// The channel visitors authenticate on (chatgate only).
    pub channel: Option<Uuid>,
    /// An admin of the channel's tenant (spawned chatgate, or `--admin-email`).
    pub admin: Option<AdminLogin>,
}

/// Login of an agent with the admin role.
#[derive(Clone, Serialize, Deserialize)]
pub struct AdminLogin {
    pub email: String,
    pub password: String,
}

impl std::fmt::Debug for AdminLogin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AdminLogin")
            .field("email", &self.email)
            .finish_non_exhaustive()
    }
}

/// A target ready for a scenario, plus what it takes to tear it down.
pub struct Deployment {
    pub spec: TargetSpec,
    /// The process whose RSS the idle scenario samples (instance A).
    pub rss_pid: Option<u32>,
    servers: Vec<Server>,
    schema: Option<Schema>,
    dir: Option<ScratchDir>,
}

impl Deployment {
    /// The server processes, for CPU accounting (spawned ones, or
    /// `--server-pid` for an external server).
    pub fn server_pids(&self) -> Vec<u32> {
        if self.servers.is_empty() {
            self.rss_pid.into_iter().collect()
        } else {
            self.servers.iter().map(|s| s.pid).collect()
        }
    }

    /// The database URL of the fresh PostgreSQL schema the servers use, if any.
    pub fn postgres_url(&self) -> Option<String> {
        self.schema.as_ref().map(Schema::database_url)
    }

    /// Stops spawned servers, drops the temporary schema, removes the
    /// scratch directory, and reports WARN/ERROR lines the servers logged.
    /// When there were any, the logs are kept and their location reported.
    pub async fn shutdown(mut self) {
        for server in &mut self.servers {
            let _ = server.child.kill().await;
        }
        let mut noted = Vec::new();
        for server in &self.servers {
            noted.extend(server.log_findings());
        }
        if let Some(schema) = self.schema.take() {
            if let Err(err) = schema.drop_schema().await {
                eprintln!(
                    "chatgate-bench: could not drop schema {}: {err:#}",
                    schema.name
                );
            }
        }
        if let Some(dir) = &mut self.dir {
            if !noted.is_empty() {
                dir.keep = true;
                eprintln!(
                    "chatgate-bench: {}: server logs kept in {}",
                    self.spec.label,
                    dir.path.display()
                );
            }
        }
        for line in noted.iter().take(20) {
            eprintln!("chatgate-bench: {}: server log: {line}", self.spec.label);
        }
        if noted.len() > 20 {
            eprintln!(
                "chatgate-bench: {}: ... {} more WARN/ERROR lines",
                self.spec.label,
                noted.len() - 20
            );
        }
    }
}

/// The chatgate target the options describe: an external server, or
/// spawned instances.
pub async fn chatgate(args: &TargetArgs, needs_channel: bool) -> Result<Deployment> {
    chatgate_with(args, needs_channel, &[]).await
}

/// As [`chatgate`], with `extra` settings (`CHATGATE_*` variables) for the
/// spawned servers on top of the bench's own.
pub async fn chatgate_with(
    args: &TargetArgs,
    needs_channel: bool,
    extra: &[(&str, &str)],
) -> Result<Deployment> {
    if let Some(server) = &args.server {
        if needs_channel && args.channel_id.is_none() {
            bail!("--server needs --channel-id (the channel visitors authenticate on)");
        }
        let label = if args.server_b.is_some() {
            "chatgate (external) x2"
        } else {
            "chatgate (external)"
        };
        return Ok(Deployment {
            spec: TargetSpec {
                label: label.into(),
                flavor: Flavor::Chatgate,
                front: server.trim_end_matches('/').to_string(),
                back: args
                    .server_b
                    .as_deref()
                    .unwrap_or(server)
                    .trim_end_matches('/')
                    .to_string(),
                channel: args.channel_id,
                admin: match (&args.admin_email, &args.admin_password) {
                    (Some(email), Some(password)) => Some(AdminLogin {
                        email: email.clone(),
                        password: password.clone(),
                    }),
                    (Some(_), None) => bail!(
                        "--admin-email needs --admin-password (or CHATGATE_BENCH_ADMIN_PASSWORD)"
                    ),
                    _ => None,
                },
            },
            rss_pid: args.server_pid,
            servers: Vec::new(),
            schema: None,
            dir: None,
        });
    }

    let binary = chatgate_binary(args)?;
    let dir = ScratchDir::create()?;
    match args.backend {
        Backend::Sqlite => {
            let database = dir.path.join("chatgate.db");
            let deployment = start_sqlite(&binary, &database, dir, extra).await?;
            if deployment.spec.channel.is_none() {
                bail!("chatgate did not print its demo channel");
            }
            Ok(deployment)
        }
        Backend::Postgres => {
            let schema = Schema::create(&args.postgres_url).await?;
            let url = schema.database_url();
            let mut env = chatgate_env(&url, Some(&args.redis_url));
            // One directory both instances share, out of the working
            // directory, removed with the scratch directory (the `files`
            // scenario writes gigabytes).
            let files = dir.path.join("files");
            env.push(("CHATGATE_FILES_URL".into(), files.display().to_string()));
            env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
            // Deployment owns the schema from here, so a failed start drops it.
            let mut deployment = Deployment {
                spec: TargetSpec {
                    label: "chatgate/postgres+redis x2".into(),
                    flavor: Flavor::Chatgate,
                    front: String::new(),
                    back: String::new(),
                    channel: None,
                    admin: None,
                },
                rss_pid: None,
                servers: Vec::new(),
                schema: Some(schema),
                dir: Some(dir),
            };
            let dir_path = deployment
                .dir
                .as_ref()
                .map(|d| d.path.clone())
                .unwrap_or_default();
            let started = async {
                // A first, alone: it migrates the schema and creates the demo channel.
                let a =
                    Server::start(chatgate_command(&binary, &env), "chatgate-a", &dir_path).await?;
                let channel = a
                    .demo_channel
                    .ok_or_else(|| anyhow!("chatgate A did not print its demo channel"))?;
                deployment.spec.front = a.base.clone();
                deployment.spec.channel = Some(channel);
                deployment.spec.admin = a.admin.clone();
                deployment.rss_pid = Some(a.pid);
                deployment.servers.push(a);
                let b =
                    Server::start(chatgate_command(&binary, &env), "chatgate-b", &dir_path).await?;
                deployment.spec.back = b.base.clone();
                deployment.servers.push(b);
                anyhow::Ok(())
            }
            .await;
            match started {
                Ok(()) => Ok(deployment),
                Err(err) => {
                    deployment.shutdown().await;
                    Err(err)
                }
            }
        }
    }
}

/// chatgate on the SQLite file `database`, which is the caller's (kept at
/// shutdown); its logs go to a scratch directory. The admin and the demo
/// channel are known only when this is the file's first start.
pub async fn chatgate_sqlite_at(args: &TargetArgs, database: &Path) -> Result<Deployment> {
    let binary = chatgate_binary(args)?;
    start_sqlite(&binary, database, ScratchDir::create()?, &[]).await
}

async fn start_sqlite(
    binary: &Path,
    database: &Path,
    dir: ScratchDir,
    extra: &[(&str, &str)],
) -> Result<Deployment> {
    let mut env = chatgate_env(&database.to_string_lossy(), None);
    env.extend(extra.iter().map(|(k, v)| (k.to_string(), v.to_string())));
    let a = Server::start(chatgate_command(binary, &env), "chatgate", &dir.path).await?;
    Ok(Deployment {
        spec: TargetSpec {
            label: "chatgate/sqlite".into(),
            flavor: Flavor::Chatgate,
            front: a.base.clone(),
            back: a.base.clone(),
            channel: a.demo_channel,
            admin: a.admin.clone(),
        },
        rss_pid: Some(a.pid),
        servers: vec![a],
        schema: None,
        dir: Some(dir),
    })
}

/// The chatgate executable: `--chatgate`, or `chatgate` next to the bench.
fn chatgate_binary(args: &TargetArgs) -> Result<PathBuf> {
    let binary = match &args.chatgate {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .context("cannot locate the bench executable")?
            .with_file_name("chatgate"),
    };
    if !binary.is_file() {
        bail!(
            "chatgate binary not found at {} (build it with `cargo build --release --bin chatgate`, or pass --chatgate PATH)",
            binary.display()
        );
    }
    Ok(binary)
}

/// The built-in relay, as a child process like chatgate.
pub async fn relay() -> Result<Deployment> {
    let exe = std::env::current_exe().context("cannot locate the bench executable")?;
    let dir = ScratchDir::create()?;
    let mut command = Command::new(exe);
    command.args(["relay-server", "--listen", "127.0.0.1:0"]);
    let server = Server::start(command, "relay", &dir.path).await?;
    Ok(Deployment {
        spec: TargetSpec {
            label: "relay".into(),
            flavor: Flavor::Relay,
            front: server.base.clone(),
            back: server.base.clone(),
            channel: None,
            admin: None,
        },
        rss_pid: Some(server.pid),
        servers: vec![server],
        schema: None,
        dir: Some(dir),
    })
}

fn chatgate_env(database_url: &str, redis_url: Option<&str>) -> Vec<(String, String)> {
    let mut env: Vec<(String, String)> = [
        ("CHATGATE_LISTEN", "127.0.0.1:0"),
        ("CHATGATE_DATABASE_URL", database_url),
        ("CHATGATE_SEND_PER_SECOND", UNLIMITED),
        ("CHATGATE_SEND_BURST", UNLIMITED_BURST),
        ("CHATGATE_AUTHENTICATE_PER_MINUTE", UNLIMITED),
        ("CHATGATE_AUTHENTICATE_BURST", UNLIMITED_BURST),
        // Thousands of sessions from a few loopback addresses, a thousand
        // tabs of one conversation in `fanout`.
        ("CHATGATE_MAX_CONNECTIONS_PER_IP", UNLIMITED),
        ("CHATGATE_MAX_SESSIONS_PER_CONVERSATION", UNLIMITED),
    ]
    .into_iter()
    .map(|(k, v)| (k.to_string(), v.to_string()))
    .collect();
    if let Some(redis) = redis_url {
        env.push(("CHATGATE_REDIS_URL".into(), redis.into()));
    }
    env
}

fn chatgate_command(binary: &Path, env: &[(String, String)]) -> Command {
    let mut command = Command::new(binary);
    // Settings from the caller's environment would silently change what is
    // measured (another database, a JWT secret, low limits): start clean.
    for (key, _) in std::env::vars_os() {
        if key.to_string_lossy().starts_with("CHATGATE_") {
            command.env_remove(key);
        }
    }
    command.envs(env.iter().map(|(k, v)| (k, v)));
    command
}

/// A spawned server process.
struct Server {
    name: String,
    child: Child,
    pid: u32,
    /// `http://127.0.0.1:PORT`.
    base: String,
    demo_channel: Option<Uuid>,
    /// The admin created at first start.
    admin: Option<AdminLogin>,
    stderr_log: PathBuf,
}

impl Server {
    /// Starts `command` and waits for its `listening on http://ADDR` line,
    /// noting what a first start prints before it (admin login, demo channel).
    /// stdout keeps being drained afterwards so the server never blocks on
    /// a full pipe; stderr (the logs) goes to a file in `dir`.
    async fn start(mut command: Command, name: &str, dir: &Path) -> Result<Server> {
        let stderr_log = dir.join(format!("{name}.stderr.log"));
        let log = std::fs::File::create(&stderr_log)
            .with_context(|| format!("cannot create {}", stderr_log.display()))?;
        command
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::from(log))
            .kill_on_drop(true);
        let mut child = command
            .spawn()
            .with_context(|| format!("cannot start {name}"))?;
        let pid = child.id().ok_or_else(|| anyhow!("{name} exited at once"))?;
        let stdout = child.stdout.take().expect("stdout is piped");
        let mut lines = BufReader::new(stdout).lines();
        let mut demo_channel = None;
        let (mut admin_email, mut admin_password) = (None, None);
        let waited = tokio::time::timeout(START_TIMEOUT, async {
            while let Some(line) = lines.next_line().await? {
                let line = line.trim();
                if let Some(id) = line.strip_prefix("demo channel:") {
                    demo_channel = Some(id.trim().parse::<Uuid>()?);
                } else if let Some(email) = line.strip_prefix("admin login:") {
                    admin_email = Some(email.trim().to_string());
                } else if let Some(password) = line.strip_prefix("admin password:") {
                    admin_password = Some(password.trim().to_string());
                }
                if let Some((_, addr)) = line.split_once("listening on http://") {
                    return anyhow::Ok(Some(format!("http://{}", addr.trim())));
                }
            }
            Ok(None)
        })
        .await;
        let base = match waited {
            Ok(Ok(Some(base))) => base,
            Ok(Ok(None)) => {
                let status = child.wait().await.ok();
                bail!(
                    "{name} exited before listening ({}); its log:\n{}",
                    status.map_or("unknown status".into(), |s| s.to_string()),
                    tail(&stderr_log, 20)
                );
            }
            Ok(Err(err)) => return Err(err.context(format!("reading {name}'s output"))),
            Err(_) => bail!(
                "{name} did not start listening within {START_TIMEOUT:?}; its log:\n{}",
                tail(&stderr_log, 20)
            ),
        };
        tokio::spawn(async move { while let Ok(Some(_)) = lines.next_line().await {} });
        Ok(Server {
            name: name.to_string(),
            child,
            pid,
            base,
            demo_channel,
            admin: admin_email
                .zip(admin_password)
                .map(|(email, password)| AdminLogin { email, password }),
            stderr_log,
        })
    }

    /// WARN and ERROR lines of the server's log, prefixed with its name.
    fn log_findings(&self) -> Vec<String> {
        let Ok(text) = std::fs::read_to_string(&self.stderr_log) else {
            return Vec::new();
        };
        // Level words as the server writes them, coloured or not.
        text.lines()
            .filter(|line| line.contains(" WARN") || line.contains(" ERROR"))
            .map(|line| format!("{}: {}", self.name, line.trim()))
            .collect()
    }
}

/// The last `n` lines of a log file, for start-up failures.
fn tail(path: &Path, n: usize) -> String {
    let text = std::fs::read_to_string(path).unwrap_or_default();
    let lines: Vec<&str> = text.lines().collect();
    lines[lines.len().saturating_sub(n)..].join("\n")
}

/// A fresh PostgreSQL schema, so runs never see each other's rows.
struct Schema {
    base_url: String,
    name: String,
}

impl Schema {
    async fn create(base_url: &str) -> Result<Schema> {
        let name = format!("chatgate_bench_{}", Uuid::new_v4().simple());
        let mut conn = PgConnection::connect(base_url)
            .await
            .with_context(|| format!("cannot connect to PostgreSQL at {base_url}"))?;
        conn.execute(format!("CREATE SCHEMA {name}").as_str())
            .await
            .with_context(|| format!("cannot create schema {name}"))?;
        conn.close().await.ok();
        Ok(Schema {
            base_url: base_url.to_string(),
            name,
        })
    }

    /// The base URL with the schema as the only `search_path` entry; libpq's
    /// `options` parameter is sent at the start of every pooled connection.
    fn database_url(&self) -> String {
        let separator = if self.base_url.contains('?') {
            '&'
        } else {
            '?'
        };
        format!(
            "{}{separator}options=-c%20search_path%3D{}",
            self.base_url, self.name
        )
    }

    async fn drop_schema(&self) -> Result<()> {
        let mut conn = PgConnection::connect(&self.base_url).await?;
        conn.execute(format!("DROP SCHEMA IF EXISTS {} CASCADE", self.name).as_str())
            .await?;
        conn.close().await.ok();
        Ok(())
    }
}

/// A temporary directory for the SQLite file and server logs, removed on drop
/// unless asked to keep it.
pub struct ScratchDir {
    path: PathBuf,
    keep: bool,
}

impl ScratchDir {
    pub fn path(&self) -> &Path {
        &self.path
    }

    pub fn create() -> Result<ScratchDir> {
        let path = std::env::temp_dir().join(format!("chatgate-bench-{}", Uuid::new_v4().simple()));
        std::fs::create_dir_all(&path)
            .with_context(|| format!("cannot create {}", path.display()))?;
        Ok(ScratchDir { path, keep: false })
    }
}

impl Drop for ScratchDir {
    fn drop(&mut self) {
        if !self.keep {
            let _ = std::fs::remove_dir_all(&self.path);
        }
    }
}

/// The resident set size of a process, in bytes (`VmRSS` of `/proc/PID/status`).
pub fn rss_bytes(pid: u32) -> Result<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let line = status
        .lines()
        .find_map(|line| line.strip_prefix("VmRSS:"))
        .ok_or_else(|| anyhow!("no VmRSS in /proc/{pid}/status"))?;
    let kib: u64 = line
        .trim()
        .trim_end_matches("kB")
        .trim()
        .parse()
        .context("unreadable VmRSS")?;
    Ok(kib * 1024)
}

/// CPU time (user + system) a process has used, in seconds, from
/// `/proc/PID/stat`. Linux reports it in USER_HZ, which is 100 on every
/// architecture's user-space ABI.
pub fn cpu_seconds(pid: u32) -> Option<f64> {
    let stat = std::fs::read_to_string(format!("/proc/{pid}/stat")).ok()?;
    // The command name may contain spaces and parentheses; fields follow the last ')'.
    let rest = &stat[stat.rfind(')')? + 1..];
    let fields: Vec<&str> = rest.split_whitespace().collect();
    // After the name: state is field 3 of the man page, utime 14, stime 15.
    let utime: u64 = fields.get(11)?.parse().ok()?;
    let stime: u64 = fields.get(12)?.parse().ok()?;
    Some((utime + stime) as f64 / 100.0)
}

/// Summed CPU seconds of several processes; `None` if any cannot be read.
pub fn cpu_seconds_of(pids: &[u32]) -> Option<f64> {
    pids.iter().map(|&pid| cpu_seconds(pid)).sum()
}
