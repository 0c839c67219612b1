//! Generators for the decoder property tests (ours, on stable Rust): every
//! decoder of client bytes gets arbitrary bytes, and structure-aware input
//! that reaches its deeper branches: JSON whose keys are the ones it looks
//! for, whose values are of every type and at every edge (huge numbers,
//! control characters, deep nesting), whole or cut short or with a byte
//! changed. Each test asserts that nothing panics and that refused input
//! gets a clean client error. Case counts are bounded ([`config`]) so the
//! whole set runs in seconds within `cargo test`.

use proptest::prelude::*;
use proptest::test_runner::Config;
use serde_json::{Map, Value};

use crate::error::ApiError;

/// Cases per property: enough to reach every branch of these small
/// decoders, few enough that every property runs in well under a second.
pub fn config() -> Config {
    Config {
        cases: 256,
        // Failures are reported with their minimal input, then become named
        // regression tests; no persistence files in the tree.
        failure_persistence: None,
        ..Config::default()
    }
}

/// Text with what decoders trip on: quotes, escapes, control characters,
/// separators of query strings and headers, emoji, long runs.
pub fn text() -> impl Strategy<Value = String> {
    prop_oneof![
        4 => any::<String>(),
        2 => "[a-z0-9_@.:,;=&%+ -]{0,24}",
        1 => prop::sample::select(vec![
            "", " ", "me", "*", "asc", "desc", "true", "null", "-1", "0", "1",
            "18446744073709551616", "-9223372036854775809", "1e400", "NaN",
            "2024-01-01", "2024-02-30T25:61:00Z", "\u{0}", "\u{feff}", "👍",
            "👍🏽", "%", "%zz", "%C3%28", "%F0%9F%91%8D", "a,b,,", "\\u0000",
            "http://example.com", "javascript:alert(1)",
            "00000000-0000-0000-0000-000000000000",
            "0190a0a0-0000-7000-8000-000000000000",
        ])
        .prop_map(str::to_string),
        1 => (1usize..5000).prop_map(|n| "x".repeat(n)),
    ]
}

/// A JSON value of any type; object keys are mostly from `keys`, so the
/// decoder finds the fields it looks for, holding every kind of value.
pub fn json_value(keys: &'static [&'static str]) -> impl Strategy<Value = Value> {
    let leaf = prop_oneof![
        Just(Value::Null),
        any::<bool>().prop_map(Value::Bool),
        any::<i64>().prop_map(Value::from),
        any::<u64>().prop_map(Value::from),
        any::<f64>().prop_map(Value::from), // NaN and infinities become null
        prop::sample::select(vec![0i64, -1, 1, i64::MAX, i64::MIN, 1 << 53]).prop_map(Value::from),
        text().prop_map(Value::String),
    ];
    let key = prop_oneof![
        4 => prop::sample::select(keys.to_vec()).prop_map(str::to_string),
        1 => text(),
    ];
    leaf.prop_recursive(4, 48, 8, move |inner| {
        prop_oneof![
            prop::collection::vec(inner.clone(), 0..8).prop_map(Value::Array),
            prop::collection::vec((key.clone(), inner), 0..8)
                .prop_map(|fields| Value::Object(fields.into_iter().collect::<Map<_, _>>())),
        ]
    })
}

/// A JSON object (what the bodies are meant to be) with fields from `keys`.
pub fn json_object(keys: &'static [&'static str]) -> impl Strategy<Value = Map<String, Value>> {
    let key = prop_oneof![
        6 => prop::sample::select(keys.to_vec()).prop_map(str::to_string),
        1 => text(),
    ];
    prop::collection::vec((key, json_value(keys)), 0..10)
        .prop_map(|fields| fields.into_iter().collect())
}

/// Bytes of a body: a generated object or value, whole or damaged
/// (cut short, a byte changed, bytes inserted), or arbitrary bytes.
pub fn json_bytes(keys: &'static [&'static str]) -> impl Strategy<Value = Vec<u8>> {
    let whole = prop_oneof![
        3 => json_object(keys).prop_map(|map| Value::Object(map).to_string().into_bytes()),
        1 => json_value(keys).prop_map(|value| value.to_string().into_bytes()),
    ];
    prop_oneof![
        4 => whole.clone(),
        1 => (whole.clone(), any::<prop::sample::Index>())
            .prop_map(|(bytes, at)| bytes[..at.index(bytes.len() + 1)].to_vec()),
        1 => (whole.clone(), any::<prop::sample::Index>(), any::<u8>()).prop_map(
            |(mut bytes, at, b)| {
                if !bytes.is_empty() {
                    let i = at.index(bytes.len());
                    bytes[i] = b;
                }
                bytes
            }
        ),
        1 => (whole, any::<prop::sample::Index>(), prop::collection::vec(any::<u8>(), 1..8))
            .prop_map(|(mut bytes, at, extra)| {
                let i = at.index(bytes.len() + 1);
                bytes.splice(i..i, extra);
                bytes
            }),
        1 => prop::collection::vec(any::<u8>(), 0..256),
    ]
}

/// A query string: `key=value` pairs with keys from `keys`, values
/// percent-encoded or raw, or arbitrary text.
pub fn query(keys: &'static [&'static str]) -> impl Strategy<Value = String> {
    let key = prop_oneof![
        4 => prop::sample::select(keys.to_vec()).prop_map(str::to_string),
        1 => text(),
    ];
    let pair = (key, text(), any::<bool>()).prop_map(|(k, v, encode)| {
        if encode {
            serde_urlencoded::to_string([(k, v)]).unwrap_or_default()
        } else {
            format!("{k}={v}")
        }
    });
    prop_oneof![
        4 => prop::collection::vec(pair, 0..8).prop_map(|pairs| pairs.join("&")),
        1 => text(),
    ]
}

/// A refusal a client can act on: a 4xx with an id, a message, and the
/// contract's JSON shape.
pub fn assert_client_error(err: &ApiError) {
    assert!(err.status.is_client_error(), "{err:?}");
    assert!(!err.error_id.is_empty(), "{err:?}");
    let body = err.body();
    assert!(
        body["message"].as_str().is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["details"].is_object(), "{body}");
}
