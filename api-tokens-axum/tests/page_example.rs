//! `cargo run -p api-tokens-axum --example page` serves the page: run the built example on a
//! free port of 127.0.0.1, sign in as alice, read the list; the process is killed by a guard.
#![allow(clippy::unwrap_used, clippy::expect_used, clippy::panic)]

use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

struct Killed(Child);

impl Drop for Killed {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

fn get(addr: &str, path: &str, cookie: &str) -> String {
    let mut stream = TcpStream::connect(addr).unwrap();
    stream
        .set_read_timeout(Some(Duration::from_secs(20)))
        .unwrap();
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\nCookie: {cookie}\r\n\r\n"
    )
    .unwrap();
    let mut reply = String::new();
    stream.read_to_string(&mut reply).unwrap();
    reply
}

#[test]
fn the_page_example_serves_the_list_on_127_0_0_1() {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("page");
    let child = Command::new(&path)
        .env("API_TOKENS_PAGE_ADDR", "127.0.0.1:0")
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .unwrap_or_else(|e| {
            panic!(
                "cannot start {} ({e}): cargo test builds the examples",
                path.display()
            )
        });
    let mut child = Killed(child);
    let stdout = child.0.stdout.take().unwrap();
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(20))
        .expect("the example says where it listens");
    assert!(
        line.starts_with("The API tokens page: http://127.0.0.1:"),
        "{line}"
    );
    assert!(
        line.trim_end().ends_with("/ (users: alice, bob, carol)"),
        "{line}"
    );
    let addr = line
        .split("http://")
        .nth(1)
        .and_then(|rest| rest.split('/').next())
        .unwrap()
        .to_owned();

    let home = get(&addr, "/", "");
    assert!(home.contains("href=\"/login/alice\""), "{home}");
    let login = get(&addr, "/login/alice", "");
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    assert!(login.contains("demo_user=alice"));
    let list = get(&addr, "/tokens", "demo_user=alice");
    assert!(list.starts_with("HTTP/1.1 200"), "{list}");
    assert_eq!(list.matches("<tr id=\"token-").count(), 6);
    assert_eq!(list.matches("class=\"badge\">Expired<").count(), 1);
    assert!(get(&addr, "/tokens", "").starts_with("HTTP/1.1 401"));
}
