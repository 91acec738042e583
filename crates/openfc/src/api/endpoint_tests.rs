use super::*;

fn check(method: &str, url: &str, expected: Option<(&str, &str)>) {
    let (path, query) = url.split_once('?').map_or((url, None), |(p, q)| (p, Some(q)));
    let got = parse(method, path, &Query::parse(query));
    match (got, expected) {
        (Ok((_, e)), Some((action, debug))) => {
            assert_eq!(e.action(), action, "{method} {url}");
            assert!(format!("{e:?}").contains(debug), "{method} {url}: {e:?} lacks {debug}");
        }
        (Err(ParseError::NotSupported), None) => {}
        (got, want) => panic!("{method} {url}: got {got:?}, want {want:?}"),
    }
}

#[test]
fn endpoint_table() {
    for v in ["2016-08-15", "2021-04-06"] {
        check("GET", &format!("/{v}/account-settings"), Some(("GetAccountSettings", "")));
        check("GET", &format!("/{v}/accountConfigs"), Some(("GetAccountConfigs", "")));
        check("GET", &format!("/{v}/services/s/tempCodeBucketToken?functionName=f"), Some(("GetTempCodeBucketToken", "")));
        check("GET", &format!("/{v}/tempBucketToken"), Some(("GetTempCodeBucketToken", "")));
        check("POST", &format!("/{v}/services"), Some(("CreateService", "")));
        check("GET", &format!("/{v}/services?limit=2"), Some(("ListServices", "")));
        check("GET", &format!("/{v}/services/s"), Some(("GetService", "Latest")));
        check("GET", &format!("/{v}/services/s.LATEST"), Some(("GetService", "Latest")));
        check("GET", &format!("/{v}/services/s.3"), Some(("GetService", "Version(3)")));
        check("GET", &format!("/{v}/services/s?qualifier=prod"), Some(("GetService", "Alias(\"prod\")")));
        check("GET", &format!("/{v}/services/s.1?qualifier=prod"), Some(("GetService", "Version(1)")));
        check("PUT", &format!("/{v}/services/s"), Some(("UpdateService", "")));
        check("DELETE", &format!("/{v}/services/s"), Some(("DeleteService", "")));
        check("POST", &format!("/{v}/services/s/functions"), Some(("CreateFunction", "")));
        check("GET", &format!("/{v}/services/s.prod/functions"), Some(("ListFunctions", "Alias")));
        check("GET", &format!("/{v}/services/s/functions/f"), Some(("GetFunction", "\"f\"")));
        check("GET", &format!("/{v}/services/s/functions/f/"), Some(("GetFunction", "\"f\"")));
        check("PUT", &format!("/{v}/services/s/functions/f"), Some(("UpdateFunction", "")));
        check("DELETE", &format!("/{v}/services/s/functions/f"), Some(("DeleteFunction", "")));
        check("GET", &format!("/{v}/services/s/functions/f/code?x-fc-trace-id=t"), Some(("GetFunctionCode", "")));
        check("POST", &format!("/{v}/services/s/functions/f/invocations"), Some(("InvokeFunction", "Latest")));
        check("POST", &format!("/{v}/services/s.prod/functions/f/invocations"), Some(("InvokeFunction", "prod")));
        check("POST", &format!("/{v}/services/s/functions/f/invocations?qualifier=2"), Some(("InvokeFunction", "Version(2)")));
        check("POST", &format!("/{v}/services/s/versions"), Some(("PublishServiceVersion", "")));
        check("GET", &format!("/{v}/services/s/versions?direction=FORWARD"), Some(("ListServiceVersions", "")));
        check("DELETE", &format!("/{v}/services/s/versions/3"), Some(("DeleteServiceVersion", "\"3\"")));
        check("POST", &format!("/{v}/services/s/aliases"), Some(("CreateAlias", "")));
        check("GET", &format!("/{v}/services/s/aliases"), Some(("ListAliases", "")));
        check("GET", &format!("/{v}/services/s/aliases/prod"), Some(("GetAlias", "prod")));
        check("PUT", &format!("/{v}/services/s/aliases/prod"), Some(("UpdateAlias", "prod")));
        check("DELETE", &format!("/{v}/services/s/aliases/prod"), Some(("DeleteAlias", "prod")));
        check("POST", &format!("/{v}/services/s/functions/f/triggers"), Some(("CreateTrigger", "")));
        check("GET", &format!("/{v}/services/s/functions/f/triggers"), Some(("ListTriggers", "")));
        check("GET", &format!("/{v}/services/s/functions/f/triggers/t"), Some(("GetTrigger", "\"t\"")));
        check("PUT", &format!("/{v}/services/s/functions/f/triggers/t"), Some(("UpdateTrigger", "")));
        check("DELETE", &format!("/{v}/services/s/functions/f/triggers/t"), Some(("DeleteTrigger", "")));
        check("POST", &format!("/{v}/custom-domains"), Some(("CreateCustomDomain", "")));
        check("GET", &format!("/{v}/custom-domains"), Some(("ListCustomDomains", "")));
        check("GET", &format!("/{v}/custom-domains/a.com"), Some(("GetCustomDomain", "a.com")));
        check("PUT", &format!("/{v}/custom-domains/a.com"), Some(("UpdateCustomDomain", "")));
        check("DELETE", &format!("/{v}/custom-domains/a.com"), Some(("DeleteCustomDomain", "")));
        check("PUT", &format!("/{v}/services/s.prod/functions/f/provision-config"), Some(("PutProvisionConfig", "prod")));
        check("GET", &format!("/{v}/services/s/functions/f/provision-config?qualifier=prod"), Some(("GetProvisionConfig", "prod")));
        check("GET", &format!("/{v}/services/s.prod/functions/f/instances?limit=5"), Some(("ListInstances", "prod")));
        check("GET", &format!("/{v}/provision-configs?serviceName=s"), Some(("ListProvisionConfigs", "")));
        check("PUT", &format!("/{v}/services/s.LATEST/functions/f/on-demand-config"), Some(("PutFunctionOnDemandConfig", "")));
        check("GET", &format!("/{v}/services/s/functions/f/on-demand-config"), Some(("GetFunctionOnDemandConfig", "")));
        check("DELETE", &format!("/{v}/services/s/functions/f/on-demand-config"), Some(("DeleteFunctionOnDemandConfig", "")));
        check("GET", &format!("/{v}/on-demand-configs"), Some(("ListOnDemandConfigs", "")));
        check("PUT", &format!("/{v}/services/s/functions/f/async-invoke-config"), Some(("PutFunctionAsyncInvokeConfig", "")));
        check("GET", &format!("/{v}/services/s.1/functions/f/async-invoke-config"), Some(("GetFunctionAsyncInvokeConfig", "Version(1)")));
        check("DELETE", &format!("/{v}/services/s/functions/f/async-invoke-config"), Some(("DeleteFunctionAsyncInvokeConfig", "")));
        check("GET", &format!("/{v}/services/s/functions/f/async-invoke-configs"), Some(("ListFunctionAsyncInvokeConfigs", "")));
        check("GET", &format!("/{v}/services/s/functions/f/logs?limit=5"), Some(("GetFunctionLogs", "")));
        check("POST", &format!("/{v}/layers/l/versions"), Some(("CreateLayerVersion", "")));
        check("GET", &format!("/{v}/layers?public=True"), Some(("ListLayers", "")));
        check("GET", &format!("/{v}/layers/l/versions"), Some(("ListLayerVersions", "")));
        check("GET", &format!("/{v}/layers/l/versions/2"), Some(("GetLayerVersion", "\"2\"")));
        check("DELETE", &format!("/{v}/layers/l/versions/2"), Some(("DeleteLayerVersion", "")));
        check("GET", &format!("/{v}/layerarn/acs%3Afc%3Ar%3A1%3Alayers%2Fl%2Fversions%2F2"), Some(("GetLayerVersionByArn", "layers/l/versions/2")));
        check("PUT", &format!("/{v}/layers/l/acl?public=true"), Some(("PutLayerACL", "")));
        check("POST", &format!("/{v}/tag"), Some(("TagResource", "")));
        check("DELETE", &format!("/{v}/tag"), Some(("UntagResource", "")));
        check("PUT", &format!("/{v}/tag"), Some(("UntagResource", "")));
        check("GET", &format!("/{v}/tag?resourceArn=x"), Some(("GetResourceTags", "")));
        check("GET", &format!("/{v}/tags"), Some(("ListTaggedResources", "")));
        check("GET", &format!("/{v}/reservedCapacities?limit=5"), Some(("ListReservedCapacities", "")));
        check("GET", &format!("/{v}/reserved-capacities?nextToken=x"), Some(("ListReservedCapacities", "")));
        check("POST", &format!("/{v}/reserved-capacities"), None);
        check("POST", &format!("/{v}/services/s/bindings"), Some(("CreateVpcBinding", "\"s\"")));
        check("GET", &format!("/{v}/services/s/bindings"), Some(("ListVpcBindings", "")));
        check("DELETE", &format!("/{v}/services/s/bindings/vpc-1"), Some(("DeleteVpcBinding", "vpc-1")));
        check("PUT", &format!("/{v}/services/s/bindings/vpc-1"), None);
        check("POST", &format!("/{v}/services/s/functions/f/event-sources"), Some(("RegisterEventSource", "Latest")));
        check("POST", &format!("/{v}/services/s.prod/functions/f/event-sources"), Some(("RegisterEventSource", "prod")));
        check("GET", &format!("/{v}/services/s/functions/f/event-sources?qualifier=2"), Some(("ListEventSources", "Version(2)")));
        check(
            "DELETE",
            &format!("/{v}/services/s/functions/f/event-sources/acs%3Amns%3Acn-hangzhou%3A1%3A%2Ftopics%2Ft?qualifier=prod"),
            Some(("DeregisterEventSource", "acs:mns:cn-hangzhou:1:/topics/t")),
        );
        check(
            "DELETE",
            &format!("/{v}/services/s/functions/f/event-sources/acs:mns:cn-hangzhou:1:/topics/t"),
            Some(("DeregisterEventSource", "acs:mns:cn-hangzhou:1:/topics/t")),
        );
        check("DELETE", &format!("/{v}/services/s/functions/f/event-sources"), None);
        check("PUT", &format!("/{v}/services/s/functions/f/bogus-config"), None);
        check("PATCH", &format!("/{v}/services/s"), None);
        check("GET", &format!("/{v}/nothing"), None);
        check("GET", &format!("/{v}/services/s/functions/f/unknown"), None);
    }
    check("GET", "/2015-01-01/services", None);
    check("GET", "/services", None);
}

#[test]
fn invalid_names_and_qualified_mutations_are_errors() {
    let q = Query::parse(None);
    assert!(matches!(parse("GET", "/2016-08-15/services/9bad", &q), Err(ParseError::Invalid(_))));
    assert!(matches!(parse("PUT", "/2016-08-15/services/s.1", &q), Err(ParseError::Invalid(_))));
    let q = Query::parse(Some("qualifier=1"));
    assert!(matches!(parse("POST", "/2021-04-06/services/s/functions", &q), Err(ParseError::Invalid(_))));
}

#[test]
fn queries_decode() {
    let q = Query::parse(Some("prefix=a+b%2Bc&flag&x=1&x=2"));
    assert_eq!(q.get("prefix"), Some("a b+c"));
    assert_eq!(q.get("flag"), Some(""));
    assert_eq!(q.get("x"), Some("1"));
    assert_eq!(q.get("none"), None);
}

#[test]
fn resources() {
    let (_, e) = parse("GET", "/2016-08-15/services/s/functions/f/code", &Query::parse(None)).unwrap();
    assert_eq!(e.resource("cn-hangzhou", "123"), "acs:fc:cn-hangzhou:123:services/s/functions/f");
}
