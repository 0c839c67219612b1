//! Applications (desk-api.md, "Integrations"): tenant-scoped API clients
//! (bots) with their own token and scopes, acting through the agent API as
//! members of kind `application`; revoked at once; a channel's `bot` takes
//! new conversations first and hands them over to the queue.

use serde_json::{json, Value};

use crate::agent_helpers::{AgentClient, EventSocket};
use crate::helpers::{Reply, Stomp, TestApp};
use crate::queue::next_message;

const ALL_SCOPES: [&str; 3] = [
    "conversations:read",
    "conversations:write",
    "messages:write",
];

/// An application as its creation answered it, and a client with its token.
struct App {
    uuid: String,
    name: String,
    client: AgentClient,
}

async fn create_app(admin: &AgentClient, name: &str, scopes: &[&str]) -> App {
    let reply = admin
        .call(
            "POST",
            "/applications",
            Some(json!({"name": name, "scopes": scopes})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    let token = reply.body["token"].as_str().unwrap().to_string();
    let uuid = reply.body["uuid"].as_str().unwrap().to_string();
    App {
        name: name.to_string(),
        client: AgentClient {
            token,
            uuid: uuid.clone(),
            ..admin.clone()
        },
        uuid,
    }
}

async fn list_apps(admin: &AgentClient) -> Vec<Value> {
    let reply = admin.call("GET", "/applications", None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"].as_array().unwrap().clone()
}

async fn set_channel(app: &TestApp, admin: &AgentClient, settings: Value) -> Reply {
    let mut body = settings;
    body["channel_id"] = json!(app.channel_id);
    app.post("/channels.update", &body, Some(&admin.token))
        .await
}

async fn channel_bot(app: &TestApp, admin: &AgentClient) -> Value {
    let reply = app
        .post(
            "/channels.info",
            &json!({"channel_id": app.channel_id}),
            Some(&admin.token),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["bot"].clone()
}

#[tokio::test]
async fn an_application_is_created_with_its_token_shown_once_listed_and_revoked_at_once() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bot = create_app(&admin, "FAQ bot", &ALL_SCOPES).await;
    assert!(bot.client.token.starts_with("cga_"), "{}", bot.client.token);

    let listed = list_apps(&admin).await;
    assert_eq!(listed.len(), 1);
    assert_eq!(listed[0]["uuid"], bot.uuid.as_str());
    assert_eq!(listed[0]["name"], "FAQ bot");
    assert_eq!(listed[0]["scopes"], json!(ALL_SCOPES));
    assert_eq!(listed[0]["created_by"], admin.uuid.as_str());
    assert!(listed[0]["revoked_at"].is_null());
    assert!(
        listed[0].get("token").is_none(),
        "shown once: {}",
        listed[0]
    );

    // The token works as a bearer token of the agent API.
    let rooms = bot.client.call("GET", "/users/me/rooms", None).await;
    assert_eq!(rooms.status, 200, "{}", rooms.body);
    // An application is no agent of the admin pages, and has no presence.
    let agents = admin.call("GET", "/agents", None).await;
    assert!(
        !agents.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .any(|a| a["uuid"] == bot.uuid.as_str()),
        "{}",
        agents.body
    );
    admin
        .call("GET", &format!("/agents/{}", bot.uuid), None)
        .await
        .assert_error(404, "unknown-agent");
    admin
        .call(
            "PATCH",
            &format!("/agents/{}", bot.uuid),
            Some(json!({"role": "admin"})),
        )
        .await
        .assert_error(404, "unknown-agent");
    // It never logs in with a password.
    let email = format!(
        "application-{}@applications.invalid",
        bot.uuid.replace('-', "")
    );
    let login = AgentClient::try_login(&app, &email, "!application").await;
    assert_eq!(login.status, 401, "{}", login.body);

    let mut socket = EventSocket::connect(&app.base, &bot.client.token).await;
    let revoked = admin
        .call("DELETE", &format!("/applications/{}", bot.uuid), None)
        .await;
    assert_eq!(revoked.status, 204, "{}", revoked.body);
    // The very next call with the token is refused, and its socket closes.
    bot.client
        .call("GET", "/users/me/rooms", None)
        .await
        .assert_error(401, "invalid-token");
    assert_eq!(socket.close_code().await, Some(4003));
    let listed = list_apps(&admin).await;
    assert!(listed[0]["revoked_at"].is_string(), "{}", listed[0]);
    // Revoking again changes nothing; unknown and malformed ids are 404.
    let again = admin
        .call("DELETE", &format!("/applications/{}", bot.uuid), None)
        .await;
    assert_eq!(again.status, 204, "{}", again.body);
    admin
        .call(
            "DELETE",
            &format!("/applications/{}", uuid::Uuid::new_v4()),
            None,
        )
        .await
        .assert_error(404, "unknown-application");
    admin
        .call("DELETE", "/applications/not-a-uuid", None)
        .await
        .assert_error(404, "unknown-application");
    // A revoked token cannot open a socket either.
    let mut late = EventSocket {
        ws: EventSocket::open(&app.base, &bot.client.token).await,
    };
    assert_eq!(late.close_code().await, Some(4003));
}

#[tokio::test]
async fn bad_applications_are_refused_with_a_json_error_and_nothing_is_created() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let cases = [
        (json!({"name": "", "scopes": ["messages:write"]}), "name"),
        (json!({"name": "   ", "scopes": ["messages:write"]}), "name"),
        (
            json!({"name": "x".repeat(81), "scopes": ["messages:write"]}),
            "name",
        ),
        (json!({"name": "Bot", "scopes": ["admin"]}), "scopes"),
        (json!({"name": "Bot", "scopes": []}), "scopes"),
    ];
    for (body, field) in cases {
        let reply = admin
            .call("POST", "/applications", Some(body.clone()))
            .await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get(field).is_some(),
            "{body} names {field}: {}",
            reply.body
        );
    }
    for body in [
        json!({"name": "Bot"}),
        json!({"scopes": ["messages:write"]}),
        json!({"name": "Bot", "scopes": "messages:write"}),
        json!({"name": "Bot", "scopes": ["messages:write"], "token": "mine"}),
    ] {
        admin
            .call("POST", "/applications", Some(body))
            .await
            .assert_error(400, "invalid-data");
    }
    // Agents who are not admins manage no applications.
    let ana = admin.new_agent(&app, "Ana").await;
    ana.call(
        "POST",
        "/applications",
        Some(json!({"name": "Bot", "scopes": ["messages:write"]})),
    )
    .await
    .assert_error(403, "forbidden");
    ana.call("GET", "/applications", None)
        .await
        .assert_error(403, "forbidden");
    assert!(list_apps(&admin).await.is_empty());
}

#[tokio::test]
async fn each_missing_scope_is_a_403_and_calls_for_people_are_refused() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = app.visitor().await;
    app.send(&visitor.token, "Hello").await;
    let room = visitor.conversation_id.clone();

    let reader = create_app(&admin, "Reader", &["conversations:read"]).await;
    let writer = create_app(&admin, "Writer", &["messages:write"]).await;
    let handler = create_app(&admin, "Handler", &["conversations:write"]).await;

    // conversations:read
    for app_client in [&writer.client, &handler.client] {
        let reply = app_client.call("GET", "/queues", None).await;
        reply.assert_error(403, "missing-scope");
        assert_eq!(reply.body["details"]["scope"], "conversations:read");
    }
    let queue = reader.client.call("GET", "/queues", None).await;
    assert_eq!(queue.status, 200, "{}", queue.body);
    assert_eq!(queue.body["items"][0]["uuid"], room.as_str());
    // conversations:write
    for app_client in [&reader.client, &writer.client] {
        let reply = app_client
            .call("PUT", &format!("/queues/{room}/answer"), None)
            .await;
        reply.assert_error(403, "missing-scope");
        assert_eq!(reply.body["details"]["scope"], "conversations:write");
        app_client
            .call("POST", &format!("/users/me/rooms/{room}/handover"), None)
            .await
            .assert_error(403, "missing-scope");
    }
    // messages:write
    for app_client in [&reader.client, &handler.client] {
        let reply = app_client
            .call(
                "POST",
                &format!("/users/me/rooms/{room}/messages"),
                Some(json!({"content": "hi"})),
            )
            .await;
        reply.assert_error(403, "missing-scope");
        assert_eq!(reply.body["details"]["scope"], "messages:write");
    }
    // Nothing moved: the room still waits, with the visitor's message only.
    let queued = admin
        .call("GET", &format!("/queues/{room}/messages"), None)
        .await;
    assert_eq!(
        queued.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        queued.body
    );

    // Admin calls, presence and agent rooms: never an application's.
    let full = create_app(&admin, "Full", &ALL_SCOPES).await;
    for (method, path, body) in [
        ("GET", "/agents".to_string(), None),
        ("GET", "/applications".to_string(), None),
        (
            "POST",
            "/applications".to_string(),
            Some(json!({"name": "Mine", "scopes": ["messages:write"]})),
        ),
        ("GET", "/webhooks".to_string(), None),
        ("GET", "/rooms".to_string(), None),
        ("GET", "/audit".to_string(), None),
        ("GET", "/users/presences".to_string(), None),
        (
            "PUT",
            format!("/users/{}/presences", full.uuid),
            Some(json!({"state": "available"})),
        ),
        (
            "POST",
            "/users/me/rooms".to_string(),
            Some(json!({"users": [{"uuid": admin.uuid}]})),
        ),
    ] {
        full.client
            .call(method, &path, body)
            .await
            .assert_error(403, "not-for-applications");
    }
    // The Airy-style admin calls are an admin's too.
    app.post("/channels.list", &json!({}), Some(&full.client.token))
        .await
        .assert_error(403, "forbidden");
    assert_eq!(list_apps(&admin).await.len(), 4);
}

