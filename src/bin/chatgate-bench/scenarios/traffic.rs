//! Message traffic, the machinery behind `chat` and `fanout`.
//!
//! A run has `conversations` conversations; each has one sending session
//! (on instance A) and `receivers` receiving sessions (on instance B), all
//! subscribed to `/queue/message`. The schedule is open loop: message `k` is
//! planned at `start + k / rate` and belongs to conversation `k % conversations`;
//! it is issued at its planned time whether or not earlier sends finished,
//! so a slow server shows up as latency instead of slowing the load down.
//! Latency is always measured from the planned time. (The tokio timer
//! ticks in milliseconds, so sends leave up to about 1 ms after their
//! planned time; this offset is the same for every target, and the relay's
//! figures show its size.)
//!
//! The message text carries `k` and the planned time, so a receiver needs
//! nothing but the text to record a delivery. Per message the share keeps
//! whether it was stored and how many of its sessions received it; the
//! parent adds these up over all shares to count lost and duplicated
//! deliveries (a message's sender and receivers may live in different
//! processes).

use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use chatgate::ws::stomp::{Command, StompFrame};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;

use super::Timeline;
use crate::cli::{RunArgs, Via};
use crate::client::{
    self, describe_error, Credentials, Endpoint, FrameReader, HttpPool, Sources, WsSink,
};
use crate::clock;
use crate::report::{self, Errors, Percentiles, TrafficRow};
use crate::shard::{self, FromShare, Plan, ToShare, Work};
use crate::spawn::{Deployment, Flavor};

/// Latency histograms per share, so receivers rarely contend for a lock.
const HISTOGRAM_SHARDS: usize = 32;
/// Error messages kept per share.
const MAX_SAMPLES: usize = 5;

/// What a traffic scenario asks for, independent of the target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrafficSpec {
    pub conversations: u32,
    /// Receiving sessions per conversation.
    pub receivers: u32,
    pub rate: f64,
    pub warmup: f64,
    pub duration: f64,
    pub drain: f64,
    pub via: Via,
    /// HTTP requests in flight per sender at most.
    pub http_concurrency: usize,
}

/// One share's part of a traffic run.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct TrafficPlan {
    /// The whole run's spec: its conversations are the schedule's
    /// round-robin modulus.
    pub spec: TrafficSpec,
    pub assignments: Vec<Assignment>,
}

/// This share's sessions of one conversation.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Assignment {
    pub conversation: u32,
    pub credentials: Credentials,
    /// Whether this share holds the conversation's sender.
    pub sender: bool,
    pub receivers: u32,
}

impl TrafficSpec {
    pub fn timeline(&self) -> Timeline {
        Timeline {
            rate: self.rate,
            warmup: self.warmup,
            duration: self.duration,
        }
    }
}

impl TrafficPlan {
    fn total_messages(&self) -> u64 {
        self.spec.timeline().total_messages()
    }

    fn offset_micros(&self, k: u64) -> i64 {
        self.spec.timeline().offset_micros(k)
    }

    /// Messages of the whole schedule that belong to `conversation`.
    fn messages_of(&self, conversation: u32) -> u64 {
        let total = self.total_messages();
        let v = u64::from(self.spec.conversations);
        total / v + u64::from(u64::from(conversation) < total % v)
    }
}

/// The message text: a marker, the message number and the planned send time.
fn message_text(k: u64, planned_micros: i64) -> String {
    format!("bench {k} {planned_micros}")
}

fn parse_text(text: &str) -> Option<(u64, i64)> {
    let mut parts = text.strip_prefix("bench ")?.split(' ');
    let k = parts.next()?.parse().ok()?;
    let planned = parts.next()?.parse().ok()?;
    Some((k, planned))
}

/// A message's fate, per message number.
const PLANNED: u8 = 0;
const SENT: u8 = 1;
const STORED: u8 = 2;
const FAILED: u8 = 3;

