//! The notifications domain's one error enum.

/// Why an email could not be rendered or delivered.
///
/// Messages never contain the recipient's address: they end up in `queue_jobs.last_error`
/// and in logs, and an address is personal data.
#[derive(Debug, thiserror::Error)]
pub enum MailError {
    /// No template of this name: a job written by another version, or a bad payload.
    /// A producer bug (500 if it ever reaches a request).
    #[error("unknown email template {0:?}")]
    UnknownTemplate(String),
    /// The variables do not match what the template declares: one is missing or null,
    /// one is unexpected, or they are not a JSON object. A producer bug (500).
    #[error("email template {template}: {problem}")]
    Vars {
        template: &'static str,
        problem: String,
    },
    /// The template failed to render (with strict undefined, also a variable it uses
    /// that was not given). A producer or template bug (500).
    #[error("email template {template} failed to render: {source:#}")]
    Render {
        template: &'static str,
        #[source]
        source: minijinja::Error,
    },
    /// The recipient is not a valid address (`a@b.c` or `Name <a@b.c>`). Bad input: 422
    /// where it comes from a request; a job with it goes dead.
    #[error("invalid recipient address: {0}")]
    Address(String),
    /// The MIME message could not be assembled.
    #[error("could not build the message: {0}")]
    Build(String),
    /// Delivery failed in a way a later attempt may fix: connection refused or reset,
    /// timeout, TLS handshake, a 4xx reply, a full disk. The job retries it.
    #[error("delivery failed, will retry: {0}")]
    Transient(String),
    /// The server refused the message for good (a 5xx reply): retrying sends the same
    /// message to the same refusal, so the job goes dead at once.
    #[error("delivery refused: {0}")]
    Rejected(String),
    /// `mail.*` settings that cannot work (a `from` that is no address, TLS setup):
    /// stops start-up.
    #[error("mail settings: {0}")]
    Config(String),
}

impl MailError {
    /// True when a later attempt may succeed.
    pub fn is_transient(&self) -> bool {
        matches!(self, MailError::Transient(_))
    }

    /// `"transient"` or `"permanent"`: the `kind` label of `keel_email_failures_total`.
    pub fn kind(&self) -> &'static str {
        if self.is_transient() {
            "transient"
        } else {
            "permanent"
        }
    }

    /// As a [`keel_persistence::DbError`], for producer APIs that run inside the caller's
    /// transaction and so speak its error type. A render or address failure there is a
    /// bug in the calling code, so it becomes the "unexpected" class (500, cause logged);
    /// callers that take the recipient from user input validate it first with
    /// [`crate::Mailer::render`] or [`crate::Mailer::check_address`].
    pub(crate) fn into_db_error(self) -> keel_persistence::DbError {
        keel_persistence::DbError::internal("rendering an email", self)
    }
}

/// Why a notifications or webhooks request failed; mapped to the API's error body.
#[derive(Debug, thiserror::Error)]
pub enum NotificationsError {
    /// 422: a field failed validation.
    #[error("{field}: {message}")]
    Invalid {
        field: &'static str,
        message: String,
    },
    /// 404: no such resource for this caller (also: another organization's).
    #[error("not found")]
    NotFound,
    /// 409: conflicts with the resource's current state.
    #[error("{0}")]
    Conflict(&'static str),
    /// 400: an unsubscribe link that is not one of ours.
    #[error("invalid or expired link")]
    InvalidLink,
    /// 503/500, by the database error's class.
    #[error(transparent)]
    Db(keel_persistence::DbError),
}

keel_persistence::db_error_conversions!(NotificationsError::Db);

impl NotificationsError {
    pub fn invalid(field: &'static str, message: impl Into<String>) -> Self {
        NotificationsError::Invalid {
            field,
            message: message.into(),
        }
    }
}

impl From<NotificationsError> for keel_http::ApiError {
    fn from(e: NotificationsError) -> Self {
        use keel_http::ApiError;
        match e {
            NotificationsError::Invalid { field, message } => ApiError::validation(field, message),
            NotificationsError::NotFound => ApiError::not_found("not found"),
            NotificationsError::Conflict(why) => ApiError::conflict(why),
            NotificationsError::InvalidLink => {
                ApiError::bad_request("this link is invalid or no longer works")
            }
            NotificationsError::Db(db) => db.into(),
        }
    }
}
