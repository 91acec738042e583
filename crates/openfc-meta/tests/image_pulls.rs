//! `ImageMeta` conformance on both dialects: a pull's lease is held, renewed and settled only by its owner;
//! abandoned pulls are taken over by exactly one node; failed pulls can be put back; the functions and published
//! versions naming a pull are found through their stored configurations.

use std::sync::Arc;

use openfc_core::images::{ImageMeta, ImagePullRecord, ImageUser, PullStatus, PulledImage, set_pull};
use openfc_core::ports::{AccessKeyRecord, AccountRecord, FunctionRecord, KeyStatus, MetaError, MetaStore, ServiceRecord};
use openfc_meta::SqlMeta;
use serde_json::json;

mod support;

fn pull(id: &str, reference: &str, owner: &str, lease_until_ms: i64) -> ImagePullRecord {
    ImagePullRecord {
        id: id.into(),
        account_id: "acct".into(),
        reference: reference.into(),
        has_command: id.ends_with("cmd"),
        named: false,
        status: PullStatus::Preparing,
        reason: String::new(),
        image: None,
        owner: owner.into(),
        lease_until_ms,
        created_ms: 1000,
        updated_ms: 1000,
    }
}

fn image() -> PulledImage {
    PulledImage {
        registry: "127.0.0.1:5001".into(),
        digest: format!("sha256:{}", "a".repeat(64)),
        config_digest: format!("sha256:{}", "b".repeat(64)),
        chain_id: format!("sha256:{}", "c".repeat(64)),
        layers: Vec::new(),
        entrypoint: vec!["/bin/sh".into()],
        cmd: vec!["-c".into(), "true".into()],
        env: vec!["PATH=/bin".into()],
        working_dir: "/srv".into(),
        user: ImageUser { uid: 1000, gid: 1000, groups: vec![10], home: Some("/home/app".into()) },
        compressed_bytes: 10,
        unpacked_bytes: 20,
    }
}

