//! The agent API under `/api/chatd/1.0` (agent-api.md): agents, canned
//! responses (desk-api.md), rooms,
//! messages, reactions, read state, the queue (and reading a queued room
//! before answering it), supervision (admins: every visitor room). One filter takes every
//! request under the base path; `dispatch` authenticates the caller, parses
//! the query, and finds the endpoint in [`ROUTES`] (method and path
//! pattern). Each endpoint is one short `async fn` below, its route in its
//! doc line: it parses its path ids and body, calls one service function and
//! renders the result. No route is a 404; a route's path with another
//! method is a 405 (its `Allow` header is `http::routes`'s).

use std::collections::HashMap;

use bytes::Bytes;
use futures_util::future::BoxFuture;
use serde::de::DeserializeOwned;
use serde::Deserialize;
use serde_json::{json, Value};
use utoipa::ToSchema;
use uuid::Uuid;
use warp::http::{Method, StatusCode};
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use super::{body, parse_json, respond, token, with_app};
use crate::domain::application::Scope;
use crate::domain::time::parse_ms;
use crate::domain::{AgentId, LiveRoom, Message, QuickReply, RoomId, RoomState};
use crate::error::ApiError;
use crate::service::agents::{AgentPatch, NewAgent};
use crate::service::canned::{CannedFields, CannedQuery};
use crate::service::messages::Listing;
use crate::service::presence::PresenceChange;
use crate::service::rooms::{RoomFilter, RoomRef};
use crate::service::{Caller, Services};
use crate::state::App;
use crate::store::Page;
use crate::wire::shapes::{self, MessageListing, RoomStateParam};
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
                respond(dispatch(app, tail.as_str(), method, &query, token, body).await)
            },
        )
}

/// Authenticates the caller (before anything else: an anonymous request
/// learns nothing, not even which paths exist), parses the query, and runs
/// the endpoint the method and path name.
async fn dispatch(
    app: App,
    tail: &str,
    method: Method,
    raw_query: &str,
    token: Option<String>,
    body: Bytes,
) -> Result<Response, ApiError> {
    let path: Vec<&str> = tail.split('/').filter(|s| !s.is_empty()).collect();
    let found = find(&method, &path);
    // A route on one room reads it with the caller's session, in one
    // store read (a malformed id is the handler's 404 to give).
    let room_id = found
        .as_ref()
        .filter(|(route, _)| route.reads_room)
        .and_then(|(_, params)| params.get("room").parse::<RoomId>().ok());
    let agents = &app.services.agents;
    let (caller, room) = match room_id {
        Some(id) => {
            let (caller, room) = agents.authenticate_at(token.as_deref(), id).await?;
            (caller, Some(room))
        }
        None => (agents.authenticate(token.as_deref()).await?, None),
    };
    let query = Query::parse(raw_query)?;
    let Some((route, params)) = found else {
        let known_path = ROUTES
            .iter()
            .any(|route| Params::matching(route.path, &path).is_some());
        return Err(if known_path {
            ApiError::new(
                StatusCode::METHOD_NOT_ALLOWED,
                "method-not-allowed",
                "method not allowed on this path",
            )
        } else {
            ApiError::not_found()
        });
    };
    if caller.is_application() {
        let scope = application_scope(&method, route.path).ok_or(
            crate::service::ServiceError::NotForApplications(
                "applications may not make this call: it is for people (agents or admins)",
            ),
        )?;
        caller.require_scope(scope)?;
    }
    (route.handler)(Call {
        app,
        caller,
        params,
        query,
        body,
        room,
    })
    .await
}

/// An endpoint's handler, boxed so that every endpoint fits one table.
type Handler = fn(Call) -> BoxFuture<'static, Result<Response, ApiError>>;

/// One endpoint: its methods, its path under the base path (`:name`
/// captures a segment, read with [`Call::id`] or [`Call::param`]), and its
/// handler.
struct Route {
    methods: &'static [Method],
    path: &'static str,
    handler: Handler,
    /// The handler takes its `:room` as read with the caller's session
    /// ([`Call::room`]): one store read for both.
    reads_room: bool,
}

/// `route!(GET | PUT, "path/:id", handler)`: a table row;
/// `route!(room POST, "path/:room/...", handler)`: one whose `:room` is
/// read with the session.
macro_rules! route {
    (room $($method:ident)|+, $path:literal, $handler:ident) => {
        Route {
            methods: &[$(Method::$method),+],
            path: $path,
            handler: |call| Box::pin($handler(call)),
            reads_room: true,
        }
    };
    ($($method:ident)|+, $path:literal, $handler:ident) => {
        Route {
            methods: &[$(Method::$method),+],
            path: $path,
            handler: |call| Box::pin($handler(call)),
            reads_room: false,
        }
    };
}

/// Every endpoint, tried in order; the first whose methods and path match runs.
static ROUTES: &[Route] = &[
    // Agents (admin).
    route!(GET, "agents", list_agents),
    route!(POST, "agents", create_agent),
    route!(GET, "agents/:agent", get_agent),
    route!(PATCH | PUT, "agents/:agent", update_agent),
    route!(DELETE, "agents/:agent", delete_agent),
    // Canned responses (any agent reads; admins write).
    route!(GET, "canned_responses", list_canned),
    route!(POST, "canned_responses", create_canned),
    route!(GET, "canned_responses/:canned_response", get_canned),
    route!(
        PATCH | PUT,
        "canned_responses/:canned_response",
        update_canned
    ),
    route!(DELETE, "canned_responses/:canned_response", delete_canned),
    // Rooms.
    route!(GET, "users/me/rooms", list_rooms),
    route!(POST, "users/me/rooms", create_room),
    route!(GET, "users/me/rooms/messages", search_messages),
    route!(GET, "users/me/rooms/:room/messages", list_messages),
    route!(room POST, "users/me/rooms/:room/messages", post_message),
    route!(
        PATCH | PUT,
        "users/me/rooms/:room/messages/:message",
        edit_message
    ),
    route!(
        DELETE,
        "users/me/rooms/:room/messages/:message",
        delete_message
    ),
    route!(
        POST,
        "users/me/rooms/:room/messages/:message/reactions",
        add_reaction
    ),
    route!(
        DELETE,
        "users/me/rooms/:room/messages/:message/reactions/:emoji",
        remove_reaction
    ),
    route!(POST, "users/me/rooms/:room/transfers", transfer_room),
    // Applications (desk-api.md, "Integrations"): back to the queue.
    route!(POST, "users/me/rooms/:room/handover", handover_room),
    route!(POST, "users/me/rooms/:room/members", add_member),
    route!(DELETE, "users/me/rooms/:room/members/:user", remove_member),
    route!(PUT, "users/me/rooms/:room/state", set_room_state),
    route!(room PUT, "users/me/rooms/:room/labels", set_room_labels),
    route!(room PUT, "users/me/rooms/:room/block", block_room),
    route!(room DELETE, "users/me/rooms/:room/block", unblock_room),
    route!(POST, "users/me/rooms/:room/activities", room_activity),
    // Extension: what the visitor's page told (visitor rooms).
    route!(GET, "users/me/rooms/:room/visitor", visitor_context),
    route!(PUT, "users/me/rooms/:room/read", mark_read),
    // Labels (desk-api.md, "Support desk"; changes: admins).
    route!(GET, "labels", list_labels),
    route!(POST, "labels", create_label),
    route!(PATCH | PUT, "labels/:label", update_label),
    route!(DELETE, "labels/:label", delete_label),
    // Webhooks (desk-api.md, "Integrations"; admins).
    route!(GET, "webhooks", list_webhooks),
    route!(POST, "webhooks", create_webhook),
    route!(PATCH | PUT, "webhooks/:webhook", update_webhook),
    route!(DELETE, "webhooks/:webhook", delete_webhook),
    route!(GET, "webhooks/:webhook/deliveries", list_deliveries),
    // Extension: the console's "send again".
    route!(
        POST,
        "webhooks/:webhook/deliveries/:delivery/redeliver",
        redeliver
    ),
    // Applications (desk-api.md, "Integrations"; admins).
    route!(GET, "applications", list_applications),
    route!(POST, "applications", create_application),
    route!(DELETE, "applications/:application", revoke_application),
    // Presence.
    route!(GET, "users/presences", list_presences),
    route!(GET, "users/:user/presences", get_presence),
    route!(PUT, "users/:user/presences", set_presence),
    // The queue.
    route!(GET, "queues", list_queue),
    route!(GET, "queues/:room", get_queued_room),
    route!(GET, "queues/:room/messages", list_queued_messages),
    route!(PUT, "queues/:room/answer", answer_queue),
    // Supervision (admin): every visitor room of the tenant.
    route!(GET, "rooms", list_all_rooms),
    route!(GET, "rooms/:room", get_supervised_room),
    route!(GET, "rooms/:room/messages", list_supervised_messages),
    route!(POST, "rooms/:room/transfers", assign_room),
    // Data rights (admin): a visitor's export and erasure, the audit log,
    // the tenant's retention.
    route!(GET, "visitors/:conversation/export", export_visitor),
    route!(DELETE, "visitors/:conversation", erase_visitor),
    route!(GET, "audit", list_audit),
    route!(GET, "tenant", get_tenant),
    route!(PATCH | PUT, "tenant", update_tenant),
    // Reports (admins: the tenant's; an agent: its own figures).
    route!(GET, "reports", get_report),
];

