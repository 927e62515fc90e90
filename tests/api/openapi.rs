//! The admin API's OpenAPI document (issue 10, item 2) and the error path of every route.
//!
//! The document must be valid OpenAPI 3 and match the router both ways:
//! - every documented operation is served (not 404/405), and every other method on a
//!   documented path is a 405 (a method added to a route without its doc fails here);
//! - every `/api/v1` path registered anywhere in `src/` is documented (a route added with a
//!   plain `.route(...)` and no `#[utoipa::path]` fails here).
//!
//! The error tests walk the document too, so a new route is checked for its 401 and 404
//! without anyone writing a test for it.

use crate::helpers::*;
use reqwest::Method;
use serde_json::Value;
use std::collections::BTreeSet;
use std::path::Path;

const PROGRAM: &str = r#"id = "pilot"
name = "Pilot Program"
timezone = "Europe/Berlin"
start_date = "2027-01-04"
sponsor_channels = ["C0SPONSOR1"]
owners = ["U0OWNER01"]
anonymity_threshold = 3

[[members]]
slack_id = "U0DOC001"
role = "leader"

[[surveys]]
id = "weekly"
cadence = "0 10 * * MON"
anonymity = "anonymous"

[[surveys.questions]]
key = "value"
kind = "scale"
prompt = "How valuable was coaching this week?"
"#;

async fn app() -> TestApp {
    TestAppBuilder::default()
        .user("U0DOC001", "Europe/Berlin")
        .program("pilot.toml", PROGRAM)
        .spawn()
        .await
}

async fn document(app: &TestApp) -> Value {
    // No token: the document is public.
    let r = app.get("/api/v1/openapi.json").await;
    assert_eq!(r.status(), 200);
    assert!(r.headers()["content-type"]
        .to_str()
        .unwrap()
        .starts_with("application/json"));
    r.json().await.unwrap()
}

/// (path template, method) of every documented operation.
fn operations(doc: &Value) -> Vec<(String, Method)> {
    let mut out = Vec::new();
    for (path, item) in doc["paths"].as_object().expect("paths") {
        for (method, _) in item.as_object().unwrap() {
            if let Ok(m) = method.to_uppercase().parse::<Method>() {
                out.push((path.clone(), m));
            }
        }
    }
    out
}

fn is_public(doc: &Value, path: &str, method: &Method) -> bool {
    doc["paths"][path][method.as_str().to_lowercase()]["security"] == serde_json::json!([{}])
}

/// The template with real values (`{id}` → `program`, `{survey}` → `survey`).
fn fill(template: &str, program: &str, survey: &str) -> String {
    template
        .replace("{id}", program)
        .replace("{survey}", survey)
}

async fn call(app: &TestApp, method: Method, path: &str, token: Option<&str>) -> reqwest::Response {
    let mut req = app
        .http
        .request(method.clone(), format!("{}{path}", app.base_url));
    if let Some(t) = token {
        req = req.bearer_auth(t);
    }
    if method == Method::PUT || method == Method::POST {
        req = req.header("content-type", "application/json").body("{}");
    }
    req.send().await.expect("request")
}

/// Every JSON pointer `$ref` in the document resolves inside it.
fn check_refs(doc: &Value, node: &Value, path: &str) {
    match node {
        Value::Object(map) => {
            for (k, v) in map {
                if k == "$ref" {
                    let target = v.as_str().expect("$ref is a string");
                    let pointer = target
                        .strip_prefix('#')
                        .unwrap_or_else(|| panic!("{path}: $ref {target} is not local"));
                    assert!(
                        doc.pointer(pointer).is_some(),
                        "{path}: $ref {target} does not resolve"
                    );
                } else {
                    check_refs(doc, v, &format!("{path}/{k}"));
                }
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                check_refs(doc, v, &format!("{path}/{i}"));
            }
        }
        _ => {}
    }
}

