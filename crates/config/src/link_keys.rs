//! The keys that sign export download links (`exports.link_keys`), newest first, so
//! they can be rotated: links are signed with the first and accepted under any.

use crate::Secret;
use crate::list::ListOrText;
use serde::Deserialize;

/// One signing key: the id a link names, and the secret behind it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LinkKey {
    pub id: String,
    pub secret: Secret<String>,
}

/// `id:secret` items, the signing key first. Rotate by putting a new key in front and
/// dropping the old one once the links it signed have expired (minutes later).
#[derive(Debug, Clone, PartialEq, Eq, Deserialize)]
#[serde(try_from = "ListOrText")]
pub struct LinkKeys(Vec<LinkKey>);

/// Shortest secret accepted: 256 bits of base64 or hex is longer.
pub const MIN_SECRET_CHARS: usize = 32;

impl TryFrom<ListOrText> for LinkKeys {
    type Error = String;

    fn try_from(value: ListOrText) -> Result<Self, String> {
        let mut keys: Vec<LinkKey> = Vec::new();
        for item in value.items() {
            let Some((id, secret)) = item.split_once(':') else {
                return Err("each key is `id:secret`".to_owned());
            };
            let id = id.trim();
            let valid_id = !id.is_empty()
                && id.len() <= 32
                && id
                    .chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_');
            if !valid_id {
                return Err(format!(
                    "key id `{id}` must be 1-32 letters, digits, - or _"
                ));
            }
            if secret.len() < MIN_SECRET_CHARS {
                return Err(format!(
                    "the secret of key `{id}` must be at least {MIN_SECRET_CHARS} characters"
                ));
            }
            if keys.iter().any(|k| k.id == id) {
                return Err(format!("key id `{id}` appears twice"));
            }
            keys.push(LinkKey {
                id: id.to_owned(),
                secret: Secret::new(secret.to_owned()),
            });
        }
        if keys.is_empty() {
            return Err("at least one key is needed".to_owned());
        }
        Ok(Self(keys))
    }
}

impl LinkKeys {
    /// The key new links are signed with.
    pub fn current(&self) -> &LinkKey {
        // Never empty: `try_from` refuses an empty list.
        &self.0[0]
    }

    /// The key a link names, if it is still configured.
    pub fn find(&self, id: &str) -> Option<&LinkKey> {
        self.0.iter().find(|k| k.id == id)
    }

    pub fn all(&self) -> &[LinkKey] {
        &self.0
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const SECRET: &str = "0123456789abcdef0123456789abcdef";

    #[test]
    fn parses_ids_and_secrets_newest_first() {
        let keys =
            LinkKeys::try_from(ListOrText::Text(format!("k2:{SECRET}, k1:{SECRET}x"))).unwrap();
        assert_eq!(keys.current().id, "k2");
        assert_eq!(
            keys.find("k1").unwrap().secret.expose(),
            &format!("{SECRET}x")
        );
        assert!(keys.find("k3").is_none());
    }

    #[test]
    fn refuses_short_secrets_bad_ids_duplicates_and_nothing() {
        for bad in [
            "k1:short".to_owned(),
            format!("k 1:{SECRET}"),
            format!("k1:{SECRET},k1:{SECRET}"),
            SECRET.to_owned(),
            String::new(),
        ] {
            assert!(
                LinkKeys::try_from(ListOrText::Text(bad.clone())).is_err(),
                "{bad}"
            );
        }
    }
}
