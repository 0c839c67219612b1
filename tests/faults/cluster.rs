//! Two instances on one PostgreSQL and one Redis (both private to the
//! test), under load, while one of the parts is restarted or killed.

use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use chatgate::ws::stomp::Command;
use serde_json::Value;
use tokio::task::JoinHandle;

use crate::clients::{http, Agent, Answer, EventSocket, Stomp, Visitor};
use crate::load::{answered_visitors, unthrottled, Door, Load, Targets};
use crate::process::{Chatgate, FirstStart, PrivatePostgres, PrivateRedis};

/// How long a phase may take to show its signal on this small machine.
const PHASE: Duration = Duration::from_secs(60);

/// Instances A and B (targets 0 and 1), the admin and the load's visitors.
struct Cluster {
    a: Chatgate,
    b: Chatgate,
    first: FirstStart,
    targets: Arc<Targets>,
    admin: Agent,
    visitors: Vec<Visitor>,
}

impl Cluster {
    async fn start(pg: &PrivatePostgres, redis: &PrivateRedis) -> Cluster {
        let mut env = unthrottled();
        env.extend([
            ("CHATGATE_DATABASE_URL", pg.url()),
            ("CHATGATE_REDIS_URL", redis.url()),
            (
                "CHATGATE_REDIS_PREFIX",
                format!("faults-{}", uuid::Uuid::new_v4().simple()),
            ),
            // Short enough that a lapsed claim is reported during the test.
            ("CHATGATE_PRESENCE_TTL", "10".into()),
            ("CHATGATE_SHUTDOWN_GRACE", "5".into()),
        ]);
        let (a, first) = Chatgate::start("A", &env);
        let first = first.expect("the first instance's first start prints the admin");
        let (b, _) = Chatgate::start("B", &env);
        let targets = Targets::new(vec![a.base.clone(), b.base.clone()]);
        let admin = Agent::login(&http(), &a.base, &first.admin_email, &first.admin_password).await;
        let visitors = answered_visitors(&b.base, &first.channel_id, &admin, 4).await;
        Cluster {
            a,
            b,
            first,
            targets,
            admin,
            visitors,
        }
    }

    fn load(&self) -> Load {
        let (over_http, over_stomp) = self.visitors.split_at(2);
        Load::start(self.targets.clone(), over_http, over_stomp, &self.admin)
    }

    fn bases(&self) -> Vec<String> {
        vec![self.a.base.clone(), self.b.base.clone()]
    }

    async fn verify(&self, fault: &str, load: Load) {
        let ledger = load.stop().await;
        ledger.assert_no_unexpected();
        ledger
            .verify(fault, &self.bases(), &self.visitors, &self.admin)
            .await;
    }

    /// A new conversation subscribed on one instance receives, live, a
    /// message sent through the other: the bus carries events again.
    async fn assert_live_delivery_both_ways(&self) {
        let http = http();
        for (watch, send) in [(&self.a, &self.b), (&self.b, &self.a)] {
            let probe = Visitor::start(&http, &send.base, &self.first.channel_id).await;
            let answer = probe.send(&http, &send.base, "first").await;
            assert!(matches!(answer, Answer::Reply(200, _)), "{answer:?}");
            // Subscribed after seq 1 (the RECEIPT says so): the next message
            // can only come live, through the bus.
            let mut stomp = Stomp::connect(&watch.ws_base(), &probe.token, None)
                .await
                .expect("connects");
            stomp.subscribe_after(1).await.expect("subscribed");
            let text = format!("live via {}", send.name);
            let answer = probe.send(&http, &send.base, &text).await;
            assert!(matches!(answer, Answer::Reply(200, _)), "{answer:?}");
            let got = tokio::time::timeout(PHASE, async {
                loop {
                    let frame = stomp.recv(PHASE).await.expect("socket open");
                    if frame.command == Command::Message {
                        let body: Value = serde_json::from_slice(&frame.body).expect("json");
                        if body["message"]["content"] == text.as_str() {
                            return body;
                        }
                    }
                }
            })
            .await;
            assert!(
                got.is_ok(),
                "a message sent through {} never reached a session on {}",
                send.name,
                watch.name
            );
        }
    }
}

/// Watches one agent's presence while its event socket moves between
/// instances: the agent's own socket reconnects to the next live instance
/// when closed; observers (one starting on each instance, reconnecting
/// likewise) and a poller of the presence API record every time the agent
/// is shown `connected: false`.
struct PresenceWatch {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    /// How many times the watched agent's socket was opened.
    connections: Arc<AtomicU64>,
    /// Every time the agent was shown offline, and where.
    offline: Arc<Mutex<Vec<String>>>,
}

