//! This instance's live sessions, by topic: visitor sessions on their
//! conversation's topic and their channel's (one queue for both), agent
//! sessions on their tenant's topic (each event
//! names the agents it is for, so delivery needs no database read).
//!
//! The hub subscribes the bus to a topic when the first local session of it
//! arrives and unsubscribes after the last one leaves; one task applies those
//! changes in order, checking the current membership each time, so a session
//! arriving while the last one leaves never ends up unsubscribed.
//!
//! Each event is turned into its wire body **once** per format (the visitor
//! STOMP body, the agent websocketd frame), however many sessions receive it, and handed to each session's bounded queue. A session whose
//! queue is full is dropped from the hub (its queue closes, and it
//! disconnects as a slow consumer; it recovers with `since-seq`), so a stuck
//! client can never grow the server's memory.

use std::collections::{HashMap, HashSet};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};

use bytes::Bytes;
use tokio::sync::{mpsc, oneshot};

use crate::bus::{Bus, BusError, BusSink, Topic};
use crate::domain::event::{Agents, VisitorQueue};
use crate::domain::{AgentId, Published, TenantId};
use crate::files::Signer;
use crate::metrics::Metrics;
use crate::wire::wazo::ServerId;

/// What a session's queue carries.
#[derive(Debug)]
pub enum Outbound {
    /// One event as every session of the topic receives it.
    Event {
        event: Arc<Published>,
        /// The visitor body, encoded once; `None` when visitors don't see this event.
        visitor: Option<(VisitorQueue, Bytes)>,
        /// The agent frame and the event's name, encoded once; `None` for visitor sessions.
        agent: Option<(Arc<str>, Bytes)>,
    },
    /// The bus may have lost events: catch up from the store.
    Resync,
}

impl Outbound {
    /// The event as visitor sessions receive it.
    pub fn for_visitors(event: Arc<Published>, signer: &Signer) -> Outbound {
        let visitor = crate::wire::visitor::event_body(&event.event, signer)
            .map(|(q, body)| (q, Bytes::from(body)));
        Outbound::Event {
            event,
            visitor,
            agent: None,
        }
    }

    /// The event as agent sessions receive it.
    pub fn for_agents(event: Arc<Published>, server: ServerId, signer: &Signer) -> Outbound {
        let agent =
            crate::wire::wazo::event_frame(&event, crate::wire::wazo::Cx { server, signer })
                .map(|(name, body)| (Arc::from(name), Bytes::from(body)));
        Outbound::Event {
            event,
            visitor: None,
            agent,
        }
    }
}

struct Member {
    id: u64,
    queue: mpsc::Sender<Arc<Outbound>>,
    /// Set for agent sessions: they receive only events naming them.
    agent: Option<AgentId>,
    /// The other topic this session is in (a visitor session is on its
    /// conversation's topic and its channel's): a slow consumer leaves both.
    also: Option<Topic>,
}

/// A session's place in the hub; leaving the hub happens on drop.
pub struct Membership {
    hub: Arc<Hub>,
    topics: Vec<Topic>,
    id: u64,
    pub queue: mpsc::Receiver<Arc<Outbound>>,
}

impl Drop for Membership {
    fn drop(&mut self) {
        self.hub.leave(&self.topics, self.id);
    }
}

type Reconcile = (Topic, Option<oneshot::Sender<Result<(), BusError>>>);

pub struct Hub {
    members: Mutex<HashMap<Topic, Vec<Member>>>,
    bus: OnceLock<Arc<dyn Bus>>,
    reconcile: mpsc::UnboundedSender<Reconcile>,
    queue_capacity: usize,
    next_id: AtomicU64,
    sessions: AtomicU64,
    metrics: Arc<Metrics>,
    server: ServerId,
    /// Signs the attachments' URLs in the bodies the hub encodes.
    signer: Signer,
    /// Counts the bus's reconnections, for whoever must redo what an
    /// outage lost (presence claims, availability answers).
    resyncs: tokio::sync::watch::Sender<u64>,
}

impl Hub {
    /// The signer of the attachments' URLs in the bodies built for clients.
    pub fn signer(&self) -> &Signer {
        &self.signer
    }

    /// Changes each time the bus reconnected after losing events.
    pub fn resyncs(&self) -> tokio::sync::watch::Receiver<u64> {
        self.resyncs.subscribe()
    }

