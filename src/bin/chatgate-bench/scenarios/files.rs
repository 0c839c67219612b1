//! `files`: what attachments cost the server, in memory and in time.
//!
//! **Part 1, big uploads** (memory). `--concurrency` visitors each open a
//! connection to `POST /chatplugin.upload`; once all are connected they
//! stream a `--size` PDF at the same moment (multipart, one part `file`).
//! The body is written in 64 KiB pieces from one small buffer, so the
//! bench holds no upload whole either. The server's RSS is sampled every
//! `--sample-ms` from a thread of its own (`VmRSS` of `/proc/PID/status`),
//! and its high-water mark (`VmHWM`) is reset before the uploads (writing
//! 5 to `/proc/PID/clear_refs`) and read after them, so a peak between two
//! samples is not missed. Passes when every upload is answered 201 with
//! the right size and type, and the peak is less than `--rss-budget-mib`
//! above the RSS before.
//!
//! **Part 2, images** (latency). One image of about `--image-size` bytes
//! (noise over a gradient, so it does not compress away; the noise's
//! strength is tuned until the encoded image has that size) is uploaded at
//! `--rate` per second, open loop, by `--visitors` visitors in turn. Each
//! upload is timed from when it was due to its 201, which the server sends
//! after it stored the image and made its thumbnail. The first `--warmup`
//! seconds are excluded; the server's CPU is read from `/proc/PID/stat`
//! over the measured `--duration`. Passes when nothing failed and the p99
//! is under `--p99-budget-ms`; one thumbnail is then fetched and checked.
//!
//! With `--backend postgres` the uploads go to instance A, whose files
//! directory the bench chose (`CHATGATE_FILES_URL`).

use std::net::{IpAddr, SocketAddr};
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::Duration;

use anyhow::{anyhow, bail, Context, Result};
use bytes::Bytes;
use serde::{Deserialize, Serialize};
use tokio::io::{AsyncReadExt, AsyncWrite, AsyncWriteExt};
use tokio::net::{TcpSocket, TcpStream};
use tokio::sync::{watch, Semaphore};
use tokio::task::JoinSet;
use tokio::time::Instant;

use crate::cli::{FilesArgs, FilesPart, ImageFormat};
use crate::client::{self, Endpoint, HttpPool, Sources};
use crate::report::{self, Percentiles};
use crate::spawn::{self, Deployment};

/// The server's default upload cap (`CHATGATE_MAX_UPLOAD_BYTES`).
const DEFAULT_CAP: u64 = 10 * 1024 * 1024;
/// Pieces a big upload's body is written in.
const PIECE: usize = 64 * 1024;
/// One big upload (connect to answer) must finish within this.
const BIG_TIMEOUT: Duration = Duration::from_secs(300);
const BOUNDARY: &str = "chatgate-bench-2f0c9a41d7";
/// Error messages kept for the report.
const MAX_SAMPLES: usize = 5;
const MIB: f64 = 1024.0 * 1024.0;

pub async fn run(args: &FilesArgs) -> Result<bool> {
    if !(args.rate > 0.0
        && args.duration > 0.0
        && args.load.warmup >= 0.0
        && args.load.drain >= 0.0)
    {
        bail!("--rate and --duration must be positive, --warmup and --drain not negative");
    }
    if args.size < 64 {
        bail!("--size must be at least 64 bytes");
    }
    let cap = args.size.max(args.image_size).max(DEFAULT_CAP).to_string();
    let extra = [("CHATGATE_MAX_UPLOAD_BYTES", cap.as_str())];
    let deployment = spawn::chatgate_with(&args.target, true, &extra).await?;
    let outcome = measure(args, &deployment).await;
    deployment.shutdown().await;
    outcome
}

/// The whole report, for `--json`.
#[derive(Debug, Serialize)]
struct FilesReport {
    target: String,
    server_pid: Option<u32>,
    big: Option<BigReport>,
    images: Option<ImagesReport>,
    passed: bool,
}

async fn measure(args: &FilesArgs, deployment: &Deployment) -> Result<bool> {
    let endpoint = Endpoint::resolve(&deployment.spec.front).await?;
    let channel = deployment
        .spec
        .channel
        .context("the target has no channel (pass --channel-id)")?;
    let sources = Sources::new(8, 0, endpoint.addr);
    let http = HttpPool::new(&sources)?;
    let visitors = args.visitors.max(args.concurrency) as usize;
    let mut tokens = Vec::with_capacity(visitors);
    for _ in 0..visitors {
        let credentials = client::authenticate(&http.pick(), &endpoint, channel).await?;
        tokens.push(credentials.token.unwrap_or_default());
    }
    // The paths every upload takes, before anything is measured.
    for token in tokens.iter().take(4) {
        upload(
            &http.pick(),
            &endpoint,
            token,
            multipart("warm-up.txt", "text/plain", b"warming up\n"),
        )
        .await
        .context("a warm-up upload failed")?;
    }

    let mut passed = true;
    let mut report = FilesReport {
        target: deployment.spec.label.clone(),
        server_pid: deployment.rss_pid,
        big: None,
        images: None,
        passed: true,
    };
    if args.only != Some(FilesPart::Images) {
        let big = big_uploads(args, &endpoint, &sources, &tokens, deployment.rss_pid).await?;
        print_big(args, &report.target, &big);
        passed &= big.passed;
        report.big = Some(big);
    }
    if args.only != Some(FilesPart::Big) {
        let images = images(args, &endpoint, &http, &tokens, deployment).await?;
        print_images(args, &report.target, &images);
        passed &= images.passed;
        report.images = Some(images);
    }
    report.passed = passed;
    println!("{}", if passed { "PASS" } else { "FAIL" });
    if let Some(path) = &args.json {
        report::write_json(path, "files", args, &report)?;
    }
    Ok(passed)
}

