//! Schemas (OpenAPI, `http::openapi`) of the shapes that have no Rust type
//! of their own: the agent, room, presence and channel objects are built as
//! JSON by `wire::wazo` and `wire::channel` (each field once, from the
//! domain value), and some request bodies are read field by field from a
//! JSON object, so these structs only describe them. Each names (in a `//`
//! comment: its `///` doc is the schema's public description) the function
//! that builds or reads its shape; the schemathesis run of CI
//! (`tests/openapi/run.sh`) checks every response against them, so a field
//! added there and not here (or the reverse) fails it. Shapes that do have
//! a type (a message, an attachment, the agent API's request bodies) carry
//! their derive where they are defined.

#![allow(dead_code)]

use utoipa::ToSchema;
use uuid::Uuid;

/// Every error (visitor-api.md, "Conventions"): never an HTML page, never
/// an empty body, never a stack trace.
// Built by `error::ApiError::body`.
#[derive(ToSchema)]
#[schema(as = Error)]
pub struct ErrorBody {
    /// Human readable.
    message: String,
    /// kebab-case, stable: what a client branches on (`invalid-data`,
    /// `unknown-room`, `rate-limited`...).
    #[schema(example = "invalid-data")]
    error_id: String,
    /// More about it: the offending field (`{"content": ["content is
    /// required"]}`), the `resource` not found, a `limit`.
    details: serde_json::Map<String, serde_json::Value>,
    /// Unix seconds, with milliseconds.
    timestamp: f64,
}

// Built by `wire::wazo::bare_room`.
/// A room member.
#[derive(ToSchema)]
pub struct RoomUser {
    uuid: Uuid,
    tenant_uuid: Uuid,
    /// This server's id, the same for every user.
    wazo_uuid: Uuid,
    /// `agent` or `visitor`.
    #[schema(example = "agent")]
    kind: String,
    /// The visitor member only: whether the visitor has a live socket now.
    connected: Option<bool>,
}

// Built by `wire::wazo::room_label`.
/// A label as rooms carry it; `GET /labels` lists these.
#[derive(ToSchema)]
pub struct Label {
    uuid: Uuid,
    name: String,
    /// `#rrggbb`
    #[schema(example = "#2f6fde")]
    color: String,
}

/// A visitor's rating of a closed conversation.
#[derive(ToSchema)]
pub struct RoomRating {
    /// 1 to 5.
    rating: i64,
    comment: Option<String>,
    created_at: String,
}

/// A visitor's answers to the channel's pre-chat form.
#[derive(ToSchema)]
pub struct PrechatAnswers {
    name: Option<String>,
    email: Option<String>,
    question: Option<String>,
}

// Built by `wire::wazo::room`.
/// A room (agent-api.md, "Rooms"): agents talking to
/// each other, or one visitor conversation of a channel.
#[derive(ToSchema)]
pub struct Room {
    uuid: Uuid,
    tenant_uuid: Uuid,
    name: String,
    users: Vec<RoomUser>,
    /// `agent` or `visitor`.
    #[schema(example = "visitor")]
    kind: String,
    channel_id: Option<Uuid>,
    /// `queued`, `open` or `closed`.
    #[schema(example = "open")]
    state: String,
    assignee_uuid: Option<Uuid>,
    labels: Vec<Label>,
    /// Messages the caller has not read.
    unread_count: i64,
    last_message: Option<crate::wire::wazo::WireMessage<'static>>,
    created_at: String,
    /// When it last entered the queue.
    queued_at: Option<String>,
    /// Queued rooms: seconds waited so far.
    wait_seconds: Option<i64>,
    rating: Option<RoomRating>,
    prechat: Option<PrechatAnswers>,
    /// The visitor proved its identity (desk-api.md, "Identified visitor").
    verified: bool,
    /// The visitor is blocked.
    blocked: bool,
}

/// A page of rooms.
#[derive(ToSchema)]
pub struct RoomPage {
    items: Vec<Room>,
    /// Rooms matching the filters (absent where there are none).
    filtered: Option<i64>,
    total: i64,
}

