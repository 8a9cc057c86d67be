//! Who the people of an organization are. Notifications does not read accounts' tables:
//! it asks through this trait, which the binary implements over the accounts domain.

use futures::future::BoxFuture;
use keel_events::Audience;
use keel_persistence::{AsyncPgConnection, DbResult};
use uuid::Uuid;

/// A person to notify.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Recipient {
    pub user_id: Uuid,
    pub email: String,
    pub name: String,
}

pub trait Directory: Send + Sync + std::fmt::Debug + 'static {
    /// The members of `org_id` that `audience` names. Users that are not members of the
    /// organization are left out: an event never reaches another tenant.
    fn recipients<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        org_id: Uuid,
        audience: &'a Audience,
    ) -> BoxFuture<'a, DbResult<Vec<Recipient>>>;
}
