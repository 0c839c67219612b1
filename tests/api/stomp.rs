//! `/ws.chatplugin`: STOMP over a real WebSocket.

use std::collections::BTreeSet;
use std::sync::Arc;
use std::time::Duration;

use chatgate::ws::stomp::{Command, StompFrame};
use futures_util::StreamExt;
use serde_json::json;

use crate::helpers::{Stomp, TestApp};

#[tokio::test]
async fn connected_frame_negotiates_version_heartbeat_and_names_the_conversation() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let (_stomp, connected) = Stomp::connect(&app, &visitor.token).await;
    assert_eq!(connected.get("version"), Some("1.2"));
    assert_eq!(connected.get("heart-beat"), Some("10000,10000"));
    assert_eq!(
        connected.get("user-name"),
        Some(visitor.conversation_id.as_str())
    );
    assert!(connected
        .get("server")
        .is_some_and(|s| s.starts_with("chatgate/")));
}

#[tokio::test]
async fn message_frames_carry_the_contract_headers_and_body() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    let sent = app.send(&visitor.token, "hello").await.body;
    let frame = stomp.recv().await.unwrap();
    assert_eq!(frame.command, Command::Message);
    assert_eq!(frame.get("destination"), Some("/queue/message"));
    assert_eq!(frame.get("subscription"), Some("sub-0"));
    assert!(frame.get("message-id").is_some());
    assert_eq!(frame.get("content-type"), Some("application/json"));
    assert_eq!(
        frame.get("content-length"),
        Some(frame.body.len().to_string().as_str())
    );
    let body: serde_json::Value = serde_json::from_slice(&frame.body).unwrap();
    assert_eq!(body["type"], "message.created");
    assert_eq!(body["conversation_id"], visitor.conversation_id.as_str());
    assert_eq!(body["channel_id"], app.channel_id.as_str());
    assert_eq!(
        body["message"], sent,
        "the pushed message equals the HTTP reply"
    );
}

#[tokio::test]
async fn every_session_of_a_conversation_receives_each_message_and_others_receive_nothing() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let stranger = app.visitor().await;
    let mut tab1 = Stomp::subscribed(&app, &visitor.token, None).await;
    let mut tab2 = Stomp::subscribed(&app, &visitor.token, None).await;
    let mut other = Stomp::subscribed(&app, &stranger.token, None).await;
    for text in ["a", "b", "c"] {
        assert_eq!(app.send(&visitor.token, text).await.status, 200);
    }
    // Markers, published after the three: the stranger's own message, and
    // a fourth of the visitor's. Whatever a session wrongly received (a
    // duplicate, another conversation's message) would come before them.
    assert_eq!(app.send(&stranger.token, "z").await.status, 200);
    assert_eq!(app.send(&visitor.token, "d").await.status, 200);
    for tab in [&mut tab1, &mut tab2] {
        let got: Vec<_> = tab
            .messages(4)
            .await
            .iter()
            .map(|m| m["message"]["content"].clone())
            .collect();
        assert_eq!(got, vec![json!("a"), json!("b"), json!("c"), json!("d")]);
    }
    let got = other.messages(1).await;
    assert_eq!(got[0]["message"]["content"], "z", "{}", got[0]);
}

#[tokio::test]
async fn since_seq_replays_what_was_missed_then_goes_live_without_gap_or_duplicate() {
    let app = TestApp::spawn_with(|c| c.send_burst = 10_000).await;
    let visitor = app.visitor().await;
    for i in 1..=20 {
        app.send(&visitor.token, &format!("m{i}")).await;
    }
    // Keep sending while the subscriber replays.
    let sender = {
        let base = app.url("/chatplugin.send");
        let token = visitor.token.clone();
        tokio::spawn(async move {
            let http = reqwest::Client::new();
            for i in 21..=60 {
                let reply = http
                    .post(&base)
                    .bearer_auth(&token)
                    .json(&json!({"message": {"text": format!("m{i}")}}))
                    .send()
                    .await
                    .unwrap();
                assert_eq!(reply.status(), 200);
            }
        })
    };
    let mut stomp = Stomp::subscribed(&app, &visitor.token, Some(5)).await;
    let mut seqs = Vec::new();
    while seqs.last() != Some(&60) {
        let frame = stomp.recv().await.expect("open");
        match frame.command {
            Command::Message => {
                let body: serde_json::Value = serde_json::from_slice(&frame.body).unwrap();
                let seq = body["message"]["seq"].as_i64().unwrap();
                assert_eq!(body["message"]["content"], format!("m{seq}"));
                seqs.push(seq);
            }
            Command::Receipt => {}
            other => panic!("unexpected {other:?}"),
        }
    }
    sender.await.unwrap();
    assert_eq!(seqs, (6..=60).collect::<Vec<_>>());
    // No duplicate follows: the next message is the next one sent.
    app.send(&visitor.token, "m61").await;
    let next = stomp.messages(1).await;
    assert_eq!(next[0]["message"]["seq"], 61, "{}", next[0]);
}

