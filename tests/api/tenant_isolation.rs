//! Who may touch what (agent-api.md, "Tenants, agents, login" and "Rooms"):
//! another tenant's ids are 404 on every call and change nothing; inside a
//! tenant, rooms belong to their members and messages to their authors.

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, TestApp};

/// Tenant A's data: two agents, an agent room with a reacted message, a
/// visitor room Ana answered and replied in, and a visitor still queued.
struct TenantA {
    admin: AgentClient,
    ana: AgentClient,
    bob: AgentClient,
    agent_room: String,
    agent_message: String,
    visitor_room: String,
    visitor_message: String,
    queued_room: String,
}

impl TenantA {
    async fn build(app: &TestApp) -> TenantA {
        let admin = AgentClient::admin(app).await;
        let ana = admin.new_agent(app, "Ana").await;
        let bob = admin.new_agent(app, "Bob").await;
        let room = ana.create_room(&[&bob]).await;
        let agent_room = room["uuid"].as_str().unwrap().to_string();
        let message = ana.post(&agent_room, "secret plans of tenant A").await;
        bob.post(&agent_room, "noted").await;
        let agent_message = message["uuid"].as_str().unwrap().to_string();
        let reacted = bob
            .call(
                "POST",
                &format!("/users/me/rooms/{agent_room}/messages/{agent_message}/reactions"),
                Some(json!({"emoji": "👍"})),
            )
            .await;
        assert_eq!(reacted.status, 201, "{}", reacted.body);

        let visitor = app.visitor().await;
        assert_eq!(
            app.send(&visitor.token, "secret question").await.status,
            200
        );
        let visitor_room = visitor.conversation_id.clone();
        let answered = ana.answer(&visitor_room).await;
        assert_eq!(answered.status, 200, "{}", answered.body);
        let reply = ana.post(&visitor_room, "secret answer").await;
        let visitor_message = reply["uuid"].as_str().unwrap().to_string();

        let waiting = app.visitor().await;
        assert_eq!(app.send(&waiting.token, "still waiting").await.status, 200);

        TenantA {
            admin,
            ana,
            bob,
            agent_room,
            agent_message,
            visitor_room,
            visitor_message,
            queued_room: waiting.conversation_id,
        }
    }

    /// Everything of A that its own agents can read, for a before/after comparison.
    async fn snapshot(&self, app: &TestApp) -> Value {
        let mut queue = self.ana.call("GET", "/queues", None).await.body;
        for room in queue["items"].as_array_mut().unwrap() {
            // The only field that moves by itself: how long it has waited.
            room.as_object_mut().unwrap().remove("wait_seconds");
        }
        let channel = app
            .post(
                "/channels.info",
                &json!({"channel_id": app.channel_id}),
                Some(&self.admin.token),
            )
            .await
            .body;
        json!({
            "agents": self.admin.call("GET", "/agents", None).await.body,
            "ana_rooms": self.ana.rooms().await,
            "bob_rooms": self.bob.rooms().await,
            "agent_room": self.ana.messages(&self.agent_room).await,
            "visitor_room": self.ana.messages(&self.visitor_room).await,
            "queue": queue,
            "channel": channel,
        })
    }
}

fn assert_404(reply: &Reply, what: &str) {
    assert_eq!(reply.status, 404, "{what}: {}", reply.body);
    assert!(
        reply.body["error_id"].as_str().is_some(),
        "{what}: {}",
        reply.body
    );
}

