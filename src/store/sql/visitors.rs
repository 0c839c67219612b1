//! The SQL of visitor contexts. Methods of `Sql`, generic over the backend (see
//! `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::{ConversationId, TenantId, VisitorContext};
use crate::store::batch::Params;
use crate::store::StoreResult;

use super::{parse_id, Backend, Bind, RowsAffected, Sql};

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
    pub(crate) async fn delete_unused_visitor_contexts(&self, before_ms: i64) -> StoreResult<u64> {
        let done = sqlx::query(
            "DELETE FROM visitor_contexts WHERE updated_at < $1 AND NOT EXISTS \
                     (SELECT 1 FROM conversations c WHERE c.id = visitor_contexts.conversation_id)",
        )
        .bind(before_ms)
        .execute(&self.write)
        .await?;
        Ok(done.rows_affected())
    }

    pub(crate) async fn save_visitor_context(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
        context: &VisitorContext,
        at_ms: i64,
    ) -> StoreResult<()> {
        let sql = Self::visitor_contexts_upsert(1);
        Self::bind_visitor_context(sqlx::query(&sql), tenant, conversation, context, at_ms)
            .execute(&self.write)
            .await?;
        Ok(())
    }

    /// Stores `rows` conversations' contexts (bound in order by
    /// [`Self::bind_visitor_context`]): known fields replace, unknown ones
    /// keep; another tenant's row (a forged id) is left alone. A statement
    /// of its own, so that a transaction (the group commit that creates
    /// conversations) can run it too, for all its conversations at once.
    pub(crate) fn visitor_contexts_upsert(rows: usize) -> String {
        format!(
            "INSERT INTO visitor_contexts (conversation_id, tenant_id, name, email, url, title, \
             referrer, language, time_zone, utc_offset_minutes, user_agent, updated_at) \
             VALUES {} \
             ON CONFLICT (conversation_id) DO UPDATE SET \
             name = COALESCE(excluded.name, visitor_contexts.name), \
             email = COALESCE(excluded.email, visitor_contexts.email), \
             url = COALESCE(excluded.url, visitor_contexts.url), \
             title = COALESCE(excluded.title, visitor_contexts.title), \
             referrer = COALESCE(excluded.referrer, visitor_contexts.referrer), \
             language = COALESCE(excluded.language, visitor_contexts.language), \
             time_zone = COALESCE(excluded.time_zone, visitor_contexts.time_zone), \
             utc_offset_minutes = COALESCE(excluded.utc_offset_minutes, visitor_contexts.utc_offset_minutes), \
             user_agent = COALESCE(excluded.user_agent, visitor_contexts.user_agent), \
             updated_at = excluded.updated_at \
             WHERE visitor_contexts.tenant_id = excluded.tenant_id",
            DB::PARAMS.rows(rows, 12)
        )
    }

    /// Binds one row of [`Self::visitor_contexts_upsert`].
    pub(crate) fn bind_visitor_context<'q>(
        query: sqlx::query::Query<'q, DB, DB::Arguments<'q>>,
        tenant: TenantId,
        conversation: ConversationId,
        context: &'q VisitorContext,
        at_ms: i64,
    ) -> sqlx::query::Query<'q, DB, DB::Arguments<'q>> {
        query
            .bind(conversation.to_string())
            .bind(tenant.to_string())
            .bind(context.name.as_deref())
            .bind(context.email.as_deref())
            .bind(context.url.as_deref())
            .bind(context.title.as_deref())
            .bind(context.referrer.as_deref())
            .bind(context.language.as_deref())
            .bind(context.time_zone.as_deref())
            .bind(context.utc_offset_minutes.map(i64::from))
            .bind(context.user_agent.as_deref())
            .bind(at_ms)
    }

    pub(crate) async fn visitor_context(
        &self,
        tenant: TenantId,
        conversation: ConversationId,
    ) -> StoreResult<Option<VisitorContext>> {
        let row = sqlx::query(
            "SELECT name, email, url, title, referrer, language, time_zone, \
                     utc_offset_minutes, user_agent FROM visitor_contexts \
                     WHERE conversation_id = $1 AND tenant_id = $2",
        )
        .bind(conversation.to_string())
        .bind(tenant.to_string())
        .fetch_optional(&self.read)
        .await?;
        let Some(row) = row else { return Ok(None) };
        Ok(Some(VisitorContext {
            name: row.try_get(0)?,
            email: row.try_get(1)?,
            url: row.try_get(2)?,
            title: row.try_get(3)?,
            referrer: row.try_get(4)?,
            language: row.try_get(5)?,
            time_zone: row.try_get(6)?,
            utc_offset_minutes: row
                .try_get::<Option<i64>, _>(7)?
                .and_then(|m| i32::try_from(m).ok()),
            user_agent: row.try_get(8)?,
        }))
    }

    pub(crate) async fn visitor_names(
        &self,
        tenant: TenantId,
        conversations: &[ConversationId],
    ) -> StoreResult<Vec<(ConversationId, String)>> {
        if conversations.is_empty() {
            return Ok(Vec::new());
        }
        let sql = format!(
            "SELECT conversation_id, name FROM visitor_contexts \
                     WHERE tenant_id = $1 AND name IS NOT NULL AND conversation_id IN ({})",
            Params::Numbered.list(2, conversations.len())
        );
        let mut binds = vec![Bind::S(tenant.to_string())];
        binds.extend(conversations.iter().map(|c| Bind::S(c.to_string())));
        let rows = Self::bind_all(sqlx::query(&sql), &binds)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|row| {
                Ok((
                    parse_id(&row.try_get::<String, _>(0)?)?,
                    row.try_get::<String, _>(1)?,
                ))
            })
            .collect()
    }
}
