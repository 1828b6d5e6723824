//! The metrics (feature `metrics`): their names, labels and values as a recorder receives
//! them, that authentication resolves its counters once (never by name per call), and the
//! replica's, propagation and last-use metrics against a real PostgreSQL.
//!
//! Each test installs its own recorder for the thread that builds what it counts
//! (`metrics::with_local_recorder`): what is built there keeps its counters, whichever thread
//! counts later, and tests running side by side never see each other's.

use std::collections::HashMap;
use std::sync::atomic::{AtomicU64, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex};

use api_tokens::time::Duration;
use api_tokens::{
    Actor, ManualClock, NewToken, PermissionSet, RequestContext, Status, Tokens, UserId,
};
use metrics::{
    Counter, Gauge, Histogram, HistogramFn, Key, KeyName, Metadata, Recorder, SharedString, Unit,
};

/// A recorder that keeps every value, by name and labels (`name{a=x,b=y}`), and counts
/// registrations.
#[derive(Default)]
struct Kept {
    counters: Mutex<HashMap<String, Arc<AtomicU64>>>,
    gauges: Mutex<HashMap<String, Arc<AtomicU64>>>,
    histograms: Mutex<HashMap<String, Arc<Samples>>>,
    registrations: AtomicUsize,
    described: Mutex<HashMap<String, Option<Unit>>>,
}

#[derive(Default)]
struct Samples(Mutex<Vec<f64>>);

impl HistogramFn for Samples {
    fn record(&self, value: f64) {
        self.0.lock().unwrap().push(value);
    }
}

fn id(key: &Key) -> String {
    let mut labels: Vec<String> = key
        .labels()
        .map(|l| format!("{}={}", l.key(), l.value()))
        .collect();
    labels.sort();
    if labels.is_empty() {
        key.name().to_owned()
    } else {
        format!("{}{{{}}}", key.name(), labels.join(","))
    }
}

impl Recorder for Kept {
    fn describe_counter(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.described
            .lock()
            .unwrap()
            .insert(key.as_str().to_owned(), unit);
    }
    fn describe_gauge(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.described
            .lock()
            .unwrap()
            .insert(key.as_str().to_owned(), unit);
    }
    fn describe_histogram(&self, key: KeyName, unit: Option<Unit>, _: SharedString) {
        self.described
            .lock()
            .unwrap()
            .insert(key.as_str().to_owned(), unit);
    }
    fn register_counter(&self, key: &Key, _: &Metadata<'_>) -> Counter {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        let c = self
            .counters
            .lock()
            .unwrap()
            .entry(id(key))
            .or_default()
            .clone();
        Counter::from_arc(c)
    }
    fn register_gauge(&self, key: &Key, _: &Metadata<'_>) -> Gauge {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        let g = self
            .gauges
            .lock()
            .unwrap()
            .entry(id(key))
            .or_default()
            .clone();
        Gauge::from_arc(g)
    }
    fn register_histogram(&self, key: &Key, _: &Metadata<'_>) -> Histogram {
        self.registrations.fetch_add(1, Ordering::Relaxed);
        let h = self
            .histograms
            .lock()
            .unwrap()
            .entry(id(key))
            .or_default()
            .clone();
        Histogram::from_arc(h)
    }
}

