//! Password policy and hashing.
//!
//! Policy (NIST 800-63B / OWASP ASVS L2): 8–128 characters, no composition rules, and
//! not one of the 10,000 most common passwords. Hashes: argon2id with the OWASP
//! parameters (m = 19 MiB, t = 2, p = 1) in PHC string form, so a later change of
//! parameters is visible in each stored hash and rehashed at the next login.
//!
//! Hashing takes tens of milliseconds of CPU and 19 MiB of memory, so it runs on the
//! blocking pool behind a semaphore: a burst of logins queues for a hashing slot instead
//! of starving the async executor (and every other request with it).

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};
use std::collections::HashSet;
use std::sync::{Arc, LazyLock};
use tokio::sync::Semaphore;

pub const MIN_LENGTH: usize = 8;
pub const MAX_LENGTH: usize = 128;

const COMMON: &str = include_str!("../data/common-passwords.txt");

static COMMON_SET: LazyLock<HashSet<&'static str>> = LazyLock::new(|| {
    COMMON
        .lines()
        .map(str::trim)
        .filter(|l| !l.is_empty() && !l.starts_with('#'))
        .collect()
});

/// Why a new password is refused (shown to the user, field `password`).
pub fn check_policy(password: &str) -> Result<(), &'static str> {
    let chars = password.chars().count();
    if chars < MIN_LENGTH {
        return Err("must be at least 8 characters");
    }
    if chars > MAX_LENGTH {
        return Err("must be at most 128 characters");
    }
    if COMMON_SET.contains(password.to_lowercase().as_str()) {
        return Err("is one of the most common passwords; choose another");
    }
    Ok(())
}

/// The argon2id parameters new hashes use.
fn params() -> Params {
    // Constant, valid parameters: `new` only fails on out-of-range values.
    Params::new(19_456, 2, 1, None).unwrap_or_default()
}

fn argon2() -> Argon2<'static> {
    Argon2::new(Algorithm::Argon2id, Version::V0x13, params())
}

#[derive(Debug, thiserror::Error)]
pub enum HashError {
    #[error("password hashing failed: {0}")]
    Hash(String),
    #[error("password hashing task failed")]
    Task,
}

/// The outcome of checking a password against a stored hash.
#[derive(Debug, PartialEq, Eq)]
pub enum Verified {
    No,
    Yes,
    /// Correct, and the stored hash uses old parameters: store this new hash.
    YesRehashed(String),
}

/// Hashes and verifies off the async executor, a bounded number at a time.
#[derive(Clone, Debug)]
pub struct Hasher {
    slots: Arc<Semaphore>,
    computed: Arc<std::sync::atomic::AtomicU64>,
    /// Verified against when the account does not exist, so an unknown email costs the
    /// same time as a wrong password.
    dummy: Arc<String>,
}

impl Hasher {
    pub fn new(concurrency: usize) -> Result<Self, HashError> {
        let concurrency = match concurrency {
            0 => std::thread::available_parallelism().map_or(1, |n| n.get()),
            n => n,
        };
        let dummy = hash_blocking("keel-dummy-password-for-timing")?;
        Ok(Self {
            slots: Arc::new(Semaphore::new(concurrency)),
            computed: Arc::default(),
            dummy: Arc::new(dummy),
        })
    }

    /// Hashes and verifications run so far.
    pub fn computed(&self) -> u64 {
        self.computed.load(std::sync::atomic::Ordering::Relaxed)
    }

    pub async fn hash(&self, password: &str) -> Result<String, HashError> {
        let password = password.to_owned();
        self.run(move || hash_blocking(&password)).await?
    }

    /// Checks `password` against `stored` (or the dummy hash when `stored` is `None`,
    /// which always answers `No` after the same amount of work).
    pub async fn verify(
        &self,
        password: &str,
        stored: Option<&str>,
    ) -> Result<Verified, HashError> {
        let known = stored.is_some();
        let stored = stored.map_or_else(|| self.dummy.as_str().to_owned(), str::to_owned);
        let password = password.to_owned();
        let verified = self
            .run(move || verify_blocking(&password, &stored))
            .await??;
        Ok(if known { verified } else { Verified::No })
    }

