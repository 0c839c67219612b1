//! Satisfaction (desk-api.md, "Rating"): a visitor rates its conversation
//! once it is closed, once (`POST /chatplugin.rate` → 204; again → 409
//! `already-rated`; not closed → 409 `conversation-open`; a bad field → 400
//! naming it). Every room shape carries `rating`, agents hear
//! `chatd_room_rated`, and the visitor's other sessions `conversation.rated`.

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, Stomp, TestApp, VisitorSession};
use crate::queue::{next_frame, next_message, subscribe_events};

async fn rate(app: &TestApp, visitor: &VisitorSession, body: Value) -> Reply {
    app.post("/chatplugin.rate", &body, Some(&visitor.token))
        .await
}

/// A visitor who wrote "Hello" and the admin who answered.
async fn answered(app: &TestApp) -> (AgentClient, VisitorSession) {
    let admin = AgentClient::admin(app).await;
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    let answer = admin.answer(&visitor.conversation_id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    (admin, visitor)
}

async fn set_state(agent: &AgentClient, room: &str, state: &str) -> Value {
    let reply = agent
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/state"),
            Some(json!({"state": state})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// A conversation answered, then closed by the admin.
async fn closed(app: &TestApp) -> (AgentClient, VisitorSession) {
    let (admin, visitor) = answered(app).await;
    set_state(&admin, &visitor.conversation_id, "closed").await;
    (admin, visitor)
}

/// The room as the admin's REST calls show it: its own list, the closed
/// filter and the supervisor's read.
async fn rest_shapes(admin: &AgentClient, room: &str) -> Vec<Value> {
    let mut shapes = Vec::new();
    for path in ["/users/me/rooms", "/users/me/rooms?state=closed", "/rooms"] {
        let reply = admin.call("GET", path, None).await;
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        let found = reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .find(|r| r["uuid"] == room)
            .unwrap_or_else(|| panic!("{path} lists the room: {}", reply.body))
            .clone();
        shapes.push(found);
    }
    let one = admin.call("GET", &format!("/rooms/{room}"), None).await;
    assert_eq!(one.status, 200, "{}", one.body);
    shapes.push(one.body);
    shapes
}

#[tokio::test]
async fn a_visitor_rates_a_closed_conversation_once_and_its_agents_hear_it() {
    let app = TestApp::spawn().await;
    let (admin, visitor) = answered(&app).await;
    let room = visitor.conversation_id.clone();
    let mut events = admin.events().await;
    // Another tab of the same conversation, listening.
    let mut other_tab = Stomp::subscribed(&app, &visitor.token, None).await;
    subscribe_events(&mut other_tab).await;

    // Open: nothing to rate yet, and every shape says "not rated".
    rate(&app, &visitor, json!({"rating": 4}))
        .await
        .assert_error(409, "conversation-open");
    for shape in rest_shapes(&admin, &room).await {
        if shape["state"] == "open" {
            assert_eq!(shape["rating"], Value::Null, "{shape}");
        }
    }

    let closed = set_state(&admin, &room, "closed").await;
    assert!(closed.get("rating").is_some(), "{closed}");
    assert_eq!(closed["rating"], Value::Null);

    let reply = rate(
        &app,
        &visitor,
        json!({"rating": 4, "comment": "Quick and kind"}),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.body);

    // The agent's socket hears it, with the room as it is now.
    let event = events.event_with("chatd_room_rated", "uuid", &room).await;
    assert_eq!(event["state"], "closed");
    assert_eq!(event["rating"]["rating"], 4);
    assert_eq!(event["rating"]["comment"], "Quick and kind");
    assert!(event["rating"]["created_at"].as_str().is_some(), "{event}");
    // The visitor's other session too.
    loop {
        let (destination, body) = next_frame(&mut other_tab).await;
        if destination == "/queue/events" && body["type"] == "conversation.rated" {
            break;
        }
    }
    // Every REST shape of the room carries it.
    for shape in rest_shapes(&admin, &room).await {
        assert_eq!(shape["rating"], event["rating"], "{shape}");
    }

    // Once.
    rate(&app, &visitor, json!({"rating": 1}))
        .await
        .assert_error(409, "already-rated");
    // Reopened and closed again: still once, and the rating stays.
    set_state(&admin, &room, "open").await;
    rate(&app, &visitor, json!({"rating": 1}))
        .await
        .assert_error(409, "already-rated");
    let reopened = admin.call("GET", &format!("/rooms/{room}"), None).await;
    assert_eq!(reopened.body["rating"]["rating"], 4);
}

#[tokio::test]
async fn bad_ratings_are_refused_naming_the_field_and_store_nothing() {
    let app = TestApp::spawn().await;
    let (admin, visitor) = closed(&app).await;
    let long = "é".repeat(1001);
    let bad: &[(Value, &str)] = &[
        (json!({}), "rating"),
        (json!({"rating": null}), "rating"),
        (json!({"rating": 0}), "rating"),
        (json!({"rating": 6}), "rating"),
        (json!({"rating": -1}), "rating"),
        (json!({"rating": 4.5}), "rating"),
        (json!({"rating": "4"}), "rating"),
        (json!({"rating": [4]}), "rating"),
        (json!({"rating": 4, "comment": 12}), "comment"),
        (json!({"rating": 4, "comment": {"text": "hi"}}), "comment"),
        (json!({"rating": 4, "comment": long}), "comment"),
    ];
    for (body, field) in bad {
        let reply = rate(&app, &visitor, body.clone()).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get(*field).is_some(),
            "{body} names {field}: {}",
            reply.body
        );
    }
    let not_json = app
        .post_raw(
            "/chatplugin.rate",
            "{\"rating\": 4",
            &[
                ("authorization", &format!("Bearer {}", visitor.token)),
                ("content-type", "application/json"),
            ],
        )
        .await;
    assert_eq!(not_json.status, 400, "{}", not_json.body);
    // Without a token, or with a forged one: 401.
    assert_eq!(
        app.post("/chatplugin.rate", &json!({"rating": 4}), None)
            .await
            .status,
        401
    );
    assert_eq!(
        app.post("/chatplugin.rate", &json!({"rating": 4}), Some("forged"))
            .await
            .status,
        401
    );
    let room = admin
        .call("GET", &format!("/rooms/{}", visitor.conversation_id), None)
        .await;
    assert_eq!(room.body["rating"], Value::Null, "nothing was stored");

    // A comment of exactly 1000 characters, and one of spaces alone (none).
    let reply = rate(
        &app,
        &visitor,
        json!({"rating": 5, "comment": "é".repeat(1000)}),
    )
    .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let (_, blank) = closed(&app).await;
    let reply = rate(&app, &blank, json!({"rating": 2, "comment": "   "})).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    let room = admin
        .call("GET", &format!("/rooms/{}", blank.conversation_id), None)
        .await;
    assert_eq!(room.body["rating"]["rating"], 2);
    assert_eq!(room.body["rating"]["comment"], Value::Null);
}

#[tokio::test]
async fn a_token_rates_only_its_own_conversation() {
    let app = TestApp::spawn().await;
    let (admin, visitor) = closed(&app).await;
    // A visitor who never wrote: its conversation has not begun, so it is
    // not closed; and its token cannot reach the closed one.
    let stranger = app.visitor().await;
    rate(&app, &stranger, json!({"rating": 1}))
        .await
        .assert_error(409, "conversation-open");
    // Another visitor with an open conversation: the same.
    let (_, open) = answered(&app).await;
    rate(&app, &open, json!({"rating": 1}))
        .await
        .assert_error(409, "conversation-open");
    let room = admin
        .call("GET", &format!("/rooms/{}", visitor.conversation_id), None)
        .await;
    assert_eq!(room.body["rating"], Value::Null);
    // The visitor's own resume token is no visitor token.
    let resumed = app
        .post(
            "/chatplugin.rate",
            &json!({"rating": 3}),
            Some(&visitor.resume_token),
        )
        .await;
    assert_eq!(resumed.status, 401, "{}", resumed.body);
    // Its own token rates it.
    assert_eq!(rate(&app, &visitor, json!({"rating": 3})).await.status, 204);
}

#[tokio::test]
async fn another_tenant_never_sees_the_rating_nor_hears_of_it() {
    let app = TestApp::spawn().await;
    let (_, visitor) = closed(&app).await;
    let other = AgentClient::other_tenant_admin(&app).await;
    let mut other_events = other.events().await;
    assert_eq!(rate(&app, &visitor, json!({"rating": 5})).await.status, 204);
    let read = other
        .call("GET", &format!("/rooms/{}", visitor.conversation_id), None)
        .await;
    assert_eq!(read.status, 404, "{}", read.body);
    // A marker on the other tenant: nothing about the rating before it.
    let mate = other.new_agent(&app, "Mate").await;
    let marker = other.create_room(&[&mate]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let before = other_events
        .events_before("chatd_user_room_created", "uuid", &marker)
        .await;
    assert!(
        before.iter().all(|e| e["name"] != "chatd_room_rated"),
        "{before:?}"
    );
}

#[tokio::test]
async fn the_rate_call_answers_cors_like_the_other_visitor_calls() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .request(reqwest::Method::OPTIONS, app.url("/chatplugin.rate"))
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "POST")
        .header(
            "access-control-request-headers",
            "authorization, content-type",
        )
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let allowed = response
        .headers()
        .get("access-control-allow-origin")
        .map(|v| v.to_str().unwrap().to_string());
    assert_eq!(allowed.as_deref(), Some("https://shop.example.com"));
    // And the visitor hears its own close before rating: the widget's cue.
    let (admin, visitor) = answered(&app).await;
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    subscribe_events(&mut stomp).await;
    set_state(&admin, &visitor.conversation_id, "closed").await;
    let notice = next_message(&mut stomp).await;
    assert_eq!(notice["message"]["notice"]["type"], "closed", "{notice}");
}
