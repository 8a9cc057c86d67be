//! Tenancy and access: every uploads route answers 404 for another organization's
//! upload (the routes are read from the OpenAPI document, so a new one cannot be
//! forgotten), and API keys need the uploads scopes.

use super::*;

#[tokio::test(flavor = "multi_thread")]
async fn another_organizations_upload_is_404_on_every_route() {
    let s = setup(&[]).await;
    let created = s.uploaded("mine.png", "image/png", png(4, 4)).await;
    let id = created["id"].as_str().unwrap().to_owned();
    assert_eq!(s.settled(&id).await["state"], "ready");
    let stranger = user(
        &s.app,
        &format!("{}@example.com", uuid::Uuid::new_v4().simple()),
    )
    .await;

    let doc: Value = s.app.get("/api/openapi.json").await.json().await.unwrap();
    let mut checked = 0;
    for (template, item) in doc["paths"].as_object().unwrap() {
        if !template.contains("/uploads/{id}") {
            continue;
        }
        for method in ["get", "post", "put", "patch", "delete"] {
            if item.get(method).is_none() {
                continue;
            }
            // The stranger's own organization in the path with the owner's upload id, and
            // the owner's organization: neither is the stranger's to see.
            for org in [stranger.org_id, s.owner.org_id] {
                let path = template
                    .replace("{org_id}", &org.to_string())
                    .replace("{id}", &id);
                let res = s
                    .app
                    .client
                    .request(method.to_uppercase().parse().unwrap(), s.app.url(&path))
                    .bearer_auth(&stranger.token)
                    .send()
                    .await
                    .unwrap();
                keel_testing::assert_error(res, 404, "not_found", None).await;
            }
            checked += 1;
        }
    }
    assert!(checked >= 4, "{checked} routes checked");
    // Still there for its owner.
    assert_eq!(s.get(&format!("{}/{id}", s.uploads())).await.status(), 200);
}

#[tokio::test(flavor = "multi_thread")]
async fn api_keys_need_the_uploads_scopes() {
    let s = setup(&[]).await;
    let reader = keel_testing::api_key(&s.app, &s.owner, &["uploads:read"]).await;
    let writer = keel_testing::api_key(&s.app, &s.owner, &["uploads:write"]).await;
    let post = |key: String| {
        let s = &s;
        async move {
            s.app
                .client
                .post(s.app.url(&s.uploads()))
                .query(&[("name", "k.txt")])
                .bearer_auth(key)
                .header("content-type", "text/plain")
                .body("by a key")
                .send()
                .await
                .unwrap()
        }
    };
    keel_testing::assert_error(post(reader.clone()).await, 403, "forbidden", None).await;
    let res = post(writer).await;
    assert_eq!(res.status(), 201);
    let created: Value = res.json().await.unwrap();
    assert!(created["uploaded_by_user"].is_null());
    assert!(created["uploaded_by_key"].is_string());
    let list = s
        .app
        .authed(&reader, reqwest::Method::GET, &s.uploads())
        .await;
    assert_eq!(list.status(), 200);
}
