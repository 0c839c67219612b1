//! The API's description (issue 19, "OpenAPI"): `GET /api/openapi.json`,
//! an OpenAPI 3.1 document generated from the code, and `GET /api/docs`,
//! a page of it rendered here (no script, no CDN).
//!
//! Each endpoint is described where it is handled: a `#[utoipa::path]`
//! beside its handler, request and response schemas derived on the types
//! that carry them (`wire::shapes` describes the shapes built as JSON).
//! [`ApiDoc`] lists them; [`document`] adds what is the same for many
//! (the errors every endpoint of an area can answer, the security schemes)
//! and what OpenAPI has no derive for (the `webhooks` section). Every
//! route the server serves is in [`super::served`]; a test compares that
//! list with the document, and CI runs schemathesis against the running
//! server with it (`tests/openapi/run.sh`).

use std::sync::OnceLock;

use askama::Template;
use bytes::Bytes;
use serde_json::{json, Map, Value};
use utoipa::OpenApi;
use warp::http::header;
use warp::reply::Response;
use warp::{Filter, Rejection, Reply};

use crate::wire::shapes;

pub mod page;

#[derive(OpenApi)]
#[openapi(
    info(
        title = "chatgate",
        description = "A self-hosted chat gateway: the chat plugin API of website visitors (Airy's), the agent API (wazo-chatd's), admin calls, and the events of both sockets. Errors are always JSON: `{\"message\", \"error_id\", \"details\", \"timestamp\"}`. Timestamps are UTC, ISO 8601 with milliseconds.",
        license(name = "MIT")
    ),
    paths(
        super::chatplugin::authenticate,
        super::chatplugin::resume_token,
        super::chatplugin::send,
        super::chatplugin::rate,
        super::chatplugin::conversations,
        super::chatplugin::transcript,
        super::files::visitor_upload,
        crate::ws::visitor::handshake,
        super::auth::login,
        super::auth::logout,
        super::channels::connect,
        super::channels::disconnect,
        super::channels::list,
        super::channels::info,
        super::channels::update,
        super::channels::rotate_identity,
        super::chatd::list_agents,
        super::chatd::create_agent,
        super::chatd::get_agent,
        super::chatd::update_agent,
        super::chatd::delete_agent,
        super::chatd::list_canned,
        super::chatd::create_canned,
        super::chatd::get_canned,
        super::chatd::update_canned,
        super::chatd::delete_canned,
        super::chatd::list_rooms,
        super::chatd::create_room,
        super::chatd::search_messages,
        super::chatd::list_messages,
        super::chatd::post_message,
        super::chatd::edit_message,
        super::chatd::delete_message,
        super::chatd::add_reaction,
        super::chatd::remove_reaction,
        super::chatd::transfer_room,
        super::chatd::handover_room,
        super::chatd::add_member,
        super::chatd::remove_member,
        super::chatd::set_room_state,
        super::chatd::set_room_labels,
        super::chatd::block_room,
        super::chatd::unblock_room,
        super::chatd::room_activity,
        super::chatd::visitor_context,
        super::chatd::mark_read,
        super::chatd::list_labels,
        super::chatd::create_label,
        super::chatd::update_label,
        super::chatd::delete_label,
        super::chatd::list_presences,
        super::chatd::get_presence,
        super::chatd::set_presence,
        super::chatd::list_queue,
        super::chatd::get_queued_room,
        super::chatd::list_queued_messages,
        super::chatd::answer_queue,
        super::chatd::list_all_rooms,
        super::chatd::get_supervised_room,
        super::chatd::list_supervised_messages,
        super::chatd::assign_room,
        super::chatd::list_applications,
        super::chatd::create_application,
        super::chatd::revoke_application,
        super::chatd::list_webhooks,
        super::chatd::create_webhook,
        super::chatd::update_webhook,
        super::chatd::delete_webhook,
        super::chatd::list_deliveries,
        super::chatd::redeliver,
        super::chatd::export_visitor,
        super::chatd::erase_visitor,
        super::chatd::list_audit,
        super::chatd::get_tenant,
        super::chatd::update_tenant,
        super::chatd::get_report,
        super::files::agent_upload,
        super::files::download,
        crate::ws::agent::handshake,
        super::assets::readyz,
        healthz,
        metrics,
        widget,
        openapi_json,
        docs_page,
    ),
    components(schemas(shapes::WebhookEvent, shapes::Direction, shapes::RoomStateParam)),
    tags(
        (name = "visitor", description = "The chat plugin API (visitor-api.md): what the widget speaks. A visitor token is sent as `Authorization: Bearer <token>`."),
        (name = "auth", description = "Agents' login and logout."),
        (name = "channels", description = "Website installations of the widget (admin token)."),
        (name = "rooms", description = "Conversations with members: agent rooms and visitor rooms (agent-api.md)."),
        (name = "messages", description = "A room's messages, search, attachments."),
        (name = "reactions", description = "Emoji reactions on messages."),
        (name = "queue", description = "Visitor rooms waiting for an agent, answering, transfers, closing."),
        (name = "supervision", description = "Admins: every visitor room of the tenant."),
        (name = "labels", description = "Labels on visitor rooms (admins manage them)."),
        (name = "canned responses", description = "Saved replies (admins manage them)."),
        (name = "presence", description = "Agents' presence (Wazo's shape)."),
        (name = "agents", description = "The tenant's agents (admin)."),
        (name = "applications", description = "The tenant's API clients (bots), with their own token and scopes (admin)."),
        (name = "webhooks", description = "Endpoints that receive the tenant's events, signed by the Standard Webhooks specification, and their delivery logs (admin)."),
        (name = "data rights", description = "A visitor's data exported or erased, the audit log, the tenant's retention (admin)."),
        (name = "reports", description = "A tenant's figures over a period: conversations per day, first response and resolution times, the share answered within a target, ratings, busiest hours."),
        (name = "files", description = "Attachments' bytes by signed URL."),
        (name = "events", description = "The agents' event socket."),
        (name = "operations", description = "Health, metrics, the widget and this description."),
    )
)]
pub struct ApiDoc;

