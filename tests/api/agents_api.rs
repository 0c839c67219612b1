//! Agent administration: `POST/GET/PATCH/DELETE /api/chatd/1.0/agents[/<uuid>]`
//! (agent-api.md, "Tenants, agents, login"), and which tokens the agent API
//! accepts: roles and the disabled flag are read on every call, so a change
//! applies to tokens already handed out.

use std::collections::BTreeSet;

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, TestApp};

fn unique_email(name: &str) -> String {
    format!(
        "{name}-{}@example.com",
        &uuid::Uuid::new_v4().simple().to_string()[..8]
    )
}

/// Creates an agent with `body`; returns the reply.
async fn create(admin: &AgentClient, body: Value) -> Reply {
    admin.call("POST", "/agents", Some(body)).await
}

/// The agents of the admin's tenant, as `GET /agents` lists them.
async fn list(admin: &AgentClient) -> Vec<Value> {
    let reply = admin.call("GET", "/agents", None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let items = reply.body["items"].as_array().expect("items").clone();
    assert_eq!(reply.body["total"], items.len(), "{}", reply.body);
    items
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value
        .as_object()
        .unwrap_or_else(|| panic!("not an object: {value}"))
        .keys()
        .map(String::as_str)
        .collect()
}

/// Fails if anything in `value` looks like a password or its hash.
fn assert_no_secret(value: &Value, password: &str) {
    let text = value.to_string();
    for secret in ["password", "argon2", "$argon", password] {
        assert!(!text.contains(secret), "{secret:?} leaked in {text}");
    }
}

#[tokio::test]
async fn creating_an_agent_returns_201_with_its_fields_and_no_password_hash() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let email = unique_email("ana");

    let reply = create(
        &admin,
        json!({"email": email, "display_name": "Ana", "password": "correct horse",
               "avatar_url": "https://example.com/ana.png"}),
    )
    .await;

    assert_eq!(reply.status, 201, "{}", reply.body);
    let agent = &reply.body;
    assert_eq!(
        keys(agent),
        BTreeSet::from([
            "uuid",
            "email",
            "display_name",
            "avatar_url",
            "role",
            "disabled",
            "tenant_uuid"
        ]),
        "{agent}"
    );
    assert!(uuid::Uuid::parse_str(agent["uuid"].as_str().unwrap()).is_ok());
    assert_eq!(agent["email"], email);
    assert_eq!(agent["display_name"], "Ana");
    assert_eq!(agent["avatar_url"], "https://example.com/ana.png");
    assert_eq!(agent["role"], "agent", "role defaults to agent");
    assert_eq!(agent["disabled"], false);
    assert_eq!(agent["tenant_uuid"], admin.tenant);
    assert_no_secret(agent, "correct horse");

    // The list and the single read leak nothing either.
    assert_no_secret(&Value::Array(list(&admin).await), "correct horse");
    let one = admin
        .call(
            "GET",
            &format!("/agents/{}", agent["uuid"].as_str().unwrap()),
            None,
        )
        .await;
    assert_no_secret(&one.body, "correct horse");

    // The new agent logs in with its password, as itself.
    let ana = AgentClient::login(&app, &email, "correct horse").await;
    assert_eq!(ana.uuid, agent["uuid"].as_str().unwrap());
    assert_eq!(ana.tenant, admin.tenant);
}

#[tokio::test]
async fn listing_shows_every_agent_of_the_tenant_and_get_returns_the_same_agent() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent_with_role(&app, "Bob", "admin").await;

    let items = list(&admin).await;

    let uuids: BTreeSet<&str> = items.iter().map(|a| a["uuid"].as_str().unwrap()).collect();
    assert_eq!(
        uuids,
        BTreeSet::from([admin.uuid.as_str(), ana.uuid.as_str(), bob.uuid.as_str()])
    );
    for listed in &items {
        let uuid = listed["uuid"].as_str().unwrap();
        let one = admin.call("GET", &format!("/agents/{uuid}"), None).await;
        assert_eq!(one.status, 200, "{}", one.body);
        assert_eq!(&one.body, listed, "GET shows what the list shows");
    }
    let bob_json = items
        .iter()
        .find(|a| a["uuid"] == bob.uuid.as_str())
        .unwrap();
    assert_eq!(bob_json["role"], "admin");
    assert_eq!(bob_json["email"], bob.email);
    assert_eq!(bob_json["display_name"], "Bob");
    assert_eq!(bob_json["avatar_url"], Value::Null);

    let unknown = admin
        .call("GET", &format!("/agents/{}", uuid::Uuid::new_v4()), None)
        .await;
    unknown.assert_error(404, "unknown-agent");
    let malformed = admin.call("GET", "/agents/not-a-uuid", None).await;
    assert_eq!(malformed.status, 404, "{}", malformed.body);
}

