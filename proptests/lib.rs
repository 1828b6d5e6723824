//! Property tests of `api-tokens` (parsers, set laws, hostile input), in their own workspace
//! member so that proptest and its dependencies never build for `cargo run --example
//! quickstart`. The tests are this package's `tests/`; the library is empty.
