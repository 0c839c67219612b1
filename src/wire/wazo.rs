//! What agents receive: the wazo-chatd shapes of agent-api.md (rooms,
//! messages, agents) and the wazo-websocketd event envelope.

use serde_json::{json, Value};
use uuid::Uuid;

use crate::domain::event::Agents;
use crate::domain::time::{format_ms, now_ms};
use crate::domain::{
    Agent, Event, LiveRoom, Message, Published, Room, RoomKind, RoomSummary, TenantId,
};

/// This deployment's id (`wazo_uuid`, `origin_uuid`): the same for every user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerId(pub Uuid);

/// A message (agent-api.md); a system message also has its `notice`
/// (desk-api.md, "Notices"), every other message has none.
pub fn message(m: &Message, server: ServerId) -> Value {
    let mut value = json!({
        "uuid": m.id,
        "content": m.content,
        "alias": m.sender_name,
        "user_uuid": m.sender_id,
        "tenant_uuid": m.tenant_id,
        "wazo_uuid": server.0,
        "created_at": format_ms(m.sent_at_ms),
        "room": {"uuid": m.conversation_id},
        "seq": m.seq,
        "kind": m.sender_kind.as_str(),
        "state": m.state.as_str(),
        "read_at": m.read_at_ms.map(format_ms),
        "edited_at": m.edited_at_ms.map(format_ms),
        "deleted": m.deleted,
        "reactions": m.reactions.iter().map(|r| json!({"emoji": r.emoji, "user_uuid": r.user_id})).collect::<Vec<_>>(),
        "mentions": m.mentions,
    });
    if let Some(notice) = &m.notice {
        value["notice"] = json!(notice);
    }
    value
}

/// A room with what one agent sees of it (unread count, last message).
pub fn room(summary: &RoomSummary, server: ServerId, visitor_connected: Option<bool>) -> Value {
    let r = &summary.room;
    let mut value = bare_room(r, server, visitor_connected);
    value["unread_count"] = json!(summary.unread_count);
    value["last_message"] = summary
        .last_message
        .as_ref()
        .map_or(Value::Null, |m| message(m, server));
    value
}

/// A room as it is shown now (with its visitor's connection).
pub fn live_room(live: &LiveRoom, server: ServerId) -> Value {
    room(&live.summary, server, live.visitor_connected)
}

/// A room without per-agent fields (events to several agents).
pub fn bare_room(r: &Room, server: ServerId, visitor_connected: Option<bool>) -> Value {
    let users: Vec<Value> = r
        .members
        .iter()
        .map(|m| {
            let mut user = json!({
                "uuid": m.id,
                "tenant_uuid": r.tenant_id,
                "wazo_uuid": server.0,
                "kind": m.kind.as_str(),
            });
            if m.kind == RoomKind::Visitor {
                user["connected"] = json!(visitor_connected.unwrap_or(false));
            }
            user
        })
        .collect();
    json!({
        "uuid": r.id,
        "tenant_uuid": r.tenant_id,
        "name": r.display_name(),
        "users": users,
        "kind": r.kind.as_str(),
        "channel_id": r.channel_id,
        "state": r.state.as_str(),
        "assignee_uuid": r.assignee.map(|a| a.0),
        "unread_count": 0,
        "last_message": Value::Null,
        "created_at": format_ms(r.created_at_ms),
        "queued_at": r.queued_at_ms.map(format_ms),
        "wait_seconds": (r.state == crate::domain::RoomState::Queued)
            .then(|| r.queued_at_ms.map(|q| (now_ms() - q).max(0) / 1000))
            .flatten(),
    })
}

/// Wazo's presence shape.
pub fn presence(p: &crate::domain::AgentPresence, connected: bool) -> Value {
    json!({
        "uuid": p.agent_id,
        "tenant_uuid": p.tenant_id,
        "state": p.state.as_str(),
        "status": p.status,
        "last_activity": p.last_activity_ms.map(format_ms),
        "line_state": "available",
        "mobile": false,
        "do_not_disturb": false,
        "connected": connected,
        "lines": [],
    })
}

