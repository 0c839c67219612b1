//! Typed identifiers: a `ChannelId` cannot be passed where a `ConversationId`
//! is expected, and every id is a UUID on the wire and in the store.

use std::fmt;
use std::str::FromStr;

use serde::{Deserialize, Serialize};
use uuid::Uuid;

macro_rules! id_type {
    ($($(#[$meta:meta])* $name:ident),* $(,)?) => {$(
        $(#[$meta])*
        #[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord, Serialize, Deserialize)]
        #[serde(transparent)]
        pub struct $name(pub Uuid);

        // No `Default`: a default value that is a fresh random id would let
        // `unwrap_or_default()` invent an id nobody issued.
        #[allow(clippy::new_without_default)]
        impl $name {
            /// A new id: a UUIDv7, whose leading bits are the creation time,
            /// so rows inserted together land together at the end of every
            /// index keyed by id (a random v4 id dirties a random index page
            /// per insert, which is what a group commit then has to write).
            pub fn new() -> Self {
                $name(Uuid::now_v7())
            }
        }

        impl fmt::Display for $name {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                self.0.fmt(f)
            }
        }

        impl FromStr for $name {
            type Err = uuid::Error;
            fn from_str(s: &str) -> Result<Self, Self::Err> {
                Uuid::parse_str(s).map($name)
            }
        }
    )*};
}

id_type!(
    /// A business using chatgate; everything else belongs to exactly one.
    TenantId,
    /// One website installation of the widget.
    ChannelId,
    /// One visitor conversation (also the visitor's identity on the wire).
    ConversationId,
    MessageId,
    AgentId,
    /// One agent login; revoking it invalidates its token.
    SessionId,
    /// One uploaded file.
    AttachmentId,
    /// One of a tenant's labels for conversations.
    LabelId,
    /// One of a tenant's webhook endpoints.
    WebhookId,
);
