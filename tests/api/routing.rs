//! Getting each visitor to the right agent: transfers, close and reopen.

use serde_json::json;

use crate::agent_helpers::AgentClient;
use crate::helpers::{Stomp, TestApp};
use crate::queue::{next_frame, next_message, subscribe_events};

/// A visitor room answered by `agent`, the visitor subscribed to both queues.
async fn answered(app: &TestApp, agent: &AgentClient) -> (crate::helpers::VisitorSession, Stomp) {
    let visitor = app.visitor().await;
    let mut stomp = Stomp::subscribed(app, &visitor.token, None).await;
    subscribe_events(&mut stomp).await;
    app.send(&visitor.token, "Hello").await;
    next_frame(&mut stomp).await;
    assert_eq!(agent.answer(&visitor.conversation_id).await.status, 200);
    next_frame(&mut stomp).await; // "... joined"
    (visitor, stomp)
}

#[tokio::test]
async fn a_transfer_hands_the_room_over_and_a_foreign_or_unknown_agent_is_400() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let foreign = AgentClient::other_tenant_admin(&app).await;
    let (visitor, mut stomp) = answered(&app, &admin).await;
    let room = visitor.conversation_id.clone();
    let path = format!("/users/me/rooms/{room}/transfers");
    for to in [
        foreign.uuid.clone(),
        uuid::Uuid::new_v4().to_string(),
        admin.uuid.clone(),
    ] {
        admin
            .call("POST", &path, Some(json!({"user_uuid": to})))
            .await
            .assert_error(400, "invalid-data");
    }
    admin
        .call("POST", &path, Some(json!({"user_uuid": "nope"})))
        .await
        .assert_error(400, "invalid-data");
    // Nothing changed: still the admin's room, nobody else in it.
    let rooms = admin.rooms().await;
    assert_eq!(rooms[0]["assignee_uuid"], admin.uuid.as_str());
    assert_eq!(rooms[0]["users"].as_array().unwrap().len(), 2);
    assert!(bo.rooms().await.is_empty());
    bo.call("POST", &path, Some(json!({"user_uuid": admin.uuid})))
        .await
        .assert_error(404, "unknown-room");

    let mut bo_events = bo.events().await;
    let moved = admin
        .call("POST", &path, Some(json!({"user_uuid": bo.uuid})))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["assignee_uuid"], bo.uuid.as_str());
    // (Bo's socket made an agent available: that event may come first.)
    let notice = next_message(&mut stomp).await;
    assert_eq!(notice["message"]["alignment"], "CENTER");
    assert_eq!(notice["message"]["content"], "Bo joined");
    let state = bo_events.event("chatd_room_state_updated").await;
    assert_eq!(state["uuid"], room.as_str());
    assert_eq!(bo.rooms().await.len(), 1);
    admin
        .call("GET", &format!("/users/me/rooms/{room}/messages"), None)
        .await
        .assert_error(404, "unknown-room");
    // The visitor's next message reaches Bo.
    app.send(&visitor.token, "Thanks").await;
    let created = bo_events
        .event_with("chatd_user_room_message_created", "content", "Thanks")
        .await;
    assert_eq!(created["room"]["uuid"], room.as_str());
}

#[tokio::test]
async fn a_closed_room_reopens_to_its_available_agent_when_the_visitor_writes() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let mut events = admin.events().await;
    let (visitor, mut stomp) = answered(&app, &admin).await;
    let room = visitor.conversation_id.clone();
    let path = format!("/users/me/rooms/{room}/state");
    let closed = admin
        .call("PUT", &path, Some(json!({"state": "closed"})))
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    assert_eq!(closed.body["state"], "closed");
    // The stored notice, then the event.
    let (destination, body) = next_frame(&mut stomp).await;
    assert_eq!(destination, "/queue/message");
    assert_eq!(body["message"]["notice"]["type"], "closed", "{body}");
    let (destination, body) = next_frame(&mut stomp).await;
    assert_eq!(destination, "/queue/events");
    assert_eq!(body, json!({"type": "conversation.closed"}));
    assert_eq!(
        events.event("chatd_room_state_updated").await["state"],
        "closed"
    );

    app.send(&visitor.token, "One more question").await;
    let mut seen = Vec::new();
    while seen.len() < 2 {
        seen.push(next_frame(&mut stomp).await.1);
    }
    // The visitor's message, then the event (no notice: the message says it).
    assert_eq!(seen[0]["message"]["content"], "One more question");
    assert_eq!(seen[1], json!({"type": "conversation.reopened"}));
    // The message is published first, then the reopening.
    let created = events
        .event_with(
            "chatd_user_room_message_created",
            "content",
            "One more question",
        )
        .await;
    assert_eq!(created["room"]["uuid"], room.as_str());
    let state = events.event("chatd_room_state_updated").await;
    assert_eq!(state["state"], "open");
    assert_eq!(state["assignee_uuid"], admin.uuid.as_str());
}