/// Wazo's presence shape of a presence as it is now.
pub fn live_presence(p: &crate::domain::LivePresence) -> Value {
    presence(&p.presence, p.connected)
}

pub fn agent(a: &Agent) -> Value {
    json!({
        "uuid": a.id,
        "tenant_uuid": a.tenant_id,
        "email": a.email,
        "display_name": a.display_name,
        "avatar_url": a.avatar_url,
        "role": a.role.as_str(),
        "disabled": a.disabled,
    })
}

/// The event's name and its `data` for agents; `None` when agents do not see it.
pub fn event_data(p: &Published, server: ServerId) -> Option<(&'static str, Value)> {
    if p.agents == Agents::Nobody {
        return None;
    }
    Some(match &p.event {
        Event::MessageCreated { message: m } => {
            ("chatd_user_room_message_created", message(m, server))
        }
        Event::MessageUpdated { message: m } => {
            ("chatd_user_room_message_updated", message(m, server))
        }
        Event::Typing {
            conversation_id,
            typing,
            sender_id,
            ..
        } => (
            "chatd_user_room_activity_created",
            json!({
                "room": {"uuid": conversation_id},
                "user_uuid": sender_id,
                "type": if *typing { "start_typing" } else { "stop_typing" },
            }),
        ),
        Event::RoomCreated { room } => ("chatd_user_room_created", live_room(room, server)),
        Event::QueueUpdated { action, room } => (
            "chatd_queue_updated",
            json!({
                "action": action.as_str(),
                "channel_id": room.room().channel_id,
                "room": live_room(room, server),
            }),
        ),
        Event::RoomStateChanged { room } => ("chatd_room_state_updated", live_room(room, server)),
        Event::RoomRead {
            room,
            reader,
            up_to_seq,
        } => (
            "chatd_user_room_read",
            json!({"room": {"uuid": room}, "user_uuid": reader, "up_to_seq": up_to_seq}),
        ),
        Event::VisitorConnection { room, connected } => (
            "chatd_visitor_connection_updated",
            json!({"room_uuid": room, "user_uuid": room, "connected": connected}),
        ),
        Event::PresenceChanged { presence } => ("chatd_presence_updated", live_presence(presence)),
        Event::Reaction {
            room,
            message,
            user,
            emoji,
            added,
        } => (
            if *added {
                "chatd_user_room_message_reaction_created"
            } else {
                "chatd_user_room_message_reaction_deleted"
            },
            json!({
                "room": {"uuid": room},
                "message_uuid": message,
                "user_uuid": user,
                "emoji": emoji,
            }),
        ),
        Event::MemberAdded { room, member, by } => (
            "chatd_user_room_member_added",
            member_change(room, *member, *by, server),
        ),
        Event::MemberRemoved { room, member, by } => (
            "chatd_user_room_member_removed",
            member_change(room, *member, *by, server),
        ),
        Event::Mention {
            room,
            message,
            user,
        } => (
            "chatd_user_room_mention",
            json!({"room_uuid": room, "message_uuid": message, "user_uuid": user}),
        ),
        Event::ReadByAgent { .. }
        | Event::RoomClosed { .. }
        | Event::Availability { .. }
        | Event::SessionsRevoked { .. }
        | Event::ChannelChanged { .. } => return None,
    })
}

/// A member added or removed: the room as it is now, who (`user_uuid`)
/// and by whom (`by_user_uuid`; the same uuid when an agent left).
fn member_change(room: &LiveRoom, member: Uuid, by: Uuid, server: ServerId) -> Value {
    json!({
        "room": live_room(room, server),
        "user_uuid": member,
        "by_user_uuid": by,
    })
}

/// The websocketd envelope of an event, as bytes, with its name.
pub fn event_frame(p: &Published, server: ServerId) -> Option<(&'static str, Vec<u8>)> {
    let (name, data) = event_data(p, server)?;
    let frame = envelope(name, p.tenant_id, server, data);
    Some((name, serde_json::to_vec(&frame).ok()?))
}

