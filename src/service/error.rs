//! What a service call can refuse, in domain terms. The doors turn it into
//! their reply in one place (`crate::error`: an HTTP status, an `error_id`
//! and the JSON error body; the STOMP socket's ERROR frame reads the same).

use std::borrow::Cow;
use std::time::Duration;

use uuid::Uuid;

use crate::store::StoreError;

/// Why a service refused a call.
#[derive(Debug, thiserror::Error)]
pub enum ServiceError {
    /// One field of the request is invalid; `message` says how.
    #[error("{field}: {message}")]
    InvalidField {
        field: Cow<'static, str>,
        message: String,
    },
    /// The request as a whole is invalid.
    #[error("{0}")]
    Invalid(String),
    /// A new room lists the same user twice.
    #[error("user {0} is listed twice")]
    DuplicateUser(Uuid),
    /// No token, or one that is forged, expired or revoked.
    #[error("missing, invalid or expired token")]
    InvalidToken,
    /// A login with a wrong email or password (or a disabled agent's).
    #[error("wrong email or password")]
    WrongCredentials,
    /// The caller may not do this; the reason is the client's message.
    #[error("{0}")]
    Forbidden(&'static str),
    /// An application whose token lacks the scope this call needs (403
    /// `missing-scope`).
    #[error("this call needs the scope {0}")]
    MissingScope(&'static str),
    /// A call no application may make, whatever its scopes (403
    /// `not-for-applications`); the reason is the client's message.
    #[error("{0}")]
    NotForApplications(&'static str),
    /// An identity whose hash the channel's secrets do not verify (401
    /// `identity-not-verified`).
    #[error("the identity's hash is not verified")]
    IdentityNotVerified,
    /// The visitor is blocked on this channel (403 `blocked`).
    #[error("this visitor is blocked")]
    Blocked,
    /// The channel does not take visitors from the request's origin.
    #[error("this origin may not use this channel")]
    OriginNotAllowed,
    /// What the call names does not exist in the caller's reach.
    #[error("no such {0:?}")]
    NotFound(Missing),
    /// The call contradicts the current state.
    #[error("{0:?}")]
    Conflict(Conflict),
    /// Too many calls: retry after the given time.
    #[error("rate limited for {retry_after:?}")]
    RateLimited { retry_after: Duration },
    /// The store failed (unavailable: retry later; anything else: a bug).
    #[error(transparent)]
    Store(#[from] StoreError),
    /// An upload over the size cap (413 `file-too-large`).
    #[error("the file is larger than {0} bytes")]
    FileTooLarge(u64),
    /// An image whose pixel size is over the limits (413 `file-too-large`).
    #[error("the image has too many pixels")]
    ImageTooLarge,
    /// An upload whose content is not an allowed type (415 `file-type-not-allowed`).
    #[error("this type of file is not allowed")]
    FileTypeNotAllowed,
    /// A message names files that are not this sender's unsent uploads of
    /// this conversation (400 `invalid-attachment`).
    #[error("invalid attachment")]
    InvalidAttachment,
    /// A failure of ours that is no store's (the cause is logged, not sent).
    #[error("internal: {0}")]
    Internal(String),
}

/// What a `NotFound` names.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Missing {
    Room,
    User,
    Agent,
    Message,
    Reaction,
    /// A visitor conversation of the channel.
    Conversation,
    /// A channel that exists and is connected.
    Channel,
    /// An uploaded file.
    File,
    /// One of the tenant's labels.
    Label,
    CannedResponse,
    /// One of the tenant's webhook endpoints.
    Webhook,
    /// A delivery of one of the tenant's webhook endpoints.
    Delivery,
    /// One of the tenant's applications.
    Application,
}

/// Which state a call ran into.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Conflict {
    /// Another agent answered the queued room first.
    AlreadyAnswered,
    /// The caller already reacted with this emoji.
    ReactionAlreadyExists,
    /// The caller already has `limit` different reactions on the message.
    TooManyReactions { limit: u32 },
    /// An agent with this email exists.
    AgentAlreadyExists,
    /// The room is closed (an admin's assignment is for queued and open rooms).
    RoomClosed,
    /// The agent is a member of the agent room already.
    AlreadyAMember,
    /// The agent room has its most members.
    RoomFull { limit: usize },
    /// Members are added and removed in agent rooms only.
    NotAGroupRoom,
    /// The tenant has a label of this name (whatever its case).
    LabelAlreadyExists,
    /// Labels are put on visitor rooms only.
    NotAVisitorRoom,
    /// Another canned response of the tenant has this shortcut.
    CannedResponseAlreadyExists,
    /// The visitor rated this conversation already.
    AlreadyRated,
    /// The conversation is not closed (or never began): nothing to rate yet.
    ConversationOpen,
    /// The visitor gave no email address (a transcript has nowhere to go).
    NoEmail,
    /// This server sends no email (no SMTP configured).
    EmailUnavailable,
}

impl ServiceError {
    /// An invalid field with its message.
    pub fn field(field: impl Into<Cow<'static, str>>, message: impl Into<String>) -> Self {
        ServiceError::InvalidField {
            field: field.into(),
            message: message.into(),
        }
    }

    pub fn invalid(message: impl Into<String>) -> Self {
        ServiceError::Invalid(message.into())
    }

    pub fn internal(cause: impl std::fmt::Display) -> Self {
        ServiceError::Internal(cause.to_string())
    }
}

impl From<crate::limits::RateLimited> for ServiceError {
    fn from(limited: crate::limits::RateLimited) -> Self {
        ServiceError::RateLimited {
            retry_after: limited.retry_after,
        }
    }
}

/// A service's answer.
pub type ServiceResult<T> = Result<T, ServiceError>;

impl From<crate::files::FileError> for ServiceError {
    fn from(e: crate::files::FileError) -> ServiceError {
        use crate::files::FileError;
        match e {
            FileError::TooLarge(max) => ServiceError::FileTooLarge(max),
            FileError::TypeNotAllowed => ServiceError::FileTypeNotAllowed,
            FileError::ImageTooLarge => ServiceError::ImageTooLarge,
            FileError::Interrupted(why) => {
                ServiceError::Invalid(format!("the upload was interrupted: {why}"))
            }
            FileError::Storage(why) => {
                ServiceError::Store(crate::store::StoreError::Unavailable(why))
            }
        }
    }
}
