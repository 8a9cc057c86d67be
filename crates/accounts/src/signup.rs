//! Signing up: an unverified account with its organization, the verification email, and
//! the verification that logs the user in. Nothing tells a caller whether an address
//! already had an account.

use crate::error::AccountsError;
use crate::input::{self, Email};
use crate::mailer::AccountEmail;
use crate::repo::{self, AuditEvent, NewToken, Profile, TokenKind};
use crate::service::{Accounts, ONE_TIME_TOKEN_TTL, profile_key};
use crate::sessions::SessionToken;
use crate::token::{self, ONE_TIME_PREFIX};
use chrono::{DateTime, Utc};
use keel_http::{Reply, Role};
use keel_persistence::AsyncConnection as _;
use keel_persistence::{AsyncPgConnection, DbError};
use keel_queue::Enqueued;
use uuid::Uuid;

#[derive(Debug)]
pub struct NewSignup<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub name: &'a str,
    pub organization_name: &'a str,
}

/// The unique constraint on a user's address.
const EMAIL_TAKEN: &str = "accounts_users_email_key";

impl Accounts {
    /// Creates an unverified account with its organization and sends a verification
    /// email — or, when the address is taken, a "someone tried to sign up" email. The
    /// caller cannot tell which happened (no account enumeration).
    pub async fn signup(
        &self,
        signup: NewSignup<'_>,
        reply: &Reply<()>,
    ) -> Result<(), AccountsError> {
        let email = Email::parse("email", signup.email)?;
        let name = input::name("name", signup.name)?;
        let org_name = input::name("organization_name", signup.organization_name)?;
        let password = input::new_password("password", signup.password)?;
        // Hashed whether or not the account exists: both paths take the same time.
        let hash = self.hasher.hash(&password).await?;
        let verify = token::generate(ONE_TIME_PREFIX);
        let verify_link = self.link("/verify-email", &verify.token);
        let reset = token::generate(ONE_TIME_PREFIX);
        let reset_link = self.link("/reset-password", &reset.token);
        let expires_at = Utc::now() + ONE_TIME_TOKEN_TTL;
        let result: Result<Enqueued, AccountsError> = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                // Either way one email goes out and the answer is the same.
                let mail = if let Some(existing) = repo::user_by_email(conn, email.as_str()).await?
                {
                    repo::insert_token(
                        conn,
                        NewToken::for_user(
                            TokenKind::PasswordReset,
                            &reset.hash,
                            existing.id,
                            expires_at,
                        ),
                    )
                    .await?;
                    AccountEmail::SignupAttempt {
                        to: existing.email,
                        name: existing.name,
                        reset_link,
                    }
                } else {
                    self.create_account(
                        conn,
                        &email,
                        &name,
                        &org_name,
                        &hash,
                        &verify.hash,
                        expires_at,
                    )
                    .await?;
                    AccountEmail::VerifyEmail {
                        to: email.as_str().to_owned(),
                        name,
                        link: verify_link,
                    }
                };
                let mail = self.mailer.enqueue(conn, mail).await?;
                reply.record(conn, &()).await?;
                Ok::<_, AccountsError>(mail)
            })
            .await;
        match result {
            Ok(enqueued) => self.queue.ring([enqueued]).await,
            // A concurrent signup took the address between our read and our insert; that
            // request sends the email. Answer the same as ever.
            Err(AccountsError::Db(DbError::Conflict { constraint }))
                if constraint.as_deref() == Some(EMAIL_TAKEN) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(email.domain = email.domain(), "signup handled");
        Ok(())
    }

    /// A new unverified user, owner of a new organization, with a verification token.
    #[expect(clippy::too_many_arguments, reason = "the columns of one signup")]
    async fn create_account(
        &self,
        conn: &mut AsyncPgConnection,
        email: &Email,
        name: &str,
        org_name: &str,
        hash: &str,
        verify_hash: &[u8],
        expires_at: DateTime<Utc>,
    ) -> Result<(), AccountsError> {
        let (user_id, org_id) = (Uuid::now_v7(), Uuid::now_v7());
        repo::insert_user(conn, user_id, email.as_str(), name, hash).await?;
        repo::insert_org(conn, org_id, org_name).await?;
        repo::insert_membership(conn, org_id, user_id, Role::Owner).await?;
        repo::insert_token(
            conn,
            NewToken::for_user(TokenKind::VerifyEmail, verify_hash, user_id, expires_at),
        )
        .await?;
        repo::audit(
            conn,
            AuditEvent {
                org_id: Some(org_id),
                actor_user_id: Some(user_id),
                actor_api_key_id: None,
                action: "user.signed_up",
                target_id: Some(user_id),
                ip: None,
                details: serde_json::json!({}),
            },
        )
        .await?;
        Ok(())
    }

    /// Consumes a verification token, marks the address verified and logs the user in.
    pub async fn verify_email(
        &self,
        token: &str,
        reply: &Reply<(SessionToken, Profile)>,
    ) -> Result<(SessionToken, Profile), AccountsError> {
        let hash = token::hash(token.trim());
        let (verified, user_id, org_id) = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                let row = repo::take_token(conn, TokenKind::VerifyEmail, &hash)
                    .await?
                    .ok_or(AccountsError::InvalidToken)?;
                if !token::constant_time_eq(&row.token_hash, &hash) {
                    return Err(AccountsError::InvalidToken);
                }
                let user_id = row.user_id.ok_or(AccountsError::InvalidToken)?;
                repo::mark_email_verified(conn, user_id).await?;
                let (org_id, _role) = repo::primary_membership(conn, user_id)
                    .await?
                    .ok_or(AccountsError::InvalidToken)?;
                let session = self.open_session(conn, user_id, org_id).await?;
                let profile = repo::profile(conn, user_id, org_id)
                    .await?
                    .ok_or(AccountsError::NotFound)?;
                let verified = (session, profile);
                reply.record(conn, &verified).await?;
                Ok::<_, AccountsError>((verified, user_id, org_id))
            })
            .await?;
        self.profiles
            .invalidate(&profile_key(user_id, org_id))
            .await;
        Ok(verified)
    }
}
