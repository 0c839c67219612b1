//! Group rooms (desk-api.md, "Group rooms"): members added to and removed
//! from agent rooms (`POST /users/me/rooms/<room>/members`,
//! `DELETE .../members/<user>`), their notices and events, the history a
//! new member reads, and mentions.

use serde_json::{json, Value};

use crate::agent_helpers::{AgentClient, EventSocket};
use crate::helpers::{Reply, TestApp};

fn members_path(room: &str) -> String {
    format!("/users/me/rooms/{room}/members")
}

async fn add(agent: &AgentClient, room: &str, user: &str) -> Reply {
    agent
        .call(
            "POST",
            &members_path(room),
            Some(json!({"user_uuid": user})),
        )
        .await
}

async fn remove(agent: &AgentClient, room: &str, user: &str) -> Reply {
    agent
        .call("DELETE", &format!("{}/{user}", members_path(room)), None)
        .await
}

async fn post_mentioning(agent: &AgentClient, room: &str, content: &str, mentions: Value) -> Reply {
    agent
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/messages"),
            Some(json!({"content": content, "mentions": mentions})),
        )
        .await
}

fn user_uuids(room: &Value) -> Vec<String> {
    room["users"]
        .as_array()
        .expect("users")
        .iter()
        .map(|u| u["uuid"].as_str().unwrap().to_string())
        .collect()
}

fn contents(messages: &[Value]) -> Vec<&str> {
    messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect()
}

/// A new agent room of `owner` with `others`: a marker event every one of
/// them receives (`chatd_user_room_created` with this uuid).
async fn marker_room(owner: &AgentClient, others: &[&AgentClient]) -> String {
    owner.create_room(others).await["uuid"]
        .as_str()
        .unwrap()
        .to_string()
}

/// The names of the events `socket` received before the marker room.
async fn names_before_marker(socket: &mut EventSocket, marker: &str) -> Vec<String> {
    socket
        .events_before("chatd_user_room_created", "uuid", marker)
        .await
        .iter()
        .map(|e| e["name"].as_str().unwrap().to_string())
        .collect()
}