#[tokio::test]
async fn an_admin_of_another_tenant_gets_404_for_every_id_of_tenant_a_and_changes_nothing() {
    let app = TestApp::spawn().await;
    let a = TenantA::build(&app).await;
    let before = a.snapshot(&app).await;
    let b = AgentClient::other_tenant_admin(&app).await;
    assert_ne!(b.tenant, a.admin.tenant, "a second tenant");

    let agent = |id: &str| format!("/agents/{id}");
    let messages = |room: &str| format!("/users/me/rooms/{room}/messages");
    let message = |room: &str, m: &str| format!("/users/me/rooms/{room}/messages/{m}");
    let reactions = |room: &str, m: &str| format!("{}/reactions", message(room, m));
    let mut calls: Vec<(&str, String, Option<Value>)> = vec![
        ("GET", agent(&a.ana.uuid), None),
        ("PATCH", agent(&a.ana.uuid), Some(json!({"role": "admin"}))),
        ("PATCH", agent(&a.ana.uuid), Some(json!({"disabled": true}))),
        (
            "PATCH",
            agent(&a.ana.uuid),
            Some(json!({"password": "taken over"})),
        ),
        ("DELETE", agent(&a.bob.uuid), None),
        ("DELETE", agent(&a.admin.uuid), None),
        ("PUT", format!("/queues/{}/answer", a.queued_room), None),
        ("PUT", format!("/queues/{}/answer", a.visitor_room), None),
    ];
    for (room, msg) in [
        (&a.agent_room, &a.agent_message),
        (&a.visitor_room, &a.visitor_message),
    ] {
        calls.extend([
            ("GET", messages(room), None),
            ("GET", format!("{}?search=secret", messages(room)), None),
            (
                "POST",
                messages(room),
                Some(json!({"content": "hi from B"})),
            ),
            (
                "PATCH",
                message(room, msg),
                Some(json!({"content": "B was here"})),
            ),
            ("DELETE", message(room, msg), None),
            ("POST", reactions(room, msg), Some(json!({"emoji": "🎉"}))),
            (
                "DELETE",
                format!("{}/%F0%9F%91%8D", reactions(room, msg)),
                None,
            ),
            ("PUT", format!("/users/me/rooms/{room}/read"), None),
            (
                "PUT",
                format!("/users/me/rooms/{room}/read"),
                Some(json!({"up_to_seq": 1})),
            ),
        ]);
    }
    calls.push((
        "PUT",
        format!("/users/me/rooms/{}/read", a.queued_room),
        None,
    ));
    calls.push(("GET", messages(&a.queued_room), None));
    for (method, path, body) in calls {
        let reply = b.call(method, &path, body).await;
        assert_404(&reply, &format!("{method} {path}"));
    }

    // Lists and searches show nothing of A.
    let agents = b.call("GET", "/agents", None).await;
    assert_eq!(agents.status, 200, "{}", agents.body);
    let uuids: Vec<&Value> = agents.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|a| &a["uuid"])
        .collect();
    assert_eq!(uuids, vec![&json!(b.uuid)], "only B's own admin");
    assert!(b.rooms().await.is_empty());
    for path in [
        format!("/users/me/rooms?user_uuid={}", a.ana.uuid),
        "/users/me/rooms/messages?search=secret".to_string(),
        "/users/me/rooms/messages?distinct=room_uuid".to_string(),
        "/queues".to_string(),
        format!("/queues?channel_id={}", app.channel_id),
    ] {
        let reply = b.call("GET", &path, None).await;
        if reply.status == 404 {
            continue;
        }
        assert_eq!(reply.status, 200, "{path}: {}", reply.body);
        assert_eq!(reply.body["items"], json!([]), "{path}: {}", reply.body);
        assert_eq!(reply.body["total"], 0, "{path}: {}", reply.body);
        // The same call finds A's data for A's Ana: B's empty answer is the
        // tenant filter, not a listing that is empty for every caller.
        let control = a.ana.call("GET", &path, None).await;
        assert_eq!(control.status, 200, "{path}: {}", control.body);
        assert_ne!(control.body["items"], json!([]), "{path}: {}", control.body);
    }

    // A's channel, through the channel calls.
    for (path, body) in [
        ("/channels.info", json!({"channel_id": app.channel_id})),
        (
            "/channels.update",
            json!({"channel_id": app.channel_id, "name": "Hijacked"}),
        ),
        (
            "/channels.chatplugin.disconnect",
            json!({"channel_id": app.channel_id}),
        ),
    ] {
        let reply = app.post(path, &body, Some(&b.token)).await;
        assert_404(&reply, path);
    }
    let channels = app.post("/channels.list", &json!({}), Some(&b.token)).await;
    assert_eq!(channels.status, 200, "{}", channels.body);
    assert_eq!(channels.body["data"], json!([]), "{}", channels.body);

    // A room of B with A's agents cannot be made.
    let mixed = b
        .call(
            "POST",
            "/users/me/rooms",
            Some(json!({"users": [{"uuid": a.ana.uuid}]})),
        )
        .await;
    mixed.assert_error(400, "invalid-data");

    assert_eq!(a.snapshot(&app).await, before, "tenant A is unchanged");
    // And A's agents still work as before.
    AgentClient::login(&app, &a.ana.email, "correct horse").await;
    let answered = a.bob.answer(&a.queued_room).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    // A sees nothing of B either.
    let agents_of_a = a.admin.call("GET", "/agents", None).await.body;
    assert!(agents_of_a["items"]
        .as_array()
        .unwrap()
        .iter()
        .all(|agent| agent["uuid"] != b.uuid.as_str()));
}

