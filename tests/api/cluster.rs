//! Several instances acting as one: PostgreSQL + Redis, two servers in one
//! test process. Needs `CHATGATE_TEST_POSTGRES_URL` and
//! `CHATGATE_TEST_REDIS_URL`; the Redis-loss tests start a private
//! `redis-server` they can kill and restart without disturbing other tests.

use std::process::{Child, Command as Process, Stdio};
use std::sync::Arc;
use std::time::Duration;

use chatgate::app::FirstStart;
use chatgate::ws::stomp::{Command, StompFrame};
use chatgate::Config;
use serde_json::{json, Value};

use crate::agent_helpers::{AgentClient, EventSocket};
use crate::backends::PgSchema;
use crate::helpers::{Stomp, TestApp, TestDatabase, WAIT};

/// The machine's Redis: `CHATGATE_TEST_REDIS_URL`, or its standard local address.
/// Unreachable is a failure, never a skip.
fn shared_redis_url() -> String {
    std::env::var("CHATGATE_TEST_REDIS_URL")
        .ok()
        .filter(|url| !url.trim().is_empty())
        .unwrap_or_else(|| "redis://127.0.0.1:6379".into())
}

/// Two instances on one fresh PostgreSQL schema and one Redis; the schema
/// is dropped once both are.
async fn cluster(redis_url: String) -> (TestApp, TestApp) {
    let schema = Arc::new(PgSchema::create().await);
    let config = Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: schema.url().to_string(),
        files_url: Some(shared_files_dir()),
        redis_url: Some(redis_url),
        send_burst: 100_000,
        send_per_second: 100_000,
        authenticate_burst: 1_000,
        authenticate_per_minute: 60_000,
        // A deployment of its own: no other test's instance takes its lapsed claims.
        redis_prefix: format!("chatgate-test-{}", uuid::Uuid::new_v4().simple()),
        ..Config::default()
    };
    let a = TestApp::start(
        config.clone(),
        TestDatabase::new(Some(schema.clone())),
        None,
    )
    .await;
    let first = FirstStart {
        admin_email: a.admin_email.clone(),
        admin_password: a.admin_password.clone(),
        channel_id: a.channel_id.parse().unwrap(),
    };
    let b = TestApp::start(config, TestDatabase::new(Some(schema)), Some(first)).await;
    (a, b)
}

/// A redis-server of this test's own, on a fixed port so it can be restarted.
struct PrivateRedis {
    port: u16,
    child: Option<Child>,
}

impl PrivateRedis {
    async fn start() -> PrivateRedis {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let mut redis = PrivateRedis { port, child: None };
        redis.restart().await;
        redis
    }

    fn url(&self) -> String {
        format!("redis://127.0.0.1:{}", self.port)
    }

