//! Persistence: one trait per area (settings, agents, channels, messages,
//! rooms, reactions, visitors, attachments, canned responses), composed
//! into `Store`. `SqliteStore` (the embedded default) and `PgStore`
//! (several instances, one database)
//! implement every area with the same SQL, written once per area under
//! `sql/`. All SQL lives under this module; every query on tenant data
//! filters by tenant.
//!
//! Guarantees every implementation keeps:
//! - `append_message` assigns the room's next `seq` and stores the message
//!   in one transaction; `seq` is 1, 2, 3... without gaps or duplicates,
//!   even with concurrent writers on several instances.
//! - A `client_message_id` seen before in the same conversation returns the
//!   first message and stores nothing.
//! - `answer` is a conditional update: of concurrent answers, on any number
//!   of instances, exactly one wins.
//! - Outcomes callers branch on are typed (`Added`, `Answered`), not errors.
//!
//! `tests/api/store_contract.rs` holds the contract both backends pass: every
//! method of these traits has a case there (a test fails when one has none).

use std::collections::HashMap;

use async_trait::async_trait;
use uuid::Uuid;

use crate::domain::{
    Agent, AgentId, Attachment, AttachmentId, Channel, ChannelId, Conversation, ConversationId,
    DeliveryState, Message, MessageId, Reaction, Room, RoomId, RoomState, RoomSummary, SenderKind,
    SessionId, TenantId, VisitorContext,
};

pub mod batch;
pub mod postgres;
mod sql;
pub mod sqlite;

pub use crate::domain::VisitorScope;
pub use postgres::PgStore;
pub use sqlite::SqliteStore;

#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error("database error: {0}")]
    Database(#[from] sqlx::Error),
    #[error("migration failed: {0}")]
    Migrate(#[from] sqlx::migrate::MigrateError),
    #[error("corrupt row: {0}")]
    Corrupt(String),
    #[error("store unavailable: {0}")]
    Unavailable(String),
    /// A message named a room that is not of its kind, tenant or channel:
    /// nothing was stored.
    #[error("no such conversation here")]
    WrongRoom,
}

impl StoreError {
    /// Whether the store could not take the request at all (database down,
    /// connection lost, disk full, writer stopped), as opposed to a bug or a
    /// bad row: the caller may retry later, and nothing was stored (or, when
    /// a commit's outcome is unknown, a retry with the same
    /// `client_message_id` stores nothing twice).
    pub fn is_unavailable(&self) -> bool {
        match self {
            StoreError::Unavailable(_) => true,
            StoreError::Database(err) => database_unavailable(err),
            StoreError::Migrate(_) | StoreError::Corrupt(_) | StoreError::WrongRoom => false,
        }
    }
}

/// Which sqlx errors mean "the database cannot serve now", on either backend.
fn database_unavailable(err: &sqlx::Error) -> bool {
    match err {
        sqlx::Error::Io(_)
        | sqlx::Error::Tls(_)
        | sqlx::Error::Protocol(_)
        | sqlx::Error::PoolTimedOut
        | sqlx::Error::PoolClosed
        | sqlx::Error::WorkerCrashed => true,
        sqlx::Error::Database(db) => {
            let code = db.code();
            let code = code.as_deref().unwrap_or("");
            if db.try_downcast_ref::<sqlx::sqlite::SqliteError>().is_some() {
                // The primary result code is the low byte of the extended one:
                // SQLITE_IOERR (10), SQLITE_FULL (13), SQLITE_CANTOPEN (14),
                // SQLITE_BUSY (5, the writer held past the busy timeout).
                let primary = code.parse::<i32>().map(|c| c & 0xff).unwrap_or(0);
                matches!(primary, 5 | 10 | 13 | 14)
            } else {
                // SQLSTATE classes: 08 connection exception, 53 insufficient
                // resources (disk full, out of memory, too many connections),
                // 57P0x the server is shutting down or starting.
                code.starts_with("08")
                    || code.starts_with("53")
                    || matches!(code, "57P01" | "57P02" | "57P03")
            }
        }
        _ => false,
    }
}

pub type StoreResult<T> = Result<T, StoreError>;

/// What an id names, as the visitor door sees it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum ConversationLookup {
    /// A visitor conversation of the scope.
    Found(Conversation),
    /// No room has this id yet: a conversation may begin with it.
    Free,
    /// A room of another kind, tenant or channel: never reachable here.
    Elsewhere,
}

impl ConversationLookup {
    /// The conversation, when it is one of the scope.
    pub fn found(self) -> Option<Conversation> {
        match self {
            ConversationLookup::Found(c) => Some(c),
            _ => None,
        }
    }
}

/// A private note to be stored in a visitor conversation (desk-api.md,
/// "Support desk"): it takes the seq of the newest message, which it follows.
#[derive(Debug, Clone)]
pub struct NewNote {
    pub id: MessageId,
    pub tenant_id: TenantId,
    pub room: RoomId,
    pub author_id: Uuid,
    pub author_name: Option<String>,
    pub author_avatar: Option<String>,
    pub content: String,
    pub at_ms: i64,
}

/// A message to be stored; `seq` is assigned by the store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    /// `None` in agent rooms.
    pub channel_id: Option<ChannelId>,
    pub tenant_id: TenantId,
    pub sender_kind: SenderKind,
    pub sender_id: uuid::Uuid,
    pub sender_name: Option<String>,
    pub sender_avatar: Option<String>,
    pub content: String,
    pub state: DeliveryState,
    pub sent_at_ms: i64,
    pub client_message_id: Option<String>,
    /// A system message's meaning; `None` for every other message.
    pub notice: Option<crate::domain::Notice>,
    /// An agent's buttons (desk-api.md, "Quick replies"); empty when none.
    pub quick_replies: Vec<crate::domain::QuickReply>,
    /// The payload of the quick reply a visitor chose; `None` otherwise.
    pub postback: Option<String>,
    /// The agents the message mentions (checked by the caller).
    pub mentions: Vec<Uuid>,
    /// The files it carries, already claimed for it by the caller
    /// (`AttachmentStore::claim_attachments`); empty when none.
    pub attachments: Vec<crate::domain::Attachment>,
    /// An application (a bot) wrote it.
    pub bot: bool,
}

/// A message waiting in the group-commit lane, with its search text folded
/// by the caller's task (not by the single writer).
#[derive(Debug, Clone)]
pub struct Queued {
    pub new: NewMessage,
    pub search_text: String,
    /// Outbox rows stored with the message, in its transaction.
    pub outbox: Vec<NewOutbox>,
    /// More rows, made from the message as stored (with its seq).
    pub then: Option<MessageRows>,
    /// What a visitor conversation's first message stores with it when it
    /// creates the conversation (ignored when the conversation exists).
    pub opening: Option<Box<Opening>>,
}

impl Queued {
    pub fn new(new: NewMessage) -> Queued {
        Queued::with(new, Vec::new(), None)
    }

    pub fn with(new: NewMessage, outbox: Vec<NewOutbox>, then: Option<MessageRows>) -> Queued {
        let search_text = crate::domain::search::message_text(&new.content);
        Queued {
            new,
            search_text,
            outbox,
            then,
            opening: None,
        }
    }
}