#[tokio::test]
async fn an_agent_of_the_same_tenant_who_is_not_a_member_gets_unknown_room() {
    let app = TestApp::spawn().await;
    let a = TenantA::build(&app).await;
    let carl = a.admin.new_agent(&app, "Carl").await;
    let before = a.snapshot(&app).await;

    for room in [&a.agent_room, &a.visitor_room] {
        let msg = if room == &a.agent_room {
            &a.agent_message
        } else {
            &a.visitor_message
        };
        let base = format!("/users/me/rooms/{room}");
        let calls: Vec<(&str, String, Option<Value>)> = vec![
            ("GET", format!("{base}/messages"), None),
            (
                "POST",
                format!("{base}/messages"),
                Some(json!({"content": "let me in"})),
            ),
            ("PUT", format!("{base}/read"), None),
            ("PUT", format!("{base}/read"), Some(json!({"up_to_seq": 1}))),
            (
                "POST",
                format!("{base}/messages/{msg}/reactions"),
                Some(json!({"emoji": "👀"})),
            ),
            (
                "PATCH",
                format!("{base}/messages/{msg}"),
                Some(json!({"content": "mine now"})),
            ),
            ("DELETE", format!("{base}/messages/{msg}"), None),
        ];
        for (method, path, body) in calls {
            carl.call(method, &path, body)
                .await
                .assert_error(404, "unknown-room");
        }
    }
    assert!(carl.rooms().await.is_empty());
    let search = carl
        .call("GET", "/users/me/rooms/messages?search=secret", None)
        .await;
    assert_eq!(search.body["items"], json!([]), "{}", search.body);

    assert_eq!(a.snapshot(&app).await, before, "nothing changed");
}

#[tokio::test]
async fn a_member_cannot_edit_or_delete_another_members_message() {
    let app = TestApp::spawn().await;
    let a = TenantA::build(&app).await;
    let path = format!(
        "/users/me/rooms/{}/messages/{}",
        a.agent_room, a.agent_message
    );

    a.bob
        .call("PATCH", &path, Some(json!({"content": "Bob rewrote this"})))
        .await
        .assert_error(403, "forbidden");
    a.bob
        .call("DELETE", &path, None)
        .await
        .assert_error(403, "forbidden");
    // Not even an admin who is a member may.
    let room = a.ana.create_room(&[&a.admin]).await;
    let room = room["uuid"].as_str().unwrap();
    let own = a.ana.post(room, "mine").await;
    a.admin
        .call(
            "DELETE",
            &format!(
                "/users/me/rooms/{room}/messages/{}",
                own["uuid"].as_str().unwrap()
            ),
            None,
        )
        .await
        .assert_error(403, "forbidden");

    let listed = a.ana.messages(&a.agent_room).await;
    let original = listed
        .iter()
        .find(|m| m["uuid"] == a.agent_message.as_str())
        .unwrap();
    assert_eq!(original["content"], "secret plans of tenant A");
    assert_eq!(original["deleted"], false);
    assert_eq!(original["edited_at"], Value::Null);
}

#[tokio::test]
async fn a_message_id_is_only_found_in_its_own_room() {
    let app = TestApp::spawn().await;
    let a = TenantA::build(&app).await;
    // Ana is in both rooms; the agent room's message under the visitor room's path is unknown.
    let path = format!(
        "/users/me/rooms/{}/messages/{}",
        a.visitor_room, a.agent_message
    );
    a.ana
        .call("PATCH", &path, Some(json!({"content": "moved"})))
        .await
        .assert_error(404, "unknown-message");
    a.ana
        .call(
            "POST",
            &format!("{path}/reactions"),
            Some(json!({"emoji": "🎉"})),
        )
        .await
        .assert_error(404, "unknown-message");
    let kept = a.ana.messages(&a.agent_room).await;
    assert_eq!(kept[0]["content"], "secret plans of tenant A");
}

