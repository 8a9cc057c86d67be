//! Validated inputs: a handler cannot hold an unchecked email, name or password.

use crate::error::AccountsError;
use crate::password_hash as password;

/// A normalised (trimmed, lowercased) email address. Stored in job payloads as the plain
/// address; reading one back checks it again.
#[derive(Debug, Clone, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(into = "String", try_from = "String")]
pub struct Email(String);

impl Email {
    /// A pragmatic check: one `@`, a dotted domain, no spaces, at most 254 characters.
    /// Deliverability is proven by the verification email, not by a regex.
    pub fn parse(field: &'static str, raw: &str) -> Result<Self, AccountsError> {
        let email = raw.trim().to_lowercase();
        let valid = email.len() <= 254
            && !email.chars().any(char::is_whitespace)
            && matches!(email.split_once('@'), Some((local, domain))
                if !local.is_empty() && !domain.contains('@') && domain.contains('.')
                    && !domain.starts_with('.') && !domain.ends_with('.'));
        if !valid {
            return Err(AccountsError::invalid(
                field,
                "is not a valid email address",
            ));
        }
        Ok(Self(email))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The domain, for logs (the full address is personal data).
    pub fn domain(&self) -> &str {
        self.0.split_once('@').map_or("", |(_, d)| d)
    }
}

impl From<Email> for String {
    fn from(email: Email) -> Self {
        email.0
    }
}

impl TryFrom<String> for Email {
    type Error = AccountsError;

    fn try_from(raw: String) -> Result<Self, Self::Error> {
        Email::parse("email", &raw)
    }
}

/// A display name: 1–100 characters after trimming, no control characters.
pub fn name(field: &'static str, raw: &str) -> Result<String, AccountsError> {
    let name = raw.trim();
    if name.is_empty() || name.chars().count() > 100 {
        return Err(AccountsError::invalid(field, "must be 1 to 100 characters"));
    }
    if name.chars().any(char::is_control) {
        return Err(AccountsError::invalid(
            field,
            "must not contain control characters",
        ));
    }
    Ok(name.to_owned())
}

/// A password that passes the policy (checked before any hashing work).
pub fn new_password(field: &'static str, raw: &str) -> Result<String, AccountsError> {
    password::check_policy(raw).map_err(|m| AccountsError::invalid(field, m))?;
    Ok(raw.to_owned())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn emails_are_normalised_and_checked() {
        assert_eq!(
            Email::parse("email", "  Ada@Example.COM ")
                .unwrap()
                .as_str(),
            "ada@example.com"
        );
        for bad in [
            "",
            "ada",
            "ada@",
            "@example.com",
            "ada@example",
            "a da@example.com",
            "a@b@c.com",
            "ada@.com",
        ] {
            assert!(Email::parse("email", bad).is_err(), "{bad}");
        }
    }

    #[test]
    fn emails_read_back_from_json_are_checked_again() {
        let email = Email::parse("email", "ada@example.com").unwrap();
        let json = serde_json::to_value(&email).unwrap();
        assert_eq!(json, serde_json::json!("ada@example.com"));
        assert_eq!(serde_json::from_value::<Email>(json).unwrap(), email);
        assert!(serde_json::from_value::<Email>(serde_json::json!("not an address")).is_err());
    }

    #[test]
    fn names_are_trimmed_and_bounded() {
        assert_eq!(name("name", "  Ada ").unwrap(), "Ada");
        assert!(name("name", "   ").is_err());
        assert!(name("name", &"x".repeat(101)).is_err());
        assert!(name("name", "Ada\u{0}").is_err());
    }
}
