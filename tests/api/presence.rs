//! Presence of visitor sockets, on the configured backend (a single instance).
//! The cross-instance cases are in `cluster.rs`.

use chatgate::ws::stomp::{Command, StompFrame};

use crate::helpers::{Stomp, TestApp, WAIT};

#[tokio::test]
async fn a_visitor_is_online_while_a_socket_of_its_conversation_is_connected() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let other = app.visitor().await;
    assert!(!app.visitor_online(&visitor).await, "authenticated only");

    let (first_tab, _) = Stomp::connect(&app, &visitor.token).await;
    let (mut second_tab, _) = Stomp::connect(&app, &visitor.token).await;
    assert!(app.visitor_online(&visitor).await);
    assert!(
        !app.visitor_online(&other).await,
        "another conversation is not online"
    );

    drop(first_tab);
    // One tab is still open: the visitor stays online throughout.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
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

#[tokio::test]
async fn a_socket_that_never_connects_is_not_presence() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let mut stomp = Stomp::open(&app.ws_url(), None).await.unwrap();
    stomp
        .send(
            StompFrame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("Authorization", "Bearer not-a-token"),
        )
        .await;
    let error = stomp.recv().await.expect("ERROR");
    assert_eq!(error.command, Command::Error);
    assert!(!app.visitor_online(&visitor).await);
}