/// The scope an application needs for an endpoint (`None`: no
/// application may call it, whatever its scopes: admin calls, presence,
/// agent rooms and their members). Applications act on visitor
/// conversations only.
fn application_scope(method: &Method, path: &str) -> Option<Scope> {
    let read = *method == Method::GET;
    match path {
        "users/me/rooms"
        | "users/me/rooms/messages"
        | "users/me/rooms/:room/visitor"
        | "queues"
        | "queues/:room"
        | "queues/:room/messages"
        | "labels"
        | "canned_responses"
        | "canned_responses/:canned_response"
            if read =>
        {
            Some(Scope::ConversationsRead)
        }
        "users/me/rooms/:room/messages" if read => Some(Scope::ConversationsRead),
        "users/me/rooms/:room/messages"
        | "users/me/rooms/:room/messages/:message"
        | "users/me/rooms/:room/messages/:message/reactions"
        | "users/me/rooms/:room/messages/:message/reactions/:emoji"
        | "users/me/rooms/:room/activities" => Some(Scope::MessagesWrite),
        "queues/:room/answer"
        | "users/me/rooms/:room/transfers"
        | "users/me/rooms/:room/state"
        | "users/me/rooms/:room/handover"
        | "users/me/rooms/:room/read"
        | "users/me/rooms/:room/labels"
        | "users/me/rooms/:room/block" => Some(Scope::ConversationsWrite),
        _ => None,
    }
}

/// Every endpoint of the table as `(method, path)`, the path in OpenAPI's
/// form (`/api/chatd/1.0/agents/{agent}`): what `http::served` lists.
pub fn endpoints() -> Vec<(String, String)> {
    ROUTES
        .iter()
        .flat_map(|route| {
            let path = route
                .path
                .split('/')
                .map(|s| match s.strip_prefix(':') {
                    Some(name) => format!("{{{name}}}"),
                    None => s.to_string(),
                })
                .collect::<Vec<_>>()
                .join("/");
            route
                .methods
                .iter()
                .map(move |m| (m.to_string(), format!("/api/chatd/1.0/{path}")))
        })
        .collect()
}

/// The first route matching `method` and the path segments, with the
/// segments its pattern captured.
fn find(method: &Method, path: &[&str]) -> Option<(&'static Route, Params)> {
    ROUTES
        .iter()
        .filter(|route| route.methods.contains(method))
        .find_map(|route| Params::matching(route.path, path).map(|p| (route, p)))
}

