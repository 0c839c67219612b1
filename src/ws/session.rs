//! The one socket loop, shared by the visitor STOMP socket and the agent
//! event socket: it reads the socket (with a read deadline when the
//! protocol sets one), takes events from the session's bounded hub queue
//! (a closed queue means the hub dropped a slow consumer), completes the
//! protocol's queued work in order, sends heart-beats, runs periodic checks,
//! and flushes once per turn, so a burst of frames leaves in one write.
//! What the bytes mean, and how a session ends, is the [`Protocol`]'s.

use std::future::Future;
use std::pin::Pin;
use std::sync::Arc;
use std::time::Duration;

use futures_util::stream::{FuturesOrdered, SplitStream};
use futures_util::StreamExt;
use tokio::time::{Instant, Interval};
use tokio_tungstenite::tungstenite::Message as WsMessage;
use tokio_util::sync::CancellationToken;

use super::upgrade::WebSocket;
use crate::hub::{Membership, Outbound};

/// Most queued events handled before one flush, so reading the socket is
/// never starved by a busy topic.
pub const MAX_EVENTS_PER_FLUSH: usize = 64;

/// Heart-beat intervals: what the protocol agreed with its client.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub struct Beats {
    /// Send a heart-beat this often.
    pub send_every: Option<Duration>,
    /// The client is disconnected after this long without a byte from it.
    pub read_timeout: Option<Duration>,
}

/// Work a protocol queued; completed in order by the loop.
pub type Work<W> = Pin<Box<dyn Future<Output = W> + Send>>;

/// Why the loop ended.
pub enum Ended<E> {
    /// The client closed the socket or the connection broke.
    Gone,
    /// The server is shutting down.
    Shutdown,
    /// The hub dropped this session: its queue was full.
    SlowConsumer,
    /// Nothing arrived within the read timeout.
    ReadTimeout,
    /// The protocol's absolute deadline passed (see [`Protocol::deadline`]).
    Deadline,
    /// The protocol ended it.
    Protocol(E),
}

/// What the loop asks of a protocol. Each session owns its socket's sink,
/// its hub membership and its queue of work; the loop borrows the latter
/// two while it waits.
pub trait Protocol: Send {
    /// The protocol's own reasons to end a session.
    type End: Send;
    /// What its queued work produces.
    type Work: Send + 'static;

    /// The hub membership (once joined) and the queue of work.
    fn parts(
        &mut self,
    ) -> (
        &mut Option<Membership>,
        &mut FuturesOrdered<Work<Self::Work>>,
    );

    /// The agreed heart-beats; read after every message from the client.
    fn beats(&self) -> Beats;

    /// A moment by which the session ends whatever arrives (a handshake
    /// that must be complete by then); read after every message from the
    /// client. Unlike the read timeout, traffic does not move it.
    fn deadline(&self) -> Option<Instant> {
        None
    }

    /// Data of one text or binary message from the client.
    fn on_data(&mut self, data: &[u8]) -> impl Future<Output = Result<(), Self::End>> + Send;

    /// One event from the hub.
    fn on_event(
        &mut self,
        event: Arc<Outbound>,
    ) -> impl Future<Output = Result<(), Self::End>> + Send;

    /// The oldest queued work finished.
    fn on_work(&mut self, done: Self::Work) -> impl Future<Output = Result<(), Self::End>> + Send;

    /// A moment at which `on_wake` runs (a schedule's next change); read
    /// after every turn of the loop.
    fn wake_at(&self) -> Option<Instant> {
        None
    }

    /// The moment of `wake_at` came.
    fn on_wake(&mut self) -> impl Future<Output = Result<(), Self::End>> + Send {
        async { Ok(()) }
    }

    /// How often `on_tick` runs, if at all.
    fn tick_every(&self) -> Option<Duration> {
        None
    }

    /// A periodic check (an agent's token still valid, say).
    fn on_tick(&mut self) -> impl Future<Output = Result<(), Self::End>> + Send {
        async { Ok(()) }
    }

    /// Sends one heart-beat (not flushed); false when the socket is gone.
    fn heartbeat(&mut self) -> impl Future<Output = bool> + Send;

    /// Writes what was queued on the sink; false when the socket is gone.
    fn flush(&mut self) -> impl Future<Output = bool> + Send;
}

