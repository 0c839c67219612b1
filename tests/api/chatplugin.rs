//! The visitor HTTP API: /chatplugin.authenticate, /chatplugin.resumeToken, /chatplugin.send.

use std::time::Duration;

use serde_json::{json, Value};

use crate::helpers::{TestApp, VisitorSession};

fn is_timestamp(v: &Value) -> bool {
    // yyyy-MM-ddTHH:mm:ss.SSSZ
    let Some(s) = v.as_str() else { return false };
    s.len() == 24
        && s.ends_with('Z')
        && s.as_bytes()[19] == b'.'
        && chrono::DateTime::parse_from_rfc3339(s).is_ok()
}

fn is_uuid(v: &Value) -> bool {
    v.as_str().is_some_and(|s| uuid::Uuid::parse_str(s).is_ok())
}

#[tokio::test]
async fn authenticate_starts_a_new_conversation_with_empty_messages() {
    let app = TestApp::spawn().await;
    let reply = app
        .post(
            "/chatplugin.authenticate",
            &json!({"channel_id": app.channel_id}),
            None,
        )
        .await;
    assert_eq!(reply.status, 200);
    assert!(reply.body["token"]
        .as_str()
        .is_some_and(|t| t.split('.').count() == 3));
    assert_eq!(reply.body["messages"], json!([]));
    assert!(is_uuid(&reply.body["conversation_id"]));
    let other = app.visitor().await;
    assert_ne!(
        other.conversation_id,
        reply.body["conversation_id"].as_str().unwrap()
    );
}

#[tokio::test]
async fn send_returns_the_stored_message_field_by_field() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let reply = app
        .post(
            "/chatplugin.send",
            &json!({"message": {"text": "  Hello, Ана 👋 \n"}, "client_message_id": "c-1"}),
            Some(&visitor.token),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let m = &reply.body;
    assert!(is_uuid(&m["id"]));
    assert_eq!(
        m["content"], "  Hello, Ана 👋 \n",
        "text is stored exactly as sent"
    );
    assert_eq!(m["state"], "DELIVERED");
    assert_eq!(m["alignment"], "RIGHT");
    assert!(is_timestamp(&m["sent_at"]), "{}", m["sent_at"]);
    assert_eq!(m["seq"], 1);
    assert_eq!(m["sender"]["id"], visitor.conversation_id.as_str());
    assert_eq!(m["sender"]["name"], Value::Null);
    assert_eq!(m["sender"]["avatar_url"], Value::Null);
    assert_eq!(m["client_message_id"], "c-1");

    let second = app.send(&visitor.token, "again").await;
    assert_eq!(second.body["seq"], 2);
    assert_eq!(second.body["client_message_id"], Value::Null);
}

#[tokio::test]
async fn resumed_conversation_returns_history_oldest_first() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let mut sent = Vec::new();
    for text in ["one", "two", "three"] {
        let reply = app.send(&visitor.token, text).await;
        assert_eq!(reply.status, 200);
        sent.push(reply.body);
    }
    // Another client (a new connection, nothing shared) resumes with the resume token.
    let client = reqwest::Client::new();
    let reply = client
        .post(app.url("/chatplugin.authenticate"))
        .json(&json!({"channel_id": app.channel_id, "resume_token": visitor.resume_token}))
        .send()
        .await
        .unwrap();
    assert_eq!(reply.status(), 200);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["conversation_id"], visitor.conversation_id.as_str());
    assert_eq!(body["messages"], Value::Array(sent));
    // The new token writes into the same conversation.
    let resumed = VisitorSession::from(&body);
    assert_eq!(app.send(&resumed.token, "four").await.body["seq"], 4);
}

