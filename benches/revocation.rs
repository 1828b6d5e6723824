//! What a fleet pays for revocations that are final when the call returns, and for
//! reconciliation. Not criterion: figures over many trials against a throwaway PostgreSQL
//! (tests/support/pg.rs), each beside its baseline measured in the same run.
//!
//! 1. **Write latency** of a revoking call (delete, disable, regenerate, revoke by secret,
//!    narrow an allowlist, in turn) on one of 3 replicas, with the fleet's confirmation
//!    (`PostgresOptions::confirm_writes`, the default) and without it, in alternating blocks:
//!    p50/p99. After each call returns, every replica is asked to authenticate the old secret:
//!    how many accepted it.
//! 2. **Reconciliation at `API_TOKENS_RECONCILE_ROWS` tokens** (default 1,000,000): the time
//!    PostgreSQL spends on the comparison (`EXPLAIN ANALYZE` of its query), what
//!    `Replica::reconcile_now` takes end to end and the CPU it costs this process when nothing
//!    differs, and the time to repair one row changed with triggers off.
//!
//! `cargo bench -p api-tokens-benches --bench revocation`. `API_TOKENS_REVOCATIONS` sets the
//! number of revocations (default 1,000, in blocks of 250), `API_TOKENS_RECONCILE_ROWS=0`
//! skips part 2.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
use std::time::{Duration, Instant};

use api_tokens::store::postgres::{PostgresOptions, PostgresStore};
use api_tokens::store::replica::{Replica, ReplicaOptions};
use api_tokens::{
    Actor, Issued, NewToken, PermissionSet, RequestContext, Status, TokenUpdate, Tokens, UserId,
};

#[path = "../tests/support/pg.rs"]
mod pg;

fn percentiles(name: &str, mut v: Vec<Duration>) {
    v.sort();
    let at = |p: f64| v[((v.len() as f64 * p).ceil() as usize).clamp(1, v.len()) - 1];
    println!(
        "{name:<40} n {:>5}   p50 {:>8.3} ms   p99 {:>8.3} ms   max {:>8.3} ms",
        v.len(),
        at(0.50).as_secs_f64() * 1e3,
        at(0.99).as_secs_f64() * 1e3,
        v[v.len() - 1].as_secs_f64() * 1e3,
    );
}

fn replica(url: &str, name: &str, confirm: bool) -> Tokens<Replica> {
    Tokens::new(
        Replica::start(
            PostgresStore::connect_with(url, PostgresOptions::default().confirm_writes(confirm))
                .unwrap(),
            ReplicaOptions::default()
                .staleness_bound(Duration::from_secs(5))
                .name(name),
        )
        .unwrap(),
    )
}

fn revoke(writer: &Tokens<Replica>, admin: &Actor, issued: &Issued, how: usize) {
    let id = issued.token.id;
    match how % 5 {
        0 => drop(writer.delete(admin, [id]).unwrap()),
        1 => drop(writer.set_status(admin, [id], Status::Disabled).unwrap()),
        2 => drop(writer.generate(admin, [id]).unwrap()),
        3 => drop(writer.revoke_by_secret(issued.secret.expose()).unwrap()),
        _ => drop(
            writer
                .update(
                    admin,
                    [TokenUpdate::new(id).allowlist("10.0.0.0/8".parse().unwrap())],
                )
                .unwrap(),
        ),
    }
}

/// CPU time this process has used (user + system), from /proc.
fn cpu_time() -> Duration {
    let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
    let after = stat.rsplit(')').next().unwrap_or("");
    let fields: Vec<&str> = after.split_whitespace().collect();
    let ticks = |i: usize| {
        fields
            .get(i)
            .and_then(|f| f.parse::<u64>().ok())
            .unwrap_or(0)
    };
    // utime and stime are fields 14 and 15 of the whole line; 12 and 13 after the name.
    Duration::from_millis((ticks(11) + ticks(12)) * 10)
}

