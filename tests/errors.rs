//! Every error and denial the crate returns, with its stable code, its HTTP status hint and its
//! message: the list hosts map from. A code that changes here is a breaking change for every
//! host that matches on it.

use std::sync::Arc;

use api_tokens::{
    Denial, DenialKind, Error, Field, Forbidden, MalformedSecret, Permission, Problem,
    PublicDenial, StoreError, TokenId, UserId, ValidationError,
};

fn invalid(field: Field, value: &str, problem: Problem) -> Error {
    Error::Invalid {
        index: None,
        source: ValidationError::new(field, value, problem),
    }
}

fn forbidden(source: Forbidden) -> Error {
    Error::Forbidden {
        index: None,
        source,
    }
}

fn is_snake_case(code: &str) -> bool {
    !code.is_empty()
        && code
            .bytes()
            .all(|b| b.is_ascii_lowercase() || b.is_ascii_digit() || b == b'_')
        && !code.starts_with('_')
        && !code.ends_with('_')
        && !code.contains("__")
}

#[test]
fn every_error_has_its_code_status_and_plain_message() {
    let id = TokenId::new(42);
    let rows: Vec<(Error, &str, u16, &str)> = vec![
        (
            invalid(Field::Name, "", Problem::Empty),
            "empty",
            400,
            "name cannot be empty",
        ),
        (
            invalid(Field::Name, "xxxx", Problem::TooLong { max: 3 }),
            "too_long",
            400,
            "name \"xxxx\" is too long (at most 3 characters)",
        ),
        (
            invalid(Field::Name, "a b", Problem::InvalidCharacter { ch: ' ' }),
            "invalid_character",
            400,
            "name \"a b\" contains the invalid character ' '",
        ),
        (
            invalid(Field::SecretPrefix, "9x", Problem::MustStartWithLetter),
            "must_start_with_letter",
            400,
            "secret prefix \"9x\" must start with a letter",
        ),
        (
            invalid(Field::UserId, " u", Problem::SurroundingWhitespace),
            "surrounding_whitespace",
            400,
            "user id \" u\" cannot start or end with whitespace",
        ),
        (
            invalid(
                Field::Allowlist,
                "1.2.3",
                Problem::Syntax {
                    expected: "an IP address or CIDR range",
                },
            ),
            "invalid_syntax",
            400,
            "allowlist entry \"1.2.3\" is not an IP address or CIDR range",
        ),
        (
            invalid(Field::Permissions, "reports:*", Problem::MisplacedWildcard),
            "misplaced_wildcard",
            400,
            "permission \"reports:*\" has a wildcard in the wrong place: \"*\" is either the \
             whole permission or its whole last segment, as in \"reports.*\"",
        ),
        (
            invalid(Field::Permissions, "a..b", Problem::EmptySegment),
            "empty_segment",
            400,
            "permission \"a..b\" has an empty segment (segments are separated by single dots, \
             none at either end)",
        ),
        (
            invalid(Field::Grace, "-1h", Problem::Negative),
            "negative",
            400,
            "grace period \"-1h\" cannot be negative",
        ),
        (
            invalid(
                Field::Expiry,
                "2021-01-21T14:07:52Z (Unix time 1611238072)",
                Problem::InThePast,
            ),
            "expiry_not_in_future",
            400,
            "expiry 2021-01-21T14:07:52Z (Unix time 1611238072) is not in the future",
        ),
        (
            invalid(
                Field::Expiry,
                "2030-01-01T00:00:00Z (Unix time 1893456000)",
                Problem::LifetimeTooLong {
                    max_seconds: 7_776_000,
                },
            ),
            "lifetime_too_long",
            400,
            "expiry 2030-01-01T00:00:00Z (Unix time 1893456000) is further away than the \
             longest lifetime allowed (90 days)",
        ),
        (
            invalid(
                Field::Allowlist,
                "10.0.200.1",
                Problem::TooMany { max: 100 },
            ),
            "too_many",
            400,
            "allowlist entry \"10.0.200.1\" is one too many (at most 100 entries)",
        ),
        (
            invalid(
                Field::Name,
                "deploy",
                Problem::NameTaken {
                    owner: UserId::from(2),
                },
            ),
            "name_taken",
            409,
            "name \"deploy\" already exists for owner \"2\"",
        ),
        (
            invalid(Field::TokenId, "7", Problem::Duplicate),
            "duplicate_in_batch",
            400,
            "token id \"7\" appears more than once in the batch",
        ),
        (
            invalid(Field::Owner, "99", Problem::UnknownUser),
            "unknown_user",
            400,
            "owner \"99\" is not a known user",
        ),
        (
            invalid(Field::Owner, "4", Problem::InactiveUser),
            "inactive_user",
            400,
            "owner \"4\" is not an active user",
        ),
        (
            invalid(
                Field::Allowlist,
                "10.0.0.1/8",
                Problem::HostBitsSet {
                    network: "10.0.0.0/8".parse().unwrap(),
                },
            ),
            "host_bits_set",
            400,
            "allowlist entry \"10.0.0.1/8\" has host bits set (the network is 10.0.0.0/8)",
        ),
        (
            invalid(Field::Permissions, "a,,b", Problem::EmptyItem),
            "empty_item",
            400,
            "permission \"a,,b\" has an empty item between separators",
        ),
        (
            invalid(
                Field::Query,
                "ids",
                Problem::TooManyValues {
                    found: 10_001,
                    max: 10_000,
                },
            ),
            "too_many_values",
            400,
            "query \"ids\" has 10001 values (at most 10000 are allowed)",
        ),
        (
            invalid(
                Field::Grace,
                "8d",
                Problem::GraceTooLong {
                    max_seconds: 604_800,
                },
            ),
            "grace_too_long",
            400,
            "grace period \"8d\" is longer than the longest grace period allowed (7 days)",
        ),
        (
            invalid(
                Field::LegacyHash,
                "zabbix-sha512",
                Problem::SchemeNotHonoured,
            ),
            "scheme_not_honoured",
            400,
            "legacy hash \"zabbix-sha512\" is in a legacy scheme that is not honoured (enable it \
             with Tokens::with_legacy_scheme)",
        ),
        (
            invalid(
                Field::LegacyHash,
                "zabbix-sha512",
                Problem::AlreadyImported { token: id },
            ),
            "already_imported",
            409,
            "legacy hash \"zabbix-sha512\" was imported already, as token 42: importing it \
             again would let one secret open two tokens",
        ),
        (
            invalid(Field::Permissions, "", Problem::Required),
            "required",
            400,
            "permissions are required: list the ones the token needs (for example \
             \"reports.read\"), or give \"*\" for all of its owner's rights",
        ),
        (
            forbidden(Forbidden::CannotManageTokens),
            "cannot_manage_tokens",
            403,
            "you are not allowed to manage API tokens",
        ),
        (
            forbidden(Forbidden::OtherUsersTokens),
            "other_users_tokens",
            403,
            "you may only manage your own tokens",
        ),
        (
            forbidden(Forbidden::PermissionsBeyondActor {
                missing: "kill-acct".parse().unwrap(),
            }),
            "permissions_not_held",
            403,
            "you cannot grant permissions you do not hold: kill-acct",
        ),
        (
            forbidden(Forbidden::UserNotActive),
            "user_not_active",
            403,
            "your user account is unknown or disabled",
        ),
        (
            forbidden(Forbidden::OwnLimits),
            "own_limits",
            403,
            "you cannot change the limits of the token you are using",
        ),
        (
            Error::Store(StoreError::LimitsUnsupported),
            "limits_unsupported",
            500,
            "this store cannot enforce usage limits or rate limits",
        ),
        (
            Error::NotFound { index: None, id },
            "not_found",
            404,
            "token 42 not found",
        ),
        (
            Error::Revoked {
                index: None,
                token: id,
            },
            "revoked",
            409,
            "token 42 was revoked because its secret was reported leaked: it cannot be enabled \
             again or given a new secret",
        ),
        (
            Error::Store(StoreError::NameTaken {
                owner: UserId::from(2),
                name: "deploy".into(),
            }),
            "name_taken",
            409,
            "name \"deploy\" already exists for owner \"2\"",
        ),
        (
            Error::Store(StoreError::IdTaken(id)),
            "id_taken",
            500,
            "token id 42 already exists",
        ),
        (
            Error::Store(StoreError::HashTaken),
            "hash_taken",
            500,
            "secret hash already in use",
        ),
        (
            Error::Store(StoreError::Conflict(id)),
            "concurrent_change",
            409,
            "token 42 was changed by another request at the same time; nothing was written",
        ),
        (
            Error::Store(StoreError::NotFound(id)),
            "not_found",
            404,
            "token 42 not found",
        ),
        (
            Error::Store(StoreError::IdsExhausted),
            "ids_exhausted",
            500,
            "token ids exhausted",
        ),
        (
            Error::Store(StoreError::InvalidSnapshot("unknown version 9".into())),
            "invalid_snapshot",
            500,
            "invalid snapshot: unknown version 9",
        ),
        (
            Error::Store(StoreError::backend(std::io::Error::other("disk on fire"))),
            "store_unavailable",
            503,
            "the token store failed",
        ),
        (
            Error::Store(StoreError::Inconsistent {
                token: id,
                problem: "a revoked token is enabled",
            }),
            "inconsistent_record",
            500,
            "token 42 is stored in an inconsistent state: a revoked token is enabled",
        ),
        (
            Error::Store(StoreError::Busy {
                waited: std::time::Duration::from_millis(5000),
            }),
            "store_busy",
            503,
            "the database is locked by another connection that is writing; gave up after \
             waiting 5000 ms",
        ),
        (
            Error::Store(StoreError::SnapshotKeyMismatch {
                snapshot: "0000000000000001".parse().unwrap(),
                expected: "0000000000000002".parse().unwrap(),
            }),
            "snapshot_key_mismatch",
            500,
            "snapshot was sealed under hash key 0000000000000001, not under this key \
             (0000000000000002): open it with the key it was made with",
        ),
        (
            Error::Store(StoreError::Unconfirmed {
                seq: 7,
                source: Box::new(StoreError::backend(std::io::Error::other("gone"))),
            }),
            "unconfirmed",
            503,
            "the change committed (clock value 7) but could not be confirmed on every replica",
        ),
        (
            Error::Store(StoreError::SnapshotTampered),
            "snapshot_tampered",
            500,
            "snapshot seal does not match its contents: the snapshot was changed after it was \
             made",
        ),
        (
            Error::Store(StoreError::SchemaTooNew {
                found: 9,
                supported: 2,
            }),
            "schema_too_new",
            500,
            "database schema version 9 is newer than this crate supports (2)",
        ),
        (
            Error::Store(StoreError::Stale {
                unconfirmed_for: std::time::Duration::from_secs(7),
            }),
            "replica_stale",
            503,
            "replica not confirmed current for 7s (bound exceeded)",
        ),
        (
            Error::Store(StoreError::Config("a zero timeout".into())),
            "store_misconfigured",
            500,
            "invalid store configuration: a zero timeout",
        ),
        (
            Error::Store(StoreError::HashKeysMissing {
                missing: vec![(api_tokens::KeyId::from_bytes([0xa; 8]), 3)],
                legacy: vec![(api_tokens::legacy::LegacyScheme::ZabbixSha512, 1)],
                held: vec![
                    api_tokens::KeyId::from_bytes([0xb; 8]),
                    api_tokens::KeyId::from_bytes([0xc; 8]),
                ],
            }),
            "hash_keys_missing",
            500,
            "stored secret hashes were made under hash key(s) 0a0a0a0a0a0a0a0a (3 hashes) that \
             are not configured (configured: 0b0b0b0b0b0b0b0b (current), 0c0c0c0c0c0c0c0c): \
             configure the key that made them, as the current key or as an old key; imported \
             hashes use legacy scheme(s) zabbix-sha512 (1 hash) that are not honoured: enable \
             them with Tokens::with_legacy_scheme",
        ),
    ];
    for (err, code, status, message) in &rows {
        assert_eq!(err.code(), *code, "{err:?}");
        assert!(is_snake_case(code), "{code}");
        assert_eq!(err.http_status(), *status, "{err:?}");
        assert_eq!(err.to_string(), *message, "{err:?}");
        assert!(
            !message.contains("actor") && !message.contains("referred object"),
            "no jargon, no Zabbix phrases: {message}"
        );
        let json = serde_json::to_value(err).unwrap();
        assert_eq!(json["code"], *code);
        assert_eq!(json["message"], *message);
        assert_eq!(json.get("index"), None, "no index on a single item");
    }
    // Each code names one condition: the same code twice is the same condition reached two
    // ways (a name taken, found by the pre-check or by the store; a token gone).
    let mut codes: Vec<&str> = rows.iter().map(|r| r.1).collect();
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), rows.len() - 2);
}

