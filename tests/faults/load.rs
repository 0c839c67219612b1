//! Steady load while a fault happens, and the ledger that counts it:
//! visitors sending over HTTP and over STOMP (with receipts), agents
//! replying over REST. Each client sends to one instance of `Targets` and
//! moves to the next when that one does not answer, as a load balancer
//! would send it. Afterwards `Ledger::verify` reads every conversation back
//! through the API and checks that every acknowledged message is there.

use std::collections::{BTreeMap, HashMap};
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, RwLock};
use std::time::Duration;

use chatgate::ws::stomp::Command;
use tokio::task::JoinHandle;

use crate::clients::{http, Agent, Answer, Stomp, Visitor, WAIT};

/// Time between two sends of one client.
pub const PACE: Duration = Duration::from_millis(40);

/// The base URLs of the live instances; a client that gets no answer moves on.
#[derive(Default)]
pub struct Targets {
    bases: RwLock<Vec<String>>,
}

impl Targets {
    pub fn new(bases: Vec<String>) -> Arc<Targets> {
        Arc::new(Targets {
            bases: RwLock::new(bases),
        })
    }

    /// The `i`-th base (modulo how many there are).
    pub fn get(&self, i: usize) -> String {
        let bases = self.bases.read().unwrap_or_else(|e| e.into_inner());
        bases[i % bases.len()].clone()
    }

    /// Points slot `i` at a new address (an instance restarted on a new port).
    pub fn set(&self, i: usize, base: String) {
        self.bases.write().unwrap_or_else(|e| e.into_inner())[i] = base;
    }
}

/// Which door a message went through.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Door {
    HttpVisitor,
    StompVisitor,
    AgentReply,
}

/// What happened to sends through one door.
#[derive(Debug, Default, Clone)]
pub struct Counts {
    pub sent: u64,
    /// 200/201, or a RECEIPT.
    pub acked: u64,
    /// 503 `store-unavailable`, or an ERROR frame naming it.
    pub refused: u64,
    /// No answer: connection refused, closed or reset mid-request.
    pub unanswered: u64,
}

/// Every send and its outcome; the acknowledged texts per conversation.
#[derive(Default)]
pub struct Ledger {
    counts: Mutex<BTreeMap<Door, Counts>>,
    acked: Mutex<HashMap<String, Vec<String>>>,
    /// Answers no fault excuses (a 500, an unexpected ERROR frame).
    unexpected: Mutex<Vec<String>>,
}

impl Ledger {
    fn count(&self, door: Door, f: impl FnOnce(&mut Counts)) {
        let mut counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        f(counts.entry(door).or_default());
    }

    fn sent(&self, door: Door) {
        self.count(door, |c| c.sent += 1);
    }

    fn acked(&self, door: Door, conversation: &str, text: &str) {
        self.count(door, |c| c.acked += 1);
        self.acked
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .entry(conversation.to_string())
            .or_default()
            .push(text.to_string());
    }

    fn refused(&self, door: Door) {
        self.count(door, |c| c.refused += 1);
    }

    fn unanswered(&self, door: Door) {
        self.count(door, |c| c.unanswered += 1);
    }

    fn unexpected(&self, what: String) {
        self.unexpected
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .push(what);
    }

    pub fn counts(&self, door: Door) -> Counts {
        self.counts
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .get(&door)
            .cloned()
            .unwrap_or_default()
    }

    pub fn total(&self) -> Counts {
        let counts = self.counts.lock().unwrap_or_else(|e| e.into_inner());
        counts.values().fold(Counts::default(), |mut t, c| {
            t.sent += c.sent;
            t.acked += c.acked;
            t.refused += c.refused;
            t.unanswered += c.unanswered;
            t
        })
    }

    /// Panics listing the answers that no fault excuses.
    pub fn assert_no_unexpected(&self) {
        let unexpected = self.unexpected.lock().unwrap_or_else(|e| e.into_inner());
        assert!(
            unexpected.is_empty(),
            "{} unexpected answers, the first: {:?}",
            unexpected.len(),
            &unexpected[..unexpected.len().min(5)]
        );
    }

