//! The agent event socket `/api/websocketd/` (agent-api.md, "Events"): the
//! wazo-websocketd v2 protocol, subscriptions, who receives which event, and
//! a socket outliving its token's session being closed with 4003.

use serde_json::{json, Value};
use tokio_tungstenite::tungstenite::client::IntoClientRequest;

use crate::agent_helpers::{AgentClient, EventSocket};
use crate::helpers::TestApp;

/// Close code of a bad, expired or revoked token (wazo-websocketd's).
const AUTH_FAILED: u16 = 4003;
/// A socket's periodic check, in seconds, when a test needs it to run.
const RECHECK_SECS: u64 = 1;
/// A check that never runs during a test: what closes a socket then can
/// only be the revocation pushed to it.
const NO_RECHECK_SECS: u64 = 3600;

/// The room events an agent must receive only for its own rooms.
const ROOM_EVENTS: [&str; 6] = [
    "chatd_user_room_created",
    "chatd_user_room_message_created",
    "chatd_user_room_message_updated",
    "chatd_user_room_message_reaction_created",
    "chatd_user_room_message_reaction_deleted",
    "chatd_user_room_read",
];

/// Opens a socket and reads `init`, without subscribing.
async fn opened(agent: &AgentClient) -> EventSocket {
    let mut socket = EventSocket {
        ws: EventSocket::open(&agent.base, &agent.token).await,
    };
    let init = socket.next().await.expect("init");
    assert_eq!(
        init,
        json!({"op": "init", "code": 0, "data": {"version": 2}})
    );
    socket
}

/// Sends `request` and returns the answer, passing over the presence events
/// the agent's own connection causes (they may arrive at any time after
/// `start`).
async fn ask(socket: &mut EventSocket, request: Value) -> Value {
    socket.send(request).await;
    next_but_presence(socket).await
}

/// The next message that is not a `chatd_presence_updated` event.
async fn next_but_presence(socket: &mut EventSocket) -> Value {
    loop {
        let msg = socket.next().await.expect("a message");
        if msg["data"]["name"] != "chatd_presence_updated" {
            return msg;
        }
    }
}

/// Reads events until the `chatd_user_room_created` of `sentinel`; fails on
/// any room event before it (events of one publisher arrive in order).
async fn assert_no_room_event_before(socket: &mut EventSocket, sentinel: &str) {
    loop {
        let msg = socket.next().await.expect("the sentinel room's event");
        if msg["op"] != "event" {
            continue;
        }
        let name = msg["data"]["name"].as_str().unwrap_or_default();
        if name == "chatd_user_room_created" && msg["data"]["data"]["uuid"] == sentinel {
            return;
        }
        assert!(!ROOM_EVENTS.contains(&name), "not for this agent: {msg}");
    }
}

#[tokio::test]
async fn the_socket_speaks_websocketd_version_2() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let room = ana.create_room(&[&bob]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut socket = opened(&ana).await;

    let subscribed = ask(
        &mut socket,
        json!({"op": "subscribe", "data": {"event_name": "*"}}),
    )
    .await;
    assert_eq!(
        subscribed,
        json!({"op": "subscribe", "code": 0, "data": null})
    );
    let started = ask(&mut socket, json!({"op": "start"})).await;
    assert_eq!(started, json!({"op": "start", "code": 0, "data": null}));
    let pong = ask(
        &mut socket,
        json!({"op": "ping", "data": {"payload": "x-42"}}),
    )
    .await;
    assert_eq!(
        pong,
        json!({"op": "pong", "code": 0, "data": {"payload": "x-42"}})
    );

    // A renewed token (the same agent, a new login) is accepted.
    let renewed = AgentClient::login(&app, &ana.email, "correct horse").await;
    let answer = ask(
        &mut socket,
        json!({"op": "token", "data": {"token": renewed.token}}),
    )
    .await;
    assert_eq!(answer["op"], "token", "{answer}");
    assert_eq!(answer["code"], 0, "{answer}");

    // Events come in the envelope of the contract.
    let posted = bob.post(&room, "ping me").await;
    let msg = next_but_presence(&mut socket).await;
    assert_eq!(msg["op"], "event", "{msg}");
    assert_eq!(msg["code"], 0, "{msg}");
    let envelope = &msg["data"];
    assert_eq!(envelope["name"], "chatd_user_room_message_created");
    assert_eq!(envelope["tenant_uuid"], ana.tenant);
    assert_eq!(envelope["origin_uuid"], posted["wazo_uuid"]);
    assert!(envelope["timestamp"].as_str().is_some(), "{msg}");
    assert_eq!(envelope["data"], posted, "the message as REST returns it");
}

