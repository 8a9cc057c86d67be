//! Accounts through its HTTP routes, on real PostgreSQL and Redis. Emails go through a
//! mailer that enqueues a real job row in the caller's transaction (as the notifications
//! channel does); tests read the links from those rows.

#![expect(clippy::expect_used, reason = "a failed expectation is a failed test")]

use actix_web::dev::{Service, ServiceResponse};
use actix_web::middleware::from_fn;
use actix_web::{App, test, web};
use futures::FutureExt;
use futures::future::BoxFuture;
use keel_accounts::{AccountEmail, AccountMailer, Accounts};
use keel_cache::Cache;
use keel_events::{Audience, Event, Publisher};
use keel_http::Authenticator;
use keel_persistence::testing::TestDatabase;
use keel_persistence::{AsyncPgConnection, DbPool, DbResult};
use keel_queue::{Enqueued, Job, Queue};
use serde::{Deserialize, Serialize};
use serde_json::{Value, json};
use std::sync::Arc;

#[path = "accounts/password_resets.rs"]
mod password_resets;

/// The job a test mailer enqueues: the email itself as payload.
#[derive(Debug, Serialize, Deserialize)]
struct TestEmail(AccountEmail);
impl Job for TestEmail {
    const NAME: &'static str = "test.account_email";
}

struct JobMailer(Queue);

impl AccountMailer for JobMailer {
    fn enqueue<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        email: AccountEmail,
    ) -> BoxFuture<'a, DbResult<Enqueued>> {
        async move { self.0.enqueue(conn, &TestEmail(email)).await }.boxed()
    }
}

/// The job a test publisher enqueues: the event itself as payload.
#[derive(Debug, Serialize, Deserialize)]
struct TestEvent(Event);
impl Job for TestEvent {
    const NAME: &'static str = "test.event";
}

#[derive(Debug)]
struct JobEvents(Queue);

impl Publisher for JobEvents {
    fn publish<'a>(
        &'a self,
        conn: &'a mut AsyncPgConnection,
        event: Event,
    ) -> BoxFuture<'a, DbResult<Enqueued>> {
        async move { self.0.enqueue(conn, &TestEvent(event)).await }.boxed()
    }
}

struct Ctx {
    _db: TestDatabase,
    settings: Arc<keel_config::Settings>,
    pool: DbPool,
    accounts: Accounts,
}

/// Another "process": its own pools and caches over the same database and Redis prefix.
fn second_instance(ctx: &Ctx) -> Accounts {
    instance(
        &ctx.settings,
        DbPool::new(&ctx.settings.database).expect("pool"),
    )
}

async fn setup() -> Ctx {
    keel_telemetry::init_for_tests();
    let db = TestDatabase::new().await.expect("test database");
    let settings = Arc::new(keel_config::testing::settings(db.url()));
    let pool = DbPool::new(&settings.database).expect("pool");
    let accounts = instance(&settings, pool.clone());
    Ctx {
        _db: db,
        settings,
        pool,
        accounts,
    }
}

/// One "process" worth of accounts: its own caches and Redis pool.
fn instance(settings: &Arc<keel_config::Settings>, pool: DbPool) -> Accounts {
    let redis = keel_cache::redis_pool(&settings.redis).expect("redis");
    let cache = Cache::new(&settings.cache, &settings.redis, redis.clone()).expect("cache");
    let queue = Queue::new(settings, pool.clone()).expect("queue");
    let mailer = Arc::new(JobMailer(queue.clone()));
    let events = Arc::new(JobEvents(queue.clone()));
    Accounts::new(settings.clone(), pool, &cache, redis, queue, mailer, events).expect("accounts")
}

async fn app(
    ctx: &Ctx,
) -> impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error> {
    let authenticator: Arc<dyn Authenticator> = Arc::new(ctx.accounts.clone());
    test::init_service(
        App::new()
            .app_data(web::Data::new(ctx.accounts.clone()))
            .app_data(web::Data::new(authenticator))
            .configure(|cfg| keel_http::json::configure_extractors(cfg, 65536))
            .service(utoipa_actix_web::scope("/api/v1").configure(keel_accounts::http::configure))
            .wrap(from_fn(keel_http::request_id::middleware)),
    )
    .await
}

async fn call(
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
) -> (u16, Value) {
    let mut req = test::TestRequest::default()
        .method(method.parse().expect("method"))
        .uri(&format!("/api/v1{path}"));
    if let Some(token) = token {
        req = req.insert_header(("authorization", format!("Bearer {token}")));
    }
    if let Some(body) = body {
        req = req.set_json(body);
    }
    let res = test::call_service(app, req.to_request()).await;
    let status = res.status().as_u16();
    let bytes = test::read_body(res).await;
    (
        status,
        serde_json::from_slice(&bytes).unwrap_or(Value::Null),
    )
}

