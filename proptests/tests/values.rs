//! Names, user ids and secrets: what is accepted prints and parses back; what a format
//! generates, it parses (moved from `src/token.rs` and `src/secret.rs`).

use api_tokens::{Expiry, HashKey, SecretFormat, TokenName, UserId, secret::SecretHash};
use proptest::prelude::*;
use rand::SeedableRng;
use rand::rngs::StdRng;
use time::format_description::well_known::Rfc3339;
use time::{OffsetDateTime, UtcOffset};

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

    /// The crate writes RFC 3339 as `time` does (for whole seconds in UTC, as expiries are).
    #[test]
    fn expiry_text_is_time_s_rfc_3339(secs in -62_167_219_200i64..253_402_300_800) {
        let e = Expiry::from_unix(secs).unwrap();
        let t = OffsetDateTime::from_unix_timestamp(secs).unwrap();
        prop_assert_eq!(e.to_string(), t.format(&Rfc3339).unwrap());
        prop_assert_eq!(e.to_string().parse::<Expiry>().unwrap(), e);
    }

    /// The crate reads what `time` reads, as the same instant: any offset, any fraction.
    #[test]
    fn expiry_reads_rfc_3339_as_time_does(
        secs in -62_135_596_800i64..253_402_214_400,
        nanos in prop_oneof![Just(0u32), 0u32..1_000_000_000],
        offset_minutes in -1439i32..1440,
        frac_digits in 1usize..12,
    ) {
        let offset = UtcOffset::from_whole_seconds(offset_minutes * 60).unwrap();
        let t = (OffsetDateTime::from_unix_timestamp(secs).unwrap()
            + time::Duration::nanoseconds(i64::from(nanos)))
        .to_offset(offset);
        // Written as a client would: a fraction of any length, `Z` or a numeric offset.
        let digits = format!("{:09}", t.nanosecond());
        let fraction: String = digits
            .chars()
            .chain(std::iter::repeat('0'))
            .take(frac_digits)
            .collect();
        let zone = match offset_minutes {
            0 => "Z".to_owned(),
            m => format!(
                "{}{:02}:{:02}",
                if m < 0 { '-' } else { '+' },
                m.abs() / 60,
                m.abs() % 60
            ),
        };
        let text = format!(
            "{:04}-{:02}-{:02}T{:02}:{:02}:{:02}.{fraction}{zone}",
            t.year(),
            u8::from(t.month()),
            t.day(),
            t.hour(),
            t.minute(),
            t.second()
        );
        let theirs = OffsetDateTime::parse(&text, &Rfc3339).unwrap();
        prop_assert_eq!(text.parse::<Expiry>().unwrap(), Expiry::at(theirs), "{}", text);
    }
}
