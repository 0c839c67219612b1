//! The SQL of every store, written once. Both backends use `$N` placeholders,
//! TEXT ids, BIGINT milliseconds and 0/1 flags, so the same statements and the
//! same row decoding serve SQLite and PostgreSQL. Each area file holds plain
//! methods of [`Sql`], generic over a [`Backend`] (the sqlx database and the
//! little that differs: row locks, parameter syntax); `sql_store!` only
//! forwards the store traits to them. Connection setup lives in each
//! backend's own file.

use std::str::FromStr;

use sqlx::query::Query;
use sqlx::{ColumnIndex, Database, Decode, Encode, Executor, IntoArguments, Pool, Type};
use uuid::Uuid;

use super::batch::Params;
use super::{StoreError, StoreResult};

pub(super) mod agents;
pub(super) mod append;
pub(super) mod applications;
pub(super) mod attachments;
pub(super) mod canned;
pub(super) mod channels;
pub(super) mod identity;
pub(super) mod labels;
pub(super) mod lane;
pub(super) mod messages;
pub(super) mod outbox;
pub(super) mod reactions;
pub(super) mod reports;
pub(super) mod rights;
pub(super) mod rooms;
pub(super) mod settings;
pub(super) mod visitors;
pub(super) mod webhook_log;
pub(super) mod webhooks;

/// A DELIVERED mark waiting for its batch: the message, its tenant, and
/// what rows its change makes.
pub(crate) type DeliveredMark = (
    crate::domain::MessageId,
    crate::domain::TenantId,
    Option<crate::store::MessageRows>,
);
use crate::domain::{DeliveryState, OriginPattern, Role, SenderKind};

pub(super) const MESSAGE_COLUMNS: &str =
    "id, conversation_id, channel_id, seq, sender_kind, sender_id, \
     sender_name, sender_avatar, content, state, sent_at, client_message_id, \
     tenant_id, read_at, edited_at, deleted, notice, quick_replies, postback, mentions, \
     attachments, sender_bot";
/// The columns a new message is inserted with (`MESSAGE_COLUMNS` up to
/// `tenant_id`, its search text, its notice, quick replies, postback,
/// mentions, attachments and bot marker).
pub(super) const INSERT_COLUMNS: &str =
    "id, conversation_id, channel_id, seq, sender_kind, sender_id, \
     sender_name, sender_avatar, content, state, sent_at, client_message_id, \
     tenant_id, search_text, notice, quick_replies, postback, mentions, attachments, sender_bot";
/// How many columns `INSERT_COLUMNS` lists (the parameters of one row).
pub(super) const INSERT_COLUMN_COUNT: usize = 20;
/// `MESSAGE_COLUMNS` of the messages table aliased `m`.
pub(super) const M_COLUMNS: &str =
    "m.id, m.conversation_id, m.channel_id, m.seq, m.sender_kind, m.sender_id, \
     m.sender_name, m.sender_avatar, m.content, m.state, m.sent_at, m.client_message_id, \
     m.tenant_id, m.read_at, m.edited_at, m.deleted, m.notice, m.quick_replies, m.postback, m.mentions, \
     m.attachments, m.sender_bot";
pub(super) const CHANNEL_COLUMNS: &str =
    "id, tenant_id, name, image_url, allowed_origins, connected, created_at, \
     welcome_message, color, assignment, max_open_per_agent, \
     business_hours, away_message, prechat, auto_close_hours, email_fallback, bot_id";
pub(super) const AGENT_COLUMNS: &str =
    "id, tenant_id, email, display_name, avatar_url, role, password_hash, disabled";
pub(super) const ROOM_COLUMNS: &str =
    "id, tenant_id, kind, channel_id, name, state, assignee_id, created_at, queued_at, last_seq, \
     rating, rating_comment, rated_at, prechat, verified, blocked";
/// How many columns `ROOM_COLUMNS` lists: what a query reads after them starts there.
pub(super) const ROOM_COLUMN_COUNT: usize = 16;
/// `AGENT_COLUMNS` of the agents table aliased `a`.
pub(super) const AGENT_COLUMNS_OF_A: &str =
    "a.id, a.tenant_id, a.email, a.display_name, a.avatar_url, a.role, a.password_hash, a.disabled";
/// `ROOM_COLUMNS` of the conversations table aliased `r`.
pub(super) const ROOM_COLUMNS_OF_R: &str =
    "r.id, r.tenant_id, r.kind, r.channel_id, r.name, r.state, r.assignee_id, \
     r.created_at, r.queued_at, r.last_seq, r.rating, r.rating_comment, r.rated_at, r.prechat, \
     r.verified, r.blocked";
/// `ROOM_COLUMNS` qualified by `conversations.` (for a join).
pub(super) const ROOM_COLUMNS_OF_CONVERSATIONS: &str =
    "conversations.id, conversations.tenant_id, conversations.kind, conversations.channel_id, \
     conversations.name, conversations.state, conversations.assignee_id, conversations.created_at, \
     conversations.queued_at, conversations.last_seq, conversations.rating, \
     conversations.rating_comment, conversations.rated_at, conversations.prechat, \
     conversations.verified, conversations.blocked";

pub(super) fn parse_id<T: FromStr>(raw: &str) -> StoreResult<T> {
    raw.parse()
        .map_err(|_| StoreError::Corrupt(format!("bad id `{raw}`")))
}

pub(super) fn parse_uuid(raw: &str) -> StoreResult<Uuid> {
    parse_id(raw)
}

pub(super) fn parse_kind(raw: &str) -> StoreResult<SenderKind> {
    SenderKind::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("bad sender kind `{raw}`")))
}

pub(super) fn parse_state(raw: &str) -> StoreResult<DeliveryState> {
    DeliveryState::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("bad state `{raw}`")))
}

pub(super) fn parse_room_state(raw: &str) -> StoreResult<crate::domain::RoomState> {
    crate::domain::RoomState::parse(raw)
        .ok_or_else(|| StoreError::Corrupt(format!("bad room state `{raw}`")))
}

pub(super) fn parse_room_kind(raw: &str) -> StoreResult<crate::domain::RoomKind> {
    crate::domain::RoomKind::parse(raw)
        .ok_or_else(|| StoreError::Corrupt(format!("bad room kind `{raw}`")))
}

pub(super) fn parse_role(raw: &str) -> StoreResult<Role> {
    Role::parse_stored(raw).ok_or_else(|| StoreError::Corrupt(format!("bad role `{raw}`")))
}

pub(super) fn parse_origins(raw: &str) -> StoreResult<Vec<OriginPattern>> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("bad origins: {e}")))
}

pub(super) fn parse_assignment(raw: &str) -> StoreResult<crate::domain::Assignment> {
    crate::domain::Assignment::parse(raw)
        .ok_or_else(|| StoreError::Corrupt(format!("bad assignment {raw:?}")))
}

