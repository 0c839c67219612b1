//! The console's browser session: an HttpOnly cookie holding the agent
//! token of a normal login (so logout, expiry, a disabled agent and a
//! demotion apply exactly as on the API), and CSRF tokens.
//!
//! CSRF: every form that changes something carries `csrf`, an HMAC-SHA256
//! of a fixed label keyed by the session token. A cross-site page can
//! neither read the cookie nor the pages, so it cannot compute it; no
//! server-side state is needed. The login form, which has no session yet,
//! uses a double-submit token: a random value in a SameSite=Strict cookie
//! that the form must repeat.

use std::collections::HashMap;

use base64::Engine;
use hmac::{Hmac, Mac};
use sha2::Sha256;

/// The session cookie: the agent token.
pub const SESSION_COOKIE: &str = "cg_session";
/// The login form's double-submit cookie.
pub const LOGIN_COOKIE: &str = "cg_login";

const CSRF_LABEL: &[u8] = b"chatgate console csrf v1";

/// The cookies of a request, by name.
pub fn parse_cookies(header: Option<&str>) -> HashMap<String, String> {
    header
        .unwrap_or_default()
        .split(';')
        .filter_map(|pair| {
            let (name, value) = pair.split_once('=')?;
            Some((name.trim().to_string(), value.trim().to_string()))
        })
        .collect()
}

fn mac(token: &str) -> Hmac<Sha256> {
    let mut mac =
        Hmac::<Sha256>::new_from_slice(token.as_bytes()).expect("HMAC takes keys of any length");
    mac.update(CSRF_LABEL);
    mac
}

/// The CSRF token of a session.
pub fn csrf_token(session_token: &str) -> String {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .encode(mac(session_token).finalize().into_bytes())
}

/// Whether `given` is the session's CSRF token (compared in constant time).
pub fn csrf_ok(session_token: &str, given: Option<&str>) -> bool {
    let Some(given) = given else { return false };
    let Ok(bytes) = base64::engine::general_purpose::URL_SAFE_NO_PAD.decode(given) else {
        return false;
    };
    mac(session_token).verify_slice(&bytes).is_ok()
}

/// Whether the login form's token matches its cookie (constant time).
pub fn login_token_ok(cookie: Option<&str>, given: Option<&str>) -> bool {
    match (cookie, given) {
        (Some(a), Some(b)) if a.len() >= 16 && a.len() == b.len() => {
            a.bytes()
                .zip(b.bytes())
                .fold(0u8, |acc, (x, y)| acc | (x ^ y))
                == 0
        }
        _ => false,
    }
}

/// A `Set-Cookie` value. `max_age` 0 removes the cookie.
pub fn cookie(name: &str, value: &str, max_age: u64, same_site: &str, secure: bool) -> String {
    let secure = if secure { "; Secure" } else { "" };
    format!("{name}={value}; Path=/; Max-Age={max_age}; HttpOnly; SameSite={same_site}{secure}")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_csrf_token_is_accepted_only_for_its_own_session() {
        let token = csrf_token("session-a");
        assert!(csrf_ok("session-a", Some(&token)));
        assert!(!csrf_ok("session-b", Some(&token)));
        assert!(!csrf_ok("session-a", None));
        assert!(!csrf_ok("session-a", Some("not base64 !")));
    }

    #[test]
    fn cookies_are_parsed_by_name() {
        let cookies = parse_cookies(Some("a=1; cg_session=x.y.z ;b=2"));
        assert_eq!(cookies["cg_session"], "x.y.z");
        assert_eq!(cookies["b"], "2");
    }
}
