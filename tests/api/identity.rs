//! Identified visitors, several conversations per visitor, and blocking
//! (desk-api.md, "Support desk"): `identity` on `/chatplugin.authenticate`
//! signed with the channel's `identity_secret` (401 `identity-not-verified`
//! otherwise), `/chatplugin.conversations`, `new_conversation`, and
//! `PUT|DELETE /users/me/rooms/<room>/block` (403 `blocked` at every door).

use chatgate::domain::identity::sign;
use chatgate::ws::stomp::{Command, StompFrame};
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, Stomp, TestApp, VisitorSession};

/// The channel's identity secret, as its admin reads it (`channels.info`).
async fn secret_of(app: &TestApp, admin: &AgentClient, channel: &str) -> String {
    let reply = app
        .post(
            "/channels.info",
            &json!({"channel_id": channel}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let secret = reply.body["identity_secret"].as_str().unwrap().to_string();
    assert_eq!(secret.len(), 64, "{secret}");
    secret
}

async fn authenticate(app: &TestApp, body: Value) -> Reply {
    app.post("/chatplugin.authenticate", &body, None).await
}

/// An identified visitor's authenticate body on the demo channel.
fn identified(app: &TestApp, secret: &str, id: &str) -> Value {
    json!({
        "channel_id": app.channel_id,
        "identity": {"id": id, "hash": sign(secret, id), "name": "Ada", "email": "ada@example.com"},
    })
}

async fn signed_in(app: &TestApp, secret: &str, id: &str) -> VisitorSession {
    let reply = authenticate(app, identified(app, secret, id)).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["verified"], true, "{}", reply.body);
    VisitorSession::from(&reply.body)
}

async fn conversations(app: &TestApp, token: &str) -> Vec<Value> {
    let reply = app
        .post("/chatplugin.conversations", &json!({}), Some(token))
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"].as_array().unwrap().clone()
}

fn ids(items: &[Value]) -> Vec<String> {
    items
        .iter()
        .map(|c| c["conversation_id"].as_str().unwrap().to_string())
        .collect()
}

async fn room(admin: &AgentClient, id: &str) -> Value {
    let reply = admin.call("GET", &format!("/rooms/{id}"), None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

async fn set_state(agent: &AgentClient, room: &str, state: &str) {
    let reply = agent
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/state"),
            Some(json!({"state": state})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
}

/// A server whose authenticate budget these many calls from one IP fit in.
async fn spawn() -> TestApp {
    TestApp::spawn_with(roomy).await
}

fn roomy(config: &mut chatgate::Config) {
    config.authenticate_per_minute = 10_000;
    config.authenticate_burst = 1_000;
}

#[tokio::test]
async fn a_signed_identity_finds_its_conversation_from_any_browser() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let secret = secret_of(&app, &admin, &app.channel_id).await;
    // The secret is stable: read again, the same.
    assert_eq!(secret_of(&app, &admin, &app.channel_id).await, secret);

    let laptop = signed_in(&app, &secret, "customer-42").await;
    assert_eq!(
        app.send(&laptop.token, "Where is my order?").await.status,
        200
    );

    // Another browser, no resume token: the same conversation and its history.
    let phone = signed_in(&app, &secret, "customer-42").await;
    assert_eq!(phone.conversation_id, laptop.conversation_id);
    assert_eq!(app.contents(&phone).await, ["Where is my order?"]);
    assert_eq!(app.send(&phone.token, "From my phone").await.status, 200);
    assert_eq!(
        app.contents(&laptop).await,
        ["Where is my order?", "From my phone"]
    );

    // Agents see "verified" and the name the site gave; an anonymous room is not.
    let shown = room(&admin, &laptop.conversation_id).await;
    assert_eq!(shown["verified"], true, "{shown}");
    assert_eq!(shown["blocked"], false, "{shown}");
    let anonymous = app.visitor().await;
    assert_eq!(app.send(&anonymous.token, "hi").await.status, 200);
    assert_eq!(
        room(&admin, &anonymous.conversation_id).await["verified"],
        false
    );
    assert_eq!(admin.answer(&laptop.conversation_id).await.status, 200);
    let context = admin
        .call(
            "GET",
            &format!("/users/me/rooms/{}/visitor", laptop.conversation_id),
            None,
        )
        .await;
    assert_eq!(context.status, 200, "{}", context.body);
    assert_eq!(context.body["name"], "Ada", "{}", context.body);
    assert_eq!(context.body["email"], "ada@example.com", "{}", context.body);

    // Another customer gets a conversation of its own.
    let other = signed_in(&app, &secret, "customer-43").await;
    assert_ne!(other.conversation_id, laptop.conversation_id);
    assert!(app.contents(&other).await.is_empty());
}

#[tokio::test]
async fn identities_not_signed_by_the_channels_secret_are_refused() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let secret = secret_of(&app, &admin, &app.channel_id).await;
    let victim = signed_in(&app, &secret, "victim").await;
    assert_eq!(
        app.send(&victim.token, "my private words").await.status,
        200
    );

    let other_channel = app
        .create_channel(&admin.token, json!({"name": "Other site"}))
        .await;
    let other_secret = secret_of(&app, &admin, &other_channel).await;
    assert_ne!(other_secret, secret);
    let good = sign(&secret, "victim");
    let refused = [
        json!({"id": "victim"}),
        json!({"id": "victim", "hash": null}),
        json!({"id": "victim", "hash": ""}),
        json!({"id": "victim", "hash": "0".repeat(64)}),
        json!({"id": "victim", "hash": sign(&secret, "attacker")}),
        json!({"id": "victim", "hash": sign(&other_secret, "victim")}),
        json!({"id": "victim", "hash": sign("guessed", "victim")}),
        json!({"id": "Victim", "hash": good}),
        json!({"id": "victim ", "hash": good}),
        json!({"id": "victim", "hash": &good[..63]}),
        json!({"id": "victim", "hash": format!("{good}00")}),
        json!({"id": "victim", "hash": format!("0x{}", &good[2..])}),
        json!({"id": "victim", "hash": format!("{}=", &good[..63])}),
    ];
    for identity in refused {
        let reply = authenticate(
            &app,
            json!({"channel_id": app.channel_id, "identity": identity}),
        )
        .await;
        reply.assert_error(401, "identity-not-verified");
        assert!(reply.body.get("token").is_none(), "{}", reply.body);
        assert!(
            !reply.body.to_string().contains("my private words"),
            "{}",
            reply.body
        );
    }
    // The other channel's secret signs for the other channel only.
    let there = authenticate(
        &app,
        json!({"channel_id": other_channel,
               "identity": {"id": "victim", "hash": sign(&other_secret, "victim")}}),
    )
    .await;
    assert_eq!(there.status, 200, "{}", there.body);
    assert_ne!(
        there.body["conversation_id"],
        victim.conversation_id.as_str()
    );
    assert_eq!(there.body["messages"], json!([]));

    // Hex in capitals is the same hash.
    let upper = authenticate(
        &app,
        json!({"channel_id": app.channel_id,
               "identity": {"id": "victim", "hash": good.to_uppercase()}}),
    )
    .await;
    assert_eq!(upper.status, 200, "{}", upper.body);
    assert_eq!(
        upper.body["conversation_id"],
        victim.conversation_id.as_str()
    );

    // Malformed identities are 400 naming the field, before any check.
    let long = "x".repeat(256);
    for (identity, field) in [
        (json!("victim"), "identity"),
        (json!({"hash": good}), "identity.id"),
        (json!({"id": 42, "hash": good}), "identity.id"),
        (json!({"id": "", "hash": good}), "identity.id"),
        (
            json!({"id": long, "hash": sign(&secret, &long)}),
            "identity.id",
        ),
        (
            json!({"id": "a\nb", "hash": sign(&secret, "a\nb")}),
            "identity.id",
        ),
        (json!({"id": "victim", "hash": 7}), "identity.hash"),
        (
            json!({"id": "victim", "hash": good, "email": "nope"}),
            "identity.email",
        ),
    ] {
        let reply = authenticate(
            &app,
            json!({"channel_id": app.channel_id, "identity": identity}),
        )
        .await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get(field).is_some(),
            "{field}: {}",
            reply.body
        );
    }
    // Long but within bounds, and any characters: signed bytes are what count.
    for id in ["x".repeat(255), "José 😀 <jose@example.com>".to_string()] {
        let reply = authenticate(
            &app,
            json!({"channel_id": app.channel_id, "identity": {"id": id, "hash": sign(&secret, &id)}}),
        )
        .await;
        assert_eq!(reply.status, 200, "{}", reply.body);
    }
    // Nothing the refusals did changed the victim's conversation.
    assert_eq!(app.contents(&victim).await, ["my private words"]);
}

#[tokio::test]
async fn an_identity_wins_over_a_resume_token_of_another_visitor() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let secret = secret_of(&app, &admin, &app.channel_id).await;
    let alice = signed_in(&app, &secret, "alice").await;
    assert_eq!(app.send(&alice.token, "alice's secret").await.status, 200);
    let anonymous = app.visitor().await;
    assert_eq!(
        app.send(&anonymous.token, "anonymous words").await.status,
        200
    );

    // Bob's browser kept Alice's resume token (a shared computer), then an
    // anonymous one: Bob gets his own conversation, never theirs.
    for foreign in [&alice.resume_token, &anonymous.resume_token] {
        let mut body = identified(&app, &secret, "bob");
        body["resume_token"] = json!(foreign);
        let reply = authenticate(&app, body).await;
        assert_eq!(reply.status, 200, "{}", reply.body);
        let bob = VisitorSession::from(&reply.body);
        assert_ne!(bob.conversation_id, alice.conversation_id);
        assert_ne!(bob.conversation_id, anonymous.conversation_id);
        assert_eq!(reply.body["messages"], json!([]));
        assert!(!reply.body.to_string().contains("secret"), "{}", reply.body);
        assert!(conversations(&app, &bob.token)
            .await
            .iter()
            .all(|c| c["conversation_id"] != alice.conversation_id.as_str()
                && c["conversation_id"] != anonymous.conversation_id.as_str()));
    }
    // A resume token of a forged or expired kind does not stop the identity.
    let mut body = identified(&app, &secret, "alice");
    body["resume_token"] = json!("not-a-token");
    let reply = authenticate(&app, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(
        reply.body["conversation_id"],
        alice.conversation_id.as_str()
    );
    // Without a valid identity, the resume token is not a way in either.
    let mut body = json!({"resume_token": alice.resume_token, "channel_id": app.channel_id,
                          "identity": {"id": "bob", "hash": sign(&secret, "alice")}});
    authenticate(&app, body.take())
        .await
        .assert_error(401, "identity-not-verified");
}

/// Rotates the demo channel's identity secret as its admin; the new secret.
async fn rotate(app: &TestApp, admin: &AgentClient) -> String {
    let rotated = app
        .post(
            "/channels.identity.rotate",
            &json!({"channel_id": app.channel_id}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(rotated.status, 200, "{}", rotated.body);
    rotated.body["identity_secret"]
        .as_str()
        .unwrap()
        .to_string()
}

#[tokio::test]
async fn the_previous_secret_verifies_for_the_grace_period_only() {
    // The default grace period (24 h): the old secret still verifies.
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let old = secret_of(&app, &admin, &app.channel_id).await;
    let before = signed_in(&app, &old, "kim").await;
    assert_eq!(app.send(&before.token, "hello").await.status, 200);
    let new = rotate(&app, &admin).await;
    assert_ne!(new, old);
    assert_eq!(secret_of(&app, &admin, &app.channel_id).await, new);
    let by_old = signed_in(&app, &old, "kim").await;
    let by_new = signed_in(&app, &new, "kim").await;
    assert_eq!(by_old.conversation_id, before.conversation_id);
    assert_eq!(by_new.conversation_id, before.conversation_id);

    // Only admins rotate, and only their own tenant's channels.
    let agent = admin.new_agent(&app, "plain").await;
    app.post(
        "/channels.identity.rotate",
        &json!({"channel_id": app.channel_id}),
        Some(&agent.token),
    )
    .await
    .assert_error(403, "forbidden");
    let stranger = AgentClient::other_tenant_admin(&app).await;
    for path in ["/channels.identity.rotate", "/channels.info"] {
        let reply = app
            .post(
                path,
                &json!({"channel_id": app.channel_id}),
                Some(&stranger.token),
            )
            .await;
        assert_eq!(reply.status, 404, "{path}: {}", reply.body);
    }
    assert_eq!(secret_of(&app, &admin, &app.channel_id).await, new);

    // Past the grace period (set to none here, instead of waiting a day):
    // the old secret is refused, the new one verifies.
    let app = TestApp::spawn_with(|c| {
        roomy(c);
        c.identity_secret_grace = 0;
    })
    .await;
    let admin = AgentClient::admin(&app).await;
    let old = secret_of(&app, &admin, &app.channel_id).await;
    let new = rotate(&app, &admin).await;
    authenticate(&app, identified(&app, &old, "kim"))
        .await
        .assert_error(401, "identity-not-verified");
    signed_in(&app, &new, "kim").await;
    // A second rotation leaves only the newest: the first secret never returns.
    let newest = rotate(&app, &admin).await;
    for stale in [&old, &new] {
        authenticate(&app, identified(&app, stale, "kim"))
            .await
            .assert_error(401, "identity-not-verified");
    }
    signed_in(&app, &newest, "kim").await;
}

#[tokio::test]
async fn an_identified_visitor_starts_new_conversations_and_reopens_old_ones() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let secret = secret_of(&app, &admin, &app.channel_id).await;
    let first = signed_in(&app, &secret, "sam").await;
    assert_eq!(app.send(&first.token, "first question").await.status, 200);
    assert_eq!(admin.answer(&first.conversation_id).await.status, 200);
    set_state(&admin, &first.conversation_id, "closed").await;

    // "New conversation" from another device.
    let mut body = identified(&app, &secret, "sam");
    body["new_conversation"] = json!(true);
    let reply = authenticate(&app, body).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let second = VisitorSession::from(&reply.body);
    assert_ne!(second.conversation_id, first.conversation_id);
    assert_eq!(reply.body["messages"], json!([]));
    assert_eq!(app.send(&second.token, "second question").await.status, 200);

    // Listed newest first, with state and last message, from either token.
    for token in [&second.token, &first.token] {
        let items = conversations(&app, token).await;
        assert_eq!(
            ids(&items),
            [
                second.conversation_id.clone(),
                first.conversation_id.clone()
            ]
        );
        assert_eq!(items[0]["state"], "queued");
        assert_eq!(items[1]["state"], "closed");
        assert_eq!(items[0]["last_message"]["content"], "second question");
        // What someone wrote last, not the close notice after it.
        assert_eq!(items[1]["last_message"]["content"], "first question");
    }
    // The identity's current conversation is now the newest one.
    assert_eq!(
        signed_in(&app, &secret, "sam").await.conversation_id,
        second.conversation_id
    );
    // Each listed resume token opens its conversation (with the identity too).
    let items = conversations(&app, &second.token).await;
    let mut body = identified(&app, &secret, "sam");
    body["resume_token"] = items[1]["resume_token"].clone();
    let reopened = authenticate(&app, body).await;
    assert_eq!(
        reopened.body["conversation_id"],
        first.conversation_id.as_str()
    );
    assert_eq!(reopened.body["messages"][0]["content"], "first question");

    // Never another visitor's: another identity, an anonymous visitor.
    let other = signed_in(&app, &secret, "not-sam").await;
    assert!(conversations(&app, &other.token).await.is_empty());
    let stranger = app.visitor().await;
    assert!(conversations(&app, &stranger.token).await.is_empty());

    // Bad calls.
    app.post("/chatplugin.conversations", &json!({}), None)
        .await
        .assert_error(401, "invalid-token");
    app.post(
        "/chatplugin.conversations",
        &json!({}),
        Some(&first.resume_token),
    )
    .await
    .assert_error(401, "invalid-token");
    let mut body = identified(&app, &secret, "sam");
    body["new_conversation"] = json!("yes");
    authenticate(&app, body)
        .await
        .assert_error(400, "invalid-data");
}

#[tokio::test]
async fn an_anonymous_visitors_conversations_are_linked_by_its_resume_tokens() {
    let app = spawn().await;
    let first = app.visitor().await;
    assert_eq!(app.send(&first.token, "one").await.status, 200);
    let reply = authenticate(
        &app,
        json!({"resume_token": first.resume_token, "new_conversation": true}),
    )
    .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["verified"], false);
    let second = VisitorSession::from(&reply.body);
    assert_ne!(second.conversation_id, first.conversation_id);
    // Not begun yet: only the first is listed, then both.
    assert_eq!(
        ids(&conversations(&app, &second.token).await),
        vec![first.conversation_id.clone()]
    );
    assert_eq!(app.send(&second.token, "two").await.status, 200);
    // A third from the second's resume token: the same chain.
    let reply = authenticate(
        &app,
        json!({"resume_token": second.resume_token, "new_conversation": true}),
    )
    .await;
    let third = VisitorSession::from(&reply.body);
    assert_eq!(app.send(&third.token, "three").await.status, 200);
    let expected = [
        third.conversation_id.clone(),
        second.conversation_id.clone(),
        first.conversation_id.clone(),
    ];
    for session in [&first, &second, &third] {
        assert_eq!(ids(&conversations(&app, &session.token).await), expected);
    }
    // Another anonymous visitor sees only its own.
    let other = app.visitor().await;
    assert_eq!(app.send(&other.token, "mine").await.status, 200);
    assert_eq!(
        ids(&conversations(&app, &other.token).await),
        vec![other.conversation_id.clone()]
    );
}

fn text_file() -> Form {
    Form::new().part(
        "file",
        Part::bytes(b"hello".to_vec())
            .file_name("a.txt")
            .mime_str("text/plain")
            .unwrap(),
    )
}

async fn upload(app: &TestApp, token: &str) -> Reply {
    let req = app
        .http
        .post(app.url("/chatplugin.upload"))
        .multipart(text_file())
        .header("authorization", format!("Bearer {token}"));
    Reply::from(req.send().await.unwrap()).await
}

async fn block(agent: &AgentClient, room: &str, method: &str) -> Reply {
    agent
        .call(method, &format!("/users/me/rooms/{room}/block"), None)
        .await
}

#[tokio::test]
async fn a_blocked_visitor_is_refused_at_every_door_until_unblocked() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "spam").await.status, 200);
    assert_eq!(admin.answer(&visitor.conversation_id).await.status, 200);
    // An open socket, from before the block.
    let (mut socket, _) = Stomp::connect(&app, &visitor.token).await;
    let bystander = app.visitor().await;

    // Another tenant's admin cannot block it, nor can a plain agent who
    // does not serve it.
    let stranger = AgentClient::other_tenant_admin(&app).await;
    block(&stranger, &visitor.conversation_id, "PUT")
        .await
        .assert_error(404, "unknown-room");
    let plain = admin.new_agent(&app, "plain").await;
    block(&plain, &visitor.conversation_id, "PUT")
        .await
        .assert_error(404, "unknown-room");
    block(&admin, "not-a-room", "PUT")
        .await
        .assert_error(404, "unknown-room");
    // An agent room has no visitor to block.
    let team = admin.create_room(&[&plain]).await;
    let team = team["uuid"].as_str().unwrap();
    for method in ["PUT", "DELETE"] {
        block(&admin, team, method)
            .await
            .assert_error(404, "unknown-room");
    }
    assert_eq!(app.send(&visitor.token, "still here").await.status, 200);

    let blocked = block(&admin, &visitor.conversation_id, "PUT").await;
    assert_eq!(blocked.status, 200, "{}", blocked.body);
    assert_eq!(blocked.body["blocked"], true, "{}", blocked.body);
    assert_eq!(
        room(&admin, &visitor.conversation_id).await["blocked"],
        true
    );
    // Again: still blocked, still 200.
    assert_eq!(
        block(&admin, &visitor.conversation_id, "PUT").await.status,
        200
    );

    // Every door: HTTP send, upload, the open socket, a new socket,
    // resuming, a new conversation from its resume token.
    app.send(&visitor.token, "more spam")
        .await
        .assert_error(403, "blocked");
    upload(&app, &visitor.token)
        .await
        .assert_error(403, "blocked");
    socket
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/send")
                .body(json!({"message": {"text": "socket spam"}}).to_string()),
        )
        .await;
    let error = loop {
        let frame = socket.recv().await.expect("an ERROR frame");
        if frame.command == Command::Error {
            break frame;
        }
    };
    assert!(
        error.get("message").unwrap().contains("403 blocked"),
        "{error:?}"
    );
    let mut fresh = Stomp::open(&app.ws_url(), None).await.unwrap();
    fresh
        .send(
            StompFrame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("Authorization", format!("Bearer {}", visitor.token)),
        )
        .await;
    let refused = fresh.recv().await.expect("a frame");
    assert_eq!(refused.command, Command::Error, "{refused:?}");
    authenticate(&app, json!({"resume_token": visitor.resume_token}))
        .await
        .assert_error(403, "blocked");
    authenticate(
        &app,
        json!({"resume_token": visitor.resume_token, "new_conversation": true}),
    )
    .await
    .assert_error(403, "blocked");
    // Nothing more was stored.
    let messages = admin.messages(&visitor.conversation_id).await;
    let contents: Vec<&str> = messages
        .iter()
        .filter_map(|m| m["content"].as_str())
        .collect();
    assert!(contents.contains(&"still here"), "{contents:?}");
    assert!(
        !contents.contains(&"more spam") && !contents.contains(&"socket spam"),
        "{contents:?}"
    );

    // Others are not affected.
    assert_eq!(app.send(&bystander.token, "hello").await.status, 200);

    // Unblocked: the visitor writes again.
    let unblocked = block(&admin, &visitor.conversation_id, "DELETE").await;
    assert_eq!(unblocked.status, 200, "{}", unblocked.body);
    assert_eq!(unblocked.body["blocked"], false);
    assert_eq!(app.send(&visitor.token, "sorry").await.status, 200);
    let resumed = authenticate(&app, json!({"resume_token": visitor.resume_token})).await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
}