// ---------------------------------------------------------------------------
// Part 1: big uploads at once.

#[derive(Debug, Serialize)]
struct BigReport {
    uploads: u32,
    size_bytes: u64,
    /// 201 with the right size and type.
    stored: u32,
    errors: u32,
    error_samples: Vec<String>,
    /// From the common start to the last answer.
    seconds: f64,
    /// Bytes of file (not counting multipart framing) per second, all uploads together.
    mib_per_sec: f64,
    /// Each upload from the common start to its answer.
    latency_ms: Percentiles,
    memory: Option<Memory>,
    passed: bool,
}

/// The server's memory around part 1, in bytes.
#[derive(Debug, Clone, Serialize)]
struct Memory {
    rss_before: u64,
    /// The highest of the samples and (when it could be reset) `VmHWM`.
    rss_peak: u64,
    /// The highest sample alone.
    rss_peak_sampled: u64,
    /// `VmHWM` after the uploads, when it was reset before them.
    hwm_after_reset: Option<u64>,
    /// Anonymous memory (heap) before and at its highest sample.
    anon_before: u64,
    anon_peak_sampled: u64,
    /// One second after the last answer.
    rss_after: u64,
    samples: u64,
    rise: u64,
}

async fn big_uploads(
    args: &FilesArgs,
    endpoint: &Endpoint,
    sources: &Sources,
    tokens: &[String],
    pid: Option<u32>,
) -> Result<BigReport> {
    let body = Arc::new(BigBody::new(args.size));
    let (go_tx, go_rx) = watch::channel(false);
    let (connected_tx, mut connected_rx) = tokio::sync::mpsc::channel::<()>(1024);
    let mut tasks = JoinSet::new();
    for token in tokens.iter().take(args.concurrency as usize) {
        let (body, mut go, connected) = (body.clone(), go_rx.clone(), connected_tx.clone());
        let (addr, from, token) = (endpoint.addr, sources.pick(), token.clone());
        tasks.spawn(async move {
            let stream = connect_from(addr, from).await;
            let _ = connected.send(()).await;
            drop(connected);
            let mut stream = stream?;
            // Everyone starts together.
            while !*go.borrow_and_update() {
                go.changed().await.context("never started")?;
            }
            let answer =
                tokio::time::timeout(BIG_TIMEOUT, stream_upload(&mut stream, addr, &token, &body))
                    .await
                    .map_err(|_| anyhow!("no answer within {BIG_TIMEOUT:?}"))??;
            anyhow::Ok((Instant::now(), answer))
        });
    }
    drop(connected_tx);
    // Every connection open (or failed) before anything is measured; the
    // server closes one that sends nothing for its header deadline (10 s),
    // so this must not wait for the tasks to end.
    for _ in 0..args.concurrency {
        if connected_rx.recv().await.is_none() {
            break;
        }
    }

    // Memory before, then the uploads with the sampler running.
    let before = pid.map(read_memory).transpose()?;
    let hwm_reset = pid.is_some_and(reset_hwm);
    let sampler = pid.map(|pid| Sampler::start(pid, Duration::from_millis(args.sample_ms)));
    let start = Instant::now();
    go_tx.send_replace(true);
    let mut latency = report::histogram();
    let (mut stored, mut errors, mut samples) = (0u32, 0u32, Vec::new());
    let mut last = start;
    while let Some(joined) = tasks.join_next().await {
        let outcome = joined
            .map_err(|e| anyhow!("an upload task failed: {e}"))
            .and_then(|r| r);
        match outcome {
            Ok((done, answer)) => {
                last = last.max(done);
                latency.saturating_record((done - start).as_micros() as u64);
                match check_answer(&answer, args.size, "application/pdf") {
                    Ok(()) => stored += 1,
                    Err(why) => {
                        errors += 1;
                        if samples.len() < MAX_SAMPLES {
                            samples.push(why);
                        }
                    }
                }
            }
            Err(err) => {
                errors += 1;
                if samples.len() < MAX_SAMPLES {
                    samples.push(format!("{err:#}"));
                }
            }
        }
    }
    let seconds = (last - start).as_secs_f64();
    let peaks = sampler.map(Sampler::stop);
    let memory = match (pid, before, peaks) {
        (Some(pid), Some(before), Some(peaks)) => {
            let hwm = if hwm_reset {
                read_memory(pid).ok().map(|m| m.hwm)
            } else {
                None
            };
            tokio::time::sleep(Duration::from_secs(1)).await;
            let after = read_memory(pid)?;
            let peak = peaks.rss.max(hwm.unwrap_or(0));
            Some(Memory {
                rss_before: before.rss,
                rss_peak: peak,
                rss_peak_sampled: peaks.rss,
                hwm_after_reset: hwm,
                anon_before: before.anon,
                anon_peak_sampled: peaks.anon,
                rss_after: after.rss,
                samples: peaks.samples,
                rise: peak.saturating_sub(before.rss),
            })
        }
        _ => None,
    };
    let within_budget = memory
        .as_ref()
        .is_none_or(|m| (m.rise as f64) < args.rss_budget_mib * MIB);
    Ok(BigReport {
        uploads: args.concurrency,
        size_bytes: args.size,
        stored,
        errors,
        error_samples: samples,
        seconds,
        mib_per_sec: if seconds > 0.0 {
            f64::from(stored) * args.size as f64 / MIB / seconds
        } else {
            0.0
        },
        latency_ms: Percentiles::of(&latency),
        passed: errors == 0 && within_budget && memory.is_some(),
        memory,
    })
}

