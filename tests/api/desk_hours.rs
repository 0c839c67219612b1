//! The support desk's channel settings (desk-api.md, "Support desk"):
//! business hours (`agents_available` false with `back_at` outside them, told
//! again when they open or close), the away message (a system notice, once
//! per conversation), the pre-chat form (answers on the first send, stored
//! on the room) and auto-close (idle conversations closed as an agent would).

use std::time::Duration;

use chatgate::ws::stomp::{Command, StompFrame};
use chrono::{Datelike, Timelike, Utc};
use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Reply, Stomp, TestApp, VisitorSession, WAIT};
use crate::queue::{next_frame, subscribe_events};

const DAYS: [&str; 7] = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"];

async fn update(app: &TestApp, admin: &str, channel: &str, settings: Value) -> Reply {
    let mut body = settings;
    body["channel_id"] = json!(channel);
    app.post("/channels.update", &body, Some(admin)).await
}

async fn info(app: &TestApp, admin: &str, channel: &str) -> Value {
    let reply = app
        .post(
            "/channels.info",
            &json!({"channel_id": channel}),
            Some(admin),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body
}

/// Today's UTC date, `YYYY-MM-DD`, and tomorrow's midnight as the wire writes it.
fn today_and_tomorrow() -> (String, String) {
    let now = Utc::now();
    let tomorrow = now.date_naive().succ_opt().unwrap();
    (
        now.format("%Y-%m-%d").to_string(),
        format!("{}T00:00:00.000Z", tomorrow.format("%Y-%m-%d")),
    )
}

/// Open every day all day (UTC) but closed today: closed now, back at
/// tomorrow's midnight.
pub fn closed_today() -> (Value, String) {
    let (today, tomorrow) = today_and_tomorrow();
    let weekly: serde_json::Map<String, Value> = DAYS
        .iter()
        .map(|d| (d.to_string(), json!([["00:00", "24:00"]])))
        .collect();
    (
        json!({"time_zone": "UTC", "weekly": weekly, "closed_dates": [today]}),
        tomorrow,
    )
}

/// The next `/queue/events` availability frame (within 75 s: an opening
/// is at most a minute away).
async fn next_availability(stomp: &mut Stomp) -> Value {
    let deadline = tokio::time::Instant::now() + Duration::from_secs(75);
    loop {
        let left = deadline.saturating_duration_since(tokio::time::Instant::now());
        let frame = stomp
            .recv_within(left)
            .await
            .expect("an availability event in time")
            .expect("socket open");
        if frame.command != Command::Message || frame.get("destination") != Some("/queue/events") {
            continue;
        }
        let body: Value = serde_json::from_slice(&frame.body).unwrap();
        if body["type"] == "availability" {
            return body;
        }
    }
}

/// Subscribes `/queue/events` and returns the first availability body.
async fn watch(app: &TestApp, visitor: &VisitorSession) -> (Stomp, Value) {
    let mut stomp = Stomp::subscribed(app, &visitor.token, None).await;
    stomp
        .send(
            StompFrame::new(Command::Subscribe)
                .header("id", "sub-events")
                .header("destination", "/queue/events"),
        )
        .await;
    let first = next_availability(&mut stomp).await;
    (stomp, first)
}

#[tokio::test]
async fn desk_settings_are_validated_strictly_and_a_refusal_changes_nothing() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let channel = app
        .create_channel(
            &admin,
            json!({"name": "Shop", "business_hours": {"time_zone": "Europe/Paris",
                "weekly": {"mon": [["13:00", "17:30"], ["09:00", "12:00"]]},
                "closed_dates": ["2026-12-25"]},
                "away_message": "We are closed; we answer tomorrow.",
                "prechat": {"name": "required", "email": "optional"},
                "auto_close_hours": 48}),
        )
        .await;
    let saved = info(&app, &admin, &channel).await;
    assert_eq!(saved["business_hours"]["time_zone"], "Europe/Paris");
    assert_eq!(
        saved["business_hours"]["weekly"]["mon"],
        json!([["09:00", "12:00"], ["13:00", "17:30"]]),
        "sorted"
    );
    assert_eq!(saved["business_hours"]["weekly"]["tue"], json!([]));
    assert_eq!(
        saved["business_hours"]["closed_dates"],
        json!(["2026-12-25"])
    );
    assert_eq!(saved["away_message"], "We are closed; we answer tomorrow.");
    assert_eq!(
        saved["prechat"],
        json!({"name": "required", "email": "optional", "question": "off"})
    );
    assert_eq!(saved["auto_close_hours"], 48);

    let bad = [
        (
            json!({"business_hours": {"time_zone": "Mars/Base", "weekly": {}}}),
            "business_hours.time_zone",
        ),
        (
            json!({"business_hours": {"weekly": {}}}),
            "business_hours.time_zone",
        ),
        (
            json!({"business_hours": {"time_zone": "UTC", "weekly": {"mon": [["17:00", "09:00"]]}}}),
            "business_hours.weekly.mon[0]",
        ),
        (
            json!({"business_hours": {"time_zone": "UTC", "weekly": {"mon": [["09:00", "12:00"], ["11:30", "14:00"]]}}}),
            "business_hours.weekly.mon",
        ),
        (
            json!({"business_hours": {"time_zone": "UTC", "weekly": {"mon": [["9h", "12:00"]]}}}),
            "business_hours.weekly.mon[0]",
        ),
        (
            json!({"business_hours": {"time_zone": "UTC", "weekly": {"someday": []}}}),
            "business_hours.weekly.someday",
        ),
        (
            json!({"business_hours": {"time_zone": "UTC", "closed_dates": ["2026-02-30"]}}),
            "business_hours.closed_dates[0]",
        ),
        (json!({"business_hours": "always"}), "business_hours"),
        (json!({"prechat": {"name": "sometimes"}}), "prechat.name"),
        (json!({"prechat": {"phone": "required"}}), "prechat.phone"),
        (json!({"auto_close_hours": 0}), "auto_close_hours"),
        (json!({"auto_close_hours": 721}), "auto_close_hours"),
        (json!({"auto_close_hours": "24"}), "auto_close_hours"),
        (json!({"away_message": "x".repeat(1001)}), "away_message"),
    ];
    for (settings, field) in bad {
        let reply = update(&app, &admin, &channel, settings.clone()).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get(field).is_some(),
            "{settings}: names {field}: {}",
            reply.body
        );
        assert_eq!(
            info(&app, &admin, &channel).await,
            saved,
            "{settings} changed nothing"
        );
    }

    // null clears each (the form: all off).
    let cleared = update(
        &app,
        &admin,
        &channel,
        json!({"business_hours": null, "away_message": null, "prechat": null, "auto_close_hours": null}),
    )
    .await;
    assert_eq!(cleared.status, 200, "{}", cleared.body);
    assert_eq!(cleared.body["business_hours"], Value::Null);
    assert_eq!(cleared.body["away_message"], Value::Null);
    assert_eq!(
        cleared.body["prechat"],
        json!({"name": "off", "email": "off", "question": "off"})
    );
    assert_eq!(cleared.body["auto_close_hours"], Value::Null);
    // Another tenant's admin cannot touch it.
    let other = AgentClient::other_tenant_admin(&app).await;
    let reply = update(&app, &other.token, &channel, json!({"auto_close_hours": 5})).await;
    assert_eq!(reply.status, 404, "{}", reply.body);
}