/// What a visitor's message stores with the conversation it creates, in
/// the same transaction, so that nobody ever sees the new conversation
/// without them (its first shapes carry them) and no second write to its
/// row follows the commit: whose conversation it is, the pre-chat answers
/// and the page's context. When the conversation exists already, none of
/// it is written.
#[derive(Debug, Clone, Default)]
pub struct Opening {
    /// Whose conversation it is, and whether the site vouched for it.
    pub owner: Option<(crate::domain::identity::VisitorKey, bool)>,
    pub prechat: Option<crate::domain::PrechatAnswers>,
    pub context: Option<std::sync::Arc<crate::domain::VisitorContext>>,
}

impl std::ops::Deref for Queued {
    type Target = NewMessage;
    fn deref(&self) -> &NewMessage {
        &self.new
    }
}

/// The outcome of `append_message`.
#[derive(Debug, Clone)]
pub struct Appended {
    pub message: Message,
    /// False when an earlier message with the same `client_message_id` was returned.
    pub created: bool,
    /// The room's agents when the message was stored: who must be told.
    pub agents: Vec<AgentId>,
    /// The room's state when the message was stored.
    pub room_state: RoomState,
}

/// What the first start creates, in one transaction.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub admin: Agent,
    pub channel: Channel,
}

/// An insert that may meet an existing row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Added<T> {
    Added(T),
    AlreadyExists(T),
}

/// The outcome of adding a reaction.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ReactionAdded {
    Added,
    /// This user already reacted with this emoji (or `tenant` has no such message).
    AlreadyExists,
    /// This user already has the most distinct reactions allowed on it.
    TooMany,
}

/// The outcome of answering a queued room.
// A `Room` (with its labels and rating) is large; these values are short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Answered {
    Won(Room),
    /// Someone else answered first (or the room is not queued).
    AlreadyAnswered,
}

/// The outcome of rating a visitor room.
// A `Room` (with its labels and rating) is large; these values are short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Rated {
    /// Rated: the room after.
    Rated(Room),
    /// It has a rating already (nothing changed).
    AlreadyRated,
    /// It is queued or open (nothing changed).
    NotClosed,
    /// The tenant's channel has no such visitor room (nothing changed).
    NoRoom,
}

/// The outcome of adding a member to an agent room.
// A `Room` (with its labels and rating) is large; these values are short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum MemberAdded {
    /// Added: the room after.
    Added(Room),
    /// The agent is a member already (nothing changed).
    AlreadyMember,
    /// The room has its most members already (nothing changed).
    Full,
    /// `tenant` has no such agent room (nothing changed).
    NoRoom,
}

/// The outcome of round robin's attempt to give a queued room to an agent.
// A `Room` (with its labels and rating) is large; these values are short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Assigned {
    Won(Room),
    /// The room is not queued any more (answered, assigned elsewhere, closed).
    Taken,
    /// The agent has its limit of open visitor rooms (or is disabled or gone).
    Full,
}

/// A room round robin wants to give to an agent, under the room's channel's limit.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Pick {
    pub room: RoomId,
    pub agent: AgentId,
    pub max_open: u32,
}

/// How busy an agent is, as round robin weighs it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct AgentLoad {
    pub agent: AgentId,
    /// Open visitor rooms assigned to the agent.
    pub open: u32,
    /// When round robin last gave the agent a room.
    pub last_assigned_ms: Option<i64>,
}

/// Changes to an agent; `None` keeps the value.
#[derive(Debug, Clone, Default)]
pub struct AgentChanges {
    pub display_name: Option<String>,
    pub avatar_url: Option<Option<String>>,
    pub role: Option<crate::domain::Role>,
    pub password_hash: Option<String>,
    pub disabled: Option<bool>,
}

/// A page of messages of one room (or, for searches, of the caller's rooms).
#[derive(Debug, Clone, Default)]
pub struct MessageQuery {
    pub limit: u32,
    pub offset: u32,
    /// Oldest first when true.
    pub ascending: bool,
    pub from_ms: Option<i64>,
    pub before_seq: Option<i64>,
    pub after_seq: Option<i64>,
    /// A `LIKE` pattern from `domain::search::like_pattern`.
    pub search: Option<String>,
}

/// Which of a tenant's visitor rooms an admin lists (`None`: any).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct RoomFilter {
    pub state: Option<RoomState>,
    pub channel: Option<ChannelId>,
    pub assignee: Option<AgentId>,
    /// Rooms carrying this label.
    pub label: Option<crate::domain::LabelId>,
}

/// A page and the counts around it.
#[derive(Debug, Clone)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Items matching the filters.
    pub filtered: i64,
    /// Items before filtering.
    pub total: i64,
}

/// Settings, bootstrap, readiness.
#[async_trait]
pub trait SettingsStore: Send + Sync + 'static {
    /// Cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    /// A deployment-wide setting: `candidate` is stored if none is yet, and
    /// the stored one is returned (so every instance and restart agrees).
    async fn setting(&self, key: &str, candidate: &str) -> StoreResult<String>;

    /// The token-signing secret (the setting `jwt_secret`).
    async fn jwt_secret(&self, candidate: &str) -> StoreResult<String> {
        self.setting("jwt_secret", candidate).await
    }

    /// Creates the first tenant, admin and channel unless a tenant exists;
    /// returns whether it did.
    async fn bootstrap(&self, first: &Bootstrap) -> StoreResult<bool>;

    /// Creates another tenant with its first admin.
    async fn insert_tenant(&self, id: TenantId, name: &str, admin: &Agent) -> StoreResult<()>;
}

/// Agents and their login sessions.
#[async_trait]
pub trait AgentStore: Send + Sync + 'static {
    async fn agent_by_email(&self, email: &str) -> StoreResult<Option<Agent>>;
    /// An agent of `tenant`.
    async fn agent(&self, tenant: TenantId, id: AgentId) -> StoreResult<Option<Agent>>;
    async fn agents(&self, tenant: TenantId) -> StoreResult<Vec<Agent>>;
    /// `AlreadyExists` (with nothing stored) when the email is taken.
    async fn insert_agent(&self, agent: &Agent) -> StoreResult<Added<()>>;
    /// The changed agent, or `None` when `tenant` has no such agent.
    async fn update_agent(
        &self,
        tenant: TenantId,
        id: AgentId,
        changes: &AgentChanges,
    ) -> StoreResult<Option<Agent>>;
    /// Returns false when `tenant` has no such agent.
    async fn delete_agent(&self, tenant: TenantId, id: AgentId) -> StoreResult<bool>;
    /// Sets the password of the agent with this email and revokes all its
    /// sessions, in one transaction; the agent, or `None` when no agent has
    /// this email.
    async fn set_password(&self, email: &str, password_hash: &str) -> StoreResult<Option<Agent>>;

    async fn create_session(
        &self,
        id: SessionId,
        agent: AgentId,
        expires_at_ms: i64,
    ) -> StoreResult<()>;
    /// The agent of a session that exists, is not revoked, has not expired,
    /// and whose agent still exists and is not disabled.
    async fn session_agent(&self, id: SessionId, now_ms: i64) -> StoreResult<Option<Agent>>;
    /// `session_agent` and, in the same read, the room `room` of the
    /// agent's tenant with its members (`None` when the tenant has no such
    /// room): an agent's call on a room (its reply above all) reads once.
    async fn session_agent_and_room(
        &self,
        id: SessionId,
        now_ms: i64,
        room: RoomId,
    ) -> StoreResult<Option<(Agent, Option<Room>)>>;
    /// Returns false when there was no such active session.
    async fn revoke_session(&self, id: SessionId) -> StoreResult<bool>;
    /// Revokes every session of an agent of `tenant`; how many were active.
    async fn revoke_agent_sessions(&self, tenant: TenantId, agent: AgentId) -> StoreResult<u64>;

    /// The presences of these agents of `tenant` (all of them when `ids` is empty).
    async fn presences(
        &self,
        tenant: TenantId,
        ids: &[AgentId],
    ) -> StoreResult<Vec<crate::domain::AgentPresence>>;
    /// Sets an agent's chosen state and status; `None` when `tenant` has no such agent.
    async fn set_presence(
        &self,
        tenant: TenantId,
        id: AgentId,
        state: crate::domain::PresenceState,
        status: Option<&str>,
        at_ms: i64,
        then: Option<PresenceRows>,
    ) -> StoreResult<Option<crate::domain::AgentPresence>>;
}