/// GET /healthz (a closure in `assets::routes`).
#[utoipa::path(get, path = "/healthz", tag = "operations", summary = "Alive",
    responses((status = 200, description = "`{\"status\": \"ok\"}`", body = Object)), security(()))]
#[allow(dead_code)]
fn healthz() {}

/// GET /metrics (a closure in `assets::routes`).
#[utoipa::path(get, path = "/metrics", tag = "operations", summary = "Prometheus metrics",
    responses((status = 200, description = "The text exposition format", content_type = "text/plain", body = String)),
    security(()))]
#[allow(dead_code)]
fn metrics() {}

/// GET /widget.js (a closure in `assets::routes`).
#[utoipa::path(get, path = "/widget.js", tag = "operations", summary = "The widget's script",
    description = "Embedded with `<script src=\"https://<host>/widget.js\" data-channel-id=\"<uuid>\" async></script>`; served gzip or brotli as accepted, revalidated by ETag.",
    responses((status = 200, description = "The script", content_type = "text/javascript", body = String),
        (status = 304, description = "Not modified")),
    security(()))]
#[allow(dead_code)]
fn widget() {}

/// GET /api/openapi.json
#[utoipa::path(get, path = "/api/openapi.json", tag = "operations", summary = "This description (OpenAPI 3.1)",
    responses((status = 200, description = "The document", body = Object)), security(()))]
#[allow(dead_code)]
fn openapi_json() {}

/// GET /api/docs
#[utoipa::path(get, path = "/api/docs", tag = "operations", summary = "This description as a page",
    responses((status = 200, description = "HTML", content_type = "text/html", body = String)), security(()))]
#[allow(dead_code)]
fn docs_page() {}

/// The document, built once: the derived one, with what is common to many
/// endpoints, the security schemes and the webhooks.
pub fn document() -> &'static Value {
    static DOCUMENT: OnceLock<Value> = OnceLock::new();
    DOCUMENT.get_or_init(build)
}

fn build() -> Value {
    let mut doc = serde_json::to_value(ApiDoc::openapi()).unwrap_or_else(|_| json!({}));
    doc["openapi"] = json!("3.1.0");
    doc["info"]["version"] = json!(env!("CARGO_PKG_VERSION"));
    let components = &mut doc["components"];
    components["schemas"]["Error"] = schema_of::<shapes::ErrorBody>();
    components["securitySchemes"] = json!({
        "bearer": {"type": "http", "scheme": "bearer",
            "description": "An agent token (`POST /api/auth/0.1/token`), or a visitor token on the visitor API. A bare `Authorization: <token>` is accepted too."},
        "token": {"type": "apiKey", "in": "header", "name": "X-Auth-Token",
            "description": "An agent token (Wazo's header)."},
        "basic": {"type": "http", "scheme": "basic", "description": "An agent's email and password."},
    });
    doc["security"] = json!([{"bearer": []}, {"token": []}]);
    if let Some(schemas) = doc["components"]["schemas"].as_object_mut() {
        require_every_field(schemas);
    }
    if let Some(paths) = doc["paths"].as_object_mut() {
        for (path, item) in paths.iter_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, operation) in item.iter_mut() {
                add_common_errors(path, method, operation);
            }
        }
    }
    for (path, method) in OPTIONAL_BODIES {
        let body = &mut doc["paths"][*path][*method]["requestBody"];
        if body.is_object() {
            body["required"] = json!(false);
        }
    }
    file_types(&mut doc);
    doc["webhooks"] = webhooks();
    doc
}

