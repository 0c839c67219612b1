//! `agents`: visitors write, agents answer every message.
//!
//! Setup. The parent logs in as the admin, creates `--agents` agents and
//! logs them in, and starts `--visitors` conversations; conversation `c`
//! belongs to agent `c % agents`. A share holds some agents and exactly the
//! conversations they own, so every latency is measured inside one process.
//! In a share every agent opens its event socket (on instance B when there
//! are two, like the receivers of `chat`), every visitor its STOMP session
//! (instance A) and sends a first message, which queues the room; the
//! owning agent answers the room when its `chatd_queue_updated` arrives. The
//! share is ready when all its rooms are answered.
//!
//! Load, open loop as in `chat`: visitor message `k` is planned at
//! `k / rate` and sent by conversation `k % visitors` (STOMP `/app/send`)
//! with the text `b:<c>:<k>`. The owning agent replies to each
//! `chatd_user_room_message_created` as soon as it arrives, over REST
//! (`POST /users/me/rooms/<room>/messages`, `a:<c>:<k>`, a pooled
//! keep-alive HTTP client per agent): that moment is the reply's planned
//! time. Three latencies, each from a planned time, each in this process:
//!
//! - visitor → agent: planned send → the event at the agent's socket;
//! - agent → visitor: the reply's planned time → `message.created` with
//!   alignment LEFT at the visitor's session;
//! - reply → DELIVERED: the reply's planned time →
//!   `chatd_user_room_message_updated` with state DELIVERED at the agent's
//!   socket (the server marks it once written to the visitor's socket).
//!
//! A message is lost when it was stored (RECEIPT, or 201 for a reply) and
//! never arrived by the end of the drain. There is no relay run: the relay
//! has no agent side.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use chatgate::ws::stomp::Command;
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;
use tokio_tungstenite::tungstenite::Message;
use uuid::Uuid;

use super::traffic::provision;
use super::Timeline;
use crate::cli::{AgentsArgs, RunArgs};
use crate::client::{
    self, describe_error, AgentEvent, AgentLogin, Credentials, Endpoint, EventReader, FrameReader,
    HttpPool, Polled, Sources, WsSink,
};
use crate::clock;
use crate::report::{self, AgentsRow, Errors, Flow, Percentiles};
use crate::shard::{self, FromShare, Plan, ToShare, Work};
use crate::spawn::{self, Deployment};

/// Error messages kept per share.
const MAX_SAMPLES: usize = 5;
/// How long a share may take to get every room answered.
const ANSWER_TIMEOUT: Duration = Duration::from_secs(60);
/// Agents created or logged in at once (each is an Argon2 hash on the server).
const LOGIN_CONCURRENCY: usize = 4;
/// The receipt of a visitor's first message (message numbers are the others).
const FIRST_RECEIPT: &str = "first";

/// What an agents run asks for, independent of the target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentsSpec {
    pub visitors: u32,
    pub agents: u32,
    pub timeline: Timeline,
    pub drain: f64,
    /// Reply requests in flight per agent at most.
    pub http_concurrency: usize,
}

/// One share's part: its agents and the conversations they own.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct AgentsPlan {
    pub spec: AgentsSpec,
    /// Agent number and login.
    pub agents: Vec<(u32, AgentLogin)>,
    /// Conversation number and visitor credentials; conversation `c`
    /// belongs to agent `c % spec.agents`.
    pub visitors: Vec<(u32, Credentials)>,
}

/// The text of visitor message `k` of conversation `c`, and of its reply.
fn visitor_text(c: u32, k: u64) -> String {
    format!("b:{c}:{k}")
}

fn reply_text(c: u32, k: u64) -> String {
    format!("a:{c}:{k}")
}

/// `(c, k)` from a text made by [`visitor_text`] (`marker` "b") or
/// [`reply_text`] ("a").
fn parse_text(text: &str, marker: &str) -> Option<(u32, u64)> {
    let rest = text.strip_prefix(marker)?.strip_prefix(':')?;
    let (c, k) = rest.split_once(':')?;
    Some((c.parse().ok()?, k.parse().ok()?))
}

/// A message's fate, per message number (visitor messages and replies);
/// 0, the default, is "planned, not sent yet".
pub(super) const SENT: u8 = 1;
pub(super) const STORED: u8 = 2;
pub(super) const FAILED: u8 = 3;

/// Everything known about visitor message `k` and its reply.
#[derive(Default)]
struct Slot {
    visitor: AtomicU8,
    /// Arrivals at the owning agent's socket.
    at_agent: AtomicU32,
    /// Unix micros when the agent got the message and replied; 0 before.
    reply_planned: AtomicI64,
    reply: AtomicU8,
    /// Arrivals of the reply (LEFT) at the visitor's session.
    at_visitor: AtomicU32,
    /// DELIVERED updates of the reply at the agent's socket.
    delivered: AtomicU32,
}