#[tokio::test]
async fn members_come_and_go_and_the_room_keeps_its_history() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let cy = admin.new_agent(&app, "Cy").await;
    let dee = admin.new_agent(&app, "Dee").await;
    let room = admin.create_room(&[&bo]).await;
    let room = room["uuid"].as_str().unwrap().to_string();
    admin.post(&room, "before Cy came").await;
    let (mut admin_events, mut bo_events) = (admin.events().await, bo.events().await);
    let (mut cy_events, mut dee_events) = (cy.events().await, dee.events().await);

    // Added: the room as the caller sees it, with the notice as its newest message.
    let added = add(&admin, &room, &cy.uuid).await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(added.body["uuid"], room);
    assert_eq!(added.body["kind"], "agent");
    assert_eq!(
        user_uuids(&added.body),
        [admin.uuid.clone(), bo.uuid.clone(), cy.uuid.clone()]
    );
    let notice = json!({"type": "member_added", "params": {"member": "Cy", "by": "Admin"}});
    assert_eq!(added.body["last_message"]["notice"], notice);
    assert_eq!(added.body["last_message"]["content"], "Admin added Cy");
    assert_eq!(added.body["last_message"]["kind"], "system");

    // Every member, the new one included, hears it; then the notice.
    for socket in [&mut admin_events, &mut bo_events, &mut cy_events] {
        let event = socket.event("chatd_user_room_member_added").await;
        assert_eq!(event["room"]["uuid"], room);
        assert_eq!(event["user_uuid"], cy.uuid);
        assert_eq!(event["by_user_uuid"], admin.uuid);
        assert_eq!(user_uuids(&event["room"]).len(), 3);
        let message = socket
            .event_with(
                "chatd_user_room_message_created",
                "content",
                "Admin added Cy",
            )
            .await;
        assert_eq!(message["notice"], notice);
        assert_eq!(message["mentions"], json!([]));
    }
    // The new member reads the whole history, and lists the room.
    assert_eq!(
        contents(&cy.messages(&room).await),
        ["before Cy came", "Admin added Cy"]
    );
    assert!(cy.rooms().await.iter().any(|r| r["uuid"] == room));

    // Bo is removed: the others hear it, and so does Bo, who then sees nothing.
    assert_eq!(remove(&admin, &room, &bo.uuid).await.status, 204);
    for socket in [&mut admin_events, &mut bo_events, &mut cy_events] {
        let event = socket.event("chatd_user_room_member_removed").await;
        assert_eq!(event["room"]["uuid"], room);
        assert_eq!(event["user_uuid"], bo.uuid);
        assert_eq!(event["by_user_uuid"], admin.uuid);
        assert_eq!(
            user_uuids(&event["room"]),
            [admin.uuid.clone(), cy.uuid.clone()]
        );
    }
    cy_events
        .event_with(
            "chatd_user_room_message_created",
            "content",
            "Admin removed Bo",
        )
        .await;
    let path = format!("/users/me/rooms/{room}/messages");
    bo.call("GET", &path, None)
        .await
        .assert_error(404, "unknown-room");
    bo.call("POST", &path, Some(json!({"content": "still here?"})))
        .await
        .assert_error(404, "unknown-room");
    assert!(bo.rooms().await.iter().all(|r| r["uuid"] != room));

    // Cy leaves (by `me`): Bo hears nothing of it any more.
    assert_eq!(remove(&cy, &room, "me").await.status, 204);
    let left = admin_events.event("chatd_user_room_member_removed").await;
    assert_eq!(
        (&left["user_uuid"], &left["by_user_uuid"]),
        (&json!(cy.uuid), &json!(cy.uuid))
    );
    cy_events.event("chatd_user_room_member_removed").await;
    let marker = marker_room(&admin, &[&bo, &dee]).await;
    let heard = names_before_marker(&mut bo_events, &marker).await;
    assert!(
        heard.iter().all(
            |n| n != "chatd_user_room_member_removed" && n != "chatd_user_room_message_created"
        ),
        "{heard:?}"
    );
    // Dee, of the tenant but never a member, heard none of it.
    let heard = names_before_marker(&mut dee_events, &marker).await;
    assert!(
        heard.iter().all(|n| !n.starts_with("chatd_user_room")),
        "{heard:?}"
    );

    // The history keeps every notice, in order.
    let history = admin.messages(&room).await;
    assert_eq!(
        contents(&history),
        [
            "before Cy came",
            "Admin added Cy",
            "Admin removed Bo",
            "Cy left"
        ]
    );
    assert_eq!(
        history[2]["notice"],
        json!({"type": "member_removed", "params": {"member": "Bo", "by": "Admin"}})
    );
    assert_eq!(
        history[3]["notice"],
        json!({"type": "member_left", "params": {"member": "Cy"}})
    );

    // The last member leaves (by uuid): the room is kept, seen by no one.
    assert_eq!(remove(&admin, &room, &admin.uuid).await.status, 204);
    admin
        .call("GET", &path, None)
        .await
        .assert_error(404, "unknown-room");
    for agent in [&admin, &bo, &cy] {
        assert!(agent.rooms().await.iter().all(|r| r["uuid"] != room));
    }
    // Creating a room of the first members makes a new one.
    let again = admin.create_room(&[&bo]).await;
    assert_ne!(again["uuid"], room);
}

