//! Health checks, unknown addresses, security headers and the OpenAPI document.

use crate::on_every_backend;
use crate::support::{TestApp, error_message, json, text};
use concord_server::API_ROUTES;
use reqwest::header::CONTENT_TYPE;
use reqwest::{Method, StatusCode};

async fn health_and_readiness_checks_answer_200(app: TestApp) {
    let (status, body) = text(app.get("/healthz").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
    let (status, body) = text(app.get("/readyz").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::OK, "{body}");
}

async fn an_unknown_page_is_an_html_404(app: TestApp) {
    let response = app.get("/no/such/page").send().await.unwrap();
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, page) = text(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(content_type.starts_with("text/html"), "{content_type}");
    assert!(page.contains("<html"), "{page}");
    assert!(page.contains("404"), "{page}");
    assert!(page.contains("there is nothing at"), "{page}");
}

async fn an_unknown_api_path_is_a_json_404(app: TestApp) {
    let response = app.get("/api/v1/no-such-thing").send().await.unwrap();
    let content_type = response.headers()[CONTENT_TYPE]
        .to_str()
        .unwrap()
        .to_owned();
    let (status, body) = json(response).await;
    assert_eq!(status, StatusCode::NOT_FOUND);
    assert!(
        content_type.starts_with("application/json"),
        "{content_type}"
    );
    assert_eq!(body["error"]["status"], 404, "{body}");
    assert!(
        error_message(&body).contains("/api/v1/no-such-thing"),
        "{body}"
    );
}

/// Pages, API answers, errors, redirects and static files alike.
async fn every_response_carries_the_security_headers(app: TestApp) {
    let admin = app.admin("root").await;
    let token = app.token(&admin).await;
    let responses = [
        app.get("/healthz").send().await.unwrap(),
        app.get("/login").send().await.unwrap(),
        app.get("/").send().await.unwrap(), // a redirect to the login page
        app.get("/no/such/page").send().await.unwrap(),
        app.get("/api/v1/no-such-thing").send().await.unwrap(),
        app.get("/api/v1/me").send().await.unwrap(), // 401
        app.bearer(&token, Method::GET, "/api/v1/me")
            .send()
            .await
            .unwrap(),
        app.get("/api/v1/openapi.json").send().await.unwrap(),
        app.get("/static/app.js").send().await.unwrap(),
        app.request(Method::POST, "/login")
            .header("Origin", "http://evil.example")
            .form(&[("username", "root"), ("password", "x")])
            .send()
            .await
            .unwrap(), // refused by the CSRF layer
    ];
    for response in responses {
        let what = format!("{} {}", response.status(), response.url().path());
        let header = |name: &str| {
            response
                .headers()
                .get(name)
                .unwrap_or_else(|| panic!("{what}: no {name} header"))
                .to_str()
                .unwrap()
                .to_owned()
        };
        let csp = header("content-security-policy");
        let script_src = csp
            .split(';')
            .map(str::trim)
            .find(|d| d.starts_with("script-src"))
            .unwrap_or_else(|| panic!("{what}: the CSP has no script-src: {csp}"));
        assert_eq!(script_src, "script-src 'self'", "{what}: {csp}");
        assert!(!csp.contains("'unsafe-inline'"), "{what}: {csp}");
        assert!(!csp.contains("'unsafe-eval'"), "{what}: {csp}");
        assert_eq!(header("x-frame-options"), "DENY", "{what}");
        assert_eq!(header("x-content-type-options"), "nosniff", "{what}");
        // Nothing is sent to other hosts. (`same-origin` rather than `no-referrer` is
        // allowed: under `no-referrer` browsers send `Origin: null` with the pages' own form
        // posts, which the cross-site check refuses.)
        let referrer = header("referrer-policy");
        assert!(
            ["no-referrer", "same-origin"].contains(&referrer.as_str()),
            "{what}: Referrer-Policy {referrer}"
        );
    }
}

async fn the_openapi_document_describes_every_api_route(app: TestApp) {
    let response = app.get("/api/v1/openapi.json").send().await.unwrap();
    let (status, doc) = json(response).await;
    assert_eq!(status, StatusCode::OK);
    assert_eq!(doc["openapi"], "3.1.0", "{doc}");
    assert!(doc["info"]["title"].is_string(), "{doc}");
    let paths = doc["paths"].as_object().expect("paths is an object");
    let mut documented = 0;
    for route in API_ROUTES {
        let operation = &paths
            .get(route.path)
            .unwrap_or_else(|| panic!("no path {} in the document", route.path))[route.method];
        assert!(
            operation.is_object(),
            "{} {} is not in the document",
            route.method,
            route.path
        );
        assert_eq!(operation["summary"], route.summary);
        // Every {parameter} of the path is declared.
        for name in route
            .path
            .split('/')
            .filter_map(|s| s.strip_prefix('{')?.strip_suffix('}'))
        {
            let declared = operation["parameters"]
                .as_array()
                .is_some_and(|ps| ps.iter().any(|p| p["name"] == name && p["in"] == "path"));
            assert!(
                declared,
                "{} {}: {name} is not declared",
                route.method, route.path
            );
        }
        documented += 1;
    }
    let operations: usize = paths
        .values()
        .map(|p| p.as_object().map_or(0, |o| o.len()))
        .sum();
    assert_eq!(
        operations, documented,
        "the document has operations the route table does not"
    );
}

on_every_backend!(
    health_and_readiness_checks_answer_200,
    an_unknown_page_is_an_html_404,
    an_unknown_api_path_is_a_json_404,
    every_response_carries_the_security_headers,
    the_openapi_document_describes_every_api_route,
);
