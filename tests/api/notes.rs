//! Private notes (desk-api.md, "Support desk"): an agent's
//! `POST .../messages {"content", "private": true}` in a visitor room is for
//! agents only. It never reaches the visitor (live STOMP, the since-seq
//! catch-up, the resume history), it takes no place in the visitor's `seq`
//! sequence (it carries the seq of the message it follows), the room's
//! agents hear it with `private: true`, and the listing shows it after the
//! message it follows, in either direction.

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Stomp, TestApp, VisitorSession};
use crate::queue::next_message;

async fn note(agent: &AgentClient, room: &str, body: Value) -> crate::helpers::Reply {
    agent
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(body),
        )
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

fn seqs(messages: &[Value]) -> Vec<i64> {
    messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect()
}

#[tokio::test]
async fn a_note_reaches_the_rooms_agents_only_and_the_visitors_seq_stays_gapless() {
    let app = TestApp::spawn().await;
    let (admin, visitor) = answered(&app).await;
    let room = visitor.conversation_id.clone();
    let mut events = admin.events().await;
    let mut live = Stomp::subscribed(&app, &visitor.token, None).await;
    let before = admin.messages(&room).await;
    let last = *seqs(&before).last().unwrap();

    let reply = note(
        &admin,
        &room,
        json!({"content": "VIP customer: **be kind**", "private": true}),
    )
    .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let stored = reply.body;
    assert_eq!(stored["private"], true);
    assert_eq!(stored["kind"], "agent");
    assert_eq!(stored["seq"], last, "a note keeps the seq it follows");
    assert_eq!(stored["state"], "DELIVERED");
    let heard = events
        .event_with(
            "chatd_user_room_message_created",
            "uuid",
            stored["uuid"].as_str().unwrap(),
        )
        .await;
    assert_eq!(heard["private"], true);
    assert_eq!(heard["content"], "VIP customer: **be kind**");

    // The next thing the visitor's live socket gets is the reply posted
    // after the note, with the next seq: the note went nowhere in between.
    let answer = admin.post(&room, "How can I help?").await;
    assert_eq!(answer["private"], false);
    assert_eq!(answer["seq"], last + 1);
    let pushed = next_message(&mut live).await;
    assert_eq!(pushed["message"]["content"], "How can I help?", "{pushed}");
    assert_eq!(pushed["message"]["seq"], last + 1);
    assert!(pushed["message"].get("private").is_none(), "{pushed}");
    assert_eq!(app.send(&visitor.token, "Thanks").await.status, 200);

    // The resume history: every message but the note, seqs 1..=n.
    let history = app.history(&visitor).await;
    let expected: Vec<i64> = (1..=last + 2).collect();
    assert_eq!(seqs(&history), expected);
    assert!(
        history.iter().all(|m| m["content"] != stored["content"]),
        "{history:?}"
    );
    // The since-seq catch-up of a new socket.
    let mut again = Stomp::subscribed(&app, &visitor.token, Some(0)).await;
    let replayed: Vec<Value> = again
        .messages(expected.len())
        .await
        .into_iter()
        .map(|frame| frame["message"].clone())
        .collect();
    assert_eq!(seqs(&replayed), expected);
    assert!(replayed.iter().all(|m| m["content"] != stored["content"]));

    // Agents: the note right after the message it follows, both ways.
    let ascending = admin.messages(&room).await;
    let ids: Vec<&Value> = ascending.iter().map(|m| &m["uuid"]).collect();
    let at = ids.iter().position(|id| **id == stored["uuid"]).unwrap();
    assert_eq!(ascending[at - 1]["seq"], last);
    assert_eq!(ascending[at + 1]["content"], "How can I help?");
    assert_eq!(ascending.len(), history.len() + 1);
    let descending = admin
        .call(
            "GET",
            &format!("/users/me/rooms/{room}/messages?direction=desc"),
            None,
        )
        .await
        .body["items"]
        .as_array()
        .unwrap()
        .clone();
    let reversed: Vec<Value> = ascending.iter().rev().cloned().collect();
    assert_eq!(descending, reversed);
    // A page that holds the message it follows holds the note; one that
    // does not, does not.
    for (query, has_note) in [
        (format!("after_seq={}&direction=asc", last - 1), true),
        (format!("after_seq={last}&direction=asc"), false),
        (format!("before_seq={}&direction=desc", last + 1), true),
        ("limit=1&direction=desc".to_string(), false),
    ] {
        let page = admin
            .call(
                "GET",
                &format!("/users/me/rooms/{room}/messages?{query}"),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        let found = page.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|m| m["uuid"] == stored["uuid"]);
        assert_eq!(found, has_note, "{query}: {}", page.body);
    }
    // It is nobody's message to react to, edit or delete.
    let path = format!(
        "/users/me/rooms/{room}/messages/{}",
        stored["uuid"].as_str().unwrap()
    );
    for (method, body) in [
        ("PATCH", Some(json!({"content": "changed"}))),
        ("DELETE", None),
    ] {
        let reply = admin.call(method, &path, body).await;
        assert_eq!(reply.status, 404, "{method}: {}", reply.body);
    }
}

#[tokio::test]
async fn a_bad_note_is_refused_and_stores_nothing() {
    let app = TestApp::spawn().await;
    let (admin, visitor) = answered(&app).await;
    let room = visitor.conversation_id.clone();
    let before = admin.messages(&room).await;

    for (body, field) in [
        (json!({"content": "", "private": true}), "content"),
        (json!({"content": "   ", "private": true}), "content"),
        (json!({"private": true}), "content"),
        (
            json!({"content": "x", "private": true, "quick_replies": [{"title": "A", "payload": "a"}]}),
            "quick_replies",
        ),
        (
            json!({"content": "x", "private": true, "mentions": [admin.uuid]}),
            "mentions",
        ),
        (
            json!({"content": "x", "private": true, "alias": "Bot"}),
            "alias",
        ),
        (
            json!({"content": "x", "private": true, "attachments": [uuid::Uuid::new_v4()]}),
            "attachments",
        ),
        (json!({"content": "x", "private": "yes"}), "private"),
    ] {
        let reply = note(&admin, &room, body.clone()).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert!(
            reply.body.to_string().contains(field),
            "{body} names {field}: {}",
            reply.body
        );
    }

    // In an agent room there is no visitor to hide it from.
    let bo = admin.new_agent(&app, "Bo").await;
    let team = admin.create_room(&[&bo]).await;
    let team_room = team["uuid"].as_str().unwrap();
    let reply = note(&admin, team_room, json!({"content": "x", "private": true})).await;
    assert_eq!(reply.status, 400, "{}", reply.body);
    assert!(reply.body.to_string().contains("private"), "{}", reply.body);
    assert!(admin.messages(team_room).await.is_empty());

    // Not a member, another tenant: no such room.
    let reply = note(&bo, &room, json!({"content": "x", "private": true})).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
    let other = AgentClient::other_tenant_admin(&app).await;
    let reply = note(&other, &room, json!({"content": "x", "private": true})).await;
    assert_eq!(reply.status, 404, "{}", reply.body);

    assert_eq!(admin.messages(&room).await, before);
}
