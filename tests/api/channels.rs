//! Airy-style channel administration (agent-api.md, "Channels") and the
//! channel's `allowed_origins` as visitors' browsers meet it (visitor-api.md).

use serde_json::{json, Value};

use crate::helpers::{Reply, TestApp};

const SHOP_ORIGINS: [&str; 2] = ["https://shop.example.com", "https://*.example.org"];

fn shop() -> Value {
    json!({
        "name": "Shop",
        "image_url": "https://x/y.png",
        "allowed_origins": SHOP_ORIGINS,
    })
}

/// POSTs JSON with extra headers (no token unless given in `headers`).
async fn post_with(app: &TestApp, path: &str, body: &Value, headers: &[(&str, &str)]) -> Reply {
    let mut all = vec![("content-type", "application/json")];
    all.extend_from_slice(headers);
    app.post_raw(path, body.to_string(), &all).await
}

/// `/chatplugin.authenticate` on `channel` from a page of `origin` (None: not a browser).
async fn authenticate_from(app: &TestApp, channel: &str, origin: Option<&str>) -> Reply {
    let headers: Vec<(&str, &str)> = origin.map(|o| ("origin", o)).into_iter().collect();
    post_with(
        app,
        "/chatplugin.authenticate",
        &json!({"channel_id": channel}),
        &headers,
    )
    .await
}

fn assert_uuid(value: &Value) {
    let text = value
        .as_str()
        .unwrap_or_else(|| panic!("not a string: {value}"));
    assert!(uuid::Uuid::parse_str(text).is_ok(), "not a UUID: {text:?}");
}

/// Asserts the contract's Channel JSON.
fn assert_channel(
    channel: &Value,
    name: &str,
    image_url: Option<&str>,
    origins: &[&str],
    connected: bool,
) {
    assert_uuid(&channel["id"]);
    assert_eq!(channel["source"], "chatplugin", "{channel}");
    assert_eq!(channel["source_channel_id"], name, "{channel}");
    assert_eq!(channel["connected"], connected, "{channel}");
    assert_eq!(
        channel["metadata"],
        json!({"name": name, "image_url": image_url}),
        "{channel}"
    );
    assert_eq!(channel["allowed_origins"], json!(origins), "{channel}");
}

/// Flips one character in the middle of a JWT's signature.
fn forge(token: &str) -> String {
    let mut chars: Vec<char> = token.chars().collect();
    let i = chars.len() - 10;
    chars[i] = if chars[i] == 'a' { 'b' } else { 'a' };
    chars.into_iter().collect()
}

