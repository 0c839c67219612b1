//! Agent login and logout: `POST /api/auth/0.1/token` (HTTP Basic) and
//! `DELETE /api/auth/0.1/token/<token>` (agent-api.md, "Tenants, agents, login").

use base64::Engine;
use chrono::{DateTime, Utc};
use serde_json::{json, Value};

use crate::helpers::{Reply, TestApp};

const LOGIN: &str = "/api/auth/0.1/token";

/// Logs in with HTTP Basic `email:password` and a JSON body.
async fn login(app: &TestApp, email: &str, password: &str, body: &Value) -> Reply {
    let response = app
        .http
        .post(app.url(LOGIN))
        .basic_auth(email, Some(password))
        .json(body)
        .send()
        .await
        .unwrap();
    Reply::from(response).await
}

/// Logs in with a raw `Authorization` header (or none).
async fn login_with_header(
    app: &TestApp,
    authorization: Option<&str>,
    extra: &[(&str, &str)],
) -> Reply {
    let mut headers = vec![("content-type", "application/json")];
    if let Some(value) = authorization {
        headers.push(("authorization", value));
    }
    headers.extend_from_slice(extra);
    app.post_raw(LOGIN, "{}", &headers).await
}

async fn logout(app: &TestApp, token: &str) -> Reply {
    let response = app
        .http
        .delete(app.url(&format!("{LOGIN}/{token}")))
        .send()
        .await
        .unwrap();
    Reply::from(response).await
}

fn basic(credentials: &str) -> String {
    format!(
        "Basic {}",
        base64::engine::general_purpose::STANDARD.encode(credentials)
    )
}

/// Asserts the contract's timestamp format `2026-11-22T10:15:30.123Z` and returns it parsed.
fn timestamp(value: &Value) -> DateTime<Utc> {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("timestamp is not a string: {value}"));
    let shape = "dddd-dd-ddTdd:dd:dd.dddZ";
    assert_eq!(
        text.len(),
        shape.len(),
        "timestamp {text:?} is not like {shape}"
    );
    for (c, expected) in text.chars().zip(shape.chars()) {
        let ok = match expected {
            'd' => c.is_ascii_digit(),
            other => c == other,
        };
        assert!(ok, "timestamp {text:?} is not like {shape}");
    }
    DateTime::parse_from_rfc3339(text)
        .unwrap_or_else(|e| panic!("timestamp {text:?} does not parse: {e}"))
        .with_timezone(&Utc)
}

fn assert_uuid(value: &Value, what: &str) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("{what} is not a string: {value}"));
    assert!(
        uuid::Uuid::parse_str(text).is_ok(),
        "{what} is not a UUID: {text:?}"
    );
}

#[tokio::test]
async fn a_successful_login_returns_a_token_with_the_wazo_auth_shape() {
    let app = TestApp::spawn().await;
    let before = Utc::now();
    let reply = login(&app, &app.admin_email, &app.admin_password, &json!({})).await;
    let after = Utc::now();
    assert_eq!(reply.status, 200, "{}", reply.body);
    let data = &reply.body["data"];
    assert!(data.is_object(), "{}", reply.body);

    let token = data["token"].as_str().expect("token is a string");
    assert!(!token.is_empty());
    assert_uuid(&data["session_uuid"], "session_uuid");
    assert_eq!(data["acl"], json!([]), "{}", reply.body);

    let issued = timestamp(&data["issued_at"]);
    let utc_issued = timestamp(&data["utc_issued_at"]);
    let expires = timestamp(&data["expires_at"]);
    let utc_expires = timestamp(&data["utc_expires_at"]);
    assert_eq!(issued, utc_issued);
    assert_eq!(expires, utc_expires);
    // Issued now (the server may round to the second).
    assert!(
        issued >= before - chrono::Duration::seconds(2),
        "{issued} vs {before}"
    );
    assert!(
        issued <= after + chrono::Duration::seconds(2),
        "{issued} vs {after}"
    );
    // No expiration asked: the default lifetime of one hour.
    let lifetime = (expires - issued).num_seconds();
    assert!(
        (3599..=3601).contains(&lifetime),
        "default lifetime {lifetime} s"
    );

    let metadata = &data["metadata"];
    assert_uuid(&metadata["uuid"], "metadata.uuid");
    assert_uuid(&metadata["tenant_uuid"], "metadata.tenant_uuid");
    assert!(
        metadata["display_name"]
            .as_str()
            .is_some_and(|n| !n.is_empty()),
        "{metadata}"
    );
    assert_eq!(metadata["role"], "admin", "{metadata}");

    // The token works as an admin token, and belongs to the tenant it names.
    let list = app.post("/channels.list", &json!({}), Some(token)).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let demo = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == app.channel_id.as_str())
        .expect("the demo channel is listed")
        .clone();
    assert_eq!(demo["tenant_uuid"], metadata["tenant_uuid"], "{demo}");
}

