//! The bus carries events between the instances of one deployment.
//!
//! Guarantee: **at most once**, ordered per topic per publisher. A subscriber
//! may miss events (a Redis restart, a lagging consumer); the store is the
//! truth and sessions recover what they missed from it by `seq`.
//!
//! The hub tells the bus which topics this instance has local sessions for
//! (`subscribe`/`unsubscribe`); the bus hands every event of those topics to
//! the [`BusSink`] it was built with.

use std::fmt;
use std::sync::Arc;

use async_trait::async_trait;

use crate::domain::{ConversationId, Published, TenantId};

pub mod local;
pub mod redis;

pub use local::LocalBus;
pub use redis::RedisBus;

/// A bus channel name. Conversations are `conv.<uuid>`, tenants `tenant.<uuid>`.
#[derive(Debug, Clone, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub struct Topic(Arc<str>);

impl Topic {
    pub fn conversation(id: ConversationId) -> Topic {
        Topic(format!("conv.{id}").into())
    }

    /// The events for every visitor of a channel: `chan.<uuid>`.
    pub fn channel(id: crate::domain::ChannelId) -> Topic {
        Topic(format!("chan.{id}").into())
    }

    /// The events for the agents of a tenant: `tenant.<uuid>`.
    pub fn tenant(id: TenantId) -> Topic {
        Topic(format!("tenant.{id}").into())
    }

    pub fn is_tenant(&self) -> bool {
        self.0.starts_with("tenant.")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn from_raw(raw: &str) -> Topic {
        Topic(raw.into())
    }
}

impl fmt::Display for Topic {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(&self.0)
    }
}

#[derive(Debug, thiserror::Error)]
#[error("bus unavailable: {0}")]
pub struct BusError(pub String);

/// Receives the events of subscribed topics. Must not block: it runs on the
/// bus's receiving task.
pub trait BusSink: Send + Sync + 'static {
    fn deliver(&self, topic: &Topic, event: Arc<Published>);
    /// Events may have been lost (the bus reconnected): every session should
    /// catch up from the store.
    fn resync(&self);
}

#[async_trait]
pub trait Bus: Send + Sync + 'static {
    /// Publishes to every instance subscribed to `topic` (this one included).
    async fn publish(&self, topic: &Topic, event: Arc<Published>) -> Result<(), BusError>;
    /// Publishes one event on several topics, in order: the first error,
    /// once every topic was tried. A bus with round trips sends them
    /// together.
    async fn publish_all(&self, topics: &[Topic], event: Arc<Published>) -> Result<(), BusError> {
        let mut result = Ok(());
        for topic in topics {
            result = result.and(self.publish(topic, event.clone()).await);
        }
        result
    }
    /// Starts receiving `topic`'s events. Idempotent.
    async fn subscribe(&self, topic: &Topic) -> Result<(), BusError>;
    /// Stops receiving `topic`'s events. Idempotent.
    async fn unsubscribe(&self, topic: &Topic) -> Result<(), BusError>;
    /// Whether the bus can currently publish (for readiness).
    async fn ping(&self) -> Result<(), BusError>;
}
