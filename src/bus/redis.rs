//! The Redis bus: PUBLISH on one multiplexed connection (reconnecting on its
//! own), and one SUBSCRIBE connection per instance owned by a supervisor
//! task that keeps the set of wanted topics.
//!
//! When Redis goes away the instance keeps serving its own sessions: a
//! publish that cannot go through Redis, or that Redis could not echo back
//! to this instance because the subscriber is down, is delivered locally.
//! The supervisor reconnects with backoff, resubscribes every wanted topic,
//! and then asks the hub to resync: each session reads what it missed from
//! the store by `seq`. The bus stays at-most-once; nothing acknowledged is lost.
//!
//! Channel names: `<prefix>:<topic>`, e.g. `chatgate:conv.<uuid>` with the
//! default prefix (`CHATGATE_REDIS_PREFIX`, so deployments sharing one Redis
//! never hear each other); payloads are the JSON of [`Published`], complete
//! enough to deliver without a store read.

use std::collections::HashSet;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Weak};
use std::time::Duration;

use async_trait::async_trait;
use futures_util::StreamExt;
use redis::aio::{ConnectionManager, ConnectionManagerConfig};
use tokio::sync::{mpsc, oneshot};

use super::{Bus, BusError, BusSink, Topic};
use crate::domain::Published;

const MIN_BACKOFF: Duration = Duration::from_millis(100);
const MAX_BACKOFF: Duration = Duration::from_secs(5);

enum Control {
    Subscribe(Topic, oneshot::Sender<Result<(), BusError>>),
    Unsubscribe(Topic),
}

pub struct RedisBus {
    publisher: ConnectionManager,
    channels: Channels,
    control: mpsc::UnboundedSender<Control>,
    /// True while the subscriber connection is up and subscribed.
    subscribed: Arc<AtomicBool>,
    sink: Weak<dyn BusSink>,
}

/// Names the Redis channel of a topic, and the topic of a channel.
#[derive(Clone)]
struct Channels {
    /// The deployment's prefix with its `:`.
    prefix: Arc<str>,
}

impl Channels {
    fn new(prefix: &str) -> Channels {
        Channels {
            prefix: format!("{prefix}:").into(),
        }
    }

    fn of(&self, topic: &Topic) -> String {
        format!("{}{topic}", self.prefix)
    }

    /// The topic of a channel of this deployment; `None` for any other.
    fn topic<'a>(&self, channel: &'a str) -> Option<&'a str> {
        channel.strip_prefix(&*self.prefix)
    }
}

fn err(e: impl std::fmt::Display) -> BusError {
    BusError(e.to_string())
}

impl RedisBus {
    /// Connects the publisher (failing fast if Redis is unreachable at
    /// start) and starts the subscriber supervisor. Every channel name starts
    /// with `prefix` and a `:`.
    pub async fn connect(
        url: &str,
        prefix: &str,
        sink: Weak<dyn BusSink>,
    ) -> Result<RedisBus, BusError> {
        let channels = Channels::new(prefix);
        let client = client(url).map_err(err)?;
        let config = ConnectionManagerConfig::new()
            .set_connection_timeout(Some(Duration::from_secs(2)))
            .set_response_timeout(Some(Duration::from_secs(2)))
            .set_number_of_retries(1)
            .set_max_delay(MAX_BACKOFF);
        let publisher = ConnectionManager::new_with_config(client.clone(), config)
            .await
            .map_err(err)?;
        let (control, rx) = mpsc::unbounded_channel();
        let subscribed = Arc::new(AtomicBool::new(false));
        tokio::spawn(supervise(
            client,
            channels.clone(),
            rx,
            subscribed.clone(),
            sink.clone(),
        ));
        Ok(RedisBus {
            publisher,
            channels,
            control,
            subscribed,
            sink,
        })
    }

    fn deliver_locally(&self, topic: &Topic, event: Arc<Published>) {
        if let Some(sink) = self.sink.upgrade() {
            sink.deliver(topic, event);
        }
    }
}

#[async_trait]
impl Bus for RedisBus {
    async fn publish(&self, topic: &Topic, event: Arc<Published>) -> Result<(), BusError> {
        let payload = serde_json::to_vec(&*event).map_err(err)?;
        let mut conn = self.publisher.clone();
        let result: redis::RedisResult<i64> = redis::cmd("PUBLISH")
            .arg(self.channels.of(topic))
            .arg(payload)
            .query_async(&mut conn)
            .await;
        match result {
            Ok(_) => {
                if !self.subscribed.load(Ordering::Acquire) {
                    // Redis took it, but cannot hand it back to us right now.
                    self.deliver_locally(topic, event);
                }
                Ok(())
            }
            Err(e) => {
                self.deliver_locally(topic, event);
                Err(err(e))
            }
        }
    }

    /// One pipeline: the payload serialized once, every `PUBLISH` in one
    /// write and one round trip (the agents' copy of a message no longer
    /// waits for the visitor's to come back first).
    async fn publish_all(&self, topics: &[Topic], event: Arc<Published>) -> Result<(), BusError> {
        if let [topic] = topics {
            return self.publish(topic, event).await;
        }
        if topics.is_empty() {
            return Ok(());
        }
        let payload = serde_json::to_vec(&*event).map_err(err)?;
        let mut pipe = redis::pipe();
        for topic in topics {
            pipe.cmd("PUBLISH")
                .arg(self.channels.of(topic))
                .arg(&payload);
        }
        let mut conn = self.publisher.clone();
        let result: redis::RedisResult<Vec<i64>> = pipe.query_async(&mut conn).await;
        let delivered_here = result.is_ok() && self.subscribed.load(Ordering::Acquire);
        if !delivered_here {
            // Redis did not take them, or cannot hand them back to us now.
            for topic in topics {
                self.deliver_locally(topic, event.clone());
            }
        }
        result.map(|_| ()).map_err(err)
    }

