//! The one place where failures become HTTP replies.
//!
//! Handlers return `Result<_, ApiError>`; `ApiError` is itself a warp `Reply`
//! with the contract's JSON shape. Services refuse with a
//! [`ServiceError`](crate::service::ServiceError), which becomes an
//! `ApiError` here, and only here (`From<ServiceError>`). `recover` turns warp's own rejections (no
//! route, wrong method, ...) into the same shape, so a client never sees an
//! HTML page or an empty body. Internal causes are logged once and never sent.

use std::convert::Infallible;
use std::time::Duration;

use serde_json::{json, Value};
use warp::http::{header, HeaderValue, StatusCode};
use warp::reply::Response;
use warp::{Rejection, Reply};

use crate::service::error::{Conflict, Missing, ServiceError};

/// An error as the client sees it.
#[derive(Debug, Clone)]
pub struct ApiError {
    pub status: StatusCode,
    pub error_id: &'static str,
    pub message: String,
    pub details: Value,
    pub retry_after: Option<Duration>,
}

impl ApiError {
    pub fn new(status: StatusCode, error_id: &'static str, message: impl Into<String>) -> Self {
        ApiError {
            status,
            error_id,
            message: message.into(),
            details: json!({}),
            retry_after: None,
        }
    }

    pub fn with_details(mut self, details: Value) -> Self {
        self.details = details;
        self
    }

    /// 400 `invalid-data`, naming the offending field in `details`.
    pub fn invalid_field(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(StatusCode::BAD_REQUEST, "invalid-data", message.clone())
            .with_details(json!({ field: [message] }))
    }

    /// 400 `invalid-attachment`, naming the offending field in `details`.
    pub fn invalid_attachment(field: &str, message: impl Into<String>) -> Self {
        let message = message.into();
        ApiError::new(
            StatusCode::BAD_REQUEST,
            "invalid-attachment",
            message.clone(),
        )
        .with_details(json!({ field: [message] }))
    }

    pub fn invalid_data(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::BAD_REQUEST, "invalid-data", message)
    }

    pub fn invalid_token() -> Self {
        ApiError::new(
            StatusCode::UNAUTHORIZED,
            "invalid-token",
            "missing, invalid or expired token",
        )
    }

    pub fn unauthorized(message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::UNAUTHORIZED, "unauthorized", message)
    }

    pub fn forbidden() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "forbidden",
            "this call needs an admin token",
        )
    }

    pub fn unknown_conversation() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown-conversation",
            "no such conversation in this channel",
        )
        .with_details(json!({"resource": "conversation"}))
    }

    pub fn unknown_channel() -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            "unknown-channel",
            "unknown or disconnected channel",
        )
        .with_details(json!({"resource": "channel"}))
    }

    pub fn origin_not_allowed() -> Self {
        ApiError::new(
            StatusCode::FORBIDDEN,
            "origin-not-allowed",
            "this origin may not use this channel",
        )
    }

    pub fn rate_limited(retry_after: Duration) -> Self {
        let mut err = ApiError::new(
            StatusCode::TOO_MANY_REQUESTS,
            "rate-limited",
            "too many requests, retry later",
        );
        err.retry_after = Some(retry_after);
        err
    }

    pub fn payload_too_large(limit: usize) -> Self {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            format!("request body is larger than {limit} bytes"),
        )
        .with_details(json!({"limit": limit}))
    }

    /// 408: the request body did not arrive within its deadline.
    pub fn body_timeout(deadline: Duration) -> Self {
        ApiError::new(
            StatusCode::REQUEST_TIMEOUT,
            "request-timeout",
            format!(
                "the request body did not arrive within {} s",
                deadline.as_secs()
            ),
        )
        .with_details(json!({"timeout_seconds": deadline.as_secs()}))
    }

    /// 409 with its own `error_id`.
    pub fn conflict(error_id: &'static str, message: impl Into<String>) -> Self {
        ApiError::new(StatusCode::CONFLICT, error_id, message)
    }

    /// 404 naming the kind of resource (`details.resource`).
    pub fn not_found_resource(error_id: &'static str, resource: &str) -> Self {
        ApiError::new(
            StatusCode::NOT_FOUND,
            error_id,
            format!("no such {resource}"),
        )
        .with_details(json!({"resource": resource}))
    }

    pub fn not_found() -> Self {
        ApiError::new(StatusCode::NOT_FOUND, "not-found", "no such resource")
    }

    /// 503 `store-unavailable`: the store cannot take the request now
    /// (database down, disk full). The cause is logged here, not sent.
    pub fn store_unavailable(cause: impl std::fmt::Display) -> Self {
        tracing::warn!(%cause, "store unavailable");
        let mut err = ApiError::new(
            StatusCode::SERVICE_UNAVAILABLE,
            "store-unavailable",
            "the store cannot take this request now; retry later",
        );
        err.retry_after = Some(Duration::from_secs(1));
        err
    }

    /// An unexpected failure: the cause is logged here, the client gets an opaque 500.
    pub fn internal(cause: impl std::fmt::Display) -> Self {
        tracing::error!(%cause, "internal error");
        ApiError::new(
            StatusCode::INTERNAL_SERVER_ERROR,
            "internal-error",
            "internal server error",
        )
    }

    /// The `Retry-After` of a 429, in whole seconds, rounded up ("retry
    /// after 0 s" would invite an immediate retry).
    pub fn retry_after_secs(&self) -> Option<u64> {
        self.retry_after
            .map(|wait| (wait.as_secs() + u64::from(wait.subsec_nanos() > 0)).max(1))
    }

    pub fn body(&self) -> Value {
        let now = chrono::Utc::now().timestamp_millis() as f64 / 1000.0;
        json!({
            "message": self.message,
            "error_id": self.error_id,
            "details": self.details,
            "timestamp": now,
        })
    }
}