#[tokio::test]
async fn resume_token_endpoint_serves_visitors_and_admins() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    app.send(&visitor.token, "hi").await;

    let reply = app
        .post_raw(
            "/chatplugin.resumeToken",
            "",
            &[("authorization", &format!("Bearer {}", visitor.token))],
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let resume = reply.body["resume_token"].as_str().unwrap().to_string();
    let resumed = app
        .post(
            "/chatplugin.authenticate",
            &json!({"resume_token": resume}),
            None,
        )
        .await;
    assert_eq!(
        resumed.body["conversation_id"],
        visitor.conversation_id.as_str()
    );
    assert_eq!(resumed.body["messages"][0]["content"], "hi");

    // A bare token (no "Bearer") is accepted too, with `{}` as body.
    let bare = app
        .post_raw(
            "/chatplugin.resumeToken",
            "{}",
            &[("authorization", &visitor.token)],
        )
        .await;
    assert_eq!(bare.status, 200, "{}", bare.body);

    let admin = app.admin_token().await;
    let minted = app
        .post(
            "/chatplugin.resumeToken",
            &json!({"channel_id": app.channel_id, "conversation_id": visitor.conversation_id}),
            Some(&admin),
        )
        .await;
    assert_eq!(minted.status, 200, "{}", minted.body);
    let resumed = app
        .post(
            "/chatplugin.authenticate",
            &json!({"resume_token": minted.body["resume_token"]}),
            None,
        )
        .await;
    assert_eq!(resumed.body["messages"].as_array().unwrap().len(), 1);

    // Admin mode needs the body; an unknown channel is 404; no token is 401.
    app.post("/chatplugin.resumeToken", &json!({}), Some(&admin))
        .await
        .assert_error(400, "invalid-data");
    app.post(
        "/chatplugin.resumeToken",
        &json!({"channel_id": uuid::Uuid::new_v4(), "conversation_id": visitor.conversation_id}),
        Some(&admin),
    )
    .await
    .assert_error(404, "unknown-channel");
    app.post("/chatplugin.resumeToken", &json!({}), None)
        .await
        .assert_error(401, "invalid-token");
    app.post(
        "/chatplugin.resumeToken",
        &json!({}),
        Some("forged.token.here"),
    )
    .await
    .assert_error(401, "invalid-token");
}

#[tokio::test]
async fn a_token_of_channel_a_cannot_reach_a_conversation_of_channel_b() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let channel_b = app.create_channel(&admin, json!({"name": "B"})).await;
    let in_b = app.visitor_on(&channel_b).await;
    app.send(&in_b.token, "secret of B").await;

    // An admin cannot mint a channel-A resume token for B's conversation.
    app.post(
        "/chatplugin.resumeToken",
        &json!({"channel_id": app.channel_id, "conversation_id": in_b.conversation_id}),
        Some(&admin),
    )
    .await
    .assert_error(404, "unknown-conversation");

    // A visitor of channel A sending with its own token writes only to its own conversation.
    let in_a = app.visitor().await;
    let reply = app.send(&in_a.token, "from A").await;
    assert_eq!(reply.body["seq"], 1);
    let b_history = app.history(&in_b).await;
    assert_eq!(b_history.len(), 1);
    assert_eq!(b_history[0]["content"], "secret of B");
}

#[tokio::test]
async fn authenticate_rejects_bad_input_with_contract_errors() {
    let app = TestApp::spawn().await;
    let post = |body: &'static str| {
        app.post_raw(
            "/chatplugin.authenticate",
            body,
            &[("content-type", "application/json")],
        )
    };
    post("{").await.assert_error(400, "invalid-data");
    post("").await.assert_error(400, "invalid-data");
    post("[]").await.assert_error(400, "invalid-data");
    let missing = post("{}").await;
    missing.assert_error(400, "invalid-data");
    assert!(
        missing.body["details"]["channel_id"].is_array(),
        "{}",
        missing.body
    );
    let not_uuid = post(r#"{"channel_id": "not-a-uuid"}"#).await;
    not_uuid.assert_error(400, "invalid-data");
    assert!(not_uuid.body["details"]["channel_id"].is_array());
    post(r#"{"channel_id": 42}"#)
        .await
        .assert_error(400, "invalid-data");
    app.post(
        "/chatplugin.authenticate",
        &json!({"channel_id": uuid::Uuid::new_v4()}),
        None,
    )
    .await
    .assert_error(404, "unknown-channel");
    app.post(
        "/chatplugin.authenticate",
        &json!({"resume_token": "a.b.c"}),
        None,
    )
    .await
    .assert_error(401, "invalid-token");
    // A visitor token is not a resume token.
    let visitor = app.visitor().await;
    app.post(
        "/chatplugin.authenticate",
        &json!({"resume_token": visitor.token}),
        None,
    )
    .await
    .assert_error(401, "invalid-token");
    let mut forged = visitor.resume_token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    app.post(
        "/chatplugin.authenticate",
        &json!({"resume_token": forged}),
        None,
    )
    .await
    .assert_error(401, "invalid-token");
}

#[tokio::test]
async fn expired_tokens_are_refused() {
    let app = TestApp::spawn_with(|c| {
        c.visitor_token_ttl = 1;
        c.resume_token_ttl = 1;
    })
    .await;
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "in time").await.status, 200);
    tokio::time::sleep(Duration::from_millis(2100)).await;
    app.send(&visitor.token, "too late")
        .await
        .assert_error(401, "invalid-token");
    app.post(
        "/chatplugin.authenticate",
        &json!({"resume_token": visitor.resume_token}),
        None,
    )
    .await
    .assert_error(401, "invalid-token");
}

