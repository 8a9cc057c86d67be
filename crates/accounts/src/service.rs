//! The accounts service: signup, email verification, login, logout, the profile.
//! Each method is one unit of work; emails and cache invalidations happen after commit.

use crate::error::AccountsError;
use crate::input::{self, Email};
use crate::mailer::{AccountEmail, AccountMailer};
use crate::password::{Hasher, Verified};
use crate::repo::{self, AuditEvent, NewToken, Profile};
use crate::token::{self, ONE_TIME_PREFIX, SESSION_PREFIX};
use chrono::{DateTime, Utc};
use keel_cache::{Cache, Namespace};
use keel_config::Settings;
use keel_http::{Caller, Reply, Role, Scope};
use keel_persistence::AsyncConnection as _;
use keel_persistence::{DbError, DbPool};
use keel_queue::{Enqueued, Queue};
use std::sync::Arc;
use uuid::Uuid;

/// How long an email verification or password reset link works.
const ONE_TIME_TOKEN_TTL: chrono::Duration = chrono::Duration::hours(1);

/// Everything the accounts routes and the authenticator share. Cheap to clone.
#[derive(Clone)]
pub struct Accounts {
    pub(crate) pool: DbPool,
    pub(crate) queue: Queue,
    pub(crate) hasher: Hasher,
    pub(crate) mailer: Arc<dyn AccountMailer>,
    /// Where membership events (`member.invited`) go; notifications, wired by the binary.
    pub(crate) events: Arc<dyn keel_events::Publisher>,
    pub(crate) settings: Arc<Settings>,
    pub(crate) throttle: crate::throttle::Throttle,
    /// Live sessions by token hash (`None` cached too: unknown tokens cost no query).
    pub(crate) sessions: Namespace<Option<repo::SessionAuth>>,
    /// `GET /me` bodies by user and organization.
    pub(crate) profiles: Namespace<Option<Profile>>,
    /// Live API keys by secret hash.
    pub(crate) keys: Namespace<Option<repo::KeyAuth>>,
    /// Organization names by id.
    pub(crate) orgs: Namespace<Option<repo::OrgInfo>>,
    /// Sessions and keys whose activity this process wrote in the last minute.
    pub(crate) touches: moka::future::Cache<Uuid, ()>,
    /// The areas an API key's scopes may name: accounts' own, and those the binary adds
    /// for the other domains it mounts ([`Accounts::with_scope_areas`]).
    pub(crate) scope_areas: Arc<[&'static str]>,
}

impl std::fmt::Debug for Accounts {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Accounts").finish_non_exhaustive()
    }
}

#[derive(Debug)]
pub struct NewSignup<'a> {
    pub email: &'a str,
    pub password: &'a str,
    pub name: &'a str,
    pub organization_name: &'a str,
}

/// A new session's secret, shown once.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct SessionToken {
    pub token: String,
    pub expires_at: DateTime<Utc>,
}

impl Accounts {
    pub fn new(
        settings: Arc<Settings>,
        pool: DbPool,
        cache: &Cache,
        redis: deadpool_redis::Pool,
        queue: Queue,
        mailer: Arc<dyn AccountMailer>,
        events: Arc<dyn keel_events::Publisher>,
    ) -> Result<Self, AccountsError> {
        Ok(Self {
            throttle: crate::throttle::Throttle::new(
                redis,
                &settings.redis.key_prefix,
                &settings.accounts,
            ),
            hasher: Hasher::new(settings.accounts.password_hash_concurrency)?,
            events,
            touches: moka::future::Cache::builder()
                .max_capacity(100_000)
                .time_to_live(crate::auth::TOUCH_EVERY_STD)
                .build(),
            sessions: cache.namespace("accounts.session", 1),
            profiles: cache.namespace("accounts.profile", 1),
            keys: cache.namespace("accounts.api_key", 1),
            orgs: cache.namespace("accounts.org", 1),
            scope_areas: Arc::from([crate::SCOPE_AREA]),
            pool,
            queue,
            mailer,
            settings,
        })
    }

