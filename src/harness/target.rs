//! Starting, watching and stopping the target process, and capturing what it logs.

use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};

/// Log lines kept; older ones are dropped (and counted) so memory stays bounded. A case reads
/// only the lines logged while it ran, a few per case in flight: this is ample, and small
/// enough that a long run's memory does not grow with it.
const MAX_LOG_LINES: usize = 16_384;

/// What the target wrote to stdout and stderr, in order, with a running line number.
#[derive(Default)]
pub struct LogBuffer {
    lines: Vec<String>,
    /// Lines dropped from the front.
    dropped: usize,
}

impl LogBuffer {
    /// The absolute number of the next line.
    pub fn mark(&self) -> usize {
        self.dropped + self.lines.len()
    }

    /// Lines from absolute number `from` on.
    pub fn since(&self, from: usize) -> Vec<String> {
        let start = from.saturating_sub(self.dropped).min(self.lines.len());
        self.lines[start..].to_vec()
    }

    /// The last `n` lines.
    pub fn tail(&self, n: usize) -> Vec<String> {
        self.lines[self.lines.len().saturating_sub(n)..].to_vec()
    }

    fn push(&mut self, line: String) {
        if self.lines.len() == MAX_LOG_LINES {
            self.lines.drain(..MAX_LOG_LINES / 2);
            self.dropped += MAX_LOG_LINES / 2;
        }
        self.lines.push(line);
    }
}

pub type SharedLog = Arc<Mutex<LogBuffer>>;

/// Writes into a [`SharedLog`] line by line: how an in-process target's logs reach the
/// oracle exactly as a process's stdout would.
pub struct LogWriter {
    log: SharedLog,
    partial: Vec<u8>,
}

impl LogWriter {
    pub fn new(log: SharedLog) -> LogWriter {
        LogWriter {
            log,
            partial: Vec::new(),
        }
    }
}

impl std::io::Write for LogWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.partial.extend_from_slice(buf);
        while let Some(i) = self.partial.iter().position(|&b| b == b'\n') {
            let line: Vec<u8> = self.partial.drain(..=i).collect();
            let text = String::from_utf8_lossy(&line[..line.len() - 1]).into_owned();
            if let Ok(mut l) = self.log.lock() {
                l.push(text);
            }
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

/// Why the target could not be started or did not become ready.
#[derive(Debug, thiserror::Error)]
pub enum TargetError {
    #[error("target.command: cannot start {program:?}: {source}")]
    Spawn {
        program: String,
        source: std::io::Error,
    },
    #[error("the target exited ({status}) before {ready} answered 2xx; its last lines:\n{tail}")]
    Exited {
        status: String,
        ready: String,
        tail: String,
    },
    #[error(
        "{ready} did not answer 2xx within {seconds} s (last: {last}); the target's last lines:\n{tail}"
    )]
    NotReady {
        ready: String,
        seconds: u64,
        last: String,
        tail: String,
    },
}

/// A target process confab started. It is killed on drop; [`TargetProcess::stop`] ends it
/// gracefully first.
pub struct TargetProcess {
    child: Child,
    pub log: SharedLog,
}

impl TargetProcess {
    /// Starts `command` with `env` (added to confab's own environment), from the current
    /// folder, capturing stdout and stderr line by line.
    pub fn spawn(
        command: &[String],
        env: &BTreeMap<String, String>,
    ) -> Result<TargetProcess, TargetError> {
        let (program, args) = command.split_first().ok_or_else(|| TargetError::Spawn {
            program: String::new(),
            source: std::io::Error::other("empty command"),
        })?;
        let mut cmd = Command::new(program);
        cmd.args(args)
            .envs(env)
            .stdin(Stdio::null())
            .stdout(Stdio::piped())
            .stderr(Stdio::piped())
            .kill_on_drop(true);
        #[cfg(unix)]
        cmd.process_group(0);
        let mut child = cmd.spawn().map_err(|source| TargetError::Spawn {
            program: program.clone(),
            source,
        })?;
        let log: SharedLog = Arc::default();
        if let Some(out) = child.stdout.take() {
            tokio::spawn(pump(BufReader::new(out), log.clone()));
        }
        if let Some(err) = child.stderr.take() {
            tokio::spawn(pump(BufReader::new(err), log.clone()));
        }
        Ok(TargetProcess { child, log })
    }

    fn tail(&self) -> String {
        self.log
            .lock()
            .map(|l| l.tail(20).join("\n"))
            .unwrap_or_default()
    }

    /// Polls `GET {base_url}{ready}` until it answers 2xx, the process exits, or time is up.
    pub async fn wait_ready(
        &mut self,
        client: &reqwest::Client,
        base_url: &str,
        ready: &str,
        timeout: Duration,
    ) -> Result<(), TargetError> {
        wait_ready(client, base_url, ready, timeout, Some(self)).await
    }

    /// SIGTERM to the process group, then SIGKILL after `grace`.
    pub async fn stop(mut self, grace: Duration) {
        #[cfg(unix)]
        if let Some(pid) = self.child.id() {
            // `kill -TERM -PGID` reaches the whole group (a shell wrapper's children too)
            // without unsafe code.
            let _ = std::process::Command::new("kill")
                .args(["-TERM", "--", &format!("-{pid}")])
                .stderr(Stdio::null())
                .status();
        }
        if tokio::time::timeout(grace, self.child.wait())
            .await
            .is_err()
        {
            #[cfg(unix)]
            if let Some(pid) = self.child.id() {
                let _ = std::process::Command::new("kill")
                    .args(["-KILL", "--", &format!("-{pid}")])
                    .stderr(Stdio::null())
                    .status();
            }
            let _ = self.child.kill().await;
        }
    }
}

/// Waits for a target (started by confab, or already running when `process` is `None`).
pub async fn wait_ready(
    client: &reqwest::Client,
    base_url: &str,
    ready: &str,
    timeout: Duration,
    mut process: Option<&mut TargetProcess>,
) -> Result<(), TargetError> {
    let url = format!("{}{}", base_url.trim_end_matches('/'), ready);
    let start = Instant::now();
    let mut last;
    loop {
        if let Some(p) = process.as_deref_mut()
            && let Ok(Some(status)) = p.child.try_wait()
        {
            // Give the pumps a moment to collect the last lines.
            tokio::time::sleep(Duration::from_millis(100)).await;
            return Err(TargetError::Exited {
                status: status.to_string(),
                ready: url,
                tail: p.tail(),
            });
        }
        match client
            .get(&url)
            .timeout(Duration::from_secs(2))
            .send()
            .await
        {
            Ok(r) if r.status().is_success() => return Ok(()),
            Ok(r) => last = format!("status {}", r.status().as_u16()),
            Err(e) => {
                last = if e.is_connect() {
                    "connection refused".into()
                } else {
                    e.to_string()
                }
            }
        }
        if start.elapsed() >= timeout {
            return Err(TargetError::NotReady {
                ready: url,
                seconds: timeout.as_secs(),
                last,
                tail: process.map(|p| p.tail()).unwrap_or_default(),
            });
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

async fn pump<R: tokio::io::AsyncRead + Unpin>(reader: BufReader<R>, log: SharedLog) {
    let mut lines = reader.lines();
    while let Ok(Some(line)) = lines.next_line().await {
        if let Ok(mut l) = log.lock() {
            l.push(line);
        }
    }
}

/// A free loopback port (bound, read, released: the target binds it next).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}