#[tokio::test]
async fn send_rejects_bad_input_and_stores_nothing() {
    let app = TestApp::spawn_with(|c| c.max_text_chars = 10).await;
    let visitor = app.visitor().await;
    let t = Some(visitor.token.as_str());
    for (body, field) in [
        (json!({"message": {"text": ""}}), "message.text"),
        (json!({"message": {"text": " \n\t "}}), "message.text"),
        (json!({"message": {"text": "x".repeat(11)}}), "message.text"),
        (json!({"message": {"text": 5}}), "message.text"),
        (json!({"message": {}}), "message.text"),
        (json!({}), "message.text"),
        (
            json!({"message": {"text": "ok"}, "client_message_id": "k".repeat(65)}),
            "client_message_id",
        ),
        (
            json!({"message": {"text": "ok"}, "client_message_id": 7}),
            "client_message_id",
        ),
    ] {
        let reply = app.post("/chatplugin.send", &body, t).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"][field].is_array(),
            "{body} -> {}",
            reply.body
        );
    }
    app.post_raw(
        "/chatplugin.send",
        "{\"message\":",
        &[("authorization", &visitor.token)],
    )
    .await
    .assert_error(400, "invalid-data");
    // The limit itself is allowed, counted in characters, not bytes.
    assert_eq!(app.send(&visitor.token, &"é".repeat(10)).await.status, 200);
    app.send("", "x").await.assert_error(401, "invalid-token");
    app.post("/chatplugin.send", &json!({"message": {"text": "x"}}), None)
        .await
        .assert_error(401, "invalid-token");
    let mut forged = visitor.token.clone();
    forged.insert(10, 'x');
    app.send(&forged, "x")
        .await
        .assert_error(401, "invalid-token");
    // A resume token is not a visitor token.
    app.send(&visitor.resume_token, "x")
        .await
        .assert_error(401, "invalid-token");

    let stored = app.history(&visitor).await;
    assert_eq!(
        stored.len(),
        1,
        "only the valid message was stored: {stored:?}"
    );
}

#[tokio::test]
async fn oversized_bodies_get_413_and_change_nothing() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let big = json!({"message": {"text": "x".repeat(70 * 1024)}}).to_string();
    app.post_raw(
        "/chatplugin.send",
        big.clone(),
        &[("authorization", &visitor.token)],
    )
    .await
    .assert_error(413, "payload-too-large");
    // Without Content-Length (chunked), the limit holds as well.
    let stream = futures_util::stream::iter(
        big.into_bytes()
            .chunks(4096)
            .map(|c| Ok::<_, std::io::Error>(c.to_vec()))
            .collect::<Vec<_>>(),
    );
    app.post_raw(
        "/chatplugin.send",
        reqwest::Body::wrap_stream(stream),
        &[("authorization", &visitor.token)],
    )
    .await
    .assert_error(413, "payload-too-large");
    assert!(app.history(&visitor).await.is_empty());
}