/// A channel's desk settings from their columns (JSON for the schedule and the form).
pub(super) fn parse_desk(
    business_hours: Option<String>,
    away_message: Option<String>,
    prechat: Option<String>,
    auto_close_hours: Option<i64>,
) -> StoreResult<crate::domain::ChannelDesk> {
    let corrupt = |what: &str| StoreError::Corrupt(format!("bad {what}"));
    Ok(crate::domain::ChannelDesk {
        business_hours: business_hours
            .map(|raw| {
                serde_json::from_str::<serde_json::Value>(&raw)
                    .ok()
                    .and_then(|v| crate::domain::BusinessHours::parse(&v).ok())
                    .ok_or_else(|| corrupt("business_hours"))
            })
            .transpose()?,
        away_message,
        prechat: match prechat {
            Some(raw) => serde_json::from_str::<serde_json::Value>(&raw)
                .ok()
                .and_then(|v| crate::domain::PrechatForm::parse(&v).ok())
                .ok_or_else(|| corrupt("prechat"))?,
            None => Default::default(),
        },
        auto_close_hours: auto_close_hours
            .map(|h| u32::try_from(h).map_err(|_| corrupt("auto_close_hours")))
            .transpose()?,
    })
}

/// The desk settings' columns as stored: (business_hours, prechat).
pub(super) fn encode_desk(desk: &crate::domain::ChannelDesk) -> (Option<String>, Option<String>) {
    (
        desk.business_hours
            .as_ref()
            .map(|h| h.to_json().to_string()),
        desk.prechat
            .is_on()
            .then(|| desk.prechat.to_json().to_string()),
    )
}

pub(super) fn encode_origins(origins: &[OriginPattern]) -> String {
    let raw: Vec<&str> = origins.iter().map(OriginPattern::as_str).collect();
    serde_json::to_string(&raw).unwrap_or_else(|_| "[]".into())
}

/// A bind parameter of a statement built at run time.
#[derive(Debug, Clone)]
pub(super) enum Bind {
    S(String),
    I(i64),
}

/// A `WHERE` clause built at run time, with numbered parameters.
pub(super) struct Filter {
    pub binds: Vec<Bind>,
    wheres: Vec<String>,
}

impl Filter {
    /// Starts with parameters `$1..` already used by the caller's conditions.
    pub fn new(binds: Vec<Bind>) -> Filter {
        Filter {
            binds,
            wheres: Vec::new(),
        }
    }

    pub fn push_where(&mut self, condition: &str) {
        self.wheres.push(condition.to_string());
    }

    /// `<prefix>$n` with a new parameter.
    pub fn add(&mut self, prefix: &str, bind: Bind) {
        self.binds.push(bind);
        self.wheres.push(format!("{prefix}${}", self.binds.len()));
    }

    /// Appends `suffix` to the last condition (one that `add` left open).
    pub fn close_last(&mut self, suffix: &str) {
        if let Some(last) = self.wheres.last_mut() {
            last.push_str(suffix);
        }
    }

    /// `column LIKE $n ESCAPE '\'`.
    pub fn add_like(&mut self, column: &str, pattern: &str) {
        self.binds.push(Bind::S(pattern.to_string()));
        self.wheres
            .push(format!("{column} LIKE ${} ESCAPE '\\'", self.binds.len()));
    }

    pub fn clause(&self) -> String {
        if self.wheres.is_empty() {
            "1 = 1".into()
        } else {
            self.wheres.join(" AND ")
        }
    }
}

/// How many of the seqs `1..=last` are above `after` and below `before`.
pub(super) fn seqs_between(last: i64, after: Option<i64>, before: Option<i64>) -> i64 {
    let low = after.map_or(1, |a| a.saturating_add(1)).max(1);
    let high = before.map_or(last, |b| b.saturating_sub(1)).min(last);
    high.saturating_sub(low).saturating_add(1).max(0)
}

/// Sorted member ids: two agent rooms with the same members share this key.
/// Past `MEMBER_KEY_BYTES` (27 members) it is their SHA-256 instead: a
/// unique index entry must fit in a third of a PostgreSQL page (2,704
/// bytes), and 100 members' ids take 3,699. Shorter keys stay as they
/// were, so rooms created before keep matching.
pub(super) fn member_key(members: &[crate::domain::Member]) -> String {
    use sha2::Digest;
    let mut ids: Vec<String> = members.iter().map(|m| m.id.to_string()).collect();
    ids.sort();
    let key = ids.join(",");
    if key.len() <= MEMBER_KEY_BYTES {
        return key;
    }
    let digest = sha2::Sha256::digest(key.as_bytes());
    let hex: String = digest.iter().map(|b| format!("{b:02x}")).collect();
    format!("sha256:{hex}")
}

/// The longest member key stored as the ids themselves.
const MEMBER_KEY_BYTES: usize = 1000;

/// The stored form of a message's mentions: comma-separated uuids, `NULL`
/// for none.
pub(super) fn encode_mentions(mentions: &[Uuid]) -> Option<String> {
    if mentions.is_empty() {
        return None;
    }
    let ids: Vec<String> = mentions.iter().map(Uuid::to_string).collect();
    Some(ids.join(","))
}

pub(super) fn parse_mentions(raw: Option<&str>) -> StoreResult<Vec<Uuid>> {
    match raw {
        None | Some("") => Ok(Vec::new()),
        Some(list) => list.split(',').map(parse_uuid).collect(),
    }
}

/// What differs between the backends in the shared SQL, and the sqlx
/// database it runs on. Everything else is written once, in the area files,
/// as methods of [`Sql`].
pub(crate) trait Backend:
    Database<QueryResult: RowsAffected> + sqlx::database::HasStatementCache
{
    /// The start of a `SELECT ... FOR UPDATE` on conversations, for backends
    /// with row locks (PostgreSQL); `None` where a single writer serializes
    /// anyway (SQLite).
    const LOCK_ROWS: Option<&'static str>;
    /// The bind-parameter syntax of the generated batch statements.
    const PARAMS: Params;
    /// Whether writers must take row locks (`FOR UPDATE`) to serialize.
    const LOCKS: bool = Self::LOCK_ROWS.is_some();
    /// A conversation's agents as one comma-separated text, in joining
    /// order (`NULL` when it has none), for a statement on `conversations`;
    /// an application's id is marked `app:<id>`.
    const MEMBERS: &'static str;
    /// The members' ids alone, for the group commit (the audience of a
    /// message: no join on its path).
    const MEMBER_IDS: &'static str;
    /// A conversation's labels as one JSON list of `{"uuid", "name",
    /// "color"}` by name (`NULL` or `[]` when it has none), for a statement
    /// on `conversations`.
    const LABELS: &'static str;
    /// Whether an agent's session check (read on every agent API call)
    /// runs on the write connection rather than a reader. On SQLite: a
    /// reader's page cache is dropped whenever another connection has
    /// committed, so under write load every check re-read its pages from
    /// the OS (15 `pread`s each); the writer's cache is always current.
    const SESSIONS_ON_WRITER: bool;
    /// An outbox row's place in insertion order (the order rows of one
    /// `order_key` are sent in).
    const OUTBOX_POS: &'static str;
    /// A statement that serializes outbox claims between instances for the
    /// claim's transaction (so two claims never split one order key's rows
    /// between them); `None` where a single writer serializes anyway.
    const CLAIM_LOCK: Option<&'static str>;
    /// Whether the webhook events of a change go to the index-less
    /// `webhook_log` (read by position, one instance) rather than the
    /// outbox (claimed by any instance).
    const WEBHOOK_LOG: bool;
    /// Whether a hot statement whose best plan depends on a table's size
    /// is planned on each run rather than prepared once per connection.
    /// PostgreSQL keeps a prepared statement's generic plan for the
    /// connection's life once it is chosen, and on a new database it is
    /// chosen while the tables are nearly empty: a sequential scan, which
    /// it goes on using as the table grows until autovacuum first analyzes
    /// it (in `chatgate-bench agents`, every DELIVERED mark read all the
    /// messages: 4.3 million rows in 5 s). SQLite plans from its indexes,
    /// not from sizes it has not been told (no `ANALYZE` here).
    const PLAN_EACH_RUN: bool;
}

