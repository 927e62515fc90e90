//! The admin API's OpenAPI 3 document, `GET /api/v1/openapi.json`, generated with `utoipa`
//! from the handlers' `#[utoipa::path]` attributes as they are registered in
//! [`super::admin::api`] (`.routes(routes!(handler))`): a route and its description are one
//! registration, so they cannot drift apart. This module adds what no handler says: the
//! title, the bearer-token security scheme, the `ErrorBody` schema, and the 401 and 500
//! answers every protected operation can give.
//!
//! The document is served **without** the token: it describes the API (paths, parameters,
//! shapes) and reveals no data, so a client generator or a reviewer can read it before
//! having a token. docs/api.md says so too.

use axum::{Extension, Json};
use serde_json::{json, Value};
use std::sync::Arc;
use utoipa::openapi::security::{HttpAuthScheme, HttpBuilder, SecurityScheme};
use utoipa::openapi::OpenApi as Document;
use utoipa::{Modify, OpenApi};
use utoipa_axum::router::OpenApiRouter;
use utoipa_axum::routes;

use super::error::ErrorBody;
use super::state::AppState;

/// The path the document is served at.
pub const PATH: &str = "/api/v1/openapi.json";

/// The name of the security scheme (the admin token).
pub const SCHEME: &str = "admin_token";

#[derive(OpenApi)]
#[openapi(
    info(
        title = "pulseloop admin API",
        description = "Programs, schedules, send-now, digests, KPIs, exports and the audit \
log of pulseloop. Every route takes `Authorization: Bearer $PULSELOOP_ADMIN_TOKEN` except this \
document. Errors are JSON `{\"error\", \"detail\"}` (the `ErrorBody` schema). See docs/api.md.",
        license(name = "MIT")
    ),
    components(schemas(ErrorBody)),
    modifiers(&BearerToken),
    security(("admin_token" = [])),
    tags(
        (name = "programs", description = "Programs, their schedule, failures and member problems"),
        (name = "surveys", description = "Surveys: send now, cadence, pause and resume"),
        (name = "digest", description = "The sponsors' digest"),
        (name = "kpis", description = "Business KPIs beside the pulse trends"),
        (name = "export", description = "Answers as the anonymity rules allow"),
        (name = "audit", description = "Who changed what, when"),
        (name = "meta", description = "This document"),
    )
)]
struct ApiDoc;

struct BearerToken;

impl Modify for BearerToken {
    fn modify(&self, openapi: &mut Document) {
        let components = openapi.components.get_or_insert_with(Default::default);
        components.add_security_scheme(
            SCHEME,
            SecurityScheme::Http(
                HttpBuilder::new()
                    .scheme(HttpAuthScheme::Bearer)
                    .description(Some("The value of PULSELOOP_ADMIN_TOKEN"))
                    .build(),
            ),
        );
    }
}

/// The document before any route is added: info, tags, the security scheme, `ErrorBody`.
pub fn base() -> Document {
    ApiDoc::openapi()
}

/// The route serving the document (public: see the module docs). Merged after the token
/// check in [`super::admin::router`].
pub fn routes() -> OpenApiRouter<AppState> {
    OpenApiRouter::new().routes(routes!(document))
}

/// The OpenAPI 3 document of the admin API (this document).
#[utoipa::path(get, path = "/api/v1/openapi.json", tag = "meta", security(()),
    responses((status = 200, description = "The OpenAPI 3.1 document", body = Object,
        content_type = "application/json")))]
async fn document(Extension(doc): Extension<Arc<Value>>) -> Json<Value> {
    Json((*doc).clone())
}

/// The finished document as JSON: every operation that needs the token also lists the 401
/// it answers without one, and every operation the 500 it answers when something inside
/// fails.
pub fn finish(doc: Document) -> Value {
    let mut doc = serde_json::to_value(&doc).unwrap_or_else(|_| json!({}));
    let error = |description: &str| {
        json!({
            "description": description,
            "content": {"application/json": {"schema": {"$ref": "#/components/schemas/ErrorBody"}}}
        })
    };
    if let Some(paths) = doc.get_mut("paths").and_then(Value::as_object_mut) {
        for item in paths.values_mut() {
            let Some(item) = item.as_object_mut() else {
                continue;
            };
            for (method, op) in item.iter_mut() {
                if !METHODS.contains(&method.as_str()) {
                    continue;
                }
                let public = op.get("security") == Some(&json!([{}]));
                let Some(responses) = op.get_mut("responses").and_then(Value::as_object_mut) else {
                    continue;
                };
                if !public {
                    responses
                        .entry("401")
                        .or_insert_with(|| error("Missing or wrong bearer token"));
                }
                responses
                    .entry("500")
                    .or_insert_with(|| error("Internal error (the body names the request id)"));
            }
        }
    }
    doc
}

/// The HTTP methods an OpenAPI path item may hold.
pub const METHODS: [&str; 8] = [
    "get", "put", "post", "delete", "options", "head", "patch", "trace",
];
