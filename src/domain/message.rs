//! Conversations and their messages, and the validated inputs that create them.

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{ChannelId, ConversationId, MessageId, TenantId};
use super::reaction::Reaction;

/// One visitor conversation of a channel.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Conversation {
    pub id: ConversationId,
    pub channel_id: ChannelId,
    pub tenant_id: TenantId,
    pub created_at_ms: i64,
    /// Highest `seq` assigned so far; 0 before the first message.
    pub last_seq: i64,
}

/// Who wrote a message. Decides the visitor-side alignment.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SenderKind {
    Visitor,
    Agent,
    System,
}

impl SenderKind {
    pub fn as_str(self) -> &'static str {
        match self {
            SenderKind::Visitor => "visitor",
            SenderKind::Agent => "agent",
            SenderKind::System => "system",
        }
    }

    pub fn parse(s: &str) -> Option<SenderKind> {
        match s {
            "visitor" => Some(SenderKind::Visitor),
            "agent" => Some(SenderKind::Agent),
            "system" => Some(SenderKind::System),
            _ => None,
        }
    }

    /// The contract's `alignment`, from the visitor's point of view.
    pub fn alignment(self) -> &'static str {
        match self {
            SenderKind::Visitor => "RIGHT",
            SenderKind::Agent => "LEFT",
            SenderKind::System => "CENTER",
        }
    }
}

/// Delivery state as the contract names it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "UPPERCASE")]
pub enum DeliveryState {
    Pending,
    Failed,
    Delivered,
}

impl DeliveryState {
    pub fn as_str(self) -> &'static str {
        match self {
            DeliveryState::Pending => "PENDING",
            DeliveryState::Failed => "FAILED",
            DeliveryState::Delivered => "DELIVERED",
        }
    }

    pub fn parse(s: &str) -> Option<DeliveryState> {
        match s {
            "PENDING" => Some(DeliveryState::Pending),
            "FAILED" => Some(DeliveryState::Failed),
            "DELIVERED" => Some(DeliveryState::Delivered),
            _ => None,
        }
    }
}

/// A stored message. Field names here are internal; the wire shapes are
/// built in [`crate::wire`].
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Message {
    pub id: MessageId,
    /// The room (for a visitor room, the conversation) it belongs to.
    pub conversation_id: ConversationId,
    pub tenant_id: TenantId,
    /// `None` in agent rooms.
    pub channel_id: Option<ChannelId>,
    pub seq: i64,
    pub sender_kind: SenderKind,
    pub sender_id: Uuid,
    pub sender_name: Option<String>,
    pub sender_avatar: Option<String>,
    pub content: String,
    pub state: DeliveryState,
    pub sent_at_ms: i64,
    pub client_message_id: Option<String>,
    /// When the visitor read it (agent messages of visitor rooms).
    pub read_at_ms: Option<i64>,
    pub edited_at_ms: Option<i64>,
    pub deleted: bool,
    /// Filled where the reader needs them (agent views); empty otherwise.
    #[serde(default)]
    pub reactions: Vec<Reaction>,
}

/// Why a message text was refused.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TextError {
    #[error("text must not be empty")]
    Empty,
    #[error("text must not be only white space")]
    Blank,
    #[error("text is longer than {0} characters")]
    TooLong(usize),
}

/// Message text as sent: never trimmed, 1..=max Unicode scalar values, not only white space.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct MessageText(String);

impl MessageText {
    pub fn parse(text: String, max_chars: usize) -> Result<MessageText, TextError> {
        if text.is_empty() {
            return Err(TextError::Empty);
        }
        if text.chars().all(char::is_whitespace) {
            return Err(TextError::Blank);
        }
        // Count lazily: stop as soon as the limit is passed.
        if text.chars().nth(max_chars).is_some() {
            return Err(TextError::TooLong(max_chars));
        }
        Ok(MessageText(text))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_inner(self) -> String {
        self.0
    }
}

/// A client's idempotency key: 1..=64 characters.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClientMessageId(String);

impl ClientMessageId {
    pub const MAX_CHARS: usize = 64;

    pub fn parse(key: String) -> Result<ClientMessageId, &'static str> {
        if key.is_empty() {
            return Err("client_message_id must not be empty");
        }
        if key.chars().nth(Self::MAX_CHARS).is_some() {
            return Err("client_message_id is longer than 64 characters");
        }
        Ok(ClientMessageId(key))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    #[test]
    fn text_is_kept_exactly_as_sent() {
        let text = MessageText::parse("  hi \n".into(), 10).unwrap();
        assert_eq!(text.as_str(), "  hi \n");
    }

    #[test]
    fn empty_and_blank_texts_are_refused() {
        assert_eq!(MessageText::parse("".into(), 10), Err(TextError::Empty));
        assert_eq!(
            MessageText::parse(" \t\n\u{3000}".into(), 10),
            Err(TextError::Blank)
        );
    }

    #[test]
    fn length_counts_scalar_values_not_bytes() {
        assert!(MessageText::parse("é".repeat(4), 4).is_ok());
        assert_eq!(
            MessageText::parse("é".repeat(5), 4),
            Err(TextError::TooLong(4))
        );
    }

    #[test]
    fn client_message_id_is_limited_to_64_chars() {
        assert!(ClientMessageId::parse("x".repeat(64)).is_ok());
        assert!(ClientMessageId::parse("x".repeat(65)).is_err());
        assert!(ClientMessageId::parse(String::new()).is_err());
    }

    proptest! {
        #[test]
        fn parsed_text_is_never_longer_than_the_limit(s in "\\PC{0,40}", max in 1usize..30) {
            if let Ok(t) = MessageText::parse(s.clone(), max) {
                prop_assert!(t.as_str().chars().count() <= max);
                prop_assert!(!t.as_str().trim().is_empty());
                prop_assert_eq!(t.as_str(), s.as_str());
            }
        }
    }
}