/// A page of messages, newest first unless `direction=asc`.
#[derive(ToSchema)]
pub struct MessagePage {
    items: Vec<crate::wire::wazo::WireMessage<'static>>,
    filtered: i64,
    total: i64,
}

// Built by `wire::wazo::agent`.
/// An agent.
#[derive(ToSchema)]
pub struct Agent {
    uuid: Uuid,
    tenant_uuid: Uuid,
    /// The login.
    email: String,
    display_name: String,
    avatar_url: Option<String>,
    /// `admin` or `agent`.
    #[schema(example = "agent")]
    role: String,
    disabled: bool,
}

#[derive(ToSchema)]
pub struct AgentPage {
    items: Vec<Agent>,
    filtered: i64,
    total: i64,
}

// Built by `wire::wazo::presence`.
/// Wazo's presence shape.
#[derive(ToSchema)]
pub struct Presence {
    uuid: Uuid,
    tenant_uuid: Uuid,
    /// `available`, `away`, `unavailable` or `invisible`.
    #[schema(example = "available")]
    state: String,
    status: Option<String>,
    last_activity: Option<String>,
    /// Always `available` (no phone lines here).
    line_state: String,
    mobile: bool,
    do_not_disturb: bool,
    /// At least one live event socket on any instance.
    connected: bool,
    lines: Vec<serde_json::Value>,
}

#[derive(ToSchema)]
pub struct PresencePage {
    items: Vec<Presence>,
    filtered: i64,
    total: i64,
}

// Built by `wire::wazo::canned_response`.
/// A canned response.
#[derive(ToSchema)]
pub struct CannedResponse {
    uuid: Uuid,
    tenant_uuid: Uuid,
    shortcut: String,
    title: String,
    content: String,
    created_at: String,
    updated_at: String,
}

#[derive(ToSchema)]
pub struct CannedResponsePage {
    items: Vec<CannedResponse>,
    filtered: i64,
    total: i64,
}

#[derive(ToSchema)]
pub struct LabelPage {
    items: Vec<Label>,
    filtered: i64,
    total: i64,
}

/// A reaction just added.
#[derive(ToSchema)]
pub struct Reaction {
    emoji: String,
    user_uuid: Uuid,
}

// Built by `wire::wazo::visitor_context`.
/// What the visitor's page told.
#[derive(ToSchema)]
pub struct VisitorContext {
    name: Option<String>,
    email: Option<String>,
    url: Option<String>,
    title: Option<String>,
    referrer: Option<String>,
    language: Option<String>,
    time_zone: Option<String>,
    utc_offset_minutes: Option<i64>,
    user_agent: Option<String>,
    /// The browser, as read from the user agent.
    browser: Option<String>,
}

// Built by `wire::channel::channel`.
/// A channel as admins see it (Airy's shape).
#[derive(ToSchema)]
pub struct Channel {
    id: Uuid,
    /// Always `chatplugin`.
    source: String,
    /// Its name.
    source_channel_id: String,
    connected: bool,
    metadata: ChannelMetadata,
    /// Origin patterns such as `https://*.example.com`; empty: any origin.
    allowed_origins: Vec<String>,
    tenant_uuid: Uuid,
    welcome_message: Option<String>,
    /// `#rrggbb`
    color: Option<String>,
    /// `manual` or `round_robin`.
    assignment: String,
    max_open_per_agent: i64,
    business_hours: Option<BusinessHours>,
    away_message: Option<String>,
    prechat: PrechatForm,
    auto_close_hours: Option<i64>,
    email_fallback: bool,
    /// The application that takes every new conversation first, or null.
    bot: Option<Uuid>,
    /// The secret identified visitors' hashes are checked with (admins only).
    identity_secret: Option<String>,
}

#[derive(ToSchema)]
pub struct ChannelMetadata {
    name: String,
    image_url: Option<String>,
}

/// When a channel is staffed.
#[derive(ToSchema)]
pub struct BusinessHours {
    /// An IANA time zone.
    #[schema(example = "Europe/Paris")]
    time_zone: String,
    /// `mon`..`sun`: a list of `["HH:MM", "HH:MM"]` spans.
    weekly: std::collections::BTreeMap<String, Vec<Vec<String>>>,
    /// `YYYY-MM-DD`
    closed_dates: Vec<String>,
}

