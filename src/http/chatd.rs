//! The agent API under `/api/chatd/1.0` (agent-api.md): agents, rooms,
//! messages, reactions, read state, the queue. One filter takes every
//! request under the base path; `dispatch` matches method and path and
//! calls one service function per endpoint.

use std::collections::HashMap;

use bytes::Bytes;
use serde::Deserialize;
use serde_json::{json, Value};
use uuid::Uuid;
use warp::http::{Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::{body, parse_json, respond, token, with_app};
use crate::app::App;
use crate::domain::time::parse_ms;
use crate::domain::{AgentId, Message};
use crate::error::ApiError;
use crate::service::agents::{AgentPatch, NewAgent};
use crate::service::messages::Listing;
use crate::service::Caller;
use crate::store::Page;
use crate::wire::wazo;

pub fn routes(app: App) -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    warp::path!("api" / "chatd" / "1.0" / ..)
        .and(warp::path::tail())
        .and(warp::method())
        .and(warp::query::raw().or(warp::any().map(String::new)).unify())
        .and(token())
        .and(body(&app))
        .and(with_app(app))
        .then(
            |tail: warp::path::Tail,
             method: Method,
             query: String,
             token: Option<String>,
             body: Bytes,
             app: App| async move {
                respond(dispatch(&app, tail.as_str(), method, &query, token, &body).await)
            },
        )
}

/// Query parameters, percent-decoded (the SDK encodes `a,b` as `a%2Cb`).
struct Query(HashMap<String, String>);

impl Query {
    fn parse(raw: &str) -> Result<Query, ApiError> {
        let pairs: Vec<(String, String)> = serde_urlencoded::from_str(raw)
            .map_err(|e| ApiError::invalid_data(format!("bad query string: {e}")))?;
        Ok(Query(pairs.into_iter().collect()))
    }

    fn get(&self, name: &str) -> Option<&str> {
        self.0
            .get(name)
            .map(String::as_str)
            .filter(|v| !v.is_empty())
    }

    fn number<T: std::str::FromStr>(&self, name: &str) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse().map_err(|_| {
                    ApiError::invalid_field(name, format!("{name} must be a non-negative integer"))
                })
            })
            .transpose()
    }

    fn uuids(&self, name: &str) -> Result<Vec<Uuid>, ApiError> {
        self.get(name)
            .map(|v| {
                v.split(',')
                    .filter(|s| !s.trim().is_empty())
                    .map(|s| {
                        s.trim().parse().map_err(|_| {
                            ApiError::invalid_field(
                                name,
                                format!("{name} must be UUIDs separated by commas"),
                            )
                        })
                    })
                    .collect()
            })
            .unwrap_or(Ok(Vec::new()))
    }

    /// `limit`, at least 1 when given.
    fn limit(&self) -> Result<Option<u32>, ApiError> {
        let limit: Option<u32> = self.number("limit")?;
        if limit == Some(0) {
            return Err(ApiError::invalid_field("limit", "limit must be at least 1"));
        }
        Ok(limit)
    }

    fn listing(&self) -> Result<Listing, ApiError> {
        let ascending = match self.get("direction").or_else(|| self.get("order")) {
            None | Some("desc") => false,
            Some("asc") => true,
            Some(_) => {
                return Err(ApiError::invalid_field(
                    "direction",
                    "direction must be asc or desc",
                ))
            }
        };
        let from_ms = self
            .get("from_date")
            .map(|d| {
                parse_ms(d).ok_or_else(|| {
                    ApiError::invalid_field("from_date", "from_date must be an ISO 8601 date")
                })
            })
            .transpose()?;
        Ok(Listing {
            limit: self.limit()?,
            offset: self.number("offset")?,
            ascending,
            from_ms,
            before_seq: self.number("before_seq")?,
            after_seq: self.number("after_seq")?,
            search: self.get("search").map(str::to_string),
        })
    }
}

