//! Results: histogram helpers, the rows a scenario produces, the human table
//! and the JSON file.

use std::path::Path;

use anyhow::{Context, Result};
use hdrhistogram::Histogram;
use serde::{Deserialize, Serialize};

/// Latencies are recorded in microseconds, up to an hour, 3 significant digits.
pub fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("valid histogram bounds")
}

/// A histogram's contents as (value, count) pairs. hdrhistogram is built
/// without its serialization feature here, and re-recording each bucket's
/// representative value into a histogram of the same configuration lands in
/// the same bucket, so this round-trips exactly.
pub fn to_pairs(histogram: &Histogram<u64>) -> Vec<(u64, u64)> {
    histogram
        .iter_recorded()
        .map(|v| (v.value_iterated_to(), v.count_at_value()))
        .collect()
}

/// Adds (value, count) pairs from [`to_pairs`] to a histogram.
pub fn add_pairs(histogram: &mut Histogram<u64>, pairs: &[(u64, u64)]) {
    for &(value, count) in pairs {
        histogram.saturating_record_n(value, count);
    }
}

/// Records a latency in microseconds (negative ones as 0) into a shared histogram.
pub fn record(histogram: &std::sync::Mutex<Histogram<u64>>, micros: i64) {
    histogram
        .lock()
        .expect("histogram lock")
        .saturating_record(micros.max(0) as u64);
}

/// Latency percentiles in milliseconds.
#[derive(Debug, Clone, Serialize)]
pub struct Percentiles {
    pub count: u64,
    pub p50: f64,
    pub p95: f64,
    pub p99: f64,
    pub p999: f64,
    pub max: f64,
    pub mean: f64,
}

impl Percentiles {
    pub fn of(histogram: &Histogram<u64>) -> Percentiles {
        let ms = |micros: u64| micros as f64 / 1000.0;
        if histogram.is_empty() {
            return Percentiles {
                count: 0,
                p50: 0.0,
                p95: 0.0,
                p99: 0.0,
                p999: 0.0,
                max: 0.0,
                mean: 0.0,
            };
        }
        Percentiles {
            count: histogram.len(),
            p50: ms(histogram.value_at_quantile(0.50)),
            p95: ms(histogram.value_at_quantile(0.95)),
            p99: ms(histogram.value_at_quantile(0.99)),
            p999: ms(histogram.value_at_quantile(0.999)),
            max: ms(histogram.max()),
            mean: histogram.mean() / 1000.0,
        }
    }
}

/// Everything that went wrong in a traffic or agents run.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct Errors {
    /// HTTP sends (agents: replies) answered with an error status, or failed.
    pub http: u64,
    /// STOMP sends not written because the sender socket was already closed.
    pub unsent: u64,
    /// ERROR frames received.
    pub error_frames: u64,
    /// Sessions the server closed during the run.
    pub closed_sockets: u64,
    /// Sends with neither a receipt/200 nor an error after the drain.
    pub unacked: u64,
    /// Deliveries beyond one per message and receiving session.
    pub duplicates: u64,
    /// MESSAGE frames the bench could not read.
    pub unreadable: u64,
}

impl Errors {
    pub fn add(&mut self, other: &Errors) {
        self.http += other.http;
        self.unsent += other.unsent;
        self.error_frames += other.error_frames;
        self.closed_sockets += other.closed_sockets;
        self.unacked += other.unacked;
        self.duplicates += other.duplicates;
        self.unreadable += other.unreadable;
    }

    /// One line listing every kind of error, for the failure details.
    pub fn describe(&self) -> String {
        format!(
            "{} http, {} unsent (socket closed), {} ERROR frames, {} closed sockets, {} unacknowledged, {} duplicates, {} unreadable",
            self.http,
            self.unsent,
            self.error_frames,
            self.closed_sockets,
            self.unacked,
            self.duplicates,
            self.unreadable
        )
    }

    pub fn total(&self) -> u64 {
        self.http
            + self.unsent
            + self.error_frames
            + self.closed_sockets
            + self.unacked
            + self.duplicates
            + self.unreadable
    }
}

/// Figures of chatgate divided by the relay's, measured in the same invocation.
#[derive(Debug, Clone, Serialize)]
pub struct Ratios {
    pub stored_per_sec: f64,
    pub delivered_per_sec: f64,
    pub p50: f64,
    pub p99: f64,
}

