//! Canned responses (desk-api.md, "Support desk"): `GET/POST
//! /canned_responses`, `PATCH/DELETE /canned_responses/<uuid>`. Admins
//! write them, every agent of the tenant lists and searches them
//! (`?search=` on shortcut and title, case and accents aside); another
//! tenant's are 404 and never listed.

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::TestApp;

const PATH: &str = "/canned_responses";

fn one(uuid: &str) -> String {
    format!("{PATH}/{uuid}")
}

async fn create(admin: &AgentClient, shortcut: &str, title: &str, content: &str) -> Value {
    let reply = admin
        .call(
            "POST",
            PATH,
            Some(json!({"shortcut": shortcut, "title": title, "content": content})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body
}

async fn shortcuts(agent: &AgentClient, query: &str) -> Vec<String> {
    let reply = agent.call("GET", &format!("{PATH}{query}"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|c| c["shortcut"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn admins_create_change_and_delete_canned_responses_and_agents_read_them() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;

    let created = create(
        &admin,
        "/returns",
        "  Returns policy ",
        "Hi {{visitor.name}}, you may return any order within 30 days.\n— {{agent.name}}",
    )
    .await;
    let uuid = created["uuid"].as_str().unwrap().to_string();
    assert_eq!(created["shortcut"], "returns", "the typed / is dropped");
    assert_eq!(created["title"], "Returns policy");
    assert_eq!(
        created["content"],
        "Hi {{visitor.name}}, you may return any order within 30 days.\n— {{agent.name}}"
    );
    assert!(created["created_at"].is_string() && created["updated_at"].is_string());

    // Any agent lists and reads it.
    let listed = ana.call("GET", PATH, None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert_eq!(listed.body["total"], 1);
    assert_eq!(listed.body["filtered"], 1);
    assert_eq!(listed.body["items"][0], created);
    let read = ana.call("GET", &one(&uuid), None).await;
    assert_eq!(read.status, 200);
    assert_eq!(read.body, created);

    // A PATCH changes the fields given, the others stay.
    let patched = admin
        .call(
            "PATCH",
            &one(&uuid),
            Some(json!({"title": "Returns (30 days)"})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(patched.body["title"], "Returns (30 days)");
    assert_eq!(patched.body["shortcut"], "returns");
    assert_eq!(patched.body["content"], created["content"]);
    let patched = admin
        .call(
            "PATCH",
            &one(&uuid),
            Some(json!({"shortcut": "ret", "content": "Send it back."})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    assert_eq!(ana.call("GET", &one(&uuid), None).await.body, patched.body);

    // Deleted: gone for everyone, a second delete is 404.
    assert_eq!(admin.call("DELETE", &one(&uuid), None).await.status, 204);
    let gone = ana.call("GET", &one(&uuid), None).await;
    assert_eq!(gone.status, 404);
    assert_eq!(gone.body["error_id"], "unknown-canned-response");
    assert_eq!(admin.call("DELETE", &one(&uuid), None).await.status, 404);
    assert_eq!(shortcuts(&ana, "").await, Vec::<String>::new());
}

#[tokio::test]
async fn search_matches_shortcut_and_title_whatever_the_case_and_accents() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    create(&admin, "returns", "How to return an order", "a").await;
    create(&admin, "délai", "Délai de LIVRAISON", "b").await;
    create(&admin, "hours", "Opening hours (retours until 5pm)", "c").await;
    create(
        &admin,
        "50%",
        "Half price",
        "the text is not searched: returns",
    )
    .await;

    assert_eq!(
        shortcuts(&ana, "").await,
        ["50%", "délai", "hours", "returns"],
        "all, by shortcut"
    );
    // A shortcut that starts with the search comes first, then the others.
    assert_eq!(shortcuts(&ana, "?search=RET").await, ["returns", "hours"]);
    assert_eq!(shortcuts(&ana, "?search=delai").await, ["délai"]);
    assert_eq!(shortcuts(&ana, "?search=livraisón").await, ["délai"]);
    assert_eq!(shortcuts(&ana, "?search=opening%20HOURS").await, ["hours"]);
    assert_eq!(
        shortcuts(&ana, "?search=%25").await,
        ["50%"],
        "% is literal"
    );
    assert_eq!(
        shortcuts(&ana, "?search=nothing").await,
        Vec::<String>::new()
    );
    assert_eq!(shortcuts(&ana, "?search=%20").await.len(), 4, "blank: all");

    let page = ana
        .call("GET", &format!("{PATH}?search=o&limit=1"), None)
        .await;
    assert_eq!(page.status, 200);
    assert_eq!(page.body["items"].as_array().unwrap().len(), 1);
    assert_eq!(page.body["filtered"], 3);
    assert_eq!(page.body["total"], 4);
    for bad in ["?limit=0", "?limit=1001", "?limit=x", "?offset=-1"] {
        let reply = ana.call("GET", &format!("{PATH}{bad}"), None).await;
        assert_eq!(reply.status, 400, "{bad}: {}", reply.body);
        assert_eq!(reply.body["error_id"], "invalid-data", "{bad}");
    }
}

#[tokio::test]
async fn only_admins_write_canned_responses() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let created = create(&admin, "hello", "Greeting", "Hello!").await;
    let uuid = created["uuid"].as_str().unwrap();

    let body = json!({"shortcut": "mine", "title": "Mine", "content": "x"});
    for (method, path, body) in [
        ("POST", PATH.to_string(), Some(body.clone())),
        ("PATCH", one(uuid), Some(json!({"title": "Changed"}))),
        ("PUT", one(uuid), Some(json!({"title": "Changed"}))),
        ("DELETE", one(uuid), None),
    ] {
        let reply = ana.call(method, &path, body).await;
        assert_eq!(reply.status, 403, "{method} {path}: {}", reply.body);
        assert_eq!(reply.body["error_id"], "forbidden");
    }
    assert_eq!(ana.call("GET", &one(uuid), None).await.body, created);
    assert_eq!(shortcuts(&ana, "").await, ["hello"]);

    // A promotion applies at once; so does a demotion.
    let promoted = admin
        .call(
            "PATCH",
            &format!("/agents/{}", ana.uuid),
            Some(json!({"role": "admin"})),
        )
        .await;
    assert_eq!(promoted.status, 200, "{}", promoted.body);
    assert_eq!(ana.call("POST", PATH, Some(body)).await.status, 201);

    // Without a token nothing is told.
    let anonymous = ana.call_as("", "GET", PATH, None).await;
    assert_eq!(anonymous.status, 401);
}

#[tokio::test]
async fn bad_fields_and_duplicate_shortcuts_are_refused_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let kept = create(&admin, "hello", "Greeting", "Hello!").await;
    let uuid = kept["uuid"].as_str().unwrap();
    create(&admin, "bye", "Farewell", "Bye!").await;

    let long_text = "x".repeat(4097);
    let cases = [
        (json!({"title": "t", "content": "c"}), "shortcut"),
        (
            json!({"shortcut": "", "title": "t", "content": "c"}),
            "shortcut",
        ),
        (
            json!({"shortcut": "/", "title": "t", "content": "c"}),
            "shortcut",
        ),
        (
            json!({"shortcut": "two words", "title": "t", "content": "c"}),
            "shortcut",
        ),
        (
            json!({"shortcut": "a/b", "title": "t", "content": "c"}),
            "shortcut",
        ),
        (
            json!({"shortcut": "x".repeat(33), "title": "t", "content": "c"}),
            "shortcut",
        ),
        (json!({"shortcut": "s", "content": "c"}), "title"),
        (
            json!({"shortcut": "s", "title": "   ", "content": "c"}),
            "title",
        ),
        (
            json!({"shortcut": "s", "title": "é".repeat(101), "content": "c"}),
            "title",
        ),
        (json!({"shortcut": "s", "title": "t"}), "content"),
        (
            json!({"shortcut": "s", "title": "t", "content": " \n "}),
            "content",
        ),
        (
            json!({"shortcut": "s", "title": "t", "content": long_text}),
            "content",
        ),
    ];
    for (body, field) in cases {
        let reply = admin.call("POST", PATH, Some(body.clone())).await;
        assert_eq!(reply.status, 400, "{body}: {}", reply.body);
        assert_eq!(reply.body["error_id"], "invalid-data", "{body}");
        assert!(
            reply.body["details"].get(field).is_some(),
            "{body}: names {field}: {}",
            reply.body
        );
    }
    // At the bounds, accepted.
    create(&admin, &"x".repeat(32), &"é".repeat(100), &"y".repeat(4096)).await;

    // Not JSON, or a field of the wrong type.
    for raw in [
        json!("text"),
        json!({"shortcut": 5, "title": "t", "content": "c"}),
    ] {
        let reply = admin.call("POST", PATH, Some(raw.clone())).await;
        assert_eq!(reply.status, 400, "{raw}: {}", reply.body);
    }

    // A shortcut is unique per tenant: on create and on change.
    let dup = admin
        .call(
            "POST",
            PATH,
            Some(json!({"shortcut": "hello", "title": "Again", "content": "Hi"})),
        )
        .await;
    assert_eq!(dup.status, 409, "{}", dup.body);
    assert_eq!(dup.body["error_id"], "canned-response-already-exists");
    let clash = admin
        .call("PATCH", &one(uuid), Some(json!({"shortcut": "bye"})))
        .await;
    assert_eq!(clash.status, 409, "{}", clash.body);
    assert_eq!(clash.body["error_id"], "canned-response-already-exists");
    let bad_patch = admin
        .call("PATCH", &one(uuid), Some(json!({"title": ""})))
        .await;
    assert_eq!(bad_patch.status, 400, "{}", bad_patch.body);
    assert_eq!(admin.call("GET", &one(uuid), None).await.body, kept);

    // Malformed or unknown ids.
    for path in [one("not-a-uuid"), one(&uuid::Uuid::new_v4().to_string())] {
        for (method, body) in [
            ("GET", None),
            ("PATCH", Some(json!({"title": "x"}))),
            ("DELETE", None),
        ] {
            let reply = admin.call(method, &path, body).await;
            assert_eq!(reply.status, 404, "{method} {path}: {}", reply.body);
            assert_eq!(reply.body["error_id"], "unknown-canned-response");
            assert_eq!(reply.body["details"]["resource"], "canned_response");
        }
    }
    assert_eq!(shortcuts(&admin, "").await.len(), 3);
}

#[tokio::test]
async fn another_tenant_never_sees_nor_changes_a_tenants_canned_responses() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let stranger = AgentClient::other_tenant_admin(&app).await;
    let ours = create(&admin, "returns", "Returns", "Ours").await;
    let uuid = ours["uuid"].as_str().unwrap();

    assert_eq!(shortcuts(&stranger, "").await, Vec::<String>::new());
    assert_eq!(
        shortcuts(&stranger, "?search=ret").await,
        Vec::<String>::new()
    );
    for (method, body) in [
        ("GET", None),
        ("PATCH", Some(json!({"content": "Theirs now"}))),
        ("PUT", Some(json!({"content": "Theirs now"}))),
        ("DELETE", None),
    ] {
        let reply = stranger.call(method, &one(uuid), body).await;
        assert_eq!(reply.status, 404, "{method}: {}", reply.body);
        assert_eq!(reply.body["error_id"], "unknown-canned-response");
    }
    // The same shortcut is free in the other tenant, and stays its own.
    let theirs = create(&stranger, "returns", "Their returns", "Theirs").await;
    assert_eq!(admin.call("GET", &one(uuid), None).await.body, ours);
    assert_eq!(
        admin
            .call("GET", &one(theirs["uuid"].as_str().unwrap()), None)
            .await
            .status,
        404
    );
    assert_eq!(shortcuts(&admin, "").await, ["returns"]);
    let listed = admin.call("GET", PATH, None).await;
    assert_eq!(listed.body["items"][0]["content"], "Ours");
    assert_eq!(listed.body["total"], 1);
}
