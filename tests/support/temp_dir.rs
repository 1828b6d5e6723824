//! Temporary directories, written here rather than taken from `tempfile`: every
//! dev-dependency of the library builds for `cargo run --example quickstart`, and this is all
//! the tests need. The guard's `Drop` runs also when the test fails (while the panic unwinds).

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system's temp dir, named `api-tokens-test-{tag}-{pid}-{n}`,
/// removed with everything in it when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        // `create_dir` (not `_all`) fails on a name that exists: never reuse another run's
        // directory. A bounded number of tries, each with a fresh number.
        for _ in 0..1000 {
            let path = std::env::temp_dir().join(format!(
                "api-tokens-test-{tag}-{}-{}",
                std::process::id(),
                N.fetch_add(1, Ordering::SeqCst)
            ));
            match std::fs::create_dir(&path) {
                Ok(()) => return Self(path),
                Err(e) if e.kind() == std::io::ErrorKind::AlreadyExists => continue,
                Err(e) => panic!("cannot create {}: {e}", path.display()),
            }
        }
        panic!("no free temporary directory name for {tag}");
    }

    pub fn path(&self) -> &Path {
        &self.0
    }

    /// A path inside the directory.
    pub fn join(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

/// Every entry of the system temp dir whose name starts with `prefix`: for tests that check
/// they left nothing behind.
pub fn temp_entries(prefix: &str) -> Vec<PathBuf> {
    std::fs::read_dir(std::env::temp_dir())
        .map(|d| {
            d.filter_map(Result::ok)
                .map(|e| e.path())
                .filter(|p| {
                    p.file_name()
                        .and_then(|n| n.to_str())
                        .is_some_and(|n| n.starts_with(prefix))
                })
                .collect()
        })
        .unwrap_or_default()
}
