//! Data rights (desk-api.md, "Integrations"): an admin exports everything
//! held about a visitor (`GET /visitors/<conversation_id>/export`, a zip)
//! or erases it (`DELETE /visitors/<conversation_id>` → 204, the
//! conversation kept as an anonymous shell); retention erases old closed
//! conversations on a schedule; the audit log (`GET /audit`) records who
//! did what and when.

use std::io::Read;
use std::time::Duration;

use chatgate::domain::identity::sign;
use reqwest::multipart::{Form, Part};
use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, Stomp, TestApp, VisitorSession, WAIT};

/// A visitor who gave a name and an email, wrote, sent a file, chose a
/// quick reply, was answered by the admin (with a private note), was
/// closed, and rated: every kind of data an export and an erasure cover.
struct Story {
    admin: AgentClient,
    visitor: VisitorSession,
    file_id: String,
    file_url: String,
}

async fn story(app: &TestApp) -> Story {
    let admin = AgentClient::admin(app).await;
    let reply = app
        .post(
            "/chatplugin.authenticate",
            &json!({"channel_id": app.channel_id,
                    "visitor": {"name": "Zoé Martin", "email": "zoe@example.com"},
                    "context": {"url": "https://shop.example.com/cart", "title": "Cart"}}),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let visitor = VisitorSession::from(&reply.body);
    let sent = app.send(&visitor.token, "My order 4711 never came").await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let form = Form::new().part(
        "file",
        Part::bytes(b"receipt: 4711, 39.90 EUR".to_vec())
            .file_name("receipt.txt")
            .mime_str("text/plain")
            .unwrap(),
    );
    let upload = Reply::from(
        app.http
            .post(app.url("/chatplugin.upload"))
            .header("authorization", format!("Bearer {}", visitor.token))
            .multipart(form)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(upload.status, 201, "{}", upload.body);
    let file_id = upload.body["id"].as_str().unwrap().to_string();
    let file_url = upload.body["url"].as_str().unwrap().to_string();
    let sent = app
        .post(
            "/chatplugin.send",
            &json!({"message": {"text": "here is the receipt", "attachments": [file_id]}}),
            Some(&visitor.token),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let room = &visitor.conversation_id;
    assert_eq!(admin.answer(room).await.status, 200);
    let path = format!("/users/me/rooms/{room}/messages");
    for body in [
        json!({"content": "Shall I resend it?", "quick_replies": [{"title": "Yes", "payload": "resend"}]}),
        json!({"content": "Zoé is a returning customer", "private": true}),
    ] {
        let reply = admin.call("POST", &path, Some(body)).await;
        assert_eq!(reply.status, 201, "{}", reply.body);
    }
    let sent = app
        .post(
            "/chatplugin.send",
            &json!({"message": {"text": "Yes", "postback": "resend"}}),
            Some(&visitor.token),
        )
        .await;
    assert_eq!(sent.status, 200, "{}", sent.body);
    let closed = admin
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/state"),
            Some(json!({"state": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    let rated = app
        .post(
            "/chatplugin.rate",
            &json!({"rating": 2, "comment": "slow, but Zoé thanks you"}),
            Some(&visitor.token),
        )
        .await;
    assert_eq!(rated.status, 204, "{}", rated.body);
    Story {
        admin,
        visitor,
        file_id,
        file_url,
    }
}

/// The export of `conversation`'s visitor: status, content type and bytes.
async fn export(agent: &AgentClient, conversation: &str) -> (u16, String, Vec<u8>) {
    let response = agent
        .http
        .get(format!(
            "{}/api/chatd/1.0/visitors/{conversation}/export",
            agent.base
        ))
        .header("X-Auth-Token", &agent.token)
        .send()
        .await
        .unwrap();
    let status = response.status().as_u16();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    (
        status,
        content_type,
        response.bytes().await.unwrap().to_vec(),
    )
}

/// The archive's entries, by name.
fn unzip(bytes: &[u8]) -> std::collections::BTreeMap<String, Vec<u8>> {
    let mut archive = zip::ZipArchive::new(std::io::Cursor::new(bytes)).expect("a zip");
    let mut entries = std::collections::BTreeMap::new();
    for i in 0..archive.len() {
        let mut file = archive.by_index(i).unwrap();
        let mut data = Vec::new();
        file.read_to_end(&mut data).unwrap();
        entries.insert(file.name().unwrap().to_string(), data);
    }
    entries
}

fn json_entry(entries: &std::collections::BTreeMap<String, Vec<u8>>, name: &str) -> Value {
    let raw = entries
        .get(name)
        .unwrap_or_else(|| panic!("{name} in {:?}", entries.keys()));
    serde_json::from_slice(raw).unwrap()
}

async fn erase(agent: &AgentClient, conversation: &str) -> Reply {
    agent
        .call("DELETE", &format!("/visitors/{conversation}"), None)
        .await
}

async fn audit(agent: &AgentClient) -> Vec<Value> {
    let reply = agent.call("GET", "/audit", None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn an_export_holds_the_visitors_messages_context_notes_rating_and_files() {
    let app = TestApp::spawn().await;
    let s = story(&app).await;
    let id = &s.visitor.conversation_id;
    let (status, content_type, bytes) = export(&s.admin, id).await;
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&bytes));
    assert_eq!(content_type, "application/zip");
    let entries = unzip(&bytes);
    let file_path = format!("files/{}/receipt.txt", s.file_id);
    assert_eq!(
        entries.keys().cloned().collect::<Vec<_>>(),
        vec![format!("conversation-{id}.json"), file_path.clone()]
    );
    assert_eq!(entries[&file_path], b"receipt: 4711, 39.90 EUR");
    let c = json_entry(&entries, &format!("conversation-{id}.json"));
    assert_eq!(c["conversation_id"], *id);
    assert_eq!(c["state"], "closed");
    assert_eq!(c["visitor"]["name"], "Zoé Martin");
    assert_eq!(c["visitor"]["email"], "zoe@example.com");
    assert_eq!(c["visitor"]["url"], "https://shop.example.com/cart");
    assert_eq!(c["visitor"]["title"], "Cart");
    assert_eq!(c["rating"]["rating"], 2);
    assert_eq!(c["rating"]["comment"], "slow, but Zoé thanks you");
    let messages = c["messages"].as_array().unwrap();
    let contents: Vec<&str> = messages
        .iter()
        .map(|m| m["content"].as_str().unwrap())
        .collect();
    assert!(
        contents.contains(&"My order 4711 never came"),
        "{contents:?}"
    );
    assert!(contents.contains(&"Shall I resend it?"), "{contents:?}");
    assert!(
        !contents.contains(&"Zoé is a returning customer"),
        "notes are apart"
    );
    // System notices (joined, closed) are part of the conversation.
    assert!(
        messages
            .iter()
            .any(|m| m["kind"] == "system" && m["notice"]["type"] == "closed"),
        "{messages:?}"
    );
    let with_file = messages
        .iter()
        .find(|m| m["content"] == "here is the receipt")
        .unwrap();
    assert_eq!(with_file["attachments"][0]["file"], file_path);
    assert!(with_file["attachments"][0]["url"]
        .as_str()
        .unwrap()
        .starts_with(&format!("/files/{}/", s.file_id)));
    let offer = messages
        .iter()
        .find(|m| m["content"] == "Shall I resend it?")
        .unwrap();
    assert_eq!(offer["quick_replies"][0]["payload"], "resend");
    let chosen = messages.iter().find(|m| m["content"] == "Yes").unwrap();
    assert_eq!(chosen["postback"], "resend");
    let seqs: Vec<i64> = messages
        .iter()
        .map(|m| m["seq"].as_i64().unwrap())
        .collect();
    assert!(seqs.windows(2).all(|w| w[0] < w[1]), "{seqs:?}");
    let notes = c["private_notes"]["items"].as_array().unwrap();
    assert_eq!(notes.len(), 1, "{c}");
    assert_eq!(notes[0]["content"], "Zoé is a returning customer");
    // The export is in the audit log.
    let log = audit(&s.admin).await;
    assert_eq!(log[0]["action"], "visitor.exported", "{log:?}");
    assert_eq!(log[0]["actor"]["uuid"], s.admin.uuid);
    assert_eq!(log[0]["conversations"], json!([id]));
}

#[tokio::test]
async fn erasing_a_visitor_removes_their_data_from_every_door_and_keeps_a_shell() {
    let app = TestApp::spawn().await;
    let s = story(&app).await;
    let id = s.visitor.conversation_id.clone();
    let admin = &s.admin;
    let listed_before = admin.call("GET", "/rooms", None).await;
    assert_eq!(listed_before.status, 200, "{}", listed_before.body);
    let found = admin
        .call("GET", "/users/me/rooms/messages?search=4711", None)
        .await;
    assert_eq!(
        found.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        found.body
    );
    assert_eq!(
        app.http
            .get(app.url(&s.file_url))
            .send()
            .await
            .unwrap()
            .status(),
        200
    );

    let erased = erase(admin, &id).await;
    assert_eq!(erased.status, 204, "{}", erased.body);

    // The shell: still listed and counted, closed, nothing of the visitor.
    let listed = admin.call("GET", "/rooms", None).await;
    assert_eq!(listed.body["total"], listed_before.body["total"]);
    let room = admin.call("GET", &format!("/rooms/{id}"), None).await;
    assert_eq!(room.status, 200, "{}", room.body);
    assert_eq!(room.body["state"], "closed");
    assert_eq!(room.body["rating"], Value::Null, "{}", room.body);
    assert_eq!(room.body["prechat"], Value::Null, "{}", room.body);
    assert_eq!(room.body["verified"], false);
    let text = room.body.to_string();
    assert!(!text.contains("Zoé") && !text.contains("zoe@"), "{text}");
    let messages = admin
        .call("GET", &format!("/rooms/{id}/messages"), None)
        .await;
    assert_eq!(messages.status, 200, "{}", messages.body);
    assert_eq!(messages.body["items"], json!([]), "{}", messages.body);
    let found = admin
        .call("GET", "/users/me/rooms/messages?search=4711", None)
        .await;
    assert_eq!(found.body["items"], json!([]), "{}", found.body);
    let found = admin
        .call("GET", "/users/me/rooms/messages?search=returning", None)
        .await;
    assert_eq!(found.body["items"], json!([]), "{}", found.body);
    let context = admin
        .call("GET", &format!("/users/me/rooms/{id}/visitor"), None)
        .await;
    assert!(
        !context.body.to_string().contains("zoe@"),
        "{}",
        context.body
    );
    // The file is gone: its signed URL finds nothing.
    assert_eq!(
        app.http
            .get(app.url(&s.file_url))
            .send()
            .await
            .unwrap()
            .status(),
        404
    );
    // The visitor's tokens no longer work, for sending, resuming, the
    // transcript or the socket.
    app.send(&s.visitor.token, "still there?")
        .await
        .assert_error(401, "invalid-token");
    app.post(
        "/chatplugin.authenticate",
        &json!({"resume_token": s.visitor.resume_token}),
        None,
    )
    .await
    .assert_error(401, "invalid-token");
    app.post("/chatplugin.transcript", &json!({}), Some(&s.visitor.token))
        .await
        .assert_error(401, "invalid-token");
    // The export now holds the shell only.
    let (status, _, bytes) = export(admin, &id).await;
    assert_eq!(status, 200);
    let entries = unzip(&bytes);
    assert_eq!(entries.len(), 1, "{:?}", entries.keys());
    let c = json_entry(&entries, &format!("conversation-{id}.json"));
    assert_eq!(c["messages"], json!([]));
    assert_eq!(c["visitor"], Value::Null);
    assert_eq!(c["rating"], Value::Null);
    assert_eq!(c["private_notes"]["items"], json!([]));

    // Again: 204, and nothing more in the audit log.
    assert_eq!(erase(admin, &id).await.status, 204);
    let log = audit(admin).await;
    let erasures: Vec<&Value> = log
        .iter()
        .filter(|e| e["action"] == "visitor.erased")
        .collect();
    assert_eq!(erasures.len(), 1, "{log:?}");
    assert_eq!(erasures[0]["actor"]["kind"], "agent");
    assert_eq!(erasures[0]["actor"]["uuid"], admin.uuid);
    assert_eq!(erasures[0]["conversations"], json!([id]));
    assert_eq!(erasures[0]["detail"]["files"], 1);
    assert!(erasures[0]["detail"]["messages"].as_i64().unwrap() >= 5);
    assert_eq!(erasures[0]["detail"]["notes"], 1);
}

#[tokio::test]
async fn an_open_conversation_is_closed_by_its_erasure_and_its_live_socket_ends() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    assert_eq!(admin.answer(&visitor.conversation_id).await.status, 200);
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    let mut agent_events = admin.events().await;
    assert_eq!(erase(&admin, &visitor.conversation_id).await.status, 204);
    // The room's agents see it closed, as after a close.
    let state = agent_events
        .event_with("chatd_room_state_updated", "uuid", &visitor.conversation_id)
        .await;
    assert_eq!(state["state"], "closed", "{state}");
    let deadline = tokio::time::Instant::now() + WAIT;
    loop {
        assert!(tokio::time::Instant::now() < deadline, "the socket ends");
        match stomp.recv_within(Duration::from_secs(5)).await {
            Ok(Some(frame)) if frame.command == chatgate::ws::stomp::Command::Error => break,
            Ok(Some(_)) => continue,
            Ok(None) | Err(()) => break,
        }
    }
    let room = admin
        .call("GET", &format!("/rooms/{}", visitor.conversation_id), None)
        .await;
    assert_eq!(room.body["state"], "closed", "{}", room.body);
    // A new visitor is unaffected.
    let other = app.visitor().await;
    assert_eq!(app.send(&other.token, "Hi").await.status, 200);
}

#[tokio::test]
async fn an_identified_visitors_export_and_erasure_cover_all_their_conversations() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let info = app
        .post(
            "/channels.info",
            &json!({"channel_id": app.channel_id}),
            Some(&admin.token),
        )
        .await;
    let secret = info.body["identity_secret"].as_str().unwrap().to_string();
    let body = |new: bool| {
        json!({
            "channel_id": app.channel_id,
            "identity": {"id": "customer-42", "hash": sign(&secret, "customer-42"), "email": "c42@example.com"},
            "new_conversation": new,
        })
    };
    let first = app
        .post("/chatplugin.authenticate", &body(false), None)
        .await;
    let first = VisitorSession::from(&first.body);
    assert_eq!(app.send(&first.token, "first chat").await.status, 200);
    let second = app
        .post("/chatplugin.authenticate", &body(true), None)
        .await;
    let second = VisitorSession::from(&second.body);
    assert_ne!(first.conversation_id, second.conversation_id);
    assert_eq!(app.send(&second.token, "second chat").await.status, 200);
    // Someone else, on the same channel: never part of it.
    let stranger = app.visitor().await;
    assert_eq!(app.send(&stranger.token, "stranger chat").await.status, 200);

    let (status, _, bytes) = export(&admin, &second.conversation_id).await;
    assert_eq!(status, 200);
    let entries = unzip(&bytes);
    let mut names: Vec<String> = entries.keys().cloned().collect();
    names.sort();
    let mut expected = vec![
        format!("conversation-{}.json", first.conversation_id),
        format!("conversation-{}.json", second.conversation_id),
    ];
    expected.sort();
    assert_eq!(names, expected);
    let c = json_entry(&entries, &expected[0]);
    assert_eq!(c["identity"], "customer-42");
    assert_eq!(c["verified"], true);

    assert_eq!(erase(&admin, &first.conversation_id).await.status, 204);
    for id in [&first.conversation_id, &second.conversation_id] {
        let messages = admin
            .call("GET", &format!("/rooms/{id}/messages"), None)
            .await;
        assert_eq!(messages.body["items"], json!([]), "{id}: {}", messages.body);
    }
    app.send(&second.token, "again")
        .await
        .assert_error(401, "invalid-token");
    let kept = admin
        .call(
            "GET",
            &format!("/rooms/{}/messages", stranger.conversation_id),
            None,
        )
        .await;
    assert_eq!(
        kept.body["items"].as_array().unwrap().len(),
        1,
        "{}",
        kept.body
    );
    assert_eq!(app.send(&stranger.token, "still here").await.status, 200);
    let log = audit(&admin).await;
    assert_eq!(log[0]["action"], "visitor.erased");
    assert_eq!(
        log[0]["conversations"].as_array().unwrap().len(),
        2,
        "{log:?}"
    );
}

#[tokio::test]
async fn data_rights_are_for_the_tenants_admins_and_bad_ids_are_refused() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, "Hello").await.status, 200);
    let id = &visitor.conversation_id;
    let agent = admin.new_agent(&app, "Bea").await;
    assert_eq!(agent.answer(id).await.status, 200);
    // A plain agent, even in the room: 403 everywhere.
    let (status, _, _) = export(&agent, id).await;
    assert_eq!(status, 403);
    erase(&agent, id).await.assert_error(403, "forbidden");
    agent
        .call("GET", "/audit", None)
        .await
        .assert_error(403, "forbidden");
    agent
        .call("GET", "/tenant", None)
        .await
        .assert_error(403, "forbidden");
    agent
        .call("PATCH", "/tenant", Some(json!({"retention_days": 1})))
        .await
        .assert_error(403, "forbidden");
    // Another tenant's admin: 404, like an id that names nothing.
    let other = AgentClient::other_tenant_admin(&app).await;
    let (status, _, _) = export(&other, id).await;
    assert_eq!(status, 404);
    erase(&other, id)
        .await
        .assert_error(404, "unknown-conversation");
    erase(&admin, &uuid::Uuid::new_v4().to_string())
        .await
        .assert_error(404, "unknown-conversation");
    // An agent room is no visitor's.
    let team = admin.create_room(&[&agent]).await;
    erase(&admin, team["uuid"].as_str().unwrap())
        .await
        .assert_error(404, "unknown-conversation");
    // Malformed ids: 400.
    for bad in ["not-a-uuid", "1234"] {
        erase(&admin, bad).await.assert_error(400, "invalid-data");
        let (status, _, body) = export(&admin, bad).await;
        assert_eq!(status, 400, "{}", String::from_utf8_lossy(&body));
    }
    // Nothing was erased by any of these.
    let messages = admin
        .call("GET", &format!("/rooms/{id}/messages"), None)
        .await;
    assert_eq!(
        messages.body["items"].as_array().unwrap().len(),
        2,
        "{}",
        messages.body
    );
    assert!(audit(&admin).await.is_empty());
    assert!(audit(&other).await.is_empty());
}

/// Sets when a conversation closed (and was last written to), `days` ago.
async fn closed_days_ago(app: &TestApp, conversation: &str, days: i64) {
    use sqlx::Connection;
    let at = chatgate::domain::time::now_ms() - days * 86_400_000;
    let sql = "UPDATE conversations SET closed_at = $1, last_message_at = $1, created_at = $1 \
               WHERE id = $2";
    let db = app.db.as_ref().expect("the test's database");
    match &db.schema {
        Some(schema) => {
            let mut conn = sqlx::PgConnection::connect(schema.url()).await.unwrap();
            sqlx::query(sql)
                .bind(at)
                .bind(conversation)
                .execute(&mut conn)
                .await
                .unwrap();
        }
        None => {
            let url = format!("sqlite://{}", app.config.database_url);
            let mut conn = sqlx::SqliteConnection::connect(&url).await.unwrap();
            sqlx::query(sql)
                .bind(at)
                .bind(conversation)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

async fn closed_conversation(app: &TestApp, admin: &AgentClient, text: &str) -> VisitorSession {
    let visitor = app.visitor().await;
    assert_eq!(app.send(&visitor.token, text).await.status, 200);
    let id = &visitor.conversation_id;
    assert_eq!(admin.answer(id).await.status, 200);
    let closed = admin
        .call(
            "PUT",
            &format!("/users/me/rooms/{id}/state"),
            Some(json!({"state": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    visitor
}

async fn message_count(admin: &AgentClient, id: &str) -> usize {
    let reply = admin
        .call("GET", &format!("/rooms/{id}/messages"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"].as_array().unwrap().len()
}

#[tokio::test]
async fn retention_erases_only_conversations_closed_longer_ago_than_the_tenants_setting() {
    let app = TestApp::spawn_with(|c| c.retention_every_ms = 100).await;
    let admin = AgentClient::admin(&app).await;
    let tenant = admin.call("GET", "/tenant", None).await;
    assert_eq!(tenant.status, 200, "{}", tenant.body);
    assert_eq!(tenant.body["retention_days"], Value::Null, "off by default");
    // Bad values change nothing.
    for bad in [json!(0), json!(3651), json!("30"), json!(1.5), json!(-1)] {
        admin
            .call("PATCH", "/tenant", Some(json!({"retention_days": bad})))
            .await
            .assert_error(400, "invalid-data");
    }
    assert_eq!(
        admin.call("GET", "/tenant", None).await.body["retention_days"],
        Value::Null
    );

    let old = closed_conversation(&app, &admin, "old and closed").await;
    let recent = closed_conversation(&app, &admin, "recently closed").await;
    let open = app.visitor().await;
    assert_eq!(app.send(&open.token, "old but open").await.status, 200);
    closed_days_ago(&app, &old.conversation_id, 31).await;
    closed_days_ago(&app, &recent.conversation_id, 29).await;
    // Open for 40 days (its times moved back; it was never closed).
    closed_days_ago(&app, &open.conversation_id, 40).await;
    // Another tenant with no retention keeps its old conversation.
    let other = AgentClient::other_tenant_admin(&app).await;
    let other_channel = app
        .create_channel(&other.token, json!({"name": "Other shop"}))
        .await;
    let foreign = app.visitor_on(&other_channel).await;
    assert_eq!(app.send(&foreign.token, "foreign").await.status, 200);
    assert_eq!(other.answer(&foreign.conversation_id).await.status, 200);
    let closed = other
        .call(
            "PUT",
            &format!("/users/me/rooms/{}/state", foreign.conversation_id),
            Some(json!({"state": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    closed_days_ago(&app, &foreign.conversation_id, 400).await;
    // Nothing is erased while retention is off.
    tokio::time::sleep(Duration::from_millis(300)).await;
    assert!(message_count(&admin, &old.conversation_id).await > 0);

    let set = admin
        .call("PATCH", "/tenant", Some(json!({"retention_days": 30})))
        .await;
    assert_eq!(set.status, 200, "{}", set.body);
    assert_eq!(set.body["retention_days"], 30);
    let deadline = tokio::time::Instant::now() + WAIT;
    while message_count(&admin, &old.conversation_id).await > 0 {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the old conversation is erased"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert!(message_count(&admin, &recent.conversation_id).await > 0);
    assert!(message_count(&admin, &open.conversation_id).await > 0);
    assert!(message_count(&other, &foreign.conversation_id).await > 0);
    let log = audit(&admin).await;
    let retained: Vec<&Value> = log
        .iter()
        .filter(|e| e["actor"]["kind"] == "retention")
        .collect();
    assert_eq!(retained.len(), 1, "{log:?}");
    assert_eq!(retained[0]["action"], "visitor.erased");
    assert_eq!(retained[0]["conversations"], json!([old.conversation_id]));
    assert!(audit(&other).await.is_empty());
    // Turned off again: null.
    let off = admin
        .call("PATCH", "/tenant", Some(json!({"retention_days": null})))
        .await;
    assert_eq!(off.body["retention_days"], Value::Null, "{}", off.body);
}

/// The rows of an endpoint's delivery log (every event written for it).
async fn webhook_log(admin: &AgentClient, webhook: &str) -> Vec<Value> {
    let reply = admin
        .call("GET", &format!("/webhooks/{webhook}/deliveries"), None)
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"].as_array().unwrap().clone()
}

#[tokio::test]
async fn erasing_an_open_or_queued_conversation_closes_it_as_a_close_would_and_a_closed_one_is_not_closed_again(
) {
    use crate::webhook_receiver::Receiver;
    let app = TestApp::spawn_with(|c| {
        c.outbox_retry_ms = 20;
        c.outbox_poll_ms = 50;
    })
    .await;
    let admin = AgentClient::admin(&app).await;
    let receiver = Receiver::start().await;
    let made = admin
        .call(
            "POST",
            "/webhooks",
            Some(json!({"url": receiver.url, "events": ["conversation.closed"]})),
        )
        .await;
    assert_eq!(made.status, 201, "{}", made.body);
    receiver.set_secret(made.body["secret"].as_str().unwrap());
    let webhook = made.body["uuid"].as_str().unwrap().to_string();
    let closed_rooms = |hits: &[crate::webhook_receiver::Hit]| -> Vec<String> {
        hits.iter()
            .filter(|h| h.kind() == "conversation.closed")
            .map(|h| {
                h.body["data"]["room"]["uuid"]
                    .as_str()
                    .unwrap_or_default()
                    .to_string()
            })
            .collect()
    };

    // Closed by an agent first (its one `conversation.closed`), then erased.
    let closed = app.visitor().await;
    assert_eq!(app.send(&closed.token, "Bye").await.status, 200);
    assert_eq!(admin.answer(&closed.conversation_id).await.status, 200);
    let reply = admin
        .call(
            "PUT",
            &format!("/users/me/rooms/{}/state", closed.conversation_id),
            Some(json!({"state": "closed"})),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    receiver.wait_delivered(1, WAIT).await;
    assert_eq!(webhook_log(&admin, &webhook).await.len(), 1);
    assert_eq!(erase(&admin, &closed.conversation_id).await.status, 204);
    // The erasure's transaction wrote no second close.
    assert_eq!(webhook_log(&admin, &webhook).await.len(), 1);

    // An open conversation (answered, of a visitor who gave a name) and a
    // queued one (waiting).
    let reply = app
        .post(
            "/chatplugin.authenticate",
            &json!({"channel_id": app.channel_id, "visitor": {"name": "Zoé Martin"}}),
            None,
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let open = VisitorSession::from(&reply.body);
    assert_eq!(app.send(&open.token, "Hello").await.status, 200);
    assert_eq!(admin.answer(&open.conversation_id).await.status, 200);
    let queued = app.visitor().await;
    assert_eq!(app.send(&queued.token, "Anyone?").await.status, 200);
    let mut agent_events = admin.events().await;

    assert_eq!(erase(&admin, &open.conversation_id).await.status, 204);
    let state = agent_events
        .event_with("chatd_room_state_updated", "uuid", &open.conversation_id)
        .await;
    assert_eq!(state["state"], "closed", "{state}");
    assert_eq!(erase(&admin, &queued.conversation_id).await.status, 204);
    // The queued one leaves the tenant's queue: its agents see it closed.
    let state = agent_events
        .event_with("chatd_room_state_updated", "uuid", &queued.conversation_id)
        .await;
    assert_eq!(state["state"], "closed", "{state}");
    let queue = admin.call("GET", "/queues", None).await;
    assert_eq!(queue.body["total"], 0, "{}", queue.body);

    let hits = receiver.wait_delivered(3, WAIT).await;
    let mut rooms = closed_rooms(&hits);
    rooms.sort();
    let mut expected = vec![
        closed.conversation_id.clone(),
        open.conversation_id.clone(),
        queued.conversation_id.clone(),
    ];
    expected.sort();
    assert_eq!(rooms, expected, "one close each");
    for hit in hits.iter().filter(|h| h.kind() == "conversation.closed") {
        assert!(hit.verified, "{hit:?}");
        let room = &hit.body["data"]["room"];
        assert_eq!(room["state"], "closed", "{room}");
        assert!(!hit.body.to_string().contains("Zoé"), "the shell's: {room}");
    }
    // Erasing again changes nothing, and closes nothing.
    assert_eq!(erase(&admin, &open.conversation_id).await.status, 204);
    assert_eq!(webhook_log(&admin, &webhook).await.len(), 3);
}
