//! A fleet of replicas over one real PostgreSQL (started by the test): writes on one replica
//! reach the others, revocations are refused everywhere within the bound, lost listeners and a
//! stopped server fail closed and recover, concurrent writers lose nothing, last uses merge.
//! Replicas in other processes are child processes of this test binary
//! (`support::fleet::ChildReplica`).

use std::io::Write;
use std::sync::Arc;
use std::time::{Duration, Instant};

use api_tokens::store::postgres::PostgresStore;
use api_tokens::store::replica::Replica;
use api_tokens::store::{Change, TokenStore};
use api_tokens::{
    CollectEvents, Denial, DenialKind, EventKind, ManualClock, NewToken, PermissionSet,
    PublicDenial, RequestContext, Status, StoreError, TokenId, TokenUpdate, Tokens,
};

use crate::support::fleet::{ChildReplica, bounded, kind, replica, signal};
use crate::support::pg::wait_for;
use crate::support::{admin, ctx, issue, server};

#[test]
fn three_replicas_see_every_write_within_the_bound() {
    let pg = server!();
    let url = pg.create_db("fleet");
    let bound = Duration::from_secs(2);
    let (a, b, c) = (
        replica(&url, bounded(bound)),
        replica(&url, bounded(bound)),
        replica(&url, bounded(bound)),
    );
    // Issue on A: at once on A, within the bound on B and C.
    let issued = issue(&a, "deploy");
    let id = issued.token.id;
    let s = issued.secret.expose().to_owned();
    assert_eq!(
        kind(&a, &s),
        None,
        "the writer's own replica has it when the call returns"
    );
    for r in [&b, &c] {
        wait_for(bound, "issued token usable", || kind(r, &s).is_none());
    }
    // Disable on B: refused on B when the call returns, on A and C within the bound.
    b.set_status(&admin(), [id], Status::Disabled).unwrap();
    assert_eq!(kind(&b, &s), Some(DenialKind::Disabled));
    for r in [&a, &c] {
        wait_for(bound, "disable seen", || {
            kind(r, &s) == Some(DenialKind::Disabled)
        });
    }
    // Enable and regenerate on C: the old secret stops everywhere, the new one works.
    c.set_status(&admin(), [id], Status::Enabled).unwrap();
    let (_, fresh) = c.generate(&admin(), [id]).unwrap().pop().unwrap();
    let fresh = fresh.expose().to_owned();
    assert_eq!(kind(&c, &s), Some(DenialKind::Superseded));
    assert_eq!(kind(&c, &fresh), None);
    for r in [&a, &b] {
        wait_for(bound, "regeneration seen", || {
            kind(r, &s) == Some(DenialKind::Superseded) && kind(r, &fresh).is_none()
        });
    }
    // Delete on A: unknown everywhere.
    a.delete(&admin(), [id]).unwrap();
    assert_eq!(kind(&a, &fresh), Some(DenialKind::Unknown));
    for r in [&b, &c] {
        wait_for(bound, "delete seen", || {
            kind(r, &fresh) == Some(DenialKind::Unknown)
        });
    }
    // Management reads on any replica see the database.
    assert!(b.get(&admin(), id).is_err());
    assert_eq!(c.count(&admin(), &api_tokens::Query::new()).unwrap(), 0);
}

#[test]
fn a_killed_listener_reconnects_and_misses_nothing() {
    let pg = server!();
    let url = pg.create_db("listener");
    let bound = Duration::from_secs(2);
    let (a, b) = (replica(&url, bounded(bound)), replica(&url, bounded(bound)));
    let issued = issue(&a, "t");
    let s = issued.secret.expose().to_owned();
    wait_for(bound, "issued", || kind(&b, &s).is_none());
    let listeners = || {
        pg.psql(
            "listener",
            "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'api-tokens-listener'",
        )
        .trim()
        .parse::<usize>()
        .unwrap()
    };
    assert_eq!(listeners(), 2);
    // Kill both listeners' backends, and revoke while they are gone.
    assert_eq!(pg.terminate("listener", "api-tokens-listener"), 2);
    a.set_status(&admin(), [issued.token.id], Status::Disabled)
        .unwrap();
    wait_for(bound, "revocation seen after the listener died", || {
        kind(&b, &s) == Some(DenialKind::Disabled)
    });
    wait_for(Duration::from_secs(5), "listeners back", || {
        listeners() == 2
    });
    // A change that sends no notification at all (triggers off, clock moved by hand) is still
    // seen within the bound: the heartbeat catches up by the change clock.
    pg.psql(
        "listener",
        &format!(
            "SET session_replication_role = replica;
             BEGIN;
             UPDATE api_token_clock SET seq = seq + 1;
             UPDATE api_tokens SET status = 0, revision = revision + 1,
                    change_seq = (SELECT seq FROM api_token_clock) WHERE id = {};
             COMMIT;",
            issued.token.id
        ),
    );
    for r in [&a, &b] {
        wait_for(bound, "silent change seen", || kind(r, &s).is_none());
    }
}

