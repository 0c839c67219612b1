//! What travels on the bus: something happened in a conversation. Events carry
//! everything a receiving instance needs to deliver them without a store read.

use serde::{Deserialize, Serialize};
use serde_json::json;
use uuid::Uuid;

use super::ids::{ChannelId, ConversationId};
use super::message::{Message, SenderKind, VisitorMessage};

#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case")]
pub enum Event {
    MessageCreated {
        message: Message,
    },
    MessageUpdated {
        message: Message,
    },
    Typing {
        conversation_id: ConversationId,
        channel_id: ChannelId,
        typing: bool,
        sender_kind: SenderKind,
        sender_id: Uuid,
        sender_name: Option<String>,
    },
}

/// Which visitor queue an event belongs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitorQueue {
    Message,
    Events,
}

impl Event {
    pub fn conversation_id(&self) -> ConversationId {
        match self {
            Event::MessageCreated { message } | Event::MessageUpdated { message } => {
                message.conversation_id
            }
            Event::Typing {
                conversation_id, ..
            } => *conversation_id,
        }
    }

    /// The `seq` of a newly created message: the position visitor sessions
    /// order and de-duplicate by.
    pub fn created_seq(&self) -> Option<i64> {
        match self {
            Event::MessageCreated { message } => Some(message.seq),
            _ => None,
        }
    }

    /// The body a visitor's WebSocket receives, and on which queue; `None`
    /// when visitors do not see this event (their own typing).
    pub fn visitor_body(&self) -> Option<(VisitorQueue, Vec<u8>)> {
        #[derive(Serialize)]
        struct MessageBody<'a> {
            #[serde(rename = "type")]
            kind: &'static str,
            conversation_id: ConversationId,
            channel_id: ChannelId,
            message: VisitorMessage<'a>,
        }
        let encoded = match self {
            Event::MessageCreated { message } | Event::MessageUpdated { message } => {
                let kind = match self {
                    Event::MessageCreated { .. } => "message.created",
                    _ => "message.updated",
                };
                (
                    VisitorQueue::Message,
                    serde_json::to_vec(&MessageBody {
                        kind,
                        conversation_id: message.conversation_id,
                        channel_id: message.channel_id,
                        message: message.visitor_view(),
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
        };
        match encoded {
            (queue, Ok(body)) => Some((queue, body)),
            // Plain structs of strings and numbers always serialize.
            (_, Err(e)) => unreachable!("event body failed to serialize: {e}"),
        }
    }
}
