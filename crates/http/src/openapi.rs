//! The answers every route shares, added to the OpenAPI document in one place.
//!
//! A handler's `#[utoipa::path]` lists what its own logic answers (201, 403, 409, ...).
//! What the shared layers answer is the same for every route, so it is added here from
//! facts of the operation instead of being copied into forty attributes: a body means
//! 400/413/415/422 from the JSON extractor; a query means 400 (and a page's `limit` and
//! `cursor`, 422); a path parameter means 404 (an id that does not parse names nothing);
//! a security requirement means 401; anything under `/api/v1` can be rate limited (429)
//! and meets a busy or absent database (503) or a bug (500); a POST takes an
//! `Idempotency-Key` (400, 409, 413, 422, 503); an `/admin` route is 404 without an
//! admin token. Each is documented with the error body, so a generated client and a
//! contract test know every status a route can answer.

use crate::idempotency::{HEADER as IDEMPOTENCY_KEY, MAX_KEY_LEN};
use utoipa::Modify;
use utoipa::openapi::path::{Operation, ParameterBuilder, ParameterIn};
use utoipa::openapi::schema::{ObjectBuilder, Type};
use utoipa::openapi::{ContentBuilder, HeaderBuilder, OpenApi, Ref, Required, ResponseBuilder};

/// `Modify` that completes every operation's responses (see the module docs).
#[derive(Debug, Clone, Copy)]
pub struct StandardAnswers;

/// The prefix of the API proper.
const API: &str = "/api/v1/";
/// The operator routes: they exist only with an admin token set (404 otherwise) and
/// read the queue from the database.
const ADMIN: &str = "/admin/";

impl Modify for StandardAnswers {
    fn modify(&self, openapi: &mut OpenApi) {
        for (path, item) in openapi.paths.paths.iter_mut() {
            let in_api = path.starts_with(API);
            let admin = path.starts_with(ADMIN);
            let has_path_params = path.contains('{');
            let operations = [
                (&mut item.get, false),
                (&mut item.put, false),
                (&mut item.post, true),
                (&mut item.delete, false),
                (&mut item.patch, false),
            ];
            for (operation, is_post) in operations {
                if let Some(operation) = operation.as_mut() {
                    complete(operation, in_api, admin, has_path_params, is_post && in_api);
                }
            }
        }
    }
}

fn complete(op: &mut Operation, in_api: bool, admin: bool, has_path_params: bool, keyed: bool) {
    let has_body = op.request_body.is_some();
    let query: Vec<String> = op
        .parameters
        .iter()
        .flatten()
        .filter(|p| p.parameter_in == ParameterIn::Query)
        .map(|p| p.name.clone())
        .collect();
    let secured = op.security.as_ref().is_some_and(|s| !s.is_empty());
    if has_body {
        add(op, 400, "The body is not well-formed JSON");
        add(op, 413, "The body is larger than the limit");
        add(op, 415, "The body is not sent as application/json");
        add(
            op,
            422,
            "A field is missing, unknown or invalid (`error.field` names it)",
        );
    }
    if !query.is_empty() {
        add(op, 400, "The query string does not parse");
    }
    if query.iter().any(|name| name == "limit") {
        add(
            op,
            422,
            "`limit` is out of range or `cursor` is not one of ours",
        );
    }
    if has_path_params {
        add(
            op,
            404,
            "No such resource for this caller (also: an id that does not parse)",
        );
    }
    if secured {
        add(
            op,
            401,
            "Credentials are missing, unknown, expired or revoked",
        );
    }
    if keyed {
        idempotency_key(op);
        add(
            op,
            400,
            "The Idempotency-Key header is malformed or repeated",
        );
        add(
            op,
            409,
            "A request with this Idempotency-Key is still running (`Retry-After`)",
        );
        add(
            op,
            413,
            "The body is larger than idempotent requests may be",
        );
        add(
            op,
            422,
            "This Idempotency-Key was used for a different request",
        );
    }
    if admin {
        add(
            op,
            404,
            "No admin token is configured: the route does not exist",
        );
    }
    if in_api {
        add_retry(op, 429, "Rate limited: retry after `Retry-After` seconds");
    }
    if in_api || admin {
        add(op, 500, "A bug: quote `error.request_id` when reporting it");
        // Idempotency keys live in the database too.
        add_retry(op, 503, "The database is busy or unavailable");
    }
}