/// Channels.
#[async_trait]
pub trait ChannelStore: Send + Sync + 'static {
    async fn insert_channel(&self, channel: &Channel) -> StoreResult<()>;
    /// A channel of `tenant`.
    async fn channel(&self, tenant: TenantId, id: ChannelId) -> StoreResult<Option<Channel>>;
    /// A channel by id alone: only the visitor door asks this, because a
    /// visitor knows nothing but the channel id the site's tag names (the
    /// channel then scopes everything the visitor may reach).
    async fn public_channel(&self, id: ChannelId) -> StoreResult<Option<Channel>>;
    /// A tenant's channels, oldest first.
    async fn channels(&self, tenant: TenantId) -> StoreResult<Vec<Channel>>;
    /// Saves name, image, origins and connected flag.
    async fn update_channel(&self, channel: &Channel) -> StoreResult<()>;
}

/// Messages: appends (group committed), reads, edits and delivery marks.
#[async_trait]
pub trait MessageStore: Send + Sync + 'static {
    /// Whether `id` is a visitor conversation of `scope`, free (no room of
    /// any kind, tenant or channel has it), or some other room. A visitor
    /// conversation exists once its first message is stored.
    async fn conversation(
        &self,
        scope: VisitorScope,
        id: ConversationId,
    ) -> StoreResult<ConversationLookup>;

    async fn append_message(&self, message: NewMessage) -> StoreResult<Appended>;
    /// `append_message`, adding `outbox` rows (what the message sets off:
    /// an offline email) and the rows `then` makes of the stored message
    /// (its webhook events) in the same transaction when the message is
    /// new (a repeated `client_message_id` adds none).
    async fn append_message_with(
        &self,
        message: NewMessage,
        outbox: Vec<NewOutbox>,
        then: Option<MessageRows>,
    ) -> StoreResult<Appended>;
    /// Queues an append (with the rows `then` makes of the stored message,
    /// as `append_message_with`, and what `opening` stores with the
    /// conversation when the message creates it) and returns the future of
    /// its result, so a caller can queue several in order without waiting
    /// for each to commit.
    async fn enqueue_append(
        &self,
        message: NewMessage,
        then: Option<MessageRows>,
        opening: Option<Opening>,
    ) -> StoreResult<batch::PendingAppend>;
    /// How many group commits failed as a whole and were stored message by
    /// message instead (each message then succeeds or fails alone). Rare in
    /// a healthy deployment: a steady rise points at a bug or a sick database.
    fn batch_fallbacks(&self) -> u64;
    /// Messages of the visitor conversation with `seq > after_seq`, oldest
    /// first, at most `limit` (none when it is not a conversation of `scope`).
    async fn messages_after(
        &self,
        scope: VisitorScope,
        conversation: ConversationId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// The last `limit` messages of the visitor conversation, oldest first
    /// (none when it is not a conversation of `scope`).
    async fn history(
        &self,
        scope: VisitorScope,
        conversation: ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;

    /// Stores a private note in a visitor conversation of `note.tenant_id`;
    /// the note as agents see it, or `None` when there is no such
    /// conversation.
    /// The rows `then` makes of the stored note are written in its transaction.
    async fn add_note(
        &self,
        note: NewNote,
        then: Option<MessageRows>,
    ) -> StoreResult<Option<Message>>;
    /// A page of a room's messages (reactions filled in), with the private
    /// notes that follow the page's messages (each right after the message
    /// whose seq it has; a text search leaves notes out). Notes are not
    /// counted in `limit` or in the page's counts.
    async fn room_messages(
        &self,
        tenant: TenantId,
        room: RoomId,
        query: &MessageQuery,
    ) -> StoreResult<Page<Message>>;
    /// Messages of every room `member` is in that match `query.search`;
    /// with `distinct_rooms`, only the newest match of each room.
    async fn search_messages(
        &self,
        tenant: TenantId,
        member: Uuid,
        query: &MessageQuery,
        distinct_rooms: bool,
    ) -> StoreResult<Page<Message>>;
    async fn message(
        &self,
        tenant: TenantId,
        room: RoomId,
        id: MessageId,
    ) -> StoreResult<Option<Message>>;
    /// Sets the content (or deletes: empty content, `deleted`); the changed message.
    async fn edit_message(
        &self,
        tenant: TenantId,
        room: RoomId,
        id: MessageId,
        content: Option<&str>,
        at_ms: i64,
        then: Option<MessageRows>,
    ) -> StoreResult<Option<Message>>;
    /// Marks a PENDING message DELIVERED (batched with other marks); the
    /// changed message, or `None` when it was not PENDING (another tab or
    /// instance marked it first).
    /// The rows `then` makes of the changed message are written with the mark.
    async fn mark_delivered(
        &self,
        tenant: TenantId,
        id: MessageId,
        then: Option<MessageRows>,
    ) -> StoreResult<Option<Message>>;
    /// Marks every PENDING message of the channel FAILED; the changed messages.
    async fn fail_pending(&self, tenant: TenantId, channel: ChannelId)
        -> StoreResult<Vec<Message>>;
    /// The visitor read the agents' messages up to `up_to_seq`; returns
    /// how many were newly marked (and writes the rows `then` makes of
    /// each, in the same transaction).
    async fn visitor_read(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        up_to_seq: i64,
        at_ms: i64,
        then: Option<MessageRows>,
    ) -> StoreResult<u64>;
}

/// Rooms, their members and read positions, and the queue. A change that
/// takes `then` writes the rows it makes of the room after the change in
/// the change's own transaction (nothing when the change does not happen).
#[async_trait]
pub trait RoomStore: Send + Sync + 'static {
    /// Creates an agent room, or returns the room with exactly these members.
    async fn create_agent_room(&self, room: &Room) -> StoreResult<Added<Room>>;
    async fn room(&self, tenant: TenantId, id: RoomId) -> StoreResult<Option<Room>>;
    /// The rooms `member` is in that also contain every one of `with` (and
    /// match `filter`: its `state` `Open` is every room not closed, team
    /// rooms included; a channel, assignee or label keeps visitor rooms
    /// only), newest activity first. `total` counts all of the member's
    /// rooms, `filtered` those matching.
    async fn member_rooms(
        &self,
        tenant: TenantId,
        member: Uuid,
        with: &[Uuid],
        filter: &RoomFilter,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Page<RoomSummary>>;
    /// Every visitor room of the tenant matching `filter`, newest activity
    /// first, with its newest message and `reader`'s unread count (0 in a
    /// room `reader` is not in). `filtered` and `total` both count the
    /// rooms matching `filter`.
    async fn visitor_rooms(
        &self,
        tenant: TenantId,
        reader: Uuid,
        filter: &RoomFilter,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Page<RoomSummary>>;
    /// Queued visitor rooms, oldest first (of one channel, or all), with
    /// their newest message.
    async fn queue(
        &self,
        tenant: TenantId,
        channel: Option<ChannelId>,
    ) -> StoreResult<Vec<RoomSummary>>;
    /// The ids and channels of the tenant's queued visitor rooms, oldest
    /// first (at most `limit`): what round robin needs, without the rest.
    async fn queued_rooms(
        &self,
        tenant: TenantId,
        limit: u32,
    ) -> StoreResult<Vec<(RoomId, ChannelId)>>;
    /// A conditional update: exactly one of concurrent answers wins.
    async fn answer(
        &self,
        tenant: TenantId,
        room: RoomId,
        agent: AgentId,
        at_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Answered>;
    /// Round robin: gives each queued room to its picked agent unless that
    /// agent already has `max_open` open visitor rooms, all in one
    /// transaction (one commit for a whole drain); the outcomes in the
    /// order of `picks`. The agents' rows are taken first (in id order,
    /// then the rooms in id order, so concurrent drains of several
    /// instances queue rather than deadlock), so the count each limit is
    /// checked against includes every committed assignment; a room is
    /// assigned at most once.
    async fn assign_many(
        &self,
        tenant: TenantId,
        picks: &[Pick],
        at_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Vec<Assigned>>;
    /// Every enabled agent of the tenant with its open visitor rooms.
    async fn agent_loads(&self, tenant: TenantId) -> StoreResult<Vec<AgentLoad>>;
    /// Hands a visitor room from `from` (who leaves) to `to` (who joins and
    /// becomes assignee); the room after, or `None` when `from` is not a member.
    async fn transfer(
        &self,
        tenant: TenantId,
        room: RoomId,
        from: AgentId,
        to: AgentId,
        at_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Option<Room>>;
    /// Sets a visitor room's state (`Queued` also clears its assignee and
    /// agents), only if it is in state `from` when given (so one of
    /// concurrent changes wins); the room after, or `None` when there is no
    /// such room (in that state).
    async fn set_room_state(
        &self,
        tenant: TenantId,
        room: RoomId,
        from: Option<RoomState>,
        state: RoomState,
        at_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Option<Room>>;
    /// Marks that a visitor room's away message was sent: true for the one
    /// caller that set it (once per conversation, however many race).
    /// Never while an application (the channel's bot) is in the room: the
    /// bot answers, and the mark stays free for after its hand-over.
    async fn mark_away_sent(&self, tenant: TenantId, room: RoomId) -> StoreResult<bool>;
    /// Open or queued visitor rooms, of every tenant, whose channel closes
    /// conversations idle for `auto_close_hours` and that have been idle
    /// that long at `now_ms` (at most `limit`, the longest idle first).
    async fn idle_rooms(&self, now_ms: i64, limit: u32) -> StoreResult<Vec<(TenantId, RoomId)>>;
    /// Closes a visitor room if it is still open or queued and still idle
    /// per its channel's `auto_close_hours` at `now_ms`, in one guarded
    /// update (of instances racing, one closes it): the closed room and the
    /// state it had.
    async fn close_idle_room(
        &self,
        tenant: TenantId,
        room: RoomId,
        now_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Option<(Room, RoomState)>>;
    /// Stores the visitor's rating of a visitor room of `tenant` and
    /// `channel`, if it is closed and not rated yet (one of concurrent
    /// rates wins).
    async fn rate_room(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        room: RoomId,
        rating: &crate::domain::Rating,
        then: Option<RoomRows>,
    ) -> StoreResult<Rated>;
    /// Adds the agent `member` to an agent room of `tenant` unless it is a
    /// member already or the room has `max_members`, in one transaction
    /// (concurrent adds queue on the room's row, so the cap holds exactly).
    /// The new member has read up to the room's newest message. The room no
    /// longer answers a creation with its original members (its member key
    /// is cleared): "same members, same room" holds only at creation.
    async fn add_member(
        &self,
        tenant: TenantId,
        room: RoomId,
        member: AgentId,
        max_members: usize,
        at_ms: i64,
    ) -> StoreResult<MemberAdded>;
    /// Removes the agent `member` from an agent room of `tenant` (its
    /// messages stay); the room after, or `None` when it was no member of
    /// such a room. The member key is cleared as by `add_member`.
    async fn remove_member(
        &self,
        tenant: TenantId,
        room: RoomId,
        member: AgentId,
    ) -> StoreResult<Option<Room>>;
    /// Sets the member's read position (never backwards); `None` = the room's end.
    /// Returns the position now stored.
    async fn mark_read(
        &self,
        tenant: TenantId,
        room: RoomId,
        member: Uuid,
        up_to_seq: Option<i64>,
    ) -> StoreResult<i64>;
    /// How far the room's agents have read it (the furthest of them; 0 when
    /// none has).
    async fn agents_read_up_to(&self, tenant: TenantId, room: RoomId) -> StoreResult<i64>;
    /// How many messages `member` has not read in `room`: what the visitor
    /// or other agents wrote, not its own, not system notices ("Ana
    /// joined", which the reader's own answer or a colleague's action
    /// writes), not deleted ones. The same rule gives `member_rooms`' counts.
    async fn unread_count(&self, tenant: TenantId, room: RoomId, member: Uuid) -> StoreResult<i64>;
}

/// Reactions to messages.
#[async_trait]
pub trait ReactionStore: Send + Sync + 'static {
    /// Adds the reaction unless `user` already has `max_per_user` distinct
    /// ones on the message (`TooMany`). `AlreadyExists` also when `tenant`
    /// has no such message (the caller has checked it has).
    async fn add_reaction(
        &self,
        tenant: TenantId,
        message: MessageId,
        user: Uuid,
        emoji: &str,
        at_ms: i64,
        max_per_user: u32,
    ) -> StoreResult<ReactionAdded>;
    /// Returns false when there was no such reaction.
    async fn remove_reaction(
        &self,
        tenant: TenantId,
        message: MessageId,
        user: Uuid,
        emoji: &str,
    ) -> StoreResult<bool>;
    async fn reactions(&self, tenant: TenantId, message: MessageId) -> StoreResult<Vec<Reaction>>;
}

/// Uploaded files' records (their bytes are in `crate::files`).
#[async_trait]
pub trait AttachmentStore: Send + Sync + 'static {
    /// Records an upload (not yet carried by any message).
    async fn insert_attachment(&self, attachment: &Attachment) -> StoreResult<()>;
    /// The attachment `id` of `tenant`, if any.
    async fn attachment(
        &self,
        tenant: TenantId,
        id: AttachmentId,
    ) -> StoreResult<Option<Attachment>>;
    /// The attachment `id` whatever its tenant: for a download whose signed
    /// URL already proves who may have it.
    async fn attachment_by_id(&self, id: AttachmentId) -> StoreResult<Option<Attachment>>;
    /// Up to `limit` uploads that no message carries, made before
    /// `before_ms`, and claims made before it whose message was never
    /// stored.
    async fn unsent_attachments(
        &self,
        before_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<AttachmentId>>;
    /// Deletes the record of upload `id` if no message carries it (or its
    /// claim, made before `before_ms`, has no stored message); whether it
    /// did (its bytes are then the caller's to remove).
    async fn delete_unsent_attachment(&self, id: AttachmentId, before_ms: i64)
        -> StoreResult<bool>;
    /// Claims the uploads `ids` for `message`, all or none: each must be of
    /// `conversation`, made by `uploader` (kind and id) and carried by no
    /// message. The claimed files in `ids`' order; empty when any could
    /// not be claimed (then nothing changed).
    async fn claim_attachments(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        uploader: (SenderKind, Uuid),
        ids: &[AttachmentId],
        message: MessageId,
        at_ms: i64,
    ) -> StoreResult<Vec<Attachment>>;
    /// Gives back the files claimed for `message`, which was not stored.
    async fn release_attachments(&self, message: MessageId) -> StoreResult<()>;
    /// Deletes the records of the files `message` of `tenant` carried (a
    /// deleted message); their ids (their bytes are the caller's to remove).
    async fn delete_message_attachments(
        &self,
        tenant: TenantId,
        message: MessageId,
    ) -> StoreResult<Vec<AttachmentId>>;
}

/// What changing a label did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LabelChange {
    Done,
    /// The tenant has no such label.
    NotFound,
    /// Another label of the tenant has this name (whatever its case).
    NameTaken,
}

/// What putting labels on a room did.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum RoomLabelsSet {
    Done,
    /// The tenant has no such room.
    UnknownRoom,
    /// One of the labels is not the tenant's: nothing changed.
    UnknownLabel,
}

/// A tenant's labels for conversations and the rooms they are on.
#[async_trait]
pub trait LabelStore: Send + Sync + 'static {
    /// The tenant's labels, by name (case-insensitively).
    async fn labels(&self, tenant: TenantId) -> StoreResult<Vec<crate::domain::Label>>;
    async fn label(
        &self,
        tenant: TenantId,
        id: crate::domain::LabelId,
    ) -> StoreResult<Option<crate::domain::Label>>;
    /// `Done`, or `NameTaken` (nothing stored).
    async fn insert_label(
        &self,
        label: &crate::domain::Label,
        at_ms: i64,
    ) -> StoreResult<LabelChange>;
    /// Renames and recolours the label of `label.id`.
    async fn update_label(&self, label: &crate::domain::Label) -> StoreResult<LabelChange>;
    /// Deletes a label, taking it off every room, in one transaction;
    /// `false` when the tenant has no such label.
    async fn delete_label(&self, tenant: TenantId, id: crate::domain::LabelId)
        -> StoreResult<bool>;
    /// The rooms not closed that carry the label (at most `limit`): whose
    /// agents hear of a change to it.
    async fn label_rooms(
        &self,
        tenant: TenantId,
        id: crate::domain::LabelId,
        limit: u32,
    ) -> StoreResult<Vec<RoomId>>;
    /// The room's labels become exactly `labels`, in one transaction.
    async fn set_room_labels(
        &self,
        tenant: TenantId,
        room: RoomId,
        labels: &[crate::domain::LabelId],
    ) -> StoreResult<RoomLabelsSet>;
}

/// The outcome of saving a canned response.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CannedSaved {
    Saved,
    /// Another of the tenant's canned responses has this shortcut (nothing changed).
    ShortcutTaken,
    /// `tenant` has no such canned response (an update; nothing changed).
    NotFound,
}

/// A tenant's canned responses (desk-api.md, "Support desk").
#[async_trait]
pub trait CannedResponseStore: Send + Sync + 'static {
    /// `ShortcutTaken` when the tenant has one with this shortcut.
    async fn insert_canned_response(
        &self,
        canned: &crate::domain::CannedResponse,
    ) -> StoreResult<CannedSaved>;
    /// Saves shortcut, title, content and `updated_at` of one of its tenant's.
    async fn update_canned_response(
        &self,
        canned: &crate::domain::CannedResponse,
    ) -> StoreResult<CannedSaved>;
    async fn canned_response(
        &self,
        tenant: TenantId,
        id: crate::domain::CannedResponseId,
    ) -> StoreResult<Option<crate::domain::CannedResponse>>;
    /// The tenant's canned responses whose folded shortcut and title match
    /// `search` (a pattern of `domain::search::like_pattern`; all when
    /// `None`): those matching `prefix` (the same kind of pattern, anchored
    /// at the shortcut's start) first, then by shortcut.
    async fn canned_responses(
        &self,
        tenant: TenantId,
        search: Option<&str>,
        prefix: Option<&str>,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Page<crate::domain::CannedResponse>>;
    /// Returns false when `tenant` has no such canned response.
    async fn delete_canned_response(
        &self,
        tenant: TenantId,
        id: crate::domain::CannedResponseId,
    ) -> StoreResult<bool>;
}

/// Every area of persistence, as one handle.
pub trait Store:
    SettingsStore
    + AgentStore
    + ChannelStore
    + MessageStore
    + RoomStore
    + ReactionStore
    + VisitorStore
    + AttachmentStore
    + LabelStore
    + CannedResponseStore
    + IdentityStore
    + OutboxStore
    + DataRightsStore
    + WebhookStore
    + ApplicationStore
    + ReportStore
{
}

impl<T> Store for T where
    T: SettingsStore
        + AgentStore
        + ChannelStore
        + MessageStore
        + RoomStore
        + ReactionStore
        + VisitorStore
        + AttachmentStore
        + LabelStore
        + CannedResponseStore
        + IdentityStore
        + OutboxStore
        + DataRightsStore
        + WebhookStore
        + ApplicationStore
        + ReportStore
{
}

/// A tenant's applications (bots): their rows, the token check of each of
/// their calls, revocation, and a room an application hands back to the queue.
#[async_trait]
pub trait ApplicationStore: Send + Sync + 'static {
    /// Stores the application and its row among the agents (same id, role
    /// `application`) in one transaction; only the token's hash is kept.
    async fn insert_application(
        &self,
        application: &crate::domain::application::Application,
        agent: &Agent,
        token_hash: &str,
    ) -> StoreResult<()>;
    /// The tenant's applications, revoked ones included, oldest first.
    async fn applications(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Vec<crate::domain::application::Application>>;
    async fn application(
        &self,
        tenant: TenantId,
        id: AgentId,
    ) -> StoreResult<Option<crate::domain::application::Application>>;
    /// The live application whose token hashes to `hash`, and its agent row
    /// (`None` once revoked): read on every call it makes.
    async fn application_by_token(
        &self,
        hash: &str,
    ) -> StoreResult<Option<(crate::domain::application::Application, Agent)>>;
    /// Revokes it now: its token stops working, its agent row is disabled,
    /// and the channels naming it as their bot no longer do, in one
    /// transaction. `None` when the tenant has no such application; one
    /// revoked already is returned unchanged.
    async fn revoke_application(
        &self,
        tenant: TenantId,
        id: AgentId,
        at_ms: i64,
    ) -> StoreResult<Option<crate::domain::application::Application>>;
    /// The open visitor rooms `member` is in.
    async fn open_rooms_of(&self, tenant: TenantId, member: AgentId) -> StoreResult<Vec<RoomId>>;
    /// `member` leaves an open visitor room of `tenant` that returns to its
    /// channel's queue (no assignee, waiting from `at_ms`), with `then`'s
    /// rows, in one transaction; `None` (nothing changed) when `member` is
    /// not in such a room.
    async fn requeue(
        &self,
        tenant: TenantId,
        room: RoomId,
        member: AgentId,
        at_ms: i64,
        then: Option<RoomRows>,
    ) -> StoreResult<Option<Room>>;
}

/// A tenant's webhook endpoints, and their delivery logs (the outbox rows
/// whose `target` they are).
#[async_trait]
pub trait WebhookStore: Send + Sync + 'static {
    async fn insert_webhook(&self, webhook: &crate::domain::webhook::Webhook) -> StoreResult<()>;
    /// The tenant's endpoints, oldest first.
    async fn webhooks(&self, tenant: TenantId)
        -> StoreResult<Vec<crate::domain::webhook::Webhook>>;
    async fn webhook(
        &self,
        tenant: TenantId,
        id: crate::domain::WebhookId,
    ) -> StoreResult<Option<crate::domain::webhook::Webhook>>;
    /// Saves url, events, enabled and paused reason; false when `tenant`
    /// has no such endpoint.
    async fn update_webhook(&self, webhook: &crate::domain::webhook::Webhook) -> StoreResult<bool>;
    /// Deletes the endpoint (its rows not sent yet are dropped when their
    /// turn comes); false when `tenant` has no such endpoint.
    async fn delete_webhook(
        &self,
        tenant: TenantId,
        id: crate::domain::WebhookId,
    ) -> StoreResult<bool>;
    /// Pauses an enabled endpoint (disabled, with `reason`); false when it
    /// was not enabled (paused or disabled already, or gone).
    async fn pause_webhook(
        &self,
        tenant: TenantId,
        id: crate::domain::WebhookId,
        reason: &str,
        at_ms: i64,
    ) -> StoreResult<bool>;
    /// The endpoint's deliveries, newest first, at most `limit`.
    async fn webhook_deliveries(
        &self,
        tenant: TenantId,
        id: crate::domain::WebhookId,
        limit: u32,
    ) -> StoreResult<Vec<crate::domain::webhook::WebhookDelivery>>;
    /// Sends a delivery of the endpoint again: a new row with the same
    /// payload (the same event id), due at `now_ms`, after the rows of its
    /// order key; `None` when `tenant`'s endpoint has no such delivery.
    async fn redeliver(
        &self,
        tenant: TenantId,
        id: crate::domain::WebhookId,
        delivery: Uuid,
        now_ms: i64,
    ) -> StoreResult<Option<Uuid>>;
}

/// Identified visitors (desk-api.md, "Support desk"): channels' identity
/// secrets, which visitor each conversation is of, blocked visitors.
#[async_trait]
pub trait IdentityStore: Send + Sync + 'static {
    /// The channel's identity secrets, `candidate` stored first when it has
    /// none yet (of concurrent first calls, one candidate is kept and all
    /// read it); `None` when the tenant has no such channel.
    async fn identity_secrets(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        candidate: &crate::domain::identity::IdentitySecrets,
    ) -> StoreResult<Option<crate::domain::identity::IdentitySecrets>>;
    /// Makes `secret` the channel's, the current one becoming the previous
    /// one as of `at_ms`; `None` when the tenant has no such secrets.
    async fn rotate_identity_secret(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        secret: &str,
        at_ms: i64,
    ) -> StoreResult<Option<crate::domain::identity::IdentitySecrets>>;
    /// Records which visitor a visitor conversation is of, once (a stored
    /// key stays).
    async fn set_conversation_visitor(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        key: &crate::domain::identity::VisitorKey,
        verified: bool,
    ) -> StoreResult<()>;
    /// The stored visitor key (`None`: not recorded) and verified flag of a
    /// visitor conversation of the channel; `None` when it has none.
    async fn conversation_visitor(
        &self,
        channel: ChannelId,
        conversation: ConversationId,
    ) -> StoreResult<Option<(Option<crate::domain::identity::VisitorKey>, bool)>>;
    /// The channel's conversations of the visitor `key`, and `also`
    /// whatever its key, newest first, at most `limit`.
    async fn visitor_conversations(
        &self,
        channel: ChannelId,
        key: &crate::domain::identity::VisitorKey,
        also: ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<(ConversationId, RoomState)>>;
    /// Blocks (or unblocks) the visitor `key` on a channel of the tenant,
    /// and marks its conversations so.
    async fn set_visitor_blocked(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        key: &crate::domain::identity::VisitorKey,
        blocked: bool,
        at_ms: i64,
    ) -> StoreResult<()>;
    async fn visitor_blocked(
        &self,
        channel: ChannelId,
        key: &crate::domain::identity::VisitorKey,
    ) -> StoreResult<bool>;
}

/// A side effect to perform (architecture.md, "Side effects that leave the
/// process"): an email now, webhook deliveries later.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewOutbox {
    /// Stable across retries: receivers deduplicate by it.
    pub id: Uuid,
    /// What the worker does with it (`crate::outbox::Kind`'s name).
    pub kind: String,
    pub tenant_id: TenantId,
    /// While a row with this key is unsent, a new one with the same key
    /// joins it instead of being added.
    pub dedupe_key: Option<String>,
    /// The kind's own JSON.
    pub payload: String,
    pub created_at_ms: i64,
    /// Not sent before.
    pub due_at_ms: i64,
    /// Rows with the same key are sent one after the other, in the order
    /// they were stored; a row not sent yet holds back the later rows of its
    /// key (a webhook endpoint and a conversation), and only those.
    pub order_key: Option<String>,
    /// What the row is delivered to (a webhook's id), for its delivery log.
    /// A row with a target and no `dedupe_key` written with a change
    /// (`MessageRows`, `RoomRows`, `PresenceRows`) goes to the webhook log
    /// on SQLite (`OutboxStore::webhook_log_tail`).
    pub target: Option<Uuid>,
}