    /// Creates the hub; `attach_bus` must follow before sessions join.
    pub fn new(
        queue_capacity: usize,
        metrics: Arc<Metrics>,
        server: ServerId,
        signer: Signer,
    ) -> Arc<Hub> {
        let (tx, rx) = mpsc::unbounded_channel();
        let hub = Arc::new(Hub {
            members: Mutex::new(HashMap::new()),
            bus: OnceLock::new(),
            reconcile: tx,
            queue_capacity,
            next_id: AtomicU64::new(1),
            sessions: AtomicU64::new(0),
            metrics,
            server,
            signer,
            resyncs: tokio::sync::watch::Sender::new(0),
        });
        tokio::spawn(reconcile_loop(Arc::downgrade(&hub), rx));
        hub
    }

    pub fn attach_bus(&self, bus: Arc<dyn Bus>) {
        let _ = self.bus.set(bus);
    }

    pub fn bus(&self) -> &Arc<dyn Bus> {
        self.bus.get().expect("hub used before attach_bus")
    }

    /// Live sessions on this instance.
    pub fn session_count(&self) -> u64 {
        self.sessions.load(Ordering::Relaxed)
    }

    /// Joins `topic`; returns once the bus delivers the topic's events here,
    /// so a store read made after this returns cannot miss a later event.
    pub async fn join(self: &Arc<Self>, topic: Topic) -> Result<Membership, BusError> {
        self.join_as(vec![topic], None).await
    }

    /// Joins a visitor session: its conversation's topic and its channel's
    /// (events for every visitor of the channel), with one queue.
    pub async fn join_visitor(
        self: &Arc<Self>,
        conversation: Topic,
        channel: Topic,
    ) -> Result<Membership, BusError> {
        self.join_as(vec![conversation, channel], None).await
    }

    /// Joins as an agent's session: its tenant's topic, receiving the events
    /// whose audience names this agent.
    pub async fn join_agent(
        self: &Arc<Self>,
        tenant: TenantId,
        agent: AgentId,
    ) -> Result<Membership, BusError> {
        self.join_as(vec![Topic::tenant(tenant)], Some(agent)).await
    }

    /// One session on one or two topics (see `Member::also`), one queue.
    async fn join_as(
        self: &Arc<Self>,
        topics: Vec<Topic>,
        agent: Option<AgentId>,
    ) -> Result<Membership, BusError> {
        let id = self.next_id.fetch_add(1, Ordering::Relaxed);
        let (tx, rx) = mpsc::channel(self.queue_capacity);
        let mut firsts = Vec::new();
        {
            let mut members = self.lock();
            for (i, topic) in topics.iter().enumerate() {
                let list = members.entry(topic.clone()).or_default();
                list.push(Member {
                    id,
                    queue: tx.clone(),
                    agent,
                    also: topics
                        .get(1 - i.min(1))
                        .filter(|_| topics.len() > 1)
                        .cloned(),
                });
                if list.len() == 1 {
                    firsts.push(topic.clone());
                }
            }
        }
        self.sessions.fetch_add(1, Ordering::Relaxed);
        let membership = Membership {
            hub: self.clone(),
            topics,
            id,
            queue: rx,
        };
        for topic in firsts {
            let (done_tx, done_rx) = oneshot::channel();
            let _ = self.reconcile.send((topic, Some(done_tx)));
            done_rx
                .await
                .unwrap_or_else(|_| Err(BusError("hub stopped".into())))?;
        }
        Ok(membership)
    }

    fn leave(&self, topics: &[Topic], id: u64) {
        let mut emptied = Vec::new();
        let mut removed = false;
        {
            let mut members = self.lock();
            for topic in topics {
                if remove_member(&mut members, topic, id) {
                    removed = true;
                    if !members.contains_key(topic) {
                        emptied.push(topic.clone());
                    }
                }
            }
        }
        if removed {
            self.sessions.fetch_sub(1, Ordering::Relaxed);
        }
        for topic in emptied {
            let _ = self.reconcile.send((topic, None));
        }
    }

    /// Publishes through the bus (which delivers back to the hubs of every
    /// instance): on the visitor room's topic for its visitor sessions, and on
    /// the tenant's topic for its agents; all of them at once
    /// (`Bus::publish_all`: with Redis, one round trip).
    pub async fn publish(&self, event: Published) -> Result<(), BusError> {
        let event = Arc::new(event);
        let topics: Vec<Topic> = [
            event.visitor_room.map(Topic::conversation),
            event.event.channel_topic().map(Topic::channel),
            (event.agents != Agents::Nobody).then(|| Topic::tenant(event.tenant_id)),
        ]
        .into_iter()
        .flatten()
        .collect();
        let result = self.bus().publish_all(&topics, event).await;
        let counter = match &result {
            Ok(()) => &self.metrics.bus_published,
            Err(_) => &self.metrics.bus_publish_failures,
        };
        counter.inc_by(topics.len() as u64);
        result
    }