#[tokio::test]
async fn patching_changes_the_given_fields_and_keeps_the_others() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let path = format!("/agents/{}", ana.uuid);
    let before = admin.call("GET", &path, None).await.body;

    let renamed = admin
        .call("PATCH", &path, Some(json!({"display_name": "Ana María"})))
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["display_name"], "Ana María");
    for kept in ["email", "avatar_url", "role", "disabled", "tenant_uuid"] {
        assert_eq!(renamed.body[kept], before[kept], "{kept} kept");
    }

    let with_avatar = admin
        .call(
            "PATCH",
            &path,
            Some(json!({"avatar_url": "https://example.com/a.png"})),
        )
        .await;
    assert_eq!(with_avatar.status, 200, "{}", with_avatar.body);
    assert_eq!(with_avatar.body["avatar_url"], "https://example.com/a.png");
    assert_eq!(with_avatar.body["display_name"], "Ana María");

    // Absent keeps the avatar, null removes it.
    let untouched = admin
        .call("PATCH", &path, Some(json!({"display_name": "Ana"})))
        .await;
    assert_eq!(untouched.body["avatar_url"], "https://example.com/a.png");
    let cleared = admin
        .call("PATCH", &path, Some(json!({"avatar_url": null})))
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["avatar_url"], Value::Null);

    // The change is stored, not only echoed.
    let now = admin.call("GET", &path, None).await.body;
    assert_eq!(now["display_name"], "Ana");
    assert_eq!(now["avatar_url"], Value::Null);

    // A message posted afterwards carries the new name.
    let bob = admin.new_agent(&app, "Bob").await;
    let room = ana.create_room(&[&bob]).await;
    let message = ana.post(room["uuid"].as_str().unwrap(), "hola").await;
    assert_eq!(message["alias"], "Ana");
}

#[tokio::test]
async fn an_agent_promoted_to_admin_may_manage_agents_with_its_existing_token() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    ana.call("GET", "/agents", None)
        .await
        .assert_error(403, "forbidden");

    let promoted = admin
        .call(
            "PATCH",
            &format!("/agents/{}", ana.uuid),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(promoted.body["role"], "admin");

    let listed = ana.call("GET", "/agents", None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
}

#[tokio::test]
async fn a_new_password_replaces_the_old_one_at_login() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;

    let changed = admin
        .call(
            "PATCH",
            &format!("/agents/{}", ana.uuid),
            Some(json!({"password": "battery staple"})),
        )
        .await;
    assert_eq!(changed.status, 200, "{}", changed.body);
    assert_no_secret(&changed.body, "battery staple");

    let old = AgentClient::try_login(&app, &ana.email, "correct horse").await;
    assert_eq!(old.status, 401, "{}", old.body);
    let new = AgentClient::login(&app, &ana.email, "battery staple").await;
    assert_eq!(new.uuid, ana.uuid);
    let rooms = new.call("GET", "/users/me/rooms", None).await;
    assert_eq!(rooms.status, 200, "{}", rooms.body);
    // A changed password ends the sessions opened with the old one.
    let stale = ana.call("GET", "/users/me/rooms", None).await;
    assert_eq!(stale.status, 401, "{}", stale.body);
}

#[tokio::test]
async fn a_deleted_agent_is_gone_and_its_token_is_refused_on_the_next_call() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let path = format!("/agents/{}", ana.uuid);
    let works = ana.call("GET", "/users/me/rooms", None).await;
    assert_eq!(works.status, 200, "{}", works.body);

    let deleted = admin.call("DELETE", &path, None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    assert_eq!(deleted.body, Value::Null, "204 has no body");

    admin
        .call("GET", &path, None)
        .await
        .assert_error(404, "unknown-agent");
    admin
        .call("DELETE", &path, None)
        .await
        .assert_error(404, "unknown-agent");
    admin
        .call("PATCH", &path, Some(json!({"display_name": "Zombie"})))
        .await
        .assert_error(404, "unknown-agent");
    assert!(list(&admin)
        .await
        .iter()
        .all(|a| a["uuid"] != ana.uuid.as_str()));

    let refused = ana.call("GET", "/users/me/rooms", None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let login = AgentClient::try_login(&app, &ana.email, "correct horse").await;
    assert_eq!(login.status, 401, "{}", login.body);
}

#[tokio::test]
async fn an_admin_cannot_delete_itself() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;

    let reply = admin
        .call("DELETE", &format!("/agents/{}", admin.uuid), None)
        .await;

    reply.assert_error(400, "invalid-data");
    let still = admin.call("GET", "/agents", None).await;
    assert_eq!(still.status, 200, "{}", still.body);
}

