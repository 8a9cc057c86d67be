//! The accounts domain's background jobs.

use crate::input::Email;
use crate::service::Accounts;
use keel_queue::{Job, JobContext, JobError, Registry, RegistryError};
use serde::{Deserialize, Serialize};
use std::fmt;

/// Deletes long-ended sessions and one-time tokens, hourly.
#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct PurgeExpired;

impl Job for PurgeExpired {
    const NAME: &'static str = "accounts.purge_expired";
}

/// Sends a password reset link to `email` if the address has an account; does nothing
/// otherwise. Enqueued by every well-formed reset request, so the request does the same
/// work, in the same time, whether or not the account exists: looking the account up in
/// the request made the answer for a known address measurably slower (a token and an
/// email written) — a timing oracle telling who has an account.
#[derive(Clone, Serialize, Deserialize)]
pub struct SendPasswordReset {
    pub email: Email,
}

/// Only the domain: the address is personal data, and whether it has an account is what
/// the job keeps secret.
impl fmt::Debug for SendPasswordReset {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("SendPasswordReset")
            .field("email", &format_args!("…@{}", self.email.domain()))
            .finish()
    }
}

impl Job for SendPasswordReset {
    const NAME: &'static str = "accounts.send_password_reset";
}

/// Attaches accounts' handlers and schedules to the worker registry.
pub fn register(registry: &mut Registry, accounts: Accounts) -> Result<(), RegistryError> {
    registry.register(|ctx: JobContext, _: PurgeExpired| async move {
        let mut conn = ctx.pool.get().await.map_err(JobError::from)?;
        let purged = crate::repo::purge_expired(&mut conn, 10_000)
            .await
            .map_err(JobError::from)?;
        tracing::info!(purged, "expired sessions and tokens deleted");
        Ok(())
    })?;
    registry.periodic::<PurgeExpired, _>("0 23 * * * *", || PurgeExpired)?;
    registry.register(move |ctx: JobContext, job: SendPasswordReset| {
        let accounts = accounts.clone();
        async move {
            accounts
                .send_password_reset(ctx.job_id, &job.email)
                .await
                .map_err(JobError::from)
        }
    })?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_reset_job_shows_only_the_domain() {
        let job = SendPasswordReset {
            email: Email::parse("email", "ada@example.com").unwrap(),
        };
        let shown = format!("{job:?}");
        assert!(shown.contains("example.com"), "{shown}");
        assert!(!shown.contains("ada"), "{shown}");
    }
}
