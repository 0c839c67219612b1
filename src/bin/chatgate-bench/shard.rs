//! Shares: the parts a scenario's clients are split into.
//!
//! A share runs either as a task of the bench process (`--procs 1`) or in a
//! worker process (the bench re-executes itself with the hidden `worker`
//! subcommand) because one process may hold at most 20,000 open files. The
//! parent drives both kinds the same way: it sends a [`Plan`], then
//! [`ToShare`] commands, and reads [`FromShare`] replies. For a worker these
//! travel as JSON lines over its stdin and stdout (so a worker must never
//! print anything else on stdout; its stderr is the parent's).

use std::io::{BufRead, Write};
use std::process::Stdio;
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncBufReadExt, AsyncWriteExt, BufReader, Lines};
use tokio::process::{Child, ChildStdin, ChildStdout};
use tokio::sync::mpsc;

use crate::clock;
use crate::scenarios::agents::{AgentsPlan, AgentsShareResult};
use crate::scenarios::idle::{IdlePlan, IdleShareResult, Opened};
use crate::scenarios::queue::{QueuePlan, QueueShareResult};
use crate::scenarios::traffic::{TrafficPlan, TrafficShareResult};
use crate::spawn::{self, TargetSpec};

/// Lead time between "everyone is ready" and the first planned send.
const START_LEAD: Duration = Duration::from_millis(500);

/// Everything one share needs to know.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Plan {
    /// This share's index and the number of shares.
    pub share: usize,
    pub shares: usize,
    pub target: TargetSpec,
    /// Loopback source addresses to spread sockets over.
    pub source_ips: u8,
    /// Sessions opened at once at most.
    pub connect_concurrency: usize,
    pub work: Work,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum Work {
    Traffic(TrafficPlan),
    Idle(IdlePlan),
    Agents(AgentsPlan),
    Queue(QueuePlan),
}

/// Parent to share.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum ToShare {
    /// Idle: hold this many sessions in total.
    Open { sessions: usize },
    /// Traffic and agents: the schedule starts at this Unix time (microseconds).
    Start { at_micros: i64 },
    /// Idle: close everything and report.
    Finish,
}

/// Share to parent.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub enum FromShare {
    /// Traffic and agents: every session is open and subscribed (and for
    /// agents, every room answered).
    Ready {
        setup_secs: f64,
    },
    /// Idle: an `Open` is done.
    Opened(Opened),
    TrafficDone(Box<TrafficShareResult>),
    AgentsDone(Box<AgentsShareResult>),
    QueueDone(Box<QueueShareResult>),
    IdleDone(IdleShareResult),
    /// The share gave up; the message says why.
    Failed {
        error: String,
    },
}

/// A running share as the parent sees it.
pub enum ShareHandle {
    Local {
        commands: mpsc::Sender<ToShare>,
        replies: mpsc::Receiver<FromShare>,
    },
    Child(Box<Worker>),
}

/// A share in a worker process.
pub struct Worker {
    index: usize,
    child: Child,
    stdin: ChildStdin,
    stdout: Lines<BufReader<ChildStdout>>,
}

impl ShareHandle {
    /// Starts a share in this process.
    pub fn local(plan: Plan) -> ShareHandle {
        let (commands, command_rx) = mpsc::channel(16);
        let (reply_tx, replies) = mpsc::channel(16);
        tokio::spawn(serve(plan, command_rx, reply_tx));
        ShareHandle::Local { commands, replies }
    }

    /// Starts a share in a worker process.
    pub async fn child(plan: Plan) -> Result<ShareHandle> {
        let exe = std::env::current_exe().context("cannot locate the bench executable")?;
        let index = plan.share;
        let mut child = tokio::process::Command::new(exe)
            .arg("worker")
            .stdin(Stdio::piped())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .kill_on_drop(true)
            .spawn()
            .context("cannot start a worker process")?;
        let stdin = child.stdin.take().expect("stdin is piped");
        let stdout = BufReader::new(child.stdout.take().expect("stdout is piped")).lines();
        let mut handle = ShareHandle::Child(Box::new(Worker {
            index,
            child,
            stdin,
            stdout,
        }));
        handle.write_line(&plan).await?;
        Ok(handle)
    }

    async fn write_line(&mut self, value: &impl Serialize) -> Result<()> {
        let ShareHandle::Child(worker) = self else {
            unreachable!("only workers have a stdin");
        };
        let Worker { stdin, index, .. } = &mut **worker;
        let mut line = serde_json::to_vec(value)?;
        line.push(b'\n');
        stdin
            .write_all(&line)
            .await
            .with_context(|| format!("worker {index} is gone"))?;
        stdin.flush().await?;
        Ok(())
    }

