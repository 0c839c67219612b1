//! Agent rooms: `POST /users/me/rooms`, `GET /users/me/rooms` (order, the
//! `user_uuid` filter, paging, unread counts, last message) and
//! `PUT /users/me/rooms/<room>/read` (agent-api.md, "Rooms").

use std::time::Duration;

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, TestApp};

/// Lets the millisecond clock move on, so "newest activity" is unambiguous.
async fn tick() {
    tokio::time::sleep(Duration::from_millis(15)).await;
}

fn uuid_of(value: &Value) -> String {
    value["uuid"].as_str().expect("uuid").to_string()
}

async fn create(agent: &AgentClient, users: Value) -> Reply {
    agent
        .call("POST", "/users/me/rooms", Some(json!({"users": users})))
        .await
}

/// `GET /users/me/rooms<query>`, asserted 200.
async fn list(agent: &AgentClient, query: &str) -> Value {
    let reply = agent
        .call("GET", &format!("/users/me/rooms{query}"), None)
        .await;
    assert_eq!(reply.status, 200, "{query}: {}", reply.body);
    reply.body
}

fn uuids(page: &Value) -> Vec<String> {
    page["items"]
        .as_array()
        .expect("items")
        .iter()
        .map(uuid_of)
        .collect()
}

/// The room as `agent` sees it in its list.
async fn seen_by(agent: &AgentClient, room: &str) -> Value {
    agent
        .rooms()
        .await
        .into_iter()
        .find(|r| r["uuid"] == room)
        .unwrap_or_else(|| panic!("room {room} not listed for {}", agent.email))
}

async fn unread(agent: &AgentClient, room: &str) -> i64 {
    seen_by(agent, room).await["unread_count"]
        .as_i64()
        .expect("unread_count")
}

async fn read(agent: &AgentClient, room: &str, body: Option<Value>) -> Reply {
    agent
        .call("PUT", &format!("/users/me/rooms/{room}/read"), body)
        .await
}

#[tokio::test]
async fn creating_a_room_with_one_agent_adds_the_caller_and_returns_201() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;

    let reply = ana
        .call(
            "POST",
            "/users/me/rooms",
            Some(json!({"name": "Plans", "users": [{"uuid": bob.uuid}]})),
        )
        .await;

    assert_eq!(reply.status, 201, "{}", reply.body);
    let room = &reply.body;
    assert!(uuid::Uuid::parse_str(room["uuid"].as_str().unwrap()).is_ok());
    assert_eq!(room["name"], "Plans");
    assert_eq!(room["kind"], "agent");
    assert_eq!(room["state"], "open");
    assert_eq!(room["tenant_uuid"], ana.tenant);
    assert_eq!(room["channel_id"], Value::Null);
    assert_eq!(room["assignee_uuid"], Value::Null);
    assert_eq!(room["unread_count"], 0);
    assert_eq!(room["last_message"], Value::Null);
    assert!(room["created_at"].as_str().is_some(), "{room}");
    let users = room["users"].as_array().unwrap();
    let mut members: Vec<&str> = users.iter().map(|u| u["uuid"].as_str().unwrap()).collect();
    members.sort();
    let mut expected = vec![ana.uuid.as_str(), bob.uuid.as_str()];
    expected.sort();
    assert_eq!(members, expected, "the caller was added");
    for user in users {
        assert_eq!(user["kind"], "agent", "{user}");
        assert_eq!(user["tenant_uuid"], ana.tenant, "{user}");
        assert_eq!(user["wazo_uuid"], users[0]["wazo_uuid"], "one server id");
    }

    // Both members see it; nobody else does.
    let id = uuid_of(room);
    assert_eq!(seen_by(&ana, &id).await["name"], "Plans");
    assert_eq!(seen_by(&bob, &id).await["users"], room["users"]);
    assert!(admin.rooms().await.is_empty());
}

