//! Rooms: agent rooms, visitor rooms, membership, the queue and its answer,
//! read positions, supervision. An agent sees only rooms it is a member of
//! (anything else is 404 `unknown-room`), and its tenant's queues (reading
//! a queued room before answering it); an admin also reads every visitor
//! room of its tenant and assigns any that is not closed. Reading a room
//! one is not in marks nothing read and tells no one.

use std::collections::HashSet;
use std::sync::Arc;

use uuid::Uuid;

use super::error::{Conflict, Missing, ServiceError};
use super::{Caller, Events, Parts};
use crate::domain::event::Agents;
use crate::domain::room::parse_room_name;
use crate::domain::webhook::EventType;
use crate::domain::{
    time::now_ms, ChannelId, DeliveryState, Event, LiveRoom, Member, Message, MessageId, Notice,
    Published, QueueAction, Room, RoomId, RoomKind, RoomState, RoomSummary, SenderKind,
};
use crate::presence::PresenceKey;
use crate::service::messages::Listing;
pub use crate::store::RoomFilter;
use crate::store::{Added, Answered, MemberAdded, MessageQuery, NewMessage, Page};

/// Most members of an agent room.
pub const MAX_MEMBERS: usize = 100;
/// Largest page of rooms.
pub const MAX_PAGE: u32 = 100;

/// The state a close or reopen asks for: `closed` or `open` (400 naming
/// `state` otherwise).
pub fn requested_state(raw: &str) -> Result<RoomState, ServiceError> {
    match RoomState::parse(raw) {
        Some(state @ (RoomState::Open | RoomState::Closed)) => Ok(state),
        _ => Err(not_open_or_closed()),
    }
}

fn not_open_or_closed() -> ServiceError {
    ServiceError::field("state", "state must be closed or open")
}

/// A room an agent's call names: by its id, or as read together with the
/// caller's session (`AgentService::authenticate_at`: `None` when the
/// caller's tenant has no such room), so the call reads the store once.
// A `Room` (with its labels and rating) is large; these values are short-lived.
#[allow(clippy::large_enum_variant)]
#[derive(Debug, Clone)]
pub enum RoomRef {
    Id(RoomId),
    Read(RoomId, Option<Room>),
}

pub struct RoomService {
    room_store: Arc<dyn crate::store::RoomStore>,
    /// Hand-overs back to the queue (applications).
    application_store: Arc<dyn crate::store::ApplicationStore>,
    agent_store: Arc<dyn crate::store::AgentStore>,
    message_store: Arc<dyn crate::store::MessageStore>,
    visitor_store: Arc<dyn crate::store::VisitorStore>,
    presence: Arc<crate::presence::Presence>,
    router: super::routing::RouterHandle,
    events: Events,
    max_search_chars: usize,
    /// The webhook events of the rooms' changes.
    webhooks: Arc<super::webhooks::WebhookService>,
    /// The queue's wait times.
    metrics: Arc<crate::metrics::Metrics>,
}

pub fn unknown_room() -> ServiceError {
    ServiceError::NotFound(Missing::Room)
}

impl RoomService {
    pub fn new(parts: &Parts, webhooks: Arc<super::webhooks::WebhookService>) -> RoomService {
        RoomService {
            webhooks,
            room_store: parts.store.clone(),
            application_store: parts.store.clone(),
            agent_store: parts.store.clone(),
            message_store: parts.store.clone(),
            visitor_store: parts.store.clone(),
            presence: parts.presence.clone(),
            router: parts.router.clone(),
            events: parts.events(),
            max_search_chars: parts.config.max_search_chars,
            metrics: parts.metrics.clone(),
        }
    }

    /// The webhooks' events, for the services that change rooms too.
    pub fn webhooks(&self) -> &Arc<super::webhooks::WebhookService> {
        &self.webhooks
    }

    /// The rows of a room change's webhook events (`kinds`, in order),
    /// when an endpoint of the tenant wants any.
    async fn hooks(
        &self,
        tenant: crate::domain::TenantId,
        kinds: &[EventType],
    ) -> Option<crate::store::RoomRows> {
        self.webhooks.room_rows(tenant, kinds).await
    }

    /// Rows were written (`hooked`): the outbox worker looks at once.
    fn hooked<T>(&self, then: &Option<T>) {
        if then.is_some() {
            self.webhooks.wake();
        }
    }

    /// The room, if the caller is a member (404 `unknown-room` otherwise).
    pub async fn member_room(&self, caller: &Caller, id: RoomId) -> Result<Room, ServiceError> {
        self.member_room_at(caller, RoomRef::Id(id)).await
    }

    /// `member_room` of a room named by id, or already read with the
    /// caller's session (no second read).
    pub async fn member_room_at(&self, caller: &Caller, at: RoomRef) -> Result<Room, ServiceError> {
        let room = match at {
            RoomRef::Id(id) => self.room_store.room(caller.tenant(), id).await?,
            RoomRef::Read(_, room) => room,
        };
        room.filter(|r| r.tenant_id == caller.tenant() && r.has_member(caller.id().0))
            .ok_or_else(unknown_room)
    }

