//! Keyset pagination: `?limit=&cursor=` in, `{"items": [...], "next_cursor": ...}` out.
//!
//! Offsets get slower with every page and skip or repeat rows under concurrent writes;
//! a cursor holds the sort key of the last row served, so each page is one index range
//! scan. The cursor is opaque to clients (base64url of JSON) and the page size is capped.

use crate::error::ApiError;
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use serde::de::DeserializeOwned;
use serde::{Deserialize, Serialize};

/// Page size when the client gives none.
pub const DEFAULT_LIMIT: u32 = 50;
/// Hard cap: a client cannot make one request read more rows than this.
pub const MAX_LIMIT: u32 = 100;

/// The raw query parameters.
#[derive(Debug, Clone, Default, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct PageQuery {
    /// Items per page, 1–100 (default 50).
    #[param(minimum = 1, maximum = 100)]
    pub limit: Option<u32>,
    /// `next_cursor` of the previous page; omit for the first page.
    pub cursor: Option<String>,
}

/// A validated page request; `after` is the decoded sort key of the previous page's
/// last item.
#[derive(Debug, Clone)]
pub struct Page<K> {
    pub limit: u32,
    pub after: Option<K>,
}

impl PageQuery {
    pub fn parse<K: DeserializeOwned>(&self) -> Result<Page<K>, ApiError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(ApiError::validation(
                "limit",
                format!("must be between 1 and {MAX_LIMIT}"),
            ));
        }
        let after = match self.cursor.as_deref().filter(|c| !c.is_empty()) {
            None => None,
            Some(cursor) => Some(decode(cursor).ok_or_else(|| {
                ApiError::validation("cursor", "is not a cursor returned by this endpoint")
            })?),
        };
        Ok(Page { limit, after })
    }
}

impl<K> Page<K> {
    /// Rows to fetch: one more than the page, to learn whether another page exists.
    pub fn fetch_limit(&self) -> i64 {
        i64::from(self.limit) + 1
    }
}

/// One page of a list response.
#[derive(Debug, Serialize, Deserialize, utoipa::ToSchema)]
pub struct Paginated<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` to get the next page; absent on the last page.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub next_cursor: Option<String>,
}

impl<T> Paginated<T> {
    /// Builds the page from up to `page.fetch_limit()` rows, with the cursor taken from
    /// the last item served when more rows exist.
    pub fn from_rows<K: Serialize, P>(
        mut rows: Vec<T>,
        page: &Page<P>,
        key_of: impl Fn(&T) -> K,
    ) -> Self {
        let more = rows.len() > page.limit as usize;
        rows.truncate(page.limit as usize);
        let next_cursor = if more {
            rows.last().map(|last| encode(&key_of(last)))
        } else {
            None
        };
        Self {
            items: rows,
            next_cursor,
        }
    }
}

pub fn encode<K: Serialize>(key: &K) -> String {
    URL_SAFE_NO_PAD.encode(serde_json::to_vec(key).unwrap_or_default())
}

fn decode<K: DeserializeOwned>(cursor: &str) -> Option<K> {
    let bytes = URL_SAFE_NO_PAD.decode(cursor).ok()?;
    serde_json::from_slice(&bytes).ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn limits_are_capped_and_cursors_round_trip() {
        let q = PageQuery {
            limit: Some(101),
            cursor: None,
        };
        assert_eq!(q.parse::<i64>().unwrap_err().field(), Some("limit"));
        let q = PageQuery {
            limit: Some(0),
            cursor: None,
        };
        assert!(q.parse::<i64>().is_err());
        let q = PageQuery {
            limit: None,
            cursor: Some("garbage!".into()),
        };
        assert_eq!(q.parse::<i64>().unwrap_err().field(), Some("cursor"));

        let page: Page<i64> = PageQuery {
            limit: Some(2),
            cursor: None,
        }
        .parse()
        .unwrap();
        let p = Paginated::from_rows(vec![1, 2, 3], &page, |n| *n);
        assert_eq!(p.items, [1, 2]);
        let next: Page<i64> = PageQuery {
            limit: Some(2),
            cursor: p.next_cursor,
        }
        .parse()
        .unwrap();
        assert_eq!(next.after, Some(2));
        let last = Paginated::from_rows(vec![3], &next, |n| *n);
        assert!(last.next_cursor.is_none());
    }
}