#[tokio::test]
async fn app_send_stores_and_echoes_and_rejects_bad_bodies() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/send")
                .header("receipt", "s1")
                .body(
                    json!({"message": {"text": "via stomp"}, "client_message_id": "k1"})
                        .to_string(),
                ),
        )
        .await;
    let mut saw = BTreeSet::new();
    while saw.len() < 2 {
        let frame = stomp.recv().await.unwrap();
        match frame.command {
            Command::Receipt => {
                assert_eq!(frame.get("receipt-id"), Some("s1"));
                saw.insert("receipt");
            }
            Command::Message => {
                let body: serde_json::Value = serde_json::from_slice(&frame.body).unwrap();
                assert_eq!(body["message"]["content"], "via stomp");
                assert_eq!(body["message"]["seq"], 1);
                saw.insert("message");
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    // Blank text: ERROR naming 400, then the socket closes; nothing stored.
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/send")
                .body(r#"{"message":{"text":"  "}}"#),
        )
        .await;
    let error = stomp.recv().await.unwrap();
    assert_eq!(error.command, Command::Error);
    assert!(error.get("message").unwrap().contains("400"), "{error:?}");
    assert_eq!(stomp.recv().await, None);
    assert_eq!(app.history(&visitor).await.len(), 1);
}

async fn connect_frame(app: &TestApp, auth: &str) -> StompFrame {
    let mut stomp = Stomp::open(&app.ws_url(), None).await.unwrap();
    stomp
        .send(
            StompFrame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("Authorization", auth),
        )
        .await;
    let frame = stomp.recv().await.expect("a frame");
    assert_eq!(stomp.recv().await, None, "the socket closes after ERROR");
    frame
}

#[tokio::test]
async fn a_bad_token_gets_error_401_and_the_socket_closes() {
    let app = TestApp::spawn_with(|c| c.visitor_token_ttl = 1).await;
    let visitor = app.visitor().await;
    let mut forged = visitor.token.clone();
    let last = forged.pop().unwrap();
    forged.push(if last == 'A' { 'B' } else { 'A' });
    for auth in [
        format!("Bearer {forged}"),
        "Bearer nonsense".into(),
        String::new(),
        format!("Bearer {}", visitor.resume_token),
    ] {
        let frame = connect_frame(&app, &auth).await;
        assert_eq!(frame.command, Command::Error);
        assert!(
            frame.get("message").unwrap().contains("401 UNAUTHORIZED"),
            "{frame:?}"
        );
    }
    tokio::time::sleep(Duration::from_millis(2100)).await;
    let frame = connect_frame(&app, &format!("Bearer {}", visitor.token)).await;
    assert!(
        frame.get("message").unwrap().contains("401 UNAUTHORIZED"),
        "expired: {frame:?}"
    );
}

#[tokio::test]
async fn passcode_header_is_accepted_as_the_token() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let mut stomp = Stomp::open(&app.ws_url(), None).await.unwrap();
    stomp
        .send(
            StompFrame::new(Command::Stomp)
                .header("accept-version", "1.1")
                .header("passcode", visitor.token.clone()),
        )
        .await;
    let frame = stomp.recv().await.unwrap();
    assert_eq!(frame.command, Command::Connected);
    assert_eq!(frame.get("version"), Some("1.1"));
}

async fn expect_error_and_close(stomp: &mut Stomp, fragment: &str) {
    let frame = stomp.recv().await.expect("ERROR frame");
    assert_eq!(frame.command, Command::Error, "{frame:?}");
    let text = format!(
        "{} {}",
        frame.get("message").unwrap_or(""),
        String::from_utf8_lossy(&frame.body)
    );
    assert!(text.contains(fragment), "{text}");
    assert_eq!(stomp.recv().await, None, "closed after ERROR");
}

#[tokio::test]
async fn bad_frames_get_an_error_frame_then_close_and_the_server_keeps_serving() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;

    let mut stomp = Stomp::open(&app.ws_url(), None).await.unwrap();
    stomp.send_raw(b"HELLO\n\n\0").await;
    expect_error_and_close(&mut stomp, "unknown command").await;

    let mut stomp = Stomp::open(&app.ws_url(), None).await.unwrap();
    stomp
        .send(
            StompFrame::new(Command::Subscribe)
                .header("id", "1")
                .header("destination", "/queue/message"),
        )
        .await;
    expect_error_and_close(&mut stomp, "CONNECT").await;

    let (mut stomp, _) = Stomp::connect(&app, &visitor.token).await;
    stomp
        .send(
            StompFrame::new(Command::Subscribe)
                .header("id", "1")
                .header("destination", "/topic/all"),
        )
        .await;
    expect_error_and_close(&mut stomp, "unknown destination").await;

    let (mut stomp, _) = Stomp::connect(&app, &visitor.token).await;
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/nowhere")
                .body("{}"),
        )
        .await;
    expect_error_and_close(&mut stomp, "unknown destination").await;

    let (mut stomp, _) = Stomp::connect(&app, &visitor.token).await;
    stomp
        .send(StompFrame::new(Command::Subscribe).header("destination", "/queue/message"))
        .await;
    expect_error_and_close(&mut stomp, "id").await;

    let (mut stomp, _) = Stomp::connect(&app, &visitor.token).await;
    stomp
        .send(
            StompFrame::new(Command::Subscribe)
                .header("id", "1")
                .header("destination", "/queue/message")
                .header("since-seq", "-3"),
        )
        .await;
    expect_error_and_close(&mut stomp, "since-seq").await;

    let (mut stomp, _) = Stomp::connect(&app, &visitor.token).await;
    let mut big = b"SEND\ndestination:/app/send\n\n".to_vec();
    big.extend(std::iter::repeat_n(b'x', 65 * 1024));
    big.push(0);
    stomp.send_raw(&big).await;
    expect_error_and_close(&mut stomp, "limit").await;

    let (mut stomp, _) = Stomp::connect(&app, &visitor.token).await;
    stomp
        .send_raw(b"SEND\ndestination:/app/send\ncontent-length:zz\n\n{}\0")
        .await;
    expect_error_and_close(&mut stomp, "content-length").await;

    let (mut stomp, _) = Stomp::connect(&app, &visitor.token).await;
    stomp
        .send(
            StompFrame::new(Command::Connect)
                .header("Authorization", format!("Bearer {}", visitor.token)),
        )
        .await;
    expect_error_and_close(&mut stomp, "already connected").await;

    // After all that, the server still serves this conversation.
    let mut ok = Stomp::subscribed(&app, &visitor.token, None).await;
    app.send(&visitor.token, "still alive").await;
    assert_eq!(ok.messages(1).await[0]["message"]["content"], "still alive");
}