#[tokio::test]
async fn the_same_members_again_return_the_same_room() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let carl = admin.new_agent(&app, "Carl").await;
    let first = ana.create_room(&[&bob]).await;
    ana.post(&uuid_of(&first), "first words").await;

    // The other member asks, listing both of them in the other order.
    let again = create(&bob, json!([{"uuid": ana.uuid}, {"uuid": bob.uuid}])).await;
    assert_eq!(again.status, 201, "{}", again.body);
    assert_eq!(uuid_of(&again.body), uuid_of(&first));
    // Returned as Bob sees it: with its history's newest message, unread by him.
    assert_eq!(
        again.body["last_message"]["content"], "first words",
        "{}",
        again.body
    );
    assert_eq!(again.body["unread_count"], 1, "{}", again.body);
    let by_ana = create(&ana, json!([{"uuid": bob.uuid}])).await;
    assert_eq!(uuid_of(&by_ana.body), uuid_of(&first));
    assert_eq!(ana.rooms().await.len(), 1, "no second room");
    assert_eq!(
        ana.messages(&uuid_of(&first)).await.len(),
        1,
        "history kept"
    );

    // Another member set is another room.
    let three = ana.create_room(&[&bob, &carl]).await;
    assert_ne!(uuid_of(&three), uuid_of(&first));
    assert_eq!(ana.rooms().await.len(), 2);
}

#[tokio::test]
async fn a_user_listed_twice_is_400_duplicate_user() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;

    for users in [
        json!([{"uuid": bob.uuid}, {"uuid": bob.uuid}]),
        json!([{"uuid": ana.uuid}, {"uuid": bob.uuid}, {"uuid": ana.uuid}]),
    ] {
        let reply = create(&ana, users.clone()).await;
        reply.assert_error(400, "duplicate-user");
    }
    assert!(ana.rooms().await.is_empty());
}

#[tokio::test]
async fn a_room_needs_2_to_100_known_agents_of_the_tenant() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let gone = admin.new_agent(&app, "Gone").await;
    let off = admin.new_agent(&app, "Off").await;
    admin
        .call("DELETE", &format!("/agents/{}", gone.uuid), None)
        .await;
    admin
        .call(
            "PATCH",
            &format!("/agents/{}", off.uuid),
            Some(json!({"disabled": true})),
        )
        .await;
    let random = |n: usize| -> Vec<Value> {
        (0..n)
            .map(|_| json!({"uuid": uuid::Uuid::new_v4()}))
            .collect()
    };

    let cases: Vec<(&str, Value)> = vec![
        ("no one but the caller", json!([])),
        ("only the caller, named", json!([{"uuid": ana.uuid}])),
        ("an unknown agent", json!([{"uuid": uuid::Uuid::new_v4()}])),
        ("a deleted agent", json!([{"uuid": gone.uuid}])),
        ("a disabled agent", json!([{"uuid": off.uuid}])),
        ("101 members", Value::Array(random(100))),
    ];
    for (what, users) in cases {
        let reply = create(&ana, users).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get("users").is_some(),
            "{what}: {}",
            reply.body
        );
    }
    // The size is checked as such, not as unknown users.
    let too_many = create(&ana, Value::Array(random(100))).await;
    let message = too_many.body["message"].as_str().unwrap();
    assert!(message.contains("100"), "{message}");

    for users in [
        json!([{"uuid": "not-a-uuid"}]),
        json!([{"id": ana.uuid}]),
        json!("everyone"),
    ] {
        create(&ana, users).await.assert_error(400, "invalid-data");
    }
    let no_users = ana
        .call("POST", "/users/me/rooms", Some(json!({"name": "Alone"})))
        .await;
    no_users.assert_error(400, "invalid-data");
    assert!(ana.rooms().await.is_empty(), "nothing was created");
}

