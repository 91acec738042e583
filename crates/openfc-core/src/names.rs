//! Validated resource names. Past the edge, code takes these newtypes rather than `&str`.

use crate::error::CoreError;
use std::fmt;

/// FC name rule: `[A-Za-z_][A-Za-z0-9_-]*` within a length range.
fn check_name(field: &str, value: &str, max: usize) -> Result<(), CoreError> {
    let ok_len = !value.is_empty() && value.len() <= max;
    let mut chars = value.chars();
    let ok_first = chars.next().is_some_and(|c| c.is_ascii_alphabetic() || c == '_');
    let ok_rest = chars.all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-');
    if ok_len && ok_first && ok_rest { Ok(()) } else { Err(CoreError::bad_format(field, &name_pattern(max), value)) }
}

/// The name rule as the pattern FC quotes in its messages, the length folded in: `^[_a-zA-Z][-_a-zA-Z0-9]{0,127}$`.
pub(crate) fn name_pattern(max: usize) -> String {
    format!("^[_a-zA-Z][-_a-zA-Z0-9]{{0,{}}}$", max.saturating_sub(1))
}

macro_rules! name_type {
    ($ty:ident, $kind:literal, $max:literal) => {
        #[derive(Debug, Clone, PartialEq, Eq, PartialOrd, Ord, Hash)]
        pub struct $ty(String);

        impl $ty {
            pub const MAX_LEN: usize = $max;
            pub fn parse(value: &str) -> Result<Self, CoreError> {
                check_name($kind, value, $max)?;
                Ok(Self(value.to_owned()))
            }
            pub fn as_str(&self) -> &str {
                &self.0
            }
        }

        impl fmt::Display for $ty {
            fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str(&self.0)
            }
        }
    };
}

name_type!(ServiceName, "ServiceName", 128);
name_type!(FunctionName, "FunctionName", 64);

/// What a request addresses: `LATEST`, a version id or an alias name.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Qualifier {
    Latest,
    Version(u64),
    Alias(String),
}

impl Qualifier {
    pub fn parse(value: &str) -> Result<Self, CoreError> {
        if value.is_empty() || value == "LATEST" {
            return Ok(Qualifier::Latest);
        }
        if value.bytes().all(|b| b.is_ascii_digit()) {
            return value.parse().map(Qualifier::Version).map_err(|_| bad_qualifier(value));
        }
        check_name("Qualifier", value, 128).map_err(|_| bad_qualifier(value))?;
        Ok(Qualifier::Alias(value.to_owned()))
    }
}

fn bad_qualifier(value: &str) -> CoreError {
    CoreError::invalid_value(
        "Qualifier",
        format!("LATEST, a version id or an alias name matching '{}'", name_pattern(128)),
        value,
    )
}

impl fmt::Display for Qualifier {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Qualifier::Latest => f.write_str("LATEST"),
            Qualifier::Version(v) => write!(f, "{v}"),
            Qualifier::Alias(a) => f.write_str(a),
        }
    }
}

/// A published version's id. Clients send it as text (`"3"`) or a number; it is stored and answered as text,
/// as FC does (`versionId`, the keys of `additionalVersionWeight`).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct VersionId(u64);

impl VersionId {
    pub fn new(id: u64) -> Self {
        VersionId(id)
    }

    pub fn get(self) -> u64 {
        self.0
    }

    /// `what` names the field in the error (`VersionId`, `AdditionalVersionWeight key`).
    pub fn parse(text: &str, what: &str) -> Result<Self, CoreError> {
        text.parse().map(VersionId).map_err(|_| CoreError::invalid_value(what, "a version id", text))
    }
}

impl fmt::Display for VersionId {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}", self.0)
    }
}

impl serde::Serialize for VersionId {
    fn serialize<S: serde::Serializer>(&self, s: S) -> Result<S::Ok, S::Error> {
        s.collect_str(self)
    }
}

