//! Email to visitors (issue 18, "No visitor lost"; desk-api.md, "Support
//! desk"): against a real SMTP server (aiosmtpd, started by each test from
//! `smtp_sink.py`), the offline fallback (one email per throttle with every
//! missed reply, both parts, working reopen and unsubscribe links), SMTP
//! down then up, the transcript (202, 429, 409 without an email), bad
//! addresses refused, and no duplicate with two instances.
//!
//! Delays are milliseconds here; every wait polls the received mail or the
//! outbox with a deadline.

use std::sync::Arc;
use std::time::{Duration, Instant};

use chatgate::store::Store;
use chatgate::Config;
use serde_json::json;

use crate::agent_helpers::AgentClient;
use crate::helpers::{TestApp, VisitorSession};
use crate::smtp_sink::SmtpSink;

const DEADLINE: Duration = Duration::from_secs(20);

/// A server sending through `smtp`, with short delays.
async fn app_with(smtp: &str, tweak: impl FnOnce(&mut Config)) -> TestApp {
    let smtp = smtp.to_string();
    TestApp::spawn_with(move |c| {
        c.smtp_url = Some(smtp);
        c.smtp_from = "Support <support@shop.example>".into();
        c.email_offline_delay_ms = 200;
        c.email_throttle_ms = 60_000;
        c.outbox_poll_ms = 50;
        c.outbox_retry_ms = 100;
        tweak(c);
    })
    .await
}

async fn store_of(app: &TestApp) -> Arc<dyn Store> {
    chatgate::store::open(&app.config.database_url)
        .await
        .unwrap()
}

async fn enable_fallback(app: &TestApp, admin: &str) {
    let reply = app
        .post(
            "/channels.update",
            &json!({"channel_id": app.channel_id, "email_fallback": true, "color": "#aa3300",
                    "name": "Shop & Co"}),
            Some(admin),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["email_fallback"], true);
}

