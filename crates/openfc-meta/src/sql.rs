//! The statements, shared by both dialects (`$n` placeholders, `RETURNING`, `ON CONFLICT` work on both).

use openfc_core::page::PageQuery;
use openfc_core::ports::CodeRef;

pub const INSERT_BOOTSTRAP: &str = "INSERT INTO bootstrap (id, account_id) VALUES (1, $1)";
pub const INSERT_ACCOUNT: &str = "INSERT INTO accounts (id, created_time) VALUES ($1, $2)";
pub const FIRST_ACCOUNT: &str = "SELECT id, created_time FROM accounts ORDER BY created_time, id LIMIT 1";

pub const INSERT_KEY: &str = "INSERT INTO access_keys (id, account_id, sealed_secret, status, created_time, policy) \
     VALUES ($1, $2, $3, $4, $5, $6)";
pub const GET_KEY: &str = "SELECT * FROM access_keys WHERE id = $1";
pub const LIST_KEYS: &str = "SELECT * FROM access_keys ORDER BY created_time, id";
pub const SET_KEY_STATUS: &str = "UPDATE access_keys SET status = $1 WHERE id = $2";
pub const DELETE_KEY: &str = "DELETE FROM access_keys WHERE id = $1";

pub const INSERT_SERVICE: &str = "INSERT INTO services (account_id, name, id, config, etag, created_time, \
     modified_time) VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const GET_SERVICE: &str = "SELECT * FROM services WHERE account_id = $1 AND name = $2";
pub const UPDATE_SERVICE: &str = "UPDATE services SET config = $1, etag = $2, modified_time = $3 \
     WHERE account_id = $4 AND name = $5 AND etag = $6";
pub const DELETE_SERVICE: &str = "DELETE FROM services WHERE account_id = $1 AND name = $2";
pub const DELETE_SERVICE_IF: &str = "DELETE FROM services WHERE account_id = $1 AND name = $2 AND etag = $3";
/// The documents that live under a service and go with it (its VPC bindings, keyed `SVC/...`).
pub const DELETE_SERVICE_DOCS: &str = "DELETE FROM documents WHERE account_id = $1 AND kind = 'vpcBinding' \
     AND substr(key, 1, $2) = $3";
pub const LIST_SERVICES: &str = "SELECT * FROM services WHERE account_id = $1 AND name >= $2 \
     AND substr(name, 1, $3) = $4 ORDER BY name LIMIT $5";
pub const COUNT_FUNCTIONS: &str =
    "SELECT COUNT(*) AS n FROM functions WHERE account_id = $1 AND service_name = $2";

pub const INSERT_FUNCTION: &str = "INSERT INTO functions (account_id, service_name, name, id, config, code_key, \
     code_checksum, code_size, etag, created_time, modified_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)";
pub const GET_FUNCTION: &str = "SELECT * FROM functions WHERE account_id = $1 AND service_name = $2 AND name = $3";
pub const UPDATE_FUNCTION: &str = "UPDATE functions SET config = $1, code_key = $2, code_checksum = $3, \
     code_size = $4, etag = $5, modified_time = $6 \
     WHERE account_id = $7 AND service_name = $8 AND name = $9 AND etag = $10";
pub const DELETE_FUNCTION: &str = "DELETE FROM functions WHERE account_id = $1 AND service_name = $2 AND name = $3";
pub const DELETE_FUNCTION_IF: &str =
    "DELETE FROM functions WHERE account_id = $1 AND service_name = $2 AND name = $3 AND etag = $4";
/// The per-function configs (async-invoke, on-demand, provision) of a deleted function: their keys are
/// `{svc}/{fn}/{q}`, `services/{svc}.{q}/functions/{fn}` and `{svc}#{q}#{fn}`.
pub const DELETE_FUNCTION_CONFIGS: &str = "DELETE FROM documents WHERE account_id = $1 AND ( \
     (kind IN ('asyncConfig', 'eventSource') AND substr(key, 1, $2) = $3) \
     OR (kind = 'onDemand' AND substr(key, 1, $4) = $5 AND substr(key, length(key) - $6 + 1) = $7) \
     OR (kind = 'provision' AND substr(key, 1, $8) = $9 AND substr(key, length(key) - $10 + 1) = $11))";
pub const LIST_FUNCTIONS: &str = "SELECT * FROM functions WHERE account_id = $1 AND service_name = $2 \
     AND name >= $3 AND substr(name, 1, $4) = $5 ORDER BY name LIMIT $6";