impl<'de> serde::Deserialize<'de> for VersionId {
    fn deserialize<D: serde::Deserializer<'de>>(d: D) -> Result<Self, D::Error> {
        struct Visitor;
        impl serde::de::Visitor<'_> for Visitor {
            type Value = VersionId;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a version number, as text or a number")
            }
            fn visit_u64<E: serde::de::Error>(self, v: u64) -> Result<VersionId, E> {
                Ok(VersionId(v))
            }
            fn visit_i64<E: serde::de::Error>(self, v: i64) -> Result<VersionId, E> {
                u64::try_from(v).map(VersionId).map_err(|_| E::custom(format!("'{v}' is not a version number")))
            }
            fn visit_str<E: serde::de::Error>(self, v: &str) -> Result<VersionId, E> {
                v.parse().map(VersionId).map_err(|_| E::custom(format!("'{v}' is not a version number")))
            }
        }
        d.deserialize_any(Visitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn version_ids_read_text_or_numbers_and_write_text() {
        let v: VersionId = serde_json::from_str("\"12\"").unwrap();
        assert_eq!(v, serde_json::from_str("12").unwrap());
        assert_eq!(serde_json::to_string(&v).unwrap(), "\"12\"");
        let weights: std::collections::BTreeMap<VersionId, f64> = serde_json::from_str(r#"{"3": 0.5}"#).unwrap();
        assert_eq!(serde_json::to_string(&weights).unwrap(), r#"{"3":0.5}"#);
        assert!(serde_json::from_str::<VersionId>("\"x\"").is_err());
        assert!(VersionId::parse("-1", "VersionId").is_err());
    }

    fn check(value: &str, service_ok: bool, function_ok: bool) {
        assert_eq!(ServiceName::parse(value).is_ok(), service_ok, "service {value:?}");
        assert_eq!(FunctionName::parse(value).is_ok(), function_ok, "function {value:?}");
    }

    #[test]
    fn name_rules() {
        check("svc", true, true);
        check("_a-b_9", true, true);
        check("A", true, true);
        check("", false, false);
        check("9abc", false, false);
        check("-abc", false, false);
        check("a.b", false, false);
        check("a b", false, false);
        check("é", false, false);
        check(&"a".repeat(64), true, true);
        check(&"a".repeat(65), true, false);
        check(&"a".repeat(128), true, false);
        check(&"a".repeat(129), false, false);
    }

    #[test]
    fn name_errors_are_worded_as_fc_words_them() {
        let msg = |r: Result<ServiceName, CoreError>| r.unwrap_err().to_string();
        assert_eq!(
            msg(ServiceName::parse("1svc")),
            "ServiceName doesn't match expected format (allowed: '^[_a-zA-Z][-_a-zA-Z0-9]{0,127}$', actual: '1svc')"
        );
        assert_eq!(
            FunctionName::parse("a b").unwrap_err().to_string(),
            "FunctionName doesn't match expected format (allowed: '^[_a-zA-Z][-_a-zA-Z0-9]{0,63}$', actual: 'a b')"
        );
        assert!(Qualifier::parse("bad!").unwrap_err().to_string().starts_with("Qualifier is set to an invalid value"));
        assert_eq!(
            VersionId::parse("x", "VersionId").unwrap_err().to_string(),
            "VersionId is set to an invalid value (allowed: a version id, actual: 'x')"
        );
    }

    #[test]
    fn qualifiers() {
        assert_eq!(Qualifier::parse("LATEST").unwrap(), Qualifier::Latest);
        assert_eq!(Qualifier::parse("").unwrap(), Qualifier::Latest);
        assert_eq!(Qualifier::parse("12").unwrap(), Qualifier::Version(12));
        assert_eq!(Qualifier::parse("prod").unwrap(), Qualifier::Alias("prod".into()));
        assert!(Qualifier::parse("a.b").is_err());
        assert!(Qualifier::parse("99999999999999999999999").is_err());
    }
}
