//! `openfc accounts`: several accounts on one openfc. Each has its own services, functions, layers, custom
//! domains and keys; a key sees only its account's resources (FC's account boundary).

use anyhow::Context;
use clap::Subcommand;
use openfc_core::ports::{AccountRecord, MetaError, MetaStore};
use serde_json::json;

use crate::config::StoreConfig;
use crate::keys::{self, MasterKey};
use crate::server::{open_meta, timestamp};

#[derive(Subcommand)]
pub enum AccountAction {
    /// Create an account with its root AccessKey; prints both (the secret is shown only here).
    Create,
    /// List accounts (the first is the one anonymous HTTP-trigger requests reach by default).
    List,
    /// Delete an account and its keys; refused while it has services, layers or custom domains.
    Delete { account_id: String },
}

pub async fn run(store: StoreConfig, action: AccountAction) -> anyhow::Result<()> {
    let meta = open_meta(&store).await?;
    let master = MasterKey::load_or_create(&store.master_key_file)?;
    let result = async {
        match action {
            AccountAction::Create => {
                // The first account is created the way a first start creates it (one node wins).
                keys::ensure_account(meta.as_ref(), &master, &timestamp()).await?;
                let now = timestamp();
                let account = AccountRecord { id: keys::new_account_id(), created_time: now.clone() };
                let (key, secret) = keys::new_access_key(&master, &account.id, &now);
                meta.create_account(&account, &key).await.context("creating the account")?;
                println!("{}", json!({"accountId": account.id, "accessKeyId": key.id, "accessKeySecret": secret}));
            }
            AccountAction::List => {
                for a in meta.list_accounts().await? {
                    println!("{}", json!({"accountId": a.id, "createdTime": a.created_time}));
                }
            }
            AccountAction::Delete { account_id } => {
                let first = meta.first_account().await?.map(|a| a.id);
                anyhow::ensure!(first.as_deref() != Some(account_id.as_str()),
                    "account {account_id} is the first account (the default of anonymous requests): it cannot be deleted");
                match meta.delete_account(&account_id).await {
                    Ok(()) => println!("deleted {account_id}"),
                    Err(MetaError::NotFound) => anyhow::bail!("no account {account_id}"),
                    Err(MetaError::Conflict(why)) => anyhow::bail!("{why}"),
                    Err(e) => return Err(e.into()),
                }
                // Running nodes forget the deleted keys now.
                crate::server::tell_nodes_keys_changed(meta.as_ref(), "openfc accounts").await;
            }
        }
        anyhow::Ok(())
    }
    .await;
    meta.close().await;
    result
}
