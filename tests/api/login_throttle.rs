//! Login throttling counts failures only: per account and client IP
//! (default 10 a minute) and per client IP (default 100 a minute), for the
//! API's `POST /api/auth/0.1/token` and the console alike. An office behind
//! one NAT logs in at once; guessing a password stays slow.

use futures_util::future::join_all;
use serde_json::json;

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, TestApp};

const LOGIN: &str = "/api/auth/0.1/token";

/// A login from `client`, as a trusted proxy on 127.0.0.1 forwards it.
async fn login_from(app: &TestApp, client: &str, email: &str, password: &str) -> Reply {
    Reply::from(
        app.http
            .post(app.url(LOGIN))
            .basic_auth(email, Some(password))
            .header("x-forwarded-for", client)
            .json(&json!({}))
            .send()
            .await
            .unwrap(),
    )
    .await
}

fn retry_after(reply: &Reply) -> u64 {
    reply
        .headers
        .get("retry-after")
        .expect("a Retry-After header")
        .to_str()
        .unwrap()
        .parse()
        .expect("Retry-After in whole seconds")
}

/// A server behind a proxy on 127.0.0.1, with the default login budgets.
async fn behind_proxy() -> TestApp {
    TestApp::spawn_with(|c| c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()]).await
}

#[tokio::test]
async fn thirty_agents_behind_one_ip_log_in_without_a_429() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    // Thirty agents created (each logs in once, one after another)...
    let mut emails = Vec::new();
    for i in 0..30 {
        emails.push(admin.new_agent(&app, &format!("Agent{i}")).await.email);
    }
    // ...and all of them logging in again at 9:00, at once, from the same IP.
    let replies = join_all(
        emails
            .iter()
            .map(|email| AgentClient::try_login(&app, email, "correct horse")),
    )
    .await;
    for (email, reply) in emails.iter().zip(&replies) {
        assert_eq!(reply.status, 200, "{email}: {}", reply.body);
    }
}

#[tokio::test]
async fn the_eleventh_wrong_password_for_one_account_in_a_minute_is_429_with_retry_after() {
    let app = behind_proxy().await;
    let attacker = "203.0.113.66";
    // Successful logins from that IP first: they do not count.
    for _ in 0..5 {
        let ok = login_from(&app, attacker, &app.admin_email, &app.admin_password).await;
        assert_eq!(ok.status, 200, "{}", ok.body);
    }
    for i in 1..=10 {
        login_from(&app, attacker, &app.admin_email, &format!("guess-{i}"))
            .await
            .assert_error(401, "unauthorized");
    }
    // The 11th attempt is refused before the password is looked at: even
    // the right one gets no token.
    let eleventh = login_from(&app, attacker, &app.admin_email, &app.admin_password).await;
    eleventh.assert_error(429, "rate-limited");
    assert!(eleventh.body.get("data").is_none(), "{}", eleventh.body);
    let wait = retry_after(&eleventh);
    assert!((1..=60).contains(&wait), "Retry-After: {wait}");
    // The account is not locked for everyone: its owner at another IP logs in.
    let owner = login_from(&app, "198.51.100.7", &app.admin_email, &app.admin_password).await;
    assert_eq!(owner.status, 200, "{}", owner.body);
    // And the attacker's IP may still log in to other accounts.
    let admin = AgentClient::admin(&app).await;
    let colleague = admin.new_agent(&app, "Colleague").await;
    let other = login_from(&app, attacker, &colleague.email, "correct horse").await;
    assert_eq!(other.status, 200, "{}", other.body);
}

#[tokio::test]
async fn the_hundred_and_first_failure_from_one_ip_across_accounts_is_429() {
    let app = behind_proxy().await;
    let attacker = "203.0.113.77";
    // 100 failures spread over 20 accounts: 5 each, under any account's budget.
    for i in 0..100 {
        let email = format!("someone{}@example.com", i % 20);
        login_from(&app, attacker, &email, "password1")
            .await
            .assert_error(401, "unauthorized");
    }
    // The 101st, to an account never tried from there, and with the right
    // password, is refused.
    let limited = login_from(&app, attacker, &app.admin_email, &app.admin_password).await;
    limited.assert_error(429, "rate-limited");
    assert!((1..=60).contains(&retry_after(&limited)));
    // Another client is not punished for it.
    let other = login_from(&app, "198.51.100.8", &app.admin_email, &app.admin_password).await;
    assert_eq!(other.status, 200, "{}", other.body);
    // The refusals are counted by limit.
    let metrics = app
        .http
        .get(app.url("/metrics"))
        .send()
        .await
        .unwrap()
        .text()
        .await
        .unwrap();
    assert!(
        metrics.contains("chatgate_rate_limited_total{limit=\"login_ip\"} 1"),
        "{metrics}"
    );
}

#[tokio::test]
async fn a_login_refused_for_a_bad_expiration_is_not_counted_as_a_failure() {
    let app = TestApp::spawn_with(|c| c.login_failures_per_minute = 1).await;
    for _ in 0..3 {
        let reply = Reply::from(
            app.http
                .post(app.url(LOGIN))
                .basic_auth(&app.admin_email, Some("wrong"))
                .json(&json!({"expiration": 0}))
                .send()
                .await
                .unwrap(),
        )
        .await;
        reply.assert_error(400, "invalid-data");
    }
    let ok = AgentClient::try_login(&app, &app.admin_email, &app.admin_password).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}