impl std::fmt::Display for ApiError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "{} {}: {}",
            self.status.as_u16(),
            self.error_id,
            self.message
        )
    }
}

impl std::error::Error for ApiError {}

impl From<crate::store::StoreError> for ApiError {
    /// A store that cannot take the request (database down, disk full) is a
    /// 503 the client may retry; anything else is a bug, an opaque 500.
    fn from(err: crate::store::StoreError) -> Self {
        match err {
            crate::store::StoreError::WrongRoom => ApiError::unknown_conversation(),
            err if err.is_unavailable() => ApiError::store_unavailable(err),
            err => ApiError::internal(err),
        }
    }
}

impl From<crate::limits::RateLimited> for ApiError {
    fn from(limited: crate::limits::RateLimited) -> Self {
        ApiError::rate_limited(limited.retry_after)
    }
}

impl From<ServiceError> for ApiError {
    /// Every service refusal as the contract spells it: status, `error_id`,
    /// message and details.
    fn from(err: ServiceError) -> Self {
        match err {
            ServiceError::InvalidField { field, message } => {
                ApiError::invalid_field(&field, message)
            }
            ServiceError::Invalid(message) => ApiError::invalid_data(message),
            ServiceError::DuplicateUser(user) => ApiError::new(
                StatusCode::BAD_REQUEST,
                "duplicate-user",
                format!("user {user} is listed twice"),
            )
            .with_details(json!({"users": [format!("duplicate user {user}")]})),
            ServiceError::InvalidToken => ApiError::invalid_token(),
            ServiceError::WrongCredentials => ApiError::unauthorized("wrong email or password"),
            ServiceError::Forbidden(why) => ApiError::new(StatusCode::FORBIDDEN, "forbidden", why),
            ServiceError::MissingScope(scope) => ApiError::new(
                StatusCode::FORBIDDEN,
                "missing-scope",
                format!("this application's token lacks the scope {scope}"),
            )
            .with_details(json!({"scope": scope})),
            ServiceError::NotForApplications(why) => {
                ApiError::new(StatusCode::FORBIDDEN, "not-for-applications", why)
            }
            ServiceError::OriginNotAllowed => ApiError::origin_not_allowed(),
            ServiceError::IdentityNotVerified => ApiError::new(
                StatusCode::UNAUTHORIZED,
                "identity-not-verified",
                "the identity's hash does not match this channel's secret",
            ),
            ServiceError::Blocked => ApiError::new(
                StatusCode::FORBIDDEN,
                "blocked",
                "this conversation has been blocked",
            ),
            ServiceError::NotFound(missing) => match missing {
                Missing::Conversation => ApiError::unknown_conversation(),
                Missing::Channel => ApiError::unknown_channel(),
                Missing::Room => ApiError::not_found_resource("unknown-room", "room"),
                Missing::User => ApiError::not_found_resource("unknown-user", "user"),
                Missing::Agent => ApiError::not_found_resource("unknown-agent", "agent"),
                Missing::Message => ApiError::not_found_resource("unknown-message", "message"),
                Missing::Reaction => ApiError::not_found_resource("unknown-reaction", "reaction"),
                Missing::File => ApiError::not_found_resource("unknown-file", "file"),
                Missing::Label => ApiError::not_found_resource("unknown-label", "label"),
                Missing::Webhook => ApiError::not_found_resource("unknown-webhook", "webhook"),
                Missing::Application => {
                    ApiError::not_found_resource("unknown-application", "application")
                }
                Missing::Delivery => {
                    ApiError::not_found_resource("unknown-delivery", "webhook delivery")
                }
                Missing::CannedResponse => {
                    ApiError::not_found_resource("unknown-canned-response", "canned_response")
                }
            },
            ServiceError::Conflict(conflict) => match conflict {
                Conflict::AlreadyAnswered => ApiError::conflict(
                    "already-answered",
                    "another agent answered this visitor first",
                )
                .with_details(json!({"resource": "room"})),
                Conflict::ReactionAlreadyExists => ApiError::conflict(
                    "reaction-already-exists",
                    "this user already reacted with this emoji",
                ),
                Conflict::TooManyReactions { limit } => ApiError::conflict(
                    "too-many-reactions",
                    format!("a user may put at most {limit} different reactions on a message"),
                )
                .with_details(json!({"limit": limit})),
                Conflict::AgentAlreadyExists => ApiError::conflict(
                    "agent-already-exists",
                    "an agent with this email already exists",
                ),
                Conflict::RoomClosed => ApiError::conflict(
                    "room-closed",
                    "this conversation is closed: it is reopened before it is assigned",
                ),
                Conflict::AlreadyAMember => ApiError::conflict(
                    "already-a-member",
                    "this agent is a member of the room already",
                )
                .with_details(json!({"resource": "room"})),
                Conflict::RoomFull { limit } => {
                    ApiError::conflict("room-full", format!("a room has at most {limit} members"))
                        .with_details(json!({"resource": "room", "limit": limit}))
                }
                Conflict::AlreadyRated => ApiError::conflict(
                    "already-rated",
                    "this conversation has been rated already",
                ),
                Conflict::ConversationOpen => ApiError::conflict(
                    "conversation-open",
                    "a conversation is rated once it is closed",
                ),
                Conflict::NoEmail => ApiError::conflict(
                    "no-email",
                    "give an email address first (visitor.email)",
                ),
                Conflict::EmailUnavailable => ApiError::conflict(
                    "email-unavailable",
                    "this server sends no email",
                ),
                Conflict::NotAGroupRoom => ApiError::conflict(
                    "not-a-group-room",
                    "members are added and removed in agent rooms only",
                )
                .with_details(json!({"resource": "room"})),
                Conflict::LabelAlreadyExists => ApiError::conflict(
                    "label-already-exists",
                    "a label with this name already exists",
                )
                .with_details(json!({"resource": "label"})),
                Conflict::NotAVisitorRoom => ApiError::conflict(
                    "not-a-visitor-room",
                    "labels are put on visitor conversations only",
                )
                .with_details(json!({"resource": "room"})),
                Conflict::CannedResponseAlreadyExists => ApiError::conflict(
                    "canned-response-already-exists",
                    "another canned response has this shortcut",
                )
                .with_details(json!({"resource": "canned_response", "field": "shortcut"})),
            },
            ServiceError::RateLimited { retry_after } => ApiError::rate_limited(retry_after),
            ServiceError::Store(err) => err.into(),
            ServiceError::FileTooLarge(max) => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file-too-large",
                format!("files may be at most {max} bytes"),
            ),
            ServiceError::ImageTooLarge => ApiError::new(
                StatusCode::PAYLOAD_TOO_LARGE,
                "file-too-large",
                format!(
                    "images may be at most {} pixels a side and {} megapixels",
                    crate::files::MAX_IMAGE_SIDE,
                    crate::files::MAX_IMAGE_PIXELS / 1_000_000
                ),
            ),
            ServiceError::FileTypeNotAllowed => ApiError::new(
                StatusCode::UNSUPPORTED_MEDIA_TYPE,
                "file-type-not-allowed",
                "this type of file is not allowed (images, video, PDF, text and office documents are)",
            ),
            ServiceError::InvalidAttachment => ApiError::invalid_attachment(
                "attachments",
                "attachments must be your own uploads into this conversation, not yet sent",
            ),
            ServiceError::Internal(cause) => ApiError::internal(cause),
        }
    }
}

