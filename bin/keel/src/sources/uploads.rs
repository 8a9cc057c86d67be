//! `uploads`: the organization's uploads' metadata, never their bytes (uploads).

use super::{key, parsed, window};
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_exports::{Column, ColumnKind, DataSource, FilterSpec, Key, Row, Scope};
use keel_persistence::{AsyncPgConnection, DbResult};
use keel_uploads::UploadState;
use keel_uploads::repo::exported;

#[derive(Debug)]
pub struct UploadsMetadata;

const COLUMNS: &[Column] = &[
    Column::new("id", ColumnKind::Uuid, "The upload's id"),
    Column::new("created_at", ColumnKind::Timestamp, "When it was created"),
    Column::new("file_name", ColumnKind::Text, "The file's name"),
    Column::new(
        "state",
        ColumnKind::Text,
        "receiving, processing, ready, rejected or failed",
    ),
    Column::new("method", ColumnKind::Text, "streamed, resumable or direct"),
    Column::new(
        "declared_type",
        ColumnKind::Text,
        "The content type the client declared",
    ),
    Column::new(
        "detected_type",
        ColumnKind::Text,
        "The content type the bytes show",
    ),
    Column::new("size_bytes", ColumnKind::Integer, "The file's size"),
    Column::new("sha256", ColumnKind::Text, "Hex SHA-256 of the content"),
    Column::new(
        "uploaded_by_user",
        ColumnKind::Uuid,
        "The person who uploaded it, if a person did",
    ),
    Column::new(
        "uploaded_by_key",
        ColumnKind::Uuid,
        "The API key that uploaded it, if a key did",
    ),
    Column::new(
        "processed_at",
        ColumnKind::Timestamp,
        "When processing ended",
    ),
];

const FILTERS: &[FilterSpec] = &[FilterSpec {
    name: "state",
    description: "Only uploads in this state",
    values: Some(UploadState::WORDS),
}];

impl DataSource for UploadsMetadata {
    fn name(&self) -> &'static str {
        "uploads"
    }

    fn description(&self) -> &'static str {
        "The organization's uploaded files: names, types, sizes and states (not their content)"
    }

    fn columns(&self) -> &'static [Column] {
        COLUMNS
    }

    fn filters(&self) -> &'static [FilterSpec] {
        FILTERS
    }

    fn estimate<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
    ) -> BoxFuture<'a, DbResult<i64>> {
        async move {
            let w = window(scope, None, 0);
            exported::count_uploads(conn, &w, parsed(scope, "state")?).await
        }
        .boxed()
    }

    fn page<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
        after: Option<Key>,
        limit: i64,
    ) -> BoxFuture<'a, DbResult<Vec<Row>>> {
        async move {
            let w = window(scope, after, limit);
            let uploads = exported::uploads_page(conn, &w, parsed(scope, "state")?).await?;
            Ok(uploads
                .into_iter()
                .map(|u| {
                    let cells = vec![
                        u.id.into(),
                        u.created_at.into(),
                        u.file_name.into(),
                        u.state.as_str().into(),
                        u.method.as_str().into(),
                        u.declared_type.into(),
                        u.detected_type.into(),
                        u.size_bytes.into(),
                        u.sha256.into(),
                        u.uploaded_by_user.into(),
                        u.uploaded_by_key.into(),
                        u.processed_at.into(),
                    ];
                    (key(u.created_at, u.id), cells)
                })
                .collect())
        }
        .boxed()
    }
}
