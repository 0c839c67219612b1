//! The embedded default survives a restart on the same SQLite file.

use crate::helpers::{Stomp, TestApp};

#[tokio::test]
async fn conversation_resumes_after_restart_and_old_tokens_still_verify() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    for text in ["before", "the", "restart"] {
        assert_eq!(app.send(&visitor.token, text).await.status, 200);
    }
    let (config, db, first) = app.stop().await;

    let app = TestApp::start(config, db, Some(first)).await;
    // The old visitor token still verifies (the secret was kept in the database).
    let reply = app.send(&visitor.token, "after").await;
    assert_eq!(reply.status, 200, "{}", reply.body);
    assert_eq!(reply.body["seq"], 4);
    assert_eq!(
        app.contents(&visitor).await,
        ["before", "the", "restart", "after"]
    );
    // And the old token connects over STOMP and replays everything.
    let mut stomp = Stomp::subscribed(&app, &visitor.token, Some(0)).await;
    let replayed = stomp.messages(4).await;
    assert_eq!(replayed[3]["message"]["content"], "after");
    // The admin created at first start can still log in; no second admin was made.
    assert!(!app.admin_token().await.is_empty());
}
