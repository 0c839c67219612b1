//! Quick replies (desk-api.md, "Quick replies"): an agent's message offers
//! buttons (`quick_replies`, 1..=10, titles 1..=40 characters, payloads
//! 1..=1000), the visitor's choice carries its `postback` (or Airy's
//! `postbackData`), and every message shape (agent REST and websocketd, the
//! visitor's HTTP, STOMP and history) has both fields: `quick_replies`
//! empty and `postback` null when none.

use chatgate::ws::stomp::{Command, StompFrame};
use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Stomp, TestApp, VisitorSession};
use crate::queue::{next_message, subscribe_events};

/// A visitor who wrote "Hello", listening on STOMP, and the admin who
/// answered (and heard the join notice).
async fn answered(app: &TestApp) -> (AgentClient, VisitorSession, Stomp) {
    let admin = AgentClient::admin(app).await;
    let visitor = app.visitor().await;
    let mut stomp = Stomp::subscribed(app, &visitor.token, None).await;
    subscribe_events(&mut stomp).await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    next_message(&mut stomp).await;
    assert_eq!(admin.answer(&visitor.conversation_id).await.status, 200);
    let joined = next_message(&mut stomp).await;
    assert_eq!(joined["message"]["alignment"], "CENTER", "{joined}");
    (admin, visitor, stomp)
}

/// The next `/queue/message` body that `wanted` picks (DELIVERED updates
/// and the like are skipped).
async fn next_where(stomp: &mut Stomp, wanted: impl Fn(&Value) -> bool) -> Value {
    loop {
        let body = next_message(stomp).await;
        if wanted(&body) {
            return body;
        }
    }
}

/// The next new message the visitor hears.
async fn next_created(stomp: &mut Stomp) -> Value {
    next_where(stomp, |b| b["type"] == "message.created").await
}

fn messages_path(room: &str) -> String {
    format!("/users/me/rooms/{room}/messages")
}

fn buttons() -> Value {
    json!([{"title": "Yes", "payload": "yes"}, {"title": "No, thanks", "payload": "{\"n\":0}"}])
}

/// Both fields as a message shape shows them.
fn rich(message: &Value) -> (Value, Value) {
    assert!(message.get("postback").is_some(), "{message}");
    (
        message["quick_replies"].clone(),
        message["postback"].clone(),
    )
}

fn send_frame(body: Value) -> StompFrame {
    StompFrame::new(Command::Send)
        .header("destination", "/app/send")
        .body(body.to_string())
}