#[test]
fn a_stopped_server_fails_closed_after_the_bound_and_recovers() {
    let mut pg = server!();
    let url = pg.create_db("outage");
    let bound = Duration::from_secs(3);
    let events = Arc::new(CollectEvents::new());
    let a = replica(
        &url,
        bounded(bound)
            .heartbeat(Duration::from_millis(100))
            .events(events.clone()),
    );
    let b = replica(&url, bounded(bound).heartbeat(Duration::from_millis(100)));
    let issued = issue(&a, "t");
    let s = issued.secret.expose().to_owned();
    wait_for(bound, "issued", || kind(&b, &s).is_none());
    pg.stop();
    // Within the bound the copy still serves (authentication does no I/O) ...
    assert_eq!(kind(&a, &s), None, "still within the bound");
    // ... management fails with a typed error, never a panic ...
    let err = a
        .create(
            &admin(),
            [NewToken::new("during".parse().unwrap()).permissions(PermissionSet::all())],
        )
        .unwrap_err();
    assert!(matches!(err, api_tokens::Error::Store(_)), "{err:?}");
    // ... and past the bound every token is refused as stale, not unknown.
    for r in [&a, &b] {
        wait_for(bound + Duration::from_secs(2), "fail closed", || {
            kind(r, &s) == Some(DenialKind::Stale)
        });
    }
    // (The wait above already bounds when: within the bound plus a margin for a loaded
    // machine; a replica that never went stale fails it.)
    let d = a.authenticate(&s, &ctx()).unwrap_err();
    assert!(matches!(d, Denial::Stale { .. }));
    assert_eq!(d.public(), PublicDenial::Unavailable);
    assert!(!a.store().is_current());
    wait_for(Duration::from_secs(5), "stale event", || {
        events
            .take()
            .iter()
            .any(|e| matches!(e.kind, EventKind::ReplicaStale { .. }))
    });
    pg.start_again();
    for r in [&a, &b] {
        wait_for(Duration::from_secs(10), "recovered", || {
            kind(r, &s).is_none()
        });
    }
    wait_for(Duration::from_secs(5), "current event", || {
        events
            .take()
            .iter()
            .any(|e| e.kind == EventKind::ReplicaCurrent)
    });
    // And writes flow again.
    b.set_status(&admin(), [issued.token.id], Status::Disabled)
        .unwrap();
    wait_for(bound, "revocation after recovery", || {
        kind(&a, &s) == Some(DenialKind::Disabled)
    });
}

#[test]
fn concurrent_writers_on_different_replicas_never_lose_an_update() {
    let pg = server!();
    let url = pg.create_db("writers");
    let bound = Duration::from_secs(2);
    let fleet: Vec<Arc<Tokens<Replica>>> = (0..3)
        .map(|_| Arc::new(replica(&url, bounded(bound))))
        .collect();
    let id = fleet[0]
        .create(
            &admin(),
            [NewToken::new("shared".parse().unwrap()).permissions(PermissionSet::all())],
        )
        .unwrap()[0];
    // Read-modify-write at the store: a write based on a stale read is refused in SQL and
    // retried, so every one of the 3 × 15 appends survives.
    let threads: Vec<_> = fleet
        .iter()
        .enumerate()
        .map(|(k, r)| {
            let r = r.clone();
            std::thread::spawn(move || {
                let mut conflicts = 0;
                for i in 0..15 {
                    loop {
                        let mut t = r.store().get(id).unwrap().unwrap();
                        t.description.push_str(&format!("[{k}:{i}]"));
                        match r.store().apply(vec![Change::Replace(t)]) {
                            Ok(()) => break,
                            Err(StoreError::Conflict(_)) => conflicts += 1,
                            Err(e) => panic!("{e}"),
                        }
                    }
                }
                conflicts
            })
        })
        .collect();
    let conflicts: usize = threads.into_iter().map(|t| t.join().unwrap()).sum();
    let t = fleet[1].get(&admin(), id).unwrap();
    for k in 0..3 {
        for i in 0..15 {
            assert_eq!(t.description.matches(&format!("[{k}:{i}]")).count(), 1);
        }
    }
    eprintln!("{conflicts} revision conflicts retried");
    // Through the API: three replicas change three different fields at once; all stick.
    let updates = [
        TokenUpdate::new(id).name("renamed".parse().unwrap()),
        TokenUpdate::new(id).permissions("dns.*".parse().unwrap()),
        TokenUpdate::new(id).allowlist("10.0.0.0/8".parse().unwrap()),
    ];
    let threads: Vec<_> = fleet
        .iter()
        .zip(updates)
        .map(|(r, u)| {
            let r = r.clone();
            std::thread::spawn(move || r.update(&admin(), [u]).unwrap())
        })
        .collect();
    for t in threads {
        t.join().unwrap();
    }
    let t = fleet[2].get(&admin(), id).unwrap();
    assert_eq!(t.name.as_str(), "renamed");
    assert_eq!(t.permissions.to_string(), "dns.*");
    assert_eq!(t.allowlist.to_string(), "10.0.0.0/8");
}

