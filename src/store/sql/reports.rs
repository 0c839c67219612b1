//! The SQL of reports: one range scan of `conversations_reports` (the
//! tenant's visitor conversations by start), which holds every column read.
//! Methods of `Sql`, generic over the backend (see `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::report::ConversationFacts;
use crate::store::{ReportScope, StoreResult};

use super::{Backend, Bind, Filter, Sql};

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
    pub(crate) async fn report_facts(
        &self,
        scope: &ReportScope,
        limit: u32,
    ) -> StoreResult<Vec<ConversationFacts>> {
        // Every column read and compared is in `conversations_reports`:
        // an index-only range scan on both backends.
        let mut f = Filter::new(vec![
            Bind::S(scope.tenant.to_string()),
            Bind::I(scope.from_ms),
            Bind::I(scope.to_ms),
        ]);
        f.push_where(
            "tenant_id = $1 AND kind = 'visitor' AND created_at >= $2 AND created_at < $3",
        );
        if let Some(channel) = scope.channel {
            f.add("channel_id = ", Bind::S(channel.to_string()));
        }
        if let Some(agent) = scope.agent {
            f.add("assignee_id = ", Bind::S(agent.to_string()));
        }
        f.binds.push(Bind::I(i64::from(limit)));
        let sql = format!(
            "SELECT created_at, first_response_at, closed_at, rating FROM conversations \
             WHERE {} ORDER BY created_at LIMIT ${}",
            f.clause(),
            f.binds.len()
        );
        let rows = Self::bind_all(sqlx::query(&sql), &f.binds)
            .fetch_all(&self.read)
            .await?;
        rows.iter()
            .map(|row| {
                Ok(ConversationFacts {
                    created_ms: row.try_get(0)?,
                    first_response_ms: row.try_get(1)?,
                    closed_ms: row.try_get(2)?,
                    rating: row
                        .try_get::<Option<i64>, _>(3)?
                        .and_then(|r| u8::try_from(r).ok()),
                })
            })
            .collect()
    }
}
