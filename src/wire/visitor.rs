//! What a visitor's widget receives (visitor-api.md).

use serde::Serialize;
use serde_json::json;
use uuid::Uuid;

use crate::domain::event::VisitorQueue;
use crate::domain::time::format_ms;
use crate::domain::{ChannelId, ConversationId, Event, Message, MessageId, SenderKind};

/// A message as a visitor sees it (visitor-api.md, "Message"), borrowed from
/// the stored one: it serializes straight to bytes, with no intermediate
/// JSON tree (this runs once per delivered event).
#[derive(Debug, Serialize)]
pub struct VisitorMessage<'a> {
    pub id: MessageId,
    pub content: &'a str,
    pub state: &'static str,
    pub alignment: &'static str,
    pub sent_at: String,
    pub seq: i64,
    pub sender: VisitorSender<'a>,
    pub client_message_id: Option<&'a str>,
}

#[derive(Debug, Serialize)]
pub struct VisitorSender<'a> {
    pub id: Uuid,
    pub name: Option<&'a str>,
    pub avatar_url: Option<&'a str>,
}

pub fn message(m: &Message) -> VisitorMessage<'_> {
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
    }
}

/// The body a visitor's WebSocket receives for `event`, and on which queue;
/// `None` when visitors do not see this event.
pub fn event_body(event: &Event) -> Option<(VisitorQueue, Vec<u8>)> {
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
                    message: message(m),
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
        Event::Availability { available, .. } => (
            VisitorQueue::Events,
            serde_json::to_vec(&json!({"type": "availability", "agents_available": available})),
        ),
        Event::SessionsRevoked { .. }
        | Event::ChannelChanged { .. }
        | Event::RoomCreated { .. }
        | Event::QueueUpdated { .. }
        | Event::RoomStateChanged { .. }
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
