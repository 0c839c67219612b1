//! What agents receive: the wazo-chatd shapes of agent-api.md (rooms,
//! messages, agents) and the wazo-websocketd event envelope.

use serde::Serialize;
use serde_json::{json, Value};
use uuid::Uuid;

use crate::files::Signer;

use crate::domain::event::Agents;
use crate::domain::time::{format_ms, now_ms};
use crate::domain::{
    Agent, Event, LiveRoom, Message, Published, Room, RoomKind, RoomSummary, TenantId,
};

/// This deployment's id (`wazo_uuid`, `origin_uuid`): the same for every user.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ServerId(pub Uuid);

/// What encoding an agent's shapes needs beside the value: the server's
/// id, and the signer of attachments' URLs (signed when the body is built).
#[derive(Debug, Clone, Copy)]
pub struct Cx<'s> {
    pub server: ServerId,
    pub signer: &'s Signer,
}

/// A message (agent-api.md); a system message also has its `notice`
/// (desk-api.md, "Notices"), every other message has none. Every message
/// has its `quick_replies` (empty when none) and `postback` (null when
/// none; desk-api.md, "Quick replies").
pub fn message(m: &Message, cx: Cx<'_>) -> Value {
    serde_json::to_value(WireMessage::of(m, cx)).unwrap_or(Value::Null)
}

/// A message as agents receive it, serialized straight from the domain
/// value (no `Value` tree built first: it is most events' body). Fields in
/// the order the API's objects have always had (by name).
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = Message)]
pub struct WireMessage<'a> {
    #[schema(value_type = Option<String>)]
    alias: &'a Option<String>,
    /// The files it carries, URLs signed now (desk-api.md, "Attachments").
    attachments: Vec<super::AttachmentJson<'a>>,
    /// An application (a bot) wrote it; `alias` is its name.
    bot: bool,
    content: &'a str,
    #[schema(example = "2026-11-22T10:15:30.123Z")]
    created_at: String,
    deleted: bool,
    edited_at: Option<String>,
    /// `agent`, `visitor`, `system` (or `application`).
    #[schema(value_type = String, example = "agent")]
    kind: &'static str,
    /// The agents the author mentioned (desk-api.md, "Group rooms").
    mentions: &'a [Uuid],
    #[serde(skip_serializing_if = "Option::is_none")]
    #[schema(value_type = Option<crate::domain::Notice>)]
    notice: &'a Option<crate::domain::Notice>,
    /// The payload of the quick reply a visitor's message chose; null when none.
    #[schema(value_type = Option<String>)]
    postback: &'a Option<String>,
    /// A private note: agents only (desk-api.md, "Support desk").
    private: bool,
    /// An agent's buttons (desk-api.md, "Quick replies"); empty when none.
    quick_replies: &'a [crate::domain::QuickReply],
    reactions: Vec<WireReaction<'a>>,
    read_at: Option<String>,
    room: RoomRef,
    seq: i64,
    /// `PENDING`, `FAILED` or `DELIVERED`.
    #[schema(value_type = String, example = "DELIVERED")]
    state: &'static str,
    #[schema(value_type = Uuid)]
    tenant_uuid: TenantId,
    user_uuid: Uuid,
    #[schema(value_type = Uuid)]
    uuid: crate::domain::MessageId,
    wazo_uuid: Uuid,
}

#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = MessageReaction)]
struct WireReaction<'a> {
    emoji: &'a str,
    user_uuid: Uuid,
}

/// `{"uuid": ...}`: a message's room.
#[derive(Serialize, utoipa::ToSchema)]
#[schema(as = MessageRoom)]
struct RoomRef {
    #[schema(value_type = Uuid)]
    uuid: crate::domain::ConversationId,
}