/// Each field of the pre-chat form: `off`, `optional` or `required`.
#[derive(ToSchema)]
pub struct PrechatForm {
    name: String,
    email: String,
    question: String,
}

#[derive(ToSchema)]
pub struct ChannelList {
    data: Vec<Channel>,
}

// Built by `wire::channel::public`.
/// What the widget shows of its channel.
#[derive(ToSchema)]
pub struct PublicChannel {
    id: Uuid,
    name: String,
    image_url: Option<String>,
    welcome_message: Option<String>,
    color: Option<String>,
    prechat: PrechatForm,
    /// Whether the widget asks for an email address.
    email_fallback: bool,
}

/// `/chatplugin.authenticate`'s answer.
#[derive(ToSchema)]
pub struct Authenticated {
    /// The visitor token.
    token: String,
    /// `[]` for a new conversation, its history (oldest first) when resumed.
    messages: Vec<crate::wire::visitor::VisitorMessage<'static>>,
    conversation_id: Uuid,
    channel_id: Uuid,
    resume_token: Option<String>,
    verified: bool,
    channel: PublicChannel,
}

#[derive(ToSchema)]
pub struct ResumeToken {
    resume_token: String,
}

/// One of an identified visitor's conversations.
#[derive(ToSchema)]
pub struct VisitorConversation {
    conversation_id: Uuid,
    /// `queued`, `open` or `closed`.
    state: String,
    last_message: Option<crate::wire::visitor::VisitorMessage<'static>>,
    resume_token: String,
}

#[derive(ToSchema)]
pub struct VisitorConversations {
    items: Vec<VisitorConversation>,
}

#[derive(ToSchema)]
pub struct Queued {
    /// `queued`
    status: String,
}

/// An agent token (`POST /api/auth/0.1/token`).
#[derive(ToSchema)]
pub struct TokenReply {
    data: TokenData,
}

#[derive(ToSchema)]
pub struct TokenData {
    token: String,
    expires_at: String,
    utc_expires_at: String,
    issued_at: String,
    utc_issued_at: String,
    session_uuid: Uuid,
    acl: Vec<String>,
    metadata: TokenMetadata,
}

#[derive(ToSchema)]
pub struct TokenMetadata {
    uuid: Uuid,
    tenant_uuid: Uuid,
    display_name: String,
    /// `admin` or `agent`.
    role: String,
}

/// A webhook delivery's body (desk-api.md, "Integrations"), signed by the
/// Standard Webhooks specification.
#[derive(ToSchema)]
pub struct WebhookEvent {
    /// The event's id: the same on every retry (`webhook-id`), so a
    /// receiver deduplicates.
    id: String,
    /// `conversation.created`, `conversation.queued`, `conversation.assigned`,
    /// `conversation.transferred`, `conversation.closed`,
    /// `conversation.reopened`, `conversation.rated`, `message.created`,
    /// `message.updated`, `message.deleted` or `presence.updated`.
    #[schema(example = "message.created")]
    r#type: String,
    created_at: String,
    tenant_uuid: Uuid,
    /// The same shapes as the API's: a Room for `conversation.*`, a
    /// Message for `message.*`, a Presence for `presence.updated`.
    data: serde_json::Map<String, serde_json::Value>,
}

/// `asc` or `desc` (the default: newest first).
#[derive(ToSchema)]
#[schema(rename_all = "lowercase")]
pub enum Direction {
    Asc,
    Desc,
}

/// A room's state, as a filter.
#[derive(ToSchema)]
#[schema(as = RoomState, rename_all = "lowercase")]
pub enum RoomStateParam {
    Queued,
    Open,
    Closed,
}

// Parsed by `http::chatd::Query::listing`.
/// The query of a messages page.
#[derive(utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct MessageListing {
    /// At most this many (at least 1).
    #[param(minimum = 1)]
    limit: Option<u32>,
    offset: Option<u32>,
    direction: Option<Direction>,
    /// Messages from this time on (ISO 8601).
    from_date: Option<String>,
    /// Messages before this `seq`.
    before_seq: Option<u64>,
    /// Messages after this `seq`.
    after_seq: Option<u64>,
}