#[tokio::test]
async fn a_channel_bot_must_be_a_live_application_of_the_tenant() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let other = AgentClient::other_tenant_admin(&app).await;
    let foreign = create_app(&other, "Theirs", &ALL_SCOPES).await;
    let revoked = create_app(&admin, "Old", &ALL_SCOPES).await;
    admin
        .call("DELETE", &format!("/applications/{}", revoked.uuid), None)
        .await;
    for bot in [
        json!(uuid::Uuid::new_v4()),
        json!(foreign.uuid),
        json!(revoked.uuid),
        json!(admin.uuid),
        json!("not-a-uuid"),
        json!(7),
    ] {
        let reply = set_channel(&app, &admin, json!({"bot": bot, "color": "#123456"})).await;
        reply.assert_error(400, "invalid-data");
        assert!(reply.body["details"].get("bot").is_some(), "{}", reply.body);
        assert!(channel_bot(&app, &admin).await.is_null());
    }
    let info = app
        .post(
            "/channels.info",
            &json!({"channel_id": app.channel_id}),
            Some(&admin.token),
        )
        .await;
    assert!(
        info.body["color"].is_null(),
        "nothing changed: {}",
        info.body
    );

    let bot = create_app(&admin, "FAQ bot", &ALL_SCOPES).await;
    let set = set_channel(&app, &admin, json!({"bot": bot.uuid})).await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["bot"], bot.uuid.as_str());
    let cleared = set_channel(&app, &admin, json!({"bot": null})).await;
    assert!(cleared.body["bot"].is_null(), "{}", cleared.body);
    // Revoking the application clears the channels naming it.
    set_channel(&app, &admin, json!({"bot": bot.uuid})).await;
    admin
        .call("DELETE", &format!("/applications/{}", bot.uuid), None)
        .await;
    assert!(channel_bot(&app, &admin).await.is_null());
}

