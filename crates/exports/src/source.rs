//! What can be exported: data sources, declared here and provided by the other domains.
//!
//! Exports own no data. A [`DataSource`] is a named dataset of one organization — its
//! columns, the filters it takes, an estimate of its size, and its rows in pages ordered
//! by a stable key — and the binary registers one per dataset the other domains offer
//! (members, audit events, webhook deliveries, uploads). A team adding a domain adds a
//! source there, without touching this crate.
//!
//! Tenancy is by construction: a source reads through a [`Scope`], which only this crate
//! builds and which always carries the organization. Sources select the columns they
//! export and nothing else.

use chrono::{DateTime, Utc};
use futures::future::BoxFuture;
use keel_persistence::{AsyncPgConnection, DbResult};
use serde::Serialize;
use std::collections::BTreeMap;
use std::sync::Arc;
use uuid::Uuid;

/// A column of a source: its name (the CSV header, the NDJSON key) and its type.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct Column {
    pub name: &'static str,
    #[serde(rename = "type")]
    pub kind: ColumnKind,
    pub description: &'static str,
}

impl Column {
    pub const fn new(name: &'static str, kind: ColumnKind, description: &'static str) -> Self {
        Self {
            name,
            kind,
            description,
        }
    }
}

/// How a column's values are written: in NDJSON as the matching JSON type (timestamps as
/// RFC 3339 text), in CSV as text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, utoipa::ToSchema)]
#[serde(rename_all = "snake_case")]
pub enum ColumnKind {
    Text,
    Integer,
    Boolean,
    Timestamp,
    Uuid,
    /// A JSON value: nested in NDJSON, its JSON text in CSV.
    Json,
}

/// A filter a source takes besides the time range every source takes. Its value is a
/// text; `values`, when given, lists the only ones accepted.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct FilterSpec {
    pub name: &'static str,
    pub description: &'static str,
    #[serde(skip_serializing_if = "Option::is_none")]
    pub values: Option<&'static [&'static str]>,
}

/// One value of a row.
#[derive(Debug, Clone, PartialEq)]
pub enum Cell {
    Null,
    Text(String),
    Int(i64),
    Bool(bool),
    Time(DateTime<Utc>),
    Uuid(Uuid),
    Json(serde_json::Value),
}

macro_rules! cell_from {
    ($($t:ty => $variant:ident $(as $cast:ty)?),+ $(,)?) => {$(
        impl From<$t> for Cell {
            fn from(value: $t) -> Self {
                Cell::$variant(value $(as $cast)?)
            }
        }
    )+};
}

cell_from!(
    String => Text,
    i64 => Int,
    i32 => Int as i64,
    bool => Bool,
    DateTime<Utc> => Time,
    Uuid => Uuid,
    serde_json::Value => Json,
);

impl From<&str> for Cell {
    fn from(value: &str) -> Self {
        Cell::Text(value.to_owned())
    }
}

impl<T: Into<Cell>> From<Option<T>> for Cell {
    fn from(value: Option<T>) -> Self {
        value.map_or(Cell::Null, Into::into)
    }
}

/// Where a page ends: sources order rows by `(created_at, id)`, ascending — a key no
/// later write changes, so pages neither skip nor repeat a row.
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord)]
pub struct Key {
    pub at: DateTime<Utc>,
    pub id: Uuid,
}

/// A row and its key.
pub type Row = (Key, Vec<Cell>);

/// What one export reads: the organization, the time range, and the source's own
/// filters (validated against its [`FilterSpec`]s). Built only by this crate, so no
/// source can be asked for rows without an organization.
#[derive(Debug, Clone)]
pub struct Scope {
    org_id: Uuid,
    created_from: Option<DateTime<Utc>>,
    created_before: DateTime<Utc>,
    filters: BTreeMap<String, String>,
}

impl Scope {
    pub(crate) fn new(
        org_id: Uuid,
        created_from: Option<DateTime<Utc>>,
        created_before: DateTime<Utc>,
        filters: BTreeMap<String, String>,
    ) -> Self {
        Self {
            org_id,
            created_from,
            created_before,
            filters,
        }
    }

    /// The organization whose rows these are; every query filters on it.
    pub fn org_id(&self) -> Uuid {
        self.org_id
    }

    /// Rows created at or after this, if given.
    pub fn created_from(&self) -> Option<DateTime<Utc>> {
        self.created_from
    }

    /// Only rows created before this: the request's `created_before`, or the moment
    /// the export was requested, whichever is earlier — the upper bound that keeps an
    /// export spanning several read transactions from picking up rows written meanwhile.
    pub fn created_before(&self) -> DateTime<Utc> {
        self.created_before
    }

    /// The value of one of the source's filters, when the request set it.
    pub fn filter(&self, name: &str) -> Option<&str> {
        self.filters.get(name).map(String::as_str)
    }
}

/// What a source is, as `GET .../exports/sources` lists it: a constant of each source.
#[derive(Debug, Clone, Copy, Serialize, utoipa::ToSchema)]
pub struct SourceInfo {
    /// The name requests use (`"members"`): stable, lowercase, `_` between words.
    pub name: &'static str,
    /// One sentence for the list of sources.
    pub description: &'static str,
    /// The columns, in file order; every row has one cell per column.
    pub columns: &'static [Column],
    /// The filters besides the time range (`created_after`, `created_before`), which
    /// every source takes.
    pub filters: &'static [FilterSpec],
}

/// A dataset that can be exported. See the module docs.
pub trait DataSource: Send + Sync + std::fmt::Debug + 'static {
    /// Its name, columns and filters.
    fn info(&self) -> &'static SourceInfo;
    /// About how many rows the scope holds (progress shows a percentage of it).
    fn estimate<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
    ) -> BoxFuture<'a, DbResult<i64>>;
    /// Up to `limit` rows of the scope after `after` (from the start when `None`),
    /// ordered by their [`Key`]. Fewer than `limit` means the end.
    fn page<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
        after: Option<Key>,
        limit: i64,
    ) -> BoxFuture<'a, DbResult<Vec<Row>>>;
}

/// The sources a deployment offers, by name.
#[derive(Clone, Default)]
pub struct Sources(BTreeMap<&'static str, Arc<dyn DataSource>>);

impl std::fmt::Debug for Sources {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_list().entries(self.0.keys()).finish()
    }
}

impl Sources {
    pub fn new() -> Self {
        Self::default()
    }

    /// Adds `source`; a second source of the same name replaces the first.
    pub fn with(mut self, source: impl DataSource) -> Self {
        self.0.insert(source.info().name, Arc::new(source));
        self
    }

    pub fn get(&self, name: &str) -> Option<&Arc<dyn DataSource>> {
        self.0.get(name)
    }

    /// Every source, by name.
    pub fn iter(&self) -> impl Iterator<Item = &Arc<dyn DataSource>> {
        self.0.values()
    }

    /// The names, for error messages.
    pub fn names(&self) -> Vec<&'static str> {
        self.0.keys().copied().collect()
    }
}
