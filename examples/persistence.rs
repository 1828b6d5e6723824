//! Persisting a `MemoryStore` to a JSON file and restoring it, and an audit log of events as
//! JSON lines. The snapshot holds hashes only: no secret ever reaches the disk. It is sealed
//! under the hash key, so an edited file is refused when restored.
//!
//! `cargo run --example persistence [DIR]` (default: a fresh folder in the system temp dir,
//! removed at the end; a DIR you name is kept, for you to look at)

use std::error::Error;
use std::fs::{self, File};
use std::io::{BufWriter, Write};
use std::path::PathBuf;
use std::sync::{Arc, Mutex};

use api_tokens::{
    Actor, HashKey, MemoryStore, NewToken, RequestContext, Tokens, UserId, clock::ManualClock,
    events::EventSink, events::TokenEvent, store::memory::SealedSnapshot,
};
use time::macros::datetime;

/// Writes each event as one line of JSON: an append-only audit trail.
struct JsonLines(Mutex<BufWriter<File>>);

impl EventSink for JsonLines {
    fn record(&self, event: TokenEvent) {
        let mut out = self.0.lock().unwrap_or_else(|p| p.into_inner());
        // An audit sink must not take the API down with it: report and go on.
        if let Err(e) = serde_json::to_writer(&mut *out, &event)
            .map_err(std::io::Error::from)
            .and_then(|()| out.write_all(b"\n"))
            .and_then(|()| out.flush())
        {
            eprintln!("audit log write failed: {e}");
        }
    }
}

fn main() -> Result<(), Box<dyn Error>> {
    let (dir, scratch) = match std::env::args().nth(1) {
        Some(d) => (PathBuf::from(d), false),
        None => (
            std::env::temp_dir().join(format!("api-tokens-{}", std::process::id())),
            true,
        ),
    };
    fs::create_dir_all(&dir)?;
    let snapshot_path = dir.join("tokens.json");
    let audit_path = dir.join("audit.jsonl");
    // The hash key lives outside the snapshot (an environment variable, a secrets manager).
    let key = HashKey::new([3; 32]);
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 8:00 UTC)));
    let audit = Arc::new(JsonLines(Mutex::new(BufWriter::new(File::create(
        &audit_path,
    )?))));

    let tokens = Tokens::in_memory()
        .with_hash_key(key.clone())
        .with_clock(clock.clone())
        .with_events(audit.clone());
    let ops = Actor::admin(UserId::new("ops")?);
    let a = tokens.issue(
        &ops,
        NewToken::new("backup".parse()?)
            .owner(UserId::new("alice")?)
            .permissions("backup.*".parse()?),
    )?;
    let b = tokens.issue(
        &ops,
        NewToken::new("monitor".parse()?)
            .owner(UserId::new("bob")?)
            .permissions("metrics.read".parse()?),
    )?;
    tokens.delete(&ops, [b.token.id])?;

    let json = serde_json::to_string_pretty(&tokens.sealed_snapshot())?;
    fs::write(&snapshot_path, &json)?;
    let leaked = json.contains(a.secret.expose()) || json.contains(b.secret.expose());
    println!("snapshot written: {} token(s)", tokens.store().len());
    println!(
        "secret in snapshot file: {}",
        if leaked { "YES" } else { "no" }
    );
    drop(tokens);

    // A new process would start here.
    let sealed: SealedSnapshot = serde_json::from_str(&fs::read_to_string(&snapshot_path)?)?;
    let restored = Tokens::new(MemoryStore::from_snapshot(sealed.open(&key)?)?)
        .with_hash_key(key)
        .with_clock(clock);
    println!("restored: {} token(s)", restored.store().len());
    let ctx = RequestContext::from_ip("192.0.2.10".parse()?);
    match restored.authenticate(a.secret.expose(), &ctx) {
        Ok(g) => println!("after restore, {} authenticates as {}", g.name, g.owner),
        Err(d) => println!("after restore, backup is refused: {d}"),
    }
    match restored.authenticate(b.secret.expose(), &ctx) {
        Ok(g) => println!("after restore, {} authenticates as {}", g.name, g.owner),
        Err(d) => println!("after restore, the deleted token is refused: {d}"),
    }

    drop(audit);
    println!("audit log:");
    for line in fs::read_to_string(&audit_path)?.lines() {
        println!("{line}");
    }
    if scratch {
        fs::remove_dir_all(&dir)?;
    }
    Ok(())
}