fn listed_ids(reply: &Reply) -> Vec<String> {
    reply.body["data"]
        .as_array()
        .unwrap_or_else(|| panic!("data is not a list: {}", reply.body))
        .iter()
        .map(|c| c["id"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn connecting_a_chatplugin_channel_returns_the_contract_fields() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let reply = app
        .post("/channels.chatplugin.connect", &shop(), Some(&admin))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_channel(
        &reply.body,
        "Shop",
        Some("https://x/y.png"),
        &SHOP_ORIGINS,
        true,
    );
    // Nothing beyond the contract's fields, its settings and the channel's
    // tenant (visitor-api.md and agent-api.md, "Channels").
    let keys: Vec<&str> = reply
        .body
        .as_object()
        .unwrap()
        .keys()
        .map(String::as_str)
        .collect();
    let allowed = [
        "allowed_origins",
        "connected",
        "id",
        "metadata",
        "source",
        "source_channel_id",
        "tenant_uuid",
        "welcome_message",
        "color",
        "assignment",
        "max_open_per_agent",
        "business_hours",
        "away_message",
        "prechat",
        "auto_close_hours",
        // desk-api.md, "Identified visitor": shown to admins.
        "identity_secret",
        "email_fallback",
        // desk-api.md, "Integrations": the application that takes new
        // conversations first.
        "bot",
    ];
    assert!(
        keys.iter().all(|k| allowed.contains(k)),
        "unexpected fields: {keys:?}"
    );

    // Without the optional fields: no image and any origin.
    // Unknown request fields are ignored; names are stored as given.
    let plain = app
        .post(
            "/channels.chatplugin.connect",
            &json!({"name": "Boutique Café ☕", "colour": "red"}),
            Some(&admin),
        )
        .await;
    assert_eq!(plain.status, 200, "{}", plain.body);
    assert_channel(&plain.body, "Boutique Café ☕", None, &[], true);
    assert!(plain.body.get("colour").is_none(), "{}", plain.body);
    assert_eq!(plain.body["color"], Value::Null, "{}", plain.body);
    assert_ne!(
        plain.body["id"], reply.body["id"],
        "each channel gets its own id"
    );
    // Visitors can use the new channel at once.
    let visitor = authenticate_from(&app, plain.body["id"].as_str().unwrap(), None).await;
    assert_eq!(visitor.status, 200, "{}", visitor.body);
}

#[tokio::test]
async fn the_admin_token_is_accepted_as_bearer_or_x_auth_token() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let bearer = format!("Bearer {admin}");
    let by_bearer = post_with(
        &app,
        "/channels.list",
        &json!({}),
        &[("authorization", &bearer)],
    )
    .await;
    assert_eq!(by_bearer.status, 200, "{}", by_bearer.body);
    let by_header = post_with(
        &app,
        "/channels.list",
        &json!({}),
        &[("x-auth-token", &admin)],
    )
    .await;
    assert_eq!(by_header.status, 200, "{}", by_header.body);
    assert_eq!(listed_ids(&by_bearer), listed_ids(&by_header));
    // A bare token in Authorization is accepted too (visitor-api.md, conventions).
    let bare = post_with(
        &app,
        "/channels.list",
        &json!({}),
        &[("authorization", &admin)],
    )
    .await;
    assert_eq!(bare.status, 200, "{}", bare.body);
    // X-Auth-Token works for a call that changes something.
    let created = post_with(
        &app,
        "/channels.chatplugin.connect",
        &json!({"name": "Via header"}),
        &[("x-auth-token", &admin)],
    )
    .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_channel(&created.body, "Via header", None, &[], true);
}

#[tokio::test]
async fn list_and_info_show_the_demo_channel_and_a_new_one() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app.create_channel(&admin, shop()).await;

    // An empty body is fine for list.
    let list = app
        .post_raw(
            "/channels.list",
            "",
            &[("authorization", &format!("Bearer {admin}"))],
        )
        .await;
    assert_eq!(list.status, 200, "{}", list.body);
    let ids = listed_ids(&list);
    assert!(
        ids.contains(&app.channel_id),
        "demo channel missing: {ids:?}"
    );
    assert!(ids.contains(&id), "new channel missing: {ids:?}");
    assert_eq!(ids.len(), 2, "{ids:?}");
    let listed = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .unwrap();
    assert_channel(listed, "Shop", Some("https://x/y.png"), &SHOP_ORIGINS, true);
    let demo = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == app.channel_id.as_str())
        .unwrap();
    assert_eq!(demo["connected"], true, "{demo}");
    assert_eq!(demo["source"], "chatplugin", "{demo}");

    let info = app
        .post("/channels.info", &json!({"channel_id": id}), Some(&admin))
        .await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.body["id"], id.as_str());
    assert_channel(
        &info.body,
        "Shop",
        Some("https://x/y.png"),
        &SHOP_ORIGINS,
        true,
    );
    assert_eq!(&info.body, listed, "info and list agree");
}