impl NewOutbox {
    /// A row of `kind` for `tenant`, due at once, with no key, order or target.
    pub fn new(kind: &str, tenant_id: TenantId, payload: String, now_ms: i64) -> NewOutbox {
        NewOutbox {
            id: Uuid::now_v7(),
            kind: kind.to_string(),
            tenant_id,
            dedupe_key: None,
            payload,
            created_at_ms: now_ms,
            due_at_ms: now_ms,
            order_key: None,
            target: None,
        }
    }
}

/// Outbox rows a store method makes from a change as it made it (a message
/// with its seq, a room after its change), inside the change's own
/// transaction: the caller decides what the rows say, the store writes them
/// with the change or not at all.
pub struct RowsOf<T: ?Sized>(std::sync::Arc<MakeRows<T>>);

/// What makes a change's rows.
type MakeRows<T> = dyn Fn(&T) -> Vec<NewOutbox> + Send + Sync;

impl<T: ?Sized> RowsOf<T> {
    pub fn new(make: impl Fn(&T) -> Vec<NewOutbox> + Send + Sync + 'static) -> RowsOf<T> {
        RowsOf(std::sync::Arc::new(make))
    }

    pub fn rows(&self, of: &T) -> Vec<NewOutbox> {
        (self.0)(of)
    }
}