/// Everything the share's tasks record, shared between them.
struct Recorder {
    plan: TrafficPlan,
    /// Unix micros of the schedule's start, set at `Start`.
    start: AtomicI64,
    state: Vec<AtomicU8>,
    /// Deliveries of each message to this share's receivers.
    received: Vec<AtomicU32>,
    latency: Vec<Mutex<Histogram<u64>>>,
    stored_latency: Mutex<Histogram<u64>>,
    sent: AtomicU64,
    sent_in_window: AtomicU64,
    stored: AtomicU64,
    stored_in_window: AtomicU64,
    failed: AtomicU64,
    delivered: AtomicU64,
    delivered_in_window: AtomicU64,
    http_errors: AtomicU64,
    unsent: AtomicU64,
    error_frames: AtomicU64,
    closed_sockets: AtomicU64,
    unreadable: AtomicU64,
    samples: Mutex<Vec<String>>,
    /// Set once the run is over, so that closing sockets is not an error.
    stopping: AtomicBool,
}

impl Recorder {
    fn new(plan: TrafficPlan) -> Recorder {
        let total = plan.total_messages() as usize;
        Recorder {
            plan,
            start: AtomicI64::new(0),
            state: (0..total).map(|_| AtomicU8::new(PLANNED)).collect(),
            received: (0..total).map(|_| AtomicU32::new(0)).collect(),
            latency: (0..HISTOGRAM_SHARDS)
                .map(|_| Mutex::new(report::histogram()))
                .collect(),
            stored_latency: Mutex::new(report::histogram()),
            sent: AtomicU64::new(0),
            sent_in_window: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            stored_in_window: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            delivered: AtomicU64::new(0),
            delivered_in_window: AtomicU64::new(0),
            http_errors: AtomicU64::new(0),
            unsent: AtomicU64::new(0),
            error_frames: AtomicU64::new(0),
            closed_sockets: AtomicU64::new(0),
            unreadable: AtomicU64::new(0),
            samples: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        }
    }

    fn planned(&self, k: u64) -> i64 {
        self.start.load(Ordering::Relaxed) + self.plan.offset_micros(k)
    }

    /// Whether a time falls in the measured window (after the warm-up).
    fn in_window(&self, micros: i64) -> bool {
        self.plan
            .spec
            .timeline()
            .in_window(self.start.load(Ordering::Relaxed), micros)
    }

    fn sample(&self, text: String) {
        let mut samples = self.samples.lock().expect("samples lock");
        if samples.len() < MAX_SAMPLES {
            samples.push(text);
        }
    }