/// One chat or fanout run against one target.
#[derive(Debug, Clone, Serialize)]
pub struct TrafficRow {
    pub target: String,
    pub via: String,
    pub processes: usize,
    pub rate: f64,
    pub warmup_secs: f64,
    pub duration_secs: f64,
    /// Sessions that receive each message (second tabs, fanout sessions).
    pub receivers: u64,
    /// Messages planned in the measured window and issued.
    pub sent: u64,
    /// Messages issued, warm-up included.
    pub sent_total: u64,
    pub stored_total: u64,
    pub delivered_total: u64,
    pub stored_per_sec: f64,
    pub delivered_per_sec: f64,
    /// Receive time minus planned send time, at the receiving sessions.
    pub latency_ms: Percentiles,
    /// Receipt (or HTTP 200) time minus planned send time, at the senders.
    pub stored_latency_ms: Percentiles,
    pub errors: Errors,
    /// Stored messages missing at a receiving session after the drain.
    pub lost: u64,
    pub setup_secs: f64,
    /// CPU used by the server process(es) during the measured window, in
    /// percent of one core (the machine has `machine.cores` of them).
    pub server_cpu_percent: Option<f64>,
    /// CPU used by the bench's own client process(es) during the window.
    pub bench_cpu_percent: Option<f64>,
    pub ratio_to_relay: Option<Ratios>,
    /// The first few error messages, for diagnosis.
    pub error_samples: Vec<String>,
}

impl TrafficRow {
    pub fn failed(&self) -> bool {
        self.errors.total() > 0 || self.lost > 0
    }
}

/// Prints the table of a chat or fanout run.
pub fn print_traffic(title: &str, rows: &[TrafficRow]) {
    println!();
    println!("{title}");
    println!(
        "{:<28} {:<5} {:>8} {:>7} {:>9} {:>9} {:>8} {:>8} {:>8} {:>8} {:>6} {:>6} {:>14}  vs relay",
        "target",
        "via",
        "rate/s",
        "sent",
        "stored/s",
        "deliv/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "errors",
        "lost",
        "cpu% srv/bench"
    );
    for row in rows {
        let ratio = row.ratio_to_relay.as_ref().map_or(String::from("-"), |r| {
            format!(
                "deliv/s {:.2}x, p50 {:.1}x, p99 {:.1}x",
                r.delivered_per_sec, r.p50, r.p99
            )
        });
        println!(
            "{:<28} {:<5} {:>8} {:>7} {:>9.1} {:>9.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6} {:>6} {:>14}  {}",
            row.target,
            row.via,
            format_rate(row.rate),
            row.sent,
            row.stored_per_sec,
            row.delivered_per_sec,
            row.latency_ms.p50,
            row.latency_ms.p99,
            row.latency_ms.p999,
            row.latency_ms.max,
            row.errors.total(),
            row.lost,
            format!(
                "{}/{}",
                percent(row.server_cpu_percent),
                percent(row.bench_cpu_percent)
            ),
            ratio
        );
    }
    for row in rows.iter().filter(|r| r.failed()) {
        println!(
            "  {}: errors: {}; {} lost",
            row.target,
            row.errors.describe(),
            row.lost
        );
        for sample in &row.error_samples {
            println!("    {sample}");
        }
    }
}

/// One direction of the agents scenario.
#[derive(Debug, Clone, Serialize)]
pub struct Flow {
    /// Messages planned in the measured window and issued (for DELIVERED:
    /// replies stored whose planned time is in the window).
    pub sent: u64,
    /// Issued, warm-up included.
    pub sent_total: u64,
    /// Acknowledged as stored, warm-up included (RECEIPT for visitors,
    /// 201 for replies; for DELIVERED the replies stored).
    pub stored_total: u64,
    /// Arrived at least once, warm-up included.
    pub received_total: u64,
    /// Arrivals during the measured window, per second.
    pub received_per_sec: f64,
    /// Arrival time minus planned time.
    pub latency_ms: Percentiles,
    /// Acknowledgement (RECEIPT or 201) time minus planned time.
    pub stored_latency_ms: Option<Percentiles>,
    /// Stored but never arrived by the end of the drain.
    pub lost: u64,
}