/// A big upload's multipart body: a PDF of `size` bytes (a header, lines of
/// padding, a trailer) between the part's head and the closing boundary,
/// produced piece by piece from one line-aligned buffer.
struct BigBody {
    head: Vec<u8>,
    tail: Vec<u8>,
    size: u64,
    /// Padding lines, `PIECE` bytes.
    padding: Vec<u8>,
}

const PDF_HEAD: &[u8] = b"%PDF-1.7\n%\xe2\xe3\xcf\xd3\n";
const PDF_TAIL: &[u8] = b"\n%%EOF\n";

impl BigBody {
    fn new(size: u64) -> BigBody {
        let line = b"% chatgate-bench padding: 0123456789abcdefghijklmnopqrstuvwxyz\n";
        let padding: Vec<u8> = line.iter().copied().cycle().take(PIECE).collect();
        BigBody {
            head: part_head("bench.pdf", "application/pdf"),
            tail: format!("\r\n--{BOUNDARY}--\r\n").into_bytes(),
            size,
            padding,
        }
    }

    fn len(&self) -> u64 {
        self.head.len() as u64 + self.size + self.tail.len() as u64
    }

    /// Writes the whole body to `out`, at most `PIECE` bytes at a time.
    async fn write(&self, out: &mut (impl AsyncWrite + Unpin)) -> std::io::Result<()> {
        out.write_all(&self.head).await?;
        out.write_all(PDF_HEAD).await?;
        let mut left = self.size - (PDF_HEAD.len() + PDF_TAIL.len()) as u64;
        while left > 0 {
            let n = left.min(PIECE as u64) as usize;
            out.write_all(&self.padding[..n]).await?;
            left -= n as u64;
        }
        out.write_all(PDF_TAIL).await?;
        out.write_all(&self.tail).await
    }
}

fn part_head(name: &str, content_type: &str) -> Vec<u8> {
    format!(
        "--{BOUNDARY}\r\ncontent-disposition: form-data; name=\"file\"; filename=\"{name}\"\r\n\
         content-type: {content_type}\r\n\r\n"
    )
    .into_bytes()
}

/// A whole multipart body with `data` as its `file` part.
fn multipart(name: &str, content_type: &str, data: &[u8]) -> Bytes {
    let mut body = part_head(name, content_type);
    body.extend_from_slice(data);
    body.extend_from_slice(format!("\r\n--{BOUNDARY}--\r\n").as_bytes());
    body.into()
}

async fn connect_from(server: SocketAddr, from: IpAddr) -> Result<TcpStream> {
    let socket = match server {
        SocketAddr::V4(_) => TcpSocket::new_v4()?,
        SocketAddr::V6(_) => TcpSocket::new_v6()?,
    };
    if !from.is_unspecified() {
        socket.bind(SocketAddr::new(from, 0))?;
    }
    let stream = socket
        .connect(server)
        .await
        .with_context(|| format!("cannot connect to {server} from {from}"))?;
    stream.set_nodelay(true)?;
    Ok(stream)
}

/// An HTTP answer: status and body.
#[derive(Debug)]
struct Answer {
    status: u16,
    body: Vec<u8>,
}

/// `POST /chatplugin.upload` over `stream` with `body`, streamed, then the
/// answer read to the end (the request asks to close the connection).
async fn stream_upload(
    stream: &mut TcpStream,
    addr: SocketAddr,
    token: &str,
    body: &BigBody,
) -> Result<Answer> {
    let head = format!(
        "POST /chatplugin.upload HTTP/1.1\r\nhost: {addr}\r\nauthorization: Bearer {token}\r\n\
         content-type: multipart/form-data; boundary={BOUNDARY}\r\ncontent-length: {}\r\n\
         connection: close\r\n\r\n",
        body.len()
    );
    let written = async {
        stream.write_all(head.as_bytes()).await?;
        body.write(stream).await?;
        stream.flush().await
    }
    .await;
    // A server that refuses early answers and closes while the body is
    // still being written: read what it said before reporting the write.
    let mut raw = Vec::new();
    let read = stream.read_to_end(&mut raw).await;
    if raw.is_empty() {
        written.context("writing the upload")?;
        read.context("reading the answer")?;
        bail!("the server closed the connection without an answer");
    }
    parse_answer(&raw)
}

