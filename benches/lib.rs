//! Criterion benchmarks of `api-tokens`; the benches are this package's bench targets
//! (`cargo bench -p api-tokens-benches --bench NAME`). The library is empty.
