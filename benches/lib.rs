//! Criterion benchmarks of `api-tokens`; the benches are this package's bench targets
//! (`cargo bench -p api-tokens-benches --bench NAME`). The library is empty.
#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::panic,
    clippy::indexing_slicing,
    reason = "a bench whose setup fails stops there"
)]
