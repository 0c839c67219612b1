//! Conversations and their messages, and the validated inputs that create them.

use std::collections::BTreeMap;

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
    /// What a system message says, for clients to render in their own
    /// language (desk-api.md, "Notices"); `None` for every other message.
    #[serde(default)]
    pub notice: Option<Notice>,
    /// The buttons an agent's message offers (desk-api.md, "Quick
    /// replies"); empty when none.
    #[serde(default)]
    pub quick_replies: Vec<QuickReply>,
    /// The payload of the quick reply a visitor's message chose; `None`
    /// when the visitor typed it.
    #[serde(default)]
    pub postback: Option<String>,
    /// The agents the author mentioned (members of the room when it was
    /// posted), in the author's order; empty for most messages.
    #[serde(default)]
    pub mentions: Vec<Uuid>,
    /// The files it carries (desk-api.md, "Attachments"); empty when none
    /// (and once the message is deleted).
    #[serde(default)]
    pub attachments: Vec<super::Attachment>,
    /// A private note (desk-api.md, "Support desk"): agents only, never
    /// sent to the visitor; its `seq` is the visitor message it follows
    /// (notes take no place in the visitor's sequence).
    #[serde(default)]
    pub private: bool,
    /// An application (a bot) wrote it: clients mark it "Bot".
    #[serde(default)]
    pub bot: bool,
}

/// What happened, as a system message tells it (desk-api.md, "Notices").
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum NoticeKind {
    /// `agent` joined: answered, assigned by round robin or by an admin.
    AgentJoined,
    /// `agent` left the conversation.
    AgentLeft,
    /// `from` handed the conversation to `agent` (who joined; `from` left).
    Transferred,
    /// The conversation was closed (by `agent`, when an agent closed it).
    Closed,
    /// `agent` reopened the conversation (a visitor's message reopens it
    /// without a notice: the message says it).
    Reopened,
    /// `by` added `member` to an agent room.
    MemberAdded,
    /// `by` removed `member` from an agent room.
    MemberRemoved,
    /// `member` left an agent room.
    MemberLeft,
    /// The channel's away message (`text`, the admin's own words), sent
    /// once per conversation to a visitor who writes while the channel is
    /// unavailable. Not an agent's reply.
    Away,
}

/// A system message's meaning: a kind and its named parameters (agents'
/// display names), encoded as `{"type", "params"}`. The message's `content`
/// is its English text ([`Notice::english`]).
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Notice {
    #[serde(rename = "type")]
    pub kind: NoticeKind,
    #[serde(default)]
    pub params: BTreeMap<String, String>,
}

impl Notice {
    fn new(kind: NoticeKind, params: &[(&str, &str)]) -> Notice {
        Notice {
            kind,
            params: params
                .iter()
                .map(|(k, v)| (k.to_string(), v.to_string()))
                .collect(),
        }
    }

    /// A notice naming the agent who did it, when an agent did.
    fn by(kind: NoticeKind, agent: Option<&str>) -> Notice {
        match agent {
            Some(agent) => Notice::new(kind, &[("agent", agent)]),
            None => Notice::new(kind, &[]),
        }
    }

    pub fn agent_joined(agent: &str) -> Notice {
        Notice::new(NoticeKind::AgentJoined, &[("agent", agent)])
    }

    pub fn agent_left(agent: &str) -> Notice {
        Notice::new(NoticeKind::AgentLeft, &[("agent", agent)])
    }

    pub fn transferred(agent: &str, from: &str) -> Notice {
        Notice::new(NoticeKind::Transferred, &[("agent", agent), ("from", from)])
    }

    /// Closed by `agent`, or by the system (`None`).
    pub fn closed(agent: Option<&str>) -> Notice {
        Notice::by(NoticeKind::Closed, agent)
    }

    /// Reopened by `agent`, or by the system (`None`).
    pub fn reopened(agent: Option<&str>) -> Notice {
        Notice::by(NoticeKind::Reopened, agent)
    }

    /// `by` added `member` (display names) to an agent room.
    pub fn member_added(member: &str, by: &str) -> Notice {
        Notice::new(NoticeKind::MemberAdded, &[("member", member), ("by", by)])
    }

