//! Secrets in and out: a new secret to stdout or to a new file of mode 0600, a leaked one from
//! stdin. Never from the command line, never into a message.

use std::fs::{File, OpenOptions};
use std::io::{IsTerminal, Read, Write};
use std::path::{Path, PathBuf};

use zeroize::Zeroizing;

use crate::error::{CliError, file_error};

/// A file for a new secret, created before anything changes: readable by its owner only (mode
/// 0600 on Unix), and never an existing file (a secret is never written over another).
pub struct SecretFile {
    path: PathBuf,
    file: Option<File>,
}

impl SecretFile {
    /// Creates `path`, which must not exist.
    ///
    /// # Errors
    /// [`CliError::FileExists`] when it exists; [`CliError::File`] when it cannot be created.
    pub fn create(path: &Path) -> Result<Self, CliError> {
        let mut options = OpenOptions::new();
        options.write(true).create_new(true);
        #[cfg(unix)]
        {
            use std::os::unix::fs::OpenOptionsExt;
            options.mode(0o600);
        }
        match options.open(path) {
            Ok(file) => Ok(Self {
                path: path.to_path_buf(),
                file: Some(file),
            }),
            Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => {
                Err(CliError::FileExists(path.to_path_buf()))
            }
            Err(e) => Err(file_error("create the secret file", path)(e)),
        }
    }

    /// Writes the secret and a newline, and syncs it to disk.
    ///
    /// # Errors
    /// The write fails.
    pub fn write(mut self, secret: &str) -> std::io::Result<()> {
        let mut file = self
            .file
            .take()
            .ok_or_else(|| std::io::Error::other("written already"))?;
        file.write_all(secret.as_bytes())?;
        file.write_all(b"\n")?;
        file.sync_all()
    }

    /// The path.
    pub fn path(&self) -> &Path {
        &self.path
    }
}

impl Drop for SecretFile {
    /// A file created for a secret that never came (the change was refused) is removed: it is
    /// empty, and the next attempt must be able to create it.
    fn drop(&mut self) {
        if self.file.take().is_some() {
            let _ = std::fs::remove_file(&self.path);
        }
    }
}

/// Writes one new secret on stdout, alone on its line.
///
/// # Errors
/// The write fails (a closed pipe, say).
pub fn to_stdout(secret: &str) -> std::io::Result<()> {
    let mut out = std::io::stdout().lock();
    out.write_all(secret.as_bytes())?;
    out.write_all(b"\n")?;
    out.flush()
}

/// The most read from stdin for a secret: far beyond any secret (the library refuses more than
/// 128 bytes), so a stray file piped in is refused rather than read whole.
const MAX_STDIN: u64 = 4096;

/// Reads one secret from stdin: surrounding whitespace and the final newline are dropped; the
/// text is wiped after use. On a terminal it asks for it on stderr first.
///
/// # Errors
/// [`CliError::SecretInput`] when stdin is empty, holds more than one line of text, or is too
/// long to be a secret.
pub fn from_stdin() -> Result<Zeroizing<String>, CliError> {
    let stdin = std::io::stdin();
    let mut bytes = Zeroizing::new(Vec::new());
    if stdin.is_terminal() {
        // Not echoed where the terminal allows it, so the secret is not left on the screen or
        // in a recording of it; turned off before the prompt shows, so nothing typed after the
        // prompt is echoed. One line: a terminal has no end of input until Ctrl-D.
        let echo = EchoOff::new(&stdin);
        eprint!("Paste the leaked secret (it is not shown), then press Enter: ");
        let _ = std::io::stderr().flush();
        let mut line = Zeroizing::new(String::new());
        let read = std::io::BufRead::read_line(&mut stdin.lock().take(MAX_STDIN + 1), &mut line);
        drop(echo);
        eprintln!();
        read.map_err(|_| CliError::SecretInput("stdin could not be read"))?;
        bytes.extend_from_slice(line.as_bytes());
    } else {
        stdin
            .lock()
            .take(MAX_STDIN + 1)
            .read_to_end(&mut bytes)
            .map_err(|_| CliError::SecretInput("stdin could not be read"))?;
    }
    if bytes.len() as u64 > MAX_STDIN {
        return Err(CliError::SecretInput(
            "stdin holds far more than a secret: give the secret alone",
        ));
    }
    let text = std::str::from_utf8(&bytes)
        .map_err(|_| CliError::SecretInput("stdin is not text: give the secret alone"))?;
    let text = text.trim();
    if text.is_empty() {
        return Err(CliError::SecretInput(
            "no secret on stdin: pipe it in (printf '%s\\n' \"$SECRET\" | api-tokens revoke --secret-from-stdin)",
        ));
    }
    if text.contains(['\n', '\r']) {
        return Err(CliError::SecretInput(
            "stdin holds more than one line: give one secret per call",
        ));
    }
    Ok(Zeroizing::new(text.to_owned()))
}

/// The terminal's echo turned off while it lives, and back as it was when dropped.
struct EchoOff {
    #[cfg(unix)]
    saved: Option<rustix::termios::Termios>,
}

impl EchoOff {
    #[cfg(unix)]
    fn new(stdin: &std::io::Stdin) -> Self {
        use rustix::termios::{LocalModes, OptionalActions, tcgetattr, tcsetattr};
        let saved = tcgetattr(stdin).ok().filter(|saved| {
            let mut quiet = saved.clone();
            quiet.local_modes.remove(LocalModes::ECHO);
            tcsetattr(stdin, OptionalActions::Now, &quiet).is_ok()
        });
        Self { saved }
    }

    #[cfg(not(unix))]
    fn new(_: &std::io::Stdin) -> Self {
        Self {}
    }
}

impl Drop for EchoOff {
    fn drop(&mut self) {
        #[cfg(unix)]
        if let Some(saved) = self.saved.take() {
            let _ = rustix::termios::tcsetattr(
                std::io::stdin(),
                rustix::termios::OptionalActions::Now,
                &saved,
            );
        }
    }
}