/// Parses an HTTP/1.1 response read to its end (`content-length` or
/// `transfer-encoding: chunked` body).
fn parse_answer(raw: &[u8]) -> Result<Answer> {
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .ok_or_else(|| anyhow!("an answer without a complete head"))?;
    let head = std::str::from_utf8(&raw[..split]).context("an answer head that is not text")?;
    let mut lines = head.split("\r\n");
    let status: u16 = lines
        .next()
        .and_then(|line| line.split(' ').nth(1))
        .and_then(|code| code.parse().ok())
        .ok_or_else(|| anyhow!("no status in {}", client::clip(head)))?;
    let chunked = lines.any(|line| {
        let lower = line.to_ascii_lowercase();
        lower.starts_with("transfer-encoding:") && lower.contains("chunked")
    });
    let rest = &raw[split + 4..];
    let body = if chunked {
        dechunk(rest)?
    } else {
        rest.to_vec()
    };
    Ok(Answer { status, body })
}

fn dechunk(mut data: &[u8]) -> Result<Vec<u8>> {
    let mut body = Vec::new();
    loop {
        let end = data
            .windows(2)
            .position(|w| w == b"\r\n")
            .ok_or_else(|| anyhow!("a chunk without its size line"))?;
        let size_line = std::str::from_utf8(&data[..end])?;
        let size = usize::from_str_radix(size_line.split(';').next().unwrap_or("").trim(), 16)
            .with_context(|| format!("bad chunk size `{size_line}`"))?;
        data = &data[end + 2..];
        if size == 0 {
            return Ok(body);
        }
        if data.len() < size + 2 {
            bail!("a chunk cut short");
        }
        body.extend_from_slice(&data[..size]);
        data = &data[size + 2..];
    }
}

/// The part of an attachment's JSON the bench checks.
#[derive(Deserialize)]
struct AttachmentJson {
    size: u64,
    content_type: String,
    thumbnail_url: Option<String>,
}

/// Whether `answer` is a 201 for a file of `size` bytes and `content_type`.
fn check_answer(answer: &Answer, size: u64, content_type: &str) -> Result<(), String> {
    let body = String::from_utf8_lossy(&answer.body);
    if answer.status != 201 {
        return Err(format!("HTTP {}: {}", answer.status, client::clip(&body)));
    }
    let json: AttachmentJson = serde_json::from_slice(&answer.body)
        .map_err(|e| format!("unexpected 201 body ({e}): {}", client::clip(&body)))?;
    if json.size != size || json.content_type != content_type {
        return Err(format!(
            "stored as {} bytes of {}, sent {size} of {content_type}",
            json.size, json.content_type
        ));
    }
    Ok(())
}

/// Memory figures of a process, in bytes.
#[derive(Debug, Clone, Copy, Default)]
struct Mem {
    rss: u64,
    hwm: u64,
    anon: u64,
}

/// `VmRSS`, `VmHWM` and `RssAnon` of `/proc/PID/status`.
fn read_memory(pid: u32) -> Result<Mem> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))
        .with_context(|| format!("cannot read /proc/{pid}/status"))?;
    let mut mem = Mem::default();
    for line in status.lines() {
        let Some((key, value)) = line.split_once(':') else {
            continue;
        };
        let field = match key {
            "VmRSS" => &mut mem.rss,
            "VmHWM" => &mut mem.hwm,
            "RssAnon" => &mut mem.anon,
            _ => continue,
        };
        let kib: u64 = value
            .trim()
            .trim_end_matches("kB")
            .trim()
            .parse()
            .with_context(|| format!("unreadable {key} in /proc/{pid}/status"))?;
        *field = kib * 1024;
    }
    if mem.rss == 0 {
        bail!("no VmRSS in /proc/{pid}/status");
    }
    Ok(mem)
}

/// Resets the process's `VmHWM` to its current RSS (Linux 4.0+, a process
/// of the same user); whether that worked.
fn reset_hwm(pid: u32) -> bool {
    std::fs::write(format!("/proc/{pid}/clear_refs"), "5").is_ok()
}

/// The highest figures seen by a [`Sampler`].
#[derive(Debug, Clone, Copy, Default)]
struct Peaks {
    rss: u64,
    anon: u64,
    samples: u64,
}

/// Samples a process's memory on a thread of its own, so a busy runtime
/// does not delay the samples.
struct Sampler {
    stop: Arc<AtomicBool>,
    thread: std::thread::JoinHandle<Peaks>,
}

impl Sampler {
    fn start(pid: u32, every: Duration) -> Sampler {
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let thread = std::thread::spawn(move || {
            let mut peaks = Peaks::default();
            loop {
                if let Ok(mem) = read_memory(pid) {
                    peaks.rss = peaks.rss.max(mem.rss);
                    peaks.anon = peaks.anon.max(mem.anon);
                    peaks.samples += 1;
                }
                if stopping.load(Ordering::Relaxed) {
                    return peaks;
                }
                std::thread::sleep(every);
            }
        });
        Sampler { stop, thread }
    }

