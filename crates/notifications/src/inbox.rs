//! In-app notifications: the caller's list, unread count, and marking read.
//!
//! Rows belong to a user *in* an organization: a session or key acting for another
//! organization never sees them. The unread count is served from the cache (it is polled
//! by every open page) and dropped whenever it changes: a new notification, a read, a
//! read-all.

use crate::error::NotificationsError;
use crate::service::Notifications;
use chrono::{DateTime, Utc};
use diesel::QueryableByName;
use diesel::sql_types::{BigInt, Bool, Jsonb, Nullable, Text, Timestamptz, Uuid as SqlUuid};
use diesel_async::RunQueryDsl;
use keel_http::pagination::{Page, Paginated};
use keel_persistence::DbError;
use serde::Serialize;
use uuid::Uuid;

/// An in-app notification.
#[derive(Debug, Clone, Serialize, QueryableByName, utoipa::ToSchema)]
pub struct Notification {
    #[diesel(sql_type = SqlUuid)]
    pub id: Uuid,
    /// The event type, e.g. `export.completed`.
    #[diesel(sql_type = Text)]
    #[serde(rename = "type")]
    pub event_type: String,
    #[diesel(sql_type = Text)]
    pub title: String,
    #[diesel(sql_type = Text)]
    pub body: String,
    #[diesel(sql_type = Nullable<Text>)]
    pub link: Option<String>,
    /// The event's payload.
    #[diesel(sql_type = Jsonb)]
    #[schema(value_type = Object)]
    pub data: serde_json::Value,
    #[diesel(sql_type = Nullable<Timestamptz>)]
    pub read_at: Option<DateTime<Utc>>,
    #[diesel(sql_type = Timestamptz)]
    pub created_at: DateTime<Utc>,
}

#[derive(QueryableByName)]
struct Count {
    #[diesel(sql_type = BigInt)]
    n: i64,
}

/// Whose inbox: a user acting for an organization.
#[derive(Debug, Clone, Copy)]
pub struct Reader {
    pub user_id: Uuid,
    pub org_id: Uuid,
}

impl Notifications {
    /// Newest first; `unread_only` leaves out the read ones.
    pub async fn list(
        &self,
        reader: Reader,
        unread_only: bool,
        page: &Page<Uuid>,
    ) -> Result<Paginated<Notification>, NotificationsError> {
        let mut conn = self.inner.pool.get().await?;
        let rows: Vec<Notification> = diesel::sql_query(
            "SELECT id, event_type, title, body, link, data, read_at, created_at FROM notifications_inbox \
             WHERE user_id = $1 AND org_id = $2 AND ($3 = false OR read_at IS NULL) \
               AND ($4::uuid IS NULL OR id < $4) \
             ORDER BY id DESC LIMIT $5",
        )
        .bind::<SqlUuid, _>(reader.user_id)
        .bind::<SqlUuid, _>(reader.org_id)
        .bind::<Bool, _>(unread_only)
        .bind::<Nullable<SqlUuid>, _>(page.after)
        .bind::<BigInt, _>(page.fetch_limit())
        .load(&mut conn)
        .await?;
        Ok(Paginated::from_rows(rows, page, |n| n.id))
    }

    /// From cache in steady state; a miss costs one index-only count.
    pub async fn unread_count(&self, reader: Reader) -> Result<i64, NotificationsError> {
        let pool = self.inner.pool.clone();
        let key = Self::unread_key(reader.user_id, reader.org_id);
        Ok(self
            .inner
            .unread
            .get_or_load(&key, || async move {
                let mut conn = pool.get().await?;
                let count: Count = diesel::sql_query(
                    "SELECT count(*) AS n FROM notifications_inbox \
                     WHERE user_id = $1 AND org_id = $2 AND read_at IS NULL",
                )
                .bind::<SqlUuid, _>(reader.user_id)
                .bind::<SqlUuid, _>(reader.org_id)
                .get_result(&mut conn)
                .await
                .map_err(DbError::from)?;
                Ok::<_, DbError>(count.n)
            })
            .await?)
    }

    /// Marks one notification read (again is fine); 404 when it is not the reader's.
    pub async fn mark_read(&self, reader: Reader, id: Uuid) -> Result<(), NotificationsError> {
        let mut conn = self.inner.pool.get().await?;
        let n = diesel::sql_query(
            "UPDATE notifications_inbox SET read_at = COALESCE(read_at, now()) \
             WHERE id = $1 AND user_id = $2 AND org_id = $3",
        )
        .bind::<SqlUuid, _>(id)
        .bind::<SqlUuid, _>(reader.user_id)
        .bind::<SqlUuid, _>(reader.org_id)
        .execute(&mut conn)
        .await?;
        drop(conn);
        if n == 0 {
            return Err(NotificationsError::NotFound);
        }
        self.forget_unread(reader).await;
        Ok(())
    }

    /// Marks every unread notification read; returns how many were.
    pub async fn mark_all_read(&self, reader: Reader) -> Result<usize, NotificationsError> {
        let mut conn = self.inner.pool.get().await?;
        let n = diesel::sql_query(
            "UPDATE notifications_inbox SET read_at = now() \
             WHERE user_id = $1 AND org_id = $2 AND read_at IS NULL",
        )
        .bind::<SqlUuid, _>(reader.user_id)
        .bind::<SqlUuid, _>(reader.org_id)
        .execute(&mut conn)
        .await?;
        drop(conn);
        self.forget_unread(reader).await;
        Ok(n)
    }

    pub(crate) async fn forget_unread(&self, reader: Reader) {
        self.inner
            .unread
            .invalidate(&Self::unread_key(reader.user_id, reader.org_id))
            .await;
    }
}