#[test]
fn last_use_is_buffered_per_replica_and_merged_later_wins() {
    let pg = server!();
    let url = pg.create_db("lastuse");
    let t0 = time::macros::datetime!(2026-01-01 0:00 UTC);
    let clock = |s: i64| Arc::new(ManualClock::new(t0 + time::Duration::seconds(s)));
    let long = bounded(Duration::from_secs(2)).last_use_flush(Duration::from_secs(3600));
    let a = replica(&url, long.clone()).with_clock(clock(20));
    let b = replica(&url, long).with_clock(clock(10));
    let issued = issue(&a, "t");
    let s = issued.secret.expose().to_owned();
    wait_for(Duration::from_secs(2), "issued", || kind(&b, &s).is_none());
    let stored = || {
        pg.psql(
            "lastuse",
            &format!(
                "SELECT last_used_at FROM api_tokens WHERE id = {}",
                issued.token.id
            ),
        )
        .trim()
        .to_owned()
    };
    a.authenticate(&s, &ctx()).unwrap();
    b.authenticate(&s, &ctx()).unwrap();
    assert_eq!(stored(), "", "buffered, not written per request");
    a.store().flush().unwrap();
    b.store().flush().unwrap(); // the earlier use, written later, does not win
    assert_eq!(stored(), (t0.unix_timestamp() + 20).to_string());
    // Shutting a replica down writes what it holds.
    let c = replica(
        &url,
        bounded(Duration::from_secs(2)).last_use_flush(Duration::from_secs(3600)),
    )
    .with_clock(clock(30));
    c.authenticate(&s, &ctx()).unwrap();
    drop(c);
    assert_eq!(stored(), (t0.unix_timestamp() + 30).to_string());
    // And the interval writes without being asked.
    let d = replica(
        &url,
        bounded(Duration::from_secs(2)).last_use_flush(Duration::from_millis(200)),
    )
    .with_clock(clock(40));
    d.authenticate(&s, &ctx()).unwrap();
    let want = (t0.unix_timestamp() + 40).to_string();
    wait_for(Duration::from_secs(5), "flushed on the interval", || {
        stored() == want
    });
}

#[test]
fn a_replica_back_from_beyond_the_deletion_horizon_reloads() {
    let pg = server!();
    let url = pg.create_db("horizon");
    // Issued before the replica starts, which loads them: no notification of these writes is
    // left for it to act on (one still on its way would let it catch up before the test says
    // so; its own writes would notify it too).
    let writer = Tokens::new(PostgresStore::connect(&url).unwrap());
    let x = issue(&writer, "x");
    let y = issue(&writer, "y");
    // A replica that confirms rarely, so the test decides when it catches up.
    let a = replica(
        &url,
        bounded(Duration::from_secs(60)).heartbeat(Duration::from_secs(30)),
    );
    let (sx, sy) = (x.secret.expose().to_owned(), y.secret.expose().to_owned());
    // Deleted behind the replica's back (no notification), and the record of it pruned.
    pg.psql(
        "horizon",
        &format!(
            "SET session_replication_role = replica;
             BEGIN;
             UPDATE api_token_clock SET seq = seq + 1;
             DELETE FROM api_tokens WHERE id = {id};
             INSERT INTO api_token_deleted (id, change_seq, deleted_at)
                 VALUES ({id}, (SELECT seq FROM api_token_clock), now() - interval '1 hour');
             COMMIT;",
            id = x.token.id
        ),
    );
    assert_eq!(
        a.store()
            .store()
            .prune_deletions(Duration::from_secs(60))
            .unwrap(),
        1
    );
    assert_eq!(kind(&a, &sx), None, "not caught up yet");
    pg.psql("horizon", "NOTIFY api_tokens");
    wait_for(Duration::from_secs(5), "reloaded", || {
        kind(&a, &sx) == Some(DenialKind::Unknown)
    });
    assert_eq!(kind(&a, &sy), None, "the rest survives the reload");
    assert_eq!(a.store().len(), 1);
}

