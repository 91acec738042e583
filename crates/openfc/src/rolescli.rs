//! `openfc roles create|list|delete`: the roles a service's `role` names (`acs:ram::ACCOUNT:role/NAME`). A role
//! is a RAM-style policy; the functions of a service with a role receive temporary credentials (`sts`) that may
//! do what the policy allows, and nothing more. Stored as documents of the account (kind `role`), so they go
//! with the account and every node reads the same.

use anyhow::Context;
use clap::Subcommand;
use openfc_core::dockey::{self, DocKey};
use openfc_core::ports::{Document, MetaError, MetaStore};
use serde_json::json;

use crate::config::StoreConfig;
use crate::keys::{self, MasterKey};
use crate::server::{open_meta, timestamp};

#[derive(Subcommand)]
pub enum RoleAction {
    /// Create (or replace) a role from a RAM-style policy file; prints its ARN for a service's `role`.
    Create {
        name: String,
        #[arg(long)]
        policy: std::path::PathBuf,
        /// The account the role belongs to [default: the first account].
        #[arg(long)]
        account: Option<String>,
    },
    /// List an account's roles with their policies.
    List {
        #[arg(long)]
        account: Option<String>,
    },
    /// Delete a role: credentials already handed out for it are refused from then on.
    Delete {
        name: String,
        #[arg(long)]
        account: Option<String>,
    },
}

/// RAM role names: 1–64 letters, digits, `.`, `-` and `_`.
fn check_name(name: &str) -> anyhow::Result<()> {
    let ok = (1..=64).contains(&name.len()) && name.bytes().all(|b| b.is_ascii_alphanumeric() || b"._-".contains(&b));
    anyhow::ensure!(ok, "role name {name:?}: 1 to 64 letters, digits, '.', '-' or '_'");
    Ok(())
}

/// The ARN a service's `role` takes to name this role.
pub fn role_arn(account: &str, name: &str) -> String {
    format!("acs:ram::{account}:role/{name}")
}

/// The policy of `account`'s role `name` as stored now (`None`: no such role).
pub async fn policy_of(meta: &dyn MetaStore, account: &str, name: &str) -> Result<Option<String>, MetaError> {
    // DocKey holds `&dyn Display` (not Sync): only its parts live across the await.
    let key = DocKey::Role { name }.key();
    match meta.get_doc(account, dockey::ROLE, &key).await {
        Ok(doc) => Ok(doc.body.get("policy").map(|p| p.to_string())),
        Err(MetaError::NotFound) => Ok(None),
        Err(e) => Err(e),
    }
}

pub async fn run(store: StoreConfig, action: RoleAction) -> anyhow::Result<()> {
    let meta = open_meta(&store).await?;
    let master = MasterKey::load_or_create(&store.master_key_file)?;
    let result = async {
        let account_of = |chosen: Option<String>| {
            let (meta, master) = (meta.clone(), &master);
            async move {
                match chosen {
                    Some(id) => {
                        let known = meta.list_accounts().await?;
                        anyhow::ensure!(known.iter().any(|a| a.id == id), "no account {id} (openfc accounts list)");
                        Ok(id)
                    }
                    None => Ok(keys::ensure_account(meta.as_ref(), master, &timestamp()).await?.0),
                }
            }
        };
        match action {
            RoleAction::Create { name, policy, account } => {
                check_name(&name)?;
                let text = std::fs::read_to_string(&policy).with_context(|| format!("reading {}", policy.display()))?;
                openfc_core::policy::Policy::parse(&text).with_context(|| format!("the policy in {}", policy.display()))?;
                let body: serde_json::Value = serde_json::from_str(&text).context("the policy is not JSON")?;
                let account = account_of(account).await?;
                let now = timestamp();
                let doc = Document {
                    account_id: account.clone(),
                    kind: dockey::ROLE,
                    key: DocKey::Role { name: &name }.key(),
                    body: json!({"roleName": name, "policy": body}),
                    etag: uuid::Uuid::new_v4().simple().to_string(),
                    created_time: now.clone(),
                    modified_time: now,
                };
                meta.put_doc(&doc).await.context("storing the role")?;
                println!("{}", json!({"roleName": name, "arn": role_arn(&account, &name)}));
            }
            RoleAction::List { account } => {
                let account = account_of(account).await?;
                let mut start = String::new();
                loop {
                    let page = meta.list_docs(&account, dockey::ROLE, "", &start, 100).await?;
                    for doc in page.iter().take(100) {
                        let name = doc.body.get("roleName").and_then(|v| v.as_str()).unwrap_or(&doc.key);
                        println!("{}", json!({"roleName": name, "arn": role_arn(&account, name), "policy": doc.body.get("policy"), "createdTime": doc.created_time}));
                    }
                    match page.get(100) {
                        Some(next) => start = next.key.clone(),
                        None => break,
                    }
                }
            }
            RoleAction::Delete { name, account } => {
                let account = account_of(account).await?;
                let key = DocKey::Role { name: &name }.key();
                match meta.delete_doc(&account, dockey::ROLE, &key, None).await {
                    Ok(()) => println!("deleted role {name}"),
                    Err(MetaError::NotFound) => anyhow::bail!("no role {name} in account {account}"),
                    Err(e) => return Err(e.into()),
                }
            }
        }
        crate::server::tell_nodes_keys_changed(meta.as_ref(), "openfc roles").await;
        anyhow::Ok(())
    }
    .await;
    meta.close().await;
    result
}

#[cfg(test)]
mod tests {
    #[test]
    fn role_names_follow_ram() {
        assert!(super::check_name("fc-invoker_1.x").is_ok());
        assert!(super::check_name("").is_err() && super::check_name("a/b").is_err() && super::check_name(&"a".repeat(65)).is_err());
    }
}