/// A visitor who gave `email` on `page`, wrote "Hello", and has no socket;
/// the admin answered.
async fn offline_visitor(app: &TestApp, email: &str) -> (AgentClient, VisitorSession) {
    let admin = AgentClient::admin(app).await;
    let reply = app
        .post(
            "/chatplugin.authenticate",
            &json!({"channel_id": app.channel_id, "visitor": {"email": email, "name": "Ana"},
                    "context": {"url": "https://shop.example/pricing?plan=pro", "title": "Pricing"}}),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let visitor = VisitorSession::from(&reply.body);
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    let answer = admin.answer(&visitor.conversation_id).await;
    assert_eq!(answer.status, 200, "{}", answer.body);
    (admin, visitor)
}

/// Waits until the conversation's offline row is no longer pending.
async fn offline_row_done(store: &Arc<dyn Store>, conversation: &str) {
    let key = format!("offline:{conversation}");
    let start = Instant::now();
    while store.pending_outbox(&key).await.unwrap().is_some() {
        assert!(
            start.elapsed() < DEADLINE,
            "the offline email row stayed pending"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
}

/// The first http(s) link in `text` that contains `path`.
fn link(text: &str, path: &str) -> String {
    text.split_whitespace()
        .find(|w| w.starts_with("http") && w.contains(path))
        .unwrap_or_else(|| panic!("no {path} link in {text}"))
        .to_string()
}

#[tokio::test]
async fn replies_to_an_offline_visitor_arrive_in_one_email_with_both_parts_and_working_links() {
    let sink = SmtpSink::start();
    let app = app_with(&sink.url(), |_| {}).await;
    let admin_token = app.admin_token().await;
    enable_fallback(&app, &admin_token).await;
    let (admin, visitor) = offline_visitor(&app, "ana@example.com").await;
    let room = visitor.conversation_id.clone();
    // Three replies in a row: one email, not three.
    admin.post(&room, "Hi Ana, thanks for waiting").await;
    // A private note among them never goes out.
    let note = admin
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(json!({"content": "NOTE: refund approved internally", "private": true})),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.body);
    admin.post(&room, "<b>Tom & Jerry</b> plan costs $5").await;
    admin.post(&room, "Anything else?").await;

    let mail = sink.wait_for(1).await;
    let store = store_of(&app).await;
    offline_row_done(&store, &room).await;
    let mail_now = sink.received();
    assert_eq!(
        mail_now.len(),
        1,
        "one email for three replies: {mail_now:?}"
    );
    let email = &mail[0];
    assert_eq!(email["to"], json!(["ana@example.com"]));
    assert_eq!(email["content_type"], "multipart/alternative");
    assert!(
        email["subject"].as_str().unwrap().contains("Shop & Co"),
        "{email}"
    );
    let text = email["text"].as_str().unwrap();
    let html = email["html"].as_str().unwrap();
    for reply in [
        "Hi Ana, thanks for waiting",
        "<b>Tom & Jerry</b> plan costs $5",
        "Anything else?",
    ] {
        assert!(text.contains(reply), "{text}");
    }
    // The visitor's own message is not news to it; a note is nobody's news.
    assert!(!text.contains("Hello"), "{text}");
    assert!(!text.contains("NOTE:") && !html.contains("NOTE:"), "{text}");
    // HTML: escaped, in the channel's colour and name.
    assert!(
        html.contains("&lt;b&gt;Tom &amp; Jerry&lt;/b&gt;"),
        "{html}"
    );
    assert!(!html.contains("<b>Tom"), "{html}");
    assert!(
        html.contains("#aa3300") && html.contains("Shop &amp; Co"),
        "{html}"
    );
    assert!(email["list_unsubscribe"]
        .as_str()
        .unwrap()
        .contains("/email/unsubscribe"));

    // The reopen link leads to the page, with a resume token for this conversation.
    let http = reqwest::Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .build()
        .unwrap();
    let open = link(text, "/email/open");
    assert!(html.contains(&open.replace('&', "&amp;")), "{html}");
    let reply = http.get(&open).send().await.unwrap();
    assert_eq!(reply.status(), 303);
    let location = reply.headers()["location"].to_str().unwrap().to_string();
    let (page, token) = location.split_once("#chatgate-resume=").expect(&location);
    assert_eq!(page, "https://shop.example/pricing?plan=pro");
    let resumed = app
        .post(
            "/chatplugin.authenticate",
            &json!({"resume_token": token}),
            None,
        )
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(resumed.body["conversation_id"], room.as_str());
    // A forged signature opens nothing.
    let forged = format!("{}0", &open[..open.len() - 1]);
    let forged = if forged == open {
        format!("{}1", &open[..open.len() - 1])
    } else {
        forged
    };
    assert_eq!(http.get(&forged).send().await.unwrap().status(), 403);
    // Nor does a longer life than signed.
    let (head, rest) = open.split_once("&e=").unwrap();
    let (_, tail) = rest.split_once('&').unwrap();
    let extended = format!("{head}&e=99999999999&{tail}");
    assert_eq!(http.get(&extended).send().await.unwrap().status(), 403);

    // Unsubscribe: a signed GET with a small page; then no more emails.
    let unsubscribe = link(text, "/email/unsubscribe");
    let forged = unsubscribe.replace("&s=", "&s=00");
    assert_eq!(http.get(&forged).send().await.unwrap().status(), 403);
    let page = http.get(&unsubscribe).send().await.unwrap();
    assert_eq!(page.status(), 200);
    assert!(page.text().await.unwrap().contains("unsubscribed"));
    admin.post(&room, "One more thing").await;
    offline_row_done(&store, &room).await;
    assert_eq!(sink.received().len(), 1, "no email after unsubscribing");
}

#[tokio::test]
async fn the_throttle_gathers_later_replies_into_the_next_email() {
    let sink = SmtpSink::start();
    let app = app_with(&sink.url(), |c| c.email_throttle_ms = 1_500).await;
    let admin_token = app.admin_token().await;
    enable_fallback(&app, &admin_token).await;
    let (admin, visitor) = offline_visitor(&app, "ana@example.com").await;
    let room = visitor.conversation_id.clone();
    admin.post(&room, "first reply").await;
    sink.wait_for(1).await;
    admin.post(&room, "second reply").await;
    admin.post(&room, "third reply").await;
    let mail = sink.wait_for(2).await;
    let store = store_of(&app).await;
    offline_row_done(&store, &room).await;
    assert_eq!(sink.received().len(), 2);
    let second = mail[1]["text"].as_str().unwrap();
    assert!(
        second.contains("second reply") && second.contains("third reply"),
        "{second}"
    );
    assert!(
        !second.contains("first reply"),
        "only what was not emailed: {second}"
    );
}

#[tokio::test]
async fn no_email_goes_to_a_connected_visitor_or_on_a_channel_without_the_fallback() {
    let sink = SmtpSink::start();
    let app = app_with(&sink.url(), |_| {}).await;
    // Fallback off (the default): nothing is scheduled.
    let (admin, visitor) = offline_visitor(&app, "ana@example.com").await;
    admin.post(&visitor.conversation_id, "reply").await;
    let store = store_of(&app).await;
    assert!(store
        .pending_outbox(&format!("offline:{}", visitor.conversation_id))
        .await
        .unwrap()
        .is_none());
    // On, but the visitor is connected: the reply is delivered, not emailed.
    let admin_token = app.admin_token().await;
    enable_fallback(&app, &admin_token).await;
    let (admin, visitor) = offline_visitor(&app, "bo@example.com").await;
    let _socket = crate::helpers::Stomp::subscribed(&app, &visitor.token, None).await;
    assert!(app.wait_visitor_online(&visitor, true, DEADLINE).await);
    admin.post(&visitor.conversation_id, "live reply").await;
    offline_row_done(&store, &visitor.conversation_id).await;
    assert!(sink.received().is_empty(), "{:?}", sink.received());
}

#[tokio::test]
async fn an_email_waits_while_smtp_is_down_and_arrives_when_it_returns() {
    let port = SmtpSink::free_port();
    let app = app_with(&format!("smtp://127.0.0.1:{port}"), |_| {}).await;
    let admin_token = app.admin_token().await;
    enable_fallback(&app, &admin_token).await;
    let (admin, visitor) = offline_visitor(&app, "ana@example.com").await;
    let room = visitor.conversation_id.clone();
    admin.post(&room, "are you there?").await;
    // The attempts fail and are recorded.
    let store = store_of(&app).await;
    let key = format!("offline:{room}");
    let start = Instant::now();
    loop {
        let row = store
            .pending_outbox(&key)
            .await
            .unwrap()
            .expect("still pending");
        if row.attempts >= 1 {
            assert!(
                row.last_error.as_deref().unwrap_or("").contains("SMTP"),
                "{row:?}"
            );
            assert!(row.due_at_ms > row.created_at_ms);
            break;
        }
        assert!(start.elapsed() < DEADLINE, "no failed attempt recorded");
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    // The server comes up: the email arrives.
    let sink = SmtpSink::start_on(port);
    let mail = sink.wait_for(1).await;
    assert!(mail[0]["text"].as_str().unwrap().contains("are you there?"));
    offline_row_done(&store, &room).await;
    assert_eq!(sink.received().len(), 1);
}

/// SMTP found down pauses every email, not just the one that found it:
/// the next due row waits untried (no attempt counted, no connection),
/// and both arrive once the server is back.
#[tokio::test]
async fn smtp_found_down_pauses_the_other_emails_untried() {
    let port = SmtpSink::free_port();
    let app = app_with(&format!("smtp://127.0.0.1:{port}"), |c| {
        c.outbox_retry_ms = 2_000;
        c.outbox_concurrency = 1;
    })
    .await;
    let admin_token = app.admin_token().await;
    enable_fallback(&app, &admin_token).await;
    let (admin, first) = offline_visitor(&app, "ana@example.com").await;
    let (_, second) = offline_visitor(&app, "bo@example.com").await;
    admin.post(&first.conversation_id, "first reply").await;
    admin.post(&second.conversation_id, "second reply").await;
    let store = store_of(&app).await;
    let row = |room: &str| {
        let store = store.clone();
        let key = format!("offline:{room}");
        async move { store.pending_outbox(&key).await.unwrap().expect("pending") }
    };
    let start = Instant::now();
    loop {
        let (a, b) = (
            row(&first.conversation_id).await,
            row(&second.conversation_id).await,
        );
        let (tried, waiting) = if a.attempts > 0 { (a, b) } else { (b, a) };
        if tried.attempts > 0 && waiting.due_at_ms > waiting.created_at_ms + 1_000 {
            assert_eq!(tried.attempts, 1, "{tried:?}");
            assert_eq!(waiting.attempts, 0, "postponed untried: {waiting:?}");
            assert!(waiting.last_error.is_none(), "{waiting:?}");
            break;
        }
        assert!(
            start.elapsed() < DEADLINE,
            "no pause: {tried:?} {waiting:?}"
        );
        tokio::time::sleep(Duration::from_millis(25)).await;
    }
    let sink = SmtpSink::start_on(port);
    let mails = sink.wait_for(2).await;
    let texts: Vec<&str> = mails.iter().map(|m| m["text"].as_str().unwrap()).collect();
    assert!(texts.iter().any(|t| t.contains("first reply")), "{texts:?}");
    assert!(
        texts.iter().any(|t| t.contains("second reply")),
        "{texts:?}"
    );
    offline_row_done(&store, &first.conversation_id).await;
    offline_row_done(&store, &second.conversation_id).await;
    assert_eq!(sink.received().len(), 2);
}

#[tokio::test]
async fn a_transcript_is_sent_once_an_hour_and_needs_an_email() {
    let sink = SmtpSink::start();
    let app = app_with(&sink.url(), |_| {}).await;
    let (admin, visitor) = offline_visitor(&app, "ana@example.com").await;
    admin
        .post(&visitor.conversation_id, "Here is the answer")
        .await;
    let note = admin
        .call(
            "POST",
            &format!("/users/me/rooms/{}/messages", visitor.conversation_id),
            Some(json!({"content": "NOTE: agents only", "private": true})),
        )
        .await;
    assert_eq!(note.status, 201, "{}", note.body);
    let reply = app
        .post("/chatplugin.transcript", &json!({}), Some(&visitor.token))
        .await;
    assert_eq!(reply.status, 202, "{}", reply.body);
    let again = app
        .post("/chatplugin.transcript", &json!({}), Some(&visitor.token))
        .await;
    again.assert_error(429, "rate-limited");
    let mail = sink.wait_for(1).await;
    let text = mail[0]["text"].as_str().unwrap();
    assert!(
        text.contains("Hello") && text.contains("Here is the answer"),
        "{text}"
    );
    let html = mail[0]["html"].as_str().unwrap();
    assert!(!text.contains("NOTE:") && !html.contains("NOTE:"), "{text}");
    assert_eq!(mail[0]["to"], json!(["ana@example.com"]));

    // No email given: 409, nothing sent.
    let nobody = app.visitor().await;
    assert_eq!(app.send(&nobody.token, "hi").await.status, 200);
    app.post("/chatplugin.transcript", &json!({}), Some(&nobody.token))
        .await
        .assert_error(409, "no-email");
    // No token: 401.
    assert_eq!(
        app.post("/chatplugin.transcript", &json!({}), None)
            .await
            .status,
        401
    );
}

#[tokio::test]
async fn transcripts_have_a_budget_per_client_ip() {
    let sink = SmtpSink::start();
    let app = app_with(&sink.url(), |c| c.transcripts_per_ip_hour = 2).await;
    for i in 0..2 {
        let (_, visitor) = offline_visitor(&app, &format!("v{i}@example.com")).await;
        let reply = app
            .post("/chatplugin.transcript", &json!({}), Some(&visitor.token))
            .await;
        assert_eq!(reply.status, 202, "{}", reply.body);
    }
    let (_, third) = offline_visitor(&app, "v3@example.com").await;
    app.post("/chatplugin.transcript", &json!({}), Some(&third.token))
        .await
        .assert_error(429, "rate-limited");
    sink.wait_for(2).await;
}

#[tokio::test]
async fn without_smtp_the_widget_is_not_asked_and_transcripts_are_refused() {
    let app = TestApp::spawn().await;
    let admin_token = app.admin_token().await;
    enable_fallback(&app, &admin_token).await;
    let reply = app
        .post(
            "/chatplugin.authenticate",
            &json!({"channel_id": app.channel_id}),
            None,
        )
        .await;
    assert_eq!(
        reply.body["channel"]["email_fallback"], false,
        "{}",
        reply.body
    );
    let visitor = VisitorSession::from(&reply.body);
    assert_eq!(app.send(&visitor.token, "hi").await.status, 200);
    app.post("/chatplugin.transcript", &json!({}), Some(&visitor.token))
        .await
        .assert_error(409, "email-unavailable");
}

#[tokio::test]
async fn bad_email_addresses_and_settings_are_refused_with_nothing_stored() {
    let sink = SmtpSink::start();
    let app = app_with(&sink.url(), |_| {}).await;
    let admin_token = app.admin_token().await;
    enable_fallback(&app, &admin_token).await;
    let reply = app
        .post(
            "/chatplugin.authenticate",
            &json!({"channel_id": app.channel_id}),
            None,
        )
        .await;
    assert_eq!(
        reply.body["channel"]["email_fallback"], true,
        "{}",
        reply.body
    );
    for bad in [
        "nope",
        "a@b",
        "a b@c.example",
        "<x>@y.example\r\nBcc: z@z.example",
        "@x.example",
        "a,b@c.example",
        "a@b..example",
    ] {
        let reply = app
            .post(
                "/chatplugin.authenticate",
                &json!({"channel_id": app.channel_id, "visitor": {"email": bad}}),
                None,
            )
            .await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get("visitor.email").is_some(),
            "{}",
            reply.body
        );
    }
    let reply = app
        .post(
            "/channels.update",
            &json!({"channel_id": app.channel_id, "email_fallback": "yes"}),
            Some(&admin_token),
        )
        .await;
    reply.assert_error(400, "invalid-data");
    assert!(
        reply.body["details"].get("email_fallback").is_some(),
        "{}",
        reply.body
    );
    // Nothing changed: still on.
    let info = app
        .post(
            "/channels.info",
            &json!({"channel_id": app.channel_id}),
            Some(&admin_token),
        )
        .await;
    assert_eq!(info.body["email_fallback"], true, "{}", info.body);
}

#[tokio::test]
async fn two_instances_send_each_email_once() {
    if std::env::var("CHATGATE_TEST_BACKEND").as_deref() != Ok("postgres") {
        // A cluster needs PostgreSQL and Redis (the postgres run covers it).
        return;
    }
    let sink = SmtpSink::start();
    let a = app_with(&sink.url(), |_| {}).await;
    let mut config = a.config.clone();
    config.listen = "127.0.0.1:0".parse().unwrap();
    let first = chatgate::app::FirstStart {
        admin_email: a.admin_email.clone(),
        admin_password: a.admin_password.clone(),
        channel_id: a.channel_id.parse().unwrap(),
    };
    let b = TestApp::start(config, crate::helpers::TestDatabase::new(None), Some(first)).await;
    let admin_token = a.admin_token().await;
    enable_fallback(&a, &admin_token).await;
    let mut rooms = Vec::new();
    for i in 0..8 {
        let (admin, visitor) = offline_visitor(&a, &format!("v{i}@example.com")).await;
        admin
            .post(&visitor.conversation_id, &format!("reply {i}"))
            .await;
        rooms.push(visitor.conversation_id);
    }
    let store = store_of(&b).await;
    for room in &rooms {
        offline_row_done(&store, room).await;
    }
    let mail = sink.wait_for(8).await;
    assert_eq!(mail.len(), 8, "each once: {mail:?}");
    let mut ids: Vec<&str> = mail
        .iter()
        .map(|m| m["message_id"].as_str().unwrap())
        .collect();
    ids.sort();
    ids.dedup();
    assert_eq!(ids.len(), 8);
    drop(b);
}