// Parsed by `http::chatplugin::authenticate_body`.
/// `/chatplugin.authenticate`'s body: a channel to start in, or a resume
/// token (which wins), and what the page tells of its visitor.
#[derive(ToSchema)]
pub struct AuthenticateBody {
    channel_id: Option<Uuid>,
    resume_token: Option<String>,
    /// Start a new conversation even when resuming is possible.
    new_conversation: Option<bool>,
    /// An identified visitor: `hash` is the hex HMAC-SHA256 of `id` with
    /// the channel's identity secret.
    identity: Option<IdentityBody>,
    /// What the visitor says of itself (`name`, `email`).
    visitor: Option<VisitorBody>,
    /// The page (`url`, `title`, `referrer`, `language`, `time_zone`,
    /// `utc_offset_minutes`).
    context: Option<serde_json::Map<String, serde_json::Value>>,
}

#[derive(ToSchema)]
pub struct IdentityBody {
    id: String,
    hash: String,
    name: Option<String>,
    email: Option<String>,
}

#[derive(ToSchema)]
pub struct VisitorBody {
    name: Option<String>,
    email: Option<String>,
}

/// An admin's `/chatplugin.resumeToken` body (a visitor sends none).
#[derive(ToSchema)]
pub struct ResumeTokenBody {
    channel_id: Option<Uuid>,
    conversation_id: Option<Uuid>,
}

// Parsed by `wire::visitor::send_body`.
/// `/chatplugin.send`'s body.
#[derive(ToSchema)]
pub struct SendBody {
    message: SendMessage,
    /// An idempotency key (at most 64 characters): a retry returns the
    /// first message.
    client_message_id: Option<String>,
    /// The pre-chat form's answers, on a first send.
    prechat: Option<PrechatAnswers>,
}

#[derive(ToSchema)]
pub struct SendMessage {
    /// 1 to 4096 characters, not only white space; optional with attachments.
    text: Option<String>,
    /// Ids of this conversation's unsent uploads (1 to 10).
    attachments: Option<Vec<Uuid>>,
    /// The payload of the quick reply chosen (`postbackData` is a synonym).
    postback: Option<String>,
}

/// `/chatplugin.rate`'s body.
#[derive(ToSchema)]
pub struct RateBody {
    #[schema(minimum = 1, maximum = 5)]
    rating: i64,
    comment: Option<String>,
}

/// A file's bytes as served (`string`, `format: binary`), whatever its type.
pub struct FileBytes;

impl utoipa::PartialSchema for FileBytes {
    fn schema() -> utoipa::openapi::RefOr<utoipa::openapi::schema::Schema> {
        use utoipa::openapi::schema::{KnownFormat, ObjectBuilder, SchemaFormat, Type};
        ObjectBuilder::new()
            .schema_type(Type::String)
            .format(Some(SchemaFormat::KnownFormat(KnownFormat::Binary)))
            .into()
    }
}

impl ToSchema for FileBytes {}

/// A multipart upload: one part named `file`.
#[derive(ToSchema)]
pub struct Upload {
    #[schema(value_type = String, format = Binary)]
    file: Vec<u8>,
}

// Parsed by `http::channels`.
/// `/channels.chatplugin.connect` and `/channels.update`: absent fields
/// keep their value (`channels.update` needs `channel_id`;
/// `channels.chatplugin.connect` needs `name`).
#[derive(ToSchema)]
pub struct ChannelSettings {
    channel_id: Option<Uuid>,
    name: Option<String>,
    image_url: Option<String>,
    allowed_origins: Option<Vec<String>>,
    /// At most 500 characters.
    welcome_message: Option<String>,
    /// `#rrggbb`
    color: Option<String>,
    /// `manual` or `round_robin`.
    assignment: Option<String>,
    #[schema(minimum = 1, maximum = 100)]
    max_open_per_agent: Option<i64>,
    business_hours: Option<BusinessHours>,
    away_message: Option<String>,
    prechat: Option<PrechatForm>,
    email_fallback: Option<bool>,
    #[schema(minimum = 1, maximum = 720)]
    auto_close_hours: Option<i64>,
    /// Null, or the uuid of one of the tenant's applications (not revoked)
    /// that takes every new conversation first and hands over to the queue.
    bot: Option<Uuid>,
}

