//! What travels on the bus: something happened, and who may see it. Events
//! carry everything a receiving instance needs to deliver them without a
//! store read; their wire shapes are built in [`crate::wire`].

use serde::{Deserialize, Serialize};
use uuid::Uuid;

use super::ids::{AgentId, ChannelId, ConversationId, MessageId, TenantId};
use super::message::{Message, SenderKind};
use super::presence::LivePresence;
use super::room::{LiveRoom, RoomId};

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
        /// `None` in agent rooms.
        channel_id: Option<ChannelId>,
        typing: bool,
        sender_kind: SenderKind,
        sender_id: Uuid,
        sender_name: Option<String>,
    },
    /// An agent read a visitor room up to `up_to_seq` (the visitor's read receipts).
    ReadByAgent {
        conversation_id: ConversationId,
        up_to_seq: i64,
    },
    /// A visitor room was closed (`closed: true`) or reopened: the visitor's
    /// `conversation.closed` / `conversation.reopened`.
    RoomClosed {
        conversation_id: ConversationId,
        closed: bool,
    },
    /// Whether a connected agent of the channel's tenant is available: for
    /// every visitor session of the channel (its `/queue/events`).
    Availability {
        channel_id: ChannelId,
        available: bool,
        /// When the answer was read (microseconds since the epoch, taken
        /// before the read): answers published concurrently may arrive out
        /// of order, and a session keeps the newest.
        #[serde(default)]
        as_of_us: i64,
        /// When a channel closed by its business hours opens next
        /// (desk-api.md, "Support desk": `back_at`); `None` otherwise.
        #[serde(default)]
        back_at_ms: Option<i64>,
    },
    /// A channel was disconnected or its settings changed: its visitors'
    /// live sessions (on its topic) apply it at once: a disconnected
    /// channel, or an origin no longer allowed, ends them. Never sent to a
    /// client.
    ChannelChanged {
        channel: crate::domain::Channel,
    },
    /// An agent's tokens were revoked (logout: one session; password reset,
    /// disable, delete: all of them): its live sockets opened with them end
    /// at once, on every instance. Never sent to a client.
    SessionsRevoked {
        agent: crate::domain::AgentId,
        /// `None`: every session of the agent.
        session: Option<crate::domain::SessionId>,
    },
    /// A visitor's data was erased (data rights): the live sessions of this
    /// conversation end at once, on every instance, and its tokens are
    /// refused from now on. Never sent to a client.
    VisitorErased {
        conversation_id: ConversationId,
    },
    /// An agent room was created, or a visitor room given to an agent by
    /// round robin: `chatd_user_room_created`.
    RoomCreated {
        room: LiveRoom,
    },
    /// A visitor room entered the queue or left it: `chatd_queue_updated`.
    QueueUpdated {
        action: QueueAction,
        room: LiveRoom,
    },
    /// A visitor room was closed, reopened or transferred: `chatd_room_state_updated`.
    RoomStateChanged {
        room: LiveRoom,
    },
    /// The labels on a room changed (an agent put or took some, or an
    /// admin renamed, recoloured or deleted one of them):
    /// `chatd_room_labels_updated`, the room as it is now.
    RoomLabelsChanged {
        room: LiveRoom,
    },
    /// The visitor rated a closed visitor room (`room`: as it is now, its
    /// rating in it): `chatd_room_rated` to its agents, and
    /// `conversation.rated` to the visitor's other sessions.
    RoomRated {
        room: LiveRoom,
    },
    /// A member (an agent, or the visitor: its conversation id) read the
    /// room up to `up_to_seq`: `chatd_user_room_read`.
    RoomRead {
        room: RoomId,
        reader: Uuid,
        up_to_seq: i64,
    },
    /// A visitor room's visitor connected or left: `chatd_visitor_connection_updated`.
    VisitorConnection {
        room: RoomId,
        connected: bool,
    },
    /// An agent's chosen state or connection changed: `chatd_presence_updated`.
    PresenceChanged {
        presence: LivePresence,
    },
    /// `by` added the agent `member` to an agent room (`room`: as it is
    /// now): `chatd_user_room_member_added`, to its members (the new one
    /// included).
    MemberAdded {
        room: LiveRoom,
        member: Uuid,
        by: Uuid,
    },
    /// `by` removed the agent `member` from an agent room, or `member`
    /// left (`by == member`): `chatd_user_room_member_removed`, to the
    /// members before (the one who went included).
    MemberRemoved {
        room: LiveRoom,
        member: Uuid,
        by: Uuid,
    },
    /// A message mentions `user`: `chatd_user_room_mention`, to that agent.
    Mention {
        room: RoomId,
        message: MessageId,
        user: Uuid,
    },
    /// A webhook endpoint failed for 24 hours and was paused:
    /// `chatd_webhook_paused`, to the tenant's admins.
    WebhookPaused {
        webhook: super::WebhookId,
        reason: String,
    },
    /// A reaction was put on a message (`added`) or taken off:
    /// `chatd_user_room_message_reaction_created` / `_deleted`.
    Reaction {
        room: RoomId,
        message: MessageId,
        user: Uuid,
        emoji: String,
        added: bool,
    },
}

/// Why a room's place in the queue changed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum QueueAction {
    /// It waits for an agent (a new visitor room, or a closed one the visitor reopened).
    Queued,
    /// An agent took it.
    Answered,
    /// Round robin gave it to an agent.
    Assigned,
}

impl QueueAction {
    pub fn as_str(self) -> &'static str {
        match self {
            QueueAction::Queued => "queued",
            QueueAction::Answered => "answered",
            QueueAction::Assigned => "assigned",
        }
    }
}

/// Which visitor queue an event belongs on.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum VisitorQueue {
    Message,
    Events,
}

/// Which agents receive an event.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "to", rename_all = "snake_case")]
pub enum Agents {
    /// No agent (visitor-only events).
    Nobody,
    /// Every agent of the tenant (queues, presences).
    Tenant,
    /// These agents of the tenant (a room's members).
    Only { ids: Vec<AgentId> },
}

/// An event with its audience, decided by the service that publishes it.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
pub struct Published {
    pub event: Event,
    pub tenant_id: TenantId,
    /// The visitor room whose visitor sessions receive it, if any.
    pub visitor_room: Option<ConversationId>,
    pub agents: Agents,
}

impl Published {
    /// Whether `agent` is in the audience.
    pub fn reaches_agent(&self, agent: AgentId) -> bool {
        match &self.agents {
            Agents::Nobody => false,
            Agents::Tenant => true,
            Agents::Only { ids } => ids.contains(&agent),
        }
    }
}

impl Event {
    /// The channel whose visitor sessions (on its topic) receive the event.
    pub fn channel_topic(&self) -> Option<crate::domain::ChannelId> {
        match self {
            Event::Availability { channel_id, .. } => Some(*channel_id),
            Event::ChannelChanged { channel } => Some(channel.id),
            _ => None,
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
}