#[tokio::test]
async fn update_changes_the_given_fields_and_keeps_the_others() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app.create_channel(&admin, shop()).await;

    let renamed = app
        .post(
            "/channels.update",
            &json!({"channel_id": id, "name": "Shop 2"}),
            Some(&admin),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_channel(
        &renamed.body,
        "Shop 2",
        Some("https://x/y.png"),
        &SHOP_ORIGINS,
        true,
    );

    let reimaged = app
        .post(
            "/channels.update",
            &json!({"channel_id": id, "image_url": "https://x/z.png"}),
            Some(&admin),
        )
        .await;
    assert_eq!(reimaged.status, 200, "{}", reimaged.body);
    assert_channel(
        &reimaged.body,
        "Shop 2",
        Some("https://x/z.png"),
        &SHOP_ORIGINS,
        true,
    );

    let reorigined = app
        .post(
            "/channels.update",
            &json!({"channel_id": id, "allowed_origins": ["http://localhost:3000"]}),
            Some(&admin),
        )
        .await;
    assert_eq!(reorigined.status, 200, "{}", reorigined.body);
    assert_channel(
        &reorigined.body,
        "Shop 2",
        Some("https://x/z.png"),
        &["http://localhost:3000"],
        true,
    );

    // Only channel_id: nothing changes.
    let same = app
        .post("/channels.update", &json!({"channel_id": id}), Some(&admin))
        .await;
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(same.body, reorigined.body);

    // The change is stored, not just echoed.
    let info = app
        .post("/channels.info", &json!({"channel_id": id}), Some(&admin))
        .await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert_eq!(info.body, reorigined.body);

    // An empty name is refused like on connect.
    let empty = app
        .post(
            "/channels.update",
            &json!({"channel_id": id, "name": ""}),
            Some(&admin),
        )
        .await;
    empty.assert_error(400, "invalid-data");
    assert!(
        empty.body["details"].get("name").is_some(),
        "{}",
        empty.body
    );

    // A bad update changes nothing.
    let bad = app
        .post(
            "/channels.update",
            &json!({"channel_id": id, "name": "Shop 3", "allowed_origins": ["nope"]}),
            Some(&admin),
        )
        .await;
    bad.assert_error(400, "invalid-data");
    let info = app
        .post("/channels.info", &json!({"channel_id": id}), Some(&admin))
        .await;
    assert_eq!(info.body, reorigined.body);
}

#[tokio::test]
async fn widget_and_routing_settings_are_validated_stored_and_the_public_ones_reach_visitors() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app.create_channel(&admin, shop()).await;
    let info = app
        .post("/channels.info", &json!({"channel_id": id}), Some(&admin))
        .await;
    assert_eq!(info.body["welcome_message"], Value::Null, "{}", info.body);
    assert_eq!(info.body["color"], Value::Null);
    assert_eq!(info.body["assignment"], "manual", "the default");
    assert_eq!(info.body["max_open_per_agent"], 5, "the default");

    let updated = app
        .post(
            "/channels.update",
            &json!({"channel_id": id, "welcome_message": "Hi! How can we help?",
                    "color": "#1F6FEB", "assignment": "round_robin", "max_open_per_agent": 12}),
            Some(&admin),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_eq!(updated.body["welcome_message"], "Hi! How can we help?");
    assert_eq!(updated.body["color"], "#1f6feb", "stored in lowercase");
    assert_eq!(updated.body["assignment"], "round_robin");
    assert_eq!(updated.body["max_open_per_agent"], 12);
    assert_eq!(updated.body["metadata"]["name"], "Shop", "others kept");

    // Each bad value is 400 naming its field, and changes nothing.
    let long = "x".repeat(501);
    for (field, value) in [
        ("welcome_message", json!(long)),
        ("welcome_message", json!(7)),
        ("color", json!("blue")),
        ("color", json!("#12345")),
        ("assignment", json!("random")),
        ("assignment", json!(true)),
        ("max_open_per_agent", json!(0)),
        ("max_open_per_agent", json!(101)),
        ("max_open_per_agent", json!(2.5)),
        ("max_open_per_agent", json!("3")),
    ] {
        let mut body = json!({"channel_id": id, "name": "Changed"});
        body[field] = value.clone();
        let bad = app.post("/channels.update", &body, Some(&admin)).await;
        bad.assert_error(400, "invalid-data");
        assert!(
            bad.body["details"].get(field).is_some(),
            "{field}={value}: {}",
            bad.body
        );
    }
    let info = app
        .post("/channels.info", &json!({"channel_id": id}), Some(&admin))
        .await;
    assert_eq!(
        info.body, updated.body,
        "stored, and no bad update changed it"
    );

    // Connect accepts them too.
    let mut with_settings = shop();
    with_settings["color"] = json!("#00aa55");
    with_settings["assignment"] = json!("round_robin");
    let created = app
        .post("/channels.chatplugin.connect", &with_settings, Some(&admin))
        .await;
    assert_eq!(created.status, 200, "{}", created.body);
    assert_eq!(created.body["color"], "#00aa55");
    assert_eq!(created.body["assignment"], "round_robin");

    // The widget reads the public part, and nothing of the routing.
    let visitor = authenticate_from(&app, &id, None).await;
    assert_eq!(visitor.status, 200, "{}", visitor.body);
    assert_eq!(
        visitor.body["channel"],
        json!({"id": id, "name": "Shop", "image_url": "https://x/y.png",
               "welcome_message": "Hi! How can we help?", "color": "#1f6feb",
               "prechat": {"name": "off", "email": "off", "question": "off"},
               "email_fallback": false})
    );

    // An empty or null welcome message or colour clears it (as image_url).
    let cleared = app
        .post(
            "/channels.update",
            &json!({"channel_id": id, "welcome_message": "", "color": null}),
            Some(&admin),
        )
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["welcome_message"], Value::Null);
    assert_eq!(cleared.body["color"], Value::Null);
}