    /// `by` removed `member` from an agent room.
    pub fn member_removed(member: &str, by: &str) -> Notice {
        Notice::new(NoticeKind::MemberRemoved, &[("member", member), ("by", by)])
    }

    /// `member` left an agent room.
    pub fn member_left(member: &str) -> Notice {
        Notice::new(NoticeKind::MemberLeft, &[("member", member)])
    }

    /// The channel's away message, as a notice.
    pub fn away(text: &str) -> Notice {
        Notice::new(NoticeKind::Away, &[("text", text)])
    }

    fn param(&self, name: &str) -> &str {
        self.params.get(name).map_or("", String::as_str)
    }

    /// The English text stored as the message's `content`: what a client
    /// that does not know the notice shows. The visitor's point of view: a
    /// transfer reads as the new agent joining.
    pub fn english(&self) -> String {
        match self.kind {
            NoticeKind::AgentJoined | NoticeKind::Transferred => {
                format!("{} joined", self.param("agent"))
            }
            NoticeKind::AgentLeft => format!("{} left", self.param("agent")),
            NoticeKind::Closed => "Conversation closed".to_string(),
            NoticeKind::Reopened => "Conversation reopened".to_string(),
            NoticeKind::MemberAdded => {
                format!("{} added {}", self.param("by"), self.param("member"))
            }
            NoticeKind::MemberRemoved => {
                format!("{} removed {}", self.param("by"), self.param("member"))
            }
            NoticeKind::MemberLeft => format!("{} left", self.param("member")),
            NoticeKind::Away => self.param("text").to_string(),
        }
    }

    /// The stored form (JSON).
    pub fn encode(&self) -> String {
        serde_json::to_string(self).unwrap_or_default()
    }

    pub fn decode(raw: &str) -> Result<Notice, serde_json::Error> {
        serde_json::from_str(raw)
    }
}

/// A button under an agent's message (desk-api.md, "Quick replies"): the
/// visitor sees `title`; clicking it sends `title` as the visitor's text
/// and `payload` as its postback.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize, utoipa::ToSchema)]
pub struct QuickReply {
    pub title: String,
    pub payload: String,
}

/// Which field of a rich message was refused, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct FieldError {
    pub field: String,
    pub message: String,
}

impl FieldError {
    fn new(field: impl Into<String>, message: impl Into<String>) -> FieldError {
        FieldError {
            field: field.into(),
            message: message.into(),
        }
    }
}

impl QuickReply {
    /// At most this many buttons under one message (and at least one, when
    /// `quick_replies` is given at all).
    pub const MAX_ITEMS: usize = 10;
    pub const MAX_TITLE_CHARS: usize = 40;
    /// A payload's and a postback's bound (Unicode scalar values).
    pub const MAX_PAYLOAD_CHARS: usize = 1000;

    /// Parses an agent's `quick_replies` (`(title, payload)` pairs): 1..=10
    /// items, each title 1..=40 characters and not only white space, each
    /// payload 1..=1000 characters. Errors name the field
    /// (`quick_replies[2].title`).
    pub fn parse_list(items: Vec<(String, String)>) -> Result<Vec<QuickReply>, FieldError> {
        if items.is_empty() || items.len() > Self::MAX_ITEMS {
            return Err(FieldError::new(
                "quick_replies",
                format!("quick_replies must have 1 to {} items", Self::MAX_ITEMS),
            ));
        }
        items
            .into_iter()
            .enumerate()
            .map(|(i, (title, payload))| {
                let field = |name: &str| format!("quick_replies[{i}].{name}");
                if title.trim().is_empty() {
                    return Err(FieldError::new(field("title"), "title must not be empty"));
                }
                if title.chars().nth(Self::MAX_TITLE_CHARS).is_some() {
                    return Err(FieldError::new(
                        field("title"),
                        format!("title is longer than {} characters", Self::MAX_TITLE_CHARS),
                    ));
                }
                let payload = Self::parse_payload(payload)
                    .map_err(|message| FieldError::new(field("payload"), message))?;
                Ok(QuickReply { title, payload })
            })
            .collect()
    }