impl<'a> WireMessage<'a> {
    pub fn of(m: &'a Message, cx: Cx<'_>) -> WireMessage<'a> {
        WireMessage {
            alias: &m.sender_name,
            attachments: super::attachments(&m.attachments, cx.signer),
            bot: m.bot,
            content: &m.content,
            created_at: format_ms(m.sent_at_ms),
            deleted: m.deleted,
            edited_at: m.edited_at_ms.map(format_ms),
            kind: m.sender_kind.as_str(),
            mentions: &m.mentions,
            notice: &m.notice,
            postback: &m.postback,
            private: m.private,
            quick_replies: &m.quick_replies,
            reactions: m
                .reactions
                .iter()
                .map(|r| WireReaction {
                    emoji: &r.emoji,
                    user_uuid: r.user_id,
                })
                .collect(),
            read_at: m.read_at_ms.map(format_ms),
            room: RoomRef {
                uuid: m.conversation_id,
            },
            seq: m.seq,
            state: m.state.as_str(),
            tenant_uuid: m.tenant_id,
            user_uuid: m.sender_id,
            uuid: m.id,
            wazo_uuid: cx.server.0,
        }
    }
}

/// A room with what one agent sees of it (unread count, last message).
pub fn room(summary: &RoomSummary, cx: Cx<'_>, visitor_connected: Option<bool>) -> Value {
    let r = &summary.room;
    let mut value = bare_room(r, cx.server, visitor_connected);
    value["unread_count"] = json!(summary.unread_count);
    value["last_message"] = summary
        .last_message
        .as_ref()
        .map_or(Value::Null, |m| message(m, cx));
    value
}

/// A room as it is shown now (with its visitor's connection).
pub fn live_room(live: &LiveRoom, cx: Cx<'_>) -> Value {
    room(&live.summary, cx, live.visitor_connected)
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
        "labels": r.labels.iter().map(room_label).collect::<Vec<_>>(),
        "unread_count": 0,
        "last_message": Value::Null,
        "created_at": format_ms(r.created_at_ms),
        "queued_at": r.queued_at_ms.map(format_ms),
        "wait_seconds": (r.state == crate::domain::RoomState::Queued)
            .then(|| r.queued_at_ms.map(|q| (now_ms() - q).max(0) / 1000))
            .flatten(),
        "rating": r.rating.as_ref().map(|g| json!({
            "rating": g.rating, "comment": g.comment, "created_at": format_ms(g.created_at_ms),
        })),
        "prechat": r.prechat.as_ref().map(|p| json!({
            "name": p.name, "email": p.email, "question": p.question,
        })),
        "verified": r.verified,
        "blocked": r.blocked,
    })
}

/// A label as rooms carry it (desk-api.md, "Support desk").
pub fn room_label(l: &crate::domain::RoomLabel) -> Value {
    json!({"uuid": l.id, "name": l.name, "color": l.color})
}

/// A tenant's label (`GET /labels`): its room shape.
pub fn label(l: &crate::domain::Label) -> Value {
    room_label(&l.on_room())
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

/// A canned response (desk-api.md, "Support desk").
pub fn canned_response(c: &crate::domain::CannedResponse) -> Value {
    json!({
        "uuid": c.id.0,
        "tenant_uuid": c.tenant_id,
        "shortcut": c.shortcut,
        "title": c.title,
        "content": c.content,
        "created_at": crate::domain::time::format_ms(c.created_at_ms),
        "updated_at": crate::domain::time::format_ms(c.updated_at_ms),
    })
}

/// The event's name and its `data` for agents; `None` when agents do not see it.
pub fn event_data(p: &Published, cx: Cx<'_>) -> Option<(&'static str, Value)> {
    if p.agents == Agents::Nobody {
        return None;
    }
    Some(match &p.event {
        Event::MessageCreated { message: m } => ("chatd_user_room_message_created", message(m, cx)),
        Event::MessageUpdated { message: m } => ("chatd_user_room_message_updated", message(m, cx)),
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
        Event::RoomCreated { room } => ("chatd_user_room_created", live_room(room, cx)),
        Event::QueueUpdated { action, room } => (
            "chatd_queue_updated",
            json!({
                "action": action.as_str(),
                "channel_id": room.room().channel_id,
                "room": live_room(room, cx),
            }),
        ),
        Event::RoomStateChanged { room } => ("chatd_room_state_updated", live_room(room, cx)),
        Event::RoomLabelsChanged { room } => ("chatd_room_labels_updated", live_room(room, cx)),
        Event::RoomRated { room } => ("chatd_room_rated", live_room(room, cx)),
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
            member_change(room, *member, *by, cx),
        ),
        Event::MemberRemoved { room, member, by } => (
            "chatd_user_room_member_removed",
            member_change(room, *member, *by, cx),
        ),
        Event::Mention {
            room,
            message,
            user,
        } => (
            "chatd_user_room_mention",
            json!({"room_uuid": room, "message_uuid": message, "user_uuid": user}),
        ),
        Event::WebhookPaused { webhook, reason } => (
            "chatd_webhook_paused",
            json!({"uuid": webhook, "enabled": false, "paused_reason": reason}),
        ),
        Event::ReadByAgent { .. }
        | Event::RoomClosed { .. }
        | Event::Availability { .. }
        | Event::SessionsRevoked { .. }
        | Event::VisitorErased { .. }
        | Event::ChannelChanged { .. } => return None,
    })
}

