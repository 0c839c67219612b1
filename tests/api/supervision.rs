//! Reading before answering, and supervision (agent-api.md, "Queue preview
//! and supervision"): any agent reads a queued room; an admin lists, reads
//! and assigns every visitor room of the tenant. Reading marks nothing read,
//! sends no typing and tells the visitor nothing.

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Stomp, TestApp};
use crate::queue::{next_frame, next_message, subscribe_events};

fn contents(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect()
}

fn uuids(page: &Value) -> Vec<&str> {
    page["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uuid"].as_str().unwrap())
        .collect()
}

#[tokio::test]
async fn any_agent_reads_a_queued_room_before_answering_and_no_one_is_told() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let visitor = app.visitor().await;
    let room = visitor.conversation_id.clone();
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    subscribe_events(&mut stomp).await;
    app.send(&visitor.token, "Hello").await;
    app.send(&visitor.token, "Is anyone there?").await;
    next_message(&mut stomp).await;
    next_message(&mut stomp).await;

    for reader in [&bo, &admin] {
        let read = reader.call("GET", &format!("/queues/{room}"), None).await;
        assert_eq!(read.status, 200, "{}", read.body);
        assert_eq!(read.body["uuid"], room.as_str());
        assert_eq!(read.body["state"], "queued");
        assert_eq!(read.body["last_message"]["content"], "Is anyone there?");
        assert_eq!(read.body["users"][0]["kind"], "visitor");
        let page = reader
            .call(
                "GET",
                &format!("/queues/{room}/messages?direction=asc"),
                None,
            )
            .await;
        assert_eq!(page.status, 200, "{}", page.body);
        assert_eq!(contents(&page.body), ["Hello", "Is anyone there?"]);
        assert_eq!(page.body["total"], 2);
        // The room's messages take the same parameters.
        let newest = reader
            .call("GET", &format!("/queues/{room}/messages?limit=1"), None)
            .await;
        assert_eq!(contents(&newest.body), ["Is anyone there?"]);
        reader
            .call("GET", &format!("/queues/{room}/messages?limit=0"), None)
            .await
            .assert_error(400, "invalid-data");
    }
    // Reading is not answering: writing still needs the answer.
    bo.call(
        "POST",
        &format!("/users/me/rooms/{room}/messages"),
        Some(json!({"content": "peeking"})),
    )
    .await
    .assert_error(404, "unknown-room");

    // The answer is the marker: the visitor's next frame is its notice, so
    // the reads before it sent the visitor nothing (no read receipt, no
    // typing); and nothing was marked read: the admin has both unread.
    let answered = admin.answer(&room).await;
    assert_eq!(answered.status, 200, "{}", answered.body);
    assert_eq!(answered.body["unread_count"], 2, "{}", answered.body);
    let (destination, first) = next_frame(&mut stomp).await;
    assert_eq!(destination, "/queue/message", "{first}");
    assert_eq!(first["message"]["content"], "Admin joined");
    let listed = admin.messages(&room).await;
    assert!(listed.iter().all(|m| m["read_at"].is_null()), "{listed:?}");

    // Answered: it is not in the queue any more.
    for path in [
        format!("/queues/{room}"),
        format!("/queues/{room}/messages"),
    ] {
        bo.call("GET", &path, None)
            .await
            .assert_error(404, "unknown-room");
    }
    // Unknown, malformed, and an agent room's id.
    let team = admin.create_room(&[&bo]).await;
    for id in [
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".to_string(),
        team["uuid"].as_str().unwrap().to_string(),
    ] {
        for path in [format!("/queues/{id}"), format!("/queues/{id}/messages")] {
            bo.call("GET", &path, None)
                .await
                .assert_error(404, "unknown-room");
        }
    }
}

/// Three visitor rooms of two channels: open (the admin's), queued, and
/// closed (Bo's, on the second channel); and a team room.
struct Desk {
    admin: AgentClient,
    bo: AgentClient,
    second_channel: String,
    open: String,
    queued: String,
    closed: String,
}

