//! Revocation is immediate (issue 14): logout ends the sockets opened with
//! that token; a password reset (API or CLI), disabling or deleting an
//! agent ends all its tokens, console sessions and sockets, pushed to every
//! instance rather than found at the sockets' next check.

use serde_json::json;

use crate::agent_helpers::{AgentClient, EventSocket};
use crate::helpers::TestApp;

const CREATED: &str = "chatd_user_room_message_created";

/// An agent in a room with Bob, logged in twice, with a socket per token.
struct Watched {
    agent: AgentClient,
    second: AgentClient,
    bob: AgentClient,
    room: String,
    sockets: [EventSocket; 2],
}

async fn watched(app: &TestApp, admin: &AgentClient, name: &str) -> Watched {
    let agent = admin.new_agent(app, name).await;
    let second = AgentClient::login(app, &agent.email, "correct horse").await;
    let bob = admin.new_agent(app, "Bob").await;
    let room = agent.create_room(&[&bob]).await["uuid"]
        .as_str()
        .unwrap()
        .to_string();
    let sockets = [agent.events().await, second.events().await];
    Watched {
        agent,
        second,
        bob,
        room,
        sockets,
    }
}

async fn refused(agent: &AgentClient) -> bool {
    agent.call("GET", "/users/me/rooms", None).await.status == 401
}

#[tokio::test]
async fn logout_closes_the_sockets_of_that_token_before_they_hear_anything_more() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    let mut w = watched(&app, &admin, "Ana").await;
    assert_eq!(w.agent.logout().await.status, 204);
    w.bob.post(&w.room, "said after the logout").await;

    assert_eq!(w.sockets[0].closed_before(CREATED).await, Some(4003));
    // The other login of the same agent lives on and hears it.
    let heard = w.sockets[1].event(CREATED).await;
    assert_eq!(heard["content"], "said after the logout");
    assert!(refused(&w.agent).await);
    assert!(!refused(&w.second).await);
}

#[tokio::test]
async fn a_password_change_disable_or_delete_ends_every_token_and_socket_of_the_agent() {
    let app = TestApp::spawn().await;
    let admin = AgentClient::admin(&app).await;
    for action in ["password", "disable", "delete"] {
        let mut w = watched(&app, &admin, "Ana").await;
        let path = format!("/agents/{}", w.agent.uuid);
        let reply = match action {
            "password" => {
                admin
                    .call("PATCH", &path, Some(json!({"password": "new horse"})))
                    .await
            }
            "disable" => {
                admin
                    .call("PATCH", &path, Some(json!({"disabled": true})))
                    .await
            }
            _ => admin.call("DELETE", &path, None).await,
        };
        assert!(reply.status < 300, "{action}: {}", reply.body);
        w.bob.post(&w.room, &format!("said after {action}")).await;
        for socket in &mut w.sockets {
            assert_eq!(socket.closed_before(CREATED).await, Some(4003), "{action}");
        }
        assert!(refused(&w.agent).await, "{action}");
        assert!(refused(&w.second).await, "{action}");
        if action == "password" {
            let again = AgentClient::login(&app, &w.agent.email, "new horse").await;
            assert!(!refused(&again).await, "the new password logs in");
        }
    }
}

#[tokio::test]
async fn the_reset_password_command_revokes_every_token_of_the_agent() {
    // Without Redis no event reaches the server from the command: the
    // sockets' periodic check finds the revocation, within a second here.
    let app = TestApp::spawn_with(|c| {
        if c.redis_url.is_none() {
            c.agent_recheck_secs = 1;
        }
    })
    .await;
    let admin = AgentClient::admin(&app).await;
    let mut w = watched(&app, &admin, "Ana").await;
    let mut command = tokio::process::Command::new(env!("CARGO_BIN_EXE_chatgate"));
    command
        .args(["admin", "reset-password", &w.agent.email])
        .env("CHATGATE_DATABASE_URL", &app.config.database_url)
        .env_remove("CHATGATE_REDIS_URL");
    if let Some(redis) = &app.config.redis_url {
        command
            .env("CHATGATE_REDIS_URL", redis)
            .env("CHATGATE_REDIS_PREFIX", &app.config.redis_prefix);
    }
    let out = command.output().await.unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let printed = String::from_utf8_lossy(&out.stdout);
    let password = printed.rsplit(": ").next().unwrap().trim().to_string();
    assert!(refused(&w.agent).await);
    assert!(refused(&w.second).await);
    AgentClient::login(&app, &w.agent.email, &password).await;
    if app.config.redis_url.is_some() {
        // Several instances: the command reaches the live sockets through
        // Redis, before they hear anything more.
        w.bob.post(&w.room, "said after the reset").await;
        for socket in &mut w.sockets {
            assert_eq!(socket.closed_before(CREATED).await, Some(4003));
        }
    } else {
        // Embedded: at their next check.
        for socket in &mut w.sockets {
            assert_eq!(socket.close_code().await, Some(4003));
        }
    }
}
