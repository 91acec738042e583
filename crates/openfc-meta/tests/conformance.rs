//! One conformance suite for `MetaStore`, run against SQLite always and PostgreSQL when
//! `OPENFC_TEST_DATABASE_URL` names a server (required when `OPENFC_REQUIRE_EXTERNAL=1`).
//! Each run uses a fresh database so the suite can run repeatedly.

use std::sync::Arc;

use openfc_core::page::PageQuery;
use openfc_core::ports::{
    AccessKeyRecord, AccountRecord, CodeRef, FunctionRecord, KeyStatus, MetaError, MetaStore, ServiceRecord,
    TouchOutcome,
};
use openfc_meta::SqlMeta;

mod support;
use serde_json::json;

fn key(id: &str, account: &str) -> AccessKeyRecord {
    AccessKeyRecord {
        id: id.into(),
        account_id: account.into(),
        sealed_secret: format!("sealed-{id}"),
        status: KeyStatus::Active,
        created_time: "2026-01-01T00:00:00Z".into(),
        policy: None,
    }
}

fn service(name: &str) -> ServiceRecord {
    ServiceRecord {
        account_id: "1".into(),
        name: name.into(),
        id: format!("id-{name}"),
        config: json!({"description": name}),
        etag: format!("etag-{name}"),
        created_time: "t0".into(),
        modified_time: "t0".into(),
    }
}

fn function(svc: &str, name: &str, code: Option<&str>) -> FunctionRecord {
    FunctionRecord {
        account_id: "1".into(),
        service_name: svc.into(),
        name: name.into(),
        id: format!("id-{name}"),
        config: json!({"runtime": "custom"}),
        code: code.map(|k| CodeRef { key: k.into(), checksum: u64::MAX, size: 7 }),
        etag: format!("etag-{name}"),
        created_time: "t0".into(),
        modified_time: "t0".into(),
    }
}

fn page(prefix: Option<&str>, start: Option<&str>, limit: usize) -> PageQuery {
    PageQuery { prefix: prefix.map(Into::into), start: start.map(Into::into), limit }
}

async fn names(meta: &dyn MetaStore, q: PageQuery) -> Vec<String> {
    meta.list_services("1", &q).await.unwrap().into_iter().map(|s| s.name).collect()
}