/// The segments a route's `:name`s captured, raw (not percent-decoded).
#[derive(Debug, Default, PartialEq)]
struct Params(Vec<(&'static str, String)>);

impl Params {
    /// The captures of `pattern` on `path`, or `None` when it does not match.
    fn matching(pattern: &'static str, path: &[&str]) -> Option<Params> {
        if pattern.split('/').count() != path.len() {
            return None;
        }
        let mut params = Params::default();
        for (want, got) in pattern.split('/').zip(path) {
            match want.strip_prefix(':') {
                Some(name) => params.0.push((name, (*got).to_string())),
                None if want == *got => {}
                None => return None,
            }
        }
        Some(params)
    }

    fn get(&self, name: &str) -> &str {
        let found = self.0.iter().find(|(n, _)| *n == name);
        debug_assert!(found.is_some(), "no :{name} in this route");
        found.map_or("", |(_, v)| v.as_str())
    }
}

/// One request to an endpoint: who asks, what the path captured, the query
/// and the body.
struct Call {
    app: App,
    caller: Caller,
    params: Params,
    query: Query,
    body: Bytes,
    /// The `:room` as read with the session, for a route that `reads_room`.
    room: Option<RoomRef>,
}

impl Call {
    /// The `:room`: as read with the session when the route asked for it
    /// (handed over, not copied), otherwise by its id (malformed: 404).
    fn take_room(&mut self) -> Result<RoomRef, ApiError> {
        match self.room.take() {
            Some(read) => Ok(read),
            None => Ok(RoomRef::Id(self.id("room")?)),
        }
    }

    fn services(&self) -> &Services {
        &self.app.services
    }

    /// The id captured as `:name`; malformed is a 404 naming the resource.
    fn id<T: std::str::FromStr>(&self, name: &'static str) -> Result<T, ApiError> {
        id(self.params.get(name), name)
    }

    /// The segment captured as `:name`, raw.
    fn param(&self, name: &str) -> &str {
        self.params.get(name)
    }

    /// The body as the JSON of `T` (400 naming the problem).
    fn json<T: DeserializeOwned>(&self) -> Result<T, ApiError> {
        parse_json(&self.body, false)
    }

    /// What the agent shapes are encoded with.
    fn cx(&self) -> wazo::Cx<'_> {
        let services = self.services();
        wazo::Cx {
            server: services.server,
            signer: &services.signer,
        }
    }

    /// A message as the API answers it: serialized straight from the
    /// domain value (the same JSON as `wazo::message`, without building its
    /// `Value` tree first: every reply answers with one).
    fn wazo_message<'a>(&'a self, message: &'a Message) -> wazo::WireMessage<'a> {
        wazo::WireMessage::of(message, self.cx())
    }

    fn wazo_room(&self, room: &LiveRoom) -> Value {
        wazo::live_room(room, self.cx())
    }
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

    /// A value parsed as `T` (400 naming `name` with `message` otherwise).
    fn parsed<T: std::str::FromStr>(
        &self,
        name: &'static str,
        message: &'static str,
    ) -> Result<Option<T>, ApiError> {
        self.get(name)
            .map(|v| {
                v.parse()
                    .map_err(|_| ApiError::invalid_field(name, message))
            })
            .transpose()
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
        "label" => "unknown-label",
        "canned_response" => "unknown-canned-response",
        "webhook" => "unknown-webhook",
        "delivery" => "unknown-delivery",
        "application" => "unknown-application",
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

fn json_status(status: StatusCode, value: impl serde::Serialize) -> Response {
    warp::reply::with_status(warp::reply::json(&value), status).into_response()
}

fn ok(value: impl serde::Serialize) -> Response {
    json_status(StatusCode::OK, value)
}

fn no_content() -> Response {
    StatusCode::NO_CONTENT.into_response()
}

fn messages_page(call: &Call, page: Page<Message>) -> Response {
    ok(json!({
        "items": page.items.iter().map(|m| call.wazo_message(m)).collect::<Vec<_>>(),
        "filtered": page.filtered,
        "total": page.total,
    }))
}

#[derive(Deserialize, ToSchema)]
struct CreateAgent {
    /// The login.
    #[schema(format = Email, max_length = 254)]
    email: String,
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    display_name: String,
    #[schema(min_length = 8, max_length = 200)]
    password: String,
    /// `admin` or `agent` (the default).
    #[schema(pattern = "^(admin|agent)$")]
    role: Option<String>,
    /// An http(s) URL.
    #[schema(max_length = 2048, pattern = r"^https?://[^\s]+$")]
    avatar_url: Option<String>,
}

#[derive(Deserialize, ToSchema, Default)]
struct PatchAgent {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    display_name: Option<String>,
    #[serde(default, deserialize_with = "present")]
    #[schema(value_type = Option<String>, max_length = 2048, pattern = r"^https?://[^\s]+$")]
    avatar_url: Option<Option<String>>,
    /// `admin` or `agent`.
    #[schema(pattern = "^(admin|agent)$")]
    role: Option<String>,
    #[schema(min_length = 8, max_length = 200)]
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

#[derive(Deserialize, ToSchema)]
#[schema(as = RoomMemberRef)]
struct RoomUser {
    uuid: Uuid,
}

#[derive(Deserialize, ToSchema)]
struct CreateRoom {
    #[schema(min_length = 1, max_length = 200, pattern = r"\S")]
    name: Option<String>,
    /// The other members (the caller is added): 2 to 100 in all.
    #[serde(default)]
    users: Vec<RoomUser>,
}

#[derive(Deserialize, ToSchema)]
struct PostMessage {
    /// Optional when `attachments` are given.
    #[serde(default)]
    #[schema(min_length = 1, pattern = r"\S")]
    content: Option<String>,
    alias: Option<String>,
    /// desk-api.md, "Attachments": the caller's unsent uploads' ids.
    #[serde(default)]
    #[schema(value_type = Option<Vec<Uuid>>)]
    attachments: Option<Value>,
    /// desk-api.md, "Quick replies": absent or null for none.
    #[serde(default)]
    quick_replies: Option<Vec<QuickReplyBody>>,
    #[serde(default)]
    mentions: Vec<Uuid>,
    /// desk-api.md, "Support desk": a private note, agents only.
    #[serde(default)]
    private: bool,
}

#[derive(Deserialize, ToSchema)]
#[schema(as = QuickReplyInput)]
struct QuickReplyBody {
    #[schema(min_length = 1, max_length = 40, pattern = r"\S")]
    title: String,
    #[schema(min_length = 1, pattern = r"\S")]
    payload: String,
}

impl PostMessage {
    /// The buttons, parsed: a bad one is a 400 naming it.
    fn quick_replies(&mut self) -> Result<Vec<QuickReply>, ApiError> {
        match self.quick_replies.take() {
            None => Ok(Vec::new()),
            Some(items) => {
                QuickReply::parse_list(items.into_iter().map(|q| (q.title, q.payload)).collect())
                    .map_err(|e| ApiError::invalid_field(&e.field, e.message))
            }
        }
    }
}

#[derive(Deserialize, ToSchema)]
struct SetLabels {
    #[schema(value_type = Vec<Uuid>)]
    labels: Vec<Value>,
}

#[derive(Deserialize, ToSchema)]
struct LabelBody {
    #[schema(
        min_length = 1,
        max_length = 50,
        pattern = r"^[^\x00-\x1f]*\S[^\x00-\x1f]*$"
    )]
    name: Option<String>,
    #[schema(pattern = "^#[0-9a-fA-F]{6}$", example = "#2f6fde")]
    color: Option<String>,
}

impl From<LabelBody> for crate::service::labels::LabelFields {
    fn from(b: LabelBody) -> Self {
        crate::service::labels::LabelFields {
            name: b.name,
            color: b.color,
        }
    }
}

#[derive(Deserialize, ToSchema)]
struct WebhookBody {
    /// http or https, with a host; no credentials, no fragment (required
    /// on creation).
    #[schema(format = "uri")]
    url: Option<String>,
    /// `["*"]`, or up to 32 event types (required on creation).
    #[schema(example = json!(["message.created", "conversation.closed"]))]
    events: Option<Vec<String>>,
    enabled: Option<bool>,
}

impl From<WebhookBody> for crate::service::webhooks::WebhookFields {
    fn from(b: WebhookBody) -> Self {
        crate::service::webhooks::WebhookFields {
            url: b.url,
            events: b.events,
            enabled: b.enabled,
        }
    }
}

#[derive(Deserialize, ToSchema)]
struct AddMember {
    user_uuid: Uuid,
}

#[derive(Deserialize, ToSchema)]
struct EditMessage {
    #[schema(min_length = 1, pattern = r"\S")]
    content: String,
}

#[derive(Deserialize, ToSchema)]
struct React {
    /// One emoji grapheme cluster (❤️, 👍🏽, 👨‍👩‍👧).
    #[schema(pattern = "^(🎉|👍|❤️|😀)$", example = "🎉")]
    emoji: String,
}

#[derive(Deserialize, ToSchema)]
struct Transfer {
    user_uuid: Uuid,
}

#[derive(Deserialize, ToSchema)]
struct SetState {
    /// `open` or `closed`.
    #[schema(pattern = "^(open|closed)$")]
    state: String,
}

#[derive(Deserialize, ToSchema)]
struct Activity {
    /// `start_typing` or `stop_typing`.
    #[serde(rename = "type")]
    #[schema(pattern = "^(start_typing|stop_typing)$")]
    kind: String,
}

#[derive(Deserialize, ToSchema)]
struct SetPresence {
    /// `available`, `away`, `unavailable` or `invisible`.
    #[schema(pattern = "^(available|away|unavailable|invisible)$")]
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

#[derive(Deserialize, ToSchema, Default)]
struct Read {
    #[schema(minimum = 0)]
    up_to_seq: Option<i64>,
}

// Agents (admin).

/// GET /agents
#[utoipa::path(get, path = "/api/chatd/1.0/agents", tag = "agents",
    summary = "List the tenant's agents (admin)",
    responses((status = 200, body = shapes::AgentPage), (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn list_agents(call: Call) -> Result<Response, ApiError> {
    let agents = call.services().agents.list(&call.caller).await?;
    let items: Vec<Value> = agents.iter().map(wazo::agent).collect();
    Ok(ok(
        json!({"items": items, "total": items.len(), "filtered": items.len()}),
    ))
}

/// POST /agents
#[utoipa::path(post, path = "/api/chatd/1.0/agents", tag = "agents",
    summary = "Create an agent (admin)", request_body = CreateAgent,
    responses((status = 201, body = shapes::Agent), (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 409, body = shapes::ErrorBody, description = "`agent-already-exists`")))]
async fn create_agent(call: Call) -> Result<Response, ApiError> {
    let new: CreateAgent = call.json()?;
    let new = NewAgent {
        email: new.email,
        display_name: new.display_name,
        password: new.password,
        role: new.role,
        avatar_url: new.avatar_url,
    };
    let agent = call.services().agents.create(&call.caller, new).await?;
    Ok(json_status(StatusCode::CREATED, wazo::agent(&agent)))
}

/// GET /agents/{agent}
#[utoipa::path(get, path = "/api/chatd/1.0/agents/{agent}", tag = "agents",
    summary = "One agent (admin)", params(("agent" = Uuid, Path, description = "The agent's uuid")),
    responses((status = 200, body = shapes::Agent), (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn get_agent(call: Call) -> Result<Response, ApiError> {
    let agent = call.id("agent")?;
    let agent = call.services().agents.get(&call.caller, agent).await?;
    Ok(ok(wazo::agent(&agent)))
}

/// PATCH or PUT /agents/{agent}
#[utoipa::path(method(patch, put), path = "/api/chatd/1.0/agents/{agent}", tag = "agents",
    summary = "Change an agent (admin): the fields given", request_body = PatchAgent,
    params(("agent" = Uuid, Path, description = "The agent's uuid")),
    responses((status = 200, body = shapes::Agent), (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn update_agent(call: Call) -> Result<Response, ApiError> {
    let patch: PatchAgent = call.json()?;
    let patch = AgentPatch {
        display_name: patch.display_name,
        avatar_url: patch.avatar_url,
        role: patch.role,
        password: patch.password,
        disabled: patch.disabled,
    };
    let agent = call.id("agent")?;
    let agent = call
        .services()
        .agents
        .update(&call.caller, agent, patch)
        .await?;
    Ok(ok(wazo::agent(&agent)))
}

/// DELETE /agents/{agent}
#[utoipa::path(delete, path = "/api/chatd/1.0/agents/{agent}", tag = "agents",
    summary = "Delete an agent (admin)", params(("agent" = Uuid, Path, description = "The agent's uuid")),
    responses((status = 204, description = "deleted"), (status = 403, body = shapes::ErrorBody, description = "not an admin, or oneself")))]
async fn delete_agent(call: Call) -> Result<Response, ApiError> {
    let agent = call.id("agent")?;
    call.services().agents.delete(&call.caller, agent).await?;
    Ok(no_content())
}

// Canned responses.

#[derive(Deserialize, ToSchema, Default)]
struct CannedBody {
    /// No spaces; a leading `/` is dropped.
    #[schema(pattern = r"^/?[^\s/\x00-\x1f]{1,32}$")]
    shortcut: Option<String>,
    #[schema(
        min_length = 1,
        max_length = 100,
        pattern = r"^[^\x00-\x1f]*\S[^\x00-\x1f]*$"
    )]
    title: Option<String>,
    #[schema(min_length = 1, pattern = r"\S")]
    content: Option<String>,
}

impl From<CannedBody> for CannedFields {
    fn from(b: CannedBody) -> CannedFields {
        CannedFields {
            shortcut: b.shortcut,
            title: b.title,
            content: b.content,
        }
    }
}

/// GET /canned_responses?search=&limit=&offset=
#[utoipa::path(get, path = "/api/chatd/1.0/canned_responses", tag = "canned responses",
    summary = "List canned responses",
    params(("search" = Option<String>, Query, description = "Matches shortcut and title"),
        ("limit" = Option<u32>, Query, minimum = 1), ("offset" = Option<u32>, Query)),
    responses((status = 200, body = shapes::CannedResponsePage)))]
async fn list_canned(call: Call) -> Result<Response, ApiError> {
    let q = &call.query;
    let query = CannedQuery {
        search: q.get("search").map(str::to_string),
        limit: q.limit()?,
        offset: q.number("offset")?,
    };
    let page = call.services().canned.list(&call.caller, query).await?;
    let items: Vec<Value> = page.items.iter().map(wazo::canned_response).collect();
    Ok(ok(
        json!({"items": items, "filtered": page.filtered, "total": page.total}),
    ))
}

/// POST /canned_responses
#[utoipa::path(post, path = "/api/chatd/1.0/canned_responses", tag = "canned responses",
    summary = "Create a canned response (admin)", request_body = CannedBody,
    responses((status = 201, body = shapes::CannedResponse), (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 409, body = shapes::ErrorBody, description = "`canned-response-already-exists`")))]
async fn create_canned(call: Call) -> Result<Response, ApiError> {
    let body: CannedBody = call.json()?;
    let canned = call
        .services()
        .canned
        .create(&call.caller, body.into())
        .await?;
    Ok(json_status(
        StatusCode::CREATED,
        wazo::canned_response(&canned),
    ))
}

/// GET /canned_responses/{canned_response}
#[utoipa::path(get, path = "/api/chatd/1.0/canned_responses/{canned_response}", tag = "canned responses",
    summary = "One canned response", params(("canned_response" = Uuid, Path)),
    responses((status = 200, body = shapes::CannedResponse)))]
async fn get_canned(call: Call) -> Result<Response, ApiError> {
    let id = call.id("canned_response")?;
    let canned = call.services().canned.get(&call.caller, id).await?;
    Ok(ok(wazo::canned_response(&canned)))
}