    /// `POST /users/me/rooms`: an agent room with these agents and the caller,
    /// or the existing room with exactly these members (`created` false).
    pub async fn create(
        &self,
        caller: &Caller,
        name: Option<String>,
        users: Vec<Uuid>,
    ) -> Result<(LiveRoom, bool), ServiceError> {
        let name = name
            .map(|n| parse_room_name(&n).map_err(|m| ServiceError::field("name", m)))
            .transpose()?;
        let mut seen = HashSet::new();
        for user in &users {
            if !seen.insert(*user) {
                return Err(ServiceError::DuplicateUser(*user));
            }
        }
        let mut ids = users;
        if !seen.contains(&caller.id().0) {
            ids.insert(0, caller.id().0);
        }
        if ids.len() < 2 || ids.len() > MAX_MEMBERS {
            return Err(ServiceError::field(
                "users",
                format!("a room has 2 to {MAX_MEMBERS} members, the caller included"),
            ));
        }
        for id in &ids {
            let known = self
                .agent_store
                .agent(caller.tenant(), crate::domain::AgentId(*id))
                .await?
                .is_some_and(|a| !a.disabled && !a.is_application());
            if !known {
                return Err(ServiceError::field("users", format!("unknown user {id}")));
            }
        }
        let room = Room {
            id: RoomId::new(),
            tenant_id: caller.tenant(),
            kind: RoomKind::Agent,
            channel_id: None,
            name,
            state: RoomState::Open,
            assignee: None,
            created_at_ms: now_ms(),
            queued_at_ms: None,
            last_seq: 0,
            members: ids
                .into_iter()
                .map(|id| Member {
                    id,
                    kind: RoomKind::Agent,
                })
                .collect(),
            labels: Vec::new(),
            rating: None,
            prechat: None,
            verified: false,
            blocked: false,
        };
        let (room, created) = match self.room_store.create_agent_room(&room).await? {
            Added::Added(room) => (room, true),
            Added::AlreadyExists(room) => (room, false),
        };
        if created {
            self.events
                .publish(Published {
                    event: Event::RoomCreated {
                        room: LiveRoom {
                            summary: RoomSummary::bare(room.clone()),
                            visitor_connected: None,
                        },
                    },
                    tenant_id: room.tenant_id,
                    visitor_room: None,
                    agents: Agents::Only { ids: room.agents() },
                })
                .await;
        }
        let unread = self
            .room_store
            .unread_count(caller.tenant(), room.id, caller.id().0)
            .await?;
        // An existing room is returned as the caller's list shows it: with
        // its newest message.
        let last_message = if created {
            None
        } else {
            self.last_message(&room).await?
        };
        let summary = RoomSummary {
            unread_mentions: 0,
            room,
            unread_count: unread,
            last_message,
        };
        Ok((self.live(summary).await, created))
    }

    /// The newest message of a room, if any.
    async fn last_message(&self, room: &Room) -> Result<Option<Message>, ServiceError> {
        let newest = MessageQuery {
            limit: 1,
            offset: 0,
            ascending: false,
            from_ms: None,
            before_seq: None,
            after_seq: None,
            search: None,
        };
        let page = self
            .message_store
            .room_messages(room.tenant_id, room.id, &newest)
            .await?;
        Ok(page.items.into_iter().next())
    }

