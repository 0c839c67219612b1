//! The visitor API of visitor-api.md: `/chatplugin.authenticate`,
//! `/chatplugin.resumeToken`, `/chatplugin.send`, and desk-api.md's
//! `/chatplugin.rate`. Browsers call these from
//! any page, so every route answers CORS preflight; the channel's
//! `allowed_origins` is enforced per request once the channel is known.
//! Each handler parses its request, calls one service function (the token
//! rules are `service::visitor_tokens`'s) and renders the answer.

use std::net::IpAddr;

use bytes::Bytes;
use serde_json::{json, Value};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::{body, client_ip, json_object, origin, required_uuid, respond, token, with_app};
use crate::domain::{ChannelId, ConversationId, Message, Rating};
use crate::error::ApiError;
use crate::service::visitor_tokens::{Authenticate, ResumeMinter, VisitorStart};
use crate::state::App;
use crate::wire::shapes;
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
    let rate = post("chatplugin.rate")
        .and(with_app(app.clone()))
        .and(token())
        .and(origin())
        .and(body(&app))
        .then(rate);
    let conversations = post("chatplugin.conversations")
        .and(with_app(app.clone()))
        .and(token())
        .and(origin())
        .then(conversations);
    let transcript = post("chatplugin.transcript")
        .and(with_app(app.clone()))
        .and(client_ip(app.clone()))
        .and(token())
        .and(origin())
        .then(transcript);
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
        .or(rate)
        .unify()
        .or(conversations)
        .unify()
        .or(transcript)
        .unify()
        .or(super::files::visitor_upload(app.clone()))
        .unify()
        .with(cors)
        .map(Reply::into_response)
}

fn messages_json<'a>(messages: &'a [Message], app: &App) -> Vec<VisitorMessage<'a>> {
    let signer = app.hub.signer();
    messages.iter().map(|m| view::message(m, signer)).collect()
}

/// The body of `/chatplugin.authenticate`: the object (its visitor context
/// checked, so a bad one is refused before anything happens) and how to begin.
fn authenticate_body(body: &[u8], user_agent: Option<&str>) -> Result<Authenticate, ApiError> {
    let context = json_object(body, false)?;
    let start = match context.get("resume_token") {
        Some(Value::String(resume)) => VisitorStart::Resume(resume.clone()),
        Some(Value::Null) | None => VisitorStart::New(required_uuid(&context, "channel_id")?),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "resume_token",
                "resume_token must be a string",
            ))
        }
    };
    let channel = match (&start, context.get("channel_id")) {
        (VisitorStart::Resume(_), Some(v)) if !v.is_null() => {
            Some(required_uuid(&context, "channel_id")?)
        }
        _ => None,
    };
    let new_conversation = match context.get("new_conversation") {
        None | Some(Value::Null) => false,
        Some(Value::Bool(b)) => *b,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "new_conversation",
                "new_conversation must be true or false",
            ))
        }
    };
    let (identity, identity_context) = identity(&context)?;
    let mut context = crate::wire::visitor::context(&context, user_agent)?;
    if let Some(named) = identity_context {
        // What the site says of its customer wins over the page's fields.
        context = Some(context.unwrap_or_default().merged(named));
    }
    Ok(Authenticate {
        context,
        start,
        channel,
        identity,
        new_conversation,
    })
}

/// `"identity": {"id", "hash", "name"?, "email"?}` of an authenticate: the
/// claimed identity (its hash checked later, against the channel's secret;
/// a missing or malformed hash verifies nothing: 401), and its name and
/// email as the visitor's.
fn identity(
    body: &serde_json::Map<String, Value>,
) -> Result<
    (
        Option<crate::domain::identity::ClaimedIdentity>,
        Option<crate::domain::VisitorContext>,
    ),
    ApiError,
> {
    let identity = match body.get("identity") {
        None | Some(Value::Null) => return Ok((None, None)),
        Some(Value::Object(identity)) => identity,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "identity",
                "identity must be an object",
            ))
        }
    };
    let Some(Value::String(id)) = identity.get("id") else {
        return Err(ApiError::invalid_field(
            "identity.id",
            "identity.id must be a string",
        ));
    };
    let hash = match identity.get("hash") {
        Some(Value::String(hash)) => Some(hash.as_str()),
        None | Some(Value::Null) => None,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "identity.hash",
                "identity.hash must be a hex string",
            ))
        }
    };
    let claimed = crate::domain::identity::ClaimedIdentity::parse(id, hash)
        .map_err(|why| ApiError::invalid_field("identity.id", why))?;
    // Checked as the visitor's name and email are.
    let mut visitor = serde_json::Map::new();
    for field in ["name", "email"] {
        if let Some(value) = identity.get(field) {
            visitor.insert(field.to_string(), value.clone());
        }
    }
    let mut wrapped = serde_json::Map::new();
    wrapped.insert("visitor".into(), Value::Object(visitor));
    let named = crate::domain::VisitorContext::parse(&wrapped).map_err(|e| {
        ApiError::invalid_field(&e.field.replacen("visitor.", "identity.", 1), e.message)
    })?;
    Ok((Some(claimed), named))
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
#[utoipa::path(post, path = "/chatplugin.authenticate", tag = "visitor",
    summary = "Start a conversation, or resume one", request_body = shapes::AuthenticateBody,
    responses((status = 200, body = shapes::Authenticated),
        (status = 401, body = shapes::ErrorBody, description = "`invalid-token` (resume token), `identity-not-verified`"),
        (status = 403, body = shapes::ErrorBody, description = "`origin-not-allowed`"),
        (status = 404, body = shapes::ErrorBody, description = "`unknown-channel`"),
        (status = 429, body = shapes::ErrorBody, description = "`rate-limited`, with `Retry-After`")))]