#[tokio::test]
async fn member_changes_are_refused_as_the_contract_says_and_change_nothing() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let cy = admin.new_agent(&app, "Cy").await;
    let off = admin.new_agent(&app, "Off").await;
    let patched = admin
        .call(
            "PATCH",
            &format!("/agents/{}", off.uuid),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(patched.status, 200, "{}", patched.body);
    let other = AgentClient::other_tenant_admin(&app).await;
    let room = admin.create_room(&[&bo]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let count = admin.messages(&room).await.len();

    // Already a member.
    add(&admin, &room, &bo.uuid)
        .await
        .assert_error(409, "already-a-member");
    add(&admin, &room, &admin.uuid)
        .await
        .assert_error(409, "already-a-member");
    // Not an enabled agent of the tenant: 400 naming user_uuid.
    for user in [
        uuid::Uuid::new_v4().to_string(),
        off.uuid.clone(),
        other.uuid.clone(),
    ] {
        let reply = add(&admin, &room, &user).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get("user_uuid").is_some(),
            "{}",
            reply.body
        );
    }
    for body in [json!({}), json!({"user_uuid": "nope"}), json!("Cy")] {
        let reply = admin.call("POST", &members_path(&room), Some(body)).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
    }
    // Not in the room (a colleague, another tenant): 404, and an unknown room.
    add(&cy, &room, &cy.uuid)
        .await
        .assert_error(404, "unknown-room");
    remove(&cy, &room, &bo.uuid)
        .await
        .assert_error(404, "unknown-room");
    add(&other, &room, &other.uuid)
        .await
        .assert_error(404, "unknown-room");
    remove(&other, &room, &bo.uuid)
        .await
        .assert_error(404, "unknown-room");
    add(&admin, &uuid::Uuid::new_v4().to_string(), &cy.uuid)
        .await
        .assert_error(404, "unknown-room");
    // Removing someone who is not a member.
    remove(&admin, &room, &cy.uuid)
        .await
        .assert_error(404, "unknown-user");
    remove(&admin, &room, "not-a-uuid")
        .await
        .assert_error(404, "unknown-user");
    // Nothing changed.
    let messages = admin.messages(&room).await;
    assert_eq!(messages.len(), count, "{messages:?}");
    let seen = admin.rooms().await;
    let seen = seen.iter().find(|r| r["uuid"] == room).unwrap();
    assert_eq!(user_uuids(seen), [admin.uuid.clone(), bo.uuid.clone()]);
    // The control: the same call by a member, for an agent of the tenant.
    assert_eq!(add(&bo, &room, &cy.uuid).await.status, 200);

    // Visitor rooms are no group rooms.
    let visitor = app.visitor().await;
    app.send(&visitor.token, "Hello").await;
    let visitor_room = visitor.conversation_id.clone();
    assert_eq!(admin.answer(&visitor_room).await.status, 200);
    add(&admin, &visitor_room, &bo.uuid)
        .await
        .assert_error(409, "not-a-group-room");
    remove(&admin, &visitor_room, &admin.uuid)
        .await
        .assert_error(409, "not-a-group-room");
    assert_eq!(admin.messages(&visitor_room).await.len(), 2);
}

#[tokio::test]
async fn a_room_of_a_hundred_members_is_full() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    // 99 colleagues, stored directly (a hundred logins would only test Argon2).
    let store = chatgate::store::open(&app.config.database_url)
        .await
        .unwrap();
    let tenant: chatgate::domain::TenantId = admin.tenant.parse().unwrap();
    let mut users = Vec::new();
    for i in 0..100 {
        let agent = chatgate::domain::Agent {
            id: chatgate::domain::AgentId::new(),
            tenant_id: tenant,
            email: format!("agent{i}-{}@example.com", uuid::Uuid::new_v4().simple()),
            display_name: format!("Agent {i}"),
            avatar_url: None,
            role: chatgate::domain::Role::Agent,
            password_hash: "$argon2id$not-a-real-hash".into(),
            disabled: false,
        };
        store.insert_agent(&agent).await.unwrap();
        users.push(agent.id.0);
    }
    drop(store);
    let members: Vec<Value> = users[..99].iter().map(|u| json!({"uuid": u})).collect();
    let created = admin
        .call("POST", "/users/me/rooms", Some(json!({"users": members})))
        .await;
    assert_eq!(created.status, 201, "{}", created.body);
    let room = created.body["uuid"].as_str().unwrap().to_string();
    assert_eq!(user_uuids(&created.body).len(), 100);
    add(&admin, &room, &users[99].to_string())
        .await
        .assert_error(409, "room-full");
    // One leaves: there is room for one more.
    assert_eq!(
        remove(&admin, &room, &users[0].to_string()).await.status,
        204
    );
    let added = add(&admin, &room, &users[99].to_string()).await;
    assert_eq!(added.status, 200, "{}", added.body);
    assert_eq!(user_uuids(&added.body).len(), 100);
}

