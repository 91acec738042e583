//! The CreateFunction/UpdateFunction body: its lenient shape and the split of `code` from the rest.

use std::borrow::Cow;
use std::collections::BTreeMap;

use serde_json::value::RawValue;
use serde_json::{Map, Value};

use super::FunctionFields;
use crate::error::{CoreError, CoreResult};
use crate::wire::lenient::{Field, Shape, from_value};

static STRINGS: Shape = Shape::ArrayOf(&Shape::Any);
static CONTAINER: Shape = Shape::Object(&[
    Field("image", &Shape::Any),
    Field("command", &Shape::Any),
    Field("args", &Shape::Any),
    Field("accelerationType", &Shape::Any),
    Field("instanceID", &Shape::Any),
    Field("webServerMode", &Shape::Any),
]);
static CUSTOM_RUNTIME: Shape = Shape::Object(&[Field("command", &STRINGS), Field("args", &STRINGS)]);
static HOOK: Shape = Shape::Object(&[Field("handler", &Shape::Any), Field("timeout", &Shape::Any)]);
static LIFECYCLE: Shape = Shape::Object(&[Field("preFreeze", &HOOK), Field("preStop", &HOOK)]);
static DNS_OPTION: Shape = Shape::Object(&[Field("name", &Shape::Any), Field("value", &Shape::Any)]);
static DNS: Shape = Shape::Object(&[
    Field("nameServers", &STRINGS),
    Field("searches", &STRINGS),
    Field("dnsOptions", &Shape::ArrayOf(&DNS_OPTION)),
]);
static HEALTH: Shape = Shape::Object(&[
    Field("httpGetUrl", &Shape::Any),
    Field("initialDelaySeconds", &Shape::Any),
    Field("periodSeconds", &Shape::Any),
    Field("timeoutSeconds", &Shape::Any),
    Field("failureThreshold", &Shape::Any),
    Field("successThreshold", &Shape::Any),
]);

/// CreateFunction / UpdateFunction body, without `code` (split off before normalisation).
pub static FUNCTION_SHAPE: Shape = Shape::Object(&[
    Field("functionName", &Shape::Any),
    Field("runtime", &Shape::Any),
    Field("handler", &Shape::Any),
    Field("customContainerConfig", &CONTAINER),
    Field("customRuntimeConfig", &CUSTOM_RUNTIME),
    Field("caPort", &Shape::Any),
    Field("description", &Shape::Any),
    Field("memorySize", &Shape::Any),
    Field("timeout", &Shape::Any),
    Field("initializer", &Shape::Any),
    Field("initializationTimeout", &Shape::Any),
    Field("environmentVariables", &Shape::MapOf(&Shape::Any)),
    Field("instanceConcurrency", &Shape::Any),
    Field("instanceSoftConcurrency", &Shape::Any),
    Field("instanceType", &Shape::Any),
    Field("instanceLifecycleConfig", &LIFECYCLE),
    Field("layers", &STRINGS),
    Field("customDNS", &DNS),
    Field("customHealthCheckConfig", &HEALTH),
    Field("cpu", &Shape::Any),
    Field("diskSize", &Shape::Any),
    Field("gpuMemorySize", &Shape::Any),
]);

/// Where a request's code package comes from.
#[derive(Debug, PartialEq, Eq)]
pub enum CodeSource<'a> {
    /// Base64 text of the zip, borrowed from the request body when it needed no unescaping.
    Zip(Cow<'a, str>),
    Oss { bucket: String, object: String },
}

#[derive(Debug)]
pub struct FunctionRequest<'a> {
    pub fields: FunctionFields,
    pub code: Option<CodeSource<'a>>,
}

/// Splits a CreateFunction/UpdateFunction body into its fields and its code source.
pub fn parse_function_request(body: &[u8]) -> CoreResult<FunctionRequest<'_>> {
    let (rest, code) = split_code(body)?;
    let fields = from_value(rest, &FUNCTION_SHAPE)?;
    Ok(FunctionRequest { fields, code })
}

/// Splits a body with a `code` member (any case) into the rest, as JSON, and the code source.
pub fn split_code(body: &[u8]) -> CoreResult<(Value, Option<CodeSource<'_>>)> {
    let top: BTreeMap<&str, &RawValue> = if body.iter().all(u8::is_ascii_whitespace) {
        BTreeMap::new()
    } else {
        serde_json::from_slice(body)
            .map_err(|e| CoreError::bad_body(format_args!("It is not a valid JSON object: {e}")))?
    };
    let mut rest = Map::new();
    let mut code = None;
    for (key, raw) in top {
        if key.eq_ignore_ascii_case("code") {
            code = parse_code(raw)?;
        } else {
            let value: Value = serde_json::from_str(raw.get())
                .map_err(|e| CoreError::bad_body(format_args!("{key}: {e}")))?;
            rest.insert(key.to_owned(), value);
        }
    }
    Ok((Value::Object(rest), code))
}

const CODE: &str = "Code";
const CODE_FORMS: &str = "an object with zipFile, or with ossBucketName and ossObjectName";

fn parse_code(raw: &RawValue) -> CoreResult<Option<CodeSource<'_>>> {
    if raw.get() == "null" {
        return Ok(None);
    }
    let parts: BTreeMap<&str, &RawValue> = serde_json::from_str(raw.get())
        .map_err(|_| CoreError::invalid_value(CODE, CODE_FORMS, raw.get().chars().take(64).collect::<String>()))?;
    let mut zip = None;
    let (mut bucket, mut object) = (None, None);
    for (key, value) in parts {
        let text = json_str(value, key)?;
        match key.to_ascii_lowercase().as_str() {
            "zipfile" => zip = text,
            "ossbucketname" => bucket = text.map(Cow::into_owned),
            "ossobjectname" => object = text.map(Cow::into_owned),
            _ => {}
        }
    }
    match (zip, bucket, object) {
        (Some(z), None, None) => Ok(Some(CodeSource::Zip(z))),
        (None, Some(bucket), Some(object)) => Ok(Some(CodeSource::Oss { bucket, object })),
        (None, None, None) => Ok(None),
        (Some(_), _, _) => Err(CoreError::invalid_value(CODE, CODE_FORMS, "zipFile and an OSS object")),
        (None, bucket, object) => Err(CoreError::invalid_value(
            CODE,
            CODE_FORMS,
            format!("ossBucketName '{}', ossObjectName '{}'", bucket.unwrap_or_default(), object.unwrap_or_default()),
        )),
    }
}

/// A JSON string value, borrowed when it holds no escapes; `null` reads as absent.
fn json_str<'a>(raw: &'a RawValue, key: &str) -> CoreResult<Option<Cow<'a, str>>> {
    let text = raw.get();
    if text == "null" {
        return Ok(None);
    }
    let bad = || CoreError::invalid_value(&format!("Code.{}", crate::error::pascal(key)), "a string", text);
    let inner = text.strip_prefix('"').and_then(|t| t.strip_suffix('"')).ok_or_else(bad)?;
    if !inner.contains('\\') {
        return Ok(Some(Cow::Borrowed(inner)));
    }
    serde_json::from_str::<String>(text).map(|s| Some(Cow::Owned(s))).map_err(|_| bad())
}