#[test]
fn a_batch_error_names_its_item_counting_from_one_and_serializes_its_index() {
    let err = Error::Invalid {
        index: Some(2),
        source: ValidationError::new(Field::Name, "", Problem::Empty),
    };
    assert_eq!(err.to_string(), "item 3: name cannot be empty");
    assert_eq!(err.index(), Some(2));
    assert_eq!(
        serde_json::to_value(&err).unwrap(),
        serde_json::json!({"code": "empty", "field": "name", "index": 2,
                           "message": "item 3: name cannot be empty"})
    );
}

#[test]
fn every_denial_has_its_code_and_the_status_of_what_the_client_is_told() {
    let token = TokenId::new(7);
    let store = Arc::new(StoreError::backend(std::io::Error::other("down")));
    let rows: Vec<(Denial, &str, PublicDenial, u16)> = vec![
        (
            Denial::Malformed(MalformedSecret::BadChecksum),
            "malformed",
            PublicDenial::InvalidToken,
            401,
        ),
        (Denial::Unknown, "unknown", PublicDenial::InvalidToken, 401),
        (
            Denial::Superseded { token },
            "superseded",
            PublicDenial::InvalidToken,
            401,
        ),
        (
            Denial::Disabled { token },
            "disabled",
            PublicDenial::InvalidToken,
            401,
        ),
        (
            Denial::OwnerUnknown { token },
            "owner_unknown",
            PublicDenial::InvalidToken,
            401,
        ),
        (
            Denial::OwnerInactive { token },
            "owner_inactive",
            PublicDenial::InvalidToken,
            401,
        ),
        (
            Denial::Expired { token },
            "expired",
            PublicDenial::Expired,
            401,
        ),
        (
            Denial::AddressNotAllowed { token, ip: None },
            "address_not_allowed",
            PublicDenial::AddressNotAllowed,
            403,
        ),
        (
            Denial::MissingPermission {
                token,
                permission: Permission::new("x").unwrap(),
            },
            "missing_permission",
            PublicDenial::Forbidden,
            403,
        ),
        (
            Denial::Limited {
                token,
                refusal: Box::new(api_tokens::limits::LimitRefusal::RateLimited {
                    name: "requests".parse().unwrap(),
                    limit: 10,
                    window: time::Duration::MINUTE,
                    retry_after: time::Duration::milliseconds(1_500),
                }),
                retry_after: Some(time::Duration::milliseconds(1_500)),
            },
            "rate_limited",
            PublicDenial::RateLimited {
                retry_after_secs: 2,
            },
            429,
        ),
        (
            Denial::Limited {
                token,
                refusal: Box::new(api_tokens::limits::LimitRefusal::UsageExceeded {
                    remaining: 0,
                    cost: 1,
                    refills_at: None,
                }),
                retry_after: None,
            },
            "usage_exceeded",
            PublicDenial::UsageExceeded {
                retry_after_secs: None,
            },
            429,
        ),
        (
            Denial::Store(store),
            "store_unavailable",
            PublicDenial::Unavailable,
            503,
        ),
        (
            Denial::Stale {
                unconfirmed_for: std::time::Duration::from_secs(7),
            },
            "replica_stale",
            PublicDenial::Unavailable,
            503,
        ),
    ];
    let mut codes = Vec::new();
    for (denial, code, public, status) in &rows {
        assert_eq!(denial.code(), *code, "{denial:?}");
        assert!(is_snake_case(code));
        assert_eq!(denial.public(), *public, "{denial:?}");
        assert_eq!(denial.http_status(), *status, "{denial:?}");
        assert_eq!(public.http_status(), *status);
        // The audit log's `reason` is the same code.
        assert_eq!(
            serde_json::to_value(denial.kind()).unwrap(),
            serde_json::json!(code)
        );
        assert_eq!(DenialKind::code(&denial.kind()), *code);
        codes.push(*code);
    }
    codes.sort_unstable();
    codes.dedup();
    assert_eq!(codes.len(), rows.len(), "one code per denial");
}