    fn stop(self) -> Peaks {
        self.stop.store(true, Ordering::Relaxed);
        self.thread.join().unwrap_or_default()
    }
}

fn print_big(args: &FilesArgs, target: &str, big: &BigReport) {
    println!();
    println!(
        "files, big uploads: {target}, {} uploads of {} at once (POST /chatplugin.upload, streamed)",
        big.uploads,
        bytes_text(big.size_bytes)
    );
    println!(
        "stored {} of {} in {:.2} s ({:.0} MiB/s); each from the common start: p50 {:.0} ms, max {:.0} ms",
        big.stored, big.uploads, big.seconds, big.mib_per_sec, big.latency_ms.p50, big.latency_ms.max
    );
    match &big.memory {
        Some(m) => {
            let ok = (m.rise as f64) < args.rss_budget_mib * MIB;
            println!(
                "server RSS: {:.1} MiB before, {:.1} MiB at the peak (sampled {:.1} every {} ms, {} samples; VmHWM {}): +{:.1} MiB (budget {:.0}){}",
                m.rss_before as f64 / MIB,
                m.rss_peak as f64 / MIB,
                m.rss_peak_sampled as f64 / MIB,
                args.sample_ms,
                m.samples,
                m.hwm_after_reset
                    .map_or("not resettable".into(), |h| format!("{:.1}", h as f64 / MIB)),
                m.rise as f64 / MIB,
                args.rss_budget_mib,
                if ok { "" } else { "  FAIL" },
            );
            println!(
                "  anonymous (heap): {:.1} MiB before, {:.1} MiB at the highest sample; RSS 1 s after: {:.1} MiB",
                m.anon_before as f64 / MIB,
                m.anon_peak_sampled as f64 / MIB,
                m.rss_after as f64 / MIB
            );
        }
        None => println!("server RSS: unknown (pass --server-pid)  FAIL"),
    }
    if big.errors > 0 {
        println!("  {} failed  FAIL", big.errors);
        for sample in &big.error_samples {
            println!("    {sample}");
        }
    }
}

// ---------------------------------------------------------------------------
// Part 2: images at a fixed rate.

#[derive(Debug, Serialize)]
struct ImagesReport {
    image: ImageInfo,
    rate: f64,
    warmup_secs: f64,
    duration_secs: f64,
    /// Uploads issued, warm-up included.
    sent: u64,
    /// Answered 201, warm-up included.
    stored: u64,
    /// Answered 201 within the measured window, per second.
    stored_per_sec: f64,
    /// Planned time to 201, of uploads planned in the measured window.
    latency_ms: Percentiles,
    /// Answered with an error, failed, or unanswered after the drain.
    errors: u64,
    error_samples: Vec<String>,
    /// Percent of one core over the measured window (the machine has `cores`).
    server_cpu_percent: Option<f64>,
    bench_cpu_percent: Option<f64>,
    cores: usize,
    /// Server RSS before and after, in MiB.
    rss_before_mib: Option<f64>,
    rss_after_mib: Option<f64>,
    /// One thumbnail fetched afterwards: its size in pixels, or what was wrong.
    thumbnail: String,
    passed: bool,
}

#[derive(Debug, Clone, Serialize)]
struct ImageInfo {
    format: ImageFormat,
    width: u32,
    height: u32,
    bytes: usize,
    /// Noise amplitude (0..=255) over the gradient that gave this size.
    noise: u32,
}

/// Everything the image uploads record, shared between their tasks.
#[derive(Default)]
struct Tally {
    sent: AtomicU64,
    stored: AtomicU64,
    stored_in_window: AtomicU64,
    errors: AtomicU64,
    samples: Mutex<Vec<String>>,
    thumbnail_url: Mutex<Option<String>>,
}

impl Tally {
    fn error(&self, why: String) {
        self.errors.fetch_add(1, Ordering::Relaxed);
        let mut samples = self.samples.lock().expect("samples lock");
        if samples.len() < MAX_SAMPLES {
            samples.push(why);
        }
    }
}

