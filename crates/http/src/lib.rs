//! HTTP pieces every domain shares: the error body ([`ApiError`]), request ids, the JSON
//! extractor with precise 400/413/415/422 errors, keyset pagination, the
//! authenticated-caller extractor, `Idempotency-Key` handling for creates and the
//! answer to requests that match no route (404, or 405 with `Allow`).

pub mod auth;
pub mod caller;
pub mod client_address;
pub mod download;
mod error;
pub mod idempotency;
pub mod json;
pub mod openapi;
pub mod pagination;
pub mod rate_limit;
pub mod request_id;
mod unmatched;

pub use auth::{Authenticated, Authenticator};
pub use caller::{Access, Caller, KeyCaller, Role, Scope, UserCaller};
pub use error::{ApiError, ErrorBody, ErrorDetail};
pub use idempotency::{Answer, Idempotency, IdempotencyKey, Reply};
pub use json::Json;
pub use pagination::{Page, PageQuery, Paginated};
pub use unmatched::{AllowedMethods, unmatched};