impl Desk {
    async fn build(app: &TestApp) -> Desk {
        let admin = AgentClient::admin(app).await;
        let bo = admin.new_agent(app, "Bo").await;
        let second_channel = app
            .create_channel(&admin.token, json!({"name": "Second shop"}))
            .await;
        let open = app.visitor().await;
        app.send(&open.token, "Open question").await;
        assert_eq!(admin.answer(&open.conversation_id).await.status, 200);
        let queued = app.visitor().await;
        app.send(&queued.token, "Waiting").await;
        let closed = app.visitor_on(&second_channel).await;
        app.send(&closed.token, "Solved question").await;
        assert_eq!(bo.answer(&closed.conversation_id).await.status, 200);
        let done = bo
            .call(
                "PUT",
                &format!("/users/me/rooms/{}/state", closed.conversation_id),
                Some(json!({"state": "closed"})),
            )
            .await;
        assert_eq!(done.status, 200, "{}", done.body);
        admin.create_room(&[&bo]).await;
        Desk {
            admin,
            bo,
            second_channel,
            open: open.conversation_id,
            queued: queued.conversation_id,
            closed: closed.conversation_id,
        }
    }
}

#[tokio::test]
async fn an_admin_lists_every_visitor_room_with_filters() {
    let app = TestApp::spawn().await;
    let d = Desk::build(&app).await;
    let all = d.admin.call("GET", "/rooms", None).await;
    assert_eq!(all.status, 200, "{}", all.body);
    assert_eq!(all.body["total"], 3, "{}", all.body);
    // Newest activity first; no team room.
    assert_eq!(
        uuids(&all.body),
        [d.closed.as_str(), d.queued.as_str(), d.open.as_str()]
    );
    let closed = &all.body["items"][0];
    assert_eq!(closed["state"], "closed");
    assert_eq!(closed["assignee_uuid"], d.bo.uuid.as_str());
    assert_eq!(closed["last_message"]["content"], "Conversation closed");

    let cases = [
        ("state=queued".to_string(), vec![d.queued.as_str()]),
        ("state=open".to_string(), vec![d.open.as_str()]),
        ("state=closed".to_string(), vec![d.closed.as_str()]),
        (
            format!("channel_id={}", d.second_channel),
            vec![d.closed.as_str()],
        ),
        (
            format!("channel_id={}", app.channel_id),
            vec![d.queued.as_str(), d.open.as_str()],
        ),
        (
            format!("assignee_uuid={}", d.bo.uuid),
            vec![d.closed.as_str()],
        ),
        (
            format!("assignee_uuid={}&state=open", d.admin.uuid),
            vec![d.open.as_str()],
        ),
        (
            format!("assignee_uuid={}&state=closed", d.admin.uuid),
            vec![],
        ),
        (format!("channel_id={}", uuid::Uuid::new_v4()), vec![]),
    ];
    for (query, expected) in cases {
        let page = d.admin.call("GET", &format!("/rooms?{query}"), None).await;
        assert_eq!(page.status, 200, "{query}: {}", page.body);
        assert_eq!(uuids(&page.body), expected, "{query}");
        assert_eq!(page.body["total"], expected.len(), "{query}");
    }
    // Paged: the total counts every match.
    let first = d.admin.call("GET", "/rooms?limit=2", None).await;
    assert_eq!(uuids(&first.body), [d.closed.as_str(), d.queued.as_str()]);
    assert_eq!(first.body["total"], 3);
    let rest = d.admin.call("GET", "/rooms?limit=2&offset=2", None).await;
    assert_eq!(uuids(&rest.body), [d.open.as_str()]);
    assert_eq!(rest.body["total"], 3);

    for query in [
        "state=archived",
        "channel_id=nope",
        "assignee_uuid=nope",
        "limit=0",
        "offset=-1",
    ] {
        d.admin
            .call("GET", &format!("/rooms?{query}"), None)
            .await
            .assert_error(400, "invalid-data");
    }
}

#[tokio::test]
async fn supervision_is_for_admins_only() {
    let app = TestApp::spawn().await;
    let d = Desk::build(&app).await;
    // Bo is in the closed room and the queue is every agent's: still 403.
    for room in [&d.open, &d.closed, &d.queued] {
        for (method, path, body) in [
            ("GET", "/rooms".to_string(), None),
            ("GET", "/rooms?state=nonsense".to_string(), None),
            ("GET", format!("/rooms/{room}"), None),
            ("GET", format!("/rooms/{room}/messages"), None),
            (
                "POST",
                format!("/rooms/{room}/transfers"),
                Some(json!({"user_uuid": d.bo.uuid})),
            ),
            ("GET", "/rooms/not-a-uuid".to_string(), None),
        ] {
            d.bo.call(method, &path, body)
                .await
                .assert_error(403, "forbidden");
        }
    }
    // Nothing moved.
    let open = d
        .admin
        .call("GET", &format!("/rooms/{}", d.open), None)
        .await;
    assert_eq!(open.body["assignee_uuid"], d.admin.uuid.as_str());
    let queued = d.admin.call("GET", "/rooms?state=queued", None).await;
    assert_eq!(uuids(&queued.body), [d.queued.as_str()]);
}

