//! The SQL of every store, written once. Both backends use `$N` placeholders,
//! TEXT ids, BIGINT milliseconds and 0/1 flags, so the same statements and the
//! same row decoding serve SQLite and PostgreSQL; `sql_store!` instantiates
//! them for a concrete sqlx database. Connection setup, the one thing that
//! truly differs, lives in each backend's own file.

use std::str::FromStr;

use uuid::Uuid;

use super::{StoreError, StoreResult};
use crate::domain::{DeliveryState, OriginPattern, Role, SenderKind};

pub(super) const MESSAGE_COLUMNS: &str =
    "id, conversation_id, channel_id, seq, sender_kind, sender_id, \
     sender_name, sender_avatar, content, state, sent_at, client_message_id";
pub(super) const CHANNEL_COLUMNS: &str =
    "id, tenant_id, name, image_url, allowed_origins, connected, created_at";
pub(super) const AGENT_COLUMNS: &str =
    "id, tenant_id, email, display_name, avatar_url, role, password_hash";

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

pub(super) fn parse_role(raw: &str) -> StoreResult<Role> {
    Role::parse(raw).ok_or_else(|| StoreError::Corrupt(format!("bad role `{raw}`")))
}

pub(super) fn parse_origins(raw: &str) -> StoreResult<Vec<OriginPattern>> {
    serde_json::from_str(raw).map_err(|e| StoreError::Corrupt(format!("bad origins: {e}")))
}

pub(super) fn encode_origins(origins: &[OriginPattern]) -> String {
    let raw: Vec<&str> = origins.iter().map(OriginPattern::as_str).collect();
    serde_json::to_string(&raw).unwrap_or_else(|_| "[]".into())
}