    fn lock(&self) -> std::sync::MutexGuard<'_, HashMap<Topic, Vec<Member>>> {
        // A panic while holding this lock cannot leave the map inconsistent
        // (every mutation is a single push/retain), so poisoning is ignored.
        self.members.lock().unwrap_or_else(|e| e.into_inner())
    }

    fn has_members(&self, topic: &Topic) -> bool {
        self.lock().contains_key(topic)
    }
}

impl BusSink for Hub {
    fn resync(&self) {
        self.resyncs.send_modify(|n| *n += 1);
        let resync = Arc::new(Outbound::Resync);
        let mut members = self.lock();
        for list in members.values_mut() {
            // A full queue will notice the gap anyway, from the events it holds.
            for m in list.iter() {
                let _ = m.queue.try_send(resync.clone());
            }
        }
    }

    fn deliver(&self, topic: &Topic, event: Arc<Published>) {
        // Counted only for topics with local sessions: what Redis delivers
        // (subscribed topics only), the local bus counts the same way.
        if !self.has_members(topic) {
            return;
        }
        self.metrics.bus_received.inc();
        // Encode outside the lock: other topics' deliveries and joins never
        // wait on JSON serialisation.
        let for_agents = topic.is_tenant();
        let outbound = Arc::new(if for_agents {
            Outbound::for_agents(event.clone(), self.server, &self.signer)
        } else {
            Outbound::for_visitors(event.clone(), &self.signer)
        });
        let mut members = self.lock();
        let Some(list) = members.get_mut(topic) else {
            return;
        };
        // A full or closed queue drops the member (from its other topic
        // too): its receiver then sees the queue closed and the session
        // disconnects as a slow consumer.
        let mut dropped: Vec<(u64, Option<Topic>)> = Vec::new();
        list.retain(|m| {
            let keep = match m.agent {
                Some(agent) if !event.reaches_agent(agent) => !m.queue.is_closed(),
                _ => m.queue.try_send(outbound.clone()).is_ok(),
            };
            if !keep {
                dropped.push((m.id, m.also.clone()));
            }
            keep
        });
        if dropped.is_empty() {
            return;
        }
        self.sessions
            .fetch_sub(dropped.len() as u64, Ordering::Relaxed);
        tracing::info!(%topic, dropped = dropped.len(), "disconnecting slow consumers");
        let mut emptied = Vec::new();
        if list.is_empty() {
            members.remove(topic);
            emptied.push(topic.clone());
        }
        for (id, also) in dropped {
            if let Some(other) = also {
                if remove_member(&mut members, &other, id) && !members.contains_key(&other) {
                    emptied.push(other);
                }
            }
        }
        drop(members);
        for topic in emptied {
            let _ = self.reconcile.send((topic, None));
        }
    }
}

/// Removes session `id` from `topic`'s list (and the list once empty);
/// whether it was there.
fn remove_member(members: &mut HashMap<Topic, Vec<Member>>, topic: &Topic, id: u64) -> bool {
    let Some(list) = members.get_mut(topic) else {
        return false;
    };
    let before = list.len();
    list.retain(|m| m.id != id);
    let removed = list.len() < before;
    if list.is_empty() {
        members.remove(topic);
    }
    removed
}