/// Counters of one direction.
struct FlowCounters {
    sent: AtomicU64,
    sent_in_window: AtomicU64,
    stored: AtomicU64,
    failed: AtomicU64,
    /// First arrivals.
    received: AtomicU64,
    received_in_window: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    stored_latency: Mutex<Histogram<u64>>,
}

impl FlowCounters {
    fn new() -> FlowCounters {
        FlowCounters {
            sent: AtomicU64::new(0),
            sent_in_window: AtomicU64::new(0),
            stored: AtomicU64::new(0),
            failed: AtomicU64::new(0),
            received: AtomicU64::new(0),
            received_in_window: AtomicU64::new(0),
            latency: Mutex::new(report::histogram()),
            stored_latency: Mutex::new(report::histogram()),
        }
    }

    fn pending(&self) -> u64 {
        self.sent.load(Ordering::Relaxed)
            - self.stored.load(Ordering::Relaxed)
            - self.failed.load(Ordering::Relaxed)
    }

    fn share(&self, lost: u64) -> FlowShare {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        FlowShare {
            sent: load(&self.sent),
            sent_in_window: load(&self.sent_in_window),
            stored: load(&self.stored),
            received: load(&self.received),
            received_in_window: load(&self.received_in_window),
            lost,
            latency: report::to_pairs(&self.latency.lock().expect("histogram lock")),
            stored_latency: report::to_pairs(&self.stored_latency.lock().expect("histogram lock")),
        }
    }
}

/// One direction as a share reports it.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct FlowShare {
    pub sent: u64,
    pub sent_in_window: u64,
    pub stored: u64,
    pub received: u64,
    pub received_in_window: u64,
    pub lost: u64,
    pub latency: Vec<(u64, u64)>,
    pub stored_latency: Vec<(u64, u64)>,
}

/// What one share reports at the end.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct AgentsShareResult {
    pub visitor_to_agent: FlowShare,
    pub agent_to_visitor: FlowShare,
    pub reply_delivered: FlowShare,
    pub errors: Errors,
    pub samples: Vec<String>,
    pub setup_secs: f64,
}

/// Everything the share's tasks record, shared between them.
struct Recorder {
    spec: AgentsSpec,
    /// Unix micros of the schedule's start, set at `Start`.
    start: AtomicI64,
    slots: Vec<Slot>,
    visitor_to_agent: FlowCounters,
    agent_to_visitor: FlowCounters,
    reply_delivered: FlowCounters,
    /// Rooms answered during the setup, and answers that failed.
    answered: AtomicU64,
    answer_failures: AtomicU64,
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
    fn new(spec: AgentsSpec) -> Recorder {
        let total = spec.timeline.total_messages() as usize;
        Recorder {
            spec,
            start: AtomicI64::new(0),
            slots: (0..total).map(|_| Slot::default()).collect(),
            visitor_to_agent: FlowCounters::new(),
            agent_to_visitor: FlowCounters::new(),
            reply_delivered: FlowCounters::new(),
            answered: AtomicU64::new(0),
            answer_failures: AtomicU64::new(0),
            http_errors: AtomicU64::new(0),
            unsent: AtomicU64::new(0),
            error_frames: AtomicU64::new(0),
            closed_sockets: AtomicU64::new(0),
            unreadable: AtomicU64::new(0),
            samples: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        }
    }

    fn start(&self) -> i64 {
        self.start.load(Ordering::Relaxed)
    }

    fn planned(&self, k: u64) -> i64 {
        self.start() + self.spec.timeline.offset_micros(k)
    }

    fn in_window(&self, micros: i64) -> bool {
        self.spec.timeline.in_window(self.start(), micros)
    }

    fn sample(&self, text: String) {
        let mut samples = self.samples.lock().expect("samples lock");
        if samples.len() < MAX_SAMPLES {
            samples.push(text);
        }
    }

    /// The slot of `(c, k)` parsed from a text, if they belong together.
    fn slot(&self, parsed: Option<(u32, u64)>) -> Option<(u64, &Slot)> {
        let (c, k) = parsed?;
        let slot = self.slots.get(k as usize)?;
        (k % u64::from(self.spec.visitors) == u64::from(c)).then_some((k, slot))
    }

    fn unreadable(&self, what: &str, text: &str) {
        self.unreadable.fetch_add(1, Ordering::Relaxed);
        self.sample(format!("unreadable {what}: {}", client::clip(text)));
    }

    fn visitor_issued(&self, k: u64) {
        self.slots[k as usize]
            .visitor
            .store(SENT, Ordering::Relaxed);
        let flow = &self.visitor_to_agent;
        flow.sent.fetch_add(1, Ordering::Relaxed);
        if self.in_window(self.planned(k)) {
            flow.sent_in_window.fetch_add(1, Ordering::Relaxed);
        }
    }

