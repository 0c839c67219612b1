//! What a visitor's page tells agents (an extension of the visitor API):
//! `visitor` and `context` on `/chatplugin.authenticate`, `/app/context` on
//! the socket, and `GET /users/me/rooms/<room>/visitor` for agents.

use chatgate::ws::stomp::{Command, StompFrame};
use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Stomp, TestApp};

const FIREFOX: &str =
    "Mozilla/5.0 (Windows NT 10.0; Win64; x64; rv:128.0) Gecko/20100101 Firefox/128.0";

/// Authenticates on the demo channel with `extra` fields and this user agent.
async fn authenticate(app: &TestApp, extra: Value) -> crate::helpers::Reply {
    let mut body = json!({"channel_id": app.channel_id});
    for (k, v) in extra.as_object().unwrap() {
        body[k] = v.clone();
    }
    app.post_raw(
        "/chatplugin.authenticate",
        body.to_string(),
        &[
            ("content-type", "application/json"),
            ("user-agent", FIREFOX),
        ],
    )
    .await
}

async fn context(agent: &AgentClient, room: &str) -> crate::helpers::Reply {
    agent
        .call("GET", &format!("/users/me/rooms/{room}/visitor"), None)
        .await
}

#[tokio::test]
async fn agents_see_who_the_visitor_is_and_the_page_they_are_on() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let reply = authenticate(
        &app,
        json!({
            "visitor": {"name": "Ana <b>", "email": "ana@example.com"},
            "context": {"url": "https://shop.example.com/teas?page=2", "title": "Green teas",
                        "referrer": "https://search.example.org/?q=tea", "language": "fr-FR",
                        "time_zone": "Europe/Paris", "utc_offset_minutes": 60}
        }),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply.body["token"].as_str().unwrap().to_string();
    let room = reply.body["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(app.send(&token, "Hello").await.status, 200);

    // Queued: any agent of the tenant may look before answering.
    let queued = context(&admin, &room).await;
    assert_eq!(queued.status, 200, "{}", queued.body);
    assert_eq!(
        queued.body,
        json!({"name": "Ana <b>", "email": "ana@example.com",
               "url": "https://shop.example.com/teas?page=2", "title": "Green teas",
               "referrer": "https://search.example.org/?q=tea", "language": "fr-FR",
               "time_zone": "Europe/Paris", "utc_offset_minutes": 60,
               "user_agent": FIREFOX, "browser": "Firefox on Windows"})
    );

    // The widget's setVisitor after connecting: only what it says changes.
    assert_eq!(admin.answer(&room).await.status, 200);
    let mut stomp = Stomp::subscribed(&app, &token, None).await;
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/context")
                .header("receipt", "ctx")
                .body(
                    json!({"visitor": {"name": "Ana Lima"}})
                        .to_string()
                        .into_bytes(),
                ),
        )
        .await;
    loop {
        let frame = stomp.recv().await.expect("RECEIPT");
        if frame.command == Command::Receipt {
            break;
        }
    }
    let updated = context(&admin, &room).await;
    assert_eq!(updated.body["name"], "Ana Lima");
    assert_eq!(updated.body["email"], "ana@example.com", "kept");
    assert_eq!(updated.body["url"], "https://shop.example.com/teas?page=2");

    // Nobody else sees it: another agent once the room is answered, and
    // another tenant ever.
    let bo = admin.new_agent(&app, "Bo").await;
    context(&bo, &room).await.assert_error(404, "unknown-room");
    let foreign = AgentClient::other_tenant_admin(&app).await;
    context(&foreign, &room)
        .await
        .assert_error(404, "unknown-room");
}

#[tokio::test]
async fn a_bad_context_is_refused_naming_the_field_and_changes_nothing() {
    let app = TestApp::spawn().await;
    for (extra, field) in [
        (
            json!({"context": {"url": "javascript:alert(1)"}}),
            "context.url",
        ),
        (
            json!({"visitor": {"email": "not an email"}}),
            "visitor.email",
        ),
        (json!({"visitor": "Ana"}), "visitor"),
        (
            json!({"context": {"title": "x".repeat(501)}}),
            "context.title",
        ),
        (
            json!({"context": {"utc_offset_minutes": "60"}}),
            "context.utc_offset_minutes",
        ),
    ] {
        let reply = authenticate(&app, extra.clone()).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get(field).is_some(),
            "{extra}: {}",
            reply.body
        );
    }
    // On the socket, a bad context is an ERROR frame and the context stays.
    let good = authenticate(&app, json!({"visitor": {"name": "Ana"}})).await;
    let token = good.body["token"].as_str().unwrap().to_string();
    let room = good.body["conversation_id"].as_str().unwrap().to_string();
    assert_eq!(app.send(&token, "Hi").await.status, 200);
    let mut stomp = Stomp::subscribed(&app, &token, None).await;
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/context")
                .body(
                    json!({"visitor": {"name": "Eve", "email": "@"}})
                        .to_string()
                        .into_bytes(),
                ),
        )
        .await;
    let error = loop {
        let frame = stomp.recv().await.expect("ERROR");
        if frame.command == Command::Error {
            break frame;
        }
    };
    assert!(
        error.get("message").unwrap_or_default().contains("invalid"),
        "{error:?}"
    );
    let admin = AgentClient::admin(&app).await;
    assert_eq!(context(&admin, &room).await.body["name"], "Ana");
}