/// The `error_id` of an error reply, carried as a response extension so the
/// access log and the metrics can count client errors by id.
#[derive(Debug, Clone, Copy)]
pub struct ErrorId(pub &'static str);

impl Reply for ApiError {
    fn into_response(self) -> Response {
        let mut response =
            warp::reply::with_status(warp::reply::json(&self.body()), self.status).into_response();
        response.extensions_mut().insert(ErrorId(self.error_id));
        if let Some(secs) = self.retry_after_secs() {
            response
                .headers_mut()
                .insert(header::RETRY_AFTER, HeaderValue::from(secs));
        }
        response
    }
}

/// Marker so an `ApiError` can travel as a warp rejection out of filters.
impl warp::reject::Reject for ApiError {}

/// Turns every rejection into the contract's JSON error.
pub async fn recover(rejection: Rejection) -> Result<Response, Infallible> {
    let err = if let Some(err) = rejection.find::<ApiError>() {
        err.clone()
    } else if rejection.is_not_found() {
        ApiError::not_found()
    } else if rejection.find::<warp::reject::MethodNotAllowed>().is_some() {
        ApiError::new(
            StatusCode::METHOD_NOT_ALLOWED,
            "method-not-allowed",
            "method not allowed on this path",
        )
    } else if rejection.find::<warp::reject::PayloadTooLarge>().is_some() {
        ApiError::new(
            StatusCode::PAYLOAD_TOO_LARGE,
            "payload-too-large",
            "request body is too large",
        )
    } else if let Some(e) = rejection.find::<warp::filters::cors::CorsForbidden>() {
        ApiError::new(StatusCode::FORBIDDEN, "origin-not-allowed", e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::InvalidQuery>() {
        ApiError::invalid_data(e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::MissingHeader>() {
        ApiError::invalid_data(e.to_string())
    } else if let Some(e) = rejection.find::<warp::reject::InvalidHeader>() {
        ApiError::invalid_data(e.to_string())
    } else if rejection
        .find::<warp::reject::UnsupportedMediaType>()
        .is_some()
    {
        ApiError::new(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "unsupported-media-type",
            "unsupported media type",
        )
    } else {
        // A client's doing (counted in the metrics as a 400), not the operator's.
        tracing::debug!(?rejection, "unhandled rejection");
        ApiError::invalid_data("bad request")
    };
    Ok(err.into_response())
}