/// A member added or removed: the room as it is now, who (`user_uuid`)
/// and by whom (`by_user_uuid`; the same uuid when an agent left).
fn member_change(room: &LiveRoom, member: Uuid, by: Uuid, cx: Cx<'_>) -> Value {
    json!({
        "room": live_room(room, cx),
        "user_uuid": member,
        "by_user_uuid": by,
    })
}

/// The websocketd envelope of an event, as bytes, with its name. A
/// message's (most events) is serialized from the domain value directly.
pub fn event_frame(p: &Published, cx: Cx<'_>) -> Option<(&'static str, Vec<u8>)> {
    if p.agents == Agents::Nobody {
        return None;
    }
    let (name, bytes) = match &p.event {
        Event::MessageCreated { message: m } => {
            let name = "chatd_user_room_message_created";
            let data = WireMessage::of(m, cx);
            (
                name,
                serde_json::to_vec(&Envelope::new(name, p.tenant_id, cx.server, data)),
            )
        }
        Event::MessageUpdated { message: m } => {
            let name = "chatd_user_room_message_updated";
            let data = WireMessage::of(m, cx);
            (
                name,
                serde_json::to_vec(&Envelope::new(name, p.tenant_id, cx.server, data)),
            )
        }
        _ => {
            let (name, data) = event_data(p, cx)?;
            (
                name,
                serde_json::to_vec(&Envelope::new(name, p.tenant_id, cx.server, data)),
            )
        }
    };
    Some((name, bytes.ok()?))
}

/// The websocketd envelope of an event (`data` its body).
pub fn envelope(name: &str, tenant: TenantId, server: ServerId, data: Value) -> Value {
    serde_json::to_value(Envelope::new(name, tenant, server, data)).unwrap_or(Value::Null)
}

/// `{"code": 0, "data": {...}, "op": "event"}` (fields by name, as ever).
#[derive(Serialize)]
struct Envelope<'a, T: Serialize> {
    code: u8,
    data: EnvelopeData<'a, T>,
    op: &'static str,
}

#[derive(Serialize)]
struct EnvelopeData<'a, T: Serialize> {
    data: T,
    name: &'a str,
    origin_uuid: Uuid,
    required_acl: String,
    tenant_uuid: TenantId,
    timestamp: String,
}

impl<'a, T: Serialize> Envelope<'a, T> {
    fn new(name: &'a str, tenant: TenantId, server: ServerId, data: T) -> Envelope<'a, T> {
        Envelope {
            code: 0,
            data: EnvelopeData {
                data,
                name,
                origin_uuid: server.0,
                required_acl: format!("events.{name}"),
                tenant_uuid: tenant,
                timestamp: format_ms(now_ms()),
            },
            op: "event",
        }
    }
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
        let signer = Signer::new(b"key", 3600);
        let cx = Cx {
            server,
            signer: &signer,
        };
        let room = ConversationId::new();
        let (user, message) = (Uuid::from_u128(9), MessageId::new());
        let read = to_all(Event::RoomRead {
            room,
            reader: user,
            up_to_seq: 4,
        });
        assert_eq!(
            event_data(&read, cx),
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
            event_data(&connection, cx),
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
            event_data(&reaction, cx),
            Some((
                "chatd_user_room_message_reaction_deleted",
                json!({"room": {"uuid": room}, "message_uuid": message, "user_uuid": user, "emoji": "👍"})
            ))
        );
    }