/// `call` that must be refused: asserts the whole error body (`status`, `code`, a
/// message, a request id) and returns it.
async fn refused(
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    method: &str,
    path: &str,
    token: Option<&str>,
    body: Option<Value>,
    status: u16,
    code: &str,
) -> Value {
    let (got, body) = call(app, method, path, token, body).await;
    assert_eq!(got, status, "{method} {path}: {body}");
    assert_eq!(body["error"]["code"], code, "{method} {path}: {body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert!(body["error"]["request_id"].is_string(), "{body}");
    body
}

/// The emails enqueued so far, oldest first.
async fn emails(pool: &DbPool) -> Vec<AccountEmail> {
    payloads(pool, TestEmail::NAME).await
}

async fn events(pool: &DbPool) -> Vec<Event> {
    payloads(pool, TestEvent::NAME).await
}

/// The payloads of the jobs of `kind`, oldest first.
async fn payloads<T: serde::de::DeserializeOwned>(pool: &DbPool, kind: &str) -> Vec<T> {
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use keel_persistence::schema::queue_jobs;
    let mut conn = pool.get().await.expect("conn");
    let payloads: Vec<Value> = queue_jobs::table
        .filter(queue_jobs::kind.eq(kind))
        .order(queue_jobs::created_at.asc())
        .select(queue_jobs::payload)
        .load(&mut conn)
        .await
        .expect("jobs");
    payloads
        .into_iter()
        .map(|p| serde_json::from_value(p).expect("payload"))
        .collect()
}

fn token_of(link: &str) -> String {
    link.split("token=")
        .nth(1)
        .expect("token in link")
        .to_owned()
}

fn signup_body(email: &str, password: &str) -> Value {
    json!({"email": email, "password": password, "name": "Ada", "organization_name": "Analytical Engines"})
}

/// Signs up and verifies; returns the session token.
async fn verified_user(
    ctx: &Ctx,
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    email: &str,
) -> String {
    let (status, _) = call(
        app,
        "POST",
        "/signup",
        None,
        Some(signup_body(email, "a long passphrase")),
    )
    .await;
    assert_eq!(status, 202);
    let link = emails(&ctx.pool)
        .await
        .into_iter()
        .rev()
        .find_map(|e| match e {
            AccountEmail::VerifyEmail { to, link, .. } if to == email => Some(link),
            _ => None,
        })
        .expect("verification email");
    let (status, body) = call(
        app,
        "POST",
        "/email-verifications",
        None,
        Some(json!({"token": token_of(&link)})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    body["token"].as_str().expect("session token").to_owned()
}

#[actix_web::test]
async fn signup_verification_and_me() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let (status, body) = call(
        &app,
        "POST",
        "/signup",
        None,
        Some(signup_body(" Ada@Example.com", "a long passphrase")),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let emails_now = emails(&ctx.pool).await;
    let AccountEmail::VerifyEmail { to, link, .. } = &emails_now[0] else {
        panic!("{emails_now:?}")
    };
    assert_eq!(to, "ada@example.com");
    let token = token_of(link);

    let (status, body) = call(
        &app,
        "POST",
        "/email-verifications",
        None,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["email"], "ada@example.com");
    assert_eq!(body["user"]["role"], "owner");
    assert_eq!(body["user"]["email_verified"], true);
    let session = body["token"].as_str().expect("token");
    assert!(session.starts_with("keel_sess_"));

    let (status, me) = call(&app, "GET", "/me", Some(session), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["organization"]["name"], "Analytical Engines", "{me}");
    assert_eq!(me["user"]["email"], "ada@example.com");
    assert_eq!(me["role"], "owner");
    assert!(me["api_key"].is_null());

    // Single use.
    let (status, body) = call(
        &app,
        "POST",
        "/email-verifications",
        None,
        Some(json!({"token": token})),
    )
    .await;
    assert_eq!(status, 400, "{body}");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    assert_eq!(body["error"]["code"], "bad_request");
}

#[actix_web::test]
async fn signing_up_with_a_taken_address_looks_the_same_and_warns_the_owner() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let first = call(
        &app,
        "POST",
        "/signup",
        None,
        Some(signup_body("grace@example.com", "a long passphrase")),
    )
    .await;
    let second = call(
        &app,
        "POST",
        "/signup",
        None,
        Some(signup_body("Grace@example.com", "another passphrase")),
    )
    .await;
    assert_eq!(first, second, "no account enumeration");
    let sent = emails(&ctx.pool).await;
    assert_eq!(sent.len(), 2);
    assert!(
        matches!(&sent[1], AccountEmail::SignupAttempt { to, reset_link, .. }
        if to == "grace@example.com" && reset_link.contains("token=keel_once_")),
        "{sent:?}"
    );
}

#[actix_web::test]
async fn bad_signups_name_the_field_and_write_nothing() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let mut with_role = signup_body("a@example.com", "a long passphrase");
    with_role["role"] = json!("owner"); // mass assignment
    let cases = [
        (signup_body("a@example.com", "password"), "password"),
        (signup_body("not-an-email", "a long passphrase"), "email"),
        (with_role, "role"),
    ];
    for (input, field) in cases {
        let (status, body) = call(&app, "POST", "/signup", None, Some(input)).await;
        assert_eq!(
            (status, body["error"]["field"].as_str()),
            (422, Some(field)),
            "{body}"
        );
    }
    assert!(emails(&ctx.pool).await.is_empty());
}

#[actix_web::test]
async fn login_gives_one_answer_for_unknown_email_and_wrong_password() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    verified_user(&ctx, &app, "linus@example.com").await;
    let wrong = call(
        &app,
        "POST",
        "/sessions",
        None,
        Some(json!({"email": "linus@example.com", "password": "not it at all"})),
    )
    .await;
    let unknown = call(
        &app,
        "POST",
        "/sessions",
        None,
        Some(json!({"email": "nobody@example.com", "password": "not it at all"})),
    )
    .await;
    assert_eq!(wrong.0, 401);
    assert_eq!(wrong.1["error"]["message"], unknown.1["error"]["message"]);
    assert_eq!(unknown.0, 401);
    let (status, body) = call(
        &app,
        "POST",
        "/sessions",
        None,
        Some(json!({"email": "LINUS@example.com", "password": "a long passphrase"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    assert!(
        body["token"]
            .as_str()
            .is_some_and(|t| t.starts_with("keel_sess_"))
    );
}

#[actix_web::test]
async fn an_unverified_account_gets_403_only_after_a_correct_password() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    call(
        &app,
        "POST",
        "/signup",
        None,
        Some(signup_body("new@example.com", "a long passphrase")),
    )
    .await;
    let (status, body) = call(
        &app,
        "POST",
        "/sessions",
        None,
        Some(json!({"email": "new@example.com", "password": "wrong password"})),
    )
    .await;
    assert_eq!(status, 401);
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    let (status, body) = call(
        &app,
        "POST",
        "/sessions",
        None,
        Some(json!({"email": "new@example.com", "password": "a long passphrase"})),
    )
    .await;
    assert_eq!(status, 403, "{body}");
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
}

#[actix_web::test]
async fn logout_revokes_the_token_at_once() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let token = verified_user(&ctx, &app, "barbara@example.com").await;
    assert_eq!(call(&app, "GET", "/me", Some(&token), None).await.0, 200);
    assert_eq!(
        call(&app, "DELETE", "/sessions/current", Some(&token), None)
            .await
            .0,
        204
    );
    let (status, body) = call(&app, "GET", "/me", Some(&token), None).await;
    assert_eq!(status, 401, "{body}");
    assert_eq!(body["error"]["code"], "unauthorized", "{body}");
    refused(&app, "GET", "/me", None, None, 401, "unauthorized").await;
    refused(
        &app,
        "GET",
        "/me",
        Some("keel_sess_forged"),
        None,
        401,
        "unauthorized",
    )
    .await;
}

#[actix_web::test]
async fn patch_me_changes_the_name_and_nothing_else() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let token = verified_user(&ctx, &app, "edsger@example.com").await;
    let (status, body) = call(
        &app,
        "PATCH",
        "/me",
        Some(&token),
        Some(json!({"name": "Edsger"})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["user"]["name"], "Edsger");
    assert_eq!(
        call(&app, "GET", "/me", Some(&token), None).await.1["user"]["name"],
        "Edsger"
    );
    let (status, body) = call(
        &app,
        "PATCH",
        "/me",
        Some(&token),
        Some(json!({"name": "E", "role": "admin"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("role")),
        "{body}"
    );
    let (status, body) = call(
        &app,
        "PATCH",
        "/me",
        Some(&token),
        Some(json!({"name": "  "})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("name")),
        "{body}"
    );
}

#[actix_web::test]
async fn api_keys_are_shown_once_limited_by_scope_and_revocable() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let owner = verified_user(&ctx, &app, "owner@example.com").await;
    let org = org_of(&app, &owner).await;
    let keys = format!("/orgs/{org}/api-keys");

    let (status, body) = call(
        &app,
        "POST",
        &keys,
        Some(&owner),
        Some(json!({"name": "ci", "scopes": ["accounts:read"]})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    let secret = body["secret"]
        .as_str()
        .expect("secret shown once")
        .to_owned();
    assert!(
        secret.starts_with("keel_key_")
            && secret.starts_with(body["prefix"].as_str().expect("prefix"))
    );
    let key_id = body["id"].as_str().expect("id").to_owned();

    let (status, me) = call(&app, "GET", "/me", Some(&secret), None).await;
    assert_eq!(status, 200, "{me}");
    assert_eq!(me["api_key"]["id"], key_id.as_str());
    assert!(me["user"].is_null());
    assert_eq!(me["scopes"], json!(["accounts:read"]));
    assert_eq!(me["organization"]["id"], org.as_str());

    // A read-only key cannot manage keys.
    let (status, body) = call(
        &app,
        "POST",
        &keys,
        Some(&secret),
        Some(json!({"name": "x", "scopes": ["accounts:read"]})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    // Lists never show secrets.
    let (status, list) = call(&app, "GET", &keys, Some(&owner), None).await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
    assert!(list["items"][0].get("secret").is_none());
    assert!(!list.to_string().contains(&secret));

    let (status, body) = call(
        &app,
        "POST",
        &keys,
        Some(&owner),
        Some(json!({"name": "x", "scopes": ["billing:write"]})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("scopes")),
        "{body}"
    );
    // A scope's area must be one a mounted domain provides (here only accounts').
    for scopes in [
        json!(["exports:read"]),
        json!(["accounts:admin"]),
        json!([]),
    ] {
        let (status, body) = call(
            &app,
            "POST",
            &keys,
            Some(&owner),
            Some(json!({"name": "x", "scopes": scopes})),
        )
        .await;
        assert_eq!(
            (
                status,
                body["error"]["code"].as_str(),
                body["error"]["field"].as_str()
            ),
            (422, Some("validation_failed"), Some("scopes")),
            "{scopes}: {body}"
        );
    }
    let (status, body) = call(
        &app,
        "POST",
        &keys,
        Some(&owner),
        Some(json!({"name": "x", "scopes": ["accounts:read"], "org_id": org})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("org_id")),
        "mass assignment: {body}"
    );

    assert_eq!(
        call(
            &app,
            "DELETE",
            &format!("{keys}/{key_id}"),
            Some(&owner),
            None
        )
        .await
        .0,
        204
    );
    refused(&app, "GET", "/me", Some(&secret), None, 401, "unauthorized").await;
    refused(
        &app,
        "DELETE",
        &format!("{keys}/{key_id}"),
        Some(&owner),
        None,
        404,
        "not_found",
    )
    .await;
}

#[actix_web::test]
async fn another_organizations_ids_are_not_found() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let alice = verified_user(&ctx, &app, "alice@example.com").await;
    let mallory = verified_user(&ctx, &app, "mallory@example.com").await;
    let alice_org = org_of(&app, &alice).await;
    let keys = format!("/orgs/{alice_org}/api-keys");
    let (_, created) = call(
        &app,
        "POST",
        &keys,
        Some(&alice),
        Some(json!({"name": "k", "scopes": ["accounts:read"]})),
    )
    .await;
    let key_id = created["id"].as_str().expect("id").to_owned();

    for (method, path, body) in [
        ("GET", keys.clone(), None),
        (
            "POST",
            keys.clone(),
            Some(json!({"name": "evil", "scopes": ["accounts:write"]})),
        ),
        ("DELETE", format!("{keys}/{key_id}"), None),
    ] {
        let (status, body) = call(&app, method, &path, Some(&mallory), body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{body}");
    }
    // Alice's key is untouched.
    let (_, list) = call(&app, "GET", &keys, Some(&alice), None).await;
    assert_eq!(list["items"].as_array().map(Vec::len), Some(1));
}

/// A new session of the verified user `email` (password "a long passphrase").
async fn login(
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    email: &str,
) -> String {
    let (status, body) = call(
        app,
        "POST",
        "/sessions",
        None,
        Some(json!({"email": email, "password": "a long passphrase"})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

async fn org_of(
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    token: &str,
) -> String {
    call(app, "GET", "/me", Some(token), None).await.1["organization"]["id"]
        .as_str()
        .expect("org id")
        .to_owned()
}

async fn user_id_of(
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    token: &str,
) -> String {
    call(app, "GET", "/me", Some(token), None).await.1["user"]["id"]
        .as_str()
        .expect("user id")
        .to_owned()
}

/// Invites `email` into the owner's organization as `role`, accepts as that (verified)
/// user, and logs them into it; returns their session token there.
async fn join(
    ctx: &Ctx,
    app: &impl Service<actix_http::Request, Response = ServiceResponse, Error = actix_web::Error>,
    owner: &str,
    email: &str,
    role: &str,
) -> String {
    let org = org_of(app, owner).await;
    let (status, body) = call(
        app,
        "POST",
        &format!("/orgs/{org}/invitations"),
        Some(owner),
        Some(json!({"email": email, "role": role})),
    )
    .await;
    assert_eq!(status, 202, "{body}");
    let link = emails(&ctx.pool)
        .await
        .into_iter()
        .rev()
        .find_map(|e| match e {
            AccountEmail::Invitation { to, link, .. } if to == email => Some(link),
            _ => None,
        })
        .expect("invitation email");
    let own = verified_user(ctx, app, email).await;
    let (status, body) = call(
        app,
        "POST",
        "/invitations/accept",
        Some(&own),
        Some(json!({"token": token_of(&link)})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    let (status, body) = call(
        app,
        "POST",
        "/sessions",
        None,
        Some(json!({"email": email, "password": "a long passphrase", "organization_id": org})),
    )
    .await;
    assert_eq!(status, 201, "{body}");
    body["token"].as_str().expect("token").to_owned()
}

#[actix_web::test]
async fn members_roles_and_the_last_owner() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let owner = verified_user(&ctx, &app, "owner@example.com").await;
    let org = org_of(&app, &owner).await;
    let member = join(&ctx, &app, &owner, "member@example.com", "member").await;
    let member_id = user_id_of(&app, &member).await;
    let owner_id = user_id_of(&app, &owner).await;

    let (_, me) = call(&app, "GET", "/me", Some(&member), None).await;
    assert_eq!(
        (me["role"].as_str(), me["organization"]["id"].as_str()),
        (Some("member"), Some(org.as_str()))
    );

    let (status, list) = call(
        &app,
        "GET",
        &format!("/orgs/{org}/members?limit=1"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(status, 200, "{list}");
    assert_eq!(list["items"][0]["email"], "owner@example.com");
    let cursor = list["next_cursor"].as_str().expect("a second page");
    let (_, page2) = call(
        &app,
        "GET",
        &format!("/orgs/{org}/members?limit=1&cursor={cursor}"),
        Some(&member),
        None,
    )
    .await;
    assert_eq!(page2["items"][0]["email"], "member@example.com");
    assert!(page2["next_cursor"].is_null());

    // Members do not manage members.
    let (status, body) = call(
        &app,
        "POST",
        &format!("/orgs/{org}/invitations"),
        Some(&member),
        Some(json!({"email": "x@example.com", "role": "member"})),
    )
    .await;
    assert_eq!(status, 403);
    assert_eq!(body["error"]["code"], "forbidden", "{body}");
    // The last owner stays.
    let (status, body) = call(
        &app,
        "PATCH",
        &format!("/orgs/{org}/members/{owner_id}"),
        Some(&owner),
        Some(json!({"role": "admin"})),
    )
    .await;
    assert_eq!(status, 409, "{body}");
    assert_eq!(body["error"]["code"], "conflict", "{body}");
    refused(
        &app,
        "DELETE",
        &format!("/orgs/{org}/members/{owner_id}"),
        Some(&owner),
        None,
        409,
        "conflict",
    )
    .await;

    // A promotion is visible to the member at once.
    assert_eq!(
        call(
            &app,
            "PATCH",
            &format!("/orgs/{org}/members/{member_id}"),
            Some(&owner),
            Some(json!({"role": "admin"}))
        )
        .await
        .0,
        204
    );
    assert_eq!(
        call(&app, "GET", "/me", Some(&member), None).await.1["role"],
        "admin"
    );
    let (status, body) = call(
        &app,
        "PATCH",
        &format!("/orgs/{org}/members/{member_id}"),
        Some(&owner),
        Some(json!({"role": "boss"})),
    )
    .await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("role"))
    );

    // Removal ends the member's session in this organization at once.
    assert_eq!(
        call(
            &app,
            "DELETE",
            &format!("/orgs/{org}/members/{member_id}"),
            Some(&owner),
            None
        )
        .await
        .0,
        204
    );
    refused(&app, "GET", "/me", Some(&member), None, 401, "unauthorized").await;

    let (status, trail) = call(
        &app,
        "GET",
        &format!("/orgs/{org}/audit-events"),
        Some(&owner),
        None,
    )
    .await;
    assert_eq!(status, 200, "{trail}");
    let actions: Vec<&str> = trail["items"]
        .as_array()
        .expect("items")
        .iter()
        .filter_map(|e| e["action"].as_str())
        .collect();
    for expected in [
        "member.removed",
        "member.role_changed",
        "member.joined",
        "member.invited",
        "login.succeeded",
        "user.signed_up",
    ] {
        assert!(
            actions.contains(&expected),
            "{expected} missing from {actions:?}"
        );
    }
    assert_eq!(actions[0], "member.removed", "newest first");
}

#[actix_web::test]
async fn an_invitation_works_once_and_only_for_the_invited_address() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let owner = verified_user(&ctx, &app, "boss@example.com").await;
    let org = org_of(&app, &owner).await;
    call(
        &app,
        "POST",
        &format!("/orgs/{org}/invitations"),
        Some(&owner),
        Some(json!({"email": "invited@example.com", "role": "member"})),
    )
    .await;
    let link = emails(&ctx.pool)
        .await
        .into_iter()
        .find_map(|e| match e {
            AccountEmail::Invitation { link, .. } => Some(link),
            _ => None,
        })
        .expect("invitation");
    // Published in the same transaction, for the organization's admins (and webhooks).
    let published = events(&ctx.pool).await;
    assert_eq!(published.len(), 1);
    assert_eq!(published[0].event_type, "member.invited");
    assert_eq!(published[0].org_id.to_string(), org);
    assert_eq!(published[0].audience, Audience::Admins);
    assert_eq!(published[0].data["email"], "invited@example.com");
    assert_eq!(published[0].data["role"], "member");
    let stranger = verified_user(&ctx, &app, "stranger@example.com").await;
    let (status, body) = call(
        &app,
        "POST",
        "/invitations/accept",
        Some(&stranger),
        Some(json!({"token": token_of(&link)})),
    )
    .await;
    assert_eq!(status, 400, "another address cannot use it");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
    // A wrong-account attempt does not burn the invitation; the invited address can
    // use it, once.
    let invited = verified_user(&ctx, &app, "invited@example.com").await;
    let (status, body) = call(
        &app,
        "POST",
        "/invitations/accept",
        Some(&invited),
        Some(json!({"token": token_of(&link)})),
    )
    .await;
    assert_eq!(status, 200, "{body}");
    assert_eq!(body["id"], org.as_str());
    let (status, body) = call(
        &app,
        "POST",
        "/invitations/accept",
        Some(&invited),
        Some(json!({"token": token_of(&link)})),
    )
    .await;
    assert_eq!(status, 400, "single use");
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
}

#[actix_web::test]
async fn another_organizations_org_routes_are_not_found_and_unchanged() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let alice = verified_user(&ctx, &app, "alice2@example.com").await;
    let mallory = verified_user(&ctx, &app, "mallory2@example.com").await;
    let org = org_of(&app, &alice).await;
    let alice_id = user_id_of(&app, &alice).await;
    for (method, path, body) in [
        ("GET", format!("/orgs/{org}"), None),
        (
            "PATCH",
            format!("/orgs/{org}"),
            Some(json!({"name": "pwned"})),
        ),
        ("GET", format!("/orgs/{org}/members"), None),
        (
            "PATCH",
            format!("/orgs/{org}/members/{alice_id}"),
            Some(json!({"role": "member"})),
        ),
        ("DELETE", format!("/orgs/{org}/members/{alice_id}"), None),
        (
            "POST",
            format!("/orgs/{org}/invitations"),
            Some(json!({"email": "m@example.com", "role": "owner"})),
        ),
        ("GET", format!("/orgs/{org}/audit-events"), None),
    ] {
        let (status, body) = call(&app, method, &path, Some(&mallory), body).await;
        assert_eq!(status, 404, "{method} {path}: {body}");
        assert_eq!(body["error"]["code"], "not_found", "{body}");
    }
    let (_, org_now) = call(&app, "GET", &format!("/orgs/{org}"), Some(&alice), None).await;
    assert_eq!(org_now["name"], "Analytical Engines");
    assert_eq!(
        call(&app, "GET", "/me", Some(&alice), None).await.1["role"],
        "owner"
    );
}

#[actix_web::test]
async fn changing_the_password_ends_the_other_sessions_only() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let first = verified_user(&ctx, &app, "pw@example.com").await;
    let second = login(&app, "pw@example.com").await;

    let wrong = json!({"current_password": "not the one", "new_password": "a newer passphrase"});
    let (status, body) = call(&app, "POST", "/me/password", Some(&first), Some(wrong)).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("current_password"))
    );
    let weak = json!({"current_password": "a long passphrase", "new_password": "12345678"});
    let (status, body) = call(&app, "POST", "/me/password", Some(&first), Some(weak)).await;
    assert_eq!(
        (status, body["error"]["field"].as_str()),
        (422, Some("new_password"))
    );

    let ok = json!({"current_password": "a long passphrase", "new_password": "a newer passphrase"});
    assert_eq!(
        call(&app, "POST", "/me/password", Some(&first), Some(ok))
            .await
            .0,
        204
    );
    assert_eq!(
        call(&app, "GET", "/me", Some(&first), None).await.0,
        200,
        "this session stays"
    );
    refused(&app, "GET", "/me", Some(&second), None, 401, "unauthorized").await;
    let (status, _) = call(
        &app,
        "POST",
        "/sessions",
        None,
        Some(json!({"email": "pw@example.com", "password": "a newer passphrase"})),
    )
    .await;
    assert_eq!(status, 201);
    assert!(
        emails(&ctx.pool)
            .await
            .iter()
            .any(|e| matches!(e, AccountEmail::PasswordChanged { .. }))
    );
}

#[actix_web::test]
async fn one_time_tokens_expire() {
    use diesel_async::RunQueryDsl;
    let ctx = setup().await;
    let app = app(&ctx).await;
    call(
        &app,
        "POST",
        "/signup",
        None,
        Some(signup_body("late@example.com", "a long passphrase")),
    )
    .await;
    let AccountEmail::VerifyEmail { link, .. } = emails(&ctx.pool).await.remove(0) else {
        panic!("verification email")
    };
    let mut conn = ctx.pool.get().await.expect("conn");
    diesel::sql_query("UPDATE accounts_tokens SET expires_at = now() - interval '1 second'")
        .execute(&mut conn)
        .await
        .expect("expire");
    let (status, body) = call(
        &app,
        "POST",
        "/email-verifications",
        None,
        Some(json!({"token": token_of(&link)})),
    )
    .await;
    assert_eq!(status, 400);
    assert_eq!(body["error"]["code"], "bad_request", "{body}");
}

#[actix_web::test]
async fn a_burst_of_bad_logins_is_throttled_before_hashing() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    verified_user(&ctx, &app, "target@example.com").await;
    let before = ctx.accounts.hashes_computed();
    let mut statuses = Vec::new();
    // 150 guesses: half one after another, half at once.
    for i in 0..75 {
        let body = json!({"email": "target@example.com", "password": format!("guess number {i}")});
        statuses.push(call(&app, "POST", "/sessions", None, Some(body)).await.0);
    }
    let concurrent = (75..150).map(|i| {
        let body = json!({"email": "target@example.com", "password": format!("guess number {i}")});
        call(&app, "POST", "/sessions", None, Some(body))
    });
    statuses.extend(
        futures::future::join_all(concurrent)
            .await
            .into_iter()
            .map(|(s, _)| s),
    );
    let hashed = ctx.accounts.hashes_computed() - before;
    let throttled = statuses.iter().filter(|s| **s == 429).count();
    assert!(hashed <= 10, "{hashed} hashes for 150 guesses");
    assert!(throttled >= 140, "{throttled} of 150 throttled");
    assert!(
        statuses.iter().all(|s| *s == 401 || *s == 429),
        "{statuses:?}"
    );

    // The throttled answer says when to come back.
    let req = test::TestRequest::post()
        .uri("/api/v1/sessions")
        .set_json(json!({"email": "target@example.com", "password": "a long passphrase"}))
        .to_request();
    let res = test::call_service(&app, req).await;
    assert_eq!(res.status(), 429);
    let retry_after: u64 = res
        .headers()
        .get("retry-after")
        .expect("Retry-After")
        .to_str()
        .expect("ascii")
        .parse()
        .expect("seconds");
    assert!(retry_after >= 1);

    let mut conn = ctx.pool.get().await.expect("conn");
    use diesel::prelude::*;
    use diesel_async::RunQueryDsl;
    use keel_persistence::schema::accounts_audit_events as audit;
    let bursts: i64 = audit::table
        .filter(audit::action.eq("login.failed_burst"))
        .count()
        .get_result(&mut conn)
        .await
        .expect("count");
    assert_eq!(bursts, 1, "the burst is audited once");
}

#[actix_web::test]
async fn a_revocation_reaches_another_process_within_the_l1_ttl() {
    let ctx = setup().await;
    let app = app(&ctx).await;
    let token = verified_user(&ctx, &app, "twice@example.com").await;
    let other = second_instance(&ctx);
    // The other process has the session in its L1.
    let caller = other
        .authenticate(&token)
        .await
        .expect("valid on the other process");
    assert!(caller.user().is_some(), "a session caller");

    assert_eq!(
        call(&app, "DELETE", "/sessions/current", Some(&token), None)
            .await
            .0,
        204
    );
    let revoked = std::time::Instant::now();
    let bound = ctx.settings.cache.l1_ttl();
    loop {
        if other.authenticate(&token).await.is_err() {
            break;
        }
        assert!(
            revoked.elapsed() <= bound,
            "still accepted after {:?} (L1 TTL {bound:?})",
            revoked.elapsed()
        );
        tokio::time::sleep(std::time::Duration::from_millis(20)).await;
    }
    // The invalidation is pushed: it arrives well before the TTL would expire the entry.
    assert!(
        revoked.elapsed() < bound / 2,
        "took {:?}",
        revoked.elapsed()
    );
}

#[actix_web::test]
async fn long_ended_sessions_and_tokens_are_purged() {
    use diesel_async::RunQueryDsl;
    let ctx = setup().await;
    let app = app(&ctx).await;
    let token = verified_user(&ctx, &app, "purge@example.com").await;
    call(&app, "DELETE", "/sessions/current", Some(&token), None).await;
    let mut conn = ctx.pool.get().await.expect("conn");
    let purged = keel_accounts::repo::purge_expired(&mut conn, 100)
        .await
        .expect("purge");
    assert_eq!(purged, 0, "ended less than a day ago: kept");
    diesel::sql_query("UPDATE accounts_sessions SET revoked_at = now() - interval '2 days'")
        .execute(&mut conn)
        .await
        .expect("age");
    diesel::sql_query("UPDATE accounts_tokens SET expires_at = now() - interval '2 days'")
        .execute(&mut conn)
        .await
        .expect("age");
    let purged = keel_accounts::repo::purge_expired(&mut conn, 100)
        .await
        .expect("purge");
    assert_eq!(purged, 2, "one session, one verification token");
}

#[actix_web::test]
async fn sessions_end_after_their_idle_and_absolute_lifetimes() {
    use diesel_async::RunQueryDsl;
    let ctx = setup().await;
    let app = app(&ctx).await;
    let fresh = verified_user(&ctx, &app, "clock@example.com").await;
    let idle = login(&app, "clock@example.com").await;
    let old = login(&app, "clock@example.com").await;
    let mut conn = ctx.pool.get().await.expect("conn");
    let mut set = async |token: &str, change: &str| {
        diesel::sql_query(format!(
            "UPDATE accounts_sessions SET {change} WHERE token_hash = $1"
        ))
        .bind::<diesel::sql_types::Bytea, _>(keel_accounts::token::hash(token))
        .execute(&mut conn)
        .await
        .expect(change)
    };
    // Unused for longer than the idle timeout (30 minutes by default).
    set(&idle, "last_seen_at = now() - interval '31 minutes'").await;
    // Past its absolute lifetime, however active.
    set(&old, "expires_at = now() - interval '1 second'").await;
    refused(&app, "GET", "/me", Some(&idle), None, 401, "unauthorized").await;
    refused(&app, "GET", "/me", Some(&old), None, 401, "unauthorized").await;
    assert_eq!(call(&app, "GET", "/me", Some(&fresh), None).await.0, 200);
}

/// Activity is written at most once a minute, and the cached session then carries the new
/// time instead of being reloaded: the next requests read no session row, and a logout
/// still ends the session at once.
#[actix_web::test]
async fn activity_is_recorded_without_reloading_the_session_and_a_logout_still_ends_it() {
    use diesel_async::RunQueryDsl;
    #[derive(diesel::QueryableByName)]
    struct Seen {
        #[diesel(sql_type = diesel::sql_types::Double)]
        age: f64,
    }
    let ctx = setup().await;
    let app = app(&ctx).await;
    let token = verified_user(&ctx, &app, "active@example.com").await;
    let mut conn = ctx.pool.get().await.expect("conn");
    let age = async |conn: &mut keel_persistence::PooledConn| {
        diesel::sql_query(
            "SELECT extract(epoch FROM now() - last_seen_at)::float8 AS age FROM accounts_sessions WHERE token_hash = $1",
        )
        .bind::<diesel::sql_types::Bytea, _>(keel_accounts::token::hash(&token))
        .get_result::<Seen>(conn)
        .await
        .expect("session")
        .age
    };
    let last_seen = async |conn: &mut keel_persistence::PooledConn, ago: &str| {
        diesel::sql_query(format!(
            "UPDATE accounts_sessions SET last_seen_at = now() - interval '{ago}' WHERE token_hash = $1"
        ))
        .bind::<diesel::sql_types::Bytea, _>(keel_accounts::token::hash(&token))
        .execute(conn)
        .await
        .expect("age the session")
    };
    last_seen(&mut conn, "5 minutes").await;
    assert_eq!(call(&app, "GET", "/me", Some(&token), None).await.0, 200);
    assert!(age(&mut conn).await < 10.0, "the activity was not written");
    // Aged past the idle timeout behind the cache's back: the next request uses the
    // cached entry, which says "just seen" (it was not dropped to be read again), and
    // writes nothing.
    last_seen(&mut conn, "31 minutes").await;
    assert_eq!(call(&app, "GET", "/me", Some(&token), None).await.0, 200);
    assert!(
        age(&mut conn).await > 1800.0,
        "written twice within a minute"
    );
    assert_eq!(
        call(&app, "DELETE", "/sessions/current", Some(&token), None)
            .await
            .0,
        204
    );
    refused(&app, "GET", "/me", Some(&token), None, 401, "unauthorized").await;
}