impl PresenceWatch {
    async fn start(cluster: &Cluster) -> PresenceWatch {
        let base = cluster.a.base.clone();
        let watched = cluster.admin.new_agent(&base, "Moving").await;
        let observers = [
            cluster.admin.new_agent(&base, "ObserverA").await,
            cluster.admin.new_agent(&base, "ObserverB").await,
        ];
        let stop = Arc::new(AtomicBool::new(false));
        let connections = Arc::new(AtomicU64::new(0));
        let offline = Arc::new(Mutex::new(Vec::new()));
        let mut tasks = vec![tokio::spawn(keep_socket(
            cluster.targets.clone(),
            0,
            watched.clone(),
            None,
            connections.clone(),
            offline.clone(),
            stop.clone(),
        ))];
        // The watched agent is connected before anyone watches.
        let deadline = tokio::time::Instant::now() + PHASE;
        while !connected(&cluster.admin, &base, &watched.uuid).await {
            assert!(tokio::time::Instant::now() < deadline, "never connected");
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        for (slot, observer) in observers.into_iter().enumerate() {
            tasks.push(tokio::spawn(keep_socket(
                cluster.targets.clone(),
                slot,
                observer,
                Some(watched.uuid.clone()),
                Arc::new(AtomicU64::new(0)),
                offline.clone(),
                stop.clone(),
            )));
        }
        tasks.push(tokio::spawn(poll_presence(
            cluster.targets.clone(),
            cluster.admin.clone(),
            watched.uuid.clone(),
            offline.clone(),
            stop.clone(),
        )));
        PresenceWatch {
            stop,
            tasks,
            connections,
            offline,
        }
    }

    fn connections(&self) -> u64 {
        self.connections.load(Ordering::SeqCst)
    }

    /// Stops watching; returns every time the agent was shown offline.
    async fn stop(self) -> Vec<String> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("a watch task panicked");
        }
        let offline = self.offline.lock().unwrap_or_else(|e| e.into_inner());
        offline.clone()
    }
}

async fn connected(admin: &Agent, base: &str, uuid: &str) -> bool {
    match admin
        .call(
            base,
            "GET",
            &format!("/users/presences?user_uuid={uuid}"),
            None,
        )
        .await
    {
        Answer::Reply(200, body) => body["items"][0]["connected"] == true,
        _ => false,
    }
}

/// Keeps `agent`'s event socket open on a live instance; with `watch`,
/// records each `chatd_presence_updated` showing that agent offline.
async fn keep_socket(
    targets: Arc<Targets>,
    mut slot: usize,
    agent: Agent,
    watch: Option<String>,
    connections: Arc<AtomicU64>,
    offline: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    while !stop.load(Ordering::SeqCst) {
        let base = targets.get(slot);
        let mut socket =
            match EventSocket::connect(&base.replacen("http", "ws", 1), &agent.token).await {
                Ok(socket) => socket,
                Err(_) => {
                    slot += 1;
                    tokio::time::sleep(Duration::from_millis(20)).await;
                    continue;
                }
            };
        connections.fetch_add(1, Ordering::SeqCst);
        while !stop.load(Ordering::SeqCst) {
            match socket.poll(Duration::from_millis(200)).await {
                Ok(None) => {}
                Ok(Some(msg)) => {
                    let data = &msg["data"]["data"];
                    if msg["data"]["name"] == "chatd_presence_updated"
                        && watch.as_deref().is_some_and(|w| data["uuid"] == w)
                        && data["connected"] == false
                    {
                        offline
                            .lock()
                            .unwrap_or_else(|e| e.into_inner())
                            .push(format!("event on {base}: {data}"));
                    }
                }
                Err(()) => break,
            }
        }
        slot += 1;
    }
}

