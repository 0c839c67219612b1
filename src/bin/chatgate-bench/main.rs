//! `chatgate-bench`: a load generator for chatgate's visitor and agent APIs.
//!
//! ```text
//! chatgate-bench chat   [--pairs 200] [--rate 5000] [--duration 10] [--via stomp|http]
//! chatgate-bench fanout [--sessions 1000] [--rate 100] [--duration 10]
//! chatgate-bench idle   [--steps 1000,5000,10000,19000]
//! chatgate-bench agents [--visitors 200] [--agents 20] [--rate 1000] [--duration 10]
//! chatgate-bench queue  [--rate 200] [--agents 10] [--duration 10] [--max-open 100]
//! chatgate-bench console [--rooms 10000] [--messages 1000000] [--requests 200] [--reuse PATH]
//! chatgate-bench reports [--conversations 10000] [--messages 1000000] [--days 90] [--requests 100]
//! chatgate-bench slowloris [--connections 1000] [--deadline 10] [--visitor-rate 20]
//! chatgate-bench files  [--concurrency 50] [--size 10MiB] [--rate 100] [--duration 20]
//! chatgate-bench email  [--visitors 1000] [--fallback on|off] [--smtp-down SECS] [--pairs 200] [--rate 5000]
//! chatgate-bench webhooks [--webhooks on|off] [--receiver-down SECS] [--pairs 200] [--rate 1000]
//! ```
//!
//! Without `--server` the bench spawns chatgate itself: one instance on a
//! temporary SQLite file, or (`--backend postgres`) two instances on a fresh
//! PostgreSQL schema linked by Redis, with senders on instance A and
//! receivers on instance B so that every delivery crosses the bus.
//!
//! `agents` has visitors write to agents who reply to every message, over
//! the agent API (REST and the `/api/websocketd/` event socket).
//!
//! `queue` starts new visitors at a fixed rate on a round robin channel and
//! measures how long each waits from its first message to its agent.
//!
//! `console` seeds a database with SQL (rooms, messages, agents), logs into
//! the console as the admin and times every page.
//!
//! `slowloris` holds slow connections from one IP (request heads and bodies
//! trickled a byte at a time, WebSockets that send only heart-beats and
//! never CONNECT) while a visitor on another IP sends messages, and checks
//! that each is closed by its deadline, the next one from that IP is refused
//! at once, the server's RSS stays within budget and the visitor's p99 too.
//!
//! `files` sends `--concurrency` big uploads at once while sampling the
//! server's RSS (uploads are streamed, so it must stay nearly flat), then
//! images at a fixed rate, timing each upload with its thumbnail.
//!
//! `email` runs the `chat` load while an agent replies to `--visitors`
//! offline visitors who gave an email, with the channel's email fallback on
//! or off; the bench's own SMTP sink counts the emails, every one of which
//! must arrive (`--smtp-down`: the sink starts late, the outbox retries).
//!
//! `webhooks` runs the `chat` load with one endpoint subscribed to every
//! event at the bench's own receiver (or none: `--webhooks off`, the
//! baseline), and reports each event's latency from its commit; with
//! `--receiver-down`, the receiver answers 503 at first, then how long after
//! its return the backlog was caught up.
//!
//! `chat` and `fanout` then run the same load against a minimal built-in
//! relay (same STOMP codec and body shape, no storage, no auth) in its own
//! process, and report chatgate's figures also as a ratio of the relay's:
//! measured at the same moment on the same machine, the ratio says how much
//! chatgate's storage and routing cost on top of moving the frames.
//!
//! Load is open loop (each message is sent at its planned time, however
//! slow earlier ones were) and latency is measured from the planned time,
//! so back-pressure cannot hide latency. Client sockets are spread over
//! several loopback source addresses and, when needed, several processes
//! (`--procs`): a process may hold at most 20,000 open files here.
//!
//! The exit status is 0 only when every stored message reached every
//! receiving session and nothing failed, so the bench doubles as a CI smoke
//! test (e.g. `chat --pairs 10 --rate 200 --duration 2`).
//!
//! Layout: `cli` (options), `client` (visitor and agent clients), `spawn`
//! (targets and server processes), `relay` (the baseline server), `shard`
//! (running clients in worker processes), `scenarios` (chat, fanout, idle,
//! agents, queue, console, slowloris, files, email), `report` (table and JSON),
//! `clock` (timestamps shared across processes).

mod cli;
mod client;
mod clock;
mod relay;
mod report;
mod scenarios;
mod shard;
mod spawn;

use std::process::ExitCode;
use std::time::Duration;

use clap::Parser;

use cli::{Cli, Command};

fn main() -> ExitCode {
    let cli = Cli::parse();
    let outcome = match cli.command {
        Command::Worker => shard::worker_main().map(|()| true),
        Command::RelayServer { listen } => relay::main(listen).map(|()| true),
        command => run_scenario(command),
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        // The scenario already said what went wrong.
        Ok(false) => ExitCode::FAILURE,
        Err(err) => {
            eprintln!("chatgate-bench: error: {err:#}");
            ExitCode::from(2)
        }
    }
}

fn run_scenario(command: Command) -> anyhow::Result<bool> {
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let outcome = runtime.block_on(async {
        let scenario = async {
            match &command {
                Command::Chat(args) => scenarios::chat(args).await,
                Command::Fanout(args) => scenarios::fanout(args).await,
                Command::Idle(args) => scenarios::idle::run(args).await,
                Command::Agents(args) => scenarios::agents::run(args).await,
                Command::Queue(args) => scenarios::queue::run(args).await,
                Command::Console(args) => scenarios::console::run(args).await,
                Command::Reports(args) => scenarios::reports::run(args).await,
                Command::Slowloris(args) => scenarios::slowloris::run(args).await,
                Command::Files(args) => scenarios::files::run(args).await,
                Command::Email(args) => scenarios::email::run(args).await,
                Command::Webhooks(args) => scenarios::webhooks::run(args).await,
                Command::Worker | Command::RelayServer { .. } => unreachable!("handled in main"),
            }
        };
        // On Ctrl-C the scenario is dropped, which kills spawned servers and
        // removes their scratch directory instead of leaving them behind.
        tokio::select! {
            outcome = scenario => outcome,
            _ = tokio::signal::ctrl_c() => Err(anyhow::anyhow!("interrupted")),
        }
    });
    // Dropping the runtime kills spawned servers and workers (kill_on_drop)
    // even when the scenario failed; don't wait long for stragglers.
    runtime.shutdown_timeout(Duration::from_secs(2));
    outcome
}
