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

/// A map whose entries are fresh for [`CHANNEL_TTL`], bounded at
/// [`MAX_ENTRIES`] (when full, stale entries go first; when all are fresh,
/// a new one is not kept). Each operation is one locked map call: a panic
/// cannot leave it half done.
struct Fresh<K, V> {
    entries: Mutex<HashMap<K, (Instant, V)>>,
}

impl<K, V> Default for Fresh<K, V> {
    fn default() -> Self {
        Fresh {
            entries: Mutex::new(HashMap::new()),
        }
    }
}

impl<K: std::hash::Hash + Eq, V: Clone> Fresh<K, V> {
    fn get(&self, key: &K, now: Instant) -> Option<V> {
        self.lock()
            .get(key)
            .filter(|(at, _)| now.duration_since(*at) < CHANNEL_TTL)
            .map(|(_, value)| value.clone())
    }

    fn insert(&self, key: K, value: V, now: Instant) {
        let mut entries = self.lock();
        if entries.len() >= MAX_ENTRIES {
            entries.retain(|_, (at, _)| now.duration_since(*at) < CHANNEL_TTL);
        }
        if entries.len() < MAX_ENTRIES {
            entries.insert(key, (now, value));
        }
    }

    fn remove(&self, key: &K) {
        self.lock().remove(key);
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, (Instant, V)>> {
        self.entries.lock().unwrap_or_else(|e| e.into_inner())
    }
}

#[derive(Default)]
pub struct ChannelCache {
    entries: Fresh<ChannelId, Arc<Channel>>,
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
        if let Some(channel) = self.entries.get(&id, now) {
            return Ok(Some(channel));
        }
        let channel = store.public_channel(id).await?.map(Arc::new);
        match &channel {
            Some(channel) => self.entries.insert(id, Arc::clone(channel), now),
            None => self.entries.remove(&id),
        }
        Ok(channel)
    }

    /// Forgets a channel this instance just changed.
    pub fn evict(&self, id: ChannelId) {
        self.entries.remove(&id);
    }
}

/// Whether a visitor is blocked on a channel, for the visitor hot path
/// (every send asks). Entries live for [`CHANNEL_TTL`]: a block or unblock
/// made on this instance applies at once (it evicts the entry), one made on
/// another instance within that time. Bounded like the channel cache.
#[derive(Default)]
pub struct BlockCache {
    entries: Fresh<(ChannelId, VisitorKey), bool>,
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
        if let Some(blocked) = self.entries.get(&entry, now) {
            return Ok(blocked);
        }
        let blocked = store.visitor_blocked(channel, key).await?;
        self.entries.insert(entry, blocked, now);
        Ok(blocked)
    }

    /// Forgets what this instance just changed.
    pub fn evict(&self, channel: ChannelId, key: &VisitorKey) {
        self.entries.remove(&(channel, key.clone()));
    }
}

/// When an erasure (data rights) last ended a visitor token's keys, for the
/// visitor hot path like [`BlockCache`]: an erasure made on this instance
/// applies at once (it clears the cache), one made on another instance
/// within [`CHANNEL_TTL`] (its live sessions are ended by an event at once).
#[derive(Default)]
pub struct ErasureCache {
    entries: Fresh<(ChannelId, crate::domain::ConversationId, VisitorKey), Option<i64>>,
}

impl ErasureCache {
    pub async fn erased_at(
        &self,
        store: &dyn crate::store::DataRightsStore,
        channel: ChannelId,
        conversation: crate::domain::ConversationId,
        key: &VisitorKey,
    ) -> StoreResult<Option<i64>> {
        let now = Instant::now();
        let entry = (channel, conversation, key.clone());
        if let Some(at) = self.entries.get(&entry, now) {
            return Ok(at);
        }
        let keys = crate::domain::rights::token_erasure_keys(conversation, key);
        let at = store.visitor_erased_at(channel, &keys).await?;
        self.entries.insert(entry, at, now);
        Ok(at)
    }

    /// Forgets everything: this instance just erased.
    pub fn clear(&self) {
        self.entries.lock().clear();
    }
}
