//! The conformance suite (feature `testing`) on every store: what the suite checks, each store
//! keeps, under each of its settings.

use api_tokens::MemoryStore;
use api_tokens::store::conformance;

#[test]
fn memory_store_conforms() {
    conformance::run(MemoryStore::new);
}

#[test]
fn memory_store_restored_from_a_snapshot_conforms() {
    conformance::run(|| {
        let s = MemoryStore::new();
        MemoryStore::from_snapshot(s.snapshot()).unwrap()
    });
}

#[cfg(feature = "sqlite")]
mod sqlite {
    use std::sync::atomic::{AtomicUsize, Ordering};

    use api_tokens::store::conformance;
    use api_tokens::store::sqlite::SqliteStore;
    use time::Duration;

    use crate::support::{TempDir, temp_entries};

    #[test]
    fn in_memory_sqlite_conforms() {
        conformance::run(|| SqliteStore::open_in_memory().unwrap());
    }

    #[test]
    fn in_memory_sqlite_writing_every_use_conforms() {
        conformance::run(|| {
            SqliteStore::open_in_memory()
                .unwrap()
                .with_touch_interval(Duration::ZERO)
        });
    }

    #[test]
    fn sqlite_file_conforms() {
        // One directory for the whole run, a fresh file for each store the suite asks for; the
        // directory goes when the test ends, after every store is closed. (No other test of
        // the binary makes a directory with this tag.)
        let dir = TempDir::new("sqlite-conf");
        let n = AtomicUsize::new(0);
        conformance::run(|| {
            let file = format!("{}.db", n.fetch_add(1, Ordering::SeqCst));
            SqliteStore::open(dir.join(&file)).unwrap()
        });
        let path = dir.path().to_owned();
        drop(dir);
        assert!(!path.exists(), "the test's files are gone");
        assert!(
            temp_entries(&format!(
                "api-tokens-test-sqlite-conf-{}-",
                std::process::id()
            ))
            .is_empty()
        );
    }
}

#[cfg(feature = "postgres")]
mod postgres {
    use std::time::Duration;

    use api_tokens::store::conformance;
    use api_tokens::store::postgres::{PostgresOptions, PostgresStore};
    use api_tokens::store::replica::{Replica, ReplicaOptions};

    use crate::support::server;

    #[test]
    fn postgres_store_conforms() {
        let pg = server!();
        let url = pg.create_db("conf");
        conformance::run(|| {
            // A fresh schema for every check.
            pg.psql("conf", "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
            PostgresStore::connect(&url).unwrap()
        });
        // Every use written at once (a touch interval of zero) conforms too.
        conformance::run(|| {
            pg.psql("conf", "DROP SCHEMA public CASCADE; CREATE SCHEMA public");
            PostgresStore::connect_with(
                &url,
                PostgresOptions::default().touch_interval(Duration::ZERO),
            )
            .unwrap()
        });
    }

    #[test]
    fn a_replica_conforms_too() {
        // Writes go to PostgreSQL and into the copy before they return; authentication reads the
        // copy: the suite sees one consistent store.
        let pg = server!();
        let url = pg.create_db("replica_conf");
        conformance::run(|| {
            pg.psql(
                "replica_conf",
                "DROP SCHEMA public CASCADE; CREATE SCHEMA public",
            );
            Replica::start(
                PostgresStore::connect(&url).unwrap(),
                ReplicaOptions::default(),
            )
            .unwrap()
        });
    }
}
