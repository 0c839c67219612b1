//! `queue`: round robin assignment of new visitors to agents.
//!
//! Setup. The parent logs in as the admin, switches the channel to
//! `assignment: round_robin` with `--max-open` rooms per agent, creates and
//! logs in `--agents` agents. One share (this process) opens each agent's
//! event socket: agent `a` on instance `a % n` of the `n` instances (one,
//! or A and B with `--backend postgres`).
//!
//! Load, open loop: new conversation `k` is planned at `k / rate` on
//! instance `k % n`. At its planned time a task authenticates it
//! (`/chatplugin.authenticate`) and sends its first message over HTTP
//! (`/chatplugin.send`), which creates the room and queues it; the router
//! hands it to an agent. The moment the send is issued is the
//! conversation's t0.
//!
//! Agents read every event. On `chatd_user_room_created` for one of the
//! bench's rooms the agent records latency = now - t0 and closes the room
//! (`PUT /users/me/rooms/<room>/state` closed), which frees its slot, so
//! agents never fill up. Agent 0 also counts the tenant's
//! `chatd_queue_updated` "assigned" announcements per room.
//!
//! After the drain the parent audits the agents' room lists over REST: a
//! room in two lists or with two agent members was assigned twice; a room
//! whose first message was stored and that no agent has was lost. The run
//! fails when either happens, by the events or by the lists.

use std::collections::HashMap;
use std::sync::atomic::{AtomicBool, AtomicI64, AtomicU32, AtomicU64, AtomicU8, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};
use serde_json::{json, Value};
use tokio::sync::{mpsc, watch};
use tokio::task::JoinSet;
use tokio::time::Instant;
use uuid::Uuid;

use super::agents::{delete_agents, settle, setup_agents, AgentsSetup, FAILED, SENT, STORED};
use super::Timeline;
use crate::cli::QueueArgs;
use crate::client::{self, AgentLogin, Endpoint, EventReader, HttpPool, Polled, Sources, WsSink};
use crate::clock;
use crate::report::{self, Errors, Percentiles, QueueRow, RoomAudit};
use crate::shard::{self, FromShare, Plan, ToShare, Work};
use crate::spawn::{self, Deployment};

/// Error messages kept.
const MAX_SAMPLES: usize = 10;

/// What a queue run asks for, independent of the target.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueueSpec {
    pub agents: u32,
    pub timeline: Timeline,
    pub drain: f64,
}

/// The share's work: the agents (logged in) and the channel to start on.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct QueuePlan {
    pub spec: QueueSpec,
    pub agents: Vec<AgentLogin>,
    pub channel: Uuid,
}

/// What the share reports.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct QueueShareResult {
    pub started: u64,
    pub started_in_window: u64,
    pub stored: u64,
    pub assigned: u64,
    pub assigned_in_window: u64,
    pub closed: u64,
    pub assigned_twice: u64,
    pub announced_twice: u64,
    pub lost: u64,
    pub latency: Vec<(u64, u64)>,
    pub planned_latency: Vec<(u64, u64)>,
    pub stored_latency: Vec<(u64, u64)>,
    /// The rooms (conversation ids) whose first message was stored.
    pub stored_rooms: Vec<Uuid>,
    pub errors: Errors,
    pub samples: Vec<String>,
    pub setup_secs: f64,
}

/// The instance conversation `k` or agent `k` uses, of `instances`.
fn instance_of(k: u64, instances: usize) -> usize {
    (k % instances.max(1) as u64) as usize
}

/// Everything known about conversation `k`.
#[derive(Default)]
struct Conv {
    /// The first message's fate: 0 (not sent), SENT, STORED or FAILED.
    send: AtomicU8,
    /// Unix micros when the first message was issued; 0 before.
    sent_at: AtomicI64,
    /// `chatd_user_room_created` for this room, at any agent.
    assigned: AtomicU32,
    /// The agent (index + 1) of the first of those; 0 before.
    agent: AtomicU32,
    /// `chatd_queue_updated` "assigned" at agent 0.
    announced: AtomicU32,
}

