//! Every query of the accounts domain, one file per table family. Functions take a
//! connection, not the pool, so a service can run several of them in one transaction.

mod api_keys;
mod audit;
mod exported;
mod memberships;
mod orgs;
mod retention;
mod sessions;
mod tokens;
mod users;

pub use api_keys::*;
pub use audit::*;
pub use exported::*;
pub use memberships::*;
pub use orgs::*;
pub use retention::*;
pub use sessions::*;
pub use tokens::*;
pub use users::*;
