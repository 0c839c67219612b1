//! The outbox across a SIGKILL: replies to offline visitors are
//! acknowledged (201), which means their emails are scheduled durably; the
//! server is killed before any is due, started again on the same database,
//! and every visitor still gets its email from the real SMTP server the
//! test runs (aiosmtpd), once.

use std::collections::HashMap;

use serde_json::json;

use crate::clients::{http, post, Agent, Answer};
use crate::process::Chatgate;
use crate::smtp_sink::SmtpSink;

/// Offline visitors, each with an address and one reply.
const VISITORS: usize = 20;

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn scheduled_emails_survive_a_sigkill_and_are_sent_once() {
    let sink = SmtpSink::start();
    let dir = tempfile::tempdir().expect("temp dir");
    let env = [
        (
            "CHATGATE_DATABASE_URL",
            dir.path().join("chatgate.db").display().to_string(),
        ),
        ("CHATGATE_SMTP_URL", sink.url()),
        // Long enough that nothing is due before the kill.
        ("CHATGATE_EMAIL_OFFLINE_DELAY_MS", "3000".to_string()),
        ("CHATGATE_OUTBOX_POLL_MS", "100".to_string()),
    ];
    let (mut server, first) = Chatgate::start("email", &env);
    let first = first.expect("a first start");
    let http = http();
    let base = server.base.clone();
    let admin = Agent::login(&http, &base, &first.admin_email, &first.admin_password).await;
    let answer = post(
        &http,
        format!("{base}/channels.update"),
        &json!({"channel_id": first.channel_id, "email_fallback": true}),
        Some(&admin.token),
    )
    .await;
    assert!(matches!(answer, Answer::Reply(200, _)), "{answer:?}");

    for n in 0..VISITORS {
        let started = post(
            &http,
            format!("{base}/chatplugin.authenticate"),
            &json!({"channel_id": first.channel_id,
                    "visitor": {"email": format!("v{n}@example.com")}}),
            None,
        )
        .await;
        let Answer::Reply(200, body) = started else {
            panic!("authenticate: {started:?}");
        };
        let token = body["token"].as_str().expect("token");
        let room = body["conversation_id"].as_str().expect("conversation_id");
        let sent = post(
            &http,
            format!("{base}/chatplugin.send"),
            &json!({"message": {"text": format!("question {n}")}}),
            Some(token),
        )
        .await;
        assert!(matches!(sent, Answer::Reply(200, _)), "{sent:?}");
        admin.answer(&base, room).await;
        let reply = admin
            .call(
                &base,
                "POST",
                &format!("/users/me/rooms/{room}/messages"),
                Some(json!({"content": format!("answer {n}")})),
            )
            .await;
        assert!(matches!(reply, Answer::Reply(201, _)), "{reply:?}");
    }
    // Every reply acknowledged, none due yet: killed mid-whatever.
    server.kill();
    assert!(sink.received().is_empty(), "sent before it was due");
    server.restart();

    let mail = sink.wait_for(VISITORS).await;
    let mut per_address: HashMap<String, usize> = HashMap::new();
    for email in &mail {
        for to in email["to"].as_array().expect("to") {
            *per_address
                .entry(to.as_str().expect("address").to_string())
                .or_default() += 1;
        }
    }
    for n in 0..VISITORS {
        let address = format!("v{n}@example.com");
        assert_eq!(
            per_address.get(&address),
            Some(&1),
            "{address}: {per_address:?}; stderr:\n{}",
            server.stderr()
        );
        let text = mail
            .iter()
            .find(|m| m["to"][0] == address.as_str())
            .and_then(|m| m["text"].as_str())
            .expect("a text part");
        assert!(text.contains(&format!("answer {n}")), "{text}");
    }
}
