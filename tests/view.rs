//! The public view of a token: what `list`/`get` return serializes without a hash or a
//! revision; a new secret goes into a response once; persistence keeps the hashes in its own
//! types, and snapshots written before the view existed still restore.

use std::sync::Arc;

use api_tokens::store::StoredToken;
use api_tokens::{
    Actor, Expiry, HashKey, ManualClock, MemoryStore, NewToken, Query, RequestContext,
    SealedSnapshot, Token, TokenSecret, TokenView, Tokens, UserId,
};
use time::Duration;
use time::macros::datetime;

struct Fixture {
    tokens: Tokens,
    alice: Actor,
    hashes: Vec<String>,
}

/// Two tokens: one rotated with a grace period (so a previous hash is on record) and used, one
/// created without a secret.
fn fixture() -> Fixture {
    let clock = Arc::new(ManualClock::new(datetime!(2026-03-01 8:00 UTC)));
    let tokens = Tokens::in_memory()
        .with_hash_key(HashKey::new([9; 32]))
        .with_clock(clock.clone());
    let alice = Actor::user(UserId::new("alice").unwrap());
    let issued = tokens
        .issue(
            &alice,
            NewToken::new("deploy".parse().unwrap())
                .permissions("dns.*".parse().unwrap())
                .allowlist("10.0.0.0/8".parse().unwrap())
                .expires_at(datetime!(2026-04-01 0:00 UTC)),
        )
        .unwrap();
    clock.advance(Duration::hours(1));
    let (_, fresh) = tokens
        .generate_with(
            &alice,
            [issued.token.id],
            Duration::hours(1),
            &mut rand::rng(),
        )
        .unwrap()
        .remove(0);
    tokens
        .authenticate(
            fresh.expose(),
            &RequestContext::from_ip("10.1.2.3".parse().unwrap()),
        )
        .unwrap();
    tokens
        .create(
            &alice,
            [
                NewToken::new("later".parse().unwrap())
                    .permissions("reports.read".parse().unwrap()),
            ],
        )
        .unwrap();
    let snapshot = tokens.store().snapshot();
    let hashes: Vec<String> = snapshot
        .tokens
        .iter()
        .filter_map(|t| t.secret)
        .flat_map(|s| s.hashes().collect::<Vec<_>>())
        .map(|h| h.to_hex())
        .collect();
    assert_eq!(
        hashes.len(),
        2,
        "a current and a previous hash are on record"
    );
    Fixture {
        tokens,
        alice,
        hashes,
    }
}

fn assert_no_hash(json: &str, hashes: &[String]) {
    for h in hashes {
        assert!(!json.contains(h.as_str()), "a hash leaked into {json}");
        assert!(
            !json.contains(&h[..16]),
            "part of a hash leaked into {json}"
        );
    }
    assert!(
        !json.contains("revision"),
        "the revision leaked into {json}"
    );
    assert!(!json.contains("hash"), "{json}");
}

#[test]
fn nothing_list_or_get_return_serializes_a_hash_or_the_revision() {
    let f = fixture();
    let listed = f.tokens.list(&f.alice, &Query::new()).unwrap();
    assert_eq!(listed.len(), 2);
    let one = f.tokens.get(&f.alice, listed[0].id).unwrap();
    for json in [
        serde_json::to_string(&listed).unwrap(),
        serde_json::to_string(&one).unwrap(),
        serde_json::to_string_pretty(&one.view()).unwrap(),
        serde_json::to_string(&listed.iter().map(Token::view).collect::<Vec<_>>()).unwrap(),
    ] {
        assert_no_hash(&json, &f.hashes);
    }
}

#[test]
fn the_view_shows_times_in_rfc_3339_and_unix_seconds_and_reads_back() {
    let f = fixture();
    let t = f.tokens.list(&f.alice, &Query::new()).unwrap().remove(0);
    let json = serde_json::to_value(&t).unwrap();
    assert_eq!(json["created_at"], "2026-03-01T08:00:00Z");
    assert_eq!(json["created_at_unix"], 1_772_352_000);
    assert_eq!(json["expires_at"], "2026-04-01T00:00:00Z");
    assert_eq!(json["last_used_at"], "2026-03-01T09:00:00Z");
    assert_eq!(json["last_used_ip"], "10.1.2.3");
    assert_eq!(json["secret_generated_at"], "2026-03-01T09:00:00Z");
    assert_eq!(json["permissions"], serde_json::json!(["dns.*"]));
    let back: TokenView = serde_json::from_value(json.clone()).unwrap();
    assert_eq!(back, t.view());
    // Either form of a time is enough; two that disagree are refused.
    let mut only_unix = json.clone();
    only_unix["created_at"] = serde_json::Value::Null;
    assert_eq!(
        serde_json::from_value::<TokenView>(only_unix).unwrap(),
        t.view()
    );
    let mut disagree = json;
    disagree["expires_at_unix"] = serde_json::json!(0);
    let err = serde_json::from_value::<TokenView>(disagree).unwrap_err();
    assert!(err.to_string().contains("different instants"), "{err}");
    // A token never generated and never used has nulls where there is nothing.
    let later = f.tokens.list(&f.alice, &Query::new()).unwrap().remove(1);
    let json = serde_json::to_value(&later).unwrap();
    assert!(json["secret_generated_at"].is_null() && json["last_used_at"].is_null());
    assert!(json["expires_at"].is_null() && json["expires_at_unix"].is_null());
}

