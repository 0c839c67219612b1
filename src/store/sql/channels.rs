//! The SQL of channels. See `sql_store!` for how it is instantiated per
//! backend.

/// Implements the channels area for `$store` (which has `read` and `write` pools of `$db`).
macro_rules! channels_sql {
    ($store:ty, $db:ty) => {
        impl $store {
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
                    look: $crate::domain::ChannelLook {
                        welcome_message: row.try_get(7)?,
                        color: row.try_get(8)?,
                    },
                    routing: $crate::domain::Routing {
                        assignment: parse_assignment(&row.try_get::<String, _>(9)?)?,
                        max_open_per_agent: u32::try_from(row.try_get::<i64, _>(10)?)
                            .map_err(|_| $crate::store::StoreError::Corrupt("bad max_open_per_agent".into()))?,
                    },
                })
            }

            async fn insert_channel_on<'c, E>(
                executor: E,
                channel: &$crate::domain::Channel,
            ) -> $crate::store::StoreResult<()>
            where
                E: sqlx::Executor<'c, Database = $db>,
            {
                sqlx::query(
                    "INSERT INTO channels (id, tenant_id, name, image_url, allowed_origins, connected, created_at, \
                     welcome_message, color, assignment, max_open_per_agent) \
                     VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)",
                )
                .bind(channel.id.to_string())
                .bind(channel.tenant_id.to_string())
                .bind(&channel.name)
                .bind(&channel.image_url)
                .bind($crate::store::sql::encode_origins(&channel.allowed_origins))
                .bind(i64::from(channel.connected))
                .bind(channel.created_at_ms)
                .bind(&channel.look.welcome_message)
                .bind(&channel.look.color)
                .bind(channel.routing.assignment.as_str())
                .bind(i64::from(channel.routing.max_open_per_agent))
                .execute(executor)
                .await?;
                Ok(())
            }
        }

        #[async_trait::async_trait]
        impl $crate::store::ChannelStore for $store {
            async fn insert_channel(
                &self,
                channel: &$crate::domain::Channel,
            ) -> $crate::store::StoreResult<()> {
                Self::insert_channel_on(&self.write, channel).await
            }

            async fn channel(
                &self,
                tenant: $crate::domain::TenantId,
                id: $crate::domain::ChannelId,
            ) -> $crate::store::StoreResult<Option<$crate::domain::Channel>> {
                let sql = format!(
                    "SELECT {} FROM channels WHERE id = $1 AND tenant_id = $2",
                    $crate::store::sql::CHANNEL_COLUMNS
                );
                let row = sqlx::query(&sql)
                    .bind(id.to_string())
                    .bind(tenant.to_string())
                    .fetch_optional(&self.read)
                    .await?;
                row.as_ref().map(Self::channel_from_row).transpose()
            }

            async fn public_channel(
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
                    "UPDATE channels SET name = $1, image_url = $2, allowed_origins = $3, connected = $4, \
                     welcome_message = $5, color = $6, assignment = $7, max_open_per_agent = $8 \
                     WHERE id = $9 AND tenant_id = $10",
                )
                .bind(&channel.name)
                .bind(&channel.image_url)
                .bind($crate::store::sql::encode_origins(&channel.allowed_origins))
                .bind(i64::from(channel.connected))
                .bind(&channel.look.welcome_message)
                .bind(&channel.look.color)
                .bind(channel.routing.assignment.as_str())
                .bind(i64::from(channel.routing.max_open_per_agent))
                .bind(channel.id.to_string())
                .bind(channel.tenant_id.to_string())
                .execute(&self.write)
                .await?;
                Ok(())
            }

        }
    };
}

pub(crate) use channels_sql;