#[tokio::test]
async fn outside_business_hours_the_channel_is_unavailable_with_back_at_whatever_the_agents() {
    let app = TestApp::spawn().await;
    let admin_token = app.admin_token().await;
    let admin = AgentClient::admin(&app).await;
    // An agent is connected and available the whole time.
    let _socket = admin.events().await;
    let (hours, tomorrow) = closed_today();
    let shop = app
        .create_channel(
            &admin_token,
            json!({"name": "Shop", "business_hours": hours}),
        )
        .await;
    let visitor = app.visitor_on(&shop).await;
    let (mut stomp, first) = watch(&app, &visitor).await;
    assert_eq!(
        first,
        json!({"type": "availability", "agents_available": false, "back_at": tomorrow})
    );
    // The tenant's other channel, without hours, is available.
    let demo = app.visitor().await;
    let (_demo_stomp, demo_first) = watch(&app, &demo).await;
    assert_eq!(demo_first["agents_available"], true, "{demo_first}");
    assert_eq!(demo_first["back_at"], Value::Null);

    // Always open again: the visitor is told at once.
    let reply = update(&app, &admin_token, &shop, json!({"business_hours": null})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let body = next_availability(&mut stomp).await;
    assert_eq!(
        body,
        json!({"type": "availability", "agents_available": true, "back_at": null})
    );
    // Closed today again: false with back_at.
    let (hours, _) = closed_today();
    update(&app, &admin_token, &shop, json!({"business_hours": hours})).await;
    let body = next_availability(&mut stomp).await;
    assert_eq!(body["agents_available"], false, "{body}");
    assert_eq!(body["back_at"], tomorrow);
}

#[tokio::test]
async fn visitors_are_told_when_the_hours_open_without_any_presence_change() {
    // The hours are read on a clock shifted to 4 s before a whole minute
    // (`hours_clock_offset_ms`), so the opening comes in seconds rather
    // than at the next real minute.
    let real = Utc::now().timestamp_millis();
    let offset = (real / 60_000 + 1) * 60_000 - 4_000 - real;
    let app = TestApp::spawn_with(|c| c.hours_clock_offset_ms = offset).await;
    let admin_token = app.admin_token().await;
    let admin = AgentClient::admin(&app).await;
    let _socket = admin.events().await;
    // The next whole minute of the shifted clock at least a second away
    // (should setting up have taken over 3 s, the one after).
    let shifted = Utc::now().timestamp_millis() + offset;
    let opens_ms = ((shifted + 1_000) / 60_000 + 1) * 60_000;
    let opens = chrono::DateTime::<Utc>::from_timestamp_millis(opens_ms).unwrap();
    let day = DAYS[opens.weekday().num_days_from_monday() as usize];
    let at = format!("{:02}:{:02}", opens.hour(), opens.minute());
    let hours = if at == "00:00" {
        json!({"time_zone": "UTC", "weekly": {day: [["00:00", "24:00"]]}})
    } else {
        json!({"time_zone": "UTC", "weekly": {day: [[at.clone(), "24:00"]]}})
    };
    let shop = app
        .create_channel(
            &admin_token,
            json!({"name": "Shop", "business_hours": hours}),
        )
        .await;
    let visitor = app.visitor_on(&shop).await;
    let (mut stomp, first) = watch(&app, &visitor).await;
    assert_eq!(first["agents_available"], false, "{first}");
    let back_at = first["back_at"].as_str().expect("back_at").to_string();
    // In real time: the shifted opening less the shift.
    let expected = chrono::DateTime::<Utc>::from_timestamp_millis(opens_ms - offset)
        .unwrap()
        .format("%Y-%m-%dT%H:%M:%S%.3fZ")
        .to_string();
    assert_eq!(back_at, expected);
    // Nobody changes anything: the hours open, and the visitor hears it.
    let body = next_availability(&mut stomp).await;
    assert_eq!(
        body,
        json!({"type": "availability", "agents_available": true, "back_at": null})
    );
    assert!(
        Utc::now().timestamp_millis() >= opens_ms - offset,
        "not before the opening"
    );
}

/// The room of `visitor` as the admin's supervision lists it.
async fn room_of(admin: &AgentClient, visitor: &VisitorSession) -> Value {
    let reply = admin.call("GET", "/rooms", None).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    reply.body["items"]
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["uuid"] == visitor.conversation_id.as_str())
        .cloned()
        .unwrap_or_else(|| panic!("listed: {}", reply.body))
}