#[test]
fn a_time_rfc_3339_cannot_write_still_serializes() {
    let tokens = Tokens::in_memory().with_policy(api_tokens::Policy::zabbix());
    let admin = Actor::admin(UserId::from(1));
    let id = tokens
        .create(
            &admin,
            [NewToken::new("old".parse().unwrap())
                .expiry(Expiry::from_unix(-62_167_219_201).unwrap())],
        )
        .unwrap()[0];
    let json = serde_json::to_value(tokens.get(&admin, id).unwrap()).unwrap();
    assert!(json["expires_at"].is_null(), "year -1: no RFC 3339");
    assert_eq!(json["expires_at_unix"], -62_167_219_201i64);
    let back: TokenView = serde_json::from_value(json).unwrap();
    assert_eq!(back.expiry.unix(), Some(-62_167_219_201));
}

#[test]
fn a_new_secret_goes_into_a_response_once_without_leaving_its_wrapper() {
    let tokens = Tokens::in_memory();
    let alice = Actor::user(UserId::new("alice").unwrap());
    let issued = tokens
        .issue(
            &alice,
            NewToken::new("ci".parse().unwrap()).permissions("deploy".parse().unwrap()),
        )
        .unwrap();
    let secret = issued.secret.expose().to_owned();
    let revealed = issued.reveal();
    assert!(
        !format!("{revealed:?}").contains(&secret),
        "Debug stays redacted"
    );
    let body = serde_json::to_value(&revealed).unwrap();
    assert_eq!(body["secret"], secret.as_str());
    assert_eq!(body["name"], "ci");
    assert_eq!(
        serde_json::from_value::<TokenView>(body).unwrap(),
        revealed.token,
        "a client reads the response as a view"
    );

    #[derive(serde::Serialize)]
    struct Regenerated {
        id: api_tokens::TokenId,
        #[serde(serialize_with = "TokenSecret::serialize_exposed")]
        secret: TokenSecret,
    }
    let (id, fresh) = tokens
        .generate(&alice, [revealed.token.id])
        .unwrap()
        .remove(0);
    let fresh_text = fresh.expose().to_owned();
    let body = serde_json::to_value(Regenerated { id, secret: fresh }).unwrap();
    assert_eq!(body["secret"], fresh_text.as_str());
}

#[test]
fn persistence_keeps_the_hashes_in_its_own_types() {
    let f = fixture();
    let key = HashKey::new([9; 32]);
    let sealed = f.tokens.sealed_snapshot();
    let json = serde_json::to_string(&sealed).unwrap();
    for h in &f.hashes {
        assert!(json.contains(h.as_str()), "a snapshot keeps every hash");
    }
    let back: SealedSnapshot = serde_json::from_str(&json).unwrap();
    assert_eq!(back, sealed);
    assert_eq!(back.open(&key).unwrap(), f.tokens.store().snapshot());
    let t = f.tokens.store().snapshot().tokens[0].clone();
    let stored = serde_json::to_value(StoredToken(t.clone())).unwrap();
    assert_eq!(stored["secret"]["hash"], t.secret.unwrap().hash.to_hex());
    assert_eq!(stored["revision"], t.revision);
    let read: StoredToken = serde_json::from_value(stored).unwrap();
    assert_eq!(read.0, t);
}

/// A sealed snapshot as `examples/persistence.rs` wrote it before tokens had a public view
/// (`main` at 22aef47, the first with sealed snapshots): it still opens and restores, writes
/// back as the same document, and its secret still authenticates. (Unsealed version-1
/// snapshots are refused, since snapshots are sealed; that is another rule, not this one's.)
#[test]
fn a_snapshot_written_before_the_view_existed_still_restores() {
    let old = include_str!("data/sealed-snapshot-22aef47.json");
    let secret = include_str!("data/sealed-snapshot-22aef47.secret").trim();
    let key = HashKey::new([3; 32]);
    let sealed: SealedSnapshot = serde_json::from_str(old).unwrap();
    let tokens = Tokens::new(MemoryStore::from_snapshot(sealed.open(&key).unwrap()).unwrap())
        .with_hash_key(key.clone());
    let mut again = serde_json::to_value(tokens.sealed_snapshot()).unwrap();
    // Sealed again, it is of the current version, each hash saying which key made
    // it (the one the version-2 snapshot was sealed under), and (version 4) no token saying
    // it was imported; otherwise the same document.
    assert_eq!(
        again["version"],
        api_tokens::store::memory::SNAPSHOT_VERSION
    );
    assert_eq!(
        again["tokens"][0]["secret"]["scheme"],
        format!("blake3:{}", key.id())
    );
    assert_eq!(again["tokens"][0]["imported_from"], serde_json::Value::Null);
    again["tokens"][0]
        .as_object_mut()
        .unwrap()
        .remove("imported_from");
    let mut before = serde_json::from_str::<serde_json::Value>(old).unwrap();
    for doc in [&mut again, &mut before] {
        let o = doc.as_object_mut().unwrap();
        o.remove("version");
        o.remove("seal");
        if let Some(secret) = doc["tokens"][0]["secret"].as_object_mut() {
            secret.remove("scheme");
        }
    }
    assert_eq!(again, before);
    let grant = tokens
        .authenticate(secret, &RequestContext::unknown_address())
        .unwrap();
    assert_eq!(grant.owner.as_str(), "alice");
}