#[tokio::test]
async fn the_document_is_valid_openapi_3() {
    let app = app().await;
    let doc = document(&app).await;

    // Typed parse of the whole document (OpenAPI 3.1: every object, every field type).
    let spec = oas3::from_json(doc.to_string()).expect("the document parses as OpenAPI 3.1");
    let version = spec
        .validate_version()
        .expect("a supported OpenAPI version");
    assert_eq!(version.major, 3);
    assert_eq!(spec.info.title, "pulseloop admin API");
    check_refs(&doc, &doc, "#");

    let ops: Vec<_> = spec.operations().collect();
    assert!(ops.len() >= 11, "{} operations", ops.len());
    for (path, method, op) in &ops {
        assert!(path.starts_with("/api/v1/"), "{path}");
        let responses = op.responses(&spec);
        assert!(!responses.is_empty(), "{method} {path} has no responses");
        assert!(
            responses.keys().any(|s| s.starts_with('2')),
            "{method} {path} documents no success"
        );
        assert!(
            responses.contains_key("500"),
            "{method} {path} lacks the 500"
        );
        let public = is_public(&doc, path, method);
        assert_eq!(
            responses.contains_key("401"),
            !public,
            "{method} {path}: a protected route documents its 401, a public one does not"
        );
        // Every `{name}` of the path is a required path parameter.
        let params = op.parameters(&spec).expect("parameters resolve");
        for name in path
            .split('/')
            .filter_map(|s| s.strip_prefix('{').and_then(|s| s.strip_suffix('}')))
        {
            let p = params
                .iter()
                .find(|p| p.name == name)
                .unwrap_or_else(|| panic!("{method} {path} does not document {{{name}}}"));
            assert_eq!(p.location, oas3::spec::ParameterIn::Path);
            assert_eq!(p.required, Some(true));
        }
    }

    // The error shape is a schema, and every error answer uses it.
    let error = &doc["components"]["schemas"]["ErrorBody"];
    let required: BTreeSet<&str> = error["required"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap())
        .collect();
    assert!(
        required.contains("error") && required.contains("detail"),
        "{error}"
    );
    for (path, method) in operations(&doc) {
        let responses = &doc["paths"][&path][method.as_str().to_lowercase()]["responses"];
        for (status, response) in responses.as_object().unwrap() {
            if status.starts_with('4') || status.starts_with('5') {
                assert_eq!(
                    response["content"]["application/json"]["schema"]["$ref"],
                    "#/components/schemas/ErrorBody",
                    "{method} {path} {status}"
                );
            }
        }
    }
    // The token is a bearer scheme, required everywhere but on the document itself.
    assert_eq!(
        doc["components"]["securitySchemes"]["admin_token"]["scheme"],
        "bearer"
    );
    assert_eq!(doc["security"], serde_json::json!([{ "admin_token": [] }]));
    assert!(is_public(&doc, "/api/v1/openapi.json", &Method::GET));
}

/// The routes of the product's contract (PRODUCT.md) that are served by this branch.
#[tokio::test]
async fn the_document_lists_the_contract_routes() {
    let app = app().await;
    let doc = document(&app).await;
    for (path, method) in [
        ("/api/v1/programs", "get"),
        ("/api/v1/programs/{id}/surveys/{survey}/send-now", "post"),
        ("/api/v1/programs/{id}/schedule", "get"),
        ("/api/v1/programs/{id}/digest/preview", "get"),
        ("/api/v1/programs/{id}/digest/send", "post"),
        ("/api/v1/programs/{id}/export", "get"),
        ("/api/v1/audit", "get"),
        ("/api/v1/openapi.json", "get"),
    ] {
        assert!(
            doc["paths"][path][method].is_object(),
            "{method} {path} is not in the document"
        );
    }
}

#[tokio::test]
async fn every_documented_operation_is_served_and_no_other_method_is() {
    let app = app().await;
    let doc = document(&app).await;
    let ops = operations(&doc);
    let documented: BTreeSet<(String, String)> = ops
        .iter()
        .map(|(p, m)| (p.clone(), m.to_string()))
        .collect();
    let paths: BTreeSet<&String> = ops.iter().map(|(p, _)| p).collect();
    for template in paths {
        let path = fill(template, "pilot", "weekly");
        for method in [
            Method::GET,
            Method::POST,
            Method::PUT,
            Method::PATCH,
            Method::DELETE,
        ] {
            let r = call(&app, method.clone(), &path, Some(ADMIN_TOKEN)).await;
            let status = r.status().as_u16();
            if documented.contains(&(template.clone(), method.to_string())) {
                assert!(
                    status != 404 && status != 405,
                    "{method} {path} is documented but answers {status}"
                );
            } else {
                assert_eq!(
                    status, 405,
                    "{method} {path} is served ({status}) but not documented"
                );
                let body: Value = r.json().await.expect("a JSON 405");
                assert_eq!(body["error"], "method_not_allowed");
            }
        }
    }
}

/// Every string literal starting with `/api/v1` in `src/` (route registrations and
/// `#[utoipa::path]` attributes alike), up to its closing quote.
fn api_paths_in_source(dir: &Path, out: &mut BTreeSet<(String, String)>) {
    for entry in std::fs::read_dir(dir).unwrap() {
        let path = entry.unwrap().path();
        if path.is_dir() {
            api_paths_in_source(&path, out);
        } else if path.extension().is_some_and(|e| e == "rs") {
            let text = std::fs::read_to_string(&path).unwrap();
            for (i, _) in text.match_indices("\"/api/v1") {
                let rest = &text[i + 1..];
                let end = rest.find('"').unwrap();
                let literal = &rest[..end];
                let literal = literal.split('?').next().unwrap();
                out.insert((path.display().to_string(), literal.to_string()));
            }
        }
    }
}