pub fn envelope(name: &str, tenant: TenantId, server: ServerId, data: Value) -> Value {
    json!({
        "op": "event",
        "code": 0,
        "data": {
            "name": name,
            "origin_uuid": server.0,
            "timestamp": format_ms(now_ms()),
            "tenant_uuid": tenant,
            "required_acl": format!("events.{name}"),
            "data": data,
        }
    })
}

/// A visitor's context (an extension): what the visitor's page told.
pub fn visitor_context(c: &crate::domain::VisitorContext) -> Value {
    json!({
        "name": c.name,
        "email": c.email,
        "url": c.url,
        "title": c.title,
        "referrer": c.referrer,
        "language": c.language,
        "time_zone": c.time_zone,
        "utc_offset_minutes": c.utc_offset_minutes,
        "user_agent": c.user_agent,
        "browser": c.browser(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::{ConversationId, MessageId, QueueAction};

    fn to_all(event: Event) -> Published {
        Published {
            event,
            tenant_id: TenantId::new(),
            visitor_room: None,
            agents: Agents::Tenant,
        }
    }

    #[test]
    fn typed_agent_events_keep_their_wazo_names_and_data() {
        let server = ServerId(Uuid::from_u128(7));
        let room = ConversationId::new();
        let (user, message) = (Uuid::from_u128(9), MessageId::new());
        let read = to_all(Event::RoomRead {
            room,
            reader: user,
            up_to_seq: 4,
        });
        assert_eq!(
            event_data(&read, server),
            Some((
                "chatd_user_room_read",
                json!({"room": {"uuid": room}, "user_uuid": user, "up_to_seq": 4})
            ))
        );
        let connection = to_all(Event::VisitorConnection {
            room,
            connected: true,
        });
        assert_eq!(
            event_data(&connection, server),
            Some((
                "chatd_visitor_connection_updated",
                json!({"room_uuid": room, "user_uuid": room, "connected": true})
            ))
        );
        let reaction = to_all(Event::Reaction {
            room,
            message,
            user,
            emoji: "👍".into(),
            added: false,
        });
        assert_eq!(
            event_data(&reaction, server),
            Some((
                "chatd_user_room_message_reaction_deleted",
                json!({"room": {"uuid": room}, "message_uuid": message, "user_uuid": user, "emoji": "👍"})
            ))
        );
    }

    #[test]
    fn a_mention_names_the_room_the_message_and_the_mentioned_agent() {
        let server = ServerId(Uuid::from_u128(7));
        let (room, message, user) = (ConversationId::new(), MessageId::new(), Uuid::from_u128(3));
        let mention = Published {
            agents: Agents::Only {
                ids: vec![crate::domain::AgentId(user)],
            },
            ..to_all(Event::Mention {
                room,
                message,
                user,
            })
        };
        assert_eq!(
            event_data(&mention, server),
            Some((
                "chatd_user_room_mention",
                json!({"room_uuid": room, "message_uuid": message, "user_uuid": user})
            ))
        );
    }

    #[test]
    fn a_queue_update_carries_the_action_the_channel_and_the_room() {
        let server = ServerId(Uuid::from_u128(7));
        let channel = crate::domain::ChannelId::new();
        let room = Room {
            id: ConversationId::new(),
            tenant_id: TenantId::new(),
            kind: RoomKind::Visitor,
            channel_id: Some(channel),
            name: None,
            state: crate::domain::RoomState::Open,
            assignee: None,
            created_at_ms: 1_000,
            queued_at_ms: None,
            last_seq: 1,
            members: vec![crate::domain::Member {
                id: Uuid::from_u128(1),
                kind: RoomKind::Visitor,
            }],
        };
        let live = LiveRoom {
            summary: RoomSummary::bare(room.clone()),
            visitor_connected: Some(true),
        };
        let queued = to_all(Event::QueueUpdated {
            action: QueueAction::Answered,
            room: live,
        });
        let (name, data) = event_data(&queued, server).unwrap();
        assert_eq!(name, "chatd_queue_updated");
        assert_eq!(data["action"], "answered");
        assert_eq!(data["channel_id"], json!(channel));
        assert_eq!(data["room"], bare_room(&room, server, Some(true)));
        assert_eq!(data["room"]["users"][0]["connected"], true);
    }
}