#[tokio::test]
async fn a_disconnected_channel_refuses_visitors_and_shows_connected_false() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app
        .create_channel(&admin, json!({"name": "Gone soon"}))
        .await;
    let visitor = app.visitor_on(&id).await;
    let sent = app.send(&visitor.token, "before").await;
    assert_eq!(sent.status, 200, "{}", sent.body);

    let reply = app
        .post(
            "/channels.chatplugin.disconnect",
            &json!({"channel_id": id}),
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);
    assert_eq!(reply.body, Value::Null, "204 has no body");

    authenticate_from(&app, &id, None)
        .await
        .assert_error(404, "unknown-channel");
    app.send(&visitor.token, "after")
        .await
        .assert_error(404, "unknown-channel");
    app.post(
        "/chatplugin.authenticate",
        &json!({"resume_token": visitor.resume_token}),
        None,
    )
    .await
    .assert_error(404, "unknown-channel");

    let info = app
        .post("/channels.info", &json!({"channel_id": id}), Some(&admin))
        .await;
    assert_eq!(info.status, 200, "{}", info.body);
    assert_channel(&info.body, "Gone soon", None, &[], false);
    let list = app.post("/channels.list", &json!({}), Some(&admin)).await;
    let listed = list.body["data"]
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["id"] == id.as_str())
        .expect("a disconnected channel is still listed");
    assert_eq!(listed["connected"], false, "{listed}");

    // Other channels are untouched.
    let demo = authenticate_from(&app, &app.channel_id, None).await;
    assert_eq!(demo.status, 200, "{}", demo.body);
}

