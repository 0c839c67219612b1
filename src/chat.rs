//! Visitor-side operations shared by the HTTP API and the STOMP socket:
//! resolving a visitor token to its channel, and sending a message.

use serde_json::Value;

use crate::app::App;
use crate::auth::{TokenKind, VisitorClaims};
use crate::domain::{
    time::now_ms, Channel, ClientMessageId, DeliveryState, Event, Message, MessageId, MessageText,
    SenderKind, TextError,
};
use crate::error::ApiError;
use crate::store::{Appended, NewMessage};

/// A verified visitor: its token's claims and its channel, connected and
/// open to the request's origin.
pub struct Visitor {
    pub claims: VisitorClaims,
    pub channel: Channel,
}

/// Verifies a visitor token and that its channel still accepts visitors from `origin`.
pub async fn visitor(
    app: &App,
    token: Option<&str>,
    origin: Option<&str>,
) -> Result<Visitor, ApiError> {
    let claims = token
        .and_then(|t| app.tokens.verify_visitor(t, TokenKind::Visitor))
        .ok_or_else(ApiError::invalid_token)?;
    let channel = connected_channel(app, claims.ch, origin).await?;
    Ok(Visitor { claims, channel })
}

/// The channel, if it exists, is connected, and allows `origin`.
pub async fn connected_channel(
    app: &App,
    id: crate::domain::ChannelId,
    origin: Option<&str>,
) -> Result<Channel, ApiError> {
    let channel = app
        .channels
        .get(app.store.as_ref(), id)
        .await?
        .filter(|c| c.connected)
        .ok_or_else(ApiError::unknown_channel)?;
    if !channel.allows_origin(origin) {
        return Err(ApiError::origin_not_allowed());
    }
    Ok(channel)
}

/// Validates a `/chatplugin.send` body (`{"message": {"text"}, "client_message_id"?}`),
/// stores the message, and publishes it once the store has committed.
pub async fn send(app: &App, visitor: &Visitor, body: &Value) -> Result<Message, ApiError> {
    let new = prepare(app, visitor, body)?;
    let appended = enqueue(app, new).await?.await?;
    publish(app, &appended).await;
    Ok(appended.message)
}

/// The first, synchronous half of a send: validates the body and takes the
/// conversation's rate-limit token. Nothing is stored yet.
pub fn prepare(app: &App, visitor: &Visitor, body: &Value) -> Result<NewMessage, ApiError> {
    let Some(body) = body.as_object() else {
        return Err(ApiError::invalid_data("the body must be a JSON object"));
    };
    let text = match body.get("message").and_then(|m| m.get("text")) {
        Some(Value::String(text)) => text.clone(),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "message.text",
                "text must be a string",
            ))
        }
        None => return Err(ApiError::invalid_field("message.text", "text is required")),
    };
    let text = MessageText::parse(text, app.config.max_text_chars).map_err(|e| {
        let msg = match e {
            TextError::TooLong(n) => format!("text is longer than {n} characters"),
            other => other.to_string(),
        };
        ApiError::invalid_field("message.text", msg)
    })?;
    let client_message_id = match body.get("client_message_id") {
        None | Some(Value::Null) => None,
        Some(Value::String(key)) => Some(
            ClientMessageId::parse(key.clone())
                .map_err(|msg| ApiError::invalid_field("client_message_id", msg))?,
        ),
        Some(_) => {
            return Err(ApiError::invalid_field(
                "client_message_id",
                "client_message_id must be a string",
            ))
        }
    };
    app.limits.send.check(&visitor.claims.cv)?;
    Ok(NewMessage {
        id: MessageId::new(),
        conversation_id: visitor.claims.cv,
        channel_id: visitor.channel.id,
        tenant_id: visitor.channel.tenant_id,
        sender_kind: SenderKind::Visitor,
        sender_id: visitor.claims.cv.0,
        sender_name: None,
        sender_avatar: None,
        content: text.into_inner(),
        state: DeliveryState::Delivered,
        sent_at_ms: now_ms(),
        client_message_id: client_message_id.map(|k| k.as_str().to_string()),
    })
}

/// Queues a prepared message for storing and returns the future of the
/// stored message: a session queues its sends in order and reads on.
pub async fn enqueue(
    app: &App,
    new: NewMessage,
) -> Result<impl std::future::Future<Output = Result<Appended, ApiError>> + Send + 'static, ApiError>
{
    let pending = app.store.enqueue_append(new).await?;
    let metrics = app.metrics.clone();
    Ok(async move {
        let appended = metrics.timed("append_message", pending).await?;
        if appended.created {
            metrics.messages_stored.inc();
        }
        Ok(appended)
    })
}

/// Publishes a stored message to every session of its conversation (a retry
/// that stored nothing new publishes nothing).
pub async fn publish(app: &App, appended: &Appended) {
    if !appended.created {
        return;
    }
    // Stored first, published second: a lost publish is recovered by seq.
    if let Err(err) = app
        .hub
        .publish(Event::MessageCreated {
            message: appended.message.clone(),
        })
        .await
    {
        tracing::warn!(%err, "message stored but not published; sessions will catch up by seq");
    }
}
