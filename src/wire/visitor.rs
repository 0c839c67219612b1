//! What a visitor's widget sends and receives (visitor-api.md): the send
//! body and the page's context parsed into domain values, and the
//! message and event bodies.

use serde::Serialize;
use serde_json::{json, Map, Value};
use uuid::Uuid;

use crate::domain::event::VisitorQueue;
use crate::domain::time::format_ms;
use crate::domain::{
    ChannelId, ClientMessageId, ConversationId, Event, Message, MessageId, MessageText, Notice,
    QuickReply, SenderKind, TextError, VisitorContext,
};
use crate::error::ApiError;
use crate::files::Signer;
use crate::service::visitor::VisitorSend;

/// A message as a visitor sees it (visitor-api.md, "Message"), borrowed from
/// the stored one: it serializes straight to bytes, with no intermediate
/// JSON tree (this runs once per delivered event).
#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VisitorMessage<'a> {
    #[schema(value_type = Uuid)]
    pub id: MessageId,
    pub content: &'a str,
    /// `PENDING`, `FAILED` or `DELIVERED`.
    #[schema(value_type = String, example = "DELIVERED")]
    pub state: &'static str,
    /// `RIGHT`: the visitor's own, `LEFT`: an agent's, `CENTER`: a system notice.
    #[schema(value_type = String, example = "LEFT")]
    pub alignment: &'static str,
    #[schema(example = "2026-11-22T10:15:30.123Z")]
    pub sent_at: String,
    pub seq: i64,
    pub sender: VisitorSender<'a>,
    pub client_message_id: Option<&'a str>,
    /// A system message's meaning (desk-api.md, "Notices"); absent on
    /// every other message.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub notice: Option<&'a Notice>,
    /// An agent's buttons (desk-api.md, "Quick replies"); empty when none.
    pub quick_replies: &'a [QuickReply],
    /// The payload of the quick reply a visitor's message chose; null
    /// when none (like `client_message_id`).
    pub postback: Option<&'a str>,
    /// The files it carries, URLs signed now (desk-api.md, "Attachments").
    pub attachments: Vec<super::AttachmentJson<'a>>,
    /// An application (a bot) wrote it: the widget marks it "Bot";
    /// `sender.name` is the bot's name.
    pub bot: bool,
}

#[derive(Debug, Serialize, utoipa::ToSchema)]
pub struct VisitorSender<'a> {
    pub id: Uuid,
    pub name: Option<&'a str>,
    pub avatar_url: Option<&'a str>,
}

pub fn message<'a>(m: &'a Message, signer: &Signer) -> VisitorMessage<'a> {
    VisitorMessage {
        id: m.id,
        content: &m.content,
        state: m.state.as_str(),
        alignment: m.sender_kind.alignment(),
        sent_at: format_ms(m.sent_at_ms),
        seq: m.seq,
        sender: VisitorSender {
            id: m.sender_id,
            name: m.sender_name.as_deref(),
            avatar_url: m
                .sender_avatar
                .as_deref()
                .filter(|u| crate::domain::url::is_web_url(u)),
        },
        client_message_id: m.client_message_id.as_deref(),
        notice: m.notice.as_ref(),
        quick_replies: &m.quick_replies,
        postback: m.postback.as_deref(),
        attachments: super::attachments(&m.attachments, signer),
        bot: m.bot,
    }
}

/// The body a visitor's WebSocket receives for `event`, and on which queue;
/// `None` when visitors do not see this event.
pub fn event_body(event: &Event, signer: &Signer) -> Option<(VisitorQueue, Vec<u8>)> {
    #[derive(Serialize)]
    struct MessageBody<'a> {
        #[serde(rename = "type")]
        kind: &'static str,
        conversation_id: ConversationId,
        channel_id: Option<ChannelId>,
        message: VisitorMessage<'a>,
    }
    let encoded = match event {
        Event::MessageCreated { message: m } | Event::MessageUpdated { message: m } => {
            let kind = match event {
                Event::MessageCreated { .. } => "message.created",
                _ => "message.updated",
            };
            (
                VisitorQueue::Message,
                serde_json::to_vec(&MessageBody {
                    kind,
                    conversation_id: m.conversation_id,
                    channel_id: m.channel_id,
                    message: message(m, signer),
                }),
            )
        }
        Event::Typing {
            typing,
            sender_kind,
            sender_id,
            sender_name,
            ..
        } => {
            if *sender_kind == SenderKind::Visitor {
                return None;
            }
            (
                VisitorQueue::Events,
                serde_json::to_vec(&json!({
                    "type": "typing",
                    "typing": typing,
                    "sender": {"id": sender_id, "name": sender_name},
                })),
            )
        }
        Event::ReadByAgent { up_to_seq, .. } => (
            VisitorQueue::Events,
            serde_json::to_vec(&json!({"type": "read", "up_to_seq": up_to_seq})),
        ),
        Event::RoomClosed { closed, .. } => (
            VisitorQueue::Events,
            serde_json::to_vec(&json!({
                "type": if *closed { "conversation.closed" } else { "conversation.reopened" },
            })),
        ),
        Event::RoomRated { .. } => (
            VisitorQueue::Events,
            serde_json::to_vec(&json!({"type": "conversation.rated"})),
        ),
        Event::Availability {
            available,
            back_at_ms,
            ..
        } => (
            VisitorQueue::Events,
            serde_json::to_vec(&json!({
                "type": "availability",
                "agents_available": available,
                "back_at": back_at_ms.map(crate::domain::time::format_ms),
            })),
        ),
        Event::SessionsRevoked { .. }
        | Event::VisitorErased { .. }
        | Event::ChannelChanged { .. }
        | Event::RoomCreated { .. }
        | Event::MemberAdded { .. }
        | Event::MemberRemoved { .. }
        | Event::Mention { .. }
        | Event::WebhookPaused { .. }
        | Event::QueueUpdated { .. }
        | Event::RoomStateChanged { .. }
        | Event::RoomLabelsChanged { .. }
        | Event::RoomRead { .. }
        | Event::VisitorConnection { .. }
        | Event::PresenceChanged { .. }
        | Event::Reaction { .. } => return None,
    };
    match encoded {
        (queue, Ok(body)) => Some((queue, body)),
        // Plain structs of strings and numbers always serialize.
        (_, Err(e)) => unreachable!("event body failed to serialize: {e}"),
    }
}

