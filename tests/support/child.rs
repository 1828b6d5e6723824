//! One test of this binary run alone in a child process: for tests that need a second process
//! (a replica in another process, the system's trust store read from the environment).
//!
//! libtest names a test by its module path inside the binary (`stores::tls::system_roots_child`),
//! so the child is asked for that full name with `--exact`: [`child_test!`] builds it from the
//! calling module's `module_path!()`, and names the function in code, so a renamed or moved
//! child test breaks the build rather than running no test at all.

use std::process::Command;

/// The command that runs test `$test` (a function of the calling module, usually
/// `#[ignore]`d) alone, in a child process of this test binary, its output not captured.
/// Give it the child's environment with `.env(…)`: never set the parent's own, which every
/// test of the binary shares.
macro_rules! child_test {
    ($test:ident) => {{
        let _: fn() = $test;
        $crate::support::child::command(module_path!(), stringify!($test))
    }};
}
pub(crate) use child_test;

/// The command behind [`child_test!`]: `module` is the caller's `module_path!()`, which starts
/// with the crate's name (libtest's names do not).
pub fn command(module: &str, test: &str) -> Command {
    let path = module.split_once("::").map_or("", |(_crate, path)| path);
    let name = if path.is_empty() {
        test.to_owned()
    } else {
        format!("{path}::{test}")
    };
    let mut c = Command::new(std::env::current_exe().expect("test binary path"));
    c.args([
        "--exact",
        &name,
        "--ignored",
        "--nocapture",
        "--test-threads=1",
    ]);
    c
}
