//! Download links Keel signs itself (the local backend cannot presign): the link names
//! the export, its organization, an expiry and the id of the key that signed it, and
//! carries an HMAC-SHA256 over all four. Changing any of them, or presenting the link
//! after its expiry or under a key no longer configured, is refused (403). Keys rotate
//! (`exports.link_keys`): new links are signed with the first key, links signed by any
//! configured key are accepted.

use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use chrono::{DateTime, Utc};
use hmac::digest::InvalidLength;
use hmac::{Hmac, Mac};
use keel_config::LinkKeys;
use serde::Deserialize;
use sha2::Sha256;
use uuid::Uuid;

type HmacSha256 = Hmac<Sha256>;

/// The query of a signed link: `?expires=<unix seconds>&key=<key id>&signature=<base64url>`.
#[derive(Debug, Clone, Deserialize, utoipa::IntoParams)]
#[into_params(parameter_in = Query)]
pub struct Signature {
    /// When the link stops working, in Unix seconds.
    pub expires: i64,
    /// Which signing key made the signature.
    pub key: String,
    /// HMAC-SHA256 of the export, organization, expiry and key id, base64url.
    pub signature: String,
}

impl Signature {
    /// The query string.
    pub fn query(&self) -> String {
        format!(
            "expires={}&key={}&signature={}",
            self.expires, self.key, self.signature
        )
    }
}

/// Why a link is refused.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Refused {
    Expired,
    UnknownKey,
    Forged,
}

impl Refused {
    pub fn message(self) -> &'static str {
        match self {
            Refused::Expired => "the download link has expired; ask for a new one",
            Refused::UnknownKey => {
                "the download link was signed with a key no longer in use; ask for a new one"
            }
            Refused::Forged => "the download link is not valid",
        }
    }
}

#[derive(Debug, Clone)]
pub struct LinkSigner {
    keys: LinkKeys,
}

impl LinkSigner {
    pub fn new(keys: LinkKeys) -> Self {
        Self { keys }
    }

    /// Signs a link to `export_id` of `org_id` valid until `expires`.
    pub fn sign(
        &self,
        export_id: Uuid,
        org_id: Uuid,
        expires: DateTime<Utc>,
    ) -> Result<Signature, InvalidLength> {
        let key = self.keys.current();
        let expires = expires.timestamp();
        let tag = mac(key.secret.expose(), export_id, org_id, expires, &key.id)?
            .finalize()
            .into_bytes();
        Ok(Signature {
            expires,
            key: key.id.clone(),
            signature: URL_SAFE_NO_PAD.encode(tag),
        })
    }

    /// Checks `signature` for a link to `export_id` of `org_id` at `now`.
    pub fn verify(
        &self,
        export_id: Uuid,
        org_id: Uuid,
        signature: &Signature,
        now: DateTime<Utc>,
    ) -> Result<(), Refused> {
        let key = self.keys.find(&signature.key).ok_or(Refused::UnknownKey)?;
        let tag = URL_SAFE_NO_PAD
            .decode(&signature.signature)
            .map_err(|_| Refused::Forged)?;
        mac(
            key.secret.expose(),
            export_id,
            org_id,
            signature.expires,
            &key.id,
        )
        .map_err(|_| Refused::Forged)?
        .verify_slice(&tag)
        .map_err(|_| Refused::Forged)?;
        // Checked after the signature, so a forged expiry reads as forged.
        if signature.expires <= now.timestamp() {
            return Err(Refused::Expired);
        }
        Ok(())
    }
}

/// The MAC over what a link grants. (HMAC takes keys of any length: the error is the
/// trait's, never met.)
fn mac(
    secret: &str,
    export_id: Uuid,
    org_id: Uuid,
    expires: i64,
    key_id: &str,
) -> Result<HmacSha256, InvalidLength> {
    let mut mac = HmacSha256::new_from_slice(secret.as_bytes())?;
    mac.update(
        format!("keel.export-download\n{export_id}\n{org_id}\n{expires}\n{key_id}").as_bytes(),
    );
    Ok(mac)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn keys(text: &str) -> LinkKeys {
        serde_json::from_value(serde_json::json!(text)).unwrap()
    }

    const A: &str = "a:0123456789abcdef0123456789abcdef";
    const B: &str = "b:fedcba9876543210fedcba9876543210";

    #[test]
    fn a_signed_link_verifies_until_it_expires() {
        let signer = LinkSigner::new(keys(A));
        let (export, org, now) = (Uuid::now_v7(), Uuid::now_v7(), Utc::now());
        let sig = signer
            .sign(export, org, now + chrono::Duration::minutes(15))
            .unwrap();
        assert_eq!(signer.verify(export, org, &sig, now), Ok(()));
        let later = now + chrono::Duration::minutes(16);
        assert_eq!(
            signer.verify(export, org, &sig, later),
            Err(Refused::Expired)
        );
    }

    #[test]
    fn any_change_is_refused() {
        let signer = LinkSigner::new(keys(A));
        let (export, org, now) = (Uuid::now_v7(), Uuid::now_v7(), Utc::now());
        let sig = signer
            .sign(export, org, now + chrono::Duration::minutes(5))
            .unwrap();
        let other = Uuid::now_v7();
        assert_eq!(signer.verify(other, org, &sig, now), Err(Refused::Forged));
        assert_eq!(
            signer.verify(export, other, &sig, now),
            Err(Refused::Forged)
        );
        let longer = Signature {
            expires: sig.expires + 3600,
            ..sig.clone()
        };
        assert_eq!(
            signer.verify(export, org, &longer, now),
            Err(Refused::Forged)
        );
        let garbled = Signature {
            signature: "!!".into(),
            ..sig.clone()
        };
        assert_eq!(
            signer.verify(export, org, &garbled, now),
            Err(Refused::Forged)
        );
    }

    #[test]
    fn rotation_keeps_old_links_until_their_key_is_dropped() {
        let (export, org, now) = (Uuid::now_v7(), Uuid::now_v7(), Utc::now());
        let old = LinkSigner::new(keys(A))
            .sign(export, org, now + chrono::Duration::minutes(5))
            .unwrap();
        let rotated = LinkSigner::new(keys(&format!("{B},{A}")));
        assert_eq!(rotated.verify(export, org, &old, now), Ok(()));
        assert_eq!(rotated.sign(export, org, now).unwrap().key, "b");
        let dropped = LinkSigner::new(keys(B));
        assert_eq!(
            dropped.verify(export, org, &old, now),
            Err(Refused::UnknownKey)
        );
    }
}