/// What the share's tasks record.
struct Recorder {
    timeline: Timeline,
    start: AtomicI64,
    convs: Vec<Conv>,
    /// Conversation id → k, filled when authenticate answers (before the send).
    rooms: Mutex<HashMap<Uuid, u64>>,
    started: AtomicU64,
    started_in_window: AtomicU64,
    stored: AtomicU64,
    assigned: AtomicU64,
    assigned_in_window: AtomicU64,
    /// Visitor tasks launched and finished.
    launched: AtomicU64,
    finished: AtomicU64,
    /// Close requests in flight, and done.
    closing: AtomicU64,
    closed: AtomicU64,
    latency: Mutex<Histogram<u64>>,
    planned_latency: Mutex<Histogram<u64>>,
    stored_latency: Mutex<Histogram<u64>>,
    http_errors: AtomicU64,
    closed_sockets: AtomicU64,
    unreadable: AtomicU64,
    samples: Mutex<Vec<String>>,
    stopping: AtomicBool,
}

impl Recorder {
    fn new(timeline: Timeline) -> Recorder {
        let total = timeline.total_messages() as usize;
        let counter = || AtomicU64::new(0);
        Recorder {
            timeline,
            start: AtomicI64::new(0),
            convs: (0..total).map(|_| Conv::default()).collect(),
            rooms: Mutex::new(HashMap::with_capacity(total)),
            started: counter(),
            started_in_window: counter(),
            stored: counter(),
            assigned: counter(),
            assigned_in_window: counter(),
            launched: counter(),
            finished: counter(),
            closing: counter(),
            closed: counter(),
            latency: Mutex::new(report::histogram()),
            planned_latency: Mutex::new(report::histogram()),
            stored_latency: Mutex::new(report::histogram()),
            http_errors: counter(),
            closed_sockets: counter(),
            unreadable: counter(),
            samples: Mutex::new(Vec::new()),
            stopping: AtomicBool::new(false),
        }
    }

    fn planned(&self, k: u64) -> i64 {
        self.start.load(Ordering::Relaxed) + self.timeline.offset_micros(k)
    }

    fn in_window(&self, micros: i64) -> bool {
        self.timeline
            .in_window(self.start.load(Ordering::Relaxed), micros)
    }

    fn sample(&self, text: String) {
        let mut samples = self.samples.lock().expect("samples lock");
        if samples.len() < MAX_SAMPLES {
            samples.push(text);
        }
    }

    fn http_error(&self, what: String) {
        self.http_errors.fetch_add(1, Ordering::Relaxed);
        self.sample(what);
    }

    /// Conversation `k` was authenticated as `room`; its first message is
    /// issued now, which is returned (t0).
    fn started(&self, k: u64, room: Uuid) -> i64 {
        self.rooms.lock().expect("rooms lock").insert(room, k);
        self.started.fetch_add(1, Ordering::Relaxed);
        if self.in_window(self.planned(k)) {
            self.started_in_window.fetch_add(1, Ordering::Relaxed);
        }
        let conv = &self.convs[k as usize];
        let now = clock::now_micros();
        conv.sent_at.store(now, Ordering::Relaxed);
        conv.send.store(SENT, Ordering::Relaxed);
        now
    }

    fn send_done(&self, k: u64, sent_at: i64, outcome: Result<()>) {
        let conv = &self.convs[k as usize];
        match outcome {
            Ok(()) => {
                if !settle(&conv.send, STORED) {
                    return;
                }
                self.stored.fetch_add(1, Ordering::Relaxed);
                if self.in_window(self.planned(k)) {
                    report::record(&self.stored_latency, clock::now_micros() - sent_at);
                }
            }
            Err(err) => {
                settle(&conv.send, FAILED);
                self.http_error(format!("first message of conversation {k}: {err:#}"));
            }
        }
    }

    /// `chatd_user_room_created` for `room` at agent `agent` (index) at
    /// `now`: `Some(k)` when it is one of the bench's rooms, which the agent
    /// then closes. Counts every assignment after the first as twice.
    fn on_assigned(&self, agent: u32, room: Uuid, now: i64) -> Option<u64> {
        let k = *self.rooms.lock().expect("rooms lock").get(&room)?;
        let conv = &self.convs[k as usize];
        if conv.assigned.fetch_add(1, Ordering::Relaxed) > 0 {
            let first = conv.agent.load(Ordering::Relaxed);
            self.sample(format!(
                "room {room} (conversation {k}) assigned again: to agent {agent}, first to agent {}",
                first.saturating_sub(1)
            ));
            return Some(k);
        }
        conv.agent.store(agent + 1, Ordering::Relaxed);
        self.assigned.fetch_add(1, Ordering::Relaxed);
        if self.in_window(now) {
            self.assigned_in_window.fetch_add(1, Ordering::Relaxed);
        }
        let planned = self.planned(k);
        if self.in_window(planned) {
            let sent_at = conv.sent_at.load(Ordering::Relaxed);
            report::record(&self.latency, now - sent_at);
            report::record(&self.planned_latency, now - planned);
        }
        Some(k)
    }