#[tokio::test]
async fn mentions_name_members_only_and_reach_the_mentioned_agent_alone() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let cy = admin.new_agent(&app, "Cy").await;
    let dee = admin.new_agent(&app, "Dee").await;
    let other = AgentClient::other_tenant_admin(&app).await;
    let room = admin.create_room(&[&bo, &cy]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let (mut admin_events, mut bo_events) = (admin.events().await, bo.events().await);
    let (mut cy_events, mut dee_events) = (cy.events().await, dee.events().await);

    // Bo, named twice, is mentioned once; the message carries it everywhere.
    let posted = post_mentioning(&admin, &room, "@Bo look", json!([bo.uuid, bo.uuid])).await;
    assert_eq!(posted.status, 201, "{}", posted.body);
    assert_eq!(posted.body["mentions"], json!([bo.uuid]));
    let message = posted.body["uuid"].as_str().unwrap().to_string();
    let created = cy_events
        .event_with("chatd_user_room_message_created", "uuid", &message)
        .await;
    assert_eq!(created["mentions"], json!([bo.uuid]));
    let listed = admin.messages(&room).await;
    let listed = listed
        .iter()
        .find(|m| m["uuid"] == message.as_str())
        .unwrap();
    assert_eq!(listed["mentions"], json!([bo.uuid]));

    let mention = bo_events.event("chatd_user_room_mention").await;
    assert_eq!(
        mention,
        json!({"room_uuid": room, "message_uuid": message, "user_uuid": bo.uuid})
    );
    // Nobody else hears of the mention (the author neither).
    let plain = admin.post(&room, "marker").await;
    assert_eq!(plain["mentions"], json!([]));
    for socket in [&mut admin_events, &mut cy_events] {
        let before = socket
            .events_before("chatd_user_room_message_created", "content", "marker")
            .await;
        assert!(
            before
                .iter()
                .all(|e| e["name"] != "chatd_user_room_mention"),
            "{before:?}"
        );
    }
    let marker = marker_room(&admin, &[&dee]).await;
    let heard = names_before_marker(&mut dee_events, &marker).await;
    assert!(
        heard.iter().all(|n| !n.starts_with("chatd_user_room")),
        "{heard:?}"
    );

    // Only members: a colleague outside, another tenant's agent, anyone
    // unknown or malformed is 400, and nothing is stored.
    let count = admin.messages(&room).await.len();
    for mentions in [
        json!([dee.uuid]),
        json!([bo.uuid, other.uuid]),
        json!([uuid::Uuid::new_v4()]),
    ] {
        let reply = post_mentioning(&admin, &room, "@someone", mentions).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get("mentions").is_some(),
            "{}",
            reply.body
        );
    }
    for mentions in [json!(["nope"]), json!(bo.uuid)] {
        let reply = post_mentioning(&admin, &room, "@someone", mentions).await;
        assert_eq!(reply.status, 400, "{}", reply.body);
    }
    assert_eq!(admin.messages(&room).await.len(), count);

    // One who left can no longer be mentioned.
    assert_eq!(remove(&admin, &room, &cy.uuid).await.status, 204);
    post_mentioning(&admin, &room, "@Cy?", json!([cy.uuid]))
        .await
        .assert_error(400, "invalid-data");

    // A visitor room's agent messages carry `mentions` too (empty).
    let visitor = app.visitor().await;
    app.send(&visitor.token, "Hello").await;
    assert_eq!(admin.answer(&visitor.conversation_id).await.status, 200);
    let reply = admin.post(&visitor.conversation_id, "Hi there").await;
    assert_eq!(reply["mentions"], json!([]));
}