#[tokio::test]
async fn disconnect_with_receipt_gets_the_receipt_then_close() {
    let app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let (mut stomp, _) = Stomp::connect(&app, &visitor.token).await;
    stomp
        .send(StompFrame::new(Command::Disconnect).header("receipt", "bye-1"))
        .await;
    let receipt = stomp.recv().await.unwrap();
    assert_eq!(receipt.command, Command::Receipt);
    assert_eq!(receipt.get("receipt-id"), Some("bye-1"));
    assert_eq!(stomp.close_code().await, Some(1000));
}

#[tokio::test]
async fn heartbeats_flow_and_a_silent_client_is_disconnected() {
    let app = TestApp::spawn_with(|c| c.heartbeat_ms = 100).await;
    let visitor = app.visitor().await;
    // The client wants heart-beats every 100 ms and promises none: it gets EOLs.
    let mut url_stomp = Stomp::open(&app.ws_url(), None).await.unwrap();
    url_stomp
        .send(
            StompFrame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", "0,100")
                .header("Authorization", format!("Bearer {}", visitor.token)),
        )
        .await;
    assert_eq!(url_stomp.recv().await.unwrap().command, Command::Connected);
    // Six heart-beats (600 ms) of a client that sends nothing: still open,
    // and it answers.
    url_stomp.heartbeats(6).await;
    url_stomp
        .send(
            StompFrame::new(Command::Subscribe)
                .header("id", "sub-0")
                .header("destination", "/queue/message")
                .header("receipt", "still-here"),
        )
        .await;
    let receipt = url_stomp.recv().await.expect("RECEIPT");
    assert_eq!(receipt.command, Command::Receipt, "{receipt:?}");
    assert_eq!(receipt.get("receipt-id"), Some("still-here"));

    // A client that promises heart-beats every 100 ms and goes silent is dropped.
    let mut silent = Stomp::open(&app.ws_url(), None).await.unwrap();
    silent
        .send(
            StompFrame::new(Command::Connect)
                .header("accept-version", "1.2")
                .header("heart-beat", "100,0")
                .header("Authorization", format!("Bearer {}", visitor.token)),
        )
        .await;
    assert_eq!(silent.recv().await.unwrap().command, Command::Connected);
    expect_error_and_close(&mut silent, "heart-beat").await;
}