    /// The RECEIPT of visitor message `k`.
    fn visitor_stored(&self, k: u64) {
        let Some(slot) = self.slots.get(k as usize) else {
            return;
        };
        if settle(&slot.visitor, STORED) {
            let flow = &self.visitor_to_agent;
            flow.stored.fetch_add(1, Ordering::Relaxed);
            report::record(&flow.stored_latency, clock::now_micros() - self.planned(k));
        }
    }

    /// A visitor message that could not be written: its session is gone
    /// (the closure itself is counted once, by the session's reader).
    fn visitor_unsent(&self, k: u64) {
        if settle(&self.slots[k as usize].visitor, FAILED) {
            self.visitor_to_agent.failed.fetch_add(1, Ordering::Relaxed);
        }
        if self.unsent.fetch_add(1, Ordering::Relaxed) == 0 {
            self.sample(format!(
                "message {k} and later ones of that visitor: not sent, the session is closed"
            ));
        }
    }

    /// Visitor message `k` reached its agent at `now`; true the first time,
    /// when the agent replies, which makes `now` the reply's planned time.
    fn at_agent(&self, k: u64, slot: &Slot, now: i64) -> bool {
        if slot.at_agent.fetch_add(1, Ordering::Relaxed) > 0 {
            return false;
        }
        let flow = &self.visitor_to_agent;
        flow.received.fetch_add(1, Ordering::Relaxed);
        if self.in_window(now) {
            flow.received_in_window.fetch_add(1, Ordering::Relaxed);
        }
        let planned = self.planned(k);
        if self.in_window(planned) {
            report::record(&flow.latency, now - planned);
        }
        slot.reply_planned.store(now, Ordering::Relaxed);
        slot.reply.store(SENT, Ordering::Relaxed);
        let replies = &self.agent_to_visitor;
        replies.sent.fetch_add(1, Ordering::Relaxed);
        if self.in_window(now) {
            replies.sent_in_window.fetch_add(1, Ordering::Relaxed);
        }
        true
    }

    /// The 201 of reply `k`.
    fn reply_stored(&self, slot: &Slot) {
        if settle(&slot.reply, STORED) {
            let planned = slot.reply_planned.load(Ordering::Relaxed);
            let replies = &self.agent_to_visitor;
            replies.stored.fetch_add(1, Ordering::Relaxed);
            report::record(&replies.stored_latency, clock::now_micros() - planned);
            // Every stored reply is expected to become DELIVERED.
            let delivered = &self.reply_delivered;
            delivered.sent.fetch_add(1, Ordering::Relaxed);
            delivered.stored.fetch_add(1, Ordering::Relaxed);
            if self.in_window(planned) {
                delivered.sent_in_window.fetch_add(1, Ordering::Relaxed);
            }
        }
    }

    fn reply_failed(&self, k: u64, slot: &Slot, err: &anyhow::Error) {
        if settle(&slot.reply, FAILED) {
            self.agent_to_visitor.failed.fetch_add(1, Ordering::Relaxed);
        }
        self.http_errors.fetch_add(1, Ordering::Relaxed);
        self.sample(format!("reply to message {k}: {err:#}"));
    }

    /// A reply arrived at the visitor (`counts` its arrivals) or came back
    /// DELIVERED to the agent.
    fn reply_arrived(&self, flow: &FlowCounters, counts: &AtomicU32, slot: &Slot, now: i64) {
        if counts.fetch_add(1, Ordering::Relaxed) > 0 {
            return;
        }
        flow.received.fetch_add(1, Ordering::Relaxed);
        if self.in_window(now) {
            flow.received_in_window.fetch_add(1, Ordering::Relaxed);
        }
        let planned = slot.reply_planned.load(Ordering::Relaxed);
        if planned > 0 && self.in_window(planned) {
            report::record(&flow.latency, now - planned);
        }
    }

    fn on_error_frame(&self, frame: &chatgate::ws::stomp::StompFrame) {
        self.error_frames.fetch_add(1, Ordering::Relaxed);
        self.sample(format!("ERROR frame: {}", describe_error(frame)));
    }

    fn on_closed(&self, why: String) {
        if !self.stopping.load(Ordering::Relaxed) {
            self.closed_sockets.fetch_add(1, Ordering::Relaxed);
            self.sample(why);
        }
    }

    /// Whether every send was answered and everything stored arrived.
    fn settled(&self) -> bool {
        let (v, r, d) = (
            &self.visitor_to_agent,
            &self.agent_to_visitor,
            &self.reply_delivered,
        );
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        v.pending() == 0
            && r.pending() == 0
            && load(&v.received) >= load(&v.stored)
            && load(&r.received) >= load(&r.stored)
            && load(&d.received) >= load(&d.stored)
    }

