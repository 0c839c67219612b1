//! Labels (desk-api.md, "Support desk"): a tenant's tags for visitor
//! conversations. Any agent lists them and puts them on the visitor rooms
//! it is a member of; only admins create, change and delete them. Every
//! change to a room's labels is told to the room's agents
//! (`chatd_room_labels_updated`, the room as it is now); so is a rename,
//! recolour or deletion, for the rooms not closed that carry the label.

use std::sync::Arc;

use super::error::{Conflict, Missing, ServiceError};
use super::rooms::{RoomRef, RoomService};
use super::{Caller, Events, Parts};
use crate::domain::event::Agents;
use crate::domain::{
    time::now_ms, Event, Label, LabelColor, LabelId, LabelName, LiveRoom, Published, RoomId,
    RoomKind, RoomState, RoomSummary, TenantId,
};
use crate::store::{LabelChange, LabelStore, RoomLabelsSet, RoomStore};

/// Most labels on one room.
pub const MAX_PER_ROOM: usize = 20;
/// Most labels of a tenant.
pub const MAX_PER_TENANT: usize = 500;
/// Most rooms told of one label's change (the rooms not closed that carry
/// it; consoles showing others read the change on their next load).
const MAX_ROOMS_TOLD: u32 = 500;

/// A label's fields as a request gives them (absent: unchanged, on a patch).
#[derive(Debug, Default)]
pub struct LabelFields {
    pub name: Option<String>,
    pub color: Option<String>,
}

pub struct LabelService {
    label_store: Arc<dyn LabelStore>,
    room_store: Arc<dyn RoomStore>,
    rooms: Arc<RoomService>,
    events: Events,
}

impl LabelService {
    pub fn new(parts: &Parts, rooms: Arc<RoomService>) -> LabelService {
        LabelService {
            label_store: parts.store.clone(),
            room_store: parts.store.clone(),
            rooms,
            events: parts.events(),
        }
    }

    /// `GET /labels`: the tenant's labels, by name (any agent).
    pub async fn list(&self, caller: &Caller) -> Result<Vec<Label>, ServiceError> {
        Ok(self.label_store.labels(caller.tenant()).await?)
    }

    /// `POST /labels` (admins): 409 `label-already-exists` when the tenant
    /// has a label of this name, whatever its case.
    pub async fn create(
        &self,
        caller: &Caller,
        fields: LabelFields,
    ) -> Result<Label, ServiceError> {
        caller.require_admin()?;
        let name = parse_name(fields.name.as_deref().unwrap_or(""))?;
        let color = parse_color(fields.color.as_deref().unwrap_or(""))?;
        let existing = self.label_store.labels(caller.tenant()).await?;
        if existing.len() >= MAX_PER_TENANT {
            return Err(ServiceError::invalid(format!(
                "a team has at most {MAX_PER_TENANT} labels"
            )));
        }
        let label = Label {
            id: LabelId::new(),
            tenant_id: caller.tenant(),
            name,
            color,
        };
        match self.label_store.insert_label(&label, now_ms()).await? {
            LabelChange::Done => Ok(label),
            LabelChange::NameTaken => Err(ServiceError::Conflict(Conflict::LabelAlreadyExists)),
            LabelChange::NotFound => Err(ServiceError::internal("a new label was not found")),
        }
    }

    /// `PATCH /labels/<uuid>` (admins): a new name, colour or both.
    pub async fn update(
        &self,
        caller: &Caller,
        id: LabelId,
        fields: LabelFields,
    ) -> Result<Label, ServiceError> {
        caller.require_admin()?;
        let name = fields.name.as_deref().map(parse_name).transpose()?;
        let color = fields.color.as_deref().map(parse_color).transpose()?;
        let mut label = self
            .label_store
            .label(caller.tenant(), id)
            .await?
            .ok_or(ServiceError::NotFound(Missing::Label))?;
        if name.is_none() && color.is_none() {
            return Ok(label);
        }
        if let Some(name) = name {
            label.name = name;
        }
        if let Some(color) = color {
            label.color = color;
        }
        match self.label_store.update_label(&label).await? {
            LabelChange::Done => {}
            LabelChange::NotFound => return Err(ServiceError::NotFound(Missing::Label)),
            LabelChange::NameTaken => {
                return Err(ServiceError::Conflict(Conflict::LabelAlreadyExists))
            }
        }
        let rooms = self
            .label_store
            .label_rooms(caller.tenant(), id, MAX_ROOMS_TOLD)
            .await?;
        self.tell_rooms(caller.tenant(), &rooms).await;
        Ok(label)
    }

