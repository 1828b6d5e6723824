//! `cargo run -p api-tokens-axum --example page` serves the page (and `-- --zabbix` serves it in
//! Zabbix's preset): run the built example on a free port of 127.0.0.1, sign in as alice, read
//! the list; the process is killed by a guard.
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

/// Runs the built example with `args` on a free port; the process and where it listens.
fn start(args: &[&str]) -> (Killed, String) {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("page");
    let child = Command::new(&path)
        .args(args)
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
    (child, addr)
}

#[test]
fn the_page_example_serves_the_list_on_127_0_0_1() {
    let (_child, addr) = start(&[]);
    let home = get(&addr, "/", "");
    assert!(home.contains("href=\"/login/alice\""), "{home}");
    let login = get(&addr, "/login/alice", "");
    assert!(login.starts_with("HTTP/1.1 303"), "{login}");
    assert!(login.contains("demo_user=alice"));
    let list = get(&addr, "/tokens", "demo_user=alice");
    assert!(list.starts_with("HTTP/1.1 200"), "{list}");
    assert_eq!(list.matches("<tr id=\"token-").count(), 6);
    assert_eq!(list.matches("class=\"badge\">Expired<").count(), 1);
    assert!(list.contains(">Created by</a>") && list.contains("Displaying 1 to 6 of 6 found"));
    assert!(get(&addr, "/tokens", "").starts_with("HTTP/1.1 401"));
}

/// `-- --zabbix`: the same users and tokens, the page in Zabbix's preset; four of the tokens
/// have been used, so "Last accessed at" has an order.
#[test]
fn the_page_example_serves_zabbix_s_page_with_used_tokens() {
    let (_child, addr) = start(&["--zabbix"]);
    let list = get(
        &addr,
        "/tokens?sort=last_used_at&order=desc",
        "demo_user=alice",
    );
    assert!(list.starts_with("HTTP/1.1 200"), "{list}");
    assert_eq!(list.matches("<tr id=\"token-").count(), 6);
    assert!(list.contains(">Created by user</a>"), "{list}");
    assert!(list.contains("Displaying 6 of 6 found"));
    assert!(!list.contains("id=\"sort-created_at\""));
    let used: Vec<&str> = list
        .split("<td class=\"time used\">")
        .skip(1)
        .map(|cell| &cell[..cell.find('<').unwrap()])
        .collect();
    assert_eq!(used.len(), 6);
    assert!(used[..4].iter().all(|u| *u != "Never"), "{used:?}");
    assert_eq!(used[4..], ["Never", "Never"]);
    let mut sorted = used[..4].to_vec();
    sorted.sort_unstable();
    sorted.reverse();
    assert_eq!(used[..4], sorted[..], "most recent first");
}

/// An argument the example does not take ends it with an error.
#[test]
fn the_page_example_refuses_an_unknown_argument() {
    let exe = std::env::current_exe().unwrap();
    let path = exe
        .parent()
        .unwrap()
        .parent()
        .unwrap()
        .join("examples")
        .join("page");
    let out = Command::new(&path)
        .arg("--zabix")
        .env("API_TOKENS_PAGE_ADDR", "127.0.0.1:0")
        .output()
        .unwrap();
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--zabbix"));
}
