//! Running several repository calls as one unit.

use crate::error::DbError;
use crate::pool::DbPool;
use diesel_async::{AsyncConnection, AsyncPgConnection};
use futures::future::BoxFuture;

impl DbPool {
    /// Runs `f` in a transaction on a pooled connection: committed when `f` returns `Ok`,
    /// rolled back when it returns `Err` (or panics, or the future is dropped).
    ///
    /// The error type only needs `From<DbError>`, so a domain can return its own error
    /// enum from inside the transaction. Cache invalidation and job doorbells belong
    /// *after* this returns: only then is the change visible to other connections.
    ///
    /// ```ignore
    /// let (user, job) = pool.transaction(|conn| Box::pin(async move {
    ///     let user = users::insert(conn, &new_user).await?;
    ///     let job = queue.enqueue(conn, &SendWelcome { user_id: user.id }).await?;
    ///     Ok((user, job))
    /// })).await?;
    /// queue.ring(job).await;
    /// ```
    pub async fn transaction<R, E, F>(&self, f: F) -> Result<R, E>
    where
        F: for<'r> FnOnce(&'r mut AsyncPgConnection) -> BoxFuture<'r, Result<R, E>> + Send,
        E: From<DbError> + From<diesel::result::Error> + Send,
        R: Send,
    {
        let mut conn = self.get().await?;
        conn.transaction(async move |c| f(c).await).await
    }
}