    pub async fn send(&mut self, command: ToShare) -> Result<()> {
        match self {
            ShareHandle::Local { commands, .. } => commands
                .send(command)
                .await
                .map_err(|_| anyhow!("the share stopped")),
            ShareHandle::Child(_) => self.write_line(&command).await,
        }
    }

    /// The next reply; a `Failed` reply or a vanished worker is an error.
    pub async fn recv(&mut self) -> Result<FromShare> {
        let reply = match self {
            ShareHandle::Local { replies, .. } => replies
                .recv()
                .await
                .ok_or_else(|| anyhow!("the share stopped without a result"))?,
            ShareHandle::Child(worker) => match worker.stdout.next_line().await? {
                Some(line) => serde_json::from_str(&line)
                    .with_context(|| format!("unreadable reply from worker {}", worker.index))?,
                None => {
                    let status = worker.child.wait().await?;
                    bail!("worker {} exited without a result ({status})", worker.index);
                }
            },
        };
        if let FromShare::Failed { error } = reply {
            bail!("{error}");
        }
        Ok(reply)
    }
}

/// All shares of a run.
pub struct Shares(pub Vec<ShareHandle>);

impl Shares {
    /// Starts one share per plan: in this process for a single plan, else
    /// one worker process each.
    pub async fn start(plans: Vec<Plan>) -> Result<Shares> {
        let mut handles = Vec::with_capacity(plans.len());
        if plans.len() == 1 {
            handles.extend(plans.into_iter().map(ShareHandle::local));
        } else {
            for plan in plans {
                handles.push(ShareHandle::child(plan).await?);
            }
        }
        Ok(Shares(handles))
    }

    /// The processes running the shares (this one for an in-process share).
    pub fn pids(&self) -> Vec<u32> {
        let mut pids: Vec<u32> = self
            .0
            .iter()
            .filter_map(|share| match share {
                ShareHandle::Local { .. } => Some(std::process::id()),
                ShareHandle::Child(worker) => worker.child.id(),
            })
            .collect();
        pids.dedup();
        pids
    }

    pub async fn broadcast(&mut self, command: ToShare) -> Result<()> {
        for share in &mut self.0 {
            share.send(command.clone()).await?;
        }
        Ok(())
    }

    /// One reply from every share, in share order.
    pub async fn collect(&mut self) -> Result<Vec<FromShare>> {
        let replies = futures_util::future::join_all(self.0.iter_mut().map(|s| s.recv())).await;
        replies.into_iter().collect()
    }

    /// Waits for worker processes to exit after their last reply.
    pub async fn finish(self) {
        for share in self.0 {
            if let ShareHandle::Child(mut worker) = share {
                let waited =
                    tokio::time::timeout(Duration::from_secs(10), worker.child.wait()).await;
                if waited.is_err() {
                    let _ = worker.child.kill().await;
                }
            }
        }
    }
}

/// What [`run_timed`] collected.
pub struct Timed {
    /// Each share's final reply, in share order.
    pub replies: Vec<FromShare>,
    /// The slowest share's setup.
    pub setup_secs: f64,
    /// CPU used by the server process(es) during the measured window, in
    /// percent of one core.
    pub server_cpu_percent: Option<f64>,
    /// The same for the bench's client process(es).
    pub bench_cpu_percent: Option<f64>,
}

/// Runs shares that set up, answer `Ready`, then run a schedule from a
/// common `Start` and send one final reply: starts them, waits until all
/// are ready, starts them all at the same moment, samples CPU use over the
/// measured window (`warmup` seconds after the start, for `duration`
/// seconds), and collects the final replies.
pub async fn run_timed(
    plans: Vec<Plan>,
    server_pids: &[u32],
    warmup: f64,
    duration: f64,
) -> Result<Timed> {
    run_timed_with(plans, server_pids, warmup, duration, None).await
}