#[test]
fn changes_made_by_hand_in_sql_reach_every_replica() {
    let pg = server!();
    let url = pg.create_db("byhand");
    let bound = Duration::from_secs(2);
    let (a, b) = (replica(&url, bounded(bound)), replica(&url, bounded(bound)));
    let x = issue(&a, "x");
    let y = issue(&a, "y");
    let (sx, sy) = (x.secret.expose().to_owned(), y.secret.expose().to_owned());
    wait_for(bound, "issued", || {
        kind(&b, &sx).is_none() && kind(&b, &sy).is_none()
    });
    // An operator disables one token and deletes another with plain SQL.
    pg.psql(
        "byhand",
        &format!("UPDATE api_tokens SET status = 1 WHERE id = {}", x.token.id),
    );
    pg.psql(
        "byhand",
        &format!("DELETE FROM api_tokens WHERE id = {}", y.token.id),
    );
    for r in [&a, &b] {
        wait_for(bound, "hand edits seen", || {
            kind(r, &sx) == Some(DenialKind::Disabled) && kind(r, &sy) == Some(DenialKind::Unknown)
        });
    }
    // A last-use write is not a change replicas need: it does not move the clock.
    let clock = || {
        pg.psql("byhand", "SELECT seq FROM api_token_clock")
            .trim()
            .to_owned()
    };
    let before = clock();
    pg.psql(
        "byhand",
        &format!(
            "UPDATE api_tokens SET last_used_at = 1 WHERE id = {}",
            x.token.id
        ),
    );
    assert_eq!(clock(), before);
}

#[test]
fn a_new_replica_loads_every_row_whatever_the_clock_says() {
    let pg = server!();
    let url = pg.create_db("restored");
    let writer = Tokens::new(PostgresStore::connect(&url).unwrap());
    let issued = issue(&writer, "t");
    // As after restoring a dump taken before any batch moved the clock.
    pg.psql("restored", "UPDATE api_token_clock SET seq = 0");
    let r = replica(&url, bounded(Duration::from_secs(2)));
    assert_eq!(kind(&r, issued.secret.expose()), None);
}

#[test]
fn bad_replica_settings_are_refused() {
    let pg = server!();
    let url = pg.create_db("settings");
    for options in [
        bounded(Duration::from_millis(1)),
        bounded(Duration::from_secs(1)).heartbeat(Duration::from_secs(1)),
        bounded(Duration::from_secs(1)).heartbeat(Duration::ZERO),
        bounded(Duration::from_secs(1)).last_use_flush(Duration::ZERO),
    ] {
        let r = Replica::start(PostgresStore::connect(&url).unwrap(), options.clone());
        assert!(matches!(r, Err(StoreError::Config(_))), "{options:?}");
    }
    // An unreachable database: a typed error within the timeout, not a hang.
    let closed = format!(
        "host=127.0.0.1 port={} user=postgres connect_timeout=2",
        pg.port() ^ 1
    );
    assert!(PostgresStore::connect(&closed).is_err());
}

#[test]
fn replicas_in_separate_processes() {
    let pg = server!();
    let url = pg.create_db("processes");
    let bound = Duration::from_secs(2);
    let mut children = [ChildReplica::spawn(&url), ChildReplica::spawn(&url)];
    let a = replica(&url, bounded(bound));
    let issued = issue(&a, "t");
    let id: TokenId = issued.token.id;
    let s = issued.secret.expose().to_owned();
    for c in &mut children {
        wait_for(bound, "issued, in another process", || {
            c.auth(&s) == format!("ok {id}")
        });
    }
    a.set_status(&admin(), [id], Status::Disabled).unwrap();
    for c in &mut children {
        wait_for(bound, "revoked, in another process", || {
            c.auth(&s) == "denied Disabled"
        });
    }
    for mut c in children {
        writeln!(c.stdin, "quit").unwrap();
        assert!(c.proc.wait().unwrap().success());
    }
}