#[tokio::test]
async fn channel_calls_without_a_valid_admin_token_are_401() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let visitor = app.visitor().await;
    let forged = forge(&admin);
    let bad_tokens: [(&str, Option<&str>); 5] = [
        ("none", None),
        ("forged", Some(&forged)),
        ("garbage", Some("not-a-token")),
        ("visitor token", Some(&visitor.token)),
        ("resume token", Some(&visitor.resume_token)),
    ];
    let calls = [
        ("/channels.list", json!({})),
        ("/channels.info", json!({"channel_id": app.channel_id})),
        ("/channels.chatplugin.connect", json!({"name": "Intruder"})),
        (
            "/channels.update",
            json!({"channel_id": app.channel_id, "name": "Pwned"}),
        ),
        (
            "/channels.chatplugin.disconnect",
            json!({"channel_id": app.channel_id}),
        ),
    ];
    for (what, token) in bad_tokens {
        for (path, body) in &calls {
            let reply = app.post(path, body, token).await;
            assert_eq!(reply.status, 401, "{what} on {path}: {}", reply.body);
            reply.assert_error(401, "invalid-token");
        }
    }
    // Nothing was created, renamed or disconnected.
    let list = app.post("/channels.list", &json!({}), Some(&admin)).await;
    assert_eq!(list.status, 200, "{}", list.body);
    let data = list.body["data"].as_array().unwrap();
    assert_eq!(data.len(), 1, "{}", list.body);
    assert_eq!(data[0]["id"], app.channel_id.as_str());
    assert_eq!(data[0]["metadata"]["name"], "Demo");
    assert_eq!(data[0]["connected"], true);
}

#[tokio::test]
async fn an_admin_token_of_another_server_is_401() {
    let one = TestApp::spawn().await;
    let two = TestApp::spawn().await;
    let token_one = one.admin_token().await;
    let token_two = two.admin_token().await;

    one.post("/channels.list", &json!({}), Some(&token_two))
        .await
        .assert_error(401, "invalid-token");
    two.post("/channels.list", &json!({}), Some(&token_one))
        .await
        .assert_error(401, "invalid-token");
    two.post(
        "/channels.info",
        &json!({"channel_id": one.channel_id}),
        Some(&token_one),
    )
    .await
    .assert_error(401, "invalid-token");
    // With its own token, a server does not know the other's channel.
    two.post(
        "/channels.info",
        &json!({"channel_id": one.channel_id}),
        Some(&token_two),
    )
    .await
    .assert_error(404, "unknown-channel");
    let own = one
        .post("/channels.list", &json!({}), Some(&token_one))
        .await;
    assert_eq!(own.status, 200, "{}", own.body);
}

#[tokio::test]
async fn connecting_without_a_name_is_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for body in [
        json!({}),
        json!({"image_url": "https://x/y.png"}),
        json!({"name": null}),
        json!({"name": ""}),
        json!({"name": "   "}),
        json!({"name": 42}),
    ] {
        let reply = app
            .post("/channels.chatplugin.connect", &body, Some(&admin))
            .await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get("name").is_some(),
            "details should name `name` for {body}: {}",
            reply.body
        );
    }
    let list = app.post("/channels.list", &json!({}), Some(&admin)).await;
    assert_eq!(
        listed_ids(&list),
        vec![app.channel_id.clone()],
        "nothing was created"
    );
}

#[tokio::test]
async fn bad_allowed_origins_are_400_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for origins in [
        json!(["shop.example.com"]),
        json!(["ftp://x"]),
        json!(["https://shop.example.com", "https://shop.example.com/path"]),
        json!(["https://"]),
        json!([42]),
        json!("https://shop.example.com"),
        json!({"origin": "https://shop.example.com"}),
        json!(true),
    ] {
        let body = json!({"name": "Shop", "allowed_origins": origins});
        let reply = app
            .post("/channels.chatplugin.connect", &body, Some(&admin))
            .await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get("allowed_origins").is_some(),
            "details should name allowed_origins for {origins}: {}",
            reply.body
        );
        let update = json!({"channel_id": app.channel_id, "allowed_origins": origins});
        let reply = app.post("/channels.update", &update, Some(&admin)).await;
        reply.assert_error(400, "invalid-data");
    }
    let list = app.post("/channels.list", &json!({}), Some(&admin)).await;
    assert_eq!(
        listed_ids(&list),
        vec![app.channel_id.clone()],
        "nothing was created"
    );
    assert_eq!(
        list.body["data"][0]["allowed_origins"],
        json!([]),
        "demo unchanged"
    );
}