/// A channel named by its id.
#[derive(ToSchema)]
pub struct ChannelRef {
    channel_id: Uuid,
}

/// A login's body (other fields are ignored).
#[derive(ToSchema)]
pub struct LoginBody {
    /// The token's lifetime in seconds.
    #[schema(minimum = 1, maximum = 864000)]
    expiration: Option<i64>,
}

/// `/readyz`'s answer.
#[derive(ToSchema)]
pub struct Readiness {
    /// `ok` or `unavailable`.
    status: String,
    /// `ok`, or what failed.
    database: String,
    /// `ok`, or what failed.
    bus: String,
}

// Built by `wire::export::tenant`.
/// A tenant and its settings.
#[derive(ToSchema)]
pub struct Tenant {
    uuid: Uuid,
    name: String,
    /// Conversations closed more than this many days ago are erased
    /// (null: kept).
    #[schema(minimum = 1, maximum = 3650)]
    retention_days: Option<i64>,
}

/// `PATCH /tenant`: absent keeps it, null turns retention off.
#[derive(ToSchema)]
pub struct TenantPatch {
    #[schema(minimum = 1, maximum = 3650)]
    retention_days: Option<i64>,
}

// Built by `wire::export::audit_entry`.
/// Who did it: an agent, or the tenant's retention.
#[derive(ToSchema)]
pub struct AuditActor {
    /// `agent` or `retention`.
    #[schema(example = "agent")]
    kind: String,
    uuid: Option<Uuid>,
    name: Option<String>,
}

/// One entry of the audit log.
#[derive(ToSchema)]
pub struct AuditEntry {
    uuid: Uuid,
    /// When (ISO 8601, UTC).
    at: String,
    /// `visitor.erased` or `visitor.exported`.
    #[schema(example = "visitor.erased")]
    action: String,
    actor: AuditActor,
    /// The conversations concerned.
    conversations: Vec<Uuid>,
    /// Counts of what was removed or exported (never the content).
    detail: Option<serde_json::Value>,
}

#[derive(ToSchema)]
pub struct AuditPage {
    items: Vec<AuditEntry>,
    filtered: i64,
    total: i64,
}

// Built by `wire::webhook::webhook`.
/// A webhook endpoint.
#[derive(ToSchema)]
pub struct Webhook {
    uuid: Uuid,
    tenant_uuid: Uuid,
    url: String,
    /// `["*"]` or event types.
    events: Vec<String>,
    enabled: bool,
    /// Why it was paused (24 hours failing), or null.
    paused_reason: Option<String>,
    created_at: String,
    updated_at: String,
}

// Built by `wire::webhook::created_webhook`.
/// A new endpoint, with its secret (shown this once).
#[derive(ToSchema)]
pub struct CreatedWebhook {
    uuid: Uuid,
    tenant_uuid: Uuid,
    url: String,
    events: Vec<String>,
    enabled: bool,
    paused_reason: Option<String>,
    created_at: String,
    updated_at: String,
    /// `whsec_<base64 key>` (Standard Webhooks).
    secret: String,
}

#[derive(ToSchema)]
pub struct WebhookPage {
    items: Vec<Webhook>,
    filtered: i64,
    total: i64,
}

// Built by `wire::application::application`.
/// An application (a bot): a member of kind `application` in rooms.
#[derive(ToSchema)]
pub struct Application {
    uuid: Uuid,
    tenant_uuid: Uuid,
    name: String,
    /// Among `conversations:read`, `conversations:write`, `messages:write`.
    scopes: Vec<String>,
    created_at: String,
    created_by: Option<Uuid>,
    /// When it was revoked (its token no longer works), or null.
    revoked_at: Option<String>,
}

