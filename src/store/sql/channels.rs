//! The SQL of channels. Methods of `Sql`, generic over the backend (see
//! `super::Backend`).

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::{Channel, ChannelId, ChannelLook, Routing, TenantId};
use crate::store::{StoreError, StoreResult};

use super::{
    encode_desk, encode_origins, parse_assignment, parse_desk, parse_id, parse_origins, Backend,
    Sql, CHANNEL_COLUMNS,
};

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
    pub(crate) fn channel_from_row(row: &DB::Row) -> StoreResult<Channel> {
        Ok(Channel {
            id: parse_id(&row.try_get::<String, _>(0)?)?,
            tenant_id: parse_id(&row.try_get::<String, _>(1)?)?,
            name: row.try_get(2)?,
            image_url: row.try_get(3)?,
            allowed_origins: parse_origins(&row.try_get::<String, _>(4)?)?,
            connected: row.try_get::<i64, _>(5)? != 0,
            created_at_ms: row.try_get(6)?,
            look: ChannelLook {
                welcome_message: row.try_get(7)?,
                color: row.try_get(8)?,
                email_fallback: row.try_get::<i64, _>(15)? != 0,
            },
            routing: Routing {
                assignment: parse_assignment(&row.try_get::<String, _>(9)?)?,
                max_open_per_agent: u32::try_from(row.try_get::<i64, _>(10)?)
                    .map_err(|_| StoreError::Corrupt("bad max_open_per_agent".into()))?,
                bot: row
                    .try_get::<Option<String>, _>(16)?
                    .as_deref()
                    .map(parse_id)
                    .transpose()?,
            },
            desk: parse_desk(
                row.try_get(11)?,
                row.try_get(12)?,
                row.try_get(13)?,
                row.try_get(14)?,
            )?,
        })
    }

    pub(crate) async fn insert_channel_on<'c, E>(executor: E, channel: &Channel) -> StoreResult<()>
    where
        E: sqlx::Executor<'c, Database = DB>,
    {
        sqlx::query(
            "INSERT INTO channels (id, tenant_id, name, image_url, allowed_origins, connected, created_at, \
             welcome_message, color, assignment, max_open_per_agent, \
             business_hours, away_message, prechat, auto_close_hours, email_fallback, bot_id) \
             VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)",
        )
        .bind(channel.id.to_string())
        .bind(channel.tenant_id.to_string())
        .bind(&channel.name)
        .bind(&channel.image_url)
        .bind(encode_origins(&channel.allowed_origins))
        .bind(i64::from(channel.connected))
        .bind(channel.created_at_ms)
        .bind(&channel.look.welcome_message)
        .bind(&channel.look.color)
        .bind(channel.routing.assignment.as_str())
        .bind(i64::from(channel.routing.max_open_per_agent))
        .bind(encode_desk(&channel.desk).0)
        .bind(channel.desk.away_message.clone())
        .bind(encode_desk(&channel.desk).1)
        .bind(channel.desk.auto_close_hours.map(i64::from))
        .bind(i64::from(channel.look.email_fallback))
        .bind(channel.routing.bot.map(|b| b.to_string()))
        .execute(executor)
        .await?;
        Ok(())
    }

    pub(crate) async fn insert_channel(&self, channel: &Channel) -> StoreResult<()> {
        Self::insert_channel_on(&self.write, channel).await
    }

    pub(crate) async fn channel(
        &self,
        tenant: TenantId,
        id: ChannelId,
    ) -> StoreResult<Option<Channel>> {
        let sql = format!(
            "SELECT {} FROM channels WHERE id = $1 AND tenant_id = $2",
            CHANNEL_COLUMNS
        );
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::channel_from_row).transpose()
    }

    pub(crate) async fn public_channel(&self, id: ChannelId) -> StoreResult<Option<Channel>> {
        let sql = format!("SELECT {} FROM channels WHERE id = $1", CHANNEL_COLUMNS);
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::channel_from_row).transpose()
    }

    pub(crate) async fn channels(&self, tenant: TenantId) -> StoreResult<Vec<Channel>> {
        let sql = format!(
            "SELECT {} FROM channels WHERE tenant_id = $1 ORDER BY created_at, id",
            CHANNEL_COLUMNS
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(Self::channel_from_row).collect()
    }

    pub(crate) async fn update_channel(&self, channel: &Channel) -> StoreResult<()> {
        sqlx::query(
            "UPDATE channels SET name = $1, image_url = $2, allowed_origins = $3, connected = $4, \
                     welcome_message = $5, color = $6, assignment = $7, max_open_per_agent = $8, \
                     business_hours = $9, away_message = $10, prechat = $11, auto_close_hours = $12, \
                     email_fallback = $15, bot_id = $16 WHERE id = $13 AND tenant_id = $14",
        )
        .bind(&channel.name)
        .bind(&channel.image_url)
        .bind(encode_origins(&channel.allowed_origins))
        .bind(i64::from(channel.connected))
        .bind(&channel.look.welcome_message)
        .bind(&channel.look.color)
        .bind(channel.routing.assignment.as_str())
        .bind(i64::from(channel.routing.max_open_per_agent))
        .bind(encode_desk(&channel.desk).0)
        .bind(channel.desk.away_message.clone())
        .bind(encode_desk(&channel.desk).1)
        .bind(channel.desk.auto_close_hours.map(i64::from))
        .bind(channel.id.to_string())
        .bind(channel.tenant_id.to_string())
        .bind(i64::from(channel.look.email_fallback))
        .bind(channel.routing.bot.map(|b| b.to_string()))
        .execute(&self.write)
        .await?;
        Ok(())
    }
}
