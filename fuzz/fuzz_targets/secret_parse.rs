//! Any bytes as a presented secret, in every format: never a panic; accepted only when the
//! shape is right; and authentication of it never grants anything on an empty store.
#![no_main]

use api_tokens::{RequestContext, SecretFormat, Tokens};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    for format in [
        SecretFormat::default(),
        SecretFormat::Zabbix,
        SecretFormat::Cpanel,
    ] {
        if format.parse(s).is_ok() {
            assert_eq!(s.len(), format.secret_len());
        }
    }
    let tokens = Tokens::in_memory();
    assert!(
        tokens
            .authenticate(s, &RequestContext::unknown_address())
            .is_err()
    );
});
