//! `webhooks`: the `chat` load while one webhook endpoint, subscribed to
//! every event, receives them at a receiver the bench runs (a warp server
//! on 127.0.0.1:0 that answers 200 at once).
//!
//! Measured: each event's latency from its commit (the receive time minus
//! the event's `created_at`, stamped in the change's own transaction) and
//! the chat's own figures, so a run with `--webhooks off` (no endpoint: the
//! chat pays nothing) is the baseline of one with it on. After the load the
//! bench waits (up to `--webhook-deadline`) until no event has come for a
//! second. The run fails when the chat lost or failed anything, or (on) no
//! event came at all.

use std::collections::HashSet;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use hdrhistogram::Histogram;
use serde::Serialize;
use serde_json::{json, Value};
use tokio::time::Instant;
use warp::Filter;

use super::traffic;
use crate::cli::{OnOff, WebhooksArgs};
use crate::client::{self, Endpoint, HttpPool, Sources};
use crate::clock;
use crate::report::{self, Percentiles, TrafficRow};
use crate::spawn;

/// What the receiver saw.
struct Received {
    /// Until when it answers 503 to everything (`--receiver-down`).
    down_until: Option<Instant>,
    /// Of the events created before `down_until`: how many came, and when
    /// the last of them came (the outage's backlog caught up).
    backlog: u64,
    backlog_last: Option<Instant>,
    /// Answers 503 sent while down.
    refused: u64,
    /// Receive time minus `created_at`, in microseconds.
    latency: Histogram<u64>,
    ids: HashSet<String>,
    requests: u64,
    unreadable: u64,
    last: Option<Instant>,
}

/// The bench's receiver: answers 200 to every POST and notes its latency.
struct Receiver {
    url: String,
    seen: Arc<Mutex<Received>>,
}

impl Receiver {
    async fn start() -> Result<Receiver> {
        let seen = Arc::new(Mutex::new(Received {
            down_until: None,
            backlog: 0,
            backlog_last: None,
            refused: 0,
            latency: Histogram::new_with_bounds(1, 3_600_000_000, 3)?,
            ids: HashSet::new(),
            requests: 0,
            unreadable: 0,
            last: None,
        }));
        let noted = seen.clone();
        let route = warp::post()
            .and(warp::body::bytes())
            .map(move |body: bytes::Bytes| {
                let now = clock::now_micros();
                let event: Option<Value> = serde_json::from_slice(&body).ok();
                let created = event
                    .as_ref()
                    .and_then(|e| e["created_at"].as_str())
                    .and_then(|t| chrono::DateTime::parse_from_rfc3339(t).ok())
                    .map(|t| t.timestamp_micros());
                let mut seen = noted.lock().unwrap_or_else(|e| e.into_inner());
                seen.requests += 1;
                let at = Instant::now();
                if let Some(until) = seen.down_until {
                    if at < until {
                        seen.refused += 1;
                        return warp::http::StatusCode::SERVICE_UNAVAILABLE;
                    }
                }
                seen.last = Some(at);
                match (event, created) {
                    (Some(event), Some(created)) => {
                        let _ = seen.latency.record((now - created).max(1) as u64);
                        if let Some(until) = seen.down_until {
                            // Created before the receiver came back: part of
                            // the outage's backlog.
                            let up_at = now - until.elapsed().as_micros() as i64;
                            if created < up_at {
                                seen.backlog += 1;
                                seen.backlog_last = Some(at);
                            }
                        }
                        if let Some(id) = event["id"].as_str() {
                            seen.ids.insert(id.to_string());
                        }
                    }
                    _ => seen.unreadable += 1,
                }
                warp::http::StatusCode::OK
            });
        let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await?;
        let addr = listener.local_addr()?;
        tokio::spawn(warp::serve(route).incoming(listener).run());
        Ok(Receiver {
            url: format!("http://{addr}/hooks"),
            seen,
        })
    }
}

/// The webhook side of a run.
#[derive(Debug, Clone, Serialize)]
pub struct WebhookRow {
    pub on: bool,
    pub events: u64,
    pub requests: u64,
    pub unreadable: u64,
    /// Receive time minus the event's commit time.
    pub latency_ms: Percentiles,
    /// How long after the load the last event came.
    pub drain_secs: f64,
    /// With `--receiver-down`: how long it was down, the 503s it answered,
    /// the events created while it was down, and how long after its return
    /// the last of them came.
    pub down_secs: f64,
    pub refused: u64,
    pub backlog: u64,
    pub caught_up_secs: Option<f64>,
}

#[derive(Serialize)]
struct WebhooksRun<'a> {
    chat: &'a TrafficRow,
    webhooks: &'a WebhookRow,
}

