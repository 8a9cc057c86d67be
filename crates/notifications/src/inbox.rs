//! In-app notifications: the caller's list, unread count, and marking read.
//!
//! Rows belong to a user *in* an organization: a session or key acting for another
//! organization never sees them. The unread count is served from the cache (it is polled
//! by every open page) and dropped whenever it changes: a new notification, a read, a
//! read-all.

use crate::error::NotificationsError;
use crate::repo::inbox;
use crate::service::Notifications;
use futures::FutureExt;
use keel_http::pagination::{Page, Paginated};
use uuid::Uuid;

pub use crate::repo::inbox::Notification;

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
        let (limit, after) = (page.fetch_limit(), page.after);
        let rows = self
            .inner
            .pool
            .read(|conn| {
                inbox::list(
                    conn,
                    reader.user_id,
                    reader.org_id,
                    unread_only,
                    limit,
                    after,
                )
                .boxed()
            })
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
                inbox::unread_count(&mut conn, reader.user_id, reader.org_id).await
            })
            .await?)
    }

    /// Marks one notification read (again is fine); 404 when it is not the reader's.
    pub async fn mark_read(&self, reader: Reader, id: Uuid) -> Result<(), NotificationsError> {
        let mut conn = self.inner.pool.get().await?;
        let found = inbox::mark_read(&mut conn, reader.user_id, reader.org_id, id).await?;
        drop(conn);
        if !found {
            return Err(NotificationsError::NotFound);
        }
        self.forget_unread(reader).await;
        Ok(())
    }

    /// Marks every unread notification read; returns how many were.
    pub async fn mark_all_read(&self, reader: Reader) -> Result<usize, NotificationsError> {
        let mut conn = self.inner.pool.get().await?;
        let n = inbox::mark_all_read(&mut conn, reader.user_id, reader.org_id).await?;
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
