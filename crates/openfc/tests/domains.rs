//! Custom domains in core on a real store: a name has one owner account whatever the case it is written in,
//! a half-created name is taken over only after the grace, the host lookup is cached (writes this node did
//! not make show within the TTL), and wildcard domains serve one level of subdomains.

use std::time::Duration;

use openfc_core::CoreError;
use openfc_core::ports::Document;
use serde_json::json;

mod common;

fn body(name: &str, function: &str) -> Vec<u8> {
    json!({"domainName": name, "routeConfig": {"routes": [{"path": "/*", "serviceName": "s", "functionName": function}]}})
        .to_string()
        .into_bytes()
}

async fn owner_of_host(fc: &openfc_core::usecase::Fc, host: &str) -> Option<String> {
    fc.custom_domain_for_host(host).await.unwrap().map(|d| d.account.clone())
}

fn claim(owner: &str, name: &str, at: &str) -> Document {
    Document {
        account_id: "*".into(),
        kind: "customDomainOwner",
        key: name.into(),
        body: json!({"accountId": owner}),
        etag: format!("etag-{owner}"),
        created_time: at.into(),
        modified_time: at.into(),
    }
}

#[tokio::test]
async fn one_owner_per_name_in_any_case() {
    let dir = tempfile::tempdir().unwrap();
    let (fc, _) = common::core(dir.path(), Duration::from_secs(600), std::sync::Arc::new(common::FakeInvoker::default())).await;
    let created = fc.create_custom_domain("1", &body("Shop.Example.com", "f")).await.unwrap();
    assert_eq!(created.key, "shop.example.com");
    assert_eq!(openfc_core::domains::domain_json(&created)["domainName"], "Shop.Example.com");
    for name in ["shop.example.com", "SHOP.EXAMPLE.COM", "Shop.Example.com"] {
        let taken = fc.create_custom_domain("2", &body(name, "g")).await.unwrap_err();
        assert!(matches!(taken, CoreError::DomainNameAlreadyExists(ref n) if n == name), "{taken:?}");
        assert!(matches!(fc.create_custom_domain("1", &body(name, "g")).await, Err(CoreError::DomainNameAlreadyExists(_))));
    }
    assert!(matches!(fc.get_custom_domain("2", "shop.example.com").await, Err(CoreError::DomainNameNotFound(_))));
    assert_eq!(owner_of_host(&fc, "SHOP.example.com:8080").await.as_deref(), Some("1"));

    // Deleted (in another spelling), the name is free for anyone, and routes to its new owner at once.
    fc.delete_custom_domain("1", "SHOP.EXAMPLE.COM").await.unwrap();
    assert_eq!(owner_of_host(&fc, "shop.example.com").await, None);
    fc.create_custom_domain("2", &body("shop.example.com", "g")).await.unwrap();
    assert_eq!(owner_of_host(&fc, "shop.example.com").await.as_deref(), Some("2"));
    // Account 1's delete does not free account 2's name.
    assert!(matches!(fc.delete_custom_domain("1", "shop.example.com").await, Err(CoreError::DomainNameNotFound(_))));
    assert!(fc.create_custom_domain("1", &body("shop.example.com", "f")).await.is_err());
}

#[tokio::test]
async fn a_claim_without_its_domain_is_taken_over_only_after_the_grace() {
    let dir = tempfile::tempdir().unwrap();
    let (fc, _) = common::core(dir.path(), Duration::from_secs(600), std::sync::Arc::new(common::FakeInvoker::default())).await;
    // Account 1's create stopped between its claim and its domain: just now, and long ago.
    fc.meta.create_doc(&claim("1", "fresh.example.com", &fc.timestamp())).await.unwrap();
    fc.meta.create_doc(&claim("1", "stale.example.com", "2020-01-01T00:00:00.000Z")).await.unwrap();
    assert!(matches!(fc.create_custom_domain("2", &body("fresh.example.com", "g")).await, Err(CoreError::DomainNameAlreadyExists(_))));
    fc.create_custom_domain("2", &body("stale.example.com", "g")).await.unwrap();
    assert_eq!(owner_of_host(&fc, "stale.example.com").await.as_deref(), Some("2"));
    // The claimant itself may finish its create any time.
    fc.create_custom_domain("1", &body("fresh.example.com", "f")).await.unwrap();
    assert_eq!(owner_of_host(&fc, "fresh.example.com").await.as_deref(), Some("1"));
}

