//! The stores: what every store guarantees (the conformance suite on each), and what each one
//! adds — `MemoryStore`'s per-thread copies, SQLite's files, PostgreSQL's database, a fleet of
//! replicas over it, and TLS to it.

#[cfg(feature = "testing")]
mod conformance;
#[cfg(feature = "postgres")]
mod fleet;
mod memory;
// Its records come from the conformance suite's `sample` (feature `testing`).
#[cfg(all(feature = "postgres", feature = "testing"))]
mod postgres;
#[cfg(feature = "sqlite")]
mod sqlite;
#[cfg(feature = "postgres")]
mod tls;