async fn images(
    args: &FilesArgs,
    endpoint: &Endpoint,
    http: &HttpPool,
    tokens: &[String],
    deployment: &Deployment,
) -> Result<ImagesReport> {
    let (data, info) = {
        let (format, width, height, target) = (
            args.image_format,
            args.image_width,
            args.image_height,
            args.image_size,
        );
        tokio::task::spawn_blocking(move || noise_image(format, width, height, target)).await??
    };
    let (name, content_type) = match info.format {
        ImageFormat::Jpeg => ("noise.jpg", "image/jpeg"),
        ImageFormat::Png => ("noise.png", "image/png"),
        ImageFormat::Pdf => ("control.pdf", "application/pdf"),
    };
    let body = multipart(name, content_type, &data);
    let image_bytes = data.len() as u64;

    let total = (args.rate * (args.load.warmup + args.duration)).floor() as u64;
    let window = Duration::from_secs_f64(args.load.warmup)
        ..Duration::from_secs_f64(args.load.warmup + args.duration);
    let tally = Arc::new(Tally::default());
    let latency = Arc::new(Mutex::new(report::histogram()));
    let permits = Arc::new(Semaphore::new(args.max_in_flight as usize));
    let pids = deployment.server_pids();
    let rss_before = deployment.rss_pid.and_then(|p| spawn::rss_bytes(p).ok());
    let url: Arc<str> = format!("{}/chatplugin.upload", endpoint.http).into();

    let start = Instant::now() + Duration::from_millis(100);
    // CPU over the measured window, beside the schedule.
    let cpu = {
        let pids = pids.clone();
        let window = window.clone();
        tokio::spawn(async move {
            tokio::time::sleep_until(start + window.start).await;
            let before = (
                spawn::cpu_seconds_of(&pids),
                spawn::cpu_seconds(std::process::id()),
            );
            tokio::time::sleep_until(start + window.end).await;
            let secs = (window.end - window.start).as_secs_f64();
            let percent =
                |before: Option<f64>, after: Option<f64>| Some((after? - before?) / secs * 100.0);
            (
                percent(before.0, spawn::cpu_seconds_of(&pids)),
                percent(before.1, spawn::cpu_seconds(std::process::id())),
            )
        })
    };
    let mut tasks = JoinSet::new();
    for k in 0..total {
        let planned = start + Duration::from_secs_f64(k as f64 / args.rate);
        tokio::time::sleep_until(planned).await;
        let (tally, latency, permits) = (tally.clone(), latency.clone(), permits.clone());
        let (http, url, body) = (http.pick(), url.clone(), body.clone());
        let token = tokens[k as usize % args.visitors as usize].clone();
        let in_window = window.contains(&(planned - start));
        let (window_start, window_end) = (start + window.start, start + window.end);
        tasks.spawn(async move {
            let _permit = permits.acquire_owned().await.expect("never closed");
            tally.sent.fetch_add(1, Ordering::Relaxed);
            let response = http
                .post(&*url)
                .bearer_auth(&token)
                .header(
                    "content-type",
                    format!("multipart/form-data; boundary={BOUNDARY}"),
                )
                .body(body)
                .send()
                .await;
            let answer = match response {
                Ok(response) => {
                    let status = response.status().as_u16();
                    match response.bytes().await {
                        Ok(body) => Answer {
                            status,
                            body: body.to_vec(),
                        },
                        Err(err) => return tally.error(format!("upload {k}: reading: {err}")),
                    }
                }
                Err(err) => return tally.error(format!("upload {k}: {err}")),
            };
            let done = Instant::now();
            match check_answer(&answer, image_bytes, content_type) {
                Ok(()) => {
                    tally.stored.fetch_add(1, Ordering::Relaxed);
                    if done >= window_start && done < window_end {
                        tally.stored_in_window.fetch_add(1, Ordering::Relaxed);
                    }
                    if in_window {
                        report::record(&latency, (done - planned).as_micros() as i64);
                    }
                    let mut thumbnail = tally.thumbnail_url.lock().expect("thumbnail lock");
                    if thumbnail.is_none() {
                        *thumbnail = serde_json::from_slice::<AttachmentJson>(&answer.body)
                            .ok()
                            .and_then(|a| a.thumbnail_url);
                    }
                }
                Err(why) => tally.error(format!("upload {k}: {why}")),
            }
        });
        while tasks.try_join_next().is_some() {}
    }
    // The drain: what is still out after it counts as failed.
    let drain_until =
        Instant::now().max(start + window.end) + Duration::from_secs_f64(args.load.drain);
    while !tasks.is_empty() {
        match tokio::time::timeout_at(drain_until, tasks.join_next()).await {
            Ok(_) => {}
            Err(_) => {
                let left = tasks.len() as u64;
                tasks.abort_all();
                tally.error(format!(
                    "{left} uploads unanswered {} s after the schedule",
                    args.load.drain
                ));
                tally.errors.fetch_add(left - 1, Ordering::Relaxed);
                break;
            }
        }
    }
    let (server_cpu, bench_cpu) = cpu.await.unwrap_or((None, None));
    let rss_after = deployment.rss_pid.and_then(|p| spawn::rss_bytes(p).ok());
    let thumbnail_url = tally.thumbnail_url.lock().expect("thumbnail lock").clone();
    let thumbnail = match thumbnail_url {
        Some(path) => match check_thumbnail(&http.pick(), endpoint, &path).await {
            Ok(text) => text,
            Err(err) => format!("FAIL: {err:#}"),
        },
        None if info.format == ImageFormat::Pdf => "none (a PDF has none)".into(),
        None => "FAIL: no upload answered with a thumbnail_url".into(),
    };

    let latency = Percentiles::of(&latency.lock().expect("histogram lock"));
    let errors = tally.errors.load(Ordering::Relaxed);
    let error_samples = tally.samples.lock().expect("samples lock").clone();
    let passed = errors == 0
        && latency.count > 0
        && latency.p99 < args.p99_budget_ms
        && !thumbnail.starts_with("FAIL");
    Ok(ImagesReport {
        image: info,
        rate: args.rate,
        warmup_secs: args.load.warmup,
        duration_secs: args.duration,
        sent: tally.sent.load(Ordering::Relaxed),
        stored: tally.stored.load(Ordering::Relaxed),
        stored_per_sec: tally.stored_in_window.load(Ordering::Relaxed) as f64 / args.duration,
        latency_ms: latency,
        errors,
        error_samples,
        server_cpu_percent: server_cpu,
        bench_cpu_percent: bench_cpu,
        cores: std::thread::available_parallelism().map_or(0, |n| n.get()),
        rss_before_mib: rss_before.map(|b| b as f64 / MIB),
        rss_after_mib: rss_after.map(|b| b as f64 / MIB),
        thumbnail,
        passed,
    })
}

