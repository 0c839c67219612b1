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