#[tokio::test]
async fn server_heartbeats_are_eols_on_the_wire() {
    let app = TestApp::spawn_with(|c| c.heartbeat_ms = 50).await;
    let visitor = app.visitor().await;
    let mut request =
        tokio_tungstenite::tungstenite::client::IntoClientRequest::into_client_request(
            app.ws_url(),
        )
        .unwrap();
    request
        .headers_mut()
        .insert("sec-websocket-protocol", "v12.stomp".parse().unwrap());
    let (mut ws, _) = tokio_tungstenite::connect_async(request).await.unwrap();
    let connect = StompFrame::new(Command::Connect)
        .header("heart-beat", "0,50")
        .header("Authorization", format!("Bearer {}", visitor.token));
    futures_util::SinkExt::send(
        &mut ws,
        tokio_tungstenite::tungstenite::Message::text(String::from_utf8(connect.encode()).unwrap()),
    )
    .await
    .unwrap();
    let mut eols = 0;
    while eols < 3 {
        let msg = tokio::time::timeout(Duration::from_secs(5), ws.next())
            .await
            .unwrap()
            .unwrap()
            .unwrap();
        if msg.to_text().unwrap() == "\n" {
            eols += 1;
        }
    }
}

#[tokio::test]
async fn disallowed_origins_are_refused_at_handshake_and_at_connect() {
    let app = TestApp::spawn().await;
    let admin = app.admin_token().await;
    let channel = app
        .create_channel(
            &admin,
            json!({"name": "Shop", "allowed_origins": ["https://shop.example.com"]}),
        )
        .await;
    let visitor = app.visitor_on(&channel).await;
    let url = format!("{}?channel_id={channel}", app.ws_url());
    match Stomp::open(&url, Some("https://evil.example.net")).await {
        Err(tokio_tungstenite::tungstenite::Error::Http(response)) => {
            assert_eq!(response.status(), 403)
        }
        other => panic!("expected 403, got {:?}", other.map(|_| ())),
    }
    assert!(Stomp::open(&url, Some("https://shop.example.com"))
        .await
        .is_ok());

    // Without the channel in the URL, the Origin is checked at CONNECT.
    let mut stomp = Stomp::open(&app.ws_url(), Some("https://evil.example.net"))
        .await
        .unwrap();
    stomp
        .send(
            StompFrame::new(Command::Connect)
                .header("Authorization", format!("Bearer {}", visitor.token)),
        )
        .await;
    expect_error_and_close(&mut stomp, "403").await;
}

#[tokio::test]
async fn shutdown_closes_sockets_with_1001() {
    let mut app = TestApp::spawn().await;
    let visitor = app.visitor().await;
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    app.shutdown().await;
    assert_eq!(stomp.close_code().await, Some(1001));
}

#[tokio::test]
async fn a_plain_get_of_the_socket_endpoint_gets_a_json_400() {
    let app = TestApp::spawn().await;
    let response = app
        .http
        .get(app.url("/ws.chatplugin"))
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), 400);
    let body: serde_json::Value = response.json().await.unwrap();
    assert_eq!(body["error_id"], "invalid-data");
    assert!(body["message"].as_str().unwrap().contains("WebSocket"));
}