async fn conformance(meta: Arc<SqlMeta>) {
    let meta: &dyn MetaStore = meta.as_ref();

    // Accounts and keys.
    assert_eq!(meta.first_account().await.unwrap(), None);
    let acct = AccountRecord { id: "1".into(), created_time: "t0".into() };
    meta.create_first_account(&acct, &key("K1", "1")).await.unwrap();
    let other = AccountRecord { id: "2".into(), created_time: "t0".into() };
    assert_eq!(meta.create_first_account(&other, &key("K2", "2")).await, Err(MetaError::AlreadyExists));
    assert_eq!(meta.first_account().await.unwrap(), Some(acct));
    assert!(meta.get_access_key("K2").await.is_err(), "the losing bootstrap left nothing behind");
    meta.put_access_key(&key("K3", "1")).await.unwrap();
    assert_eq!(meta.put_access_key(&key("K3", "1")).await, Err(MetaError::AlreadyExists));
    meta.set_access_key_status("K3", KeyStatus::Inactive).await.unwrap();
    assert_eq!(meta.get_access_key("K3").await.unwrap().status, KeyStatus::Inactive);
    assert_eq!(meta.list_access_keys().await.unwrap().len(), 2);
    meta.delete_access_key("K3").await.unwrap();
    assert_eq!(meta.delete_access_key("K3").await, Err(MetaError::NotFound));
    assert_eq!(meta.set_access_key_status("K3", KeyStatus::Active).await, Err(MetaError::NotFound));
    assert_eq!(meta.get_access_key("K3").await, Err(MetaError::NotFound));

    // Services: create, conflicts, conditional update and delete.
    let s = service("svc");
    meta.create_service(&s).await.unwrap();
    assert_eq!(meta.create_service(&s).await, Err(MetaError::AlreadyExists));
    assert_eq!(meta.get_service("1", "svc").await.unwrap(), s);
    assert_eq!(meta.get_service("1", "nope").await, Err(MetaError::NotFound));
    let mut s2 = s.clone();
    s2.etag = "etag-2".into();
    s2.config = json!({"description": "changed", "nested": {"a": [1, 2]}});
    assert_eq!(meta.update_service(&s2, "wrong").await, Err(MetaError::PreconditionFailed));
    meta.update_service(&s2, "etag-svc").await.unwrap();
    assert_eq!(meta.get_service("1", "svc").await.unwrap(), s2);
    assert_eq!(meta.update_service(&service("ghost"), "x").await, Err(MetaError::NotFound));
    assert_eq!(meta.delete_service("1", "svc", Some("etag-svc")).await, Err(MetaError::PreconditionFailed));
    assert_eq!(meta.delete_service("1", "ghost", None).await, Err(MetaError::NotFound));

    // Functions belong to an existing service; a service with functions cannot be deleted.
    let f = function("svc", "fn", Some("packages/a"));
    meta.create_function(&f).await.unwrap();
    assert_eq!(meta.create_function(&f).await, Err(MetaError::AlreadyExists));
    assert!(matches!(meta.create_function(&function("ghost", "fn", None)).await, Err(MetaError::Conflict(_))));
    assert_eq!(meta.get_function("1", "svc", "fn").await.unwrap(), f);
    assert_eq!(meta.count_functions("1", "svc").await.unwrap(), 1);
    assert!(matches!(meta.delete_service("1", "svc", None).await, Err(MetaError::Conflict(_))));
    let mut f2 = f.clone();
    f2.etag = "etag-f2".into();
    f2.code = None;
    assert_eq!(meta.update_function(&f2, "wrong").await, Err(MetaError::PreconditionFailed));
    meta.update_function(&f2, "etag-fn").await.unwrap();
    assert_eq!(meta.get_function("1", "svc", "fn").await.unwrap(), f2);
    assert_eq!(meta.delete_function("1", "svc", "fn", Some("etag-fn")).await, Err(MetaError::PreconditionFailed));
    meta.delete_function("1", "svc", "fn", Some("etag-f2")).await.unwrap();
    assert_eq!(meta.delete_function("1", "svc", "fn", None).await, Err(MetaError::NotFound));
    meta.delete_service("1", "svc", Some("etag-2")).await.unwrap();

    // Listing: byte order, inclusive start, prefix (with LIKE metacharacters), limit + 1.
    for n in ["b", "a_c", "aXc", "B", "abc", "ab", "a%"] {
        meta.create_service(&service(n)).await.unwrap();
    }
    assert_eq!(names(meta, page(None, None, 100)).await, ["B", "a%", "aXc", "a_c", "ab", "abc", "b"]);
    assert_eq!(names(meta, page(Some("a_"), None, 100)).await, ["a_c"]);
    assert_eq!(names(meta, page(Some("a%"), None, 100)).await, ["a%"]);
    assert_eq!(names(meta, page(Some("ab"), Some("abc"), 100)).await, ["abc"]);
    assert_eq!(names(meta, page(None, Some("ab"), 1)).await, ["ab", "abc"], "limit + 1 rows");
    assert_eq!(names(meta, page(Some("zz"), None, 5)).await, Vec::<String>::new());
    for n in ["f3", "f1", "f2"] {
        meta.create_function(&function("b", n, None)).await.unwrap();
    }
    let fns: Vec<String> =
        meta.list_functions("1", "b", &page(None, Some("f2"), 5)).await.unwrap().into_iter().map(|f| f.name).collect();
    assert_eq!(fns, ["f2", "f3"]);

    // Package rows: touch, claim only the unreferenced and untouched, forget after deletion.
    let pkg = |k: &str| CodeRef { key: k.into(), checksum: 1, size: 2 };
    assert_eq!(meta.touch_package(&pkg("p/used"), 100).await.unwrap(), TouchOutcome::Live);
    assert_eq!(meta.touch_package(&pkg("p/free"), 100).await.unwrap(), TouchOutcome::Live);
    assert_eq!(meta.touch_package(&pkg("p/young"), 500).await.unwrap(), TouchOutcome::Live);
    meta.create_function(&function("b", "user", Some("p/used"))).await.unwrap();
    assert_eq!(meta.claim_garbage(200, 1000, 10).await.unwrap(), ["p/free"]);
    assert_eq!(meta.claim_garbage(200, 1000, 10).await.unwrap(), Vec::<String>::new(), "claimed once");
    assert_eq!(meta.touch_package(&pkg("p/free"), 1001).await.unwrap(), TouchOutcome::BeingDeleted);
    meta.forget_package("p/free").await.unwrap();
    assert_eq!(meta.touch_package(&pkg("p/free"), 1002).await.unwrap(), TouchOutcome::Live, "re-created");
    // A collector that died mid-deletion is taken over after the stale period.
    assert_eq!(meta.claim_garbage(2000, 2000, 10).await.unwrap().len(), 2);
    assert_eq!(meta.claim_garbage(2000, 2000 + 301, 10).await.unwrap().len(), 2, "stale claims are re-claimed");
    assert_eq!(meta.touch_package(&pkg("p/young"), 2301 + 1).await.unwrap(), TouchOutcome::BeingDeleted);
    assert_eq!(meta.touch_package(&pkg("p/young"), 2301 + 301).await.unwrap(), TouchOutcome::Live, "taken over");
}