    #[test]
    fn a_message_event_is_the_envelope_and_message_the_api_has_always_sent() {
        let server = ServerId(Uuid::from_u128(7));
        let signer = Signer::new(b"key", 3600);
        let cx = Cx {
            server,
            signer: &signer,
        };
        let m = Message {
            id: MessageId::new(),
            conversation_id: ConversationId::new(),
            tenant_id: TenantId::new(),
            channel_id: None,
            seq: 3,
            sender_kind: crate::domain::SenderKind::System,
            sender_id: Uuid::from_u128(5),
            sender_name: Some("Bo".into()),
            sender_avatar: None,
            content: "Bo joined".into(),
            state: crate::domain::DeliveryState::Delivered,
            sent_at_ms: 1_000,
            client_message_id: None,
            read_at_ms: Some(2_000),
            edited_at_ms: None,
            deleted: false,
            reactions: vec![crate::domain::Reaction {
                emoji: "👍".into(),
                user_id: Uuid::from_u128(6),
            }],
            notice: Some(crate::domain::Notice::agent_joined("Bo")),
            quick_replies: Vec::new(),
            postback: None,
            mentions: vec![Uuid::from_u128(8)],
            attachments: vec![crate::domain::Attachment {
                id: crate::domain::AttachmentId(Uuid::from_u128(9)),
                tenant_id: TenantId::new(),
                conversation_id: ConversationId::new(),
                uploader_kind: crate::domain::SenderKind::Agent,
                uploader_id: Uuid::from_u128(5),
                name: "a b.png".into(),
                size: 48,
                content_type: "image/png".into(),
                width: Some(8),
                height: Some(6),
                message_id: None,
                created_at_ms: 0,
            }],
            private: false,
            bot: false,
        };
        // The API's answers serialize the typed message straight, as the
        // events do: the same JSON as its `Value` (an attachment's keys in
        // the struct's order, as events have always had them).
        let straight = serde_json::to_string(&WireMessage::of(&m, cx)).unwrap();
        assert_eq!(
            serde_json::from_str::<Value>(&straight).unwrap(),
            message(&m, cx)
        );
        // The files, with URLs signed when the body is built.
        let mut shown = message(&m, cx);
        let files = shown["attachments"].take();
        shown.as_object_mut().unwrap().remove("attachments");
        let file = &files[0];
        assert_eq!(files.as_array().unwrap().len(), 1);
        assert_eq!(
            (
                &file["id"],
                &file["name"],
                &file["size"],
                &file["content_type"]
            ),
            (
                &json!(Uuid::from_u128(9)),
                &json!("a b.png"),
                &json!(48),
                &json!("image/png")
            )
        );
        assert_eq!((&file["width"], &file["height"]), (&json!(8), &json!(6)));
        let now = now_ms() / 1000;
        for (link, variant, tail) in [
            (&file["url"], crate::files::Variant::File, "a%20b.png"),
            (
                &file["thumbnail_url"],
                crate::files::Variant::Thumbnail,
                "thumbnail",
            ),
        ] {
            let link = link.as_str().unwrap();
            let query = link
                .strip_prefix(&format!("/files/{}/{tail}?expires=", Uuid::from_u128(9)))
                .unwrap();
            let (expires, signature) = query.split_once("&signature=").unwrap();
            let expires: i64 = expires.parse().unwrap();
            assert!((now + 3599..=now + 3601).contains(&expires), "{link}");
            assert!(signer.verify(Uuid::from_u128(9), variant, expires, signature, now));
        }
        let expected = json!({
            "uuid": m.id, "content": "Bo joined", "alias": "Bo", "user_uuid": m.sender_id,
            "tenant_uuid": m.tenant_id, "wazo_uuid": server.0, "created_at": format_ms(1_000),
            "room": {"uuid": m.conversation_id}, "seq": 3, "kind": "system", "state": "DELIVERED",
            "read_at": format_ms(2_000), "edited_at": null, "deleted": false,
            "reactions": [{"emoji": "👍", "user_uuid": Uuid::from_u128(6)}],
            "notice": {"type": "agent_joined", "params": {"agent": "Bo"}},
            "quick_replies": [], "postback": null, "mentions": [Uuid::from_u128(8)],
            "private": false, "bot": false,
        });
        assert_eq!(shown, expected);
        let m = Message {
            attachments: Vec::new(),
            ..m
        };
        let mut expected = expected;
        expected["attachments"] = json!([]);
        assert_eq!(message(&m, cx), expected);
        // Quick replies and a postback (desk-api.md) as the API shows them.
        let rich = Message {
            quick_replies: vec![crate::domain::QuickReply {
                title: "Yes".into(),
                payload: "yes".into(),
            }],
            postback: Some("no".into()),
            ..m.clone()
        };
        let shown = message(&rich, cx);
        assert_eq!(
            shown["quick_replies"],
            json!([{"title": "Yes", "payload": "yes"}])
        );
        assert_eq!(shown["postback"], "no");
        let without_notice = Message {
            notice: None,
            ..m.clone()
        };
        let mut plain = expected.clone();
        plain.as_object_mut().unwrap().remove("notice");
        assert_eq!(message(&without_notice, cx), plain);

        let created = to_all(Event::MessageCreated { message: m.clone() });
        let (name, bytes) = event_frame(&created, cx).unwrap();
        assert_eq!(name, "chatd_user_room_message_created");
        let frame: Value = serde_json::from_slice(&bytes).unwrap();
        assert_eq!(frame["op"], "event");
        assert_eq!(frame["code"], 0);
        assert_eq!(frame["data"]["name"], name);
        assert_eq!(frame["data"]["required_acl"], format!("events.{name}"));
        assert_eq!(frame["data"]["tenant_uuid"], json!(created.tenant_id));
        assert_eq!(frame["data"]["origin_uuid"], json!(server.0));
        assert_eq!(frame["data"]["data"], expected);
        assert_eq!(frame["data"].as_object().unwrap().len(), 6);
        let nobody = Published {
            agents: Agents::Nobody,
            ..created
        };
        assert_eq!(event_frame(&nobody, cx), None);
    }