/// Fetches a thumbnail by its signed path; its size in pixels.
async fn check_thumbnail(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    path: &str,
) -> Result<String> {
    let url = if path.starts_with("http") {
        path.to_string()
    } else {
        format!("{}{path}", endpoint.http)
    };
    let response = http.get(&url).send().await.context("GET the thumbnail")?;
    let status = response.status();
    let content_type = response
        .headers()
        .get("content-type")
        .and_then(|v| v.to_str().ok())
        .unwrap_or("")
        .to_string();
    let bytes = response.bytes().await?;
    if !status.is_success() || content_type != "image/jpeg" {
        bail!("thumbnail: HTTP {status}, {content_type}");
    }
    let (w, h) = image::load_from_memory(&bytes)
        .map(|i| (i.width(), i.height()))
        .context("the thumbnail does not decode")?;
    if w.max(h) > 320 {
        bail!("thumbnail of {w}x{h}, over 320 a side");
    }
    Ok(format!("{w}x{h} JPEG, {} bytes", bytes.len()))
}

/// An image of `width` x `height`: a gradient with noise of the strength
/// (found by bisection) that makes it encode to about `target` bytes.
fn noise_image(
    format: ImageFormat,
    width: u32,
    height: u32,
    target: u64,
) -> Result<(Vec<u8>, ImageInfo)> {
    if format == ImageFormat::Pdf {
        // The control: as many bytes, nothing to decode.
        let mut data = PDF_HEAD.to_vec();
        let line = b"% chatgate-bench control file, no thumbnail to make\n";
        let fill = (target as usize).saturating_sub(PDF_HEAD.len() + PDF_TAIL.len());
        data.extend(line.iter().copied().cycle().take(fill));
        data.extend_from_slice(PDF_TAIL);
        let bytes = data.len();
        let info = ImageInfo {
            format,
            width: 0,
            height: 0,
            bytes,
            noise: 0,
        };
        return Ok((data, info));
    }
    // One noise field for every try, so a stronger amplitude is never smaller.
    let mut state = 0x9e37_79b9_7f4a_7c15u64;
    let noise: Vec<i16> = (0..width as usize * height as usize * 3)
        .map(|_| {
            // xorshift64*
            state ^= state >> 12;
            state ^= state << 25;
            state ^= state >> 27;
            ((state.wrapping_mul(0x2545_f491_4f6c_dd1d) >> 56) as i16) - 128
        })
        .collect();
    let encode = |amplitude: u32| -> Result<Vec<u8>> {
        let image = image::RgbImage::from_fn(width, height, |x, y| {
            let base = [
                (x * 255 / width.max(1)) as i32,
                (y * 255 / height.max(1)) as i32,
                ((x + y) * 255 / (width + height).max(1)) as i32,
            ];
            let at = (y as usize * width as usize + x as usize) * 3;
            let pixel: [u8; 3] = std::array::from_fn(|c| {
                let n = i32::from(noise[at + c]) * amplitude as i32 / 128;
                (base[c] + n).clamp(0, 255) as u8
            });
            image::Rgb(pixel)
        });
        let mut out = Vec::new();
        match format {
            ImageFormat::Jpeg => {
                image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 85)
                    .encode_image(&image)?;
            }
            ImageFormat::Png => {
                image.write_with_encoder(image::codecs::png::PngEncoder::new(&mut out))?;
            }
            ImageFormat::Pdf => unreachable!("a PDF is made above"),
        }
        Ok(out)
    };
    // The smallest amplitude that reaches the target, or the one just
    // below it if that is closer.
    let (mut low, mut high) = (0u32, 255u32);
    let (mut below, mut above) = ((encode(low)?, low), (encode(high)?, high));
    if (above.0.len() as u64) > target && (below.0.len() as u64) < target {
        while high - low > 1 {
            let mid = (low + high) / 2;
            let data = encode(mid)?;
            if data.len() as u64 >= target {
                (high, above) = (mid, (data, mid));
            } else {
                (low, below) = (mid, (data, mid));
            }
        }
    }
    let distance = |data: &[u8]| (data.len() as i64 - target as i64).unsigned_abs();
    let (data, noise) = if distance(&below.0) < distance(&above.0) {
        below
    } else {
        above
    };
    Ok((
        data.clone(),
        ImageInfo {
            format,
            width,
            height,
            bytes: data.len(),
            noise,
        },
    ))
}

