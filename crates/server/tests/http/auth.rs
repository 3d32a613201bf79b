//! Signing in and out, login rate limits, CSRF protection of cookie sessions, API tokens.

use crate::on_every_backend;
use crate::support::{
    PASSWORD, TestApp, error_message, json, location, session_cookie, set_cookie, text,
};
use concord_store::Role;
use reqwest::{Method, StatusCode};
use serde_json::json;

async fn login(
    app: &TestApp,
    username: &str,
    password: &str,
    next: Option<&str>,
) -> reqwest::Response {
    let mut form = vec![("username", username), ("password", password)];
    if let Some(next) = next {
        form.push(("next", next));
    }
    app.request(Method::POST, "/login")
        .form(&form)
        .send()
        .await
        .unwrap()
}

async fn a_wrong_password_is_refused_with_401_and_the_page_says_so(app: TestApp) {
    app.person("ana").await;
    let response = login(&app, "ana", "not the password", None).await;
    assert!(
        set_cookie(response.headers()).is_none(),
        "no session for a failed login"
    );
    let (status, page) = text(response).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Wrong user name or password"), "{page}");
    // An unknown user is answered the same way.
    let (status, page) = text(login(&app, "nobody", PASSWORD, None).await).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(page.contains("Wrong user name or password"), "{page}");
}

async fn the_right_password_starts_a_session_in_an_httponly_lax_cookie(app: TestApp) {
    app.person("ana").await;
    let response = login(&app, "ana", PASSWORD, None).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/");
    let cookie = set_cookie(response.headers()).expect("a session cookie");
    let attributes: Vec<String> = cookie
        .split(';')
        .skip(1)
        .map(|a| a.trim().to_ascii_lowercase())
        .collect();
    assert!(attributes.contains(&"httponly".into()), "{cookie}");
    assert!(attributes.contains(&"samesite=lax".into()), "{cookie}");
    assert!(attributes.contains(&"path=/".into()), "{cookie}");
    // The cookie is a working session.
    let pair = session_cookie(response.headers()).unwrap();
    let (status, me) = json(
        app.get("/api/v1/me")
            .header("Cookie", &pair)
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["username"], "ana");
}

async fn after_login_only_same_site_paths_are_followed(app: TestApp) {
    app.person("ana").await;
    let followed = login(&app, "ana", PASSWORD, Some("/p/catalog/items?state=queued")).await;
    assert_eq!(followed.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&followed), "/p/catalog/items?state=queued");
    for next in [
        "https://evil.example",
        "https://evil.example/p/catalog",
        "//evil.example",
        "//evil",
        "/\\evil.example",
        "evil.example",
        // Browsers drop tabs and line breaks from URLs, which would make these `//evil…`.
        "/\t/evil.example",
        "/\n/evil.example",
    ] {
        let response = login(&app, "ana", PASSWORD, Some(next)).await;
        assert_eq!(response.status(), StatusCode::SEE_OTHER, "next={next:?}");
        assert_eq!(location(&response), "/", "next={next:?}");
    }
}

async fn ten_failures_for_a_user_name_lock_even_the_right_password_out(app: TestApp) {
    app.person("ana").await;
    for attempt in 1..=10 {
        let response = login(&app, "ana", &format!("guess {attempt}"), None).await;
        assert_eq!(
            response.status(),
            StatusCode::UNAUTHORIZED,
            "attempt {attempt}"
        );
    }
    let response = login(&app, "ana", PASSWORD, None).await;
    assert!(
        set_cookie(response.headers()).is_none(),
        "no session while locked out"
    );
    let (status, page) = text(response).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS);
    assert!(page.contains("Too many failed attempts"), "{page}");
}

async fn logging_out_ends_the_session(app: TestApp) {
    app.person("ana").await;
    let browser = app.sign_in("ana").await;
    assert_eq!(
        browser.get("/account").send().await.unwrap().status(),
        StatusCode::OK
    );
    let response = browser.submit("/logout", &[]).await;
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&response), "/login");
    let cleared = set_cookie(response.headers()).expect("the cookie is cleared");
    assert!(cleared.contains("Max-Age=0"), "{cleared}");
    // The old cookie no longer opens anything.
    let page = browser.get("/account").send().await.unwrap();
    assert_eq!(page.status(), StatusCode::SEE_OTHER);
    assert!(location(&page).starts_with("/login"), "{}", location(&page));
    let (status, body) = json(browser.get("/api/v1/me").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
}

async fn project_name(app: &TestApp, slug: &str) -> String {
    app.store.project(slug).await.unwrap().name
}

fn rename(name: &str) -> Vec<(&str, &str)> {
    vec![("name", name), ("description", ""), ("settings", "{}")]
}