    /// `DELETE /labels/<uuid>` (admins): the label leaves every room.
    pub async fn delete(&self, caller: &Caller, id: LabelId) -> Result<(), ServiceError> {
        caller.require_admin()?;
        let rooms = self
            .label_store
            .label_rooms(caller.tenant(), id, MAX_ROOMS_TOLD)
            .await?;
        if !self.label_store.delete_label(caller.tenant(), id).await? {
            return Err(ServiceError::NotFound(Missing::Label));
        }
        self.tell_rooms(caller.tenant(), &rooms).await;
        Ok(())
    }

    /// `PUT /users/me/rooms/<room>/labels`: the room's labels become
    /// exactly `labels` (a repeated one counts once; at most
    /// [`MAX_PER_ROOM`]; each one of the tenant's, else 400 naming
    /// `labels`). Visitor rooms the caller is a member of (404 otherwise;
    /// an agent room: 409 `not-a-visitor-room`).
    pub async fn set_room_labels(
        &self,
        caller: &Caller,
        room: RoomRef,
        labels: Vec<LabelId>,
    ) -> Result<LiveRoom, ServiceError> {
        let mut labels = labels;
        labels.sort();
        labels.dedup();
        if labels.len() > MAX_PER_ROOM {
            return Err(ServiceError::field(
                "labels",
                format!("a conversation has at most {MAX_PER_ROOM} labels"),
            ));
        }
        let room = self.rooms.member_room_at(caller, room).await?;
        if room.kind != RoomKind::Visitor {
            return Err(ServiceError::Conflict(Conflict::NotAVisitorRoom));
        }
        match self
            .label_store
            .set_room_labels(caller.tenant(), room.id, &labels)
            .await?
        {
            RoomLabelsSet::Done => {}
            RoomLabelsSet::UnknownRoom => return Err(ServiceError::NotFound(Missing::Room)),
            RoomLabelsSet::UnknownLabel => {
                return Err(ServiceError::field(
                    "labels",
                    "labels must be uuids of this team's labels",
                ))
            }
        }
        let room = self
            .room_store
            .room(caller.tenant(), room.id)
            .await?
            .ok_or(ServiceError::NotFound(Missing::Room))?;
        let live = self.rooms.live(RoomSummary::bare(room)).await;
        self.publish(&live).await;
        Ok(live)
    }

    /// Tells the agents of each room (the tenant, for a queued one) of its
    /// labels as they are now.
    async fn tell_rooms(&self, tenant: TenantId, rooms: &[RoomId]) {
        for id in rooms {
            let room = match self.room_store.room(tenant, *id).await {
                Ok(Some(room)) => room,
                Ok(None) => continue,
                Err(err) => {
                    tracing::warn!(%err, "cannot read a labelled room");
                    continue;
                }
            };
            let live = self.rooms.live(RoomSummary::bare(room)).await;
            self.publish(&live).await;
        }
    }

    async fn publish(&self, live: &LiveRoom) {
        let room = live.room();
        let agents = match room.state {
            RoomState::Queued => Agents::Tenant,
            _ if room.agents().is_empty() => return,
            _ => Agents::Only { ids: room.agents() },
        };
        self.events
            .publish(Published {
                event: Event::RoomLabelsChanged { room: live.clone() },
                tenant_id: room.tenant_id,
                visitor_room: None,
                agents,
            })
            .await;
    }
}

fn parse_name(raw: &str) -> Result<LabelName, ServiceError> {
    LabelName::parse(raw).map_err(|m| ServiceError::field("name", m))
}

fn parse_color(raw: &str) -> Result<LabelColor, ServiceError> {
    LabelColor::parse(raw).map_err(|m| ServiceError::field("color", m))
}