impl Kept {
    fn counter(&self, id: &str) -> u64 {
        self.counters
            .lock()
            .unwrap()
            .get(id)
            .map_or(0, |c| c.load(Ordering::Relaxed))
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn gauge(&self, id: &str) -> Option<f64> {
        self.gauges
            .lock()
            .unwrap()
            .get(id)
            .map(|g| f64::from_bits(g.load(Ordering::Relaxed)))
    }

    #[cfg_attr(not(feature = "postgres"), allow(dead_code))]
    fn samples(&self, id: &str) -> Vec<f64> {
        self.histograms
            .lock()
            .unwrap()
            .get(id)
            .map(|h| h.0.lock().unwrap().clone())
            .unwrap_or_default()
    }
}

fn outcome(o: &str) -> String {
    format!("api_tokens_authentications_total{{outcome={o}}}")
}

#[test]
fn authentications_are_counted_by_outcome_with_counters_resolved_once() {
    let kept = Kept::default();
    let clock = Arc::new(ManualClock::new(
        api_tokens::time::OffsetDateTime::from_unix_timestamp(1_800_000_000).unwrap(),
    ));
    let (tokens, secrets) = metrics::with_local_recorder(&kept, || {
        let tokens = Tokens::in_memory().with_clock(clock.clone());
        let alice = Actor::user(UserId::new("alice").unwrap());
        let issue = |t: NewToken| {
            tokens
                .issue(&alice, t.permissions(PermissionSet::all()))
                .unwrap()
                .secret
                .expose()
                .to_owned()
        };
        let good = issue(NewToken::new("good".parse().unwrap()));
        let off = issue(NewToken::new("off".parse().unwrap()).status(Status::Disabled));
        let short = issue(
            NewToken::new("short".parse().unwrap()).expires_at(tokens.now() + Duration::hours(1)),
        );
        let office = issue(
            NewToken::new("office".parse().unwrap()).allowlist("10.0.0.0/8".parse().unwrap()),
        );
        (tokens, [good, off, short, office])
    });
    let [good, off, short, office] = &secrets;
    let registered = kept.registrations.load(Ordering::Relaxed);
    let ctx = RequestContext::from_ip("192.0.2.1".parse().unwrap());
    for _ in 0..99 {
        tokens.authenticate(good, &ctx).unwrap();
    }
    for _ in 0..3 {
        tokens.authenticate(off, &ctx).unwrap_err();
    }
    tokens.authenticate("tok_nonsense", &ctx).unwrap_err();
    tokens
        .authenticate(
            api_tokens::SecretFormat::default().generate().expose(),
            &ctx,
        )
        .unwrap_err();
    tokens.authenticate(office, &ctx).unwrap_err();
    tokens.authenticate(short, &ctx).unwrap();
    tokens
        .authenticate(good, &RequestContext::unknown_address())
        .unwrap();
    clock.advance(Duration::hours(1));
    tokens.authenticate(short, &ctx).unwrap_err();

    assert_eq!(kept.counter(&outcome("granted")), 101);
    assert_eq!(kept.counter(&outcome("disabled")), 3);
    assert_eq!(kept.counter(&outcome("malformed")), 1);
    assert_eq!(kept.counter(&outcome("unknown")), 1);
    assert_eq!(kept.counter(&outcome("address_not_allowed")), 1);
    assert_eq!(kept.counter(&outcome("expired")), 1);
    assert_eq!(kept.counter(&outcome("replica_stale")), 0);
    assert_eq!(
        kept.registrations.load(Ordering::Relaxed),
        registered,
        "108 authentications registered nothing more: the hot path holds its counters"
    );
    // A clone shares them; a `Tokens` built with no recorder in force counts nowhere here.
    tokens.clone().authenticate(good, &ctx).unwrap();
    assert_eq!(kept.counter(&outcome("granted")), 102);
    let other = Tokens::in_memory();
    let _ = other.authenticate(good, &ctx);
    assert_eq!(kept.counter(&outcome("unknown")), 1);
    // No metric name or label holds a secret (the labels are fixed codes).
    for id in kept.counters.lock().unwrap().keys() {
        for secret in &secrets {
            assert!(!id.contains(secret.as_str()), "a secret in {id}");
        }
        assert!(id.starts_with("api_tokens_"), "{id}");
    }
    // Described, with units, for exporters that print them.
    let described = kept.described.lock().unwrap();
    assert!(
        described.contains_key("api_tokens_authentications_total"),
        "{described:?}"
    );
}

#[cfg(feature = "postgres")]
mod fleet {
    use super::*;
    use crate::support::pg::{PgServer, wait_for};
    use api_tokens::DenialKind;
    use api_tokens::store::postgres::PostgresStore;
    use api_tokens::store::replica::{Replica, ReplicaOptions};
    use std::time::Duration as Std;