impl<T: ?Sized> Clone for RowsOf<T> {
    fn clone(&self) -> Self {
        RowsOf(self.0.clone())
    }
}

impl<T: ?Sized> std::fmt::Debug for RowsOf<T> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("RowsOf(..)")
    }
}

/// The rows a stored message sets off (its webhook events).
pub type MessageRows = RowsOf<Message>;
/// The rows a room's change sets off (its webhook events).
pub type RoomRows = RowsOf<Room>;
/// The rows an agent's presence change sets off.
pub type PresenceRows = RowsOf<crate::domain::AgentPresence>;

/// An outbox row as stored.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct OutboxRow {
    pub id: Uuid,
    pub kind: String,
    pub tenant_id: TenantId,
    pub dedupe_key: Option<String>,
    pub payload: String,
    pub created_at_ms: i64,
    pub due_at_ms: i64,
    /// Attempts that failed or succeeded (not postponements).
    pub attempts: i64,
    pub last_error: Option<String>,
    pub sent_at_ms: Option<i64>,
    pub dropped_at_ms: Option<i64>,
    pub order_key: Option<String>,
    pub target: Option<Uuid>,
}

/// Webhook events read from the log (`OutboxStore::webhook_log_tail`).
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct LogTail {
    /// The last position read (`None`: nothing new). Events dropped while
    /// waiting (their visitor erased) are read past but not returned.
    pub upto: Option<i64>,
    /// The events to deliver, in commit order.
    pub logged: Vec<Logged>,
    /// The order keys of `logged` with rows still to send in the outbox:
    /// their events go behind those, not to the receiver.
    pub held: std::collections::HashSet<String>,
}