/// PATCH or PUT /canned_responses/{canned_response}: the fields given change.
#[utoipa::path(method(patch, put), path = "/api/chatd/1.0/canned_responses/{canned_response}", tag = "canned responses",
    summary = "Change a canned response (admin)", request_body = CannedBody, params(("canned_response" = Uuid, Path)),
    responses((status = 200, body = shapes::CannedResponse), (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 409, body = shapes::ErrorBody, description = "`canned-response-already-exists`")))]
async fn update_canned(call: Call) -> Result<Response, ApiError> {
    let body: CannedBody = call.json()?;
    let id = call.id("canned_response")?;
    let canned = call
        .services()
        .canned
        .update(&call.caller, id, body.into())
        .await?;
    Ok(ok(wazo::canned_response(&canned)))
}

/// DELETE /canned_responses/{canned_response}
#[utoipa::path(delete, path = "/api/chatd/1.0/canned_responses/{canned_response}", tag = "canned responses",
    summary = "Delete a canned response (admin)", params(("canned_response" = Uuid, Path)),
    responses((status = 204, description = "deleted"), (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn delete_canned(call: Call) -> Result<Response, ApiError> {
    let id = call.id("canned_response")?;
    call.services().canned.delete(&call.caller, id).await?;
    Ok(no_content())
}

// Rooms.

/// GET /users/me/rooms
#[utoipa::path(get, path = "/api/chatd/1.0/users/me/rooms", tag = "rooms",
    summary = "The caller's rooms, newest activity first",
    params(("user_uuid" = Option<String>, Query, description = "Comma-separated uuids: rooms containing all of them"),
        ("label_uuid" = Option<Uuid>, Query, description = "Rooms carrying this label"),
        ("limit" = Option<u32>, Query, minimum = 1), ("offset" = Option<u32>, Query)),
    responses((status = 200, body = shapes::RoomPage)))]
async fn list_rooms(call: Call) -> Result<Response, ApiError> {
    let q = &call.query;
    let with = q.uuids("user_uuid")?;
    // Extension: the caller's rooms carrying a label.
    let filter = RoomFilter {
        label: q.parsed("label_uuid", "label_uuid must be a UUID")?,
        ..RoomFilter::default()
    };
    let (limit, offset) = (q.limit()?, q.number("offset")?);
    let page = call
        .services()
        .rooms
        .list(&call.caller, &with, filter, limit, offset)
        .await?;
    let items: Vec<Value> = page.items.iter().map(|r| call.wazo_room(r)).collect();
    Ok(ok(
        json!({"items": items, "filtered": page.filtered, "total": page.total}),
    ))
}

/// POST /users/me/rooms
#[utoipa::path(post, path = "/api/chatd/1.0/users/me/rooms", tag = "rooms",
    summary = "Create an agent room (or get the one with exactly these members)", request_body = CreateRoom,
    responses((status = 201, body = shapes::Room)))]
async fn create_room(call: Call) -> Result<Response, ApiError> {
    let new: CreateRoom = call.json()?;
    let users = new.users.into_iter().map(|u| u.uuid).collect();
    let (room, _created) = call
        .services()
        .rooms
        .create(&call.caller, new.name, users)
        .await?;
    Ok(json_status(StatusCode::CREATED, call.wazo_room(&room)))
}

/// GET /users/me/rooms/messages
#[utoipa::path(get, path = "/api/chatd/1.0/users/me/rooms/messages", tag = "messages",
    summary = "Search across the caller's rooms",
    params(("search" = Option<String>, Query, max_length = 256, description = "Case- and accent-insensitive, words in order"),
        ("distinct" = Option<String>, Query, description = "`room_uuid`: the newest message of each room"),
        MessageListing),
    responses((status = 200, body = shapes::MessagePage)))]
async fn search_messages(call: Call) -> Result<Response, ApiError> {
    let distinct = match call.query.get("distinct") {
        None => false,
        Some("room_uuid") => true,
        Some(_) => {
            return Err(ApiError::invalid_field(
                "distinct",
                "distinct must be room_uuid",
            ))
        }
    };
    let listing = call.query.listing()?;
    let page = call
        .services()
        .messages
        .search(&call.caller, &listing, distinct)
        .await?;
    Ok(messages_page(&call, page))
}

/// GET /users/me/rooms/{room}/messages
#[utoipa::path(get, path = "/api/chatd/1.0/users/me/rooms/{room}/messages", tag = "messages",
    summary = "A room's messages (newest first by default)",
    params(("room" = Uuid, Path), ("search" = Option<String>, Query, max_length = 256, description = "Case- and accent-insensitive, words in order"), MessageListing),
    responses((status = 200, body = shapes::MessagePage)))]
async fn list_messages(call: Call) -> Result<Response, ApiError> {
    let room = call.id("room")?;
    let listing = call.query.listing()?;
    let page = call
        .services()
        .messages
        .list(&call.caller, room, &listing)
        .await?;
    Ok(messages_page(&call, page))
}

/// POST /users/me/rooms/{room}/messages
#[utoipa::path(post, path = "/api/chatd/1.0/users/me/rooms/{room}/messages", tag = "messages",
    summary = "Post a message (in a visitor room: the reply to the visitor)", request_body = PostMessage,
    params(("room" = Uuid, Path)),
    responses((status = 201, body = crate::wire::wazo::WireMessage),
        (status = 403, body = shapes::ErrorBody, description = "not allowed in this room")))]
async fn post_message(mut call: Call) -> Result<Response, ApiError> {
    let mut post: PostMessage = call.json()?;
    let quick_replies = post.quick_replies()?;
    let attachments =
        crate::wire::attachment_ids(post.attachments.as_ref(), "attachments")?.unwrap_or_default();
    let content = match post.content {
        Some(content) => content,
        None if !attachments.is_empty() => String::new(),
        None => return Err(ApiError::invalid_field("content", "content is required")),
    };
    let room = call.take_room()?;
    if post.private {
        // A note is text alone: no files, buttons or mentions to send.
        let extra = [
            ("attachments", !attachments.is_empty()),
            ("quick_replies", !quick_replies.is_empty()),
            ("mentions", !post.mentions.is_empty()),
            ("alias", post.alias.is_some()),
        ];
        if let Some((field, _)) = extra.iter().find(|(_, given)| *given) {
            return Err(ApiError::invalid_field(
                field,
                format!("a private note cannot have {field}"),
            ));
        }
        let note = call
            .services()
            .messages
            .note(&call.caller, room, content)
            .await?;
        return Ok(json_status(StatusCode::CREATED, call.wazo_message(&note)));
    }
    let message = call
        .services()
        .messages
        .post(
            &call.caller,
            room,
            content,
            post.alias,
            quick_replies,
            post.mentions,
            attachments,
        )
        .await?;
    Ok(json_status(
        StatusCode::CREATED,
        call.wazo_message(&message),
    ))
}

/// PATCH or PUT /users/me/rooms/{room}/messages/{message}
#[utoipa::path(method(patch, put), path = "/api/chatd/1.0/users/me/rooms/{room}/messages/{message}", tag = "messages",
    summary = "Edit one's own message", request_body = EditMessage,
    params(("room" = Uuid, Path), ("message" = Uuid, Path)),
    responses((status = 200, body = crate::wire::wazo::WireMessage),
        (status = 403, body = shapes::ErrorBody, description = "not one's own message")))]
async fn edit_message(call: Call) -> Result<Response, ApiError> {
    let edit: EditMessage = call.json()?;
    let (room, message) = (call.id("room")?, call.id("message")?);
    let message = call
        .services()
        .messages
        .change(&call.caller, room, message, Some(edit.content))
        .await?;
    Ok(ok(call.wazo_message(&message)))
}

/// DELETE /users/me/rooms/{room}/messages/{message}
#[utoipa::path(delete, path = "/api/chatd/1.0/users/me/rooms/{room}/messages/{message}", tag = "messages",
    summary = "Delete one's own message (content emptied, `deleted: true`)",
    params(("room" = Uuid, Path), ("message" = Uuid, Path)),
    responses((status = 200, body = crate::wire::wazo::WireMessage),
        (status = 403, body = shapes::ErrorBody, description = "not one's own message")))]
async fn delete_message(call: Call) -> Result<Response, ApiError> {
    let (room, message) = (call.id("room")?, call.id("message")?);
    let message = call
        .services()
        .messages
        .change(&call.caller, room, message, None)
        .await?;
    Ok(ok(call.wazo_message(&message)))
}

/// POST /users/me/rooms/{room}/messages/{message}/reactions
#[utoipa::path(post, path = "/api/chatd/1.0/users/me/rooms/{room}/messages/{message}/reactions", tag = "reactions",
    summary = "React with one emoji", request_body = React,
    params(("room" = Uuid, Path), ("message" = Uuid, Path)),
    responses((status = 201, body = shapes::Reaction),
        (status = 409, body = shapes::ErrorBody, description = "`reaction-already-exists`, `too-many-reactions`")))]
async fn add_reaction(call: Call) -> Result<Response, ApiError> {
    let react: React = call.json()?;
    let (room, message) = (call.id("room")?, call.id("message")?);
    let emoji = call
        .services()
        .messages
        .add_reaction(&call.caller, room, message, &react.emoji)
        .await?;
    Ok(json_status(
        StatusCode::CREATED,
        json!({"emoji": emoji.as_str(), "user_uuid": call.caller.id()}),
    ))
}

