//! A short-lived cache of channels for the visitor hot path.
//!
//! Every visitor call checks that its channel is still connected and allows
//! the caller's origin; without a cache that is a store read per message
//! sent over HTTP. Entries live for [`CHANNEL_TTL`]: an update made on this
//! instance applies at once (it evicts the entry), one made on another
//! instance within that time. Only channels that exist are cached, and the
//! cache is bounded, so unknown ids sent by a client cannot grow it.

use std::collections::HashMap;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use crate::domain::identity::VisitorKey;
use crate::domain::{Channel, ChannelId};
use crate::store::{ChannelStore, IdentityStore, StoreResult};

/// How stale a channel read from the cache may be.
pub const CHANNEL_TTL: Duration = Duration::from_secs(1);
const MAX_ENTRIES: usize = 10_000;

#[derive(Default)]
pub struct ChannelCache {
    entries: Mutex<HashMap<ChannelId, (Instant, Arc<Channel>)>>,
}

impl ChannelCache {
    /// The channel, from the cache when fresh, else from the store. Shared,
    /// not copied: every visitor send asks.
    pub async fn get(
        &self,
        store: &dyn ChannelStore,
        id: ChannelId,
    ) -> StoreResult<Option<Arc<Channel>>> {
        let now = Instant::now();
        if let Some((at, channel)) = self.lock().get(&id) {
            if now.duration_since(*at) < CHANNEL_TTL {
                return Ok(Some(Arc::clone(channel)));
            }
        }
        let channel = store.public_channel(id).await?.map(Arc::new);
        let mut entries = self.lock();
        match &channel {
            Some(channel) => {
                if entries.len() >= MAX_ENTRIES {
                    entries.retain(|_, (at, _)| now.duration_since(*at) < CHANNEL_TTL);
                }
                if entries.len() < MAX_ENTRIES {
                    entries.insert(id, (now, Arc::clone(channel)));
                }
            }
            None => {
                entries.remove(&id);
            }
        }
        Ok(channel)
    }

    /// Forgets a channel this instance just changed.
    pub fn evict(&self, id: ChannelId) {
        self.lock().remove(&id);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<ChannelId, (Instant, Arc<Channel>)>> {
        // Each operation is one map call: a panic cannot leave it half done.
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Whether a visitor is blocked on a channel, for the visitor hot path
/// (every send asks). Entries live for [`CHANNEL_TTL`]: a block or unblock
/// made on this instance applies at once (it evicts the entry), one made on
/// another instance within that time. Bounded like the channel cache.
#[derive(Default)]
pub struct BlockCache {
    entries: Mutex<HashMap<(ChannelId, VisitorKey), (Instant, bool)>>,
}

impl BlockCache {
    pub async fn blocked(
        &self,
        store: &dyn IdentityStore,
        channel: ChannelId,
        key: &VisitorKey,
    ) -> StoreResult<bool> {
        let now = Instant::now();
        let entry = (channel, key.clone());
        if let Some((at, blocked)) = self.lock().get(&entry) {
            if now.duration_since(*at) < CHANNEL_TTL {
                return Ok(*blocked);
            }
        }
        let blocked = store.visitor_blocked(channel, key).await?;
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| now.duration_since(*at) < CHANNEL_TTL);
        }
        if entries.len() < MAX_ENTRIES {
            entries.insert(entry, (now, blocked));
        }
        Ok(blocked)
    }

    /// Forgets what this instance just changed.
    pub fn evict(&self, channel: ChannelId, key: &VisitorKey) {
        self.lock().remove(&(channel, key.clone()));
    }

    #[allow(clippy::type_complexity)]
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<(ChannelId, VisitorKey), (Instant, bool)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}
