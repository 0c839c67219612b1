//! Labels (desk-api.md, "Support desk"): a tenant's labels (`GET/POST
//! /labels`, `PATCH/DELETE /labels/<uuid>`; changes for admins), put on
//! visitor rooms (`PUT /users/me/rooms/<room>/labels`), carried by every
//! room shape and told to the room's agents (`chatd_room_labels_updated`).

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, TestApp};

async fn create(agent: &AgentClient, name: &str, color: &str) -> Reply {
    agent
        .call(
            "POST",
            "/labels",
            Some(json!({"name": name, "color": color})),
        )
        .await
}

async fn label(agent: &AgentClient, name: &str, color: &str) -> String {
    let reply = create(agent, name, color).await;
    assert_eq!(reply.status, 201, "{}", reply.body);
    reply.body["uuid"].as_str().unwrap().to_string()
}

async fn put_labels(agent: &AgentClient, room: &str, labels: Value) -> Reply {
    agent
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/labels"),
            Some(json!({ "labels": labels })),
        )
        .await
}

fn names(room: &Value) -> Vec<&str> {
    room["labels"]
        .as_array()
        .unwrap_or_else(|| panic!("no labels in {room}"))
        .iter()
        .map(|l| l["name"].as_str().unwrap())
        .collect()
}

/// A visitor room answered by `agent`.
async fn visitor_room(app: &TestApp, agent: &AgentClient) -> String {
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    let reply = agent.answer(&visitor.conversation_id).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    visitor.conversation_id
}

fn assert_names_field(reply: &Reply, field: &str) {
    reply.assert_error(400, "invalid-data");
    assert!(
        reply.body["details"][field].is_array(),
        "{field}: {}",
        reply.body
    );
}

