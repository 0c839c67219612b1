//! Webhooks (desk-api.md, "Integrations"): admins manage a tenant's
//! endpoints (`GET/POST /webhooks`, `PATCH/DELETE /webhooks/<uuid>`,
//! `GET /webhooks/<uuid>/deliveries`), and every event reaches a real HTTP
//! receiver (tests/support/webhook_receiver.rs) signed by the Standard
//! Webhooks specification, in order per conversation, at least once while
//! it fails, times out or answers slowly, and never again after a 2xx.

use std::collections::HashMap;
use std::time::Duration;

use base64::Engine;
use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, TestApp, VisitorSession};
use crate::webhook_receiver::{Answer, Hit, Receiver};

/// How long a test waits for its events.
const WITHIN: Duration = Duration::from_secs(30);

/// A server whose failed webhooks are retried within tens of
/// milliseconds, and whose requests time out after 400 ms.
async fn spawn() -> TestApp {
    TestApp::spawn_with(|c| {
        c.outbox_retry_ms = 20;
        c.outbox_poll_ms = 50;
        c.webhook_timeout_ms = 400;
    })
    .await
}

async fn create(admin: &AgentClient, body: Value) -> Reply {
    admin.call("POST", "/webhooks", Some(body)).await
}

/// An endpoint of `admin`'s tenant for `events` at the receiver, whose
/// secret the receiver then checks; its uuid.
async fn subscribe(admin: &AgentClient, receiver: &Receiver, events: Value) -> String {
    let reply = create(admin, json!({"url": receiver.url, "events": events})).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    receiver.set_secret(reply.body["secret"].as_str().unwrap());
    reply.body["uuid"].as_str().unwrap().to_string()
}

