//! The secret format check (`SecretFormat::parse`) against a straightforward reference written
//! here from the documented grammar: the same verdict and the same error, position included, for
//! every input — random text, and near-valid secrets (a character changed, the prefix wrong, every
//! length around the right one, non-ASCII, each checksum digit changed).
//!
//! The reference builds its own valid secrets with its own checksum, so the crate's checksum is
//! pinned too: secrets issued before any rewrite of the check keep verifying.

use api_tokens::{MalformedSecret, SecretFormat};
use proptest::prelude::*;

const BASE62: &[u8; 62] = b"0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz";
const MAX_PRESENTED_LEN: usize = 128;

/// The documented checksum, byte by byte: the data as little-endian 8-byte words, the last one
/// zero-padded (a zero word when the data is whole words), each mixed in by xor, multiply,
/// xorshift; then a final mix, and the top 32 bits.
fn reference_checksum(data: &[u8]) -> u32 {
    const K: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut h: u64 = 0x243F_6A88_85A3_08D3 ^ data.len() as u64;
    let whole = data.len() / 8;
    for i in 0..whole {
        let mut w = 0u64;
        for j in 0..8 {
            w |= u64::from(data[8 * i + j]) << (8 * j);
        }
        h = (h ^ w).wrapping_mul(K);
        h ^= h >> 29;
    }
    let mut tail = 0u64;
    for (j, &b) in data[8 * whole..].iter().enumerate() {
        tail |= u64::from(b) << (8 * j);
    }
    h = (h ^ tail).wrapping_mul(K);
    h ^= h >> 32;
    h = h.wrapping_mul(K);
    (h >> 32) as u32
}

fn digit_value(b: u8) -> Option<u64> {
    BASE62.iter().position(|&c| c == b).map(|i| i as u64)
}

fn encode_checksum(sum: u32) -> String {
    let mut v = u64::from(sum);
    let mut out = [b'0'; 6];
    for d in out.iter_mut().rev() {
        *d = BASE62[(v % 62) as usize];
        v /= 62;
    }
    String::from_utf8(out.to_vec()).unwrap()
}

/// The rules every format checks first: not empty, not over the presented-length cap.
fn reference_size(b: &[u8]) -> Result<(), MalformedSecret> {
    if b.is_empty() {
        return Err(MalformedSecret::Empty);
    }
    if b.len() > MAX_PRESENTED_LEN {
        return Err(MalformedSecret::TooLong {
            max: MAX_PRESENTED_LEN,
        });
    }
    Ok(())
}

/// The prefixed format's rules, one after the other, as the documentation states them.
fn reference_prefixed(prefix: &str, s: &str) -> Result<(), MalformedSecret> {
    let b = s.as_bytes();
    reference_size(b)?;
    if !(b.starts_with(prefix.as_bytes()) && b.get(prefix.len()) == Some(&b'_')) {
        return Err(MalformedSecret::WrongPrefix);
    }
    let expected = prefix.len() + 1 + 43 + 6;
    if b.len() != expected {
        return Err(MalformedSecret::WrongLength {
            expected,
            found: b.len(),
        });
    }
    for (position, &c) in b.iter().enumerate().skip(prefix.len() + 1) {
        if !c.is_ascii_alphanumeric() {
            return Err(MalformedSecret::InvalidCharacter { position });
        }
    }
    let mut value = 0u64;
    for &c in &b[expected - 6..] {
        value = value * 62 + digit_value(c).unwrap();
    }
    if value != u64::from(reference_checksum(&b[..expected - 6])) {
        return Err(MalformedSecret::BadChecksum);
    }
    Ok(())
}

/// The fixed formats (Zabbix: lowercase hex; cPanel: `[0-9A-Z]`).
fn reference_fixed(len: usize, allowed: fn(u8) -> bool, s: &str) -> Result<(), MalformedSecret> {
    let b = s.as_bytes();
    reference_size(b)?;
    if b.len() != len {
        return Err(MalformedSecret::WrongLength {
            expected: len,
            found: b.len(),
        });
    }
    match b.iter().position(|&c| !allowed(c)) {
        Some(position) => Err(MalformedSecret::InvalidCharacter { position }),
        None => Ok(()),
    }
}

/// A valid secret built by the reference alone.
fn reference_secret(prefix: &str, body: &str) -> String {
    with_checksum(&format!("{prefix}_{body}"))
}

