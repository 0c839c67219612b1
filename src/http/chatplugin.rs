//! The visitor API of visitor-api.md: `/chatplugin.authenticate`,
//! `/chatplugin.resumeToken`, `/chatplugin.send`. Browsers call these from
//! any page, so every route answers CORS preflight; the channel's
//! `allowed_origins` is enforced per request once the channel is known.

use std::net::IpAddr;

use bytes::Bytes;
use serde_json::{json, Map, Value};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::{body, client_ip, json_object, origin, required_uuid, respond, token, with_app};
use crate::app::App;
use crate::auth::TokenKind;
use crate::domain::{ChannelId, ConversationId, Message};
use crate::error::ApiError;
use crate::wire::visitor::{self as view, VisitorMessage};

pub fn routes(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let post = |name: &'static str| warp::path(name).and(warp::path::end()).and(warp::post());
    let authenticate = post("chatplugin.authenticate")
        .and(with_app(app.clone()))
        .and(client_ip(app.clone()))
        .and(origin())
        .and(super::optional_header("user-agent"))
        .and(body(&app))
        .then(authenticate);
    let resume = post("chatplugin.resumeToken")
        .and(with_app(app.clone()))
        .and(token())
        .and(origin())
        .and(body(&app))
        .then(resume_token);
    let send = post("chatplugin.send")
        .and(with_app(app.clone()))
        .and(token())
        .and(origin())
        .and(body(&app))
        .then(send);
    let cors = warp::cors()
        .allow_any_origin()
        .allow_methods(["POST", "GET", "OPTIONS"])
        .allow_headers(["authorization", "content-type", "x-auth-token"])
        .max_age(600);
    authenticate
        .or(resume)
        .unify()
        .or(send)
        .unify()
        .with(cors)
        .map(Reply::into_response)
}

fn messages_json(messages: &[Message]) -> Vec<VisitorMessage<'_>> {
    messages.iter().map(view::message).collect()
}

/// How an authenticate asks to begin.
#[derive(Debug)]
enum Start {
    /// A new conversation on this channel.
    New(ChannelId),
    /// The conversation of this resume token (not verified yet).
    Resume(String),
}

/// The body of `/chatplugin.authenticate`: the object (its visitor context
/// checked, so a bad one is refused before anything happens) and how to begin.
fn authenticate_body(body: &[u8]) -> Result<(Map<String, Value>, Start), ApiError> {
    let body = json_object(body, false)?;
    crate::domain::VisitorContext::parse(&body)
        .map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    let start = match body.get("resume_token") {
        Some(Value::String(resume)) => Start::Resume(resume.clone()),
        Some(Value::Null) | None => Start::New(required_uuid(&body, "channel_id")?),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "resume_token",
                "resume_token must be a string",
            ))
        }
    };
    Ok((body, start))
}

/// An admin's `/chatplugin.resumeToken` body: the channel and conversation.
fn resume_token_body(body: &[u8]) -> Result<(ChannelId, ConversationId), ApiError> {
    let body = json_object(body, true)?;
    Ok((
        required_uuid(&body, "channel_id")?,
        required_uuid(&body, "conversation_id")?,
    ))
}

/// POST /chatplugin.authenticate: starts a conversation or resumes one.
async fn authenticate(
    app: App,
    ip: IpAddr,
    origin: Option<String>,
    user_agent: Option<String>,
    body: Bytes,
) -> Response {
    respond(
        async {
            app.limits.authenticate.check(&ip)?;
            let (body, start) = authenticate_body(&body)?;
            let (channel, conversation_id, messages) = match start {
                Start::Resume(resume) => {
                    app.services
                        .visitor
                        .resume(&resume, origin.as_deref())
                        .await?
                }
                Start::New(channel_id) => {
                    let channel = app
                        .services
                        .visitor
                        .connected_channel(channel_id, origin.as_deref())
                        .await?;
                    (channel, ConversationId::new(), Vec::new())
                }
            };
            let channel_id = channel.id;
            // A conversation that has begun keeps its context up to date; a
            // new one carries it in its token until its first message, so
            // authenticating alone writes nothing.
            let mut first_context = None;
            if messages.is_empty() {
                first_context = view::context(&body, user_agent.as_deref())?;
            } else if let Some(context) = view::context(&body, user_agent.as_deref())? {
                app.services
                    .visitor
                    .save_context(channel.tenant_id, conversation_id, context)
                    .await?;
            }
            let token = app.tokens.visitor_with_context(
                TokenKind::Visitor,
                channel_id,
                conversation_id,
                app.config.visitor_token_ttl,
                first_context,
            );
            let resume_token = app.tokens.visitor(
                TokenKind::Resume,
                channel_id,
                conversation_id,
                app.config.resume_token_ttl,
            );
            Ok(warp::reply::json(&json!({
                "token": token,
                "messages": messages_json(&messages),
                "conversation_id": conversation_id,
                "channel_id": channel_id,
                "resume_token": resume_token,
                "channel": crate::wire::channel::public(&channel),
            })))
        }
        .await,
    )
}