/// Applies subscription changes in order against the current membership.
async fn reconcile_loop(hub: std::sync::Weak<Hub>, mut rx: mpsc::UnboundedReceiver<Reconcile>) {
    let mut subscribed: HashSet<Topic> = HashSet::new();
    while let Some((topic, done)) = rx.recv().await {
        let Some(hub) = hub.upgrade() else { break };
        let Some(bus) = hub.bus.get().cloned() else {
            if let Some(done) = done {
                let _ = done.send(Err(BusError("no bus attached".into())));
            }
            continue;
        };
        let wanted = hub.has_members(&topic);
        let result = if wanted && !subscribed.contains(&topic) {
            let r = bus.subscribe(&topic).await;
            if r.is_ok() {
                subscribed.insert(topic.clone());
            }
            r
        } else if !wanted && subscribed.remove(&topic) {
            bus.unsubscribe(&topic).await
        } else {
            Ok(())
        };
        if let Err(err) = &result {
            tracing::warn!(%topic, %err, "bus subscription change failed");
        }
        if let Some(done) = done {
            let _ = done.send(result);
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::bus::LocalBus;
    use crate::domain::{ChannelId, ConversationId, Event, SenderKind};

    fn typing(conversation: ConversationId) -> Published {
        Published {
            event: Event::Typing {
                conversation_id: conversation,
                channel_id: Some(ChannelId::new()),
                typing: true,
                sender_kind: SenderKind::Agent,
                sender_id: uuid::Uuid::new_v4(),
                sender_name: None,
            },
            tenant_id: TenantId::new(),
            visitor_room: Some(conversation),
            agents: Agents::Nobody,
        }
    }

    fn hub(capacity: usize) -> Arc<Hub> {
        let hub = Hub::new(
            capacity,
            Arc::new(Metrics::new()),
            ServerId(uuid::Uuid::new_v4()),
            crate::files::Signer::new(b"test", 3600),
        );
        let sink: Arc<dyn BusSink> = hub.clone();
        hub.attach_bus(Arc::new(LocalBus::new(Arc::downgrade(&sink))));
        hub
    }

    #[tokio::test]
    async fn a_full_queue_disconnects_only_the_slow_session() {
        let hub = hub(2);
        let conversation = ConversationId::new();
        let topic = Topic::conversation(conversation);
        let mut slow = hub.join(topic.clone()).await.unwrap();
        let mut fast = hub.join(topic.clone()).await.unwrap();
        assert_eq!(hub.session_count(), 2);
        for _ in 0..2 {
            hub.publish(typing(conversation)).await.unwrap();
            assert!(fast.queue.recv().await.is_some());
        }
        // The third event finds the slow session's queue full.
        hub.publish(typing(conversation)).await.unwrap();
        assert!(fast.queue.recv().await.is_some());
        assert_eq!(hub.session_count(), 1);
        assert!(slow.queue.recv().await.is_some());
        assert!(slow.queue.recv().await.is_some());
        assert!(
            slow.queue.recv().await.is_none(),
            "queue closed: slow consumer"
        );
    }

    #[tokio::test]
    async fn events_reach_only_their_topic_and_encode_once() {
        let hub = hub(8);
        let a = ConversationId::new();
        let mut in_a = hub.join(Topic::conversation(a)).await.unwrap();
        let mut also_a = hub.join(Topic::conversation(a)).await.unwrap();
        let mut in_b = hub
            .join(Topic::conversation(ConversationId::new()))
            .await
            .unwrap();
        hub.publish(typing(a)).await.unwrap();
        let first = in_a.queue.recv().await.unwrap();
        let second = also_a.queue.recv().await.unwrap();
        assert!(
            Arc::ptr_eq(&first, &second),
            "one encoding shared by every session"
        );
        assert!(in_b.queue.try_recv().is_err());
    }

    #[tokio::test]
    async fn agent_sessions_receive_only_events_naming_them() {
        let hub = hub(8);
        let tenant = TenantId::new();
        let (ana, bob) = (AgentId::new(), AgentId::new());
        let mut ana_session = hub.join_agent(tenant, ana).await.unwrap();
        let mut bob_session = hub.join_agent(tenant, bob).await.unwrap();
        let mut other_tenant = hub.join_agent(TenantId::new(), ana).await.unwrap();
        let event = |agents| Published {
            event: Event::VisitorConnection {
                room: crate::domain::RoomId::new(),
                connected: true,
            },
            tenant_id: tenant,
            visitor_room: None,
            agents,
        };
        hub.publish(event(Agents::Only { ids: vec![ana] }))
            .await
            .unwrap();
        hub.publish(event(Agents::Tenant)).await.unwrap();
        for _ in 0..2 {
            assert!(ana_session.queue.recv().await.is_some());
        }
        let only = bob_session.queue.recv().await.unwrap();
        match &*only {
            Outbound::Event { event, agent, .. } => {
                assert_eq!(event.agents, Agents::Tenant);
                assert!(agent.is_some(), "agent frame encoded");
            }
            Outbound::Resync => panic!("unexpected resync"),
        }
        assert!(bob_session.queue.try_recv().is_err());
        assert!(other_tenant.queue.try_recv().is_err());
    }

    #[tokio::test]
    async fn leaving_removes_the_session() {
        let hub = hub(8);
        let topic = Topic::conversation(ConversationId::new());
        let membership = hub.join(topic.clone()).await.unwrap();
        drop(membership);
        assert_eq!(hub.session_count(), 0);
        assert!(!hub.has_members(&topic));
    }
}