/// One agents run.
#[derive(Debug, Clone, Serialize)]
pub struct AgentsRow {
    pub target: String,
    pub processes: usize,
    pub visitors: u32,
    pub agents: u32,
    pub rate: f64,
    pub warmup_secs: f64,
    pub duration_secs: f64,
    /// Visitor message (STOMP `/app/send`) to the owning agent's event
    /// socket (`chatd_user_room_message_created`), from its planned time.
    pub visitor_to_agent: Flow,
    /// Agent reply (REST, issued when the visitor message arrived, which
    /// is its planned time) to the visitor's session (`message.created`, LEFT).
    pub agent_to_visitor: Flow,
    /// Agent reply to its DELIVERED state at the agent's event socket
    /// (`chatd_user_room_message_updated`), from the reply's planned time.
    pub reply_delivered: Flow,
    pub errors: Errors,
    /// Agents, sessions, first messages and answers.
    pub setup_secs: f64,
    /// CPU used by the server process(es) during the measured window, in
    /// percent of one core (the machine has `machine.cores` of them).
    pub server_cpu_percent: Option<f64>,
    /// CPU used by the bench's own client process(es) during the window.
    pub bench_cpu_percent: Option<f64>,
    /// The first few error messages, for diagnosis.
    pub error_samples: Vec<String>,
}

impl AgentsRow {
    pub fn lost(&self) -> u64 {
        self.visitor_to_agent.lost + self.agent_to_visitor.lost + self.reply_delivered.lost
    }

    pub fn failed(&self) -> bool {
        self.errors.total() > 0 || self.lost() > 0
    }
}

/// Prints the table of an agents run: one line per direction. Counts
/// cover the whole run (warm-up included, as `lost` does); rates and
/// latencies the measured window.
pub fn print_agents(title: &str, row: &AgentsRow) {
    println!();
    println!("{title}");
    println!(
        "{}, {} process(es), setup {:.1} s, cpu% srv/bench {}/{}",
        row.target,
        row.processes,
        row.setup_secs,
        percent(row.server_cpu_percent),
        percent(row.bench_cpu_percent)
    );
    println!(
        "{:<20} {:>7} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8} {:>8} {:>6}",
        "direction",
        "sent",
        "stored",
        "received",
        "recv/s",
        "p50 ms",
        "p99 ms",
        "p99.9 ms",
        "max ms",
        "lost"
    );
    for (name, flow) in [
        ("visitor -> agent", &row.visitor_to_agent),
        ("agent -> visitor", &row.agent_to_visitor),
        ("reply -> DELIVERED", &row.reply_delivered),
    ] {
        println!(
            "{:<20} {:>7} {:>7} {:>8} {:>8.1} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>6}",
            name,
            flow.sent_total,
            flow.stored_total,
            flow.received_total,
            flow.received_per_sec,
            flow.latency_ms.p50,
            flow.latency_ms.p99,
            flow.latency_ms.p999,
            flow.latency_ms.max,
            flow.lost
        );
    }
    let acks = [
        ("visitor RECEIPT", &row.visitor_to_agent),
        ("reply 201", &row.agent_to_visitor),
    ];
    let acks: Vec<String> = acks
        .iter()
        .filter_map(|(name, flow)| {
            flow.stored_latency_ms
                .as_ref()
                .map(|p| format!("{name} p50 {:.2} / p99 {:.2} ms", p.p50, p.p99))
        })
        .collect();
    println!("stored: {}", acks.join(", "));
    if row.failed() {
        println!(
            "  {}: errors: {}; {} lost",
            row.target,
            row.errors.describe(),
            row.lost()
        );
        for sample in &row.error_samples {
            println!("    {sample}");
        }
    }
}

/// What the agents' room lists say after a queue run (`GET /users/me/rooms`
/// of every agent, `GET /queues` of the admin).
#[derive(Debug, Clone, Default, Serialize)]
pub struct RoomAudit {
    /// Distinct visitor rooms in the agents' lists.
    pub rooms_listed: u64,
    /// Rooms in more than one agent's list, or with more than one agent member.
    pub two_agents: u64,
    /// Conversations whose first message was stored and that no agent has.
    pub never_assigned: u64,
    /// Of those, the ones still waiting in the queue.
    pub still_queued: u64,
}

