//! A real SMTP server for the tests that send email (aiosmtpd, from
//! `tests/api/smtp_sink.py`), shared by the API tests and the fault tests
//! (each includes this file as its module `smtp_sink`).

use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

/// How long `wait_for` waits.
const DEADLINE: Duration = Duration::from_secs(20);

/// A running aiosmtpd that writes each message it gets as JSON.
pub struct SmtpSink {
    child: Child,
    dir: tempfile::TempDir,
    port: u16,
}

impl SmtpSink {
    pub fn free_port() -> u16 {
        let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
        listener.local_addr().unwrap().port()
    }

    pub fn start() -> SmtpSink {
        SmtpSink::start_on(SmtpSink::free_port())
    }

    pub fn start_on(port: u16) -> SmtpSink {
        let dir = tempfile::tempdir().unwrap();
        let script = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/api/smtp_sink.py");
        let mut child = Command::new("python3")
            .arg(script)
            .arg(port.to_string())
            .arg(dir.path())
            .stdout(Stdio::piped())
            .stderr(Stdio::inherit())
            .spawn()
            .expect("python3 runs (pip install aiosmtpd)");
        // Wait for "ready".
        use std::io::BufRead;
        let stdout = child.stdout.take().unwrap();
        let mut line = String::new();
        std::io::BufReader::new(stdout)
            .read_line(&mut line)
            .unwrap();
        assert_eq!(
            line.trim(),
            "ready",
            "aiosmtpd did not start (is it installed?)"
        );
        SmtpSink { child, dir, port }
    }

    pub fn url(&self) -> String {
        format!("smtp://127.0.0.1:{}", self.port)
    }

    pub fn received(&self) -> Vec<Value> {
        read_mail(self.dir.path())
    }

    /// Waits until at least `n` emails arrived; all of them.
    pub async fn wait_for(&self, n: usize) -> Vec<Value> {
        let start = Instant::now();
        loop {
            let mail = self.received();
            if mail.len() >= n {
                return mail;
            }
            assert!(
                start.elapsed() < DEADLINE,
                "{n} emails did not arrive: {mail:?}"
            );
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
    }
}

impl Drop for SmtpSink {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn read_mail(dir: &Path) -> Vec<Value> {
    let mut mail: Vec<(std::time::SystemTime, Value)> = std::fs::read_dir(dir)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "json"))
        .map(|e| {
            let at = e.metadata().unwrap().modified().unwrap();
            let raw = std::fs::read(e.path()).unwrap();
            (at, serde_json::from_slice(&raw).unwrap())
        })
        .collect();
    mail.sort_by_key(|(at, _)| *at);
    mail.into_iter().map(|(_, m)| m).collect()
}