#[test]
fn public_denials_have_codes_statuses_and_bodies() {
    let rows = [
        (
            PublicDenial::InvalidToken,
            "invalid_token",
            401,
            "Not authorized.",
        ),
        (
            PublicDenial::Expired,
            "token_expired",
            401,
            "API token expired.",
        ),
        (
            PublicDenial::AddressNotAllowed,
            "address_not_allowed",
            403,
            "Not allowed from this address.",
        ),
        (
            PublicDenial::Forbidden,
            "missing_permission",
            403,
            "No permissions for this operation.",
        ),
        (
            PublicDenial::RateLimited {
                retry_after_secs: 3,
            },
            "rate_limited",
            429,
            "Rate limit exceeded.",
        ),
        (
            PublicDenial::UsageExceeded {
                retry_after_secs: None,
            },
            "usage_exceeded",
            429,
            "Usage limit exceeded.",
        ),
        (
            PublicDenial::Unavailable,
            "unavailable",
            503,
            "Service unavailable.",
        ),
    ];
    for (public, code, status, message) in rows {
        assert_eq!((public.code(), public.http_status()), (code, status));
        assert_eq!(public.to_string(), message);
        let mut body = serde_json::json!({"code": code, "message": message});
        if let Some(secs) = public.retry_after_secs() {
            body["retry_after"] = secs.into();
        }
        assert_eq!(serde_json::to_value(public).unwrap(), body);
    }
}

#[test]
fn field_names_for_programs_are_stable_snake_case() {
    let fields = [
        (Field::Name, "name"),
        (Field::Description, "description"),
        (Field::Owner, "owner"),
        (Field::UserId, "user_id"),
        (Field::Expiry, "expiry"),
        (Field::Permissions, "permissions"),
        (Field::Allowlist, "allowlist"),
        (Field::TokenId, "token_id"),
        (Field::SecretPrefix, "secret_prefix"),
        (Field::Query, "query"),
        (Field::Grace, "grace_period"),
    ];
    for (field, name) in fields {
        assert_eq!(field.as_str(), name);
        assert!(is_snake_case(name));
    }
}
