//! Webhooks across a SIGKILL: visitors chat while every event goes to a
//! real receiver (tests/support/webhook_receiver.rs) that answers slowly
//! and sometimes fails, so deliveries are queued and in flight when the
//! server is killed; started again on the same database, it delivers every
//! event of every acknowledged message at least once, in order per
//! conversation. Duplicates come only from the deliveries the killed
//! process had claimed (made, not yet recorded).

use std::collections::{HashMap, HashSet};
use std::time::Duration;

use serde_json::json;

use crate::clients::{http, Agent, Answer as Reply, Visitor};
use crate::process::Chatgate;
use crate::webhook_receiver::{Answer, Receiver};

/// Visitors chatting at once.
const VISITORS: usize = 10;
/// How long they chat before the kill.
const BEFORE_KILL: Duration = Duration::from_millis(1500);
/// Rows one worker round claims at most (`outbox::BATCH`): the most a kill
/// can leave made but unrecorded.
const MOST_IN_FLIGHT: usize = 256;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_committed_event_is_delivered_at_least_once_across_a_sigkill() {
    let receiver = Receiver::start().await;
    // Slow answers keep deliveries in flight; every tenth first try fails.
    let mut n = 0usize;
    receiver.script(move |hit| {
        n += 1;
        if hit.try_number == 1 && n % 10 == 0 {
            Answer::Fail
        } else {
            Answer::Slow(Duration::from_millis(30))
        }
    });
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        (
            "CHATGATE_DATABASE_URL",
            dir.path().join("chatgate.db").display().to_string(),
        ),
        ("CHATGATE_OUTBOX_POLL_MS", "100".to_string()),
        ("CHATGATE_OUTBOX_RETRY_MS", "50".to_string()),
        // A killed instance's claims lapse soon after its restart.
        ("CHATGATE_OUTBOX_LEASE_MS", "2000".to_string()),
        ("CHATGATE_WEBHOOK_TIMEOUT_MS", "1000".to_string()),
        // The receiver listens on 127.0.0.1.
        ("CHATGATE_WEBHOOK_ALLOW_PRIVATE", "1".to_string()),
    ];
    let (mut server, first) = Chatgate::start("webhooks", &env);
    let first = first.expect("a first start");
    let http = http();
    let base = server.base.clone();
    let admin = Agent::login(&http, &base, &first.admin_email, &first.admin_password).await;
    let created = admin
        .call(
            &base,
            "POST",
            "/webhooks",
            Some(json!({"url": receiver.url, "events": ["message.created"]})),
        )
        .await;
    let Reply::Reply(201, body) = created else {
        panic!("create the webhook: {created:?}");
    };
    receiver.set_secret(body["secret"].as_str().expect("secret"));

    // Each visitor sends until the server is killed under it.
    let mut tasks = Vec::new();
    for v in 0..VISITORS {
        let http = http.clone();
        let base = base.clone();
        let channel = first.channel_id.clone();
        tasks.push(tokio::spawn(async move {
            let visitor = Visitor::start(&http, &base, &channel).await;
            let mut acknowledged = Vec::new();
            for i in 0.. {
                let text = format!("v{v} m{i}");
                match visitor.send(&http, &base, &text).await {
                    Reply::Reply(200, _) => acknowledged.push(text),
                    _ => break,
                }
            }
            (visitor.conversation_id, acknowledged)
        }));
    }
    tokio::time::sleep(BEFORE_KILL).await;
    server.kill();
    let mut acknowledged: HashMap<String, Vec<String>> = HashMap::new();
    for task in tasks {
        let (conversation, texts) = task.await.expect("visitor task");
        acknowledged.insert(conversation, texts);
    }
    let total: usize = acknowledged.values().map(Vec::len).sum();
    let before_restart: HashSet<String> = receiver.delivered().into_iter().map(|h| h.id).collect();
    server.restart();

    // Until every acknowledged message's event is in (a send cut by the
    // kill may add one more per conversation, so a count is not enough).
    let wanted: HashSet<&str> = acknowledged
        .values()
        .flatten()
        .map(String::as_str)
        .collect();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    let hits = loop {
        let hits = receiver.delivered();
        let got: HashSet<&str> = hits
            .iter()
            .filter_map(|h| h.body["data"]["message"]["content"].as_str())
            .collect();
        if wanted.is_subset(&got) || std::time::Instant::now() > deadline {
            break hits;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    };
    // Each conversation's messages, in the order of their first 2xx.
    let mut first_2xx = HashSet::new();
    let mut delivered: HashMap<String, Vec<String>> = HashMap::new();
    let mut duplicates = 0;
    for hit in &hits {
        assert!(hit.verified, "{hit:?}");
        if !first_2xx.insert(hit.id.clone()) {
            duplicates += 1;
            continue;
        }
        let message = &hit.body["data"]["message"];
        delivered
            .entry(message["room"]["uuid"].as_str().expect("room").to_string())
            .or_default()
            .push(message["content"].as_str().expect("content").to_string());
    }
    for (conversation, texts) in &acknowledged {
        let got = delivered.get(conversation).cloned().unwrap_or_default();
        // Every acknowledged message, in order (a send cut by the kill may
        // have been stored without its answer: it may come too, last).
        assert_eq!(
            &got[..texts.len().min(got.len())],
            &texts[..],
            "{conversation}; stderr:\n{}",
            server.stderr()
        );
        assert!(got.len() <= texts.len() + 1, "{got:?}");
    }
    let requests = receiver.hits().len();
    println!(
        "webhooks across a SIGKILL: {total} messages acknowledged, {} events delivered \
         ({} before the kill), {requests} requests, {duplicates} delivered twice",
        first_2xx.len(),
        before_restart.len(),
    );
    assert!(
        before_restart.len() < total,
        "the kill came after every delivery: nothing was tested"
    );
    assert!(duplicates <= MOST_IN_FLIGHT, "{duplicates} duplicates");
}
