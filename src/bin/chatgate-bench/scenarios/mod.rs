//! Scenarios: each is a setup (which sessions, on which target), a load, and
//! a report, built on the common pieces: `client` (sessions), `spawn`
//! (targets), `shard` (spreading clients over processes) and `report`.
//!
//! `chat` and `fanout` are two shapes of the same traffic machinery
//! ([`traffic`]); `idle` holds sessions and samples memory ([`idle`]);
//! `agents` has visitors talk to agents and agents reply ([`agents`]);
//! `queue` has new visitors assigned to agents by round robin ([`queue`]);
//! `console` times the console's pages on a seeded database ([`console`]);
//! `reports` times the Reports page and its CSV on a seeded history ([`reports`]);
//! `slowloris` holds slow clients against the server's deadlines and caps
//! ([`slowloris`]); `files` times uploads and the server's memory during
//! them ([`files`]); `email` runs the chat traffic while offline visitors'
//! replies are emailed to an SMTP sink of the bench's own ([`email`]).

pub mod agents;
pub mod console;
pub mod email;
pub mod files;
pub mod idle;
pub mod queue;
pub mod reports;
pub mod slowloris;
pub mod traffic;
pub mod webhooks;

use anyhow::Result;
use serde::{Deserialize, Serialize};

use crate::cli::{ChatArgs, ChatLoad, FanoutArgs, LoadArgs, RunArgs, TargetArgs, TrafficArgs, Via};
use crate::report::{self, TrafficRow};
use crate::spawn;
use traffic::TrafficSpec;

impl ChatLoad {
    /// The traffic of `--pairs` conversations, a sender and a second tab each.
    pub fn spec(&self, load: &LoadArgs) -> TrafficSpec {
        TrafficSpec {
            conversations: self.pairs.max(1),
            receivers: 1,
            rate: self.rate,
            warmup: load.warmup,
            duration: self.duration,
            drain: load.drain,
            via: self.via,
            http_concurrency: self.http_concurrency,
        }
    }

    /// How a title names it.
    pub fn describe(&self, load: &LoadArgs) -> String {
        format!(
            "{} pairs, {} msg/s for {} s after {} s warm-up",
            self.pairs, self.rate, self.duration, load.warmup
        )
    }
}

/// `chat`: `--pairs` conversations, each with a sender and a second tab.
pub async fn chat(args: &ChatArgs) -> Result<bool> {
    let spec = args.chat.spec(&args.traffic.load);
    let title = format!("chat: {}", args.chat.describe(&args.traffic.load));
    run_traffic(
        "chat",
        &title,
        spec,
        &args.target,
        &args.traffic,
        &args.run,
        args,
    )
    .await
}

/// `fanout`: one conversation, one sender, `--sessions` receiving sessions.
pub async fn fanout(args: &FanoutArgs) -> Result<bool> {
    let spec = TrafficSpec {
        conversations: 1,
        receivers: args.sessions,
        rate: args.rate,
        warmup: args.traffic.load.warmup,
        duration: args.duration,
        drain: args.traffic.load.drain,
        via: args.via,
        http_concurrency: args.http_concurrency,
    };
    let title = format!(
        "fanout: 1 conversation, {} sessions, {} msg/s for {} s after {} s warm-up",
        args.sessions, args.rate, args.duration, args.traffic.load.warmup
    );
    run_traffic(
        "fanout",
        &title,
        spec,
        &args.target,
        &args.traffic,
        &args.run,
        args,
    )
    .await
}

/// The open-loop schedule of the scenarios that send: message `k` is
/// planned `k / rate` seconds after the start; the first `warmup` seconds
/// are excluded from the figures, the next `duration` seconds measured.
#[derive(Debug, Clone, Copy, Serialize, Deserialize)]
pub struct Timeline {
    pub rate: f64,
    pub warmup: f64,
    pub duration: f64,
}

impl Timeline {
    /// Checks the options a timeline and a drain come from.
    pub fn check(&self, drain: f64) -> Result<()> {
        if !(self.rate > 0.0 && self.duration > 0.0 && self.warmup >= 0.0 && drain >= 0.0) {
            anyhow::bail!(
                "--rate and --duration must be positive, --warmup and --drain not negative"
            );
        }
        Ok(())
    }

    /// Messages in the whole schedule, warm-up included.
    pub fn total_messages(&self) -> u64 {
        (self.rate * (self.warmup + self.duration)).floor() as u64
    }

    /// When message `k` is planned, in microseconds after the start.
    pub fn offset_micros(&self, k: u64) -> i64 {
        (k as f64 * 1e6 / self.rate).round() as i64
    }

    /// Whether `micros` (Unix) falls in the measured window of a schedule
    /// that started at `start`.
    pub fn in_window(&self, start: i64, micros: i64) -> bool {
        let from = start + (self.warmup * 1e6) as i64;
        let to = from + (self.duration * 1e6) as i64;
        (from..to).contains(&micros)
    }

    /// The end of the schedule (Unix microseconds) that started at `start`.
    pub fn end(&self, start: i64) -> i64 {
        start + ((self.warmup + self.duration) * 1e6) as i64
    }
}

/// Runs a traffic scenario against chatgate, then against the relay, prints
/// the table, writes the JSON; `Ok(false)` when anything was lost or failed.
async fn run_traffic(
    scenario: &str,
    title: &str,
    spec: TrafficSpec,
    target: &TargetArgs,
    traffic_args: &TrafficArgs,
    run: &RunArgs,
    options: &impl Serialize,
) -> Result<bool> {
    spec.timeline().check(spec.drain)?;
    let mut rows: Vec<TrafficRow> = Vec::new();
    let deployment = spawn::chatgate(target, true).await?;
    let result = traffic::run(&spec, &deployment, run).await;
    deployment.shutdown().await;
    rows.push(result?);

    if !traffic_args.no_relay {
        // The relay speaks STOMP only, so an HTTP run is compared with
        // STOMP sends on the relay; the table shows which.
        let relay_spec = TrafficSpec {
            via: Via::Stomp,
            ..spec.clone()
        };
        let relay = spawn::relay().await?;
        let result = traffic::run(&relay_spec, &relay, run).await;
        relay.shutdown().await;
        match result {
            Ok(row) => {
                rows[0].ratio_to_relay = Some(report::ratios(&rows[0], &row));
                rows.push(row);
            }
            Err(err) => {
                report::print_traffic(title, &rows);
                return Err(err.context("the relay run failed"));
            }
        }
    }

    report::print_traffic(title, &rows);
    if let Some(path) = &run.json {
        report::write_json(path, scenario, options, &rows)?;
    }
    let failed: Vec<&TrafficRow> = rows.iter().filter(|r| r.failed()).collect();
    for row in &failed {
        eprintln!(
            "chatgate-bench: FAILED: {}: {} errors, {} lost (details above)",
            row.target,
            row.errors.total(),
            row.lost
        );
    }
    Ok(failed.is_empty())
}
