//! One-time tokens: email verification, password reset, invitations.

use chrono::{DateTime, Utc};
use diesel::prelude::*;
use diesel_async::{AsyncPgConnection, RunQueryDsl};
use keel_http::Role;
use keel_persistence::DbResult;
use keel_persistence::schema::accounts_tokens as tokens;
use uuid::Uuid;

#[derive(Debug)]
pub struct NewToken<'a> {
    pub kind: &'static str,
    pub hash: &'a [u8],
    pub user_id: Option<Uuid>,
    pub org_id: Option<Uuid>,
    pub email: Option<&'a str>,
    pub role: Option<Role>,
    pub invited_by: Option<Uuid>,
    pub expires_at: DateTime<Utc>,
}

pub async fn insert_token(conn: &mut AsyncPgConnection, t: NewToken<'_>) -> DbResult<()> {
    diesel::insert_into(tokens::table)
        .values((
            tokens::id.eq(Uuid::now_v7()),
            tokens::kind.eq(t.kind),
            tokens::token_hash.eq(t.hash),
            tokens::user_id.eq(t.user_id),
            tokens::org_id.eq(t.org_id),
            tokens::email.eq(t.email),
            tokens::role.eq(t.role),
            tokens::invited_by.eq(t.invited_by),
            tokens::expires_at.eq(t.expires_at),
        ))
        .execute(conn)
        .await?;
    Ok(())
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
    kind: &str,
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
