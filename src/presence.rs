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
//! A crashed instance's claims lapse silently, so the deployment keeps one
//! more sorted set, `<prefix>:presence:claims`, of every key claimed anywhere
//! (`<kind>:<tenant>:<uuid>`) scored by its latest expiry. Each renewal
//! raises the score (`ZADD GT`); the instance whose removal empties a key
//! removes it. Every `ttl / 3` each instance takes the entries whose time
//! has passed out of the set in one atomic script, so exactly one instance
//! gets each, and reports the keys that are indeed offline now through
//! [`Presence::lapses`]: those whose sessions died with their instance.
//!
//! One task performs every Redis write of an instance in order, and checks
//! the current local count when it does, so a session arriving while the last
//! one leaves never ends up marked offline. Presence is best effort: when
//! Redis is unreachable, reads answer from this instance's own sessions and
//! the next renewal after Redis returns restores every claim.

use std::collections::HashMap;
use std::sync::{Arc, Mutex, Weak};
use std::time::Duration;

use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, oneshot};

use crate::domain::time::now_ms;
use crate::domain::{AgentId, ConversationId, TenantId};

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

    /// This key's member in the registry of claims.
    fn claim(&self, tenant: TenantId) -> String {
        match self {
            PresenceKey::Conversation(id) => format!("conversation:{tenant}:{id}"),
            PresenceKey::Agent(id) => format!("agent:{tenant}:{id}"),
        }
    }

    fn parse_claim(raw: &str) -> Option<(PresenceKey, TenantId)> {
        let mut parts = raw.splitn(3, ':');
        let (kind, tenant, id) = (parts.next()?, parts.next()?, parts.next()?);
        let tenant = TenantId(uuid::Uuid::parse_str(tenant).ok()?);
        let id = uuid::Uuid::parse_str(id).ok()?;
        let key = match kind {
            "conversation" => PresenceKey::Conversation(ConversationId(id)),
            "agent" => PresenceKey::Agent(AgentId(id)),
            _ => return None,
        };
        Some((key, tenant))
    }
}

/// Removes this instance's claim on a key, and the key's registry entry
/// when no claim is left. KEYS: the key, the registry; ARGV: instance, now, member.
const RELEASE: &str = r"
redis.call('ZREM', KEYS[1], ARGV[1])
if redis.call('ZCOUNT', KEYS[1], ARGV[2], '+inf') == 0 then
  redis.call('ZREM', KEYS[2], ARGV[3])
end
return 0";

/// Takes up to 100 registry entries whose time has passed. KEYS: the
/// registry; ARGV: now.
const TAKE_LAPSED: &str = r"
local lapsed = redis.call('ZRANGEBYSCORE', KEYS[1], '-inf', ARGV[1], 'LIMIT', 0, 100)
for _, member in ipairs(lapsed) do
  redis.call('ZREM', KEYS[1], member)
end
return lapsed";

enum Write {
    /// The local count of this key changed between zero and non-zero.
    Changed(PresenceKey, TenantId),
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
    /// Taken once by whoever tells clients about lapsed keys.
    lapses: Mutex<Option<mpsc::UnboundedReceiver<(PresenceKey, TenantId)>>>,
}

/// A key's sessions on this instance.
struct Held {
    count: u32,
    tenant: TenantId,
}

pub struct Presence {
    local: Mutex<HashMap<PresenceKey, Held>>,
    /// `None` on the embedded default: the local counts are the whole truth.
    shared: Option<Shared>,
}

/// A session's presence; dropping it leaves.
pub struct Here {
    presence: Arc<Presence>,
    key: PresenceKey,
    first: bool,
    left: bool,
}

impl Here {
    /// Whether this session made its key present on this instance.
    pub fn first(&self) -> bool {
        self.first
    }

    /// Leaves now; true when it was the key's last session on this instance.
    pub fn leave(mut self) -> bool {
        self.left = true;
        self.presence.leave(self.key)
    }

    /// Leaves this instance without withdrawing its claim from the
    /// deployment: for a session closed because the instance shuts down,
    /// whose client reconnects to another instance at once. The claim is
    /// no longer renewed here, so it lapses within the ttl (reported then
    /// by a surviving instance, as after a crash) unless the other
    /// instance renews it first: the key never shows as gone in between.
    /// On the embedded default, the same as `leave`.
    pub fn hand_over(mut self) {
        self.left = true;
        if self.presence.shared.is_none() {
            self.presence.leave(self.key);
            return;
        }
        let mut local = self.presence.lock();
        match local.get_mut(&self.key) {
            Some(held) if held.count > 1 => held.count -= 1,
            Some(_) => {
                local.remove(&self.key);
            }
            None => {}
        }
    }
}