async fn suite(meta: Arc<SqlMeta>) {
    let m: &dyn ImageMeta = meta.as_ref();
    m.create_image_pull(&pull("p1", "reg/a:1", "node-a", 5000)).await.unwrap();
    m.create_image_pull(&pull("p2cmd", "reg/b:1", "node-a", 5000)).await.unwrap();
    assert_eq!(m.get_image_pull("p1").await.unwrap(), pull("p1", "reg/a:1", "node-a", 5000));
    assert!(m.get_image_pull("p2cmd").await.unwrap().has_command);
    m.mark_image_pull_named("p2cmd").await.unwrap();
    assert!(m.get_image_pull("p2cmd").await.unwrap().named);
    assert!(matches!(m.get_image_pull("nope").await, Err(MetaError::NotFound)));

    // Only the owner renews and settles.
    assert!(m.renew_image_pull("p1", "node-a", 9000).await.unwrap());
    assert!(!m.renew_image_pull("p1", "node-b", 9999).await.unwrap());
    assert!(!m.settle_image_pull("p1", "node-b", PullStatus::Ready, "", Some(&image()), 2000).await.unwrap());
    assert_eq!(m.get_image_pull("p1").await.unwrap().lease_until_ms, 9000);
    assert!(m.settle_image_pull("p1", "node-a", PullStatus::Ready, "", Some(&image()), 2000).await.unwrap());
    let ready = m.get_image_pull("p1").await.unwrap();
    assert_eq!((ready.status, ready.image, ready.updated_ms), (PullStatus::Ready, Some(image()), 2000));
    // Settled once: a second settle (a node that lost the lease late) writes nothing.
    assert!(!m.settle_image_pull("p1", "node-a", PullStatus::Failed, "late", None, 3000).await.unwrap());
    assert_eq!(m.get_image_pull("p1").await.unwrap().status, PullStatus::Ready);

    // An abandoned pull: nothing to claim while its lease runs; afterwards exactly one node wins it.
    assert!(m.claim_image_pulls("node-b", 4000, 40_000, 10).await.unwrap().is_empty());
    let (b, c) = tokio::join!(m.claim_image_pulls("node-b", 6000, 40_000, 10), m.claim_image_pulls("node-c", 6000, 40_000, 10));
    let (b, c) = (b.unwrap(), c.unwrap());
    assert_eq!(b.len() + c.len(), 1, "one winner: {b:?} {c:?}");
    let (winner, won) = if b.is_empty() { ("node-c", &c[0]) } else { ("node-b", &b[0]) };
    assert_eq!((won.id.as_str(), won.owner.as_str(), won.lease_until_ms), ("p2cmd", winner, 40_000));
    assert!(!m.renew_image_pull("p2cmd", "node-a", 50_000).await.unwrap(), "the old owner lost it");
    assert!(m.settle_image_pull("p2cmd", winner, PullStatus::Failed, "image 'reg/b:1' not found", None, 7000).await.unwrap());

    // A failed pull put back to Preparing with an ended lease: any node claims it at once.
    assert_eq!(m.retry_failed_image_pulls("reg/b:1", 8000).await.unwrap(), 1);
    assert_eq!(m.retry_failed_image_pulls("reg/other:1", 8000).await.unwrap(), 0);
    let again = m.claim_image_pulls("node-d", 8001, 50_000, 10).await.unwrap();
    assert_eq!((again.len(), again[0].reason.as_str(), again[0].status), (1, "", PullStatus::Preparing));

    // Who names a pull: the function (LATEST) and a version published from it.
    let store: &dyn MetaStore = meta.as_ref();
    let account = AccountRecord { id: "acct".into(), created_time: "t".into() };
    let key = AccessKeyRecord {
        id: "K1".into(),
        account_id: "acct".into(),
        sealed_secret: "sealed".into(),
        status: KeyStatus::Active,
        created_time: "t".into(),
        policy: None,
    };
    store.create_first_account(&account, &key).await.unwrap();
    store
        .create_service(&ServiceRecord {
            account_id: "acct".into(),
            name: "svc".into(),
            id: "sid".into(),
            config: json!({}),
            etag: "e0".into(),
            created_time: "t".into(),
            modified_time: "t".into(),
        })
        .await
        .unwrap();
    let mut config = json!({"runtime": "custom-container", "customContainerConfig": {"image": "reg/a:1"}});
    set_pull(&mut config, "p1");
    let f = FunctionRecord {
        account_id: "acct".into(),
        service_name: "svc".into(),
        name: "fn".into(),
        id: "fid".into(),
        config,
        code: None,
        etag: "e1".into(),
        created_time: "t".into(),
        modified_time: "t".into(),
    };
    store.create_function(&f).await.unwrap();
    let v = store.publish_version("acct", "svc", "", None, "t").await.unwrap();
    let mut users = m.image_pull_users().await.unwrap();
    users.sort_by_key(|u| u.version);
    assert_eq!(users.len(), 2, "{users:?}");
    assert_eq!((users[0].pull.as_str(), users[0].function.as_str(), users[0].version), ("p1", "fn", None));
    assert_eq!((users[1].pull.as_str(), users[1].version), ("p1", Some(v.version_id)));

    assert_eq!(m.list_image_pulls().await.unwrap().len(), 2);
    m.delete_image_pulls(&["p2cmd".into()]).await.unwrap();
    assert_eq!(m.list_image_pulls().await.unwrap().iter().map(|p| p.id.as_str()).collect::<Vec<_>>(), vec!["p1"]);
}

#[tokio::test]
async fn sqlite_image_pulls_conform() {
    let dir = tempfile::tempdir().unwrap();
    suite(support::sqlite(&dir).await).await;
}

#[tokio::test]
async fn postgres_image_pulls_conform() {
    if let Some(meta) = support::postgres("image_pulls").await {
        suite(meta).await;
    }
}