fn revocations(url: &str, n: usize) {
    let admin = Actor::admin(UserId::from(1));
    let outside = RequestContext::from_ip("192.0.2.1".parse().unwrap());
    let (b, c) = (replica(url, "b", true), replica(url, "c", true));
    let block = 250.min(n.max(1));
    let (mut on, mut off) = (Vec::new(), Vec::new());
    let (mut accepted_on, mut accepted_off) = (0, 0);
    let mut trial = 0;
    for round in 0..n.div_ceil(block) * 2 {
        let confirm = round % 2 == 0;
        let a = replica(url, "a", confirm);
        for _ in 0..block {
            let issued = a
                .issue(
                    &admin,
                    NewToken::new(format!("t{trial}").parse().unwrap())
                        .permissions(PermissionSet::all()),
                )
                .unwrap();
            let s = issued.secret.expose().to_owned();
            let until = Instant::now() + Duration::from_secs(10);
            while [&a, &b, &c]
                .iter()
                .any(|r| r.authenticate(&s, &outside).is_err())
            {
                assert!(
                    Instant::now() < until,
                    "issued token never usable everywhere"
                );
                std::thread::yield_now();
            }
            let started = Instant::now();
            revoke(&a, &admin, &issued, trial);
            let took = started.elapsed();
            let accepted = [&a, &b, &c]
                .iter()
                .filter(|r| r.authenticate(&s, &outside).is_ok())
                .count();
            if confirm {
                on.push(took);
                accepted_on += usize::from(accepted > 0);
            } else {
                off.push(took);
                accepted_off += usize::from(accepted > 0);
            }
            trial += 1;
        }
        drop(a);
    }
    println!("revoking call on 1 of 3 replicas (blocks of {block}, alternating):");
    let (n_on, n_off) = (on.len(), off.len());
    percentiles("  with confirmation (default)", on);
    percentiles("  without (confirm_writes(false))", off);
    println!(
        "  calls after which some replica accepted the old secret: with {accepted_on} of {n_on}, without {accepted_off} of {n_off}"
    );
}

fn reconciliation(server: &pg::PgServer, url: &str, rows: usize) {
    let started = Instant::now();
    server.psql(
        "revocation",
        &format!(
            "SET session_replication_role = replica;
             INSERT INTO api_tokens (id, owner, name, description, creator, status, created_at,
                 permissions, allowlist, secret_hash, generated_at, revision, change_seq)
             SELECT 1000000 + i, (i % 1000)::text, 'r' || i, '', '1', 0, 1600000000,
                 'deploy.*', '', decode(md5(i::text) || md5('x' || i), 'hex'), 1600000000, 0, 0
             FROM generate_series(1, {rows}) AS i;
             ANALYZE api_tokens;"
        ),
    );
    println!(
        "reconciliation at {rows} tokens (filled in {:.1} s):",
        started.elapsed().as_secs_f64()
    );
    let started = Instant::now();
    let r = replica(url, "reconciling", true);
    println!(
        "  replica loaded in {:.2} s",
        started.elapsed().as_secs_f64()
    );
    let explain = |sql: &str| -> f64 {
        let out = server.psql(
            "revocation",
            &format!("EXPLAIN (ANALYZE, FORMAT JSON) {sql}"),
        );
        let at = out.find("\"Execution Time\": ").expect("execution time");
        out[at + 18..]
            .split(|c: char| !(c.is_ascii_digit() || c == '.'))
            .next()
            .and_then(|v| v.parse().ok())
            .unwrap_or(f64::NAN)
    };
    let mut db = Vec::new();
    for _ in 0..10 {
        db.push(Duration::from_secs_f64(
            explain("SELECT count(*), coalesce(sum(sec_fp), 0)::text FROM api_tokens") / 1e3,
        ));
    }
    percentiles("  PostgreSQL: the sum over every row", db);
    let mut buckets = Vec::new();
    for _ in 0..5 {
        buckets.push(Duration::from_secs_f64(
            explain(
                "SELECT id >> 10, count(*), coalesce(sum(sec_fp), 0)::text FROM api_tokens GROUP BY 1",
            ) / 1e3,
        ));
    }
    percentiles("  PostgreSQL: the sums per bucket (repair)", buckets);
    let mut equal = Vec::new();
    let cpu = cpu_time();
    for _ in 0..20 {
        let found = r.store().reconcile_now().unwrap();
        assert!(!found.differed);
        equal.push(found.took);
    }
    let cpu = cpu_time().saturating_sub(cpu);
    percentiles("  reconcile_now, nothing differs", equal);
    println!(
        "  this process's CPU per comparison: {:.2} ms (all its threads)",
        cpu.as_secs_f64() * 1e3 / 20.0
    );
    let mut repair = Vec::new();
    for i in 0..10 {
        server.psql(
            "revocation",
            &format!(
                "SET session_replication_role = replica;
                 UPDATE api_tokens SET status = 1 - status WHERE id = {}",
                1000000 + 1 + i * 997
            ),
        );
        let found = r.store().reconcile_now().unwrap();
        assert!(found.differed && !found.reloaded, "{found:?}");
        repair.push(found.took);
    }
    percentiles("  reconcile_now, one row changed, repaired", repair);
}

fn main() {
    let n: usize = std::env::var("API_TOKENS_REVOCATIONS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1000);
    let rows: usize = std::env::var("API_TOKENS_RECONCILE_ROWS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1_000_000);
    let Some(server) = pg::PgServer::start() else {
        return;
    };
    let url = server.create_db("revocation");
    if n > 0 {
        revocations(&url, n);
    }
    if rows > 0 {
        reconciliation(&server, &url, rows);
    }
}
