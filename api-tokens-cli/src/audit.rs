//! The audit trail: every change the library makes, as its event serialized to one line of
//! JSON, on stderr or appended to `--audit-log FILE`.

use std::fs::OpenOptions;
use std::io::Write;
use std::path::Path;
use std::sync::Mutex;

use api_tokens::{events::EventKind, events::EventSink, events::TokenEvent};

use crate::error::{CliError, file_error};

/// An [`EventSink`] that writes each change as a JSON line and remembers a failure to write,
/// so the command can end with an error (the change itself is made by then).
pub struct AuditLog {
    out: Mutex<Box<dyn Write + Send>>,
    failure: Mutex<Option<std::io::Error>>,
}

impl std::fmt::Debug for AuditLog {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("AuditLog").finish_non_exhaustive()
    }
}

impl AuditLog {
    /// Audit lines on stderr.
    pub fn stderr() -> Self {
        Self::to(Box::new(std::io::stderr()))
    }

    /// Audit lines appended to `path` (created if missing). Opened before anything changes,
    /// so a path that cannot be written refuses the command rather than losing its lines.
    ///
    /// # Errors
    /// The file cannot be opened for appending.
    pub fn file(path: &Path) -> Result<Self, CliError> {
        let file = OpenOptions::new()
            .create(true)
            .append(true)
            .open(path)
            .map_err(file_error("open the audit log", path))?;
        Ok(Self::to(Box::new(file)))
    }

    fn to(out: Box<dyn Write + Send>) -> Self {
        Self {
            out: Mutex::new(out),
            failure: Mutex::new(None),
        }
    }

    /// The first failure to write a line, if any.
    pub fn take_failure(&self) -> Option<std::io::Error> {
        self.failure
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .take()
    }

    fn write(&self, event: &TokenEvent) -> std::io::Result<()> {
        let mut line = serde_json::to_vec(event).map_err(std::io::Error::other)?;
        line.push(b'\n');
        let mut out = self.out.lock().unwrap_or_else(|p| p.into_inner());
        // One write per line, then flushed: lines of concurrent writers to one file never
        // interleave (O_APPEND), and a line is out before the command goes on.
        out.write_all(&line)?;
        out.flush()
    }
}

/// Whether an event records a change. The check of the hash keys (run before every command)
/// and authentication events are not changes; anything else, including kinds a later library
/// adds, is written.
pub fn is_change(kind: &EventKind) -> bool {
    !matches!(
        kind,
        EventKind::HashKeysChecked { .. }
            | EventKind::Authenticated { .. }
            | EventKind::Denied { .. }
            | EventKind::ReplicaStale { .. }
            | EventKind::ReplicaCurrent
    )
}

impl EventSink for AuditLog {
    fn record(&self, event: TokenEvent) {
        if !is_change(&event.kind) {
            return;
        }
        if let Err(e) = self.write(&event) {
            let mut failure = self.failure.lock().unwrap_or_else(|p| p.into_inner());
            failure.get_or_insert(e);
        }
    }

    fn wants_auth_events(&self) -> bool {
        false
    }
}