    fn result(&self, setup_secs: f64) -> AgentsShareResult {
        let mut lost = [0u64; 3];
        let mut duplicates = 0u64;
        for slot in &self.slots {
            let load = |a: &AtomicU32| a.load(Ordering::Relaxed);
            let arrivals = [
                load(&slot.at_agent),
                load(&slot.at_visitor),
                load(&slot.delivered),
            ];
            let stored = [
                slot.visitor.load(Ordering::Relaxed) == STORED,
                slot.reply.load(Ordering::Relaxed) == STORED,
                slot.reply.load(Ordering::Relaxed) == STORED,
            ];
            for i in 0..3 {
                if stored[i] && arrivals[i] == 0 {
                    lost[i] += 1;
                }
                duplicates += u64::from(arrivals[i].saturating_sub(1));
            }
        }
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        AgentsShareResult {
            visitor_to_agent: self.visitor_to_agent.share(lost[0]),
            agent_to_visitor: self.agent_to_visitor.share(lost[1]),
            reply_delivered: self.reply_delivered.share(lost[2]),
            errors: Errors {
                http: load(&self.http_errors),
                unsent: load(&self.unsent),
                error_frames: load(&self.error_frames),
                closed_sockets: load(&self.closed_sockets),
                unacked: self.visitor_to_agent.pending() + self.agent_to_visitor.pending(),
                duplicates,
                unreadable: load(&self.unreadable),
            },
            samples: self.samples.lock().expect("samples lock").clone(),
            setup_secs,
        }
    }
}

/// Moves a fate from SENT to `to`; false if it had settled already.
pub(super) fn settle(state: &AtomicU8, to: u8) -> bool {
    state
        .compare_exchange(SENT, to, Ordering::Relaxed, Ordering::Relaxed)
        .is_ok()
}

/// One agent of a share, as its event loop needs it.
struct AgentSide {
    login: AgentLogin,
    http: reqwest::Client,
    back: Endpoint,
    /// The agent's rooms (conversation id → number) and their reply URLs.
    rooms: HashMap<Uuid, u32>,
    reply_urls: HashMap<u32, Arc<str>>,
    permits: Arc<Semaphore>,
}

/// Share side: open the sockets, get the rooms answered, wait for `Start`,
/// run the schedule, drain, report.
pub async fn run_share(
    plan: &Plan,
    work: AgentsPlan,
    mut commands: mpsc::Receiver<ToShare>,
    replies: &mpsc::Sender<FromShare>,
) -> Result<()> {
    let setup_started = Instant::now();
    let front = Endpoint::resolve(&plan.target.front).await?;
    let back = Endpoint::resolve(&plan.target.back).await?;
    let sources = Arc::new(Sources::new(plan.source_ips, plan.share, front.addr));
    let http = HttpPool::new(&sources)?;
    let recorder = Arc::new(Recorder::new(work.spec.clone()));
    let (stop_tx, stop_rx) = watch::channel(false);

    // Agents first, so that they hear of the rooms being queued.
    let mut opening = JoinSet::new();
    for (index, login) in &work.agents {
        let (back, source, login, index) = (back.clone(), sources.pick(), login.clone(), *index);
        opening.spawn(async move { (index, client::open_events(&back, source, &login).await) });
    }
    let mut agent_sockets = HashMap::new();
    while let Some(joined) = opening.join_next().await {
        let (index, socket) = joined.context("an event socket task panicked")?;
        agent_sockets.insert(index, socket?);
    }
    let mut agent_loops = JoinSet::new();
    let mut idle_sinks: Vec<WsSink> = Vec::new();
    for (index, login) in &work.agents {
        let socket = agent_sockets.remove(index).expect("opened above");
        idle_sinks.push(socket.sink);
        let owned = work
            .visitors
            .iter()
            .filter(|(c, _)| c % work.spec.agents == *index);
        let agent = AgentSide {
            login: login.clone(),
            http: http.pick(),
            back: back.clone(),
            rooms: owned
                .clone()
                .map(|(c, cred)| (cred.conversation, *c))
                .collect(),
            reply_urls: owned
                .map(|(c, cred)| {
                    let path = format!("/users/me/rooms/{}/messages", cred.conversation);
                    (*c, client::chatd_url(&back, &path).into())
                })
                .collect(),
            permits: Arc::new(Semaphore::new(work.spec.http_concurrency.max(1))),
        };
        agent_loops.spawn(agent_loop(
            agent,
            socket.events,
            recorder.clone(),
            stop_rx.clone(),
        ));
    }

    let targets = work
        .visitors
        .iter()
        .map(|(_, credentials)| (front.clone(), credentials.clone()))
        .collect();
    let sessions = client::open_all(targets, &sources, plan.connect_concurrency).await?;
    let mut readers = JoinSet::new();
    let mut writers = JoinSet::new();
    let mut senders: Vec<Option<mpsc::UnboundedSender<Message>>> =
        (0..work.spec.visitors).map(|_| None).collect();
    for ((c, _), session) in work.visitors.iter().zip(sessions) {
        readers.spawn(visitor_loop(
            session.frames,
            recorder.clone(),
            stop_rx.clone(),
        ));
        let (queue, frames) = mpsc::unbounded_channel();
        writers.spawn(client::write_loop(session.sink, frames));
        let first = client::send_body(&format!("hello from visitor {c}"));
        // A failed write shows up as the session closing.
        let _ = queue.send(client::send_frame(first, FIRST_RECEIPT.into()));
        senders[*c as usize] = Some(queue);
    }
    wait_answered(&recorder, work.visitors.len() as u64).await?;
    let setup_secs = setup_started.elapsed().as_secs_f64();

    let start = shard::ready_then_start(setup_secs, &mut commands, replies).await?;
    recorder.start.store(start, Ordering::Relaxed);

    run_schedule(&work.spec, &recorder, &senders, start).await;
    let end = clock::instant_at(work.spec.timeline.end(start));
    let deadline = end.max(Instant::now()) + Duration::from_secs_f64(work.spec.drain);
    while !recorder.settled() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    // Stop reading before closing, so our own closes are not counted.
    recorder.stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    drop(senders);
    while readers.join_next().await.is_some() {}
    while agent_loops.join_next().await.is_some() {}
    while let Some(sink) = writers.join_next().await {
        if let Ok(sink) = sink {
            idle_sinks.push(sink);
        }
    }
    client::close_all(idle_sinks).await;

    let result = recorder.result(setup_secs);
    replies
        .send(FromShare::AgentsDone(Box::new(result)))
        .await?;
    Ok(())
}