/// Any text followed by the checksum digits of its own bytes: whatever else is wrong with it,
/// the checksum agrees, so only the other rules can refuse it.
fn with_checksum(signed: &str) -> String {
    format!(
        "{signed}{}",
        encode_checksum(reference_checksum(signed.as_bytes()))
    )
}

fn crate_verdict(format: &SecretFormat, s: &str) -> Result<(), MalformedSecret> {
    format.parse(s).map(|_| ())
}

fn assert_same(prefix: &str, s: &str) {
    let format = SecretFormat::prefixed(prefix).unwrap();
    assert_eq!(
        crate_verdict(&format, s),
        reference_prefixed(prefix, s),
        "prefix {prefix:?}, input {s:?}"
    );
}

/// Every prefix length (1 to 16) moves the underscore, the checksum's last partial word and the
/// digits across the 8-byte words.
fn prefix() -> impl Strategy<Value = String> {
    prop_oneof![
        Just("tok".to_owned()),
        "[a-z][a-z0-9]{0,15}",
        Just("abcdefghijklmnop".to_owned()),
        Just("a".to_owned()),
    ]
}

fn body() -> impl Strategy<Value = String> {
    "[0-9A-Za-z]{43}"
}

/// Characters to put in a secret's place: base62, ASCII neighbours of its ranges, controls,
/// non-ASCII of every UTF-8 length.
fn any_char() -> impl Strategy<Value = char> {
    prop_oneof![
        proptest::sample::select(BASE62.iter().map(|&b| char::from(b)).collect::<Vec<_>>()),
        proptest::sample::select(vec![
            '/',
            ':',
            '@',
            '[',
            '`',
            '{',
            '_',
            '-',
            ' ',
            '\0',
            '\x7f',
            '\u{80}',
            'é',
            'ÿ',
            '€',
            '\u{ffff}',
            '😀',
            '\u{10ffff}',
            'ｚ',
            '０',
            'ñ',
            'ù',
            '\u{1c30}',
            '\u{30c30}',
        ]),
        any::<char>(),
    ]
}