#[tokio::test]
async fn the_token_may_come_in_the_x_auth_token_header() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let url = format!(
        "{}/api/websocketd/?version=2",
        app.base.replacen("http", "ws", 1)
    );
    let mut request = url.into_client_request().unwrap();
    request
        .headers_mut()
        .insert("X-Auth-Token", admin.token.parse().unwrap());
    let (ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let mut socket = EventSocket { ws };

    let init = socket.next().await.expect("init");
    assert_eq!(init["op"], "init", "{init}");
}

#[tokio::test]
async fn a_bad_token_at_connect_closes_the_socket_with_4003() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let visitor = app.visitor().await;
    let revoked = AgentClient::login(&app, &ana.email, "correct horse").await;
    assert_eq!(revoked.logout().await.status, 204);

    for token in [
        "garbage".to_string(),
        String::new(),
        visitor.token.clone(),
        revoked.token.clone(),
    ] {
        let mut socket = EventSocket {
            ws: EventSocket::open(&app.base, &token).await,
        };
        assert_eq!(
            socket.close_code().await,
            Some(AUTH_FAILED),
            "token {token:?}"
        );
    }
}

#[tokio::test]
async fn renewing_with_another_agents_token_or_a_bad_one_closes_with_4003() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;

    for token in [bob.token.clone(), "garbage".to_string()] {
        let mut socket = ana.events().await;
        socket
            .send(json!({"op": "token", "data": {"token": token}}))
            .await;
        assert_eq!(
            socket.close_code().await,
            Some(AUTH_FAILED),
            "renewal with {token:?}"
        );
    }
}

#[tokio::test]
async fn events_arrive_only_after_start() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let room = ana.create_room(&[&bob]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut socket = opened(&ana).await;
    let subscribed = ask(
        &mut socket,
        json!({"op": "subscribe", "data": {"event_name": "*"}}),
    )
    .await;
    assert_eq!(subscribed["op"], "subscribe");

    // Ana's started socket hears the message: the hub has handed it to
    // every socket of Ana's, this one (not yet started) included.
    let mut started_elsewhere = ana.events().await;
    bob.post(&room, "before start").await;
    let heard = started_elsewhere
        .event("chatd_user_room_message_created")
        .await;
    assert_eq!(heard["content"], "before start");
    let started = ask(&mut socket, json!({"op": "start"})).await;
    assert_eq!(
        started["op"], "start",
        "nothing came before start: {started}"
    );
    bob.post(&room, "after start").await;

    let first = socket.event("chatd_user_room_message_created").await;
    assert_eq!(first["content"], "after start");
}

#[tokio::test]
async fn a_subscription_by_name_receives_only_that_event() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let room = ana.create_room(&[&bob]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let message = ana.post(&room, "react to me").await;
    let mut socket = opened(&ana).await;
    ask(
        &mut socket,
        json!({"op": "subscribe", "data": {"event_name": "chatd_user_room_message_created"}}),
    )
    .await;
    ask(&mut socket, json!({"op": "start"})).await;

    let reacted = bob
        .call(
            "POST",
            &format!(
                "/users/me/rooms/{room}/messages/{}/reactions",
                message["uuid"].as_str().unwrap()
            ),
            Some(json!({"emoji": "👍"})),
        )
        .await;
    assert_eq!(reacted.status, 201, "{}", reacted.body);
    bob.post(&room, "done").await;

    // The reaction was published first, on the same topic: the first thing
    // the socket receives being the message shows the reaction was not sent.
    let msg = socket.next().await.expect("an event");
    assert_eq!(
        msg["data"]["name"], "chatd_user_room_message_created",
        "{msg}"
    );
    assert_eq!(msg["data"]["data"]["content"], "done");
}

