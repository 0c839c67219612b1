//! Round robin (agent-api.md, "The queue"): new visitor rooms of a
//! `round_robin` channel go to connected, available agents, fewest open
//! rooms first, under the channel's limit; the rest wait in the queue.

use std::collections::HashMap;
use std::time::{Duration, Instant};

use serde_json::{json, Value};

use crate::agent_helpers::{AgentClient, EventSocket};
use crate::helpers::{Stomp, TestApp, VisitorSession};
use crate::queue::next_message;

/// Switches the test app's channel to round robin with `max_open` per agent.
pub async fn round_robin(app: &TestApp, admin: &AgentClient, max_open: u32) {
    let reply = app
        .post(
            "/channels.update",
            &json!({"channel_id": app.channel_id, "assignment": "round_robin",
                    "max_open_per_agent": max_open}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// A visitor that has written its first message.
async fn visitor_writes(app: &TestApp) -> VisitorSession {
    let visitor = app.visitor().await;
    let sent = app.send(&visitor.token, "Hello, anyone?").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    visitor
}

/// The caller's open visitor rooms.
async fn open_rooms(agent: &AgentClient) -> Vec<String> {
    agent
        .rooms()
        .await
        .iter()
        .filter(|r| r["kind"] == "visitor" && r["state"] == "open")
        .map(|r| r["uuid"].as_str().unwrap().to_string())
        .collect()
}

async fn queued(admin: &AgentClient) -> Vec<String> {
    let reply = admin.call("GET", "/queues", None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uuid"].as_str().unwrap().to_string())
        .collect()
}

/// Polls until each agent has its expected number of open rooms and the
/// queue holds `waiting` rooms; fails with what it saw after 10 s.
async fn wait_for_counts(admin: &AgentClient, agents: &[(&AgentClient, usize)], waiting: usize) {
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let mut seen = Vec::new();
        for (agent, _) in agents {
            seen.push(open_rooms(agent).await.len());
        }
        let queue = queued(admin).await.len();
        let want: Vec<usize> = agents.iter().map(|(_, n)| *n).collect();
        if seen == want && queue == waiting {
            return;
        }
        assert!(
            Instant::now() < deadline,
            "open rooms per agent {seen:?} (want {want:?}), queued {queue} (want {waiting})"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn set_state(agent: &AgentClient, state: &str) {
    let reply = agent
        .call(
            "PUT",
            &format!("/users/{}/presences", agent.uuid),
            Some(json!({"state": state})),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
}

#[tokio::test]
async fn nine_visitors_go_three_each_to_the_available_connected_agents_and_nobody_else() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    round_robin(&app, &admin, 5).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let cy = admin.new_agent(&app, "Cy").await;
    let away = admin.new_agent(&app, "Away").await;
    let gone = admin.new_agent(&app, "Gone").await; // available, but no socket
    let mut ana_events = ana.events().await;
    let _bob_events = bob.events().await;
    let _cy_events = cy.events().await;
    set_state(&away, "away").await;
    let _away_events = away.events().await;

    // The first visitor watches its conversation: it hears who joined.
    let first = app.visitor().await;
    let mut stomp = Stomp::subscribed(&app, &first.token, None).await;
    app.send(&first.token, "Hello, anyone?").await;
    next_message(&mut stomp).await; // its own message
    let joined = next_message(&mut stomp).await;
    assert_eq!(joined["message"]["alignment"], "CENTER", "{joined}");
    let name = joined["message"]["content"].as_str().unwrap().to_string();
    assert!(
        ["Ana joined", "Bob joined", "Cy joined"].contains(&name.as_str()),
        "{name}"
    );
    for _ in 1..9 {
        visitor_writes(&app).await;
    }

    wait_for_counts(
        &admin,
        &[
            (&ana, 3),
            (&bob, 3),
            (&cy, 3),
            (&away, 0),
            (&gone, 0),
            (&admin, 0),
        ],
        0,
    )
    .await;
    // Ana was told of each of her rooms.
    let mut told = Vec::new();
    for _ in 0..3 {
        let room = ana_events.event("chatd_user_room_created").await;
        assert_eq!(room["assignee_uuid"], ana.uuid.as_str(), "{room}");
        told.push(room["uuid"].as_str().unwrap().to_string());
    }
    told.sort();
    let mut open = open_rooms(&ana).await;
    open.sort();
    assert_eq!(told, open);
    // And the visitor's room went to exactly one agent.
    let owners: usize = {
        let mut n = 0;
        for agent in [&ana, &bob, &cy] {
            n += usize::from(open_rooms(agent).await.contains(&first.conversation_id));
        }
        n
    };
    assert_eq!(owners, 1);
}

#[tokio::test]
async fn at_the_limit_the_next_visitor_waits_and_gets_the_first_agent_who_closes_a_room() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    round_robin(&app, &admin, 5).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let cy = admin.new_agent(&app, "Cy").await;
    let _sockets: Vec<EventSocket> =
        vec![ana.events().await, bob.events().await, cy.events().await];
    for _ in 0..15 {
        visitor_writes(&app).await;
    }
    wait_for_counts(&admin, &[(&ana, 5), (&bob, 5), (&cy, 5)], 0).await;

    // The sixteenth waits: everyone is at the limit.
    let last = app.visitor().await;
    let mut stomp = Stomp::subscribed(&app, &last.token, None).await;
    app.send(&last.token, "Hello?").await;
    next_message(&mut stomp).await;
    wait_for_counts(&admin, &[(&ana, 5), (&bob, 5), (&cy, 5)], 1).await;
    assert_eq!(queued(&admin).await, vec![last.conversation_id.clone()]);
    // No agent joined meanwhile: the next message the visitor sees is the
    // notice of the agent who frees a slot below.

    // Bob closes one: the waiting visitor is his.
    let closing = open_rooms(&bob).await[0].clone();
    let closed = bob
        .call(
            "PUT",
            &format!("/users/me/rooms/{closing}/state"),
            Some(json!({"state": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    let joined = next_message(&mut stomp).await;
    assert_eq!(joined["message"]["content"], "Bob joined", "{joined}");
    wait_for_counts(&admin, &[(&ana, 5), (&bob, 5), (&cy, 5)], 0).await;
    assert!(open_rooms(&bob).await.contains(&last.conversation_id));
}

#[tokio::test]
async fn a_waiting_visitor_goes_to_the_agent_who_becomes_available_or_connects() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    round_robin(&app, &admin, 5).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    set_state(&ana, "away").await;
    let _ana_events = ana.events().await;

    let first = visitor_writes(&app).await;
    wait_for_counts(&admin, &[(&ana, 0), (&bob, 0)], 1).await;
    // Invisible is not available either: when Bob connects, the router
    // drains the queue after Ana's change (in order), and the room is his.
    // (A room given to an agent who is away or invisible would stay hers,
    // so each step's winner also shows nobody took the room before.)
    set_state(&ana, "invisible").await;
    let _bob_events = bob.events().await;
    wait_for_counts(&admin, &[(&ana, 0), (&bob, 1)], 0).await;
    assert_eq!(open_rooms(&bob).await, vec![first.conversation_id]);

    // Bob goes away; the next visitor waits until Ana becomes available.
    set_state(&bob, "away").await;
    let second = visitor_writes(&app).await;
    wait_for_counts(&admin, &[(&ana, 0), (&bob, 1)], 1).await;
    set_state(&ana, "available").await;
    wait_for_counts(&admin, &[(&ana, 1), (&bob, 1)], 0).await;
    assert_eq!(open_rooms(&ana).await, vec![second.conversation_id]);
}

#[tokio::test]
async fn a_manual_channel_leaves_every_visitor_in_the_queue() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let _ana_events = ana.events().await;
    let mut waiting = Vec::new();
    for _ in 0..3 {
        waiting.push(visitor_writes(&app).await.conversation_id);
    }
    // The marker: a visitor of a round-robin channel of the same tenant.
    // The router drains a tenant's whole queue at once, so the drain that
    // gives Ana this room has seen the three waiting ones too.
    let shop = app
        .create_channel(&admin.token, json!({"name": "Shop"}))
        .await;
    let reply = app
        .post(
            "/channels.update",
            &json!({"channel_id": shop, "assignment": "round_robin", "max_open_per_agent": 5}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let marker = app.visitor_on(&shop).await;
    assert_eq!(app.send(&marker.token, "Hello?").await.status, 200);
    wait_for_counts(&admin, &[(&ana, 1)], 3).await;
    assert_eq!(open_rooms(&ana).await, vec![marker.conversation_id]);
    assert_eq!(
        queued(&admin).await,
        waiting,
        "oldest first, nobody assigned"
    );

    // Switching the channel to round robin serves those already waiting,
    // up to the limit (Ana's load counts the marker's room: 1 + 2 = 3).
    round_robin(&app, &admin, 3).await;
    wait_for_counts(&admin, &[(&ana, 3)], 1).await;
    let rooms: HashMap<String, Value> = ana
        .rooms()
        .await
        .into_iter()
        .map(|r| (r["uuid"].as_str().unwrap().to_string(), r))
        .collect();
    assert!(rooms.contains_key(&waiting[0]) && rooms.contains_key(&waiting[1]));
    assert_eq!(queued(&admin).await, vec![waiting[2].clone()]);
}