#[tokio::test]
async fn same_client_message_id_twice_stores_one_message() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let body = json!({"message": {"text": "once"}, "client_message_id": "retry-1"});
    let first = app
        .post("/chatplugin.send", &body, Some(&visitor.token))
        .await;
    let second = app
        .post("/chatplugin.send", &body, Some(&visitor.token))
        .await;
    assert_eq!(first.status, 200);
    assert_eq!(second.status, 200);
    assert_eq!(
        first.body, second.body,
        "the retry returns the first message"
    );
    let next = app.send(&visitor.token, "next").await;
    assert_eq!(next.body["seq"], 2, "no seq was used by the retry");
    assert_eq!(app.history(&visitor).await.len(), 2);
    // The same key in another conversation is a different message.
    let other = app.visitor().await;
    let third = app
        .post("/chatplugin.send", &body, Some(&other.token))
        .await;
    assert_ne!(third.body["id"], first.body["id"]);
}

#[tokio::test]
async fn authenticate_is_rate_limited_per_client_ip() {
    let app = TestApp::spawn_with(|c| {
        c.authenticate_burst = 2;
        c.authenticate_per_minute = 1;
    })
    .await;
    let body = json!({"channel_id": app.channel_id});
    assert_eq!(
        app.post("/chatplugin.authenticate", &body, None)
            .await
            .status,
        200
    );
    assert_eq!(
        app.post("/chatplugin.authenticate", &body, None)
            .await
            .status,
        200
    );
    let limited = app.post("/chatplugin.authenticate", &body, None).await;
    limited.assert_error(429, "rate-limited");
    let retry: u64 = limited.headers["retry-after"]
        .to_str()
        .unwrap()
        .parse()
        .unwrap();
    assert!((1..=60).contains(&retry), "{retry}");
}

#[tokio::test]
async fn trusted_proxy_forwarded_ip_is_the_rate_limit_key() {
    let app = TestApp::spawn_with(|c| {
        c.authenticate_burst = 1;
        c.authenticate_per_minute = 1;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let body = json!({"channel_id": app.channel_id}).to_string();
    let as_client = |ip: &'static str| {
        let body = body.clone();
        let app = &app;
        async move {
            app.post_raw(
                "/chatplugin.authenticate",
                body,
                &[
                    ("content-type", "application/json"),
                    ("x-forwarded-for", ip),
                ],
            )
            .await
        }
    };
    assert_eq!(as_client("203.0.113.1").await.status, 200);
    assert_eq!(as_client("203.0.113.2, 10.0.0.1").await.status, 200);
    as_client("203.0.113.1")
        .await
        .assert_error(429, "rate-limited");
}

#[tokio::test]
async fn send_is_rate_limited_per_conversation_and_refused_sends_are_not_stored() {
    let app = TestApp::spawn_with(|c| {
        c.send_burst = 2;
        c.send_per_second = 1;
    })
    .await;
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "1").await.status, 200);
    assert_eq!(app.send(&visitor.token, "2").await.status, 200);
    let limited = app.send(&visitor.token, "3").await;
    limited.assert_error(429, "rate-limited");
    assert!(limited.headers.contains_key("retry-after"));
    // Another conversation has its own budget.
    let other = app.visitor().await;
    assert_eq!(app.send(&other.token, "1").await.status, 200);
    assert_eq!(app.history(&visitor).await.len(), 2);
}

#[tokio::test]
async fn every_error_is_json_even_for_unknown_routes_and_methods() {
    let app = TestApp::spawn().await;
    let reply =
        crate::helpers::Reply::from(app.http.get(app.url("/nope")).send().await.unwrap()).await;
    reply.assert_error(404, "not-found");
    let reply = crate::helpers::Reply::from(
        app.http
            .get(app.url("/chatplugin.send"))
            .send()
            .await
            .unwrap(),
    )
    .await;
    reply.assert_error(405, "method-not-allowed");
}

#[tokio::test]
async fn demo_page_and_health_are_served() {
    let app = TestApp::spawn().await;
    let page = app
        .http
        .get(app.url(&format!("/demo?channel_id={}", app.channel_id)))
        .send()
        .await
        .unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/html"));
    assert!(page.text().await.unwrap().contains("chatgate"));
    let health = app.http.get(app.url("/healthz")).send().await.unwrap();
    assert_eq!(health.status(), 200);
}