#[tokio::test]
async fn sqlite_conforms() {
    let dir = tempfile::tempdir().unwrap();
    conformance(support::sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres_conforms() {
    if let Some(meta) = support::postgres("conformance").await {
        conformance(meta).await;
    }
}

/// Versions, documents and layers: the statements that differ most between dialects
/// (INSERT .. SELECT, ON CONFLICT .. RETURNING, transactions with rollback).
async fn conformance_resources(meta: &dyn MetaStore) {
    let acct = AccountRecord { id: "1".into(), created_time: "t0".into() };
    meta.create_first_account(&acct, &key("K1", "1")).await.unwrap();
    meta.create_service(&service("vs")).await.unwrap();
    meta.create_function(&function("vs", "f1", Some("p/1"))).await.unwrap();

    let v1 = meta.publish_version("1", "vs", "first", None, "t1").await.unwrap();
    assert_eq!((v1.version_id, v1.description.as_str()), (1, "first"));
    assert_eq!(meta.publish_version("1", "vs", "again", None, "t2").await, Err(MetaError::Conflict("unchanged".into())));
    assert_eq!(meta.publish_version("1", "vs", "x", Some("wrong-etag"), "t2").await, Err(MetaError::PreconditionFailed));
    assert_eq!(meta.publish_version("1", "ghost", "x", None, "t2").await, Err(MetaError::NotFound));
    let mut f = function("vs", "f1", Some("p/2"));
    f.etag = "e2".into();
    meta.update_function(&f, "etag-f1").await.unwrap();
    let v2 = meta.publish_version("1", "vs", "second", Some("etag-vs"), "t3").await.unwrap();
    assert_eq!(v2.version_id, 2, "the refused publishes consumed no id");
    assert_eq!(meta.get_version_function("1", "vs", 1, "f1").await.unwrap().code.unwrap().key, "p/1");
    assert_eq!(meta.get_version_function("1", "vs", 2, "f1").await.unwrap().code.unwrap().key, "p/2");
    assert_eq!(meta.get_version_function("1", "vs", 2, "nope").await, Err(MetaError::NotFound));
    let ids = |v: Vec<openfc_core::ports::VersionRecord>| v.into_iter().map(|v| v.version_id).collect::<Vec<_>>();
    assert_eq!(ids(meta.list_versions("1", "vs", false, None, 10).await.unwrap()), [2, 1]);
    assert_eq!(ids(meta.list_versions("1", "vs", true, Some(2), 10).await.unwrap()), [2]);
    assert_eq!(ids(meta.list_versions("1", "vs", false, Some(1), 10).await.unwrap()), [1]);
    assert_eq!(meta.count_versions("1", "vs").await.unwrap(), 2);
    let listed = meta.list_version_functions("1", "vs", 1, &page(None, None, 10)).await.unwrap();
    assert_eq!(listed.len(), 1);
    // A package held only by a version is not garbage.
    meta.touch_package(&CodeRef { key: "p/1".into(), checksum: 1, size: 1 }, 0).await.unwrap();
    assert!(meta.claim_garbage(10, 10, 10).await.unwrap().is_empty());
    meta.delete_version("1", "vs", 1).await.unwrap();
    assert_eq!(meta.delete_version("1", "vs", 1).await, Err(MetaError::NotFound));
    assert_eq!(meta.claim_garbage(10, 10, 10).await.unwrap(), ["p/1"]);
    f.etag = "e3".into();
    f.config = json!({"runtime": "custom", "changed": true});
    meta.update_function(&f, "e2").await.unwrap();
    assert_eq!(meta.publish_version("1", "vs", "third", None, "t4").await.unwrap().version_id, 3, "ids are never reused");

    // Documents.
    let doc = |k: &str, etag: &str| openfc_core::ports::Document {
        account_id: "1".into(),
        kind: "alias",
        key: k.into(),
        body: json!({"k": k}),
        etag: etag.into(),
        created_time: "c".into(),
        modified_time: "m".into(),
    };
    meta.create_doc(&doc("vs/a", "e1")).await.unwrap();
    assert_eq!(meta.create_doc(&doc("vs/a", "e1")).await, Err(MetaError::AlreadyExists));
    meta.create_doc(&doc("vs/b_", "e1")).await.unwrap();
    meta.create_doc(&doc("vsx/c", "e1")).await.unwrap();
    let keys = |d: Vec<openfc_core::ports::Document>| d.into_iter().map(|d| d.key).collect::<Vec<_>>();
    assert_eq!(keys(meta.list_docs("1", "alias", "vs/", "", 10).await.unwrap()), ["vs/a", "vs/b_"]);
    assert_eq!(keys(meta.list_docs("1", "alias", "vs/", "vs/b", 10).await.unwrap()), ["vs/b_"]);
    assert_eq!(keys(meta.list_docs("1", "trigger", "", "", 10).await.unwrap()), Vec::<String>::new());
    assert_eq!(meta.update_doc(&doc("vs/a", "e2"), "wrong").await, Err(MetaError::PreconditionFailed));
    meta.update_doc(&doc("vs/a", "e2"), "e1").await.unwrap();
    assert_eq!(meta.get_doc("1", "alias", "vs/a").await.unwrap().etag, "e2");
    let mut replaced = doc("vs/a", "e3");
    replaced.created_time = "later".into();
    assert_eq!(meta.put_doc(&replaced).await.unwrap().created_time, "c", "put keeps created_time");
    assert_eq!(meta.put_doc(&doc("new/x", "e1")).await.unwrap().created_time, "c");
    assert_eq!(meta.delete_doc("1", "alias", "vs/a", Some("e1")).await, Err(MetaError::PreconditionFailed));
    meta.delete_doc("1", "alias", "vs/a", Some("e3")).await.unwrap();
    assert_eq!(meta.delete_doc("1", "alias", "vs/a", None).await, Err(MetaError::NotFound));

    // Layers: numbering per layer, ACL shared by versions, latest per layer.
    let code = |k: &str| CodeRef { key: k.into(), checksum: 7, size: 3 };
    let l1 = meta.create_layer_version("1", "lay", &json!({"d": 1}), &code("l/1"), "t").await.unwrap();
    let l2 = meta.create_layer_version("1", "lay", &json!({"d": 2}), &code("l/2"), "t").await.unwrap();
    meta.create_layer_version("1", "other", &json!({}), &code("l/3"), "t").await.unwrap();
    assert_eq!((l1.version, l2.version, l1.acl), (1, 2, 0));
    meta.set_layer_acl("1", "lay", 1).await.unwrap();
    assert_eq!(meta.set_layer_acl("1", "ghost", 1).await, Err(MetaError::NotFound));
    assert_eq!(meta.get_layer_version("1", "lay", 1).await.unwrap().acl, 1);
    let latest = meta.list_latest_layers("1", &page(None, None, 10)).await.unwrap();
    assert_eq!(latest.iter().map(|l| (l.layer_name.as_str(), l.version)).collect::<Vec<_>>(), [("lay", 2), ("other", 1)]);
    assert_eq!(meta.list_layer_versions("1", "lay", 2, 10).await.unwrap().len(), 1);
    meta.delete_layer_version("1", "lay", 2).await.unwrap();
    assert_eq!(meta.get_layer_version("1", "lay", 2).await, Err(MetaError::NotFound));
    assert_eq!(meta.create_layer_version("1", "lay", &json!({}), &code("l/4"), "t").await.unwrap().version, 3);

    // A function's configs go with it; another function's (even one whose name extends it) stay.
    meta.create_function(&function("vs", "f1_b", None)).await.unwrap();
    let cfg = |kind: &'static str, k: &str| openfc_core::ports::Document {
        account_id: "1".into(),
        kind,
        key: k.into(),
        body: json!({}),
        etag: "e".into(),
        created_time: "t".into(),
        modified_time: "t".into(),
    };
    for fname in ["f1", "f1_b"] {
        meta.put_doc(&cfg("asyncConfig", &format!("vs/{fname}/LATEST"))).await.unwrap();
        meta.put_doc(&cfg("asyncConfig", &format!("vs/{fname}/prod"))).await.unwrap();
        meta.put_doc(&cfg("onDemand", &format!("services/vs.LATEST/functions/{fname}"))).await.unwrap();
        meta.put_doc(&cfg("provision", &format!("vs#prod#{fname}"))).await.unwrap();
        meta.put_doc(&cfg("eventSource", &format!("vs/{fname}/LATEST/acs:mns:r:1:/topics/t"))).await.unwrap();
        meta.put_doc(&cfg("eventSource", &format!("vs/{fname}/prod/acs:oss:r:1:b"))).await.unwrap();
    }
    meta.delete_function("1", "vs", "f1", None).await.unwrap();
    for (kind, k) in [("asyncConfig", "vs/f1/LATEST"), ("asyncConfig", "vs/f1/prod"), ("onDemand", "services/vs.LATEST/functions/f1"),
        ("provision", "vs#prod#f1"), ("eventSource", "vs/f1/LATEST/acs:mns:r:1:/topics/t"),
        ("eventSource", "vs/f1/prod/acs:oss:r:1:b")] {
        assert_eq!(meta.get_doc("1", kind, k).await, Err(MetaError::NotFound), "{kind} {k} outlived its function");
    }
    for (kind, k) in [("asyncConfig", "vs/f1_b/LATEST"), ("onDemand", "services/vs.LATEST/functions/f1_b"), ("provision", "vs#prod#f1_b")] {
        assert!(meta.get_doc("1", kind, k).await.is_ok(), "{kind} {k} of another function was removed");
    }

    // A service's VPC bindings go with it (and stay when the delete is refused); another service's
    // (even one whose name extends it) stay.
    meta.create_service(&service("bs")).await.unwrap();
    meta.create_service(&service("bs_b")).await.unwrap();
    for k in ["bs/vpc-1", "bs/vpc-2", "bs_b/vpc-1"] {
        meta.put_doc(&cfg("vpcBinding", k)).await.unwrap();
    }
    meta.create_function(&function("bs", "f", None)).await.unwrap();
    assert!(matches!(meta.delete_service("1", "bs", None).await, Err(MetaError::Conflict(_))));
    assert!(meta.get_doc("1", "vpcBinding", "bs/vpc-1").await.is_ok(), "a refused delete removed a binding");
    assert_eq!(meta.delete_service("1", "bs", Some("wrong")).await, Err(MetaError::PreconditionFailed));
    meta.delete_function("1", "bs", "f", None).await.unwrap();
    assert!(meta.get_doc("1", "vpcBinding", "bs/vpc-2").await.is_ok(), "a failed delete removed a binding");
    meta.delete_service("1", "bs", None).await.unwrap();
    for k in ["bs/vpc-1", "bs/vpc-2"] {
        assert_eq!(meta.get_doc("1", "vpcBinding", k).await, Err(MetaError::NotFound), "{k} outlived its service");
    }
    assert!(meta.get_doc("1", "vpcBinding", "bs_b/vpc-1").await.is_ok(), "another service's binding was removed");
}

#[tokio::test]
async fn sqlite_resources_conform() {
    let dir = tempfile::tempdir().unwrap();
    conformance_resources(support::sqlite(&dir).await.as_ref()).await;
}

#[tokio::test]
async fn postgres_resources_conform() {
    if let Some(meta) = support::postgres("resources").await {
        conformance_resources(meta.as_ref()).await;
    }
}
