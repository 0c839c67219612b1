//! Structured notices (desk-api.md, "Notices"): every system message carries
//! `"notice": {"type", "params"}` beside its English content, by every door
//! (the visitor's socket and history, the agents' REST and event socket);
//! other messages have no `notice`.

use serde_json::{json, Value};

use crate::agent_helpers::AgentClient;
use crate::helpers::{Stomp, TestApp};
use crate::queue::{next_message, subscribe_events};

fn assert_notice(message: &Value, content: &str, notice: Value) {
    assert_eq!(message["content"], content, "{message}");
    assert_eq!(message["notice"], notice, "{message}");
}

#[tokio::test]
async fn every_door_carries_the_notice_of_each_system_message() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let bo = admin.new_agent(&app, "Bo").await;
    let mut admin_events = admin.events().await;
    let mut bo_events = bo.events().await;
    let visitor = app.visitor().await;
    let room = visitor.conversation_id.clone();
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    subscribe_events(&mut stomp).await;
    app.send(&visitor.token, "Hello").await;
    let own = next_message(&mut stomp).await;
    assert_eq!(own["message"]["alignment"], "RIGHT");
    assert!(own["message"].get("notice").is_none(), "{own}");

    // Answered: agent_joined.
    assert_eq!(admin.answer(&room).await.status, 200);
    let joined = json!({"type": "agent_joined", "params": {"agent": "Admin"}});
    let heard = next_message(&mut stomp).await;
    assert_eq!(heard["message"]["alignment"], "CENTER");
    assert_notice(&heard["message"], "Admin joined", joined.clone());
    let event = admin_events
        .event_with("chatd_user_room_message_created", "content", "Admin joined")
        .await;
    assert_eq!(event["kind"], "system");
    assert_eq!(event["notice"], joined);

    // Transferred to Bo: transferred, naming both.
    let moved = admin
        .call(
            "POST",
            &format!("/users/me/rooms/{room}/transfers"),
            Some(json!({"user_uuid": bo.uuid})),
        )
        .await;
    assert_eq!(moved.status, 200, "{}", moved.body);
    let transferred = json!({"type": "transferred", "params": {"agent": "Bo", "from": "Admin"}});
    let heard = next_message(&mut stomp).await;
    assert_notice(&heard["message"], "Bo joined", transferred.clone());
    let event = bo_events
        .event_with("chatd_user_room_message_created", "content", "Bo joined")
        .await;
    assert_eq!(event["notice"], transferred);

    // Closed by Bo, then reopened by the visitor's message.
    let closed = bo
        .call(
            "PUT",
            &format!("/users/me/rooms/{room}/state"),
            Some(json!({"state": "closed"})),
        )
        .await;
    assert_eq!(closed.status, 200, "{}", closed.body);
    let closed_notice = json!({"type": "closed", "params": {"agent": "Bo"}});
    let heard = next_message(&mut stomp).await;
    assert_eq!(heard["message"]["alignment"], "CENTER");
    assert_notice(
        &heard["message"],
        "Conversation closed",
        closed_notice.clone(),
    );
    let event = bo_events
        .event_with(
            "chatd_user_room_message_created",
            "content",
            "Conversation closed",
        )
        .await;
    assert_eq!(event["notice"], closed_notice);
    // Reopened by Bo: reopened, naming Bo.
    let state = format!("/users/me/rooms/{room}/state");
    let reopened_by_bo = bo.call("PUT", &state, Some(json!({"state": "open"}))).await;
    assert_eq!(reopened_by_bo.status, 200, "{}", reopened_by_bo.body);
    let reopened = json!({"type": "reopened", "params": {"agent": "Bo"}});
    let heard = next_message(&mut stomp).await;
    assert_notice(&heard["message"], "Conversation reopened", reopened.clone());
    // Closed again, then reopened by the visitor's message: no notice for
    // that (the message says it); Bo's reply below is the visitor's next.
    let closed_again = bo
        .call("PUT", &state, Some(json!({"state": "closed"})))
        .await;
    assert_eq!(closed_again.status, 200, "{}", closed_again.body);
    next_message(&mut stomp).await;
    app.send(&visitor.token, "One more thing").await;
    let again = next_message(&mut stomp).await;
    assert_eq!(again["message"]["content"], "One more thing");

    // History (the visitor's) and the room's messages (the agent's) keep
    // every notice; the visitor's and agents' own messages have none.
    let expected = [
        ("Hello", Value::Null),
        ("Admin joined", joined),
        ("Bo joined", transferred),
        ("Conversation closed", closed_notice.clone()),
        ("Conversation reopened", reopened),
        ("Conversation closed", closed_notice),
        ("One more thing", Value::Null),
    ];
    let history = app.history(&visitor).await;
    assert_eq!(history.len(), expected.len(), "{history:?}");
    for (message, (content, notice)) in history.iter().zip(&expected) {
        assert_eq!(message["content"], *content);
        if notice.is_null() {
            assert!(message.get("notice").is_none(), "{message}");
        } else {
            assert_eq!(message["alignment"], "CENTER");
            assert_eq!(message["notice"], *notice);
        }
    }
    let listed = bo.messages(&room).await;
    assert_eq!(listed.len(), expected.len(), "{listed:?}");
    for (message, (content, notice)) in listed.iter().zip(&expected) {
        assert_eq!(message["content"], *content);
        if notice.is_null() {
            assert!(message.get("notice").is_none(), "{message}");
        } else {
            assert_eq!(message["kind"], "system");
            assert_eq!(message["notice"], *notice);
        }
    }
    // An agent's reply has no notice either.
    let reply = bo.post(&room, "Sure, go ahead").await;
    assert!(reply.get("notice").is_none(), "{reply}");
    let heard = next_message(&mut stomp).await;
    assert_eq!(heard["message"]["content"], "Sure, go ahead");
    assert!(heard["message"].get("notice").is_none(), "{heard}");
}
