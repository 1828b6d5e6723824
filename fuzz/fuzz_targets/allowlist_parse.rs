//! Any text as allowlist entries: never a panic; what parses prints back to itself.
#![no_main]

use api_tokens::IpAllowlist;
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(s) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(list) = s.parse::<IpAllowlist>() {
        let again: IpAllowlist = list.to_string().parse().expect("printed lists parse");
        assert_eq!(again, list);
    }
});