#[test]
fn a_truncate_made_by_hand_reaches_every_replica() {
    // `TRUNCATE` fires no row trigger: the statement trigger of schema version 4 moves the
    // clock and the deletion horizon, so every replica reloads and forgets every token.
    let pg = server!();
    let url = pg.create_db("truncate");
    let bound = Duration::from_secs(2);
    let (a, b) = (replica(&url, bounded(bound)), replica(&url, bounded(bound)));
    let x = issue(&a, "x");
    let sx = x.secret.expose().to_owned();
    wait_for(bound, "issued", || kind(&b, &sx).is_none());
    // A truncate rolled back changes nothing.
    pg.psql("truncate", "BEGIN; TRUNCATE api_tokens; ROLLBACK;");
    assert_eq!(
        pg.psql("truncate", "SELECT count(*) FROM api_tokens")
            .trim(),
        "1"
    );
    for r in [&a, &b] {
        assert_eq!(kind(r, &sx), None);
    }
    pg.psql("truncate", "TRUNCATE api_tokens");
    for r in [&a, &b] {
        wait_for(bound, "the truncate seen", || {
            kind(r, &sx) == Some(DenialKind::Unknown)
        });
        assert!(r.store().is_current());
    }
    // The fleet goes on: a token issued after the wipe reaches the other replica.
    let z = issue(&b, "z");
    let sz = z.secret.expose().to_owned();
    wait_for(bound, "issued after the wipe", || kind(&a, &sz).is_none());
    assert_eq!(kind(&a, &sx), Some(DenialKind::Unknown));
}

#[test]
fn a_database_restored_from_a_dump_and_written_to_is_told_apart_by_its_history() {
    // A restore (or a failover to a standby that missed the last transactions) hands change
    // clock values out again: after a few writes the clock is past where the replicas were,
    // which the clock alone could not tell apart from ordinary progress. The history's nonces
    // can: the replicas reload, and the token the restored database lost is refused.
    let pg = server!();
    let url = pg.create_db("restore");
    pg.psql("postgres", "CREATE ROLE app LOGIN SUPERUSER");
    let app = pg.url_as("restore", "app");
    let bound = Duration::from_secs(1);
    let options = || bounded(bound).heartbeat(Duration::from_millis(100));
    let (a, b) = (replica(&app, options()), replica(&app, options()));
    let writer = Tokens::new(PostgresStore::connect(&url).unwrap());
    let kept = issue(&writer, "kept");
    let dump = pg.dump("restore", "before");
    let lost = issue(&writer, "lost");
    let (kept_s, lost_s) = (
        kept.secret.expose().to_owned(),
        lost.secret.expose().to_owned(),
    );
    for r in [&a, &b] {
        wait_for(bound, "both tokens usable", || {
            kind(r, &kept_s).is_none() && kind(r, &lost_s).is_none()
        });
    }
    // The replicas lose the database (a network partition), which is restored from the dump
    // and written to before they are back.
    pg.psql("postgres", "ALTER ROLE app NOLOGIN");
    assert!(pg.terminate_user("restore", "app") >= 2);
    pg.restore("restore", &dump);
    let restored = Instant::now();
    let newer: Vec<_> = (0..3)
        .map(|i| {
            writer
                .issue(
                    &admin(),
                    NewToken::new(format!("newer-{i}").parse().unwrap())
                        .permissions(PermissionSet::all()),
                )
                .unwrap()
        })
        .collect();
    assert_eq!(
        newer[0].token.id, lost.token.id,
        "the restored id sequence hands the lost token's id out again"
    );
    let clock: u64 = pg
        .psql("restore", "SELECT seq FROM api_token_clock")
        .trim()
        .parse()
        .unwrap();
    let before = a.store().clock().unwrap();
    assert!(
        clock >= before,
        "the restored clock ({clock}) is past the replicas' ({before}) again"
    );
    pg.psql("postgres", "ALTER ROLE app LOGIN");
    for r in [&a, &b] {
        wait_for(bound * 5, "back, reloaded", || {
            kind(r, &kept_s).is_none() && newer.iter().all(|n| kind(r, n.secret.expose()).is_none())
        });
        // Never the lost token again; and what its id names now is the newer token.
        assert_eq!(kind(r, &lost_s), Some(DenialKind::Unknown));
        let t = r.get(&admin(), lost.token.id).unwrap();
        assert_eq!(t.name.as_str(), "newer-0");
    }
    // The stale bound held meanwhile: nothing served the lost token past the bound after the
    // partition began (the replicas were refusing, then reloaded).
    assert!(restored.elapsed() < Duration::from_secs(30));
    assert!(
        a.revoke_by_secret(&lost_s).unwrap().is_unknown(),
        "revocation by possession finds nothing to revoke, rather than answering for another token"
    );
}