/// DELETE /users/me/rooms/{room}/messages/{message}/reactions/{emoji}
#[utoipa::path(delete, path = "/api/chatd/1.0/users/me/rooms/{room}/messages/{message}/reactions/{emoji}", tag = "reactions",
    summary = "Take one's reaction back",
    params(("room" = Uuid, Path), ("message" = Uuid, Path), ("emoji" = String, Path, description = "Percent-encoded")),
    responses((status = 204, description = "removed")))]
async fn remove_reaction(call: Call) -> Result<Response, ApiError> {
    let emoji = decode_segment(call.param("emoji"))?;
    let (room, message) = (call.id("room")?, call.id("message")?);
    call.services()
        .messages
        .remove_reaction(&call.caller, room, message, &emoji)
        .await?;
    Ok(no_content())
}

/// POST /users/me/rooms/{room}/transfers
#[utoipa::path(post, path = "/api/chatd/1.0/users/me/rooms/{room}/transfers", tag = "queue",
    summary = "Hand a visitor room over to another agent", request_body = Transfer,
    params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::Room), (status = 403, body = shapes::ErrorBody),
        (status = 409, body = shapes::ErrorBody, description = "`room-closed`")))]
async fn transfer_room(call: Call) -> Result<Response, ApiError> {
    let transfer: Transfer = call.json()?;
    let room = call.id("room")?;
    let rooms = &call.services().rooms;
    let room = rooms
        .transfer(&call.caller, room, transfer.user_uuid)
        .await?;
    Ok(ok(call.wazo_room(&room)))
}

/// POST /users/me/rooms/{room}/members
#[utoipa::path(post, path = "/api/chatd/1.0/users/me/rooms/{room}/members", tag = "rooms",
    summary = "Add a member to an agent room", request_body = AddMember,
    params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::Room),
        (status = 409, body = shapes::ErrorBody, description = "`already-a-member`, `room-full`, `not-a-group-room`")))]
async fn add_member(call: Call) -> Result<Response, ApiError> {
    let add: AddMember = call.json()?;
    let room = call.id("room")?;
    let room = call
        .services()
        .rooms
        .add_member(&call.caller, room, add.user_uuid)
        .await?;
    Ok(ok(call.wazo_room(&room)))
}

/// DELETE /users/me/rooms/{room}/members/{user}
#[utoipa::path(delete, path = "/api/chatd/1.0/users/me/rooms/{room}/members/{user}", tag = "rooms",
    summary = "Remove a member (oneself: leave)",
    params(("room" = Uuid, Path), ("user" = String, Path, description = "A uuid, or `me`")),
    responses((status = 204, description = "removed"),
        (status = 409, body = shapes::ErrorBody, description = "`not-a-group-room`")))]
async fn remove_member(call: Call) -> Result<Response, ApiError> {
    let room = call.id("room")?;
    let user = user_id(&call.caller, call.param("user"))?;
    call.services()
        .rooms
        .remove_member(&call.caller, room, user.0)
        .await?;
    Ok(no_content())
}

/// PUT /users/me/rooms/{room}/state
#[utoipa::path(put, path = "/api/chatd/1.0/users/me/rooms/{room}/state", tag = "queue",
    summary = "Close or reopen a visitor room", request_body = SetState,
    params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::Room), (status = 403, body = shapes::ErrorBody),
        (status = 409, body = shapes::ErrorBody)))]
async fn set_room_state(call: Call) -> Result<Response, ApiError> {
    let state: SetState = call.json()?;
    let room = call.id("room")?;
    let rooms = &call.services().rooms;
    let target = crate::service::rooms::requested_state(&state.state)?;
    let room = rooms.set_state(&call.caller, room, target).await?;
    Ok(ok(call.wazo_room(&room)))
}

/// PUT /users/me/rooms/{room}/labels `{"labels": ["<uuid>", ...]}`
#[utoipa::path(put, path = "/api/chatd/1.0/users/me/rooms/{room}/labels", tag = "labels",
    summary = "Set a visitor room's labels", request_body = SetLabels,
    params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::Room),
        (status = 409, body = shapes::ErrorBody, description = "`not-a-visitor-room`")))]
async fn set_room_labels(mut call: Call) -> Result<Response, ApiError> {
    let body: SetLabels = call.json()?;
    let labels = body
        .labels
        .iter()
        .map(|v| {
            v.as_str()
                .and_then(|s| s.parse().ok())
                .ok_or_else(|| ApiError::invalid_field("labels", "labels must be a list of uuids"))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let room = call.take_room()?;
    let room = call
        .services()
        .labels
        .set_room_labels(&call.caller, room, labels)
        .await?;
    Ok(ok(call.wazo_room(&room)))
}

/// PUT /users/me/rooms/{room}/block: the room's visitor is blocked.
#[utoipa::path(put, path = "/api/chatd/1.0/users/me/rooms/{room}/block", tag = "rooms",
    summary = "Block the room's visitor (its sends get 403 `blocked`)",
    params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::Room), (status = 403, body = shapes::ErrorBody),
        (status = 409, body = shapes::ErrorBody, description = "`not-a-visitor-room`")))]
async fn block_room(mut call: Call) -> Result<Response, ApiError> {
    let room = call.take_room()?;
    let identity = &call.services().identity;
    let room = identity.set_blocked(&call.caller, room, true).await?;
    Ok(ok(call.wazo_room(&room)))
}

/// DELETE /users/me/rooms/{room}/block: the room's visitor is unblocked.
#[utoipa::path(delete, path = "/api/chatd/1.0/users/me/rooms/{room}/block", tag = "rooms",
    summary = "Unblock the room's visitor",
    params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::Room), (status = 403, body = shapes::ErrorBody),
        (status = 409, body = shapes::ErrorBody, description = "`not-a-visitor-room`")))]
async fn unblock_room(mut call: Call) -> Result<Response, ApiError> {
    let room = call.take_room()?;
    let identity = &call.services().identity;
    let room = identity.set_blocked(&call.caller, room, false).await?;
    Ok(ok(call.wazo_room(&room)))
}

// Labels.

/// GET /labels
#[utoipa::path(get, path = "/api/chatd/1.0/labels", tag = "labels",
    summary = "The tenant's labels",
    responses((status = 200, body = shapes::LabelPage)))]
async fn list_labels(call: Call) -> Result<Response, ApiError> {
    let labels = call.services().labels.list(&call.caller).await?;
    let items: Vec<Value> = labels.iter().map(wazo::label).collect();
    Ok(ok(
        json!({"items": items, "total": items.len(), "filtered": items.len()}),
    ))
}

/// POST /labels `{"name", "color"}`
#[utoipa::path(post, path = "/api/chatd/1.0/labels", tag = "labels",
    summary = "Create a label (admin)", request_body = LabelBody,
    responses((status = 201, body = shapes::Label), (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 409, body = shapes::ErrorBody, description = "`label-already-exists`")))]
async fn create_label(call: Call) -> Result<Response, ApiError> {
    let fields: LabelBody = call.json()?;
    let label = call
        .services()
        .labels
        .create(&call.caller, fields.into())
        .await?;
    Ok(json_status(StatusCode::CREATED, wazo::label(&label)))
}

/// PATCH or PUT /labels/{label} `{"name"?, "color"?}`
#[utoipa::path(method(patch, put), path = "/api/chatd/1.0/labels/{label}", tag = "labels",
    summary = "Change a label (admin)", request_body = LabelBody, params(("label" = Uuid, Path)),
    responses((status = 200, body = shapes::Label), (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 409, body = shapes::ErrorBody, description = "`label-already-exists`")))]
async fn update_label(call: Call) -> Result<Response, ApiError> {
    let fields: LabelBody = call.json()?;
    let id = call.id("label")?;
    let label = call
        .services()
        .labels
        .update(&call.caller, id, fields.into())
        .await?;
    Ok(ok(wazo::label(&label)))
}

