//! The accounts service: what it holds, who the caller is (`GET /me`), the profile.
//! Signup lives in `signup.rs`, sessions in `sessions.rs`, password changes in
//! `password_changes.rs`, organizations in `orgs.rs`, API keys in `api_keys.rs`. Each
//! method is one unit of work; emails and cache invalidations happen after commit.

use crate::error::AccountsError;
use crate::input::{self};
use crate::mailer::AccountMailer;
use crate::password_hash::Hasher;
use crate::repo::{self, Profile};
use keel_cache::{Cache, Namespace};
use keel_config::Settings;
use keel_http::{Caller, Role, Scope};
use keel_persistence::DbPool;
use keel_queue::Queue;
use std::sync::Arc;
use uuid::Uuid;

/// How long an email verification or password reset link works.
pub(crate) const ONE_TIME_TOKEN_TTL: chrono::Duration = chrono::Duration::hours(1);

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

    /// The link of an email that carries a one-time token: `public_url` + `path`.
    pub(crate) fn link(&self, path: &str, token: &str) -> String {
        format!(
            "{}{path}?token={token}",
            self.settings.mail.public_url.trim_end_matches('/')
        )
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