fn id<T: std::str::FromStr>(raw: &str, resource: &'static str) -> Result<T, ApiError> {
    // A malformed id names nothing that exists: 404, like an unknown one.
    raw.parse()
        .map_err(|_| ApiError::not_found_resource(resource_error(resource), resource))
}

fn resource_error(resource: &str) -> &'static str {
    match resource {
        "room" => "unknown-room",
        "message" => "unknown-message",
        "agent" => "unknown-agent",
        "user" => "unknown-user",
        _ => "not-found",
    }
}

/// A path segment, percent-decoded (emojis in reaction paths).
fn decode_segment(raw: &str) -> Result<String, ApiError> {
    let bytes = raw.as_bytes();
    let mut out = Vec::with_capacity(bytes.len());
    let mut i = 0;
    while i < bytes.len() {
        if bytes[i] == b'%' {
            let hex = raw
                .get(i + 1..i + 3)
                .and_then(|h| u8::from_str_radix(h, 16).ok())
                .ok_or_else(|| ApiError::invalid_data("bad percent-encoding in path"))?;
            out.push(hex);
            i += 3;
        } else {
            out.push(bytes[i]);
            i += 1;
        }
    }
    String::from_utf8(out).map_err(|_| ApiError::invalid_data("path is not UTF-8"))
}

fn json_status(status: StatusCode, value: Value) -> Response {
    warp::reply::with_status(warp::reply::json(&value), status).into_response()
}