    /// Reads every conversation back through `base` three ways (the
    /// visitor's resumed history, a STOMP replay from `since-seq` 0, and the
    /// agent paging by seq), asserts every acknowledged text is found by each
    /// exactly once, and prints the counts.
    /// With several `bases`, the history and the paging are read through
    /// the first and the replay through the last.
    pub async fn verify(
        &self,
        fault: &str,
        bases: &[String],
        conversations: &[Visitor],
        agent: &Agent,
    ) {
        let http = http();
        let acked = self.acked.lock().unwrap_or_else(|e| e.into_inner()).clone();
        let base = bases[0].as_str();
        let ws_base = bases[bases.len() - 1].replacen("http", "ws", 1);
        let mut found_total = 0usize;
        let mut acked_total = 0usize;
        for visitor in conversations {
            let history: Vec<String> = visitor
                .history(&http, base)
                .await
                .iter()
                .filter_map(|m| m["content"].as_str().map(str::to_string))
                .collect();
            let last = i64::try_from(history.len()).expect("small");
            let mut stomp = Stomp::connect(&ws_base, &visitor.token, Some(0))
                .await
                .expect("a visitor reconnects after recovery");
            let replayed: Vec<String> = stomp
                .replay_until(last)
                .await
                .expect("the replay reaches the last seq")
                .into_iter()
                .map(|(_, content)| content)
                .collect();
            let paged: Vec<String> = agent
                .all_messages(base, &visitor.conversation_id)
                .await
                .iter()
                .filter_map(|m| m["content"].as_str().map(str::to_string))
                .collect();
            let texts = acked
                .get(&visitor.conversation_id)
                .cloned()
                .unwrap_or_default();
            for (how, found) in [
                ("history", &history),
                ("since-seq replay", &replayed),
                ("agent paging", &paged),
            ] {
                let mut times: HashMap<&str, usize> = HashMap::new();
                for text in found {
                    *times.entry(text.as_str()).or_default() += 1;
                }
                let lost: Vec<&String> = texts
                    .iter()
                    .filter(|t| !times.contains_key(t.as_str()))
                    .collect();
                assert!(
                    lost.is_empty(),
                    "{fault}: {} acknowledged messages missing from the {how} of {}: {:?}",
                    lost.len(),
                    visitor.conversation_id,
                    &lost[..lost.len().min(10)]
                );
                let twice: Vec<&&str> = times
                    .iter()
                    .filter(|(_, n)| **n > 1)
                    .map(|(t, _)| t)
                    .filter(|t| !t.contains(" joined"))
                    .collect();
                assert!(twice.is_empty(), "{fault}: stored twice: {twice:?}");
            }
            acked_total += texts.len();
            found_total += texts.iter().filter(|t| history.contains(t)).count();
        }
        // One print, so the counts of tests running side by side do not interleave.
        let mut report = format!("fault `{fault}`:\n");
        for door in [Door::HttpVisitor, Door::StompVisitor, Door::AgentReply] {
            let c = self.counts(door);
            report += &format!(
                "  {door:?}: sent {}, acknowledged {}, refused {}, unanswered {}\n",
                c.sent, c.acked, c.refused, c.unanswered
            );
        }
        let t = self.total();
        report += &format!(
            "  total: sent {}, acknowledged {}, found after recovery {} of them (lost {})",
            t.sent,
            acked_total,
            found_total,
            acked_total - found_total
        );
        println!("{report}");
        assert_eq!(acked_total as u64, t.acked);
    }
}

/// The running load: stop it with `stop`.
pub struct Load {
    stop: Arc<AtomicBool>,
    tasks: Vec<JoinHandle<()>>,
    pub ledger: Arc<Ledger>,
}

