//! `idle`: how much memory an idle visitor session costs the server.
//!
//! The parent ramps the number of held sessions through `--steps`; at each
//! step every share opens its part (authenticate, WebSocket, CONNECT,
//! SUBSCRIBE with a receipt), the server settles, and the parent samples its
//! RSS. Bytes per session is the least-squares slope of RSS over the steps,
//! which cancels the fixed cost of the process.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Result};
use futures_util::SinkExt;
use serde::{Deserialize, Serialize};
use tokio::sync::{mpsc, watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::IdleArgs;
use crate::client::{self, Credentials, Endpoint, HttpPool, Session, Sources};
use crate::report::{self, IdleReport, IdleStep};
use crate::shard::{FromShare, Plan, Shares, ToShare, Work};
use crate::spawn::{self, Deployment, Flavor};

const MAX_SAMPLES: usize = 5;

/// Nothing beyond the common [`Plan`] yet; a struct so options can be added.
#[derive(Debug, Clone, Default, Serialize, Deserialize)]
pub struct IdlePlan {}

/// A share's answer to `Open`.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Opened {
    /// Sessions held now.
    pub held: usize,
    /// Sessions that could not be opened in this step.
    pub failed: u64,
    pub samples: Vec<String>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct IdleShareResult {
    /// Sessions the server closed while held.
    pub closed_sockets: u64,
    pub samples: Vec<String>,
}

/// Counts sessions that the server closed while they were held.
#[derive(Default)]
struct Closures {
    count: AtomicU64,
    samples: Mutex<Vec<String>>,
}

impl Closures {
    fn record(&self, why: String) {
        self.count.fetch_add(1, Ordering::Relaxed);
        let mut samples = self.samples.lock().expect("samples lock");
        if samples.len() < MAX_SAMPLES {
            samples.push(why);
        }
    }
}

/// Share side: open sessions on `Open`, hold them, close them on `Finish`.
pub async fn run_share(
    plan: &Plan,
    _work: IdlePlan,
    mut commands: mpsc::Receiver<ToShare>,
    replies: &mpsc::Sender<FromShare>,
) -> Result<()> {
    let endpoint = Endpoint::resolve(&plan.target.front).await?;
    let sources = Arc::new(Sources::new(plan.source_ips, plan.share, endpoint.addr));
    let http = Arc::new(HttpPool::new(&sources)?);
    let target = plan.target.clone();
    let closures = Arc::new(Closures::default());
    let (stop_tx, stop_rx) = watch::channel(false);
    let mut holders = JoinSet::new();
    let mut held = 0usize;

    while let Some(command) = commands.recv().await {
        let sessions = match command {
            ToShare::Open { sessions } => sessions,
            ToShare::Finish => break,
            other => bail!("unexpected command for idle: {other:?}"),
        };
        let permits = Arc::new(Semaphore::new(plan.connect_concurrency.max(1)));
        let mut opening = JoinSet::new();
        for _ in held..sessions {
            let (permits, http, sources, endpoint, target) = (
                permits.clone(),
                http.clone(),
                sources.clone(),
                endpoint.clone(),
                target.clone(),
            );
            opening.spawn(async move {
                let _permit = permits.acquire_owned().await.expect("never closed");
                let credentials = match target.flavor {
                    Flavor::Relay => Credentials::relay(),
                    Flavor::Chatgate => {
                        let channel = target
                            .channel
                            .ok_or_else(|| anyhow!("no channel id for {}", target.label))?;
                        client::authenticate(&http.pick(), &endpoint, channel).await?
                    }
                };
                client::open_session(&endpoint, sources.pick(), &credentials).await
            });
        }
        let mut failed = 0;
        let mut samples = Vec::new();
        while let Some(joined) = opening.join_next().await {
            match joined.map_err(anyhow::Error::from).and_then(|r| r) {
                Ok(session) => {
                    held += 1;
                    holders.spawn(hold(session, closures.clone(), stop_rx.clone()));
                }
                Err(err) => {
                    failed += 1;
                    if samples.len() < MAX_SAMPLES {
                        samples.push(format!("cannot open a session: {err:#}"));
                    }
                }
            }
        }
        replies
            .send(FromShare::Opened(Opened {
                held,
                failed,
                samples,
            }))
            .await?;
    }

    // Stop watching before the sockets close, so that is not counted.
    let _ = stop_tx.send(true);
    let _ = tokio::time::timeout(Duration::from_secs(10), async {
        while holders.join_next().await.is_some() {}
    })
    .await;
    let result = IdleShareResult {
        closed_sockets: closures.count.load(Ordering::Relaxed),
        samples: closures.samples.lock().expect("samples lock").clone(),
    };
    replies.send(FromShare::IdleDone(result)).await?;
    Ok(())
}

/// Holds a session, noticing if the server closes it.
async fn hold(mut session: Session, closures: Arc<Closures>, mut stop: watch::Receiver<bool>) {
    loop {
        let next = tokio::select! {
            biased;
            _ = stop.changed() => break,
            next = session.frames.next() => next,
        };
        match next {
            Ok(Some(_)) => {}
            Ok(None) => return closures.record("an idle session was closed by the server".into()),
            Err(err) => return closures.record(format!("an idle session failed: {err:#}")),
        }
    }
    let _ = tokio::time::timeout(Duration::from_secs(2), session.sink.close()).await;
}

/// Parent side of `idle`.
pub async fn run(args: &IdleArgs) -> Result<bool> {
    if args.steps.is_empty() || args.steps.windows(2).any(|w| w[0] >= w[1]) {
        bail!("--steps must be ascending session counts, e.g. 1000,5000,10000");
    }
    let deployment = spawn::chatgate(&args.target, true).await?;
    let result = ramp(args, &deployment).await;
    deployment.shutdown().await;
    let report = result?;
    report::print_idle(&report);
    if let Some(path) = &args.run.json {
        report::write_json(path, "idle", args, &[&report])?;
    }
    if report.failed() {
        eprintln!(
            "chatgate-bench: FAILED: {} sessions could not be opened, {} were closed by the server",
            report.failed_opens, report.closed_sockets
        );
    }
    Ok(!report.failed())
}

async fn ramp(args: &IdleArgs, target: &Deployment) -> Result<IdleReport> {
    let largest = *args.steps.last().expect("checked non-empty");
    let procs = args.run.procs_for(largest);
    let plans = (0..procs)
        .map(|share| Plan {
            share,
            shares: procs,
            target: target.spec.clone(),
            source_ips: args.run.source_ips,
            connect_concurrency: args.run.connect_concurrency.div_ceil(procs),
            work: Work::Idle(IdlePlan::default()),
        })
        .collect();
    let rss = || target.rss_pid.and_then(|pid| spawn::rss_bytes(pid).ok());
    let settle = Duration::from_secs_f64(args.settle);

    let mut shares = Shares::start(plans).await?;
    tokio::time::sleep(settle).await;
    let baseline = rss();
    let mut steps = Vec::new();
    let mut ramp_secs = 0.0;
    let mut held = 0;
    let mut failed_opens = 0;
    let mut samples = Vec::new();
    for &step in &args.steps {
        let started = Instant::now();
        for (share, handle) in shares.0.iter_mut().enumerate() {
            // Share j holds its part of the total: the parts always add up to `step`.
            let part = step * (share + 1) / procs - step * share / procs;
            handle.send(ToShare::Open { sessions: part }).await?;
        }
        held = 0;
        for reply in shares.collect().await? {
            if let FromShare::Opened(opened) = reply {
                held += opened.held;
                failed_opens += opened.failed;
                samples.extend(opened.samples);
            }
        }
        ramp_secs += started.elapsed().as_secs_f64();
        tokio::time::sleep(settle).await;
        steps.push(IdleStep {
            sessions: held,
            rss_bytes: rss(),
        });
    }
    shares.broadcast(ToShare::Finish).await?;
    let mut closed_sockets = 0;
    for reply in shares.collect().await? {
        if let FromShare::IdleDone(done) = reply {
            closed_sockets += done.closed_sockets;
            samples.extend(done.samples);
        }
    }
    shares.finish().await;

    let points: Vec<(f64, f64)> = steps
        .iter()
        .filter_map(|s| s.rss_bytes.map(|rss| (s.sessions as f64, rss as f64)))
        .collect();
    // With a single step the baseline is the only other point available.
    let points = match (points.len(), baseline) {
        (1, Some(base)) => vec![(0.0, base as f64), points[0]],
        _ => points,
    };
    samples.truncate(10);
    Ok(IdleReport {
        target: target.spec.label.clone(),
        pid: target.rss_pid,
        processes: procs,
        baseline_rss_bytes: baseline,
        steps,
        bytes_per_session: report::slope(&points),
        connect_rate: if ramp_secs > 0.0 {
            held as f64 / ramp_secs
        } else {
            0.0
        },
        failed_opens,
        closed_sockets,
        error_samples: samples,
    })
}
