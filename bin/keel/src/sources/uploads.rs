//! `uploads`: the organization's uploads' metadata, never their bytes (uploads).

use super::{counted, key, paged, parsed};
use futures::future::BoxFuture;
use keel_exports::{Column, ColumnKind, DataSource, FilterSpec, Key, Row, Scope, SourceInfo};
use keel_persistence::{AsyncPgConnection, DbResult};
use keel_uploads::UploadState;
use keel_uploads::repo::exported::{self, UploadRecord};

#[derive(Debug)]
pub struct UploadsMetadata;

const INFO: SourceInfo = SourceInfo {
    name: "uploads",
    description: "The organization's uploaded files: names, types, sizes and states (not their content)",
    columns: &[
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
    ],
    filters: &[FilterSpec {
        name: "state",
        description: "Only uploads in this state",
        values: Some(UploadState::WORDS),
    }],
};

impl DataSource for UploadsMetadata {
    fn info(&self) -> &'static SourceInfo {
        &INFO
    }

    fn estimate<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
    ) -> BoxFuture<'a, DbResult<i64>> {
        counted(conn, scope, |conn, w| async move {
            exported::count_uploads(conn, &w, parsed(scope, "state")?).await
        })
    }

    fn page<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        scope: &'a Scope,
        after: Option<Key>,
        limit: i64,
    ) -> BoxFuture<'a, DbResult<Vec<Row>>> {
        paged(
            conn,
            scope,
            after,
            limit,
            |conn, w| async move { exported::uploads_page(conn, &w, parsed(scope, "state")?).await },
            row,
        )
    }
}

fn row(u: UploadRecord) -> Row {
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
}