#[tokio::test]
async fn a_room_with_an_agent_of_another_tenant_is_400() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let other = AgentClient::other_tenant_admin(&app).await;

    let reply = ana
        .call(
            "POST",
            "/users/me/rooms",
            Some(json!({"users": [{"uuid": other.uuid}]})),
        )
        .await;

    reply.assert_error(400, "invalid-data");
    assert!(
        reply.body["details"].get("users").is_some(),
        "{}",
        reply.body
    );
    assert!(ana.rooms().await.is_empty());
    assert!(other.rooms().await.is_empty());
}

/// An admin's resume token (`/chatplugin.resumeToken`, the system path).
async fn mint(app: &TestApp, admin: &AgentClient, channel: &str, conversation: &str) -> Reply {
    app.post(
        "/chatplugin.resumeToken",
        &json!({"channel_id": channel, "conversation_id": conversation}),
        Some(&admin.token),
    )
    .await
}

#[tokio::test]
async fn a_resume_token_is_minted_only_for_a_visitor_conversation_of_its_own_channel() {
    let app = TestApp::spawn().await;
    let a = TenantA::build(&app).await;
    let second_channel = app
        .create_channel(&a.admin.token, json!({"name": "Second shop"}))
        .await;
    let b = AgentClient::other_tenant_admin(&app).await;
    let b_channel = app
        .create_channel(&b.token, json!({"name": "B's shop"}))
        .await;
    let before = a.snapshot(&app).await;

    let refused = [
        // An agent room through the visitor door of its own tenant.
        (&a.admin, app.channel_id.as_str(), a.agent_room.as_str()),
        (&a.admin, second_channel.as_str(), a.agent_room.as_str()),
        // A visitor conversation through another channel of its tenant.
        (&a.admin, second_channel.as_str(), a.visitor_room.as_str()),
        // Tenant A's rooms through tenant B's channel.
        (&b, b_channel.as_str(), a.visitor_room.as_str()),
        (&b, b_channel.as_str(), a.queued_room.as_str()),
        (&b, b_channel.as_str(), a.agent_room.as_str()),
    ];
    for (admin, channel, room) in refused {
        let reply = mint(&app, admin, channel, room).await;
        reply.assert_error(404, "unknown-conversation");
    }
    // Another tenant's channel is not the admin's to use at all.
    mint(&app, &b, &app.channel_id, &a.visitor_room)
        .await
        .assert_error(404, "unknown-channel");
    assert_eq!(a.snapshot(&app).await, before, "nothing changed");

    // Its own conversation, and an id no room has yet, are minted.
    let own = mint(&app, &a.admin, &app.channel_id, &a.visitor_room).await;
    assert_eq!(own.status, 200, "{}", own.body);
    let resumed = app
        .post(
            "/chatplugin.authenticate",
            &json!({"resume_token": own.body["resume_token"]}),
            None,
        )
        .await;
    assert_eq!(resumed.status, 200, "{}", resumed.body);
    assert_eq!(resumed.body["conversation_id"], a.visitor_room.as_str());
    let texts: Vec<&str> = resumed.body["messages"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert_eq!(texts, ["secret question", "Ana joined", "secret answer"]);
    let fresh = uuid::Uuid::new_v4().to_string();
    let minted = mint(&app, &a.admin, &app.channel_id, &fresh).await;
    assert_eq!(minted.status, 200, "{}", minted.body);
    let started = app
        .post(
            "/chatplugin.authenticate",
            &json!({"resume_token": minted.body["resume_token"]}),
            None,
        )
        .await;
    assert_eq!(started.status, 200, "{}", started.body);
    assert_eq!(started.body["messages"], json!([]));
}

#[tokio::test]
async fn visitor_room_actions_refuse_an_agent_rooms_id() {
    let app = TestApp::spawn().await;
    let a = TenantA::build(&app).await;
    let before = a.snapshot(&app).await;
    let answered = a.ana.answer(&a.agent_room).await;
    assert!(
        answered.status == 404 || answered.status == 409,
        "answering an agent room: {} {}",
        answered.status,
        answered.body
    );
    let transfer = a
        .ana
        .call(
            "POST",
            &format!("/users/me/rooms/{}/transfers", a.agent_room),
            Some(json!({"user_uuid": a.admin.uuid})),
        )
        .await;
    assert!(
        transfer.status >= 400,
        "transferring an agent room: {} {}",
        transfer.status,
        transfer.body
    );
    assert_eq!(a.snapshot(&app).await, before, "nothing changed");
}

#[tokio::test]
async fn queue_preview_and_supervision_never_reach_another_tenants_rooms() {
    let app = TestApp::spawn().await;
    let a = TenantA::build(&app).await;
    let b = AgentClient::other_tenant_admin(&app).await;
    let b_channel = app
        .create_channel(&b.token, json!({"name": "B's shop"}))
        .await;
    let b_visitor = app.visitor_on(&b_channel).await;
    assert_eq!(app.send(&b_visitor.token, "B's own").await.status, 200);
    let before = a.snapshot(&app).await;

    let mut calls: Vec<(&str, String, Option<Value>)> = Vec::new();
    for room in [&a.queued_room, &a.visitor_room, &a.agent_room] {
        calls.extend([
            ("GET", format!("/queues/{room}"), None),
            ("GET", format!("/queues/{room}/messages"), None),
            ("GET", format!("/rooms/{room}"), None),
            ("GET", format!("/rooms/{room}/messages"), None),
            ("GET", format!("/rooms/{room}/messages?search=secret"), None),
            (
                "POST",
                format!("/rooms/{room}/transfers"),
                Some(json!({"user_uuid": b.uuid})),
            ),
            (
                "POST",
                format!("/rooms/{room}/transfers"),
                Some(json!({"user_uuid": a.ana.uuid})),
            ),
        ]);
    }
    for (method, path, body) in calls {
        let reply = b.call(method, &path, body).await;
        reply.assert_error(404, "unknown-room");
    }
    // B's admin may not hand B's room to A's agent either.
    b.call(
        "POST",
        &format!("/rooms/{}/transfers", b_visitor.conversation_id),
        Some(json!({"user_uuid": a.ana.uuid})),
    )
    .await
    .assert_error(400, "invalid-data");

    // B's list holds B's room only (not an empty list for everyone); A's
    // holds A's two visitor rooms and not B's.
    let rooms_of = |reply: &Reply| -> Vec<String> {
        reply.body["items"]
            .as_array()
            .unwrap()
            .iter()
            .map(|r| r["uuid"].as_str().unwrap().to_string())
            .collect()
    };
    for path in [
        "/rooms".to_string(),
        "/rooms?state=queued".to_string(),
        format!("/rooms?channel_id={}", app.channel_id),
        format!("/rooms?assignee_uuid={}", a.ana.uuid),
    ] {
        let listed = b.call("GET", &path, None).await;
        assert_eq!(listed.status, 200, "{path}: {}", listed.body);
        let seen = rooms_of(&listed);
        assert!(
            seen.iter().all(|r| r == &b_visitor.conversation_id),
            "{path}: {}",
            listed.body
        );
        let control = a.admin.call("GET", &path, None).await;
        assert_eq!(control.status, 200, "{path}: {}", control.body);
        assert!(!rooms_of(&control).is_empty(), "{path}: {}", control.body);
        assert!(!rooms_of(&control).contains(&b_visitor.conversation_id));
    }
    let all_b = b.call("GET", "/rooms", None).await;
    assert_eq!(rooms_of(&all_b), vec![b_visitor.conversation_id.clone()]);
    assert_eq!(all_b.body["total"], 1);
    let all_a = a.admin.call("GET", "/rooms", None).await;
    let mut of_a = rooms_of(&all_a);
    of_a.sort();
    let mut expected = vec![a.visitor_room.clone(), a.queued_room.clone()];
    expected.sort();
    assert_eq!(of_a, expected);

    assert_eq!(a.snapshot(&app).await, before, "tenant A is unchanged");
}