    /// A `chatd_queue_updated` "assigned" for `room` (agent 0 only).
    fn on_announced(&self, room: Uuid) {
        let Some(k) = self.rooms.lock().expect("rooms lock").get(&room).copied() else {
            return;
        };
        if self.convs[k as usize]
            .announced
            .fetch_add(1, Ordering::Relaxed)
            > 0
        {
            self.sample(format!("room {room} announced as assigned again"));
        }
    }

    fn on_closed(&self, why: String) {
        if !self.stopping.load(Ordering::Relaxed) {
            self.closed_sockets.fetch_add(1, Ordering::Relaxed);
            self.sample(why);
        }
    }

    /// Stored first messages whose room no agent was given yet.
    fn unassigned(&self) -> u64 {
        self.convs
            .iter()
            .filter(|c| {
                c.send.load(Ordering::Relaxed) == STORED && c.assigned.load(Ordering::Relaxed) == 0
            })
            .count() as u64
    }

    /// Every visitor task done, every stored room assigned, every close done.
    fn settled(&self) -> bool {
        self.launched.load(Ordering::Relaxed) == self.finished.load(Ordering::Relaxed)
            && self.closing.load(Ordering::Relaxed) == 0
            && self.unassigned() == 0
    }

    fn result(&self, setup_secs: f64) -> QueueShareResult {
        let load = |a: &AtomicU64| a.load(Ordering::Relaxed);
        let (mut twice, mut announced_twice, mut unacked) = (0, 0, 0);
        for conv in &self.convs {
            twice += u64::from(conv.assigned.load(Ordering::Relaxed).saturating_sub(1));
            announced_twice += u64::from(conv.announced.load(Ordering::Relaxed).saturating_sub(1));
            unacked += u64::from(conv.send.load(Ordering::Relaxed) == SENT);
        }
        let stored_rooms = self
            .rooms
            .lock()
            .expect("rooms lock")
            .iter()
            .filter(|(_, &k)| self.convs[k as usize].send.load(Ordering::Relaxed) == STORED)
            .map(|(room, _)| *room)
            .collect();
        let pairs = |h: &Mutex<Histogram<u64>>| report::to_pairs(&h.lock().expect("histogram"));
        QueueShareResult {
            started: load(&self.started),
            started_in_window: load(&self.started_in_window),
            stored: load(&self.stored),
            assigned: load(&self.assigned),
            assigned_in_window: load(&self.assigned_in_window),
            closed: load(&self.closed),
            assigned_twice: twice,
            announced_twice,
            lost: self.unassigned(),
            latency: pairs(&self.latency),
            planned_latency: pairs(&self.planned_latency),
            stored_latency: pairs(&self.stored_latency),
            stored_rooms,
            errors: Errors {
                http: load(&self.http_errors),
                closed_sockets: load(&self.closed_sockets),
                unacked,
                unreadable: load(&self.unreadable),
                ..Errors::default()
            },
            samples: self.samples.lock().expect("samples lock").clone(),
            setup_secs,
        }
    }
}

/// One agent as its event loop needs it.
struct AgentSide {
    index: u32,
    login: AgentLogin,
    http: reqwest::Client,
    /// The instance its socket and REST calls go to.
    endpoint: Endpoint,
}