    /// Lets API keys hold scopes of `areas` too (each domain's `SCOPE_AREA`), besides
    /// `accounts`. A domain whose area is not given has no scopes a key could hold.
    pub fn with_scope_areas(mut self, areas: &[&'static str]) -> Self {
        let mut all = vec![crate::SCOPE_AREA];
        all.extend(areas.iter().filter(|a| **a != crate::SCOPE_AREA));
        self.scope_areas = all.into();
        self
    }

    fn link(&self, path: &str, token: &str) -> String {
        format!(
            "{}{path}?token={token}",
            self.settings.mail.public_url.trim_end_matches('/')
        )
    }

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
                if let Some(existing) = repo::user_by_email(conn, email.as_str()).await? {
                    repo::insert_token(
                        conn,
                        NewToken {
                            kind: "password_reset",
                            hash: &reset.hash,
                            user_id: Some(existing.id),
                            org_id: None,
                            email: None,
                            role: None,
                            invited_by: None,
                            expires_at,
                        },
                    )
                    .await?;
                    let mail = AccountEmail::SignupAttempt {
                        to: existing.email,
                        name: existing.name,
                        reset_link,
                    };
                    let mail = self.mailer.enqueue(conn, mail).await?;
                    reply.record(conn, &()).await?;
                    return Ok::<_, AccountsError>(mail);
                }
                let (user_id, org_id) = (Uuid::now_v7(), Uuid::now_v7());
                repo::insert_user(conn, user_id, email.as_str(), &name, &hash).await?;
                repo::insert_org(conn, org_id, &org_name).await?;
                repo::insert_membership(conn, org_id, user_id, Role::Owner).await?;
                repo::insert_token(
                    conn,
                    NewToken {
                        kind: "verify_email",
                        hash: &verify.hash,
                        user_id: Some(user_id),
                        org_id: None,
                        email: None,
                        role: None,
                        invited_by: None,
                        expires_at,
                    },
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
                let mail = AccountEmail::VerifyEmail {
                    to: email.as_str().to_owned(),
                    name,
                    link: verify_link,
                };
                let mail = self.mailer.enqueue(conn, mail).await?;
                reply.record(conn, &()).await?;
                Ok(mail)
            })
            .await;
        match result {
            Ok(enqueued) => self.queue.ring([enqueued]).await,
            // A concurrent signup took the address between our read and our insert; that
            // request sends the email. Answer the same as ever.
            Err(AccountsError::Db(DbError::Conflict { .. })) => {}
            Err(e) => return Err(e),
        }
        tracing::info!(email.domain = email.domain(), "signup handled");
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
                let row = repo::take_token(conn, "verify_email", &hash)
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

