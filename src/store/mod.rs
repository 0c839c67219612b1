//! Persistence. `Store` is the one interface to durable state; `SqliteStore`
//! (the embedded default) and `PgStore` (several instances, one database)
//! implement it with the same SQL, written once in [`sql`]. All SQL lives
//! under this module.
//!
//! Guarantees every implementation keeps:
//! - `append_message` assigns the conversation's next `seq` and stores the
//!   message in one transaction; `seq` is 1, 2, 3... without gaps or duplicates,
//!   even with concurrent writers on several instances.
//! - A `client_message_id` seen before in the same conversation returns the
//!   first message and stores nothing.

use async_trait::async_trait;

use crate::domain::{
    Agent, AgentId, Channel, ChannelId, Conversation, ConversationId, DeliveryState, Message,
    MessageId, SenderKind, SessionId, TenantId,
};

pub mod batch;
pub mod postgres;
mod sql;
pub mod sqlite;

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
}

pub type StoreResult<T> = Result<T, StoreError>;

/// A message to be stored; `seq` is assigned by the store.
#[derive(Debug, Clone)]
pub struct NewMessage {
    pub id: MessageId,
    pub conversation_id: ConversationId,
    pub channel_id: ChannelId,
    pub tenant_id: TenantId,
    pub sender_kind: SenderKind,
    pub sender_id: uuid::Uuid,
    pub sender_name: Option<String>,
    pub sender_avatar: Option<String>,
    pub content: String,
    pub state: DeliveryState,
    pub sent_at_ms: i64,
    pub client_message_id: Option<String>,
}

/// The outcome of `append_message`.
#[derive(Debug, Clone)]
pub struct Appended {
    pub message: Message,
    /// False when an earlier message with the same `client_message_id` was returned.
    pub created: bool,
}

/// What the first start creates, in one transaction.
#[derive(Debug, Clone)]
pub struct Bootstrap {
    pub tenant_id: TenantId,
    pub tenant_name: String,
    pub admin: Agent,
    pub channel: Channel,
}

#[async_trait]
pub trait Store: Send + Sync + 'static {
    /// Cheap round trip, for readiness checks.
    async fn ping(&self) -> StoreResult<()>;

    /// The token-signing secret: `candidate` is stored if none is yet, and the
    /// stored one is returned (so every instance and restart agrees).
    async fn jwt_secret(&self, candidate: &str) -> StoreResult<String>;

    /// Creates the first tenant, admin and channel unless a tenant exists;
    /// returns whether it did.
    async fn bootstrap(&self, first: &Bootstrap) -> StoreResult<bool>;

    async fn agent_by_email(&self, email: &str) -> StoreResult<Option<Agent>>;
    async fn agent(&self, id: AgentId) -> StoreResult<Option<Agent>>;
    /// Returns false when no agent has this email.
    async fn set_password(&self, email: &str, password_hash: &str) -> StoreResult<bool>;

    async fn create_session(
        &self,
        id: SessionId,
        agent: AgentId,
        expires_at_ms: i64,
    ) -> StoreResult<()>;
    /// True when the session exists, is not revoked and has not expired.
    async fn session_active(&self, id: SessionId, now_ms: i64) -> StoreResult<bool>;
    /// Returns false when there was no such active session.
    async fn revoke_session(&self, id: SessionId) -> StoreResult<bool>;

    async fn insert_channel(&self, channel: &Channel) -> StoreResult<()>;
    async fn channel(&self, id: ChannelId) -> StoreResult<Option<Channel>>;
    /// A tenant's channels, oldest first.
    async fn channels(&self, tenant: TenantId) -> StoreResult<Vec<Channel>>;
    /// Saves name, image, origins and connected flag.
    async fn update_channel(&self, channel: &Channel) -> StoreResult<()>;

    /// A conversation exists once its first message is stored.
    async fn conversation(&self, id: ConversationId) -> StoreResult<Option<Conversation>>;

    async fn append_message(&self, message: NewMessage) -> StoreResult<Appended>;
    /// Queues an append and returns the future of its result, so a caller
    /// can queue several in order without waiting for each to commit.
    async fn enqueue_append(&self, message: NewMessage) -> StoreResult<batch::PendingAppend>;
    /// How many group commits failed as a whole and were stored message by
    /// message instead (each message then succeeds or fails alone). Rare in
    /// a healthy deployment: a steady rise points at a bug or a sick database.
    fn batch_fallbacks(&self) -> u64;
    /// Messages with `seq > after_seq`, oldest first, at most `limit`.
    async fn messages_after(
        &self,
        conversation: ConversationId,
        after_seq: i64,
        limit: u32,
    ) -> StoreResult<Vec<Message>>;
    /// The last `limit` messages, oldest first.
    async fn history(&self, conversation: ConversationId, limit: u32) -> StoreResult<Vec<Message>>;
}

/// Opens the store named by a database URL: `postgres://` or `postgresql://`
/// selects PostgreSQL; anything else (a file path or `sqlite://...`) SQLite.
pub async fn open(url: &str) -> StoreResult<std::sync::Arc<dyn Store>> {
    if is_postgres_url(url) {
        Ok(std::sync::Arc::new(PgStore::open(url).await?))
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