#[tokio::test]
async fn a_channel_id_that_is_missing_or_not_a_uuid_is_400_and_an_unknown_one_404() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for path in [
        "/channels.info",
        "/channels.update",
        "/channels.chatplugin.disconnect",
    ] {
        for body in [
            json!({}),
            json!({"channel_id": "not-a-uuid"}),
            json!({"channel_id": 12}),
            json!({"channel_id": ""}),
        ] {
            let reply = app.post(path, &body, Some(&admin)).await;
            reply.assert_error(400, "invalid-data");
            assert!(
                reply.body["details"].get("channel_id").is_some(),
                "{path} {body}: {}",
                reply.body
            );
        }
        let unknown = json!({"channel_id": uuid::Uuid::new_v4().to_string(), "name": "X"});
        app.post(path, &unknown, Some(&admin))
            .await
            .assert_error(404, "unknown-channel");
    }
}

#[tokio::test]
async fn malformed_json_is_400_invalid_data() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let bearer = format!("Bearer {admin}");
    for body in [
        "{\"name\": \"Shop\"",
        "not json",
        "[\"name\"]",
        "\"Shop\"",
        "null",
    ] {
        let reply = app
            .post_raw(
                "/channels.chatplugin.connect",
                body,
                &[
                    ("content-type", "application/json"),
                    ("authorization", &bearer),
                ],
            )
            .await;
        assert_eq!(reply.status, 400, "{body:?}: {}", reply.body);
        reply.assert_error(400, "invalid-data");
    }
}

#[tokio::test]
async fn a_body_over_64_kib_is_413() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let big = json!({"name": "Shop", "padding": "x".repeat(64 * 1024)});
    let reply = app
        .post("/channels.chatplugin.connect", &big, Some(&admin))
        .await;
    reply.assert_error(413, "payload-too-large");
    // Just under the limit is read (and then judged on its content).
    let name = "y".repeat(300);
    let mut under = json!({"name": "Shop", "padding": ""});
    let overhead = under.to_string().len();
    under["padding"] = json!("z".repeat(64 * 1024 - overhead));
    assert_eq!(under.to_string().len(), 64 * 1024);
    let reply = app
        .post("/channels.chatplugin.connect", &under, Some(&admin))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // A name over its own limit is 400, not a crash.
    let reply = app
        .post(
            "/channels.chatplugin.connect",
            &json!({"name": name}),
            Some(&admin),
        )
        .await;
    reply.assert_error(400, "invalid-data");
}

#[tokio::test]
async fn wrong_method_is_405_and_unknown_path_is_404_both_in_json() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let response = app
        .http
        .get(app.url("/channels.list"))
        .bearer_auth(&admin)
        .send()
        .await
        .unwrap();
    let content_type = response
        .headers()
        .get("content-type")
        .map(|v| v.to_str().unwrap().to_string());
    let reply = Reply::from(response).await;
    reply.assert_error(405, "method-not-allowed");
    assert!(
        content_type
            .as_deref()
            .is_some_and(|t| t.starts_with("application/json")),
        "{content_type:?}"
    );

    let reply = app.post("/channels.nope", &json!({}), Some(&admin)).await;
    reply.assert_error(404, "not-found");
    let response = app.http.get(app.url("/no/such/page")).send().await.unwrap();
    let reply = Reply::from(response).await;
    reply.assert_error(404, "not-found");
}

#[tokio::test]
async fn allowed_origins_decide_which_pages_may_authenticate() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app.create_channel(&admin, shop()).await;

    for origin in [
        Some("https://shop.example.com"),
        Some("https://a.example.org"),
        Some("https://deep.sub.example.org"),
        None,
    ] {
        let reply = authenticate_from(&app, &id, origin).await;
        assert_eq!(reply.status, 200, "{origin:?}: {}", reply.body);
        assert!(reply.body["token"].is_string(), "{}", reply.body);
        assert_eq!(reply.body["messages"], json!([]), "{}", reply.body);
    }
    for origin in [
        "https://evil.com",
        "null",
        "http://shop.example.com",
        "https://shop.example.com.evil.com",
        "https://example.org",
        "https://shop.example.com:8443",
    ] {
        authenticate_from(&app, &id, Some(origin))
            .await
            .assert_error(403, "origin-not-allowed");
    }
    // The demo channel allows any origin.
    let demo = authenticate_from(&app, &app.channel_id, Some("https://evil.com")).await;
    assert_eq!(demo.status, 200, "{}", demo.body);
}

