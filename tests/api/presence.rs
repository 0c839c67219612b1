//! Presence of visitor sockets, on the configured backend (a single instance).
//! The cross-instance cases are in `cluster.rs`.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;

use chatgate::presence::PresenceKey;
use chatgate::ws::stomp::{Command, StompFrame};
use serde_json::json;

use crate::helpers::{Stomp, TestApp, WAIT};

#[tokio::test]
async fn a_visitor_is_online_while_a_socket_of_its_conversation_is_connected() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let other = app.visitor().await;
    assert!(!app.visitor_online(&visitor).await, "authenticated only");

    let (mut first_tab, _) = Stomp::connect(&app, &visitor.token).await;
    let (mut second_tab, _) = Stomp::connect(&app, &visitor.token).await;
    assert!(app.visitor_online(&visitor).await);
    assert!(
        !app.visitor_online(&other).await,
        "another conversation is not online"
    );

    // The first tab leaves; the server closes its socket only after the
    // session has left the presence, so once the close arrives the visitor
    // is online by the second tab alone.
    first_tab
        .send(StompFrame::new(Command::Disconnect).header("receipt", "first-bye"))
        .await;
    assert_eq!(first_tab.close_code().await, Some(1000));
    assert!(app.visitor_online(&visitor).await);

    second_tab
        .send(StompFrame::new(Command::Disconnect).header("receipt", "bye"))
        .await;
    let receipt = second_tab.recv().await.expect("RECEIPT");
    assert_eq!(receipt.command, Command::Receipt);
    assert!(
        app.wait_visitor_online(&visitor, false, WAIT).await,
        "offline once the last socket closed"
    );
}

/// A socket whose CONNECT is refused never makes its visitor present, not
/// even for a moment. The token is real (its conversation is the one
/// watched) and only the channel check fails, so a session that entered
/// presence once the token verified, before the channel was checked, would
/// be seen by the watcher.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_socket_that_never_connects_is_not_presence() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let channel = app
        .create_channel(&admin, json!({"name": "Closing down"}))
        .await;
    let visitor = app.visitor_on(&channel).await;
    let reply = app
        .post(
            "/channels.chatplugin.disconnect",
            &json!({"channel_id": channel}),
            Some(&admin),
        )
        .await;
    assert_eq!(reply.status, 204, "{}", reply.body);

    let presence = app.presence.clone();
    let key = PresenceKey::Conversation(visitor.conversation_id.parse().unwrap());
    let watching = Arc::new(AtomicBool::new(true));
    let watcher = tokio::spawn({
        let watching = watching.clone();
        async move {
            let mut seen_online = false;
            while watching.load(Ordering::Acquire) {
                seen_online |= presence.online(&[key]).await[0];
                tokio::task::yield_now().await;
            }
            seen_online
        }
    });

    let mut stomp = Stomp::open(&app.ws_url(), None).await.unwrap();
    stomp
        .send(
            StompFrame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("Authorization", format!("Bearer {}", visitor.token)),
        )
        .await;
    let error = stomp.recv().await.expect("ERROR");
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert_eq!(
        error.get("message"),
        Some("404 unknown-channel"),
        "{error:?}"
    );
    assert!(
        stomp.recv().await.is_none(),
        "the socket closes after ERROR"
    );

    watching.store(false, Ordering::Release);
    assert!(
        !watcher.await.unwrap(),
        "the refused visitor was never online"
    );
    assert!(!app.visitor_online(&visitor).await);
}
