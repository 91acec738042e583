//! RAM-style policies: what an AccessKey may do. A key without a policy is its account's root. A policy is
//! `{"Version": "1", "Statement": [{"Effect": "Allow" | "Deny", "Action": ["fc:GetFunction", "fc:List*"],
//! "Resource": ["acs:fc:*:*:services/web/functions/*"]}]}`: `*` and `?` are wildcards, actions match in any
//! case, an explicit Deny wins, and nothing that no statement allows is allowed. The request pipeline asks
//! once per request, with the endpoint's RAM action and resource ARN (authorization as data).

use serde::Deserialize;
use serde_json::Value;

use crate::error::{CoreError, CoreResult};

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Policy {
    statements: Vec<Statement>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
struct Statement {
    allow: bool,
    actions: Vec<String>,
    resources: Vec<String>,
}

/// What a policy says of one request.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Decision {
    Allow,
    /// A statement denies it explicitly.
    Deny,
    /// No statement mentions it.
    NotAllowed,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawPolicy {
    #[serde(default)]
    version: Option<Value>,
    statement: Vec<RawStatement>,
}

#[derive(Deserialize)]
#[serde(rename_all = "PascalCase")]
struct RawStatement {
    effect: String,
    action: OneOrMany,
    resource: OneOrMany,
}

#[derive(Deserialize)]
#[serde(untagged)]
enum OneOrMany {
    One(String),
    Many(Vec<String>),
}

impl OneOrMany {
    fn into_vec(self) -> Vec<String> {
        match self {
            OneOrMany::One(s) => vec![s],
            OneOrMany::Many(v) => v,
        }
    }
}

/// `*` matches any run of characters, `?` one character.
fn glob(pattern: &[u8], text: &[u8]) -> bool {
    let (mut p, mut t) = (0, 0);
    let (mut star, mut mark) = (None, 0);
    while t < text.len() {
        if p < pattern.len() && (pattern[p] == b'?' || pattern[p] == text[t]) {
            p += 1;
            t += 1;
        } else if p < pattern.len() && pattern[p] == b'*' {
            star = Some(p);
            mark = t;
            p += 1;
        } else if let Some(s) = star {
            p = s + 1;
            mark += 1;
            t = mark;
        } else {
            return false;
        }
    }
    pattern[p..].iter().all(|c| *c == b'*')
}

impl Policy {
    /// Parses and checks a policy document.
    pub fn parse(text: &str) -> CoreResult<Policy> {
        let raw: RawPolicy = serde_json::from_str(text).map_err(|e| CoreError::invalid(format!("the policy is not valid: {e}")))?;
        if let Some(v) = &raw.version
            && v.as_str() != Some("1")
        {
            return Err(CoreError::invalid("the policy's Version must be \"1\""));
        }
        if raw.statement.is_empty() {
            return Err(CoreError::invalid("the policy has no Statement"));
        }
        let statements = raw
            .statement
            .into_iter()
            .map(|s| {
                let allow = match s.effect.as_str() {
                    "Allow" => true,
                    "Deny" => false,
                    other => return Err(CoreError::invalid(format!("Effect must be Allow or Deny, not '{other}'"))),
                };
                let actions: Vec<String> = s.action.into_vec().into_iter().map(|a| a.to_ascii_lowercase()).collect();
                let resources = s.resource.into_vec();
                if actions.is_empty() || resources.is_empty() {
                    return Err(CoreError::invalid("every Statement needs an Action and a Resource"));
                }
                if let Some(bad) = actions.iter().find(|a| !a.starts_with("fc:") && *a != "*") {
                    return Err(CoreError::invalid(format!("action '{bad}' is not a Function Compute action (fc:...)")));
                }
                Ok(Statement { allow, actions, resources })
            })
            .collect::<CoreResult<Vec<_>>>()?;
        Ok(Policy { statements })
    }

    /// A policy that allows nothing.
    pub fn deny_all() -> Policy {
        Policy { statements: vec![Statement { allow: false, actions: vec!["*".into()], resources: vec!["*".into()] }] }
    }

    /// What this policy says of `action` (e.g. `fc:GetFunction`) on `resource` (an ARN).
    pub fn decide(&self, action: &str, resource: &str) -> Decision {
        let action = action.to_ascii_lowercase();
        let mut allowed = false;
        for s in &self.statements {
            let acts = s.actions.iter().any(|a| glob(a.as_bytes(), action.as_bytes()));
            let res = s.resources.iter().any(|r| glob(r.as_bytes(), resource.as_bytes()));
            if acts && res {
                if !s.allow {
                    return Decision::Deny;
                }
                allowed = true;
            }
        }
        if allowed { Decision::Allow } else { Decision::NotAllowed }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const WEB_READER: &str = r#"{"Version": "1", "Statement": [
        {"Effect": "Allow", "Action": ["fc:GetFunction", "fc:List*"], "Resource": ["acs:fc:*:*:services/web/functions/*"]},
        {"Effect": "Allow", "Action": "fc:InvokeFunction", "Resource": "acs:fc:*:*:services/web*"},
        {"Effect": "Deny", "Action": "fc:*", "Resource": "acs:fc:*:*:services/web/functions/secret"}]}"#;

    #[test]
    fn allow_deny_and_nothing() {
        let p = Policy::parse(WEB_READER).unwrap();
        let arn = |r: &str| format!("acs:fc:cn-hangzhou:123:{r}");
        assert_eq!(p.decide("fc:GetFunction", &arn("services/web/functions/f")), Decision::Allow);
        assert_eq!(p.decide("fc:getfunction", &arn("services/web/functions/f")), Decision::Allow);
        assert_eq!(p.decide("fc:ListTriggers", &arn("services/web/functions/f")), Decision::Allow);
        assert_eq!(p.decide("fc:UpdateFunction", &arn("services/web/functions/f")), Decision::NotAllowed);
        assert_eq!(p.decide("fc:GetFunction", &arn("services/other/functions/f")), Decision::NotAllowed);
        assert_eq!(p.decide("fc:GetFunction", &arn("services/web/functions/secret")), Decision::Deny);
        assert_eq!(p.decide("fc:InvokeFunction", &arn("services/web.LATEST/functions/f")), Decision::Allow);
    }

    #[test]
    fn bad_policies_are_refused() {
        for bad in ["{}", r#"{"Statement": []}"#, r#"{"Version": "2", "Statement": [{"Effect": "Allow", "Action": "fc:*", "Resource": "*"}]}"#,
            r#"{"Statement": [{"Effect": "Maybe", "Action": "fc:*", "Resource": "*"}]}"#,
            r#"{"Statement": [{"Effect": "Allow", "Action": "oss:GetObject", "Resource": "*"}]}"#, "not json"] {
            assert!(Policy::parse(bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn globs() {
        assert!(glob(b"a*c", b"abbbc"));
        assert!(glob(b"a?c", b"abc"));
        assert!(!glob(b"a?c", b"abbc"));
        assert!(glob(b"*", b""));
        assert!(glob(b"services/*/functions/*", b"services/x/functions/y"));
        assert!(!glob(b"services/web", b"services/web2"));
    }
}