/// An event of the webhook log, at its position.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Logged {
    pub pos: i64,
    pub row: OutboxRow,
}

/// The outcome of `enqueue_outbox`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Enqueued {
    Added,
    /// An unsent row had the same key; it stands for both (and, if a worker
    /// held it, runs once more after that worker is done).
    Joined,
}

/// What became of a claimed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum OutboxOutcome {
    /// Sent. If a request joined the row meanwhile, it runs again at
    /// `again_at_ms` instead. `emailed` is recorded in the same
    /// transaction (an offline email's mark).
    Sent {
        again_at_ms: i64,
        emailed: Option<Emailed>,
    },
    /// The attempt failed: counted, and tried again at `at_ms`.
    Retry { at_ms: i64, error: String },
    /// Not yet (nothing attempted): due again at `at_ms`.
    Later { at_ms: i64 },
    /// Given up for good (too many attempts, or nothing left to send).
    Dropped { error: String },
}

/// That a conversation's messages up to `seq` were emailed at `at_ms`
/// (recorded with the outbox row's outcome; never backwards).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Emailed {
    pub tenant: TenantId,
    pub conversation: ConversationId,
    pub seq: i64,
    pub at_ms: i64,
}

/// What became of one claimed row.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Finished {
    pub id: Uuid,
    pub outcome: OutboxOutcome,
    /// What the receiver answered, when the attempt reached one (webhooks).
    pub answer: Option<Answer>,
}

