//! Server-side tokens for openfc's own signed URLs (e.g. `GetFunctionCode` download links).
//!
//! A token is the URL-safe base64 (no padding) of HMAC-SHA256(key, message); it can be placed in a query
//! string without escaping. What the message contains (object id, expiry...) is the caller's business.

use base64::Engine as _;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;

use crate::wire::{hmac_sha256, hmac_sha256_verify};

/// URL-safe base64 (no padding) of HMAC-SHA256(`key`, `message`).
pub fn sign_token(key: &[u8], message: &str) -> String {
    URL_SAFE_NO_PAD.encode(hmac_sha256(key, message.as_bytes()))
}

/// Whether `token` is [`sign_token`]`(key, message)`, compared in constant time. Tokens that are not
/// canonical unpadded URL-safe base64 of a 32-byte tag are rejected.
pub fn verify_token(key: &[u8], message: &str, token: &str) -> bool {
    match URL_SAFE_NO_PAD.decode(token) {
        Ok(tag) => hmac_sha256_verify(key, message.as_bytes(), &tag),
        Err(_) => false,
    }
}

#[cfg(test)]
mod tests {
    use super::{sign_token, verify_token};

    const KEY: &[u8] = b"server-token-key";
    const MSG: &str = "code/svc/fn/abc123?expires=1700000000";

    fn check(token: &str, key: &[u8], message: &str, expected: bool) {
        assert_eq!(
            verify_token(key, message, token),
            expected,
            "token {token:?} message {message:?}"
        );
    }

    /// Replaces the character at `idx` with a different character of the URL-safe alphabet.
    fn flip(token: &str, idx: usize) -> String {
        let mut chars: Vec<char> = token.chars().collect();
        chars[idx] = if chars[idx] == 'A' { 'B' } else { 'A' };
        chars.into_iter().collect()
    }

    #[test]
    fn round_trip_and_tampering() {
        let token = sign_token(KEY, MSG);
        assert_eq!(token.len(), 43, "32 bytes, unpadded");
        assert!(!token.contains(['+', '/', '=']), "{token}");
        check(&token, KEY, MSG, true);
        check(&flip(&token, 0), KEY, MSG, false);
        check(&flip(&token, 20), KEY, MSG, false);
        check(&flip(&token, 42), KEY, MSG, false);
        check(&token[..42], KEY, MSG, false);
        check(&format!("{token}="), KEY, MSG, false);
        check("", KEY, MSG, false);
        check(&token, b"other-key", MSG, false);
        check(&token, KEY, "code/svc/fn/abc123?expires=1700000001", false);
    }

    #[test]
    fn known_value() {
        // HMAC-SHA256 test vector from RFC 4231 case 2 ("Jefe"), re-encoded as URL-safe base64.
        let token = sign_token(b"Jefe", "what do ya want for nothing?");
        assert_eq!(token, "W9zBRr9gdU5qBCQmCJV1x1oAPwidJzmDnexYuWTsOEM");
    }
}
