//! Caps on what one client may hold open at once on this instance: TCP
//! connections per client IP (`CHATGATE_MAX_CONNECTIONS_PER_IP`) and
//! visitor sockets per conversation (`CHATGATE_MAX_SESSIONS_PER_CONVERSATION`).
//!
//! A [`Counted`] keeps how many [`Slot`]s each key holds; a slot is taken
//! when the thing opens and given back when it is dropped, however the thing
//! ends, so a count never drifts. Counts are per instance: a deployment of
//! `n` instances lets one key hold up to `n` times the cap, which still
//! bounds what one client can make each instance hold.

use std::collections::HashMap;
use std::hash::Hash;
use std::net::IpAddr;
use std::sync::{Arc, Mutex};

use crate::domain::ConversationId;

/// How many slots each key holds, and the most one key may hold.
pub struct Counted<K: Hash + Eq + Clone> {
    max: usize,
    held: Mutex<HashMap<K, usize>>,
}

/// One held slot of a key; dropping it gives the slot back.
pub struct Slot<K: Hash + Eq + Clone> {
    counted: Arc<Counted<K>>,
    key: K,
}

impl<K: Hash + Eq + Clone> Counted<K> {
    pub fn new(max: usize) -> Arc<Counted<K>> {
        Arc::new(Counted {
            max,
            held: Mutex::new(HashMap::new()),
        })
    }

    /// A slot for `key`, or `None` when the key already holds the most.
    pub fn take(self: &Arc<Self>, key: K) -> Option<Slot<K>> {
        let mut held = self.lock();
        // A refused key adds no entry: only keys with something open take memory.
        if held.get(&key).copied().unwrap_or(0) >= self.max {
            return None;
        }
        *held.entry(key.clone()).or_insert(0) += 1;
        Some(Slot {
            counted: self.clone(),
            key,
        })
    }

    /// How many slots `key` holds now.
    pub fn held(&self, key: &K) -> usize {
        self.lock().get(key).copied().unwrap_or(0)
    }

    /// Never poisoned in practice (nothing panics under the lock); if it
    /// were, the counts are still whole numbers worth using.
    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<K, usize>> {
        self.held.lock().unwrap_or_else(|e| e.into_inner())
    }
}

impl<K: Hash + Eq + Clone> Drop for Slot<K> {
    fn drop(&mut self) {
        let mut held = self.counted.lock();
        if let Some(count) = held.get_mut(&self.key) {
            *count = count.saturating_sub(1);
            if *count == 0 {
                // Only keys with something open take memory.
                held.remove(&self.key);
            }
        }
    }
}

/// Open connections per client IP; connections from trusted proxies are
/// not counted (their clients are many, and are not known until a request
/// head names them).
pub struct ConnectionCap {
    counted: Arc<Counted<IpAddr>>,
    exempt: Vec<IpAddr>,
}

impl ConnectionCap {
    pub fn new(max_per_ip: usize, exempt: Vec<IpAddr>) -> ConnectionCap {
        ConnectionCap {
            counted: Counted::new(max_per_ip),
            exempt,
        }
    }

    /// Admits a connection from `peer`: `Some(None)` uncounted (a trusted
    /// proxy), `Some(Some(slot))` counted, `None` refused (at the cap).
    pub fn admit(&self, peer: IpAddr) -> Option<Option<Slot<IpAddr>>> {
        // An IPv4 client seen on a dual-stack socket counts as itself.
        let ip = peer.to_canonical();
        if self.exempt.contains(&peer) || self.exempt.contains(&ip) {
            return Some(None);
        }
        self.counted.take(ip).map(Some)
    }
}

/// Live visitor sockets per conversation.
pub type SessionCap = Counted<ConversationId>;

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_key_holds_at_most_the_cap_and_dropping_a_slot_frees_it() {
        let counted = Counted::<u8>::new(2);
        let a = counted.take(1).expect("first");
        let _b = counted.take(1).expect("second");
        assert!(counted.take(1).is_none(), "third is over the cap");
        assert!(counted.take(2).is_some(), "another key has its own count");
        drop(a);
        assert_eq!(counted.held(&1), 1);
        assert!(counted.take(1).is_some());
    }

    #[test]
    fn keys_with_nothing_open_are_forgotten() {
        let counted = Counted::<u8>::new(1);
        drop(counted.take(7));
        assert!(counted.lock().is_empty());
        let none = Counted::<u8>::new(0);
        assert!(none.take(7).is_none());
        assert!(
            none.lock().is_empty(),
            "a refused key leaves nothing behind"
        );
    }

    #[test]
    fn trusted_proxies_are_not_counted_and_mapped_addresses_count_as_ipv4() {
        let proxy: IpAddr = "10.0.0.1".parse().unwrap();
        let cap = ConnectionCap::new(1, vec![proxy]);
        let _p1 = cap.admit(proxy).expect("proxy admitted");
        let _p2 = cap.admit(proxy).expect("proxy admitted again");
        let client: IpAddr = "192.0.2.7".parse().unwrap();
        let mapped: IpAddr = "::ffff:192.0.2.7".parse().unwrap();
        let _held = cap.admit(client).expect("first").expect("counted");
        assert!(cap.admit(mapped).is_none(), "the same client over IPv6");
    }
}