/// Waits until the agents answered all `rooms`; fails on a failed answer,
/// a closed socket, or after [`ANSWER_TIMEOUT`].
async fn wait_answered(recorder: &Recorder, rooms: u64) -> Result<()> {
    let deadline = Instant::now() + ANSWER_TIMEOUT;
    loop {
        let answered = recorder.answered.load(Ordering::Relaxed);
        if answered >= rooms {
            return Ok(());
        }
        let failures = recorder.answer_failures.load(Ordering::Relaxed)
            + recorder.closed_sockets.load(Ordering::Relaxed)
            + recorder.error_frames.load(Ordering::Relaxed);
        if failures > 0 || Instant::now() >= deadline {
            let samples = recorder.samples.lock().expect("samples lock").clone();
            bail!(
                "only {answered} of {rooms} rooms were answered (first messages sent, waiting for chatd_queue_updated){}{}",
                if samples.is_empty() { "" } else { ": " },
                samples.join("; ")
            );
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

/// Issues every visitor message of this share at its planned time.
async fn run_schedule(
    spec: &AgentsSpec,
    recorder: &Recorder,
    senders: &[Option<mpsc::UnboundedSender<Message>>],
    start: i64,
) {
    let origin = clock::instant_at(start);
    let v = u64::from(spec.visitors);
    for k in 0..spec.timeline.total_messages() {
        let c = (k % v) as u32;
        let Some(queue) = &senders[c as usize] else {
            continue;
        };
        let due = origin + Duration::from_micros(spec.timeline.offset_micros(k) as u64);
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        recorder.visitor_issued(k);
        let body = client::send_body(&visitor_text(c, k));
        if queue.send(client::send_frame(body, k.to_string())).is_err() {
            recorder.visitor_unsent(k);
        }
    }
}

/// Reads a visitor's session: receipts of its sends, and replies (LEFT).
async fn visitor_loop(
    mut frames: FrameReader,
    recorder: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) {
    let mut errored = false;
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.changed() => return,
            next = frames.next() => next,
        };
        let frame = match next {
            Ok(Some(frame)) => frame,
            // After an ERROR frame the close is expected; count the error once.
            Ok(None) if errored => return,
            Ok(None) => {
                return recorder.on_closed("a visitor session was closed by the server".into())
            }
            Err(err) => return recorder.on_closed(format!("a visitor session failed: {err:#}")),
        };
        match frame.command {
            Command::Receipt => match frame.get("receipt-id") {
                Some(FIRST_RECEIPT) => {}
                receipt => {
                    if let Some(k) = receipt.and_then(|r| r.parse().ok()) {
                        recorder.visitor_stored(k);
                    }
                }
            },
            Command::Message => {
                let now = clock::now_micros();
                let Ok(pushed) = serde_json::from_slice::<client::Pushed>(&frame.body) else {
                    recorder.unreadable("MESSAGE body", &String::from_utf8_lossy(&frame.body));
                    continue;
                };
                // Own messages (RIGHT), notices (CENTER) and state updates are not counted.
                if pushed.kind != "message.created" || pushed.message.alignment != "LEFT" {
                    continue;
                }
                match recorder.slot(parse_text(&pushed.message.content, "a")) {
                    Some((_, slot)) => recorder.reply_arrived(
                        &recorder.agent_to_visitor,
                        &slot.at_visitor,
                        slot,
                        now,
                    ),
                    None => recorder.unreadable("reply", &pushed.message.content),
                }
            }
            Command::Error => {
                errored = true;
                recorder.on_error_frame(&frame);
            }
            _ => {}
        }
    }
}

/// An agent: answers its rooms when they are queued, replies to every
/// visitor message, and records when its replies become DELIVERED.
async fn agent_loop(
    agent: AgentSide,
    mut events: EventReader,
    recorder: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) {
    let agent = Arc::new(agent);
    let mut answering: HashSet<u32> = HashSet::new();
    let mut requests = JoinSet::new();
    loop {
        let event = match events.next_or_stop(&mut stop).await {
            Polled::Event(event) => event,
            Polled::Stopped => return,
            Polled::Ended(why) => return recorder.on_closed(why),
        };
        let now = clock::now_micros();
        match event.name.as_str() {
            "chatd_queue_updated" => {
                let Some(room) = queued_room(&event) else {
                    continue;
                };
                match agent.rooms.get(&room) {
                    Some(c) if answering.insert(*c) => {}
                    // Another agent's room, or one this agent answers already.
                    _ => continue,
                }
                let (agent, recorder) = (agent.clone(), recorder.clone());
                requests.spawn(async move {
                    match client::answer(&agent.http, &agent.back, &agent.login, room).await {
                        Ok(true) => {
                            recorder.answered.fetch_add(1, Ordering::Relaxed);
                        }
                        Ok(false) => {
                            recorder.answer_failures.fetch_add(1, Ordering::Relaxed);
                            recorder
                                .sample(format!("room {room}: answered by another agent (409)"));
                        }
                        Err(err) => {
                            recorder.answer_failures.fetch_add(1, Ordering::Relaxed);
                            recorder.sample(format!("answering room {room}: {err:#}"));
                        }
                    }
                });
            }
            "chatd_user_room_message_created" if event.data["kind"] == "visitor" => {
                let content = event.data["content"].as_str().unwrap_or_default();
                let Some((k, slot)) = recorder.slot(parse_text(content, "b")) else {
                    recorder.unreadable("visitor message event", content);
                    continue;
                };
                if !recorder.at_agent(k, slot, now) {
                    continue;
                }
                let c = (k % u64::from(recorder.spec.visitors)) as u32;
                let Some(url) = agent.reply_urls.get(&c).cloned() else {
                    recorder.reply_failed(
                        k,
                        slot,
                        &anyhow!("conversation {c} is not this agent's"),
                    );
                    continue;
                };
                let (agent, recorder) = (agent.clone(), recorder.clone());
                requests.spawn(async move {
                    let _permit = agent.permits.clone().acquire_owned().await;
                    let text = reply_text(c, k);
                    let slot = &recorder.slots[k as usize];
                    match client::post_message(&agent.http, &url, &agent.login.token, &text).await {
                        Ok(()) => recorder.reply_stored(slot),
                        Err(err) => recorder.reply_failed(k, slot, &err),
                    }
                });
                // Finished requests would otherwise pile up in the set.
                while requests.try_join_next().is_some() {}
            }
            "chatd_user_room_message_updated"
                if event.data["kind"] == "agent" && event.data["state"] == "DELIVERED" =>
            {
                let content = event.data["content"].as_str().unwrap_or_default();
                match recorder.slot(parse_text(content, "a")) {
                    Some((_, slot)) => recorder.reply_arrived(
                        &recorder.reply_delivered,
                        &slot.delivered,
                        slot,
                        now,
                    ),
                    None => recorder.unreadable("DELIVERED event", content),
                }
            }
            // Presences, the agent's own messages, notices, other queue changes.
            _ => {}
        }
    }
}

/// The room of a `chatd_queue_updated` that queued it.
fn queued_room(event: &AgentEvent) -> Option<Uuid> {
    if event.data["action"] != "queued" {
        return None;
    }
    event.data["room"]["uuid"].as_str()?.parse().ok()
}

/// `agents`: spawns or reaches chatgate, runs, prints, writes the JSON;
/// `Ok(false)` when anything was lost or failed.
pub async fn run(args: &AgentsArgs) -> Result<bool> {
    let spec = AgentsSpec {
        visitors: args.visitors,
        agents: args.agents,
        timeline: Timeline {
            rate: args.rate,
            warmup: args.load.warmup,
            duration: args.duration,
        },
        drain: args.load.drain,
        http_concurrency: args.http_concurrency,
    };
    spec.timeline.check(spec.drain)?;
    if spec.visitors == 0 || spec.agents == 0 {
        bail!("--visitors and --agents must be at least 1");
    }
    if spec.agents > spec.visitors {
        bail!("--agents must not exceed --visitors (each agent owns visitors/agents rooms)");
    }
    let deployment = spawn::chatgate(&args.target, true).await?;
    let result = run_on(&spec, &deployment, args).await;
    deployment.shutdown().await;
    let row = result?;

    let title = format!(
        "agents: {} visitors, {} agents, {} msg/s for {} s after {} s warm-up",
        spec.visitors,
        spec.agents,
        spec.timeline.rate,
        spec.timeline.duration,
        spec.timeline.warmup
    );
    report::print_agents(&title, &row);
    if let Some(path) = &args.run.json {
        report::write_json(path, "agents", args, &[&row])?;
    }
    if row.failed() {
        eprintln!(
            "chatgate-bench: FAILED: {}: {} errors, {} lost (details above)",
            row.target,
            row.errors.total(),
            row.lost()
        );
    }
    Ok(!row.failed())
}

/// Parent side: agents and conversations, split over shares, run, merge.
async fn run_on(spec: &AgentsSpec, target: &Deployment, args: &AgentsArgs) -> Result<AgentsRow> {
    let setup = setup_agents("agents", spec.agents, target, &args.run).await?;
    let AgentsSetup {
        front,
        http,
        admin,
        agents,
        ..
    } = setup;
    let visitors = provision(spec.visitors, target, &front, &args.run).await?;

    // Agent a lives in share a % procs with the conversations it owns.
    let procs = args
        .run
        .procs_for((spec.visitors + spec.agents) as usize)
        .min(spec.agents as usize);
    let mut plans: Vec<AgentsPlan> = (0..procs)
        .map(|_| AgentsPlan {
            spec: spec.clone(),
            agents: Vec::new(),
            visitors: Vec::new(),
        })
        .collect();
    for (a, login) in agents.iter().enumerate() {
        plans[a % procs].agents.push((a as u32, login.clone()));
    }
    for (c, credentials) in visitors.into_iter().enumerate() {
        let owner = c % spec.agents as usize;
        plans[owner % procs].visitors.push((c as u32, credentials));
    }
    let plans = plans
        .into_iter()
        .enumerate()
        .map(|(share, work)| Plan {
            share,
            shares: procs,
            target: target.spec.clone(),
            source_ips: args.run.source_ips,
            connect_concurrency: args.run.connect_concurrency,
            work: Work::Agents(work),
        })
        .collect();

    let timeline = spec.timeline;
    let timed = shard::run_timed(
        plans,
        &target.server_pids(),
        timeline.warmup,
        timeline.duration,
    )
    .await?;
    let mut results = Vec::new();
    for reply in timed.replies {
        match reply {
            FromShare::AgentsDone(result) => results.push(*result),
            other => bail!("unexpected reply from a share: {other:?}"),
        }
    }
    if args.target.server.is_some() {
        delete_agents(&http, &front, &admin, &agents).await;
    }
    let mut errors = Errors::default();
    let mut samples = Vec::new();
    for result in &results {
        errors.add(&result.errors);
        samples.extend(result.samples.iter().cloned());
    }
    samples.truncate(10);
    let flow = |pick: fn(&AgentsShareResult) -> &FlowShare, acked: bool| {
        merge_flow(results.iter().map(pick), timeline.duration, acked)
    };
    Ok(AgentsRow {
        target: target.spec.label.clone(),
        processes: procs,
        visitors: spec.visitors,
        agents: spec.agents,
        rate: timeline.rate,
        warmup_secs: timeline.warmup,
        duration_secs: timeline.duration,
        visitor_to_agent: flow(|r| &r.visitor_to_agent, true),
        agent_to_visitor: flow(|r| &r.agent_to_visitor, true),
        reply_delivered: flow(|r| &r.reply_delivered, false),
        errors,
        setup_secs: timed.setup_secs,
        server_cpu_percent: timed.server_cpu_percent,
        bench_cpu_percent: timed.bench_cpu_percent,
        error_samples: samples,
    })
}

/// Adds up one direction over the shares; `acked` when its sends have an
/// acknowledgement of their own (RECEIPT, 201).
fn merge_flow<'a>(shares: impl Iterator<Item = &'a FlowShare>, duration: f64, acked: bool) -> Flow {
    let mut latency = report::histogram();
    let mut stored_latency = report::histogram();
    let mut sum = FlowShare::default();
    for share in shares {
        sum.sent += share.sent;
        sum.sent_in_window += share.sent_in_window;
        sum.stored += share.stored;
        sum.received += share.received;
        sum.received_in_window += share.received_in_window;
        sum.lost += share.lost;
        report::add_pairs(&mut latency, &share.latency);
        report::add_pairs(&mut stored_latency, &share.stored_latency);
    }
    Flow {
        sent: sum.sent_in_window,
        sent_total: sum.sent,
        stored_total: sum.stored,
        received_total: sum.received,
        received_per_sec: sum.received_in_window as f64 / duration,
        latency_ms: Percentiles::of(&latency),
        stored_latency_ms: acked.then(|| Percentiles::of(&stored_latency)),
        lost: sum.lost,
    }
}