    /// Checks email and password. Unknown email and wrong password take the same time
    /// (a dummy hash is verified) and give the same error; an unverified account gets
    /// `EmailNotVerified` only after a correct password.
    pub async fn login(
        &self,
        email: &str,
        password: &str,
        organization_id: Option<Uuid>,
        ip: Option<&str>,
        reply: &Reply<SessionToken>,
    ) -> Result<SessionToken, AccountsError> {
        let email = Email::parse("email", email).map_err(|_| AccountsError::InvalidCredentials)?;
        // Counted before any hashing: a throttled attempt costs no argon2 work.
        let burst = match self.throttle.attempt(email.as_str(), ip).await {
            Ok(burst) => burst,
            Err(wait) => {
                return Err(AccountsError::Throttled {
                    retry_after_secs: wait.as_secs_f64().ceil() as u64,
                });
            }
        };
        let user = {
            let mut conn = self.pool.get().await?;
            repo::user_by_email(&mut conn, email.as_str()).await?
        };
        let verified = self
            .hasher
            .verify(password, user.as_ref().map(|u| u.password_hash.as_str()))
            .await?;
        if burst && let Some(user) = &user {
            self.audit_failed_burst(user.id, ip).await;
        }
        let Some(user) = user.filter(|_| verified != Verified::No) else {
            metrics::counter!("keel_logins_total", "outcome" => "failed").increment(1);
            return Err(AccountsError::InvalidCredentials);
        };
        if user.email_verified_at.is_none() {
            return Err(AccountsError::EmailNotVerified);
        }
        let ip = ip.map(str::to_owned);
        let session = self
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                if let Verified::YesRehashed(new_hash) = verified {
                    repo::set_password_hash(conn, user.id, &new_hash).await?;
                }
                let org_id = match organization_id {
                    // An explicit choice must be one of the user's organizations.
                    Some(org) if repo::user_org_ids(conn, user.id).await?.contains(&org) => org,
                    Some(_) => {
                        return Err(AccountsError::invalid(
                            "organization_id",
                            "you are not a member of this organization",
                        ));
                    }
                    None => {
                        repo::primary_membership(conn, user.id)
                            .await?
                            .ok_or(AccountsError::InvalidCredentials)?
                            .0
                    }
                };
                let session = self.open_session(conn, user.id, org_id).await?;
                repo::audit(
                    conn,
                    AuditEvent {
                        org_id: Some(org_id),
                        actor_user_id: Some(user.id),
                        actor_api_key_id: None,
                        action: "login.succeeded",
                        target_id: Some(user.id),
                        ip: ip.as_deref(),
                        details: serde_json::json!({}),
                    },
                )
                .await?;
                reply.record(conn, &session).await?;
                Ok::<_, AccountsError>(session)
            })
            .await?;
        self.throttle.succeeded(email.as_str()).await;
        metrics::counter!("keel_logins_total", "outcome" => "succeeded").increment(1);
        Ok(session)
    }

    /// Records, in each of the user's organizations, that logins to the account started
    /// being throttled. Best effort: the login answer does not depend on it.
    async fn audit_failed_burst(&self, user_id: Uuid, ip: Option<&str>) {
        let result = async {
            let mut conn = self.pool.get().await?;
            conn.transaction(async |conn| {
                for org in repo::user_org_ids(conn, user_id).await? {
                    repo::audit(
                        conn,
                        AuditEvent {
                            org_id: Some(org),
                            actor_user_id: None,
                            actor_api_key_id: None,
                            action: "login.failed_burst",
                            target_id: Some(user_id),
                            ip,
                            details: serde_json::json!({}),
                        },
                    )
                    .await?;
                }
                Ok::<_, AccountsError>(())
            })
            .await
        };
        if let Err(e) = result.await {
            tracing::warn!(error = %e, "failed-login burst not audited");
        }
    }

    /// Password hashes this process has computed (what login throttling saves).
    pub fn hashes_computed(&self) -> u64 {
        self.hasher.computed()
    }

    async fn open_session(
        &self,
        conn: &mut keel_persistence::AsyncPgConnection,
        user_id: Uuid,
        org_id: Uuid,
    ) -> Result<SessionToken, AccountsError> {
        let secret = token::generate(SESSION_PREFIX);
        let lifetime = chrono::Duration::from_std(self.settings.accounts.session_absolute())
            .unwrap_or(chrono::Duration::hours(12));
        let expires_at = Utc::now() + lifetime;
        repo::insert_session(
            conn,
            Uuid::now_v7(),
            &secret.hash,
            user_id,
            org_id,
            expires_at,
        )
        .await?;
        Ok(SessionToken {
            token: secret.token,
            expires_at,
        })
    }

    /// Revokes one session at once, everywhere: the row, then every process's cache.
    pub async fn logout(&self, session_id: Uuid) -> Result<(), AccountsError> {
        let hash = {
            let mut conn = self.pool.get().await?;
            repo::revoke_session(&mut conn, session_id).await?
        };
        if let Some(hash) = hash {
            self.sessions.invalidate(&hex::encode(&hash)).await;
        }
        Ok(())
    }

    /// Who the caller is: the user (session) or the key, and the organization — from
    /// cache, so an authenticated `GET /me` costs no query in steady state.
    pub async fn me(&self, caller: &Caller) -> Result<Me, AccountsError> {
        let org_id = caller.org_id();
        let key = match caller {
            Caller::ApiKey(key) => key,
            Caller::User(user) => {
                let p = self.profile(user.user_id, org_id).await?;
                return Ok(Me {
                    user: Some(UserInfo {
                        id: p.id,
                        email: p.email,
                        name: p.name,
                        email_verified: p.email_verified,
                    }),
                    api_key: None,
                    organization: repo::OrgInfo {
                        id: p.organization_id,
                        name: p.organization_name,
                    },
                    role: Some(p.role),
                    scopes: Vec::new(),
                });
            }
        };
        let pool = self.pool.clone();
        let org = self
            .orgs
            .get_or_load(&org_id.to_string(), || async move {
                let mut conn = pool.get().await?;
                repo::org_info(&mut conn, org_id).await
            })
            .await?
            .ok_or(AccountsError::NotFound)?;
        Ok(Me {
            user: None,
            api_key: Some(KeyInfo { id: key.key_id }),
            organization: org,
            role: None,
            scopes: key.scopes.clone(),
        })
    }

    /// The caller's profile in the organization they act for (cached).
    pub async fn profile(&self, user_id: Uuid, org_id: Uuid) -> Result<Profile, AccountsError> {
        let pool = self.pool.clone();
        let profile = self
            .profiles
            .get_or_load(&profile_key(user_id, org_id), || async move {
                let mut conn = pool.get().await?;
                repo::profile(&mut conn, user_id, org_id).await
            })
            .await?;
        profile.ok_or(AccountsError::NotFound)
    }

    /// Renames the caller.
    pub async fn rename(
        &self,
        user_id: Uuid,
        org_id: Uuid,
        name: &str,
    ) -> Result<Profile, AccountsError> {
        let name = input::name("name", name)?;
        let orgs = {
            let mut conn = self.pool.get().await?;
            repo::rename_user(&mut conn, user_id, &name).await?;
            repo::user_org_ids(&mut conn, user_id).await?
        };
        // The name shows in the user's profile of every organization they belong to.
        for org in orgs {
            self.profiles.invalidate(&profile_key(user_id, org)).await;
        }
        self.profile(user_id, org_id).await
    }
}

/// `GET /me`: exactly one of `user` and `api_key` is set.
#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct Me {
    pub user: Option<UserInfo>,
    pub api_key: Option<KeyInfo>,
    pub organization: repo::OrgInfo,
    /// The user's role in the organization (none for keys).
    pub role: Option<Role>,
    /// The key's scopes (empty for users: their role decides).
    #[schema(value_type = Vec<String>)]
    pub scopes: Vec<Scope>,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct UserInfo {
    pub id: Uuid,
    pub email: String,
    pub name: String,
    pub email_verified: bool,
}

#[derive(Debug, Clone, serde::Serialize, utoipa::ToSchema)]
pub struct KeyInfo {
    pub id: Uuid,
}

pub(crate) fn profile_key(user_id: Uuid, org_id: Uuid) -> String {
    format!("{user_id}:{org_id}")
}