/// Replaces the character at char index `at` (modulo the length) with `c`.
fn replace_char(s: &str, at: usize, c: char) -> String {
    let n = s.chars().count();
    if n == 0 {
        return c.to_string();
    }
    let at = at % n;
    s.chars()
        .enumerate()
        .map(|(i, x)| if i == at { c } else { x })
        .collect()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(2048))]

    #[test]
    fn valid_secrets_of_the_reference_are_accepted(prefix in prefix(), body in body()) {
        let s = reference_secret(&prefix, &body);
        let format = SecretFormat::prefixed(&prefix).unwrap();
        prop_assert_eq!(crate_verdict(&format, &s), Ok(()));
        prop_assert_eq!(s.len(), format.secret_len());
    }

    #[test]
    fn generated_secrets_satisfy_the_reference(prefix in prefix()) {
        let format = SecretFormat::prefixed(&prefix).unwrap();
        let secret = format.generate();
        prop_assert_eq!(reference_prefixed(&prefix, secret.expose()), Ok(()));
    }

    #[test]
    fn one_character_changed(prefix in prefix(), body in body(), at in 0usize..80, c in any_char()) {
        let s = reference_secret(&prefix, &body);
        assert_same(&prefix, &replace_char(&s, at, c));
    }

    #[test]
    fn one_character_changed_before_the_checksum_is_computed(
        prefix in prefix(),
        body in body(),
        at in 0usize..80,
        c in any_char(),
    ) {
        // The checksum holds, so the prefix, underscore and alphabet rules alone must refuse.
        let signed = format!("{prefix}_{body}");
        assert_same(&prefix, &with_checksum(&replace_char(&signed, at, c)));
    }

    #[test]
    fn non_ascii_at_the_right_length_with_a_checksum_that_holds(
        prefix in prefix(),
        body in body(),
        at in 0usize..80,
        c in prop_oneof![
            proptest::sample::select(vec!['\u{80}', 'é', 'ÿ', 'ß', '€', '\u{ffff}', '😀', '\u{10ffff}', 'ｚ', 'ñ', 'ù', '\u{1c30}', '\u{30c30}']),
            any::<char>().prop_filter("not ASCII", |c| !c.is_ascii()),
        ],
    ) {
        // As many ASCII bytes taken out as the character has, so the length is right and only
        // the alphabet (or the prefix) rule can refuse it.
        let signed = format!("{prefix}_{body}");
        let n = c.len_utf8();
        let at = at % (signed.len() - n + 1);
        let changed = format!("{}{c}{}", &signed[..at], &signed[at + n..]);
        assert_same(&prefix, &with_checksum(&changed));
        // And in the checksum digits' place.
        let s = reference_secret(&prefix, &body);
        let at = s.len() - 6 + at % (6 - n + 1).max(1);
        if at + n <= s.len() {
            assert_same(&prefix, &format!("{}{c}{}", &s[..at], &s[at + n..]));
        }
    }

    #[test]
    fn another_prefix_or_separator_with_a_checksum_that_holds(
        prefix in prefix(),
        other in prefix(),
        body in body(),
        sep in any_char(),
    ) {
        assert_same(&prefix, &with_checksum(&format!("{other}_{body}")));
        assert_same(&prefix, &with_checksum(&format!("{prefix}{sep}{body}")));
        assert_same(&prefix, &with_checksum(&format!("{}_{body}", prefix.to_uppercase())));
    }

    #[test]
    fn two_characters_changed(
        prefix in prefix(),
        body in body(),
        edits in proptest::collection::vec((0usize..80, any_char()), 2),
    ) {
        let mut s = reference_secret(&prefix, &body);
        for (at, c) in edits {
            s = replace_char(&s, at, c);
        }
        assert_same(&prefix, &s);
    }

    #[test]
    fn each_checksum_digit_changed(prefix in prefix(), body in body(), digit in 0usize..6, to in 0usize..62) {
        let s = reference_secret(&prefix, &body);
        let at = s.len() - 6 + digit;
        let mut b = s.into_bytes();
        b[at] = BASE62[to];
        let s = String::from_utf8(b).unwrap();
        assert_same(&prefix, &s);
    }

    #[test]
    fn any_checksum_digits(prefix in prefix(), body in body(), digits in "[0-9A-Za-z]{6}") {
        // Mostly over 2^32 (62^6 is about 13 times that): refused, never wrapped around.
        let s = format!("{prefix}_{body}{digits}");
        assert_same(&prefix, &s);
    }

    #[test]
    fn every_length_around_the_right_one(
        prefix in prefix(),
        body in body(),
        cut in 0usize..=70,
        extra in "[0-9A-Za-z_é]{0,6}",
    ) {
        let s = reference_secret(&prefix, &body);
        let cut = cut.min(s.len());
        assert_same(&prefix, &s[..cut]);
        assert_same(&prefix, &format!("{s}{extra}"));
        assert_same(&prefix, &format!("{}{extra}", &s[..cut]));
    }

    #[test]
    fn wrong_or_shifted_prefix(
        prefix in prefix(),
        other in prefix(),
        body in body(),
        sep in prop_oneof![Just("_"), Just(""), Just("__"), Just("-"), Just("_x")],
    ) {
        let s = reference_secret(&other, &body);
        assert_same(&prefix, &s);
        let sum = &s[s.len() - 6..];
        assert_same(&prefix, &format!("{prefix}{sep}{body}{sum}"));
        assert_same(&prefix, &format!("{}{}", prefix.to_uppercase(), &s[other.len()..]));
    }

    #[test]
    fn adjacent_characters_swapped(prefix in prefix(), body in body(), at in 0usize..70) {
        let s = reference_secret(&prefix, &body);
        let mut b = s.into_bytes();
        let at = at % (b.len() - 1);
        b.swap(at, at + 1);
        assert_same(&prefix, &String::from_utf8(b).unwrap());
    }

    #[test]
    fn random_text(
        prefix in prefix(),
        s in prop_oneof![
            ".{0,140}",
            "[0-9a-zA-Z_]{0,70}",
            "tok_[0-9a-zA-Z]{49}",
            "tok_[0-9a-zA-Z\\x00-\\x7f]{49}",
            "[a-z]{1,16}_[0-9a-zA-Z]{49}",
        ],
    ) {
        assert_same(&prefix, &s);
        assert_same("tok", &s);
    }

    #[test]
    fn fixed_formats_match_their_reference(
        s in prop_oneof![
            ".{0,140}",
            "[0-9a-f]{64}",
            "[0-9a-fA-F]{62,66}",
            "[0-9A-Z]{32}",
            "[0-9A-Za-z]{30,34}",
        ],
        at in 0usize..70,
        c in any_char(),
    ) {
        let hex = |b: u8| b.is_ascii_digit() || (b'a'..=b'f').contains(&b);
        let base36 = |b: u8| b.is_ascii_digit() || b.is_ascii_uppercase();
        for s in [s.clone(), replace_char(&s, at, c)] {
            prop_assert_eq!(crate_verdict(&SecretFormat::Zabbix, &s), reference_fixed(64, hex, &s));
            prop_assert_eq!(crate_verdict(&SecretFormat::Cpanel, &s), reference_fixed(32, base36, &s));
        }
    }
}

