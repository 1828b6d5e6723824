//! Resident memory per token in a `MemoryStore` of realistic tokens.
//!
//! Each token: a name of ~16 characters, 2 allowlist entries, 3 permissions (drawn from 12
//! cPanel-style ACL names, so tokens share sets as they do in real deployments), an expiry and a
//! secret hash. Run with `cargo run --release --example memory [COUNT]` (default 1,000,000).
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a measuring example whose setup fails stops there"
)]

use api_tokens::{
    Actor, Expiry, IpAllowlist, MemoryStore, NewToken, PermissionSet, Policy, TokenName, Tokens,
    UserId,
};

/// Resident set size of this process in bytes (Linux), or 0 where unknown.
fn resident_bytes() -> u64 {
    let statm = std::fs::read_to_string("/proc/self/statm").unwrap_or_default();
    let pages: u64 = statm
        .split_whitespace()
        .nth(1)
        .and_then(|p| p.parse().ok())
        .unwrap_or(0);
    pages * 4096
}

const ACLS: [&str; 12] = [
    "create-acct",
    "kill-acct",
    "suspend-acct",
    "edit-dns",
    "list-accts",
    "show-bandwidth",
    "ssl",
    "mail",
    "backup",
    "restart",
    "upgrade-acct",
    "passwd",
];

fn main() {
    let count: u64 = std::env::args()
        .nth(1)
        .and_then(|a| a.parse().ok())
        .unwrap_or(1_000_000);
    let tokens = Tokens::new(MemoryStore::new()).with_policy(Policy::default());
    let admin = Actor::admin(UserId::from(0));
    let expiry = Expiry::from_unix(1_900_000_000).expect("valid instant");
    let before = resident_bytes();
    let mut x: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = move || {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        x
    };
    for i in 0..count {
        let r = next();
        let pick = |k: u64| ACLS[((r >> (k * 8)) % 12) as usize];
        let perms = PermissionSet::parse([pick(0), pick(1), pick(2)]).expect("valid ACLs");
        let allow = IpAllowlist::parse([
            format!("10.{}.{}.0/24", (r >> 32) % 256, (r >> 40) % 256),
            format!("192.168.{}.{}", (r >> 48) % 256, (r >> 56) % 256),
        ])
        .expect("valid entries");
        let name = TokenName::new(&format!("deploy-key-{:05}", i % 100_000)).expect("valid name");
        let item = NewToken::new(name)
            .owner(UserId::from(i / 10))
            .expiry(expiry)
            .permissions(perms)
            .allowlist(allow);
        tokens.issue(&admin, item).expect("issued");
    }
    let after = resident_bytes();
    let per_token = (after.saturating_sub(before)) as f64 / count as f64;
    println!("tokens: {count}");
    println!("resident bytes before: {before}");
    println!("resident bytes after: {after}");
    println!("resident bytes per token: {per_token:.0}");
}
