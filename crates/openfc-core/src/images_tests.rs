use super::*;

fn v(items: &[&str]) -> Vec<String> {
    items.iter().map(|s| s.to_string()).collect()
}

#[test]
fn argv_follows_the_kubernetes_rule() {
    let (e, c) = (v(&["/e"]), v(&["c1", "c2"]));
    assert_eq!(argv(&e, &c, None, None), Some(v(&["/e", "c1", "c2"])));
    assert_eq!(argv(&e, &c, Some(v(&["/x"])), None), Some(v(&["/x"])));
    assert_eq!(argv(&e, &c, None, Some(v(&["a"]))), Some(v(&["/e", "a"])));
    assert_eq!(argv(&e, &c, Some(v(&["/x"])), Some(v(&["a"]))), Some(v(&["/x", "a"])));
    assert_eq!(argv(&[], &c, None, None), Some(v(&["c1", "c2"])));
    assert_eq!(argv(&[], &[], None, None), None);
    assert_eq!(argv(&[], &[], None, Some(v(&["a"]))), Some(v(&["a"])));
}

#[test]
fn the_pull_key_is_hidden_and_round_trips() {
    let mut config = serde_json::json!({"runtime": "custom-container"});
    set_pull(&mut config, "p1");
    assert_eq!(pull_of(&config), Some("p1"));
}
