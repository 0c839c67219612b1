//! Typing indicators both ways, throttled per sender.

use std::time::Duration;

use chatgate::ws::stomp::{Command, StompFrame};
use serde_json::json;

use crate::agent_helpers::AgentClient;
use crate::helpers::{Stomp, TestApp};
use crate::queue::{next_frame, subscribe_events};

fn typing_frame(typing: bool) -> StompFrame {
    StompFrame::new(Command::Send)
        .header("destination", "/app/typing")
        .body(json!({ "typing": typing }).to_string().into_bytes())
}

/// A visitor room answered by the admin, the visitor subscribed to both queues.
async fn answered(app: &TestApp, admin: &AgentClient) -> (String, Stomp) {
    let visitor = app.visitor().await;
    let mut stomp = Stomp::subscribed(app, &visitor.token, None).await;
    subscribe_events(&mut stomp).await;
    app.send(&visitor.token, "Hi").await;
    next_frame(&mut stomp).await;
    assert_eq!(admin.answer(&visitor.conversation_id).await.status, 200);
    next_frame(&mut stomp).await; // "Admin joined"
    (visitor.conversation_id, stomp)
}

#[tokio::test]
async fn fifty_typing_frames_in_a_second_reach_the_agent_as_at_most_two_events() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let (room, mut stomp) = answered(&app, &admin).await;
    let mut events = admin.events().await;
    // As fast as the socket takes them: well within a second even on a
    // loaded machine (the bound below allows one more start per extra second).
    let started = tokio::time::Instant::now();
    for i in 0..50 {
        stomp.send(typing_frame(i % 2 == 0)).await;
    }
    let extra_seconds = started.elapsed().as_secs();
    let first = events.event("chatd_user_room_activity_created").await;
    assert_eq!(first["room"]["uuid"], room.as_str());
    assert_eq!(first["user_uuid"], room.as_str());
    assert_eq!(first["type"], "start_typing");
    // The marker: a message sent on the same socket after the fifty frames.
    // Typing frames are published as they are read, the message once
    // stored, so every typing event of the burst comes before it (the last
    // frame is a stop: no stop is left for the silence watch to publish).
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/send")
                .body(json!({"message": {"text": "marker"}}).to_string()),
        )
        .await;
    let mut count = 1;
    loop {
        let msg = events.next().await.expect("the marker message in time");
        let name = &msg["data"]["name"];
        if name == "chatd_user_room_activity_created" {
            count += 1;
        } else if name == "chatd_user_room_message_created"
            && msg["data"]["data"]["content"] == "marker"
        {
            break;
        }
    }
    assert!(
        count <= 2 + extra_seconds,
        "{count} typing events for 50 frames sent in {extra_seconds}+ s"
    );
}

#[tokio::test]
async fn an_agents_typing_reaches_the_visitor_and_a_silent_visitor_stops_typing() {
    // A short silence, so the test waits 2 s rather than the default 10 s.
    let app = TestApp::spawn_with(|c| c.typing_silence_secs = 2).await;
    let admin = AgentClient::admin(&app).await;
    let (room, mut stomp) = answered(&app, &admin).await;
    let path = format!("/users/me/rooms/{room}/activities");
    let started = admin
        .call("POST", &path, Some(json!({"type": "start_typing"})))
        .await;
    assert_eq!(started.status, 204, "{}", started.body);
    let (destination, body) = next_frame(&mut stomp).await;
    assert_eq!(destination, "/queue/events");
    assert_eq!(body["type"], "typing");
    assert_eq!(body["typing"], true);
    assert_eq!(body["sender"]["name"], "Admin");
    admin
        .call("POST", &path, Some(json!({"type": "stop_typing"})))
        .await;
    let (_, body) = next_frame(&mut stomp).await;
    assert_eq!(body["typing"], false);

    // The visitor starts typing and goes quiet: the agent gets the stop.
    let mut events = admin.events().await;
    stomp.send(typing_frame(true)).await;
    let start = events.event("chatd_user_room_activity_created").await;
    assert_eq!(start["type"], "start_typing");
    let began = tokio::time::Instant::now();
    let stop = events.event("chatd_user_room_activity_created").await;
    assert_eq!(stop["type"], "stop_typing");
    // Published by the server's silence timer, not before it (less a
    // little for the start's own trip to this socket).
    assert!(
        began.elapsed() >= Duration::from_millis(1_500),
        "{:?}",
        began.elapsed()
    );
}

#[tokio::test]
async fn a_bad_activity_is_400_and_a_non_member_gets_404() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let (room, mut stomp) = answered(&app, &admin).await;
    let path = format!("/users/me/rooms/{room}/activities");
    for body in [json!({"type": "dancing"}), json!({}), json!({"type": 1})] {
        admin
            .call("POST", &path, Some(body))
            .await
            .assert_error(400, "invalid-data");
    }
    let bo = admin.new_agent(&app, "Bo").await;
    bo.call("POST", &path, Some(json!({"type": "start_typing"})))
        .await
        .assert_error(404, "unknown-room");
    // None of the refused activities reached the visitor: the first frame
    // it gets is the typing of the valid one that follows.
    let started = admin
        .call("POST", &path, Some(json!({"type": "start_typing"})))
        .await;
    assert_eq!(started.status, 204, "{}", started.body);
    let (destination, body) = next_frame(&mut stomp).await;
    assert_eq!(destination, "/queue/events");
    assert_eq!(body["type"], "typing", "{body}");
    assert_eq!(body["typing"], true, "{body}");
    assert_eq!(body["sender"]["name"], "Admin", "{body}");
}
