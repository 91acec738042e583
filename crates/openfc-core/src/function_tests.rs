use std::borrow::Cow;

use super::*;

fn check(body: &str, ok: bool) {
    let result = parse_function_request(body.as_bytes()).and_then(|r| {
        let f = r.fields.with_defaults();
        f.validate()
    });
    assert_eq!(result.is_ok(), ok, "{body}: {result:?}");
}

#[test]
fn validation_table() {
    let base = r#""runtime":"python3.10","handler":"index.handler""#;
    check(&format!("{{{base}}}"), true);
    check(r#"{"handler":"index.handler"}"#, false);
    check(r#"{"runtime":"cobol","handler":"a.b"}"#, false);
    check(r#"{"runtime":"python3.10","handler":"nodot"}"#, false);
    check(r#"{"runtime":"custom","handler":"anything"}"#, true);
    check(r#"{"runtime":"php7.2","handler":"index.handler"}"#, true);
    check(r#"{"runtime":"php7.2","handler":"nodot"}"#, false);
    check(r#"{"runtime":"go1","handler":"main"}"#, true);
    check(r#"{"runtime":"go1","handler":"../main"}"#, false);
    check(r#"{"runtime":"custom-container"}"#, false);
    check(r#"{"runtime":"custom-container","customContainerConfig":{"image":"r/i:1"}}"#, true);
    for (field, value, ok) in [
        ("memorySize", "128", true),
        ("memorySize", "100", false),
        ("memorySize", "192", true),
        ("memorySize", "64", false),
        ("memorySize", "32832", false),
        ("timeout", "0", false),
        ("timeout", "86400", true),
        ("timeout", "86401", false),
        ("initializationTimeout", "301", false),
        ("instanceConcurrency", "0", false),
        ("instanceConcurrency", "200", true),
        ("InstanceConcurrency", "201", false),
        ("caPort", "0", false),
        ("CAPort", "8080", true),
        ("instanceType", "\"x9\"", false),
        ("instanceType", "\"c1\"", true),
        ("cpu", "0.35", true),
        ("cpu", "0.33", false),
        ("diskSize", "10240", true),
        ("diskSize", "1024", false),
        ("gpuMemorySize", "2048", true),
        ("gpuMemorySize", "1000", false),
        ("environmentVariables", r#"{"A_1":"x"}"#, true),
        ("environmentVariables", r#"{"1A":"x"}"#, false),
        ("environmentVariables", r#"{"FC_X":"x"}"#, false),
        ("environmentVariables", r#"{"A":1}"#, false),
        ("layers", r#"["abc#name#1"]"#, true),
        ("layers", r#"["nope"]"#, false),
        ("memorySize", "\"big\"", false),
    ] {
        check(&format!("{{{base},\"{field}\":{value}}}"), ok);
    }
    check(&format!(r#"{{{base},"instanceConcurrency":5,"instanceSoftConcurrency":6}}"#), false);
    check(&format!(r#"{{{base},"instanceConcurrency":5,"instanceSoftConcurrency":5}}"#), true);
    let big = format!(r#"{{"K":"{}"}}"#, "v".repeat(4096));
    check(&format!(r#"{{{base},"environmentVariables":{big}}}"#), false);
}

#[test]
fn code_is_borrowed_and_forms_are_exclusive() {
    let body = br#"{"Code":{"zipFile":"UEsFBg=="},"runtime":null}"#;
    let r = parse_function_request(body).unwrap();
    assert!(matches!(r.code, Some(CodeSource::Zip(Cow::Borrowed("UEsFBg==")))));
    assert_eq!(r.fields.runtime, None);
    let r = parse_function_request(br#"{"code":{"zipFile":"a\/b"}}"#).unwrap();
    assert_eq!(r.code, Some(CodeSource::Zip(Cow::Owned("a/b".into()))));
    let r = parse_function_request(br#"{"code":{"ossBucketName":"b","OSSObjectName":"o"}}"#).unwrap();
    assert_eq!(r.code, Some(CodeSource::Oss { bucket: "b".into(), object: "o".into() }));
    assert!(parse_function_request(br#"{"code":{"zipFile":"x","ossBucketName":"b"}}"#).is_err());
    assert!(parse_function_request(br#"{"code":{"ossBucketName":"b"}}"#).is_err());
    assert!(parse_function_request(br#"{"code":{"zipFile":5}}"#).is_err());
    assert!(parse_function_request(br#"{"code":"zip"}"#).is_err());
}

/// The message a function body is refused with (docs/fc-messages.md).
fn refusal(body: &str) -> String {
    parse_function_request(body.as_bytes())
        .and_then(|r| r.fields.with_defaults().validate())
        .expect_err(body)
        .to_string()
}

#[test]
fn refusals_are_worded_as_fc_words_them() {
    let base = r#""runtime":"python3.10","handler":"index.handler""#;
    let with = |field: &str, value: &str| refusal(&format!("{{{base},\"{field}\":{value}}}"));
    assert!(refusal(r#"{"runtime":"python4","handler":"a.b"}"#)
        .starts_with("Runtime is set to an invalid value (allowed: "));
    assert!(refusal(r#"{"runtime":"python4","handler":"a.b"}"#).ends_with(", actual: 'python4')"));
    assert_eq!(refusal(r#"{"handler":"a.b"}"#), "Runtime is required but not provided.");
    assert_eq!(
        refusal(r#"{"runtime":"python3.10","handler":"nodot"}"#),
        "Handler is set to an invalid value (allowed: [file].[function], actual: 'nodot')"
    );
    assert_eq!(
        with("memorySize", "100"),
        "MemorySize is set to an invalid value (allowed: a multiple of 64 from 128 to 32768, actual: '100')"
    );
    assert_eq!(with("timeout", "0"), "Timeout is set to an invalid value (allowed: 1 to 86400, actual: '0')");
    assert_eq!(
        with("instanceConcurrency", "201"),
        "InstanceConcurrency is set to an invalid value (allowed: 1 to 200, actual: '201')"
    );
    assert_eq!(
        with("environmentVariables", r#"{"1A":"x"}"#),
        "EnvironmentVariables key doesn't match expected format (allowed: '^[a-zA-Z][a-zA-Z0-9_]*$', actual: '1A')"
    );
    assert!(with("layers", r#"["nope"]"#).starts_with("Layers is set to an invalid value (allowed: acs:fc:"));
    assert_eq!(with("diskSize", "1024"), "DiskSize is set to an invalid value (allowed: 512 | 10240, actual: '1024')");
    assert!(refusal("{not json").starts_with("Bad data in request body. "));
}
