//! The accounts error policy: one enum, each variant's HTTP status documented.

use keel_http::ApiError;
use keel_persistence::DbError;

#[derive(Debug, thiserror::Error)]
pub enum AccountsError {
    /// 422: a field failed validation.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// 401: wrong email or password (deliberately the same for both), or a bad token.
    #[error("invalid credentials")]
    InvalidCredentials,
    /// 403: the password is right but the email address is not verified yet.
    #[error("email not verified")]
    EmailNotVerified,
    /// 400: a one-time token is unknown, used or expired (one message for all three).
    #[error("invalid or expired token")]
    InvalidToken,
    /// 404: no such resource in the caller's organization.
    #[error("not found")]
    NotFound,
    /// 403: the caller's role or scopes do not allow this.
    #[error("forbidden")]
    Forbidden,
    /// 409: conflicts with the current state.
    #[error("{0}")]
    Conflict(&'static str),
    /// 429: throttled; retry after the given seconds.
    #[error("too many attempts")]
    Throttled { retry_after_secs: u64 },
    /// 503/500, by the database error's class.
    #[error(transparent)]
    Db(DbError),
    /// 500: password hashing failed.
    #[error(transparent)]
    Hash(#[from] crate::password_hash::HashError),
}

keel_persistence::db_error_conversions!(AccountsError::Db);

impl AccountsError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        AccountsError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<AccountsError> for ApiError {
    fn from(e: AccountsError) -> Self {
        match e {
            AccountsError::Invalid { field, message } => ApiError::validation(field, message),
            AccountsError::InvalidCredentials => {
                ApiError::unauthorized("invalid email or password")
            }
            AccountsError::EmailNotVerified => {
                ApiError::forbidden("verify your email address first; check your inbox")
            }
            AccountsError::InvalidToken => {
                ApiError::bad_request("the token is invalid or has expired")
            }
            AccountsError::NotFound => ApiError::not_found("not found"),
            AccountsError::Forbidden => ApiError::forbidden("your role does not allow this"),
            AccountsError::Conflict(message) => ApiError::conflict(message),
            AccountsError::Throttled { retry_after_secs } => {
                ApiError::too_many_requests(retry_after_secs)
            }
            AccountsError::Db(db) => db.into(),
            AccountsError::Hash(e) => ApiError::internal(&e),
        }
    }
}