#[tokio::test]
async fn a_closed_room_whose_agent_is_away_goes_back_to_the_queue() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let mut watcher = admin.events().await;
    let (visitor, _stomp) = answered(&app, &bo).await;
    let room = visitor.conversation_id.clone();
    let closed = bo
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/state"),
            Some(json!({"state": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    // Bo has no event socket: not available.
    app.send(&visitor.token, "Anyone?").await;
    let queued = loop {
        let e = watcher.event("chatd_queue_updated").await;
        if e["action"] == "queued"
            && e["room"]["uuid"] == room.as_str()
            && e["room"]["state"] == "queued"
        {
            break e;
        }
    };
    assert!(queued["room"]["assignee_uuid"].is_null(), "{queued}");
    let listed = admin.call("GET", "/queues", None).await;
    assert_eq!(
        listed.body["items"][0]["uuid"],
        room.as_str(),
        "{}",
        listed.body
    );
    assert_eq!(admin.answer(&room).await.status, 200);
}

#[tokio::test]
async fn a_bad_state_is_400_and_a_non_member_gets_404() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let (visitor, _stomp) = answered(&app, &admin).await;
    let path = format!("/users/me/rooms/{}/state", visitor.conversation_id);
    for body in [
        json!({"state": "archived"}),
        json!({}),
        json!({"state": true}),
    ] {
        admin
            .call("PUT", &path, Some(body))
            .await
            .assert_error(400, "invalid-data");
    }
    bo.call("PUT", &path, Some(json!({"state": "closed"})))
        .await
        .assert_error(404, "unknown-room");
    assert_eq!(admin.rooms().await[0]["state"], "open");
    let agent_room = admin.create_room(&[&bo]).await;
    admin
        .call(
            "PUT",
            &format!(
                "/users/me/rooms/{}/state",
                agent_room["uuid"].as_str().unwrap()
            ),
            Some(json!({"state": "closed"})),
        )
        .await
        .assert_error(400, "invalid-data");
}

#[tokio::test]
async fn concurrent_writes_into_a_closed_room_reopen_it_once() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let (visitor, mut stomp) = answered(&app, &admin).await;
    let room = visitor.conversation_id.clone();
    let closed = admin
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/state"),
            Some(json!({"state": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    // The "Conversation closed" notice, then the event.
    while next_frame(&mut stomp).await.1 != json!({"type": "conversation.closed"}) {}
    let sends = (0..6).map(|i| {
        let app = &app;
        let token = visitor.token.clone();
        async move { app.send(&token, &format!("again {i}")).await }
    });
    for sent in futures_util::future::join_all(sends).await {
        assert_eq!(sent.status, 200, "{}", sent.body);
    }
    let mut reopened = 0;
    let mut messages = 0;
    while messages < 6 {
        let (destination, body) = next_frame(&mut stomp).await;
        if destination == "/queue/events" && body["type"] == "conversation.reopened" {
            reopened += 1;
        } else if body["type"] == "message.created" {
            messages += 1;
        }
    }
    // A seventh message, sent after the six were answered, is the marker:
    // a reopening announced by any of the six comes before it.
    assert_eq!(app.send(&visitor.token, "marker").await.status, 200);
    loop {
        let (destination, body) = next_frame(&mut stomp).await;
        if destination == "/queue/events" && body["type"] == "conversation.reopened" {
            reopened += 1;
        } else if body["message"]["content"] == "marker" {
            break;
        }
    }
    assert_eq!(reopened, 1);
}
