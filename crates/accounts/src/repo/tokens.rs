//! One-time tokens: email verification, password reset, invitations.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_http::Role;
use keel_persistence::DbResult;
use keel_persistence::schema::accounts_tokens as tokens;
use uuid::Uuid;

keel_persistence::text_enum! {
    /// What a one-time token is for (`accounts_tokens.kind`).
    pub enum TokenKind {
        VerifyEmail = "verify_email",
        PasswordReset = "password_reset",
        Invitation = "invitation",
    }
}

#[derive(Debug)]
pub struct NewToken<'a> {
    /// A new UUID, or the id of the job that writes the token: its row then exists once
    /// however often the job runs (see [`insert_token`]).
    pub id: Uuid,
    pub kind: TokenKind,
    pub hash: &'a [u8],
    pub user_id: Option<Uuid>,
    pub org_id: Option<Uuid>,
    pub email: Option<&'a str>,
    pub role: Option<Role>,
    pub invited_by: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
}

impl<'a> NewToken<'a> {
    /// A token a user acts on for their own account (verify the address, reset the
    /// password); invitations carry more and are written out whole.
    pub fn for_user(
        kind: TokenKind,
        hash: &'a [u8],
        user_id: Uuid,
        expires_at: DateTime<Utc>,
    ) -> Self {
        Self {
            id: Uuid::now_v7(),
            kind,
            hash,
            user_id: Some(user_id),
            org_id: None,
            email: None,
            role: None,
            invited_by: None,
            expires_at,
        }
    }
}

/// Writes a token; `false` when a token with its id exists already (its job ran before),
/// and then writes nothing.
pub async fn insert_token(conn: &mut AsyncPgConnection, t: NewToken<'_>) -> DbResult<bool> {
    let inserted = diesel::insert_into(tokens::table)
        .values((
            tokens::id.eq(t.id),
            tokens::kind.eq(t.kind),
            tokens::token_hash.eq(t.hash),
            tokens::user_id.eq(t.user_id),
            tokens::org_id.eq(t.org_id),
            tokens::email.eq(t.email),
            tokens::role.eq(t.role),
            tokens::invited_by.eq(t.invited_by),
            tokens::expires_at.eq(t.expires_at),
        ))
        .on_conflict(tokens::id)
        .do_nothing()
        .execute(conn)
        .await?;
    Ok(inserted == 1)
}

#[derive(Debug, Queryable, Selectable)]
#[diesel(table_name = tokens)]
pub struct TokenRow {
    pub token_hash: Vec<u8>,
    pub user_id: Option<Uuid>,
    pub org_id: Option<Uuid>,
    pub email: Option<String>,
    pub role: Option<Role>,
    pub invited_by: Option<Uuid>,
}

/// Uses a one-time token: marks it used if it is of `kind`, unused and unexpired, in one
/// conditional UPDATE, so two concurrent uses cannot both succeed.
pub async fn take_token(
    conn: &mut AsyncPgConnection,
    kind: TokenKind,
    hash: &[u8],
) -> DbResult<Option<TokenRow>> {
    diesel::update(
        tokens::table
            .filter(tokens::token_hash.eq(hash))
            .filter(tokens::kind.eq(kind))
            .filter(tokens::used_at.is_null())
            .filter(tokens::expires_at.gt(diesel::dsl::now)),
    )
    .set(tokens::used_at.eq(diesel::dsl::now))
    .returning(TokenRow::as_returning())
    .get_result(conn)
    .await
    .optional()
    .map_err(Into::into)
}