/// The optional `Idempotency-Key` request header of POSTs.
fn idempotency_key(op: &mut Operation) {
    let parameters = op.parameters.get_or_insert_with(Vec::new);
    if parameters
        .iter()
        .any(|p| p.name == IDEMPOTENCY_KEY.as_str())
    {
        return;
    }
    parameters.push(
        ParameterBuilder::new()
            .name("Idempotency-Key")
            .parameter_in(ParameterIn::Header)
            .required(Required::False)
            .description(Some(
                "Makes retries safe: a retry with the same key and body replays the first \
                 answer (see docs/api.md)",
            ))
            .schema(Some(
                ObjectBuilder::new()
                    .schema_type(Type::String)
                    .min_length(Some(1))
                    .max_length(Some(MAX_KEY_LEN))
                    .pattern(Some("^[\\x20-\\x7e]+$")),
            ))
            .build(),
    );
}

fn add(op: &mut Operation, status: u16, description: &str) {
    insert(op, status, description, false);
}

fn add_retry(op: &mut Operation, status: u16, description: &str) {
    insert(op, status, description, true);
}

/// Adds `status` with the error body unless the route documents it itself.
fn insert(op: &mut Operation, status: u16, description: &str, retry_after: bool) {
    let key = status.to_string();
    if op.responses.responses.contains_key(&key) {
        return;
    }
    let mut response = ResponseBuilder::new().description(description).content(
        "application/json",
        ContentBuilder::new()
            .schema(Some(Ref::from_schema_name("ErrorBody")))
            .build(),
    );
    if retry_after {
        response = response.header(
            "Retry-After",
            HeaderBuilder::new()
                .schema(ObjectBuilder::new().schema_type(Type::Integer))
                .description(Some("Seconds to wait before retrying"))
                .build(),
        );
    }
    op.responses.responses.insert(key, response.build().into());
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItem, PathsBuilder};
    use utoipa::openapi::request_body::RequestBodyBuilder;
    use utoipa::openapi::{OpenApiBuilder, ResponseBuilder, ResponsesBuilder};

    #[test]
    fn a_post_with_a_body_under_the_api_gets_every_shared_answer_and_keeps_its_own() {
        let op = OperationBuilder::new()
            .request_body(Some(RequestBodyBuilder::new().build()))
            .responses(
                ResponsesBuilder::new()
                    .response("422", ResponseBuilder::new().description("own").build()),
            );
        let mut doc = OpenApiBuilder::new()
            .paths(PathsBuilder::new().path(
                "/api/v1/orgs/{org_id}/things",
                PathItem::new(HttpMethod::Post, op),
            ))
            .build();
        StandardAnswers.modify(&mut doc);
        let op = doc.paths.paths["/api/v1/orgs/{org_id}/things"]
            .post
            .as_ref()
            .unwrap();
        let statuses: Vec<&str> = op.responses.responses.keys().map(String::as_str).collect();
        assert_eq!(
            statuses,
            [
                "400", "404", "409", "413", "415", "422", "429", "500", "503"
            ]
        );
        let utoipa::openapi::RefOr::T(own) = &op.responses.responses["422"] else {
            panic!("inline response")
        };
        assert_eq!(own.description, "own", "a route's own answer is kept");
        assert!(
            op.parameters
                .iter()
                .flatten()
                .any(|p| p.name == "Idempotency-Key")
        );
    }
}