#[test]
fn changes_made_with_triggers_off_are_repaired_within_the_reconciliation_interval() {
    // `session_replication_role = replica` (pg_restore --disable-triggers, logical
    // replication's apply) and `DISABLE TRIGGER` skip the triggers that stamp and notify: no
    // catch-up sees those changes. Reconciliation does.
    let pg = server!();
    let url = pg.create_db("untriggered");
    let bound = Duration::from_secs(1);
    let every = Duration::from_millis(300);
    let options = || bounded(bound).reconcile_every(every);
    let (a, b) = (replica(&url, options()), replica(&url, options()));
    let within = every + bound + Duration::from_secs(2);
    let t1 = issue(&a, "t1");
    let t2 = issue(&a, "t2");
    let t3 = issue(&a, "t3");
    let s1 = t1.secret.expose().to_owned();
    let s2 = t2.secret.expose().to_owned();
    let s3 = t3.secret.expose().to_owned();
    for r in [&a, &b] {
        wait_for(bound, "usable", || {
            [&s1, &s2, &s3].iter().all(|s| kind(r, s).is_none())
        });
    }
    // Disabled with triggers off.
    pg.psql(
        "untriggered",
        &format!(
            "SET session_replication_role = replica;
             UPDATE api_tokens SET status = 1 WHERE id = {}",
            t1.token.id
        ),
    );
    for r in [&a, &b] {
        let took = wait_for(within, "disabled without triggers", || {
            kind(r, &s1) == Some(DenialKind::Disabled)
        });
        assert!(took <= within);
    }
    // Deleted with the table's triggers disabled.
    pg.psql(
        "untriggered",
        &format!(
            "ALTER TABLE api_tokens DISABLE TRIGGER USER;
             DELETE FROM api_tokens WHERE id = {};
             ALTER TABLE api_tokens ENABLE TRIGGER USER;",
            t2.token.id
        ),
    );
    for r in [&a, &b] {
        wait_for(within, "deleted without triggers", || {
            kind(r, &s2) == Some(DenialKind::Unknown)
        });
    }
    // An allowlist narrowed by hand, triggers off: the replicas refuse the address it no
    // longer allows.
    pg.psql(
        "untriggered",
        &format!(
            "SET session_replication_role = replica;
             UPDATE api_tokens SET allowlist = '10.0.0.0/8' WHERE id = {}",
            t3.token.id
        ),
    );
    let outside = RequestContext::from_ip("192.0.2.1".parse().unwrap());
    for r in [&a, &b] {
        wait_for(within, "allowlist narrowed without triggers", || {
            r.authenticate(&s3, &outside).err().map(|d| d.kind())
                == Some(DenialKind::AddressNotAllowed)
        });
    }
    // A row written in another spelling than the crate's (its permissions in another order)
    // is the same token: repaired once, then left alone.
    let t4 = issue(&a, "t4");
    pg.psql(
        "untriggered",
        &format!(
            "SET session_replication_role = replica;
             UPDATE api_tokens SET permissions = 'zz.read aa.read' WHERE id = {}",
            t4.token.id
        ),
    );
    let s4 = t4.secret.expose().to_owned();
    let zz = "zz.read".parse().unwrap();
    for r in [&a, &b] {
        wait_for(within, "permissions changed without triggers", || {
            r.authenticate(&s4, &ctx())
                .is_ok_and(|g| g.allows(&zz) && !g.allows(&"bb.read".parse().unwrap()))
        });
    }
    let repaired = (a.store().repaired_rows(), b.store().repaired_rows());
    assert!(repaired.0 > 0 && repaired.1 > 0);
    // Repaired, not reloaded: only the first load so far.
    assert_eq!((a.store().reloads(), b.store().reloads()), (1, 1));
    // The odd row changed through the API (written back in the crate's spelling), and
    // several intervals later: nothing was repaired again.
    a.update(
        &admin(),
        [TokenUpdate::new(t4.token.id).description("respelled")],
    )
    .unwrap();
    let settle = Instant::now();
    while settle.elapsed() < every * 4 {
        assert!(kind(&a, &s4).is_none() && kind(&b, &s4).is_none());
        std::thread::sleep(Duration::from_millis(20));
    }
    assert_eq!(
        (a.store().repaired_rows(), b.store().repaired_rows()),
        repaired,
        "a row in another spelling is repaired once, not on every reconciliation"
    );
    assert_eq!((a.store().reloads(), b.store().reloads()), (1, 1));
    // An operator who just changed a token by hand asks for the comparison at once: when it
    // returns, the change is in the copy (a replica that would not reconcile for an hour).
    let c = replica(
        &url,
        bounded(bound).reconcile_every(Duration::from_secs(3600)),
    );
    assert!(kind(&c, &s4).is_none());
    let nothing = c.store().reconcile_now().unwrap();
    assert!(!nothing.differed && !nothing.reloaded && nothing.rows_repaired == 0);
    pg.psql(
        "untriggered",
        &format!(
            "SET session_replication_role = replica;
             UPDATE api_tokens SET status = 1 WHERE id = {}",
            t4.token.id
        ),
    );
    assert!(
        kind(&c, &s4).is_none(),
        "no trigger, no notification: not seen yet"
    );
    let found = c.store().reconcile_now().unwrap();
    assert!(
        found.differed && !found.reloaded && found.rows_repaired >= 1,
        "{found:?}"
    );
    assert_eq!(kind(&c, &s4), Some(DenialKind::Disabled));
}