/// Runs `protocol` on `stream` until the client leaves, the server shuts
/// down, the session is too slow, or the protocol ends it; returns why.
pub async fn run<P: Protocol>(
    protocol: &mut P,
    stream: &mut SplitStream<WebSocket>,
    shutdown: &CancellationToken,
) -> Ended<P::End> {
    let mut beats = protocol.beats();
    let read_deadline = tokio::time::sleep(beats.read_timeout.unwrap_or(Duration::MAX / 4));
    let mut read_deadline = std::pin::pin!(read_deadline);
    let mut heartbeat = arm(beats.send_every);
    let mut tick = arm(protocol.tick_every());
    let mut deadline = protocol.deadline();
    let hard_deadline = tokio::time::sleep_until(deadline.unwrap_or_else(far_future));
    let mut hard_deadline = std::pin::pin!(hard_deadline);
    let mut wake = protocol.wake_at();
    let wake_sleep = tokio::time::sleep_until(wake.unwrap_or_else(far_future));
    let mut wake_sleep = std::pin::pin!(wake_sleep);
    loop {
        let wanted = protocol.wake_at();
        if wanted != wake {
            wake = wanted;
            if let Some(at) = wake {
                wake_sleep.as_mut().reset(at);
            }
        }
        let (membership, work) = protocol.parts();
        tokio::select! {
            _ = shutdown.cancelled() => return Ended::Shutdown,
            incoming = stream.next() => {
                let Some(Ok(msg)) = incoming else { return Ended::Gone };
                let data: &[u8] = match &msg {
                    WsMessage::Text(text) => text.as_bytes(),
                    WsMessage::Binary(data) => data,
                    WsMessage::Close(_) => return Ended::Gone,
                    // A ping: tungstenite queued the pong; the flush sends it.
                    _ => &[],
                };
                reset(&mut read_deadline, beats.read_timeout);
                // Every handler is boxed: the deep futures of message handling
                // (storing, publishing) then take memory only while they run,
                // not in every idle session's task.
                if !data.is_empty() {
                    if let Err(end) = Box::pin(protocol.on_data(data)).await {
                        return Ended::Protocol(end);
                    }
                }
                if !protocol.flush().await {
                    return Ended::Gone;
                }
                let agreed = protocol.beats();
                if agreed != beats {
                    if agreed.send_every != beats.send_every {
                        heartbeat = arm(agreed.send_every);
                    }
                    beats = agreed;
                }
                reset(&mut read_deadline, beats.read_timeout);
                let now_due = protocol.deadline();
                if now_due != deadline {
                    deadline = now_due;
                    if let Some(at) = deadline {
                        hard_deadline.as_mut().reset(at);
                    }
                }
            }
            first = next_event(membership) => {
                let Some(first) = first else { return Ended::SlowConsumer };
                // One boxed future for the whole burst (see above).
                if let Err(end) = Box::pin(deliver_burst(protocol, first)).await {
                    return Ended::Protocol(end);
                }
                if !protocol.flush().await {
                    return Ended::Gone;
                }
            }
            Some(done) = work.next(), if !work.is_empty() => {
                if let Err(end) = Box::pin(protocol.on_work(done)).await {
                    return Ended::Protocol(end);
                }
                if !protocol.flush().await {
                    return Ended::Gone;
                }
            }
            _ = tick_of(&mut heartbeat) => {
                if !protocol.heartbeat().await || !protocol.flush().await {
                    return Ended::Gone;
                }
            }
            _ = tick_of(&mut tick) => {
                if let Err(end) = Box::pin(protocol.on_tick()).await {
                    return Ended::Protocol(end);
                }
                if !protocol.flush().await {
                    return Ended::Gone;
                }
            }
            _ = &mut wake_sleep, if wake.is_some() => {
                if let Err(end) = Box::pin(protocol.on_wake()).await {
                    return Ended::Protocol(end);
                }
                if !protocol.flush().await {
                    return Ended::Gone;
                }
                // Asleep until the protocol names a new moment.
                wake_sleep.as_mut().reset(far_future());
                wake = None;
            }
            _ = &mut read_deadline, if beats.read_timeout.is_some() => return Ended::ReadTimeout,
            _ = &mut hard_deadline, if deadline.is_some() => return Ended::Deadline,
        }
    }
}

/// Hands `first` and whatever else is already queued (up to a bound, so
/// reading the socket is never starved) to the protocol, to be flushed together.
async fn deliver_burst<P: Protocol>(protocol: &mut P, first: Arc<Outbound>) -> Result<(), P::End> {
    protocol.on_event(first).await?;
    for _ in 0..MAX_EVENTS_PER_FLUSH {
        let (membership, _) = protocol.parts();
        let Some(next) = membership.as_mut().and_then(|m| m.queue.try_recv().ok()) else {
            break;
        };
        protocol.on_event(next).await?;
    }
    Ok(())
}

/// A moment no session reaches (`Instant` has no maximum).
fn far_future() -> Instant {
    Instant::now() + Duration::from_secs(100 * 365 * 86_400)
}

/// An interval whose first tick is one period from now, or none.
fn arm(every: Option<Duration>) -> Option<Interval> {
    every.map(|every| tokio::time::interval_at(Instant::now() + every, every))
}

/// The next tick, or never.
async fn tick_of(interval: &mut Option<Interval>) {
    match interval {
        Some(interval) => {
            interval.tick().await;
        }
        None => std::future::pending().await,
    }
}

fn reset(deadline: &mut Pin<&mut tokio::time::Sleep>, timeout: Option<Duration>) {
    if let Some(t) = timeout {
        deadline.as_mut().reset(Instant::now() + t);
    }
}

/// The next event for this session; pending forever before it joins the hub.
async fn next_event(membership: &mut Option<Membership>) -> Option<Arc<Outbound>> {
    match membership {
        Some(m) => m.queue.recv().await,
        None => std::future::pending().await,
    }
}
