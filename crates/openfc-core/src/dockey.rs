//! Every stored document's kind and key, built in one place. The layouts are persisted: changing one orphans
//! what is stored (and `openfc-meta`'s statement that deletes a function's configs matches them too).

use std::fmt::Display;

/// Document kinds, as stored.
pub const ALIAS: &str = "alias";
pub const TRIGGER: &str = "trigger";
pub const PROVISION: &str = "provision";
pub const ON_DEMAND: &str = "onDemand";
pub const ASYNC_CONFIG: &str = "asyncConfig";
pub const CUSTOM_DOMAIN: &str = "customDomain";
pub const TAGS: &str = "tags";
pub const VPC_BINDING: &str = "vpcBinding";
pub const EVENT_SOURCE: &str = "eventSource";
pub const ROLE: &str = "role";

/// One document's identity. Names are given as they are validated elsewhere (`names`); a qualifier as its
/// text (`LATEST`, a version id or an alias).
#[derive(Clone, Copy)]
pub enum DocKey<'a> {
    /// `SVC/ALIAS`
    Alias { service: &'a str, alias: &'a str },
    /// `SVC/FN/TRIGGER`
    Trigger { service: &'a str, function: &'a str, name: &'a str },
    /// `SVC#Q#FN`
    Provision { service: &'a str, qualifier: &'a dyn Display, function: &'a str },
    /// `services/SVC.Q/functions/FN` — FC's resource string, which the API echoes as `resource`.
    OnDemand { service: &'a str, qualifier: &'a dyn Display, function: &'a str },
    /// `SVC/FN/Q`
    AsyncConfig { service: &'a str, function: &'a str, qualifier: &'a dyn Display },
    /// The name in lower case (names are matched in any case and kept as written in the body).
    CustomDomain { name: &'a str },
    /// The resource's full ARN.
    Tags { arn: &'a str },
    /// `SVC/VPC`
    VpcBinding { service: &'a str, vpc_id: &'a str },
    /// `SVC/FN/Q/SOURCE-ARN`
    EventSource { service: &'a str, function: &'a str, qualifier: &'a dyn Display, source: &'a str },
    /// An openfc role (`openfc roles`): the name in lower case (RAM role names are matched in any case).
    Role { name: &'a str },
}

impl DocKey<'_> {
    pub fn kind(&self) -> &'static str {
        match self {
            DocKey::Alias { .. } => ALIAS,
            DocKey::Trigger { .. } => TRIGGER,
            DocKey::Provision { .. } => PROVISION,
            DocKey::OnDemand { .. } => ON_DEMAND,
            DocKey::AsyncConfig { .. } => ASYNC_CONFIG,
            DocKey::CustomDomain { .. } => CUSTOM_DOMAIN,
            DocKey::Tags { .. } => TAGS,
            DocKey::VpcBinding { .. } => VPC_BINDING,
            DocKey::EventSource { .. } => EVENT_SOURCE,
            DocKey::Role { .. } => ROLE,
        }
    }

    pub fn key(&self) -> String {
        match self {
            DocKey::Alias { service, alias } => format!("{service}/{alias}"),
            DocKey::Trigger { service, function, name } => format!("{service}/{function}/{name}"),
            DocKey::Provision { service, qualifier, function } => format!("{service}#{qualifier}#{function}"),
            DocKey::OnDemand { service, qualifier, function } => format!("services/{service}.{qualifier}/functions/{function}"),
            DocKey::AsyncConfig { service, function, qualifier } => format!("{service}/{function}/{qualifier}"),
            DocKey::CustomDomain { name } => name.to_ascii_lowercase(),
            DocKey::Tags { arn } => (*arn).to_owned(),
            DocKey::VpcBinding { service, vpc_id } => format!("{service}/{vpc_id}"),
            DocKey::EventSource { service, function, qualifier, source } => format!("{service}/{function}/{qualifier}/{source}"),
            DocKey::Role { name } => name.to_ascii_lowercase(),
        }
    }
}

/// Key prefixes that list documents of one parent (the same layouts as `DocKey::key`).
pub mod prefix {
    use std::fmt::Display;

    /// Provision configs of a service (`qualifier`: of one qualifier of it).
    pub fn provision(service: &str, qualifier: Option<&str>) -> String {
        match qualifier {
            Some(q) => format!("{service}#{q}#"),
            None => format!("{service}#"),
        }
    }

    /// Async configs of a function, every qualifier; also the async-policy and HTTP-trigger cache prefix.
    pub fn function_parts(service: &str, function: &str) -> String {
        format!("{service}/{function}/")
    }

    pub fn vpc_bindings(service: &str) -> String {
        format!("{service}/")
    }

    pub fn event_sources(service: &str, function: &str, qualifier: &dyn Display) -> String {
        format!("{service}/{function}/{qualifier}/")
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The stored layouts, spelled out: a change here is a data migration.
    #[test]
    fn layouts_are_what_is_stored() {
        let q: &dyn Display = &"prod";
        let cases = [
            (DocKey::Alias { service: "s", alias: "a" }, "alias", "s/a"),
            (DocKey::Trigger { service: "s", function: "f", name: "t" }, "trigger", "s/f/t"),
            (DocKey::Provision { service: "s", qualifier: q, function: "f" }, "provision", "s#prod#f"),
            (DocKey::OnDemand { service: "s", qualifier: q, function: "f" }, "onDemand", "services/s.prod/functions/f"),
            (DocKey::AsyncConfig { service: "s", function: "f", qualifier: q }, "asyncConfig", "s/f/prod"),
            (DocKey::CustomDomain { name: "Api.Example.COM" }, "customDomain", "api.example.com"),
            (DocKey::Tags { arn: "acs:fc:r:1:services/s" }, "tags", "acs:fc:r:1:services/s"),
            (DocKey::VpcBinding { service: "s", vpc_id: "vpc-1" }, "vpcBinding", "s/vpc-1"),
            (DocKey::EventSource { service: "s", function: "f", qualifier: q, source: "acs:x" }, "eventSource", "s/f/prod/acs:x"),
        ];
        for (k, kind, key) in cases {
            assert_eq!((k.kind(), k.key().as_str()), (kind, key));
        }
        assert!(DocKey::EventSource { service: "s", function: "f", qualifier: q, source: "x" }
            .key()
            .starts_with(&prefix::event_sources("s", "f", q)));
        assert!(DocKey::Provision { service: "s", qualifier: q, function: "f" }.key().starts_with(&prefix::provision("s", Some("prod"))));
    }
}