#[tokio::test]
async fn blocking_an_identified_visitor_refuses_its_identity_everywhere() {
    let app = spawn().await;
    let admin = AgentClient::admin(&app).await;
    let secret = secret_of(&app, &admin, &app.channel_id).await;
    let troll = signed_in(&app, &secret, "troll").await;
    assert_eq!(app.send(&troll.token, "boo").await.status, 200);
    // Queued rooms can be blocked by any agent of the tenant.
    let plain = admin.new_agent(&app, "plain").await;
    let blocked = block(&plain, &troll.conversation_id, "PUT").await;
    assert_eq!(blocked.status, 200, "{}", blocked.body);

    authenticate(&app, identified(&app, &secret, "troll"))
        .await
        .assert_error(403, "blocked");
    let mut body = identified(&app, &secret, "troll");
    body["new_conversation"] = json!(true);
    authenticate(&app, body).await.assert_error(403, "blocked");
    // A bad signature is still 401 first: nobody learns who is blocked.
    authenticate(
        &app,
        json!({"channel_id": app.channel_id, "identity": {"id": "troll", "hash": "00"}}),
    )
    .await
    .assert_error(401, "identity-not-verified");
    // Another identity is fine.
    signed_in(&app, &secret, "friend").await;
    // On another channel the same id is another visitor.
    let other_channel = app
        .create_channel(&admin.token, json!({"name": "Elsewhere"}))
        .await;
    let other_secret = secret_of(&app, &admin, &other_channel).await;
    let there = authenticate(
        &app,
        json!({"channel_id": other_channel,
               "identity": {"id": "troll", "hash": sign(&other_secret, "troll")}}),
    )
    .await;
    assert_eq!(there.status, 200, "{}", there.body);
}
