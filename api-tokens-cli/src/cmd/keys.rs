//! `keys check` and `keys status`: the store's hashes against the configured keys.
//!
//! Both show what they found even when the keys do not match (that is what they are for), and
//! then fail like every other command would: exit 3, naming the missing keys.

use api_tokens::{KeyId, keys::HashKeyReport, keys::HashScheme, legacy::LegacyScheme};
use serde::Serialize;

use crate::cli::{DetailFormat, KeysArgs};
use crate::error::CliError;
use crate::output;
use crate::setup::Ctx;

/// The JSON both commands write (stable).
#[derive(Serialize)]
struct KeysJson {
    /// Whether every hash in the store was made under a configured key or honoured scheme.
    ok: bool,
    /// The current key's id.
    current_key: KeyId,
    /// Whether the current key is the library's public default.
    default_key: bool,
    /// The old keys' ids.
    old_keys: Vec<KeyId>,
    /// The legacy schemes honoured.
    legacy_schemes: Vec<LegacyScheme>,
    /// The store's hashes by how they were made.
    usage: Vec<UsageJson>,
    /// Hashes not yet under the current key the ordinary way.
    not_current: u64,
    /// Hashes whose key was never recorded.
    unrecorded: u64,
    /// Keys hashes were made under that are not configured.
    missing_keys: Vec<MissingKey>,
    /// Legacy schemes hashes use that are not honoured.
    missing_legacy: Vec<MissingLegacy>,
}

#[derive(Serialize)]
struct UsageJson {
    scheme: HashScheme,
    key: Option<KeyId>,
    legacy: Option<LegacyScheme>,
    current: u64,
    previous: u64,
    configured: bool,
}

#[derive(Serialize)]
struct MissingKey {
    key: KeyId,
    hashes: u64,
}

#[derive(Serialize)]
struct MissingLegacy {
    scheme: LegacyScheme,
    hashes: u64,
}

fn configured(r: &HashKeyReport, s: HashScheme) -> bool {
    let key = s.key().is_none_or(|k| k == r.current || r.old.contains(&k));
    let legacy = s.legacy_scheme().is_none_or(|l| r.legacy.contains(&l));
    key && legacy
}

fn to_json(r: &HashKeyReport, ok: bool) -> KeysJson {
    KeysJson {
        ok,
        current_key: r.current,
        default_key: r.current_is_default,
        old_keys: r.old.clone(),
        legacy_schemes: r.legacy.clone(),
        usage: r
            .usage
            .iter()
            .map(|u| UsageJson {
                scheme: u.scheme,
                key: u.scheme.key(),
                legacy: u.scheme.legacy_scheme(),
                current: u.current,
                previous: u.previous,
                configured: configured(r, u.scheme),
            })
            .collect(),
        not_current: r.not_current(),
        unrecorded: r.unrecorded(),
        missing_keys: r
            .missing_keys()
            .into_iter()
            .map(|(key, hashes)| MissingKey { key, hashes })
            .collect(),
        missing_legacy: r
            .missing_legacy()
            .into_iter()
            .map(|(scheme, hashes)| MissingLegacy { scheme, hashes })
            .collect(),
    }
}

fn list<T: ToString>(items: &[T]) -> String {
    if items.is_empty() {
        "none".to_owned()
    } else {
        items
            .iter()
            .map(ToString::to_string)
            .collect::<Vec<_>>()
            .join(", ")
    }
}

fn summary(r: &HashKeyReport, ok: bool) -> Vec<Vec<String>> {
    let total: u64 = r.usage.iter().map(|u| u.hashes()).sum();
    let mut rows = vec![
        vec![
            "current key".into(),
            if r.current_is_default {
                format!("{} (the public default key)", r.current)
            } else {
                r.current.to_string()
            },
        ],
        vec!["old keys".into(), list(&r.old)],
        vec!["legacy schemes".into(), list(&r.legacy)],
        vec![
            "hashes".into(),
            format!(
                "{total} ({} not yet under the current key, {} unrecorded)",
                r.not_current(),
                r.unrecorded()
            ),
        ],
    ];
    let mut verdict = vec![if ok {
        "ok: every hash in the store was made under a configured key".to_owned()
    } else {
        "MISMATCH:".to_owned()
    }];
    for (k, n) in r.missing_keys() {
        verdict.push(format!("key {k} is not configured ({n} hashes need it)"));
    }
    for (l, n) in r.missing_legacy() {
        verdict.push(format!(
            "legacy scheme {l} is not honoured ({n} hashes use it)"
        ));
    }
    let verdict = match verdict.split_first() {
        Some((head, rest)) if !rest.is_empty() => format!("{head} {}", rest.join("; ")),
        _ => verdict.join(""),
    };
    rows.push(vec!["verdict".into(), verdict]);
    rows
}

/// `keys check` (`status: false`) and `keys status` (`status: true`).
pub fn run(ctx: &Ctx, a: &KeysArgs, status: bool) -> Result<(), CliError> {
    let report = ctx.tokens.hash_key_report()?;
    let verdict = ctx.tokens.check_hash_keys();
    let ok = verdict.is_ok();
    let mut out = std::io::stdout().lock();
    let written = match a.format {
        DetailFormat::Json => output::json(&mut out, &to_json(&report, ok)),
        DetailFormat::Table if status => {
            let rows: Vec<Vec<String>> = report
                .usage
                .iter()
                .map(|u| {
                    vec![
                        u.scheme
                            .key()
                            .map_or_else(|| "unrecorded".into(), |k| k.to_string()),
                        u.scheme
                            .legacy_scheme()
                            .map_or_else(|| "blake3".into(), |l| l.to_string()),
                        u.current.to_string(),
                        u.previous.to_string(),
                        match (configured(&report, u.scheme), u.scheme.key()) {
                            (_, Some(k)) if k == report.current => "current".into(),
                            (true, Some(_)) => "old".into(),
                            (true, None) => "looked up under every key".into(),
                            (false, _) => "NOT CONFIGURED".into(),
                        },
                    ]
                })
                .collect();
            output::record(&mut out, &summary(&report, ok))
                .and_then(|()| writeln_empty(&mut out))
                .and_then(|()| {
                    output::table(
                        &mut out,
                        &["KEY", "SCHEME", "TOKENS", "IN GRACE", "KEY IS"],
                        &rows,
                    )
                })
        }
        DetailFormat::Table => output::record(&mut out, &summary(&report, ok)),
    };
    written.map_err(CliError::Output)?;
    verdict?;
    Ok(())
}

fn writeln_empty(out: &mut impl std::io::Write) -> std::io::Result<()> {
    writeln!(out)
}