#[tokio::test]
async fn rooms_are_listed_newest_activity_first_with_their_last_message() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let carl = admin.new_agent(&app, "Carl").await;
    let with_bob = uuid_of(&ana.create_room(&[&bob]).await);
    tick().await;
    let with_carl = uuid_of(&ana.create_room(&[&carl]).await);
    tick().await;
    let with_both = uuid_of(&ana.create_room(&[&bob, &carl]).await);
    tick().await;

    assert_eq!(
        uuids(&list(&ana, "").await),
        [with_both.as_str(), with_carl.as_str(), with_bob.as_str()],
        "newest first when nothing was said"
    );

    bob.post(with_bob.as_str(), "older").await;
    tick().await;
    let newest = bob.post(with_bob.as_str(), "newest").await;
    tick().await;
    let page = list(&ana, "").await;
    assert_eq!(
        uuids(&page),
        [with_bob.as_str(), with_both.as_str(), with_carl.as_str()]
    );
    let first = &page["items"][0];
    assert_eq!(first["last_message"]["uuid"], newest["uuid"]);
    assert_eq!(first["last_message"]["content"], "newest");
    assert_eq!(page["items"][1]["last_message"], Value::Null);
    assert_eq!(page["total"], 3);
    assert_eq!(page["filtered"], 3);

    carl.post(with_carl.as_str(), "hi Ana").await;
    assert_eq!(
        uuids(&list(&ana, "").await),
        [with_carl.as_str(), with_bob.as_str(), with_both.as_str()]
    );
    // Bob's list holds only his rooms, in his order.
    assert_eq!(
        uuids(&list(&bob, "").await),
        [with_bob.as_str(), with_both.as_str()]
    );
}

#[tokio::test]
async fn the_user_uuid_filter_keeps_rooms_with_all_the_listed_users() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let carl = admin.new_agent(&app, "Carl").await;
    let with_bob = uuid_of(&ana.create_room(&[&bob]).await);
    tick().await;
    let with_carl = uuid_of(&ana.create_room(&[&carl]).await);
    tick().await;
    let with_both = uuid_of(&ana.create_room(&[&bob, &carl]).await);

    let bobs = list(&ana, &format!("?user_uuid={}", bob.uuid)).await;
    assert_eq!(uuids(&bobs), [with_both.as_str(), with_bob.as_str()]);
    assert_eq!(bobs["filtered"], 2);
    assert_eq!(bobs["total"], 3, "total counts all of the caller's rooms");

    for query in [
        format!("?user_uuid={},{}", bob.uuid, carl.uuid),
        format!("?user_uuid={}%2C{}", bob.uuid, carl.uuid),
        format!("?user_uuid={}%2c{}", carl.uuid, bob.uuid),
    ] {
        let both = list(&ana, &query).await;
        assert_eq!(uuids(&both), [with_both.as_str()], "{query}");
        assert_eq!(both["filtered"], 1, "{query}");
    }
    let with_me = list(&ana, &format!("?user_uuid={},{}", ana.uuid, carl.uuid)).await;
    assert_eq!(uuids(&with_me), [with_both.as_str(), with_carl.as_str()]);
    let stranger = list(&ana, &format!("?user_uuid={}", admin.uuid)).await;
    assert_eq!(stranger["items"], json!([]));
    assert_eq!(stranger["filtered"], 0);

    let bad = ana.call("GET", "/users/me/rooms?user_uuid=bob", None).await;
    bad.assert_error(400, "invalid-data");
    assert!(
        bad.body["details"].get("user_uuid").is_some(),
        "{}",
        bad.body
    );
}

#[tokio::test]
async fn unread_counts_the_other_members_messages_until_read() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let room = uuid_of(&ana.create_room(&[&bob]).await);

    for text in ["one", "two", "three"] {
        bob.post(&room, text).await;
    }
    assert_eq!(unread(&ana, &room).await, 3);
    assert_eq!(unread(&bob, &room).await, 0, "own messages are read");

    let partly = read(&ana, &room, Some(json!({"up_to_seq": 1}))).await;
    assert_eq!(partly.status, 204, "{}", partly.body);
    assert_eq!(unread(&ana, &room).await, 2);

    let all = read(&ana, &room, None).await;
    assert_eq!(all.status, 204, "{}", all.body);
    assert_eq!(all.body, Value::Null);
    assert_eq!(unread(&ana, &room).await, 0);
    assert_eq!(unread(&bob, &room).await, 0, "Ana's read is hers only");

    bob.post(&room, "four").await;
    bob.post(&room, "five").await;
    ana.post(&room, "reading you").await;
    assert_eq!(unread(&ana, &room).await, 2, "her own reply does not count");
    assert_eq!(unread(&bob, &room).await, 1);

    read(&ana, &room, Some(json!({"up_to_seq": 4}))).await;
    assert_eq!(unread(&ana, &room).await, 1);
    // A read mark never moves back.
    let back = read(&ana, &room, Some(json!({"up_to_seq": 1}))).await;
    assert_eq!(back.status, 204, "{}", back.body);
    assert_eq!(unread(&ana, &room).await, 1);
    // Past the end is the end.
    read(&ana, &room, Some(json!({"up_to_seq": 1000}))).await;
    assert_eq!(unread(&ana, &room).await, 0);

    for body in [json!({"up_to_seq": -1}), json!({"up_to_seq": "all"})] {
        let reply = read(&bob, &room, Some(body.clone())).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get("up_to_seq").is_some(),
            "{body}: {}",
            reply.body
        );
    }
    assert_eq!(unread(&bob, &room).await, 1, "a refused read marks nothing");
}