/// A file is served with the type judged at its upload: its download's 200
/// lists every type an upload may have (`files::served_types`), each a
/// binary string.
fn file_types(doc: &mut Value) {
    let binary = json!({ "schema": schema_of::<shapes::FileBytes>() });
    let content: Map<String, Value> = crate::files::served_types()
        .map(|kind| (kind.to_string(), binary.clone()))
        .collect();
    for method in ["get", "head"] {
        let ok = &mut doc["paths"]["/files/{id}/{name}"][method]["responses"]["200"];
        if ok.is_object() {
            ok["content"] = Value::Object(content.clone());
        }
    }
}

/// Operations whose body may be absent or empty (read as `{}`).
const OPTIONAL_BODIES: &[(&str, &str)] = &[
    ("/chatplugin.resumeToken", "post"),
    ("/api/auth/0.1/token", "post"),
    ("/api/chatd/1.0/users/me/rooms/{room}/read", "put"),
];

/// The shapes the server answers with: every field is always there (null
/// when it has no value), but for [`SOMETIMES_ABSENT`]. The derive makes
/// an `Option` optional, which is right for a request and too loose for
/// an answer, so the answers' are made required here.
const ANSWERS: &[&str] = &[
    "Agent",
    "AgentPage",
    "Attachment",
    "Authenticated",
    "BusinessHours",
    "CannedResponse",
    "CannedResponsePage",
    "Channel",
    "ChannelList",
    "ChannelMetadata",
    "Error",
    "Label",
    "LabelPage",
    "Message",
    "MessagePage",
    "MessageReaction",
    "MessageRoom",
    "Notice",
    "Presence",
    "PresencePage",
    "PrechatForm",
    "PublicChannel",
    "Queued",
    "QuickReply",
    "Reaction",
    "Readiness",
    "ResumeToken",
    "Room",
    "RoomPage",
    "RoomRating",
    "RoomUser",
    "TokenData",
    "TokenMetadata",
    "TokenReply",
    "VisitorContext",
    "VisitorConversation",
    "VisitorConversations",
    "VisitorMessage",
    "VisitorSender",
    "WebhookEvent",
];

/// `(schema, field)`: the answers' fields that are not always there.
const SOMETIMES_ABSENT: &[(&str, &str)] = &[
    // A system message's only.
    ("Message", "notice"),
    ("VisitorMessage", "notice"),
    // The visitor member's only.
    ("RoomUser", "connected"),
    // `/queues` and `/rooms` count no `filtered`.
    ("RoomPage", "filtered"),
];

fn require_every_field(schemas: &mut Map<String, Value>) {
    for name in ANSWERS {
        let Some(schema) = schemas.get_mut(*name) else {
            continue;
        };
        let Some(properties) = schema["properties"].as_object() else {
            continue;
        };
        let required: Vec<Value> = properties
            .keys()
            .filter(|field| !SOMETIMES_ABSENT.contains(&(*name, field.as_str())))
            .map(|field| json!(field))
            .collect();
        schema["required"] = Value::Array(required);
    }
}

/// A schema of `T`, inline.
fn schema_of<T: utoipa::ToSchema>() -> Value {
    serde_json::to_value(T::schema()).unwrap_or_else(|_| json!({}))
}

