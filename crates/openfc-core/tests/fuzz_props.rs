//! Property tests (proptest) where an invariant is easier to state than a corpus: pagination over any
//! sequence of creates and deletes (spec §6 rules of `page::PageQuery`), and alias weight routing.

use std::collections::{BTreeMap, BTreeSet};

use openfc_core::invoke::route;
use openfc_core::names::VersionId;
use openfc_core::page::PageQuery;
use openfc_core::versions::Alias;
use proptest::prelude::*;

/// What a store returns for a page: names >= start with the prefix, ascending, at most limit + 1.
fn store_page(names: &BTreeSet<String>, q: &PageQuery) -> Vec<String> {
    let start = q.start.clone().unwrap_or_default();
    names
        .range(start..)
        .filter(|n| q.prefix.as_deref().is_none_or(|p| n.starts_with(p)))
        .take(q.limit + 1)
        .cloned()
        .collect()
}

#[derive(Debug, Clone)]
enum Op {
    Create(String),
    Delete(usize),
    /// Read the next page (of the walk in progress, or a new walk).
    Page,
}

fn op() -> impl Strategy<Value = Op> {
    prop_oneof![
        3 => "[a-c]{1,3}".prop_map(Op::Create),
        1 => any::<usize>().prop_map(Op::Delete),
        2 => Just(Op::Page),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    /// Walking the pages while names are created and deleted between pages: the walk is strictly
    /// ascending (nothing listed twice), lists only names present when their page was read, and lists
    /// every name that was present, with the prefix, for the whole walk.
    #[test]
    fn pagination_over_creates_and_deletes(
        initial in proptest::collection::btree_set("[a-c]{1,3}", 0..20),
        ops in proptest::collection::vec(op(), 0..60),
        limit in 1usize..5,
        prefix in proptest::option::of("[a-c]"),
    ) {
        let limit_text = limit.to_string();
        let mut names = initial;
        let mut walk: Option<(Vec<String>, BTreeSet<String>, Option<String>)> = None; // listed, present throughout, token
        let finish_walk = |listed: &Vec<String>, always: &BTreeSet<String>| {
            for n in always {
                prop_assert!(listed.contains(n), "{n} was present for the whole walk but not listed: {listed:?}");
            }
            Ok(())
        };
        for op in ops.into_iter().chain(std::iter::repeat_n(Op::Page, 200)) {
            match op {
                Op::Create(n) => { names.insert(n); }
                Op::Delete(i) => {
                    if let Some(n) = names.iter().nth(i % names.len().max(1)).cloned() { names.remove(&n); }
                }
                Op::Page => {
                    let with_prefix = |s: &BTreeSet<String>| -> BTreeSet<String> {
                        s.iter().filter(|n| prefix.as_deref().is_none_or(|p| n.starts_with(p))).cloned().collect()
                    };
                    let (mut listed, mut always, token) = walk.take().unwrap_or_else(|| (Vec::new(), with_prefix(&names), None));
                    always.retain(|n| names.contains(n));
                    let q = PageQuery::new(Some(&limit_text), prefix.as_deref(), None, token.as_deref()).unwrap();
                    let (page, next) = q.finish(store_page(&names, &q), |s| s.as_str());
                    prop_assert!(page.len() <= limit);
                    for n in &page {
                        prop_assert!(names.contains(n));
                        prop_assert!(listed.last().is_none_or(|l| l < n), "{n} after {listed:?}");
                        listed.push(n.clone());
                    }
                    match next {
                        Some(t) => {
                            prop_assert!(listed.last().is_some_and(|l| *l < t));
                            walk = Some((listed, always, Some(t)));
                        }
                        None => {
                            finish_walk(&listed, &always)?;
                        }
                    }
                }
            }
        }
    }

    /// The chosen version is always one the alias names; over evenly spread rolls each additional
    /// version gets its weight's share (within one roll) and the main version the rest.
    #[test]
    fn alias_weight_routing(
        main in 1u64..50,
        weights in proptest::collection::btree_map(51u64..60, 0.0f64..0.3, 0..4),
        n in 100usize..1000,
    ) {
        let additional: BTreeMap<VersionId, f64> = weights.iter().map(|(v, w)| (VersionId::new(*v), *w)).collect();
        let alias = Alias {
            alias_name: "a".into(),
            version_id: VersionId::new(main),
            description: String::new(),
            additional_version_weight: additional,
            resolve_policy: String::new(),
            route_policy: None,
        };
        let mut counts: BTreeMap<u64, usize> = BTreeMap::new();
        for i in 0..n {
            let roll = i as f64 / n as f64;
            let v = route(&alias, roll).unwrap();
            prop_assert!(v == main || weights.contains_key(&v), "{v} is not named by the alias");
            *counts.entry(v).or_default() += 1;
        }
        for (v, w) in &weights {
            let got = *counts.get(v).unwrap_or(&0) as f64;
            prop_assert!((got - w * n as f64).abs() <= 1.0 + 1e-9, "version {v}: {got} of {n}, weight {w}");
        }
        // Any roll in [0, 1) routes somewhere named, the edges included.
        for roll in [0.0, 1.0 - f64::EPSILON] {
            let v = route(&alias, roll).unwrap();
            prop_assert!(v == main || weights.contains_key(&v));
        }
    }
}