#[tokio::test]
async fn the_away_message_is_a_system_notice_sent_once_per_conversation() {
    let app = TestApp::spawn().await;
    let admin_token = app.admin_token().await;
    let admin = AgentClient::admin(&app).await;
    let shop = app
        .create_channel(
            &admin_token,
            json!({"name": "Shop", "away_message": "Back at 9, leave your question."}),
        )
        .await;
    // No agent connected: unavailable.
    let visitor = app.visitor_on(&shop).await;
    for text in ["Hello?", "Anyone there?"] {
        assert_eq!(app.send(&visitor.token, text).await.status, 200);
    }
    let history = app.history(&visitor).await;
    let kinds: Vec<(String, Value)> = history
        .iter()
        .map(|m| {
            (
                m["content"].as_str().unwrap_or_default().to_string(),
                m["notice"]["type"].clone(),
            )
        })
        .collect();
    assert_eq!(
        kinds,
        vec![
            ("Hello?".to_string(), Value::Null),
            ("Back at 9, leave your question.".to_string(), json!("away")),
            ("Anyone there?".to_string(), Value::Null),
        ],
        "{history:?}"
    );
    let notice = &history[1];
    assert_eq!(notice["alignment"], "CENTER", "a system message: {notice}");
    assert_eq!(
        notice["notice"]["params"]["text"],
        "Back at 9, leave your question."
    );
    // Not an answer: the room still waits in the queue for an agent.
    assert_eq!(room_of(&admin, &visitor).await["state"], "queued");

    // Another conversation gets its own, once.
    let second = app.visitor_on(&shop).await;
    app.send(&second.token, "Hi").await;
    assert_eq!(
        app.contents(&second).await,
        vec!["Hi", "Back at 9, leave your question."]
    );

    // With an agent available within the hours, none.
    let _socket = admin.events().await;
    let third = app.visitor_on(&shop).await;
    let (mut third_stomp, mut seen) = watch(&app, &third).await;
    while seen["agents_available"] != true {
        seen = next_availability(&mut third_stomp).await;
    }
    app.send(&third.token, "Hello").await;
    assert_eq!(app.contents(&third).await, vec!["Hello"]);
    // Outside the hours, the away message again, whatever the presence.
    let (hours, _) = closed_today();
    update(&app, &admin_token, &shop, json!({"business_hours": hours})).await;
    let fourth = app.visitor_on(&shop).await;
    app.send(&fourth.token, "Late").await;
    assert_eq!(
        app.contents(&fourth).await,
        vec!["Late", "Back at 9, leave your question."]
    );
}