#[tokio::test]
async fn quick_replies_and_the_visitors_choice_reach_every_door_and_history() {
    let app = TestApp::spawn().await;
    let (admin, visitor, mut stomp) = answered(&app).await;
    let room = visitor.conversation_id.clone();
    let mut events = admin.events().await;

    // The agent's question with buttons: REST, websocketd, STOMP.
    let posted = admin
        .call(
            "POST",
            &messages_path(&room),
            Some(json!({"content": "Shall we?", "quick_replies": buttons()})),
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    assert_eq!(rich(&posted.body), (buttons(), Value::Null));
    let event = events
        .event_with("chatd_user_room_message_created", "content", "Shall we?")
        .await;
    assert_eq!(rich(&event), (buttons(), Value::Null));
    let heard = next_created(&mut stomp).await;
    assert_eq!(heard["message"]["content"], "Shall we?");
    assert_eq!(rich(&heard["message"]), (buttons(), Value::Null));

    // The visitor clicks "Yes" over HTTP (`postback`)...
    let chose = app
        .post(
            "/chatplugin.send",
            &json!({"message": {"text": "Yes", "postback": "yes"}}),
            Some(&visitor.token),
        )
        .await;
    assert_eq!(chose.status, 200, "{}", chose.body);
    assert_eq!(rich(&chose.body), (json!([]), json!("yes")));
    let heard = next_created(&mut stomp).await;
    assert_eq!(heard["message"]["content"], "Yes");
    assert_eq!(rich(&heard["message"]), (json!([]), json!("yes")));
    let event = events
        .event_with("chatd_user_room_message_created", "content", "Yes")
        .await;
    assert_eq!(rich(&event), (json!([]), json!("yes")));

    // ... and "No, thanks" over STOMP (Airy's `postbackData`).
    stomp
        .send(send_frame(
            json!({"message": {"text": "No, thanks", "postbackData": "{\"n\":0}"}}),
        ))
        .await;
    let heard = next_created(&mut stomp).await;
    assert_eq!(heard["message"]["content"], "No, thanks");
    assert_eq!(rich(&heard["message"]), (json!([]), json!("{\"n\":0}")));
    let event = events
        .event_with("chatd_user_room_message_created", "content", "No, thanks")
        .await;
    assert_eq!(rich(&event), (json!([]), json!("{\"n\":0}")));

    // A typed message and a plain reply have neither.
    assert_eq!(app.send(&visitor.token, "Typed").await.status, 200);
    let plain = admin.post(&room, "Plain").await;
    assert_eq!(rich(&plain), (json!([]), Value::Null));

    // History (the visitor's resume) and the agent's listing keep them all.
    let expected = [
        ("Hello", json!([]), Value::Null),
        ("Admin joined", json!([]), Value::Null),
        ("Shall we?", buttons(), Value::Null),
        ("Yes", json!([]), json!("yes")),
        ("No, thanks", json!([]), json!("{\"n\":0}")),
        ("Typed", json!([]), Value::Null),
        ("Plain", json!([]), Value::Null),
    ];
    for (door, listed) in [
        ("history", app.history(&visitor).await),
        ("agent REST", admin.messages(&room).await),
    ] {
        let got: Vec<(Value, Value, Value)> = listed
            .iter()
            .map(|m| {
                let (q, p) = rich(m);
                (m["content"].clone(), q, p)
            })
            .collect();
        let want: Vec<(Value, Value, Value)> = expected
            .iter()
            .map(|(c, q, p)| (json!(c), q.clone(), p.clone()))
            .collect();
        assert_eq!(got, want, "{door}");
    }
    // The room's last message too.
    let rooms = admin.rooms().await;
    let listed = rooms.iter().find(|r| r["uuid"] == room.as_str()).unwrap();
    assert_eq!(rich(&listed["last_message"]), (json!([]), Value::Null));
}

#[tokio::test]
async fn deleting_a_message_takes_its_quick_replies_away() {
    let app = TestApp::spawn().await;
    let (admin, visitor, mut stomp) = answered(&app).await;
    let room = visitor.conversation_id.clone();
    let posted = admin
        .call(
            "POST",
            &messages_path(&room),
            Some(json!({"content": "Pick one", "quick_replies": buttons()})),
        )
        .await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    next_created(&mut stomp).await;
    let id = posted.body["uuid"].as_str().unwrap();
    let edited = admin
        .call(
            "PATCH",
            &format!("{}/{id}", messages_path(&room)),
            Some(json!({"content": "Pick one, please"})),
        )
        .await;
    assert_eq!(edited.status, 200, "{}", edited.body);
    assert_eq!(rich(&edited.body), (buttons(), Value::Null));
    let deleted = admin
        .call("DELETE", &format!("{}/{id}", messages_path(&room)), None)
        .await;
    assert!(deleted.status < 300, "{}", deleted.body);
    // The visitor hears the edit, then the deletion without buttons.
    let edit = next_where(&mut stomp, |b| {
        b["message"]["content"] == "Pick one, please"
    })
    .await;
    assert_eq!(edit["type"], "message.updated");
    assert_eq!(rich(&edit["message"]), (buttons(), Value::Null));
    let gone = next_where(&mut stomp, |b| b["message"]["content"] == "").await;
    assert_eq!(gone["type"], "message.updated");
    assert_eq!(rich(&gone["message"]), (json!([]), Value::Null));
    let history = app.history(&visitor).await;
    assert_eq!(history.last().unwrap()["quick_replies"], json!([]));
}

#[tokio::test]
async fn bad_quick_replies_are_refused_with_400_and_store_nothing() {
    let app = TestApp::spawn().await;
    let (admin, visitor, _stomp) = answered(&app).await;
    let room = visitor.conversation_id.clone();
    let before = admin.messages(&room).await;
    let item = |title: &str, payload: &str| json!({"title": title, "payload": payload});
    let eleven: Vec<Value> = (0..11).map(|i| item(&format!("T{i}"), "p")).collect();
    let cases = [
        (json!([]), "quick_replies"),
        (json!(eleven), "quick_replies"),
        (json!([item("", "p")]), "quick_replies[0].title"),
        (
            json!([item("ok", "p"), item("   ", "p")]),
            "quick_replies[1].title",
        ),
        (
            json!([item(&"x".repeat(41), "p")]),
            "quick_replies[0].title",
        ),
        (json!([item("ok", "")]), "quick_replies[0].payload"),
        (
            json!([item("ok", &"p".repeat(1001))]),
            "quick_replies[0].payload",
        ),
    ];
    for (quick_replies, field) in cases {
        let reply = admin
            .call(
                "POST",
                &messages_path(&room),
                Some(json!({"content": "Pick", "quick_replies": quick_replies})),
            )
            .await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"][field].is_array(),
            "{field}: {}",
            reply.body
        );
    }
    // Wrong types are refused by the body's decoding, also with 400.
    for quick_replies in [
        json!("Yes"),
        json!([{"title": "Yes"}]),
        json!([{"title": 1, "payload": "p"}]),
    ] {
        let reply = admin
            .call(
                "POST",
                &messages_path(&room),
                Some(json!({"content": "Pick", "quick_replies": quick_replies})),
            )
            .await;
        reply.assert_error(400, "invalid-data");
    }
    assert_eq!(admin.messages(&room).await, before);
    // The bounds themselves are accepted: 10 items, 40-character titles,
    // 1000-character payloads.
    let widest: Vec<Value> = (0..10)
        .map(|i| item(&format!("{i}{}", "é".repeat(39)), &"p".repeat(1000)))
        .collect();
    let reply = admin
        .call(
            "POST",
            &messages_path(&room),
            Some(json!({"content": "Pick", "quick_replies": widest})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["quick_replies"], json!(widest));
    // Another tenant's admin cannot post buttons into this room.
    let other = AgentClient::other_tenant_admin(&app).await;
    let reply = other
        .call(
            "POST",
            &messages_path(&room),
            Some(json!({"content": "Pick", "quick_replies": buttons()})),
        )
        .await;
    reply.assert_error(404, "unknown-room");
    assert_eq!(admin.messages(&room).await.len(), before.len() + 1);
}

#[tokio::test]
async fn bad_postbacks_are_refused_with_400_and_store_nothing() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    let long = "p".repeat(1001);
    let cases = [
        (json!({"text": "Yes", "postback": long}), "message.postback"),
        (
            json!({"text": "Yes", "postbackData": long}),
            "message.postbackData",
        ),
        (json!({"text": "Yes", "postback": ""}), "message.postback"),
        (json!({"text": "Yes", "postback": 1}), "message.postback"),
        (
            json!({"text": "Yes", "postbackData": {"a": 1}}),
            "message.postbackData",
        ),
    ];
    for (message, field) in cases {
        let reply = app
            .post(
                "/chatplugin.send",
                &json!({ "message": message }),
                Some(&visitor.token),
            )
            .await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"][field].is_array(),
            "{field}: {}",
            reply.body
        );
    }
    assert_eq!(app.contents(&visitor).await, ["Hello"]);
    // 1000 characters are accepted; `postback` wins over `postbackData`.
    let reply = app
        .post(
            "/chatplugin.send",
            &json!({"message": {"text": "Yes", "postback": "p".repeat(1000), "postbackData": "other"}}),
            Some(&visitor.token),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["postback"], json!("p".repeat(1000)));

    // Over STOMP: an ERROR naming 400, the socket closes, nothing stored.
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    stomp
        .send(send_frame(
            json!({"message": {"text": "Yes", "postbackData": long}}),
        ))
        .await;
    loop {
        let frame = stomp.recv().await.expect("an ERROR frame");
        if frame.command == Command::Error {
            assert!(frame.get("message").unwrap().contains("400"), "{frame:?}");
            break;
        }
    }
    assert_eq!(stomp.recv().await, None);
    assert_eq!(app.contents(&visitor).await, ["Hello", "Yes"]);
}
