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

/// The context the store holds for a conversation of the demo channel.
async fn stored_context(
    app: &TestApp,
    tenant: &str,
    conversation: &str,
) -> Option<chatgate::domain::VisitorContext> {
    let store = chatgate::store::open(&app.config.database_url)
        .await
        .unwrap();
    store
        .visitor_context(tenant.parse().unwrap(), conversation.parse().unwrap())
        .await
        .unwrap()
}

#[tokio::test]
async fn authenticating_alone_writes_nothing_and_the_first_message_stores_the_page() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let page = json!({"context": {"url": "https://shop.example.com/cart", "title": "Cart"}});
    let first = authenticate(&app, page.clone()).await;
    assert_eq!(first.status, 200, "{}", first.body);
    let room = first.body["conversation_id"].as_str().unwrap().to_string();
    // Page views that resume the unstarted conversation write nothing either.
    for _ in 0..3 {
        let mut again = page.clone();
        again["resume_token"] = first.body["resume_token"].clone();
        let reply = authenticate(&app, again).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        assert_eq!(reply.body["conversation_id"], room.as_str());
    }
    assert_eq!(stored_context(&app, &admin.tenant, &room).await, None);

    // The first message, over STOMP, stores what the page said.
    let token = first.body["token"].as_str().unwrap();
    let mut stomp = Stomp::subscribed(&app, token, None).await;
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/send")
                .header("receipt", "sent")
                .body(json!({"message": {"text": "Is shipping free?"}}).to_string()),
        )
        .await;
    loop {
        let frame = stomp.recv().await.expect("the receipt");
        if frame.get("receipt-id") == Some("sent") {
            break;
        }
    }
    let stored = stored_context(&app, &admin.tenant, &room)
        .await
        .expect("stored with the first message");
    assert_eq!(stored.url.as_deref(), Some("https://shop.example.com/cart"));
    assert_eq!(stored.user_agent.as_deref(), Some(FIREFOX));
}

#[tokio::test]
async fn context_updates_over_the_socket_are_throttled_per_conversation() {
    let app = TestApp::spawn_with(|c| c.context_per_minute = 3).await;
    let visitor = app.visitor().await;
    let (mut stomp, _) = Stomp::connect(&app, &visitor.token).await;
    for i in 0..3 {
        stomp
            .send(
                StompFrame::new(Command::Send)
                    .header("destination", "/app/context")
                    .header("receipt", format!("c{i}"))
                    .body(json!({"visitor": {"name": format!("Ana {i}")}}).to_string()),
            )
            .await;
        let receipt = stomp.recv().await.expect("a receipt");
        assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");
    }
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/context")
                .body(json!({"visitor": {"name": "Ana 4"}}).to_string()),
        )
        .await;
    let refused = stomp.recv().await.expect("an ERROR");
    assert_eq!(refused.command, Command::Error, "{refused:?}");
    assert!(
        refused.get("message").unwrap().contains("429"),
        "{refused:?}"
    );
}
