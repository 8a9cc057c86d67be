//! Operator sign-in: the admin token, typed once into the login form, is exchanged for a
//! signed session cookie (HttpOnly, Secure, SameSite=Strict), so the token itself never
//! sits in a browser. Sessions are stateless: `{id}.{expiry}.{mac}` under a key derived
//! from the admin token, so rotating the token signs every operator out. Each form
//! carries a CSRF token bound to the session (HMAC of its id), checked on every POST, on
//! top of SameSite=Strict.

use hmac::{Hmac, Mac};
use sha2::Sha256;
use subtle::ConstantTimeEq;

type HmacSha256 = Hmac<Sha256>;

/// The cookie's name; scoped to `/ops`.
pub const COOKIE: &str = "keel_ops";

/// A signed-in operator's session.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Session {
    /// Random, 16 hex digits: what the audit log names the operator by.
    pub id: String,
    /// Unix seconds.
    pub expires: i64,
}

/// Issues and checks sessions and CSRF tokens.
#[derive(Clone)]
pub struct Sessions {
    key: [u8; 32],
    token: String,
    lifetime_secs: i64,
}

impl std::fmt::Debug for Sessions {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Sessions")
            .field("lifetime_secs", &self.lifetime_secs)
            .finish_non_exhaustive()
    }
}

impl Sessions {
    pub fn new(admin_token: &str, lifetime: std::time::Duration) -> Self {
        Self {
            key: mac(admin_token.as_bytes(), b"keel ops console session key"),
            token: admin_token.to_owned(),
            lifetime_secs: lifetime.as_secs() as i64,
        }
    }

    /// Whether `given` is the admin token (constant time).
    pub fn token_matches(&self, given: &str) -> bool {
        bool::from(given.as_bytes().ct_eq(self.token.as_bytes()))
    }

    /// A new session from `now` (unix seconds), and its cookie value.
    pub fn issue(&self, now: i64) -> (Session, String) {
        let session = Session {
            id: hex::encode(rand::random::<[u8; 8]>()),
            expires: now + self.lifetime_secs,
        };
        let value = format!("{}.{}", session.id, session.expires);
        let signed = format!("{value}.{}", hex::encode(mac(&self.key, value.as_bytes())));
        (session, signed)
    }

    /// The session a cookie value carries, if it is ours and has not expired at `now`.
    pub fn open(&self, cookie: &str, now: i64) -> Option<Session> {
        let (value, signature) = cookie.rsplit_once('.')?;
        let expected = hex::encode(mac(&self.key, value.as_bytes()));
        if !bool::from(signature.as_bytes().ct_eq(expected.as_bytes())) {
            return None;
        }
        let (id, expires) = value.split_once('.')?;
        let expires: i64 = expires.parse().ok()?;
        (expires > now).then(|| Session {
            id: id.to_owned(),
            expires,
        })
    }

    /// The CSRF token of `session`'s forms.
    pub fn csrf(&self, session: &Session) -> String {
        hex::encode(&mac(&self.key, format!("csrf {}", session.id).as_bytes())[..16])
    }

    /// Whether a form's `given` CSRF token belongs to `session` (constant time).
    pub fn csrf_matches(&self, session: &Session, given: &str) -> bool {
        bool::from(given.as_bytes().ct_eq(self.csrf(session).as_bytes()))
    }

    /// The `Set-Cookie` value that stores `signed` for the session's lifetime.
    pub fn cookie(&self, signed: &str) -> String {
        format!(
            "{COOKIE}={signed}; Path=/ops; Max-Age={}; HttpOnly; Secure; SameSite=Strict",
            self.lifetime_secs
        )
    }

    /// The `Set-Cookie` value that removes it.
    pub fn cleared() -> String {
        format!("{COOKIE}=; Path=/ops; Max-Age=0; HttpOnly; Secure; SameSite=Strict")
    }
}

fn mac(key: &[u8], message: &[u8]) -> [u8; 32] {
    let Ok(mut mac) = HmacSha256::new_from_slice(key) else {
        // HMAC takes keys of any length.
        return [0; 32];
    };
    mac.update(message);
    mac.finalize().into_bytes().into()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_session_opens_until_it_expires_and_only_under_its_token() {
        let sessions = Sessions::new(
            "a-long-admin-token-0123",
            std::time::Duration::from_secs(60),
        );
        let (session, signed) = sessions.issue(1_000);
        assert_eq!(sessions.open(&signed, 1_059), Some(session.clone()));
        assert_eq!(sessions.open(&signed, 1_060), None, "expired");
        let rotated = Sessions::new(
            "another-admin-token-456",
            std::time::Duration::from_secs(60),
        );
        assert_eq!(rotated.open(&signed, 1_000), None, "the token was rotated");
        let forged = signed.replace(&session.id, "0000000000000000");
        assert_eq!(sessions.open(&forged, 1_000), None);
        let extended = signed.replace("1060", "9999");
        assert_eq!(sessions.open(&extended, 1_000), None);
        assert!(sessions.csrf_matches(&session, &sessions.csrf(&session)));
        let (other, _) = sessions.issue(1_000);
        assert!(!sessions.csrf_matches(&other, &sessions.csrf(&session)));
        assert!(sessions.token_matches("a-long-admin-token-0123"));
        assert!(!sessions.token_matches("a-long-admin-token-012"));
    }
}
