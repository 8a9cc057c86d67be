//! Per-user choices: which event types reach them on which channel. Every channel is on
//! unless the user turned it off; only the choices are stored.

use crate::error::NotificationsError;
use crate::repo::preferences;
use crate::service::Notifications;
use keel_persistence::AsyncConnection as _;
use serde::{Deserialize, Serialize};
use uuid::Uuid;

pub use crate::repo::preferences::Preference;

/// The channels a person can be told on (webhooks are per organization, not per person).
pub const CHANNELS: &[&str] = &["in_app", "email"];

/// The caller's choices; anything not listed is on.
#[derive(Debug, Clone, Serialize, Deserialize, utoipa::ToSchema)]
#[serde(deny_unknown_fields)]
pub struct Preferences {
    #[schema(max_items = 200)]
    pub preferences: Vec<Preference>,
}

/// Most choices one request may set.
const MAX_PREFERENCES: usize = 200;

impl Notifications {
    pub async fn preferences(&self, user_id: Uuid) -> Result<Preferences, NotificationsError> {
        let mut conn = self.inner.pool.get().await?;
        Ok(Preferences {
            preferences: preferences::list(&mut conn, user_id).await?,
        })
    }

    /// Sets the listed choices (others keep theirs); validated as a whole first, so a
    /// bad entry changes nothing.
    pub async fn set_preferences(
        &self,
        user_id: Uuid,
        input: Vec<Preference>,
    ) -> Result<Preferences, NotificationsError> {
        if input.len() > MAX_PREFERENCES {
            return Err(NotificationsError::invalid(
                "preferences",
                format!("at most {MAX_PREFERENCES} entries per request"),
            ));
        }
        for p in &input {
            check_event_type(&p.event_type)?;
            if !CHANNELS.contains(&p.channel.as_str()) {
                return Err(NotificationsError::invalid(
                    "channel",
                    format!("must be one of {}", CHANNELS.join(", ")),
                ));
            }
        }
        self.inner
            .pool
            .get()
            .await?
            .transaction(async |conn| {
                for p in &input {
                    preferences::set(conn, user_id, p).await?;
                }
                Ok::<_, NotificationsError>(())
            })
            .await?;
        self.preferences(user_id).await
    }

    /// The event type an unsubscribe token is for, if the token is ours.
    pub fn check_unsubscribe(&self, token: &str) -> Result<String, NotificationsError> {
        let (_, event_type) = self
            .inner
            .links
            .verify(token)
            .ok_or(NotificationsError::InvalidLink)?;
        check_event_type(&event_type)?;
        Ok(event_type)
    }

    /// The unsubscribe link's action: email off for that event type. Returns the event
    /// type, for the confirmation.
    pub async fn unsubscribe(&self, token: &str) -> Result<String, NotificationsError> {
        let (user_id, event_type) = self
            .inner
            .links
            .verify(token)
            .ok_or(NotificationsError::InvalidLink)?;
        let mut conn = self.inner.pool.get().await?;
        let off = Preference {
            event_type,
            channel: "email".to_owned(),
            enabled: false,
        };
        preferences::set(&mut conn, user_id, &off).await?;
        Ok(off.event_type)
    }
}

/// `domain.name` in lowercase letters, digits and `_`, dot-separated, or `*` where the
/// caller allows it; at most 100 characters.
pub(crate) fn check_event_type(value: &str) -> Result<(), NotificationsError> {
    let ok = value.len() <= 100
        && value.contains('.')
        && value.split('.').all(|part| {
            part.chars().next().is_some_and(|c| c.is_ascii_lowercase())
                && part
                    .chars()
                    .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '_')
        });
    if ok {
        Ok(())
    } else {
        Err(NotificationsError::invalid(
            "event_type",
            format!("{value:?} is not an event type (like \"export.completed\")"),
        ))
    }
}
