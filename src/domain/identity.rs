//! Identified visitors (desk-api.md, "Identified visitor"): a site that
//! knows its logged-in customer signs the customer's id with its channel's
//! identity secret, `hex(HMAC-SHA256(secret, id))`, on its own server; the
//! widget passes the id and the hash, and only a hash one of the channel's
//! secrets verifies is taken. Also the key that ties a visitor's
//! conversations together (`VisitorKey`).

use hmac::{Hmac, Mac};
use sha2::Sha256;

use super::ConversationId;

type HmacSha256 = Hmac<Sha256>;

/// Longest identity id, in bytes: a site's user id, an email or a UUID fit.
pub const MAX_IDENTITY_ID_BYTES: usize = 255;

/// An identity as the page gave it: the id (checked for shape) and the
/// hash it claims (not verified yet: see `IdentitySecrets::verifies`).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ClaimedIdentity {
    pub id: String,
    /// The 32 bytes of the hex hash; `None` when absent or not 64 hex
    /// digits, which no secret verifies.
    pub hash: Option<[u8; 32]>,
}

impl ClaimedIdentity {
    /// An id of 1..=255 bytes without control characters (not trimmed: the
    /// site signs the exact bytes). The hash is hex in either case.
    pub fn parse(id: &str, hash: Option<&str>) -> Result<ClaimedIdentity, &'static str> {
        if id.is_empty() || id.len() > MAX_IDENTITY_ID_BYTES {
            return Err("identity.id must be 1 to 255 bytes long");
        }
        if id.chars().any(char::is_control) {
            return Err("identity.id must not contain control characters");
        }
        Ok(ClaimedIdentity {
            id: id.to_string(),
            hash: hash.and_then(decode_hex32),
        })
    }
}

/// The 32 bytes of exactly 64 hex digits (upper or lower case), else `None`.
fn decode_hex32(hex: &str) -> Option<[u8; 32]> {
    let bytes = hex.as_bytes();
    if bytes.len() != 64 {
        return None;
    }
    let digit = |b: u8| {
        char::from(b)
            .to_digit(16)
            .and_then(|d| u8::try_from(d).ok())
    };
    let mut out = [0u8; 32];
    for (i, pair) in bytes.chunks_exact(2).enumerate() {
        out[i] = digit(pair[0])? << 4 | digit(pair[1])?;
    }
    Some(out)
}

/// Lower-case hex of `bytes`.
pub fn to_hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

/// `hex(HMAC-SHA256(secret, id))`: what a site's server computes.
pub fn sign(secret: &str, id: &str) -> String {
    to_hex(&mac(secret, id).finalize().into_bytes())
}

fn mac(secret: &str, id: &str) -> HmacSha256 {
    // HMAC takes keys of any length: this cannot fail.
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes()).expect("HMAC takes any key");
    mac.update(id.as_bytes());
    mac
}

/// A channel's identity secrets: the current one, and the one it replaced
/// with the time of the rotation (accepted for a grace period after it).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdentitySecrets {
    pub secret: String,
    pub previous: Option<String>,
    pub rotated_at_ms: Option<i64>,
}

impl IdentitySecrets {
    /// A fresh secret: 32 random bytes as 64 hex digits.
    pub fn generate() -> IdentitySecrets {
        IdentitySecrets {
            secret: new_secret(),
            previous: None,
            rotated_at_ms: None,
        }
    }

    /// Whether `identity`'s hash is the current secret's, or the previous
    /// secret's while `now_ms` is less than `grace_ms` after the rotation.
    /// Each comparison is in constant time.
    pub fn verifies(&self, identity: &ClaimedIdentity, now_ms: i64, grace_ms: i64) -> bool {
        let Some(hash) = identity.hash else {
            return false;
        };
        let check = |secret: &str| mac(secret, &identity.id).verify_slice(&hash).is_ok();
        if check(&self.secret) {
            return true;
        }
        match (&self.previous, self.rotated_at_ms) {
            (Some(previous), Some(at)) if now_ms < at.saturating_add(grace_ms) => check(previous),
            _ => false,
        }
    }
}

