//! HTTP at the edges of what Keel serves: a JSON body declared in another charset.

use super::spawn_app;
use keel_testing::error_body;

#[tokio::test(flavor = "multi_thread")]
async fn a_json_body_declared_in_a_charset_other_than_utf8_is_refused_with_415() {
    let app = spawn_app(&[]).await;
    let widget = r#"{"name": "w", "quantity": 1}"#;
    for content_type in [
        "application/json; charset=utf-16",
        "application/json; charset=ISO-8859-1",
    ] {
        let res = app
            .post_raw("/api/v1/test/widgets", content_type, widget)
            .await;
        let body = error_body(res, 415, "unsupported_media_type").await;
        assert!(
            body["error"]["message"]
                .as_str()
                .is_some_and(|m| m.contains("UTF-8")),
            "{content_type}: {body}"
        );
    }
    // A domain's route reads its body the same way.
    let signup = r#"{"email": "ada@example.com", "password": "a long passphrase", "name": "Ada", "organization_name": "Engines"}"#;
    let res = app
        .post_raw("/api/v1/signup", "application/json; charset=utf-16", signup)
        .await;
    error_body(res, 415, "unsupported_media_type").await;
    // UTF-8, however spelled, or no charset at all, is read.
    for content_type in ["application/json; charset=UTF-8", "application/json"] {
        let res = app
            .post_raw("/api/v1/test/widgets", content_type, widget)
            .await;
        assert_eq!(res.status(), 202, "{content_type}");
    }
}