#[tokio::test]
async fn the_prechat_form_is_required_optional_or_off_on_the_first_send() {
    let app = TestApp::spawn().await;
    let admin_token = app.admin_token().await;
    let admin = AgentClient::admin(&app).await;
    let shop = app
        .create_channel(
            &admin_token,
            json!({"name": "Shop", "prechat": {"name": "required", "email": "optional", "question": "off"}}),
        )
        .await;
    let public = app
        .post(
            "/chatplugin.authenticate",
            &json!({"channel_id": shop}),
            None,
        )
        .await;
    assert_eq!(
        public.body["channel"]["prechat"],
        json!({"name": "required", "email": "optional", "question": "off"})
    );
    let visitor = VisitorSession::from(&public.body);
    let send = |prechat: Value| {
        let app = &app;
        let token = visitor.token.clone();
        async move {
            app.post(
                "/chatplugin.send",
                &json!({"message": {"text": "Hi"}, "prechat": prechat}),
                Some(&token),
            )
            .await
        }
    };
    for (prechat, field) in [
        (Value::Null, "prechat.name"),
        (json!({"email": "ana@example.com"}), "prechat.name"),
        (json!({"name": "   "}), "prechat.name"),
        (
            json!({"name": "Ana", "email": "not-an-email"}),
            "prechat.email",
        ),
        (json!({"name": "Ana", "phone": "555"}), "prechat.phone"),
        (json!({"name": 7}), "prechat.name"),
    ] {
        let reply = send(prechat.clone()).await;
        reply.assert_error(400, "invalid-data");
        assert!(
            reply.body["details"].get(field).is_some(),
            "{prechat}: {}",
            reply.body
        );
        assert!(app.history(&visitor).await.is_empty(), "nothing stored");
    }
    let reply =
        send(json!({"name": " Ana ", "email": "ana@example.com", "question": "dropped"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    let room = room_of(&admin, &visitor).await;
    assert_eq!(
        room["prechat"],
        json!({"name": "Ana", "email": "ana@example.com", "question": null})
    );
    // Later sends need no answers, and do not change them.
    let reply = send(json!({"name": "Someone else"})).await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(app.send(&visitor.token, "again").await.status, 200);
    assert_eq!(room_of(&admin, &visitor).await["prechat"]["name"], "Ana");

    // Optional: nothing given is fine, and the room has no answers.
    update(
        &app,
        &admin_token,
        &shop,
        json!({"prechat": {"question": "optional"}}),
    )
    .await;
    let optional = app.visitor_on(&shop).await;
    assert_eq!(app.send(&optional.token, "Hi").await.status, 200);
    assert_eq!(room_of(&admin, &optional).await["prechat"], Value::Null);
    // Off (the demo channel): answers are ignored.
    let off = app.visitor().await;
    let reply = app
        .post(
            "/chatplugin.send",
            &json!({"message": {"text": "Hi"}, "prechat": {"name": "Bob"}}),
            Some(&off.token),
        )
        .await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(room_of(&admin, &off).await["prechat"], Value::Null);
}

/// Ages a conversation: its creation and last message `hours` ago.
async fn age(app: &TestApp, conversation: &str, hours: i64) {
    use sqlx::Connection;
    let at = Utc::now().timestamp_millis() - hours * 3_600_000;
    let sql = "UPDATE conversations SET created_at = $1, last_message_at = $1 WHERE id = $2";
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
            sqlx::query(&sql.replace('$', "?"))
                .bind(at)
                .bind(conversation)
                .execute(&mut conn)
                .await
                .unwrap();
        }
    }
}

#[tokio::test]
async fn idle_conversations_are_closed_as_an_agent_would_close_them() {
    let app = TestApp::spawn_with(|c| c.auto_close_every_ms = 100).await;
    let admin_token = app.admin_token().await;
    let admin = AgentClient::admin(&app).await;
    let shop = app
        .create_channel(&admin_token, json!({"name": "Shop", "auto_close_hours": 2}))
        .await;
    // Answered (open), idle 3 hours: closed.
    let idle = app.visitor_on(&shop).await;
    app.send(&idle.token, "Hello").await;
    assert_eq!(admin.answer(&idle.conversation_id).await.status, 200);
    let mut stomp = Stomp::subscribed(&app, &idle.token, None).await;
    subscribe_events(&mut stomp).await;
    let mut agent_events = admin.events().await;
    // Queued and idle 3 hours: closed too. Idle 1 hour: stays.
    let queued = app.visitor_on(&shop).await;
    app.send(&queued.token, "Anyone?").await;
    let recent = app.visitor_on(&shop).await;
    app.send(&recent.token, "Hi").await;
    // The demo channel closes nothing, however idle.
    let demo = app.visitor().await;
    app.send(&demo.token, "Hi").await;
    age(&app, &recent.conversation_id, 1).await;
    age(&app, &demo.conversation_id, 100).await;
    age(&app, &queued.conversation_id, 3).await;
    age(&app, &idle.conversation_id, 3).await;

    let state = agent_events
        .event_with("chatd_room_state_updated", "uuid", &idle.conversation_id)
        .await;
    assert_eq!(state["state"], "closed", "{state}");
    loop {
        let (destination, body) = next_frame(&mut stomp).await;
        if destination == "/queue/events" && body["type"] == "conversation.closed" {
            break;
        }
    }
    let history = app.history(&idle).await;
    let last = history.last().unwrap();
    assert_eq!(last["notice"]["type"], "closed", "{last}");
    assert_eq!(last["notice"]["params"], json!({}), "closed by no agent");
    let deadline = tokio::time::Instant::now() + WAIT;
    while room_of(&admin, &queued).await["state"] != "closed" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the queued room closes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    // (The pass that closed it listed every idle room: the recent one
    // was not among them.)
    assert_eq!(room_of(&admin, &recent).await["state"], "queued");
    // Closed once, however many passes run: once the recent room is aged
    // too and closed, a whole pass has run since the first close.
    age(&app, &recent.conversation_id, 3).await;
    let deadline = tokio::time::Instant::now() + WAIT;
    while room_of(&admin, &recent).await["state"] != "closed" {
        assert!(
            tokio::time::Instant::now() < deadline,
            "the aged room closes"
        );
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    assert_eq!(room_of(&admin, &demo).await["state"], "queued");
    let closes = app
        .history(&idle)
        .await
        .iter()
        .filter(|m| m["notice"]["type"] == "closed")
        .count();
    assert_eq!(closes, 1);
    // The visitor writes again: reopened as after any close.
    assert_eq!(app.send(&idle.token, "Still there?").await.status, 200);
    assert_ne!(room_of(&admin, &idle).await["state"], "closed");
}