#[tokio::test]
async fn admins_create_rename_recolour_and_delete_labels_and_every_agent_lists_them() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;

    let created = create(&admin, "  VIP ", "#FF0000").await;
    assert_eq!(created.status, 201, "{}", created.body);
    let vip = created.body["uuid"].as_str().unwrap().to_string();
    assert_eq!(
        created.body,
        json!({"uuid": vip, "name": "VIP", "color": "#ff0000"})
    );
    let billing = label(&admin, "billing", "#00aa00").await;

    // Any agent lists them, by name whatever its case.
    let listed = bo.call("GET", "/labels", None).await;
    assert_eq!(listed.status, 200, "{}", listed.body);
    let items = listed.body["items"].as_array().unwrap();
    let listed_names: Vec<&str> = items.iter().map(|l| l["name"].as_str().unwrap()).collect();
    assert_eq!(listed_names, ["billing", "VIP"]);
    assert_eq!(listed.body["total"], 2);

    // A name is unique whatever its case, on creation and on rename.
    create(&admin, "vip", "#123456")
        .await
        .assert_error(409, "label-already-exists");
    admin
        .call(
            "PATCH",
            &format!("/labels/{billing}"),
            Some(json!({"name": "Vip"})),
        )
        .await
        .assert_error(409, "label-already-exists");
    // Its own name in another case is a rename.
    let renamed = admin
        .call(
            "PATCH",
            &format!("/labels/{vip}"),
            Some(json!({"name": "vip", "color": "#0000ff"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    assert_eq!(renamed.body["name"], "vip");
    assert_eq!(renamed.body["color"], "#0000ff");
    // A patch of the colour alone keeps the name.
    let recoloured = admin
        .call(
            "PATCH",
            &format!("/labels/{vip}"),
            Some(json!({"color": "#abcdef"})),
        )
        .await;
    assert_eq!(recoloured.body["name"], "vip", "{}", recoloured.body);
    assert_eq!(recoloured.body["color"], "#abcdef");

    let deleted = admin.call("DELETE", &format!("/labels/{vip}"), None).await;
    assert_eq!(deleted.status, 204, "{}", deleted.body);
    admin
        .call("DELETE", &format!("/labels/{vip}"), None)
        .await
        .assert_error(404, "unknown-label");
    admin
        .call(
            "PATCH",
            &format!("/labels/{vip}"),
            Some(json!({"color": "#000000"})),
        )
        .await
        .assert_error(404, "unknown-label");
    admin
        .call("DELETE", "/labels/not-a-uuid", None)
        .await
        .assert_error(404, "unknown-label");
    let left = bo.call("GET", "/labels", None).await;
    assert_eq!(left.body["total"], 1, "{}", left.body);
    // The name is free again.
    assert_eq!(create(&admin, "VIP", "#ff0000").await.status, 201);
}

#[tokio::test]
async fn only_admins_create_change_and_delete_labels() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let vip = label(&admin, "VIP", "#ff0000").await;

    create(&bo, "Mine", "#ff0000")
        .await
        .assert_error(403, "forbidden");
    bo.call(
        "PATCH",
        &format!("/labels/{vip}"),
        Some(json!({"name": "Hacked"})),
    )
    .await
    .assert_error(403, "forbidden");
    bo.call("DELETE", &format!("/labels/{vip}"), None)
        .await
        .assert_error(403, "forbidden");
    let listed = bo.call("GET", "/labels", None).await;
    assert_eq!(listed.body["items"][0]["name"], "VIP", "{}", listed.body);
    assert_eq!(listed.body["total"], 1);
}

#[tokio::test]
async fn bad_names_and_colours_are_refused_naming_the_field() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    for name in ["", "   ", &"x".repeat(51), "a\nb"] {
        assert_names_field(&create(&admin, name, "#ff0000").await, "name");
    }
    assert_eq!(create(&admin, &"é".repeat(50), "#ff0000").await.status, 201);
    for color in ["", "red", "ff0000", "#ff00", "#ff00000", "#gg0000"] {
        assert_names_field(&create(&admin, "Ok", color).await, "color");
    }
    let no_color = admin
        .call("POST", "/labels", Some(json!({"name": "Ok"})))
        .await;
    assert_names_field(&no_color, "color");
    let vip = label(&admin, "VIP", "#ff0000").await;
    let bad_patch = admin
        .call(
            "PATCH",
            &format!("/labels/{vip}"),
            Some(json!({"color": "blue"})),
        )
        .await;
    assert_names_field(&bad_patch, "color");
    let listed = admin.call("GET", "/labels", None).await;
    assert_eq!(
        listed.body["total"], 2,
        "nothing else stored: {}",
        listed.body
    );
    assert_eq!(listed.body["items"][1]["color"], "#ff0000");
}

#[tokio::test]
async fn another_tenant_neither_sees_nor_changes_nor_uses_the_labels() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let other = AgentClient::other_tenant_admin(&app).await;
    let vip = label(&admin, "VIP", "#ff0000").await;
    let room = visitor_room(&app, &admin).await;

    // The same name is free in another tenant.
    let theirs = label(&other, "VIP", "#00ff00").await;
    let listed = other.call("GET", "/labels", None).await;
    assert_eq!(listed.body["total"], 1, "{}", listed.body);
    assert_eq!(listed.body["items"][0]["uuid"], theirs.as_str());

    other
        .call(
            "PATCH",
            &format!("/labels/{vip}"),
            Some(json!({"name": "Mine"})),
        )
        .await
        .assert_error(404, "unknown-label");
    other
        .call("DELETE", &format!("/labels/{vip}"), None)
        .await
        .assert_error(404, "unknown-label");
    put_labels(&other, &room, json!([theirs]))
        .await
        .assert_error(404, "unknown-room");
    // Another tenant's label on one's own room: 400 naming labels.
    assert_names_field(&put_labels(&admin, &room, json!([theirs])).await, "labels");
    let ours = admin.call("GET", "/labels", None).await;
    assert_eq!(ours.body["items"][0]["name"], "VIP", "{}", ours.body);
}