#[tokio::test]
async fn an_admin_reads_any_room_and_marks_nothing_and_tells_no_one() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let visitor = app.visitor().await;
    let room = visitor.conversation_id.clone();
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    subscribe_events(&mut stomp).await;
    app.send(&visitor.token, "Hello").await;
    assert_eq!(bo.answer(&room).await.status, 200);
    bo.post(&room, "Hi, Bo here").await;
    app.send(&visitor.token, "My order is late").await;
    // Bo has not read the visitor's two messages; the visitor has seen
    // every frame so far: the four messages, and Bo's reply marked
    // DELIVERED (marked after it reached this socket, so it may come last).
    let (mut seen, mut delivered) = (0, false);
    while seen < 4 || !delivered {
        let (destination, body) = next_frame(&mut stomp).await;
        if destination != "/queue/message" {
            continue;
        }
        if body["type"] == "message.created" {
            seen += 1;
        } else if body["type"] == "message.updated"
            && body["message"]["content"] == "Hi, Bo here"
            && body["message"]["state"] == "DELIVERED"
        {
            delivered = true;
        }
    }
    let unread_before = bo.rooms().await[0]["unread_count"].clone();
    assert_eq!(unread_before, 2);

    let read = admin.call("GET", &format!("/rooms/{room}"), None).await;
    assert_eq!(read.status, 200, "{}", read.body);
    assert_eq!(read.body["state"], "open");
    assert_eq!(read.body["assignee_uuid"], bo.uuid.as_str());
    assert_eq!(read.body["last_message"]["content"], "My order is late");
    let page = admin
        .call(
            "GET",
            &format!("/rooms/{room}/messages?direction=asc"),
            None,
        )
        .await;
    assert_eq!(page.status, 200, "{}", page.body);
    assert_eq!(
        contents(&page.body),
        ["Hello", "Bo joined", "Hi, Bo here", "My order is late"]
    );
    assert_eq!(page.body["items"][1]["notice"]["type"], "agent_joined");
    let searched = admin
        .call("GET", &format!("/rooms/{room}/messages?search=order"), None)
        .await;
    assert_eq!(contents(&searched.body), ["My order is late"]);

    // What the visitor's page told: for the admin too (supervision), not
    // for an agent who is not in the room.
    let context = admin
        .call("GET", &format!("/users/me/rooms/{room}/visitor"), None)
        .await;
    assert_eq!(context.status, 200, "{}", context.body);
    let cy = admin.new_agent(&app, "Cy").await;
    cy.call("GET", &format!("/users/me/rooms/{room}/visitor"), None)
        .await
        .assert_error(404, "unknown-room");

    // Read-only: the admin did not join, Bo's unread count is unchanged,
    // and the visitor's next frame is Bo's marker reply.
    assert!(admin.rooms().await.is_empty());
    admin
        .call("GET", &format!("/users/me/rooms/{room}/messages"), None)
        .await
        .assert_error(404, "unknown-room");
    assert_eq!(bo.rooms().await[0]["unread_count"], 2);
    bo.post(&room, "marker").await;
    let (destination, next) = next_frame(&mut stomp).await;
    assert_eq!(destination, "/queue/message", "{next}");
    assert_eq!(next["message"]["content"], "marker");

    // Unknown, malformed, and a team room's id.
    let team = admin.create_room(&[&bo]).await;
    for id in [
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".to_string(),
        team["uuid"].as_str().unwrap().to_string(),
    ] {
        for path in [format!("/rooms/{id}"), format!("/rooms/{id}/messages")] {
            admin
                .call("GET", &path, None)
                .await
                .assert_error(404, "unknown-room");
        }
    }
}

