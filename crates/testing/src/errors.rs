//! The error body every route answers with, checked whole: status, `code`, a message,
//! the `field` when one is named, and the request id matching the `X-Request-Id` header.

use serde_json::Value;

/// Asserts the standard error body with `status` and `code` and returns it.
pub async fn error_body(res: reqwest::Response, status: u16, code: &str) -> Value {
    assert_eq!(res.status().as_u16(), status, "{}", res.url());
    let header_id = res
        .headers()
        .get("x-request-id")
        .expect("x-request-id")
        .to_str()
        .expect("ascii")
        .to_owned();
    let body: Value = res.json().await.expect("JSON error body");
    assert_eq!(body["error"]["code"], code, "{body}");
    assert!(
        body["error"]["message"]
            .as_str()
            .is_some_and(|m| !m.is_empty()),
        "{body}"
    );
    assert_eq!(body["error"]["request_id"], header_id.as_str(), "{body}");
    body
}

/// [`error_body`], also checking the `field` the error names (`None`: names none).
pub async fn assert_error(
    res: reqwest::Response,
    status: u16,
    code: &str,
    field: Option<&str>,
) -> Value {
    let body = error_body(res, status, code).await;
    assert_eq!(body["error"]["field"].as_str(), field, "{body}");
    body
}
