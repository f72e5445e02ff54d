//! How a target's log lines reach confab.

use std::sync::Arc;

/// Where a target's log lines go: confab files each line under the case it belongs to and
/// checks it (a secret in a log is an ECHO finding). Cheap to clone.
#[derive(Clone)]
pub struct TargetLog(Arc<dyn Fn(String) + Send + Sync>);

impl TargetLog {
    /// A log that hands every line to `sink`.
    pub fn new(sink: impl Fn(String) + Send + Sync + 'static) -> TargetLog {
        TargetLog(Arc::new(sink))
    }

    /// A log that drops every line.
    pub fn discard() -> TargetLog {
        TargetLog::new(|_| {})
    }

    /// Adds one line (without its line break).
    pub fn line(&self, line: String) {
        (self.0)(line)
    }
}

impl Default for TargetLog {
    fn default() -> TargetLog {
        TargetLog::discard()
    }
}

impl std::fmt::Debug for TargetLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("TargetLog")
    }
}

/// Writes into a [`TargetLog`] line by line: how a served or called target's logs reach the
/// oracle exactly as a process's stdout would.
pub struct LogWriter {
    log: TargetLog,
    partial: Vec<u8>,
}

impl LogWriter {
    /// A writer whose complete lines go to `log`.
    pub fn new(log: TargetLog) -> LogWriter {
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
            self.log.line(text);
        }
        Ok(buf.len())
    }

    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}