/// POST /chatplugin.resumeToken: a resume token for the caller's conversation
/// (visitor token), or for any conversation of the admin's tenant (admin token).
async fn resume_token(
    app: App,
    token: Option<String>,
    origin: Option<String>,
    body: Bytes,
) -> Response {
    respond(
        async {
            let token = token.ok_or_else(ApiError::invalid_token)?;
            let resume = if let Some(claims) = app.tokens.verify_visitor(&token, TokenKind::Visitor)
            {
                let channel = app
                    .services
                    .visitor
                    .connected_channel(claims.ch, origin.as_deref())
                    .await?;
                app.services.visitor.resume_token(channel.id, claims.cv)
            } else {
                let admin = app.services.agents.admin(Some(&token)).await?;
                let (channel_id, conversation_id) = resume_token_body(&body)?;
                app.services
                    .visitor
                    .mint_resume(&admin, channel_id, conversation_id)
                    .await?
            };
            Ok(warp::reply::json(&json!({ "resume_token": resume })))
        }
        .await,
    )
}

/// POST /chatplugin.send: stores a visitor message; 200 means durable.
async fn send(app: App, token: Option<String>, origin: Option<String>, body: Bytes) -> Response {
    respond(
        async {
            let visitor = &app.services.visitor;
            let caller = visitor.visitor(token.as_deref(), origin.as_deref()).await?;
            let body = Value::Object(json_object(&body, false)?);
            let request = view::send_body(&body, app.config.max_text_chars)?;
            let message = visitor.send(&caller, request).await?;
            Ok(warp::reply::json(&view::message(&message)))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::{authenticate_body, resume_token_body, Start};
    use crate::fuzz;
    use crate::wire::visitor::send_body as visitor_message;

    /// Fields of the visitor bodies, the visitor context's among them.
    const KEYS: &[&str] = &[
        "channel_id",
        "resume_token",
        "conversation_id",
        "message",
        "text",
        "client_message_id",
        "visitor",
        "context",
        "name",
        "email",
        "url",
        "title",
        "referrer",
        "language",
        "time_zone",
        "utc_offset_minutes",
    ];

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn authenticate_bodies_decode_or_are_refused_cleanly(body in fuzz::json_bytes(KEYS)) {
            match authenticate_body(&body) {
                Ok((map, Start::Resume(token))) => {
                    prop_assert_eq!(map.get("resume_token"), Some(&Value::String(token)));
                }
                Ok((map, Start::New(_))) => prop_assert!(map.contains_key("channel_id")),
                Err(err) => fuzz::assert_client_error(&err),
            }
        }

        #[test]
        fn resume_token_bodies_decode_or_are_refused_cleanly(body in fuzz::json_bytes(KEYS)) {
            if let Err(err) = resume_token_body(&body) {
                fuzz::assert_client_error(&err);
            }
        }

        #[test]
        fn send_bodies_decode_or_are_refused_cleanly(body in fuzz::json_bytes(KEYS)) {
            // As /chatplugin.send reads them: an object, then its message.
            match crate::http::json_object(&body, false) {
                Ok(map) => {
                    if let Err(err) = visitor_message(&Value::Object(map), 4096) {
                        fuzz::assert_client_error(&err);
                    }
                }
                Err(err) => fuzz::assert_client_error(&err),
            }
        }
    }
}