impl Backend for sqlx::Sqlite {
    const LOCK_ROWS: Option<&'static str> = None;
    const PARAMS: Params = Params::Anonymous;
    const MEMBERS: &'static str =
        "(SELECT group_concat(CASE WHEN ma.role = 'application' THEN 'app:' ELSE '' END || rm.member_id, \
         ',' ORDER BY rm.joined_at, rm.member_id) \
         FROM room_members rm LEFT JOIN agents ma ON ma.id = rm.member_id \
         WHERE rm.room_id = conversations.id)";
    const MEMBER_IDS: &'static str =
        "(SELECT group_concat(member_id, ',' ORDER BY joined_at, member_id) \
         FROM room_members WHERE room_id = conversations.id)";
    const LABELS: &'static str =
        "(SELECT json_group_array(json_object('uuid', l.id, 'name', l.name, 'color', l.color) \
         ORDER BY l.name_key, l.id) \
         FROM room_labels rl JOIN labels l ON l.id = rl.label_id WHERE rl.room_id = conversations.id)";
    const SESSIONS_ON_WRITER: bool = true;
    const OUTBOX_POS: &'static str = "rowid";
    const CLAIM_LOCK: Option<&'static str> = None;
    const WEBHOOK_LOG: bool = true;
    const PLAN_EACH_RUN: bool = false;
}

impl Backend for sqlx::Postgres {
    const LOCK_ROWS: Option<&'static str> = Some("SELECT id FROM conversations WHERE id");
    const PARAMS: Params = Params::Numbered;
    const MEMBERS: &'static str =
        "(SELECT string_agg(CASE WHEN ma.role = 'application' THEN 'app:' ELSE '' END || rm.member_id, \
         ',' ORDER BY rm.joined_at, rm.member_id) \
         FROM room_members rm LEFT JOIN agents ma ON ma.id = rm.member_id \
         WHERE rm.room_id = conversations.id)";
    const MEMBER_IDS: &'static str =
        "(SELECT string_agg(member_id, ',' ORDER BY joined_at, member_id) \
         FROM room_members WHERE room_id = conversations.id)";
    const LABELS: &'static str =
        "(SELECT json_agg(json_build_object('uuid', l.id, 'name', l.name, 'color', l.color) \
         ORDER BY l.name_key, l.id)::text \
         FROM room_labels rl JOIN labels l ON l.id = rl.label_id WHERE rl.room_id = conversations.id)";
    const SESSIONS_ON_WRITER: bool = false;
    const OUTBOX_POS: &'static str = "pos";
    // Any constant key of our own: only outbox claims take it.
    const CLAIM_LOCK: Option<&'static str> = Some("SELECT pg_advisory_xact_lock(7216001)");
    const WEBHOOK_LOG: bool = false;
    const PLAN_EACH_RUN: bool = true;
}

/// How many rows a statement changed: each backend's query result has it as
/// an inherent method, which generic code cannot name.
pub(crate) trait RowsAffected {
    fn rows_affected(&self) -> u64;
}

impl RowsAffected for sqlx::sqlite::SqliteQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::sqlite::SqliteQueryResult::rows_affected(self)
    }
}

impl RowsAffected for sqlx::postgres::PgQueryResult {
    fn rows_affected(&self) -> u64 {
        sqlx::postgres::PgQueryResult::rows_affected(self)
    }
}

/// The pools a store's SQL runs on. Each area file adds its methods in an
/// `impl<DB: Backend> Sql<DB>` block with the same `where` clause (the sqlx
/// bounds the shared statements need, which Rust does not carry over from a
/// trait's own `where` clause); SQLite and PostgreSQL satisfy them.
pub(crate) struct Sql<DB: Database> {
    pub(crate) read: Pool<DB>,
    pub(crate) write: Pool<DB>,
}

impl<DB: Backend> Sql<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> String: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> &'q str: Type<DB> + Encode<'q, DB>,
    for<'q> i64: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> bool: Type<DB> + Decode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB>,
{
    pub(crate) fn bind_all<'q>(
        mut query: Query<'q, DB, DB::Arguments<'q>>,
        binds: &'q [Bind],
    ) -> Query<'q, DB, DB::Arguments<'q>> {
        for bind in binds {
            query = match bind {
                Bind::S(s) => query.bind(s.as_str()),
                Bind::I(i) => query.bind(*i),
            };
        }
        query
    }

    pub(crate) async fn count(pool: &Pool<DB>, sql: &str, binds: &[Bind]) -> StoreResult<i64> {
        use sqlx::Row;
        let row = Self::bind_all(sqlx::query(sql), binds)
            .fetch_one(pool)
            .await?;
        Ok(row.try_get::<i64, _>(0)?)
    }
}