/// Inserts the package row, or renews a live one (or one whose collector died); returns no row while a
/// collector is deleting it.
pub const TOUCH_PACKAGE: &str = "INSERT INTO code_packages (key, checksum, size, state, touched_at) \
     VALUES ($1, $2, $3, 'live', $4) \
     ON CONFLICT (key) DO UPDATE SET touched_at = excluded.touched_at, state = 'live', deleting_since = NULL \
     WHERE code_packages.state = 'live' OR code_packages.deleting_since < $5 \
     RETURNING key";
/// Marks unreferenced packages untouched since `$2` (or whose collector died before `$3`) as being deleted.
pub const CLAIM_GARBAGE: &str = "UPDATE code_packages SET state = 'deleting', deleting_since = $1 \
     WHERE key IN (SELECT p.key FROM code_packages p \
         WHERE ((p.state = 'live' AND p.touched_at < $2) OR (p.state = 'deleting' AND p.deleting_since < $3)) \
         AND NOT EXISTS (SELECT 1 FROM functions f WHERE f.code_key = p.key) \
         AND NOT EXISTS (SELECT 1 FROM version_functions v WHERE v.code_key = p.key) \
         AND NOT EXISTS (SELECT 1 FROM layer_versions l WHERE l.code_key = p.key) LIMIT $4) \
     AND ((state = 'live' AND touched_at < $2) OR (state = 'deleting' AND deleting_since < $3)) \
     RETURNING key";
pub const FORGET_PACKAGE: &str = "DELETE FROM code_packages WHERE key = $1 AND state = 'deleting'";

/// `(prefix, prefix length in characters, inclusive lower bound, limit + 1)` for the list statements.
pub fn page_args(page: &PageQuery) -> (String, i32, String, i64) {
    let prefix = page.prefix.clone().unwrap_or_default();
    let len = prefix.chars().count() as i32;
    (prefix, len, page.start.clone().unwrap_or_default(), page.limit as i64 + 1)
}

pub fn code_args(code: &Option<CodeRef>) -> (Option<String>, Option<String>, Option<i64>) {
    match code {
        Some(c) => (Some(c.key.clone()), Some(c.checksum.to_string()), Some(c.size as i64)),
        None => (None, None, None),
    }
}

// ---- versions ----

pub const BUMP_VERSION: &str = "UPDATE services SET last_version = last_version + 1 \
     WHERE account_id = $1 AND name = $2 RETURNING last_version, config";
pub const BUMP_VERSION_IF: &str = "UPDATE services SET last_version = last_version + 1 \
     WHERE account_id = $1 AND name = $2 AND etag = $3 RETURNING last_version, config";
pub const SNAPSHOT_FUNCTIONS: &str = "INSERT INTO version_functions (account_id, service_name, version_id, name, id, \
     config, code_key, code_checksum, code_size, etag, created_time, modified_time) \
     SELECT account_id, service_name, $3, name, id, config, code_key, code_checksum, code_size, etag, created_time, \
     modified_time FROM functions WHERE account_id = $1 AND service_name = $2";
pub const SNAPSHOT_CONTENT: &str = "SELECT name, config, code_key FROM version_functions \
     WHERE account_id = $1 AND service_name = $2 AND version_id = $3 ORDER BY name";
pub const NEWEST_FINGERPRINT: &str = "SELECT fingerprint FROM versions WHERE account_id = $1 AND service_name = $2 \
     AND version_id < $3 ORDER BY version_id DESC LIMIT 1";
pub const SET_FINGERPRINT: &str =
    "UPDATE versions SET fingerprint = $4 WHERE account_id = $1 AND service_name = $2 AND version_id = $3";
pub const INSERT_VERSION: &str = "INSERT INTO versions (account_id, service_name, version_id, description, \
     service_config, fingerprint, created_time, modified_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub const GET_VERSION: &str = "SELECT * FROM versions WHERE account_id = $1 AND service_name = $2 AND version_id = $3";
pub const LIST_VERSIONS_FORWARD: &str = "SELECT * FROM versions WHERE account_id = $1 AND service_name = $2 \
     AND version_id >= $3 ORDER BY version_id LIMIT $4";
pub const LIST_VERSIONS_BACKWARD: &str = "SELECT * FROM versions WHERE account_id = $1 AND service_name = $2 \
     AND version_id <= $3 ORDER BY version_id DESC LIMIT $4";
