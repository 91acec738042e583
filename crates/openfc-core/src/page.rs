//! Pagination as FC lists do it (spec §6): names ascending in byte order, `prefix` always applied,
//! `startKey` an inclusive lower bound, `nextToken` (the next item's name) present only when more remain.

use crate::error::CoreError;

pub const DEFAULT_LIMIT: usize = 20;
pub const MAX_LIMIT: usize = 100;

#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct PageQuery {
    pub prefix: Option<String>,
    /// Inclusive lower bound: the `nextToken` when given, else `startKey`.
    pub start: Option<String>,
    pub limit: usize,
}

impl PageQuery {
    pub fn new(
        limit: Option<&str>,
        prefix: Option<&str>,
        start_key: Option<&str>,
        next_token: Option<&str>,
    ) -> Result<Self, CoreError> {
        let limit = match limit.filter(|l| !l.is_empty()) {
            None => DEFAULT_LIMIT,
            Some(l) => match l.parse::<i64>() {
                Ok(n) if (0..=MAX_LIMIT as i64).contains(&n) => {
                    if n == 0 { DEFAULT_LIMIT } else { n as usize }
                }
                _ => {
                    return Err(CoreError::invalid_value("Limit", format_args!("1 to {MAX_LIMIT}"), l));
                }
            },
        };
        let non_empty = |s: Option<&str>| s.filter(|s| !s.is_empty()).map(str::to_owned);
        let start = non_empty(next_token).or_else(|| non_empty(start_key));
        Ok(PageQuery { prefix: non_empty(prefix), start, limit })
    }

    /// Splits the up to `limit + 1` items a store returned into the page and its `nextToken`.
    pub fn finish<T>(&self, mut items: Vec<T>, name: impl Fn(&T) -> &str) -> (Vec<T>, Option<String>) {
        if items.len() > self.limit {
            let next = name(&items[self.limit]).to_owned();
            items.truncate(self.limit);
            (items, Some(next))
        } else {
            (items, None)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn token_wins_over_start_key_and_limits_are_checked() {
        let q = PageQuery::new(Some("3"), Some("a"), Some("ab"), Some("ac")).unwrap();
        assert_eq!(q, PageQuery { prefix: Some("a".into()), start: Some("ac".into()), limit: 3 });
        assert_eq!(PageQuery::new(None, None, Some("k"), None).unwrap().start.as_deref(), Some("k"));
        assert_eq!(PageQuery::new(None, None, None, None).unwrap().limit, DEFAULT_LIMIT);
        assert!(PageQuery::new(Some("101"), None, None, None).is_err());
        assert!(PageQuery::new(Some("-1"), None, None, None).is_err());
        assert!(PageQuery::new(Some("x"), None, None, None).is_err());
        assert_eq!(
            PageQuery::new(Some("101"), None, None, None).unwrap_err().to_string(),
            "Limit is set to an invalid value (allowed: 1 to 100, actual: '101')"
        );
    }

    #[test]
    fn finish_sets_next_token_only_when_more_remain() {
        let q = PageQuery { limit: 2, ..Default::default() };
        assert_eq!(q.finish(vec!["a", "b", "c"], |s| s), (vec!["a", "b"], Some("c".to_owned())));
        assert_eq!(q.finish(vec!["a", "b"], |s| s), (vec!["a", "b"], None));
    }
}
