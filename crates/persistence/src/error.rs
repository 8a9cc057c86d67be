//! The one place where database failures are classified.
//!
//! Domains turn a [`DbError`] into their own error enum; the HTTP layer maps each class to a
//! status: `NotFound` → 404, `Conflict` → 409, `Busy` → 503 with `Retry-After` (the pool
//! was exhausted: shed load fast instead of queueing requests forever), `Unavailable` →
//! 503, anything else → 500 with the cause logged, never shown.
//!
//! Only failures of the database itself are transient (503 + `Retry-After`). A failure of
//! the calling code inside a transaction (a value that does not serialise, a template
//! that does not render) is [`DbError::Internal`]: a bug, so a 500 with the request id and
//! the cause chain in the log — retrying it would fail the same way.
//!
//! Each domain error enum wraps a `DbError` in one variant; [`db_error_conversions!`]
//! writes the conversions every domain needs, so they exist in one place.

use diesel::result::{DatabaseErrorKind, Error as DieselError};

#[derive(Debug, thiserror::Error)]
pub enum DbError {
    /// The row does not exist (or is not visible to the caller's tenant).
    #[error("not found")]
    NotFound,
    /// A unique constraint refused the write; `constraint` names it so callers can say
    /// which field clashed.
    #[error("conflict on {}", constraint.as_deref().unwrap_or("a unique constraint"))]
    Conflict { constraint: Option<String> },
    /// A foreign key or check constraint refused the write.
    #[error("constraint {} violated", constraint.as_deref().unwrap_or("(unnamed)"))]
    Constraint { constraint: Option<String> },
    /// No pooled connection became free within the acquire timeout.
    #[error("database busy: no connection available within the acquire timeout")]
    Busy,
    /// The database cannot be reached (connect failure, closed connection).
    #[error("database unavailable: {0}")]
    Unavailable(String),
    /// The statement ran longer than the server-side `statement_timeout`.
    #[error("database statement timed out")]
    Timeout,
    /// Anything else: a bug or an unexpected state; logged with its cause, shown as 500.
    #[error("database error: {0}")]
    Query(#[source] DieselError),
    /// Not the database's failure but the calling code's, met inside a transaction (a
    /// payload that does not serialise): a bug, shown as 500 with its cause logged.
    #[error("{context}")]
    Internal {
        context: &'static str,
        #[source]
        source: Box<dyn std::error::Error + Send + Sync>,
    },
}

impl DbError {
    /// A bug met in the calling code while it held a connection: `context` says what was
    /// being done ("serialising the job payload"), `source` why it failed.
    pub fn internal(
        context: &'static str,
        source: impl Into<Box<dyn std::error::Error + Send + Sync>>,
    ) -> Self {
        DbError::Internal {
            context,
            source: source.into(),
        }
    }
}

impl From<DieselError> for DbError {
    fn from(err: DieselError) -> Self {
        match err {
            DieselError::NotFound => DbError::NotFound,
            DieselError::DatabaseError(kind, info) => {
                let constraint = info.constraint_name().map(str::to_owned);
                match kind {
                    DatabaseErrorKind::UniqueViolation => DbError::Conflict { constraint },
                    DatabaseErrorKind::ForeignKeyViolation
                    | DatabaseErrorKind::CheckViolation
                    | DatabaseErrorKind::NotNullViolation => DbError::Constraint { constraint },
                    // A socket that closed under a statement (diesel-async reports a
                    // failure without a SQLSTATE as "unable to send").
                    DatabaseErrorKind::ClosedConnection
                    | DatabaseErrorKind::UnableToSendCommand => {
                        DbError::Unavailable(info.message().to_owned())
                    }
                    // 57014 query_canceled: what statement_timeout raises.
                    _ if info
                        .message()
                        .contains("canceling statement due to statement timeout") =>
                    {
                        DbError::Timeout
                    }
                    _ => DbError::Query(DieselError::DatabaseError(kind, info)),
                }
            }
            other => DbError::Query(other),
        }
    }
}

impl From<diesel_async::pooled_connection::deadpool::PoolError> for DbError {
    fn from(err: diesel_async::pooled_connection::deadpool::PoolError) -> Self {
        use deadpool::managed::PoolError;
        match err {
            PoolError::Timeout(deadpool::managed::TimeoutType::Wait) => DbError::Busy,
            other => DbError::Unavailable(other.to_string()),
        }
    }
}

impl DbError {
    /// True when retrying later may succeed (the caller should answer 503 + `Retry-After`).
    pub fn is_transient(&self) -> bool {
        matches!(
            self,
            DbError::Busy | DbError::Unavailable(_) | DbError::Timeout
        )
    }
}

/// Shorthand for `Result<T, DbError>`.
pub type DbResult<T> = Result<T, DbError>;

/// `.optional()` for [`DbResult`]: turns `NotFound` into `Ok(None)`.
pub trait OptionalExt<T> {
    fn optional(self) -> DbResult<Option<T>>;
}

impl<T> OptionalExt<T> for DbResult<T> {
    fn optional(self) -> DbResult<Option<T>> {
        match self {
            Ok(v) => Ok(Some(v)),
            Err(DbError::NotFound) => Ok(None),
            Err(e) => Err(e),
        }
    }
}

impl DbError {
    /// The error of a load shared by several callers (the cache hands each an
    /// `Arc<DbError>`): the original when this is the last handle, else its class.
    pub fn from_shared(e: std::sync::Arc<DbError>) -> DbError {
        std::sync::Arc::try_unwrap(e).unwrap_or_else(|shared| match shared.as_ref() {
            DbError::NotFound => DbError::NotFound,
            DbError::Busy => DbError::Busy,
            DbError::Timeout => DbError::Timeout,
            DbError::Unavailable(why) => DbError::Unavailable(why.clone()),
            // Conflict, constraint, query, internal: a bug stays a bug (500).
            other => DbError::internal("a load shared by several callers", other.to_string()),
        })
    }
}

/// The conversions a domain error enum needs to carry a [`DbError`]: from `DbError`
/// itself (`?` on a repository call), from `diesel::result::Error` (what diesel-async's
/// `transaction` requires of its error type) and from `Arc<DbError>` (the error a cache
/// load shares among its waiters).
///
/// ```ignore
/// #[derive(Debug, thiserror::Error)]
/// pub enum UploadsError {
///     /// 503/500, by the database error's class.
///     #[error(transparent)]
///     Db(keel_persistence::DbError),
///     // ...
/// }
/// keel_persistence::db_error_conversions!(UploadsError::Db);
/// ```
#[macro_export]
macro_rules! db_error_conversions {
    ($error:ident :: $variant:ident) => {
        impl ::core::convert::From<$crate::DbError> for $error {
            fn from(e: $crate::DbError) -> Self {
                $error::$variant(e)
            }
        }
        impl ::core::convert::From<$crate::diesel::result::Error> for $error {
            fn from(e: $crate::diesel::result::Error) -> Self {
                $error::$variant(e.into())
            }
        }
        impl ::core::convert::From<::std::sync::Arc<$crate::DbError>> for $error {
            fn from(e: ::std::sync::Arc<$crate::DbError>) -> Self {
                $error::$variant($crate::DbError::from_shared(e))
            }
        }
    };
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::Arc;

    #[test]
    fn a_shared_error_keeps_its_class() {
        let shared = |e: DbError| {
            let first = Arc::new(e);
            let _second = Arc::clone(&first);
            DbError::from_shared(first)
        };
        assert!(matches!(shared(DbError::Busy), DbError::Busy));
        assert!(matches!(
            shared(DbError::Unavailable("down".into())),
            DbError::Unavailable(_)
        ));
        let bug = shared(DbError::internal("serialising", "no"));
        assert!(matches!(bug, DbError::Internal { .. }), "{bug:?}");
        assert!(!bug.is_transient(), "a bug is a 500, never a 503");
        let conflict = shared(DbError::Conflict { constraint: None });
        assert!(matches!(conflict, DbError::Internal { .. }), "{conflict:?}");
    }
}