/// One queue (round robin) run.
#[derive(Debug, Clone, Serialize)]
pub struct QueueRow {
    pub target: String,
    pub agents: u32,
    pub max_open: u32,
    pub rate: f64,
    pub warmup_secs: f64,
    pub duration_secs: f64,
    /// Conversations authenticated, warm-up included.
    pub started: u64,
    /// First messages stored (HTTP 200), warm-up included.
    pub stored: u64,
    /// Conversations assigned (first `chatd_user_room_created`), warm-up included.
    pub assigned: u64,
    /// Conversations planned in the measured window and started, per second.
    pub started_per_sec: f64,
    /// Assignments arriving in the measured window, per second.
    pub assigned_per_sec: f64,
    /// First message issued (`POST /chatplugin.send` sent) to
    /// `chatd_user_room_created` at the assigned agent's socket.
    pub latency_ms: Percentiles,
    /// Planned start of the conversation (before authenticate) to the same event.
    pub planned_latency_ms: Percentiles,
    /// First message issued to its HTTP 200.
    pub stored_latency_ms: Percentiles,
    /// Rooms closed by their agent after the assignment.
    pub closed: u64,
    /// `chatd_user_room_created` beyond the first for a room (any agent).
    pub assigned_twice: u64,
    /// `chatd_queue_updated` "assigned" beyond the first for a room (agent 0's socket).
    pub announced_twice: u64,
    /// Stored, never assigned by the end of the drain.
    pub lost: u64,
    pub audit: RoomAudit,
    pub errors: Errors,
    pub setup_secs: f64,
    /// CPU used by the server process(es) during the measured window, in
    /// percent of one core (the machine has `machine.cores` of them).
    pub server_cpu_percent: Option<f64>,
    pub bench_cpu_percent: Option<f64>,
    /// RSS of each server process after the run, in MiB.
    pub server_rss_mib: Vec<f64>,
    pub error_samples: Vec<String>,
}

impl QueueRow {
    pub fn failed(&self) -> bool {
        self.errors.total() > 0
            || self.assigned_twice > 0
            || self.announced_twice > 0
            || self.lost > 0
            || self.audit.two_agents > 0
            || self.audit.never_assigned > 0
    }
}

/// Prints the figures of a queue run.
pub fn print_queue(title: &str, row: &QueueRow) {
    println!();
    println!("{title}");
    let rss: Vec<String> = row
        .server_rss_mib
        .iter()
        .map(|m| format!("{m:.1}"))
        .collect();
    println!(
        "{}, setup {:.1} s, cpu% srv/bench {}/{}, server RSS MiB {}",
        row.target,
        row.setup_secs,
        percent(row.server_cpu_percent),
        percent(row.bench_cpu_percent),
        if rss.is_empty() {
            "?".into()
        } else {
            rss.join(" + ")
        }
    );
    println!(
        "conversations: {} started ({:.1}/s in the window), {} first messages stored, {} assigned ({:.1}/s in the window), {} closed",
        row.started, row.started_per_sec, row.stored, row.assigned, row.assigned_per_sec, row.closed
    );
    println!(
        "{:<28} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "latency (measured window)", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms"
    );
    for (name, p) in [
        ("first message -> assigned", &row.latency_ms),
        ("planned start -> assigned", &row.planned_latency_ms),
        ("first message -> 200", &row.stored_latency_ms),
    ] {
        println!(
            "{:<28} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}",
            name, p.count, p.p50, p.p95, p.p99, p.max, p.mean
        );
    }
    println!(
        "assigned twice: {} (events), {} (announcements), {} (agents' room lists); lost: {} (events), {} (room lists, {} still queued); {} rooms listed",
        row.assigned_twice,
        row.announced_twice,
        row.audit.two_agents,
        row.lost,
        row.audit.never_assigned,
        row.audit.still_queued,
        row.audit.rooms_listed
    );
    if row.failed() {
        println!("  {}: errors: {}", row.target, row.errors.describe());
        for sample in &row.error_samples {
            println!("    {sample}");
        }
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or("?".into(), |v| format!("{v:.0}"))
}

fn format_rate(rate: f64) -> String {
    if rate.fract() == 0.0 {
        format!("{rate:.0}")
    } else {
        format!("{rate:.1}")
    }
}

/// chatgate's figures over the relay's (latency ratios > 1 mean slower).
pub fn ratios(chatgate: &TrafficRow, relay: &TrafficRow) -> Ratios {
    let div = |a: f64, b: f64| if b > 0.0 { a / b } else { f64::NAN };
    Ratios {
        stored_per_sec: div(chatgate.stored_per_sec, relay.stored_per_sec),
        delivered_per_sec: div(chatgate.delivered_per_sec, relay.delivered_per_sec),
        p50: div(chatgate.latency_ms.p50, relay.latency_ms.p50),
        p99: div(chatgate.latency_ms.p99, relay.latency_ms.p99),
    }
}

/// One RSS sample of the idle scenario.
#[derive(Debug, Clone, Serialize)]
pub struct IdleStep {
    pub sessions: usize,
    pub rss_bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize)]
