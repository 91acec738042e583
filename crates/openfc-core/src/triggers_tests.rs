use super::*;

#[test]
fn cron_expressions() {
    for (expr, ok) in [
        ("0 0 4 * * *", true),
        ("0 0/5 * * * *", true),
        ("0 */10 * * * *", true),
        ("0 0 12 ? * MON-FRI", true),
        ("CRON_TZ=Asia/Shanghai 0 0 8 * * *", true),
        ("@every 1m", true),
        ("@every 1h30m", true),
        ("@every 30s", false),
        ("@every 5", false),
        ("@every", false),
        // Found by the cron fuzz target: overflowed the seconds count (a panic) before.
        ("@every 111111111111111111h", false),
        ("@every 99999999999999999999s", false),
        ("0 0 4 * *", false),
        ("0 61 4 * * *", false),
        ("CRON_TZ= 0 0 8 * * *", false),
        ("CRON_TZ=Asia/Shanghai", false),
        // Accepted only if it will fire: DST zones need a zone database openfc does not carry.
        ("CRON_TZ=America/New_York 0 0 8 * * *", false),
        ("CRON_TZ=Etc/GMT-8 0 0 8 * * *", true),
        ("nonsense", false),
        // Accepted only if it will fire: days that never come (a search to croner's limit at every pass before).
        ("0 0 0 30 2 *", false),
        ("59 59 23 31 4 ?", false),
        ("0 0 0 29 2 *", true),
        ("0 0 0 ? 2 5#5", true),
        ("@every 14111111111111h", false),
    ] {
        assert_eq!(validate_cron(expr).is_ok(), ok, "{expr}: {:?}", validate_cron(expr));
    }
    let never = validate_cron("0 0 0 30 2 *").unwrap_err().to_string();
    assert!(never.contains("never fires") && never.contains("0 0 0 30 2 *"), "{never}");
}

fn check(kind: &str, cfg: &str, arn: Option<&str>, ok: bool) {
    let cfg = config_object(Value::String(cfg.into())).unwrap();
    let r = validate_config(kind, &cfg, arn);
    assert_eq!(r.is_ok(), ok, "{kind} {cfg:?}: {r:?}");
}

#[test]
fn configs() {
    check("http", r#"{"authType":"anonymous","methods":["GET","POST"]}"#, None, true);
    check("http", r#"{"AuthType":"function","Methods":["GET"]}"#, None, true);
    check("http", r#"{"authType":"open","methods":["GET"]}"#, None, false);
    check("http", r#"{"authType":"anonymous","methods":[]}"#, None, false);
    check("http", r#"{"authType":"anonymous","methods":["FETCH"]}"#, None, false);
    check("timer", r#"{"cronExpression":"@every 5m","enable":true,"payload":"x"}"#, None, true);
    check("timer", r#"{"cronExpression":"@every 5m","enable":"yes"}"#, None, false);
    check("timer", r#"{"enable":true}"#, None, false);
    check("oss", r#"{"events":["oss:ObjectCreated:*"],"filter":{"key":{"prefix":"a"}}}"#, Some("acs:oss:cn-hangzhou:1:b"), true);
    check("oss", r#"{"events":["oss:ObjectCreated:*"]}"#, None, false);
    check("oss", r#"{"events":[]}"#, Some("acs:oss:cn-hangzhou:1:b"), false);
    check("log", r#"{"sourceConfig":{},"jobConfig":{},"logConfig":{}}"#, Some("acs:log:r:1:project/p"), true);
    check("log", r#"{"sourceConfig":{}}"#, Some("acs:log:r:1:project/p"), false);
    check("mns_topic", r#"{"notifyContentFormat":"XML"}"#, Some("acs:mns:r:1:/topics/t"), false);
    check("tablestore", r#"{}"#, Some("acs:ots:r:1:instance/i/table/t"), true);
    check("cdn_events", r#"{"eventName":"LogFileCreated","eventVersion":"1.0.0"}"#, Some("acs:cdn:*:1"), true);
    check("eventbridge", r#"{"triggerEnable":true,"eventSourceConfig":{}}"#, None, true);
    check("rds", r#"{"subscriptionObjects":["db.t"],"retry":3}"#, Some("acs:rds:r:1:dbinstance/x"), true);
    check("kafka", r#"{}"#, None, false);
    assert!(config_object(Value::String("[1]".into())).is_err());
    assert!(config_object(Value::from(3)).is_err());
}
