//! The SQL of identified visitors: channels' identity secrets, whose
//! conversation is whose (`visitor_key`), and blocked visitors. Methods of
//! `Sql`, generic over the backend (see `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::identity::{IdentitySecrets, VisitorKey};
use crate::domain::{ChannelId, ConversationId, RoomState, TenantId};
use crate::store::StoreResult;

use super::{parse_id, parse_room_state, Backend, Sql};

impl<DB: Backend> Sql<DB>
where
    for<'c> &'c mut DB::Connection: Executor<'c, Database = DB>,
    for<'q> DB::Arguments<'q>: IntoArguments<'q, DB>,
    usize: ColumnIndex<DB::Row>,
    for<'q> String: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> &'q str: Type<DB> + Encode<'q, DB>,
    for<'q> i64: Type<DB> + Encode<'q, DB> + Decode<'q, DB>,
    for<'q> Option<String>: Decode<'q, DB>,
    for<'q> Option<i64>: Decode<'q, DB>,
{
    async fn read_identity_secrets(
        &self,
        tenant: TenantId,
        channel: ChannelId,
    ) -> StoreResult<Option<IdentitySecrets>> {
        let row = sqlx::query(
            "SELECT secret, previous_secret, rotated_at FROM channel_identity_secrets \
             WHERE channel_id = $1 AND tenant_id = $2",
        )
        .bind(channel.to_string())
        .bind(tenant.to_string())
        .fetch_optional(&self.write)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(IdentitySecrets {
            secret: row.try_get(0)?,
            previous: row.try_get(1)?,
            rotated_at_ms: row.try_get(2)?,
        }))
    }

    pub(crate) async fn identity_secrets(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        candidate: &IdentitySecrets,
    ) -> StoreResult<Option<IdentitySecrets>> {
        if let Some(found) = self.read_identity_secrets(tenant, channel).await? {
            return Ok(Some(found));
        }
        // Of concurrent first reads, the first insert wins and all read it.
        sqlx::query(
            "INSERT INTO channel_identity_secrets (channel_id, tenant_id, secret) \
             SELECT id, tenant_id, $3 FROM channels WHERE id = $1 AND tenant_id = $2 \
             ON CONFLICT (channel_id) DO NOTHING",
        )
        .bind(channel.to_string())
        .bind(tenant.to_string())
        .bind(candidate.secret.as_str())
        .execute(&self.write)
        .await?;
        self.read_identity_secrets(tenant, channel).await
    }

    pub(crate) async fn rotate_identity_secret(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        secret: &str,
        at_ms: i64,
    ) -> StoreResult<Option<IdentitySecrets>> {
        sqlx::query(
            "UPDATE channel_identity_secrets SET previous_secret = secret, secret = $1, \
             rotated_at = $2 WHERE channel_id = $3 AND tenant_id = $4",
        )
        .bind(secret)
        .bind(at_ms)
        .bind(channel.to_string())
        .bind(tenant.to_string())
        .execute(&self.write)
        .await?;
        self.read_identity_secrets(tenant, channel).await
    }

    pub(crate) async fn set_conversation_visitor(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        key: &VisitorKey,
        verified: bool,
    ) -> StoreResult<()> {
        sqlx::query(
            "UPDATE conversations SET visitor_key = $1, verified = $2 \
             WHERE id = $3 AND tenant_id = $4 AND kind = 'visitor' AND visitor_key IS NULL",
        )
        .bind(key.as_str())
        .bind(i64::from(verified))
        .bind(conversation.to_string())
        .bind(tenant.to_string())
        .execute(&self.write)
        .await?;
        Ok(())
    }

    pub(crate) async fn conversation_visitor(
        &self,
        channel: ChannelId,
        conversation: ConversationId,
    ) -> StoreResult<Option<(Option<VisitorKey>, bool)>> {
        let row = sqlx::query(
            "SELECT visitor_key, verified FROM conversations \
             WHERE id = $1 AND channel_id = $2 AND kind = 'visitor'",
        )
        .bind(conversation.to_string())
        .bind(channel.to_string())
        .fetch_optional(&self.write)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some((
            row.try_get::<Option<String>, _>(0)?
                .map(VisitorKey::from_stored),
            row.try_get::<i64, _>(1)? != 0,
        )))
    }

    pub(crate) async fn visitor_conversations(
        &self,
        channel: ChannelId,
        key: &VisitorKey,
        also: ConversationId,
        limit: u32,
    ) -> StoreResult<Vec<(ConversationId, RoomState)>> {
        let rows = sqlx::query(
            "SELECT id, state FROM conversations \
             WHERE channel_id = $1 AND kind = 'visitor' AND (visitor_key = $2 OR id = $3) \
             ORDER BY created_at DESC, id DESC LIMIT $4",
        )
        .bind(channel.to_string())
        .bind(key.as_str())
        .bind(also.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.write)
        .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_id(&row.try_get::<String, _>(0)?)?,
                    parse_room_state(&row.try_get::<String, _>(1)?)?,
                ))
            })
            .collect()
    }

    pub(crate) async fn set_visitor_blocked(
        &self,
        tenant: TenantId,
        channel: ChannelId,
        key: &VisitorKey,
        blocked: bool,
        at_ms: i64,
    ) -> StoreResult<()> {
        let mut tx = self.write.begin().await?;
        if blocked {
            sqlx::query(
                "INSERT INTO visitor_blocks (channel_id, visitor_key, tenant_id, blocked_at) \
                 SELECT id, $2, tenant_id, $3 FROM channels WHERE id = $1 AND tenant_id = $4 \
                 ON CONFLICT (channel_id, visitor_key) DO NOTHING",
            )
            .bind(channel.to_string())
            .bind(key.as_str())
            .bind(at_ms)
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        } else {
            sqlx::query(
                "DELETE FROM visitor_blocks WHERE channel_id = $1 AND visitor_key = $2 \
                 AND tenant_id = $3",
            )
            .bind(channel.to_string())
            .bind(key.as_str())
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        }
        sqlx::query(
            "UPDATE conversations SET blocked = $1 WHERE channel_id = $2 AND tenant_id = $3 \
             AND kind = 'visitor' AND COALESCE(visitor_key, 'a:' || id) = $4",
        )
        .bind(i64::from(blocked))
        .bind(channel.to_string())
        .bind(tenant.to_string())
        .bind(key.as_str())
        .execute(&mut *tx)
        .await?;
        tx.commit().await?;
        Ok(())
    }

    pub(crate) async fn visitor_blocked(
        &self,
        channel: ChannelId,
        key: &VisitorKey,
    ) -> StoreResult<bool> {
        let row =
            sqlx::query("SELECT 1 FROM visitor_blocks WHERE channel_id = $1 AND visitor_key = $2")
                .bind(channel.to_string())
                .bind(key.as_str())
                .fetch_optional(&self.read)
                .await?;
        Ok(row.is_some())
    }
}