#[tokio::test]
async fn an_admin_assigns_a_queued_or_open_room_but_not_a_closed_one() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let cy = admin.new_agent(&app, "Cy").await;
    let mut admin_events = admin.events().await;
    let mut bo_events = bo.events().await;
    let mut cy_events = cy.events().await;
    let visitor = app.visitor().await;
    let room = visitor.conversation_id.clone();
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    subscribe_events(&mut stomp).await;
    app.send(&visitor.token, "Hello").await;
    next_message(&mut stomp).await;
    let path = format!("/rooms/{room}/transfers");

    // Refused first: nothing changes.
    let foreign = AgentClient::other_tenant_admin(&app).await;
    let gone = admin.new_agent(&app, "Gone").await;
    let disabled = admin
        .call(
            "PATCH",
            &format!("/agents/{}", gone.uuid),
            Some(json!({"disabled": true})),
        )
        .await;
    assert_eq!(disabled.status, 200, "{}", disabled.body);
    for to in [
        json!(foreign.uuid),
        json!(uuid::Uuid::new_v4()),
        json!(gone.uuid),
        json!("nope"),
        json!(null),
    ] {
        admin
            .call("POST", &path, Some(json!({"user_uuid": to})))
            .await
            .assert_error(400, "invalid-data");
    }
    let team = admin.create_room(&[&bo]).await;
    for id in [
        uuid::Uuid::new_v4().to_string(),
        "not-a-uuid".to_string(),
        team["uuid"].as_str().unwrap().to_string(),
    ] {
        admin
            .call(
                "POST",
                &format!("/rooms/{id}/transfers"),
                Some(json!({"user_uuid": bo.uuid})),
            )
            .await
            .assert_error(404, "unknown-room");
    }
    let queued = admin.call("GET", &format!("/queues/{room}"), None).await;
    assert_eq!(queued.status, 200, "still queued: {}", queued.body);

    // A queued room: Bo joins; it leaves the queue.
    let assigned = admin
        .call("POST", &path, Some(json!({"user_uuid": bo.uuid})))
        .await;
    assert_eq!(assigned.status, 200, "{}", assigned.body);
    assert_eq!(assigned.body["state"], "open");
    assert_eq!(assigned.body["assignee_uuid"], bo.uuid.as_str());
    let heard = next_message(&mut stomp).await;
    assert_eq!(
        heard["message"]["notice"],
        json!({"type": "agent_joined", "params": {"agent": "Bo"}})
    );
    let created = bo_events
        .event_with("chatd_user_room_created", "uuid", &room)
        .await;
    assert_eq!(created["assignee_uuid"], bo.uuid.as_str());
    let left_queue = admin_events
        .event_with("chatd_queue_updated", "action", "assigned")
        .await;
    assert_eq!(left_queue["room"]["uuid"], room.as_str());
    assert!(bo.rooms().await.iter().any(|r| r["uuid"] == room.as_str()));
    assert!(admin
        .rooms()
        .await
        .iter()
        .all(|r| r["uuid"] != room.as_str()));

    // An open room: Cy joins, Bo leaves.
    let moved = admin
        .call("POST", &path, Some(json!({"user_uuid": cy.uuid})))
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    assert_eq!(moved.body["assignee_uuid"], cy.uuid.as_str());
    let members: Vec<&Value> = moved.body["users"]
        .as_array()
        .unwrap()
        .iter()
        .map(|u| &u["uuid"])
        .collect();
    assert!(members.contains(&&json!(cy.uuid)), "{}", moved.body);
    assert!(!members.contains(&&json!(bo.uuid)), "{}", moved.body);
    let heard = next_message(&mut stomp).await;
    assert_eq!(
        heard["message"]["notice"],
        json!({"type": "transferred", "params": {"agent": "Cy", "from": "Bo"}})
    );
    let created = cy_events
        .event_with("chatd_user_room_created", "uuid", &room)
        .await;
    assert_eq!(created["assignee_uuid"], cy.uuid.as_str());
    let state = bo_events.event("chatd_room_state_updated").await;
    assert_eq!(state["assignee_uuid"], cy.uuid.as_str());
    bo.call("GET", &format!("/users/me/rooms/{room}/messages"), None)
        .await
        .assert_error(404, "unknown-room");
    app.send(&visitor.token, "Thanks").await;
    cy_events
        .event_with("chatd_user_room_message_created", "content", "Thanks")
        .await;

    // To its own assignee: nothing changes (no notice: the visitor's next
    // frame is Cy's marker reply).
    let same = admin
        .call("POST", &path, Some(json!({"user_uuid": cy.uuid})))
        .await;
    assert_eq!(same.status, 200, "{}", same.body);
    assert_eq!(same.body["assignee_uuid"], cy.uuid.as_str());
    next_message(&mut stomp).await; // "Thanks"
    cy.post(&room, "marker").await;
    assert_eq!(
        next_message(&mut stomp).await["message"]["content"],
        "marker"
    );

    // A closed room is its agent's to reopen first.
    let closed = cy
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/state"),
            Some(json!({"state": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    admin
        .call("POST", &path, Some(json!({"user_uuid": bo.uuid})))
        .await
        .assert_error(409, "room-closed");
    let after = admin.call("GET", &format!("/rooms/{room}"), None).await;
    assert_eq!(after.body["state"], "closed");
    assert_eq!(after.body["assignee_uuid"], cy.uuid.as_str());
}