impl Load {
    /// Starts one HTTP visitor and one STOMP visitor per entry of
    /// `http_visitors` / `stomp_visitors`, and the agent replying in every
    /// conversation in turn. Client `i` starts on target `i`.
    pub fn start(
        targets: Arc<Targets>,
        http_visitors: &[Visitor],
        stomp_visitors: &[Visitor],
        agent: &Agent,
    ) -> Load {
        let stop = Arc::new(AtomicBool::new(false));
        let ledger = Arc::new(Ledger::default());
        let mut tasks = Vec::new();
        let mut slot = 0;
        for visitor in http_visitors {
            tasks.push(tokio::spawn(http_visitor(
                targets.clone(),
                slot,
                visitor.clone(),
                ledger.clone(),
                stop.clone(),
            )));
            slot += 1;
        }
        for visitor in stomp_visitors {
            tasks.push(tokio::spawn(stomp_visitor(
                targets.clone(),
                slot,
                visitor.clone(),
                ledger.clone(),
                stop.clone(),
            )));
            slot += 1;
        }
        let rooms: Vec<String> = http_visitors
            .iter()
            .chain(stomp_visitors)
            .map(|v| v.conversation_id.clone())
            .collect();
        tasks.push(tokio::spawn(agent_replies(
            targets,
            slot,
            agent.clone(),
            rooms,
            ledger.clone(),
            stop.clone(),
        )));
        Load {
            stop,
            tasks,
            ledger,
        }
    }

    /// Stops every client after its current send and waits for them.
    pub async fn stop(self) -> Arc<Ledger> {
        self.stop.store(true, Ordering::SeqCst);
        for task in self.tasks {
            task.await.expect("a load task panicked");
        }
        self.ledger
    }

    /// Waits (up to `within`) until `door` has `more` more of what `pick`
    /// counts than now; panics naming `what` otherwise.
    pub async fn wait_for(
        &self,
        door: Door,
        pick: fn(&Counts) -> u64,
        more: u64,
        within: Duration,
        what: &str,
    ) {
        let from = pick(&self.ledger.counts(door));
        self.wait_until(door, pick, from + more, within, what).await
    }

    /// Waits (up to `within`) until `door` has at least `n` of what `pick` counts.
    pub async fn wait_until(
        &self,
        door: Door,
        pick: fn(&Counts) -> u64,
        n: u64,
        within: Duration,
        what: &str,
    ) {
        let deadline = tokio::time::Instant::now() + within;
        while pick(&self.ledger.counts(door)) < n {
            assert!(
                tokio::time::Instant::now() < deadline,
                "{door:?}: {what} did not happen within {within:?}; counts {:?}; first unexpected: {:?}",
                self.ledger.counts(door),
                self.ledger.unexpected.lock().unwrap_or_else(|e| e.into_inner()).first()
            );
            tokio::time::sleep(Duration::from_millis(20)).await;
        }
    }

    /// Waits until every door has acknowledged `n` more messages.
    pub async fn wait_all_acked(&self, n: u64, within: Duration, what: &str) {
        for door in [Door::HttpVisitor, Door::StompVisitor, Door::AgentReply] {
            self.wait_for(door, |c| c.acked, n, within, what).await;
        }
    }
}

/// How an HTTP answer counts; true when the client should move to another instance.
fn judge(ledger: &Ledger, door: Door, conversation: &str, text: &str, answer: Answer) -> bool {
    match answer {
        Answer::Reply(200 | 201, _) => {
            ledger.acked(door, conversation, text);
            false
        }
        Answer::Reply(503, body)
            if body["error_id"] == "store-unavailable"
                && body["message"].as_str().is_some_and(|m| !m.is_empty())
                && body["details"].is_object()
                && body["timestamp"].is_number() =>
        {
            ledger.refused(door);
            false
        }
        Answer::Reply(status, body) => {
            ledger.unexpected(format!("{door:?} {text}: {status} {body}"));
            false
        }
        Answer::NoAnswer(_) => {
            ledger.unanswered(door);
            true
        }
    }
}

async fn http_visitor(
    targets: Arc<Targets>,
    mut slot: usize,
    visitor: Visitor,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) {
    let http = http();
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let text = format!("h-{}-{n}", &visitor.conversation_id[..8]);
        ledger.sent(Door::HttpVisitor);
        let answer = visitor.send(&http, &targets.get(slot), &text).await;
        if judge(
            &ledger,
            Door::HttpVisitor,
            &visitor.conversation_id,
            &text,
            answer,
        ) {
            slot += 1;
        }
        tokio::time::sleep(PACE).await;
    }
}