#[tokio::test]
async fn pipelined_sends_are_stored_in_order_with_receipts_in_order_before_disconnect() {
    let app = TestApp::spawn_with(|c| {
        c.send_burst = 1000;
        c.send_per_second = 1000;
    })
    .await;
    let visitor = app.visitor().await;
    let mut stomp = Stomp::subscribed(&app, &visitor.token, None).await;
    // Written back to back, without waiting for any answer.
    for n in 0..100 {
        stomp
            .send(
                StompFrame::new(Command::Send)
                    .header("destination", "/app/send")
                    .header("receipt", format!("r{n}"))
                    .body(json!({"message": {"text": format!("m{n}")}}).to_string()),
            )
            .await;
    }
    stomp
        .send(StompFrame::new(Command::Disconnect).header("receipt", "bye"))
        .await;
    let mut receipts = Vec::new();
    let mut contents = Vec::new();
    while let Some(frame) = stomp.recv().await {
        match frame.command {
            Command::Receipt => receipts.push(frame.get("receipt-id").unwrap().to_string()),
            Command::Message => {
                let body: serde_json::Value = serde_json::from_slice(&frame.body).unwrap();
                let seq = body["message"]["seq"].as_i64().unwrap();
                assert_eq!(seq as usize, contents.len() + 1, "seqs in order, no gap");
                contents.push(body["message"]["content"].as_str().unwrap().to_string());
            }
            other => panic!("unexpected {other:?}"),
        }
    }
    let mut expected: Vec<String> = (0..100).map(|n| format!("r{n}")).collect();
    expected.push("bye".into());
    assert_eq!(
        receipts, expected,
        "receipts in frame order, DISCONNECT's last"
    );
    let sent: Vec<String> = (0..100).map(|n| format!("m{n}")).collect();
    assert_eq!(contents, sent, "every message delivered before the close");
    assert_eq!(app.contents(&visitor).await, sent, "stored in order");
}

#[tokio::test]
async fn messages_stored_after_their_sender_vanished_still_reach_the_other_tab() {
    let app = TestApp::spawn_with(|c| {
        c.send_burst = 1000;
        c.send_per_second = 1000;
    })
    .await;
    let visitor = app.visitor().await;
    let mut other_tab = Stomp::subscribed(&app, &visitor.token, None).await;
    let (mut sender, _) = Stomp::connect(&app, &visitor.token).await;
    for n in 0..100 {
        sender
            .send(
                StompFrame::new(Command::Send)
                    .header("destination", "/app/send")
                    .body(json!({"message": {"text": format!("m{n}")}}).to_string()),
            )
            .await;
    }
    // Gone without DISCONNECT, while its sends are being stored. Exactly
    // the 100 sent are stored and delivered: each SEND was flushed to the
    // socket before it closed, the server reads every frame before the end
    // of the stream (nothing was written to this client, so its close is a
    // FIN, never a reset that could drop unread bytes), and a session that
    // ends hands the stores it started to a task that publishes them.
    drop(sender);
    let received = other_tab.messages(100).await;
    let contents: Vec<&str> = received
        .iter()
        .map(|m| m["message"]["content"].as_str().unwrap())
        .collect();
    let sent: Vec<String> = (0..100).map(|n| format!("m{n}")).collect();
    assert_eq!(contents, sent);
    let seqs: Vec<i64> = received
        .iter()
        .map(|m| m["message"]["seq"].as_i64().unwrap())
        .collect();
    assert_eq!(seqs, (1..=100).collect::<Vec<_>>());
    assert_eq!(app.contents(&visitor).await, sent, "stored in order");
}

/// A visitor token signed with the server's own secret for any ids: what
/// only a bug could hand out. The store must still keep it to its channel.
async fn forged_visitor_token(app: &TestApp, channel: &str, conversation: &str) -> String {
    let store = chatgate::store::open(&app.config.database_url)
        .await
        .unwrap();
    let secret = store.jwt_secret("unused candidate").await.unwrap();
    chatgate::auth::Tokens::new(secret.as_bytes()).visitor(
        chatgate::auth::TokenKind::Visitor,
        channel.parse().unwrap(),
        conversation.parse().unwrap(),
        60,
    )
}