pub async fn run(args: &WebhooksArgs) -> Result<bool> {
    if args.target.server.is_some() {
        bail!("the webhooks scenario spawns chatgate itself; drop --server");
    }
    let spec = args.chat.spec(&args.load);
    spec.timeline().check(spec.drain)?;
    let on = args.webhooks == OnOff::On;
    let receiver = Receiver::start().await?;
    // The receiver listens on 127.0.0.1: a private target.
    let deployment = spawn::chatgate_with(
        &args.target,
        true,
        &[("CHATGATE_WEBHOOK_ALLOW_PRIVATE", "1")],
    )
    .await?;
    let down = Duration::from_secs_f64(args.receiver_down.max(0.0));
    let result = async {
        if on {
            subscribe(&deployment, &receiver, args).await?;
            if !down.is_zero() {
                receiver
                    .seen
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .down_until = Some(Instant::now() + down);
            }
        }
        let chat = traffic::run_with(&spec, &deployment, &args.run, None).await?;
        let ended = Instant::now();
        let deadline = ended + Duration::from_secs_f64(args.webhook_deadline.max(0.0));
        // Until no event has come for a second (or the deadline).
        loop {
            let last = receiver.seen.lock().unwrap_or_else(|e| e.into_inner()).last;
            let quiet = last.is_none_or(|l| l.elapsed() > Duration::from_secs(1));
            if (quiet && ended.elapsed() > Duration::from_secs(1)) || Instant::now() > deadline {
                break;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let seen = receiver.seen.lock().unwrap_or_else(|e| e.into_inner());
        let row = WebhookRow {
            on,
            events: seen.ids.len() as u64,
            requests: seen.requests,
            unreadable: seen.unreadable,
            latency_ms: Percentiles::of(&seen.latency),
            drain_secs: seen
                .last
                .map_or(0.0, |l| l.saturating_duration_since(ended).as_secs_f64()),
            down_secs: down.as_secs_f64(),
            refused: seen.refused,
            backlog: seen.backlog,
            caught_up_secs: seen.down_until.and_then(|until| {
                seen.backlog_last
                    .map(|last| last.saturating_duration_since(until).as_secs_f64())
            }),
        };
        anyhow::Ok((chat, row))
    }
    .await;
    deployment.shutdown().await;
    let (chat, hooks) = result?;

    let title = format!(
        "webhooks: one endpoint subscribed to everything ({}) during chat: {}",
        if on { "on" } else { "off: the baseline" },
        args.chat.describe(&args.load)
    );
    report::print_traffic(&title, std::slice::from_ref(&chat));
    let l = &hooks.latency_ms;
    println!(
        "  webhook events: {} received ({} requests, {} unreadable); from commit: p50 {:.1} ms, p99 {:.1} ms, max {:.1} ms; last {:.1} s after the load",
        hooks.events, hooks.requests, hooks.unreadable, l.p50, l.p99, l.max, hooks.drain_secs
    );
    if hooks.down_secs > 0.0 {
        println!(
            "  receiver down for the first {:.0} s ({} requests answered 503): {} events created meanwhile; the last of them came {} after its return",
            hooks.down_secs,
            hooks.refused,
            hooks.backlog,
            hooks
                .caught_up_secs
                .map_or("never".to_string(), |s| format!("{s:.1} s"))
        );
    }
    if let Some(path) = &args.run.json {
        let runs = [WebhooksRun {
            chat: &chat,
            webhooks: &hooks,
        }];
        report::write_json(path, "webhooks", args, &runs)?;
    }
    let mut ok = true;
    if chat.failed() {
        eprintln!(
            "chatgate-bench: FAILED: {}: chat: {} errors, {} lost (details above)",
            chat.target,
            chat.errors.total(),
            chat.lost
        );
        ok = false;
    }
    if hooks.down_secs > 0.0 && hooks.caught_up_secs.is_none() {
        eprintln!("chatgate-bench: FAILED: the receiver's outage was never caught up");
        ok = false;
    }
    if on && hooks.events == 0 {
        eprintln!("chatgate-bench: FAILED: no webhook event reached the receiver");
        ok = false;
    }
    Ok(ok)
}

/// The endpoint: the admin subscribes the receiver to everything.
async fn subscribe(
    target: &spawn::Deployment,
    receiver: &Receiver,
    args: &WebhooksArgs,
) -> Result<()> {
    let login = target
        .spec
        .admin
        .as_ref()
        .ok_or_else(|| anyhow!("chatgate did not print its admin login"))?;
    let front = Endpoint::resolve(&target.spec.front).await?;
    let sources = Sources::new(args.run.source_ips, 0, front.addr);
    let http = HttpPool::new(&sources)?.pick();
    let admin = client::login(&http, &front, &login.email, &login.password).await?;
    http.post(client::chatd_url(&front, "/webhooks"))
        .header("X-Auth-Token", &admin.token)
        .json(&json!({"url": receiver.url, "events": ["*"]}))
        .send()
        .await?
        .error_for_status()
        .context("cannot create the webhook")?;
    Ok(())
}
