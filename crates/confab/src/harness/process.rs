//! Starting, watching and stopping the target process, and pumping what it prints into
//! the case log.

use super::logs::{CaseLogs, SharedLog, push_line};
use std::collections::BTreeMap;
use std::process::Stdio;
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};
use tokio::io::{AsyncBufReadExt, BufReader};
use tokio::process::{Child, Command};
use tokio::sync::{mpsc, oneshot};

/// Why the target could not be started or did not become ready.
#[derive(Debug, thiserror::Error)]
#[non_exhaustive]
pub enum TargetError {
    /// `[target] command` could not be started (not found, not executable).
    #[error("target.command: cannot start {program:?}: {source}")]
    Spawn {
        /// The program, as the spec names it.
        program: String,
        /// Why the operating system refused.
        source: std::io::Error,
    },
    /// The target process ended before its `ready` path answered.
    #[error("the target exited ({status}) before {ready} answered 2xx; its last lines:\n{tail}")]
    Exited {
        /// Its exit status.
        status: String,
        /// The `ready` path.
        ready: String,
        /// Its last log lines (what it said on the way out).
        tail: String,
    },
    /// The `ready` path did not answer 2xx within `startup_timeout_s`.
    #[error(
        "{ready} did not answer 2xx within {seconds} s (last: {last}); the target's last lines:\n{tail}"
    )]
    NotReady {
        /// The `ready` path.
        ready: String,
        /// How long confab waited: `[target] startup_timeout_s`.
        seconds: u64,
        /// The last answer or transport error seen.
        last: String,
        /// The target's last log lines.
        tail: String,
    },
}

/// A target process confab started. It is killed on drop; [`TargetProcess::stop`] ends it
/// gracefully first.
pub struct TargetProcess {
    child: Child,
    /// What it prints on stdout and stderr, shared out to the cases.
    pub log: SharedLog,
    flush: LogFlush,
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
        let log: SharedLog = Arc::new(Mutex::new(CaseLogs::with_late_lines()));
        let mut flush = LogFlush::default();
        if let Some(out) = child.stdout.take() {
            let (tx, rx) = mpsc::unbounded_channel();
            flush.0.push(tx);
            tokio::spawn(pump(BufReader::new(out), log.clone(), rx));
        }
        if let Some(err) = child.stderr.take() {
            let (tx, rx) = mpsc::unbounded_channel();
            flush.0.push(tx);
            tokio::spawn(pump(BufReader::new(err), log.clone(), rx));
        }
        Ok(TargetProcess { child, log, flush })
    }

    /// Waits for what the process has written so far to reach its log.
    pub fn log_flush(&self) -> LogFlush {
        self.flush.clone()
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

/// A flush request: answered once the pipe had nothing more to read.
type FlushRequest = oneshot::Sender<()>;

/// Reaches the pumps of a process's stdout and stderr; see [`LogFlush::flush`].
#[derive(Clone, Default)]
pub struct LogFlush(Vec<mpsc::UnboundedSender<FlushRequest>>);

impl LogFlush {
    /// Returns once every pump has read its pipe dry (a partial last line aside): the lines
    /// the target wrote before this call are then in the log. A target that wrote a line before
    /// it answered has it read by then, since the reactor saw the pipe ready before the socket.
    /// Bounded: a pump that does not answer within a second is not waited for; `false` then.
    pub async fn flush(&self) -> bool {
        let mut all = true;
        for pump in &self.0 {
            let (done, answered) = oneshot::channel();
            if pump.send(done).is_ok() {
                all &= tokio::time::timeout(Duration::from_secs(1), answered)
                    .await
                    .is_ok();
            }
        }
        all
    }
}

/// Bytes a pump reads after a flush was asked before it answers even though reading never
/// had to wait (a target that writes without pause): more than a pipe holds (64 KiB on Linux)
/// plus the reader's buffer, so what was written before the flush has been read.
const FLUSH_AFTER_BYTES: usize = 128 << 10;

async fn pump<R: tokio::io::AsyncRead + Unpin>(
    reader: BufReader<R>,
    log: SharedLog,
    mut flushes: mpsc::UnboundedReceiver<FlushRequest>,
) {
    let mut lines = reader.lines();
    // Flushes asked while lines kept coming, with the bytes read when each was asked.
    let mut waiting: Vec<(FlushRequest, usize)> = Vec::new();
    let mut read = 0usize;
    loop {
        tokio::select! {
            // Lines first: a flush is answered when reading would wait.
            biased;
            line = lines.next_line() => match line {
                Ok(Some(line)) => {
                    read = read.wrapping_add(line.len() + 1);
                    push_line(&log, line);
                    while let Ok(done) = flushes.try_recv() {
                        waiting.push((done, read));
                    }
                    let (answered, still): (Vec<_>, Vec<_>) = std::mem::take(&mut waiting)
                        .into_iter()
                        .partition(|(_, at)| read.wrapping_sub(*at) > FLUSH_AFTER_BYTES);
                    waiting = still;
                    for (done, _) in answered {
                        let _ = done.send(());
                    }
                }
                // End of output: dropped requests answer their flushes.
                _ => break,
            },
            () = std::future::ready(()), if !waiting.is_empty() => {
                for (done, _) in waiting.drain(..) {
                    let _ = done.send(());
                }
            }
            Some(done) = flushes.recv() => {
                let _ = done.send(());
            }
        }
    }
}

/// A free loopback port (bound, read, released: the target binds it next).
pub fn free_port() -> std::io::Result<u16> {
    let l = std::net::TcpListener::bind(("127.0.0.1", 0))?;
    Ok(l.local_addr()?.port())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_flush_is_answered_even_while_the_target_never_stops_writing() {
        let Ok(p) = TargetProcess::spawn(&["yes".to_owned(), "spam".to_owned()], &BTreeMap::new())
        else {
            return; // no `yes` on this system
        };
        // Once it writes, it never pauses.
        for _ in 0..500 {
            if crate::harness::lock(&p.log).pushed() > 0 {
                break;
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
        assert!(crate::harness::lock(&p.log).pushed() > 0, "yes writes");
        let flush = p.log_flush();
        for _ in 0..3 {
            assert!(flush.flush().await, "every pump answered");
        }
        p.stop(Duration::from_secs(1)).await;
    }
}
