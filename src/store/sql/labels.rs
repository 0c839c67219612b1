//! The SQL of labels: a tenant's labels, and the labels on rooms. Methods
//! of `Sql`, generic over the backend (see `super::Backend`).

use std::collections::HashMap;

use sqlx::{ColumnIndex, Decode, Encode, Executor, IntoArguments, Row, Type};

use crate::domain::{Label, LabelColor, LabelId, LabelName, Room, RoomId, RoomLabel, TenantId};
use crate::store::batch::Params;
use crate::store::{LabelChange, RoomLabelsSet, StoreError, StoreResult};

use super::{parse_id, parse_uuid, Backend, Sql};

const LABEL_COLUMNS: &str = "id, tenant_id, name, color";

/// A unique index refused the row: another label has this name.
fn name_taken<T>(result: Result<T, sqlx::Error>) -> StoreResult<Result<T, LabelChange>> {
    match result {
        Ok(done) => Ok(Ok(done)),
        Err(sqlx::Error::Database(e)) if e.is_unique_violation() => Ok(Err(LabelChange::NameTaken)),
        Err(e) => Err(e.into()),
    }
}

/// A room's labels as `Backend::LABELS` gives them: a JSON list, `NULL`
/// (PostgreSQL) when there are none.
pub(crate) fn parse_room_labels(raw: Option<&str>) -> StoreResult<Vec<RoomLabel>> {
    #[derive(serde::Deserialize)]
    struct Raw {
        uuid: String,
        name: String,
        color: String,
    }
    let Some(raw) = raw else {
        return Ok(Vec::new());
    };
    let list: Vec<Raw> = serde_json::from_str(raw)
        .map_err(|e| StoreError::Corrupt(format!("bad room labels: {e}")))?;
    list.into_iter()
        .map(|l| {
            Ok(RoomLabel {
                id: parse_id(&l.uuid)?,
                name: l.name,
                color: l.color,
            })
        })
        .collect()
}

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
    fn label_from_row(row: &DB::Row) -> StoreResult<Label> {
        Ok(Label {
            id: parse_id(&row.try_get::<String, _>(0)?)?,
            tenant_id: parse_id(&row.try_get::<String, _>(1)?)?,
            name: LabelName::from_stored(row.try_get(2)?),
            color: LabelColor::from_stored(row.try_get(3)?),
        })
    }

    pub(crate) async fn labels(&self, tenant: TenantId) -> StoreResult<Vec<Label>> {
        let sql = format!(
            "SELECT {LABEL_COLUMNS} FROM labels WHERE tenant_id = $1 ORDER BY name_key, id"
        );
        let rows = sqlx::query(&sql)
            .bind(tenant.to_string())
            .fetch_all(&self.read)
            .await?;
        rows.iter().map(Self::label_from_row).collect()
    }

    pub(crate) async fn label(&self, tenant: TenantId, id: LabelId) -> StoreResult<Option<Label>> {
        let sql = format!("SELECT {LABEL_COLUMNS} FROM labels WHERE id = $1 AND tenant_id = $2");
        let row = sqlx::query(&sql)
            .bind(id.to_string())
            .bind(tenant.to_string())
            .fetch_optional(&self.read)
            .await?;
        row.as_ref().map(Self::label_from_row).transpose()
    }

    pub(crate) async fn insert_label(&self, label: &Label, at_ms: i64) -> StoreResult<LabelChange> {
        let done = sqlx::query(
            "INSERT INTO labels (id, tenant_id, name, name_key, color, created_at) \
             VALUES ($1, $2, $3, $4, $5, $6)",
        )
        .bind(label.id.to_string())
        .bind(label.tenant_id.to_string())
        .bind(label.name.as_str())
        .bind(label.name.key())
        .bind(label.color.as_str())
        .bind(at_ms)
        .execute(&self.write)
        .await;
        Ok(match name_taken(done)? {
            Ok(_) => LabelChange::Done,
            Err(refused) => refused,
        })
    }

    pub(crate) async fn update_label(&self, label: &Label) -> StoreResult<LabelChange> {
        let done = sqlx::query(
            "UPDATE labels SET name = $1, name_key = $2, color = $3 WHERE id = $4 AND tenant_id = $5",
        )
        .bind(label.name.as_str())
        .bind(label.name.key())
        .bind(label.color.as_str())
        .bind(label.id.to_string())
        .bind(label.tenant_id.to_string())
        .execute(&self.write)
        .await;
        Ok(match name_taken(done)? {
            Ok(done) if super::RowsAffected::rows_affected(&done) == 0 => LabelChange::NotFound,
            Ok(_) => LabelChange::Done,
            Err(refused) => refused,
        })
    }

    pub(crate) async fn delete_label(&self, tenant: TenantId, id: LabelId) -> StoreResult<bool> {
        let mut tx = self.write.begin().await?;
        sqlx::query("DELETE FROM room_labels WHERE label_id = $1 AND tenant_id = $2")
            .bind(id.to_string())
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        let done = sqlx::query("DELETE FROM labels WHERE id = $1 AND tenant_id = $2")
            .bind(id.to_string())
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        tx.commit().await?;
        Ok(super::RowsAffected::rows_affected(&done) > 0)
    }

    pub(crate) async fn label_rooms(
        &self,
        tenant: TenantId,
        id: LabelId,
        limit: u32,
    ) -> StoreResult<Vec<RoomId>> {
        let rows = sqlx::query(
            "SELECT r.id FROM room_labels rl JOIN conversations r ON r.id = rl.room_id \
             WHERE rl.label_id = $1 AND rl.tenant_id = $2 AND r.state <> 'closed' \
             ORDER BY r.id LIMIT $3",
        )
        .bind(id.to_string())
        .bind(tenant.to_string())
        .bind(i64::from(limit))
        .fetch_all(&self.read)
        .await?;
        rows.iter()
            .map(|row| parse_id(&row.try_get::<String, _>(0)?))
            .collect()
    }

    pub(crate) async fn set_room_labels(
        &self,
        tenant: TenantId,
        room: RoomId,
        labels: &[LabelId],
    ) -> StoreResult<RoomLabelsSet> {
        let mut ids: Vec<String> = labels.iter().map(LabelId::to_string).collect();
        ids.sort();
        ids.dedup();
        let mut tx = self.write.begin().await?;
        // The room's row locked (PostgreSQL): concurrent changes of one
        // room's labels apply one after the other.
        let lock = if DB::LOCKS { " FOR UPDATE" } else { "" };
        let found = sqlx::query(&format!(
            "SELECT id FROM conversations WHERE id = $1 AND tenant_id = $2{lock}"
        ))
        .bind(room.to_string())
        .bind(tenant.to_string())
        .fetch_optional(&mut *tx)
        .await?;
        if found.is_none() {
            tx.rollback().await?;
            return Ok(RoomLabelsSet::UnknownRoom);
        }
        if !ids.is_empty() {
            let sql = format!(
                "SELECT COUNT(*) FROM labels WHERE tenant_id = $1 AND id IN ({})",
                Params::Numbered.list(2, ids.len())
            );
            let mut query = sqlx::query(&sql).bind(tenant.to_string());
            for id in &ids {
                query = query.bind(id.as_str());
            }
            let known: i64 = query.fetch_one(&mut *tx).await?.try_get(0)?;
            if usize::try_from(known).unwrap_or(0) != ids.len() {
                tx.rollback().await?;
                return Ok(RoomLabelsSet::UnknownLabel);
            }
        }
        sqlx::query("DELETE FROM room_labels WHERE room_id = $1 AND tenant_id = $2")
            .bind(room.to_string())
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        for id in &ids {
            sqlx::query(
                "INSERT INTO room_labels (room_id, label_id, tenant_id) VALUES ($1, $2, $3)",
            )
            .bind(room.to_string())
            .bind(id.as_str())
            .bind(tenant.to_string())
            .execute(&mut *tx)
            .await?;
        }
        tx.commit().await?;
        Ok(RoomLabelsSet::Done)
    }

    /// Adds each room's labels (by name, case-insensitively).
    pub(crate) async fn with_labels<'e, E>(executor: E, rooms: &mut [Room]) -> StoreResult<()>
    where
        E: sqlx::Executor<'e, Database = DB>,
    {
        if rooms.is_empty() {
            return Ok(());
        }
        let sql = format!(
            "SELECT rl.room_id, l.id, l.name, l.color FROM room_labels rl \
             JOIN labels l ON l.id = rl.label_id \
             WHERE rl.room_id IN ({}) ORDER BY l.name_key, l.id",
            Params::Numbered.list(1, rooms.len())
        );
        let mut query = sqlx::query(&sql);
        for r in rooms.iter() {
            query = query.bind(r.id.to_string());
        }
        let rows = query.fetch_all(executor).await?;
        let at: HashMap<uuid::Uuid, usize> =
            rooms.iter().enumerate().map(|(i, r)| (r.id.0, i)).collect();
        for row in rows {
            let room = parse_uuid(&row.try_get::<String, _>(0)?)?;
            if let Some(&i) = at.get(&room) {
                rooms[i].labels.push(RoomLabel {
                    id: parse_id(&row.try_get::<String, _>(1)?)?,
                    name: row.try_get(2)?,
                    color: row.try_get(3)?,
                });
            }
        }
        Ok(())
    }
}