#[tokio::test]
async fn members_put_labels_on_visitor_rooms_and_every_room_shape_carries_them() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let vip = label(&admin, "VIP", "#ff0000").await;
    let billing = label(&admin, "billing", "#00aa00").await;
    let room = visitor_room(&app, &bo).await;

    // An agent (not an admin) puts labels on its room: 200 Room.
    let put = put_labels(&bo, &room, json!([vip, billing, vip])).await;
    assert_eq!(put.status, 200, "{}", put.body);
    assert_eq!(put.body["uuid"], room.as_str());
    assert_eq!(names(&put.body), ["billing", "VIP"]);
    assert_eq!(
        put.body["labels"][1],
        json!({"uuid": vip, "name": "VIP", "color": "#ff0000"})
    );

    // The agent's list, the admin's supervision list and room.
    let mine = bo.rooms().await;
    let listed = mine.iter().find(|r| r["uuid"] == room.as_str()).unwrap();
    assert_eq!(names(listed), ["billing", "VIP"]);
    let supervised = admin.call("GET", &format!("/rooms/{room}"), None).await;
    assert_eq!(
        names(&supervised.body),
        ["billing", "VIP"],
        "{}",
        supervised.body
    );
    // Filtered by label, in SQL, for the admin and for the member.
    let other_room = visitor_room(&app, &bo).await;
    let by_label = admin
        .call("GET", &format!("/rooms?label_uuid={vip}"), None)
        .await;
    let ids: Vec<&str> = by_label.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uuid"].as_str().unwrap())
        .collect();
    assert_eq!(ids, [room.as_str()], "{}", by_label.body);
    let bos = bo
        .call(
            "GET",
            &format!("/users/me/rooms?label_uuid={billing}"),
            None,
        )
        .await;
    assert_eq!(
        bos.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        bos.body
    );
    assert_eq!(bos.body["items"][0]["uuid"], room.as_str());
    let unlabelled = admin
        .call("GET", &format!("/rooms/{other_room}"), None)
        .await;
    assert_eq!(unlabelled.body["labels"], json!([]), "{}", unlabelled.body);
    // A room shape that is not a visitor room's carries an empty list.
    let team = admin.create_room(&[&bo]).await;
    assert_eq!(team["labels"], json!([]), "{team}");

    // Replacing the labels: exactly the list given; [] takes them all off.
    let only = put_labels(&bo, &room, json!([billing])).await;
    assert_eq!(names(&only.body), ["billing"]);
    let none = put_labels(&bo, &room, json!([])).await;
    assert_eq!(none.body["labels"], json!([]), "{}", none.body);

    // Not a member (even an admin): 404; a team room: 409.
    put_labels(&admin, &room, json!([vip]))
        .await
        .assert_error(404, "unknown-room");
    let team_id = team["uuid"].as_str().unwrap();
    put_labels(&bo, team_id, json!([vip]))
        .await
        .assert_error(409, "not-a-visitor-room");

    // Unknown or malformed labels, too many, no list: 400 naming labels.
    let unknown = uuid::Uuid::new_v4().to_string();
    assert_names_field(
        &put_labels(&bo, &room, json!([vip, unknown])).await,
        "labels",
    );
    assert_names_field(&put_labels(&bo, &room, json!(["nope"])).await, "labels");
    assert_names_field(&put_labels(&bo, &room, json!([42])).await, "labels");
    let mut many = Vec::new();
    for i in 0..21 {
        many.push(label(&admin, &format!("L{i}"), "#101010").await);
    }
    assert_names_field(&put_labels(&bo, &room, json!(many)).await, "labels");
    assert_eq!(put_labels(&bo, &room, json!(many[..20])).await.status, 200);
    let no_list = bo
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/labels"),
            Some(json!({})),
        )
        .await;
    assert_eq!(no_list.status, 400, "{}", no_list.body);
    // Refusals changed nothing.
    let after = admin.call("GET", &format!("/rooms/{room}"), None).await;
    assert_eq!(after.body["labels"].as_array().unwrap().len(), 20);
}

#[tokio::test]
async fn the_rooms_agents_hear_of_label_changes_and_a_deleted_label_leaves_every_room() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let vip = label(&admin, "VIP", "#ff0000").await;
    let room = visitor_room(&app, &bo).await;
    let mut events = bo.events().await;

    assert_eq!(put_labels(&bo, &room, json!([vip])).await.status, 200);
    let heard = events
        .event_with("chatd_room_labels_updated", "uuid", &room)
        .await;
    assert_eq!(names(&heard), ["VIP"]);
    assert_eq!(heard["state"], "open");

    // A rename reaches the rooms carrying the label.
    let renamed = admin
        .call(
            "PATCH",
            &format!("/labels/{vip}"),
            Some(json!({"name": "Gold"})),
        )
        .await;
    assert_eq!(renamed.status, 200, "{}", renamed.body);
    let heard = events
        .event_with("chatd_room_labels_updated", "uuid", &room)
        .await;
    assert_eq!(names(&heard), ["Gold"]);

    // Deleting the label takes it off the room, and says so.
    let deleted = admin.call("DELETE", &format!("/labels/{vip}"), None).await;
    assert_eq!(deleted.status, 204);
    let heard = events
        .event_with("chatd_room_labels_updated", "uuid", &room)
        .await;
    assert_eq!(heard["labels"], json!([]), "{heard}");
    let listed = bo.rooms().await;
    let r = listed.iter().find(|r| r["uuid"] == room.as_str()).unwrap();
    assert_eq!(r["labels"], json!([]), "{r}");
}