/// What the scenarios with agents start from.
pub(crate) struct AgentsSetup {
    /// Instance A, and B (A again with one instance).
    pub front: Endpoint,
    pub back: Endpoint,
    pub http: Arc<HttpPool>,
    /// The admin, logged in on A.
    pub admin: AgentLogin,
    /// The new agents, logged in on B.
    pub agents: Vec<AgentLogin>,
}

/// Resolves the instances, logs the admin in and creates `count` agents.
pub(crate) async fn setup_agents(
    scenario: &str,
    count: u32,
    target: &Deployment,
    run: &RunArgs,
) -> Result<AgentsSetup> {
    let front = Endpoint::resolve(&target.spec.front).await?;
    let back = Endpoint::resolve(&target.spec.back).await?;
    let admin = target.spec.admin.as_ref().ok_or_else(|| {
        anyhow!("the {scenario} scenario needs an admin: with --server, pass --admin-email and --admin-password")
    })?;
    let sources = Sources::new(run.source_ips, 0, front.addr);
    let http = Arc::new(HttpPool::new(&sources)?);
    let admin = client::login(&http.pick(), &front, &admin.email, &admin.password).await?;
    let agents = create_agents(count, &http, &front, &back, &admin).await?;
    Ok(AgentsSetup {
        front,
        back,
        http,
        admin,
        agents,
    })
}