#[tokio::test]
async fn lookups_are_cached_and_other_writers_show_within_the_ttl() {
    let dir = tempfile::tempdir().unwrap();
    // common::core's hot-cache TTL is one second.
    let (fc, _) = common::core(dir.path(), Duration::from_secs(600), std::sync::Arc::new(common::FakeInvoker::default())).await;
    assert_eq!(owner_of_host(&fc, "later.example.com").await, None);
    // Another node writes the domain (straight to the shared store): this node keeps its answer until the TTL.
    let now = fc.timestamp();
    fc.meta.create_doc(&claim("1", "later.example.com", &now)).await.unwrap();
    let doc = Document {
        account_id: "1".into(),
        kind: openfc_core::domains::DOMAIN,
        key: "later.example.com".into(),
        body: json!({"domainName": "later.example.com", "routeConfig": {"routes": []}}),
        etag: "e1".into(),
        created_time: now.clone(),
        modified_time: now,
    };
    fc.meta.create_doc(&doc).await.unwrap();
    assert_eq!(owner_of_host(&fc, "later.example.com").await, None, "served from the cache");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(owner_of_host(&fc, "later.example.com").await.as_deref(), Some("1"));
    // Gone from the store: still cached until the TTL, then gone here too.
    fc.meta.delete_doc("1", openfc_core::domains::DOMAIN, "later.example.com", None).await.unwrap();
    assert_eq!(owner_of_host(&fc, "later.example.com").await.as_deref(), Some("1"), "served from the cache");
    tokio::time::sleep(Duration::from_millis(1100)).await;
    assert_eq!(owner_of_host(&fc, "later.example.com").await, None);
}

#[tokio::test]
async fn wildcard_domains_and_domains_stored_before_owners() {
    let dir = tempfile::tempdir().unwrap();
    let (fc, _) = common::core(dir.path(), Duration::from_secs(600), std::sync::Arc::new(common::FakeInvoker::default())).await;
    fc.create_custom_domain("1", &body("*.Wild.example.com", "f")).await.unwrap();
    assert_eq!(owner_of_host(&fc, "a.wild.example.com").await.as_deref(), Some("1"));
    assert_eq!(owner_of_host(&fc, "a.b.wild.example.com").await, None, "one level of subdomain");
    assert_eq!(owner_of_host(&fc, "wild.example.com").await, None);
    fc.create_custom_domain("1", &body("exact.wild.example.com", "g")).await.unwrap();
    let exact = fc.custom_domain_for_host("exact.wild.example.com").await.unwrap().unwrap();
    assert_eq!(exact.name, "exact.wild.example.com", "an exact name wins over the wildcard");

    // A domain written before names had owners routes once it is updated (and claims its name then).
    let now = fc.timestamp();
    let old = Document {
        account_id: "1".into(),
        kind: openfc_core::domains::DOMAIN,
        key: "old.example.com".into(),
        body: json!({"protocol": "HTTP", "routeConfig": {"routes": []}}),
        etag: "e".into(),
        created_time: now.clone(),
        modified_time: now,
    };
    fc.meta.create_doc(&old).await.unwrap();
    assert_eq!(owner_of_host(&fc, "old.example.com").await, None);
    let updated = fc.update_custom_domain("1", "Old.Example.com", br#"{"protocol":"HTTP"}"#).await.unwrap();
    assert_eq!(openfc_core::domains::domain_json(&updated)["domainName"], "old.example.com");
    assert_eq!(owner_of_host(&fc, "old.example.com").await.as_deref(), Some("1"));
}
