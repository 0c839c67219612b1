//! Visitors reaching agents: the queue, the answer, the reply, delivery and
//! read state, on the configured backend (the two-instance versions are in
//! `cluster.rs`).

use std::time::Duration;

use chatgate::ws::stomp::{Command, StompFrame};
use serde_json::{json, Value};

use crate::agent_helpers::{AgentClient, EventSocket};
use crate::helpers::{Stomp, TestApp};

/// Subscribes an already subscribed visitor session to `/queue/events` too;
/// returns the availability it is told first (whether an agent is there).
pub async fn subscribe_events(stomp: &mut Stomp) -> bool {
    stomp
        .send(
            StompFrame::new(Command::Subscribe)
                .header("id", "sub-events")
                .header("destination", "/queue/events")
                .header("receipt", "r-events"),
        )
        .await;
    let first = stomp.recv().await.expect("availability");
    assert_eq!(first.command, Command::Message, "{first:?}");
    assert_eq!(first.get("destination"), Some("/queue/events"));
    let body: Value = serde_json::from_slice(&first.body).unwrap();
    assert_eq!(body["type"], "availability", "{body}");
    // Then how far agents have read, if they have, then the receipt.
    loop {
        let next = stomp.recv().await.expect("RECEIPT");
        if next.command == Command::Receipt {
            break;
        }
        let read: Value = serde_json::from_slice(&next.body).unwrap();
        assert_eq!(read["type"], "read", "{read}");
    }
    body["agents_available"]
        .as_bool()
        .expect("agents_available")
}

/// The next MESSAGE frame's destination and body.
pub async fn next_frame(stomp: &mut Stomp) -> (String, Value) {
    loop {
        let frame = stomp.recv().await.expect("socket open");
        if frame.command == Command::Message {
            return (
                frame.get("destination").unwrap_or_default().to_string(),
                serde_json::from_slice(&frame.body).unwrap(),
            );
        }
    }
}

/// The next MESSAGE frame on `/queue/message` (events frames are skipped).
pub async fn next_message(stomp: &mut Stomp) -> Value {
    loop {
        let (destination, body) = next_frame(stomp).await;
        if destination == "/queue/message" {
            return body;
        }
    }
}

