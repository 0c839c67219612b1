//! Bounded input, and client errors as client errors: a search query has a
//! length cap and no control characters (400 naming `search`, not a 500 nor
//! a backend's own answer), a user's distinct reactions
//! on one message are capped (409 `too-many-reactions`), and every URL that
//! clients render (a channel's `image_url`, an agent's `avatar_url`) is
//! http(s), on create and on update.

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, TestApp};

/// Asserts a 400 `invalid-data` whose details name `field`.
fn assert_invalid_field(reply: &Reply, field: &str) {
    reply.assert_error(400, "invalid-data");
    assert!(
        reply.body["details"].get(field).is_some(),
        "details should name {field}: {}",
        reply.body
    );
}

/// An agent room of the admin and a colleague, with one message in it.
async fn room_with_a_message(app: &TestApp) -> (AgentClient, AgentClient, String, Value) {
    let admin = AgentClient::admin(app).await;
    let colleague = admin.new_agent(app, "Colleague").await;
    let room = admin.create_room(&[&colleague]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let message = admin.post(&room, "searchable words here").await;
    (admin, colleague, room, message)
}

#[tokio::test]
async fn a_search_longer_than_the_cap_is_400_naming_search_on_every_door_that_searches() {
    let app = TestApp::spawn().await;
    let (admin, _, room, _) = room_with_a_message(&app).await;
    let doors = [
        "/users/me/rooms/messages?search=".to_string(),
        format!("/users/me/rooms/{room}/messages?search="),
    ];
    for door in &doors {
        // At the cap (256 characters, multi-byte ones count as one): served.
        let at_cap = format!("{door}{}", "é".repeat(256));
        let reply = admin.call("GET", &at_cap, None).await;
        assert_eq!(reply.status, 200, "{door}: {}", reply.body);
        // One more, and a 50 KB query (a 500 before): 400 naming the field.
        for length in [257, 50_000] {
            let reply = admin
                .call("GET", &format!("{door}{}", "a".repeat(length)), None)
                .await;
            assert_invalid_field(&reply, "search");
            assert!(
                reply.body["message"].as_str().unwrap().contains("256"),
                "{}",
                reply.body
            );
        }
    }
    // A search that fits still finds what it looks for.
    let found = admin
        .call("GET", "/users/me/rooms/messages?search=words", None)
        .await;
    assert_eq!(found.status, 200, "{}", found.body);
    assert_eq!(found.body["items"].as_array().unwrap().len(), 1);
}

#[tokio::test]
async fn a_search_with_a_control_character_is_400_naming_search_on_every_door_that_searches() {
    let app = TestApp::spawn().await;
    let (admin, _, room, _) = room_with_a_message(&app).await;
    // A visitor's room waiting in the queue: the queue preview and the
    // admins' supervision search it too.
    let visitor = app.visitor().await;
    assert_eq!(
        app.send(&visitor.token, "searchable words").await.status,
        200
    );
    let waiting = &visitor.conversation_id;
    let canned = admin
        .call(
            "POST",
            "/canned_responses",
            Some(json!({"shortcut": "hi", "title": "Greeting words", "content": "Hello!"})),
        )
        .await;
    assert_eq!(canned.status, 201, "{}", canned.body);
    let doors = [
        "/users/me/rooms/messages?search=".to_string(),
        format!("/users/me/rooms/{room}/messages?search="),
        format!("/queues/{waiting}/messages?search="),
        format!("/rooms/{waiting}/messages?search="),
        "/canned_responses?search=".to_string(),
    ];
    for door in &doors {
        // NUL (which PostgreSQL text cannot hold), other C0 controls, DEL
        // and a C1 control, alone or inside words: the same 400 on every
        // backend.
        for bad in [
            "%00",
            "words%00",
            "a%01b",
            "%09",
            "words%0Ahere",
            "%1F",
            "%7F",
            "%C2%85",
        ] {
            let reply = admin.call("GET", &format!("{door}{bad}"), None).await;
            assert_invalid_field(&reply, "search");
            assert!(
                reply.body["message"]
                    .as_str()
                    .unwrap()
                    .contains("control characters"),
                "{door}{bad}: {}",
                reply.body
            );
        }
        // The same words without them are served, and found.
        let reply = admin.call("GET", &format!("{door}words"), None).await;
        assert_eq!(reply.status, 200, "{door}: {}", reply.body);
        assert_eq!(
            reply.body["items"].as_array().unwrap().len(),
            1,
            "{door}: {}",
            reply.body
        );
    }
    // The canned responses' search has the messages' length cap too.
    let long = admin
        .call(
            "GET",
            &format!("/canned_responses?search={}", "a".repeat(257)),
            None,
        )
        .await;
    assert_invalid_field(&long, "search");
}

#[tokio::test]
async fn the_search_cap_is_configurable() {
    let app = TestApp::spawn_with(|c| c.max_search_chars = 5).await;
    let (admin, _, _, _) = room_with_a_message(&app).await;
    let ok = admin
        .call("GET", "/users/me/rooms/messages?search=words", None)
        .await;
    assert_eq!(ok.status, 200, "{}", ok.body);
    let long = admin
        .call("GET", "/users/me/rooms/messages?search=words%20here", None)
        .await;
    assert_invalid_field(&long, "search");
}

async fn react(agent: &AgentClient, room: &str, message: &Value, emoji: &str) -> Reply {
    let path = format!(
        "/users/me/rooms/{room}/messages/{}/reactions",
        message["uuid"].as_str().unwrap()
    );
    agent
        .call("POST", &path, Some(json!({ "emoji": emoji })))
        .await
}

/// The number of reactions `user` has on `message` as the room lists it.
async fn reactions_of(agent: &AgentClient, room: &str, message: &Value, user: &str) -> usize {
    let listed = agent.messages(room).await;
    let current = listed
        .iter()
        .find(|m| m["uuid"] == message["uuid"])
        .expect("the message is listed");
    current["reactions"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|r| r["user_uuid"] == user)
        .count()
}

#[tokio::test]
async fn a_users_fifty_first_distinct_reaction_on_a_message_is_409_too_many_reactions() {
    let app = TestApp::spawn().await;
    let (admin, colleague, room, message) = room_with_a_message(&app).await;
    let emojis: Vec<&str> = emojis::iter().map(|e| e.as_str()).take(52).collect();
    for emoji in &emojis[..50] {
        let reply = react(&admin, &room, &message, emoji).await;
        assert!(
            reply.status < 300,
            "{emoji}: {} {}",
            reply.status,
            reply.body
        );
    }
    let refused = react(&admin, &room, &message, emojis[50]).await;
    refused.assert_error(409, "too-many-reactions");
    assert_eq!(refused.body["details"]["limit"], 50, "{}", refused.body);
    // Nothing was stored by the refusal.
    assert_eq!(reactions_of(&admin, &room, &message, &admin.uuid).await, 50);
    // Repeating one it has is still "already exists", not "too many".
    react(&admin, &room, &message, emojis[0])
        .await
        .assert_error(409, "reaction-already-exists");
    // The cap is per user: a colleague in the room still reacts.
    let reply = react(&colleague, &room, &message, emojis[51]).await;
    assert!(reply.status < 300, "{}", reply.body);
    // Taking one away makes room for another.
    let removed = admin
        .call(
            "DELETE",
            &format!(
                "/users/me/rooms/{room}/messages/{}/reactions/{}",
                message["uuid"].as_str().unwrap(),
                emojis[0]
                    .bytes()
                    .map(|b| format!("%{b:02X}"))
                    .collect::<String>()
            ),
            None,
        )
        .await;
    assert!(removed.status < 300, "{}", removed.body);
    let reply = react(&admin, &room, &message, emojis[50]).await;
    assert!(reply.status < 300, "{}", reply.body);
}

#[tokio::test]
async fn sixty_reactions_sent_at_once_store_exactly_the_fifty_allowed() {
    let app = TestApp::spawn().await;
    let (admin, _, room, message) = room_with_a_message(&app).await;
    let emojis: Vec<&str> = emojis::iter().map(|e| e.as_str()).take(60).collect();
    let replies = futures_util::future::join_all(
        emojis
            .iter()
            .map(|emoji| react(&admin, &room, &message, emoji)),
    )
    .await;
    let added = replies.iter().filter(|r| r.status < 300).count();
    let refused = replies
        .iter()
        .filter(|r| r.status == 409 && r.body["error_id"] == "too-many-reactions")
        .count();
    assert_eq!((added, refused), (50, 10));
    assert_eq!(reactions_of(&admin, &room, &message, &admin.uuid).await, 50);
}

#[tokio::test]
async fn the_reaction_cap_is_configurable() {
    let app = TestApp::spawn_with(|c| c.max_reactions_per_user = 2).await;
    let (admin, _, room, message) = room_with_a_message(&app).await;
    for emoji in ["👍", "🎉"] {
        assert!(react(&admin, &room, &message, emoji).await.status < 300);
    }
    react(&admin, &room, &message, "❤️")
        .await
        .assert_error(409, "too-many-reactions");
}

const NOT_WEB_URLS: [&str; 6] = [
    "javascript:alert(document.cookie)",
    "JavaScript:alert(1)",
    "data:image/svg+xml;base64,PHN2Zz4=",
    "//evil.example/logo.png",
    "java\tscript:alert(1)",
    "https://",
];

#[tokio::test]
async fn a_channel_image_url_must_be_http_or_https_on_create_and_update() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    for bad in NOT_WEB_URLS {
        let reply = app
            .post(
                "/channels.chatplugin.connect",
                &json!({"name": "Shop", "image_url": bad}),
                Some(&admin),
            )
            .await;
        assert_invalid_field(&reply, "image_url");
    }
    // None of the refused creates made a channel.
    let listed = app.post("/channels.list", &json!({}), Some(&admin)).await;
    assert_eq!(
        listed.body["data"].as_array().unwrap().len(),
        1,
        "{}",
        listed.body
    );

    let id = app
        .create_channel(
            &admin,
            json!({"name": "Shop", "image_url": "https://cdn.example.com/logo.png"}),
        )
        .await;
    for bad in NOT_WEB_URLS {
        let reply = app
            .post(
                "/channels.update",
                &json!({"channel_id": id, "image_url": bad}),
                Some(&admin),
            )
            .await;
        assert_invalid_field(&reply, "image_url");
    }
    // The image is unchanged, for admins and for the widget.
    let info = app
        .post("/channels.info", &json!({"channel_id": id}), Some(&admin))
        .await;
    assert_eq!(
        info.body["metadata"]["image_url"],
        "https://cdn.example.com/logo.png"
    );
    let visitor = app
        .post("/chatplugin.authenticate", &json!({"channel_id": id}), None)
        .await;
    assert_eq!(
        visitor.body["channel"]["image_url"], "https://cdn.example.com/logo.png",
        "{}",
        visitor.body
    );
    // Clearing it is still allowed.
    let cleared = app
        .post(
            "/channels.update",
            &json!({"channel_id": id, "image_url": null}),
            Some(&admin),
        )
        .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
}

#[tokio::test]
async fn an_agent_avatar_url_must_be_http_or_https_on_create_and_update() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    for bad in NOT_WEB_URLS {
        let reply = admin
            .call(
                "POST",
                "/agents",
                Some(json!({"email": "x@example.com", "display_name": "X",
                            "password": "correct horse", "avatar_url": bad})),
            )
            .await;
        assert_invalid_field(&reply, "avatar_url");
    }
    let agent = admin.new_agent(&app, "Ana").await;
    for bad in NOT_WEB_URLS {
        let reply = admin
            .call(
                "PATCH",
                &format!("/agents/{}", agent.uuid),
                Some(json!({ "avatar_url": bad })),
            )
            .await;
        assert_invalid_field(&reply, "avatar_url");
    }
    let now = admin
        .call("GET", &format!("/agents/{}", agent.uuid), None)
        .await;
    assert_eq!(now.body["avatar_url"], Value::Null, "{}", now.body);
}