// Built by `wire::application::created`.
/// A new application, with its token (shown this once).
#[derive(ToSchema)]
pub struct CreatedApplication {
    uuid: Uuid,
    tenant_uuid: Uuid,
    name: String,
    scopes: Vec<String>,
    created_at: String,
    created_by: Option<Uuid>,
    revoked_at: Option<String>,
    /// `cga_...`: sent as `Authorization: Bearer <token>`; only its hash is kept.
    token: String,
}

#[derive(ToSchema)]
pub struct ApplicationPage {
    items: Vec<Application>,
    filtered: i64,
    total: i64,
}

// Built by `wire::webhook::delivery`.
/// One event's delivery to an endpoint.
#[derive(ToSchema)]
pub struct WebhookDelivery {
    uuid: Uuid,
    webhook_uuid: Uuid,
    /// The `webhook-id` header (the same on every try).
    event_id: String,
    event_type: String,
    /// `pending`, `retrying`, `delivered` or `failed`.
    #[schema(example = "delivered")]
    status: String,
    attempts: i64,
    last_error: Option<String>,
    last_status_code: Option<i64>,
    response_time_ms: Option<i64>,
    created_at: String,
    delivered_at: Option<String>,
    failed_at: Option<String>,
    next_attempt_at: Option<String>,
}

#[derive(ToSchema)]
pub struct DeliveryPage {
    items: Vec<WebhookDelivery>,
    filtered: i64,
    total: i64,
}

// Built by `wire::report::report`.
/// Durations' median and 90th percentile, in seconds (null when none).
#[derive(ToSchema)]
pub struct ReportDurations {
    /// How many conversations have one.
    count: u64,
    median_seconds: Option<f64>,
    p90_seconds: Option<f64>,
}

/// Answered within the target, of the conversations whose outcome is
/// known (answered, or not answered while closed or waiting past the target).
#[derive(ToSchema)]
pub struct ReportWithinTarget {
    within: u64,
    counted: u64,
    /// `within / counted`, 0 to 1 (null when nothing is counted).
    share: Option<f64>,
}

/// The visitors' ratings.
#[derive(ToSchema)]
pub struct ReportRatings {
    count: u64,
    /// null when none was given.
    average: Option<f64>,
    /// How many rated 1, 2, 3, 4 and 5.
    #[schema(min_items = 5, max_items = 5)]
    distribution: Vec<u64>,
}

/// The figures of the conversations started in the period (or on a day).
#[derive(ToSchema)]
pub struct ReportFigures {
    conversations: u64,
    /// Answered by an agent or application.
    answered: u64,
    /// Closed now.
    closed: u64,
    /// From the first visitor message to the first agent (or application) message.
    first_response: ReportDurations,
    /// From the start to the (latest) close.
    resolution: ReportDurations,
    within_target: ReportWithinTarget,
    ratings: ReportRatings,
}

/// One day's figures.
#[derive(ToSchema)]
pub struct ReportDay {
    /// `YYYY-MM-DD`, in the report's time zone.
    date: String,
    conversations: u64,
    answered: u64,
    closed: u64,
    first_response: ReportDurations,
    resolution: ReportDurations,
    within_target: ReportWithinTarget,
    ratings: ReportRatings,
}

/// A report: the period's figures, each day's, and when conversations start.
#[derive(ToSchema)]
pub struct Report {
    /// The first day, `YYYY-MM-DD`.
    from: String,
    /// The last day, included.
    to: String,
    /// The IANA time zone of the days and hours.
    #[schema(example = "UTC")]
    time_zone: String,
    target_seconds: u32,
    /// The channel filter, or null.
    channel_uuid: Option<Uuid>,
    /// The agent filter (the conversations assigned to it), or null.
    agent_uuid: Option<Uuid>,
    totals: ReportFigures,
    /// Every day of the period, in order.
    days: Vec<ReportDay>,
    /// Conversations started by hour of day (0 to 23).
    #[schema(min_items = 24, max_items = 24)]
    hours: Vec<u64>,
    /// Conversations started by weekday (Monday first) and hour of day.
    #[schema(min_items = 7, max_items = 7)]
    heatmap: Vec<Vec<u64>>,
}