    /// The replica's gauges and counters, propagation, the last-use backlog and flushes, and
    /// store errors, as a real fleet moves them.
    #[test]
    fn a_replica_counts_what_it_applies_waits_for_and_flushes() {
        let Some(mut pg) = PgServer::start() else {
            return;
        };
        let url = pg.create_db("metrics");
        let kept = Kept::default();
        let bound = Std::from_millis(800);
        let (writer, reader) = metrics::with_local_recorder(&kept, || {
            let start = |name: &str| {
                Tokens::new(
                    Replica::start(
                        PostgresStore::connect(&url).unwrap(),
                        ReplicaOptions::default()
                            .staleness_bound(bound)
                            .last_use_flush(Std::from_secs(3600))
                            .name(name),
                    )
                    .unwrap(),
                )
            };
            (start("writer"), start("reader"))
        });
        let r = |name: &str| format!("{{replica={name}}}");
        assert_eq!(
            kept.counter("api_tokens_replica_reloads_total{reason=first,replica=reader}"),
            1
        );
        assert_eq!(
            kept.gauge(&format!("api_tokens_replica_current{}", r("reader"))),
            Some(1.0)
        );

        // Three tokens issued on the writer: applied by the reader one by one.
        let admin = Actor::admin(UserId::from(1));
        let mut secrets = Vec::new();
        for i in 0..3 {
            let issued = writer
                .issue(
                    &admin,
                    NewToken::new(format!("t{i}").parse().unwrap())
                        .permissions(PermissionSet::all()),
                )
                .unwrap();
            secrets.push((issued.token.id, issued.secret.expose().to_owned()));
        }
        let changes = format!("api_tokens_replica_changes_applied_total{}", r("reader"));
        wait_for(Std::from_secs(5), "three rows applied", || {
            kept.counter(&changes) == 3
        });
        assert_eq!(
            kept.gauge(&format!("api_tokens_replica_behind_changes{}", r("reader"))),
            Some(0.0)
        );
        let stamp = kept
            .gauge(&format!(
                "api_tokens_replica_last_confirmed_timestamp_seconds{}",
                r("reader")
            ))
            .unwrap();
        let now = api_tokens::time::OffsetDateTime::now_utc().unix_timestamp() as f64;
        assert!((now - stamp).abs() < 5.0, "{stamp} against {now}");

        // Two uses buffered on the reader: the backlog says so until they are written.
        let ctx = RequestContext::from_ip("192.0.2.9".parse().unwrap());
        for (_, s) in &secrets[..2] {
            reader.authenticate(s, &ctx).unwrap();
        }
        assert_eq!(kept.gauge("api_tokens_last_use_backlog"), Some(2.0));
        let flushed = kept.counter("api_tokens_last_use_flushes_total{result=ok}");
        reader.store().flush().unwrap();
        assert_eq!(kept.gauge("api_tokens_last_use_backlog"), Some(0.0));
        assert_eq!(
            kept.counter("api_tokens_last_use_flushes_total{result=ok}"),
            flushed + 1
        );

        // A revocation waits for the reader: one propagation sample, no lapsed replica.
        writer
            .set_status(&admin, [secrets[0].0], Status::Disabled)
            .unwrap();
        let waited = kept.samples("api_tokens_write_propagation_seconds");
        assert_eq!(waited.len(), 1, "{waited:?}");
        assert!(waited[0] >= 0.0 && waited[0] < 10.0);
        assert_eq!(kept.counter("api_tokens_write_propagation_lapsed_total"), 0);
        assert_eq!(
            reader.authenticate(&secrets[0].1, &ctx).unwrap_err().kind(),
            DenialKind::Disabled
        );

        // The database stops: the reader passes its bound (counted once, gauge 0), its
        // catch-ups fail, its lag grows; a use buffered now cannot be written.
        reader
            .authenticate(&secrets[1].1, &RequestContext::unknown_address())
            .unwrap();
        pg.stop();
        let stale = format!("api_tokens_replica_stale_total{}", r("reader"));
        wait_for(bound * 10, "stale counted", || kept.counter(&stale) == 1);
        assert_eq!(
            kept.gauge(&format!("api_tokens_replica_current{}", r("reader"))),
            Some(0.0)
        );
        wait_for(bound * 10, "lag past the bound", || {
            kept.gauge(&format!("api_tokens_replica_lag_seconds{}", r("reader")))
                .is_some_and(|s| s >= bound.as_secs_f64())
        });
        assert!(kept.counter("api_tokens_store_errors_total{source=replica}") >= 1);
        let failed = kept.counter("api_tokens_last_use_flushes_total{result=failed}");
        assert!(reader.store().flush().is_err());
        assert_eq!(
            kept.counter("api_tokens_last_use_flushes_total{result=failed}"),
            failed + 1
        );
        assert_eq!(kept.gauge("api_tokens_last_use_backlog"), Some(1.0));
        assert!(kept.counter("api_tokens_store_errors_total{source=database}") >= 1);
        assert_eq!(
            reader.authenticate(&secrets[2].1, &ctx).unwrap_err().kind(),
            DenialKind::Stale
        );
        assert_eq!(kept.counter(&outcome("replica_stale")), 1);

        // Back: current again, the same counter once.
        pg.start_again();
        wait_for(Std::from_secs(20), "current again", || {
            kept.gauge(&format!("api_tokens_replica_current{}", r("reader"))) == Some(1.0)
        });
        assert_eq!(kept.counter(&stale), 1);
    }
}