/// Waits until the REST state of `message` in `room` is `state`.
pub async fn wait_state(agent: &AgentClient, room: &str, message: &str, state: &str) -> Value {
    let deadline = tokio::time::Instant::now() + crate::helpers::WAIT;
    loop {
        let found = agent
            .messages(room)
            .await
            .into_iter()
            .find(|m| m["uuid"] == message)
            .expect("message listed");
        if found["state"] == state {
            return found;
        }
        assert!(
            tokio::time::Instant::now() < deadline,
            "message never became {state}: {found}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn a_visitor_is_queued_answered_and_replied_to_and_the_reply_is_delivered_then_read() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let mut events = admin.events().await;
    let visitor = app.visitor().await;
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    subscribe_events(&mut stomp).await;

    // The first message queues the room; every agent of the tenant hears of it.
    let sent = app.send(&visitor.token, "Hello, anyone there?").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let (_, own) = next_frame(&mut stomp).await;
    assert_eq!(own["message"]["alignment"], "RIGHT");
    let queued = events.event("chatd_queue_updated").await;
    let room = queued["room"]["uuid"].as_str().unwrap().to_string();
    assert_eq!(room, visitor.conversation_id);
    assert_eq!(queued["action"], "queued");
    assert_eq!(queued["room"]["state"], "queued");
    assert_eq!(
        queued["room"]["last_message"]["content"],
        "Hello, anyone there?"
    );
    assert_eq!(queued["room"]["users"][0]["kind"], "visitor");
    assert_eq!(queued["room"]["users"][0]["connected"], true);

    let listed = admin
        .call(
            "GET",
            &format!("/queues?channel_id={}", app.channel_id),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["items"][0]["uuid"], room.as_str());
    assert!(listed.body["items"][0]["wait_seconds"].as_i64().is_some());
    assert_eq!(
        listed.body["items"][0]["last_message"]["content"],
        "Hello, anyone there?"
    );
    assert_eq!(listed.body["items"][0]["unread_count"], 1);

    // Not a member yet: the room's messages are not the admin's to read.
    admin
        .call("GET", &format!("/users/me/rooms/{room}/messages"), None)
        .await
        .assert_error(404, "unknown-room");

    // Answer: the admin joins, the visitor sees a notice, the queue empties.
    let answered = admin.answer(&room).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert_eq!(answered.body["state"], "open");
    assert_eq!(answered.body["assignee_uuid"], admin.uuid.as_str());
    let (_, notice) = next_frame(&mut stomp).await;
    assert_eq!(notice["message"]["alignment"], "CENTER");
    assert_eq!(notice["message"]["content"], "Admin joined");
    assert_eq!(
        events.event("chatd_queue_updated").await["action"],
        "answered"
    );
    let listed = admin.call("GET", "/queues", None).await;
    assert_eq!(listed.body["total"], 0, "{}", listed.body);
    admin
        .answer(&room)
        .await
        .assert_error(409, "already-answered");

    // The reply: PENDING when stored, LEFT with the agent's name at the
    // visitor, then DELIVERED for everyone.
    let reply = admin.post(&room, "Yes! How can I help?").await;
    assert_eq!(reply["state"], "PENDING");
    assert_eq!(reply["kind"], "agent");
    let message = reply["uuid"].as_str().unwrap().to_string();
    let (_, created) = next_frame(&mut stomp).await;
    assert_eq!(created["type"], "message.created");
    assert_eq!(created["message"]["alignment"], "LEFT");
    assert_eq!(created["message"]["sender"]["name"], "Admin");
    assert_eq!(created["message"]["content"], "Yes! How can I help?");
    let (_, updated) = next_frame(&mut stomp).await;
    assert_eq!(updated["type"], "message.updated");
    assert_eq!(updated["message"]["state"], "DELIVERED");
    let seq = updated["message"]["seq"].as_i64().unwrap();
    let event = events
        .event_with("chatd_user_room_message_updated", "uuid", message.as_str())
        .await;
    assert_eq!(event["state"], "DELIVERED");
    wait_state(&admin, &room, &message, "DELIVERED").await;

    // The visitor reads it: the agents are told, and read_at is set.
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/read")
                .body(json!({"up_to_seq": seq}).to_string().into_bytes()),
        )
        .await;
    let read = events.event("chatd_user_room_read").await;
    assert_eq!(read["room"]["uuid"], room.as_str());
    assert_eq!(read["user_uuid"], visitor.conversation_id.as_str());
    let listed = admin.messages(&room).await;
    let stored = listed
        .iter()
        .find(|m| m["uuid"] == message.as_str())
        .unwrap();
    assert!(stored["read_at"].is_string(), "{stored}");

    // The agent reads the room: the visitor gets its read receipt.
    let marked = admin
        .call("PUT", &format!("/users/me/rooms/{room}/read"), None)
        .await;
    assert_eq!(marked.status, 204, "{}", marked.body);
    let (destination, receipt) = next_frame(&mut stomp).await;
    assert_eq!(destination, "/queue/events");
    assert_eq!(receipt, json!({"type": "read", "up_to_seq": seq}));
}

#[tokio::test]
async fn a_reply_to_an_offline_visitor_stays_pending_until_it_resumes_with_since_seq() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = app.visitor().await;
    app.send(&visitor.token, "Are you open on Sunday?").await;
    let room = visitor.conversation_id.clone();
    assert_eq!(admin.answer(&room).await.status, 200);
    let reply = admin.post(&room, "We are, from 10 to 4.").await;
    let message = reply["uuid"].as_str().unwrap().to_string();
    let stored = wait_state(&admin, &room, &message, "PENDING").await;
    assert!(stored["read_at"].is_null());

    // The visitor comes back and replays what it missed.
    let mut stomp = Stomp::subscribed(&app, &visitor.token, Some(1)).await;
    let replayed = stomp.messages(2).await;
    assert_eq!(replayed[0]["message"]["content"], "Admin joined");
    assert_eq!(replayed[1]["message"]["content"], "We are, from 10 to 4.");
    assert_eq!(replayed[1]["message"]["alignment"], "LEFT");
    // Still PENDING when the visitor came back: nothing marked it while
    // no socket of the visitor's was open. Its delivery is this replay.
    assert_eq!(replayed[1]["message"]["state"], "PENDING");
    wait_state(&admin, &room, &message, "DELIVERED").await;
    let update = stomp.messages(1).await;
    assert_eq!(update[0]["type"], "message.updated");
    assert_eq!(update[0]["message"]["state"], "DELIVERED");
}