    /// The caller's rooms containing every user of `with` (and matching
    /// `filter`: state `Open` is every room not closed), newest activity first.
    pub async fn list(
        &self,
        caller: &Caller,
        with: &[Uuid],
        filter: RoomFilter,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<Page<LiveRoom>, ServiceError> {
        let limit = limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let page = self
            .room_store
            .member_rooms(
                caller.tenant(),
                caller.id().0,
                with,
                &filter,
                limit,
                offset.unwrap_or(0),
            )
            .await?;
        Ok(self.live_page(page).await)
    }

    /// The queued visitor rooms of the caller's tenant (of one channel or all), oldest first.
    pub async fn queue(
        &self,
        caller: &Caller,
        channel: Option<ChannelId>,
    ) -> Result<Vec<LiveRoom>, ServiceError> {
        let queued = self.room_store.queue(caller.tenant(), channel).await?;
        let connected = self
            .visitors_connected(queued.iter().map(|s| &s.room))
            .await;
        Ok(queued
            .into_iter()
            .map(|summary| connected.live(summary))
            .collect())
    }

    /// `PUT /queues/<room>/answer`: the caller joins and becomes assignee.
    /// Exactly one of concurrent answers (on any instance) wins; the others
    /// get 409 `already-answered`.
    pub async fn answer(&self, caller: &Caller, id: RoomId) -> Result<LiveRoom, ServiceError> {
        let room = self
            .room_store
            .room(caller.tenant(), id)
            .await?
            .filter(|r| r.kind == RoomKind::Visitor)
            .ok_or_else(unknown_room)?;
        if room.state != RoomState::Queued {
            return Err(already_answered());
        }
        let then = self
            .hooks(caller.tenant(), &[EventType::ConversationAssigned])
            .await;
        let at = now_ms();
        let room = match self
            .room_store
            .answer(caller.tenant(), id, caller.id(), at, then.clone())
            .await?
        {
            Answered::Won(room) => room,
            Answered::AlreadyAnswered => return Err(already_answered()),
        };
        self.metrics.queue_left("answered", &room, at);
        self.hooked(&then);
        let notice = self
            .joined(&room, &caller.agent.display_name, QueueAction::Answered)
            .await?;
        let unread = self
            .room_store
            .unread_count(caller.tenant(), room.id, caller.id().0)
            .await?;
        let summary = RoomSummary {
            unread_mentions: 0,
            room,
            unread_count: unread,
            last_message: Some(notice),
        };
        Ok(self.live(summary).await)
    }

    /// A queued room got its agent (`action`: answered or assigned): the
    /// visitor hears who joined, as a system notice (returned), and the
    /// tenant's agents see the room leave the queue.
    pub(super) async fn joined(
        &self,
        room: &Room,
        agent_name: &str,
        action: QueueAction,
    ) -> Result<crate::domain::Message, ServiceError> {
        let notice = self.notice(room, Notice::agent_joined(agent_name)).await?;
        let room = self.live(RoomSummary::bare(room.clone())).await;
        self.events
            .publish(Published {
                tenant_id: room.room().tenant_id,
                event: Event::QueueUpdated { action, room },
                visitor_room: None,
                agents: Agents::Tenant,
            })
            .await;
        Ok(notice)
    }

    /// `PUT .../read`: the caller has read the room up to `up_to_seq` (all
    /// when `None`). In a visitor room the visitor gets its read receipt.
    pub async fn read(
        &self,
        caller: &Caller,
        id: RoomId,
        up_to_seq: Option<i64>,
    ) -> Result<(), ServiceError> {
        if up_to_seq.is_some_and(|n| n < 0) {
            return Err(ServiceError::field(
                "up_to_seq",
                "up_to_seq must be a non-negative integer",
            ));
        }
        let room = self.member_room(caller, id).await?;
        let seq = self
            .room_store
            .mark_read(caller.tenant(), id, caller.id().0, up_to_seq)
            .await?;
        self.events
            .publish(Published {
                event: Event::RoomRead {
                    room: id,
                    reader: caller.id().0,
                    up_to_seq: seq,
                },
                tenant_id: room.tenant_id,
                visitor_room: None,
                agents: Agents::Only {
                    ids: vec![caller.id()],
                },
            })
            .await;
        if room.kind == RoomKind::Visitor && seq > 0 {
            self.events
                .publish(Published {
                    event: Event::ReadByAgent {
                        conversation_id: id,
                        up_to_seq: seq,
                    },
                    tenant_id: room.tenant_id,
                    visitor_room: Some(id),
                    agents: Agents::Nobody,
                })
                .await;
        }
        Ok(())
    }

    /// `POST .../transfers`: hands a visitor room the caller is in to another
    /// agent of the tenant, who joins and becomes assignee; the caller leaves.
    pub async fn transfer(
        &self,
        caller: &Caller,
        id: RoomId,
        to: Uuid,
    ) -> Result<LiveRoom, ServiceError> {
        let room = self.member_room(caller, id).await?;
        if room.kind != RoomKind::Visitor {
            return Err(ServiceError::invalid("only visitor rooms are transferred"));
        }
        let target = self
            .agent_store
            .agent(caller.tenant(), crate::domain::AgentId(to))
            .await?
            .filter(|a| !a.disabled && !a.is_application() && a.id != caller.id())
            .ok_or_else(|| {
                ServiceError::field("user_uuid", "user_uuid must be another agent of the tenant")
            })?;
        let room = self.hand_over(&room, &caller.agent, &target).await?;
        self.as_seen_by(caller, room, None).await
    }

    /// Hands a visitor room from `from` (who leaves) to `to` (who joins and
    /// becomes assignee): the `transferred` notice to the visitor and the
    /// room's agents, the new room to `to`, the state to both.
    async fn hand_over(
        &self,
        room: &Room,
        from: &crate::domain::Agent,
        to: &crate::domain::Agent,
    ) -> Result<Room, ServiceError> {
        let then = self
            .hooks(room.tenant_id, &[EventType::ConversationTransferred])
            .await;
        let room = self
            .room_store
            .transfer(
                room.tenant_id,
                room.id,
                from.id,
                to.id,
                now_ms(),
                then.clone(),
            )
            .await?
            .ok_or_else(unknown_room)?;
        self.hooked(&then);
        self.notice(
            &room,
            Notice::transferred(&to.display_name, &from.display_name),
        )
        .await?;
        self.room_created(&room, to.id).await;
        let mut told = room.agents();
        told.push(from.id);
        self.state_event(&room, told).await;
        Ok(room)
    }

    /// `POST .../handover`: an application hands a visitor room it is in
    /// back to its channel's queue: it leaves (the `agent_left` notice),
    /// the room waits again with its whole history (the tenant's agents see
    /// it enter the queue, `conversation.queued`), and the channel's
    /// `assignment` applies (round robin is kicked). Not in the room: 404;
    /// a person: 403 (agents transfer); a room not open: 409.
    pub async fn handover(&self, caller: &Caller, id: RoomId) -> Result<LiveRoom, ServiceError> {
        if !caller.is_application() {
            return Err(ServiceError::Forbidden(
                "hand-over is for applications; agents transfer a conversation",
            ));
        }
        let room = self.member_room(caller, id).await?;
        if room.kind != RoomKind::Visitor {
            return Err(ServiceError::invalid("only visitor rooms are handed over"));
        }
        if room.state == RoomState::Closed {
            return Err(ServiceError::Conflict(Conflict::RoomClosed));
        }
        let room = self.requeue_from(&room, &caller.agent).await?;
        self.as_seen_by(caller, room, None).await
    }

    /// `from` (an application) leaves an open visitor room, which returns
    /// to the queue: see [`RoomService::handover`].
    pub(super) async fn requeue_from(
        &self,
        room: &Room,
        from: &crate::domain::Agent,
    ) -> Result<Room, ServiceError> {
        let then = self
            .hooks(room.tenant_id, &[EventType::ConversationQueued])
            .await;
        let room = self
            .application_store
            .requeue(room.tenant_id, room.id, from.id, now_ms(), then.clone())
            .await?
            .ok_or_else(unknown_room)?;
        self.hooked(&then);
        self.notice(&room, Notice::agent_left(&from.display_name))
            .await?;
        // The application sees the room as it left it; the tenant's agents
        // see it enter the queue, as a new visitor's room.
        self.state_event(&room, vec![from.id]).await;
        let live = self.live(RoomSummary::bare(room.clone())).await;
        self.events
            .publish(Published {
                event: Event::QueueUpdated {
                    action: QueueAction::Queued,
                    room: live,
                },
                tenant_id: room.tenant_id,
                visitor_room: None,
                agents: Agents::Tenant,
            })
            .await;
        self.router.kick(room.tenant_id);
        Ok(room)
    }

    /// A visitor room of `tenant`, whoever asks (the services' own work).
    pub(super) async fn visitor_room_of(
        &self,
        tenant: crate::domain::TenantId,
        id: RoomId,
    ) -> Result<Room, ServiceError> {
        self.room_store
            .room(tenant, id)
            .await?
            .filter(|r| r.kind == RoomKind::Visitor)
            .ok_or_else(unknown_room)
    }

    /// A channel's bot takes a new conversation (just queued by its first
    /// message) before anyone else: it joins and becomes assignee
    /// (`conversation.assigned`), and hears `chatd_user_room_created`. No
    /// notice: the bot's own first reply introduces it. False (the room
    /// stays in the queue, and routing applies) when the application is
    /// revoked or the room was answered meanwhile.
    pub async fn bot_takes(
        &self,
        tenant: crate::domain::TenantId,
        id: RoomId,
        bot: crate::domain::AgentId,
    ) -> Result<bool, ServiceError> {
        let live = self
            .agent_store
            .agent(tenant, bot)
            .await?
            .is_some_and(|a| a.is_application() && !a.disabled);
        if !live {
            return Ok(false);
        }
        let then = self.hooks(tenant, &[EventType::ConversationAssigned]).await;
        let room = match self
            .room_store
            .answer(tenant, id, bot, now_ms(), then.clone())
            .await?
        {
            Answered::Won(room) => room,
            Answered::AlreadyAnswered => return Ok(false),
        };
        self.hooked(&then);
        self.room_created(&room, bot).await;
        Ok(true)
    }

    /// `POST .../members`: the caller, a member of an agent room, adds an
    /// enabled agent of its tenant (400 naming `user_uuid` otherwise). The
    /// new member reads the whole history; everyone in the room, the new
    /// member included, hears `chatd_user_room_member_added` and then the
    /// `member_added` notice.
    pub async fn add_member(
        &self,
        caller: &Caller,
        id: RoomId,
        user: Uuid,
    ) -> Result<LiveRoom, ServiceError> {
        let room = self.group_room(caller, id).await?;
        let target = self
            .agent_store
            .agent(caller.tenant(), crate::domain::AgentId(user))
            .await?
            .filter(|a| !a.disabled && !a.is_application())
            .ok_or_else(|| {
                ServiceError::field("user_uuid", "user_uuid must be an agent of the tenant")
            })?;
        if room.has_member(user) {
            return Err(ServiceError::Conflict(Conflict::AlreadyAMember));
        }
        let room = match self
            .room_store
            .add_member(caller.tenant(), id, target.id, MAX_MEMBERS, now_ms())
            .await?
        {
            MemberAdded::Added(room) => room,
            MemberAdded::AlreadyMember => {
                return Err(ServiceError::Conflict(Conflict::AlreadyAMember))
            }
            MemberAdded::Full => {
                return Err(ServiceError::Conflict(Conflict::RoomFull {
                    limit: MAX_MEMBERS,
                }))
            }
            MemberAdded::NoRoom => return Err(unknown_room()),
        };
        let live = self.live(RoomSummary::bare(room.clone())).await;
        self.events
            .publish(Published {
                event: Event::MemberAdded {
                    room: live,
                    member: user,
                    by: caller.id().0,
                },
                tenant_id: room.tenant_id,
                visitor_room: None,
                agents: Agents::Only { ids: room.agents() },
            })
            .await;
        let notice = self
            .notice(
                &room,
                Notice::member_added(&target.display_name, &caller.agent.display_name),
            )
            .await?;
        self.as_seen_by(caller, room, Some(notice)).await
    }

    /// `DELETE .../members/<user>`: the caller, a member of an agent room,
    /// removes a member (404 `unknown-user` when `user` is none), or leaves
    /// (`user` is the caller). The room and its history stay; whoever went
    /// no longer sees them. Those who were members (the one who went
    /// included) hear `chatd_user_room_member_removed`, those who stay the
    /// `member_removed` or `member_left` notice. A room whose last member
    /// leaves is kept, seen by nobody (no one is left to add anyone back).
    pub async fn remove_member(
        &self,
        caller: &Caller,
        id: RoomId,
        user: Uuid,
    ) -> Result<(), ServiceError> {
        let room = self.group_room(caller, id).await?;
        if !room.has_member(user) {
            return Err(ServiceError::NotFound(Missing::User));
        }
        let leaving = user == caller.id().0;
        let name = if leaving {
            caller.agent.display_name.clone()
        } else {
            self.agent_store
                .agent(caller.tenant(), crate::domain::AgentId(user))
                .await?
                .map_or_else(|| user.to_string(), |a| a.display_name)
        };
        let told = room.agents();
        let room = self
            .room_store
            .remove_member(caller.tenant(), id, crate::domain::AgentId(user))
            .await?
            // Removed meanwhile by someone else.
            .ok_or(ServiceError::NotFound(Missing::User))?;
        let live = self.live(RoomSummary::bare(room.clone())).await;
        self.events
            .publish(Published {
                event: Event::MemberRemoved {
                    room: live,
                    member: user,
                    by: caller.id().0,
                },
                tenant_id: room.tenant_id,
                visitor_room: None,
                agents: Agents::Only { ids: told },
            })
            .await;
        let notice = if leaving {
            Notice::member_left(&name)
        } else {
            Notice::member_removed(&name, &caller.agent.display_name)
        };
        self.notice(&room, notice).await?;
        Ok(())
    }

    /// An agent room the caller is in (404 `unknown-room` otherwise; a
    /// visitor room the caller is in: 409 `not-a-group-room`).
    async fn group_room(&self, caller: &Caller, id: RoomId) -> Result<Room, ServiceError> {
        let room = self.member_room(caller, id).await?;
        if room.kind != RoomKind::Agent {
            return Err(ServiceError::Conflict(Conflict::NotAGroupRoom));
        }
        Ok(room)
    }

    /// Tells `agent` it has a new room (`chatd_user_room_created`).
    pub(super) async fn room_created(&self, room: &Room, agent: crate::domain::AgentId) {
        let live = self.live(RoomSummary::bare(room.clone())).await;
        self.events
            .publish(Published {
                event: Event::RoomCreated { room: live },
                tenant_id: room.tenant_id,
                visitor_room: None,
                agents: Agents::Only { ids: vec![agent] },
            })
            .await;
    }

    /// A room as `caller` sees it: its unread count for the caller (0 in a
    /// room the caller is not in) and `last_message`.
    async fn as_seen_by(
        &self,
        caller: &Caller,
        room: Room,
        last_message: Option<Message>,
    ) -> Result<LiveRoom, ServiceError> {
        let summary = RoomSummary {
            unread_mentions: 0,
            unread_count: self
                .room_store
                .unread_count(caller.tenant(), room.id, caller.id().0)
                .await?,
            room,
            last_message,
        };
        Ok(self.live(summary).await)
    }

    /// A visitor room of the caller's tenant, in any state (404
    /// `unknown-room` otherwise).
    async fn visitor_room(&self, caller: &Caller, id: RoomId) -> Result<Room, ServiceError> {
        self.room_store
            .room(caller.tenant(), id)
            .await?
            .filter(|r| r.kind == RoomKind::Visitor)
            .ok_or_else(unknown_room)
    }

    /// A visitor room of the caller's tenant that waits in the queue (404
    /// `unknown-room` otherwise): any agent may read it before answering.
    async fn queued(&self, caller: &Caller, id: RoomId) -> Result<Room, ServiceError> {
        let room = self.visitor_room(caller, id).await?;
        if room.state != RoomState::Queued {
            return Err(unknown_room());
        }
        Ok(room)
    }

    /// `GET /queues/<room>`: a queued room, as the queue shows it (with its
    /// newest message; nobody has read it). Marks nothing, tells no one.
    pub async fn queued_room(&self, caller: &Caller, id: RoomId) -> Result<LiveRoom, ServiceError> {
        let room = self.queued(caller, id).await?;
        let last_message = self.last_message(&room).await?;
        let summary = RoomSummary {
            unread_mentions: 0,
            unread_count: room.last_seq,
            room,
            last_message,
        };
        Ok(self.live(summary).await)
    }

    /// `GET /queues/<room>/messages`: a page of a queued room's messages.
    /// Marks nothing read, tells no one.
    pub async fn queued_messages(
        &self,
        caller: &Caller,
        id: RoomId,
        listing: &Listing,
    ) -> Result<Page<Message>, ServiceError> {
        let query = listing.query(self.max_search_chars)?;
        let room = self.queued(caller, id).await?;
        self.messages_of(&room, &query).await
    }

    /// `GET /rooms` (admins): every visitor room of the tenant matching
    /// `filter`, newest activity first.
    pub async fn all_rooms(
        &self,
        caller: &Caller,
        filter: RoomFilter,
        limit: Option<u32>,
        offset: Option<u32>,
    ) -> Result<Page<LiveRoom>, ServiceError> {
        caller.require_admin()?;
        let limit = limit.unwrap_or(MAX_PAGE).clamp(1, MAX_PAGE);
        let page = self
            .room_store
            .visitor_rooms(
                caller.tenant(),
                caller.id().0,
                &filter,
                limit,
                offset.unwrap_or(0),
            )
            .await?;
        Ok(self.live_page(page).await)
    }

    /// `GET /rooms/<room>` (admins): any visitor room of the tenant,
    /// read-only. Marks nothing, tells no one.
    pub async fn supervised_room(
        &self,
        caller: &Caller,
        id: RoomId,
    ) -> Result<LiveRoom, ServiceError> {
        caller.require_admin()?;
        let room = self.visitor_room(caller, id).await?;
        let last_message = self.last_message(&room).await?;
        self.as_seen_by(caller, room, last_message).await
    }

    /// `GET /rooms/<room>/messages` (admins): a page of any visitor room's
    /// messages. Marks nothing read, tells no one.
    pub async fn supervised_messages(
        &self,
        caller: &Caller,
        id: RoomId,
        listing: &Listing,
    ) -> Result<Page<Message>, ServiceError> {
        caller.require_admin()?;
        let query = listing.query(self.max_search_chars)?;
        let room = self.visitor_room(caller, id).await?;
        self.messages_of(&room, &query).await
    }

    async fn messages_of(
        &self,
        room: &Room,
        query: &MessageQuery,
    ) -> Result<Page<Message>, ServiceError> {
        Ok(self
            .message_store
            .room_messages(room.tenant_id, room.id, query)
            .await?)
    }

    /// `POST /rooms/<room>/transfers` (admins): `to` joins a visitor room of
    /// the tenant and becomes its assignee. A queued room is answered on
    /// `to`'s behalf (as round robin assigns it: it leaves the queue); an
    /// open room is handed over from its assignee, who leaves (as a
    /// transfer). Assigning a room to its assignee changes nothing; a closed
    /// room is 409 `room-closed` (reopening is its agent's call).
    pub async fn assign(
        &self,
        caller: &Caller,
        id: RoomId,
        to: Uuid,
    ) -> Result<LiveRoom, ServiceError> {
        caller.require_admin()?;
        let room = self.visitor_room(caller, id).await?;
        let target = self
            .agent_store
            .agent(caller.tenant(), crate::domain::AgentId(to))
            .await?
            .filter(|a| !a.disabled && !a.is_application())
            .ok_or_else(|| {
                ServiceError::field("user_uuid", "user_uuid must be an agent of the tenant")
            })?;
        match room.state {
            RoomState::Closed => Err(ServiceError::Conflict(Conflict::RoomClosed)),
            RoomState::Queued => {
                let then = self
                    .hooks(caller.tenant(), &[EventType::ConversationAssigned])
                    .await;
                let at = now_ms();
                let room = match self
                    .room_store
                    .answer(caller.tenant(), id, target.id, at, then.clone())
                    .await?
                {
                    Answered::Won(room) => room,
                    Answered::AlreadyAnswered => return Err(already_answered()),
                };
                self.metrics.queue_left("assigned", &room, at);
                self.hooked(&then);
                let notice = self
                    .joined(&room, &target.display_name, QueueAction::Assigned)
                    .await?;
                self.room_created(&room, target.id).await;
                self.as_seen_by(caller, room, Some(notice)).await
            }
            RoomState::Open if room.assignee == Some(target.id) => {
                let last_message = self.last_message(&room).await?;
                self.as_seen_by(caller, room, last_message).await
            }
            RoomState::Open => {
                let from = match room.assignee {
                    Some(from) => self.agent_store.agent(caller.tenant(), from).await?,
                    None => None,
                };
                // An open visitor room has its assignee as member; without
                // one (an agent deleted meanwhile) there is no one to hand over from.
                let from = from.ok_or_else(|| {
                    ServiceError::invalid("the room has no assignee to hand it over from")
                })?;
                let room = self.hand_over(&room, &from, &target).await?;
                self.as_seen_by(caller, room, None).await
            }
        }
    }

    /// `PUT .../state`: closes or reopens a visitor room the caller is in.
    pub async fn set_state(
        &self,
        caller: &Caller,
        id: RoomId,
        state: RoomState,
    ) -> Result<LiveRoom, ServiceError> {
        let closed = match state {
            RoomState::Closed => true,
            RoomState::Open => false,
            RoomState::Queued => return Err(not_open_or_closed()),
        };
        let room = self.member_room(caller, id).await?;
        if room.kind != RoomKind::Visitor {
            return Err(ServiceError::invalid(
                "only visitor rooms are closed and reopened",
            ));
        }
        let target = if closed {
            RoomState::Closed
        } else {
            RoomState::Open
        };
        let room = if room.state == target {
            room
        } else {
            let kind = if closed {
                EventType::ConversationClosed
            } else {
                EventType::ConversationReopened
            };
            let then = self.hooks(caller.tenant(), &[kind]).await;
            let room = self
                .room_store
                .set_room_state(caller.tenant(), id, None, target, now_ms(), then.clone())
                .await?
                .ok_or_else(unknown_room)?;
            self.hooked(&then);
            let by = Some(caller.agent.display_name.as_str());
            let notice = if closed {
                Notice::closed(by)
            } else {
                Notice::reopened(by)
            };
            self.notice(&room, notice).await?;
            self.closed_changed(&room, closed).await;
            if closed {
                // The assignee has room for one more visitor.
                self.router.kick(room.tenant_id);
            }
            room
        };
        let summary = RoomSummary {
            unread_mentions: 0,
            unread_count: self
                .room_store
                .unread_count(caller.tenant(), room.id, caller.id().0)
                .await?,
            room,
            last_message: None,
        };
        Ok(self.live(summary).await)
    }

    /// The visitor wrote into a closed room: it reopens, back to its
    /// assignee if that agent is available (chosen state and connected),
    /// else into the queue.
    pub async fn reopen_for_visitor(&self, room: &Room) -> Result<(), ServiceError> {
        let available = match room.assignee {
            Some(agent) => {
                let chosen = self.agent_store.presences(room.tenant_id, &[agent]).await?;
                let online = self.presence.online(&[PresenceKey::Agent(agent)]).await;
                chosen
                    .first()
                    .is_some_and(|p| p.state == crate::domain::PresenceState::Available)
                    && online.first().copied().unwrap_or(false)
            }
            None => false,
        };
        let told = room.agents();
        let target = if available {
            RoomState::Open
        } else {
            RoomState::Queued
        };
        let kinds: &[EventType] = if available {
            &[EventType::ConversationReopened]
        } else {
            &[
                EventType::ConversationReopened,
                EventType::ConversationQueued,
            ]
        };
        let then = self.hooks(room.tenant_id, kinds).await;
        let Some(reopened) = self
            .room_store
            // Only the first of concurrent writes into the closed room reopens it.
            .set_room_state(
                room.tenant_id,
                room.id,
                Some(RoomState::Closed),
                target,
                now_ms(),
                then.clone(),
            )
            .await?
        else {
            return Ok(());
        };
        self.hooked(&then);
        // No notice: the visitor's own message, just stored, says it, and
        // stays the room's newest message (what the queue and the agent's
        // list show of it).
        self.closed_changed_to(&reopened, false, told).await;
        if !available {
            let room = self.live(RoomSummary::bare(reopened.clone())).await;
            self.events
                .publish(Published {
                    event: Event::QueueUpdated {
                        action: QueueAction::Queued,
                        room,
                    },
                    tenant_id: reopened.tenant_id,
                    visitor_room: None,
                    agents: Agents::Tenant,
                })
                .await;
            self.router.kick(reopened.tenant_id);
        }
        Ok(())
    }

    async fn closed_changed(&self, room: &Room, closed: bool) {
        self.closed_changed_to(room, closed, room.agents()).await;
    }

    /// Tells the visitor (`conversation.closed` / `.reopened`) and `agents`
    /// (`chatd_room_state_updated`).
    async fn closed_changed_to(
        &self,
        room: &Room,
        closed: bool,
        agents: Vec<crate::domain::AgentId>,
    ) {
        self.events
            .publish(Published {
                event: Event::RoomClosed {
                    conversation_id: room.id,
                    closed,
                },
                tenant_id: room.tenant_id,
                visitor_room: Some(room.id),
                agents: Agents::Nobody,
            })
            .await;
        self.state_event(room, agents).await;
    }

    /// A visitor room whose visitor was erased (data rights): its agents
    /// see it as it is now (closed, a shell), as after a close. One the
    /// erasure closed (`was`: its state before) is told as auto-close tells
    /// a close: a queued room leaves the tenant's queue, an open one frees
    /// its agent for round robin. No `closed` notice: the erased room keeps
    /// no message, and its visitor's sockets end.
    pub(super) async fn erased(
        &self,
        tenant: crate::domain::TenantId,
        id: RoomId,
        was: Option<RoomState>,
    ) {
        let room = match self.room_store.room(tenant, id).await {
            Ok(Some(room)) => room,
            Ok(None) => return,
            Err(err) => return tracing::warn!(%err, "cannot tell agents of an erased room"),
        };
        if was == Some(RoomState::Queued) {
            self.state_event_to(&room, Agents::Tenant).await;
            return;
        }
        let agents = room.agents();
        self.state_event(&room, agents).await;
        if was.is_some() {
            self.router.kick(tenant);
        }
    }

    async fn state_event(&self, room: &Room, agents: Vec<crate::domain::AgentId>) {
        if agents.is_empty() {
            return;
        }
        self.state_event_to(room, Agents::Only { ids: agents })
            .await;
    }

    /// The room's new state, to `agents` (every agent of the tenant for a
    /// room that left the queue).
    async fn state_event_to(&self, room: &Room, agents: Agents) {
        let live = self.live(RoomSummary::bare(room.clone())).await;
        self.events
            .publish(Published {
                event: Event::RoomStateChanged { room: live },
                tenant_id: room.tenant_id,
                visitor_room: None,
                agents,
            })
            .await;
    }

    /// The channel's away message in a visitor room, as a system notice
    /// (the caller has claimed the room's one away message).
    pub async fn away_notice(
        &self,
        tenant: crate::domain::TenantId,
        id: RoomId,
        text: &str,
    ) -> Result<(), ServiceError> {
        let room = self
            .room_store
            .room(tenant, id)
            .await?
            .ok_or_else(unknown_room)?;
        self.notice(&room, Notice::away(text)).await?;
        Ok(())
    }

    /// Closes the open and queued visitor rooms idle past their channel's
    /// `auto_close_hours` at `now_ms`, as an agent's close would (a
    /// `closed` notice, the visitor's `conversation.closed`, the agents'
    /// state event; a queued room leaves the tenant's queue). Several
    /// instances may run it at once: each room is closed by one guarded
    /// update, and only its winner tells anyone. How many it closed.
    pub async fn auto_close(&self, now_ms: i64) -> Result<usize, ServiceError> {
        const BATCH: u32 = 100;
        let mut closed = 0;
        for (tenant, id) in self.room_store.idle_rooms(now_ms, BATCH).await? {
            let then = self.hooks(tenant, &[EventType::ConversationClosed]).await;
            let Some((room, was)) = self
                .room_store
                .close_idle_room(tenant, id, now_ms, then.clone())
                .await?
            else {
                continue;
            };
            self.hooked(&then);
            self.notice(&room, Notice::closed(None)).await?;
            if was == RoomState::Queued {
                self.closed_changed_to(&room, true, Vec::new()).await;
                self.state_event_to(&room, Agents::Tenant).await;
            } else {
                self.closed_changed(&room, true).await;
                self.router.kick(tenant);
            }
            closed += 1;
        }
        Ok(closed)
    }

    /// A system notice to the visitor (CENTER; visitor rooms) and the room's agents: its
    /// English text as the content, and the notice itself for clients that
    /// render it in their own language.
    async fn notice(
        &self,
        room: &Room,
        notice: Notice,
    ) -> Result<crate::domain::Message, ServiceError> {
        let notice = NewMessage {
            id: MessageId::new(),
            conversation_id: room.id,
            channel_id: room.channel_id,
            tenant_id: room.tenant_id,
            sender_kind: SenderKind::System,
            sender_id: room.id.0,
            sender_name: None,
            sender_avatar: None,
            content: notice.english(),
            state: DeliveryState::Delivered,
            sent_at_ms: now_ms(),
            client_message_id: None,
            notice: Some(notice),
            quick_replies: Vec::new(),
            postback: None,
            mentions: Vec::new(),
            attachments: Vec::new(),
            bot: false,
        };
        let then = self.webhooks.created_rows(room.tenant_id).await;
        let appended = self
            .message_store
            .append_message_with(notice, Vec::new(), then.clone())
            .await?;
        self.hooked(&then);
        self.events
            .publish(Published {
                event: Event::MessageCreated {
                    message: appended.message.clone(),
                },
                tenant_id: room.tenant_id,
                visitor_room: (room.kind == RoomKind::Visitor).then_some(room.id),
                agents: Agents::Only {
                    ids: appended.agents.clone(),
                },
            })
            .await;
        Ok(appended.message)
    }

    /// Tells a visitor room's agents (the tenant's, while it is queued)
    /// whether its visitor is connected now: `chatd_visitor_connection_updated`.
    pub async fn visitor_connection(&self, tenant: crate::domain::TenantId, id: RoomId) {
        let room = match self.room_store.room(tenant, id).await {
            Ok(Some(room)) if room.kind == RoomKind::Visitor => room,
            Ok(_) => return, // no message yet: not a room agents know of
            Err(err) => return tracing::warn!(%err, "cannot read a visitor's room"),
        };
        let agents = match room.state {
            RoomState::Queued => Agents::Tenant,
            _ if room.agents().is_empty() => return,
            _ => Agents::Only { ids: room.agents() },
        };
        let connected = self
            .visitors_connected(std::iter::once(&room))
            .await
            .get(&room)
            .unwrap_or(false);
        self.events
            .publish(Published {
                event: Event::VisitorConnection {
                    room: room.id,
                    connected,
                },
                tenant_id: tenant,
                visitor_room: None,
                agents,
            })
            .await;
    }

    /// What the visitor's page told about the visitor of a room the caller
    /// is in, or that waits in the tenant's queue (any agent may read it
    /// before answering), or of any visitor room of the tenant for an admin
    /// (supervision).
    pub async fn visitor_context(
        &self,
        caller: &Caller,
        id: RoomId,
    ) -> Result<crate::domain::VisitorContext, ServiceError> {
        let room = self
            .room_store
            .room(caller.tenant(), id)
            .await?
            .filter(|r| {
                r.kind == RoomKind::Visitor
                    && (r.has_member(caller.id().0)
                        || r.state == RoomState::Queued
                        || caller.is_admin())
            })
            .ok_or_else(unknown_room)?;
        Ok(self
            .visitor_store
            .visitor_context(caller.tenant(), room.id)
            .await?
            .unwrap_or_default())
    }

    /// The names the visitors of these rooms gave (rooms of the caller's
    /// tenant only; a visitor who gave none is absent).
    pub async fn visitor_names(
        &self,
        caller: &Caller,
        rooms: &[RoomId],
    ) -> Result<std::collections::HashMap<RoomId, String>, ServiceError> {
        Ok(self
            .visitor_store
            .visitor_names(caller.tenant(), rooms)
            .await?
            .into_iter()
            .collect())
    }

    /// A room as it is shown now: with whether its visitor is connected.
    pub async fn live(&self, summary: RoomSummary) -> LiveRoom {
        let connected = self
            .visitors_connected(std::iter::once(&summary.room))
            .await;
        connected.live(summary)
    }

    /// A page of rooms with whether each visitor is connected now.
    async fn live_page(&self, page: Page<RoomSummary>) -> Page<LiveRoom> {
        let connected = self
            .visitors_connected(page.items.iter().map(|s| &s.room))
            .await;
        Page {
            items: page
                .items
                .into_iter()
                .map(|summary| connected.live(summary))
                .collect(),
            filtered: page.filtered,
            total: page.total,
        }
    }

    /// Whether each visitor room's visitor has a live socket now.
    async fn visitors_connected<'a>(&self, rooms: impl Iterator<Item = &'a Room>) -> Connected {
        let visitor_rooms: Vec<RoomId> = rooms
            .filter(|r| r.kind == RoomKind::Visitor)
            .map(|r| r.id)
            .collect();
        let keys: Vec<PresenceKey> = visitor_rooms
            .iter()
            .map(|id| PresenceKey::Conversation(*id))
            .collect();
        let online = if keys.is_empty() {
            Vec::new()
        } else {
            self.presence.online(&keys).await
        };
        Connected(visitor_rooms.into_iter().zip(online).collect())
    }
}

/// Which visitor rooms have their visitor connected now.
struct Connected(std::collections::HashMap<RoomId, bool>);

impl Connected {
    fn get(&self, room: &Room) -> Option<bool> {
        self.0.get(&room.id).copied()
    }

    fn live(&self, summary: RoomSummary) -> LiveRoom {
        LiveRoom {
            visitor_connected: self.get(&summary.room),
            summary,
        }
    }
}

fn already_answered() -> ServiceError {
    ServiceError::Conflict(Conflict::AlreadyAnswered)
}