/// What a receiver answered an attempt (recorded in the delivery log).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Answer {
    /// The HTTP status, `None` when no answer came (refused, timed out).
    pub status: Option<u16>,
    pub duration_ms: i64,
}

/// What the email features know of a conversation's visitor.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct VisitorEmail {
    pub email: Option<String>,
    /// The page the visitor chatted from.
    pub url: Option<String>,
    /// The conversation's messages up to this seq were emailed.
    pub emailed_seq: i64,
    pub emailed_at_ms: Option<i64>,
    pub unsubscribed: bool,
    pub transcript_at_ms: Option<i64>,
}

/// A conversation of a channel, and the seq after which its pending
/// replies are wanted (`OutboxStore::pending_replies`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RepliesAfter {
    pub scope: VisitorScope,
    pub conversation: ConversationId,
    pub after_seq: i64,
}

/// The outcome of `request_transcript`.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TranscriptRequested {
    /// Recorded, with its outbox row, in one transaction.
    Queued,
    /// One was asked for less than the interval ago (nothing stored).
    TooSoon,
    /// The visitor gave no email (nothing stored).
    NoEmail,
}

/// The outbox, and the email state of visitors' conversations.
#[async_trait]
pub trait OutboxStore: Send + Sync + 'static {
    /// Adds a row, or joins the unsent row with the same `dedupe_key`.
    async fn enqueue_outbox(&self, row: &NewOutbox, now_ms: i64) -> StoreResult<Enqueued>;
    /// Claims up to `limit` due rows (unsent, not dropped, not claimed by a
    /// live lease) until `now_ms + lease_ms`, earliest due first. Concurrent
    /// claims on any number of instances never get the same row while its
    /// lease holds (`FOR UPDATE SKIP LOCKED` on PostgreSQL; the single
    /// writer on SQLite).
    async fn claim_outbox(
        &self,
        claim: Uuid,
        now_ms: i64,
        lease_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<OutboxRow>>;
    /// Records what became of rows claimed under `claim`, all in one
    /// transaction (a worker's round costs one commit, not one per row);
    /// per row, false (nothing changed) when the claim is no longer its
    /// own (its lease lapsed and another worker took it).
    async fn finish_outbox(
        &self,
        claim: Uuid,
        finished: &[Finished],
        now_ms: i64,
    ) -> StoreResult<Vec<bool>>;
    /// A retry to each of `targets` got through, so the receiver is back:
    /// its rows waiting for a retry after a failure of the receiver's own
    /// (no answer, a 5xx or a 429; not a refusal of that one row), and not
    /// claimed, become due at `now_ms`. How many did.
    async fn retry_targets_now(&self, targets: &[Uuid], now_ms: i64) -> StoreResult<u64>;
    /// Deletes up to `limit` rows sent or dropped before `before_ms`
    /// (oldest first); how many it deleted.
    async fn prune_outbox(&self, before_ms: i64, limit: u32) -> StoreResult<u64>;
    async fn outbox_row(&self, id: Uuid) -> StoreResult<Option<OutboxRow>>;
    /// The unsent row with this key, if any.
    async fn pending_outbox(&self, dedupe_key: &str) -> StoreResult<Option<OutboxRow>>;
    /// SQLite: up to `limit` of the webhook events the changes' commits
    /// appended to the log after its cursor, in commit order, read without
    /// the writer. PostgreSQL: none (its events are outbox rows, claimed
    /// by any instance).
    async fn webhook_log_tail(&self, limit: u32) -> StoreResult<LogTail>;
    /// Records a round of the log in one transaction: the events `finished`
    /// says were sent are marked sent (with the receiver's answer), those
    /// it dropped are marked dropped, the others (failed, postponed, held
    /// back, or with no outcome) become outbox rows with what was tried,
    /// in log order; the cursor moves to `upto`.
    async fn finish_webhook_log(
        &self,
        upto: i64,
        logged: &[Logged],
        finished: &[Finished],
        now_ms: i64,
    ) -> StoreResult<()>;
    /// The email state of a conversation of `tenant` (`None`: no context).
    async fn visitor_email(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<Option<VisitorEmail>> {
        Ok(self
            .visitor_emails(&[(tenant, conversation)])
            .await?
            .remove(&conversation))
    }
    /// The email states of several conversations, each of its tenant, in
    /// one read (an outbox round's); conversations without a context (or
    /// not of that tenant) are absent.
    async fn visitor_emails(
        &self,
        conversations: &[(TenantId, ConversationId)],
    ) -> StoreResult<HashMap<ConversationId, VisitorEmail>>;
    /// For each conversation, its agents' replies after `after_seq` still
    /// PENDING and not deleted, oldest first, at most `limit_each`: what an
    /// offline email would carry, for a whole outbox round in one read.
    async fn pending_replies(
        &self,
        wanted: &[RepliesAfter],
        limit_each: u32,
    ) -> StoreResult<HashMap<ConversationId, Vec<Message>>>;
    /// Stops the offline emails of a conversation; false when `tenant` has
    /// no such context.
    async fn unsubscribe_email(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<bool>;
    /// Records a transcript request and adds its outbox row in one
    /// transaction, unless the visitor gave no email or one was asked for
    /// after `now_ms - min_interval_ms`.
    async fn request_transcript(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        now_ms: i64,
        min_interval_ms: i64,
        row: &NewOutbox,
    ) -> StoreResult<TranscriptRequested>;
}

/// Data rights (desk-api.md, "Integrations"): whose conversations a
/// visitor's are, erasing them into anonymous shells, the tokens an
/// erasure ended, the audit log, a tenant's retention.
#[async_trait]
pub trait DataRightsStore: Send + Sync + 'static {
    /// The tenant's visitor conversations of the identified (verified)
    /// visitor `key`, on any of its channels, oldest first, at most `limit`.
    async fn identified_conversations(
        &self,
        tenant: TenantId,
        key: &crate::domain::identity::VisitorKey,
        limit: u32,
    ) -> StoreResult<Vec<ConversationId>>;
    /// Performs `erasure` in one transaction (see
    /// [`crate::domain::rights::Erasure`]): conversations of another
    /// tenant, unknown or already erased are skipped; each is erased once
    /// however many erasures race. The files' bytes are the caller's to
    /// remove after it returns. A conversation it closes (queued or open
    /// before) gets the rows `then` makes of its room, in the same
    /// transaction (its `conversation.closed` webhook events).
    async fn erase_conversations(
        &self,
        erasure: &crate::domain::rights::Erasure,
        then: Option<RoomRows>,
    ) -> StoreResult<crate::domain::rights::Erased>;
    /// When an erasure last ended the visitor tokens of the channel that
    /// any of `key_hashes` names (see `domain::rights::token_erasure_keys`).
    async fn visitor_erased_at(
        &self,
        channel: ChannelId,
        key_hashes: &[String],
    ) -> StoreResult<Option<i64>>;
    async fn insert_audit_entry(
        &self,
        entry: &crate::domain::rights::AuditEntry,
    ) -> StoreResult<()>;
    /// The tenant's audit log, newest first.
    async fn audit_entries(
        &self,
        tenant: TenantId,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Page<crate::domain::rights::AuditEntry>>;
    async fn tenant_settings(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Option<crate::domain::rights::TenantSettings>>;
    /// Sets (or, `None`, turns off) the tenant's retention; false when
    /// there is no such tenant.
    async fn set_retention(
        &self,
        tenant: TenantId,
        retention: Option<crate::domain::rights::RetentionDays>,
    ) -> StoreResult<bool>;
    /// Visitor conversations of every tenant with a retention, closed for
    /// longer than it at `now_ms` and not erased yet, longest closed first,
    /// at most `limit`.
    async fn expired_conversations(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<(TenantId, ConversationId)>>;
}

/// What visitors' pages tell agents about them.
#[async_trait]
pub trait VisitorStore: Send + Sync + 'static {
    /// Records what is known of the visitor of `conversation`: the fields
    /// `context` has replace the stored ones, the others stay.
    async fn save_visitor_context(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        context: &VisitorContext,
        at_ms: i64,
    ) -> StoreResult<()>;
    async fn visitor_context(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<Option<VisitorContext>>;
    /// Deletes the contexts of conversations that never got a message and
    /// were last updated before `before_ms`; how many.
    async fn delete_unused_visitor_contexts(&self, before_ms: i64) -> StoreResult<u64>;
    /// The names visitors gave, for those of `conversations` that gave one.
    async fn visitor_names(
        &self,
        tenant: TenantId,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<(ConversationId, String)>>;
}

/// Which visitor conversations a report covers: the tenant's, started in
/// `[from_ms, to_ms)`, of one channel and assigned to one agent when given.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ReportScope {
    pub tenant: TenantId,
    pub from_ms: i64,
    pub to_ms: i64,
    pub channel: Option<ChannelId>,
    pub agent: Option<AgentId>,
}

/// Reports (see `domain::report`): the facts of the conversations in a
/// scope, read from one index (`conversations_reports`), never from messages.
#[async_trait]
pub trait ReportStore: Send + Sync + 'static {
    /// The facts of the conversations of `scope`, oldest first, at most
    /// `limit`.
    async fn report_facts(
        &self,
        scope: &ReportScope,
        limit: u32,
    ) -> StoreResult<Vec<crate::domain::report::ConversationFacts>>;
}

/// Opens the store named by a database URL: `postgres://` or `postgresql://`
/// selects PostgreSQL; anything else (a file path or `sqlite://...`) SQLite.
pub async fn open(url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    open_with(url, postgres::DEFAULT_ACQUIRE_TIMEOUT).await
}

/// `open`, with how long a PostgreSQL caller waits for a connection before
/// the store answers "unavailable" (`CHATGATE_DATABASE_ACQUIRE_TIMEOUT_MS`).
pub async fn open_with(
    url: &str,
    acquire_timeout: std::time::Duration,
) -> StoreResult<std::sync::Arc<dyn Store>> {
    if is_postgres_url(url) {
        Ok(std::sync::Arc::new(
            PgStore::open_with(url, acquire_timeout).await?,
        ))
    } else {
        Ok(std::sync::Arc::new(SqliteStore::open(url).await?))
    }
}

fn is_postgres_url(url: &str) -> bool {
    // Schemes are case-insensitive (RFC 3986); a file path never contains "://".
    url.split_once("://").is_some_and(|(scheme, _)| {
        scheme.eq_ignore_ascii_case("postgres") || scheme.eq_ignore_ascii_case("postgresql")
    })
}

#[cfg(test)]
mod tests {
    use super::is_postgres_url;

    #[test]
    fn postgres_schemes_select_postgres_and_everything_else_sqlite() {
        assert!(is_postgres_url("postgres://u@h/db"));
        assert!(is_postgres_url("postgresql://u@h:5432/db?sslmode=require"));
        assert!(is_postgres_url("POSTGRES://u@h/db"));
        assert!(!is_postgres_url("sqlite://chatgate.db"));
        assert!(!is_postgres_url("chatgate.db"));
        assert!(!is_postgres_url("/var/lib/postgres/chatgate.db"));
    }
}
