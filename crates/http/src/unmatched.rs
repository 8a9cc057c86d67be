//! The answer to a request that matched no route: 405 with `Allow` when its path is
//! served with other methods, 404 when nothing serves the path.
//!
//! actix routes by path *and* method (each method of a path is a route of its own), so
//! a known path asked with a method it does not serve falls through to the default
//! service like an unknown path would. Telling the two apart needs to know which methods
//! each path serves: [`AllowedMethods`], built once from the OpenAPI document (which
//! lists every served path template with its methods) and registered as app data. The
//! lookup runs only for requests that matched no route, so the routed ones pay nothing.

use crate::error::{ApiError, for_status};
use actix_web::dev::ResourceDef;
use actix_web::http::header::{self, HeaderValue};
use actix_web::http::{Method, StatusCode};
use actix_web::{HttpRequest, HttpResponse, ResponseError, web};
use utoipa::openapi::PathItem;

/// The methods each served path template answers.
#[derive(Debug, Default)]
pub struct AllowedMethods {
    paths: Vec<(ResourceDef, Vec<Method>)>,
}

/// The methods an OpenAPI path item can have, in the order `Allow` lists them.
const METHODS: [Method; 8] = [
    Method::GET,
    Method::PUT,
    Method::POST,
    Method::DELETE,
    Method::OPTIONS,
    Method::HEAD,
    Method::PATCH,
    Method::TRACE,
];

impl AllowedMethods {
    /// `Allow` for `path`: the methods of every template that matches it (templates
    /// overlap: `/jobs/dead` and `/jobs/{id}`), or `None` when none does.
    fn allow(&self, path: &str) -> Option<HeaderValue> {
        let matching: Vec<&[Method]> = self
            .paths
            .iter()
            .filter(|(template, _)| template.is_match(path))
            .map(|(_, methods)| methods.as_slice())
            .collect();
        let names: Vec<&str> = METHODS
            .iter()
            .filter(|method| matching.iter().any(|methods| methods.contains(method)))
            .map(Method::as_str)
            .collect();
        (!names.is_empty())
            .then(|| HeaderValue::from_str(&names.join(", ")).ok())
            .flatten()
    }
}

/// From the document's `(template, item)` pairs, e.g. `doc.paths.paths.iter()`; a
/// template's `{name}` segments are actix's own syntax, so it is matched as actix would.
impl<'a, P: AsRef<str>> FromIterator<(P, &'a PathItem)> for AllowedMethods {
    fn from_iter<I: IntoIterator<Item = (P, &'a PathItem)>>(paths: I) -> Self {
        let paths = paths
            .into_iter()
            .map(|(template, item)| (ResourceDef::new(template.as_ref()), methods(item)))
            .filter(|(_, methods)| !methods.is_empty())
            .collect();
        Self { paths }
    }
}

/// The methods `item` has an operation for.
fn methods(item: &PathItem) -> Vec<Method> {
    let operations = [
        &item.get,
        &item.put,
        &item.post,
        &item.delete,
        &item.options,
        &item.head,
        &item.patch,
        &item.trace,
    ];
    METHODS
        .into_iter()
        .zip(operations)
        .filter(|(_, operation)| operation.is_some())
        .map(|(method, _)| method)
        .collect()
}

/// The default service: 405 `method_not_allowed` with `Allow` for a served path (per the
/// [`AllowedMethods`] in app data, when registered), otherwise 404 `not_found`; both
/// with the standard error body.
pub async fn unmatched(
    req: HttpRequest,
    allowed: Option<web::Data<AllowedMethods>>,
) -> HttpResponse {
    match allowed.as_deref().and_then(|a| a.allow(req.path())) {
        Some(allow) => {
            let mut res = for_status(StatusCode::METHOD_NOT_ALLOWED).error_response();
            res.headers_mut().insert(header::ALLOW, allow);
            res
        }
        None => ApiError::not_found("no route matches this path").error_response(),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use utoipa::openapi::path::{HttpMethod, OperationBuilder, PathItemBuilder};

    fn item(methods: &[HttpMethod]) -> PathItem {
        methods
            .iter()
            .fold(PathItemBuilder::new(), |item, method| {
                item.operation(method.clone(), OperationBuilder::new().build())
            })
            .build()
    }

    fn table() -> AllowedMethods {
        let things = item(&[HttpMethod::Get, HttpMethod::Post]);
        let thing = item(&[HttpMethod::Get, HttpMethod::Patch, HttpMethod::Delete]);
        let special = item(&[HttpMethod::Put]);
        let nothing = item(&[]);
        [
            ("/things", &things),
            ("/things/{id}", &thing),
            ("/things/special", &special),
            ("/empty", &nothing),
        ]
        .into_iter()
        .collect()
    }

    #[test]
    fn a_served_path_lists_its_methods_whatever_the_placeholders_hold() {
        let table = table();
        assert_eq!(table.allow("/things").unwrap(), "GET, POST");
        assert_eq!(table.allow("/things/42").unwrap(), "GET, DELETE, PATCH");
    }

    #[test]
    fn overlapping_templates_allow_the_methods_of_both() {
        assert_eq!(
            table().allow("/things/special").unwrap(),
            "GET, PUT, DELETE, PATCH"
        );
    }

    #[test]
    fn other_paths_and_paths_without_operations_are_not_served() {
        let table = table();
        for path in ["/", "/thing", "/things/42/parts", "/things/", "/empty"] {
            assert!(table.allow(path).is_none(), "{path}");
        }
    }
}
