//! Names, user ids and secrets: what is accepted prints and parses back; what a format
//! generates, it parses (moved from `src/token.rs` and `src/secret.rs`).

use api_tokens::{HashKey, SecretFormat, SecretHash, TokenName, UserId};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;

proptest! {
    #[test]
    fn names_roundtrip_or_refuse(s in ".{0,300}") {
        if let Ok(n) = TokenName::new(&s) {
            prop_assert_eq!(n.to_string().parse::<TokenName>().unwrap(), n);
        }
        if let Ok(u) = UserId::new(&s) {
            prop_assert_eq!(u.to_string().parse::<UserId>().unwrap(), u);
        }
    }

    /// What a format generates, it parses; the hash of it prints and reads back.
    #[test]
    fn generated_secrets_parse_and_hashes_roundtrip(seed in any::<u64>()) {
        let key = HashKey::new([3; 32]);
        for format in [
            SecretFormat::default(),
            SecretFormat::prefixed("acme9").unwrap(),
            SecretFormat::Zabbix,
            SecretFormat::Cpanel,
        ] {
            let s = format.generate_with_rng(&mut StdRng::seed_from_u64(seed));
            prop_assert_eq!(s.expose().len(), format.secret_len());
            let parsed = format.parse(s.expose()).unwrap();
            let h = SecretHash::of(&key, &parsed);
            prop_assert_eq!(SecretHash::from_hex(&h.to_hex()).unwrap(), h);
        }
    }
}