/// Creates `count` agents with the admin's token (on instance A) and logs
/// each in on instance B, where its socket and REST calls go.
async fn create_agents(
    count: u32,
    http: &Arc<HttpPool>,
    front: &Endpoint,
    back: &Endpoint,
    admin: &AgentLogin,
) -> Result<Vec<AgentLogin>> {
    let run = Uuid::new_v4().simple().to_string();
    let permits = Arc::new(Semaphore::new(LOGIN_CONCURRENCY));
    let mut tasks = JoinSet::new();
    for a in 0..count {
        let (http, permits) = (http.clone(), permits.clone());
        let (front, back, admin) = (front.clone(), back.clone(), admin.clone());
        let email = format!("bench-{}-{a}@bench.invalid", &run[..12]);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            let password = Uuid::new_v4().simple().to_string();
            let name = format!("Bench agent {a}");
            let login = async {
                client::create_agent(&http.pick(), &front, &admin, &email, &name, &password)
                    .await?;
                client::login(&http.pick(), &back, &email, &password).await
            };
            (a, login.await)
        });
    }
    let mut agents: Vec<Option<AgentLogin>> = (0..count).map(|_| None).collect();
    while let Some(joined) = tasks.join_next().await {
        let (a, login) = joined.context("an agent task panicked")?;
        agents[a as usize] = Some(login.with_context(|| format!("cannot set up agent {a}"))?);
    }
    Ok(agents.into_iter().flatten().collect())
}