/// Implements every store trait for `$store` (which has `sql: Sql<_>`, the
/// group-commit `appender`, which also writes the DELIVERED marks) by forwarding each
/// method to its function in the area files: the only code written per
/// backend, and nothing but forwarding.
macro_rules! sql_store {
    ($store:ty) => {
        const _: () = {
            use crate::domain::{
                Agent, AgentId, Channel, ChannelId, ConversationId, Message, MessageId, Reaction,
                Room, RoomId, RoomState, RoomSummary, SessionId, TenantId, VisitorContext,
            };
            use crate::store::{
                batch, Added, AgentChanges, AgentLoad, AgentStore, Answered, Appended, Assigned,
                Bootstrap, ChannelStore, ConversationLookup, MessageQuery, MessageStore,
                NewMessage, Page, Pick, Queued, ReactionAdded, ReactionStore, RoomStore,
                SettingsStore, StoreResult, VisitorScope, VisitorStore,
            };
            use uuid::Uuid;

            #[async_trait::async_trait]
            impl SettingsStore for $store {
                async fn ping(&self) -> StoreResult<()> {
                    self.sql.ping().await
                }
                async fn setting(&self, key: &str, candidate: &str) -> StoreResult<String> {
                    self.sql.setting(key, candidate).await
                }
                async fn bootstrap(&self, first: &Bootstrap) -> StoreResult<bool> {
                    self.sql.bootstrap(first).await
                }
                async fn insert_tenant(
                    &self,
                    id: TenantId,
                    name: &str,
                    admin: &Agent,
                ) -> StoreResult<()> {
                    self.sql.insert_tenant(id, name, admin).await
                }
            }
            #[async_trait::async_trait]
            impl AgentStore for $store {
                async fn agent_by_email(&self, email: &str) -> StoreResult<Option<Agent>> {
                    self.sql.agent_by_email(email).await
                }
                async fn agent(&self, tenant: TenantId, id: AgentId) -> StoreResult<Option<Agent>> {
                    self.sql.agent(tenant, id).await
                }
                async fn agents(&self, tenant: TenantId) -> StoreResult<Vec<Agent>> {
                    self.sql.agents(tenant).await
                }
                async fn insert_agent(&self, agent: &Agent) -> StoreResult<Added<()>> {
                    self.sql.insert_agent(agent).await
                }
                async fn update_agent(
                    &self,
                    tenant: TenantId,
                    id: AgentId,
                    changes: &AgentChanges,
                ) -> StoreResult<Option<Agent>> {
                    self.sql.update_agent(tenant, id, changes).await
                }
                async fn delete_agent(&self, tenant: TenantId, id: AgentId) -> StoreResult<bool> {
                    self.sql.delete_agent(tenant, id).await
                }
                async fn set_password(
                    &self,
                    email: &str,
                    password_hash: &str,
                ) -> StoreResult<Option<Agent>> {
                    self.sql.set_password(email, password_hash).await
                }
                async fn create_session(
                    &self,
                    id: SessionId,
                    agent: AgentId,
                    expires_at_ms: i64,
                ) -> StoreResult<()> {
                    self.sql.create_session(id, agent, expires_at_ms).await
                }
                async fn session_agent(
                    &self,
                    id: SessionId,
                    now_ms: i64,
                ) -> StoreResult<Option<Agent>> {
                    self.sql.session_agent(id, now_ms).await
                }
                async fn session_agent_and_room(
                    &self,
                    id: SessionId,
                    now_ms: i64,
                    room: RoomId,
                ) -> StoreResult<Option<(Agent, Option<Room>)>> {
                    self.sql.session_agent_and_room(id, now_ms, room).await
                }
                async fn revoke_session(&self, id: SessionId) -> StoreResult<bool> {
                    self.sql.revoke_session(id).await
                }
                async fn revoke_agent_sessions(
                    &self,
                    tenant: TenantId,
                    agent: AgentId,
                ) -> StoreResult<u64> {
                    self.sql.revoke_agent_sessions(tenant, agent).await
                }
                async fn presences(
                    &self,
                    tenant: TenantId,
                    ids: &[AgentId],
                ) -> StoreResult<Vec<crate::domain::AgentPresence>> {
                    self.sql.presences(tenant, ids).await
                }
                async fn set_presence(
                    &self,
                    tenant: TenantId,
                    id: AgentId,
                    state: crate::domain::PresenceState,
                    status: Option<&str>,
                    at_ms: i64,
                    then: Option<crate::store::PresenceRows>,
                ) -> StoreResult<Option<crate::domain::AgentPresence>> {
                    self.sql
                        .set_presence(tenant, id, state, status, at_ms, then)
                        .await
                }
            }
            #[async_trait::async_trait]
            impl ChannelStore for $store {
                async fn insert_channel(&self, channel: &Channel) -> StoreResult<()> {
                    self.sql.insert_channel(channel).await
                }
                async fn channel(
                    &self,
                    tenant: TenantId,
                    id: ChannelId,
                ) -> StoreResult<Option<Channel>> {
                    self.sql.channel(tenant, id).await
                }
                async fn public_channel(&self, id: ChannelId) -> StoreResult<Option<Channel>> {
                    self.sql.public_channel(id).await
                }
                async fn channels(&self, tenant: TenantId) -> StoreResult<Vec<Channel>> {
                    self.sql.channels(tenant).await
                }
                async fn update_channel(&self, channel: &Channel) -> StoreResult<()> {
                    self.sql.update_channel(channel).await
                }
            }
            #[async_trait::async_trait]
            impl MessageStore for $store {
                async fn conversation(
                    &self,
                    scope: VisitorScope,
                    id: ConversationId,
                ) -> StoreResult<ConversationLookup> {
                    self.sql.conversation(scope, id).await
                }
                async fn append_message(&self, message: NewMessage) -> StoreResult<Appended> {
                    self.appender.append(Queued::new(message)).await?.await
                }
                async fn append_message_with(
                    &self,
                    message: NewMessage,
                    outbox: Vec<crate::store::NewOutbox>,
                    then: Option<crate::store::MessageRows>,
                ) -> StoreResult<Appended> {
                    self.appender
                        .append(Queued::with(message, outbox, then))
                        .await?
                        .await
                }
                async fn enqueue_append(
                    &self,
                    message: NewMessage,
                    then: Option<crate::store::MessageRows>,
                    opening: Option<crate::store::Opening>,
                ) -> StoreResult<batch::PendingAppend> {
                    let mut queued = Queued::with(message, Vec::new(), then);
                    queued.opening = opening.map(Box::new);
                    self.appender.append(queued).await
                }
                fn batch_fallbacks(&self) -> u64 {
                    self.appender.fallbacks()
                }
                async fn messages_after(
                    &self,
                    scope: VisitorScope,
                    conversation: ConversationId,
                    after_seq: i64,
                    limit: u32,
                ) -> StoreResult<Vec<Message>> {
                    self.sql
                        .messages_after(scope, conversation, after_seq, limit)
                        .await
                }
                async fn history(
                    &self,
                    scope: VisitorScope,
                    conversation: ConversationId,
                    limit: u32,
                ) -> StoreResult<Vec<Message>> {
                    self.sql.history(scope, conversation, limit).await
                }
                async fn add_note(
                    &self,
                    note: crate::store::NewNote,
                    then: Option<crate::store::MessageRows>,
                ) -> StoreResult<Option<Message>> {
                    self.sql.add_note(note, then).await
                }
                async fn room_messages(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    query: &MessageQuery,
                ) -> StoreResult<Page<Message>> {
                    self.sql.room_messages(tenant, room, query).await
                }
                async fn search_messages(
                    &self,
                    tenant: TenantId,
                    member: Uuid,
                    query: &MessageQuery,
                    distinct_rooms: bool,
                ) -> StoreResult<Page<Message>> {
                    self.sql
                        .search_messages(tenant, member, query, distinct_rooms)
                        .await
                }
                async fn message(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    id: MessageId,
                ) -> StoreResult<Option<Message>> {
                    self.sql.message(tenant, room, id).await
                }
                async fn edit_message(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    id: MessageId,
                    content: Option<&str>,
                    at_ms: i64,
                    then: Option<crate::store::MessageRows>,
                ) -> StoreResult<Option<Message>> {
                    self.sql
                        .edit_message(tenant, room, id, content, at_ms, then)
                        .await
                }
                async fn mark_delivered(
                    &self,
                    tenant: TenantId,
                    id: MessageId,
                    then: Option<crate::store::MessageRows>,
                ) -> StoreResult<Option<Message>> {
                    self.appender.deliver((id, tenant, then)).await
                }
                async fn fail_pending(
                    &self,
                    tenant: TenantId,
                    channel: ChannelId,
                ) -> StoreResult<Vec<Message>> {
                    self.sql.fail_pending(tenant, channel).await
                }
                async fn visitor_read(
                    &self,
                    tenant: TenantId,
                    conversation: ConversationId,
                    up_to_seq: i64,
                    at_ms: i64,
                    then: Option<crate::store::MessageRows>,
                ) -> StoreResult<u64> {
                    self.sql
                        .visitor_read(tenant, conversation, up_to_seq, at_ms, then)
                        .await
                }
            }
            #[async_trait::async_trait]
            impl RoomStore for $store {
                async fn create_agent_room(&self, room: &Room) -> StoreResult<Added<Room>> {
                    self.sql.create_agent_room(room).await
                }
                async fn room(&self, tenant: TenantId, id: RoomId) -> StoreResult<Option<Room>> {
                    self.sql.room(tenant, id).await
                }
                async fn member_rooms(
                    &self,
                    tenant: TenantId,
                    member: Uuid,
                    with: &[Uuid],
                    filter: &$crate::store::RoomFilter,
                    limit: u32,
                    offset: u32,
                ) -> StoreResult<Page<RoomSummary>> {
                    self.sql
                        .member_rooms(tenant, member, with, filter, limit, offset)
                        .await
                }
                async fn visitor_rooms(
                    &self,
                    tenant: TenantId,
                    reader: Uuid,
                    filter: &$crate::store::RoomFilter,
                    limit: u32,
                    offset: u32,
                ) -> StoreResult<Page<RoomSummary>> {
                    self.sql
                        .visitor_rooms(tenant, reader, filter, limit, offset)
                        .await
                }
                async fn queue(
                    &self,
                    tenant: TenantId,
                    channel: Option<ChannelId>,
                ) -> StoreResult<Vec<RoomSummary>> {
                    self.sql.queue(tenant, channel).await
                }
                async fn queued_rooms(
                    &self,
                    tenant: TenantId,
                    limit: u32,
                ) -> StoreResult<Vec<(RoomId, ChannelId)>> {
                    self.sql.queued_rooms(tenant, limit).await
                }
                async fn answer(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    agent: AgentId,
                    at_ms: i64,
                    then: Option<crate::store::RoomRows>,
                ) -> StoreResult<Answered> {
                    self.sql.answer(tenant, room, agent, at_ms, then).await
                }
                async fn assign_many(
                    &self,
                    tenant: TenantId,
                    picks: &[Pick],
                    at_ms: i64,
                    then: Option<crate::store::RoomRows>,
                ) -> StoreResult<Vec<Assigned>> {
                    self.sql.assign_many(tenant, picks, at_ms, then).await
                }
                async fn agent_loads(&self, tenant: TenantId) -> StoreResult<Vec<AgentLoad>> {
                    self.sql.agent_loads(tenant).await
                }
                async fn transfer(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    from: AgentId,
                    to: AgentId,
                    at_ms: i64,
                    then: Option<crate::store::RoomRows>,
                ) -> StoreResult<Option<Room>> {
                    self.sql.transfer(tenant, room, from, to, at_ms, then).await
                }
                async fn add_member(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    member: AgentId,
                    max_members: usize,
                    at_ms: i64,
                ) -> StoreResult<crate::store::MemberAdded> {
                    self.sql
                        .add_member(tenant, room, member, max_members, at_ms)
                        .await
                }
                async fn remove_member(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    member: AgentId,
                ) -> StoreResult<Option<Room>> {
                    self.sql.remove_member(tenant, room, member).await
                }
                async fn set_room_state(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    from: Option<RoomState>,
                    state: RoomState,
                    at_ms: i64,
                    then: Option<crate::store::RoomRows>,
                ) -> StoreResult<Option<Room>> {
                    self.sql
                        .set_room_state(tenant, room, from, state, at_ms, then)
                        .await
                }
                async fn mark_away_sent(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                ) -> StoreResult<bool> {
                    self.sql.mark_away_sent(tenant, room).await
                }
                async fn idle_rooms(
                    &self,
                    now_ms: i64,
                    limit: u32,
                ) -> StoreResult<Vec<(TenantId, RoomId)>> {
                    self.sql.idle_rooms(now_ms, limit).await
                }
                async fn close_idle_room(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    now_ms: i64,
                    then: Option<crate::store::RoomRows>,
                ) -> StoreResult<Option<(Room, RoomState)>> {
                    self.sql.close_idle_room(tenant, room, now_ms, then).await
                }
                async fn rate_room(
                    &self,
                    tenant: TenantId,
                    channel: crate::domain::ChannelId,
                    room: RoomId,
                    rating: &crate::domain::Rating,
                    then: Option<crate::store::RoomRows>,
                ) -> StoreResult<crate::store::Rated> {
                    self.sql
                        .rate_room(tenant, channel, room, rating, then)
                        .await
                }
                async fn mark_read(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    member: Uuid,
                    up_to_seq: Option<i64>,
                ) -> StoreResult<i64> {
                    self.sql.mark_read(tenant, room, member, up_to_seq).await
                }
                async fn agents_read_up_to(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                ) -> StoreResult<i64> {
                    self.sql.agents_read_up_to(tenant, room).await
                }
                async fn unread_count(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    member: Uuid,
                ) -> StoreResult<i64> {
                    self.sql.unread_count(tenant, room, member).await
                }
            }
            #[async_trait::async_trait]
            impl crate::store::AttachmentStore for $store {
                async fn insert_attachment(
                    &self,
                    attachment: &crate::domain::Attachment,
                ) -> StoreResult<()> {
                    self.sql.insert_attachment(attachment).await
                }
                async fn attachment(
                    &self,
                    tenant: TenantId,
                    id: crate::domain::AttachmentId,
                ) -> StoreResult<Option<crate::domain::Attachment>> {
                    self.sql.attachment(Some(tenant), id).await
                }
                async fn attachment_by_id(
                    &self,
                    id: crate::domain::AttachmentId,
                ) -> StoreResult<Option<crate::domain::Attachment>> {
                    self.sql.attachment(None, id).await
                }
                async fn unsent_attachments(
                    &self,
                    before_ms: i64,
                    limit: u32,
                ) -> StoreResult<Vec<crate::domain::AttachmentId>> {
                    self.sql.unsent_attachments(before_ms, limit).await
                }
                async fn delete_unsent_attachment(
                    &self,
                    id: crate::domain::AttachmentId,
                    before_ms: i64,
                ) -> StoreResult<bool> {
                    self.sql.delete_unsent_attachment(id, before_ms).await
                }
                async fn claim_attachments(
                    &self,
                    tenant: TenantId,
                    conversation: crate::domain::ConversationId,
                    uploader: (crate::domain::SenderKind, Uuid),
                    ids: &[crate::domain::AttachmentId],
                    message: MessageId,
                    at_ms: i64,
                ) -> StoreResult<Vec<crate::domain::Attachment>> {
                    self.sql
                        .claim_attachments(tenant, conversation, uploader, ids, message, at_ms)
                        .await
                }
                async fn release_attachments(&self, message: MessageId) -> StoreResult<()> {
                    self.sql.release_attachments(message).await
                }
                async fn delete_message_attachments(
                    &self,
                    tenant: TenantId,
                    message: MessageId,
                ) -> StoreResult<Vec<crate::domain::AttachmentId>> {
                    self.sql.delete_message_attachments(tenant, message).await
                }
            }
            #[async_trait::async_trait]
            impl crate::store::LabelStore for $store {
                async fn labels(&self, tenant: TenantId) -> StoreResult<Vec<crate::domain::Label>> {
                    self.sql.labels(tenant).await
                }
                async fn label(
                    &self,
                    tenant: TenantId,
                    id: crate::domain::LabelId,
                ) -> StoreResult<Option<crate::domain::Label>> {
                    self.sql.label(tenant, id).await
                }
                async fn insert_label(
                    &self,
                    label: &crate::domain::Label,
                    at_ms: i64,
                ) -> StoreResult<crate::store::LabelChange> {
                    self.sql.insert_label(label, at_ms).await
                }
                async fn update_label(
                    &self,
                    label: &crate::domain::Label,
                ) -> StoreResult<crate::store::LabelChange> {
                    self.sql.update_label(label).await
                }
                async fn delete_label(
                    &self,
                    tenant: TenantId,
                    id: crate::domain::LabelId,
                ) -> StoreResult<bool> {
                    self.sql.delete_label(tenant, id).await
                }
                async fn label_rooms(
                    &self,
                    tenant: TenantId,
                    id: crate::domain::LabelId,
                    limit: u32,
                ) -> StoreResult<Vec<RoomId>> {
                    self.sql.label_rooms(tenant, id, limit).await
                }
                async fn set_room_labels(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    labels: &[crate::domain::LabelId],
                ) -> StoreResult<crate::store::RoomLabelsSet> {
                    self.sql.set_room_labels(tenant, room, labels).await
                }
            }
            #[async_trait::async_trait]
            impl crate::store::CannedResponseStore for $store {
                async fn insert_canned_response(
                    &self,
                    canned: &crate::domain::CannedResponse,
                ) -> StoreResult<crate::store::CannedSaved> {
                    self.sql.insert_canned_response(canned).await
                }
                async fn update_canned_response(
                    &self,
                    canned: &crate::domain::CannedResponse,
                ) -> StoreResult<crate::store::CannedSaved> {
                    self.sql.update_canned_response(canned).await
                }
                async fn canned_response(
                    &self,
                    tenant: TenantId,
                    id: crate::domain::CannedResponseId,
                ) -> StoreResult<Option<crate::domain::CannedResponse>> {
                    self.sql.canned_response(tenant, id).await
                }
                async fn canned_responses(
                    &self,
                    tenant: TenantId,
                    search: Option<&str>,
                    prefix: Option<&str>,
                    limit: u32,
                    offset: u32,
                ) -> StoreResult<Page<crate::domain::CannedResponse>> {
                    self.sql
                        .canned_responses(tenant, search, prefix, limit, offset)
                        .await
                }
                async fn delete_canned_response(
                    &self,
                    tenant: TenantId,
                    id: crate::domain::CannedResponseId,
                ) -> StoreResult<bool> {
                    self.sql.delete_canned_response(tenant, id).await
                }
            }
            #[async_trait::async_trait]
            impl ReactionStore for $store {
                async fn add_reaction(
                    &self,
                    tenant: TenantId,
                    message: MessageId,
                    user: Uuid,
                    emoji: &str,
                    at_ms: i64,
                    max_per_user: u32,
                ) -> StoreResult<ReactionAdded> {
                    self.sql
                        .add_reaction(tenant, message, user, emoji, at_ms, max_per_user)
                        .await
                }
                async fn remove_reaction(
                    &self,
                    tenant: TenantId,
                    message: MessageId,
                    user: Uuid,
                    emoji: &str,
                ) -> StoreResult<bool> {
                    self.sql.remove_reaction(tenant, message, user, emoji).await
                }
                async fn reactions(
                    &self,
                    tenant: TenantId,
                    message: MessageId,
                ) -> StoreResult<Vec<Reaction>> {
                    self.sql.reactions(tenant, message).await
                }
            }
            #[async_trait::async_trait]
            impl VisitorStore for $store {
                async fn save_visitor_context(
                    &self,
                    tenant: TenantId,
                    conversation: ConversationId,
                    context: &VisitorContext,
                    at_ms: i64,
                ) -> StoreResult<()> {
                    self.sql
                        .save_visitor_context(tenant, conversation, context, at_ms)
                        .await
                }
                async fn visitor_context(
                    &self,
                    tenant: TenantId,
                    conversation: ConversationId,
                ) -> StoreResult<Option<VisitorContext>> {
                    self.sql.visitor_context(tenant, conversation).await
                }
                async fn delete_unused_visitor_contexts(&self, before_ms: i64) -> StoreResult<u64> {
                    self.sql.delete_unused_visitor_contexts(before_ms).await
                }
                async fn visitor_names(
                    &self,
                    tenant: TenantId,
                    conversations: &[ConversationId],
                ) -> StoreResult<Vec<(ConversationId, String)>> {
                    self.sql.visitor_names(tenant, conversations).await
                }
            }
            #[async_trait::async_trait]
            impl crate::store::IdentityStore for $store {
                async fn identity_secrets(
                    &self,
                    tenant: TenantId,
                    channel: crate::domain::ChannelId,
                    candidate: &crate::domain::identity::IdentitySecrets,
                ) -> StoreResult<Option<crate::domain::identity::IdentitySecrets>> {
                    self.sql.identity_secrets(tenant, channel, candidate).await
                }
                async fn rotate_identity_secret(
                    &self,
                    tenant: TenantId,
                    channel: crate::domain::ChannelId,
                    secret: &str,
                    at_ms: i64,
                ) -> StoreResult<Option<crate::domain::identity::IdentitySecrets>> {
                    self.sql
                        .rotate_identity_secret(tenant, channel, secret, at_ms)
                        .await
                }
                async fn set_conversation_visitor(
                    &self,
                    tenant: TenantId,
                    conversation: ConversationId,
                    key: &crate::domain::identity::VisitorKey,
                    verified: bool,
                ) -> StoreResult<()> {
                    self.sql
                        .set_conversation_visitor(tenant, conversation, key, verified)
                        .await
                }
                async fn conversation_visitor(
                    &self,
                    channel: crate::domain::ChannelId,
                    conversation: ConversationId,
                ) -> StoreResult<Option<(Option<crate::domain::identity::VisitorKey>, bool)>>
                {
                    self.sql.conversation_visitor(channel, conversation).await
                }
                async fn visitor_conversations(
                    &self,
                    channel: crate::domain::ChannelId,
                    key: &crate::domain::identity::VisitorKey,
                    also: ConversationId,
                    limit: u32,
                ) -> StoreResult<Vec<(ConversationId, RoomState)>> {
                    self.sql
                        .visitor_conversations(channel, key, also, limit)
                        .await
                }
                async fn set_visitor_blocked(
                    &self,
                    tenant: TenantId,
                    channel: crate::domain::ChannelId,
                    key: &crate::domain::identity::VisitorKey,
                    blocked: bool,
                    at_ms: i64,
                ) -> StoreResult<()> {
                    self.sql
                        .set_visitor_blocked(tenant, channel, key, blocked, at_ms)
                        .await
                }
                async fn visitor_blocked(
                    &self,
                    channel: crate::domain::ChannelId,
                    key: &crate::domain::identity::VisitorKey,
                ) -> StoreResult<bool> {
                    self.sql.visitor_blocked(channel, key).await
                }
            }

            #[async_trait::async_trait]
            impl crate::store::DataRightsStore for $store {
                async fn identified_conversations(
                    &self,
                    tenant: TenantId,
                    key: &crate::domain::identity::VisitorKey,
                    limit: u32,
                ) -> StoreResult<Vec<ConversationId>> {
                    self.sql.identified_conversations(tenant, key, limit).await
                }
                async fn erase_conversations(
                    &self,
                    erasure: &crate::domain::rights::Erasure,
                    then: Option<crate::store::RoomRows>,
                ) -> StoreResult<crate::domain::rights::Erased> {
                    self.sql.erase_conversations(erasure, then).await
                }
                async fn visitor_erased_at(
                    &self,
                    channel: ChannelId,
                    key_hashes: &[String],
                ) -> StoreResult<Option<i64>> {
                    self.sql.visitor_erased_at(channel, key_hashes).await
                }
                async fn insert_audit_entry(
                    &self,
                    entry: &crate::domain::rights::AuditEntry,
                ) -> StoreResult<()> {
                    self.sql.insert_audit_entry(entry).await
                }
                async fn audit_entries(
                    &self,
                    tenant: TenantId,
                    limit: u32,
                    offset: u32,
                ) -> StoreResult<Page<crate::domain::rights::AuditEntry>> {
                    self.sql.audit_entries(tenant, limit, offset).await
                }
                async fn tenant_settings(
                    &self,
                    tenant: TenantId,
                ) -> StoreResult<Option<crate::domain::rights::TenantSettings>> {
                    self.sql.tenant_settings(tenant).await
                }
                async fn set_retention(
                    &self,
                    tenant: TenantId,
                    retention: Option<crate::domain::rights::RetentionDays>,
                ) -> StoreResult<bool> {
                    self.sql.set_retention(tenant, retention).await
                }
                async fn expired_conversations(
                    &self,
                    now_ms: i64,
                    limit: u32,
                ) -> StoreResult<Vec<(TenantId, ConversationId)>> {
                    self.sql.expired_conversations(now_ms, limit).await
                }
            }

            #[async_trait::async_trait]
            impl crate::store::ApplicationStore for $store {
                async fn insert_application(
                    &self,
                    application: &crate::domain::application::Application,
                    agent: &Agent,
                    token_hash: &str,
                ) -> StoreResult<()> {
                    self.sql
                        .insert_application(application, agent, token_hash)
                        .await
                }
                async fn applications(
                    &self,
                    tenant: TenantId,
                ) -> StoreResult<Vec<crate::domain::application::Application>> {
                    self.sql.applications(tenant).await
                }
                async fn application(
                    &self,
                    tenant: TenantId,
                    id: AgentId,
                ) -> StoreResult<Option<crate::domain::application::Application>> {
                    self.sql.application(tenant, id).await
                }
                async fn application_by_token(
                    &self,
                    hash: &str,
                ) -> StoreResult<Option<(crate::domain::application::Application, Agent)>> {
                    self.sql.application_by_token(hash).await
                }
                async fn revoke_application(
                    &self,
                    tenant: TenantId,
                    id: AgentId,
                    at_ms: i64,
                ) -> StoreResult<Option<crate::domain::application::Application>> {
                    self.sql.revoke_application(tenant, id, at_ms).await
                }
                async fn open_rooms_of(
                    &self,
                    tenant: TenantId,
                    member: AgentId,
                ) -> StoreResult<Vec<RoomId>> {
                    self.sql.open_rooms_of(tenant, member).await
                }
                async fn requeue(
                    &self,
                    tenant: TenantId,
                    room: RoomId,
                    member: AgentId,
                    at_ms: i64,
                    then: Option<crate::store::RoomRows>,
                ) -> StoreResult<Option<Room>> {
                    self.sql.requeue(tenant, room, member, at_ms, then).await
                }
            }

            #[async_trait::async_trait]
            impl crate::store::ReportStore for $store {
                async fn report_facts(
                    &self,
                    scope: &crate::store::ReportScope,
                    limit: u32,
                ) -> StoreResult<Vec<crate::domain::report::ConversationFacts>> {
                    self.sql.report_facts(scope, limit).await
                }
            }

            #[async_trait::async_trait]
            impl crate::store::WebhookStore for $store {
                async fn insert_webhook(
                    &self,
                    webhook: &crate::domain::webhook::Webhook,
                ) -> StoreResult<()> {
                    self.sql.insert_webhook(webhook).await
                }
                async fn webhooks(
                    &self,
                    tenant: TenantId,
                ) -> StoreResult<Vec<crate::domain::webhook::Webhook>> {
                    self.sql.webhooks(tenant).await
                }
                async fn webhook(
                    &self,
                    tenant: TenantId,
                    id: crate::domain::WebhookId,
                ) -> StoreResult<Option<crate::domain::webhook::Webhook>> {
                    self.sql.webhook(tenant, id).await
                }
                async fn update_webhook(
                    &self,
                    webhook: &crate::domain::webhook::Webhook,
                ) -> StoreResult<bool> {
                    self.sql.update_webhook(webhook).await
                }
                async fn delete_webhook(
                    &self,
                    tenant: TenantId,
                    id: crate::domain::WebhookId,
                ) -> StoreResult<bool> {
                    self.sql.delete_webhook(tenant, id).await
                }
                async fn pause_webhook(
                    &self,
                    tenant: TenantId,
                    id: crate::domain::WebhookId,
                    reason: &str,
                    at_ms: i64,
                ) -> StoreResult<bool> {
                    self.sql.pause_webhook(tenant, id, reason, at_ms).await
                }
                async fn webhook_deliveries(
                    &self,
                    tenant: TenantId,
                    id: crate::domain::WebhookId,
                    limit: u32,
                ) -> StoreResult<Vec<crate::domain::webhook::WebhookDelivery>> {
                    self.sql.webhook_deliveries(tenant, id, limit).await
                }
                async fn redeliver(
                    &self,
                    tenant: TenantId,
                    id: crate::domain::WebhookId,
                    delivery: Uuid,
                    now_ms: i64,
                ) -> StoreResult<Option<Uuid>> {
                    self.sql.redeliver(tenant, id, delivery, now_ms).await
                }
            }
            #[async_trait::async_trait]
            impl crate::store::OutboxStore for $store {
                async fn enqueue_outbox(
                    &self,
                    row: &crate::store::NewOutbox,
                    now_ms: i64,
                ) -> StoreResult<crate::store::Enqueued> {
                    self.sql.enqueue_outbox(row, now_ms).await
                }
                async fn claim_outbox(
                    &self,
                    claim: Uuid,
                    now_ms: i64,
                    lease_ms: i64,
                    limit: u32,
                ) -> StoreResult<Vec<crate::store::OutboxRow>> {
                    self.sql.claim_outbox(claim, now_ms, lease_ms, limit).await
                }
                async fn finish_outbox(
                    &self,
                    claim: Uuid,
                    finished: &[crate::store::Finished],
                    now_ms: i64,
                ) -> StoreResult<Vec<bool>> {
                    self.sql.finish_outbox(claim, finished, now_ms).await
                }
                async fn prune_outbox(&self, before_ms: i64, limit: u32) -> StoreResult<u64> {
                    self.sql.prune_outbox(before_ms, limit).await
                }
                async fn retry_targets_now(
                    &self,
                    targets: &[Uuid],
                    now_ms: i64,
                ) -> StoreResult<u64> {
                    self.sql.retry_targets_now(targets, now_ms).await
                }
                async fn webhook_log_tail(&self, limit: u32) -> StoreResult<crate::store::LogTail> {
                    self.sql.webhook_log_tail(limit).await
                }
                async fn finish_webhook_log(
                    &self,
                    upto: i64,
                    logged: &[crate::store::Logged],
                    finished: &[crate::store::Finished],
                    now_ms: i64,
                ) -> StoreResult<()> {
                    self.sql
                        .finish_webhook_log(upto, logged, finished, now_ms)
                        .await
                }
                async fn outbox_row(
                    &self,
                    id: Uuid,
                ) -> StoreResult<Option<crate::store::OutboxRow>> {
                    self.sql.outbox_row(id).await
                }
                async fn pending_outbox(
                    &self,
                    dedupe_key: &str,
                ) -> StoreResult<Option<crate::store::OutboxRow>> {
                    self.sql.pending_outbox(dedupe_key).await
                }
                async fn visitor_emails(
                    &self,
                    conversations: &[(TenantId, ConversationId)],
                ) -> StoreResult<
                    std::collections::HashMap<ConversationId, crate::store::VisitorEmail>,
                > {
                    self.sql.visitor_emails(conversations).await
                }
                async fn pending_replies(
                    &self,
                    wanted: &[crate::store::RepliesAfter],
                    limit_each: u32,
                ) -> StoreResult<std::collections::HashMap<ConversationId, Vec<Message>>> {
                    self.sql.pending_replies(wanted, limit_each).await
                }
                async fn unsubscribe_email(
                    &self,
                    tenant: TenantId,
                    conversation: ConversationId,
                ) -> StoreResult<bool> {
                    self.sql.unsubscribe_email(tenant, conversation).await
                }
                async fn request_transcript(
                    &self,
                    tenant: TenantId,
                    conversation: ConversationId,
                    now_ms: i64,
                    min_interval_ms: i64,
                    row: &crate::store::NewOutbox,
                ) -> StoreResult<crate::store::TranscriptRequested> {
                    self.sql
                        .request_transcript(tenant, conversation, now_ms, min_interval_ms, row)
                        .await
                }
            }
        };
    };
}