/// Implements `Store` for `$store` (which has `read` and `write` pools of `$db`).
/// `lock_rows` is the start of a `SELECT ... FOR UPDATE` on conversations for
/// backends with row locks (PostgreSQL), `None` where a single writer
/// serializes anyway (SQLite); `params` is its bind-parameter syntax.
macro_rules! sql_store {
    ($store:ty, $db:ty, lock_rows: $lock_rows:expr, params: $params:expr) => {
        impl $store {
            fn message_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> $crate::store::StoreResult<$crate::domain::Message> {
                use sqlx::Row;
                use $crate::store::sql::*;
                Ok($crate::domain::Message {
                    id: parse_id(&row.try_get::<String, _>(0)?)?,
                    conversation_id: parse_id(&row.try_get::<String, _>(1)?)?,
                    channel_id: parse_id(&row.try_get::<String, _>(2)?)?,
                    seq: row.try_get(3)?,
                    sender_kind: parse_kind(&row.try_get::<String, _>(4)?)?,
                    sender_id: parse_uuid(&row.try_get::<String, _>(5)?)?,
                    sender_name: row.try_get(6)?,
                    sender_avatar: row.try_get(7)?,
                    content: row.try_get(8)?,
                    state: parse_state(&row.try_get::<String, _>(9)?)?,
                    sent_at_ms: row.try_get(10)?,
                    client_message_id: row.try_get(11)?,
                })
            }

            fn channel_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> $crate::store::StoreResult<$crate::domain::Channel> {
                use sqlx::Row;
                use $crate::store::sql::*;
                Ok($crate::domain::Channel {
                    id: parse_id(&row.try_get::<String, _>(0)?)?,
                    tenant_id: parse_id(&row.try_get::<String, _>(1)?)?,
                    name: row.try_get(2)?,
                    image_url: row.try_get(3)?,
                    allowed_origins: parse_origins(&row.try_get::<String, _>(4)?)?,
                    connected: row.try_get::<i64, _>(5)? != 0,
                    created_at_ms: row.try_get(6)?,
                })
            }

            fn agent_from_row(
                row: &<$db as sqlx::Database>::Row,
            ) -> $crate::store::StoreResult<$crate::domain::Agent> {
                use sqlx::Row;
                use $crate::store::sql::*;
                Ok($crate::domain::Agent {
                    id: parse_id(&row.try_get::<String, _>(0)?)?,
                    tenant_id: parse_id(&row.try_get::<String, _>(1)?)?,
                    email: row.try_get(2)?,
                    display_name: row.try_get(3)?,
                    avatar_url: row.try_get(4)?,
                    role: parse_role(&row.try_get::<String, _>(5)?)?,
                    password_hash: row.try_get(6)?,
                })
            }

            async fn insert_agent_on<'c, E>(
                executor: E,
                agent: &$crate::domain::Agent,
            ) -> $crate::store::StoreResult<()>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                sqlx::query(
                    "INSERT INTO agents (id, tenant_id, email, display_name, avatar_url, role, password_hash, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8)",
                )
                .bind(agent.id.to_string())
                .bind(agent.tenant_id.to_string())
                .bind(&agent.email)
                .bind(&agent.display_name)
                .bind(&agent.avatar_url)
                .bind(agent.role.as_str())
                .bind(&agent.password_hash)
                .bind($crate::domain::time::now_ms())
                .execute(executor)
                .await?;
                Ok(())
            }

            async fn insert_channel_on<'c, E>(
                executor: E,
                channel: &$crate::domain::Channel,
            ) -> $crate::store::StoreResult<()>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                sqlx::query(
                    "INSERT INTO channels (id, tenant_id, name, image_url, allowed_origins, connected, created_at) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7)",
                )
                .bind(channel.id.to_string())
                .bind(channel.tenant_id.to_string())
                .bind(&channel.name)
                .bind(&channel.image_url)
                .bind($crate::store::sql::encode_origins(&channel.allowed_origins))
                .bind(i64::from(channel.connected))
                .bind(channel.created_at_ms)
                .execute(executor)
                .await?;
                Ok(())
            }

            /// Stores a batch of messages in one transaction (group commit) and
            /// returns one result per message, in order. See `store::batch`.
            async fn append_batch(
                pool: &sqlx::Pool<$db>,
                batch: Vec<$crate::store::NewMessage>,
            ) -> $crate::store::batch::Stored {
                match Self::append_together(pool, &batch).await {
                    Ok(appended) => $crate::store::batch::Stored::together(appended.into_iter().map(Ok).collect()),
                    Err((false, err)) if batch.len() > 1 => {
                        // Nothing was committed: store each on its own, so one
                        // bad message fails alone.
                        tracing::warn!(error = %err, size = batch.len(), "batch append failed; storing one by one");
                        let mut results = Vec::with_capacity(batch.len());
                        for new in &batch {
                            let alone = Self::append_together(pool, std::slice::from_ref(new)).await;
                            results.push(match alone {
                                Ok(mut appended) => Ok(appended.remove(0)),
                                Err((_, err)) => Err(err),
                            });
                        }
                        $crate::store::batch::Stored::one_by_one(results)
                    }
                    Err((false, err)) => $crate::store::batch::Stored::together(vec![Err(err)]),
                    Err((true, err)) => {
                        // The commit's outcome is unknown: retrying could store
                        // twice, so every caller gets the error (a retry with its
                        // client_message_id is then safe).
                        let err = err.to_string();
                        $crate::store::batch::Stored::together(
                            batch
                                .iter()
                                .map(|_| Err($crate::store::StoreError::Unavailable(err.clone())))
                                .collect(),
                        )
                    }
                }
            }

            /// Adds `sizes[i]` to the `last_seq` of conversation `ids[i]`, in a
            /// few statements; returns the new `last_seq` of each conversation
            /// that exists (a missing one is absent from the map).
            async fn reserve(
                conn: &mut <$db as sqlx::Database>::Connection,
                ids: &[String],
                sizes: &[i64],
            ) -> Result<std::collections::HashMap<String, i64>, sqlx::Error> {
                use sqlx::Row;
                use $crate::store::batch::insert_chunks;
                let params: $crate::store::batch::Params = $params;
                let mut last = std::collections::HashMap::with_capacity(ids.len());
                let mut at = 0;
                for n in insert_chunks(ids.len()) {
                    // Parameters in textual order: (id, size) per WHEN, then the ids.
                    let cases: String = (0..n)
                        .map(|i| {
                            format!(
                                " WHEN {} THEN CAST({} AS BIGINT)",
                                params.one(2 * i + 1),
                                params.one(2 * i + 2)
                            )
                        })
                        .collect();
                    let sql = format!(
                        "UPDATE conversations SET last_seq = last_seq + CASE id{cases} END \
                         WHERE id IN ({}) RETURNING id, last_seq",
                        params.list(2 * n + 1, n)
                    );
                    let mut query = sqlx::query(&sql);
                    for (id, size) in ids[at..at + n].iter().zip(&sizes[at..at + n]) {
                        query = query.bind(id.as_str()).bind(*size);
                    }
                    for id in &ids[at..at + n] {
                        query = query.bind(id.as_str());
                    }
                    at += n;
                    for row in query.fetch_all(&mut *conn).await? {
                        last.insert(row.try_get::<String, _>(0)?, row.try_get::<i64, _>(1)?);
                    }
                }
                Ok(last)
            }

            /// The batch in one transaction. Conversations are locked in id
            /// order, so batches of several instances never deadlock; within a
            /// conversation, messages keep their arrival order. On error, the
            /// flag tells whether the commit itself failed.
            async fn append_together(
                pool: &sqlx::Pool<$db>,
                batch: &[$crate::store::NewMessage],
            ) -> Result<Vec<$crate::store::Appended>, (bool, $crate::store::StoreError)> {
                use $crate::store::batch::insert_chunks;
                let params: $crate::store::batch::Params = $params;
                let before = |e: sqlx::Error| (false, $crate::store::StoreError::from(e));
                let mut order: Vec<usize> = (0..batch.len()).collect();
                // Stable: arrival order is kept within a conversation.
                order.sort_by_key(|&i| batch[i].conversation_id);
                let mut tx = pool.begin().await.map_err(before)?;
                let mut results: Vec<Option<$crate::store::Appended>> = vec![None; batch.len()];
                let mut created: Vec<usize> = Vec::with_capacity(batch.len());
                let groups: Vec<&[usize]> = order
                    .chunk_by(|&a, &b| batch[a].conversation_id == batch[b].conversation_id)
                    .collect();
                let ids: Vec<String> = groups
                    .iter()
                    .map(|g| batch[g[0]].conversation_id.to_string())
                    .collect();
                // Lock every conversation row in id order first (where the
                // backend needs it), so concurrent batches queue instead of
                // deadlocking; then reserve each group's seqs in a few statements.
                if let Some(lock) = $lock_rows {
                    let mut at = 0;
                    for n in insert_chunks(ids.len()) {
                        let sql = format!("{lock} IN ({}) ORDER BY id FOR UPDATE", params.list(1, n));
                        let mut query = sqlx::query(&sql);
                        for id in &ids[at..at + n] {
                            query = query.bind(id.as_str());
                        }
                        at += n;
                        query.fetch_all(&mut *tx).await.map_err(before)?;
                    }
                }
                let sizes: Vec<i64> = groups.iter().map(|g| g.len() as i64).collect();
                let mut last = Self::reserve(&mut *tx, &ids, &sizes).await.map_err(before)?;
                let missing: Vec<usize> = (0..groups.len()).filter(|&g| !last.contains_key(&ids[g])).collect();
                if !missing.is_empty() {
                    // First messages create their conversations. Two first
                    // messages at once are safe on PostgreSQL too: the second
                    // insert waits for the first transaction on the primary
                    // key, then does nothing (no unique violation surfaces),
                    // and its reservation below queues on the row.
                    for chunk in insert_chunks(missing.len()).into_iter().scan(0, |at, n| {
                        let range = *at..*at + n;
                        *at += n;
                        Some(range)
                    }) {
                        let sql = format!(
                            "INSERT INTO conversations (id, channel_id, tenant_id, created_at, last_seq) \
                             VALUES {} ON CONFLICT (id) DO NOTHING",
                            params.rows(chunk.len(), 5)
                        );
                        let mut query = sqlx::query(&sql);
                        for &g in &missing[chunk] {
                            let first = &batch[groups[g][0]];
                            query = query
                                .bind(ids[g].clone())
                                .bind(first.channel_id.to_string())
                                .bind(first.tenant_id.to_string())
                                .bind(first.sent_at_ms)
                                .bind(0_i64);
                        }
                        query.execute(&mut *tx).await.map_err(before)?;
                    }
                    let new_ids: Vec<String> = missing.iter().map(|&g| ids[g].clone()).collect();
                    let new_sizes: Vec<i64> = missing.iter().map(|&g| sizes[g]).collect();
                    last.extend(Self::reserve(&mut *tx, &new_ids, &new_sizes).await.map_err(before)?);
                }
                for (g, group) in groups.iter().enumerate() {
                    let conversation = &ids[g];
                    let k = sizes[g];
                    let Some(&last) = last.get(conversation) else {
                        return Err((false, $crate::store::StoreError::Corrupt(format!(
                            "conversation {conversation} vanished while storing"
                        ))));
                    };
                    // Keys seen before (committed by anyone, or earlier in this
                    // batch) return the first message. The reservation holds the
                    // row lock until commit, so concurrent writers of this
                    // conversation (any instance) queue, and under READ
                    // COMMITTED this check's fresh snapshot sees every earlier
                    // committed attempt.
                    let mut seen: std::collections::HashMap<String, $crate::domain::Message> =
                        std::collections::HashMap::new();
                    let sql = format!(
                        "SELECT {} FROM messages WHERE conversation_id = $1 AND client_message_id = $2",
                        $crate::store::sql::MESSAGE_COLUMNS
                    );
                    for &i in group.iter() {
                        if let Some(key) = &batch[i].client_message_id {
                            if seen.contains_key(key) {
                                continue;
                            }
                            let earlier = sqlx::query(&sql)
                                .bind(conversation.as_str())
                                .bind(key)
                                .fetch_optional(&mut *tx)
                                .await
                                .map_err(before)?;
                            if let Some(row) = earlier {
                                let message = Self::message_from_row(&row).map_err(|e| (false, e))?;
                                seen.insert(key.clone(), message);
                            }
                        }
                    }
                    let mut seq = last - k;
                    for &i in group.iter() {
                        let new = &batch[i];
                        if let Some(earlier) = new.client_message_id.as_ref().and_then(|key| seen.get(key)) {
                            results[i] = Some($crate::store::Appended {
                                message: earlier.clone(),
                                created: false,
                            });
                            continue;
                        }
                        seq += 1;
                        let message = $crate::domain::Message {
                            id: new.id,
                            conversation_id: new.conversation_id,
                            channel_id: new.channel_id,
                            seq,
                            sender_kind: new.sender_kind,
                            sender_id: new.sender_id,
                            sender_name: new.sender_name.clone(),
                            sender_avatar: new.sender_avatar.clone(),
                            content: new.content.clone(),
                            state: new.state,
                            sent_at_ms: new.sent_at_ms,
                            client_message_id: new.client_message_id.clone(),
                        };
                        if let Some(key) = &new.client_message_id {
                            seen.insert(key.clone(), message.clone());
                        }
                        results[i] = Some($crate::store::Appended { message, created: true });
                        created.push(i);
                    }
                    if seq != last {
                        // Duplicates took no seq: give back what they reserved.
                        sqlx::query("UPDATE conversations SET last_seq = $2 WHERE id = $1")
                            .bind(conversation.as_str())
                            .bind(seq)
                            .execute(&mut *tx)
                            .await
                            .map_err(before)?;
                    }
                }
                let mut rows = created.iter().map(|&i| {
                    results[i].as_ref().expect("created above")
                });
                for size in insert_chunks(created.len()) {
                    let sql = format!(
                        "INSERT INTO messages ({}) VALUES {}",
                        $crate::store::sql::MESSAGE_COLUMNS,
                        params.rows(size, 12)
                    );
                    let mut query = sqlx::query(&sql);
                    for appended in rows.by_ref().take(size) {
                        let m = &appended.message;
                        query = query
                            .bind(m.id.to_string())
                            .bind(m.conversation_id.to_string())
                            .bind(m.channel_id.to_string())
                            .bind(m.seq)
                            .bind(m.sender_kind.as_str())
                            .bind(m.sender_id.to_string())
                            .bind(m.sender_name.clone())
                            .bind(m.sender_avatar.clone())
                            .bind(m.content.clone())
                            .bind(m.state.as_str())
                            .bind(m.sent_at_ms)
                            .bind(m.client_message_id.clone());
                    }
                    query.execute(&mut *tx).await.map_err(before)?;
                }
                tx.commit().await.map_err(|e| (true, e.into()))?;
                Ok(results.into_iter().map(|r| r.expect("every message has a result")).collect())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::Store for $store {
            async fn ping(&self) -> $crate::store::StoreResult<()> {
                sqlx::query("SELECT 1").execute(&self.read).await?;
                Ok(())
            }

            async fn jwt_secret(&self, candidate: &str) -> $crate::store::StoreResult<String> {
                use sqlx::Row;
                // Race-free without a transaction: the primary key makes a
                // concurrent insert wait for the first one's commit and then do
                // nothing, and the insert has committed (autocommit) before the
                // read, so every caller reads the one value that won.
                sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ('jwt_secret', $1) ON CONFLICT (key) DO NOTHING",
                )
                .bind(candidate)
                .execute(&self.write)
                .await?;
                let row = sqlx::query("SELECT value FROM settings WHERE key = 'jwt_secret'")
                    .fetch_one(&self.write)
                    .await?;
                Ok(row.try_get(0)?)
            }

            async fn bootstrap(
                &self,
                first: &$crate::store::Bootstrap,
            ) -> $crate::store::StoreResult<bool> {
                let mut tx = self.write.begin().await?;
                // Claim the first start with a unique key. `WHERE NOT EXISTS
                // (SELECT 1 FROM tenants)` alone is not enough: two instances
                // starting at once on an empty PostgreSQL both see no tenant
                // (READ COMMITTED snapshots) and both insert one. An insert on
                // the settings primary key instead waits for the other
                // transaction's commit and then does nothing, so exactly one
                // start proceeds (on SQLite the write lock serializes anyway).
                let claimed = sqlx::query(
                    "INSERT INTO settings (key, value) VALUES ('bootstrapped', $1) \
                     ON CONFLICT (key) DO NOTHING",
                )
                .bind(first.tenant_id.to_string())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if claimed == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                // Still check for tenants: a database bootstrapped before the
                // marker existed has tenants but no 'bootstrapped' row.
                let inserted = sqlx::query(
                    "INSERT INTO tenants (id, name, created_at) \
                     SELECT $1, $2, $3 WHERE NOT EXISTS (SELECT 1 FROM tenants)",
                )
                .bind(first.tenant_id.to_string())
                .bind(&first.tenant_name)
                .bind($crate::domain::time::now_ms())
                .execute(&mut *tx)
                .await?
                .rows_affected();
                if inserted == 0 {
                    tx.rollback().await?;
                    return Ok(false);
                }
                Self::insert_agent_on(&mut *tx, &first.admin).await?;
                Self::insert_channel_on(&mut *tx, &first.channel).await?;
                tx.commit().await?;
                Ok(true)
            }

            async fn agent_by_email(
                &self,
                email: &str,
            ) -> $crate::store::StoreResult<Option<$crate::domain::Agent>> {
                let sql = format!(
                    "SELECT {} FROM agents WHERE lower(email) = lower($1)",
                    $crate::store::sql::AGENT_COLUMNS
                );
                let row = sqlx::query(&sql).bind(email).fetch_optional(&self.read).await?;
                row.as_ref().map(Self::agent_from_row).transpose()
            }

            async fn agent(
                &self,
                id: $crate::domain::AgentId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::Agent>> {
                let sql = format!(
                    "SELECT {} FROM agents WHERE id = $1",
                    $crate::store::sql::AGENT_COLUMNS
                );
                let row = sqlx::query(&sql)
                    .bind(id.to_string())
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::agent_from_row).transpose()
            }

            async fn set_password(
                &self,
                email: &str,
                password_hash: &str,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("UPDATE agents SET password_hash = $1 WHERE lower(email) = lower($2)")
                    .bind(password_hash)
                    .bind(email)
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn create_session(
                &self,
                id: $crate::domain::SessionId,
                agent: $crate::domain::AgentId,
                expires_at_ms: i64,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "INSERT INTO agent_sessions (id, agent_id, expires_at, revoked) VALUES ($1, $2, $3, 0)",
                )
                .bind(id.to_string())
                .bind(agent.to_string())
                .bind(expires_at_ms)
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn session_active(
                &self,
                id: $crate::domain::SessionId,
                now_ms: i64,
            ) -> $crate::store::StoreResult<bool> {
                let row = sqlx::query(
                    "SELECT 1 FROM agent_sessions WHERE id = $1 AND revoked = 0 AND expires_at > $2",
                )
                .bind(id.to_string())
                .bind(now_ms)
                .fetch_optional(&self.read)
                .await?;
                Ok(row.is_some())
            }

            async fn revoke_session(
                &self,
                id: $crate::domain::SessionId,
            ) -> $crate::store::StoreResult<bool> {
                let done = sqlx::query("UPDATE agent_sessions SET revoked = 1 WHERE id = $1 AND revoked = 0")
                    .bind(id.to_string())
                    .execute(&self.write)
                    .await?;
                Ok(done.rows_affected() > 0)
            }

            async fn insert_channel(
                &self,
                channel: &$crate::domain::Channel,
            ) -> $crate::store::StoreResult<()> {
                Self::insert_channel_on(&self.write, channel).await
            }

            async fn channel(
                &self,
                id: $crate::domain::ChannelId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::Channel>> {
                let sql = format!(
                    "SELECT {} FROM channels WHERE id = $1",
                    $crate::store::sql::CHANNEL_COLUMNS
                );
                let row = sqlx::query(&sql)
                    .bind(id.to_string())
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::channel_from_row).transpose()
            }

            async fn channels(
                &self,
                tenant: $crate::domain::TenantId,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Channel>> {
                let sql = format!(
                    "SELECT {} FROM channels WHERE tenant_id = $1 ORDER BY created_at, id",
                    $crate::store::sql::CHANNEL_COLUMNS
                );
                let rows = sqlx::query(&sql)
                    .bind(tenant.to_string())
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(Self::channel_from_row).collect()
            }

            async fn update_channel(
                &self,
                channel: &$crate::domain::Channel,
            ) -> $crate::store::StoreResult<()> {
                sqlx::query(
                    "UPDATE channels SET name = $1, image_url = $2, allowed_origins = $3, connected = $4 WHERE id = $5",
                )
                .bind(&channel.name)
                .bind(&channel.image_url)
                .bind($crate::store::sql::encode_origins(&channel.allowed_origins))
                .bind(i64::from(channel.connected))
                .bind(channel.id.to_string())
                .execute(&self.write)
                .await?;
                Ok(())
            }

            async fn conversation(
                &self,
                id: $crate::domain::ConversationId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::Conversation>> {
                use sqlx::Row;
                use $crate::store::sql::parse_id;
                let row = sqlx::query(
                    "SELECT id, channel_id, tenant_id, created_at, last_seq FROM conversations WHERE id = $1",
                )
                .bind(id.to_string())
                .fetch_optional(&self.read)
                .await?;
                let Some(row) = row else { return Ok(None) };
                Ok(Some($crate::domain::Conversation {
                    id: parse_id(&row.try_get::<String, _>(0)?)?,
                    channel_id: parse_id(&row.try_get::<String, _>(1)?)?,
                    tenant_id: parse_id(&row.try_get::<String, _>(2)?)?,
                    created_at_ms: row.try_get(3)?,
                    last_seq: row.try_get(4)?,
                }))
            }

            async fn append_message(
                &self,
                new: $crate::store::NewMessage,
            ) -> $crate::store::StoreResult<$crate::store::Appended> {
                self.appender.enqueue(new).await?.await
            }

            async fn enqueue_append(
                &self,
                new: $crate::store::NewMessage,
            ) -> $crate::store::StoreResult<$crate::store::batch::PendingAppend> {
                self.appender.enqueue(new).await
            }

            fn batch_fallbacks(&self) -> u64 {
                self.appender.fallbacks()
            }

            async fn messages_after(
                &self,
                conversation: $crate::domain::ConversationId,
                after_seq: i64,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Message>> {
                let sql = format!(
                    "SELECT {} FROM messages WHERE conversation_id = $1 AND seq > $2 ORDER BY seq LIMIT $3",
                    $crate::store::sql::MESSAGE_COLUMNS
                );
                let rows = sqlx::query(&sql)
                    .bind(conversation.to_string())
                    .bind(after_seq)
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?;
                rows.iter().map(Self::message_from_row).collect()
            }

            async fn history(
                &self,
                conversation: $crate::domain::ConversationId,
                limit: u32,
            ) -> $crate::store::StoreResult<Vec<$crate::domain::Message>> {
                let sql = format!(
                    "SELECT {} FROM messages WHERE conversation_id = $1 ORDER BY seq DESC LIMIT $2",
                    $crate::store::sql::MESSAGE_COLUMNS
                );
                let rows = sqlx::query(&sql)
                    .bind(conversation.to_string())
                    .bind(i64::from(limit))
                    .fetch_all(&self.read)
                    .await?;
                let mut messages = rows
                    .iter()
                    .map(Self::message_from_row)
                    .collect::<$crate::store::StoreResult<Vec<_>>>()?;
                messages.reverse();
                Ok(messages)
            }
        }
    };
}

pub(super) use sql_store;