#[tokio::test]
async fn a_send_from_a_disallowed_origin_is_403_and_not_stored() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app.create_channel(&admin, shop()).await;
    let visitor = app.visitor_on(&id).await;
    let bearer = format!("Bearer {}", visitor.token);

    let ok = post_with(
        &app,
        "/chatplugin.send",
        &json!({"message": {"text": "from the shop"}}),
        &[
            ("authorization", &bearer),
            ("origin", "https://shop.example.com"),
        ],
    )
    .await;
    assert_eq!(ok.status, 200, "{}", ok.body);

    let evil = post_with(
        &app,
        "/chatplugin.send",
        &json!({"message": {"text": "from evil"}}),
        &[("authorization", &bearer), ("origin", "https://evil.com")],
    )
    .await;
    evil.assert_error(403, "origin-not-allowed");

    // Resuming from the evil page is refused too.
    post_with(
        &app,
        "/chatplugin.authenticate",
        &json!({"resume_token": visitor.resume_token}),
        &[("origin", "https://evil.com")],
    )
    .await
    .assert_error(403, "origin-not-allowed");

    assert_eq!(app.contents(&visitor).await, ["from the shop"]);
}

#[tokio::test]
async fn emptying_allowed_origins_opens_the_channel_to_every_page() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let id = app.create_channel(&admin, shop()).await;
    let visitor = app.visitor_on(&id).await;
    let bearer = format!("Bearer {}", visitor.token);
    authenticate_from(&app, &id, Some("https://evil.com"))
        .await
        .assert_error(403, "origin-not-allowed");

    let updated = app
        .post(
            "/channels.update",
            &json!({"channel_id": id, "allowed_origins": []}),
            Some(&admin),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    assert_channel(&updated.body, "Shop", Some("https://x/y.png"), &[], true);

    let reply = authenticate_from(&app, &id, Some("https://evil.com")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    // An existing visitor token follows the channel's current setting.
    let sent = post_with(
        &app,
        "/chatplugin.send",
        &json!({"message": {"text": "now anywhere"}}),
        &[("authorization", &bearer), ("origin", "https://evil.com")],
    )
    .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    assert_eq!(sent.body["content"], "now anywhere");
}

#[tokio::test]
async fn browsers_get_a_cors_preflight_answer_for_authenticate() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .request(
            reqwest::Method::OPTIONS,
            app.url("/chatplugin.authenticate"),
        )
        .header("origin", "https://shop.example.com")
        .header("access-control-request-method", "POST")
        .header("access-control-request-headers", "content-type")
        .send()
        .await
        .unwrap();
    assert!(response.status().is_success(), "{}", response.status());
    let header = |name: &str| {
        response
            .headers()
            .get(name)
            .map(|v| v.to_str().unwrap().to_ascii_lowercase())
    };
    assert_eq!(
        header("access-control-allow-origin").as_deref(),
        Some("https://shop.example.com")
    );
    let methods = header("access-control-allow-methods").unwrap_or_default();
    assert!(methods.contains("post"), "allow-methods: {methods:?}");
    let headers = header("access-control-allow-headers").unwrap_or_default();
    assert!(
        headers.contains("content-type"),
        "allow-headers: {headers:?}"
    );

    // The real request from that page carries the CORS header too.
    let reply = authenticate_from(&app, &app.channel_id, Some("https://shop.example.com")).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply
            .headers
            .get("access-control-allow-origin")
            .map(|v| v.to_str().unwrap()),
        Some("https://shop.example.com")
    );
}

