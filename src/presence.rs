//! Who is connected right now, across every instance of a deployment.
//!
//! A session calls [`Presence::enter`] with what it makes present (its
//! conversation, or its agent) and holds the returned [`Here`]; dropping it
//! leaves. Each instance counts its own sessions per key. Alone (the embedded
//! default) that count is the whole answer.
//!
//! With Redis, each key is a sorted set `<prefix>:presence:<kind>:<uuid>`
//! (the prefix is `CHATGATE_REDIS_PREFIX`, `chatgate` by default)
//! whose members are the ids of the instances that have a session for it,
//! scored by the time (Unix ms) until which that claim holds. An instance
//! adds itself when its first local session of a key arrives, removes itself
//! after the last one leaves, and every `ttl / 3` renews the score of every
//! key it holds. A key is online while some member's score is in the future
//! (`ZCOUNT key <now> +inf`), so the sessions of a crashed instance, which
//! stops renewing, disappear within `ttl`. Each key also expires after `ttl`,
//! so nothing is left behind in Redis.
//!
//! One task performs every Redis write of an instance in order, and checks
//! the current local count when it does, so a session arriving while the last
//! one leaves never ends up marked offline. Presence is best effort: when
//! Redis is unreachable, reads answer from this instance's own sessions and
//! the next renewal after Redis returns restores every claim.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, oneshot};

use crate::domain::time::now_ms;
use crate::domain::{AgentId, ConversationId};

/// Something that is online while at least one session holds it.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum PresenceKey {
    /// A visitor conversation with a live visitor socket.
    Conversation(ConversationId),
    /// An agent with a live event socket.
    Agent(AgentId),
}

impl PresenceKey {
    /// The Redis key of this key in the deployment whose keys start with `prefix`.
    fn redis_key(&self, prefix: &str) -> String {
        match self {
            PresenceKey::Conversation(id) => format!("{prefix}:presence:conversation:{id}"),
            PresenceKey::Agent(id) => format!("{prefix}:presence:agent:{id}"),
        }
    }
}

enum Write {
    /// The local count of this key changed between zero and non-zero.
    Changed(PresenceKey),
    /// Answered once every write queued before it has been attempted.
    Flush(oneshot::Sender<()>),
}

struct Shared {
    /// The deployment's Redis key prefix (without the `:`).
    prefix: String,
    instance: String,
    ttl: Duration,
    reader: ConnectionManager,
    writes: mpsc::UnboundedSender<Write>,
}

pub struct Presence {
    local: Mutex<HashMap<PresenceKey, u32>>,
    /// `None` on the embedded default: the local counts are the whole truth.
    shared: Option<Shared>,
}

/// A session's presence; dropping it leaves.
pub struct Here {
    presence: Arc<Presence>,
    key: PresenceKey,
}

impl Drop for Here {
    fn drop(&mut self) {
        self.presence.leave(self.key);
    }
}

impl Presence {
    /// Presence known only to this instance.
    pub fn local() -> Arc<Presence> {
        Arc::new(Presence {
            local: Mutex::new(HashMap::new()),
            shared: None,
        })
    }

    /// Presence shared through Redis under the keys `<prefix>:presence:...`;
    /// a claim not renewed within `ttl` lapses.
    pub async fn redis(
        url: &str,
        prefix: &str,
        ttl: Duration,
    ) -> Result<Arc<Presence>, redis::RedisError> {
        let client = redis::Client::open(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(5));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let (writes, rx) = mpsc::unbounded_channel();
        let presence = Arc::new(Presence {
            local: Mutex::new(HashMap::new()),
            shared: Some(Shared {
                prefix: prefix.to_string(),
                instance: uuid::Uuid::new_v4().to_string(),
                ttl,
                reader: conn.clone(),
                writes,
            }),
        });
        tokio::spawn(write_loop(Arc::downgrade(&presence), conn, rx));
        Ok(presence)
    }

    /// Marks `key` present for as long as the returned guard lives.
    pub fn enter(self: &Arc<Self>, key: PresenceKey) -> Here {
        let first = {
            let mut local = self.lock();
            let count = local.entry(key).or_insert(0);
            *count += 1;
            *count == 1
        };
        if first {
            self.changed(key);
        }
        Here {
            presence: self.clone(),
            key,
        }
    }

    fn leave(&self, key: PresenceKey) {
        let last = {
            let mut local = self.lock();
            match local.get_mut(&key) {
                Some(count) if *count > 1 => {
                    *count -= 1;
                    false
                }
                Some(_) => {
                    local.remove(&key);
                    true
                }
                None => false,
            }
        };
        if last {
            self.changed(key);
        }
    }

