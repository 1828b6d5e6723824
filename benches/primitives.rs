//! The building blocks of authentication, measured alone.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
use std::hint::black_box;
use std::net::IpAddr;

use api_tokens::{
    HashKey, IpAllowlist, Permission, PermissionSet, SecretFormat, secret::SecretHash,
};
use criterion::{Criterion, criterion_group, criterion_main};

fn primitives(c: &mut Criterion) {
    let format = SecretFormat::default();
    let key = HashKey::new([7; 32]);
    c.bench_function("secret/generate", |b| {
        b.iter(|| black_box(format.generate()))
    });

    let secret = format.generate();
    let presented = secret.expose().to_owned();
    c.bench_function("secret/parse_and_hash", |b| {
        b.iter(|| {
            let p = format.parse(black_box(&presented)).unwrap();
            black_box(SecretHash::of(&key, &p))
        })
    });
    c.bench_function("secret/parse_only", |b| {
        b.iter(|| black_box(format.parse(black_box(&presented)).is_ok()))
    });

    let one = IpAllowlist::parse(["10.1.2.3"]).unwrap();
    let hundred: Vec<String> = (0..100).map(|i| format!("10.{i}.0.0/16")).collect();
    let hundred = IpAllowlist::parse(&hundred).unwrap();
    let client: IpAddr = "10.77.1.2".parse().unwrap();
    c.bench_function("allowlist/1_entry", |b| {
        b.iter(|| black_box(one.allows(black_box(client))))
    });
    c.bench_function("allowlist/100_entries", |b| {
        b.iter(|| black_box(hundred.allows(black_box(client))))
    });

    let set: PermissionSet = "create-acct, dns.*, kill-acct".parse().unwrap();
    let exact: Permission = "kill-acct".parse().unwrap();
    let wild: Permission = "dns.edit".parse().unwrap();
    c.bench_function("permission/allows_exact", |b| {
        b.iter(|| black_box(set.allows(black_box(&exact))))
    });
    c.bench_function("permission/allows_wildcard", |b| {
        b.iter(|| black_box(set.allows(black_box(&wild))))
    });
}

criterion_group!(benches, primitives);
criterion_main!(benches);