/// Opens an agent's event socket: it is connected and available.
async fn available(agent: &AgentClient) -> EventSocket {
    agent.events().await
}

#[tokio::test]
async fn the_bot_takes_a_new_conversation_and_hands_it_over_to_round_robin_with_its_history() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bot = create_app(&admin, "FAQ bot", &ALL_SCOPES).await;
    let set = set_channel(
        &app,
        &admin,
        json!({"bot": bot.uuid, "assignment": "round_robin"}),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let ana = admin.new_agent(&app, "Ana").await;
    let mut ana_events = available(&ana).await;
    let mut bot_events = EventSocket::connect(&app.base, &bot.client.token).await;

    let visitor = app.visitor().await;
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    let sent = app
        .send(&visitor.token, "What are your opening hours?")
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let room = visitor.conversation_id.clone();

    // The bot, not Ana, gets the room: it is told on its socket.
    let created = bot_events
        .event_with("chatd_user_room_created", "uuid", &room)
        .await;
    assert_eq!(created["assignee_uuid"], bot.uuid.as_str(), "{created}");
    assert_eq!(created["state"], "open");
    let member = created["users"]
        .as_array()
        .unwrap()
        .iter()
        .find(|u| u["uuid"] == bot.uuid.as_str())
        .cloned()
        .unwrap_or_default();
    assert_eq!(member["kind"], "application", "{created}");
    let history = bot
        .client
        .call("GET", &format!("/users/me/rooms/{room}/messages"), None)
        .await;
    assert_eq!(history.status, 200, "{}", history.body);
    assert_eq!(
        history.body["items"][0]["content"],
        "What are your opening hours?"
    );

    // It answers with quick replies, as itself, marked as a bot.
    let reply = bot
        .client
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(json!({"content": "We are open 9 to 5.",
                "quick_replies": [{"title": "Talk to a human", "payload": "human"}]})),
        )
        .await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    assert_eq!(reply.body["bot"], true);
    assert_eq!(reply.body["alias"], "FAQ bot");
    assert_eq!(reply.body["user_uuid"], bot.uuid.as_str());
    // An alias of its own is refused: its messages carry its name.
    bot.client
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(json!({"content": "x", "alias": "Ana"})),
        )
        .await
        .assert_error(400, "invalid-data");
    next_message(&mut stomp).await; // the visitor's own
    let seen = next_message(&mut stomp).await;
    assert_eq!(seen["message"]["content"], "We are open 9 to 5.", "{seen}");
    assert_eq!(seen["message"]["bot"], true, "{seen}");
    assert_eq!(seen["message"]["sender"]["name"], "FAQ bot", "{seen}");
    assert_eq!(seen["message"]["quick_replies"][0]["payload"], "human");
    // Meanwhile the room never reached the queue nor Ana.
    assert!(ana.rooms().await.iter().all(|r| r["uuid"] != room.as_str()));
    let queue = admin.call("GET", "/queues", None).await;
    assert_eq!(queue.body["total"], 0, "{}", queue.body);

    // The visitor asks for a human; the bot hands over.
    let chose = app
        .post(
            "/chatplugin.send",
            &json!({"message": {"text": "Talk to a human", "postback": "human"}}),
            Some(&visitor.token),
        )
        .await;
    assert_eq!(chose.status, 200, "{}", chose.body);
    let handed = bot
        .client
        .call("POST", &format!("/users/me/rooms/{room}/handover"), None)
        .await;
    assert_eq!(handed.status, 200, "{}", handed.body);
    assert!(
        handed.body["users"]
            .as_array()
            .unwrap()
            .iter()
            .all(|u| u["uuid"] != bot.uuid.as_str()),
        "the bot left: {}",
        handed.body
    );
    // Round robin gives it to Ana, the one available agent.
    let assigned = ana_events
        .event_with("chatd_user_room_created", "uuid", &room)
        .await;
    assert_eq!(assigned["assignee_uuid"], ana.uuid.as_str(), "{assigned}");
    // Ana reads the whole conversation, the bot's messages included.
    let messages = ana.messages(&room).await;
    let bot_message = messages
        .iter()
        .find(|m| m["content"] == "We are open 9 to 5.")
        .unwrap_or_else(|| panic!("{messages:?}"));
    assert_eq!(bot_message["bot"], true);
    assert_eq!(bot_message["alias"], "FAQ bot");
    assert!(messages.iter().any(|m| m["postback"] == "human"));
    assert!(
        messages.iter().any(|m| m["notice"]["type"] == "agent_left"
            && m["notice"]["params"]["agent"] == bot.name.as_str()),
        "{messages:?}"
    );
    // The bot is out: it can no longer write there nor hand it over again.
    bot.client
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(json!({"content": "still here?"})),
        )
        .await
        .assert_error(404, "unknown-room");
    bot.client
        .call("POST", &format!("/users/me/rooms/{room}/handover"), None)
        .await
        .assert_error(404, "unknown-room");
}