async fn authenticate(
    app: App,
    ip: IpAddr,
    origin: Option<String>,
    user_agent: Option<String>,
    body: Bytes,
) -> Response {
    // The client's budget first: a client past it is refused whatever it sent.
    let admitted = async {
        let visitor = &app.services.visitor;
        visitor.admit(ip)?;
        let request = authenticate_body(&body, user_agent.as_deref())?;
        Ok::<_, ApiError>(visitor.authenticate(request, origin.as_deref()).await?)
    }
    .await;
    respond(admitted.map(|a| {
        warp::reply::json(&json!({
            "token": a.token,
            "messages": messages_json(&a.messages, &app),
            "conversation_id": a.conversation,
            "channel_id": a.channel.id,
            "resume_token": a.resume_token,
            "verified": a.verified,
            "channel": crate::wire::channel::public(
                &a.channel,
                app.services.email.offered(&a.channel),
            ),
        }))
    }))
}

/// POST /chatplugin.resumeToken: a resume token for the caller's conversation
/// (visitor token), or for any conversation of the admin's tenant (admin token).
#[utoipa::path(post, path = "/chatplugin.resumeToken", tag = "visitor",
    summary = "A resume token: the visitor's own, or (admin token) any conversation's",
    request_body(content = shapes::ResumeTokenBody, description = "An admin's; a visitor sends none or `{}`"),
    responses((status = 200, body = shapes::ResumeToken),
        (status = 401, body = shapes::ErrorBody), (status = 403, body = shapes::ErrorBody),
        (status = 404, body = shapes::ErrorBody, description = "`unknown-channel`, `unknown-conversation`")),
    security(("bearer" = [])))]
async fn resume_token(
    app: App,
    token: Option<String>,
    origin: Option<String>,
    body: Bytes,
) -> Response {
    let resume = async {
        let visitor = &app.services.visitor;
        let minter = visitor
            .resume_minter(&app.services.agents, token.as_deref(), origin.as_deref())
            .await?;
        Ok::<_, ApiError>(match minter {
            ResumeMinter::Visitor(resume) => resume,
            ResumeMinter::Admin(admin) => {
                let (channel, conversation) = resume_token_body(&body)?;
                visitor.mint_resume(&admin, channel, conversation).await?
            }
        })
    }
    .await;
    respond(resume.map(|resume| warp::reply::json(&json!({ "resume_token": resume }))))
}

/// POST /chatplugin.send: stores a visitor message; 200 means durable.
#[utoipa::path(post, path = "/chatplugin.send", tag = "visitor",
    summary = "Send a message (200: stored, durable)", request_body = shapes::SendBody,
    responses((status = 200, body = crate::wire::visitor::VisitorMessage),
        (status = 401, body = shapes::ErrorBody, description = "`invalid-token`"),
        (status = 403, body = shapes::ErrorBody, description = "`origin-not-allowed`, `blocked`"),
        (status = 404, body = shapes::ErrorBody, description = "`unknown-channel`"),
        (status = 429, body = shapes::ErrorBody, description = "`rate-limited`")),
    security(("bearer" = [])))]
async fn send(app: App, token: Option<String>, origin: Option<String>, body: Bytes) -> Response {
    respond(
        async {
            let visitor = &app.services.visitor;
            let caller = visitor.visitor(token.as_deref(), origin.as_deref()).await?;
            let body = Value::Object(json_object(&body, false)?);
            let request = view::send_body(&body, app.config.max_text_chars)?;
            let message = visitor.send(&caller, request).await?;
            Ok(warp::reply::json(&view::message(
                &message,
                app.hub.signer(),
            )))
        }
        .await,
    )
}

/// The body of `/chatplugin.rate`: `{"rating": 1..5, "comment"?: "..."}`
/// (a null comment is none); a bad field is a 400 naming it.
fn rate_body(body: &[u8]) -> Result<Rating, ApiError> {
    let body = json_object(body, false)?;
    let rating = match body.get("rating") {
        Some(Value::Number(n)) => n.as_i64().ok_or_else(|| {
            ApiError::invalid_field("rating", "rating must be an integer from 1 to 5")
        })?,
        None | Some(Value::Null) => {
            return Err(ApiError::invalid_field("rating", "rating is required"))
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "rating",
                "rating must be an integer from 1 to 5",
            ))
        }
    };
    let comment = match body.get("comment") {
        None | Some(Value::Null) => None,
        Some(Value::String(c)) => Some(c.as_str()),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "comment",
                "comment must be a string",
            ))
        }
    };
    Rating::parse(rating, comment, crate::domain::time::now_ms())
        .map_err(|(field, why)| ApiError::invalid_field(field, why))
}

