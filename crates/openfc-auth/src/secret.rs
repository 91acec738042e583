//! The secret half of an access key pair, kept out of logs.

use std::fmt;

/// A secret access key (`AccessKeySecret`).
///
/// `Debug` prints `SecretKey(***)` and there is deliberately no `Display`, so the secret cannot end up in a
/// log line or error message by accident; call [`SecretKey::expose`] where the raw value is really needed.
#[derive(Clone)]
pub struct SecretKey(String);

impl SecretKey {
    /// Wraps a secret access key.
    pub fn new(secret: String) -> Self {
        Self(secret)
    }

    /// The raw secret, for computing signatures.
    pub fn expose(&self) -> &str {
        &self.0
    }

    pub(crate) fn bytes(&self) -> &[u8] {
        self.0.as_bytes()
    }
}

impl fmt::Debug for SecretKey {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str("SecretKey(***)")
    }
}

#[cfg(test)]
mod tests {
    use super::SecretKey;

    #[test]
    fn debug_is_redacted_and_expose_returns_the_secret() {
        let key = SecretKey::new("hunter2-very-secret".to_string());
        let debug = format!("{key:?} {key:#?}");
        assert!(!debug.contains("hunter2"), "{debug}");
        assert_eq!(format!("{key:?}"), "SecretKey(***)");
        assert_eq!(key.expose(), "hunter2-very-secret");
        assert_eq!(key.clone().expose(), key.expose());
    }
}
