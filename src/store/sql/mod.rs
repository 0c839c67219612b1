//! The SQL of every store, written once. Both backends use `$N` placeholders,
//! TEXT ids, BIGINT milliseconds and 0/1 flags, so the same statements and the
//! same row decoding serve SQLite and PostgreSQL; `sql_store!` instantiates
//! them for a concrete sqlx database. Connection setup, the one thing that
//! truly differs, lives in each backend's own file.

use std::str::FromStr;

use uuid::Uuid;

use super::{StoreError, StoreResult};

pub(super) mod agents;
pub(super) mod channels;
pub(super) mod messages;
pub(super) mod reactions;
pub(super) mod rooms;
pub(super) mod settings;
pub(super) mod visitors;
use crate::domain::{DeliveryState, OriginPattern, Role, SenderKind};

pub(super) const MESSAGE_COLUMNS: &str =
    "id, conversation_id, channel_id, seq, sender_kind, sender_id, \
     sender_name, sender_avatar, content, state, sent_at, client_message_id, \
     tenant_id, read_at, edited_at, deleted";
/// The columns a new message is inserted with (`MESSAGE_COLUMNS` up to
/// `tenant_id`, and its search text).
pub(super) const INSERT_COLUMNS: &str =
    "id, conversation_id, channel_id, seq, sender_kind, sender_id, \
     sender_name, sender_avatar, content, state, sent_at, client_message_id, \
     tenant_id, search_text";
/// `MESSAGE_COLUMNS` of the messages table aliased `m`.
pub(super) const M_COLUMNS: &str =
    "m.id, m.conversation_id, m.channel_id, m.seq, m.sender_kind, m.sender_id, \
     m.sender_name, m.sender_avatar, m.content, m.state, m.sent_at, m.client_message_id, \
     m.tenant_id, m.read_at, m.edited_at, m.deleted";
pub(super) const CHANNEL_COLUMNS: &str =
    "id, tenant_id, name, image_url, allowed_origins, connected, created_at, \
     welcome_message, color, assignment, max_open_per_agent";
pub(super) const AGENT_COLUMNS: &str =
    "id, tenant_id, email, display_name, avatar_url, role, password_hash, disabled";
pub(super) const ROOM_COLUMNS: &str =
    "id, tenant_id, kind, channel_id, name, state, assignee_id, created_at, queued_at, last_seq";

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
    Role::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("bad role `{raw}`")))
}

pub(super) fn parse_origins(raw: &str) -> StoreResult<Vec<OriginPattern>> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("bad origins: {e}")))
}

pub(super) fn parse_assignment(raw: &str) -> StoreResult<crate::domain::Assignment> {
    crate::domain::Assignment::parse(raw)
        .ok_or_else(|| StoreError::Corrupt(format!("bad assignment {raw:?}")))
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
pub(super) fn member_key(members: &[crate::domain::Member]) -> String {
    let mut ids: Vec<String> = members.iter().map(|m| m.id.to_string()).collect();
    ids.sort();
    ids.join(",")
}

/// Implements `Store` for `$store` (which has `read` and `write` pools of `$db`).
/// `lock_rows` is the start of a `SELECT ... FOR UPDATE` on conversations for
/// backends with row locks (PostgreSQL), `None` where a single writer
/// serializes anyway (SQLite); `params` is its bind-parameter syntax.
macro_rules! sql_store {
    ($store:ty, $db:ty, lock_rows: $lock_rows:expr, params: $params:expr) => {
        impl $store {
            fn bind_all<'q>(
                mut query: sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>>,
                binds: &'q [$crate::store::sql::Bind],
            ) -> sqlx::query::Query<'q, $db, <$db as sqlx::Database>::Arguments<'q>> {
                for bind in binds {
                    query = match bind {
                        $crate::store::sql::Bind::S(s) => query.bind(s.as_str()),
                        $crate::store::sql::Bind::I(i) => query.bind(*i),
                    };
                }
                query
            }

            async fn count(
                pool: &sqlx::Pool<$db>,
                sql: &str,
                binds: &[$crate::store::sql::Bind],
            ) -> $crate::store::StoreResult<i64> {
                use sqlx::Row;
                let row = Self::bind_all(sqlx::query(sql), binds).fetch_one(pool).await?;
                Ok(row.try_get::<i64, _>(0)?)
            }
        }

        $crate::store::sql::settings::settings_sql!($store, $db);
        $crate::store::sql::agents::agents_sql!($store, $db);
        $crate::store::sql::channels::channels_sql!($store, $db);
        $crate::store::sql::messages::messages_sql!($store, $db, lock_rows: $lock_rows, params: $params);
        $crate::store::sql::rooms::rooms_sql!($store, $db, locks: $lock_rows.is_some());
        $crate::store::sql::reactions::reactions_sql!($store, $db, locks: $lock_rows.is_some());
        $crate::store::sql::visitors::visitors_sql!($store, $db);
    };
}

pub(super) use sql_store;

/// A conversation's row as a batch append reserved its seqs.
pub(crate) struct Reserved {
    pub last_seq: i64,
    pub state: String,
    pub tenant: String,
    /// `None` for agent rooms.
    pub channel: Option<String>,
}

impl Reserved {
    /// Whether `message` belongs in this room: same tenant, and the same
    /// channel (so a visitor room's message never lands in an agent room,
    /// nor an agent room's in a visitor room).
    /// Compared as text, formatted on the stack: this runs for every
    /// message of every batch.
    pub fn admits(&self, message: &crate::store::NewMessage) -> bool {
        let mut buf = uuid::Uuid::encode_buffer();
        if self.tenant.as_str() != message.tenant_id.0.hyphenated().encode_lower(&mut buf) {
            return false;
        }
        match (&self.channel, message.channel_id) {
            (Some(stored), Some(channel)) => {
                stored.as_str() == channel.0.hyphenated().encode_lower(&mut buf)
            }
            (None, None) => true,
            _ => false,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::seqs_between;

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
