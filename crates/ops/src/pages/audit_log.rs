//! The operators' audit log, newest first.

use super::{Params, render};
use crate::Console;
use crate::audit;
use crate::error::OpsError;
use crate::operator::Operator;
use actix_web::{HttpResponse, get, web};

#[get("/ops/audit")]
pub async fn page(
    console: web::Data<Console>,
    operator: Operator,
    params: web::Query<Params>,
) -> Result<HttpResponse, OpsError> {
    let lines = audit::latest(&console.inner.pool, 200).await?;
    render(
        &console,
        &operator,
        "audit",
        "audit.html",
        data! { lines },
        &params,
    )
}
