//! The reference target's own log: where its lines go ([`LogSink`]) and, in tests, what
//! was captured ([`CapturedLog`]). confab reads these lines as it reads a process's stdout.

use std::fmt;
use std::io::Write;
use std::sync::{Arc, Mutex, MutexGuard};

/// Where the target's log lines go (stderr for the CLI; a buffer in tests, so they can check
/// what was logged). Lines are plain text; audit lines are `audit <json>`.
#[derive(Clone)]
pub struct LogSink(Arc<Mutex<Box<dyn Write + Send>>>);

impl fmt::Debug for LogSink {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("LogSink")
    }
}

impl Default for LogSink {
    fn default() -> Self {
        LogSink::stderr()
    }
}

/// The lines a [`LogSink::memory`] captured, for tests to read (not the harness's log capture:
/// this is the reference target's own).
#[derive(Clone, Default)]
pub struct CapturedLog(Arc<Mutex<Vec<u8>>>);

impl CapturedLog {
    /// Everything logged so far.
    pub fn contents(&self) -> String {
        String::from_utf8_lossy(&lock(&self.0)).into_owned()
    }
}

impl fmt::Debug for CapturedLog {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "CapturedLog({} bytes)", lock(&self.0).len())
    }
}

struct BufferWriter(CapturedLog);

impl Write for BufferWriter {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        lock(&(self.0).0).extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

impl LogSink {
    /// A sink that writes to the process's stderr (the CLI's choice).
    pub fn stderr() -> LogSink {
        LogSink(Arc::new(Mutex::new(Box::new(std::io::stderr()))))
    }

    /// A sink that writes lines to any writer (the harness's log capture, for one).
    pub fn to_writer(w: impl Write + Send + 'static) -> LogSink {
        LogSink(Arc::new(Mutex::new(Box::new(w))))
    }

    /// A sink that keeps lines in memory, and the handle to read them.
    pub fn memory() -> (LogSink, CapturedLog) {
        let buf = CapturedLog::default();
        let sink = LogSink(Arc::new(Mutex::new(Box::new(BufferWriter(buf.clone())))));
        (sink, buf)
    }

    /// Writes one line (a newline is added). A failing log never fails a request.
    pub fn line(&self, line: &str) {
        let mut w = lock(&self.0);
        let _ = w.write_all(line.as_bytes());
        let _ = w.write_all(b"\n");
        let _ = w.flush();
    }
}

pub(crate) fn lock<T: ?Sized>(m: &Mutex<T>) -> MutexGuard<'_, T> {
    // A panic elsewhere while holding a log or owner lock leaves nothing half-written that
    // matters; keep serving.
    m.lock().unwrap_or_else(|p| p.into_inner())
}