/// POST /chatplugin.rate: the visitor rates its closed conversation, once (204).
#[utoipa::path(post, path = "/chatplugin.rate", tag = "visitor",
    summary = "Rate the closed conversation, once", request_body = shapes::RateBody,
    responses((status = 204, description = "rated"),
        (status = 401, body = shapes::ErrorBody), (status = 403, body = shapes::ErrorBody),
        (status = 404, body = shapes::ErrorBody),
        (status = 409, body = shapes::ErrorBody, description = "`already-rated`, `conversation-open`")),
    security(("bearer" = [])))]
async fn rate(app: App, token: Option<String>, origin: Option<String>, body: Bytes) -> Response {
    respond(
        async {
            let visitor = &app.services.visitor;
            let caller = visitor.visitor(token.as_deref(), origin.as_deref()).await?;
            visitor.rate(&caller, rate_body(&body)?).await?;
            Ok::<_, ApiError>(warp::http::StatusCode::NO_CONTENT)
        }
        .await,
    )
}

/// POST /chatplugin.conversations: the visitor's conversations on its
/// channel, newest first, each with a resume token that opens it.
#[utoipa::path(post, path = "/chatplugin.conversations", tag = "visitor",
    summary = "The visitor's conversations on its channel, newest first",
    responses((status = 200, body = shapes::VisitorConversations),
        (status = 401, body = shapes::ErrorBody), (status = 403, body = shapes::ErrorBody),
        (status = 404, body = shapes::ErrorBody)),
    security(("bearer" = [])))]
async fn conversations(app: App, token: Option<String>, origin: Option<String>) -> Response {
    respond(
        async {
            let visitor = &app.services.visitor;
            let caller = visitor.visitor(token.as_deref(), origin.as_deref()).await?;
            let items = visitor.conversations(&caller).await?;
            let signer = app.hub.signer();
            let items: Vec<Value> = items
                .iter()
                .map(|c| {
                    json!({
                        "conversation_id": c.id,
                        "state": c.state.as_str(),
                        "last_message": c.last_message.as_ref().map(|m| view::message(m, signer)),
                        "resume_token": c.resume_token,
                    })
                })
                .collect();
            Ok::<_, ApiError>(warp::reply::json(&json!({ "items": items })))
        }
        .await,
    )
}

/// POST /chatplugin.transcript: the visitor asks for its conversation by
/// email (202; sent through the outbox to the address it gave).
#[utoipa::path(post, path = "/chatplugin.transcript", tag = "visitor",
    summary = "Email the conversation to the visitor's address",
    responses((status = 202, body = shapes::Queued),
        (status = 401, body = shapes::ErrorBody), (status = 403, body = shapes::ErrorBody),
        (status = 404, body = shapes::ErrorBody),
        (status = 409, body = shapes::ErrorBody, description = "`no-email`, `email-unavailable`"),
        (status = 429, body = shapes::ErrorBody, description = "asked again within the hour")),
    security(("bearer" = [])))]
async fn transcript(
    app: App,
    ip: IpAddr,
    token: Option<String>,
    origin: Option<String>,
) -> Response {
    respond(
        async {
            let visitor = &app.services.visitor;
            let caller = visitor.visitor(token.as_deref(), origin.as_deref()).await?;
            app.services
                .email
                .request_transcript(&caller.channel, caller.claims.cv, ip)
                .await?;
            Ok::<_, ApiError>(warp::reply::with_status(
                warp::reply::json(&json!({"status": "queued"})),
                warp::http::StatusCode::ACCEPTED,
            ))
        }
        .await,
    )
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde_json::Value;

    use super::{authenticate_body, rate_body, resume_token_body, Authenticate, VisitorStart};
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
        "rating",
        "comment",
        "identity",
        "id",
        "hash",
        "new_conversation",
    ];

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn authenticate_bodies_decode_or_are_refused_cleanly(body in fuzz::json_bytes(KEYS)) {
            let sent = || serde_json::from_slice::<Value>(&body).expect("accepted bodies are JSON");
            match authenticate_body(&body, Some("proptest")) {
                Ok(Authenticate { start: VisitorStart::Resume(token), .. }) => {
                    let sent = sent();
                    prop_assert_eq!(sent.get("resume_token"), Some(&Value::String(token)));
                }
                Ok(Authenticate { start: VisitorStart::New(_), .. }) => {
                    prop_assert!(sent().get("channel_id").is_some());
                }
                Err(err) => fuzz::assert_client_error(&err),
            }
        }

        #[test]
        fn rate_bodies_decode_or_are_refused_cleanly(body in fuzz::json_bytes(KEYS)) {
            match rate_body(&body) {
                Ok(rating) => prop_assert!((1..=5).contains(&rating.rating)),
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