#[tokio::test]
async fn missing_or_invalid_fields_at_creation_are_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let before = list(&admin).await.len();
    let valid = || {
        json!({"email": unique_email("ana"), "display_name": "Ana",
               "password": "correct horse", "role": "agent"})
    };
    let with = |field: &str, value: Value| {
        let mut body = valid();
        body[field] = value;
        body
    };
    let without = |field: &str| {
        let mut body = valid();
        body.as_object_mut().unwrap().remove(field);
        body
    };
    let cases: Vec<(&str, Value)> = vec![
        ("email", without("email")),
        ("email", with("email", json!("not-an-email"))),
        ("email", with("email", json!("ana@localhost"))),
        ("email", with("email", json!("ana @example.com"))),
        ("email", with("email", json!(42))),
        ("display_name", without("display_name")),
        ("display_name", with("display_name", json!("   "))),
        ("display_name", with("display_name", json!("x".repeat(201)))),
        ("password", without("password")),
        ("password", with("password", json!("short"))),
        ("password", with("password", Value::Null)),
        ("role", with("role", json!("boss"))),
        (
            "avatar_url",
            with("avatar_url", json!("javascript:alert(1)")),
        ),
    ];

    for (field, body) in cases {
        let reply = create(&admin, body.clone()).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get(field).is_some(),
            "details name {field} for {body}: {}",
            reply.body
        );
    }
    let not_json = admin
        .http
        .post(format!("{}/api/chatd/1.0/agents", admin.base))
        .header("X-Auth-Token", &admin.token)
        .body("{not json")
        .send()
        .await
        .unwrap();
    Reply::from(not_json)
        .await
        .assert_error(400, "invalid-data");

    assert_eq!(list(&admin).await.len(), before, "nothing was created");
}

#[tokio::test]
async fn invalid_patches_are_400_naming_the_field_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let path = format!("/agents/{}", ana.uuid);
    let before = admin.call("GET", &path, None).await.body;

    let cases = [
        ("display_name", json!({"display_name": ""})),
        ("display_name", json!({"display_name": 7})),
        (
            "avatar_url",
            json!({"avatar_url": "ftp://example.com/a.png"}),
        ),
        ("role", json!({"role": "root"})),
        ("password", json!({"password": "1234567"})),
        ("disabled", json!({"disabled": "yes"})),
    ];
    for (field, body) in cases {
        let reply = admin.call("PATCH", &path, Some(body.clone())).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get(field).is_some(),
            "details name {field} for {body}: {}",
            reply.body
        );
    }

    assert_eq!(admin.call("GET", &path, None).await.body, before);
    // The password was not changed by the refused patch.
    AgentClient::login(&app, &ana.email, "correct horse").await;
}

#[tokio::test]
async fn a_second_agent_with_the_same_email_is_409_whatever_its_case() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let email = unique_email("ana");
    let body =
        |email: &str| json!({"email": email, "display_name": "Ana", "password": "correct horse"});
    let first = create(&admin, body(&email)).await;
    assert_eq!(first.status, 201, "{}", first.body);
    let before = list(&admin).await.len();

    let again = create(&admin, body(&email)).await;
    assert_eq!(again.status, 409, "{}", again.body);
    let shouting = create(&admin, body(&email.to_uppercase())).await;
    assert_eq!(shouting.status, 409, "{}", shouting.body);
    // The admin of the first start has its email taken as well.
    let admin_email = create(&admin, body(&app.admin_email)).await;
    assert_eq!(admin_email.status, 409, "{}", admin_email.body);

    assert_eq!(list(&admin).await.len(), before);
    AgentClient::login(&app, &email, "correct horse").await;
}

#[tokio::test]
async fn an_agent_that_is_not_admin_gets_403_forbidden_on_every_agents_call() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let bob_path = format!("/agents/{}", bob.uuid);

    let calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", "/agents".into(), None),
        (
            "POST",
            "/agents".into(),
            Some(
                json!({"email": unique_email("eve"), "display_name": "Eve", "password": "correct horse"}),
            ),
        ),
        ("GET", bob_path.clone(), None),
        ("PATCH", bob_path.clone(), Some(json!({"role": "admin"}))),
        (
            "PATCH",
            format!("/agents/{}", ana.uuid),
            Some(json!({"role": "admin"})),
        ),
        ("DELETE", bob_path.clone(), None),
    ];
    for (method, path, body) in calls {
        let reply = ana.call(method, &path, body).await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.body);
        reply.assert_error(403, "forbidden");
    }

    // Nothing changed: no Eve, Bob is still an agent, Ana too.
    let items = list(&admin).await;
    assert_eq!(items.len(), 3, "{items:?}");
    for agent in &items {
        if agent["uuid"] != admin.uuid.as_str() {
            assert_eq!(agent["role"], "agent", "{agent}");
        }
    }
    assert_eq!(bob.call("GET", "/users/me/rooms", None).await.status, 200);
}