    async fn subscribe(&self, topic: &Topic) -> Result<(), BusError> {
        let (done, wait) = oneshot::channel();
        self.control
            .send(Control::Subscribe(topic.clone(), done))
            .map_err(|_| BusError("bus stopped".into()))?;
        wait.await.map_err(|_| BusError("bus stopped".into()))?
    }

    async fn unsubscribe(&self, topic: &Topic) -> Result<(), BusError> {
        self.control
            .send(Control::Unsubscribe(topic.clone()))
            .map_err(|_| BusError("bus stopped".into()))
    }

    async fn ping(&self) -> Result<(), BusError> {
        let mut conn = self.publisher.clone();
        let _: String = redis::cmd("PING")
            .query_async(&mut conn)
            .await
            .map_err(err)?;
        if !self.subscribed.load(Ordering::Acquire) {
            return Err(BusError("subscriber connection is down".into()));
        }
        Ok(())
    }
}

/// A client for `url` whose connections send each command at once
/// (`TCP_NODELAY`; Redis sets it on its side). The redis crate leaves
/// Nagle's algorithm on: a small write made while an earlier one is not
/// yet acknowledged waits for that acknowledgement, which the peer may
/// delay by up to 40 ms.
pub fn client(url: &str) -> redis::RedisResult<redis::Client> {
    use redis::IntoConnectionInfo;
    let info = url.into_connection_info()?;
    let tcp = info.tcp_settings().clone().set_nodelay(true);
    redis::Client::open(info.set_tcp_settings(tcp))
}

/// Owns the subscriber connection: (re)connects, (re)subscribes, forwards.
async fn supervise(
    client: redis::Client,
    channels: Channels,
    mut control: mpsc::UnboundedReceiver<Control>,
    subscribed: Arc<AtomicBool>,
    sink: Weak<dyn BusSink>,
) {
    let mut wanted: HashSet<Topic> = HashSet::new();
    let mut backoff = MIN_BACKOFF;
    let mut lost = false;
    loop {
        if sink.strong_count() == 0 {
            return;
        }
        let pubsub = match client.get_async_pubsub().await {
            Ok(p) => p,
            Err(e) => {
                tracing::warn!(error = %e, ?backoff, "redis subscriber cannot connect");
                // While down, keep recording wanted topics; sessions are
                // served locally and resync once the connection is back.
                let sleep = tokio::time::sleep(backoff);
                tokio::pin!(sleep);
                loop {
                    tokio::select! {
                        _ = &mut sleep => break,
                        cmd = control.recv() => match cmd {
                            None => return,
                            Some(Control::Subscribe(t, done)) => {
                                wanted.insert(t);
                                let _ = done.send(Ok(()));
                            }
                            Some(Control::Unsubscribe(t)) => {
                                wanted.remove(&t);
                            }
                        }
                    }
                }
                backoff = (backoff * 2).min(MAX_BACKOFF);
                lost = true;
                continue;
            }
        };
        let (mut sub, mut stream) = pubsub.split();
        let resubscribe: Vec<String> = wanted.iter().map(|t| channels.of(t)).collect();
        if !resubscribe.is_empty() {
            if let Err(e) = sub.subscribe(&resubscribe).await {
                tracing::warn!(error = %e, "redis resubscribe failed");
                lost = true;
                tokio::time::sleep(backoff).await;
                continue;
            }
        }
        subscribed.store(true, Ordering::Release);
        backoff = MIN_BACKOFF;
        if lost {
            tracing::info!(
                topics = wanted.len(),
                "redis subscriber reconnected; sessions resync from the store"
            );
            if let Some(sink) = sink.upgrade() {
                sink.resync();
            }
        }
        loop {
            tokio::select! {
                cmd = control.recv() => match cmd {
                    None => return,
                    Some(Control::Subscribe(t, done)) => {
                        let r = sub.subscribe(channels.of(&t)).await;
                        wanted.insert(t);
                        let failed = r.is_err();
                        // A failed SUBSCRIBE means the connection is gone; the
                        // session still joins and will resync on reconnect.
                        let _ = done.send(Ok(()));
                        if failed {
                            break;
                        }
                    }
                    Some(Control::Unsubscribe(t)) => {
                        wanted.remove(&t);
                        if sub.unsubscribe(channels.of(&t)).await.is_err() {
                            break;
                        }
                    }
                },
                msg = stream.next() => {
                    let Some(msg) = msg else { break };
                    let Some(topic) = channels.topic(msg.get_channel_name()) else { continue };
                    match serde_json::from_slice::<Published>(msg.get_payload_bytes()) {
                        Ok(event) => {
                            if let Some(sink) = sink.upgrade() {
                                sink.deliver(&Topic::from_raw(topic), Arc::new(event));
                            } else {
                                return;
                            }
                        }
                        Err(e) => tracing::warn!(error = %e, topic, "undecodable bus event dropped"),
                    }
                }
            }
        }
        subscribed.store(false, Ordering::Release);
        lost = true;
        tracing::warn!("redis subscriber connection lost; reconnecting");
    }
}

#[cfg(test)]
mod tests {
    use super::client;

    #[test]
    fn clients_send_at_once_and_keep_what_the_url_says() {
        let made = client("redis://:secret@127.0.0.1:6390/3").expect("a valid URL");
        let info = made.get_connection_info();
        assert!(info.tcp_settings().nodelay(), "Nagle's algorithm left on");
        assert_eq!(info.redis_settings().db(), 3);
        assert_eq!(info.redis_settings().password(), Some("secret"));
        assert_eq!(info.addr().to_string(), "127.0.0.1:6390");
        assert!(client("not a url").is_err());
    }
}