pub struct IdleReport {
    pub target: String,
    pub pid: Option<u32>,
    pub processes: usize,
    /// RSS before the first session.
    pub baseline_rss_bytes: Option<u64>,
    pub steps: Vec<IdleStep>,
    /// Least-squares slope of RSS over the steps.
    pub bytes_per_session: Option<f64>,
    /// Sessions opened per second while ramping (authenticate, WebSocket,
    /// CONNECT, SUBSCRIBE with receipt).
    pub connect_rate: f64,
    /// Sessions that could not be opened.
    pub failed_opens: u64,
    /// Sessions the server closed while they were held.
    pub closed_sockets: u64,
    pub error_samples: Vec<String>,
}

impl IdleReport {
    pub fn failed(&self) -> bool {
        self.failed_opens > 0 || self.closed_sockets > 0
    }
}

pub fn print_idle(report: &IdleReport) {
    let mib = |bytes: Option<u64>| {
        bytes.map_or("n/a".to_string(), |b| {
            format!("{:.1}", b as f64 / (1024.0 * 1024.0))
        })
    };
    println!();
    println!(
        "idle: {} (RSS of pid {}), {} client process(es)",
        report.target,
        report
            .pid
            .map_or("unknown; pass --server-pid".into(), |p| p.to_string()),
        report.processes
    );
    println!("{:>10} {:>10} {:>14}", "sessions", "RSS MiB", "KiB/session");
    println!(
        "{:>10} {:>10} {:>14}",
        0,
        mib(report.baseline_rss_bytes),
        "-"
    );
    for step in &report.steps {
        let per = match (step.rss_bytes, report.baseline_rss_bytes) {
            (Some(rss), Some(base)) if step.sessions > 0 => format!(
                "{:.1}",
                (rss as f64 - base as f64) / step.sessions as f64 / 1024.0
            ),
            _ => "-".into(),
        };
        println!(
            "{:>10} {:>10} {:>14}",
            step.sessions,
            mib(step.rss_bytes),
            per
        );
    }
    println!(
        "bytes/session (least-squares slope): {}   connect rate: {:.0} sessions/s   failed opens: {}   closed: {}",
        report
            .bytes_per_session
            .map_or("n/a".into(), |b| format!("{b:.0} ({:.1} KiB)", b / 1024.0)),
        report.connect_rate,
        report.failed_opens,
        report.closed_sockets
    );
    for sample in &report.error_samples {
        println!("    {sample}");
    }
}

/// Least-squares slope of y over x; `None` with fewer than two distinct x.
pub fn slope(points: &[(f64, f64)]) -> Option<f64> {
    let n = points.len() as f64;
    if points.len() < 2 {
        return None;
    }
    let mean_x = points.iter().map(|p| p.0).sum::<f64>() / n;
    let mean_y = points.iter().map(|p| p.1).sum::<f64>() / n;
    let sxx: f64 = points.iter().map(|p| (p.0 - mean_x).powi(2)).sum();
    let sxy: f64 = points.iter().map(|p| (p.0 - mean_x) * (p.1 - mean_y)).sum();
    (sxx > 0.0).then(|| sxy / sxx)
}

/// Writes the JSON results file: the runs plus the conditions they ran under.
pub fn write_json(
    path: &Path,
    scenario: &str,
    options: &impl Serialize,
    runs: &impl Serialize,
) -> Result<()> {
    let document = serde_json::json!({
        "tool": "chatgate-bench",
        "version": env!("CARGO_PKG_VERSION"),
        "scenario": scenario,
        "date": chrono::Utc::now().to_rfc3339(),
        "machine": {
            "cores": std::thread::available_parallelism().map_or(0, |n| n.get()),
            "os": std::env::consts::OS,
            "arch": std::env::consts::ARCH,
        },
        "options": options,
        "runs": runs,
    });
    let text = serde_json::to_string_pretty(&document)?;
    std::fs::write(path, text + "\n").with_context(|| format!("cannot write {}", path.display()))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pairs_round_trip() {
        let mut h = histogram();
        for v in [1, 5, 999, 1000, 1001, 123_456, 7_000_000] {
            h.record(v).unwrap();
        }
        let mut back = histogram();
        add_pairs(&mut back, &to_pairs(&h));
        assert_eq!(back.len(), h.len());
        assert_eq!(back.max(), h.max());
        assert_eq!(back.value_at_quantile(0.5), h.value_at_quantile(0.5));
    }

    #[test]
    fn slope_of_a_line() {
        let points = [(1000.0, 5e6), (5000.0, 9e6), (10000.0, 14e6)];
        assert!((slope(&points).unwrap() - 1000.0).abs() < 1e-6);
        assert_eq!(slope(&[(1.0, 1.0)]), None);
    }
}
