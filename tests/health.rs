//! Health: a replica's states against a real PostgreSQL (loading while the database is away,
//! current, stale once the database stops, current again, stopped after its shutdown), and
//! the stores that are always ready.

use std::time::Duration;

use crate::support::pg::{PgServer, wait_for};
use api_tokens::store::postgres::PostgresStore;
use api_tokens::store::replica::{Replica, ReplicaOptions, ReplicaState};
use api_tokens::{
    Actor, DenialKind, NewToken, PermissionSet, RequestContext, StoreHealth, Tokens, UserId,
};

macro_rules! server {
    () => {
        match PgServer::start() {
            Some(s) => s,
            None => return,
        }
    };
}

fn kind(t: &Tokens<Replica>, secret: &str) -> Option<DenialKind> {
    t.authenticate(secret, &RequestContext::unknown_address())
        .err()
        .map(|d| d.kind())
}

fn state(t: &Tokens<Replica>) -> ReplicaState {
    t.store().status().state
}

fn members(pg: &PgServer, db: &str) -> String {
    pg.psql(db, "SELECT count(*) FROM api_token_replicas")
        .trim()
        .to_owned()
}

#[test]
fn a_replica_reports_loading_current_stale_current_again_and_stopped() {
    let mut pg = server!();
    let url = pg.create_db("health");
    let writer = Tokens::new(PostgresStore::connect(&url).unwrap());
    let issued = writer
        .issue(
            &Actor::admin(UserId::from(1)),
            NewToken::new("probe".parse().unwrap()).permissions(PermissionSet::all()),
        )
        .unwrap();
    let secret = issued.secret.expose().to_owned();
    let bound = Duration::from_millis(600);
    let store = PostgresStore::connect(&url).unwrap();

    // Loading: started while the database is away, it returns at once and serves nothing.
    pg.stop();
    let tokens = Tokens::new(
        Replica::spawn(
            store,
            ReplicaOptions::default()
                .staleness_bound(bound)
                .name("probe-replica"),
        )
        .unwrap(),
    );
    let status = tokens.store().status();
    assert_eq!(status.state, ReplicaState::Loading);
    assert_eq!((status.clock, status.unconfirmed_for), (None, None));
    assert!(!status.holds_lease);
    assert!(!tokens.health().ready);
    assert_eq!(kind(&tokens, &secret), Some(DenialKind::Stale));

    // Current once the database is back: ready, holding a lease, level with the database.
    pg.start_again();
    wait_for(Duration::from_secs(20), "current after loading", || {
        state(&tokens) == ReplicaState::Current
    });
    let status = tokens.store().status();
    assert!(tokens.health().ready && status.holds_lease);
    assert!(status.clock.is_some() && status.behind() == 0, "{status:?}");
    assert!(status.unconfirmed_for.unwrap() < bound);
    let confirmed = status.last_confirmed.unwrap();
    let age = api_tokens::time::OffsetDateTime::now_utc() - confirmed;
    assert!(age < api_tokens::time::Duration::seconds(2), "{age}");
    assert_eq!(kind(&tokens, &secret), None);
    assert_eq!(members(&pg, "health"), "1");

    // Stale once the database stops: past the bound it refuses, and says why.
    pg.stop();
    wait_for(bound * 10, "stale after the database stopped", || {
        state(&tokens) == ReplicaState::Stale
    });
    let status = tokens.store().status();
    assert!(!tokens.health().ready);
    assert!(status.unconfirmed_for.unwrap() >= bound);
    assert_eq!(kind(&tokens, &secret), Some(DenialKind::Stale));
    wait_for(bound * 10, "the lease runs out", || {
        !tokens.store().status().holds_lease
    });

    // Current again when it is back.
    pg.start_again();
    wait_for(Duration::from_secs(20), "current again", || {
        state(&tokens) == ReplicaState::Current
    });
    assert!(tokens.health().ready);
    assert_eq!(kind(&tokens, &secret), None);

    // Stopped: it refuses at once, and its lease row is gone.
    tokens.store().shutdown().unwrap();
    let status = tokens.store().status();
    assert_eq!(status.state, ReplicaState::Stopped);
    assert!(!status.holds_lease && !tokens.health().ready);
    assert_eq!(kind(&tokens, &secret), Some(DenialKind::Stale));
    assert_eq!(members(&pg, "health"), "0");
    // A second shutdown has nothing left to do.
    tokens.store().shutdown().unwrap();
}

/// The replica's clock follows the database's, and `seen` what it heard of.
#[test]
fn the_status_follows_the_change_clock() {
    let pg = server!();
    let url = pg.create_db("clock");
    let bound = Duration::from_secs(2);
    let replica = Tokens::new(
        Replica::start(
            PostgresStore::connect(&url).unwrap(),
            ReplicaOptions::default().staleness_bound(bound),
        )
        .unwrap(),
    );
    let before = replica.store().status().clock.unwrap();
    let writer = Tokens::new(PostgresStore::connect(&url).unwrap());
    for i in 0..3 {
        writer
            .issue(
                &Actor::admin(UserId::from(1)),
                NewToken::new(format!("t{i}").parse().unwrap()).permissions(PermissionSet::all()),
            )
            .unwrap();
    }
    wait_for(bound, "three changes applied", || {
        let s = replica.store().status();
        s.clock == Some(before + 3) && s.seen == Some(before + 3) && s.behind() == 0
    });
}

/// An async host awaits the shutdown on a current-thread runtime: it completes (the work
/// runs on the store's runtime), writes the buffered last uses, and leaves the fleet.
#[test]
fn an_awaited_shutdown_writes_last_uses_and_leaves_without_blocking_the_executor() {
    let pg = server!();
    let url = pg.create_db("asyncstop");
    let tokens = Tokens::new(
        Replica::start(
            PostgresStore::connect(&url).unwrap(),
            // Last uses would wait an hour without the shutdown's flush.
            ReplicaOptions::default().last_use_flush(Duration::from_secs(3600)),
        )
        .unwrap(),
    );
    let issued = tokens
        .issue(
            &Actor::admin(UserId::from(1)),
            NewToken::new("used".parse().unwrap()).permissions(PermissionSet::all()),
        )
        .unwrap();
    let ctx = RequestContext::from_ip("192.0.2.7".parse().unwrap());
    tokens.authenticate(issued.secret.expose(), &ctx).unwrap();
    let id = issued.token.id.get();
    let used = format!("SELECT last_used_ip FROM api_tokens WHERE id = {id}");
    assert_eq!(pg.psql("asyncstop", &used).trim(), "", "not written yet");
    assert_eq!(members(&pg, "asyncstop"), "1");

    let rt = tokio::runtime::Builder::new_current_thread()
        .enable_all()
        .build()
        .unwrap();
    let (ran, returned) = rt.block_on(async {
        // On one thread, this task runs before the shutdown returns only if awaiting the
        // shutdown leaves the executor free.
        let other = tokio::spawn(async { std::time::Instant::now() });
        tokens.store().shutdown_async().await.unwrap();
        let returned = std::time::Instant::now();
        (other.await.unwrap(), returned)
    });
    assert!(ran < returned, "the executor was blocked by the shutdown");
    assert_eq!(pg.psql("asyncstop", &used).trim(), "192.0.2.7");
    assert_eq!(members(&pg, "asyncstop"), "0");
    assert_eq!(tokens.store().status().state, ReplicaState::Stopped);
}

#[test]
fn stores_without_a_replica_are_ready_once_built() {
    assert!(Tokens::in_memory().health().ready);
    assert!(Tokens::in_memory().store().health().replica.is_none());
}