#[tokio::test]
async fn every_api_v1_route_in_the_source_is_in_the_document() {
    let app = app().await;
    let doc = document(&app).await;
    let paths = doc["paths"].as_object().unwrap();
    let mut found = BTreeSet::new();
    api_paths_in_source(
        &Path::new(env!("CARGO_MANIFEST_DIR")).join("src"),
        &mut found,
    );
    assert!(found.len() >= 10, "the scan found {found:?}");
    let mut missing = Vec::new();
    for (file, path) in &found {
        // The JSON 404 for every other path under /api/v1 is not a route of its own.
        if path == "/api/v1/{*rest}" {
            continue;
        }
        if !paths.contains_key(path) {
            missing.push(format!("{path} (in {file})"));
        }
    }
    assert!(
        missing.is_empty(),
        "routes missing from the OpenAPI document (annotate the handler with \
         #[utoipa::path] and register it with .routes(routes!(handler)); see docs/api.md): {missing:?}"
    );
}

#[tokio::test]
async fn every_protected_route_refuses_a_missing_or_wrong_token_with_a_json_401() {
    let app = app().await;
    let doc = document(&app).await;
    let mut checked = 0;
    for (template, method) in operations(&doc) {
        if is_public(&doc, &template, &method) {
            continue;
        }
        let path = fill(&template, "pilot", "weekly");
        for (token, detail) in [
            (None, "missing bearer token"),
            (Some("nope"), "wrong bearer token"),
        ] {
            let r = call(&app, method.clone(), &path, token).await;
            assert_eq!(r.status(), 401, "{method} {path} with {token:?}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "unauthorized");
            assert_eq!(body["detail"], detail);
        }
        checked += 1;
    }
    assert!(checked >= 10);
    // Nothing was done on the way: no round was started.
    app.assert_count("SELECT COUNT(*) FROM rounds", 0).await;
}

#[tokio::test]
async fn every_route_of_a_program_answers_404_for_an_unknown_program_or_survey() {
    let app = app().await;
    let doc = document(&app).await;
    for (template, method) in operations(&doc) {
        for (program, survey, what) in [
            ("no-such-program", "weekly", "no program 'no-such-program'"),
            ("pilot", "no-such-survey", "no survey 'no-such-survey'"),
        ] {
            if !template.contains("{id}") || (survey != "weekly" && !template.contains("{survey}"))
            {
                continue;
            }
            let path = fill(&template, program, survey);
            let r = call(&app, method.clone(), &path, Some(ADMIN_TOKEN)).await;
            assert_eq!(r.status(), 404, "{method} {path}");
            let body: Value = r.json().await.unwrap();
            assert_eq!(body["error"], "not_found", "{method} {path}");
            assert!(
                body["detail"].as_str().unwrap().starts_with(what),
                "{method} {path}: {body}"
            );
        }
    }
    app.assert_count("SELECT COUNT(*) FROM rounds", 0).await;
}

#[tokio::test]
async fn bad_input_is_a_json_400_naming_the_problem() {
    let app = app().await;
    for (method, path, needle) in [
        (
            Method::GET,
            "/api/v1/programs/pilot/schedule?days=0",
            "days must be",
        ),
        (
            Method::GET,
            "/api/v1/programs/pilot/schedule?days=abc",
            "days must be",
        ),
        (
            Method::GET,
            "/api/v1/programs/pilot/schedule?days=367",
            "days must be",
        ),
        (Method::GET, "/api/v1/audit?limit=0", "limit must be"),
        (Method::GET, "/api/v1/audit?limit=x", "limit must be"),
        (Method::GET, "/api/v1/audit?cursor=42", "cursor '42'"),
        (
            Method::GET,
            "/api/v1/programs/pilot/export?format=xml",
            "format must be",
        ),
        (
            Method::PUT,
            "/api/v1/programs/pilot/kpis",
            "not a KPI document",
        ),
    ] {
        let mut req = app
            .http
            .request(method.clone(), format!("{}{path}", app.base_url))
            .bearer_auth(ADMIN_TOKEN);
        if method == Method::PUT {
            req = req.body("not json");
        }
        let r = req.send().await.unwrap();
        assert_eq!(r.status(), 400, "{method} {path}");
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "bad_request");
        assert!(
            body["detail"].as_str().unwrap().contains(needle),
            "{method} {path}: {body}"
        );
    }
}

#[tokio::test]
async fn an_unknown_api_path_is_a_json_404_even_without_a_token() {
    let app = app().await;
    for token in [None, Some(ADMIN_TOKEN)] {
        let r = call(&app, Method::GET, "/api/v1/nothing/here", token).await;
        assert_eq!(r.status(), 404);
        let body: Value = r.json().await.unwrap();
        assert_eq!(body["error"], "not_found");
        assert!(body["detail"]
            .as_str()
            .unwrap()
            .contains("GET /api/v1/nothing/here"));
    }
}

#[tokio::test]
async fn without_an_admin_token_configured_the_api_is_closed_but_the_document_is_served() {
    let app = TestAppBuilder::default()
        .program("pilot.toml", PROGRAM)
        .without_admin_token()
        .spawn()
        .await;
    assert_eq!(app.get("/api/v1/openapi.json").await.status(), 200);
    let r = app.admin_get("/api/v1/programs").await;
    assert_eq!(r.status(), 401);
    let body: Value = r.json().await.unwrap();
    assert!(body["detail"]
        .as_str()
        .unwrap()
        .contains("set PULSELOOP_ADMIN_TOKEN"));
}