    async fn restart(&mut self) {
        let child = Process::new("redis-server")
            .args([
                "--port",
                &self.port.to_string(),
                "--bind",
                "127.0.0.1",
                "--save",
                "",
                "--appendonly",
                "no",
            ])
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("redis-server is installed (.ci/run checks)");
        self.child = Some(child);
        for _ in 0..100 {
            if tokio::net::TcpStream::connect(("127.0.0.1", self.port))
                .await
                .is_ok()
            {
                return;
            }
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
        panic!("private redis-server did not start");
    }

    fn kill(&mut self) {
        if let Some(mut child) = self.child.take() {
            let _ = child.kill();
            let _ = child.wait();
        }
    }
}

impl Drop for PrivateRedis {
    fn drop(&mut self) {
        self.kill();
    }
}

fn seq(body: &Value) -> i64 {
    body["message"]["seq"].as_i64().unwrap()
}

/// Reads MESSAGE frames until `last` is seen; returns the seqs in arrival order.
async fn seqs_until(stomp: &mut Stomp, last: i64, within: Duration) -> Vec<i64> {
    let mut seqs = Vec::new();
    tokio::time::timeout(within, async {
        while seqs.last() != Some(&last) {
            let frame = stomp
                .recv_within(within)
                .await
                .expect("frame")
                .expect("socket open");
            if frame.command == chatgate::ws::stomp::Command::Message {
                let body: Value = serde_json::from_slice(&frame.body).unwrap();
                if body["type"] == "message.created" {
                    seqs.push(seq(&body));
                }
            }
        }
    })
    .await
    .unwrap_or_else(|_| panic!("did not reach seq {last}; got {seqs:?}"));
    seqs
}

#[tokio::test]
async fn a_message_sent_through_one_instance_reaches_sessions_on_both_once_each() {
    let (a, b) = cluster(shared_redis_url()).await;
    let visitor = a.visitor().await;
    let mut on_a = Stomp::subscribed(&a, &visitor.token, None).await;
    let mut on_b = Stomp::subscribed(&b, &visitor.token, None).await;
    let stranger = b.visitor().await;
    let mut other = Stomp::subscribed(&b, &stranger.token, None).await;

    let reply = b.send(&visitor.token, "through B").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let reply = a.send(&visitor.token, "through A").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Markers, published after the two: a third message, and the
    // stranger's own. A duplicate, or the visitor's message reaching the
    // stranger, would come before them.
    assert_eq!(b.send(&visitor.token, "marker").await.status, 200);
    assert_eq!(a.send(&stranger.token, "own").await.status, 200);
    for session in [&mut on_a, &mut on_b] {
        let got = session.messages(3).await;
        assert_eq!(got[0]["message"]["content"], "through B");
        assert_eq!(got[1]["message"]["content"], "through A");
        assert_eq!(got[2]["message"]["content"], "marker");
    }
    let got = other.messages(1).await;
    assert_eq!(got[0]["message"]["content"], "own", "{}", got[0]);
}

#[tokio::test]
async fn tokens_of_one_instance_verify_on_the_other() {
    let (a, b) = cluster(shared_redis_url()).await;
    let visitor = a.visitor().await;
    assert_eq!(b.send(&visitor.token, "hi").await.status, 200);
    let admin = a.admin_token().await;
    let listed = b.post("/channels.list", &json!({}), Some(&admin)).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
}

#[tokio::test]
async fn concurrent_sends_through_both_instances_get_gapless_seqs() {
    let (a, b) = cluster(shared_redis_url()).await;
    let visitor = a.visitor().await;
    let mut watcher = Stomp::subscribed(&b, &visitor.token, None).await;
    let per_task = 25;
    let mut tasks = Vec::new();
    for (i, base) in [
        a.url("/chatplugin.send"),
        b.url("/chatplugin.send"),
        a.url("/chatplugin.send"),
        b.url("/chatplugin.send"),
    ]
    .into_iter()
    .enumerate()
    {
        let token = visitor.token.clone();
        tasks.push(tokio::spawn(async move {
            let http = reqwest::Client::new();
            let mut seqs = Vec::new();
            for n in 0..per_task {
                let reply = http
                    .post(&base)
                    .bearer_auth(&token)
                    .json(&json!({"message": {"text": format!("t{i}-{n}")}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(reply.status(), 200);
                let body: Value = reply.json().await.unwrap();
                seqs.push(body["seq"].as_i64().unwrap());
            }
            seqs
        }));
    }
    let mut all = Vec::new();
    for task in tasks {
        all.extend(task.await.unwrap());
    }
    let total = (per_task * 4) as i64;
    all.sort();
    assert_eq!(all, (1..=total).collect::<Vec<_>>());
    let seen = seqs_until(&mut watcher, total, WAIT).await;
    assert_eq!(seen, (1..=total).collect::<Vec<_>>(), "in order, each once");
}

#[tokio::test]
async fn losing_redis_mid_stream_loses_nothing_acknowledged() {
    let mut redis = PrivateRedis::start().await;
    let (a, b) = cluster(redis.url()).await;
    let visitor = a.visitor().await;
    let mut on_a = Stomp::subscribed(&a, &visitor.token, None).await;
    let mut on_b = Stomp::subscribed(&b, &visitor.token, None).await;
    let total = 120;
    for n in 1..=total {
        if n == 40 {
            redis.kill();
        }
        if n == 80 {
            redis.restart().await;
        }
        let via = if n % 2 == 0 { &a } else { &b };
        let reply = via.send(&visitor.token, &format!("m{n}")).await;
        // Redis being down never fails a send: the store acknowledged it.
        assert_eq!(reply.status, 200, "send {n}: {}", reply.body);
        assert_eq!(reply.body["seq"], n);
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
    for session in [&mut on_a, &mut on_b] {
        let seen = seqs_until(session, total, Duration::from_secs(30)).await;
        assert_eq!(
            seen,
            (1..=total).collect::<Vec<_>>(),
            "every message exactly once, in order"
        );
    }
    assert_eq!(a.history(&visitor).await.len(), total as usize);
}

#[tokio::test]
async fn killed_subscriber_connections_recover_and_sessions_catch_up() {
    let redis = PrivateRedis::start().await;
    let (a, b) = cluster(redis.url()).await;
    let visitor = a.visitor().await;
    let mut on_b = Stomp::subscribed(&b, &visitor.token, None).await;
    assert_eq!(a.send(&visitor.token, "before").await.status, 200);
    assert_eq!(seqs_until(&mut on_b, 1, WAIT).await, vec![1]);
    let client = redis::Client::open(redis.url()).unwrap();
    let mut conn = client.get_multiplexed_async_connection().await.unwrap();
    let killed: i64 = redis::cmd("CLIENT")
        .arg("KILL")
        .arg("TYPE")
        .arg("pubsub")
        .query_async(&mut conn)
        .await
        .unwrap();
    // Only instances with subscribed topics have a connection in pub/sub mode: B here.
    assert!(killed >= 1, "the subscriber of B was killed ({killed})");
    for n in 2..=10 {
        assert_eq!(a.send(&visitor.token, &format!("m{n}")).await.status, 200);
    }
    assert_eq!(
        seqs_until(&mut on_b, 10, Duration::from_secs(30)).await,
        (2..=10).collect::<Vec<_>>()
    );
}

#[tokio::test]
async fn a_visitor_of_a_stopped_instance_reconnects_to_the_other_and_misses_nothing() {
    let (a, b) = cluster(shared_redis_url()).await;
    let visitor = a.visitor().await;
    let mut on_a = Stomp::subscribed(&a, &visitor.token, None).await;
    for n in 1..=3 {
        assert_eq!(b.send(&visitor.token, &format!("m{n}")).await.status, 200);
    }
    let seen = seqs_until(&mut on_a, 3, WAIT).await;
    let last = *seen.last().unwrap();
    let (_, _, _) = a.stop().await;
    assert_eq!(on_a.close_code().await, Some(1001));
    for n in 4..=6 {
        assert_eq!(b.send(&visitor.token, &format!("m{n}")).await.status, 200);
    }
    let mut on_b = Stomp::subscribed(&b, &visitor.token, Some(last)).await;
    assert_eq!(seqs_until(&mut on_b, 6, WAIT).await, vec![4, 5, 6]);
}

#[tokio::test]
async fn readyz_turns_503_without_redis_and_200_when_it_returns() {
    let mut redis = PrivateRedis::start().await;
    let (a, _b) = cluster(redis.url()).await;
    let ready = |app: &TestApp| {
        let url = app.url("/readyz");
        let http = app.http.clone();
        async move {
            let r = http.get(url).send().await.unwrap();
            (r.status().as_u16(), r.json::<Value>().await.unwrap())
        }
    };
    let (status, body) = ready(&a).await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["database"], "ok");
    assert_eq!(body["bus"], "ok");
    redis.kill();
    let (status, body) = ready(&a).await;
    assert_eq!(status, 503, "{body}");
    assert_eq!(body["database"], "ok");
    assert_ne!(body["bus"], "ok");
    redis.restart().await;
    let mut last = (0, Value::Null);
    for _ in 0..60 {
        last = ready(&a).await;
        if last.0 == 200 {
            return;
        }
        tokio::time::sleep(Duration::from_millis(250)).await;
    }
    panic!("readyz did not recover: {last:?}");
}

#[tokio::test]
async fn a_visitor_connected_to_one_instance_is_online_on_the_other() {
    let (a, b) = cluster(shared_redis_url()).await;
    let visitor = a.visitor().await;
    assert!(!b.visitor_online(&visitor).await);

    let (mut on_a, _) = Stomp::connect(&a, &visitor.token).await;
    assert!(b.wait_visitor_online(&visitor, true, WAIT).await);
    let (on_b, _) = Stomp::connect(&b, &visitor.token).await;
    // The tab on A leaves. A closes the socket after the session has left
    // its presence; flushing A's presence writes then puts that in Redis.
    on_a.send(StompFrame::new(Command::Disconnect).header("receipt", "bye"))
        .await;
    assert_eq!(on_a.close_code().await, Some(1000));
    a.presence.flush().await;
    // The tab on B keeps the visitor online, as both instances see it.
    assert!(a.visitor_online(&visitor).await);
    assert!(b.visitor_online(&visitor).await);

    drop(on_b);
    assert!(a.wait_visitor_online(&visitor, false, WAIT).await);
    assert!(b.wait_visitor_online(&visitor, false, WAIT).await);
}

/// Two deployments on one Redis, told apart by `CHATGATE_REDIS_PREFIX`.
/// They share one database here, so that the same conversation (and token)
/// exists in both, as in a staging copy of production: only the prefix then
/// keeps one deployment's events and presence from reaching the other.
#[tokio::test]
async fn deployments_with_different_redis_prefixes_do_not_see_each_others_events_or_presence() {
    let schema = Arc::new(PgSchema::create().await);
    let deployment = |prefix: &str| Config {
        listen: "127.0.0.1:0".parse().unwrap(),
        database_url: schema.url().to_string(),
        files_url: Some(shared_files_dir()),
        redis_url: Some(shared_redis_url()),
        redis_prefix: prefix.to_string(),
        ..Config::default()
    };
    let run = uuid::Uuid::new_v4().simple().to_string();
    let (prod_prefix, staging_prefix) = (format!("prod-{run}"), format!("staging-{run}"));
    let prod = TestApp::start(
        deployment(&prod_prefix),
        TestDatabase::new(Some(schema.clone())),
        None,
    )
    .await;
    let first = FirstStart {
        admin_email: prod.admin_email.clone(),
        admin_password: prod.admin_password.clone(),
        channel_id: prod.channel_id.parse().unwrap(),
    };
    let staging = TestApp::start(
        deployment(&staging_prefix),
        TestDatabase::new(Some(schema.clone())),
        Some(first),
    )
    .await;
    let visitor = prod.visitor().await;

    // Presence: connected to production only, and written to Redis under its prefix.
    let (on_prod, _) = Stomp::connect(&prod, &visitor.token).await;
    prod.presence.flush().await;
    let client = redis::Client::open(shared_redis_url()).unwrap();
    let mut redis = client.get_multiplexed_async_connection().await.unwrap();
    for (prefix, held) in [(&prod_prefix, 1), (&staging_prefix, 0)] {
        let key = format!("{prefix}:presence:conversation:{}", visitor.conversation_id);
        let exists: i64 = redis::cmd("EXISTS")
            .arg(&key)
            .query_async(&mut redis)
            .await
            .unwrap();
        assert_eq!(exists, held, "{key}");
    }
    assert!(prod.visitor_online(&visitor).await);
    assert!(
        !staging.visitor_online(&visitor).await,
        "staging does not see production's visitor"
    );
    drop(on_prod);

    // Events: each deployment hears only its own. An agent socket on each
    // hears the tenant's events about the conversation (its queue); after a
    // message on one deployment, a marker published on each (the admin's
    // presence status) shows what that deployment heard before it.
    let (prod_admin, staging_admin) = (
        AgentClient::admin(&prod).await,
        AgentClient::admin(&staging).await,
    );
    let mut prod_events = prod_admin.events().await;
    let mut staging_events = staging_admin.events().await;
    // (The visitor's socket on each deployment is that deployment's own
    // news: its connection events are not counted.)
    let about = |events: &[Value]| {
        events
            .iter()
            .filter(|e| e["name"] != "chatd_visitor_connection_updated")
            .filter(|e| e.to_string().contains(&visitor.conversation_id))
            .count()
    };
    let mut on_prod = Stomp::subscribed(&prod, &visitor.token, None).await;
    let mut on_staging = Stomp::subscribed(&staging, &visitor.token, None).await;
    let reply = prod.send(&visitor.token, "on production").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let got = on_prod.messages(1).await;
    assert_eq!(got[0]["message"]["content"], "on production");
    let heard = heard_before_marker(&prod_admin, &mut prod_events, "m1").await;
    assert!(about(&heard) > 0, "production hears its own: {heard:?}");
    let heard = heard_before_marker(&staging_admin, &mut staging_events, "m1").await;
    assert_eq!(about(&heard), 0, "staging hears nothing of it: {heard:?}");

    // On staging, the admin answers (a later message in a queued room
    // reaches no agent) and the visitor writes.
    assert_eq!(
        staging_admin.answer(&visitor.conversation_id).await.status,
        200
    );
    let reply = staging.send(&visitor.token, "on staging").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // Staging's session reads the seq it missed from the shared store, then
    // its own deployment's: the join notice and the message.
    assert_eq!(seqs_until(&mut on_staging, 3, WAIT).await, vec![1, 2, 3]);
    let heard = heard_before_marker(&staging_admin, &mut staging_events, "m2").await;
    assert!(about(&heard) > 0, "staging hears its own: {heard:?}");
    let heard = heard_before_marker(&prod_admin, &mut prod_events, "m2").await;
    assert_eq!(
        about(&heard),
        0,
        "production hears nothing of it: {heard:?}"
    );
}

/// Sets `agent`'s presence status to `marker` on its own instance and
/// returns the events (envelopes) its socket received before hearing it.
async fn heard_before_marker(
    agent: &AgentClient,
    socket: &mut EventSocket,
    marker: &str,
) -> Vec<Value> {
    let set = agent
        .call(
            "PUT",
            &format!("/users/{}/presences", agent.uuid),
            Some(json!({"state": "available", "status": marker})),
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.body);
    socket
        .events_before("chatd_presence_updated", "status", marker)
        .await
}

/// A chatgate process of its own, which the test can kill like a crash.
struct ServerProcess {
    child: Child,
    addr: String,
    /// Kept open so the server never writes to a closed pipe.
    _stdout: std::io::BufReader<std::process::ChildStdout>,
}

impl ServerProcess {
    fn start(config: &Config, presence_ttl: u64) -> ServerProcess {
        use std::io::BufRead;
        let mut child = Process::new(env!("CARGO_BIN_EXE_chatgate"))
            .env_clear()
            .env("CHATGATE_LISTEN", "127.0.0.1:0")
            .env("CHATGATE_DATABASE_URL", &config.database_url)
            .env("CHATGATE_REDIS_URL", config.redis_url.as_deref().unwrap())
            .env("CHATGATE_REDIS_PREFIX", &config.redis_prefix)
            .env("CHATGATE_PRESENCE_TTL", presence_ttl.to_string())
            .stdout(Stdio::piped())
            .stderr(Stdio::null())
            .spawn()
            .expect("the chatgate binary starts");
        let mut stdout = std::io::BufReader::new(child.stdout.take().unwrap());
        let mut line = String::new();
        let addr = loop {
            line.clear();
            assert!(stdout.read_line(&mut line).unwrap() > 0, "server exited");
            if let Some(addr) = line.trim().strip_prefix("chatgate listening on http://") {
                break addr.to_owned();
            }
        };
        ServerProcess {
            child,
            addr,
            _stdout: stdout,
        }
    }
}

impl Drop for ServerProcess {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

#[tokio::test]
async fn the_visitors_of_a_crashed_instance_go_offline_once_its_claims_lapse() {
    let (_a, b) = cluster(shared_redis_url()).await;
    let ttl = 2;
    let mut crashing = ServerProcess::start(&b.config, ttl);
    let visitor = b.visitor().await;
    let mut stomp = Stomp::open(&format!("ws://{}/ws.chatplugin", crashing.addr), None)
        .await
        .unwrap();
    stomp
        .send(
            StompFrame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", "0,0")
                .header("Authorization", format!("Bearer {}", visitor.token)),
        )
        .await;
    assert_eq!(stomp.recv().await.unwrap().command, Command::Connected);
    assert!(b.wait_visitor_online(&visitor, true, WAIT).await);
    // Outlive a few renewals: a live instance keeps its claim.
    tokio::time::sleep(Duration::from_secs(ttl + 1)).await;
    assert!(b.visitor_online(&visitor).await, "renewed while alive");

    // SIGKILL: no goodbye reaches Redis; the socket stays half-open here.
    crashing.child.kill().unwrap();
    crashing.child.wait().unwrap();
    assert!(
        b.wait_visitor_online(&visitor, false, Duration::from_secs(ttl + 3))
            .await,
        "the claim lapses within the presence ttl"
    );
    drop(stomp);
}

#[tokio::test]
async fn a_visitor_on_one_instance_and_an_agent_on_the_other_chat_and_see_delivery() {
    use crate::queue::{next_frame, wait_state};
    let (a, b) = cluster(shared_redis_url()).await;
    let agent = AgentClient::admin(&b).await;
    let mut events = agent.events().await;
    let visitor = a.visitor().await;
    let mut stomp = Stomp::subscribed(&a, &visitor.token, None).await;
    assert_eq!(a.send(&visitor.token, "Hello from A").await.status, 200);
    let queued = events.event("chatd_queue_updated").await;
    let room = queued["room"]["uuid"].as_str().unwrap().to_string();
    assert_eq!(queued["room"]["last_message"]["content"], "Hello from A");
    assert_eq!(agent.answer(&room).await.status, 200);
    let reply = agent.post(&room, "Hello from B").await;
    let message = reply["uuid"].as_str().unwrap().to_string();
    let mut seen = Vec::new();
    while seen.len() < 4 {
        seen.push(next_frame(&mut stomp).await.1);
    }
    assert_eq!(seen[0]["message"]["content"], "Hello from A");
    assert_eq!(seen[1]["message"]["content"], "Admin joined");
    assert_eq!(seen[2]["message"]["content"], "Hello from B");
    assert_eq!(seen[2]["message"]["alignment"], "LEFT");
    assert_eq!(seen[3]["type"], "message.updated");
    assert_eq!(seen[3]["message"]["state"], "DELIVERED");
    wait_state(&agent, &room, &message, "DELIVERED").await;
    // The visitor's next message reaches the agent on the other instance.
    a.send(&visitor.token, "Thanks!").await;
    let created = events
        .event_with("chatd_user_room_message_created", "content", "Thanks!")
        .await;
    assert_eq!(created["kind"], "visitor");
    assert_eq!(created["room"]["uuid"], room.as_str());
}

#[tokio::test]
async fn twenty_answers_split_over_two_instances_have_exactly_one_winner() {
    let (a, b) = cluster(shared_redis_url()).await;
    let admin = AgentClient::admin(&a).await;
    let mut agents = Vec::new();
    for i in 0..4 {
        let on = if i % 2 == 0 { &a } else { &b };
        let created = admin.new_agent(&a, &format!("Racer{i}")).await;
        agents.push(AgentClient::login(on, &created.email, "correct horse").await);
    }
    let visitor = a.visitor().await;
    let mut stomp = Stomp::subscribed(&a, &visitor.token, None).await;
    a.send(&visitor.token, "Hi").await;
    stomp.messages(1).await;
    let room = visitor.conversation_id.clone();
    let answers = (0..20).map(|i| {
        let agent = agents[i % agents.len()].clone();
        let room = room.clone();
        async move { agent.answer(&room).await }
    });
    let replies = futures_util::future::join_all(answers).await;
    assert_eq!(
        replies.iter().filter(|r| r.status == 200).count(),
        1,
        "{replies:?}"
    );
    for lost in replies.iter().filter(|r| r.status != 200) {
        lost.assert_error(409, "already-answered");
    }
    let notice = stomp.messages(1).await;
    assert_eq!(notice[0]["message"]["alignment"], "CENTER");
    // Every answer was replied to before this marker was sent: a second
    // notice would come before it.
    assert_eq!(a.send(&visitor.token, "marker").await.status, 200);
    let next = stomp.messages(1).await;
    assert_eq!(next[0]["message"]["content"], "marker", "{}", next[0]);
    let history = a.history(&visitor).await;
    assert_eq!(
        history
            .iter()
            .filter(|m| m["alignment"] == "CENTER")
            .count(),
        1,
        "{history:?}"
    );
}

#[tokio::test]
async fn round_robin_on_two_instances_assigns_each_room_once_and_keeps_every_limit() {
    let (a, b) = cluster(shared_redis_url()).await;
    let admin = AgentClient::admin(&a).await;
    crate::round_robin::round_robin(&a, &admin, 3).await;
    let mut agents = Vec::new();
    let mut sockets = Vec::new();
    for i in 0..4 {
        let on = if i % 2 == 0 { &a } else { &b };
        let created = admin.new_agent(&a, &format!("Rr{i}")).await;
        let agent = AgentClient::login(on, &created.email, "correct horse").await;
        sockets.push(agent.events().await);
        agents.push(agent);
    }
    // Sixteen visitors write at once, half through each instance; four
    // agents of three rooms each can take twelve.
    let visitors = futures_util::future::join_all((0..16).map(|i| {
        let on = if i % 2 == 0 { &a } else { &b };
        async move {
            let visitor = on.visitor().await;
            assert_eq!(on.send(&visitor.token, "Hi").await.status, 200);
            visitor
        }
    }))
    .await;
    let deadline = std::time::Instant::now() + Duration::from_secs(15);
    let counts = loop {
        let mut counts = Vec::new();
        for agent in &agents {
            let open = agent
                .rooms()
                .await
                .iter()
                .filter(|r| r["state"] == "open" && r["kind"] == "visitor")
                .count();
            counts.push(open);
        }
        if counts.iter().sum::<usize>() == 12 || std::time::Instant::now() > deadline {
            break counts;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    };
    assert_eq!(counts, vec![3, 3, 3, 3], "each agent at its limit, no more");
    let queue = admin.call("GET", "/queues", None).await;
    assert_eq!(queue.body["total"], 4, "{}", queue.body);
    // Each agent hears the "joined" notice of each of its three rooms once
    // it is stored (a task stores it after the assignment): only then is
    // every notice in the histories read below.
    for socket in &mut sockets {
        let mut notices = 0;
        while notices < 3 {
            let message = socket.event("chatd_user_room_message_created").await;
            if message["content"]
                .as_str()
                .is_some_and(|c| c.ends_with(" joined"))
            {
                notices += 1;
            }
        }
    }
    // Every conversation heard at most one "joined": no room was given twice.
    let mut joined = 0;
    for visitor in &visitors {
        let notices = a
            .history(visitor)
            .await
            .iter()
            .filter(|m| m["alignment"] == "CENTER")
            .count();
        assert!(notices <= 1, "{notices} agents joined one visitor");
        joined += notices;
    }
    assert_eq!(joined, 12);
    drop(sockets);
}

#[tokio::test]
async fn a_crashed_instances_agent_and_visitor_turn_offline_and_the_other_instance_is_told() {
    use crate::agent_helpers::{AgentClient, EventSocket};
    let (a, b) = cluster(shared_redis_url()).await;
    let ttl = 2;
    let crashing = ServerProcess::start(&b.config, ttl);
    let crashing_base = format!("http://{}", crashing.addr);
    let admin = AgentClient::admin(&a).await;
    let ana = admin.new_agent(&a, "Ana").await;
    let bob = admin.new_agent(&b, "Bob").await;
    let mut bob_events = bob.events().await;

    // Ana's socket and a visitor's live on the instance that will crash.
    let _ana_socket = EventSocket::connect(&crashing_base, &ana.token).await;
    let connected = bob_events
        .event_with("chatd_presence_updated", "uuid", &ana.uuid)
        .await;
    assert_eq!(connected["connected"], true, "{connected}");
    let visitor = b.visitor().await;
    assert_eq!(b.send(&visitor.token, "Hello").await.status, 200);
    let mut stomp = Stomp::open(&format!("ws://{}/ws.chatplugin", crashing.addr), None)
        .await
        .unwrap();
    stomp
        .send(
            StompFrame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", "0,0")
                .header("Authorization", format!("Bearer {}", visitor.token)),
        )
        .await;
    assert_eq!(stomp.recv().await.unwrap().command, Command::Connected);
    let online = bob_events
        .event_with(
            "chatd_visitor_connection_updated",
            "room_uuid",
            &visitor.conversation_id,
        )
        .await;
    assert_eq!(online["connected"], true, "{online}");

    // SIGKILL: nobody says goodbye; the claims lapse within the ttl and one
    // surviving instance tells the tenant.
    let mut crashing = crashing;
    crashing.child.kill().unwrap();
    crashing.child.wait().unwrap();
    let within = Duration::from_secs(ttl + 4);
    let gone = tokio::time::timeout(
        within,
        bob_events.event_with("chatd_presence_updated", "uuid", &ana.uuid),
    )
    .await
    .expect("the agent's lapse is published within the ttl");
    assert_eq!(gone["connected"], false, "{gone}");
    let left = tokio::time::timeout(
        within,
        bob_events.event_with(
            "chatd_visitor_connection_updated",
            "room_uuid",
            &visitor.conversation_id,
        ),
    )
    .await
    .expect("the visitor's lapse is published within the ttl");
    assert_eq!(left["connected"], false, "{left}");
    let presence = bob
        .call("GET", &format!("/users/{}/presences", ana.uuid), None)
        .await;
    assert_eq!(presence.body["connected"], false, "{}", presence.body);
    drop(stomp);
}

#[tokio::test]
async fn after_a_redis_outage_visitors_learn_the_availability_that_changed_meanwhile() {
    let mut redis = PrivateRedis::start().await;
    let (a, b) = cluster(redis.url()).await;
    let admin = crate::agent_helpers::AgentClient::admin(&a).await;
    let ana = admin.new_agent(&a, "Ana").await;
    let me = format!("/users/{}/presences", ana.uuid);
    let set = ana
        .call("PUT", &me, Some(json!({"state": "invisible"})))
        .await;
    assert!(set.status < 300, "{}", set.body);
    let _socket = ana.events().await;
    // A visitor on the other instance: nobody available.
    let visitor = b.visitor().await;
    let mut stomp = Stomp::subscribed(&b, &visitor.token, None).await;
    assert!(!crate::queue::subscribe_events(&mut stomp).await);

    // Ana becomes available while Redis is down: the news cannot cross.
    redis.kill();
    let set = ana
        .call("PUT", &me, Some(json!({"state": "available"})))
        .await;
    assert!(set.status < 300, "{}", set.body);
    redis.restart().await;

    // Once the bus is back, the visitor is told, with no further change.
    loop {
        let (destination, body) = crate::queue::next_frame(&mut stomp).await;
        if destination == "/queue/events" && body["type"] == "availability" {
            assert_eq!(body["agents_available"], true, "{body}");
            break;
        }
    }
}

/// A files directory the instances of one test share (as they would an S3
/// bucket), under the system's temporary directory.
fn shared_files_dir() -> String {
    std::env::temp_dir()
        .join(format!("chatgate-test-files-{}", uuid::Uuid::new_v4()))
        .display()
        .to_string()
}