    #[test]
    fn a_mention_names_the_room_the_message_and_the_mentioned_agent() {
        let server = ServerId(Uuid::from_u128(7));
        let signer = Signer::new(b"key", 3600);
        let cx = Cx {
            server,
            signer: &signer,
        };
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
            event_data(&mention, cx),
            Some((
                "chatd_user_room_mention",
                json!({"room_uuid": room, "message_uuid": message, "user_uuid": user})
            ))
        );
    }

    #[test]
    fn a_queue_update_carries_the_action_the_channel_and_the_room() {
        let server = ServerId(Uuid::from_u128(7));
        let signer = Signer::new(b"key", 3600);
        let cx = Cx {
            server,
            signer: &signer,
        };
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
            labels: vec![crate::domain::RoomLabel {
                id: crate::domain::LabelId(Uuid::from_u128(9)),
                name: "VIP".into(),
                color: "#ff0000".into(),
            }],
            rating: None,
            prechat: None,
            verified: false,
            blocked: false,
        };
        let live = LiveRoom {
            summary: RoomSummary::bare(room.clone()),
            visitor_connected: Some(true),
        };
        let queued = to_all(Event::QueueUpdated {
            action: QueueAction::Answered,
            room: live,
        });
        let (name, data) = event_data(&queued, cx).unwrap();
        assert_eq!(name, "chatd_queue_updated");
        assert_eq!(data["action"], "answered");
        assert_eq!(data["channel_id"], json!(channel));
        assert_eq!(data["room"], bare_room(&room, server, Some(true)));
        assert_eq!(data["room"]["users"][0]["connected"], true);
        assert_eq!(
            data["room"]["labels"],
            json!([{"uuid": Uuid::from_u128(9), "name": "VIP", "color": "#ff0000"}])
        );
    }
}