/// A visitor of `channel` connected from `origin` and subscribed to both queues.
async fn live_visitor(app: &TestApp, channel: &str, origin: &str) -> crate::helpers::Stomp {
    use chatgate::ws::stomp::{Command, StompFrame};
    let visitor = app.visitor_on(channel).await;
    let mut stomp = crate::helpers::Stomp::open(&app.ws_url(), Some(origin))
        .await
        .unwrap();
    stomp
        .send(
            StompFrame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", "0,0")
                .header("Authorization", format!("Bearer {}", visitor.token)),
        )
        .await;
    assert_eq!(stomp.recv().await.unwrap().command, Command::Connected);
    stomp
        .send(
            StompFrame::new(Command::Subscribe)
                .header("id", "m")
                .header("destination", "/queue/message")
                .header("receipt", "subscribed"),
        )
        .await;
    assert_eq!(stomp.recv().await.unwrap().command, Command::Receipt);
    stomp
}

/// The socket's next frames up to its close: the first must be an ERROR
/// naming `status`; nothing else is stored or acknowledged.
async fn ends_with_error(stomp: &mut crate::helpers::Stomp, status: &str) {
    use chatgate::ws::stomp::Command;
    let frame = stomp.recv().await.expect("an ERROR frame");
    assert_eq!(frame.command, Command::Error, "{frame:?}");
    assert!(frame.get("message").unwrap().contains(status), "{frame:?}");
    assert_eq!(stomp.recv().await, None, "closed after the ERROR");
}

#[tokio::test]
async fn disconnecting_a_channel_ends_its_visitors_live_sessions_and_refuses_their_sends() {
    use chatgate::ws::stomp::{Command, StompFrame};
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let channel = app
        .create_channel(
            &admin,
            json!({"name": "Shop", "allowed_origins": SHOP_ORIGINS}),
        )
        .await;
    let mut stomp = live_visitor(&app, &channel, "https://shop.example.com").await;
    let disconnected = app
        .post(
            "/channels.chatplugin.disconnect",
            &json!({"channel_id": channel}),
            Some(&admin),
        )
        .await;
    assert_eq!(disconnected.status, 204, "{}", disconnected.body);
    // A send after the disconnect answered: no RECEIPT, no message.
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/send")
                .header("receipt", "late")
                .body(json!({"message": {"text": "too late"}}).to_string()),
        )
        .await;
    ends_with_error(&mut stomp, "404 unknown-channel").await;
}

#[tokio::test]
async fn narrowing_allowed_origins_ends_the_sessions_of_origins_no_longer_allowed() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let channel = app
        .create_channel(
            &admin,
            json!({"name": "Shop", "allowed_origins": SHOP_ORIGINS}),
        )
        .await;
    let mut dropped = live_visitor(&app, &channel, "https://shop.example.com").await;
    let mut kept = live_visitor(&app, &channel, "https://blog.example.org").await;
    let updated = app
        .post(
            "/channels.update",
            &json!({"channel_id": channel, "allowed_origins": ["https://*.example.org"]}),
            Some(&admin),
        )
        .await;
    assert_eq!(updated.status, 200, "{}", updated.body);
    ends_with_error(&mut dropped, "403 origin-not-allowed").await;
    // The session whose origin is still allowed goes on: a send is stored.
    use chatgate::ws::stomp::{Command, StompFrame};
    kept.send(
        StompFrame::new(Command::Send)
            .header("destination", "/app/send")
            .header("receipt", "still-here")
            .body(json!({"message": {"text": "still here"}}).to_string()),
    )
    .await;
    let mut receipt = false;
    let mut message = false;
    while !(receipt && message) {
        let frame = kept.recv().await.expect("a frame");
        match frame.command {
            Command::Receipt => receipt = true,
            Command::Message => message = true,
            other => panic!("unexpected {other:?}: {frame:?}"),
        }
    }
}