    async fn run<T: Send + 'static>(
        &self,
        f: impl FnOnce() -> T + Send + 'static,
    ) -> Result<T, HashError> {
        let _slot = self.slots.acquire().await.map_err(|_| HashError::Task)?;
        metrics::counter!("keel_password_hashes_total").increment(1);
        self.computed
            .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        tokio::task::spawn_blocking(f)
            .await
            .map_err(|_| HashError::Task)
    }
}

fn hash_blocking(password: &str) -> Result<String, HashError> {
    let salt = SaltString::generate(&mut OsRng);
    argon2()
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| HashError::Hash(e.to_string()))
}

fn verify_blocking(password: &str, stored: &str) -> Result<Verified, HashError> {
    let parsed = PasswordHash::new(stored).map_err(|e| HashError::Hash(e.to_string()))?;
    if argon2()
        .verify_password(password.as_bytes(), &parsed)
        .is_err()
    {
        return Ok(Verified::No);
    }
    let current = Params::try_from(&parsed).ok();
    let outdated = parsed.algorithm != argon2::ARGON2ID_IDENT
        || current.is_none_or(|p| {
            p.m_cost() != params().m_cost()
                || p.t_cost() != params().t_cost()
                || p.p_cost() != params().p_cost()
        });
    if outdated {
        return Ok(Verified::YesRehashed(hash_blocking(password)?));
    }
    Ok(Verified::Yes)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn policy_checks_length_and_common_passwords() {
        assert!(check_policy("short").is_err());
        assert!(check_policy(&"x".repeat(129)).is_err());
        assert!(check_policy("password").is_err());
        assert!(
            check_policy("iloveyou").is_err(),
            "common regardless of case"
        );
        assert!(check_policy("ILoveYou").is_err());
        assert!(check_policy("correct horse battery staple").is_ok());
        assert!(
            check_policy("ünïcödé-pässwörd").is_ok(),
            "no composition rules"
        );
        assert!(COMMON_SET.len() >= 9_900, "{}", COMMON_SET.len());
    }

    #[tokio::test]
    async fn hashes_are_argon2id_with_owasp_parameters_and_verify() {
        let hasher = Hasher::new(1).unwrap();
        let hash = hasher.hash("correct horse battery staple").await.unwrap();
        assert!(
            hash.starts_with("$argon2id$v=19$m=19456,t=2,p=1$"),
            "{hash}"
        );
        assert_eq!(
            hasher
                .verify("correct horse battery staple", Some(&hash))
                .await
                .unwrap(),
            Verified::Yes
        );
        assert_eq!(
            hasher.verify("wrong", Some(&hash)).await.unwrap(),
            Verified::No
        );
        assert_eq!(hasher.verify("anything", None).await.unwrap(), Verified::No);
    }

    #[tokio::test]
    async fn old_parameters_are_rehashed_on_a_correct_password() {
        let weak = Argon2::new(
            Algorithm::Argon2id,
            Version::V0x13,
            Params::new(4096, 1, 1, None).unwrap(),
        );
        let salt = SaltString::generate(&mut OsRng);
        let old = weak
            .hash_password(b"correct horse battery staple", &salt)
            .unwrap()
            .to_string();
        let hasher = Hasher::new(1).unwrap();
        match hasher
            .verify("correct horse battery staple", Some(&old))
            .await
            .unwrap()
        {
            Verified::YesRehashed(new) => assert!(new.contains("m=19456,t=2,p=1"), "{new}"),
            other => panic!("expected a rehash, got {other:?}"),
        }
        assert_eq!(
            hasher.verify("wrong", Some(&old)).await.unwrap(),
            Verified::No
        );
    }
}