impl Drop for Here {
    fn drop(&mut self) {
        if !self.left {
            self.presence.leave(self.key);
        }
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
        let client = crate::bus::redis::client(url)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(Duration::from_secs(5));
        let conn = ConnectionManager::new_with_config(client, config).await?;
        let (writes, rx) = mpsc::unbounded_channel();
        let (lapsed, lapses) = mpsc::unbounded_channel();
        let presence = Arc::new(Presence {
            local: Mutex::new(HashMap::new()),
            shared: Some(Shared {
                prefix: prefix.to_string(),
                instance: uuid::Uuid::new_v4().to_string(),
                ttl,
                reader: conn.clone(),
                writes,
                lapses: Mutex::new(Some(lapses)),
            }),
        });
        tokio::spawn(write_loop(Arc::downgrade(&presence), conn, rx, lapsed));
        Ok(presence)
    }

    /// Marks `key` (of `tenant`) present for as long as the returned guard lives.
    pub fn enter(self: &Arc<Self>, key: PresenceKey, tenant: TenantId) -> Here {
        let first = {
            let mut local = self.lock();
            let held = local.entry(key).or_insert(Held { count: 0, tenant });
            held.count += 1;
            held.count == 1
        };
        if first {
            self.changed(key, tenant);
        }
        Here {
            presence: self.clone(),
            key,
            first,
            left: false,
        }
    }

    /// Returns whether this was the key's last local session.
    fn leave(&self, key: PresenceKey) -> bool {
        let last = {
            let mut local = self.lock();
            match local.get_mut(&key) {
                Some(held) if held.count > 1 => {
                    held.count -= 1;
                    None
                }
                Some(held) => {
                    let tenant = held.tenant;
                    local.remove(&key);
                    Some(tenant)
                }
                None => None,
            }
        };
        match last {
            Some(tenant) => {
                self.changed(key, tenant);
                true
            }
            None => false,
        }
    }

    fn changed(&self, key: PresenceKey, tenant: TenantId) {
        if let Some(shared) = &self.shared {
            let _ = shared.writes.send(Write::Changed(key, tenant));
        }
    }