#[tokio::test]
async fn a_visitor_token_naming_an_agent_room_reads_and_writes_nothing_there() {
    let app = TestApp::spawn().await;
    let admin = crate::agent_helpers::AgentClient::admin(&app).await;
    let ana = admin.new_agent(&app, "Ana").await;
    let room = ana.create_room(&[&admin]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    ana.post(&room, "team secret").await;
    let token = forged_visitor_token(&app, &app.channel_id, &room).await;

    // HTTP: refused, nothing stored.
    app.send(&token, "intruder")
        .await
        .assert_error(404, "unknown-conversation");
    // STOMP: the replay from 0 finds nothing, and a send is an ERROR.
    let mut stomp = Stomp::subscribed(&app, &token, Some(0)).await;
    stomp
        .send(
            StompFrame::new(Command::Send)
                .header("destination", "/app/send")
                .header("receipt", "s1")
                .body(json!({"message": {"text": "intruder"}}).to_string()),
        )
        .await;
    let mut error = stomp.recv().await.expect("an ERROR frame");
    while error.get("receipt-id") == Some("r-sub") {
        error = stomp.recv().await.expect("an ERROR frame");
    }
    assert_eq!(error.command, Command::Error, "{error:?}");
    assert!(error.get("message").unwrap().contains("404"), "{error:?}");
    let texts: Vec<serde_json::Value> = ana
        .messages(&room)
        .await
        .into_iter()
        .map(|m| m["content"].clone())
        .collect();
    assert_eq!(texts, [json!("team secret")]);
}

/// Many visitors opening their conversations at once, each writing frames
/// back to back: every send is stored and receipted, in order, none
/// refused, on either backend. (A first message's follow-up writes now run
/// on a task of their own; the pool stall that motivated it, seen only
/// under `chatgate-bench chat` on PostgreSQL, is not reproduced here: see
/// the README, "A stalled pool".)
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn many_conversations_opening_at_once_are_all_stored_and_receipted() {
    const VISITORS: usize = 64;
    const SENDS: usize = 8;
    let app = TestApp::spawn_with(|c| {
        c.send_burst = 1000;
        c.send_per_second = 1000;
        c.authenticate_burst = 1000;
        c.authenticate_per_minute = 10_000;
        c.max_connections_per_ip = 1000;
    })
    .await;
    let mut sessions = Vec::new();
    for _ in 0..VISITORS {
        let visitor = app.visitor().await;
        let stomp = Stomp::subscribed(&app, &visitor.token, None).await;
        sessions.push((visitor, stomp));
    }
    let barrier = Arc::new(tokio::sync::Barrier::new(VISITORS));
    let mut tasks = Vec::new();
    for (n, (visitor, mut stomp)) in sessions.into_iter().enumerate() {
        let barrier = barrier.clone();
        tasks.push(tokio::spawn(async move {
            barrier.wait().await;
            for i in 0..SENDS {
                stomp
                    .send(
                        StompFrame::new(Command::Send)
                            .header("destination", "/app/send")
                            .header("receipt", format!("r{i}"))
                            .body(json!({"message": {"text": format!("v{n} m{i}")}}).to_string()),
                    )
                    .await;
            }
            stomp
                .send(StompFrame::new(Command::Disconnect).header("receipt", "bye"))
                .await;
            let mut receipts = Vec::new();
            while let Some(frame) = stomp.recv().await {
                match frame.command {
                    Command::Receipt => receipts.push(frame.get("receipt-id").unwrap().to_string()),
                    Command::Message => {}
                    other => panic!(
                        "visitor {n}: unexpected {other:?}: {}",
                        String::from_utf8_lossy(&frame.body)
                    ),
                }
            }
            (visitor, receipts)
        }));
    }
    let mut expected: Vec<String> = (0..SENDS).map(|i| format!("r{i}")).collect();
    expected.push("bye".into());
    for (n, task) in tasks.into_iter().enumerate() {
        let (visitor, receipts) = task.await.unwrap();
        assert_eq!(receipts, expected, "visitor {n}");
        let sent: Vec<String> = (0..SENDS).map(|i| format!("v{n} m{i}")).collect();
        assert_eq!(
            app.contents(&visitor).await,
            sent,
            "visitor {n}: stored in order"
        );
    }
}