#[tokio::test]
async fn only_an_application_in_the_room_hands_it_over_and_tenants_stay_apart() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bot = create_app(&admin, "FAQ bot", &ALL_SCOPES).await;
    let other = AgentClient::other_tenant_admin(&app).await;
    let theirs = create_app(&other, "Their bot", &ALL_SCOPES).await;
    let visitor = app.visitor().await;
    app.send(&visitor.token, "Hello").await;
    let room = visitor.conversation_id.clone();

    // A queued room the bot is not in: no hand-over.
    bot.client
        .call("POST", &format!("/users/me/rooms/{room}/handover"), None)
        .await
        .assert_error(404, "unknown-room");
    // Another tenant's application sees nothing of it and can do nothing.
    let queue = theirs.client.call("GET", "/queues", None).await;
    assert_eq!(queue.body["total"], 0, "{}", queue.body);
    for (method, path, body) in [
        ("GET", format!("/queues/{room}"), None),
        ("GET", format!("/queues/{room}/messages"), None),
        ("PUT", format!("/queues/{room}/answer"), None),
        ("GET", format!("/users/me/rooms/{room}/messages"), None),
        (
            "POST",
            format!("/users/me/rooms/{room}/messages"),
            Some(json!({"content": "hi"})),
        ),
        ("POST", format!("/users/me/rooms/{room}/handover"), None),
    ] {
        theirs
            .client
            .call(method, &path, body)
            .await
            .assert_error(404, "unknown-room");
    }
    // Its own tenant's application answers it like an agent would.
    let answered = bot
        .client
        .call("PUT", &format!("/queues/{room}/answer"), None)
        .await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert_eq!(answered.body["assignee_uuid"], bot.uuid.as_str());
    // An agent does not hand over (it transfers).
    let ana = admin.new_agent(&app, "Ana").await;
    let transferred = bot
        .client
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/transfers"),
            Some(json!({"user_uuid": ana.uuid})),
        )
        .await;
    assert_eq!(transferred.status, 200, "{}", transferred.body);
    ana.call("POST", &format!("/users/me/rooms/{room}/handover"), None)
        .await
        .assert_error(403, "forbidden");
    // Nobody transfers to an application.
    ana.call(
        "POST",
        &format!("/users/me/rooms/{room}/transfers"),
        Some(json!({"user_uuid": bot.uuid})),
    )
    .await
    .assert_error(400, "invalid-data");
}