/// As [`run_timed`], also telling `started` the schedule's start (Unix
/// microseconds) once it is fixed, for work the parent runs alongside.
pub async fn run_timed_with(
    plans: Vec<Plan>,
    server_pids: &[u32],
    warmup: f64,
    duration: f64,
    started: Option<tokio::sync::oneshot::Sender<i64>>,
) -> Result<Timed> {
    let mut shares = Shares::start(plans).await?;
    let mut setup_secs: f64 = 0.0;
    for reply in shares.collect().await? {
        match reply {
            FromShare::Ready { setup_secs: s } => setup_secs = setup_secs.max(s),
            other => bail!("expected Ready from a share, got {other:?}"),
        }
    }
    let at = clock::now_micros() + START_LEAD.as_micros() as i64;
    let bench_pids = shares.pids();
    shares.broadcast(ToShare::Start { at_micros: at }).await?;
    if let Some(started) = started {
        let _ = started.send(at);
    }
    // CPU use over the measured window, as percent of one core.
    let cpu = async {
        let from = at + (warmup * 1e6) as i64;
        tokio::time::sleep_until(clock::instant_at(from)).await;
        let before = (
            spawn::cpu_seconds_of(server_pids),
            spawn::cpu_seconds_of(&bench_pids),
        );
        tokio::time::sleep_until(clock::instant_at(from + (duration * 1e6) as i64)).await;
        let percent =
            |before: Option<f64>, after: Option<f64>| Some((after? - before?) / duration * 100.0);
        (
            percent(before.0, spawn::cpu_seconds_of(server_pids)),
            percent(before.1, spawn::cpu_seconds_of(&bench_pids)),
        )
    };
    let (cpu, replies) = tokio::join!(cpu, shares.collect());
    let replies = replies?;
    shares.finish().await;
    Ok(Timed {
        replies,
        setup_secs,
        server_cpu_percent: cpu.0,
        bench_cpu_percent: cpu.1,
    })
}

/// Share side of [`run_timed`]: reports `Ready` and waits for `Start`;
/// returns the schedule's start (Unix microseconds).
pub async fn ready_then_start(
    setup_secs: f64,
    commands: &mut mpsc::Receiver<ToShare>,
    replies: &mpsc::Sender<FromShare>,
) -> Result<i64> {
    replies.send(FromShare::Ready { setup_secs }).await?;
    match commands.recv().await {
        Some(ToShare::Start { at_micros }) => Ok(at_micros),
        Some(other) => bail!("expected Start, got {other:?}"),
        None => bail!("the parent went away"),
    }
}

/// Runs one share until its work is done, replying on `replies`.
async fn serve(plan: Plan, commands: mpsc::Receiver<ToShare>, replies: mpsc::Sender<FromShare>) {
    let result = match plan.work.clone() {
        Work::Traffic(work) => {
            crate::scenarios::traffic::run_share(&plan, work, commands, &replies).await
        }
        Work::Idle(work) => {
            crate::scenarios::idle::run_share(&plan, work, commands, &replies).await
        }
        Work::Agents(work) => {
            crate::scenarios::agents::run_share(&plan, work, commands, &replies).await
        }
        Work::Queue(work) => {
            crate::scenarios::queue::run_share(&plan, work, commands, &replies).await
        }
    };
    if let Err(err) = result {
        let _ = replies
            .send(FromShare::Failed {
                error: format!("share {}: {err:#}", plan.share),
            })
            .await;
    }
}

/// The hidden `worker` subcommand: one share, driven over stdin/stdout.
pub fn worker_main() -> Result<()> {
    // Our own buffer (not `StdinLock`, which cannot move to another thread)
    // so that bytes read past the plan line stay with the command reader.
    let mut stdin = std::io::BufReader::new(std::io::stdin());
    let mut first = String::new();
    stdin.read_line(&mut first)?;
    let plan: Plan = serde_json::from_str(&first).context("unreadable worker plan")?;

    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let (command_tx, commands) = mpsc::channel(16);
    // A plain thread, as tokio's stdin would keep the runtime from shutting
    // down while it waits for input. When the parent goes away stdin ends,
    // the channel closes, and the share stops.
    std::thread::spawn(move || {
        for line in stdin.lines() {
            let Ok(line) = line else { break };
            match serde_json::from_str::<ToShare>(&line) {
                Ok(command) => {
                    if command_tx.blocking_send(command).is_err() {
                        break;
                    }
                }
                Err(err) => {
                    eprintln!("chatgate-bench worker: bad command: {err}");
                    break;
                }
            }
        }
    });
    runtime.block_on(async {
        let (reply_tx, mut replies) = mpsc::channel(16);
        tokio::spawn(serve(plan, commands, reply_tx));
        let mut stdout = std::io::stdout().lock();
        while let Some(reply) = replies.recv().await {
            serde_json::to_writer(&mut stdout, &reply)?;
            stdout.write_all(b"\n")?;
            stdout.flush()?;
        }
        anyhow::Ok(())
    })?;
    runtime.shutdown_timeout(Duration::from_secs(1));
    Ok(())
}
