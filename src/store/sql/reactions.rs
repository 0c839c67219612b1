//! The SQL of reactions. Methods of `Sql`, generic over the backend (see
//! `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::{MessageId, Reaction, TenantId};
use crate::store::{ReactionAdded, StoreResult};

use super::{parse_uuid, Backend, RowsAffected, Sql};

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
    pub(crate) async fn add_reaction(
        &self,
        tenant: TenantId,
        message: MessageId,
        user: uuid::Uuid,
        emoji: &str,
        at_ms: i64,
        max_per_user: u32,
    ) -> StoreResult<ReactionAdded> {
        // The message's row is locked first (PostgreSQL; SQLite's
        // one writer runs one transaction at a time), so two adds of
        // one user racing on one message count each other's row and
        // the cap holds exactly.
        let mut tx = self.write.begin().await?;
        if DB::LOCKS {
            sqlx::query("SELECT id FROM messages WHERE id = $1 AND tenant_id = $2 FOR UPDATE")
                .bind(message.to_string())
                .bind(tenant.to_string())
                .fetch_optional(&mut *tx)
                .await?;
        }
        let done = sqlx::query(
            "INSERT INTO reactions (message_id, user_id, emoji, created_at) \
             SELECT id, $1, $2, $3 FROM messages WHERE id = $4 AND tenant_id = $5 \
             AND (SELECT COUNT(*) FROM reactions WHERE message_id = $4 AND user_id = $1) < $6 \
             ON CONFLICT DO NOTHING",
        )
        .bind(user.to_string())
        .bind(emoji)
        .bind(at_ms)
        .bind(message.to_string())
        .bind(tenant.to_string())
        .bind(i64::from(max_per_user))
        .execute(&mut *tx)
        .await?;
        let outcome = if done.rows_affected() > 0 {
            ReactionAdded::Added
        } else {
            let (exists, count): (bool, i64) = sqlx::query_as(
                "SELECT COALESCE(SUM(CASE WHEN emoji = $1 THEN 1 ELSE 0 END), 0) > 0, COUNT(*) \
                         FROM reactions WHERE message_id = $2 AND user_id = $3",
            )
            .bind(emoji)
            .bind(message.to_string())
            .bind(user.to_string())
            .fetch_one(&mut *tx)
            .await?;
            if !exists && count >= i64::from(max_per_user) {
                ReactionAdded::TooMany
            } else {
                ReactionAdded::AlreadyExists
            }
        };
        tx.commit().await?;
        Ok(outcome)
    }

    pub(crate) async fn remove_reaction(
        &self,
        tenant: TenantId,
        message: MessageId,
        user: uuid::Uuid,
        emoji: &str,
    ) -> StoreResult<bool> {
        let done = sqlx::query(
            "DELETE FROM reactions WHERE message_id = $1 AND user_id = $2 AND emoji = $3 \
                     AND message_id IN (SELECT id FROM messages WHERE id = $4 AND tenant_id = $5)",
        )
        .bind(message.to_string())
        .bind(user.to_string())
        .bind(emoji)
        .bind(message.to_string())
        .bind(tenant.to_string())
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected() > 0)
    }

    pub(crate) async fn reactions(
        &self,
        tenant: TenantId,
        message: MessageId,
    ) -> StoreResult<Vec<Reaction>> {
        let rows = sqlx::query(
            "SELECT r.user_id, r.emoji FROM reactions r JOIN messages m ON m.id = r.message_id \
                     WHERE r.message_id = $1 AND m.tenant_id = $2 ORDER BY r.created_at, r.emoji",
        )
        .bind(message.to_string())
        .bind(tenant.to_string())
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| {
                Ok(Reaction {
                    user_id: parse_uuid(&row.try_get::<String, _>(0)?)?,
                    emoji: row.try_get(1)?,
                })
            })
            .collect()
    }
}