/// Revokes `issued` on `writer` in the way `how` picks; returns the secrets that must be
/// refused afterwards.
fn revoke(writer: &Tokens<Replica>, issued: &api_tokens::Issued, how: usize) -> &'static str {
    let id = issued.token.id;
    match how % 5 {
        0 => {
            writer.delete(&admin(), [id]).unwrap();
            "delete"
        }
        1 => {
            writer.set_status(&admin(), [id], Status::Disabled).unwrap();
            "disable"
        }
        2 => {
            writer.generate(&admin(), [id]).unwrap();
            "regenerate"
        }
        3 => {
            writer.revoke_by_secret(issued.secret.expose()).unwrap();
            "revoke by secret"
        }
        _ => {
            writer
                .update(
                    &admin(),
                    [TokenUpdate::new(id).allowlist("10.0.0.0/8".parse().unwrap())],
                )
                .unwrap();
            "narrow the allowlist"
        }
    }
}

#[test]
fn a_revoking_call_returns_only_once_every_replica_refuses() {
    let pg = server!();
    let url = pg.create_db("final");
    let bound = Duration::from_secs(2);
    let names = ["a", "b", "c"];
    let fleet: Vec<Tokens<Replica>> = names
        .iter()
        .map(|n| replica(&url, bounded(bound).name(*n)))
        .collect();
    let outside = RequestContext::from_ip("192.0.2.1".parse().unwrap());
    let mut accepted = Vec::new();
    for trial in 0..100 {
        let writer = &fleet[trial % 3];
        let issued = issue(&fleet[(trial + 1) % 3], &format!("t{trial}"));
        let s = issued.secret.expose().to_owned();
        for r in &fleet {
            wait_for(bound, "usable everywhere", || {
                r.authenticate(&s, &outside).is_ok()
            });
        }
        let ((), reports) = writer.store().propagation(|| {
            let _ = revoke(writer, &issued, trial);
        });
        for (i, r) in fleet.iter().enumerate() {
            if r.authenticate(&s, &outside).is_ok() {
                accepted.push((trial, names[i]));
            }
        }
        // The report says who confirmed: the two other replicas.
        let last = reports.last().expect("a report");
        let mut others: Vec<&str> = names
            .iter()
            .copied()
            .filter(|n| *n != writer.store().name())
            .collect();
        others.sort_unstable();
        assert_eq!(last.confirmed, others, "trial {trial}");
        assert!(last.lapsed.is_empty(), "trial {trial}: {last:?}");
    }
    assert_eq!(
        accepted,
        vec![],
        "a replica accepted a secret after the revoking call returned"
    );
    // A replica that leaves the fleet is no longer waited for, nor reported.
    let mut fleet = fleet;
    let c = fleet.pop().unwrap();
    drop(c);
    let issued = issue(&fleet[0], "after");
    let (_, reports) = fleet[1]
        .store()
        .propagation(|| fleet[1].delete(&admin(), [issued.token.id]).unwrap());
    assert_eq!(reports.len(), 1);
    assert_eq!(reports[0].confirmed, vec!["a".to_owned()]);
    assert!(reports[0].lapsed.is_empty());
    assert!(reports[0].waited < bound, "{:?}", reports[0].waited);
}