pub(super) use sql_store;

#[cfg(test)]
mod tests {
    use uuid::Uuid;

    use super::{
        member_key, seqs_between, AGENT_COLUMNS, AGENT_COLUMNS_OF_A, INSERT_COLUMNS,
        INSERT_COLUMN_COUNT, MEMBER_KEY_BYTES, MESSAGE_COLUMNS, M_COLUMNS, ROOM_COLUMNS,
        ROOM_COLUMNS_OF_CONVERSATIONS, ROOM_COLUMNS_OF_R, ROOM_COLUMN_COUNT,
    };

    #[test]
    fn qualified_column_lists_match_their_tables_lists() {
        let qualified = |prefix: &str, columns: &str| -> Vec<String> {
            columns
                .split(',')
                .map(|c| format!("{prefix}.{}", c.trim()))
                .collect()
        };
        let listed = |columns: &str| -> Vec<String> {
            columns.split(',').map(|c| c.trim().to_string()).collect()
        };
        assert_eq!(listed(AGENT_COLUMNS_OF_A), qualified("a", AGENT_COLUMNS));
        assert_eq!(listed(M_COLUMNS), qualified("m", MESSAGE_COLUMNS));
        assert_eq!(listed(INSERT_COLUMNS).len(), INSERT_COLUMN_COUNT);
        // A row decodes its notice from the column after `deleted`.
        assert_eq!(listed(MESSAGE_COLUMNS)[16], "notice");
        // ... and its quick replies and postback from the two after it.
        assert_eq!(listed(MESSAGE_COLUMNS)[17], "quick_replies");
        assert_eq!(listed(MESSAGE_COLUMNS)[18], "postback");
        assert_eq!(listed(MESSAGE_COLUMNS)[19], "mentions");
        assert_eq!(listed(MESSAGE_COLUMNS)[20], "attachments");
        assert_eq!(
            listed(ROOM_COLUMNS_OF_CONVERSATIONS),
            qualified("conversations", ROOM_COLUMNS)
        );
        assert_eq!(listed(ROOM_COLUMNS_OF_R), qualified("r", ROOM_COLUMNS));
        assert_eq!(listed(ROOM_COLUMNS).len(), ROOM_COLUMN_COUNT);
    }

