//! Operations endpoints: /healthz, /readyz, /metrics.

use serde_json::Value;

use crate::helpers::{Stomp, TestApp};

fn metric(text: &str, name: &str) -> f64 {
    text.lines()
        .find(|l| l.starts_with(name) && l[name.len()..].starts_with(' '))
        .and_then(|l| l.rsplit(' ').next())
        .and_then(|v| v.parse().ok())
        .unwrap_or_else(|| panic!("no metric {name} in\n{text}"))
}

#[tokio::test]
async fn readyz_reports_each_part() {
    let app = TestApp::spawn().await;
    let reply = app.http.get(app.url("/readyz")).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    let body: Value = reply.json().await.unwrap();
    assert_eq!(body["database"], "ok");
    assert_eq!(body["bus"], "ok");
}

#[tokio::test]
async fn metrics_count_sessions_messages_deliveries_and_rate_limits() {
    let app = TestApp::spawn_with(|c| {
        c.send_burst = 2;
        c.send_per_second = 1;
    })
    .await;
    let visitor = app.visitor().await;
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    app.send(&visitor.token, "one").await;
    app.send(&visitor.token, "two").await;
    app.send(&visitor.token, "three")
        .await
        .assert_error(429, "rate-limited");
    stomp.messages(2).await;
    let reply = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    assert!(reply.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("text/plain"));
    let text = reply.text().await.unwrap();
    assert_eq!(metric(&text, "chatgate_sessions{kind=\"visitor\"}"), 1.0);
    assert_eq!(metric(&text, "chatgate_messages_stored_total"), 2.0);
    assert_eq!(metric(&text, "chatgate_messages_delivered_total"), 2.0);
    // Two messages, and the first one's "a visitor is queued" event to the
    // tenant's agents, of whom none is connected: received only the messages.
    // The visitor's "connected" notice to the room's agents is told from a
    // task of its CONNECT: when that task runs after the first message made
    // the room, it is published too (to nobody here).
    let published = metric(&text, "chatgate_bus_published_total");
    assert!(published == 3.0 || published == 4.0, "{published}");
    assert_eq!(metric(&text, "chatgate_bus_received_total"), 2.0);
    assert_eq!(
        metric(&text, "chatgate_rate_limited_total{limit=\"send\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "chatgate_store_seconds_count{op=\"append_message\"}"),
        2.0
    );
}

/// Sets when a visitor room was queued, `secs` seconds ago.
async fn queued_secs_ago(app: &TestApp, room: &str, secs: i64) {
    use sqlx::Connection;
    let at = chatgate::domain::time::now_ms() - secs * 1000;
    let sql = "UPDATE conversations SET queued_at = $1 WHERE id = $2";
    let db = app.db.as_ref().expect("the test's database");
    match &db.schema {
        Some(schema) => {
            let mut conn = sqlx::PgConnection::connect(schema.url()).await.unwrap();
            sqlx::query(sql)
                .bind(at)
                .bind(room)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        None => {
            let url = format!("sqlite://{}", app.config.database_url);
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(sql)
                .bind(at)
                .bind(room)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

async fn scrape(app: &TestApp) -> String {
    let reply = app.http.get(app.url("/metrics")).send().await.unwrap();
    assert_eq!(reply.status(), 200);
    reply.text().await.unwrap()
}

#[tokio::test]
async fn metrics_time_the_queue_wait_of_answered_and_assigned_rooms() {
    let app = TestApp::spawn().await;
    let admin = crate::agent_helpers::AgentClient::admin(&app).await;
    let bea = admin.new_agent(&app, "Bea").await;
    let text = scrape(&app).await;
    assert!(
        !text.contains("chatgate_queue_wait_seconds_count{"),
        "{text}"
    );

    // Answered after 90 s in the queue.
    let first = app.visitor().await;
    assert_eq!(app.send(&first.token, "Hello").await.status, 200);
    queued_secs_ago(&app, &first.conversation_id, 90).await;
    assert_eq!(admin.answer(&first.conversation_id).await.status, 200);
    // Given to Bea by the admin after 10 minutes.
    let second = app.visitor().await;
    assert_eq!(app.send(&second.token, "Hello").await.status, 200);
    queued_secs_ago(&app, &second.conversation_id, 600).await;
    let assigned = admin
        .call(
            "POST",
            &format!("/rooms/{}/transfers", second.conversation_id),
            Some(serde_json::json!({"user_uuid": bea.uuid})),
        )
        .await;
    assert_eq!(assigned.status, 200, "{}", assigned.body);

    let text = scrape(&app).await;
    let answered = |name: &str| metric(&text, &format!("chatgate_queue_wait_seconds_{name}"));
    assert_eq!(answered("count{how=\"answered\"}"), 1.0);
    let sum = answered("sum{how=\"answered\"}");
    assert!((90.0..120.0).contains(&sum), "{sum}");
    assert_eq!(answered("bucket{how=\"answered\",le=\"60\"}"), 0.0);
    assert_eq!(answered("bucket{how=\"answered\",le=\"120\"}"), 1.0);
    assert_eq!(answered("count{how=\"assigned\"}"), 1.0);
    assert_eq!(answered("bucket{how=\"assigned\",le=\"300\"}"), 0.0);
    assert_eq!(answered("bucket{how=\"assigned\",le=\"1800\"}"), 1.0);
}

#[tokio::test]
async fn metrics_count_webhook_attempts_by_outcome_and_time_deliveries() {
    use crate::webhook_receiver::{Answer, Receiver};
    let app = TestApp::spawn_with(|c| {
        c.outbox_retry_ms = 20;
        c.outbox_poll_ms = 50;
        c.webhook_timeout_ms = 400;
    })
    .await;
    let admin = crate::agent_helpers::AgentClient::admin(&app).await;
    let receiver = Receiver::start().await;
    // The first try fails, the second is delivered.
    receiver.script(|hit| {
        if hit.try_number == 1 {
            Answer::Fail
        } else {
            Answer::Ok
        }
    });
    let created = admin
        .call(
            "POST",
            "/webhooks",
            Some(serde_json::json!({"url": receiver.url, "events": ["conversation.created"]})),
        )
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    receiver.set_secret(created.body["secret"].as_str().unwrap());
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    receiver
        .wait_delivered(1, std::time::Duration::from_secs(30))
        .await;
    // The server counts the 2xx once it has read it: after the receiver's
    // record of it. Scrape until it shows.
    let deadline = tokio::time::Instant::now() + std::time::Duration::from_secs(10);
    let text = loop {
        let text = scrape(&app).await;
        if text.contains("chatgate_webhook_attempts_total{outcome=\"delivered\"} 1") {
            break text;
        }
        assert!(tokio::time::Instant::now() < deadline, "{text}");
        tokio::time::sleep(std::time::Duration::from_millis(50)).await;
    };
    assert_eq!(
        metric(&text, "chatgate_webhook_attempts_total{outcome=\"failed\"}"),
        1.0
    );
    assert_eq!(
        metric(&text, "chatgate_webhook_delivery_seconds_count"),
        1.0
    );
    let took = metric(&text, "chatgate_webhook_delivery_seconds_sum");
    assert!(took > 0.0 && took < 30.0, "{took}");
    assert_eq!(receiver.delivered().len(), 1);
}