#[tokio::test]
async fn twenty_concurrent_answers_have_exactly_one_winner_and_one_join_notice() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let mut agents = Vec::new();
    for i in 0..4 {
        agents.push(admin.new_agent(&app, &format!("Agent{i}")).await);
    }
    let visitor = app.visitor().await;
    app.send(&visitor.token, "Hi").await;
    let room = visitor.conversation_id.clone();
    let answers = (0..20).map(|i| {
        let agent = agents[i % agents.len()].clone();
        let room = room.clone();
        async move { agent.answer(&room).await }
    });
    let replies = futures_util::future::join_all(answers).await;
    let won: Vec<_> = replies.iter().filter(|r| r.status == 200).collect();
    assert_eq!(won.len(), 1, "{replies:?}");
    for lost in replies.iter().filter(|r| r.status != 200) {
        lost.assert_error(409, "already-answered");
    }
    let assignee = won[0].body["assignee_uuid"].as_str().unwrap().to_string();
    let users = won[0].body["users"].as_array().unwrap();
    assert_eq!(users.len(), 2, "the visitor and one agent: {users:?}");
    let history = app.history(&visitor).await;
    let notices: Vec<_> = history
        .iter()
        .filter(|m| m["alignment"] == "CENTER")
        .collect();
    assert_eq!(notices.len(), 1, "{history:?}");
    let winner = agents.iter().find(|a| a.uuid == assignee).unwrap();
    assert_eq!(winner.rooms().await.len(), 1);
    for loser in agents.iter().filter(|a| a.uuid != assignee) {
        assert!(loser.rooms().await.is_empty());
    }
}

#[tokio::test]
async fn answering_an_unknown_or_agent_room_is_404_and_a_bad_channel_filter_is_400() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    admin
        .answer(&uuid::Uuid::new_v4().to_string())
        .await
        .assert_error(404, "unknown-room");
    admin
        .answer("not-a-uuid")
        .await
        .assert_error(404, "unknown-room");
    let other = admin.new_agent(&app, "Bo").await;
    let room = admin.create_room(&[&other]).await;
    admin
        .answer(room["uuid"].as_str().unwrap())
        .await
        .assert_error(404, "unknown-room");
    admin
        .call("GET", "/queues?channel_id=nope", None)
        .await
        .assert_error(400, "invalid-data");
}

#[tokio::test]
async fn an_agent_socket_with_a_bad_token_is_closed_with_4003() {
    let app = TestApp::spawn().await;
    let mut ws = EventSocket {
        ws: EventSocket::open(&app.base, "not-a-token").await,
    };
    assert_eq!(ws.close_code().await, Some(4003));
    // A visitor token is not an agent token either.
    let visitor = app.visitor().await;
    let mut ws = EventSocket {
        ws: EventSocket::open(&app.base, &visitor.token).await,
    };
    assert_eq!(ws.close_code().await, Some(4003));
}

#[tokio::test]
async fn replies_that_never_reached_the_visitor_fail_when_the_channel_is_disconnected() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let mut events = admin.events().await;
    let visitor = app.visitor().await;
    app.send(&visitor.token, "Hello?").await;
    let room = visitor.conversation_id.clone();
    assert_eq!(admin.answer(&room).await.status, 200);
    let reply = admin.post(&room, "Still there?").await;
    let message = reply["uuid"].as_str().unwrap().to_string();
    let disconnected = app
        .post(
            "/channels.chatplugin.disconnect",
            &json!({"channel_id": app.channel_id}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(disconnected.status, 204, "{}", disconnected.body);
    let failed = events
        .event_with("chatd_user_room_message_updated", "uuid", message.as_str())
        .await;
    assert_eq!(failed["state"], "FAILED");
    wait_state(&admin, &room, &message, "FAILED").await;
    // The visitor's own message stays DELIVERED.
    let listed = admin.messages(&room).await;
    assert_eq!(listed[0]["state"], "DELIVERED");
}

#[tokio::test]
async fn a_new_visitor_session_is_told_how_far_agents_have_read() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = app.visitor().await;
    for text in ["One", "Two"] {
        assert_eq!(app.send(&visitor.token, text).await.status, 200);
    }
    let room = visitor.conversation_id.clone();
    assert_eq!(admin.answer(&room).await.status, 200);

    let events_of_new_session = || async {
        let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
        stomp
            .send(
                StompFrame::new(Command::Subscribe)
                    .header("id", "sub-events")
                    .header("destination", "/queue/events")
                    .header("receipt", "r-events"),
            )
            .await;
        let mut bodies = Vec::new();
        loop {
            let frame = stomp.recv().await.expect("frames");
            if frame.command == Command::Receipt {
                return bodies;
            }
            bodies.push(serde_json::from_slice::<Value>(&frame.body).unwrap());
        }
    };
    // Nobody has read anything yet: availability only.
    let before = events_of_new_session().await;
    assert_eq!(before.len(), 1, "{before:?}");
    assert_eq!(before[0]["type"], "availability");

    let read = admin
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/read"),
            Some(json!({"up_to_seq": 2})),
        )
        .await;
    assert_eq!(read.status, 204, "{}", read.body);
    let after = events_of_new_session().await;
    assert_eq!(after.len(), 2, "{after:?}");
    assert_eq!(after[1], json!({"type": "read", "up_to_seq": 2}));
}
