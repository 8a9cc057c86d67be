//! The export sources this binary offers: datasets of the other domains, read through
//! each domain's own queries (`exported` modules) and shaped here into
//! [`keel_exports::DataSource`]s. A domain that wants its data exportable adds a query
//! there and a source here; the exports crate does not change.

mod audit_events;
mod members;
mod uploads;
mod webhook_deliveries;

use chrono::{DateTime, Utc};
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_exports::{Key, Row, Scope, Sources};
use keel_persistence::AsyncPgConnection;
use keel_persistence::keyset::Window;
use keel_persistence::{DbError, DbResult};
use std::future::Future;
use uuid::Uuid;

/// Every source.
pub fn all() -> Sources {
    Sources::new()
        .with(members::Members)
        .with(audit_events::AuditEvents)
        .with(webhook_deliveries::WebhookDeliveries)
        .with(uploads::UploadsMetadata)
}

/// The domain queries' view of a page of `scope`.
fn window(scope: &Scope, after: Option<Key>, limit: i64) -> Window {
    Window {
        org_id: scope.org_id(),
        from: scope.created_from(),
        before: scope.created_before(),
        after: after.map(|k| (k.at, k.id)),
        limit,
    }
}

/// A source's count: `count` (a domain's count query) over the whole of `scope`.
fn counted<'a, Fut>(
    conn: &'a mut AsyncPgConnection,
    scope: &'a Scope,
    count: impl FnOnce(&'a mut AsyncPgConnection, Window) -> Fut,
) -> BoxFuture<'a, DbResult<i64>>
where
    Fut: Future<Output = DbResult<i64>> + Send + 'a,
{
    count(conn, window(scope, None, 0)).boxed()
}

/// A source's page: `fetch` (a domain's page query) after `after`, each record shaped
/// into a row by `row`.
fn paged<'a, R: Send + 'a, Fut>(
    conn: &'a mut AsyncPgConnection,
    scope: &'a Scope,
    after: Option<Key>,
    limit: i64,
    fetch: impl FnOnce(&'a mut AsyncPgConnection, Window) -> Fut,
    row: fn(R) -> Row,
) -> BoxFuture<'a, DbResult<Vec<Row>>>
where
    Fut: Future<Output = DbResult<Vec<R>>> + Send + 'a,
{
    let page = fetch(conn, window(scope, after, limit));
    async move { Ok(page.await?.into_iter().map(row).collect()) }.boxed()
}

/// A row's key from its creation time and id.
fn key(at: DateTime<Utc>, id: Uuid) -> Key {
    Key { at, id }
}

/// A filter's value as the type it names. Filters are checked against the source's
/// `values` when the export is requested, so a stored one parses; one that does not
/// fails the page (and so the export) instead of being dropped, which would export
/// more than was asked for.
fn parsed<T: std::str::FromStr>(scope: &Scope, name: &str) -> DbResult<Option<T>> {
    scope
        .filter(name)
        .map(|text| {
            text.parse().map_err(|_| {
                DbError::internal(
                    "reading an export filter",
                    std::io::Error::other(format!("`{name}` = {text:?} is not a value it takes")),
                )
            })
        })
        .transpose()
}