#[tokio::test]
async fn members_receive_their_rooms_events_and_nobody_else_does() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let carl = admin.new_agent(&app, "Carl").await;
    let other = AgentClient::other_tenant_admin(&app).await;
    let zed = other.new_agent(&app, "Zed").await;
    let mut ana_events = ana.events().await;
    let mut bob_events = bob.events().await;
    let mut carl_events = carl.events().await;
    let mut other_events = other.events().await;

    let room = ana.create_room(&[&bob]).await;
    let room_id = room["uuid"].as_str().unwrap().to_string();
    for socket in [&mut ana_events, &mut bob_events] {
        let created = socket.event("chatd_user_room_created").await;
        assert_eq!(created["uuid"], room["uuid"]);
        assert_eq!(created["users"], room["users"]);
        assert_eq!(created["kind"], "agent");
    }
    // Asking for the same room again creates nothing and tells nobody.
    ana.create_room(&[&bob]).await;

    let message = ana.post(&room_id, "Hi Bob").await;
    let created = bob_events.event("chatd_user_room_message_created").await;
    assert_eq!(created, message);
    assert_eq!(
        ana_events.event("chatd_user_room_message_created").await,
        message,
        "the author's other tabs hear of it too"
    );

    let path = format!(
        "/users/me/rooms/{room_id}/messages/{}",
        message["uuid"].as_str().unwrap()
    );
    let edited = ana
        .call("PATCH", &path, Some(json!({"content": "Hi Bob!"})))
        .await
        .body;
    assert_eq!(
        bob_events.event("chatd_user_room_message_updated").await,
        edited
    );

    let reacted = bob
        .call(
            "POST",
            &format!("{path}/reactions"),
            Some(json!({"emoji": "🎉"})),
        )
        .await;
    assert_eq!(reacted.status, 201, "{}", reacted.body);
    let expected = json!({
        "room": {"uuid": room_id},
        "message_uuid": message["uuid"],
        "user_uuid": bob.uuid,
        "emoji": "🎉",
    });
    assert_eq!(
        ana_events
            .event("chatd_user_room_message_reaction_created")
            .await,
        expected
    );
    let removed = bob
        .call("DELETE", &format!("{path}/reactions/%F0%9F%8E%89"), None)
        .await;
    assert_eq!(removed.status, 204, "{}", removed.body);
    assert_eq!(
        ana_events
            .event("chatd_user_room_message_reaction_deleted")
            .await,
        expected
    );

    let read = bob
        .call("PUT", &format!("/users/me/rooms/{room_id}/read"), None)
        .await;
    assert_eq!(read.status, 204, "{}", read.body);
    let read_event = bob_events.event("chatd_user_room_read").await;
    assert_eq!(read_event["room"]["uuid"], room_id.as_str());
    assert_eq!(read_event["user_uuid"], bob.uuid);
    assert_eq!(read_event["up_to_seq"], 1);

    // Carl (same tenant, not a member) and the other tenant heard none of it:
    // the first room event each receives is that of a room of their own.
    let carls = ana.create_room(&[&carl]).await;
    assert_no_room_event_before(&mut carl_events, carls["uuid"].as_str().unwrap()).await;
    let others = other.create_room(&[&zed]).await;
    assert_no_room_event_before(&mut other_events, others["uuid"].as_str().unwrap()).await;
}

#[tokio::test]
async fn a_socket_is_closed_with_4003_as_soon_as_its_session_ends() {
    let app = TestApp::spawn_with(|c| c.agent_recheck_secs = NO_RECHECK_SECS).await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let carl = admin.new_agent(&app, "Carl").await;
    let mut ana_events = ana.events().await;
    let mut bob_events = bob.events().await;
    let mut carl_events = carl.events().await;

    // Logged out, disabled, deleted.
    assert_eq!(ana.logout().await.status, 204);
    let disabled = admin
        .call(
            "PATCH",
            &format!("/agents/{}", bob.uuid),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    let deleted = admin
        .call("DELETE", &format!("/agents/{}", carl.uuid), None)
        .await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);

    let (a, b, c) = tokio::join!(
        ana_events.close_code(),
        bob_events.close_code(),
        carl_events.close_code(),
    );
    assert_eq!(a, Some(AUTH_FAILED), "logged out");
    assert_eq!(b, Some(AUTH_FAILED), "disabled");
    assert_eq!(c, Some(AUTH_FAILED), "deleted");
}

#[tokio::test]
async fn a_socket_whose_token_expires_is_closed_with_4003_at_its_next_check() {
    // Expiry is the one end of a session nobody announces: the check finds
    // it. (Expiry is in whole seconds: 2 leaves at least 1 s to connect.)
    let app = TestApp::spawn_with(|c| c.agent_recheck_secs = RECHECK_SECS).await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let brief = AgentClient::login_expiring(&app, &ana.email, "correct horse", 2).await;
    let mut socket = brief.events().await;
    assert_eq!(socket.close_code().await, Some(AUTH_FAILED));
}

#[tokio::test]
async fn a_renewed_socket_lives_on_the_new_session() {
    let app = TestApp::spawn_with(|c| c.agent_recheck_secs = NO_RECHECK_SECS).await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let room = ana.create_room(&[&bob]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let mut socket = ana.events().await;
    let renewed = AgentClient::login(&app, &ana.email, "correct horse").await;
    let answer = ask(
        &mut socket,
        json!({"op": "token", "data": {"token": renewed.token}}),
    )
    .await;
    assert_eq!(answer["op"], "token", "{answer}");

    // The old session ends: the socket, now on the new one, stays. Bob's
    // message is published after the revocation, on the same topic, so
    // hearing it means the socket has handled the revocation and lived.
    assert_eq!(ana.logout().await.status, 204);
    bob.post(&room, "after the old session").await;
    let heard = socket.event("chatd_user_room_message_created").await;
    assert_eq!(heard["content"], "after the old session");

    // The new one ends: closed before it hears anything more.
    assert_eq!(renewed.logout().await.status, 204);
    bob.post(&room, "after the new session").await;
    assert_eq!(
        socket
            .closed_before("chatd_user_room_message_created")
            .await,
        Some(AUTH_FAILED)
    );
}