/// The errors an operation can answer whatever its handler does: the
/// shared filters' (a bad query or header: 400; a body too big or too
/// slow: 413, 408; no token: 401), and the store's (503
/// `store-unavailable`). Those it lists itself are kept.
fn add_common_errors(path: &str, method: &str, operation: &mut Value) {
    let documented_elsewhere = path.starts_with("/ws.")
        || path.starts_with("/api/websocketd")
        || matches!(
            path,
            "/healthz" | "/metrics" | "/widget.js" | "/api/openapi.json" | "/api/docs" | "/readyz"
        );
    if documented_elsewhere {
        return;
    }
    let secured = operation
        .get("security")
        .and_then(Value::as_array)
        .is_none_or(|s| {
            s.iter()
                .any(|r| r.as_object().is_some_and(|r| !r.is_empty()))
        });
    let mut common = vec![
        (
            "400",
            "`invalid-data`: a bad body, query or header, naming the field",
        ),
        (
            "503",
            "`store-unavailable`: nothing was done; retry (with `Retry-After`)",
        ),
    ];
    if secured || path.starts_with("/api/chatd/") {
        common.push((
            "401",
            "`invalid-token`: missing, invalid, expired or revoked token",
        ));
    }
    if path.starts_with("/api/chatd/") || path.starts_with("/channels.") {
        common.push(("404", "no such resource (a malformed id too)"));
    }
    if path.starts_with("/channels.") {
        common.push(("403", "`forbidden`: not an admin"));
    }
    if method != "get" && method != "head" && method != "delete" {
        common.push(("408", "`request-timeout`: the body did not arrive in time"));
        common.push(("413", "`payload-too-large`: the body is over the limit"));
    }
    let responses = &mut operation["responses"];
    // A success described by its body alone gets its status's name.
    for (status, response) in responses.as_object_mut().into_iter().flatten() {
        if response["description"].as_str().is_some_and(str::is_empty) {
            let reason = status
                .parse::<u16>()
                .ok()
                .and_then(|s| warp::http::StatusCode::from_u16(s).ok())
                .and_then(|s| s.canonical_reason())
                .unwrap_or("Answer");
            response["description"] = json!(reason);
        }
    }
    for (status, description) in common {
        if responses.get(status).is_none() {
            responses[status] = json!({
                "description": description,
                "content": {"application/json": {"schema": {"$ref": "#/components/schemas/Error"}}},
            });
        }
    }
}

/// The `webhooks` section: the body and headers of a delivery
/// (desk-api.md, "Integrations").
fn webhooks() -> Value {
    let header = |name: &str, description: &str| {
        json!({"name": name, "in": "header", "required": true, "description": description,
            "schema": {"type": "string"}})
    };
    json!({
        "event": {"post": {
            "summary": "An event, POSTed to each subscribed endpoint",
            "description": "Signed by the Standard Webhooks specification: verify `webhook-signature` (`v1,<base64 HMAC-SHA256(key, \"<webhook-id>.<webhook-timestamp>.<raw body>\")>`, the key being the endpoint's `whsec_` secret base64-decoded) with one of its published libraries, refuse old timestamps, and deduplicate on `webhook-id`. Retried with backoff until a 2xx answer.",
            "tags": ["webhooks"],
            "parameters": [
                header("webhook-id", "The event's id, the same on every retry"),
                header("webhook-timestamp", "Unix seconds of this attempt"),
                header("webhook-signature", "`v1,<base64 signature>` (space-separated when several)"),
            ],
            "requestBody": {"required": true, "content": {"application/json": {"schema": {"$ref": "#/components/schemas/WebhookEvent"}}}},
            "responses": {"2XX": {"description": "Received: not sent again"}, "default": {"description": "Failed: retried later"}},
        }}
    })
}

/// `GET /api/openapi.json` and `GET /api/docs`.
pub fn routes() -> impl Filter<Extract = (Response,), Error = Rejection> + Clone {
    let json = warp::path!("api" / "openapi.json")
        .and(warp::get())
        .map(|| reply(json_bytes(), "application/json"));
    let docs = warp::path!("api" / "docs")
        .and(warp::get())
        .map(|| reply(page_bytes(), "text/html; charset=utf-8"));
    json.or(docs).unify()
}

fn reply(body: Bytes, content_type: &'static str) -> Response {
    let mut response = Response::new(body.into());
    let headers = response.headers_mut();
    headers.insert(
        header::CONTENT_TYPE,
        header::HeaderValue::from_static(content_type),
    );
    headers.insert(
        header::CACHE_CONTROL,
        header::HeaderValue::from_static("no-cache"),
    );
    response.into_response()
}

fn json_bytes() -> Bytes {
    static JSON: OnceLock<Bytes> = OnceLock::new();
    JSON.get_or_init(|| Bytes::from(serde_json::to_vec(document()).unwrap_or_default()))
        .clone()
}

fn page_bytes() -> Bytes {
    static PAGE: OnceLock<Bytes> = OnceLock::new();
    PAGE.get_or_init(|| {
        let page = page::DocsPage::of(document());
        Bytes::from(page.render().unwrap_or_else(|e| {
            tracing::error!(error = %e, "cannot render the API page");
            String::from("the API page cannot be rendered; see /api/openapi.json")
        }))
    })
    .clone()
}

/// An operation's `(method, path)` pairs in the document, methods upper case.
pub fn operations(doc: &Value) -> Vec<(String, String)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().into_iter().flatten() {
        for method in item.as_object().map(Map::keys).into_iter().flatten() {
            out.push((method.to_uppercase(), path.clone()));
        }
    }
    out
}