/// Share side: open the agents' sockets, wait for `Start`, start the
/// conversations on schedule, drain, report.
pub async fn run_share(
    plan: &Plan,
    work: QueuePlan,
    mut commands: mpsc::Receiver<ToShare>,
    replies: &mpsc::Sender<FromShare>,
) -> Result<()> {
    let setup_started = Instant::now();
    let instances = instances(&plan.target).await?;
    let sources = Arc::new(Sources::new(plan.source_ips, plan.share, instances[0].addr));
    let http = Arc::new(HttpPool::new(&sources)?);
    let recorder = Arc::new(Recorder::new(work.spec.timeline));
    let (stop_tx, stop_rx) = watch::channel(false);

    let mut opening = JoinSet::new();
    for (a, login) in work.agents.iter().enumerate() {
        let endpoint = instances[instance_of(a as u64, instances.len())].clone();
        let (source, login) = (sources.pick(), login.clone());
        opening.spawn(async move {
            let socket = client::open_events(&endpoint, source, &login).await;
            (a, login, endpoint, socket)
        });
    }
    let mut sinks: Vec<WsSink> = Vec::new();
    let mut agent_loops = JoinSet::new();
    while let Some(joined) = opening.join_next().await {
        let (a, login, endpoint, socket) = joined?;
        let socket = socket?;
        sinks.push(socket.sink);
        let agent = AgentSide {
            index: a as u32,
            login,
            http: http.pick(),
            endpoint,
        };
        agent_loops.spawn(agent_loop(
            agent,
            socket.events,
            recorder.clone(),
            stop_rx.clone(),
        ));
    }
    let setup_secs = setup_started.elapsed().as_secs_f64();

    let start = shard::ready_then_start(setup_secs, &mut commands, replies).await?;
    recorder.start.store(start, Ordering::Relaxed);

    let origin = clock::instant_at(start);
    let channel = work.channel;
    let mut visitors = JoinSet::new();
    for k in 0..work.spec.timeline.total_messages() {
        let due = origin + Duration::from_micros(work.spec.timeline.offset_micros(k) as u64);
        if due > Instant::now() {
            tokio::time::sleep_until(due).await;
        }
        let endpoint = instances[instance_of(k, instances.len())].clone();
        let (http, recorder) = (http.pick(), recorder.clone());
        recorder.launched.fetch_add(1, Ordering::Relaxed);
        visitors.spawn(async move {
            start_conversation(k, &http, &endpoint, channel, &recorder).await;
            recorder.finished.fetch_add(1, Ordering::Relaxed);
        });
        // Finished tasks would otherwise pile up in the set.
        while visitors.try_join_next().is_some() {}
    }

    let end = clock::instant_at(work.spec.timeline.end(start));
    let deadline = end.max(Instant::now()) + Duration::from_secs_f64(work.spec.drain);
    while !recorder.settled() && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(20)).await;
    }

    recorder.stopping.store(true, Ordering::Relaxed);
    let _ = stop_tx.send(true);
    visitors.abort_all();
    while agent_loops.join_next().await.is_some() {}
    client::close_all(sinks).await;

    let result = recorder.result(setup_secs);
    replies.send(FromShare::QueueDone(Box::new(result))).await?;
    Ok(())
}

/// Instance A, and B when it is another one.
async fn instances(target: &spawn::TargetSpec) -> Result<Vec<Endpoint>> {
    let mut instances = vec![Endpoint::resolve(&target.front).await?];
    if target.back != target.front {
        instances.push(Endpoint::resolve(&target.back).await?);
    }
    Ok(instances)
}

/// A new visitor: authenticate, then the first message over HTTP.
async fn start_conversation(
    k: u64,
    http: &reqwest::Client,
    endpoint: &Endpoint,
    channel: Uuid,
    recorder: &Recorder,
) {
    let credentials = match client::authenticate(http, endpoint, channel).await {
        Ok(credentials) => credentials,
        Err(err) => return recorder.http_error(format!("conversation {k}: {err:#}")),
    };
    let sent_at = recorder.started(k, credentials.conversation);
    let text = format!("hello from new visitor {k}");
    let outcome = client::send_http(http, endpoint, &credentials, &text).await;
    recorder.send_done(k, sent_at, outcome);
}

