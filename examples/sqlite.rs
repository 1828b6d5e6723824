//! Tokens in SQLite: issue, "restart" (drop and reopen the database file), authenticate.
//!
//! `cargo run --features sqlite --example sqlite [DB_FILE]` (default: a file in a fresh folder
//! of the system temp dir, removed at the end; a DB_FILE you name is kept)

use std::error::Error;

use api_tokens::store::sqlite::SqliteStore;
use api_tokens::{Actor, HashKey, NewToken, Query, RequestContext, Tokens, UserId};

fn main() -> Result<(), Box<dyn Error>> {
    let (path, scratch) = match std::env::args().nth(1) {
        Some(p) => (std::path::PathBuf::from(p), None),
        None => {
            let dir =
                std::env::temp_dir().join(format!("api-tokens-sqlite-{}", std::process::id()));
            std::fs::create_dir_all(&dir)?;
            (dir.join("tokens.db"), Some(dir))
        }
    };
    // The hash key lives outside the database; the same key must be used after a restart.
    let key = HashKey::new([9; 32]);
    let alice = Actor::user(UserId::new("alice")?);

    let secret = {
        let tokens = Tokens::new(SqliteStore::open(&path)?).with_hash_key(key.clone());
        let issued = tokens.issue(
            &alice,
            NewToken::new("nightly-backup".parse()?).permissions("backup.*".parse()?),
        )?;
        println!(
            "issued token {} \"{}\" into {}",
            issued.token.id,
            issued.token.name,
            path.display()
        );
        issued.secret
    }; // the store is dropped: the "process" ends

    let tokens = Tokens::new(SqliteStore::open(&path)?).with_hash_key(key);
    // The startup check: a key other than the one the hashes were made under is an error
    // here, naming the key id it needs, rather than every secret refused as unknown.
    tokens.check_hash_keys()?;
    let listed = tokens.list(&alice, &Query::new())?;
    println!("after restart: {} token(s) for alice", listed.len());
    let grant = tokens.authenticate(
        secret.expose(),
        &RequestContext::from_ip("192.0.2.1".parse()?),
    )?;
    println!(
        "after restart: the secret authenticates as {} with [{}]",
        grant.owner, grant.permissions
    );
    grant.require(&"backup.run".parse()?)?;
    println!("backup.run: allowed");
    drop(tokens);
    if let Some(dir) = scratch {
        std::fs::remove_dir_all(dir)?;
    }
    Ok(())
}
