//! Exports: reports generated off the request path, streamed into object storage in
//! bounded memory, downloaded through expiring signed links.
//!
//! An export is a resource, like Stripe's report runs: requested (`202 Accepted`),
//! produced by the `exports.generate` job ([`generate`]), polled or announced by the
//! `export.completed` event, downloaded through a short-lived link, and deleted after
//! its retention ([`retention`]).
//!
//! Exports own no data: they read the datasets other domains offer as
//! [`source::DataSource`]s, which the binary registers. Every source is scoped to one
//! organization by construction ([`source::Scope`]).
//!
//! Files live under `{org_id}/exports/{export_id}/` ([`keys`]); Postgres holds the row
//! that says what they are.
//!
//! Metrics: `keel_exports_rows_total{source}`, `keel_exports_finished_total{outcome}`,
//! `keel_exports_generation_seconds{outcome}`.

pub mod encode;
mod error;
mod generate;
pub mod http;
pub mod jobs;
pub mod keys;
pub mod limits;
pub mod link;
pub mod model;
mod replica;
pub mod repo;
pub mod request;
pub mod retention;
mod service;
pub mod sink;
pub mod source;

/// The area of the exports domain's API-key scopes: `exports:read`, `exports:write`.
pub const SCOPE_AREA: &str = "exports";

pub use error::ExportsError;
pub use model::{Export, ExportFormat, ExportState, Progress};
pub use request::NewExport;
pub use service::{DownloadLink, Exports, Services};
pub use source::{
    Cell, Column, ColumnKind, DataSource, FilterSpec, Key, Row, Scope, SourceInfo, Sources,
};
