//! What accounts needs from an email channel. The binary implements it (with the
//! notifications domain); accounts never depends on another domain.

use futures::future::BoxFuture;
use keel_persistence::{AsyncPgConnection, DbResult};
use keel_queue::Enqueued;

/// The emails accounts sends.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(tag = "email", rename_all = "snake_case")]
pub enum AccountEmail {
    /// Confirms a new address; `link` carries the verification token.
    VerifyEmail {
        to: String,
        name: String,
        link: String,
    },
    /// Someone tried to sign up with an address that already has an account.
    SignupAttempt {
        to: String,
        name: String,
        reset_link: String,
    },
    PasswordReset {
        to: String,
        name: String,
        link: String,
    },
    PasswordChanged {
        to: String,
        name: String,
    },
    Invitation {
        to: String,
        inviter_name: String,
        organization_name: String,
        role: String,
        link: String,
    },
}

/// Enqueues an email as a durable job on `conn`, inside the caller's transaction, so the
/// email exists if and only if the change that causes it commits.
pub trait AccountMailer: Send + Sync + 'static {
    fn enqueue<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        email: AccountEmail,
    ) -> BoxFuture<'a, DbResult<Enqueued>>;
}
