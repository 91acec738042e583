//! Accounts beyond the first (`openfc accounts`): created with their root key in one transaction, listed,
//! and deleted only once nothing of theirs is left but keys and loose documents (tags of deleted resources).

use openfc_core::ports::{AccessKeyRecord, AccountRecord, MetaError};

use crate::rows::Cols;
use crate::{SqlMeta, map_err, sql};

const LIST: &str = "SELECT id, created_time FROM accounts ORDER BY created_time, id";
/// What keeps an account alive: a service, a layer, or a custom domain (a document of kind customDomain).
const IN_USE: &str = "SELECT (SELECT COUNT(*) FROM services WHERE account_id = $1) \
     + (SELECT COUNT(*) FROM layers WHERE account_id = $1) \
     + (SELECT COUNT(*) FROM documents WHERE account_id = $1 AND kind = 'customDomain') AS n";
const DELETE_KEYS: &str = "DELETE FROM access_keys WHERE account_id = $1";
const DELETE_DOCS: &str = "DELETE FROM documents WHERE account_id = $1";
const DELETE: &str = "DELETE FROM accounts WHERE id = $1";

pub(crate) async fn create(meta: &SqlMeta, account: &AccountRecord, root: &AccessKeyRecord) -> Result<(), MetaError> {
    on_pool!(meta, p => {
        let mut tx = p.begin().await.map_err(map_err)?;
        sqlx::query(sql::INSERT_ACCOUNT).bind(&account.id).bind(&account.created_time)
            .execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query(sql::INSERT_KEY).bind(&root.id).bind(&root.account_id).bind(&root.sealed_secret)
            .bind(root.status.as_str()).bind(&root.created_time).bind(&root.policy).execute(&mut *tx).await.map_err(map_err)?;
        tx.commit().await.map_err(map_err)
    })
}

pub(crate) async fn list(meta: &SqlMeta) -> Result<Vec<AccountRecord>, MetaError> {
    on_pool!(meta, p => sqlx::query(LIST).fetch_all(p).await.map_err(map_err)?.iter()
        .map(|r| Ok(AccountRecord { id: r.text("id")?, created_time: r.text("created_time")? })).collect())
}

/// `Conflict` while the account still has services, layers or custom domains; `NotFound` if there is none.
pub(crate) async fn delete(meta: &SqlMeta, id: &str) -> Result<(), MetaError> {
    on_pool!(meta, p => {
        let mut tx = p.begin().await.map_err(map_err)?;
        let n = sqlx::query(IN_USE).bind(id).fetch_one(&mut *tx).await.map_err(map_err)?.int("n")?;
        if n > 0 {
            return Err(MetaError::Conflict(format!(
                "account {id} still has {n} services, layers or custom domains: delete them first")));
        }
        sqlx::query(DELETE_KEYS).bind(id).execute(&mut *tx).await.map_err(map_err)?;
        sqlx::query(DELETE_DOCS).bind(id).execute(&mut *tx).await.map_err(map_err)?;
        let done = sqlx::query(DELETE).bind(id).execute(&mut *tx).await.map_err(map_err)?.rows_affected();
        if done == 0 {
            return Err(MetaError::NotFound);
        }
        tx.commit().await.map_err(map_err)
    })
}
