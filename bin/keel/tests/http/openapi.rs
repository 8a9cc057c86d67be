//! The OpenAPI document tells the truth about the routes: every documented operation is
//! served, every path parameter is declared, operation ids are unique, and every
//! operation lists the answers of the layers it passes through. (That every served
//! route is documented holds by construction: routes are registered only with
//! `.service(handler)`, which brings the handler's entry; `architecture.rs` checks that
//! no domain registers one any other way.)

use super::{TestApp, spawn_app};
use serde_json::Value;

/// The document the app serves.
async fn document(app: &TestApp) -> Value {
    app.get("/api/openapi.json")
        .await
        .json()
        .await
        .expect("json")
}

const METHODS: [&str; 5] = ["get", "post", "put", "patch", "delete"];

/// `(path, method, operation)` for every operation of the document.
fn operations(doc: &Value) -> Vec<(String, &'static str, Value)> {
    let mut all = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for method in METHODS {
            if let Some(op) = item.get(method) {
                all.push((path.clone(), method, op.clone()));
            }
        }
    }
    all
}

#[tokio::test(flavor = "multi_thread")]
async fn the_document_and_the_served_routes_agree() {
    // With an admin token, so the admin routes exist.
    let app = spawn_app(&[("KEEL__ADMIN__TOKEN", "an admin token for tests")]).await;
    let doc = document(&app).await;
    let operations = operations(&doc);
    assert!(operations.len() >= 43, "{} operations", operations.len());
    let mut ids = std::collections::BTreeSet::new();
    for (path, method, op) in &operations {
        let id = op["operationId"].as_str().unwrap_or_default().to_owned();
        assert!(ids.insert(id.clone()), "operationId {id} is used twice");

        // Every `{name}` of the path is a declared path parameter, and nothing else is.
        let placeholders: Vec<&str> = path
            .split('{')
            .skip(1)
            .filter_map(|s| s.split('}').next())
            .collect();
        let declared: Vec<&str> = op["parameters"]
            .as_array()
            .into_iter()
            .flatten()
            .filter(|p| p["in"] == "path")
            .filter_map(|p| p["name"].as_str())
            .collect();
        assert_eq!(placeholders, declared, "{method} {path}: path parameters");

        if path.starts_with("/api/v1/") {
            for status in ["429", "500", "503"] {
                assert!(
                    op["responses"][status].is_object(),
                    "{method} {path} does not document {status}"
                );
            }
            if op["requestBody"].is_object() {
                for status in ["400", "415", "422"] {
                    assert!(
                        op["responses"][status].is_object(),
                        "{method} {path} takes a body but does not document {status}"
                    );
                }
            }
        }

        // Served: the router finds it (whatever the handler then says about the
        // placeholder ids and the missing credentials).
        let concrete = super::concrete(path);
        let res = app
            .client
            .request(
                method.to_uppercase().parse().expect("method"),
                app.url(&concrete),
            )
            .header("content-type", "application/json")
            .body("{}")
            .send()
            .await
            .expect("request");
        let status = res.status().as_u16();
        let body = res.text().await.unwrap_or_default();
        assert!(
            status != 405 && !(status == 404 && body.contains("no route matches")),
            "{method} {path} is documented but not served: {status} {body}"
        );
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn the_openapi_document_and_the_docs_ui_are_served() {
    let app = spawn_app(&[]).await;
    let doc = document(&app).await;
    assert_eq!(doc["openapi"], "3.1.0");
    for path in [
        "/health/live",
        "/health/ready",
        "/admin/jobs/counts",
        "/admin/jobs/{id}/retry",
    ] {
        assert!(doc["paths"][path].is_object(), "{path} undocumented");
    }
    assert!(
        doc["paths"]["/metrics"].is_null(),
        "metrics are on the operations port, not the API's"
    );
    assert!(doc["components"]["schemas"]["ErrorBody"].is_object());
    let ui = app.get("/api/docs/").await;
    assert_eq!(ui.status(), 200);
    assert!(
        ui.text().await.expect("html").contains("swagger"),
        "the UI page"
    );
    let asset = app.get("/api/docs/swagger-ui-bundle.js").await;
    assert_eq!(
        asset.status(),
        200,
        "UI assets are served by the binary itself"
    );
}