/// An agent: records and closes each room it is given, reads everything else.
async fn agent_loop(
    agent: AgentSide,
    mut events: EventReader,
    recorder: Arc<Recorder>,
    mut stop: watch::Receiver<bool>,
) {
    let agent = Arc::new(agent);
    let mut closes = JoinSet::new();
    loop {
        let event = match events.next_or_stop(&mut stop).await {
            Polled::Event(event) => event,
            Polled::Stopped => return,
            Polled::Ended(why) => return recorder.on_closed(why),
        };
        let now = clock::now_micros();
        match event.name.as_str() {
            "chatd_user_room_created" if event.data["kind"] == "visitor" => {
                let Some(room) = uuid_at(&event.data["uuid"]) else {
                    recorder.unreadable.fetch_add(1, Ordering::Relaxed);
                    recorder.sample(format!("room without uuid: {}", event.data));
                    continue;
                };
                let Some(k) = recorder.on_assigned(agent.index, room, now) else {
                    continue;
                };
                if uuid_at(&event.data["assignee_uuid"]) != Some(agent.login.uuid) {
                    recorder.unreadable.fetch_add(1, Ordering::Relaxed);
                    recorder.sample(format!(
                        "room {room} (conversation {k}) created at agent {} with assignee {}",
                        agent.index, event.data["assignee_uuid"]
                    ));
                }
                recorder.closing.fetch_add(1, Ordering::Relaxed);
                let (agent, recorder) = (agent.clone(), recorder.clone());
                closes.spawn(async move {
                    let closed = client::set_room_state(
                        &agent.http,
                        &agent.endpoint,
                        &agent.login,
                        room,
                        "closed",
                    )
                    .await;
                    match closed {
                        Ok(()) => recorder.closed.fetch_add(1, Ordering::Relaxed),
                        Err(err) => {
                            recorder.http_error(format!("closing room {room}: {err:#}"));
                            0
                        }
                    };
                    recorder.closing.fetch_sub(1, Ordering::Relaxed);
                });
                while closes.try_join_next().is_some() {}
            }
            "chatd_queue_updated" if agent.index == 0 && event.data["action"] == "assigned" => {
                if let Some(room) = uuid_at(&event.data["room"]["uuid"]) {
                    recorder.on_announced(room);
                }
            }
            // Queued rooms, state changes, presences, messages: read, not counted.
            _ => {}
        }
    }
}

fn uuid_at(value: &Value) -> Option<Uuid> {
    value.as_str()?.parse().ok()
}

/// A visitor room in an agent's list: its id and how many agents it has.
#[derive(Debug, Clone, PartialEq)]
struct Listed {
    room: Uuid,
    agent_members: usize,
}

/// The visitor room of one item of `GET /users/me/rooms`.
fn listed(room: &Value) -> Option<Listed> {
    if room["kind"] != "visitor" {
        return None;
    }
    let members = room["users"].as_array().map_or(0, |users| {
        users.iter().filter(|u| u["kind"] == "agent").count()
    });
    Some(Listed {
        room: uuid_at(&room["uuid"])?,
        agent_members: members,
    })
}

/// Checks the agents' room lists (one per agent) against the rooms whose
/// first message was stored and the rooms still queued.
fn audit(stored: &[Uuid], lists: &[Vec<Listed>], queued: &[Uuid]) -> RoomAudit {
    let mut holders: HashMap<Uuid, (usize, usize)> = HashMap::new();
    for list in lists {
        for item in list {
            let entry = holders.entry(item.room).or_default();
            entry.0 += 1;
            entry.1 = entry.1.max(item.agent_members);
        }
    }
    let never: Vec<&Uuid> = stored
        .iter()
        .filter(|room| !holders.contains_key(room))
        .collect();
    RoomAudit {
        rooms_listed: holders.len() as u64,
        two_agents: holders
            .values()
            .filter(|(lists, agents)| *lists > 1 || *agents > 1)
            .count() as u64,
        never_assigned: never.len() as u64,
        still_queued: never.iter().filter(|room| queued.contains(room)).count() as u64,
    }
}

