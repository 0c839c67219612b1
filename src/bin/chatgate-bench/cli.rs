//! Command line of `chatgate-bench`.
//!
//! Every argument struct also derives `Serialize` so that `--json` can record
//! the exact options a run was made with.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::{Args, Parser, Subcommand, ValueEnum};
use serde::{Deserialize, Serialize};
use uuid::Uuid;

#[derive(Debug, Parser)]
#[command(
    name = "chatgate-bench",
    version,
    about = "Load generator for chatgate (visitor HTTP + STOMP, agent REST + event socket)",
    long_about = "Load generator for chatgate's visitor and agent APIs. Without --server it \
                  spawns chatgate itself (SQLite, or two instances on PostgreSQL + Redis), and \
                  compares chat and fanout runs with a minimal built-in STOMP relay."
)]
pub struct Cli {
    #[command(subcommand)]
    pub command: Command,
}

#[derive(Debug, Subcommand)]
pub enum Command {
    /// Conversations with a sender and a second tab; senders post at a fixed total rate.
    Chat(ChatArgs),
    /// One conversation with many live sessions; one sender posts at a fixed rate.
    Fanout(FanoutArgs),
    /// Opens and holds idle sessions, sampling the server's RSS at each step.
    Idle(IdleArgs),
    /// Visitor conversations answered by agents: visitors send, agents reply to each message.
    Agents(AgentsArgs),
    /// Round robin: new visitors at a fixed rate, assigned to connected agents who close each room.
    Queue(QueueArgs),
    /// Console page times on a seeded database: rooms, messages, agents written with SQL.
    Console(ConsoleArgs),
    /// The Reports page and its CSV on the embedded default, on a history seeded with SQL:
    /// conversations over weeks, with replies, closes and ratings.
    Reports(ReportsArgs),
    /// Slow clients from one IP (trickled heads, trickled bodies, sockets that never CONNECT)
    /// while a visitor from another IP sends: each closed by its deadline, memory and latency kept.
    Slowloris(SlowlorisArgs),
    /// Attachments: concurrent big uploads (the server's RSS must stay flat: uploads are
    /// streamed), then images at a fixed rate (latency includes the thumbnail).
    Files(FilesArgs),
    /// Email fallback under chat load: replies to offline visitors are emailed to an SMTP
    /// sink the bench runs, while pairs chat; every email must arrive (even with the sink down).
    Email(EmailArgs),
    /// Webhooks under chat load: one endpoint subscribed to everything, at a receiver the
    /// bench runs; reports each event's latency from its commit beside the chat's figures.
    Webhooks(WebhooksArgs),
    /// Internal: one share of the clients, driven over stdin/stdout by the parent.
    #[command(hide = true)]
    Worker,
    /// Internal: the baseline relay server, printing its address on stdout.
    #[command(hide = true, name = "relay-server")]
    RelayServer {
        #[arg(long, default_value = "127.0.0.1:0")]
        listen: SocketAddr,
    },
}

/// How senders submit messages.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Via {
    /// STOMP `SEND /app/send` with a receipt; the RECEIPT means stored.
    Stomp,
    /// `POST /chatplugin.send`; a 200 means stored.
    Http,
}

impl Via {
    pub fn as_str(self) -> &'static str {
        match self {
            Via::Stomp => "stomp",
            Via::Http => "http",
        }
    }
}

/// Which storage a spawned chatgate uses.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum Backend {
    /// One instance on a fresh temporary SQLite file.
    Sqlite,
    /// Two instances on a fresh PostgreSQL schema, linked by Redis.
    Postgres,
}