pub const DELETE_VERSION_FUNCTIONS: &str =
    "DELETE FROM version_functions WHERE account_id = $1 AND service_name = $2 AND version_id = $3";
pub const DELETE_VERSION: &str = "DELETE FROM versions WHERE account_id = $1 AND service_name = $2 AND version_id = $3";
pub const COUNT_VERSIONS: &str = "SELECT COUNT(*) AS n FROM versions WHERE account_id = $1 AND service_name = $2";
pub const GET_VERSION_FUNCTION: &str = "SELECT * FROM version_functions WHERE account_id = $1 AND service_name = $2 \
     AND version_id = $3 AND name = $4";
pub const LIST_VERSION_FUNCTIONS: &str = "SELECT * FROM version_functions WHERE account_id = $1 \
     AND service_name = $2 AND version_id = $3 AND name >= $4 AND substr(name, 1, $5) = $6 ORDER BY name LIMIT $7";

// ---- documents ----

pub const INSERT_DOC: &str = "INSERT INTO documents (account_id, kind, key, body, etag, created_time, modified_time) \
     VALUES ($1, $2, $3, $4, $5, $6, $7)";
pub const UPSERT_DOC: &str = "INSERT INTO documents (account_id, kind, key, body, etag, created_time, modified_time) \
     VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT (account_id, kind, key) DO UPDATE SET body = excluded.body, \
     etag = excluded.etag, modified_time = excluded.modified_time RETURNING created_time";
pub const GET_DOC: &str = "SELECT * FROM documents WHERE account_id = $1 AND kind = $2 AND key = $3";
pub const UPDATE_DOC: &str = "UPDATE documents SET body = $1, etag = $2, modified_time = $3 \
     WHERE account_id = $4 AND kind = $5 AND key = $6 AND etag = $7";
pub const DELETE_DOC: &str = "DELETE FROM documents WHERE account_id = $1 AND kind = $2 AND key = $3";
pub const DELETE_DOC_IF: &str = "DELETE FROM documents WHERE account_id = $1 AND kind = $2 AND key = $3 AND etag = $4";
pub const LIST_DOCS: &str = "SELECT * FROM documents WHERE account_id = $1 AND kind = $2 AND key >= $3 \
     AND substr(key, 1, $4) = $5 ORDER BY key LIMIT $6";

// ---- layers ----

pub const BUMP_LAYER: &str = "INSERT INTO layers (account_id, name, last_version, acl, created_time) \
     VALUES ($1, $2, 1, 0, $3) ON CONFLICT (account_id, name) DO UPDATE SET last_version = layers.last_version + 1 \
     RETURNING last_version, acl";
pub const INSERT_LAYER_VERSION: &str = "INSERT INTO layer_versions (account_id, layer_name, version, body, code_key, \
     code_checksum, code_size, created_time) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)";
pub const GET_LAYER_VERSION: &str = "SELECT v.*, l.acl FROM layer_versions v JOIN layers l \
     ON l.account_id = v.account_id AND l.name = v.layer_name \
     WHERE v.account_id = $1 AND v.layer_name = $2 AND v.version = $3";
pub const LIST_LAYER_VERSIONS: &str = "SELECT v.*, l.acl FROM layer_versions v JOIN layers l \
     ON l.account_id = v.account_id AND l.name = v.layer_name \
     WHERE v.account_id = $1 AND v.layer_name = $2 AND v.version >= $3 ORDER BY v.version LIMIT $4";
pub const LIST_LATEST_LAYERS: &str = "SELECT v.*, l.acl FROM layer_versions v JOIN layers l \
     ON l.account_id = v.account_id AND l.name = v.layer_name \
     WHERE v.account_id = $1 AND v.layer_name >= $2 AND substr(v.layer_name, 1, $3) = $4 \
     AND v.version = (SELECT MAX(w.version) FROM layer_versions w \
         WHERE w.account_id = v.account_id AND w.layer_name = v.layer_name) \
     ORDER BY v.layer_name LIMIT $5";
pub const DELETE_LAYER_VERSION: &str =
    "DELETE FROM layer_versions WHERE account_id = $1 AND layer_name = $2 AND version = $3";
pub const SET_LAYER_ACL: &str = "UPDATE layers SET acl = $1 WHERE account_id = $2 AND name = $3";