async fn deliveries(admin: &AgentClient, webhook: &str) -> Vec<Value> {
    let reply = admin
        .call("GET", &format!("/webhooks/{webhook}/deliveries"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"].as_array().unwrap().clone()
}

/// The endpoint's delivery log once its first delivery was tried at least
/// `attempts` times (or as it is after `WITHIN`).
async fn deliveries_tried(admin: &AgentClient, webhook: &str, attempts: i64) -> Vec<Value> {
    let deadline = std::time::Instant::now() + WITHIN;
    loop {
        let log = deliveries(admin, webhook).await;
        if log
            .first()
            .is_some_and(|d| d["attempts"].as_i64() >= Some(attempts))
            || std::time::Instant::now() > deadline
        {
            return log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
}

async fn set_state(agent: &AgentClient, room: &str, state: &str) {
    let reply = agent
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/state"),
            Some(json!({"state": state})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

async fn post(agent: &AgentClient, room: &str, body: Value) {
    let reply = agent
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(body),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

/// A whole conversation: two visitor messages, an answer, a reply, a
/// private note, a close and a rating. Every step is acknowledged before
/// the next, so its events have one order: the list returned.
async fn conversation(app: &TestApp, admin: &AgentClient) -> (VisitorSession, Vec<&'static str>) {
    let visitor = app.visitor().await;
    let room = visitor.conversation_id.clone();
    for text in ["Hello", "Anyone there?"] {
        assert_eq!(app.send(&visitor.token, text).await.status, 200);
    }
    assert_eq!(admin.answer(&room).await.status, 200);
    post(admin, &room, json!({"content": "Hi, how can I help?"})).await;
    post(admin, &room, json!({"content": "VIP", "private": true})).await;
    set_state(admin, &room, "closed").await;
    let rated = app
        .post(
            "/chatplugin.rate",
            &json!({"rating": 5, "comment": "great"}),
            Some(&visitor.token),
        )
        .await;
    assert_eq!(rated.status, 204, "{}", rated.body);
    let expected = vec![
        "conversation.created",
        "conversation.queued",
        "message.created", // Hello
        "message.created", // Anyone there?
        "conversation.assigned",
        "message.created", // the agent_joined notice
        "message.created", // the reply
        "message.created", // the private note
        "conversation.closed",
        "message.created", // the closed notice
        "conversation.rated",
    ];
    (visitor, expected)
}

/// The events of each conversation, in the order of their first 2xx.
fn delivered_by_conversation(hits: &[Hit]) -> HashMap<String, Vec<Hit>> {
    let mut seen = std::collections::HashSet::new();
    let mut by: HashMap<String, Vec<Hit>> = HashMap::new();
    for hit in hits.iter().filter(|h| (200..300).contains(&h.status)) {
        if seen.insert(hit.id.clone()) {
            by.entry(hit.conversation().unwrap_or_default())
                .or_default()
                .push(hit.clone());
        }
    }
    by
}

#[tokio::test]
async fn every_event_arrives_signed_in_order_per_conversation_through_failures_timeouts_and_slow_answers(
) {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let receiver = Receiver::start().await;
    let webhook = subscribe(&admin, &receiver, json!(["*"])).await;
    // The first try of every third event fails, of every fifth hangs past
    // the sender's timeout, of every seventh answers slowly; later tries
    // of an event fail once more now and then.
    let mut n = 0usize;
    receiver.script(move |hit| {
        n += 1;
        match (hit.try_number, n) {
            (1, n) if n % 3 == 0 => Answer::Fail,
            (1, n) if n % 5 == 0 => Answer::Hang(Duration::from_millis(700)),
            (1, n) if n % 7 == 0 => Answer::Slow(Duration::from_millis(150)),
            (2, n) if n % 4 == 0 => Answer::Fail,
            _ => Answer::Ok,
        }
    });

    // Agents' team rooms stay inside: they send nothing.
    let bo = admin.new_agent(&app, "Bo").await;
    let team = admin.create_room(&[&bo]).await;
    admin.post(team["uuid"].as_str().unwrap(), "lunch?").await;

    let mut expected = HashMap::new();
    let mut visitors = Vec::new();
    for _ in 0..3 {
        let (visitor, events) = conversation(&app, &admin).await;
        expected.insert(visitor.conversation_id.clone(), events);
        visitors.push(visitor);
    }
    let total: usize = expected.values().map(Vec::len).sum();
    let hits = receiver.wait_delivered(total, WITHIN).await;

    let by = delivered_by_conversation(&hits);
    assert_eq!(by.len(), expected.len(), "only the visitor conversations");
    for (room, events) in &expected {
        let got: Vec<&str> = by[room].iter().map(Hit::kind).collect();
        assert_eq!(&got, events, "events of {room} in the order delivered");
        // Messages in seq order; the note carries `private: true`.
        let messages: Vec<&Value> = by[room]
            .iter()
            .filter(|h| h.kind() == "message.created")
            .map(|h| &h.body["data"]["message"])
            .collect();
        assert!(messages
            .windows(2)
            .all(|w| w[0]["seq"].as_i64() <= w[1]["seq"].as_i64()));
        let private: Vec<bool> = messages.iter().map(|m| m["private"] == true).collect();
        assert_eq!(private, [false, false, false, false, true, false]);
        assert_eq!(messages[0]["content"], "Hello");
        assert_eq!(messages[0]["kind"], "visitor");
        assert_eq!(messages[2]["kind"], "system");
        assert_eq!(messages[3]["kind"], "agent");
        let rated = by[room].last().unwrap();
        assert_eq!(rated.body["data"]["room"]["rating"]["rating"], 5);
        assert_eq!(rated.body["data"]["room"]["state"], "closed");
    }
    let hits = receiver.hits();
    for hit in &hits {
        assert!(
            hit.verified,
            "a request whose signature does not verify: {hit:?}"
        );
        assert_eq!(hit.body["tenant_uuid"], admin.tenant.as_str());
        assert!(hit.body["created_at"].is_string());
    }
    // Nothing is sent again after its 2xx: each event's last request is
    // its only 2xx, and the log counts every request.
    // A 2xx is recorded when its worker's round ends: soon after.
    let deadline = std::time::Instant::now() + WITHIN;
    let log = loop {
        let log = deliveries(&admin, &webhook).await;
        let recorded = log.iter().all(|d| d["status"] == "delivered");
        if recorded || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    let hits = receiver.hits();
    assert_eq!(log.len(), total, "{log:#?}");
    for delivery in &log {
        let id = delivery["event_id"].as_str().unwrap();
        let tries: Vec<&Hit> = hits.iter().filter(|h| h.id == id).collect();
        assert_eq!(delivery["status"], "delivered", "{delivery}");
        assert_eq!(
            delivery["attempts"].as_i64().unwrap() as usize,
            tries.len(),
            "{delivery}"
        );
        assert_eq!(
            tries.iter().filter(|h| h.status == 200).count(),
            1,
            "{id} answered 2xx once: {tries:?}"
        );
        assert_eq!(tries.last().unwrap().status, 200);
        assert_eq!(delivery["last_status_code"], 200);
        assert!(delivery["response_time_ms"].as_i64().is_some());
    }
    // Some first tries failed or timed out, and were retried.
    assert!(hits.iter().any(|h| h.status == 503));
    assert!(hits.iter().any(|h| h.status == 500));
}

#[tokio::test]
async fn a_failing_conversation_holds_back_only_its_own_later_events() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let receiver = Receiver::start().await;
    subscribe(&admin, &receiver, json!(["message.created"])).await;
    let stuck = app.visitor().await;
    let flowing = app.visitor().await;
    let failing = stuck.conversation_id.clone();
    let healed = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let healed_in_script = healed.clone();
    receiver.script(move |hit| {
        if hit.conversation().as_deref() == Some(failing.as_str())
            && !healed_in_script.load(std::sync::atomic::Ordering::SeqCst)
        {
            Answer::Fail
        } else {
            Answer::Ok
        }
    });
    for i in 1..=3 {
        assert_eq!(
            app.send(&stuck.token, &format!("stuck {i}")).await.status,
            200
        );
        assert_eq!(
            app.send(&flowing.token, &format!("flowing {i}"))
                .await
                .status,
            200
        );
    }
    // The other conversation's events all arrive while the first one fails.
    let delivered = receiver.wait_delivered(3, WITHIN).await;
    let texts: Vec<&str> = delivered
        .iter()
        .map(|h| h.body["data"]["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["flowing 1", "flowing 2", "flowing 3"]);
    // Only the stuck conversation's first event was tried: it holds the rest.
    let tried: std::collections::HashSet<String> = receiver
        .hits()
        .iter()
        .filter(|h| h.conversation().as_deref() == Some(stuck.conversation_id.as_str()))
        .map(|h| {
            h.body["data"]["message"]["content"]
                .as_str()
                .unwrap()
                .to_string()
        })
        .collect();
    assert_eq!(tried, ["stuck 1".to_string()].into_iter().collect());

    healed.store(true, std::sync::atomic::Ordering::SeqCst);
    let delivered = receiver.wait_delivered(6, WITHIN).await;
    let stuck_texts: Vec<&str> = delivered
        .iter()
        .filter(|h| h.conversation().as_deref() == Some(stuck.conversation_id.as_str()))
        .map(|h| h.body["data"]["message"]["content"].as_str().unwrap())
        .collect();
    assert_eq!(stuck_texts, ["stuck 1", "stuck 2", "stuck 3"]);
}

/// A receiver that takes its time gets several conversations' events at
/// once: a round's deliveries start one at a time (a receiver answering at
/// once gets them one after another), and one more may join them every few
/// milliseconds the round lasts.
#[tokio::test]
async fn a_slow_receiver_gets_several_conversations_events_at_once() {
    const ANSWER_AFTER: Duration = Duration::from_millis(250);
    const CONVERSATIONS: usize = 8;
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let receiver = Receiver::start().await;
    subscribe(&admin, &receiver, json!(["message.created"])).await;
    receiver.script(|_| Answer::Slow(ANSWER_AFTER));
    let mut visitors = Vec::new();
    for _ in 0..CONVERSATIONS {
        visitors.push(app.visitor().await);
    }
    let sends = visitors.iter().map(|v| app.send(&v.token, "hello"));
    for sent in futures_util::future::join_all(sends).await {
        assert_eq!(sent.status, 200, "{}", sent.body);
    }
    let delivered = receiver.wait_delivered(CONVERSATIONS, WITHIN).await;
    // One after another, no request would come before the one ahead of it
    // was answered. The events came in at most two rounds (the messages
    // were sent together), so one of them held at least half.
    let together = delivered
        .iter()
        .map(|first| {
            delivered
                .iter()
                .filter(|h| h.at >= first.at && h.at < first.at + ANSWER_AFTER)
                .count()
        })
        .max()
        .unwrap();
    assert!(
        together >= CONVERSATIONS / 2,
        "at most {together} of {CONVERSATIONS} requests in flight together"
    );
}

#[tokio::test]
async fn admins_create_list_change_and_delete_endpoints_and_the_secret_is_shown_once() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let created = create(
        &admin,
        json!({"url": "https://hooks.example.com/in", "events": ["message.created", "conversation.closed"]}),
    )
    .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let id = created.body["uuid"].as_str().unwrap().to_string();
    let secret = created.body["secret"].as_str().unwrap();
    let key = base64::engine::general_purpose::STANDARD
        .decode(secret.strip_prefix("whsec_").expect("whsec_ prefix"))
        .unwrap();
    assert!((24..=32).contains(&key.len()), "{} bytes", key.len());
    assert_eq!(created.body["enabled"], true);
    assert_eq!(
        created.body["events"],
        json!(["conversation.closed", "message.created"])
    );

    let listed = admin.call("GET", "/webhooks", None).await;
    assert_eq!(listed.status, 200);
    let items = listed.body["items"].as_array().unwrap();
    assert_eq!(items.len(), 1);
    assert_eq!(items[0]["uuid"], id.as_str());
    assert!(items[0].get("secret").is_none(), "{}", items[0]);

    let changed = admin
        .call(
            "PATCH",
            &format!("/webhooks/{id}"),
            Some(json!({"events": ["*"], "enabled": false})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_eq!(changed.body["events"], json!(["*"]));
    assert_eq!(changed.body["enabled"], false);
    assert_eq!(changed.body["url"], "https://hooks.example.com/in");
    assert!(changed.body.get("secret").is_none());

    let deleted = admin.call("DELETE", &format!("/webhooks/{id}"), None).await;
    assert_eq!(deleted.status, 204);
    admin
        .call("DELETE", &format!("/webhooks/{id}"), None)
        .await
        .assert_error(404, "unknown-webhook");
    admin
        .call("GET", "/webhooks/not-a-uuid/deliveries", None)
        .await
        .assert_error(404, "unknown-webhook");
}

#[tokio::test]
async fn bad_endpoints_are_refused_with_the_field_named_and_nothing_stored() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let cases = [
        (json!({"events": ["*"]}), "url"),
        (
            json!({"url": "ftp://example.com/x", "events": ["*"]}),
            "url",
        ),
        (
            json!({"url": "javascript:alert(1)", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "not a url", "events": ["*"]}), "url"),
        (
            json!({"url": "https://u:p@example.com/", "events": ["*"]}),
            "url",
        ),
        (json!({"url": "https://example.com/"}), "events"),
        (
            json!({"url": "https://example.com/", "events": []}),
            "events",
        ),
        (
            json!({"url": "https://example.com/", "events": ["message.sent"]}),
            "events",
        ),
        (
            json!({"url": "https://example.com/", "events": ["*", "message.created"]}),
            "events",
        ),
    ];
    for (body, field) in cases {
        let reply = create(&admin, body.clone()).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"][field].is_array(),
            "{body} names {field}: {}",
            reply.body
        );
    }
    // Wrong types and broken JSON are 400s too.
    for body in [
        json!({"url": 5, "events": ["*"]}),
        json!({"url": "https://example.com/", "events": "*"}),
        json!({"url": "https://example.com/", "events": ["*"], "enabled": "yes"}),
        json!([1, 2]),
    ] {
        let reply = create(&admin, body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
    }
    let broken = admin
        .http
        .post(format!("{}/api/chatd/1.0/webhooks", admin.base))
        .header("X-Auth-Token", &admin.token)
        .header("content-type", "application/json")
        .body("{\"url\": ")
        .send()
        .await
        .unwrap();
    assert_eq!(broken.status(), 400);
    let listed = admin.call("GET", "/webhooks", None).await;
    assert_eq!(listed.body["items"], json!([]), "nothing stored");

    // A bad change changes nothing.
    let id = create(
        &admin,
        json!({"url": "https://example.com/a", "events": ["*"]}),
    )
    .await;
    let id = id.body["uuid"].as_str().unwrap().to_string();
    admin
        .call(
            "PATCH",
            &format!("/webhooks/{id}"),
            Some(json!({"url": "https://example.com/b", "events": ["nope"]})),
        )
        .await
        .assert_error(400, "invalid-data");
    let listed = admin.call("GET", "/webhooks", None).await;
    assert_eq!(listed.body["items"][0]["url"], "https://example.com/a");
}

#[tokio::test]
async fn agents_who_are_not_admins_are_refused_and_another_tenants_endpoints_are_not_found() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let agent = admin.new_agent(&app, "Bo").await;
    let receiver = Receiver::start().await;
    let id = subscribe(&admin, &receiver, json!(["*"])).await;
    for (method, path, body) in [
        ("GET", "/webhooks".to_string(), None),
        (
            "POST",
            "/webhooks".to_string(),
            Some(json!({"url": "https://example.com/", "events": ["*"]})),
        ),
        (
            "PATCH",
            format!("/webhooks/{id}"),
            Some(json!({"enabled": false})),
        ),
        ("DELETE", format!("/webhooks/{id}"), None),
        ("GET", format!("/webhooks/{id}/deliveries"), None),
    ] {
        agent
            .call(method, &path, body)
            .await
            .assert_error(403, "forbidden");
    }

    let other = AgentClient::other_tenant_admin(&app).await;
    for (method, path, body) in [
        (
            "PATCH",
            format!("/webhooks/{id}"),
            Some(json!({"enabled": false})),
        ),
        ("DELETE", format!("/webhooks/{id}"), None),
        ("GET", format!("/webhooks/{id}/deliveries"), None),
    ] {
        other
            .call(method, &path, body)
            .await
            .assert_error(404, "unknown-webhook");
    }
    let listed = other.call("GET", "/webhooks", None).await;
    assert_eq!(listed.body["items"], json!([]));

    // The other tenant's conversations send nothing to this tenant's endpoint.
    let channel = app
        .create_channel(&other.token, json!({"name": "Other site"}))
        .await;
    let theirs = app.visitor_on(&channel).await;
    assert_eq!(app.send(&theirs.token, "theirs").await.status, 200);
    let ours = app.visitor().await;
    assert_eq!(app.send(&ours.token, "ours").await.status, 200);
    // Ours: conversation.created, .queued and message.created.
    receiver.wait_delivered(3, WITHIN).await;
    for hit in receiver.hits() {
        assert_eq!(hit.body["tenant_uuid"], admin.tenant.as_str());
        assert_eq!(
            hit.conversation().as_deref(),
            Some(ours.conversation_id.as_str())
        );
    }
    let still = admin.call("GET", "/webhooks", None).await;
    assert_eq!(still.body["items"][0]["enabled"], true);
}

#[tokio::test]
async fn only_enabled_endpoints_get_the_events_they_subscribe_to() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let closed_only = Receiver::start().await;
    let disabled = Receiver::start().await;
    let closed_id = subscribe(&admin, &closed_only, json!(["conversation.closed"])).await;
    let reply = create(
        &admin,
        json!({"url": disabled.url, "events": ["*"], "enabled": false}),
    )
    .await;
    assert_eq!(reply.status, 201);
    let disabled_id = reply.body["uuid"].as_str().unwrap().to_string();

    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    assert_eq!(admin.answer(&visitor.conversation_id).await.status, 200);
    set_state(&admin, &visitor.conversation_id, "closed").await;
    let hits = closed_only.wait_delivered(1, WITHIN).await;
    assert_eq!(hits[0].kind(), "conversation.closed");
    assert_eq!(
        hits[0].body["data"]["room"]["uuid"],
        visitor.conversation_id.as_str()
    );
    assert_eq!(deliveries(&admin, &closed_id).await.len(), 1);
    // The disabled endpoint was given nothing to send.
    assert!(deliveries(&admin, &disabled_id).await.is_empty());
    assert!(disabled.hits().is_empty());
}

#[tokio::test]
async fn edits_deletions_presence_and_reopening_are_events_too() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let receiver = Receiver::start().await;
    subscribe(
        &admin,
        &receiver,
        json!([
            "message.updated",
            "message.deleted",
            "presence.updated",
            "conversation.reopened"
        ]),
    )
    .await;
    let visitor = app.visitor().await;
    let room = visitor.conversation_id.clone();
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    assert_eq!(admin.answer(&room).await.status, 200);
    let sent = admin
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(json!({"content": "typo"})),
        )
        .await;
    let message = sent.body["uuid"].as_str().unwrap().to_string();
    let edited = admin
        .call(
            "PATCH",
            &format!("/users/me/rooms/{room}/messages/{message}"),
            Some(json!({"content": "fixed"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    let deleted = admin
        .call(
            "DELETE",
            &format!("/users/me/rooms/{room}/messages/{message}"),
            None,
        )
        .await;
    assert!(deleted.status < 300, "{}", deleted.body);
    set_state(&admin, &room, "closed").await;
    set_state(&admin, &room, "open").await;
    let presence = admin
        .call(
            "PUT",
            &format!("/users/{}/presences", admin.uuid),
            Some(json!({"state": "away", "status": "lunch"})),
        )
        .await;
    assert!(presence.status < 300, "{}", presence.body);

    // The conversation's events in their order; the presence (an order of
    // its own: events are ordered per conversation) whenever it comes.
    let hits = receiver.wait_delivered(4, WITHIN).await;
    let (presence, room_hits): (Vec<Hit>, Vec<Hit>) = hits
        .into_iter()
        .partition(|h| h.kind() == "presence.updated");
    let kinds: Vec<&str> = room_hits.iter().map(Hit::kind).collect();
    assert_eq!(
        kinds,
        [
            "message.updated",
            "message.deleted",
            "conversation.reopened"
        ]
    );
    assert_eq!(room_hits[0].body["data"]["message"]["content"], "fixed");
    assert_eq!(room_hits[1].body["data"]["message"]["deleted"], true);
    assert_eq!(room_hits[2].body["data"]["room"]["state"], "open");
    assert_eq!(presence.len(), 1);
    assert_eq!(presence[0].body["data"]["presence"]["state"], "away");
    assert_eq!(
        presence[0].body["data"]["presence"]["uuid"],
        admin.uuid.as_str()
    );
}

#[tokio::test]
async fn an_endpoint_failing_past_the_give_up_time_is_paused_and_its_admins_told() {
    let app = TestApp::spawn_with(|c| {
        c.outbox_retry_ms = 20;
        c.outbox_poll_ms = 50;
        c.webhook_timeout_ms = 400;
        c.webhook_give_up_ms = 800;
    })
    .await;
    let admin = AgentClient::admin(&app).await;
    let mut events = admin.events().await;
    let receiver = Receiver::start().await;
    receiver.script(|_| Answer::Fail);
    let id = subscribe(&admin, &receiver, json!(["message.created"])).await;
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);

    let paused = events.event("chatd_webhook_paused").await;
    assert_eq!(paused["uuid"], id.as_str());
    let listed = admin.call("GET", "/webhooks", None).await;
    let endpoint = &listed.body["items"][0];
    assert_eq!(endpoint["enabled"], false);
    assert!(
        endpoint["paused_reason"]
            .as_str()
            .unwrap()
            .contains("HTTP 500"),
        "{endpoint}"
    );
    // The round that gave up records it just after the pause.
    let deadline = std::time::Instant::now() + WITHIN;
    let log = loop {
        let log = deliveries(&admin, &id).await;
        if log[0]["status"] == "failed" || std::time::Instant::now() > deadline {
            break log;
        }
        tokio::time::sleep(Duration::from_millis(20)).await;
    };
    assert_eq!(log[0]["status"], "failed", "{log:#?}");
    assert!(log[0]["attempts"].as_i64().unwrap() >= 2);
    assert_eq!(log[0]["last_status_code"], 500);

    // Enabled again, it clears the pause; "send again" delivers the event.
    receiver.script(|_| Answer::Ok);
    let enabled = admin
        .call(
            "PATCH",
            &format!("/webhooks/{id}"),
            Some(json!({"enabled": true})),
        )
        .await;
    assert_eq!(enabled.body["enabled"], true);
    assert_eq!(enabled.body["paused_reason"], Value::Null);
    let delivery = log[0]["uuid"].as_str().unwrap();
    let again = admin
        .call(
            "POST",
            &format!("/webhooks/{id}/deliveries/{delivery}/redeliver"),
            None,
        )
        .await;
    assert_eq!(again.status, 202, "{}", again.body);
    let hits = receiver.wait_delivered(1, WITHIN).await;
    assert_eq!(hits[0].id, log[0]["event_id"].as_str().unwrap());
}

#[tokio::test]
async fn a_reply_delivered_to_the_visitors_socket_and_then_read_is_updated_twice() {
    use chatgate::ws::stomp::{Command, StompFrame};
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let receiver = Receiver::start().await;
    subscribe(&admin, &receiver, json!(["message.updated"])).await;
    let visitor = app.visitor().await;
    let room = visitor.conversation_id.clone();
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    assert_eq!(admin.answer(&room).await.status, 200);
    let mut stomp = crate::helpers::Stomp::subscribed(&app, &visitor.token, None).await;
    post(&admin, &room, json!({"content": "Hi!"})).await;

    // Written to the visitor's socket: DELIVERED.
    let delivered = receiver.wait_delivered(1, WITHIN).await;
    let message = &delivered[0].body["data"]["message"];
    assert_eq!(message["state"], "DELIVERED");
    assert_eq!(message["content"], "Hi!");
    let seq = message["seq"].as_i64().unwrap();
    // Read by the visitor: updated again, with its read time.
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/read")
                .body(json!({"up_to_seq": seq}).to_string().into_bytes()),
        )
        .await;
    let delivered = receiver.wait_delivered(2, WITHIN).await;
    let read = &delivered[1].body["data"]["message"];
    assert_eq!(read["uuid"], message["uuid"]);
    assert!(read["read_at"].is_string(), "{read}");
}

/// A server with the operator's default: webhooks reach public addresses only.
async fn spawn_public_only() -> TestApp {
    TestApp::spawn_with(|c| {
        c.outbox_retry_ms = 20;
        c.outbox_poll_ms = 50;
        c.webhook_timeout_ms = 400;
        c.webhook_allow_private = false;
    })
    .await
}

#[tokio::test]
async fn endpoints_naming_internal_addresses_are_refused_unless_the_operator_allows_them() {
    let app = spawn_public_only().await;
    let admin = AgentClient::admin(&app).await;
    for url in [
        "http://127.0.0.1:8080/hooks",
        "http://10.0.0.5/hooks",
        "http://169.254.169.254/latest/meta-data/",
        "http://[::1]:9000/hooks",
        "http://[fd00::1]/hooks",
        "http://localhost:9000/hooks",
        "http://2130706433/hooks",
    ] {
        let reply = create(&admin, json!({"url": url, "events": ["*"]})).await;
        reply.assert_error(400, "invalid-data");
        let said = reply.body["details"]["url"].to_string();
        assert!(
            said.contains("public address") || said.contains("this server"),
            "{url}: {}",
            reply.body
        );
    }
    let listed = admin.call("GET", "/webhooks", None).await;
    assert_eq!(listed.body["items"], json!([]), "nothing stored");

    // A change to an internal address is refused too, and changes nothing.
    let made = create(
        &admin,
        json!({"url": "https://hooks.example.com/in", "events": ["*"]}),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.body["uuid"].as_str().unwrap();
    admin
        .call(
            "PATCH",
            &format!("/webhooks/{id}"),
            Some(json!({"url": "http://192.168.1.10/hooks", "enabled": false})),
        )
        .await
        .assert_error(400, "invalid-data");
    let listed = admin.call("GET", "/webhooks", None).await;
    assert_eq!(
        listed.body["items"][0]["url"],
        "https://hooks.example.com/in"
    );
    assert_eq!(listed.body["items"][0]["enabled"], true);

    // With CHATGATE_WEBHOOK_ALLOW_PRIVATE (the tests' default), they are taken.
    let open = spawn().await;
    let admin = AgentClient::admin(&open).await;
    let reply = create(
        &admin,
        json!({"url": "http://127.0.0.1:8080/hooks", "events": ["*"]}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
}

/// A DNS name of this machine that resolves to loopback addresses only
/// (from /etc/hosts, which every Linux has), other than `localhost`
/// (refused when the endpoint is saved).
async fn name_resolving_to_loopback() -> String {
    let hosts = std::fs::read_to_string("/etc/hosts").unwrap_or_default();
    let mut candidates: Vec<String> = hosts
        .lines()
        .map(|l| l.split('#').next().unwrap_or(""))
        .filter_map(|l| {
            let mut words = l.split_whitespace();
            let addr: std::net::IpAddr = words.next()?.parse().ok()?;
            addr.is_loopback()
                .then(|| words.map(str::to_string).collect::<Vec<_>>())
        })
        .flatten()
        .collect();
    candidates.push("localhost.".into());
    for name in candidates {
        let bare = name.trim_end_matches('.').to_ascii_lowercase();
        if !name.ends_with('.') && (bare == "localhost" || bare.ends_with(".localhost")) {
            continue;
        }
        let addrs: Vec<_> = match tokio::net::lookup_host((name.as_str(), 80)).await {
            Ok(addrs) => addrs.collect(),
            Err(_) => continue,
        };
        if !addrs.is_empty() && addrs.iter().all(|a| a.ip().is_loopback()) {
            return name;
        }
    }
    panic!("no name of /etc/hosts resolves to a loopback address only");
}

#[tokio::test]
async fn a_name_resolving_to_an_internal_address_is_refused_at_delivery_and_nothing_is_sent() {
    let app = spawn_public_only().await;
    let admin = AgentClient::admin(&app).await;
    let receiver = Receiver::start().await;
    let name = name_resolving_to_loopback().await;
    // The receiver's URL with the name in place of 127.0.0.1: it passes
    // the check of the URL (a name is judged when it is resolved).
    let url = receiver.url.replacen("127.0.0.1", &name, 1);
    let made = create(&admin, json!({"url": url, "events": ["message.created"]})).await;
    assert_eq!(made.status, 201, "{url}: {}", made.body);
    let id = made.body["uuid"].as_str().unwrap().to_string();
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);

    // The attempt is recorded as failed, with the reason; not sent.
    let log = deliveries_tried(&admin, &id, 2).await;
    assert_eq!(log.len(), 1, "{log:#?}");
    let delivery = &log[0];
    assert_eq!(delivery["status"], "retrying", "{delivery}");
    assert!(delivery["attempts"].as_i64().unwrap() >= 2, "{delivery}");
    let error = delivery["last_error"].as_str().unwrap_or_default();
    assert!(
        error.starts_with("refused: ") && error.ends_with(" is not a public address"),
        "{delivery}"
    );
    assert!(
        error.contains("127.0.0.1") || error.contains("::1"),
        "{delivery}"
    );
    assert_eq!(
        delivery["last_status_code"],
        Value::Null,
        "no answer: {delivery}"
    );
    assert!(receiver.hits().is_empty(), "{:?}", receiver.hits());

    // The same receiver by its address, once the operator allows it, gets
    // the events: the refusal above was the address, not the receiver.
    let open = spawn().await;
    let admin = AgentClient::admin(&open).await;
    subscribe(&admin, &receiver, json!(["message.created"])).await;
    let visitor = open.visitor().await;
    assert_eq!(open.send(&visitor.token, "Hello").await.status, 200);
    receiver.wait_delivered(1, WITHIN).await;
}

#[tokio::test]
async fn a_redirect_is_not_followed_and_counts_as_a_failure() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let receiver = Receiver::start().await;
    // A server that sends every POST on to the receiver (as one could to
    // an internal address).
    let target = receiver.url.clone();
    use warp::Filter;
    let redirect = warp::any().map(move || {
        warp::http::Response::builder()
            .status(307)
            .header("location", target.as_str())
            .body(String::new())
            .unwrap()
    });
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let port = listener.local_addr().unwrap().port();
    tokio::spawn(warp::serve(redirect).incoming(listener).run());
    let made = create(
        &admin,
        json!({"url": format!("http://127.0.0.1:{port}/in"), "events": ["message.created"]}),
    )
    .await;
    assert_eq!(made.status, 201, "{}", made.body);
    let id = made.body["uuid"].as_str().unwrap().to_string();
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);

    let log = deliveries_tried(&admin, &id, 2).await;
    assert_eq!(log[0]["status"], "retrying", "{log:#?}");
    assert_eq!(log[0]["last_status_code"], 307, "{log:#?}");
    assert!(receiver.hits().is_empty(), "{:?}", receiver.hits());
}

/// The hits so far for one conversation.
fn hits_of(receiver: &Receiver, conversation: &str) -> Vec<Hit> {
    receiver
        .hits()
        .into_iter()
        .filter(|h| h.conversation().as_deref() == Some(conversation))
        .collect()
}

/// Waits until `conversation` has had `n` hits; when the last arrived.
async fn wait_hits(receiver: &Receiver, conversation: &str, n: usize) -> tokio::time::Instant {
    let deadline = tokio::time::Instant::now() + WITHIN;
    loop {
        if hits_of(receiver, conversation).len() >= n {
            return tokio::time::Instant::now();
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "{conversation}: {} hits of {n}",
            hits_of(receiver, conversation).len()
        );
        tokio::time::sleep(Duration::from_millis(5)).await;
    }
}

#[tokio::test]
async fn a_receiver_back_gets_a_long_waiting_event_at_once_not_at_the_end_of_its_backoff() {
    // Retries after 200 ms, doubling: after its sixth failure an event
    // waits 3.2 to 6.4 s for its seventh try.
    let app = TestApp::spawn_with(|c| {
        c.outbox_retry_ms = 200;
        c.outbox_poll_ms = 50;
        c.webhook_timeout_ms = 400;
    })
    .await;
    let admin = AgentClient::admin(&app).await;
    let receiver = Receiver::start().await;
    subscribe(&admin, &receiver, json!(["message.created"])).await;
    let waiting = app.visitor().await;
    let later = app.visitor().await;
    // Down until it has refused the second conversation's first event.
    let back = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
    let back_in_script = back.clone();
    let later_room = later.conversation_id.clone();
    receiver.script(move |hit| {
        use std::sync::atomic::Ordering::SeqCst;
        if back_in_script.load(SeqCst) {
            return Answer::Ok;
        }
        if hit.conversation().as_deref() == Some(later_room.as_str()) {
            back_in_script.store(true, SeqCst);
        }
        Answer::Fail
    });
    assert_eq!(app.send(&waiting.token, "waiting").await.status, 200);
    let sixth = wait_hits(&receiver, &waiting.conversation_id, 6).await;
    assert!(hits_of(&receiver, &waiting.conversation_id)
        .iter()
        .all(|h| h.status >= 500));
    // The receiver comes back: the later event fails once, then its first
    // retry (after 100 to 200 ms) gets through, and that brings the
    // waiting event forward.
    assert_eq!(app.send(&later.token, "later").await.status, 200);
    let seventh = wait_hits(&receiver, &waiting.conversation_id, 7).await;
    let waited = seventh - sixth;
    assert!(
        waited < Duration::from_millis(3_000),
        "the waiting event came {waited:?} after its sixth try: at the end of its backoff, not when the receiver came back"
    );
    let hits = hits_of(&receiver, &waiting.conversation_id);
    assert_eq!(hits.len(), 7, "sent once more, not twice");
    assert_eq!(hits[6].status, 200);
    assert_eq!(hits[6].try_number, 7, "the same event: its id kept");
    let later_hits = hits_of(&receiver, &later.conversation_id);
    assert_eq!(
        later_hits.iter().map(|h| h.status).collect::<Vec<_>>(),
        [500, 200]
    );
}

#[tokio::test]
async fn deliveries_reuse_their_connection_when_the_receiver_answers_with_a_page() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let receiver = Receiver::start().await;
    // 64 KB: more than hyper has read with the answer's head, so a body
    // dropped unread closed the connection.
    receiver.script(|_| Answer::Page(64 * 1024));
    subscribe(&admin, &receiver, json!(["message.created"])).await;
    // One conversation: its events go one after the other, each after the
    // last one's answer, so one kept-alive connection can carry them all.
    let visitor = app.visitor().await;
    const SENT: usize = 12;
    for n in 0..SENT {
        assert_eq!(app.send(&visitor.token, &format!("m{n}")).await.status, 200);
    }
    let hits = receiver.wait_delivered(SENT, WITHIN).await;
    assert!(hits.iter().all(|h| h.verified));
    let mut ports: Vec<u16> = hits.iter().map(|h| h.port).collect();
    ports.sort_unstable();
    ports.dedup();
    // Reading each answer to its end gives its connection back to the pool;
    // dropped unread, every event paid a new connection.
    assert!(
        ports.len() <= 3,
        "{} connections for {SENT} events: {ports:?}",
        ports.len()
    );
}