#[tokio::test]
async fn rooms_page_with_limit_and_offset() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let bob = admin.new_agent(&app, "Bob").await;
    let carl = admin.new_agent(&app, "Carl").await;
    let mut created = Vec::new();
    for others in [vec![&bob], vec![&carl], vec![&bob, &carl]] {
        created.push(uuid_of(&ana.create_room(&others).await));
        tick().await;
    }
    created.reverse(); // newest first
    let all = uuids(&list(&ana, "").await);
    assert_eq!(all, created);

    let first = list(&ana, "?limit=2").await;
    assert_eq!(uuids(&first), all[..2]);
    assert_eq!(first["total"], 3);
    assert_eq!(first["filtered"], 3, "filtered counts beyond the page");
    let second = list(&ana, "?limit=2&offset=2").await;
    assert_eq!(uuids(&second), all[2..]);
    let middle = list(&ana, "?limit=1&offset=1").await;
    assert_eq!(uuids(&middle), all[1..2]);
    let past = list(&ana, "?offset=3").await;
    assert_eq!(past["items"], json!([]));
    assert_eq!(past["total"], 3);

    for query in ["?limit=abc", "?offset=-1"] {
        let reply = ana
            .call("GET", &format!("/users/me/rooms{query}"), None)
            .await;
        reply.assert_error(400, "invalid-data");
    }
}

#[tokio::test]
async fn a_deleted_message_is_not_unread_and_a_zero_limit_is_400() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let room = uuid_of(&admin.create_room(&[&bo]).await);
    let kept = bo.post(&room, "kept").await;
    let gone = bo.post(&room, "oops").await;
    assert_eq!(unread(&admin, &room).await, 2);
    let deleted = bo
        .call(
            "DELETE",
            &format!("/users/me/rooms/{room}/messages/{}", uuid_of(&gone)),
            None,
        )
        .await;
    assert_eq!(deleted.status, 200, "{}", deleted.body);
    assert_eq!(unread(&admin, &room).await, 1, "only {kept}");
    admin
        .call("GET", "/users/me/rooms?limit=0", None)
        .await
        .assert_error(400, "invalid-data");
}

#[tokio::test]
async fn an_agents_own_answer_and_replies_never_count_as_unread_for_it() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let visitor = app.visitor().await;
    for text in ["one", "two", "three"] {
        assert_eq!(app.send(&visitor.token, text).await.status, 200);
    }
    let answered = ana.answer(&visitor.conversation_id).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    // Three from the visitor; "Ana joined" is Ana's own doing.
    assert_eq!(answered.body["unread_count"], 3, "{}", answered.body);
    assert_eq!(unread(&ana, &visitor.conversation_id).await, 3);
    ana.post(&visitor.conversation_id, "hello").await;
    assert_eq!(unread(&ana, &visitor.conversation_id).await, 3);
    assert_eq!(read(&ana, &visitor.conversation_id, None).await.status, 204);
    assert_eq!(unread(&ana, &visitor.conversation_id).await, 0);
    assert_eq!(app.send(&visitor.token, "four").await.status, 200);
    assert_eq!(unread(&ana, &visitor.conversation_id).await, 1);
}