/// DELETE /labels/{label}
#[utoipa::path(delete, path = "/api/chatd/1.0/labels/{label}", tag = "labels",
    summary = "Delete a label (admin)", params(("label" = Uuid, Path)),
    responses((status = 204, description = "deleted"), (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn delete_label(call: Call) -> Result<Response, ApiError> {
    let id = call.id("label")?;
    call.services().labels.delete(&call.caller, id).await?;
    Ok(no_content())
}

// Applications.

#[derive(Deserialize, ToSchema)]
#[serde(deny_unknown_fields)]
struct ApplicationBody {
    /// 1 to 80 characters: shown as the sender of its messages.
    #[schema(example = "FAQ bot")]
    name: String,
    /// 1 to 3 of `conversations:read`, `conversations:write`, `messages:write`.
    #[schema(example = json!(["conversations:read", "conversations:write", "messages:write"]))]
    scopes: Vec<String>,
}

/// GET /applications
#[utoipa::path(get, path = "/api/chatd/1.0/applications", tag = "applications",
    summary = "The tenant's applications, revoked ones included (admin)",
    responses((status = 200, body = shapes::ApplicationPage),
        (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn list_applications(call: Call) -> Result<Response, ApiError> {
    let applications = call.services().applications.list(&call.caller).await?;
    let items: Vec<Value> = applications
        .iter()
        .map(crate::wire::application::application)
        .collect();
    Ok(ok(
        json!({"items": items, "total": items.len(), "filtered": items.len()}),
    ))
}

/// POST /applications `{"name", "scopes"}` → 201 with the `token` (once)
#[utoipa::path(post, path = "/api/chatd/1.0/applications", tag = "applications",
    summary = "Create an application (admin): its `token` is in this answer only", request_body = ApplicationBody,
    description = "The application acts through this agent API with `Authorization: Bearer <token>`, as a member of kind `application` (its name is the sender of its messages, which carry `\"bot\": true`), within its scopes (a call outside them: 403 `missing-scope`; admin calls, presence and agent rooms: 403 `not-for-applications`). It also opens `/api/websocketd/` with its token.",
    responses((status = 201, body = shapes::CreatedApplication),
        (status = 400, body = shapes::ErrorBody, description = "`invalid-data` naming `name` or `scopes`"),
        (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn create_application(call: Call) -> Result<Response, ApiError> {
    let body: ApplicationBody = call.json()?;
    let created = call
        .services()
        .applications
        .create(
            &call.caller,
            crate::service::applications::NewApplication {
                name: body.name,
                scopes: body.scopes,
            },
        )
        .await?;
    Ok(json_status(
        StatusCode::CREATED,
        crate::wire::application::created(&created.application, &created.token),
    ))
}

/// DELETE /applications/{application}
#[utoipa::path(delete, path = "/api/chatd/1.0/applications/{application}", tag = "applications",
    summary = "Revoke an application at once (admin)",
    description = "Its token gets 401 from the next call on, its event sockets close (4003), channels naming it as their `bot` no longer do, and the conversations it held return to the queue. Revoking it again changes nothing.",
    params(("application" = Uuid, Path)),
    responses((status = 204, description = "revoked"),
        (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 404, body = shapes::ErrorBody, description = "`unknown-application`")))]
async fn revoke_application(call: Call) -> Result<Response, ApiError> {
    let id = call.id("application")?;
    call.services()
        .applications
        .revoke(&call.caller, id)
        .await?;
    Ok(no_content())
}

/// POST /users/me/rooms/{room}/handover
#[utoipa::path(post, path = "/api/chatd/1.0/users/me/rooms/{room}/handover", tag = "queue",
    summary = "An application hands the conversation back to the queue",
    description = "The application leaves (the visitor sees an `agent_left` notice), the room returns to its channel's queue with its whole history (`chatd_queue_updated`, webhook `conversation.queued`), and the channel's `assignment` applies. Needs `conversations:write`.",
    params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::Room),
        (status = 403, body = shapes::ErrorBody, description = "not an application, or `missing-scope`"),
        (status = 404, body = shapes::ErrorBody, description = "`unknown-room`: not a room the application is in"),
        (status = 409, body = shapes::ErrorBody, description = "`room-closed`")))]
async fn handover_room(call: Call) -> Result<Response, ApiError> {
    let id = call.id("room")?;
    let room = call.services().rooms.handover(&call.caller, id).await?;
    Ok(ok(call.wazo_room(&room)))
}

// Webhooks.

/// GET /webhooks
#[utoipa::path(get, path = "/api/chatd/1.0/webhooks", tag = "webhooks",
    summary = "The tenant's webhook endpoints (admin)",
    responses((status = 200, body = shapes::WebhookPage),
        (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn list_webhooks(call: Call) -> Result<Response, ApiError> {
    let webhooks = call.services().webhooks.list(&call.caller).await?;
    let items: Vec<Value> = webhooks.iter().map(crate::wire::webhook::webhook).collect();
    Ok(ok(
        json!({"items": items, "total": items.len(), "filtered": items.len()}),
    ))
}

/// POST /webhooks `{"url", "events", "enabled"?}` → 201 with the `secret` (once)
#[utoipa::path(post, path = "/api/chatd/1.0/webhooks", tag = "webhooks",
    summary = "Add an endpoint (admin): its `secret` is in this answer only", request_body = WebhookBody,
    responses((status = 201, body = shapes::CreatedWebhook),
        (status = 400, body = shapes::ErrorBody, description = "`invalid-data` naming `url` or `events`"),
        (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 409, body = shapes::ErrorBody, description = "too many endpoints")))]
async fn create_webhook(call: Call) -> Result<Response, ApiError> {
    let fields: WebhookBody = call.json()?;
    let webhook = call
        .services()
        .webhooks
        .create(&call.caller, fields.into())
        .await?;
    Ok(json_status(
        StatusCode::CREATED,
        crate::wire::webhook::created_webhook(&webhook),
    ))
}

/// PATCH or PUT /webhooks/{webhook} `{"url"?, "events"?, "enabled"?}`
#[utoipa::path(method(patch, put), path = "/api/chatd/1.0/webhooks/{webhook}", tag = "webhooks",
    summary = "Change an endpoint (admin): the fields given", request_body = WebhookBody,
    params(("webhook" = Uuid, Path)),
    responses((status = 200, body = shapes::Webhook),
        (status = 400, body = shapes::ErrorBody, description = "`invalid-data` naming `url` or `events`"),
        (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 404, body = shapes::ErrorBody, description = "`unknown-webhook`")))]
async fn update_webhook(call: Call) -> Result<Response, ApiError> {
    let fields: WebhookBody = call.json()?;
    let id = call.id("webhook")?;
    let webhook = call
        .services()
        .webhooks
        .update(&call.caller, id, fields.into())
        .await?;
    Ok(ok(crate::wire::webhook::webhook(&webhook)))
}

/// DELETE /webhooks/{webhook}
#[utoipa::path(delete, path = "/api/chatd/1.0/webhooks/{webhook}", tag = "webhooks",
    summary = "Remove an endpoint (admin); its queued events are dropped",
    params(("webhook" = Uuid, Path)),
    responses((status = 204, description = "removed"),
        (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 404, body = shapes::ErrorBody, description = "`unknown-webhook`")))]
async fn delete_webhook(call: Call) -> Result<Response, ApiError> {
    let id = call.id("webhook")?;
    call.services().webhooks.delete(&call.caller, id).await?;
    Ok(no_content())
}

/// GET /webhooks/{webhook}/deliveries: the newest attempts first
#[utoipa::path(get, path = "/api/chatd/1.0/webhooks/{webhook}/deliveries", tag = "webhooks",
    summary = "An endpoint's delivery log, newest first (admin)",
    params(("webhook" = Uuid, Path)),
    responses((status = 200, body = shapes::DeliveryPage),
        (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 404, body = shapes::ErrorBody, description = "`unknown-webhook`")))]
async fn list_deliveries(call: Call) -> Result<Response, ApiError> {
    let id = call.id("webhook")?;
    let (_, log) = call
        .services()
        .webhooks
        .deliveries(&call.caller, id)
        .await?;
    let items: Vec<Value> = log.iter().map(crate::wire::webhook::delivery).collect();
    Ok(ok(
        json!({"items": items, "total": items.len(), "filtered": items.len()}),
    ))
}

/// POST /webhooks/{webhook}/deliveries/{delivery}/redeliver → 202
#[utoipa::path(post, path = "/api/chatd/1.0/webhooks/{webhook}/deliveries/{delivery}/redeliver", tag = "webhooks",
    summary = "Send a delivery again (admin), with the same event id",
    params(("webhook" = Uuid, Path), ("delivery" = Uuid, Path)),
    responses((status = 202, description = "queued"),
        (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 404, body = shapes::ErrorBody, description = "`unknown-webhook`, or no such delivery")))]
async fn redeliver(call: Call) -> Result<Response, ApiError> {
    let id = call.id("webhook")?;
    let delivery: Uuid = call.id("delivery")?;
    call.services()
        .webhooks
        .redeliver(&call.caller, id, delivery)
        .await?;
    Ok(StatusCode::ACCEPTED.into_response())
}

/// POST /users/me/rooms/{room}/activities
#[utoipa::path(post, path = "/api/chatd/1.0/users/me/rooms/{room}/activities", tag = "rooms",
    summary = "Typing: `start_typing` or `stop_typing`", request_body = Activity,
    params(("room" = Uuid, Path)),
    responses((status = 204, description = "told")))]
async fn room_activity(call: Call) -> Result<Response, ApiError> {
    let activity: Activity = call.json()?;
    let room = call.id("room")?;
    call.services()
        .typing
        .agent(&call.caller, room, &activity.kind)
        .await?;
    Ok(no_content())
}

/// GET /users/me/rooms/{room}/visitor
#[utoipa::path(get, path = "/api/chatd/1.0/users/me/rooms/{room}/visitor", tag = "rooms",
    summary = "What the visitor's page told (visitor rooms)",
    params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::VisitorContext)))]
async fn visitor_context(call: Call) -> Result<Response, ApiError> {
    let room = call.id("room")?;
    let context = call
        .services()
        .rooms
        .visitor_context(&call.caller, room)
        .await?;
    Ok(ok(wazo::visitor_context(&context)))
}

/// PUT /users/me/rooms/{room}/read
#[utoipa::path(put, path = "/api/chatd/1.0/users/me/rooms/{room}/read", tag = "rooms",
    summary = "Mark read, up to `up_to_seq` (all without a body)", request_body(content = Read, description = "Optional"),
    params(("room" = Uuid, Path)),
    responses((status = 204, description = "marked")))]