/// Removes the bench's agents from an external deployment (best effort).
pub(crate) async fn delete_agents(
    http: &HttpPool,
    front: &Endpoint,
    admin: &AgentLogin,
    agents: &[AgentLogin],
) {
    for agent in agents {
        let url = client::chatd_url(front, &format!("/agents/{}", agent.uuid));
        let deleted = http
            .pick()
            .delete(&url)
            .header("X-Auth-Token", &admin.token)
            .send()
            .await;
        if let Err(err) = deleted.and_then(|r| r.error_for_status()) {
            eprintln!(
                "chatgate-bench: could not delete agent {}: {err}",
                agent.uuid
            );
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn texts_round_trip() {
        assert_eq!(parse_text(&visitor_text(7, 1234), "b"), Some((7, 1234)));
        assert_eq!(parse_text(&reply_text(0, 5), "a"), Some((0, 5)));
        assert_eq!(parse_text(&visitor_text(7, 1234), "a"), None);
        assert_eq!(parse_text("hello from visitor 3", "b"), None);
        assert_eq!(parse_text("b:1", "b"), None);
    }

    #[test]
    fn a_slot_needs_the_right_conversation() {
        let recorder = Recorder::new(AgentsSpec {
            visitors: 4,
            agents: 2,
            timeline: Timeline {
                rate: 10.0,
                warmup: 0.0,
                duration: 1.0,
            },
            drain: 0.0,
            http_concurrency: 1,
        });
        assert_eq!(recorder.slot(Some((1, 5))).map(|(k, _)| k), Some(5));
        assert!(recorder.slot(Some((2, 5))).is_none());
        assert!(recorder.slot(Some((2, 10))).is_none());
    }
}