#[tokio::test]
async fn a_revoked_bot_returns_its_conversations_to_the_queue() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bot = create_app(&admin, "FAQ bot", &ALL_SCOPES).await;
    set_channel(&app, &admin, json!({"bot": bot.uuid})).await;
    let mut admin_events = admin.events().await;
    let mut bot_events = EventSocket::connect(&app.base, &bot.client.token).await;
    let visitor = app.visitor().await;
    app.send(&visitor.token, "Hello").await;
    let room = visitor.conversation_id.clone();
    bot_events
        .event_with("chatd_user_room_created", "uuid", &room)
        .await;
    admin
        .call("DELETE", &format!("/applications/{}", bot.uuid), None)
        .await;
    let queued = admin_events
        .event_with("chatd_queue_updated", "action", "queued")
        .await;
    assert_eq!(queued["room"]["uuid"], room.as_str(), "{queued}");
    let queue = admin.call("GET", "/queues", None).await;
    assert_eq!(
        queue.body["items"][0]["uuid"],
        room.as_str(),
        "{}",
        queue.body
    );
    assert!(queue.body["items"][0]["assignee_uuid"].is_null());
}

/// The away notices of a conversation, each with the text of the visitor's
/// message just before it.
async fn away_notices(app: &TestApp, visitor: &crate::helpers::VisitorSession) -> Vec<String> {
    let history = app.history(visitor).await;
    history
        .windows(2)
        .filter(|w| w[1]["notice"]["type"] == "away")
        .map(|w| w[0]["content"].as_str().unwrap_or_default().to_string())
        .collect()
}

#[tokio::test]
async fn outside_business_hours_the_bot_answers_alone_and_after_its_handover_the_away_message_comes_once(
) {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bot = create_app(&admin, "FAQ bot", &ALL_SCOPES).await;
    let (closed, _) = crate::desk_hours::closed_today();
    let set = set_channel(
        &app,
        &admin,
        json!({"bot": bot.uuid, "business_hours": closed,
               "away_message": "We are closed; back tomorrow."}),
    )
    .await;
    assert_eq!(set.status, 200, "{}", set.body);
    let visitor = app.visitor().await;
    let room = visitor.conversation_id.clone();

    // The bot holds the conversation: however many messages, no away message.
    for text in ["Hello?", "Still there?"] {
        assert_eq!(app.send(&visitor.token, text).await.status, 200);
    }
    let answered = bot
        .client
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(json!({"content": "I can help, or find you a human."})),
        )
        .await;
    assert_eq!(answered.status, 201, "{}", answered.body);
    assert_eq!(
        app.send(&visitor.token, "A human, please").await.status,
        200
    );
    assert_eq!(away_notices(&app, &visitor).await, Vec::<String>::new());

    // Handed over to the queue outside the hours: the visitor's next
    // message gets the away message, once for the conversation.
    let handed = bot
        .client
        .call("POST", &format!("/users/me/rooms/{room}/handover"), None)
        .await;
    assert_eq!(handed.status, 200, "{}", handed.body);
    for text in ["Is anyone there?", "Hello??"] {
        assert_eq!(app.send(&visitor.token, text).await.status, 200);
    }
    assert_eq!(away_notices(&app, &visitor).await, vec!["Is anyone there?"]);
    let history = app.history(&visitor).await;
    let away = history
        .iter()
        .find(|m| m["notice"]["type"] == "away")
        .unwrap();
    assert_eq!(away["content"], "We are closed; back tomorrow.");
}