async fn mark_read(call: Call) -> Result<Response, ApiError> {
    let read: Read = parse_json(&call.body, true)?;
    let room = call.id("room")?;
    call.services()
        .rooms
        .read(&call.caller, room, read.up_to_seq)
        .await?;
    Ok(no_content())
}

// Presence.

/// GET /users/presences
#[utoipa::path(get, path = "/api/chatd/1.0/users/presences", tag = "presence",
    summary = "Presences of the tenant's agents",
    params(("user_uuid" = Option<String>, Query, description = "Comma-separated uuids (all when absent)")),
    responses((status = 200, body = shapes::PresencePage)))]
async fn list_presences(call: Call) -> Result<Response, ApiError> {
    let ids: Vec<AgentId> = call
        .query
        .uuids("user_uuid")?
        .into_iter()
        .map(AgentId)
        .collect();
    let items: Vec<Value> = call
        .services()
        .presence
        .list(&call.caller, &ids)
        .await?
        .iter()
        .map(wazo::live_presence)
        .collect();
    Ok(ok(
        json!({"filtered": items.len(), "total": items.len(), "items": items}),
    ))
}

/// GET /users/{user}/presences
#[utoipa::path(get, path = "/api/chatd/1.0/users/{user}/presences", tag = "presence",
    summary = "One agent's presence", params(("user" = String, Path, description = "A uuid, or `me`")),
    responses((status = 200, body = shapes::Presence)))]
async fn get_presence(call: Call) -> Result<Response, ApiError> {
    let user = user_id(&call.caller, call.param("user"))?;
    let presence = call.services().presence.get(&call.caller, user).await?;
    Ok(ok(wazo::live_presence(&presence)))
}

/// PUT /users/{user}/presences
#[utoipa::path(put, path = "/api/chatd/1.0/users/{user}/presences", tag = "presence",
    summary = "Set a presence (oneself, or anyone for an admin)", request_body = SetPresence,
    params(("user" = String, Path, description = "A uuid, or `me`")),
    responses((status = 204, description = "set"), (status = 403, body = shapes::ErrorBody)))]
async fn set_presence(call: Call) -> Result<Response, ApiError> {
    let set: SetPresence = call.json()?;
    let user = user_id(&call.caller, call.param("user"))?;
    call.services()
        .presence
        .set(
            &call.caller,
            user,
            PresenceChange::parse(&set.state, set.status.as_deref())?,
        )
        .await?;
    Ok(no_content())
}

// The queue.

/// GET /queues
#[utoipa::path(get, path = "/api/chatd/1.0/queues", tag = "queue",
    summary = "Visitor rooms waiting for an agent, oldest first",
    params(("channel_id" = Option<Uuid>, Query)),
    responses((status = 200, body = shapes::RoomPage)))]
async fn list_queue(call: Call) -> Result<Response, ApiError> {
    let channel = call
        .query
        .get("channel_id")
        .map(|v| {
            v.parse()
                .map_err(|_| ApiError::invalid_field("channel_id", "channel_id must be a UUID"))
        })
        .transpose()?;
    let items: Vec<Value> = call
        .services()
        .rooms
        .queue(&call.caller, channel)
        .await?
        .iter()
        .map(|r| call.wazo_room(r))
        .collect();
    Ok(ok(json!({"total": items.len(), "items": items})))
}

/// GET /queues/{room}
#[utoipa::path(get, path = "/api/chatd/1.0/queues/{room}", tag = "queue",
    summary = "Read a queued room before answering it", params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::Room)))]
async fn get_queued_room(call: Call) -> Result<Response, ApiError> {
    let room = call.id("room")?;
    let room = call
        .services()
        .rooms
        .queued_room(&call.caller, room)
        .await?;
    Ok(ok(call.wazo_room(&room)))
}

/// GET /queues/{room}/messages
#[utoipa::path(get, path = "/api/chatd/1.0/queues/{room}/messages", tag = "queue",
    summary = "A queued room's messages (marks nothing read)",
    params(("room" = Uuid, Path), ("search" = Option<String>, Query, max_length = 256, description = "Case- and accent-insensitive, words in order"), MessageListing),
    responses((status = 200, body = shapes::MessagePage)))]
async fn list_queued_messages(call: Call) -> Result<Response, ApiError> {
    let room = call.id("room")?;
    let listing = call.query.listing()?;
    let page = call
        .services()
        .rooms
        .queued_messages(&call.caller, room, &listing)
        .await?;
    Ok(messages_page(&call, page))
}

/// PUT /queues/{room}/answer
#[utoipa::path(put, path = "/api/chatd/1.0/queues/{room}/answer", tag = "queue",
    summary = "Answer a queued visitor: the caller joins and becomes assignee", params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::Room),
        (status = 409, body = shapes::ErrorBody, description = "`already-answered`, `room-closed`")))]
async fn answer_queue(call: Call) -> Result<Response, ApiError> {
    let room = call.id("room")?;
    let room = call.services().rooms.answer(&call.caller, room).await?;
    Ok(ok(call.wazo_room(&room)))
}

// Supervision (admin). An agent's call is 403 before its path or query is
// read (the services check it again).

/// GET /rooms
#[utoipa::path(get, path = "/api/chatd/1.0/rooms", tag = "supervision",
    summary = "Every visitor room of the tenant (admin)",
    params(("state" = Option<RoomStateParam>, Query), ("channel_id" = Option<Uuid>, Query),
        ("assignee_uuid" = Option<Uuid>, Query), ("label_uuid" = Option<Uuid>, Query),
        ("limit" = Option<u32>, Query, minimum = 1), ("offset" = Option<u32>, Query)),
    responses((status = 200, body = shapes::RoomPage), (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn list_all_rooms(call: Call) -> Result<Response, ApiError> {
    call.caller.require_admin()?;
    let q = &call.query;
    let filter = RoomFilter {
        state: q
            .get("state")
            .map(|v| {
                RoomState::parse(v).ok_or_else(|| {
                    ApiError::invalid_field("state", "state must be queued, open or closed")
                })
            })
            .transpose()?,
        channel: q.parsed("channel_id", "channel_id must be a UUID")?,
        assignee: q
            .parsed("assignee_uuid", "assignee_uuid must be a UUID")?
            .map(AgentId),
        label: q.parsed("label_uuid", "label_uuid must be a UUID")?,
    };
    let (limit, offset) = (q.limit()?, q.number("offset")?);
    let page = call
        .services()
        .rooms
        .all_rooms(&call.caller, filter, limit, offset)
        .await?;
    let items: Vec<Value> = page.items.iter().map(|r| call.wazo_room(r)).collect();
    Ok(ok(json!({"items": items, "total": page.total})))
}

/// GET /rooms/{room}
#[utoipa::path(get, path = "/api/chatd/1.0/rooms/{room}", tag = "supervision",
    summary = "Any visitor room (admin)", params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::Room), (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn get_supervised_room(call: Call) -> Result<Response, ApiError> {
    call.caller.require_admin()?;
    let room = call.id("room")?;
    let rooms = &call.services().rooms;
    let room = rooms.supervised_room(&call.caller, room).await?;
    Ok(ok(call.wazo_room(&room)))
}

/// GET /rooms/{room}/messages
#[utoipa::path(get, path = "/api/chatd/1.0/rooms/{room}/messages", tag = "supervision",
    summary = "Any visitor room's messages (admin, read-only)",
    params(("room" = Uuid, Path), ("search" = Option<String>, Query, max_length = 256, description = "Case- and accent-insensitive, words in order"), MessageListing),
    responses((status = 200, body = shapes::MessagePage), (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn list_supervised_messages(call: Call) -> Result<Response, ApiError> {
    call.caller.require_admin()?;
    let room = call.id("room")?;
    let listing = call.query.listing()?;
    let page = call
        .services()
        .rooms
        .supervised_messages(&call.caller, room, &listing)
        .await?;
    Ok(messages_page(&call, page))
}

/// POST /rooms/{room}/transfers
#[utoipa::path(post, path = "/api/chatd/1.0/rooms/{room}/transfers", tag = "supervision",
    summary = "Assign any visitor room to an agent (admin)", request_body = Transfer,
    params(("room" = Uuid, Path)),
    responses((status = 200, body = shapes::Room), (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 409, body = shapes::ErrorBody, description = "`room-closed`")))]
async fn assign_room(call: Call) -> Result<Response, ApiError> {
    call.caller.require_admin()?;
    let transfer: Transfer = call.json()?;
    let room = call.id("room")?;
    let rooms = &call.services().rooms;
    let room = rooms.assign(&call.caller, room, transfer.user_uuid).await?;
    Ok(ok(call.wazo_room(&room)))
}

/// A data-rights path's conversation id: malformed is a 400 (the brief of
/// desk-api.md's data rights; other paths answer 404).
fn conversation_param(call: &Call) -> Result<crate::domain::ConversationId, ApiError> {
    call.param("conversation")
        .parse()
        .map_err(|_| ApiError::invalid_field("conversation_id", "conversation_id must be a UUID"))
}

/// GET /visitors/{conversation_id}/export: a zip of everything held about
/// the conversation's visitor (admins).
#[utoipa::path(get, path = "/api/chatd/1.0/visitors/{conversation}/export", tag = "data rights",
    summary = "Export everything held about a visitor (admin): a zip",
    description = "For an identified visitor all their conversations on the tenant, else this one: `conversation-<id>.json` per conversation (messages, visitor context, pre-chat, rating, private notes apart) and `files/<id>/<name>`.",
    params(("conversation" = Uuid, Path, description = "A visitor conversation's id")),
    responses((status = 200, description = "The archive", content_type = "application/zip", body = Vec<u8>),
        (status = 400, body = shapes::ErrorBody, description = "a malformed id"),
        (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 404, body = shapes::ErrorBody, description = "no such visitor conversation in the tenant")))]