async fn form_posts_without_the_csrf_token_are_refused(app: TestApp) {
    let project = app.project("catalog").await;
    app.member(&project, "pm", Role::ProjectManager).await;
    let browser = app.sign_in("pm").await;

    let without_token = browser
        .request(Method::POST, "/p/catalog/settings")
        .form(&rename("Renamed without token"))
        .send()
        .await
        .unwrap();
    assert_eq!(without_token.status(), StatusCode::FORBIDDEN);
    let wrong_token = browser
        .request(Method::POST, "/p/catalog/settings")
        .form(&[rename("Renamed with a wrong token"), vec![("csrf", "0123")]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(wrong_token.status(), StatusCode::FORBIDDEN);
    assert_eq!(project_name(&app, "catalog").await, "Project catalog");

    let with_token = browser
        .submit("/p/catalog/settings", &rename("Renamed"))
        .await;
    assert_eq!(with_token.status(), StatusCode::SEE_OTHER);
    assert_eq!(location(&with_token), "/p/catalog/settings");
    assert_eq!(project_name(&app, "catalog").await, "Renamed");
}

async fn cross_site_posts_are_refused_even_with_the_token(app: TestApp) {
    let project = app.project("catalog").await;
    app.member(&project, "pm", Role::ProjectManager).await;
    let browser = app.sign_in("pm").await;
    let fields = [
        rename("Renamed from elsewhere"),
        vec![("csrf", &browser.csrf)],
    ]
    .concat();
    let response = browser
        .request(Method::POST, "/p/catalog/settings")
        .header("Origin", "http://evil.example")
        .form(&fields)
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::FORBIDDEN);
    assert_eq!(project_name(&app, "catalog").await, "Project catalog");
    // The same post from the site's own origin goes through.
    let response = browser
        .request(Method::POST, "/p/catalog/settings")
        .header("Origin", &app.address)
        .form(&[rename("Renamed here"), vec![("csrf", &browser.csrf)]].concat())
        .send()
        .await
        .unwrap();
    assert_eq!(response.status(), StatusCode::SEE_OTHER);
    assert_eq!(project_name(&app, "catalog").await, "Renamed here");
}

/// A request that rides on the session cookie needs the token, whatever else it carries.
async fn an_authorization_header_does_not_excuse_a_cookie_session_from_csrf(app: TestApp) {
    let project = app.project("catalog").await;
    app.member(&project, "pm", Role::ProjectManager).await;
    let browser = app.sign_in("pm").await;
    let response = browser
        .request(Method::POST, "/p/catalog/settings")
        .bearer_auth("not-a-token")
        .form(&rename("Renamed by a forged request"))
        .send()
        .await
        .unwrap();
    assert!(
        !response.status().is_success(),
        "status {}",
        response.status()
    );
    assert_ne!(location(&response), "/p/catalog/settings");
    assert_eq!(project_name(&app, "catalog").await, "Project catalog");
}

async fn api_calls_with_the_session_cookie_need_the_csrf_header(app: TestApp) {
    let project = app.project("catalog").await;
    app.member(&project, "pm", Role::ProjectManager).await;
    let browser = app.sign_in("pm").await;
    let (status, body) = json(
        browser
            .request(Method::PATCH, "/api/v1/projects/catalog")
            .json(&json!({"name": "Renamed without header"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    assert!(error_message(&body).contains("security token"), "{body}");
    assert_eq!(project_name(&app, "catalog").await, "Project catalog");

    let (status, body) = json(
        browser
            .request(Method::PATCH, "/api/v1/projects/catalog")
            .header("X-CSRF-Token", &browser.csrf)
            .json(&json!({"name": "Renamed with header"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(body["project"]["name"], "Renamed with header");
}

async fn api_tokens_authenticate_until_revoked(app: TestApp) {
    let ana = app.person("ana").await;
    let (secret, info) = app.store.create_api_token(ana.id, "laptop").await.unwrap();

    let (status, me) = json(
        app.bearer(&secret, Method::GET, "/api/v1/me")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{me}");
    assert_eq!(me["user"]["username"], "ana");
    assert_eq!(me["user"]["id"], ana.id.get());

    let (status, body) = json(app.get("/api/v1/me").send().await.unwrap()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    let (status, body) = json(
        app.bearer("cnc_0000000000000000", Method::GET, "/api/v1/me")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");

    app.store.revoke_api_token(ana.id, info.id).await.unwrap();
    let (status, body) = json(
        app.bearer(&secret, Method::GET, "/api/v1/me")
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert_eq!(body["error"]["status"], 401);
}

async fn bearer_requests_need_no_csrf_token(app: TestApp) {
    let project = app.project("catalog").await;
    let pm = app.member(&project, "pm", Role::ProjectManager).await;
    let token = app.token(&pm).await;
    let (status, body) = json(
        app.bearer(&token, Method::PATCH, "/api/v1/projects/catalog")
            .json(&json!({"name": "Renamed by a script"}))
            .send()
            .await
            .unwrap(),
    )
    .await;
    assert_eq!(status, StatusCode::OK, "{body}");
    assert_eq!(project_name(&app, "catalog").await, "Renamed by a script");
}

on_every_backend!(
    a_wrong_password_is_refused_with_401_and_the_page_says_so,
    the_right_password_starts_a_session_in_an_httponly_lax_cookie,
    after_login_only_same_site_paths_are_followed,
    ten_failures_for_a_user_name_lock_even_the_right_password_out,
    logging_out_ends_the_session,
    form_posts_without_the_csrf_token_are_refused,
    cross_site_posts_are_refused_even_with_the_token,
    an_authorization_header_does_not_excuse_a_cookie_session_from_csrf,
    api_calls_with_the_session_cookie_need_the_csrf_header,
    api_tokens_authenticate_until_revoked,
    bearer_requests_need_no_csrf_token,
);