/// The `chat` traffic: pairs of sessions, a sender and a second live
/// session each (also the background load of `email`).
#[derive(Debug, Clone, Args, Serialize)]
pub struct ChatLoad {
    /// Conversations, each with a sender and a second live session.
    #[arg(long, default_value_t = 200)]
    pub pairs: u32,
    /// Total messages per second over all senders.
    #[arg(long, default_value_t = 5000.0)]
    pub rate: f64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// How senders submit messages.
    #[arg(long, value_enum, default_value_t = Via::Stomp)]
    pub via: Via,
    /// With --via http: requests in flight per sender at most.
    #[arg(long, default_value_t = 4)]
    pub http_concurrency: usize,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct ChatArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub chat: ChatLoad,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Whether the channel's `email_fallback` is on during the `email` scenario.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum OnOff {
    On,
    Off,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct WebhooksArgs {
    /// The endpoint (off: the same run without webhooks, the baseline).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub webhooks: OnOff,
    /// Seconds to wait after the load for the last events.
    #[arg(long, default_value_t = 120.0)]
    pub webhook_deadline: f64,
    /// Seconds from the endpoint's creation during which the receiver
    /// answers 503 to everything (down), then 200 (back): the report says
    /// how long after its return the outage's backlog was caught up.
    #[arg(long, default_value_t = 0.0)]
    pub receiver_down: f64,
    /// The chat traffic, as in `chat`.
    #[command(flatten)]
    #[serde(flatten)]
    pub chat: ChatLoad,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct EmailArgs {
    /// Offline visitors: each gives an email, sends one message over HTTP and leaves
    /// (no socket); each gets one agent reply during the run, so one email.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(1..=100_000))]
    pub visitors: u32,
    /// The channel's email_fallback (off: the same run without email, the baseline).
    #[arg(long, value_enum, default_value_t = OnOff::On)]
    pub fallback: OnOff,
    /// Start the bench's SMTP sink only this many seconds after the load starts
    /// (SMTP down meanwhile: the outbox must deliver every email later).
    #[arg(long)]
    pub smtp_down: Option<f64>,
    /// The spawned server's CHATGATE_EMAIL_OFFLINE_DELAY_MS (short, so emails go out during the run).
    #[arg(long, default_value_t = 1000)]
    pub offline_delay_ms: u64,
    /// Seconds to wait after the load for every expected email to reach the sink.
    #[arg(long, default_value_t = 120.0)]
    pub email_deadline: f64,
    /// The chat traffic meanwhile, as in `chat` (the replies are spread over
    /// its measured seconds).
    #[command(flatten)]
    #[serde(flatten)]
    pub chat: ChatLoad,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct FanoutArgs {
    /// Live sessions of the one conversation that receive every message.
    #[arg(long, default_value_t = 1000)]
    pub sessions: u32,
    /// Messages per second from the one sender.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// How the sender submits messages.
    #[arg(long, value_enum, default_value_t = Via::Stomp)]
    pub via: Via,
    /// With --via http: requests in flight at most.
    #[arg(long, default_value_t = 32)]
    pub http_concurrency: usize,
    #[command(flatten)]
    pub traffic: TrafficArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct AgentsArgs {
    /// Visitor conversations (one STOMP session each), answered by the agents round-robin.
    #[arg(long, default_value_t = 200)]
    pub visitors: u32,
    /// Agents, each with one event socket; each owns visitors/agents conversations.
    #[arg(long, default_value_t = 20)]
    pub agents: u32,
    /// Total visitor messages per second over all conversations; agents reply to each.
    #[arg(long, default_value_t = 1000.0)]
    pub rate: f64,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// Reply requests (REST) in flight per agent at most.
    #[arg(long, default_value_t = 16)]
    pub http_concurrency: usize,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct QueueArgs {
    /// New conversations per second (authenticate, then a first message over HTTP).
    #[arg(long, default_value_t = 200.0)]
    pub rate: f64,
    /// Agents, each with one event socket; each closes every room it is given.
    #[arg(long, default_value_t = 10)]
    pub agents: u32,
    /// Measured seconds (after the warm-up).
    #[arg(long, default_value_t = 10.0)]
    pub duration: f64,
    /// The channel's max_open_per_agent (1..100) during the run.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub max_open: u32,
    #[command(flatten)]
    pub load: LoadArgs,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct ConsoleArgs {
    /// Rooms in the seeded database (visitor rooms, plus a few team rooms).
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub rooms: u32,
    /// Messages in the seeded database, spread unevenly over the rooms (at least one each).
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Agents besides the admin; rooms not queued are shared between them and the admin.
    #[arg(long, default_value_t = 20)]
    pub agents: u32,
    /// Measured requests per page (after a few unmeasured warm-up ones).
    #[arg(long, default_value_t = 200, value_parser = clap::value_parser!(u32).range(1..))]
    pub requests: u32,
    /// Requests of a page in flight at once (1: sequential).
    #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
    pub concurrency: u32,
    /// Page time the console should stay under at p99, in ms: pages over it are marked (not failed).
    #[arg(long, default_value_t = 50.0)]
    pub budget_ms: f64,
    /// SQLite: keep the seeded database at this path and reuse it on later runs
    /// with the same --rooms/--messages/--agents (a sidecar `<path>.seed.json` says how it was seeded).
    #[arg(long)]
    pub reuse: Option<PathBuf>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct ReportsArgs {
    /// Visitor conversations in the seeded history.
    #[arg(long, default_value_t = 10_000, value_parser = clap::value_parser!(u32).range(1..=1_000_000))]
    pub conversations: u32,
    /// Messages in it (at least two per conversation: the visitor's and a reply).
    #[arg(long, default_value_t = 1_000_000)]
    pub messages: u64,
    /// Channels (the demo channel and more).
    #[arg(long, default_value_t = 3, value_parser = clap::value_parser!(u32).range(1..=100))]
    pub channels: u32,
    /// Agents besides the admin.
    #[arg(long, default_value_t = 8)]
    pub agents: u32,
    /// Days the conversations are spread over, ending today; the reports measured cover them all.
    #[arg(long, default_value_t = 90, value_parser = clap::value_parser!(u32).range(1..=366))]
    pub days: u32,
    /// Measured requests per page (after a few unmeasured warm-up ones), one at a time.
    #[arg(long, default_value_t = 100, value_parser = clap::value_parser!(u32).range(1..))]
    pub requests: u32,
    /// Page time the reports should stay under at p99, in ms: pages over it are marked (not failed).
    #[arg(long, default_value_t = 100.0)]
    pub budget_ms: f64,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct SlowlorisArgs {
    /// Slow connections from the one attacking IP, a third of each kind.
    #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u32).range(3..))]
    pub connections: u32,
    /// The spawned server's header, body and CONNECT deadlines, in seconds
    /// (with --server: the deadlines it was started with).
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub deadline: u64,
    /// How late after its deadline a close still counts as on time, in seconds.
    #[arg(long, default_value_t = 1.0)]
    pub slack: f64,
    /// The spawned server's cap of connections per client IP (default:
    /// --connections, so the slow ones fill it; 1,000 is the server's default).
    #[arg(long)]
    pub per_ip_cap: Option<u32>,
    /// Bytes of header a trickling head sends at once before trickling (the
    /// worst case is just under the server's head cap).
    #[arg(long, default_value_t = 0)]
    pub head_bytes: usize,
    /// A slow client sends one more byte (or heart-beat) this often, in milliseconds.
    #[arg(long, default_value_t = 1000)]
    pub trickle_ms: u64,
    /// Messages per second the normal visitor sends (HTTP) meanwhile.
    #[arg(long, default_value_t = 20.0)]
    pub visitor_rate: f64,
    /// The normal visitor's p99 must stay under this, in milliseconds.
    #[arg(long, default_value_t = 100.0)]
    pub p99_budget_ms: f64,
    /// The server's RSS may grow by at most this during the attack, in MiB.
    #[arg(long, default_value_t = 50.0)]
    pub rss_budget_mib: f64,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// Which parts of the `files` scenario to run.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum FilesPart {
    /// Only the concurrent big uploads (memory).
    Big,
    /// Only the images at a fixed rate (latency).
    Images,
}

/// The image format of the `files` scenario's images.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ImageFormat {
    Jpeg,
    Png,
    /// A PDF of the same size instead of an image: the control, without a thumbnail.
    Pdf,
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct FilesArgs {
    /// Big uploads sent at once (part 1), each on its own connection.
    #[arg(long, default_value_t = 50, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub concurrency: u32,
    /// Size of each big upload (a PDF): bytes, or with a unit (KB, KiB, MB, MiB, GB, GiB).
    /// A spawned server's upload cap is raised to it when it is over the 10 MiB default.
    #[arg(long, default_value = "10MiB", value_parser = parse_bytes)]
    pub size: u64,
    /// Part 1 passes when the server's RSS rises by less than this during the uploads, in MiB.
    #[arg(long, default_value_t = 64.0)]
    pub rss_budget_mib: f64,
    /// How often the server's RSS is sampled during part 1, in milliseconds.
    #[arg(long, default_value_t = 10, value_parser = clap::value_parser!(u64).range(1..))]
    pub sample_ms: u64,
    /// Image uploads per second (part 2), open loop.
    #[arg(long, default_value_t = 100.0)]
    pub rate: f64,
    /// Measured seconds of part 2 (after the warm-up).
    #[arg(long, default_value_t = 20.0)]
    pub duration: f64,
    /// Approximate size of each image: bytes, or with a unit (KB, KiB, ...).
    #[arg(long, default_value = "200KB", value_parser = parse_bytes)]
    pub image_size: u64,
    /// The image's width in pixels (noise over a gradient, tuned to --image-size).
    #[arg(long, default_value_t = 1280, value_parser = clap::value_parser!(u32).range(16..=10_000))]
    pub image_width: u32,
    /// The image's height in pixels.
    #[arg(long, default_value_t = 800, value_parser = clap::value_parser!(u32).range(16..=10_000))]
    pub image_height: u32,
    /// The images' format (`pdf`: the same uploads without a thumbnail to make).
    #[arg(long, value_enum, default_value_t = ImageFormat::Jpeg)]
    pub image_format: ImageFormat,
    /// Visitors (conversations) the images are spread over, round robin.
    #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=10_000))]
    pub visitors: u32,
    /// Image uploads in flight at most; later ones wait (still timed from when they were due).
    #[arg(long, default_value_t = 512, value_parser = clap::value_parser!(u32).range(1..))]
    pub max_in_flight: u32,
    /// Part 2 passes when the upload's p99 (planned time to 201) is under this, in milliseconds.
    #[arg(long, default_value_t = 200.0)]
    pub p99_budget_ms: f64,
    /// Run only one part.
    #[arg(long, value_enum)]
    pub only: Option<FilesPart>,
    #[command(flatten)]
    pub load: LoadArgs,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    #[command(flatten)]
    pub target: TargetArgs,
}

/// A byte count: a number, optionally followed by B, KB, KiB, MB, MiB, GB
/// or GiB (any case; K, M and G alone are decimal too).
pub fn parse_bytes(text: &str) -> Result<u64, String> {
    let text = text.trim();
    let split = text
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(text.len());
    let (number, unit) = text.split_at(split);
    let number: f64 = number
        .parse()
        .map_err(|_| format!("`{text}` is not a size (e.g. 10MiB, 200KB, 1048576)"))?;
    let factor: f64 = match unit.trim().to_ascii_lowercase().as_str() {
        "" | "b" => 1.0,
        "k" | "kb" => 1e3,
        "kib" => 1024.0,
        "m" | "mb" => 1e6,
        "mib" => 1024.0 * 1024.0,
        "g" | "gb" => 1e9,
        "gib" => 1024.0 * 1024.0 * 1024.0,
        other => return Err(format!("unknown size unit `{other}` in `{text}`")),
    };
    let bytes = (number * factor).round();
    if !(1.0..=1e15).contains(&bytes) {
        return Err(format!("`{text}` is out of range"));
    }
    Ok(bytes as u64)
}

#[derive(Debug, Clone, Args, Serialize)]
pub struct IdleArgs {
    /// Total sessions held at each RSS sample, ascending.
    #[arg(long, value_delimiter = ',', default_value = "1000,5000,10000,19000")]
    pub steps: Vec<usize>,
    /// Seconds to let the server settle before each RSS sample.
    #[arg(long, default_value_t = 1.0)]
    pub settle: f64,
    #[command(flatten)]
    pub target: TargetArgs,
    #[command(flatten)]
    pub run: RunArgs,
}

/// Options of every scenario that sends messages.
#[derive(Debug, Clone, Args, Serialize)]
pub struct LoadArgs {
    /// Seconds of load before the measurement starts (excluded from the figures).
    #[arg(long, default_value_t = 1.0)]
    pub warmup: f64,
    /// Seconds to wait after the last send for outstanding receipts and deliveries.
    #[arg(long, default_value_t = 5.0)]
    pub drain: f64,
}

/// Options of the scenarios that are also run against the built-in relay.
#[derive(Debug, Clone, Args, Serialize)]
pub struct TrafficArgs {
    #[command(flatten)]
    #[serde(flatten)]
    pub load: LoadArgs,
    /// Skip the comparison run against the built-in relay.
    #[arg(long)]
    pub no_relay: bool,
}

/// Where chatgate runs.
#[derive(Debug, Clone, Args, Serialize)]
pub struct TargetArgs {
    /// Base URL of a running chatgate (e.g. http://127.0.0.1:8080); without it the bench spawns chatgate.
    #[arg(long)]
    pub server: Option<String>,
    /// With --server: a second instance of the same deployment; receivers connect there.
    #[arg(long, requires = "server")]
    pub server_b: Option<String>,
    /// With --server: the channel visitors authenticate on.
    #[arg(long)]
    pub channel_id: Option<Uuid>,
    /// With --server (agents scenario): an admin of the channel's tenant, who creates the agents.
    #[arg(long, requires = "server")]
    pub admin_email: Option<String>,
    /// With --server: that admin's password.
    #[arg(long, env = "CHATGATE_BENCH_ADMIN_PASSWORD", hide_env_values = true)]
    #[serde(skip)]
    pub admin_password: Option<String>,
    /// With --server: the server's pid, to sample its RSS.
    #[arg(long)]
    pub server_pid: Option<u32>,
    /// The chatgate binary to spawn (default: `chatgate` next to this executable).
    #[arg(long)]
    pub chatgate: Option<PathBuf>,
    /// Storage of the spawned chatgate.
    #[arg(long, value_enum, default_value_t = Backend::Sqlite)]
    pub backend: Backend,
    /// With --backend postgres: the database; the bench creates a fresh schema in it.
    #[arg(long, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    pub postgres_url: String,
    /// With --backend postgres: the Redis linking the two instances.
    #[arg(long, default_value = "redis://127.0.0.1:6379")]
    pub redis_url: String,
}

/// How the bench itself runs.
#[derive(Debug, Clone, Args, Serialize)]
pub struct RunArgs {
    /// Processes to spread the client sockets over (default: one per 19,500 sockets).
    #[arg(long)]
    pub procs: Option<usize>,
    /// Also write the results as JSON to this file.
    #[arg(long)]
    pub json: Option<PathBuf>,
    /// Loopback source addresses to spread sockets over (127.0.0.2, 127.0.0.3, ...).
    #[arg(long, default_value_t = 8, value_parser = clap::value_parser!(u8).range(1..=250))]
    pub source_ips: u8,
    /// Sessions being opened at once during setup and ramps.
    #[arg(long, default_value_t = 256)]
    pub connect_concurrency: usize,
}

/// Sockets one bench process holds at most by default: the open-file cap is
/// 20,000 per process, and the HTTP connections (at most one per session
/// being opened, `--connect-concurrency`), pipes and the runtime need the
/// rest. Fewer processes is better: on a small machine every extra runtime
/// takes CPU from the server being measured (19,000 idle sessions opened
/// at 5,400/s from one process, 3,000/s from two).
const SOCKETS_PER_PROC: usize = 19_500;

impl RunArgs {
    /// The number of client processes for `sockets` client sockets.
    pub fn procs_for(&self, sockets: usize) -> usize {
        self.procs
            .unwrap_or_else(|| sockets.div_ceil(SOCKETS_PER_PROC))
            .max(1)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_take_units() {
        assert_eq!(parse_bytes("1048576"), Ok(1_048_576));
        assert_eq!(parse_bytes("10MiB"), Ok(10 * 1024 * 1024));
        assert_eq!(parse_bytes("200KB"), Ok(200_000));
        assert_eq!(parse_bytes("200 kib"), Ok(204_800));
        assert_eq!(parse_bytes("1.5M"), Ok(1_500_000));
        assert!(parse_bytes("ten").is_err());
        assert!(parse_bytes("10 parsecs").is_err());
        assert!(parse_bytes("0").is_err());
        assert!(parse_bytes("").is_err());
    }

    #[test]
    fn files_options_parse() {
        let cli = Cli::try_parse_from([
            "chatgate-bench",
            "files",
            "--concurrency",
            "5",
            "--size",
            "1MiB",
            "--rate",
            "10",
            "--only",
            "images",
            "--backend",
            "postgres",
        ])
        .expect("valid options");
        let Command::Files(args) = cli.command else {
            panic!("not the files scenario");
        };
        assert_eq!(args.concurrency, 5);
        assert_eq!(args.size, 1024 * 1024);
        assert_eq!(args.image_size, 200_000);
        assert_eq!(args.only, Some(FilesPart::Images));
        assert_eq!(args.target.backend, Backend::Postgres);
        assert!(Cli::try_parse_from(["chatgate-bench", "files", "--size", "big"]).is_err());
        assert!(Cli::try_parse_from(["chatgate-bench", "files", "--concurrency", "0"]).is_err());
    }
}
