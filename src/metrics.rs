//! Prometheus metrics, one registry per server (so two instances in one test
//! process keep separate counts), exposed at `GET /metrics`.

use std::future::Future;
use std::time::Instant;

use prometheus::{
    Encoder, Histogram, HistogramOpts, HistogramVec, IntCounter, IntCounterVec, IntGaugeVec, Opts,
    Registry, TextEncoder,
};

pub struct Metrics {
    registry: Registry,
    /// Live WebSocket sessions on this instance, by kind (`visitor`, `agent`).
    pub sessions: IntGaugeVec,
    pub messages_stored: IntCounter,
    /// Queued visitor rooms round robin gave to an agent.
    pub rooms_assigned: IntCounter,
    /// MESSAGE frames written to visitor sockets.
    pub messages_delivered: IntCounter,
    pub bus_published: IntCounter,
    pub bus_publish_failures: IntCounter,
    /// Events the bus handed to this instance's hub.
    pub bus_received: IntCounter,
    /// Store call latency by operation.
    pub store_seconds: HistogramVec,
    /// 429 answers by limit (`authenticate`, `send`, `login`, `login_ip`).
    pub rate_limited: IntCounterVec,
    /// HTTP answers with a 4xx status, by status and `error_id` (`none` for
    /// a reply without one): logged at debug only, so a flood of bad
    /// requests shows here rather than in the log.
    pub http_client_errors: IntCounterVec,
    /// How long visitor rooms waited in the queue, from queued to answered
    /// or assigned, in seconds, by how they left it (`answered`: an agent
    /// took it; `assigned`: an admin gave it; `round_robin`).
    pub queue_wait_seconds: HistogramVec,
    /// Webhook delivery attempts by outcome: `delivered` (a 2xx), `failed`
    /// (another status, a timeout, no connection: retried), `gave_up` (the
    /// last try failed: the endpoint is paused), `dropped` (not sent: the
    /// endpoint was deleted or disabled).
    pub webhook_attempts: IntCounterVec,
    /// From an event's commit to its receiver's 2xx, in seconds (retries
    /// and the time in the outbox included).
    pub webhook_delivery_seconds: Histogram,
}

impl Metrics {
    pub fn new() -> Metrics {
        let registry = Registry::new_custom(Some("chatgate".into()), None).expect("a valid prefix");
        let sessions =
            IntGaugeVec::new(Opts::new("sessions", "Live WebSocket sessions"), &["kind"])
                .expect("valid metric");
        let counter = |name: &str, help: &str| IntCounter::new(name, help).expect("valid metric");
        let messages_stored = counter("messages_stored_total", "Messages stored");
        let rooms_assigned = counter(
            "rooms_assigned_total",
            "Queued visitor rooms given to an agent by round robin",
        );
        let messages_delivered = counter(
            "messages_delivered_total",
            "Message frames written to visitor sockets",
        );
        let bus_published = counter("bus_published_total", "Events published on the bus");
        let bus_publish_failures =
            counter("bus_publish_failures_total", "Publishes the bus refused");
        let bus_received = counter("bus_received_total", "Events received from the bus");
        let store_seconds = HistogramVec::new(
            HistogramOpts::new("store_seconds", "Store call latency").buckets(vec![
                0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1.0,
            ]),
            &["op"],
        )
        .expect("valid metric");
        let rate_limited = IntCounterVec::new(
            Opts::new("rate_limited_total", "Requests refused with 429"),
            &["limit"],
        )
        .expect("valid metric");
        let http_client_errors = IntCounterVec::new(
            Opts::new(
                "http_client_errors_total",
                "HTTP answers with a 4xx status, by status and error_id",
            ),
            &["status", "error_id"],
        )
        .expect("valid metric");
        let queue_wait_seconds = HistogramVec::new(
            HistogramOpts::new(
                "queue_wait_seconds",
                "Time visitor rooms waited in the queue before an agent had them",
            )
            .buckets(vec![
                1.0, 5.0, 10.0, 30.0, 60.0, 120.0, 300.0, 600.0, 1800.0, 3600.0, 14400.0, 86400.0,
            ]),
            &["how"],
        )
        .expect("valid metric");
        let webhook_attempts = IntCounterVec::new(
            Opts::new(
                "webhook_attempts_total",
                "Webhook delivery attempts by outcome",
            ),
            &["outcome"],
        )
        .expect("valid metric");
        let webhook_delivery_seconds = Histogram::with_opts(
            HistogramOpts::new(
                "webhook_delivery_seconds",
                "From an event's commit to its receiver's 2xx",
            )
            .buckets(vec![
                0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0, 300.0, 3600.0, 86400.0,
            ]),
        )
        .expect("valid metric");
        let metrics = Metrics {
            registry,
            sessions,
            messages_stored,
            rooms_assigned,
            messages_delivered,
            bus_published,
            bus_publish_failures,
            bus_received,
            store_seconds,
            rate_limited,
            http_client_errors,
            queue_wait_seconds,
            webhook_attempts,
            webhook_delivery_seconds,
        };
        for collector in [
            Box::new(metrics.sessions.clone()) as Box<dyn prometheus::core::Collector>,
            Box::new(metrics.messages_stored.clone()),
            Box::new(metrics.rooms_assigned.clone()),
            Box::new(metrics.messages_delivered.clone()),
            Box::new(metrics.bus_published.clone()),
            Box::new(metrics.bus_publish_failures.clone()),
            Box::new(metrics.bus_received.clone()),
            Box::new(metrics.store_seconds.clone()),
            Box::new(metrics.rate_limited.clone()),
            Box::new(metrics.http_client_errors.clone()),
            Box::new(metrics.queue_wait_seconds.clone()),
            Box::new(metrics.webhook_attempts.clone()),
            Box::new(metrics.webhook_delivery_seconds.clone()),
        ] {
            metrics
                .registry
                .register(collector)
                .expect("each metric registered once");
        }
        metrics
    }

    /// Runs a store call, recording its latency under `op`.
    pub async fn timed<T>(&self, op: &str, call: impl Future<Output = T>) -> T {
        let started = Instant::now();
        let out = call.await;
        self.store_seconds
            .with_label_values(&[op])
            .observe(started.elapsed().as_secs_f64());
        out
    }

    /// A visitor room left the queue at `at_ms` (`how`: see
    /// `queue_wait_seconds`).
    pub fn queue_left(&self, how: &str, room: &crate::domain::Room, at_ms: i64) {
        if let Some(queued) = room.queued_at_ms {
            self.queue_wait_seconds
                .with_label_values(&[how])
                .observe((at_ms - queued).max(0) as f64 / 1000.0);
        }
    }

    /// The Prometheus text exposition.
    pub fn render(&self) -> String {
        let mut out = Vec::new();
        let _ = TextEncoder::new().encode(&self.registry.gather(), &mut out);
        String::from_utf8(out).unwrap_or_default()
    }
}

impl Default for Metrics {
    fn default() -> Self {
        Metrics::new()
    }
}