fn print_images(args: &FilesArgs, target: &str, images: &ImagesReport) {
    let i = &images.image;
    let what = match i.format {
        ImageFormat::Pdf => format!(
            "PDF of {} (control: no thumbnail)",
            bytes_text(i.bytes as u64)
        ),
        format => format!(
            "{} {}x{}, {} (noise {})",
            if format == ImageFormat::Png {
                "PNG"
            } else {
                "JPEG"
            },
            i.width,
            i.height,
            bytes_text(i.bytes as u64),
            i.noise
        ),
    };
    println!();
    println!(
        "files, images: {target}, {} uploads/s for {} s after {} s warm-up; {what}, {} visitors",
        images.rate, images.duration_secs, images.warmup_secs, args.visitors
    );
    println!(
        "sent {}, stored {} ({:.1}/s in the window), errors {}; cpu% srv/bench {}/{} ({} cores); server RSS {} -> {} MiB",
        images.sent,
        images.stored,
        images.stored_per_sec,
        images.errors,
        percent(images.server_cpu_percent),
        percent(images.bench_cpu_percent),
        images.cores,
        mib_text(images.rss_before_mib),
        mib_text(images.rss_after_mib),
    );
    let p = &images.latency_ms;
    println!(
        "{:<28} {:>7} {:>8} {:>8} {:>8} {:>8} {:>8}",
        "latency (measured window)", "count", "p50 ms", "p95 ms", "p99 ms", "max ms", "mean ms"
    );
    println!(
        "{:<28} {:>7} {:>8.2} {:>8.2} {:>8.2} {:>8.2} {:>8.2}{}",
        "upload -> 201 (thumbnail)",
        p.count,
        p.p50,
        p.p95,
        p.p99,
        p.max,
        p.mean,
        if p.p99 < args.p99_budget_ms {
            String::new()
        } else {
            format!("  FAIL (p99 budget {} ms)", args.p99_budget_ms)
        }
    );
    println!("thumbnail fetched: {}", images.thumbnail);
    for sample in &images.error_samples {
        println!("    {sample}");
    }
}

fn percent(value: Option<f64>) -> String {
    value.map_or("?".into(), |v| format!("{v:.0}"))
}

fn mib_text(value: Option<f64>) -> String {
    value.map_or("?".into(), |v| format!("{v:.1}"))
}

fn bytes_text(bytes: u64) -> String {
    if bytes >= 1024 * 1024 && bytes.is_multiple_of(1024 * 1024) {
        format!("{} MiB", bytes / (1024 * 1024))
    } else if bytes >= 10_000 {
        format!("{:.1} KB", bytes as f64 / 1000.0)
    } else {
        format!("{bytes} bytes")
    }
}

/// A small upload (the warm-up): any 201 will do.
async fn upload(
    http: &reqwest::Client,
    endpoint: &Endpoint,
    token: &str,
    body: Bytes,
) -> Result<()> {
    let response = http
        .post(format!("{}/chatplugin.upload", endpoint.http))
        .bearer_auth(token)
        .header(
            "content-type",
            format!("multipart/form-data; boundary={BOUNDARY}"),
        )
        .body(body)
        .send()
        .await
        .context("POST /chatplugin.upload")?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    if status.as_u16() != 201 {
        bail!("POST /chatplugin.upload: {status}: {}", client::clip(&text));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn a_big_body_has_its_length_and_is_a_pdf() {
        let body = BigBody::new(200_000);
        let mut out = Vec::new();
        body.write(&mut out).await.unwrap();
        assert_eq!(out.len() as u64, body.len());
        let head = part_head("bench.pdf", "application/pdf");
        assert!(out.starts_with(&head));
        let file = &out[head.len()..out.len() - body.tail.len()];
        assert_eq!(file.len(), 200_000);
        assert_eq!(
            chatgate::files::sniff(&file[..8192], false),
            Some("application/pdf")
        );
        assert!(!file
            .windows(BOUNDARY.len())
            .any(|w| w == BOUNDARY.as_bytes()));
    }

    #[test]
    fn answers_parse_plain_and_chunked() {
        let plain = b"HTTP/1.1 201 Created\r\ncontent-length: 2\r\n\r\n{}";
        let a = parse_answer(plain).unwrap();
        assert_eq!((a.status, a.body.as_slice()), (201, &b"{}"[..]));
        let chunked =
            b"HTTP/1.1 413 Payload Too Large\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabc\r\n2\r\nde\r\n0\r\n\r\n";
        let a = parse_answer(chunked).unwrap();
        assert_eq!((a.status, a.body.as_slice()), (413, &b"abcde"[..]));
        assert!(parse_answer(b"HTTP/1.1 200 OK\r\n").is_err());
    }

    #[test]
    fn the_noise_image_has_about_its_size() {
        let (data, info) = noise_image(ImageFormat::Jpeg, 320, 200, 30_000).unwrap();
        assert_eq!(data.len(), info.bytes);
        assert!((27_000..33_000).contains(&data.len()), "{}", data.len());
        assert_eq!(chatgate::files::sniff(&data, true), Some("image/jpeg"));
        let decoded = image::load_from_memory(&data).unwrap();
        assert_eq!((decoded.width(), decoded.height()), (320, 200));
    }
}