/// Parses a visitor's send body (`/chatplugin.send` and the STOMP
/// `/app/send`): `{"message": {"text": ...}, "client_message_id": ...}`,
/// with a text of at most `max_chars` characters. A bad field is a 400
/// naming it.
pub fn send_body(body: &Value, max_chars: usize) -> Result<VisitorSend, ApiError> {
    let Some(body) = body.as_object() else {
        return Err(ApiError::invalid_data("the body must be a JSON object"));
    };
    let message = body.get("message");
    // desk-api.md, "Attachments": ids, or Airy's one attachment by URL.
    let listed = super::attachment_ids(
        message.and_then(|m| m.get("attachments")),
        "message.attachments",
    )?;
    let airy = super::airy_attachment(
        message.and_then(|m| m.get("attachment")),
        "message.attachment",
    )?;
    let attachments = match (listed, airy) {
        (Some(_), Some(_)) => {
            return Err(ApiError::invalid_attachment(
                "message.attachment",
                "give attachments or attachment, not both",
            ))
        }
        (Some(ids), None) => ids,
        (None, Some(id)) => vec![id],
        (None, None) => Vec::new(),
    };
    // With files, the text is an optional caption (absent, null or blank).
    let text = match message.and_then(|m| m.get("text")) {
        Some(Value::String(text)) if !attachments.is_empty() && text.trim().is_empty() => None,
        Some(Value::String(text)) => Some(text.clone()),
        None | Some(Value::Null) if !attachments.is_empty() => None,
        Some(Value::Null) | None => {
            return Err(ApiError::invalid_field("message.text", "text is required"))
        }
        Some(_) => {
            return Err(ApiError::invalid_field(
                "message.text",
                "text must be a string",
            ))
        }
    };
    let text = text
        .map(|text| MessageText::parse(text, max_chars))
        .transpose()
        .map_err(|e| {
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
    // desk-api.md, "Quick replies": `postback`, or Airy's `postbackData`.
    let postback = match message
        .and_then(|m| m.get("postback"))
        .filter(|v| !v.is_null())
        .map(|v| ("message.postback", v))
        .or_else(|| {
            message
                .and_then(|m| m.get("postbackData"))
                .filter(|v| !v.is_null())
                .map(|v| ("message.postbackData", v))
        }) {
        None => None,
        Some((field, Value::String(postback))) => Some(
            QuickReply::parse_payload(postback.clone())
                .map_err(|why| ApiError::invalid_field(field, format!("postback {why}")))?,
        ),
        Some((field, _)) => {
            return Err(ApiError::invalid_field(field, "postback must be a string"))
        }
    };
    // desk-api.md, "Support desk": the pre-chat answers of a first send.
    let prechat = body
        .get("prechat")
        .map(crate::domain::PrechatAnswers::parse)
        .transpose()
        .map_err(|e| ApiError::invalid_field(&e.field, e.message))?;
    Ok(VisitorSend {
        text,
        client_message_id,
        postback,
        attachments,
        prechat,
    })
}

/// What the visitor's page says about the visitor (`None`: it said
/// nothing), with the browser's `User-Agent`. A bad field is a 400 naming it.
pub fn context(
    body: &Map<String, Value>,
    user_agent: Option<&str>,
) -> Result<Option<VisitorContext>, ApiError> {
    let parsed =
        VisitorContext::parse(body).map_err(|e| ApiError::invalid_field(e.field, e.message))?;
    let user_agent = user_agent.map(|ua| {
        ua.chars()
            .filter(|c| !c.is_control())
            .take(VisitorContext::MAX_USER_AGENT)
            .collect::<String>()
    });
    Ok(match (parsed, user_agent) {
        (None, None) => None,
        (parsed, user_agent) => Some(parsed.unwrap_or_default().merged(VisitorContext {
            user_agent,
            ..Default::default()
        })),
    })
}