    /// A payload, or a visitor's postback: 1..=1000 characters.
    pub fn parse_payload(payload: String) -> Result<String, String> {
        if payload.is_empty() {
            return Err("must not be empty".to_string());
        }
        if payload.chars().nth(Self::MAX_PAYLOAD_CHARS).is_some() {
            return Err(format!(
                "is longer than {} characters",
                Self::MAX_PAYLOAD_CHARS
            ));
        }
        Ok(payload)
    }

    /// The stored form of a message's buttons (JSON), `None` when it has none.
    pub fn encode_list(list: &[QuickReply]) -> Option<String> {
        (!list.is_empty()).then(|| serde_json::to_string(list).unwrap_or_default())
    }

    pub fn decode_list(raw: &str) -> Result<Vec<QuickReply>, serde_json::Error> {
        serde_json::from_str(raw)
    }
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

    #[test]
    fn notices_encode_as_type_and_params() {
        let notice = Notice::transferred("Bo", "Ana");
        assert_eq!(
            serde_json::to_value(&notice).unwrap(),
            serde_json::json!({"type": "transferred", "params": {"agent": "Bo", "from": "Ana"}})
        );
        assert_eq!(Notice::decode(&notice.encode()).unwrap(), notice);
        assert_eq!(notice.english(), "Bo joined");
        assert_eq!(
            serde_json::to_value(Notice::closed(None)).unwrap(),
            serde_json::json!({"type": "closed", "params": {}})
        );
        assert_eq!(
            Notice::reopened(Some("Ana")).english(),
            "Conversation reopened"
        );
        assert_eq!(Notice::agent_joined("Ana").english(), "Ana joined");
    }

    fn pairs(n: usize) -> Vec<(String, String)> {
        (0..n).map(|i| (format!("T{i}"), format!("p{i}"))).collect()
    }

    #[test]
    fn quick_replies_take_one_to_ten_items() {
        assert_eq!(QuickReply::parse_list(pairs(1)).unwrap().len(), 1);
        assert_eq!(QuickReply::parse_list(pairs(10)).unwrap().len(), 10);
        for n in [0, 11] {
            let err = QuickReply::parse_list(pairs(n)).unwrap_err();
            assert_eq!(err.field, "quick_replies");
        }
    }

    #[test]
    fn quick_reply_titles_and_payloads_are_bounded() {
        let one = |t: &str, p: &str| QuickReply::parse_list(vec![(t.into(), p.into())]);
        assert!(one(&"é".repeat(40), "p").is_ok());
        assert_eq!(
            one(&"é".repeat(41), "p").unwrap_err().field,
            "quick_replies[0].title"
        );
        assert_eq!(one(" ", "p").unwrap_err().field, "quick_replies[0].title");
        assert!(one("Yes", &"x".repeat(1000)).is_ok());
        assert_eq!(
            one("Yes", &"x".repeat(1001)).unwrap_err().field,
            "quick_replies[0].payload"
        );
        assert_eq!(
            one("Yes", "").unwrap_err().field,
            "quick_replies[0].payload"
        );
        let list = one("Yes", "yes").unwrap();
        let raw = QuickReply::encode_list(&list).unwrap();
        assert_eq!(raw, r#"[{"title":"Yes","payload":"yes"}]"#);
        assert_eq!(QuickReply::decode_list(&raw).unwrap(), list);
        assert_eq!(QuickReply::encode_list(&[]), None);
    }

    #[test]
    fn member_notices_name_the_member_and_who_did_it() {
        let added = Notice::member_added("Bo", "Ana");
        assert_eq!(
            serde_json::to_value(&added).unwrap(),
            serde_json::json!({"type": "member_added", "params": {"member": "Bo", "by": "Ana"}})
        );
        assert_eq!(added.english(), "Ana added Bo");
        assert_eq!(
            Notice::member_removed("Bo", "Ana").english(),
            "Ana removed Bo"
        );
        let left = Notice::member_left("Bo");
        assert_eq!(left.english(), "Bo left");
        assert_eq!(Notice::decode(&left.encode()).unwrap(), left);
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