/// A new random secret, 64 hex digits.
pub fn new_secret() -> String {
    to_hex(&rand::random::<[u8; 32]>())
}

/// Which visitor a conversation belongs to, on its channel: `i:<id>` for a
/// verified identity, `a:<uuid>` for an anonymous visitor (the first
/// conversation of its chain of resume tokens).
#[derive(Debug, Clone, PartialEq, Eq, Hash, serde::Serialize, serde::Deserialize)]
#[serde(transparent)]
pub struct VisitorKey(String);

impl VisitorKey {
    pub fn identified(id: &str) -> VisitorKey {
        VisitorKey(format!("i:{id}"))
    }

    /// An anonymous visitor whose first conversation is `first`.
    pub fn anonymous(first: ConversationId) -> VisitorKey {
        VisitorKey(format!("a:{first}"))
    }

    /// A key as stored (trusted: the store only holds keys made here).
    pub fn from_stored(raw: String) -> VisitorKey {
        VisitorKey(raw)
    }

    pub fn is_identified(&self) -> bool {
        self.0.starts_with("i:")
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn claimed(id: &str, hash: &str) -> ClaimedIdentity {
        ClaimedIdentity::parse(id, Some(hash)).unwrap()
    }

    #[test]
    fn the_rfc_4231_vector_signs_as_documented() {
        // RFC 4231 test case 2: key "Jefe", data "what do ya want for nothing?".
        assert_eq!(
            sign("Jefe", "what do ya want for nothing?"),
            "5bdcc146bf60754e6a042426089575c75a003f089d2739839dec58b964ec3843"
        );
    }

    #[test]
    fn only_the_hash_of_this_id_by_a_current_secret_verifies() {
        let secrets = IdentitySecrets::generate();
        let good = sign(&secrets.secret, "user-42");
        assert!(secrets.verifies(&claimed("user-42", &good), 0, 0));
        assert!(secrets.verifies(&claimed("user-42", &good.to_uppercase()), 0, 0));
        assert!(!secrets.verifies(&claimed("user-43", &good), 0, 0));
        assert!(!secrets.verifies(&claimed("User-42", &good), 0, 0));
        let other = sign(&new_secret(), "user-42");
        assert!(!secrets.verifies(&claimed("user-42", &other), 0, 0));
        for bad in [
            "",
            &good[..63],
            &format!("{good}0"),
            &format!("0x{}", &good[2..]),
            &format!(" {}", &good[1..]),
            &"zz".repeat(32),
        ] {
            assert!(!secrets.verifies(&claimed("user-42", bad), 0, 0), "{bad}");
        }
        let unsigned = ClaimedIdentity::parse("user-42", None).unwrap();
        assert!(!secrets.verifies(&unsigned, 0, 0));
    }

    #[test]
    fn the_previous_secret_verifies_during_the_grace_period_only() {
        let old = IdentitySecrets::generate();
        let rotated = IdentitySecrets {
            secret: new_secret(),
            previous: Some(old.secret.clone()),
            rotated_at_ms: Some(1_000),
        };
        let by_old = claimed("u", &sign(&old.secret, "u"));
        assert!(rotated.verifies(&by_old, 1_000, 500));
        assert!(rotated.verifies(&by_old, 1_499, 500));
        assert!(!rotated.verifies(&by_old, 1_500, 500));
        assert!(rotated.verifies(&claimed("u", &sign(&rotated.secret, "u")), 9_999_999, 500));
    }

    #[test]
    fn ids_are_bounded_and_printable() {
        assert!(ClaimedIdentity::parse("", None).is_err());
        assert!(ClaimedIdentity::parse(&"a".repeat(256), None).is_err());
        assert!(ClaimedIdentity::parse(&"a".repeat(255), None).is_ok());
        assert!(ClaimedIdentity::parse("a\nb", None).is_err());
        assert!(ClaimedIdentity::parse("José 😀 <x@y>", None).is_ok());
    }
}