async fn stomp_visitor(
    targets: Arc<Targets>,
    mut slot: usize,
    visitor: Visitor,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) {
    let door = Door::StompVisitor;
    let mut n = 0u64;
    let mut session: Option<Stomp> = None;
    while !stop.load(Ordering::SeqCst) {
        let mut stomp = match session.take() {
            Some(stomp) => stomp,
            None => {
                let ws_base = targets.get(slot).replacen("http", "ws", 1);
                // Live messages are not what this client checks: no SUBSCRIBE.
                match Stomp::connect(&ws_base, &visitor.token, None).await {
                    Ok(stomp) => stomp,
                    Err(_) => {
                        slot += 1;
                        tokio::time::sleep(PACE).await;
                        continue;
                    }
                }
            }
        };
        n += 1;
        let text = format!("s-{}-{n}", &visitor.conversation_id[..8]);
        ledger.sent(door);
        if stomp.send_text(&text).await.is_err() {
            ledger.unanswered(door);
            slot += 1;
            continue;
        }
        // The RECEIPT for this frame, an ERROR, or the end of the socket.
        let outcome = loop {
            match stomp.recv(WAIT).await {
                None => break None,
                Some(frame) if frame.command == Command::Receipt => {
                    if frame.get("receipt-id") == Some(text.as_str()) {
                        break Some(Ok(()));
                    }
                }
                Some(frame) if frame.command == Command::Error => break Some(Err(frame)),
                Some(_) => {}
            }
        };
        match outcome {
            Some(Ok(())) => {
                ledger.acked(door, &visitor.conversation_id, &text);
                session = Some(stomp);
            }
            Some(Err(error)) => {
                let message = error.get("message").unwrap_or("").to_string();
                if message.contains("store-unavailable") {
                    ledger.refused(door);
                } else if message.contains("shutting down") {
                    ledger.unanswered(door);
                    slot += 1;
                } else {
                    ledger.unexpected(format!(
                        "{door:?} {text}: ERROR {message}: {}",
                        String::from_utf8_lossy(&error.body)
                    ));
                }
                // The server closes the session after an ERROR: open another.
            }
            None => {
                ledger.unanswered(door);
                slot += 1;
            }
        }
        tokio::time::sleep(PACE).await;
    }
}

async fn agent_replies(
    targets: Arc<Targets>,
    mut slot: usize,
    agent: Agent,
    rooms: Vec<String>,
    ledger: Arc<Ledger>,
    stop: Arc<AtomicBool>,
) {
    let mut n = 0u64;
    while !stop.load(Ordering::SeqCst) {
        n += 1;
        let room = &rooms[n as usize % rooms.len()];
        let text = format!("a-{}-{n}", &room[..8]);
        ledger.sent(Door::AgentReply);
        let answer = agent.reply(&targets.get(slot), room, &text).await;
        if judge(&ledger, Door::AgentReply, room, &text, answer) {
            slot += 1;
        }
        tokio::time::sleep(PACE).await;
    }
}

/// Lifts the limits that would throttle the test's own load.
pub fn unthrottled() -> Vec<(&'static str, String)> {
    vec![
        ("CHATGATE_SEND_BURST", "100000".into()),
        ("CHATGATE_SEND_PER_SECOND", "100000".into()),
        ("CHATGATE_AUTHENTICATE_BURST", "1000".into()),
        ("CHATGATE_AUTHENTICATE_PER_MINUTE", "60000".into()),
        ("CHATGATE_LOGIN_PER_MINUTE", "1000".into()),
    ]
}

/// Visitors whose rooms the admin answered: `n` conversations, each with a
/// first message stored (so the room was queued) and answered.
pub async fn answered_visitors(base: &str, channel: &str, admin: &Agent, n: usize) -> Vec<Visitor> {
    let http = http();
    let mut visitors = Vec::new();
    for i in 0..n {
        let visitor = Visitor::start(&http, base, channel).await;
        let answer = visitor.send(&http, base, &format!("hello {i}")).await;
        assert!(matches!(answer, Answer::Reply(200, _)), "{answer:?}");
        admin.answer(base, &visitor.conversation_id).await;
        visitors.push(visitor);
    }
    visitors
}