/// `queue`: spawns or reaches chatgate, runs, audits, prints, writes the
/// JSON; `Ok(false)` when a room was assigned twice or lost, or anything failed.
pub async fn run(args: &QueueArgs) -> Result<bool> {
    let spec = QueueSpec {
        agents: args.agents,
        timeline: Timeline {
            rate: args.rate,
            warmup: args.load.warmup,
            duration: args.duration,
        },
        drain: args.load.drain,
    };
    spec.timeline.check(spec.drain)?;
    if spec.agents == 0 {
        bail!("--agents must be at least 1");
    }
    let deployment = spawn::chatgate(&args.target, true).await?;
    let result = run_on(&spec, &deployment, args).await;
    deployment.shutdown().await;
    let row = result?;

    let title = format!(
        "queue: round robin, {} new conversations/s, {} agents, max {} open each, {} s after {} s warm-up",
        spec.timeline.rate, spec.agents, args.max_open, spec.timeline.duration, spec.timeline.warmup
    );
    report::print_queue(&title, &row);
    if let Some(path) = &args.run.json {
        report::write_json(path, "queue", args, &[&row])?;
    }
    if row.failed() {
        eprintln!(
            "chatgate-bench: FAILED: {}: {} assigned twice, {} lost, {} errors (details above)",
            row.target,
            row.assigned_twice + row.announced_twice + row.audit.two_agents,
            row.lost + row.audit.never_assigned,
            row.errors.total()
        );
    }
    Ok(!row.failed())
}