#[tokio::test]
async fn an_asked_expiration_sets_expires_at_that_many_seconds_after_issued_at() {
    let app = TestApp::spawn().await;
    let reply = login(
        &app,
        &app.admin_email,
        &app.admin_password,
        &json!({"expiration": 60}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let data = &reply.body["data"];
    let issued = timestamp(&data["issued_at"]);
    let expires = timestamp(&data["expires_at"]);
    let lifetime = (expires - issued).num_milliseconds();
    assert!(
        (59_000..=61_000).contains(&lifetime),
        "expires_at - issued_at = {lifetime} ms, expected about 60 s"
    );
    assert_eq!(timestamp(&data["utc_expires_at"]), expires);

    // And the short-lived token is usable right away.
    let token = data["token"].as_str().unwrap();
    let list = app.post("/channels.list", &json!({}), Some(token)).await;
    assert_eq!(list.status, 200, "{}", list.body);
}

#[tokio::test]
async fn wrong_password_and_unknown_email_get_the_same_401() {
    let app = TestApp::spawn().await;
    let wrong_password = login(&app, &app.admin_email, "not-the-password", &json!({})).await;
    let unknown_email = login(&app, "nobody@example.com", &app.admin_password, &json!({})).await;

    assert_eq!(wrong_password.status, 401, "{}", wrong_password.body);
    assert_eq!(unknown_email.status, 401, "{}", unknown_email.body);
    let error_id = wrong_password.body["error_id"].as_str().unwrap_or_default();
    assert!(!error_id.is_empty(), "{}", wrong_password.body);
    wrong_password.assert_error(401, error_id);
    unknown_email.assert_error(401, error_id);
    // Nothing tells an attacker which emails are agents.
    assert_eq!(
        wrong_password.body["message"],
        unknown_email.body["message"]
    );
    assert_eq!(
        wrong_password.body["details"],
        unknown_email.body["details"]
    );
    assert!(
        wrong_password.body.get("data").is_none(),
        "{}",
        wrong_password.body
    );

    // An empty password is just a wrong password.
    let empty = login(&app, &app.admin_email, "", &json!({})).await;
    empty.assert_error(401, error_id);

    // The right credentials still work afterwards.
    let ok = login(&app, &app.admin_email, &app.admin_password, &json!({})).await;
    assert_eq!(ok.status, 200, "{}", ok.body);
}

#[tokio::test]
async fn a_login_without_an_authorization_header_is_401() {
    let app = TestApp::spawn().await;
    let reply = login_with_header(&app, None, &[]).await;
    assert_eq!(reply.status, 401, "{}", reply.body);
    let error_id = reply.body["error_id"]
        .as_str()
        .unwrap_or_default()
        .to_string();
    reply.assert_error(401, &error_id);
    assert!(!error_id.is_empty());
}

#[tokio::test]
async fn a_malformed_basic_header_is_401_not_a_crash() {
    let app = TestApp::spawn().await;
    let no_colon = basic("admin-without-colon");
    let good = basic(&format!("{}:{}", app.admin_email, app.admin_password));
    let bearer_not_basic = format!("Bearer {}", &good["Basic ".len()..]);
    let cases = [
        "Basic !!!not base64!!!".to_string(),
        "Basic".to_string(),
        "Basic ".to_string(),
        no_colon,
        bearer_not_basic,
        // Valid base64 of bytes that are not UTF-8.
        format!(
            "Basic {}",
            base64::engine::general_purpose::STANDARD.encode([0xff, 0xfe, b':', 0xfd])
        ),
    ];
    for header in &cases {
        let reply = login_with_header(&app, Some(header), &[]).await;
        assert_eq!(reply.status, 401, "{header:?}: {}", reply.body);
        let error_id = reply.body["error_id"]
            .as_str()
            .unwrap_or_default()
            .to_string();
        assert!(!error_id.is_empty(), "{header:?}: {}", reply.body);
        reply.assert_error(401, &error_id);
        assert!(
            reply.body.get("data").is_none(),
            "{header:?}: {}",
            reply.body
        );
    }
    // The well-formed header for the same agent works.
    let reply = login_with_header(&app, Some(&good), &[]).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

#[tokio::test]
async fn an_expiration_that_is_not_a_positive_integer_is_400_invalid_data() {
    let app = TestApp::spawn().await;
    for expiration in [json!(0), json!(-60), json!("abc"), json!("60")] {
        let reply = login(
            &app,
            &app.admin_email,
            &app.admin_password,
            &json!({"expiration": expiration}),
        )
        .await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get("expiration").is_some(),
            "details should name expiration for {expiration}: {}",
            reply.body
        );
    }
    // A body that is not JSON is refused too.
    let good = basic(&format!("{}:{}", app.admin_email, app.admin_password));
    let reply = app
        .post_raw(
            LOGIN,
            "{\"expiration\": ",
            &[
                ("content-type", "application/json"),
                ("authorization", &good),
            ],
        )
        .await;
    reply.assert_error(400, "invalid-data");
}

#[tokio::test]
async fn behind_a_trusted_proxy_each_forwarded_client_has_its_own_failure_budget() {
    let app = TestApp::spawn_with(|c| {
        c.login_failures_per_minute = 2;
        c.trusted_proxies = vec!["127.0.0.1".parse().unwrap()];
    })
    .await;
    let wrong = basic(&format!("{}:wrong", app.admin_email));
    let right = basic(&format!("{}:{}", app.admin_email, app.admin_password));
    for _ in 0..2 {
        let reply =
            login_with_header(&app, Some(&wrong), &[("x-forwarded-for", "203.0.113.1")]).await;
        reply.assert_error(401, "unauthorized");
    }
    let limited =
        login_with_header(&app, Some(&right), &[("x-forwarded-for", "203.0.113.1")]).await;
    limited.assert_error(429, "rate-limited");
    // Another client behind the same proxy is not punished for the first one.
    let other = login_with_header(
        &app,
        Some(&right),
        &[("x-forwarded-for", "198.51.100.7, 203.0.113.1")],
    )
    .await;
    assert_eq!(other.status, 200, "{}", other.body);
}

#[tokio::test]
async fn a_forged_forwarded_for_from_an_untrusted_peer_buys_no_new_failure_budget() {
    let app = TestApp::spawn_with(|c| c.login_failures_per_minute = 2).await;
    let wrong = basic(&format!("{}:wrong", app.admin_email));
    for hop in ["203.0.113.1", "203.0.113.2"] {
        login_with_header(&app, Some(&wrong), &[("x-forwarded-for", hop)])
            .await
            .assert_error(401, "unauthorized");
    }
    let right = basic(&format!("{}:{}", app.admin_email, app.admin_password));
    login_with_header(&app, Some(&right), &[("x-forwarded-for", "203.0.113.3")])
        .await
        .assert_error(429, "rate-limited");
}

#[tokio::test]
async fn logout_revokes_the_token() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let other = app.admin_token().await;
    let before = app.post("/channels.list", &json!({}), Some(&token)).await;
    assert_eq!(before.status, 200, "{}", before.body);

    let reply = logout(&app, &token).await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(reply.body, Value::Null, "204 has no body");

    let after = app.post("/channels.list", &json!({}), Some(&token)).await;
    after.assert_error(401, "invalid-token");
    let again = logout(&app, &token).await;
    again.assert_error(401, "invalid-token");

    // Only that session ended: another login of the same agent still works.
    let still = app.post("/channels.list", &json!({}), Some(&other)).await;
    assert_eq!(still.status, 200, "{}", still.body);
}

#[tokio::test]
async fn logout_of_a_token_that_is_not_one_is_401() {
    let app = TestApp::spawn().await;
    let token = app.admin_token().await;
    let mut forged: Vec<char> = token.chars().collect();
    let i = forged.len() - 10;
    forged[i] = if forged[i] == 'a' { 'b' } else { 'a' };
    let forged: String = forged.into_iter().collect();
    for bad in ["garbage", forged.as_str()] {
        let reply = logout(&app, bad).await;
        reply.assert_error(401, "invalid-token");
    }
    // A visitor token is not an agent session either.
    let visitor = app.visitor().await;
    logout(&app, &visitor.token)
        .await
        .assert_error(401, "invalid-token");
    // The real token was not revoked by any of that.
    let list = app.post("/channels.list", &json!({}), Some(&token)).await;
    assert_eq!(list.status, 200, "{}", list.body);
}

#[tokio::test]
async fn a_token_stops_working_once_it_has_expired() {
    let app = TestApp::spawn().await;
    let reply = login(
        &app,
        &app.admin_email,
        &app.admin_password,
        &json!({"expiration": 1}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let token = reply.body["data"]["token"].as_str().unwrap().to_string();
    let expires = timestamp(&reply.body["data"]["expires_at"]);

    // Wait until well past expires_at.
    let wait = (expires - Utc::now()).num_milliseconds().max(0) as u64 + 1_200;
    tokio::time::sleep(std::time::Duration::from_millis(wait)).await;
    app.post("/channels.list", &json!({}), Some(&token))
        .await
        .assert_error(401, "invalid-token");
}