/// Asks the presence API, every 100 ms, whether `uuid` is connected.
async fn poll_presence(
    targets: Arc<Targets>,
    admin: Agent,
    uuid: String,
    offline: Arc<Mutex<Vec<String>>>,
    stop: Arc<AtomicBool>,
) {
    let mut slot = 1;
    while !stop.load(Ordering::SeqCst) {
        let base = targets.get(slot);
        match admin
            .call(
                &base,
                "GET",
                &format!("/users/presences?user_uuid={uuid}"),
                None,
            )
            .await
        {
            Answer::Reply(200, body) if body["items"][0]["connected"] == false => {
                offline
                    .lock()
                    .unwrap_or_else(|e| e.into_inner())
                    .push(format!("presence API on {base}: {body}"));
            }
            Answer::Reply(..) => {}
            Answer::NoAnswer(_) => slot += 1,
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Waits until the watched agent's socket has been opened `n` times.
async fn wait_connections(watch: &PresenceWatch, n: u64) {
    let deadline = tokio::time::Instant::now() + PHASE;
    while watch.connections() < n {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the agent's socket did not move to the live instance"
        );
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rolling_restart_loses_nothing_and_never_shows_a_moving_agent_offline() {
    let pg = PrivatePostgres::start().await;
    let redis = PrivateRedis::start().await;
    let mut cluster = Cluster::start(&pg, &redis).await;
    let watch = PresenceWatch::start(&cluster).await;
    let load = cluster.load();
    load.wait_all_acked(10, PHASE, "acks before the restart")
        .await;

    // A goes (its clients and the agent's socket move to B), and comes back.
    cluster.a.terminate().await;
    wait_connections(&watch, 2).await;
    load.wait_all_acked(10, PHASE, "acks while A is down").await;
    cluster.a.restart();
    cluster.targets.set(0, cluster.a.base.clone());
    load.wait_all_acked(5, PHASE, "acks after A is back").await;

    // Then B: everything moves to the new A.
    cluster.b.terminate().await;
    wait_connections(&watch, 3).await;
    load.wait_all_acked(10, PHASE, "acks while B is down").await;
    cluster.b.restart();
    cluster.targets.set(1, cluster.b.base.clone());
    load.wait_all_acked(5, PHASE, "acks after B is back").await;

    cluster.verify("rolling restart", load).await;
    cluster.assert_live_delivery_both_ways().await;
    let offline = watch.stop().await;
    assert!(
        offline.is_empty(),
        "an agent whose socket moved to the other instance was shown offline: {offline:?}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn redis_restarted_under_load_loses_nothing_and_the_bus_recovers_by_itself() {
    let pg = PrivatePostgres::start().await;
    let mut redis = PrivateRedis::start().await;
    let cluster = Cluster::start(&pg, &redis).await;
    let load = cluster.load();
    load.wait_all_acked(10, PHASE, "acks before Redis goes")
        .await;

    redis.stop();
    // The store is the truth: sends are still acknowledged without the bus.
    load.wait_for(
        Door::HttpVisitor,
        |c| c.acked,
        10,
        PHASE,
        "acks without Redis",
    )
    .await;
    load.wait_for(
        Door::AgentReply,
        |c| c.acked,
        10,
        PHASE,
        "acks without Redis",
    )
    .await;
    redis.start_again().await;
    load.wait_all_acked(10, PHASE, "acks once Redis is back")
        .await;

    cluster.verify("Redis restarted", load).await;
    cluster.assert_live_delivery_both_ways().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgres_restarted_under_load_loses_nothing_and_service_resumes_by_itself() {
    let pg = PrivatePostgres::start().await;
    let redis = PrivateRedis::start().await;
    let cluster = Cluster::start(&pg, &redis).await;
    let load = cluster.load();
    load.wait_all_acked(10, PHASE, "acks before PostgreSQL goes")
        .await;

    let doors = [
        (Door::HttpVisitor, 3),
        (Door::AgentReply, 3),
        // A STOMP session ends with its ERROR; a new one cannot CONNECT
        // while the database is down, so each session refuses once.
        (Door::StompVisitor, 1),
    ];
    let before: Vec<u64> = doors
        .iter()
        .map(|(door, _)| load.ledger.counts(*door).refused)
        .collect();
    pg.stop();
    // Down until every door has refused, each promptly enough for its
    // client to hear the answer.
    for ((door, n), from) in doors.into_iter().zip(before) {
        load.wait_until(
            door,
            |c| c.refused,
            from + n,
            PHASE,
            "store-unavailable while PostgreSQL is down",
        )
        .await;
    }
    pg.start_again().await;
    load.wait_all_acked(10, PHASE, "acks once PostgreSQL is back")
        .await;

    cluster.verify("PostgreSQL restarted", load).await;
    cluster.assert_live_delivery_both_ways().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn sigkill_of_one_of_two_instances_under_load_loses_nothing_acknowledged() {
    let pg = PrivatePostgres::start().await;
    let redis = PrivateRedis::start().await;
    let mut cluster = Cluster::start(&pg, &redis).await;
    let load = cluster.load();
    load.wait_all_acked(10, PHASE, "acks before the kill").await;

    cluster.a.kill();
    load.wait_all_acked(10, PHASE, "acks through B alone").await;
    cluster.a.restart();
    cluster.targets.set(0, cluster.a.base.clone());
    load.wait_all_acked(10, PHASE, "acks once A is back").await;

    cluster.verify("SIGKILL of one instance", load).await;
    cluster.assert_live_delivery_both_ways().await;
}
