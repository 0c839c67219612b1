//! Round robin (agent-api.md, "The queue"): a new visitor room of a channel
//! whose `assignment` is `round_robin` goes to the connected, `available`
//! agent with the fewest open visitor rooms (ties: the one who waited longest
//! since round robin last gave it a room), as long as that agent has fewer
//! than the channel's `max_open_per_agent`. With nobody free the room waits
//! in the queue, and is assigned as soon as an agent becomes available or
//! closes a room.
//!
//! Services [`RouterHandle::kick`] a tenant whenever one of those things
//! happens; one task per instance drains the kicked tenants' queues in
//! order, so an instance never races itself. A drain picks an agent for
//! every waiting room, then stores the picks in one transaction. Instances
//! race each other only in the store, whose conditional `assign_many` gives
//! a room at most once and keeps each agent under its limit. A tenant whose queue still holds rooms
//! after a drain is drained again every [`SWEEP`], in case the event that
//! frees an agent happened on another instance and was missed.
//!
//! Load counts an agent's open visitor rooms across the tenant's channels
//! (one agent, one attention span), compared with the limit of the room's
//! channel. Manual answers and transfers are not limited.

use std::collections::{HashMap, HashSet};
use std::sync::{Arc, Weak};
use std::time::Duration;

use tokio::sync::mpsc;

use super::rooms::RoomService;
use super::Parts;
use crate::domain::{
    time::now_ms, AgentId, Assignment, ChannelId, PresenceState, QueueAction, Routing, TenantId,
};
use crate::presence::PresenceKey;
use crate::store::{AgentLoad, Assigned, Pick, StoreResult};

/// How often a tenant with rooms still waiting is drained again.
const SWEEP: Duration = Duration::from_secs(2);

/// The oldest queued rooms one drain considers (the rest wait for the next).
const QUEUE_PAGE: u32 = 500;

/// Tells the instance's router which tenants may have assignments to make.
#[derive(Clone)]
pub struct RouterHandle {
    kicks: mpsc::UnboundedSender<TenantId>,
}

/// The receiving end, handed to [`start`].
pub struct RouterInbox(mpsc::UnboundedReceiver<TenantId>);

impl RouterHandle {
    pub fn new() -> (RouterHandle, RouterInbox) {
        let (kicks, inbox) = mpsc::unbounded_channel();
        (RouterHandle { kicks }, RouterInbox(inbox))
    }

    /// Something changed that may let a waiting room of `tenant` be assigned.
    pub fn kick(&self, tenant: TenantId) {
        let _ = self.kicks.send(tenant);
    }
}

/// Round robin: what a drain reads and writes, and whom it tells.
pub struct Router {
    channel_store: Arc<dyn crate::store::ChannelStore>,
    room_store: Arc<dyn crate::store::RoomStore>,
    agent_store: Arc<dyn crate::store::AgentStore>,
    presence: Arc<crate::presence::Presence>,
    metrics: Arc<crate::metrics::Metrics>,
    /// Kicks itself when another instance filled an agent up.
    handle: RouterHandle,
    /// Tells the visitor, the tenant and the assigned agent who joined.
    rooms: Arc<RoomService>,
}

impl Router {
    pub fn new(parts: &Parts, rooms: Arc<RoomService>) -> Router {
        Router {
            channel_store: parts.store.clone(),
            room_store: parts.store.clone(),
            agent_store: parts.store.clone(),
            presence: parts.presence.clone(),
            metrics: parts.metrics.clone(),
            handle: parts.router.clone(),
            rooms,
        }
    }
}

/// Runs the router until the services are dropped.
pub fn start(router: Weak<Router>, inbox: RouterInbox) {
    tokio::spawn(run(router, inbox.0));
}

async fn run(router: Weak<Router>, mut inbox: mpsc::UnboundedReceiver<TenantId>) {
    let mut waiting: HashSet<TenantId> = HashSet::new();
    let mut sweep = tokio::time::interval(SWEEP);
    sweep.set_missed_tick_behavior(tokio::time::MissedTickBehavior::Delay);
    let mut kicked = Vec::new();
    loop {
        let due: HashSet<TenantId> = tokio::select! {
            n = inbox.recv_many(&mut kicked, 1024) => {
                if n == 0 {
                    return;
                }
                kicked.drain(..).collect()
            }
            _ = sweep.tick() => waiting.iter().copied().collect(),
        };
        let Some(router) = router.upgrade() else {
            return;
        };
        for tenant in due {
            match drain(&router, tenant).await {
                Ok(false) => {
                    waiting.remove(&tenant);
                }
                Ok(true) => {
                    waiting.insert(tenant);
                }
                Err(err) => {
                    tracing::warn!(%err, %tenant, "round robin failed; retrying soon");
                    waiting.insert(tenant);
                }
            }
        }
    }
}

