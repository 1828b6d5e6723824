//! Running the example programs: a built binary's output, or a live session that answers one
//! line per request line.

use std::io::{BufRead, BufReader, Write};
use std::path::PathBuf;
use std::process::{Child, ChildStdin, ChildStdout, Command, Stdio};

use serde_json::{Value, json};

use super::TempDir;

/// The example binaries cargo built next to this test's own binary.
pub fn example(name: &str) -> PathBuf {
    let exe = std::env::current_exe().expect("test binary path");
    let dir = exe
        .parent()
        .and_then(|deps| deps.parent())
        .expect("target directory");
    dir.join("examples").join(name)
}

fn start(name: &str, args: &[&str]) -> Child {
    Command::new(example(name))
        .args(args)
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start example {name}: {e} (cargo test builds the examples; \
                 cargo test --test main alone does not: cargo build --examples first)"
            )
        })
}

/// Runs an example with `args` and `stdin`, returning its standard output; fails on a non-zero
/// exit.
pub fn run(name: &str, args: &[&str], stdin: &str) -> String {
    let mut child = start(name, args);
    child
        .stdin
        .take()
        .expect("stdin")
        .write_all(stdin.as_bytes())
        .expect("write stdin");
    let out = child.wait_with_output().expect("example ran");
    let stdout = String::from_utf8(out.stdout).expect("utf-8 output");
    assert!(
        out.status.success(),
        "example {name} failed: {}\n{stdout}",
        String::from_utf8_lossy(&out.stderr)
    );
    stdout
}

/// Like [`run`], but the input is written from another thread and a write the example refuses
/// (it stopped reading) is not an error: for inputs an example is expected to reject midway.
pub fn run_lossy(name: &str, args: &[&str], stdin: &str) -> String {
    let mut child = start(name, args);
    let mut input = child.stdin.take().expect("stdin");
    let data = stdin.as_bytes().to_vec();
    let writer = std::thread::spawn(move || {
        let _ = input.write_all(&data);
    });
    let out = child.wait_with_output().expect("example ran");
    writer.join().expect("writer thread");
    assert!(
        out.status.success(),
        "example {name} failed: {}",
        String::from_utf8_lossy(&out.stderr)
    );
    String::from_utf8(out.stdout).expect("utf-8 output")
}

/// Each line of the output as JSON.
pub fn json_lines(out: &str) -> Vec<Value> {
    out.lines()
        .map(|l| serde_json::from_str(l).expect("each line is JSON"))
        .collect()
}

/// A running example that answers one line per request line.
pub struct Session {
    child: Child,
    stdin: Option<ChildStdin>,
    stdout: BufReader<ChildStdout>,
    /// Files the example reads (a fixture), removed after the example has exited.
    keep: Option<TempDir>,
}

impl Session {
    pub fn start(name: &str, args: &[&str]) -> Self {
        let mut child = start(name, args);
        let stdin = child.stdin.take();
        let stdout = BufReader::new(child.stdout.take().expect("stdout"));
        Self {
            child,
            stdin,
            stdout,
            keep: None,
        }
    }

    /// Keeps `dir` (fixtures the example reads) until the example has exited.
    pub fn keeping(mut self, dir: TempDir) -> Self {
        self.keep = Some(dir);
        self
    }

    /// Sends one line, returns the one line answered, as JSON.
    pub fn line(&mut self, request: &str) -> Value {
        let stdin = self.stdin.as_mut().expect("session open");
        writeln!(stdin, "{request}").expect("write request");
        stdin.flush().expect("flush request");
        let mut line = String::new();
        self.stdout.read_line(&mut line).expect("read answer");
        assert!(
            !line.is_empty(),
            "the example closed its output after {request}"
        );
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("answer is not JSON ({e}): {line}"))
    }

    /// A Zabbix JSON-RPC call with id 1, with `auth` when given.
    pub fn rpc(&mut self, auth: Option<&str>, method: &str, params: Value) -> Value {
        let mut request = json!({"jsonrpc": "2.0", "method": method, "params": params, "id": 1});
        if let Some(a) = auth {
            request["auth"] = json!(a);
        }
        self.line(&request.to_string())
    }

    /// A call that must succeed: its result.
    pub fn ok(&mut self, auth: Option<&str>, method: &str, params: Value) -> Value {
        let answer = self.rpc(auth, method, params.clone());
        assert!(
            answer.get("error").is_none(),
            "{method} {params} failed: {answer}"
        );
        answer["result"].clone()
    }

    /// A call that must fail: its error's data.
    pub fn err(&mut self, auth: Option<&str>, method: &str, params: Value) -> String {
        let answer = self.rpc(auth, method, params.clone());
        answer["error"]["data"]
            .as_str()
            .unwrap_or_else(|| panic!("{method} {params} did not fail: {answer}"))
            .to_owned()
    }
}

impl Drop for Session {
    fn drop(&mut self) {
        drop(self.stdin.take());
        let _ = self.child.wait();
    }
}