fn ok(value: Value) -> Response {
    json_status(StatusCode::OK, value)
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn messages_page(app: &App, page: Page<Message>) -> Response {
    let server = app.services.core.server;
    ok(json!({
        "items": page.items.iter().map(|m| wazo::message(m, server)).collect::<Vec<_>>(),
        "filtered": page.filtered,
        "total": page.total,
    }))
}

#[derive(Deserialize)]
struct CreateAgent {
    email: String,
    display_name: String,
    password: String,
    role: Option<String>,
    avatar_url: Option<String>,
}

#[derive(Deserialize, Default)]
struct PatchAgent {
    display_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    avatar_url: Option<Option<String>>,
    role: Option<String>,
    password: Option<String>,
    disabled: Option<bool>,
}

/// A field that may be absent (`None`), null (`Some(None)`) or set.
fn present<'de, D, T>(d: D) -> Result<Option<Option<T>>, D::Error>
where
    D: serde::Deserializer<'de>,
    T: Deserialize<'de>,
{
    Option::<T>::deserialize(d).map(Some)
}

#[derive(Deserialize)]
struct RoomUser {
    uuid: Uuid,
}

#[derive(Deserialize)]
struct CreateRoom {
    name: Option<String>,
    #[serde(default)]
    users: Vec<RoomUser>,
}

#[derive(Deserialize)]
struct PostMessage {
    content: String,
    alias: Option<String>,
}

#[derive(Deserialize)]
struct EditMessage {
    content: String,
}

#[derive(Deserialize)]
struct React {
    emoji: String,
}

#[derive(Deserialize)]
struct Transfer {
    user_uuid: Uuid,
}

#[derive(Deserialize)]
struct SetState {
    state: String,
}

#[derive(Deserialize)]
struct Activity {
    #[serde(rename = "type")]
    kind: String,
}

#[derive(Deserialize)]
struct SetPresence {
    state: String,
    status: Option<String>,
}

/// A user in a path: `me` or an agent uuid (404 `unknown-user` otherwise).
fn user_id(caller: &Caller, raw: &str) -> Result<AgentId, ApiError> {
    if raw == "me" {
        return Ok(caller.id());
    }
    id(raw, "user")
}

#[derive(Deserialize, Default)]
struct Read {
    up_to_seq: Option<i64>,
}

async fn dispatch(
    app: &App,
    tail: &str,
    method: Method,
    raw_query: &str,
    token: Option<String>,
    body: &[u8],
) -> Result<Response, ApiError> {
    let caller = app.services.agents.authenticate(token.as_deref()).await?;
    let query = Query::parse(raw_query)?;
    let path: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
    let s = &app.services;
    let server = s.core.server;
    let c: &Caller = &caller;
    match (&method, path.as_slice()) {
        // Agents (admin).
        (&Method::GET, ["agents"]) => {
            let agents = s.agents.list(c).await?;
            let items: Vec<Value> = agents.iter().map(wazo::agent).collect();
            Ok(ok(
                json!({"items": items, "total": items.len(), "filtered": items.len()}),
            ))
        }
        (&Method::POST, ["agents"]) => {
            let new: CreateAgent = parse_json(body, false)?;
            let agent = s
                .agents
                .create(
                    c,
                    NewAgent {
                        email: new.email,
                        display_name: new.display_name,
                        password: new.password,
                        role: new.role,
                        avatar_url: new.avatar_url,
                    },
                )
                .await?;
            Ok(json_status(StatusCode::CREATED, wazo::agent(&agent)))
        }
        (&Method::GET, ["agents", agent]) => {
            let agent = s.agents.get(c, id::<AgentId>(agent, "agent")?).await?;
            Ok(ok(wazo::agent(&agent)))
        }
        (&Method::PATCH | &Method::PUT, ["agents", agent]) => {
            let patch: PatchAgent = parse_json(body, false)?;
            let agent = s
                .agents
                .update(
                    c,
                    id::<AgentId>(agent, "agent")?,
                    AgentPatch {
                        display_name: patch.display_name,
                        avatar_url: patch.avatar_url,
                        role: patch.role,
                        password: patch.password,
                        disabled: patch.disabled,
                    },
                )
                .await?;
            Ok(ok(wazo::agent(&agent)))
        }
        (&Method::DELETE, ["agents", agent]) => {
            s.agents.delete(c, id::<AgentId>(agent, "agent")?).await?;
            Ok(no_content())
        }
        // Rooms.
        (&Method::GET, ["users", "me", "rooms"]) => {
            let with = query.uuids("user_uuid")?;
            let page = s
                .rooms
                .list(c, &with, None, query.limit()?, query.number("offset")?)
                .await?;
            Ok(ok(
                json!({"items": page.items, "filtered": page.filtered, "total": page.total}),
            ))
        }
        (&Method::POST, ["users", "me", "rooms"]) => {
            let new: CreateRoom = parse_json(body, false)?;
            let users = new.users.into_iter().map(|u| u.uuid).collect();
            let (room, _created) = s.rooms.create(c, new.name, users).await?;
            Ok(json_status(StatusCode::CREATED, room))
        }
        (&Method::GET, ["users", "me", "rooms", "messages"]) => {
            let distinct = match query.get("distinct") {
                None => false,
                Some("room_uuid") => true,
                Some(_) => {
                    return Err(ApiError::invalid_field(
                        "distinct",
                        "distinct must be room_uuid",
                    ))
                }
            };
            let page = s.messages.search(c, &query.listing()?, distinct).await?;
            Ok(messages_page(app, page))
        }
        (&Method::GET, ["users", "me", "rooms", room, "messages"]) => {
            let page = s
                .messages
                .list(c, id(room, "room")?, &query.listing()?)
                .await?;
            Ok(messages_page(app, page))
        }
        (&Method::POST, ["users", "me", "rooms", room, "messages"]) => {
            let post: PostMessage = parse_json(body, false)?;
            let message = s
                .messages
                .post(c, id(room, "room")?, post.content, post.alias)
                .await?;
            Ok(json_status(
                StatusCode::CREATED,
                wazo::message(&message, server),
            ))
        }
        (&Method::PATCH | &Method::PUT, ["users", "me", "rooms", room, "messages", message]) => {
            let edit: EditMessage = parse_json(body, false)?;
            let message = s
                .messages
                .change(
                    c,
                    id(room, "room")?,
                    id(message, "message")?,
                    Some(edit.content),
                )
                .await?;
            Ok(ok(wazo::message(&message, server)))
        }
        (&Method::DELETE, ["users", "me", "rooms", room, "messages", message]) => {
            let message = s
                .messages
                .change(c, id(room, "room")?, id(message, "message")?, None)
                .await?;
            Ok(ok(wazo::message(&message, server)))
        }
        (&Method::POST, ["users", "me", "rooms", room, "messages", message, "reactions"]) => {
            let react: React = parse_json(body, false)?;
            let emoji = s
                .messages
                .add_reaction(c, id(room, "room")?, id(message, "message")?, &react.emoji)
                .await?;
            Ok(json_status(
                StatusCode::CREATED,
                json!({"emoji": emoji.as_str(), "user_uuid": c.id()}),
            ))
        }
        (
            &Method::DELETE,
            ["users", "me", "rooms", room, "messages", message, "reactions", emoji],
        ) => {
            let emoji = decode_segment(emoji)?;
            s.messages
                .remove_reaction(c, id(room, "room")?, id(message, "message")?, &emoji)
                .await?;
            Ok(no_content())
        }
        (&Method::POST, ["users", "me", "rooms", room, "transfers"]) => {
            let transfer: Transfer = parse_json(body, false)?;
            Ok(ok(s
                .rooms
                .transfer(c, id(room, "room")?, transfer.user_uuid)
                .await?))
        }
        (&Method::PUT, ["users", "me", "rooms", room, "state"]) => {
            let state: SetState = parse_json(body, false)?;
            Ok(ok(s
                .rooms
                .set_state(c, id(room, "room")?, &state.state)
                .await?))
        }
        (&Method::POST, ["users", "me", "rooms", room, "activities"]) => {
            let activity: Activity = parse_json(body, false)?;
            s.typing.agent(c, id(room, "room")?, &activity.kind).await?;
            Ok(no_content())
        }
        // Extension: what the visitor's page told (visitor rooms).
        (&Method::GET, ["users", "me", "rooms", room, "visitor"]) => {
            let context = s.rooms.visitor_context(c, id(room, "room")?).await?;
            Ok(ok(crate::wire::wazo::visitor_context(&context)))
        }
        (&Method::PUT, ["users", "me", "rooms", room, "read"]) => {
            let read: Read = parse_json(body, true)?;
            s.rooms.read(c, id(room, "room")?, read.up_to_seq).await?;
            Ok(no_content())
        }
        // Presence.
        (&Method::GET, ["users", "presences"]) => {
            let ids: Vec<AgentId> = query.uuids("user_uuid")?.into_iter().map(AgentId).collect();
            let items = s.presence.list(c, &ids).await?;
            Ok(ok(
                json!({"filtered": items.len(), "total": items.len(), "items": items}),
            ))
        }
        (&Method::GET, ["users", user, "presences"]) => {
            Ok(ok(s.presence.get(c, user_id(c, user)?).await?))
        }
        (&Method::PUT, ["users", user, "presences"]) => {
            let set: SetPresence = parse_json(body, false)?;
            s.presence
                .set(c, user_id(c, user)?, &set.state, set.status.as_deref())
                .await?;
            Ok(no_content())
        }
        // The queue.
        (&Method::GET, ["queues"]) => {
            let channel = query
                .get("channel_id")
                .map(|v| {
                    v.parse().map_err(|_| {
                        ApiError::invalid_field("channel_id", "channel_id must be a UUID")
                    })
                })
                .transpose()?;
            let items = s.rooms.queue(c, channel).await?;
            Ok(ok(json!({"total": items.len(), "items": items})))
        }
        (&Method::PUT, ["queues", room, "answer"]) => {
            Ok(ok(s.rooms.answer(c, id(room, "room")?).await?))
        }
        _ => Err(ApiError::not_found()),
    }
}

#[cfg(test)]
mod tests {
    use proptest::prelude::*;
    use serde::de::DeserializeOwned;

    use super::*;
    use crate::domain::presence::parse_status;
    use crate::domain::room::parse_room_name;
    use crate::domain::{Emoji, MessageText, PresenceState, Role};
    use crate::fuzz;
    use crate::http::parse_json;

    const QUERY_KEYS: &[&str] = &[
        "limit",
        "offset",
        "direction",
        "order",
        "from_date",
        "before_seq",
        "after_seq",
        "search",
        "distinct",
        "user_uuid",
        "channel_id",
    ];

    const BODY_KEYS: &[&str] = &[
        "email",
        "display_name",
        "password",
        "role",
        "avatar_url",
        "disabled",
        "name",
        "users",
        "uuid",
        "content",
        "alias",
        "emoji",
        "user_uuid",
        "state",
        "type",
        "status",
        "up_to_seq",
        "expiration",
    ];

    /// Decodes `body` as `T` the way `dispatch` does: either a value or a
    /// 400 naming the problem.
    fn decode<T: DeserializeOwned>(body: &[u8], empty_ok: bool) -> Option<T> {
        match parse_json::<T>(body, empty_ok) {
            Ok(value) => Some(value),
            Err(err) => {
                fuzz::assert_client_error(&err);
                assert_eq!(err.status, StatusCode::BAD_REQUEST, "{err:?}");
                None
            }
        }
    }

    proptest! {
        #![proptest_config(fuzz::config())]

        #[test]
        fn message_listing_queries_decode_or_are_refused_cleanly(
            raw in fuzz::query(QUERY_KEYS),
        ) {
            let query = match Query::parse(&raw) {
                Ok(query) => query,
                Err(err) => {
                    fuzz::assert_client_error(&err);
                    return Ok(());
                }
            };
            match query.listing() {
                Ok(listing) => prop_assert!(listing.limit != Some(0)),
                Err(err) => fuzz::assert_client_error(&err),
            }
            if let Err(err) = query.uuids("user_uuid") {
                fuzz::assert_client_error(&err);
            }
            if let Err(err) = query.number::<u32>("offset") {
                fuzz::assert_client_error(&err);
            }
        }

        #[test]
        fn agent_bodies_decode_or_are_refused_with_400(body in fuzz::json_bytes(BODY_KEYS)) {
            if let Some(new) = decode::<CreateAgent>(&body, false) {
                let _ = (Role::parse(new.role.as_deref().unwrap_or("")), new.email.len());
            }
            if let Some(patch) = decode::<PatchAgent>(&body, false) {
                let _ = patch.role.as_deref().map(Role::parse);
            }
            if let Some(room) = decode::<CreateRoom>(&body, false) {
                let _ = room.name.as_deref().map(parse_room_name);
            }
            if let Some(post) = decode::<PostMessage>(&body, false) {
                let _ = MessageText::parse(post.content, 4096);
            }
            if let Some(edit) = decode::<EditMessage>(&body, false) {
                let _ = MessageText::parse(edit.content, 4096);
            }
            if let Some(react) = decode::<React>(&body, false) {
                let _ = Emoji::parse(&react.emoji);
            }
            let _ = decode::<Transfer>(&body, false);
            if let Some(state) = decode::<SetState>(&body, false) {
                let _ = state.state.len();
            }
            if let Some(activity) = decode::<Activity>(&body, false) {
                let _ = activity.kind.len();
            }
            if let Some(read) = decode::<Read>(&body, true) {
                let _ = read.up_to_seq;
            }
            if let Some(set) = decode::<SetPresence>(&body, false) {
                let _ = PresenceState::parse(&set.state);
                let _ = set.status.as_deref().map(parse_status);
            }
        }

        #[test]
        fn path_segments_decode_or_are_refused_cleanly(raw in fuzz::text()) {
            match decode_segment(&raw) {
                Ok(decoded) => prop_assert!(decoded.len() <= raw.len()),
                Err(err) => fuzz::assert_client_error(&err),
            }
            // Ids in paths: a malformed one is a clean 404.
            if let Err(err) = id::<Uuid>(&raw, "room") {
                fuzz::assert_client_error(&err);
            }
        }
    }
}
