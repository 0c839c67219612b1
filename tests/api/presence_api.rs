//! Agent presence over the agent API (Wazo's shape): chosen state, status,
//! `connected` from the event socket, `chatd_presence_updated` to the tenant.

use std::time::Duration;

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{TestApp, WAIT};

async fn presence(agent: &AgentClient, user: &str) -> Value {
    let reply = agent
        .call("GET", &format!("/users/{user}/presences"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn wait_connected(agent: &AgentClient, user: &str, connected: bool) {
    let deadline = tokio::time::Instant::now() + WAIT;
    while presence(agent, user).await["connected"] != connected {
        assert!(
            tokio::time::Instant::now() < deadline,
            "{user} never became connected={connected}"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

#[tokio::test]
async fn presence_has_the_wazo_shape_and_connected_follows_the_event_socket() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let mut watcher = admin.events().await;
    let own = presence(&ana, "me").await;
    assert_eq!(own["uuid"], ana.uuid.as_str());
    assert_eq!(own["tenant_uuid"], ana.tenant.as_str());
    assert_eq!(own["state"], "available");
    assert_eq!(own["connected"], false);
    assert_eq!(own["line_state"], "available");
    assert_eq!(own["lines"], json!([]));
    assert_eq!(own["mobile"], false);
    assert_eq!(own["do_not_disturb"], false);

    let socket = ana.events().await;
    let seen = watcher
        .event_with("chatd_presence_updated", "uuid", &ana.uuid)
        .await;
    assert_eq!(seen["connected"], true);
    wait_connected(&admin, &ana.uuid, true).await;
    drop(socket);
    let seen = watcher
        .event_with("chatd_presence_updated", "uuid", &ana.uuid)
        .await;
    assert_eq!(seen["connected"], false);
    wait_connected(&admin, &ana.uuid, false).await;
}

#[tokio::test]
async fn an_agent_sets_its_state_and_status_and_the_tenant_is_told() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let other = AgentClient::other_tenant_admin(&app).await;
    let mut watcher = admin.events().await;
    let mut stranger = other.events().await;
    let set = ana
        .call(
            "PUT",
            &format!("/users/{}/presences", ana.uuid),
            Some(json!({"state": "away", "status": "lunch"})),
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.body);
    let seen = watcher
        .event_with("chatd_presence_updated", "uuid", &ana.uuid)
        .await;
    assert_eq!(seen["state"], "away");
    assert_eq!(seen["status"], "lunch");
    let stored = presence(&admin, &ana.uuid).await;
    assert_eq!(stored["state"], "away");
    assert_eq!(stored["status"], "lunch");
    assert!(stored["last_activity"].is_string(), "{stored}");
    // The stranger may hear its own connection's presence, never Ana's:
    // the other tenant's own change, made after Ana's, is the marker.
    let marked = other
        .call(
            "PUT",
            &format!("/users/{}/presences", other.uuid),
            Some(json!({"state": "available", "status": "marker"})),
        )
        .await;
    assert_eq!(marked.status, 204, "{}", marked.body);
    let before = stranger
        .events_before("chatd_presence_updated", "status", "marker")
        .await;
    for event in before {
        assert_ne!(event["data"]["uuid"], ana.uuid.as_str(), "{event}");
        assert_eq!(event["tenant_uuid"], other.tenant.as_str(), "{event}");
    }

    let listed = admin
        .call(
            "GET",
            &format!("/users/presences?user_uuid={}%2C{}", ana.uuid, admin.uuid),
            None,
        )
        .await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["total"], 2);
    let all = admin.call("GET", "/users/presences", None).await;
    assert_eq!(
        all.body["total"], 2,
        "the tenant's two agents: {}",
        all.body
    );
}

#[tokio::test]
async fn bad_states_foreign_users_and_other_agents_presence_are_refused() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bo = admin.new_agent(&app, "Bo").await;
    let other = AgentClient::other_tenant_admin(&app).await;
    let me = format!("/users/{}/presences", ana.uuid);
    for body in [
        json!({"state": "asleep"}),
        json!({"state": ""}),
        json!({"state": 3}),
        json!({}),
        json!({"state": "away", "status": "x".repeat(201)}),
    ] {
        ana.call("PUT", &me, Some(body))
            .await
            .assert_error(400, "invalid-data");
    }
    assert_eq!(presence(&ana, "me").await["state"], "available");
    // Another agent's presence: 403 for an agent, 204 for an admin.
    bo.call("PUT", &me, Some(json!({"state": "away"})))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(presence(&ana, "me").await["state"], "available");
    let by_admin = admin
        .call("PUT", &me, Some(json!({"state": "unavailable"})))
        .await;
    assert_eq!(by_admin.status, 204, "{}", by_admin.body);
    assert_eq!(presence(&ana, "me").await["state"], "unavailable");
    // Another tenant's agent is unknown, for reading and writing.
    other
        .call("GET", &me, None)
        .await
        .assert_error(404, "unknown-user");
    other
        .call("PUT", &me, Some(json!({"state": "away"})))
        .await
        .assert_error(404, "unknown-user");
    let listed = other
        .call(
            "GET",
            &format!("/users/presences?user_uuid={}", ana.uuid),
            None,
        )
        .await;
    assert_eq!(listed.body["total"], 0, "{}", listed.body);
    assert_eq!(presence(&ana, "me").await["state"], "unavailable");
}

/// A visitor session subscribed to `/queue/events` while no agent is there.
async fn watching_availability(app: &TestApp) -> crate::helpers::Stomp {
    let visitor = app.visitor().await;
    let mut stomp = crate::helpers::Stomp::subscribed(app, &visitor.token, None).await;
    assert!(
        !crate::queue::subscribe_events(&mut stomp).await,
        "nobody connected yet"
    );
    stomp
}

#[tokio::test]
async fn visitors_see_agents_available_turn_true_and_false_with_presence() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let mut stomp = watching_availability(&app).await;

    // An agent connects, available by default: visitors are told.
    let ana = admin.new_agent(&app, "Ana").await;
    let socket = ana.events().await;
    let (destination, body) = crate::queue::next_frame(&mut stomp).await;
    assert_eq!(destination, "/queue/events");
    assert_eq!(
        body,
        json!({"type": "availability", "agents_available": true, "back_at": null})
    );

    // Invisible counts as unavailable to visitors.
    let me = format!("/users/{}/presences", ana.uuid);
    ana.call("PUT", &me, Some(json!({"state": "invisible"})))
        .await;
    let (_, body) = crate::queue::next_frame(&mut stomp).await;
    assert_eq!(body["agents_available"], false);
    ana.call("PUT", &me, Some(json!({"state": "available"})))
        .await;
    let (_, body) = crate::queue::next_frame(&mut stomp).await;
    assert_eq!(body["agents_available"], true);

    // Gone away: false again.
    drop(socket);
    let (_, body) = crate::queue::next_frame(&mut stomp).await;
    assert_eq!(body["agents_available"], false);
    // A newly subscribing visitor is told at once.
    let other = app.visitor().await;
    let mut late = crate::helpers::Stomp::subscribed(&app, &other.token, None).await;
    assert!(!crate::queue::subscribe_events(&mut late).await);
}

#[tokio::test]
async fn visitors_are_told_availability_only_when_the_answer_changes() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let mut stomp = watching_availability(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let ana_socket = ana.events().await;
    let (_, body) = crate::queue::next_frame(&mut stomp).await;
    assert_eq!(body["agents_available"], true, "{body}");

    // None of these changes the answer while someone stays available: a
    // second agent connects, the first changes its status text, then goes
    // away, then leaves; Bob is still there throughout.
    let mut bob_socket = bob.events().await;
    let me = format!("/users/{}/presences", ana.uuid);
    let set = ana
        .call(
            "PUT",
            &me,
            Some(json!({"state": "available", "status": "lunch"})),
        )
        .await;
    assert_eq!(set.status, 204, "{}", set.body);
    ana.call("PUT", &me, Some(json!({"state": "away"}))).await;
    drop(ana_socket);
    // Told to the tenant after visitors were (so Ana's leaving is out).
    loop {
        let seen = bob_socket
            .event_with("chatd_presence_updated", "uuid", &ana.uuid)
            .await;
        if seen["connected"] == false {
            break;
        }
    }
    // The last available agent leaves: that changes it, and it is the very
    // next frame (the unchanged answers before it were not sent).
    drop(bob_socket);
    let (destination, body) = crate::queue::next_frame(&mut stomp).await;
    assert_eq!(destination, "/queue/events");
    assert_eq!(
        body,
        json!({"type": "availability", "agents_available": false, "back_at": null})
    );
}

#[tokio::test]
async fn agents_hear_when_their_visitor_connects_and_leaves() {
    use crate::helpers::Stomp;
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hi").await.status, 200);
    let room = visitor.conversation_id.clone();
    assert_eq!(admin.answer(&room).await.status, 200);
    let mut events = admin.events().await;
    let connected = |rooms: Vec<serde_json::Value>| {
        rooms[0]["users"]
            .as_array()
            .unwrap()
            .iter()
            .find(|u| u["uuid"] == room.as_str())
            .map(|u| u["connected"].clone())
    };
    assert_eq!(connected(admin.rooms().await), Some(json!(false)));

    let stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    let on = events
        .event_with("chatd_visitor_connection_updated", "room_uuid", &room)
        .await;
    assert_eq!(
        on,
        json!({"room_uuid": room, "user_uuid": room, "connected": true})
    );
    assert_eq!(connected(admin.rooms().await), Some(json!(true)));
    // A second tab changes nothing; closing the last one does.
    let second = Stomp::subscribed(&app, &visitor.token, None).await;
    drop(second);
    drop(stomp);
    let off = events
        .event_with("chatd_visitor_connection_updated", "room_uuid", &room)
        .await;
    assert_eq!(off["connected"], false, "{off}");
    assert_eq!(connected(admin.rooms().await), Some(json!(false)));
}
