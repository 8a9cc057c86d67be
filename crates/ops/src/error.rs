//! What can go wrong behind a page, answered as a small HTML page with the right status.

use actix_web::http::StatusCode;
use actix_web::{HttpResponse, ResponseError};

#[derive(Debug)]
pub enum OpsError {
    /// Not signed in (or the session expired): to the sign-in page.
    SignIn,
    /// A form without the session's CSRF token, or from another origin.
    Forbidden(&'static str),
    NotFound(&'static str),
    /// What the form asked for is not possible (a bad kind name, an empty filter).
    BadRequest(String),
    /// Postgres did not answer.
    Database(keel_persistence::DbError),
    /// A template failed: a bug, shown to the operator rather than hidden.
    Render(minijinja::Error),
}

impl std::fmt::Display for OpsError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            OpsError::SignIn => f.write_str("sign in first"),
            OpsError::Forbidden(why) | OpsError::NotFound(why) => f.write_str(why),
            OpsError::BadRequest(why) => f.write_str(why),
            OpsError::Database(e) => write!(f, "the database did not answer: {e}"),
            OpsError::Render(e) => write!(f, "the page could not be rendered: {e}"),
        }
    }
}

impl From<keel_persistence::DbError> for OpsError {
    fn from(e: keel_persistence::DbError) -> Self {
        OpsError::Database(e)
    }
}

impl From<minijinja::Error> for OpsError {
    fn from(e: minijinja::Error) -> Self {
        OpsError::Render(e)
    }
}

impl ResponseError for OpsError {
    fn status_code(&self) -> StatusCode {
        match self {
            OpsError::SignIn => StatusCode::SEE_OTHER,
            OpsError::Forbidden(_) => StatusCode::FORBIDDEN,
            OpsError::NotFound(_) => StatusCode::NOT_FOUND,
            OpsError::BadRequest(_) => StatusCode::BAD_REQUEST,
            OpsError::Database(_) => StatusCode::SERVICE_UNAVAILABLE,
            OpsError::Render(_) => StatusCode::INTERNAL_SERVER_ERROR,
        }
    }

    fn error_response(&self) -> HttpResponse {
        if let OpsError::SignIn = self {
            return HttpResponse::SeeOther()
                .insert_header(("location", "/ops/login"))
                .insert_header(("cache-control", "no-store"))
                .finish();
        }
        if let OpsError::Render(e) = self {
            tracing::error!(error = %e, "ops console template failed");
        }
        let message = minijinja::HtmlEscape(&self.to_string()).to_string();
        HttpResponse::build(self.status_code())
            .content_type("text/html; charset=utf-8")
            .insert_header(("cache-control", "no-store"))
            .body(format!(
                "<!doctype html><meta charset=\"utf-8\"><title>Keel ops</title>\
                 <link rel=\"stylesheet\" href=\"/ops/static/ops.css\">\
                 <main class=\"error\"><h1>{}</h1><p>{message}</p><p><a href=\"/ops\">Back to the console</a></p></main>",
                self.status_code()
            ))
    }
}
