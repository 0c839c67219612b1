//! The SQL of attachments' records. Methods of `Sql`, generic over the
//! backend (see `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use uuid::Uuid;

use crate::domain::{Attachment, AttachmentId, ConversationId, MessageId, SenderKind, TenantId};
use crate::store::{StoreError, StoreResult};

use super::{parse_id, parse_kind, parse_uuid, Backend, RowsAffected, Sql};

/// How far back, before the cleaning age, claims are checked for a
/// message that was never stored.
const ORPHAN_WINDOW_MS: i64 = 7 * 24 * 3600 * 1000;

const ATTACHMENT_COLUMNS: &str = "id, tenant_id, conversation_id, uploader_kind, uploader_id, \
     name, size, content_type, width, height, message_id, created_at";

impl<DB: Backend> Sql<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> String: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> &'q str: Type<DB> + Encode<'q, DB>,
    for<'q> i64: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<String>: Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<i64>: Encode<'q, DB> + Decode<'q, DB>,
{
    pub(crate) async fn insert_attachment(&self, a: &Attachment) -> StoreResult<()> {
        let sql = format!(
            "INSERT INTO attachments ({ATTACHMENT_COLUMNS}) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)"
        );
        sqlx::query(&sql)
            .bind(a.id.to_string())
            .bind(a.tenant_id.to_string())
            .bind(a.conversation_id.to_string())
            .bind(a.uploader_kind.as_str())
            .bind(a.uploader_id.to_string())
            .bind(a.name.as_str())
            .bind(a.size as i64)
            .bind(a.content_type.as_str())
            .bind(a.width.map(i64::from))
            .bind(a.height.map(i64::from))
            .bind(a.message_id.map(|m| m.to_string()))
            .bind(a.created_at_ms)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Attachment `id`, in `tenant` when one is given.
    pub(crate) async fn attachment(
        &self,
        tenant: Option<TenantId>,
        id: AttachmentId,
    ) -> StoreResult<Option<Attachment>> {
        let sql = format!(
            "SELECT {ATTACHMENT_COLUMNS} FROM attachments \
             WHERE id = $1 AND ($2 IS NULL OR tenant_id = $2)"
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(tenant.map(|t| t.to_string()))
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::attachment_from_row).transpose()
    }

    /// Uploads no message carries, made before `before_ms`, and claims
    /// made before it whose message was never stored (looked for over the
    /// week before `before_ms`: the janitor runs hourly); oldest first.
    pub(crate) async fn unsent_attachments(
        &self,
        before_ms: i64,
        limit: u32,
    ) -> StoreResult<Vec<AttachmentId>> {
        let rows = sqlx::query(
            "SELECT id, created_at FROM attachments WHERE message_id IS NULL AND created_at < $1 \
             UNION ALL \
             SELECT a.id, a.created_at FROM attachments a \
             WHERE a.claimed_at < $1 AND a.claimed_at >= $2 \
               AND NOT EXISTS (SELECT 1 FROM messages m WHERE m.id = a.message_id) \
             ORDER BY created_at, id LIMIT $3",
        )
        .bind(before_ms)
        .bind(before_ms - ORPHAN_WINDOW_MS)
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| parse_id(&row.try_get::<String, _>(0)?))
            .collect()
    }

    pub(crate) async fn delete_unsent_attachment(
        &self,
        id: AttachmentId,
        before_ms: i64,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM attachments WHERE id = $1 AND (message_id IS NULL \
               OR (claimed_at < $2 AND NOT EXISTS \
                   (SELECT 1 FROM messages m WHERE m.id = attachments.message_id)))",
        )
        .bind(id.to_string())
        .bind(before_ms)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    /// Claims the uploads `ids` for `message`, all or none: each must be
    /// of `conversation`, made by `uploader` (kind and id) and carried by
    /// no message. The claimed files in `ids`' order; empty when any could
    /// not be claimed (then nothing changed).
    pub(crate) async fn claim_attachments(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        uploader: (SenderKind, Uuid),
        ids: &[AttachmentId],
        message: MessageId,
        at_ms: i64,
    ) -> StoreResult<Vec<Attachment>> {
        if ids.is_empty() {
            return Ok(Vec::new());
        }
        let list = (7..7 + ids.len())
            .map(|i| format!("${i}"))
            .collect::<Vec<_>>()
            .join(", ");
        let mut tx = self.write.begin().await?;
        let sql = format!(
            "UPDATE attachments SET message_id = $1, claimed_at = $2 \
             WHERE tenant_id = $3 AND conversation_id = $4 AND uploader_kind = $5 \
               AND uploader_id = $6 AND message_id IS NULL AND id IN ({list})"
        );
        let mut query = sqlx::query(&sql)
            .bind(message.to_string())
            .bind(at_ms)
            .bind(tenant.to_string())
            .bind(conversation.to_string())
            .bind(uploader.0.as_str())
            .bind(uploader.1.to_string());
        for id in ids {
            query = query.bind(id.to_string());
        }
        let done = query.execute(&mut *tx).await?;
        if done.rows_affected() != ids.len() as u64 {
            tx.rollback().await?;
            return Ok(Vec::new());
        }
        let sql = format!("SELECT {ATTACHMENT_COLUMNS} FROM attachments WHERE message_id = $1");
        let rows = sqlx::query(&sql)
            .bind(message.to_string())
            .fetch_all(&mut *tx)
            .await?;
        tx.commit().await?;
        let mut claimed = rows
            .iter()
            .map(Self::attachment_from_row)
            .collect::<StoreResult<Vec<_>>>()?;
        claimed.sort_by_key(|a| ids.iter().position(|id| *id == a.id));
        Ok(claimed)
    }

    /// Gives back the files claimed for `message`, which was not stored.
    pub(crate) async fn release_attachments(&self, message: MessageId) -> StoreResult<()> {
        sqlx::query(
            "UPDATE attachments SET message_id = NULL, claimed_at = NULL WHERE message_id = $1",
        )
        .bind(message.to_string())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    /// Deletes the records of the files `message` of `tenant` carried; their
    /// ids (their bytes are the caller's to remove).
    pub(crate) async fn delete_message_attachments(
        &self,
        tenant: TenantId,
        message: MessageId,
    ) -> StoreResult<Vec<AttachmentId>> {
        let rows = sqlx::query(
            "DELETE FROM attachments WHERE message_id = $1 AND tenant_id = $2 RETURNING id",
        )
        .bind(message.to_string())
        .bind(tenant.to_string())
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|row| parse_id(&row.try_get::<String, _>(0)?))
            .collect()
    }

    fn attachment_from_row(row: &DB::Row) -> StoreResult<Attachment> {
        let dimension = |i: usize| -> StoreResult<Option<u32>> {
            row.try_get::<Option<i64>, _>(i)?
                .map(|v| u32::try_from(v).map_err(|_| corrupt(v)))
                .transpose()
        };
        Ok(Attachment {
            id: parse_id(&row.try_get::<String, _>(0)?)?,
            tenant_id: parse_id(&row.try_get::<String, _>(1)?)?,
            conversation_id: parse_id(&row.try_get::<String, _>(2)?)?,
            uploader_kind: parse_kind(&row.try_get::<String, _>(3)?)?,
            uploader_id: parse_uuid(&row.try_get::<String, _>(4)?)?,
            name: row.try_get(5)?,
            size: u64::try_from(row.try_get::<i64, _>(6)?).map_err(|_| corrupt(-1))?,
            content_type: row.try_get(7)?,
            width: dimension(8)?,
            height: dimension(9)?,
            message_id: row
                .try_get::<Option<String>, _>(10)?
                .map(|m| parse_id(&m))
                .transpose()?,
            created_at_ms: row.try_get(11)?,
        })
    }
}

fn corrupt(value: i64) -> StoreError {
    StoreError::Corrupt(format!("bad attachment number {value}"))
}
