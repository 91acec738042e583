//! Lenient request JSON, as FC's Go backend reads it: keys match case-insensitively (`InstanceConcurrency`,
//! `CAPort`), and `null` means absent. Each operation declares the shape of its body; normalisation renames
//! known keys to their canonical spelling and drops nulls, leaving map keys (environment variables, tags) alone.

use serde::de::DeserializeOwned;
use serde_json::{Map, Value};

use crate::error::CoreError;

/// The shape of a JSON value, for normalisation only (types are checked by serde afterwards).
pub enum Shape {
    Any,
    Object(&'static [Field]),
    ArrayOf(&'static Shape),
    /// A map with user-chosen keys, which are kept verbatim.
    MapOf(&'static Shape),
}

pub struct Field(pub &'static str, pub &'static Shape);

pub fn normalize(value: Value, shape: &Shape) -> Value {
    match (shape, value) {
        (Shape::Object(fields), Value::Object(map)) => Value::Object(normalize_object(map, fields)),
        (Shape::ArrayOf(item), Value::Array(items)) => {
            Value::Array(items.into_iter().map(|v| normalize(v, item)).collect())
        }
        (Shape::MapOf(item), Value::Object(map)) => Value::Object(
            map.into_iter()
                .filter(|(_, v)| !v.is_null())
                .map(|(k, v)| (k, normalize(v, item)))
                .collect(),
        ),
        (_, value) => value,
    }
}

fn normalize_object(map: Map<String, Value>, fields: &'static [Field]) -> Map<String, Value> {
    let mut out = Map::new();
    // Exact spellings first, so `{"caPort":1,"CAPort":2}` resolves to the canonical one.
    let (exact, other): (Vec<_>, Vec<_>) = map
        .into_iter()
        .filter(|(_, v)| !v.is_null())
        .partition(|(k, _)| fields.iter().any(|f| f.0 == k));
    for (key, value) in exact.into_iter().chain(other) {
        match fields.iter().find(|f| f.0.eq_ignore_ascii_case(&key)) {
            Some(Field(name, shape)) => {
                if !out.contains_key(*name) {
                    out.insert((*name).to_owned(), normalize(value, shape));
                }
            }
            None => {
                out.insert(key, value);
            }
        }
    }
    out
}

/// Parses a request body of the given shape into `T`. An empty body reads as `{}`.
pub fn parse_body<T: DeserializeOwned>(body: &[u8], shape: &Shape) -> Result<T, CoreError> {
    let value: Value = if body.iter().all(u8::is_ascii_whitespace) {
        Value::Object(Map::new())
    } else {
        serde_json::from_slice(body)
            .map_err(|e| CoreError::bad_body(format_args!("It is not valid JSON: {e}")))?
    };
    from_value(value, shape)
}

pub fn from_value<T: DeserializeOwned>(value: Value, shape: &Shape) -> Result<T, CoreError> {
    if !value.is_object() {
        return Err(CoreError::bad_body("It must be a JSON object."));
    }
    serde_json::from_value(normalize(value, shape))
        .map_err(CoreError::bad_body)
}

#[cfg(test)]
mod tests {
    use super::*;
    use serde_json::json;

    static INNER: Shape = Shape::Object(&[Field("mountDir", &Shape::Any)]);
    static SHAPE: Shape = Shape::Object(&[
        Field("caPort", &Shape::Any),
        Field("environmentVariables", &Shape::MapOf(&Shape::Any)),
        Field("mountPoints", &Shape::ArrayOf(&INNER)),
    ]);

    fn check(input: Value, expected: Value) {
        assert_eq!(normalize(input, &SHAPE), expected);
    }

    #[test]
    fn keys_match_case_insensitively_and_nulls_vanish() {
        check(json!({"CAPort": 9000}), json!({"caPort": 9000}));
        check(json!({"caport": 1, "caPort": 2}), json!({"caPort": 2}));
        check(json!({"caPort": null, "other": 1}), json!({"other": 1}));
        check(
            json!({"EnvironmentVariables": {"Key": "v", "n": null}}),
            json!({"environmentVariables": {"Key": "v"}}),
        );
        check(json!({"MOUNTPOINTS": [{"MountDir": "/a"}]}), json!({"mountPoints": [{"mountDir": "/a"}]}));
    }

    #[test]
    fn bodies() {
        let v: Value = parse_body(b"  ", &SHAPE).unwrap();
        assert_eq!(v, json!({}));
        assert!(parse_body::<Value>(b"[1]", &SHAPE).is_err());
        assert!(parse_body::<Value>(b"{", &SHAPE).is_err());
    }
}
