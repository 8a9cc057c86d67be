//! Unsubscribe links that work without logging in: the link carries who and what
//! (user, event type), signed with HMAC-SHA256 under `notifications.unsubscribe_secret`,
//! so it cannot be forged or pointed at another user. It does not expire: an old email's
//! link must keep working.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use hmac::{Hmac, Mac};
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

#[derive(Clone)]
pub(crate) struct UnsubscribeLinks {
    key: Vec<u8>,
    base: String,
}

impl std::fmt::Debug for UnsubscribeLinks {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("UnsubscribeLinks")
            .field("base", &self.base)
            .finish_non_exhaustive()
    }
}

impl UnsubscribeLinks {
    pub fn new(secret: &str, public_url: &str) -> Self {
        Self {
            key: secret.as_bytes().to_vec(),
            base: public_url.trim_end_matches('/').to_owned(),
        }
    }

    /// `{public_url}/api/v1/unsubscribe?token=...`
    pub fn link(&self, user_id: Uuid, event_type: &str) -> String {
        format!(
            "{}/api/v1/unsubscribe?token={}",
            self.base,
            self.token(user_id, event_type)
        )
    }

    /// `base64url(user_id bytes ‖ event_type) . base64url(hmac)`
    pub fn token(&self, user_id: Uuid, event_type: &str) -> String {
        let mut payload = user_id.as_bytes().to_vec();
        payload.extend_from_slice(event_type.as_bytes());
        let tag = self.mac(&payload).finalize().into_bytes();
        format!(
            "{}.{}",
            URL_SAFE_NO_PAD.encode(&payload),
            URL_SAFE_NO_PAD.encode(tag)
        )
    }

    /// The `(user_id, event_type)` of a token this process's secret signed.
    pub fn verify(&self, token: &str) -> Option<(Uuid, String)> {
        let (payload, tag) = token.split_once('.')?;
        let payload = URL_SAFE_NO_PAD.decode(payload).ok()?;
        let tag = URL_SAFE_NO_PAD.decode(tag).ok()?;
        // Constant-time comparison.
        self.mac(&payload).verify_slice(&tag).ok()?;
        let user_id = Uuid::from_slice(payload.get(..16)?).ok()?;
        let event_type = String::from_utf8(payload.get(16..)?.to_vec()).ok()?;
        Some((user_id, event_type))
    }

    fn mac(&self, payload: &[u8]) -> HmacSha256 {
        // HMAC takes keys of any length; this cannot fail.
        let mut mac = <HmacSha256 as Mac>::new_from_slice(&self.key)
            .unwrap_or_else(|_| unreachable!("HMAC accepts any key length"));
        mac.update(payload);
        mac
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn tokens_round_trip_and_resist_tampering() {
        let links =
            UnsubscribeLinks::new("a secret of at least thirty-two chars", "https://x.test/");
        let user = Uuid::now_v7();
        let token = links.token(user, "export.completed");
        assert_eq!(
            links.verify(&token),
            Some((user, "export.completed".to_owned()))
        );
        assert!(
            links
                .link(user, "export.completed")
                .starts_with("https://x.test/api/v1/unsubscribe?token=")
        );
        let other = links.token(Uuid::now_v7(), "export.completed");
        let forged = format!(
            "{}.{}",
            token.split('.').next().unwrap(),
            other.split('.').nth(1).unwrap()
        );
        assert_eq!(links.verify(&forged), None);
        let stranger =
            UnsubscribeLinks::new("another secret of thirty-two chars!!", "https://x.test");
        assert_eq!(stranger.verify(&token), None);
        assert_eq!(links.verify("garbage"), None);
    }
}
