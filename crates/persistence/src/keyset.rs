//! Keyset pagination over a `(timestamp, uuid)` key, written as a row comparison —
//! `(created_at, id) > ($1, $2)` — which PostgreSQL answers with one index range scan.
//! The equivalent `a > $1 OR (a = $1 AND b > $2)` is not matched to the index as a
//! range: every page would scan from the start, and reading a million rows page by page
//! would cost time quadratic in their number.

use chrono::{DateTime, Utc};
use diesel::expression::BoxableExpression;
use diesel::pg::Pg;
use diesel::sql_types::{Bool, Timestamptz, Uuid as SqlUuid};
use uuid::Uuid;

/// `(columns) > (at, id)`, for a boxed query's `filter` on a list in ascending order.
/// `columns` names the key's two columns, e.g. `"created_at, id"` (a constant: never
/// built from input).
pub fn after<QS: 'static>(
    columns: &'static str,
    at: DateTime<Utc>,
    id: Uuid,
) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Bool>> {
    compare(columns, ">", at, id)
}

/// `(columns) < (at, id)`: [`after`] for a list in descending order (newest first).
pub fn before<QS: 'static>(
    columns: &'static str,
    at: DateTime<Utc>,
    id: Uuid,
) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Bool>> {
    compare(columns, "<", at, id)
}

fn compare<QS: 'static>(
    columns: &'static str,
    operator: &'static str,
    at: DateTime<Utc>,
    id: Uuid,
) -> Box<dyn BoxableExpression<QS, Pg, SqlType = Bool>> {
    Box::new(
        diesel::dsl::sql::<Bool>(&format!("({columns}) {operator} ("))
            .bind::<Timestamptz, _>(at)
            .sql(", ")
            .bind::<SqlUuid, _>(id)
            .sql(")"),
    )
}

/// One page of an organization's rows in `(created_at, key)` order, as an export reads
/// them: created in `[from, before)`, after the previous page's last key.
#[derive(Debug, Clone, Copy)]
pub struct Window {
    pub org_id: Uuid,
    pub from: Option<DateTime<Utc>>,
    pub before: DateTime<Utc>,
    /// The last key of the previous page; `None` for the first.
    pub after: Option<(DateTime<Utc>, Uuid)>,
    pub limit: i64,
}