    fn issued(&self, k: u64) {
        self.state[k as usize].store(SENT, Ordering::Relaxed);
        self.sent.fetch_add(1, Ordering::Relaxed);
        if self.in_window(self.planned(k)) {
            self.sent_in_window.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_stored(&self, k: u64) {
        let Some(state) = self.state.get(k as usize) else {
            return;
        };
        if state
            .compare_exchange(SENT, STORED, Ordering::Relaxed, Ordering::Relaxed)
            .is_err()
        {
            return;
        }
        let now = clock::now_micros();
        self.stored.fetch_add(1, Ordering::Relaxed);
        if self.in_window(now) {
            self.stored_in_window.fetch_add(1, Ordering::Relaxed);
        }
        let latency = (now - self.planned(k)).max(0) as u64;
        self.stored_latency
            .lock()
            .expect("histogram lock")
            .saturating_record(latency);
    }

    /// An HTTP send answered with an error, or failed.
    fn on_http_error(&self, k: u64, why: String) {
        self.mark_failed(k);
        self.http_errors.fetch_add(1, Ordering::Relaxed);
        self.sample(format!("message {k}: {why}"));
    }

    /// A STOMP send that could not be written: the sender socket is gone
    /// (the closure itself is counted once, by the socket's reader).
    fn on_unsent(&self, k: u64) {
        self.mark_failed(k);
        if self.unsent.fetch_add(1, Ordering::Relaxed) == 0 {
            self.sample(format!(
                "message {k} and later ones of that sender: not sent, the sender socket is closed"
            ));
        }
    }

    fn mark_failed(&self, k: u64) {
        if self.state[k as usize]
            .compare_exchange(SENT, FAILED, Ordering::Relaxed, Ordering::Relaxed)
            .is_ok()
        {
            self.failed.fetch_add(1, Ordering::Relaxed);
        }
    }

    fn on_message(&self, body: &[u8], shard: usize) {
        let now = clock::now_micros();
        let parsed = serde_json::from_slice::<client::Pushed>(body)
            .ok()
            .and_then(|p| parse_text(&p.message.content));
        let Some((k, planned)) = parsed.filter(|(k, _)| (*k as usize) < self.received.len()) else {
            self.unreadable.fetch_add(1, Ordering::Relaxed);
            self.sample(format!(
                "unreadable MESSAGE body: {}",
                client::clip(&String::from_utf8_lossy(body))
            ));
            return;
        };
        self.received[k as usize].fetch_add(1, Ordering::Relaxed);
        self.delivered.fetch_add(1, Ordering::Relaxed);
        if self.in_window(now) {
            self.delivered_in_window.fetch_add(1, Ordering::Relaxed);
        }
        if self.in_window(planned) {
            let latency = (now - planned).max(0) as u64;
            self.latency[shard % HISTOGRAM_SHARDS]
                .lock()
                .expect("histogram lock")
                .saturating_record(latency);
        }
    }

    fn on_error_frame(&self, frame: &StompFrame) {
        self.error_frames.fetch_add(1, Ordering::Relaxed);
        self.sample(format!("ERROR frame: {}", describe_error(frame)));
    }

    fn on_closed(&self, why: String) {
        if !self.stopping.load(Ordering::Relaxed) {
            self.closed_sockets.fetch_add(1, Ordering::Relaxed);
            self.sample(why);
        }
    }

    /// Sends neither stored nor failed yet.
    fn pending(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
            - self.stored.load(Ordering::Relaxed)
            - self.failed.load(Ordering::Relaxed)
    }

    fn result(&self, setup_secs: f64, has_receivers: bool) -> TrafficShareResult {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let mut latency = report::histogram();
        for shard in &self.latency {
            latency
                .add(&*shard.lock().expect("histogram lock"))
                .expect("same histogram bounds");
        }
        TrafficShareResult {
            sent: load(&self.sent),
            sent_in_window: load(&self.sent_in_window),
            stored: load(&self.stored),
            stored_in_window: load(&self.stored_in_window),
            delivered: load(&self.delivered),
            delivered_in_window: load(&self.delivered_in_window),
            unacked: self.pending(),
            http_errors: load(&self.http_errors),
            unsent: load(&self.unsent),
            error_frames: load(&self.error_frames),
            closed_sockets: load(&self.closed_sockets),
            unreadable: load(&self.unreadable),
            stored_messages: self
                .state
                .iter()
                .enumerate()
                .filter(|(_, s)| s.load(Ordering::Relaxed) == STORED)
                .map(|(k, _)| k as u64)
                .collect(),
            received: if has_receivers {
                self.received
                    .iter()
                    .map(|c| c.load(Ordering::Relaxed))
                    .collect()
            } else {
                Vec::new()
            },
            latency: report::to_pairs(&latency),
            stored_latency: report::to_pairs(&self.stored_latency.lock().expect("lock")),
            samples: self.samples.lock().expect("samples lock").clone(),
            setup_secs,
        }
    }
}

/// What one share reports at the end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct TrafficShareResult {
    pub sent: u64,
    pub sent_in_window: u64,
    pub stored: u64,
    pub stored_in_window: u64,
    pub delivered: u64,
    pub delivered_in_window: u64,
    pub unacked: u64,
    pub http_errors: u64,
    pub unsent: u64,
    pub error_frames: u64,
    pub closed_sockets: u64,
    pub unreadable: u64,
    /// Message numbers stored (acknowledged) by this share's senders.
    pub stored_messages: Vec<u64>,
    /// Per message number, deliveries to this share's receivers (empty
    /// when the share has no receivers).
    pub received: Vec<u32>,
    pub latency: Vec<(u64, u64)>,
    pub stored_latency: Vec<(u64, u64)>,
    pub samples: Vec<String>,
    pub setup_secs: f64,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Role {
    Sender,
    Receiver,
}

/// How a conversation's messages are submitted.
enum Sender {
    /// Frames for the sender socket's writer task.
    Stomp(mpsc::UnboundedSender<Message>),
    Http {
        client: reqwest::Client,
        url: Arc<str>,
        authorization: Arc<str>,
        permits: Arc<Semaphore>,
    },
}

/// A session to open during setup.
struct SessionSpec {
    conversation: u32,
    role: Role,
    credentials: Credentials,
}

/// Share side: open the sessions, wait for `Start`, run the schedule, drain, report.
pub async fn run_share(
    plan: &Plan,
    work: TrafficPlan,
    mut commands: mpsc::Receiver<ToShare>,
    replies: &mpsc::Sender<FromShare>,
) -> Result<()> {
    let setup_started = Instant::now();
    let front = Endpoint::resolve(&plan.target.front).await?;
    let back = Endpoint::resolve(&plan.target.back).await?;
    let sources = Arc::new(Sources::new(plan.source_ips, plan.share, front.addr));
    let http = HttpPool::new(&sources)?;

    let mut specs = Vec::new();
    for a in &work.assignments {
        if a.sender {
            specs.push(SessionSpec {
                conversation: a.conversation,
                role: Role::Sender,
                credentials: a.credentials.clone(),
            });
        }
        for _ in 0..a.receivers {
            specs.push(SessionSpec {
                conversation: a.conversation,
                role: Role::Receiver,
                credentials: a.credentials.clone(),
            });
        }
    }
    let targets = specs
        .iter()
        .map(|spec| {
            let endpoint = match spec.role {
                Role::Sender => front.clone(),
                Role::Receiver => back.clone(),
            };
            (endpoint, spec.credentials.clone())
        })
        .collect();
    let sessions = client::open_all(targets, &sources, plan.connect_concurrency).await?;
    let setup_secs = setup_started.elapsed().as_secs_f64();

    let recorder = Arc::new(Recorder::new(work.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut readers = JoinSet::new();
    let mut writers = JoinSet::new();
    let mut idle_sinks: Vec<WsSink> = Vec::new();
    let mut senders: Vec<Option<Sender>> = (0..work.spec.conversations).map(|_| None).collect();
    let has_receivers = specs.iter().any(|s| s.role == Role::Receiver);

    for (index, (spec, session)) in specs.iter().zip(sessions).enumerate() {
        readers.spawn(read_loop(
            session.frames,
            spec.role,
            recorder.clone(),
            index,
            stop_rx.clone(),
        ));
        match (spec.role, work.spec.via) {
            (Role::Sender, Via::Stomp) => {
                let (queue, frames) = mpsc::unbounded_channel();
                writers.spawn(client::write_loop(session.sink, frames));
                senders[spec.conversation as usize] = Some(Sender::Stomp(queue));
            }
            (Role::Sender, Via::Http) => {
                idle_sinks.push(session.sink);
                let token =
                    spec.credentials.token.as_deref().ok_or_else(|| {
                        anyhow!("--via http needs chatgate (the relay has no HTTP)")
                    })?;
                senders[spec.conversation as usize] = Some(Sender::Http {
                    client: http.pick(),
                    url: format!("{}/chatplugin.send", front.http).into(),
                    authorization: format!("Bearer {token}").into(),
                    permits: Arc::new(Semaphore::new(work.spec.http_concurrency.max(1))),
                });
            }
            (Role::Receiver, _) => idle_sinks.push(session.sink),
        }
    }

    let start = shard::ready_then_start(setup_secs, &mut commands, replies).await?;
    recorder.start.store(start, Ordering::Relaxed);

    let http_tasks = run_schedule(&work, &recorder, &senders, start).await;
    drain(&work, &recorder, start).await;

    // Stop reading before closing, so our own closes are not counted.
    recorder.stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    drop(http_tasks);
    drop(senders);
    while readers.join_next().await.is_some() {}
    while let Some(sink) = writers.join_next().await {
        if let Ok(sink) = sink {
            idle_sinks.push(sink);
        }
    }
    client::close_all(idle_sinks).await;

    let result = recorder.result(setup_secs, has_receivers);
    replies
        .send(FromShare::TrafficDone(Box::new(result)))
        .await?;
    Ok(())
}

/// Issues every message of this share at its planned time. Returns the HTTP
/// requests still in flight (dropping the set aborts them).
async fn run_schedule(
    work: &TrafficPlan,
    recorder: &Arc<Recorder>,
    senders: &[Option<Sender>],
    start: i64,
) -> JoinSet<()> {
    let origin = clock::instant_at(start);
    let mut http_tasks = JoinSet::new();
    let v = u64::from(work.spec.conversations);
    for k in 0..work.total_messages() {
        let Some(sender) = &senders[(k % v) as usize] else {
            continue;
        };
        let offset = work.offset_micros(k);
        let due = origin + Duration::from_micros(offset as u64);
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let text = message_text(k, start + offset);
        let body = client::send_body(&text);
        recorder.issued(k);
        match sender {
            Sender::Stomp(queue) => {
                if queue.send(client::send_frame(body, k.to_string())).is_err() {
                    recorder.on_unsent(k);
                }
            }
            Sender::Http {
                client,
                url,
                authorization,
                permits,
            } => {
                let (client, url, authorization, permits) = (
                    client.clone(),
                    url.clone(),
                    authorization.clone(),
                    permits.clone(),
                );
                let recorder = recorder.clone();
                http_tasks.spawn(async move {
                    let _permit = permits.acquire_owned().await.expect("never closed");
                    let response = client
                        .post(&*url)
                        .header("authorization", &*authorization)
                        .header("content-type", "application/json")
                        .body(body)
                        .send()
                        .await;
                    match response {
                        Ok(response) if response.status() == reqwest::StatusCode::OK => {
                            // Reading the body returns the connection to the pool.
                            let _ = response.bytes().await;
                            recorder.on_stored(k);
                        }
                        Ok(response) => {
                            let status = response.status();
                            let body = response.text().await.unwrap_or_default();
                            recorder.on_http_error(
                                k,
                                format!("HTTP {status}: {}", client::clip(&body)),
                            );
                        }
                        Err(err) => recorder.on_http_error(k, format!("HTTP send failed: {err}")),
                    }
                });
                // Finished requests would otherwise pile up in the set.
                while http_tasks.try_join_next().is_some() {}
            }
        }
    }
    http_tasks
}

/// Waits until every send was answered and every receiver of this share got
/// every message of its conversations, or the drain time ran out.
async fn drain(work: &TrafficPlan, recorder: &Recorder, start: i64) {
    let expected: u64 = work
        .assignments
        .iter()
        .map(|a| u64::from(a.receivers) * work.messages_of(a.conversation))
        .sum();
    let end = clock::instant_at(work.spec.timeline().end(start));
    let deadline = end.max(Instant::now()) + Duration::from_secs_f64(work.spec.drain);
    loop {
        let settled =
            recorder.pending() == 0 && recorder.delivered.load(Ordering::Relaxed) >= expected;
        if settled || Instant::now() >= deadline {
            return;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Reads one session's frames until the run stops or the socket closes.
async fn read_loop(
    mut frames: FrameReader,
    role: Role,
    recorder: Arc<Recorder>,
    index: usize,
    mut stop: watch::Receiver<bool>,
) {
    let mut errored = false;
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.changed() => return,
            next = frames.next() => next,
        };
        match next {
            Ok(Some(frame)) => match frame.command {
                Command::Message if role == Role::Receiver => {
                    recorder.on_message(&frame.body, index)
                }
                Command::Receipt => {
                    if let Some(k) = frame.get("receipt-id").and_then(|r| r.parse().ok()) {
                        recorder.on_stored(k);
                    }
                }
                Command::Error => {
                    errored = true;
                    recorder.on_error_frame(&frame);
                }
                // The sender's own echo: consumed, not counted.
                _ => {}
            },
            // After an ERROR frame the close is expected; count the error once.
            Ok(None) if errored => return,
            Ok(None) => {
                return recorder.on_closed(format!(
                    "a {} session was closed by the server",
                    role_name(role)
                ))
            }
            Err(err) => {
                return recorder.on_closed(format!("a {} session failed: {err:#}", role_name(role)))
            }
        }
    }
}

fn role_name(role: Role) -> &'static str {
    match role {
        Role::Sender => "sender",
        Role::Receiver => "receiver",
    }
}

/// Parent side: provision conversations, split them over shares, run, merge.
pub async fn run(spec: &TrafficSpec, target: &Deployment, options: &RunArgs) -> Result<TrafficRow> {
    run_with(spec, target, options, None).await
}

/// As [`run`], also telling `started` the schedule's start (Unix
/// microseconds) once it is fixed (see [`shard::run_timed_with`]).
pub async fn run_with(
    spec: &TrafficSpec,
    target: &Deployment,
    options: &RunArgs,
    started: Option<tokio::sync::oneshot::Sender<i64>>,
) -> Result<TrafficRow> {
    let front = Endpoint::resolve(&target.spec.front).await?;
    let credentials = provision(spec.conversations, target, &front, options).await?;

    let sockets = spec.conversations as usize * (1 + spec.receivers as usize);
    let procs = options.procs_for(sockets);
    let mut assignments: Vec<Vec<Assignment>> = vec![Vec::new(); procs];
    for (i, credentials) in credentials.into_iter().enumerate() {
        let i = i as u32;
        let sender_share = i as usize % procs;
        for j in 0..procs {
            // Receivers are spread evenly, starting at the sender's share, so
            // a conversation with one receiver keeps both in one process.
            let share = (sender_share + j) % procs;
            let receivers = spec.receivers / procs as u32
                + u32::from((j as u32) < spec.receivers % procs as u32);
            if receivers > 0 || share == sender_share {
                assignments[share].push(Assignment {
                    conversation: i,
                    credentials: credentials.clone(),
                    sender: share == sender_share,
                    receivers,
                });
            }
        }
    }
    let plans = assignments
        .into_iter()
        .enumerate()
        .map(|(share, assignments)| Plan {
            share,
            shares: procs,
            target: target.spec.clone(),
            source_ips: options.source_ips,
            connect_concurrency: options.connect_concurrency,
            work: Work::Traffic(TrafficPlan {
                spec: spec.clone(),
                assignments,
            }),
        })
        .collect();

    let timed = shard::run_timed_with(
        plans,
        &target.server_pids(),
        spec.warmup,
        spec.duration,
        started,
    )
    .await?;
    let mut results = Vec::new();
    for reply in timed.replies {
        match reply {
            FromShare::TrafficDone(result) => results.push(*result),
            other => bail!("unexpected reply from a share: {other:?}"),
        }
    }
    let mut row = merge(spec, target, procs, timed.setup_secs, &results);
    row.server_cpu_percent = timed.server_cpu_percent;
    row.bench_cpu_percent = timed.bench_cpu_percent;
    Ok(row)
}

/// `conversations` new conversations: authenticated on chatgate (at most
/// `--connect-concurrency` at once), made up for the relay.
pub async fn provision(
    conversations: u32,
    target: &Deployment,
    front: &Endpoint,
    options: &RunArgs,
) -> Result<Vec<Credentials>> {
    if target.spec.flavor == Flavor::Relay {
        return Ok((0..conversations).map(|_| Credentials::relay()).collect());
    }
    let channel = target
        .spec
        .channel
        .ok_or_else(|| anyhow!("no channel id for {}", target.spec.label))?;
    let sources = Sources::new(options.source_ips, 0, front.addr);
    let http = Arc::new(HttpPool::new(&sources)?);
    let permits = Arc::new(Semaphore::new(options.connect_concurrency.max(1)));
    let mut tasks = JoinSet::new();
    for i in 0..conversations {
        let (http, permits, front) = (http.clone(), permits.clone(), front.clone());
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            (i, client::authenticate(&http.pick(), &front, channel).await)
        });
    }
    let mut credentials: Vec<Option<Credentials>> = (0..conversations).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (i, result) = joined.context("an authenticate task panicked")?;
        credentials[i as usize] = Some(result.context("cannot start a conversation")?);
    }
    Ok(credentials.into_iter().flatten().collect())
}

/// Adds up the shares' results and counts lost and duplicated deliveries.
fn merge(
    spec: &TrafficSpec,
    target: &Deployment,
    procs: usize,
    setup_secs: f64,
    results: &[TrafficShareResult],
) -> TrafficRow {
    let total = spec.timeline().total_messages() as usize;
    let mut stored = vec![false; total];
    let mut received = vec![0u64; total];
    let mut latency = report::histogram();
    let mut stored_latency = report::histogram();
    let mut errors = Errors::default();
    let mut samples = Vec::new();
    let sum = |f: fn(&TrafficShareResult) -> u64| results.iter().map(f).sum::<u64>();
    for result in results {
        for &k in &result.stored_messages {
            if let Some(flag) = stored.get_mut(k as usize) {
                *flag = true;
            }
        }
        for (k, count) in result.received.iter().enumerate().take(total) {
            received[k] += u64::from(*count);
        }
        report::add_pairs(&mut latency, &result.latency);
        report::add_pairs(&mut stored_latency, &result.stored_latency);
        errors.http += result.http_errors;
        errors.unsent += result.unsent;
        errors.error_frames += result.error_frames;
        errors.closed_sockets += result.closed_sockets;
        errors.unacked += result.unacked;
        errors.unreadable += result.unreadable;
        samples.extend(result.samples.iter().cloned());
    }
    let expected = u64::from(spec.receivers);
    let mut lost = 0;
    for k in 0..total {
        if stored[k] {
            lost += expected.saturating_sub(received[k]);
        }
        errors.duplicates += received[k].saturating_sub(expected);
    }
    samples.truncate(10);
    TrafficRow {
        target: target.spec.label.clone(),
        via: spec.via.as_str().into(),
        processes: procs,
        rate: spec.rate,
        warmup_secs: spec.warmup,
        duration_secs: spec.duration,
        receivers: expected,
        sent: sum(|r| r.sent_in_window),
        sent_total: sum(|r| r.sent),
        stored_total: sum(|r| r.stored),
        delivered_total: sum(|r| r.delivered),
        stored_per_sec: sum(|r| r.stored_in_window) as f64 / spec.duration,
        delivered_per_sec: sum(|r| r.delivered_in_window) as f64 / spec.duration,
        latency_ms: Percentiles::of(&latency),
        stored_latency_ms: Percentiles::of(&stored_latency),
        errors,
        lost,
        setup_secs,
        server_cpu_percent: None,
        bench_cpu_percent: None,
        ratio_to_relay: None,
        error_samples: samples,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn message_text_round_trips() {
        let text = message_text(42, 1_700_000_000_123_456);
        assert_eq!(parse_text(&text), Some((42, 1_700_000_000_123_456)));
        assert_eq!(parse_text("hello"), None);
    }

    #[test]
    fn messages_are_split_round_robin() {
        let plan = TrafficPlan {
            spec: TrafficSpec {
                conversations: 3,
                receivers: 1,
                rate: 10.0,
                warmup: 0.0,
                duration: 1.0,
                drain: 0.0,
                via: Via::Stomp,
                http_concurrency: 1,
            },
            assignments: Vec::new(),
        };
        // 10 messages over 3 conversations: 4, 3, 3.
        let counts: Vec<u64> = (0..3).map(|c| plan.messages_of(c)).collect();
        assert_eq!(counts, vec![4, 3, 3]);
        assert_eq!(plan.offset_micros(5), 500_000);
    }
}
