//! The SQL of data rights (desk-api.md, "Integrations"): an identified
//! visitor's conversations, erasing conversations into anonymous shells,
//! the tokens erasures ended, the audit log, tenants' retention. Methods of
//! `Sql`, generic over the backend (see `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::identity::VisitorKey;
use crate::domain::rights::{
    erasure_key_hash, AuditAction, AuditActor, AuditEntry, Erased, Erasure, RetentionDays,
    TenantSettings,
};
use crate::domain::{AttachmentId, ConversationId, RoomState, TenantId};
use crate::store::batch::Params;
use crate::store::{Page, RoomRows, StoreError, StoreResult};

use super::{parse_id, parse_uuid, Backend, RowsAffected, Sql};

impl<DB: Backend> Sql<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> String: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> &'q str: Type<DB> + Encode<'q, DB>,
    for<'q> i64: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> bool: Type<DB> + Decode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<&'q str>: Encode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
{
    pub(crate) async fn identified_conversations(
        &self,
        tenant: TenantId,
        key: &VisitorKey,
        limit: u32,
    ) -> StoreResult<Vec<ConversationId>> {
        let rows = sqlx::query(
            "SELECT id FROM conversations WHERE tenant_id = $1 AND kind = 'visitor' \
             AND visitor_key = $2 AND verified = 1 ORDER BY created_at, id LIMIT $3",
        )
        .bind(tenant.to_string())
        .bind(key.as_str())
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| parse_id(&row.try_get::<String, _>(0)?))
            .collect()
    }

    pub(crate) async fn erase_conversations(
        &self,
        erasure: &Erasure,
        then: Option<RoomRows>,
    ) -> StoreResult<Erased> {
        let tenant = erasure.tenant.to_string();
        let at = erasure.at_ms;
        let mut ids: Vec<String> = erasure
            .conversations
            .iter()
            .map(ToString::to_string)
            .collect();
        ids.sort();
        ids.dedup();
        let mut erased = Erased::default();
        let mut tx = self.write.begin().await?;
        // Rows in id order: concurrent erasures (several instances'
        // retention, an admin's click) queue rather than deadlock.
        let mut keys: Vec<(String, String)> = Vec::new();
        for id in &ids {
            // The visitor's identity, read before the update clears it.
            let Some(row) = sqlx::query(
                "SELECT channel_id, visitor_key, verified, state FROM conversations \
                 WHERE id = $1 AND tenant_id = $2 AND kind = 'visitor' AND erased_at IS NULL",
            )
            .bind(id.as_str())
            .bind(tenant.as_str())
            .fetch_optional(&mut *tx)
            .await?
            else {
                continue;
            };
            let channel: Option<String> = row.try_get(0)?;
            let key: Option<String> = row.try_get(1)?;
            let verified: i64 = row.try_get(2)?;
            let state: String = row.try_get(3)?;
            // The guarded update: of concurrent erasures one wins, and
            // retention re-checks the tenant's setting as it is now.
            let retention = if erasure.retention_only {
                " AND state = 'closed' AND closed_at <= $3 - \
                 (SELECT t.retention_days FROM tenants t \
                  WHERE t.id = conversations.tenant_id AND t.retention_days IS NOT NULL) * 86400000"
            } else {
                ""
            };
            let done = sqlx::query(&format!(
                "UPDATE conversations SET erased_at = $3, state = 'closed', \
                 closed_at = COALESCE(closed_at, $3), name = NULL, prechat = NULL, \
                 rating = NULL, rating_comment = NULL, rated_at = NULL, \
                 visitor_key = 'a:' || id, verified = 0, last_message_at = NULL \
                 WHERE id = $1 AND tenant_id = $2 AND kind = 'visitor' AND erased_at IS NULL{retention}"
            ))
            .bind(id.as_str())
            .bind(tenant.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await?
            .rows_affected();
            if done == 0 {
                continue;
            }
            let conversation = parse_id(id)?;
            erased.conversations.push(conversation);
            let was = super::parse_room_state(&state)?;
            if was != RoomState::Closed {
                erased.closed.push((conversation, was));
            }
            if let Some(channel) = channel {
                keys.push((channel.clone(), erasure_key_hash(&format!("c:{id}"))));
                if let Some(key) = key.filter(|k| verified != 0 && k.starts_with("i:")) {
                    keys.push((channel, erasure_key_hash(&key)));
                }
            }
        }
        if erased.conversations.is_empty() {
            tx.rollback().await?;
            return Ok(erased);
        }
        let done: Vec<String> = erased
            .conversations
            .iter()
            .map(ToString::to_string)
            .collect();
        let list = Params::Numbered.list(2, done.len());
        let in_done = |sql: &str| sql.replace("{list}", &list);
        macro_rules! bound {
            ($sql:expr) => {{
                let mut query = sqlx::query($sql).bind(tenant.as_str());
                for id in &done {
                    query = query.bind(id.as_str());
                }
                query
            }};
        }
        let sql = in_done(
            "SELECT id FROM attachments WHERE tenant_id = $1 AND conversation_id IN ({list})",
        );
        for row in bound!(&sql).fetch_all(&mut *tx).await? {
            erased
                .files
                .push(parse_id::<AttachmentId>(&row.try_get::<String, _>(0)?)?);
        }
        // Children first; what each statement removed, in this order.
        let statements = [
            "DELETE FROM attachments WHERE tenant_id = $1 AND conversation_id IN ({list})",
            "DELETE FROM reactions WHERE message_id IN (SELECT id FROM messages \
             WHERE tenant_id = $1 AND conversation_id IN ({list}))",
            "DELETE FROM visitor_contexts WHERE tenant_id = $1 AND conversation_id IN ({list})",
            "DELETE FROM messages WHERE tenant_id = $1 AND conversation_id IN ({list})",
            "DELETE FROM notes WHERE tenant_id = $1 AND conversation_id IN ({list})",
        ];
        let mut removed = Vec::with_capacity(statements.len());
        for statement in statements {
            let sql = in_done(statement);
            removed.push(bound!(&sql).execute(&mut *tx).await?.rows_affected());
        }
        // The conversations' webhook events (their order key ends with the
        // conversation's id) carry its messages: their bodies go, sent or
        // not, and those not sent yet are dropped rather than delivered.
        let sql = in_done(&format!(
            "UPDATE outbox SET payload = '{{}}', \
             last_error = CASE WHEN sent_at IS NULL AND dropped_at IS NULL \
               THEN 'the visitor was erased' ELSE last_error END, \
             dropped_at = CASE WHEN sent_at IS NULL AND dropped_at IS NULL \
               THEN {at} ELSE dropped_at END \
             WHERE tenant_id = $1 AND order_key IS NOT NULL \
             AND substr(order_key, length(order_key) - 35) IN ({{list}})"
        ));
        bound!(&sql).execute(&mut *tx).await?;
        if DB::WEBHOOK_LOG {
            // The same for the webhook log's events (those moved to the
            // outbox were taken above); one not read yet is skipped when
            // its turn comes.
            let sql = in_done(&format!(
                "UPDATE webhook_log SET payload = '{{}}', \
                 last_error = CASE WHEN sent_at IS NULL AND dropped_at IS NULL AND moved = 0 \
                   THEN 'the visitor was erased' ELSE last_error END, \
                 dropped_at = CASE WHEN sent_at IS NULL AND dropped_at IS NULL AND moved = 0 \
                   THEN {at} ELSE dropped_at END \
                 WHERE tenant_id = $1 AND order_key IS NOT NULL \
                 AND substr(order_key, length(order_key) - 35) IN ({{list}})"
            ));
            bound!(&sql).execute(&mut *tx).await?;
        }
        // A conversation the erasure closed reports its close, as any close
        // does (after the drop above, which must not take it): the shell's
        // room, which carries nothing of the visitor.
        for (conversation, _) in &erased.closed {
            Self::room_rows_on(&mut tx, erasure.tenant, *conversation, then.as_ref()).await?;
        }
        erased.messages = removed[3];
        erased.notes = removed[4];
        keys.sort();
        keys.dedup();
        for (channel, hash) in &keys {
            sqlx::query(
                "INSERT INTO visitor_erasures (channel_id, key_hash, tenant_id, erased_at) \
                 VALUES ($1, $2, $3, $4) ON CONFLICT (channel_id, key_hash) \
                 DO UPDATE SET erased_at = excluded.erased_at",
            )
            .bind(channel.as_str())
            .bind(hash.as_str())
            .bind(tenant.as_str())
            .bind(at)
            .execute(&mut *tx)
            .await?;
        }
        let mut audit = erasure.audit.clone();
        audit.conversations = erased.conversations.clone();
        audit.detail = serde_json::json!({
            "conversations": erased.conversations.len(),
            "messages": erased.messages,
            "notes": erased.notes,
            "files": erased.files.len(),
        })
        .to_string();
        Self::insert_audit(&mut *tx, &audit).await?;
        tx.commit().await?;
        Ok(erased)
    }

    async fn insert_audit<'e, E>(executor: E, entry: &AuditEntry) -> StoreResult<()>
    where
        E: sqlx::Executor<'e, Database = DB>,
    {
        let (actor_id, actor_name) = match &entry.actor {
            AuditActor::Agent { id, name } => (Some(id.to_string()), Some(name.clone())),
            AuditActor::Retention => (None, None),
        };
        let conversations: Vec<String> = entry
            .conversations
            .iter()
            .map(ToString::to_string)
            .collect();
        sqlx::query(
            "INSERT INTO audit_log (id, tenant_id, at, actor_kind, actor_id, actor_name, action, \
             conversations, detail) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)",
        )
        .bind(entry.id.to_string())
        .bind(entry.tenant_id.to_string())
        .bind(entry.at_ms)
        .bind(entry.actor.kind())
        .bind(actor_id)
        .bind(actor_name)
        .bind(entry.action.as_str())
        .bind(conversations.join(","))
        .bind(entry.detail.as_str())
        .execute(executor)
        .await?;
        Ok(())
    }

    pub(crate) async fn insert_audit_entry(&self, entry: &AuditEntry) -> StoreResult<()> {
        Self::insert_audit(&self.write, entry).await
    }

    pub(crate) async fn audit_entries(
        &self,
        tenant: TenantId,
        limit: u32,
        offset: u32,
    ) -> StoreResult<Page<AuditEntry>> {
        let rows = sqlx::query(
            "SELECT id, tenant_id, at, actor_kind, actor_id, actor_name, action, conversations, \
             detail FROM audit_log WHERE tenant_id = $1 ORDER BY at DESC, id DESC \
             LIMIT $2 OFFSET $3",
        )
        .bind(tenant.to_string())
        .bind(i64::from(limit))
        .bind(i64::from(offset))
        .fetch_all(&self.read)
        .await?;
        let items = rows
            .iter()
            .map(|row| -> StoreResult<AuditEntry> {
                let kind: String = row.try_get(3)?;
                let actor_id: Option<String> = row.try_get(4)?;
                let actor_name: Option<String> = row.try_get(5)?;
                let actor = match (kind.as_str(), actor_id) {
                    ("agent", Some(id)) => AuditActor::Agent {
                        id: parse_id(&id)?,
                        name: actor_name.unwrap_or_default(),
                    },
                    ("retention", _) => AuditActor::Retention,
                    _ => return Err(StoreError::Corrupt(format!("bad audit actor `{kind}`"))),
                };
                let action: String = row.try_get(6)?;
                let conversations: String = row.try_get(7)?;
                Ok(AuditEntry {
                    id: parse_uuid(&row.try_get::<String, _>(0)?)?,
                    tenant_id: parse_id(&row.try_get::<String, _>(1)?)?,
                    at_ms: row.try_get(2)?,
                    actor,
                    action: AuditAction::parse(&action).ok_or_else(|| {
                        StoreError::Corrupt(format!("bad audit action `{action}`"))
                    })?,
                    conversations: conversations
                        .split(',')
                        .filter(|s| !s.is_empty())
                        .map(parse_id)
                        .collect::<StoreResult<_>>()?,
                    detail: row.try_get(8)?,
                })
            })
            .collect::<StoreResult<Vec<_>>>()?;
        let total = Self::count(
            &self.read,
            "SELECT COUNT(*) FROM audit_log WHERE tenant_id = $1",
            &[super::Bind::S(tenant.to_string())],
        )
        .await?;
        Ok(Page {
            items,
            filtered: total,
            total,
        })
    }

    pub(crate) async fn visitor_erased_at(
        &self,
        channel: crate::domain::ChannelId,
        key_hashes: &[String],
    ) -> StoreResult<Option<i64>> {
        if key_hashes.is_empty() {
            return Ok(None);
        }
        let sql = format!(
            "SELECT MAX(erased_at) FROM visitor_erasures WHERE channel_id = $1 AND key_hash IN ({})",
            Params::Numbered.list(2, key_hashes.len())
        );
        let mut query = sqlx::query(&sql).bind(channel.to_string());
        for hash in key_hashes {
            query = query.bind(hash.as_str());
        }
        let row = query.fetch_one(&self.read).await?;
        Ok(row.try_get::<Option<i64>, _>(0)?)
    }

    pub(crate) async fn tenant_settings(
        &self,
        tenant: TenantId,
    ) -> StoreResult<Option<TenantSettings>> {
        let row = sqlx::query("SELECT name, retention_days FROM tenants WHERE id = $1")
            .bind(tenant.to_string())
            .fetch_optional(&self.read)
            .await?;
        let Some(row) = row else { return Ok(None) };
        let days: Option<i64> = row.try_get(1)?;
        Ok(Some(TenantSettings {
            id: tenant,
            name: row.try_get(0)?,
            retention: days
                .map(|d| {
                    RetentionDays::parse(d)
                        .ok_or_else(|| StoreError::Corrupt(format!("bad retention_days {d}")))
                })
                .transpose()?,
        }))
    }

    pub(crate) async fn set_retention(
        &self,
        tenant: TenantId,
        retention: Option<RetentionDays>,
    ) -> StoreResult<bool> {
        let done = sqlx::query("UPDATE tenants SET retention_days = $1 WHERE id = $2")
            .bind(retention.map(|d| i64::from(d.get())))
            .bind(tenant.to_string())
            .execute(&self.write)
            .await?
            .rows_affected();
        Ok(done > 0)
    }

    pub(crate) async fn expired_conversations(
        &self,
        now_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<(TenantId, ConversationId)>> {
        let rows = sqlx::query(
            "SELECT c.tenant_id, c.id FROM conversations c JOIN tenants t ON t.id = c.tenant_id \
             WHERE t.retention_days IS NOT NULL AND c.state = 'closed' AND c.erased_at IS NULL \
             AND c.kind = 'visitor' AND c.closed_at <= $1 - t.retention_days * 86400000 \
             ORDER BY c.closed_at, c.id LIMIT $2",
        )
        .bind(now_ms)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_id(&row.try_get::<String, _>(0)?)?,
                    parse_id(&row.try_get::<String, _>(1)?)?,
                ))
            })
            .collect()
    }
}