    /// The keys whose every session died with its instance (their claims
    /// lapsed), each reported by one instance of the deployment. `None` on
    /// the embedded default, and after the first call.
    pub fn lapses(&self) -> Option<mpsc::UnboundedReceiver<(PresenceKey, TenantId)>> {
        let shared = self.shared.as_ref()?;
        shared
            .lapses
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .take()
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<PresenceKey, Held>> {
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

    /// Claims again, now, every key this instance holds (after Redis came
    /// back empty, say), rather than at the next renewal; returns once written.
    pub async fn restore(&self) {
        if let Some(shared) = &self.shared {
            let held: Vec<(PresenceKey, TenantId)> =
                self.lock().iter().map(|(k, h)| (*k, h.tenant)).collect();
            for (key, tenant) in held {
                let _ = shared.writes.send(Write::Changed(key, tenant));
            }
            self.flush().await;
        }
    }

    /// The agents with a live socket on this instance, with their tenants.
    pub fn local_agents(&self) -> Vec<(AgentId, TenantId)> {
        self.lock()
            .iter()
            .filter_map(|(k, h)| match k {
                PresenceKey::Agent(a) => Some((*a, h.tenant)),
                PresenceKey::Conversation(_) => None,
            })
            .collect()
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
    lapsed: mpsc::UnboundedSender<(PresenceKey, TenantId)>,
) {
    let Some((prefix, instance, ttl)) = presence.upgrade().and_then(|p| {
        p.shared
            .as_ref()
            .map(|s| (s.prefix.clone(), s.instance.clone(), s.ttl))
    }) else {
        return;
    };
    let ttl_ms = i64::try_from(ttl.as_millis()).unwrap_or(i64::MAX);
    let claims = format!("{prefix}:presence:claims");
    let take_lapsed = redis::Script::new(TAKE_LAPSED);
    let mut renew = tokio::time::interval(ttl / 3);
    renew.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    // Lapses are looked for more often than claims are renewed, so they are
    // reported within the ttl (plus this) of a crash, whatever the ttl.
    let mut janitor = tokio::time::interval((ttl / 3).min(Duration::from_secs(1)));
    janitor.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut batch = Vec::new();
    loop {
        tokio::select! {
            _ = janitor.tick() => {
                if let Err(e) =
                    report_lapsed(&mut conn, &take_lapsed, &claims, &prefix, &lapsed).await
                {
                    tracing::warn!(error = %e, "cannot look for lapsed presence claims");
                }
            }
            n = rx.recv_many(&mut batch, 1024) => {
                if n == 0 {
                    return;
                }
                let Some(presence) = presence.upgrade() else { return };
                let mut flushes = Vec::new();
                let mut keys = HashMap::new();
                for write in batch.drain(..) {
                    match write {
                        Write::Changed(key, tenant) => { keys.insert(key, tenant); }
                        Write::Flush(done) => flushes.push(done),
                    }
                }
                let now = now_ms();
                let mut pipe = redis::pipe();
                for (key, tenant) in keys {
                    let rkey = key.redis_key(&prefix);
                    if presence.held_here(&key) {
                        pipe.zadd(&rkey, &instance, now + ttl_ms).ignore();
                        pipe.pexpire(&rkey, ttl_ms).ignore();
                        pipe.cmd("ZADD").arg(&claims).arg("GT").arg(now + ttl_ms)
                            .arg(key.claim(tenant)).ignore();
                    } else {
                        pipe.cmd("EVAL").arg(RELEASE).arg(2).arg(&rkey)
                            .arg(&claims).arg(&instance).arg(now).arg(key.claim(tenant))
                            .ignore();
                    }
                }
                drop(presence);
                // A flush alone has nothing to write (and Redis answers an
                // empty pipeline with an error: a WARN at every shutdown).
                let written = if pipe.cmd_iter().next().is_none() {
                    Ok(())
                } else {
                    pipe.query_async::<()>(&mut conn).await
                };
                if let Err(e) = written {
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
                let held: Vec<(PresenceKey, TenantId)> =
                    presence.lock().iter().map(|(k, h)| (*k, h.tenant)).collect();
                drop(presence);
                let now = now_ms();
                for chunk in held.chunks(1000) {
                    let mut pipe = redis::pipe();
                    for (key, tenant) in chunk {
                        let rkey = key.redis_key(&prefix);
                        pipe.zadd(&rkey, &instance, now + ttl_ms).ignore();
                        // Drop the lapsed claims of instances that died.
                        pipe.zrembyscore(&rkey, "-inf", now).ignore();
                        pipe.pexpire(&rkey, ttl_ms).ignore();
                        pipe.cmd("ZADD").arg(&claims).arg("GT").arg(now + ttl_ms)
                            .arg(key.claim(*tenant)).ignore();
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

/// Takes this instance's share of the lapsed registry entries and reports
/// those whose key is offline now.
async fn report_lapsed(
    conn: &mut ConnectionManager,
    take_lapsed: &redis::Script,
    claims: &str,
    prefix: &str,
    lapsed: &mpsc::UnboundedSender<(PresenceKey, TenantId)>,
) -> redis::RedisResult<()> {
    let now = now_ms();
    let taken: Vec<String> = take_lapsed.key(claims).arg(now).invoke_async(conn).await?;
    let keys: Vec<(PresenceKey, TenantId)> = taken
        .iter()
        .filter_map(|raw| PresenceKey::parse_claim(raw))
        .collect();
    if keys.is_empty() {
        return Ok(());
    }
    let mut pipe = redis::pipe();
    for (key, _) in &keys {
        pipe.zcount(key.redis_key(prefix), now, "+inf");
    }
    let counts: Vec<u64> = pipe.query_async(conn).await?;
    for ((key, tenant), count) in keys.into_iter().zip(counts) {
        if count == 0 {
            let _ = lapsed.send((key, tenant));
        }
    }
    Ok(())
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
        let tenant = TenantId::new();
        let first = presence.enter(key, tenant);
        let second = presence.enter(key, tenant);
        assert!(first.first() && !second.first());
        assert_eq!(presence.online(&[key, other]).await, [true, false]);
        assert!(!first.leave(), "another session holds the key");
        assert_eq!(presence.online(&[key]).await, [true]);
        assert!(second.leave(), "the last one");
        assert_eq!(presence.online(&[key]).await, [false]);
        assert!(presence.lock().is_empty(), "no entry left behind");
    }
}