async fn export_visitor(call: Call) -> Result<Response, ApiError> {
    let id = conversation_param(&call)?;
    let services = call.services();
    let export = services.rights.export(&call.caller, id).await?;
    let file = crate::wire::export::archive(export, &services.rights, &services.signer).await?;
    Ok(super::files::file_download(
        file,
        "application/zip",
        &crate::wire::export::archive_name(id),
    ))
}

/// DELETE /visitors/{conversation_id}: erases the conversation's visitor
/// (admins); 204, again for a visitor erased before.
#[utoipa::path(delete, path = "/api/chatd/1.0/visitors/{conversation}", tag = "data rights",
    summary = "Erase a visitor (admin): messages, context, files, email, rating; the conversation stays as an anonymous shell",
    params(("conversation" = Uuid, Path, description = "A visitor conversation's id")),
    responses((status = 204, description = "erased (also when erased before)"),
        (status = 400, body = shapes::ErrorBody, description = "a malformed id"),
        (status = 403, body = shapes::ErrorBody, description = "not an admin"),
        (status = 404, body = shapes::ErrorBody, description = "no such visitor conversation in the tenant")))]
async fn erase_visitor(call: Call) -> Result<Response, ApiError> {
    let id = conversation_param(&call)?;
    call.services().rights.erase(&call.caller, id).await?;
    Ok(no_content())
}

/// GET /audit?limit=&offset=: the tenant's audit log, newest first (admins).
#[utoipa::path(get, path = "/api/chatd/1.0/audit", tag = "data rights",
    summary = "The tenant's audit log, newest first (admin)",
    params(("limit" = Option<u32>, Query), ("offset" = Option<u32>, Query)),
    responses((status = 200, body = shapes::AuditPage),
        (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn list_audit(call: Call) -> Result<Response, ApiError> {
    let limit = call.query.limit()?.unwrap_or(100);
    let offset = call.query.number("offset")?.unwrap_or(0);
    let page = call
        .services()
        .rights
        .audit_log(&call.caller, limit, offset)
        .await?;
    let items: Vec<Value> = page
        .items
        .iter()
        .map(crate::wire::export::audit_entry)
        .collect();
    Ok(ok(
        json!({"items": items, "total": page.total, "filtered": page.filtered}),
    ))
}

/// GET /reports?from=&to=&tz=&channel=&agent=&target=: a tenant's figures
/// over a period (admins; an agent gets its own figures).
#[utoipa::path(get, path = "/api/chatd/1.0/reports", tag = "reports",
    summary = "Figures over a period: conversations per day, first response and resolution times, answered within a target, ratings, busiest hours",
    description = "Admins see the tenant's conversations, filtered by `channel` and `agent` (the conversations assigned to it); an agent sees its own figures only (naming another agent is 403). A conversation counts on the day it started, in `tz`. The period is at most 366 days.",
    params(
        ("from" = Option<String>, Query, description = "First day, `YYYY-MM-DD` (default: 29 days before `to`)", format = Date),
        ("to" = Option<String>, Query, description = "Last day, included (default: today in `tz`)", format = Date),
        ("tz" = Option<String>, Query, description = "IANA time zone of the days and hours (default: `UTC`)"),
        ("channel" = Option<Uuid>, Query, description = "Only this channel's conversations"),
        ("agent" = Option<Uuid>, Query, description = "Only the conversations assigned to this agent"),
        ("target" = Option<u32>, Query, description = "Answered within this many seconds, 1 to 86400 (default: 60)", minimum = 1, maximum = 86400),
    ),
    responses((status = 200, body = shapes::Report),
        (status = 400, body = shapes::ErrorBody, description = "`invalid-data` naming the parameter"),
        (status = 403, body = shapes::ErrorBody, description = "an agent asked for another agent's figures")))]
async fn get_report(call: Call) -> Result<Response, ApiError> {
    let request = crate::service::reports::ReportRequest::parse(|name| call.query.get(name))?;
    let report = call
        .services()
        .reports
        .report(&call.caller, &request)
        .await?;
    Ok(ok(crate::wire::report::report(&report)))
}

/// GET /tenant: the caller's tenant and its settings (admins).
#[utoipa::path(get, path = "/api/chatd/1.0/tenant", tag = "data rights",
    summary = "The caller's tenant and its settings (admin)",
    responses((status = 200, body = shapes::Tenant),
        (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn get_tenant(call: Call) -> Result<Response, ApiError> {
    let settings = call.services().rights.settings(&call.caller).await?;
    Ok(ok(crate::wire::export::tenant(&settings)))
}

/// PATCH /tenant `{"retention_days": 1..3650 | null}` (admins): absent
/// keeps it, null turns retention off.
#[utoipa::path(method(patch, put), path = "/api/chatd/1.0/tenant", tag = "data rights",
    summary = "Change the tenant's retention (admin): conversations closed longer ago are erased",
    request_body = shapes::TenantPatch,
    responses((status = 200, body = shapes::Tenant),
        (status = 400, body = shapes::ErrorBody, description = "`invalid-data` naming `retention_days`"),
        (status = 403, body = shapes::ErrorBody, description = "not an admin")))]
async fn update_tenant(call: Call) -> Result<Response, ApiError> {
    let body: Value = call.json()?;
    let Some(fields) = body.as_object() else {
        return Err(ApiError::invalid_data("the body must be a JSON object"));
    };
    let rights = &call.services().rights;
    let settings = match fields.get("retention_days") {
        None => rights.settings(&call.caller).await?,
        Some(Value::Null) => rights.set_retention(&call.caller, None).await?,
        Some(days) => {
            let days = days
                .as_i64()
                .and_then(crate::domain::rights::RetentionDays::parse)
                .ok_or_else(|| {
                    ApiError::invalid_field(
                        "retention_days",
                        format!(
                            "retention_days must be null or a whole number of days, 1 to {}",
                            crate::domain::rights::MAX_RETENTION_DAYS
                        ),
                    )
                })?;
            rights.set_retention(&call.caller, Some(days)).await?
        }
    };
    Ok(ok(crate::wire::export::tenant(&settings)))
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
        "state",
        "assignee_uuid",
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
        "quick_replies",
        "title",
        "payload",
        "mentions",
        "private",
    ];

    /// Decodes `body` as `T` the way the handlers do: either a value or a
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

    #[test]
    fn every_route_is_reached_by_its_own_path_and_methods() {
        for route in ROUTES {
            let path: Vec<&str> = route
                .path
                .split('/')
                .map(|s| if s.starts_with(':') { "x" } else { s })
                .collect();
            for method in route.methods {
                let (found, params) = find(method, &path).expect(route.path);
                assert!(
                    std::ptr::eq(found, route),
                    "{method} {} is shadowed",
                    route.path
                );
                for name in route.path.split('/').filter_map(|s| s.strip_prefix(':')) {
                    assert_eq!(params.get(name), "x");
                }
            }
        }
    }

    #[test]
    fn paths_capture_their_ids_and_anything_else_is_not_found() {
        let room = Uuid::new_v4().to_string();
        let path = ["users", "me", "rooms", room.as_str(), "messages", "m1"];
        let (route, params) = find(&Method::DELETE, &path).unwrap();
        assert_eq!(route.path, "users/me/rooms/:room/messages/:message");
        assert_eq!(
            (params.get("room"), params.get("message")),
            (room.as_str(), "m1")
        );
        // `me` is a literal of the rooms routes, a capture of the presence ones.
        let (route, _) = find(&Method::GET, &["users", "me", "presences"]).unwrap();
        assert_eq!(route.path, "users/:user/presences");
        // A known path with another method, or a path one segment off: no route (404).
        assert!(find(&Method::DELETE, &["users", "me", "rooms"]).is_none());
        assert!(find(&Method::GET, &["users", "me", "rooms", &room]).is_none());
        assert!(find(&Method::GET, &["agents", "a", "b"]).is_none());
        assert!(find(&Method::GET, &[]).is_none());
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
            if let Some(mut post) = decode::<PostMessage>(&body, false) {
                if let Err(err) = post.quick_replies() {
                    fuzz::assert_client_error(&err);
                }
                if let Err(err) = crate::wire::attachment_ids(post.attachments.as_ref(), "attachments") {
                    fuzz::assert_client_error(&err);
                }
                let _ = post.content.map(|c| MessageText::parse(c, 4096));
            }
            if let Some(edit) = decode::<EditMessage>(&body, false) {
                let _ = MessageText::parse(edit.content, 4096);
            }
            if let Some(react) = decode::<React>(&body, false) {
                let _ = Emoji::parse(&react.emoji);
            }
            let _ = decode::<Transfer>(&body, false);
            let _ = decode::<AddMember>(&body, false);
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