/// Every single-byte substitution of a few secrets by every ASCII byte and a few non-ASCII
/// characters, at every position: the whole neighbourhood, not a sample.
#[test]
fn every_single_substitution_agrees() {
    let prefixes = [
        "tok",
        "a",
        "ab",
        "abcdefg",
        "abcdefgh",
        "abcdefghi",
        "acme2",
        "abcdefghijklmno",
        "abcdefghijklmnop",
    ];
    let bodies = [
        "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg",
        "zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJ",
        "0000000000000000000000000000000000000000000",
    ];
    let mut others: Vec<String> = (0u8..0x80).map(|b| char::from(b).to_string()).collect();
    // Non-ASCII of each length, and characters whose every byte is a base62 byte plus 0x80
    // (`ñ` is C3 B1: 'C' and '1' with the top bit set).
    others.extend(["\u{80}", "é", "€", "😀", "ñ", "ù", "\u{1c30}", "\u{30c30}"].map(String::from));
    for prefix in prefixes {
        for body in bodies {
            let s = reference_secret(prefix, body);
            assert_same(prefix, &s);
            for at in 0..s.len() {
                for c in &others {
                    let changed = format!("{}{c}{}", &s[..at], &s[at + 1..]);
                    assert_same(prefix, &changed);
                }
            }
            // The same in the signed part with its checksum recomputed, a character of n bytes
            // in the place of n, so that only the prefix and alphabet rules can refuse.
            let signed = &s[..s.len() - 6];
            for c in &others {
                for at in 0..=signed.len() - c.len() {
                    let changed = format!("{}{c}{}", &signed[..at], &signed[at + c.len()..]);
                    assert_same(prefix, &with_checksum(&changed));
                }
            }
        }
    }
}

/// Checksum digits outside base62 that a word-at-a-time decoder could read as the right value
/// (`:` after `9` reads as `A`'s 10, `{` after `z` as 62, a carry into the digit before): refused
/// for their character, never accepted.
#[test]
fn digits_outside_base62_that_decode_to_the_right_value_are_refused() {
    let mut found = [false; 2];
    for i in 0u64..100_000 {
        let body: String = (0..43)
            .map(|k| char::from(BASE62[((i * 7919 + k * 104_729) % 62) as usize]))
            .collect();
        let s = reference_secret("tok", &body);
        let digits = &s[s.len() - 6..];
        // "…A" presented as "…:".
        if let Some(at) = digits.rfind('A') {
            let at = s.len() - 6 + at;
            let crafted = format!("{}:{}", &s[..at], &s[at + 1..]);
            assert_same("tok", &crafted);
            assert!(matches!(
                crafted_verdict(&crafted),
                Err(MalformedSecret::InvalidCharacter { .. })
            ));
            found[0] = true;
        }
        // "…Y0" presented as "…X{" with X one below Y: 62 * X + 62 == 62 * Y.
        let b = digits.as_bytes();
        if b[5] == b'0' && b[4] != b'0' {
            let below = BASE62[digit_value(b[4]).unwrap() as usize - 1];
            let crafted = format!("{}{}{{", &s[..s.len() - 2], char::from(below));
            assert_same("tok", &crafted);
            assert!(matches!(
                crafted_verdict(&crafted),
                Err(MalformedSecret::InvalidCharacter { .. })
            ));
            found[1] = true;
        }
        if found == [true, true] {
            return;
        }
    }
    panic!("no secret with the digits wanted among the bodies tried: {found:?}");
}

fn crafted_verdict(s: &str) -> Result<(), MalformedSecret> {
    crate_verdict(&SecretFormat::default(), s)
}

/// Secrets issued before the check was rewritten (values from the reference, and from the
/// crate's own generator at that time) still verify.
#[test]
fn fixed_vectors_still_verify() {
    for (prefix, s) in [
        (
            "tok",
            "tok_0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefg0g8O74",
        ),
        (
            "acme2",
            "acme2_zyxwvutsrqponmlkjihgfedcbaZYXWVUTSRQPONMLKJ1vvGHS",
        ),
    ] {
        assert_eq!(reference_prefixed(prefix, s), Ok(()));
        let format = SecretFormat::prefixed(prefix).unwrap();
        assert_eq!(crate_verdict(&format, s), Ok(()), "{s}");
    }
}
