//! Typing indicators, both ways: a visitor's `/app/typing` reaches the
//! room's agents (`chatd_user_room_activity_created`), an agent's
//! `POST .../activities` reaches the visitor (`{"type":"typing"}` on
//! `/queue/events`) and the room's other agents.
//!
//! Throttled per sender and room so no client can flood another: repeated
//! "typing" frames publish nothing new, a start is published at most once a
//! second (a start and its stop: at most two events a second), and a sender
//! silent for `CHATGATE_TYPING_SILENCE_SECS` (10 s) after a start gets its stop published for it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::Duration;

use tokio::time::Instant;
use uuid::Uuid;

use super::error::ServiceError;
use super::rooms::RoomService;
use super::{Caller, Events, Parts};
use crate::domain::event::Agents;
use crate::domain::{Event, Published, Room, RoomId, RoomKind, SenderKind, TenantId};

/// At most one start per sender and room in this time.
pub const MIN_START_INTERVAL: Duration = Duration::from_secs(1);

#[derive(Clone, Copy, PartialEq, Eq, Hash)]
struct Key {
    tenant: TenantId,
    room: RoomId,
    sender: Uuid,
}

struct Typist {
    typing: bool,
    last_start: Instant,
    last_frame: Instant,
}

/// Who is sending, with what the events need to name them.
#[derive(Clone)]
struct Sender {
    kind: SenderKind,
    id: Uuid,
    name: Option<String>,
}

pub struct TypingService {
    room_store: Arc<dyn crate::store::RoomStore>,
    rooms: Arc<RoomService>,
    events: Events,
    typists: Arc<Mutex<HashMap<Key, Typist>>>,
    /// How long a start lasts without another frame.
    silence: Duration,
}

impl TypingService {
    pub fn new(parts: &Parts, rooms: Arc<RoomService>) -> Arc<TypingService> {
        Arc::new(TypingService {
            room_store: parts.store.clone(),
            rooms,
            events: parts.events(),
            typists: Arc::new(Mutex::new(HashMap::new())),
            silence: Duration::from_secs(parts.config.typing_silence_secs),
        })
    }

    /// `/app/typing` of a visitor.
    pub async fn visitor(self: &Arc<Self>, tenant: TenantId, room: RoomId, typing: bool) {
        let sender = Sender {
            kind: SenderKind::Visitor,
            id: room.0,
            name: None,
        };
        if !self.admit(tenant, room, &sender, typing) {
            return;
        }
        match self.room_store.room(tenant, room).await {
            Ok(Some(room)) => self.publish(&room, &sender, typing).await,
            // Not begun yet (no message): no agent to tell.
            Ok(None) => {}
            Err(err) => tracing::warn!(%err, "typing: cannot read the room"),
        }
    }

    /// `POST /users/me/rooms/<room>/activities` of an agent.
    pub async fn agent(
        self: &Arc<Self>,
        caller: &Caller,
        room: RoomId,
        kind: &str,
    ) -> Result<(), ServiceError> {
        let typing = match kind {
            "start_typing" => true,
            "stop_typing" => false,
            _ => {
                return Err(ServiceError::field(
                    "type",
                    "type must be start_typing or stop_typing",
                ))
            }
        };
        let room = self.rooms.member_room(caller, room).await?;
        let sender = Sender {
            kind: SenderKind::Agent,
            id: caller.id().0,
            name: Some(caller.agent.display_name.clone()),
        };
        if self.admit(room.tenant_id, room.id, &sender, typing) {
            self.publish(&room, &sender, typing).await;
        }
        Ok(())
    }

    /// Whether this frame changes what others see, under the throttle; a
    /// start arms the silence watch.
    fn admit(
        self: &Arc<Self>,
        tenant: TenantId,
        room: RoomId,
        sender: &Sender,
        typing: bool,
    ) -> bool {
        let key = Key {
            tenant,
            room,
            sender: sender.id,
        };
        let now = Instant::now();
        let mut typists = self.typists.lock().unwrap_or_else(|e| e.into_inner());
        match (typists.get_mut(&key), typing) {
            (Some(t), true) => {
                t.last_frame = now;
                if t.typing || now.duration_since(t.last_start) < MIN_START_INTERVAL {
                    return false;
                }
                t.typing = true;
                t.last_start = now;
            }
            (Some(t), false) => {
                if !t.typing {
                    return false;
                }
                t.typing = false;
                return true;
            }
            (None, true) => {
                typists.insert(
                    key,
                    Typist {
                        typing: true,
                        last_start: now,
                        last_frame: now,
                    },
                );
            }
            (None, false) => return false,
        }
        drop(typists);
        self.watch(key, sender.clone());
        true
    }

    /// Publishes the stop of a start that went silent, then forgets the typist.
    fn watch(self: &Arc<Self>, key: Key, sender: Sender) {
        let this = self.clone();
        tokio::spawn(async move {
            loop {
                let due = {
                    let typists = this.typists.lock().unwrap_or_else(|e| e.into_inner());
                    match typists.get(&key) {
                        Some(t) if t.typing => t.last_frame + this.silence,
                        _ => break,
                    }
                };
                tokio::time::sleep_until(due).await;
                let silent = {
                    let mut typists = this.typists.lock().unwrap_or_else(|e| e.into_inner());
                    match typists.get_mut(&key) {
                        Some(t) if t.typing && Instant::now() >= t.last_frame + this.silence => {
                            t.typing = false;
                            true
                        }
                        Some(t) if t.typing => false,
                        _ => break,
                    }
                };
                if silent {
                    if let Ok(Some(room)) = this.room_store.room(key.tenant, key.room).await {
                        this.publish(&room, &sender, false).await;
                    }
                    break;
                }
            }
            // Idle entries go once their start interval is over.
            tokio::time::sleep(MIN_START_INTERVAL).await;
            let mut typists = this.typists.lock().unwrap_or_else(|e| e.into_inner());
            if typists.get(&key).is_some_and(|t| !t.typing) {
                typists.remove(&key);
            }
        });
    }

    async fn publish(&self, room: &Room, sender: &Sender, typing: bool) {
        self.events
            .publish(Published {
                event: Event::Typing {
                    conversation_id: room.id,
                    channel_id: room.channel_id,
                    typing,
                    sender_kind: sender.kind,
                    sender_id: sender.id,
                    sender_name: sender.name.clone(),
                },
                tenant_id: room.tenant_id,
                visitor_room: (room.kind == RoomKind::Visitor
                    && sender.kind != SenderKind::Visitor)
                    .then_some(room.id),
                agents: Agents::Only { ids: room.agents() },
            })
            .await;
    }
}