    #[test]
    fn member_keys_are_the_sorted_ids_or_their_digest_when_long() {
        let members = |n: u128| -> Vec<crate::domain::Member> {
            (1..=n)
                .rev()
                .map(|i| crate::domain::Member {
                    id: Uuid::from_u128(i),
                    kind: crate::domain::RoomKind::Agent,
                })
                .collect()
        };
        let two = member_key(&members(2));
        assert_eq!(
            two,
            format!("{},{}", Uuid::from_u128(1), Uuid::from_u128(2))
        );
        let key = member_key(&members(27));
        assert!(key.len() <= MEMBER_KEY_BYTES && !key.starts_with("sha256:"));
        for n in [28, 100] {
            let key = member_key(&members(n));
            assert_eq!(key.len(), 7 + 64, "{key}");
            assert!(key.starts_with("sha256:"));
            let mut shuffled = members(n);
            shuffled.reverse();
            assert_eq!(member_key(&shuffled), key);
        }
        assert_ne!(member_key(&members(100)), member_key(&members(99)));
    }

    #[test]
    fn seqs_between_counts_the_seqs_inside_the_bounds() {
        assert_eq!(seqs_between(10, None, None), 10);
        assert_eq!(seqs_between(10, None, Some(5)), 4);
        assert_eq!(seqs_between(10, Some(5), None), 5);
        assert_eq!(seqs_between(10, Some(2), Some(5)), 2);
        assert_eq!(seqs_between(10, Some(5), Some(5)), 0);
        assert_eq!(seqs_between(10, Some(20), None), 0);
        assert_eq!(seqs_between(10, None, Some(100)), 10);
        assert_eq!(seqs_between(10, Some(-3), Some(0)), 0);
        assert_eq!(seqs_between(0, None, None), 0);
        assert_eq!(seqs_between(10, Some(i64::MAX), Some(i64::MIN)), 0);
    }
}
