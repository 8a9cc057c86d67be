//! Bearer secrets: session tokens, API keys and one-time tokens.
//!
//! Each carries 256 random bits behind a recognisable prefix (so a leaked key is easy to
//! spot in logs and secret scanners, and the authenticator knows which table to look in)
//! and is stored only as its SHA-256 hash: a database leak reveals no usable credential.
//! A fast hash is enough for 256-bit random secrets; slow hashes are for passwords.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use rand::RngCore;
use sha2::{Digest, Sha256};

pub const SESSION_PREFIX: &str = "keel_sess_";
pub const API_KEY_PREFIX: &str = "keel_key_";
pub const ONE_TIME_PREFIX: &str = "keel_once_";

/// A new secret and the hash to store.
#[derive(Debug)]
pub struct NewSecret {
    pub token: String,
    pub hash: Vec<u8>,
}

pub fn generate(prefix: &str) -> NewSecret {
    let mut bytes = [0u8; 32];
    rand::rng().fill_bytes(&mut bytes);
    let token = format!("{prefix}{}", URL_SAFE_NO_PAD.encode(bytes));
    let hash = hash(&token);
    NewSecret { token, hash }
}

pub fn hash(token: &str) -> Vec<u8> {
    Sha256::digest(token.as_bytes()).to_vec()
}

/// Equal in time independent of where the inputs differ (`subtle`).
pub fn constant_time_eq(a: &[u8], b: &[u8]) -> bool {
    bool::from(subtle::ConstantTimeEq::ct_eq(a, b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn secrets_are_prefixed_random_and_hashed() {
        let a = generate(SESSION_PREFIX);
        let b = generate(SESSION_PREFIX);
        assert!(a.token.starts_with(SESSION_PREFIX));
        assert_eq!(
            a.token.len(),
            SESSION_PREFIX.len() + 43,
            "256 bits in base64url"
        );
        assert_ne!(a.token, b.token);
        assert_eq!(a.hash, hash(&a.token));
        assert!(constant_time_eq(&a.hash, &hash(&a.token)));
        assert!(!constant_time_eq(&a.hash, &b.hash));
    }
}