#[tokio::test]
async fn a_demoted_admin_gets_403_on_its_very_next_call_with_its_existing_token() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let boss = admin.new_agent_with_role(&app, "Boss", "admin").await;
    let allowed = boss.call("GET", "/agents", None).await;
    assert_eq!(allowed.status, 200, "{}", allowed.body);

    let demoted = admin
        .call(
            "PATCH",
            &format!("/agents/{}", boss.uuid),
            Some(json!({"role": "agent"})),
        )
        .await;
    assert_eq!(demoted.status, 200, "{}", demoted.body);
    assert_eq!(demoted.body["role"], "agent");

    boss.call("GET", "/agents", None)
        .await
        .assert_error(403, "forbidden");
    let create = boss
        .call(
            "POST",
            "/agents",
            Some(json!({"email": unique_email("eve"), "display_name": "Eve", "password": "correct horse"})),
        )
        .await;
    create.assert_error(403, "forbidden");
    // Still an agent: its own rooms work.
    assert_eq!(boss.call("GET", "/users/me/rooms", None).await.status, 200);
}

#[tokio::test]
async fn a_disabled_agent_is_refused_at_once_and_cannot_log_in_until_enabled() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let path = format!("/agents/{}", ana.uuid);

    let disabled = admin
        .call("PATCH", &path, Some(json!({"disabled": true})))
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    assert_eq!(disabled.body["disabled"], true);

    let refused = ana.call("GET", "/users/me/rooms", None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let login = AgentClient::try_login(&app, &ana.email, "correct horse").await;
    assert_eq!(login.status, 401, "{}", login.body);
    // Refused the same way as a wrong password: nothing tells it apart.
    let wrong = AgentClient::try_login(&app, &ana.email, "wrong horse").await;
    assert_eq!(login.body["error_id"], wrong.body["error_id"]);
    assert_eq!(login.body["message"], wrong.body["message"]);
    let listed = list(&admin).await;
    let shown = listed
        .iter()
        .find(|a| a["uuid"] == ana.uuid.as_str())
        .unwrap();
    assert_eq!(shown["disabled"], true);

    let enabled = admin
        .call("PATCH", &path, Some(json!({"disabled": false})))
        .await;
    assert_eq!(enabled.body["disabled"], false);
    let again = AgentClient::login(&app, &ana.email, "correct horse").await;
    assert_eq!(again.call("GET", "/users/me/rooms", None).await.status, 200);
}

#[tokio::test]
async fn after_logout_the_token_is_refused_by_the_agent_api() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let other_session = AgentClient::login(&app, &ana.email, "correct horse").await;

    let logout = ana.logout().await;
    assert_eq!(logout.status, 204, "{}", logout.body);

    let refused = ana.call("GET", "/users/me/rooms", None).await;
    assert_eq!(refused.status, 401, "{}", refused.body);
    let again = ana.logout().await;
    assert_eq!(again.status, 401, "{}", again.body);
    // Only that session ended.
    let other = other_session.call("GET", "/users/me/rooms", None).await;
    assert_eq!(other.status, 200, "{}", other.body);
}

#[tokio::test]
async fn visitor_and_agent_tokens_only_open_their_own_api() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = app.visitor().await;

    for token in [
        visitor.token.as_str(),
        visitor.resume_token.as_str(),
        "",
        "garbage",
    ] {
        let rooms = admin.call_as(token, "GET", "/users/me/rooms", None).await;
        assert_eq!(rooms.status, 401, "token {token:?}: {}", rooms.body);
        let agents = admin.call_as(token, "GET", "/agents", None).await;
        assert_eq!(agents.status, 401, "token {token:?}: {}", agents.body);
    }
    let no_token = admin
        .http
        .get(format!("{}/api/chatd/1.0/users/me/rooms", admin.base))
        .send()
        .await
        .unwrap();
    assert_eq!(no_token.status(), 401);

    let sent = app.send(&admin.token, "hello from an agent token").await;
    assert_eq!(sent.status, 401, "{}", sent.body);
    assert!(
        app.contents(&visitor).await.is_empty(),
        "nothing was stored"
    );
}

#[tokio::test]
async fn an_admin_cannot_demote_or_disable_itself_so_a_tenant_keeps_an_admin() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    for change in [json!({"role": "agent"}), json!({"disabled": true})] {
        admin
            .call("PATCH", &format!("/agents/{}", admin.uuid), Some(change))
            .await
            .assert_error(400, "invalid-data");
    }
    let me = admin
        .call("GET", &format!("/agents/{}", admin.uuid), None)
        .await;
    assert_eq!(me.body["role"], "admin", "{}", me.body);
    assert_eq!(me.body["disabled"], false, "{}", me.body);
    // Renaming oneself is fine.
    let renamed = admin
        .call(
            "PATCH",
            &format!("/agents/{}", admin.uuid),
            Some(json!({"display_name": "Chief"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
}