/// Parent side: channel, agents, the share, the audit.
async fn run_on(spec: &QueueSpec, target: &Deployment, args: &QueueArgs) -> Result<QueueRow> {
    let channel = target
        .spec
        .channel
        .ok_or_else(|| anyhow!("no channel id for {}", target.spec.label))?;
    let AgentsSetup {
        front,
        back,
        http,
        admin,
        agents,
    } = setup_agents("queue", spec.agents, target, &args.run).await?;
    let info = client::channel_call(
        &http.pick(),
        &front,
        &admin,
        "info",
        &json!({ "channel_id": channel }),
    )
    .await?;
    let routing = |assignment: &Value, max_open: &Value| json!({"channel_id": channel, "assignment": assignment, "max_open_per_agent": max_open});
    let round_robin = routing(&json!("round_robin"), &json!(args.max_open));
    client::channel_call(&http.pick(), &front, &admin, "update", &round_robin).await?;

    let plan = Plan {
        share: 0,
        shares: 1,
        target: target.spec.clone(),
        source_ips: args.run.source_ips,
        connect_concurrency: args.run.connect_concurrency,
        work: Work::Queue(QueuePlan {
            spec: spec.clone(),
            agents: agents.clone(),
            channel,
        }),
    };
    let timeline = spec.timeline;
    let timed = shard::run_timed(
        vec![plan],
        &target.server_pids(),
        timeline.warmup,
        timeline.duration,
    )
    .await?;
    let result = match timed.replies.into_iter().next() {
        Some(FromShare::QueueDone(result)) => *result,
        other => bail!("unexpected reply from the share: {other:?}"),
    };
    let server_rss_mib = target
        .server_pids()
        .into_iter()
        .filter_map(|pid| spawn::rss_bytes(pid).ok())
        .map(|bytes| bytes as f64 / (1024.0 * 1024.0))
        .collect();

    // The agents' own lists, each on the instance its socket was on.
    let instances = [front.clone(), back.clone()];
    let mut lists = Vec::new();
    for (a, agent) in agents.iter().enumerate() {
        let endpoint = &instances[instance_of(a as u64, 2)];
        let rooms = client::all_rooms(&http.pick(), endpoint, agent).await?;
        lists.push(rooms.iter().filter_map(listed).collect::<Vec<_>>());
    }
    let queue_url = client::chatd_url(&front, &format!("/queues?channel_id={channel}"));
    let queue =
        client::call_json(&http.pick(), reqwest::Method::GET, &queue_url, &admin, None).await?;
    let queued: Vec<Uuid> = queue["items"]
        .as_array()
        .map(|items| items.iter().filter_map(|r| uuid_at(&r["uuid"])).collect())
        .unwrap_or_default();
    let audit = audit(&result.stored_rooms, &lists, &queued);

    if args.target.server.is_some() {
        let before = routing(&info["assignment"], &info["max_open_per_agent"]);
        if let Err(err) =
            client::channel_call(&http.pick(), &front, &admin, "update", &before).await
        {
            eprintln!("chatgate-bench: could not restore the channel's assignment: {err:#}");
        }
        delete_agents(&http, &front, &admin, &agents).await;
    }

    let histogram = |pairs: &[(u64, u64)]| {
        let mut h = report::histogram();
        report::add_pairs(&mut h, pairs);
        Percentiles::of(&h)
    };
    Ok(QueueRow {
        target: target.spec.label.clone(),
        agents: spec.agents,
        max_open: args.max_open,
        rate: timeline.rate,
        warmup_secs: timeline.warmup,
        duration_secs: timeline.duration,
        started: result.started,
        stored: result.stored,
        assigned: result.assigned,
        started_per_sec: result.started_in_window as f64 / timeline.duration,
        assigned_per_sec: result.assigned_in_window as f64 / timeline.duration,
        latency_ms: histogram(&result.latency),
        planned_latency_ms: histogram(&result.planned_latency),
        stored_latency_ms: histogram(&result.stored_latency),
        closed: result.closed,
        assigned_twice: result.assigned_twice,
        announced_twice: result.announced_twice,
        lost: result.lost,
        audit,
        errors: result.errors,
        setup_secs: timed.setup_secs,
        server_cpu_percent: timed.server_cpu_percent,
        bench_cpu_percent: timed.bench_cpu_percent,
        server_rss_mib,
        error_samples: result.samples,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn room(n: u128) -> Uuid {
        Uuid::from_u128(n)
    }

    fn item(n: u128, agent_members: usize) -> Listed {
        Listed {
            room: room(n),
            agent_members,
        }
    }

    #[test]
    fn conversations_and_agents_alternate_over_the_instances() {
        let one: Vec<usize> = (0..4).map(|k| instance_of(k, 1)).collect();
        assert_eq!(one, [0, 0, 0, 0]);
        let two: Vec<usize> = (0..4).map(|k| instance_of(k, 2)).collect();
        assert_eq!(two, [0, 1, 0, 1]);
        assert_eq!(instance_of(3, 0), 0, "no instances is treated as one");
    }

    #[test]
    fn a_visitor_room_is_read_with_its_agent_members() {
        let value = json!({"uuid": room(7), "kind": "visitor", "users": [
            {"uuid": room(1), "kind": "visitor"},
            {"uuid": room(2), "kind": "agent"},
        ]});
        assert_eq!(listed(&value), Some(item(7, 1)));
        let agent_room = json!({"uuid": room(8), "kind": "agent", "users": []});
        assert_eq!(listed(&agent_room), None);
        assert_eq!(listed(&json!({"kind": "visitor"})), None);
    }

    #[test]
    fn the_audit_finds_rooms_held_twice_and_rooms_nobody_has() {
        let stored = [room(1), room(2), room(3), room(4)];
        let lists = vec![
            vec![item(1, 1), item(2, 1)],
            // Room 2 again in another agent's list; room 3 with two agents.
            vec![item(2, 1), item(3, 2)],
        ];
        let audit = audit(&stored, &lists, &[room(4)]);
        assert_eq!(audit.rooms_listed, 3);
        assert_eq!(audit.two_agents, 2);
        assert_eq!(audit.never_assigned, 1);
        assert_eq!(audit.still_queued, 1);

        let clean = super::audit(&stored[..2], &[vec![item(1, 1)], vec![item(2, 1)]], &[]);
        assert_eq!(clean.two_agents + clean.never_assigned, 0);
    }

    #[test]
    fn a_second_assignment_counts_twice_and_only_the_first_is_timed() {
        let recorder = Recorder::new(Timeline {
            rate: 10.0,
            warmup: 0.0,
            duration: 1.0,
        });
        recorder.start.store(clock::now_micros(), Ordering::Relaxed);
        let t0 = recorder.started(0, room(9));
        recorder.send_done(0, t0, Ok(()));
        assert_eq!(recorder.unassigned(), 1);
        assert_eq!(recorder.on_assigned(3, room(9), t0 + 5_000), Some(0));
        assert_eq!(recorder.unassigned(), 0);
        assert_eq!(recorder.on_assigned(4, room(9), t0 + 6_000), Some(0));
        assert_eq!(
            recorder.on_assigned(4, room(10), t0),
            None,
            "not the bench's room"
        );
        let result = recorder.result(0.0);
        assert_eq!(
            (result.assigned, result.assigned_twice, result.lost),
            (1, 1, 0)
        );
        let mut latency = report::histogram();
        report::add_pairs(&mut latency, &result.latency);
        assert_eq!(latency.len(), 1);
        assert!(
            (4_990..=5_010).contains(&latency.max()),
            "{}",
            latency.max()
        );
        assert_eq!(result.stored_rooms, [room(9)]);
    }
}