    fn changed(&self, key: PresenceKey) {
        if let Some(shared) = &self.shared {
            let _ = shared.writes.send(Write::Changed(key));
        }
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PresenceKey, u32>> {
        // Every mutation is one insert/decrement/remove: never half done.
        self.local.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn held_here(&self, key: &PresenceKey) -> bool {
        self.lock().contains_key(key)
    }

    /// Whether each key has a live session on any instance, in order.
    pub async fn online(&self, keys: &[PresenceKey]) -> Vec<bool> {
        let mut answer: Vec<bool> = keys.iter().map(|k| self.held_here(k)).collect();
        let Some(shared) = &self.shared else {
            return answer;
        };
        let ask: Vec<usize> = (0..keys.len()).filter(|&i| !answer[i]).collect();
        if ask.is_empty() {
            return answer;
        }
        let now = now_ms();
        let mut pipe = redis::pipe();
        for &i in &ask {
            pipe.zcount(keys[i].redis_key(&shared.prefix), now, "+inf");
        }
        let mut conn = shared.reader.clone();
        match pipe.query_async::<Vec<u64>>(&mut conn).await {
            Ok(counts) => {
                for (&i, count) in ask.iter().zip(counts) {
                    answer[i] = count > 0;
                }
            }
            Err(e) => {
                tracing::warn!(error = %e, "presence read failed; answering from local sessions");
            }
        }
        answer
    }

    /// Waits until every presence change made so far has reached Redis (or
    /// failed to). Immediate on the embedded default.
    pub async fn flush(&self) {
        if let Some(shared) = &self.shared {
            let (done, wait) = oneshot::channel();
            if shared.writes.send(Write::Flush(done)).is_ok() {
                let _ = wait.await;
            }
        }
    }
}

/// Applies this instance's presence writes in order, and renews its claims.
async fn write_loop(
    presence: Weak<Presence>,
    mut conn: ConnectionManager,
    mut rx: mpsc::UnboundedReceiver<Write>,
) {
    let Some((prefix, instance, ttl)) = presence.upgrade().and_then(|p| {
        p.shared
            .as_ref()
            .map(|s| (s.prefix.clone(), s.instance.clone(), s.ttl))
    }) else {
        return;
    };
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let mut renew = tokio::time::interval(ttl / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            n = rx.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    return;
                }
                let Some(presence) = presence.upgrade() else { return };
                let mut flushes = Vec::new();
                let mut keys = HashSet::new();
                for write in batch.drain(..) {
                    match write {
                        Write::Changed(key) => { keys.insert(key); }
                        Write::Flush(done) => flushes.push(done),
                    }
                }
                let now = now_ms();
                let mut pipe = redis::pipe();
                for key in keys {
                    let rkey = key.redis_key(&prefix);
                    if presence.held_here(&key) {
                        pipe.zadd(&rkey, &instance, now + ttl_ms).ignore();
                        pipe.pexpire(&rkey, ttl_ms).ignore();
                    } else {
                        pipe.zrem(&rkey, &instance).ignore();
                    }
                }
                drop(presence);
                if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                    // A lost claim is restored by the next renewal; a lost
                    // removal lapses within the ttl.
                    tracing::warn!(error = %e, "presence update failed");
                }
                for done in flushes {
                    let _ = done.send(());
                }
            }
            _ = renew.tick() => {
                let Some(presence) = presence.upgrade() else { return };
                let held: Vec<PresenceKey> = presence.lock().keys().copied().collect();
                drop(presence);
                let now = now_ms();
                for chunk in held.chunks(1000) {
                    let mut pipe = redis::pipe();
                    for key in chunk {
                        let rkey = key.redis_key(&prefix);
                        pipe.zadd(&rkey, &instance, now + ttl_ms).ignore();
                        // Drop the lapsed claims of instances that died.
                        pipe.zrembyscore(&rkey, "-inf", now).ignore();
                        pipe.pexpire(&rkey, ttl_ms).ignore();
                    }
                    if let Err(e) = pipe.query_async::<()>(&mut conn).await {
                        tracing::warn!(error = %e, "presence renewal failed");
                        break;
                    }
                }
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_key_is_online_while_any_of_its_sessions_is_here() {
        let presence = Presence::local();
        let key = PresenceKey::Conversation(ConversationId::new());
        let other = PresenceKey::Agent(AgentId::new());
        assert_eq!(presence.online(&[key, other]).await, [false, false]);
        let first = presence.enter(key);
        let second = presence.enter(key);
        assert_eq!(presence.online(&[key, other]).await, [true, false]);
        drop(first);
        assert_eq!(presence.online(&[key]).await, [true]);
        drop(second);
        assert_eq!(presence.online(&[key]).await, [false]);
        assert!(presence.lock().is_empty(), "no entry left behind");
    }
}
