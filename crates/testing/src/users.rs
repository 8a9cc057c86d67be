//! Users as fixtures: signed up, verified and logged in through the API, as a client
//! would (only the verification email is skipped, by marking the address verified).

use crate::TestApp;
use diesel::sql_types::Text;
use diesel_async::RunQueryDsl as _;
use serde_json::{Value, json};
use uuid::Uuid;

/// The password of every fixture user.
pub const PASSWORD: &str = "a long passphrase for tests";

/// A user with a session in a fresh organization (its owner).
#[derive(Debug, Clone)]
pub struct User {
    pub token: String,
    pub user_id: Uuid,
    pub org_id: Uuid,
}

/// A new API key of `owner`'s organization holding `scopes`; its secret.
pub async fn api_key(app: &TestApp, owner: &User, scopes: &[&str]) -> String {
    let res = app
        .authed_json(
            &owner.token,
            reqwest::Method::POST,
            &format!("/api/v1/orgs/{}/api-keys", owner.org_id),
            json!({"name": "test key", "scopes": scopes}),
        )
        .await;
    assert_eq!(res.status(), 201, "create an API key");
    let created: Value = res.json().await.expect("json");
    created["secret"].as_str().expect("secret").to_owned()
}

/// Signs `email` up (with a new organization), verifies the address and logs in.
pub async fn user(app: &TestApp, email: &str) -> User {
    let res = app
        .client
        .post(app.url("/api/v1/signup"))
        .json(&json!({"email": email, "password": PASSWORD, "name": "Ada", "organization_name": "Engines"}))
        .send()
        .await
        .expect("signup");
    assert_eq!(res.status(), 202);
    let mut conn = app.platform.pool.get().await.expect("conn");
    diesel::sql_query("UPDATE accounts_users SET email_verified_at = now() WHERE email = $1")
        .bind::<Text, _>(email)
        .execute(&mut conn)
        .await
        .expect("verify");
    let session: Value = app
        .client
        .post(app.url("/api/v1/sessions"))
        .json(&json!({"email": email, "password": PASSWORD}))
        .send()
        .await
        .expect("login")
        .json()
        .await
        .expect("json");
    let token = session["token"].as_str().expect("token").to_owned();
    let me = app.get_json(&token, "/api/v1/me").await;
    let id = |v: &Value| -> Uuid { v.as_str().expect("id").parse().expect("uuid") };
    User {
        user_id: id(&me["user"]["id"]),
        org_id: id(&me["organization"]["id"]),
        token,
    }
}