/// Assigns what can be assigned of the tenant's round robin queues, oldest
/// room first. Returns whether rooms are left waiting.
async fn drain(router: &Arc<Router>, tenant: TenantId) -> StoreResult<bool> {
    let routed: HashMap<ChannelId, Routing> = router
        .channel_store
        .channels(tenant)
        .await?
        .into_iter()
        .filter(|c| c.connected && c.routing.assignment == Assignment::RoundRobin)
        .map(|c| (c.id, c.routing))
        .collect();
    if routed.is_empty() {
        return Ok(false);
    }
    let queued: Vec<_> = router
        .room_store
        .queued_rooms(tenant, QUEUE_PAGE)
        .await?
        .into_iter()
        .filter_map(|(room, channel)| {
            let routing = routed.get(&channel)?;
            Some((room, routing.max_open_per_agent))
        })
        .collect();
    if queued.is_empty() {
        return Ok(false);
    }
    let mut loads = available_loads(router, tenant).await?;
    // Pick for every room first, counting each pick, then store them all
    // in one transaction (one commit for the whole drain).
    let mut picks = Vec::new();
    let mut left = false;
    for (room, max_open) in queued {
        let Some(i) = pick(&loads, max_open) else {
            left = true;
            continue;
        };
        loads[i].open += 1;
        picks.push(Pick {
            room,
            agent: loads[i].agent,
            max_open,
        });
    }
    let at = now_ms();
    let webhooks = router.rooms.webhooks();
    let then = webhooks
        .room_rows(
            tenant,
            &[crate::domain::webhook::EventType::ConversationAssigned],
        )
        .await;
    let outcomes = router
        .room_store
        .assign_many(tenant, &picks, at, then.clone())
        .await?;
    if then.is_some() && outcomes.iter().any(|o| matches!(o, Assigned::Won(_))) {
        webhooks.wake();
    }
    for (pick, outcome) in picks.iter().zip(outcomes) {
        match outcome {
            Assigned::Won(room) => {
                router.metrics.rooms_assigned.inc();
                router.metrics.queue_left("round_robin", &room, at);
                // Told off the router's path: the next drain need not wait
                // for the notices to be stored.
                tokio::spawn(announce(router.clone(), room, pick.agent));
            }
            // Answered meanwhile, or assigned by another instance.
            Assigned::Taken => {}
            // Another instance filled the agent up: drain again at once,
            // with the loads as they are now.
            Assigned::Full => {
                left = true;
                router.handle.kick(tenant);
            }
        }
    }
    Ok(left)
}

/// The loads of the agents round robin may choose now: enabled, `available`
/// and connected (an invisible or away agent gets nothing).
async fn available_loads(router: &Router, tenant: TenantId) -> StoreResult<Vec<AgentLoad>> {
    let chosen: Vec<AgentId> = router
        .agent_store
        .presences(tenant, &[])
        .await?
        .into_iter()
        .filter(|p| p.state == PresenceState::Available)
        .map(|p| p.agent_id)
        .collect();
    if chosen.is_empty() {
        return Ok(Vec::new());
    }
    let keys: Vec<PresenceKey> = chosen.iter().map(|id| PresenceKey::Agent(*id)).collect();
    let online = router.presence.online(&keys).await;
    let here: HashSet<AgentId> = chosen
        .into_iter()
        .zip(online)
        .filter_map(|(id, online)| online.then_some(id))
        .collect();
    if here.is_empty() {
        return Ok(Vec::new());
    }
    Ok(router
        .room_store
        .agent_loads(tenant)
        .await?
        .into_iter()
        .filter(|l| here.contains(&l.agent))
        .collect())
}

/// The agent with the fewest open rooms under `max_open`; ties go to the
/// one round robin served longest ago (never first), then by id so every
/// instance makes the same choice.
fn pick(loads: &[AgentLoad], max_open: u32) -> Option<usize> {
    loads
        .iter()
        .enumerate()
        .filter(|(_, l)| l.open < max_open)
        .min_by_key(|(_, l)| (l.open, l.last_assigned_ms.unwrap_or(i64::MIN), l.agent.0))
        .map(|(i, _)| i)
}

/// Tells the visitor who joined, the tenant that the room left the queue,
/// and the agent that it has a new room.
async fn announce(router: Arc<Router>, room: crate::domain::Room, agent: AgentId) {
    let room = &room;
    let name = match router.agent_store.agent(room.tenant_id, agent).await {
        Ok(Some(a)) => a.display_name,
        _ => "An agent".to_string(),
    };
    if let Err(err) = router
        .rooms
        .joined(room, &name, QueueAction::Assigned)
        .await
    {
        tracing::warn!(%err, "assigned, but cannot tell the visitor");
    }
    router.rooms.room_created(room, agent).await;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn load(n: u128, open: u32, last: Option<i64>) -> AgentLoad {
        AgentLoad {
            agent: AgentId(uuid::Uuid::from_u128(n)),
            open,
            last_assigned_ms: last,
        }
    }

    #[test]
    fn the_least_busy_agent_under_the_limit_wins() {
        let loads = [load(1, 3, None), load(2, 1, Some(5)), load(3, 2, None)];
        assert_eq!(pick(&loads, 5), Some(1));
        assert_eq!(pick(&loads, 1), None, "everyone at or over the limit");
    }

    #[test]
    fn ties_go_to_the_agent_served_longest_ago_then_never_served() {
        let loads = [load(1, 1, Some(20)), load(2, 1, Some(10)), load(3, 2, None)];
        assert_eq!(pick(&loads, 5), Some(1));
        let loads = [load(1, 1, Some(20)), load(2, 1, None)];
        assert_eq!(pick(&loads, 5), Some(1), "never served goes first");
        let loads = [load(9, 0, None), load(4, 0, None)];
        assert_eq!(
            pick(&loads, 5),
            Some(1),
            "then by id, the same on every instance"
        );
    }
}
