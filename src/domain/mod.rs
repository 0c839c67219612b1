//! Domain types with no I/O: identifiers, channels, conversations, messages,
//! events, and the parsing that makes invalid values unrepresentable.

pub mod application;
pub mod attachment;
pub mod canned;
pub mod channel;
pub mod desk;
pub mod event;
pub mod identity;
pub mod ids;
pub mod label;
pub mod message;
pub mod presence;
pub mod reaction;
pub mod report;
pub mod rights;
pub mod room;
pub mod search;
pub mod time;
pub mod url;
pub mod visitor;
pub mod webhook;

pub use attachment::Attachment;
pub use canned::{CannedResponse, CannedResponseId};
pub use channel::{
    Assignment, Channel, ChannelDesk, ChannelLook, OriginPattern, Routing, VisitorScope,
};
pub use desk::{BusinessHours, PrechatAnswers, PrechatForm};
pub use event::{Agents, Event, Published, QueueAction};
pub use ids::{
    AgentId, AttachmentId, ChannelId, ConversationId, LabelId, MessageId, SessionId, TenantId,
    WebhookId,
};
pub use label::{Label, LabelColor, LabelName, RoomLabel};
pub use message::{
    ClientMessageId, Conversation, DeliveryState, FieldError, Message, MessageText, Notice,
    NoticeKind, QuickReply, SenderKind, TextError,
};
pub use presence::{AgentPresence, LivePresence, PresenceState};
pub use reaction::{Emoji, Reaction};
pub use room::{LiveRoom, Member, Rating, Room, RoomId, RoomKind, RoomState, RoomSummary};
pub use visitor::VisitorContext;

/// An agent's role: admins manage channels and agents.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Role {
    Admin,
    Agent,
    /// An application (a bot): acts like an agent through the API with its
    /// own token and scopes; never an admin, no presence, no login.
    Application,
}

impl Role {
    pub fn as_str(self) -> &'static str {
        match self {
            Role::Admin => "admin",
            Role::Agent => "agent",
            Role::Application => "application",
        }
    }

    /// A role an admin may give an agent: `admin` or `agent` (an
    /// application is made by `POST /applications`, never by a role).
    pub fn parse(s: &str) -> Option<Role> {
        match s {
            "admin" => Some(Role::Admin),
            "agent" => Some(Role::Agent),
            _ => None,
        }
    }

    /// A role as stored: `parse`'s, or `application`.
    pub fn parse_stored(s: &str) -> Option<Role> {
        match s {
            "application" => Some(Role::Application),
            other => Role::parse(other),
        }
    }
}

/// A person who answers chats.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Agent {
    pub id: AgentId,
    pub tenant_id: TenantId,
    pub email: String,
    pub display_name: String,
    pub avatar_url: Option<String>,
    pub role: Role,
    /// PHC string (Argon2id); never leaves the server.
    pub password_hash: String,
    /// A disabled agent cannot log in, and its tokens stop working at once.
    pub disabled: bool,
}

impl Agent {
    /// An application (a bot) rather than a person.
    pub fn is_application(&self) -> bool {
        self.role == Role::Application
    }
}