#[test]
fn a_replica_killed_with_kill_9_holds_a_revocation_back_at_most_its_lease() {
    let pg = server!();
    let url = pg.create_db("killed");
    let bound = Duration::from_secs(1);
    let a = replica(&url, bounded(bound).name("a"));
    let mut child = ChildReplica::spawn_with(&url, bound, "child");
    let issued = issue(&a, "t");
    let (id, s) = (issued.token.id, issued.secret.expose().to_owned());
    wait_for(bound, "usable in the child", || {
        child.auth(&s) == format!("ok {id}")
    });
    // Killed: it can neither confirm nor leave. The revocation waits out its lease (the bound
    // and a twentieth) and says so.
    signal(child.proc.id(), "-KILL");
    child.proc.wait().unwrap();
    let started = Instant::now();
    let (r, reports) = a
        .store()
        .propagation(|| a.set_status(&admin(), [id], Status::Disabled));
    r.unwrap();
    let took = started.elapsed();
    assert!(took < bound * 2, "waited {took:?}");
    assert_eq!(reports[0].lapsed, vec!["child".to_owned()]);
    assert!(reports[0].confirmed.is_empty());
    // The next write no longer waits for it: its lease is over.
    let started = Instant::now();
    a.set_status(&admin(), [id], Status::Enabled).unwrap();
    assert!(started.elapsed() < bound, "{:?}", started.elapsed());

    // A frozen replica (SIGSTOP: a paused VM, a long GC) is waited out the same way, and when
    // it wakes up it refuses the token rather than serve its old copy.
    let mut frozen = ChildReplica::spawn_with(&url, bound, "frozen");
    wait_for(bound, "usable in the frozen-to-be child", || {
        frozen.auth(&s) == format!("ok {id}")
    });
    signal(frozen.proc.id(), "-STOP");
    let (r, reports) = a
        .store()
        .propagation(|| a.set_status(&admin(), [id], Status::Disabled));
    r.unwrap();
    assert_eq!(reports[0].lapsed, vec!["frozen".to_owned()]);
    signal(frozen.proc.id(), "-CONT");
    let answer = frozen.auth(&s);
    assert!(
        answer == "denied Stale" || answer == "denied Disabled",
        "a replica that slept through its lease answered {answer:?}"
    );
    wait_for(bound * 3, "caught up after waking", || {
        frozen.auth(&s) == "denied Disabled"
    });
    writeln!(frozen.stdin, "quit").unwrap();
    assert!(frozen.proc.wait().unwrap().success());
}

#[test]
fn a_rehash_on_use_never_waits_for_the_fleet() {
    // Moving a token onto the current key happens inside an authentication and takes nothing
    // away: it must not wait out a frozen replica's lease, as a revocation does.
    let pg = server!();
    let url = pg.create_db("rehash");
    let bound = Duration::from_secs(3);
    let store = Arc::new(
        Replica::start(
            PostgresStore::connect(&url).unwrap(),
            bounded(bound).name("a"),
        )
        .unwrap(),
    );
    let (old, new) = (
        api_tokens::HashKey::new([1; 32]),
        api_tokens::HashKey::new([2; 32]),
    );
    let before = Tokens::new(store.clone()).with_hash_key(old.clone());
    let issued = issue(&before, "t");
    let after = Tokens::new(store.clone())
        .with_hash_key(new.clone())
        .with_old_hash_key(old);
    let mut frozen = ChildReplica::spawn_with(&url, bound, "frozen");
    signal(frozen.proc.id(), "-STOP");
    let started = Instant::now();
    after
        .authenticate(issued.secret.expose(), &ctx())
        .expect("found under the old key");
    let took = started.elapsed();
    assert!(took < bound / 3, "an authentication waited {took:?}");
    let t = store.get(issued.token.id).unwrap().unwrap();
    assert_eq!(
        t.secret.unwrap().scheme,
        api_tokens::HashScheme::keyed(new.id()),
        "re-hashed under the current key"
    );
    signal(frozen.proc.id(), "-CONT");
    writeln!(frozen.stdin, "quit").unwrap();
    assert!(frozen.proc.wait().unwrap().success());
}
