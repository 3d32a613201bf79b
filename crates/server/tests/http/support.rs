//! `spawn_app()` and the helpers every spec shares: people, projects, sessions through the
//! real login form, API tokens, and small readers for responses.

use concord_server::{AppState, ServerConfig};
use concord_store::ProjectId;
use concord_store::{
    Id, LabelSchema, NewProject, NewUser, PasswordCost, Project, Role, Store, StoreOptions, User,
};
use reqwest::header::{HeaderMap, LOCATION, SET_COOKIE};
use reqwest::{Client, Method, RequestBuilder, Response, StatusCode};
use serde_json::Value;
use std::sync::atomic::{AtomicU32, Ordering};
use std::time::{Duration, Instant};

pub const PASSWORD: &str = "correct horse battery";
pub const SESSION_COOKIE: &str = "concord_session";

/// A running server over its own store.
pub struct TestApp {
    /// `http://127.0.0.1:PORT`
    pub address: String,
    pub store: Store,
    /// Never follows redirects: the specs look at every 303 themselves.
    pub client: Client,
    // Keeps the SQLite file and the upload directory alive for the test's duration.
    _dir: tempfile::TempDir,
}

async fn spawn_app(store: Store, dir: tempfile::TempDir) -> TestApp {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0")
        .await
        .expect("bind a free port");
    let port = listener.local_addr().expect("local address").port();
    let uploads = dir.path().join("uploads");
    std::fs::create_dir_all(&uploads).expect("upload directory");
    let config = ServerConfig {
        upload_dir: uploads,
        ..ServerConfig::default()
    };
    let state = AppState::new(store.clone(), config);
    tokio::spawn(async move {
        concord_server::serve(listener, state, std::future::pending())
            .await
            .expect("the server runs");
    });
    let client = Client::builder()
        .redirect(reqwest::redirect::Policy::none())
        .timeout(Duration::from_secs(60))
        .build()
        .expect("http client");
    TestApp {
        address: format!("http://127.0.0.1:{port}"),
        store,
        client,
        _dir: dir,
    }
}

pub async fn sqlite_app() -> TestApp {
    let dir = tempfile::tempdir().expect("temp dir");
    let path = dir.path().join("concord.db");
    let mut options = StoreOptions::new(
        path.to_string_lossy().to_string(),
        concord_qa::gold_accuracy_upper_bound,
    );
    options.password_cost = PasswordCost::Fast;
    let store = Store::open(options).await.expect("open sqlite store");
    spawn_app(store, dir).await
}

/// `None` (and a note on stderr) when PostgreSQL is not configured; a failure instead when
/// `CONCORD_REQUIRE_ALL_SUITES` says every suite must run.
pub async fn postgres_app(test: &str) -> Option<TestApp> {
    static COUNTER: AtomicU32 = AtomicU32::new(0);
    let Ok(url) = std::env::var("CONCORD_TEST_POSTGRES_URL") else {
        if std::env::var("CONCORD_REQUIRE_ALL_SUITES").is_ok() {
            panic!("CONCORD_TEST_POSTGRES_URL is required when CONCORD_REQUIRE_ALL_SUITES is set");
        }
        eprintln!("skipped: {test} on PostgreSQL (set CONCORD_TEST_POSTGRES_URL to run it)");
        return None;
    };
    let schema = format!(
        "h_{}_{}_{}",
        std::process::id(),
        COUNTER.fetch_add(1, Ordering::Relaxed),
        test.chars()
            .filter(|c| c.is_ascii_alphanumeric())
            .take(30)
            .collect::<String>()
            .to_lowercase()
    );
    let mut options = StoreOptions::new(url, concord_qa::gold_accuracy_upper_bound);
    options.pg_schema = Some(schema);
    options.password_cost = PasswordCost::Fast;
    options.max_connections = 8;
    let store = Store::open(options).await.expect("open postgres store");
    // Once per run: the schemas earlier runs left behind.
    static SWEPT: std::sync::atomic::AtomicBool = std::sync::atomic::AtomicBool::new(false);
    if !SWEPT.swap(true, Ordering::Relaxed) {
        let _ = store.drop_scratch_schemas_of_ended_processes("h").await;
    }
    let dir = tempfile::tempdir().expect("temp dir");
    Some(spawn_app(store, dir).await)
}

/// Declares one test per back end for each `async fn name(app: TestApp)` spec.
#[macro_export]
macro_rules! on_every_backend {
    ($($name:ident),* $(,)?) => {
        mod sqlite {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    super::$name($crate::support::sqlite_app().await).await;
                }
            )*
        }
        mod postgres {
            $(
                #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
                async fn $name() {
                    if let Some(app) = $crate::support::postgres_app(stringify!($name)).await {
                        super::$name(app).await;
                    }
                }
            )*
        }
    };
}

impl TestApp {
    pub fn url(&self, path: &str) -> String {
        format!("{}{path}", self.address)
    }

    /// A request without any credentials.
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client.request(method, self.url(path))
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// A request authenticated with an API token.
    pub fn bearer(&self, token: &str, method: Method, path: &str) -> RequestBuilder {
        self.request(method, path).bearer_auth(token)
    }

    pub async fn person(&self, name: &str) -> User {
        self.store
            .create_user(new_user(name, false), None)
            .await
            .expect("create user")
    }

    pub async fn admin(&self, name: &str) -> User {
        self.store
            .create_user(new_user(name, true), None)
            .await
            .expect("create admin")
    }

    pub async fn project(&self, slug: &str) -> Project {
        self.store
            .create_project(
                NewProject {
                    slug: slug.into(),
                    name: format!("Project {slug}"),
                    description: String::new(),
                    schema: LabelSchema::catalog_safety(),
                },
                None,
            )
            .await
            .expect("create project")
    }

    /// Imports items from JSONL text straight through the store's import (for specs about
    /// something else than the import endpoint).
    pub async fn import_items(&self, project_id: ProjectId, jsonl: &str) {
        concord_store::import_file(
            &self.store,
            project_id,
            concord_store::ImportKind::Items,
            "items.jsonl",
            std::io::Cursor::new(jsonl.as_bytes().to_vec()),
            concord_formats::items::RecordFormat::Jsonl,
            concord_store::OnConflict::Error,
            None,
            |_| {},
        )
        .await
        .expect("import the test items");
    }

    /// A new user who is a member of `project` with `role`.
    pub async fn member(&self, project: &Project, name: &str, role: Role) -> User {
        let user = self.person(name).await;
        self.store
            .set_member(project.id, name, role, None)
            .await
            .expect("add member");
        user
    }

    pub async fn token(&self, user: &User) -> String {
        self.store
            .create_api_token(user.id, "tests")
            .await
            .expect("create api token")
            .0
    }

    /// Signs in through the login form; the CSRF token is read from a page, as a browser
    /// would.
    pub async fn sign_in(&self, username: &str) -> Browser {
        let response = self
            .request(Method::POST, "/login")
            .form(&[("username", username), ("password", PASSWORD)])
            .send()
            .await
            .expect("login request");
        assert_eq!(
            response.status(),
            StatusCode::SEE_OTHER,
            "{username} could not sign in"
        );
        let cookie =
            session_cookie(response.headers()).expect("a successful login sets the session cookie");
        let mut browser = Browser {
            address: self.address.clone(),
            client: self.client.clone(),
            cookie,
            csrf: String::new(),
        };
        let (status, page) = text(browser.get("/account").send().await.unwrap()).await;
        assert_eq!(status, StatusCode::OK, "{page}");
        browser.csrf = csrf_in(&page);
        browser
    }

    /// Polls `/api/v1/jobs/{id}` until the job has finished; returns the job.
    pub async fn wait_for_job(&self, token: &str, id: Id) -> Value {
        let started = Instant::now();
        loop {
            let response = self
                .bearer(token, Method::GET, &format!("/api/v1/jobs/{id}"))
                .send()
                .await
                .unwrap();
            let (status, body) = json(response).await;
            assert_eq!(status, StatusCode::OK, "{body}");
            let job = body["job"].clone();
            if !matches!(job["status"].as_str(), Some("queued" | "running")) {
                return job;
            }
            assert!(
                started.elapsed() < Duration::from_secs(60),
                "job {id} did not finish: {job}"
            );
            tokio::time::sleep(Duration::from_millis(50)).await;
        }
    }
}

fn new_user(name: &str, is_admin: bool) -> NewUser {
    NewUser {
        username: name.into(),
        display_name: None,
        password: Some(PASSWORD.into()),
        is_admin,
        kind: concord_store::AccountKind::Human,
    }
}

/// A signed-in browser: the session cookie and the session's CSRF token.
pub struct Browser {
    address: String,
    client: Client,
    /// `concord_session=…`, ready for a `Cookie` header.
    pub cookie: String,
    pub csrf: String,
}

impl Browser {
    pub fn request(&self, method: Method, path: &str) -> RequestBuilder {
        self.client
            .request(method, format!("{}{path}", self.address))
            .header("Cookie", &self.cookie)
    }

    pub fn get(&self, path: &str) -> RequestBuilder {
        self.request(Method::GET, path)
    }

    /// A form post that carries the session's CSRF token, as the pages' forms do.
    pub async fn submit(&self, path: &str, fields: &[(&str, &str)]) -> Response {
        let mut fields = fields.to_vec();
        fields.push(("csrf", &self.csrf));
        self.request(Method::POST, path)
            .form(&fields)
            .send()
            .await
            .unwrap()
    }
}

/// The `concord_session=…` pair from a response's `Set-Cookie` headers.
pub fn session_cookie(headers: &HeaderMap) -> Option<String> {
    set_cookie(headers).map(|c| c.split(';').next().unwrap_or_default().trim().to_owned())
}

/// The whole `Set-Cookie` header for the session cookie, attributes included.
pub fn set_cookie(headers: &HeaderMap) -> Option<String> {
    headers
        .get_all(SET_COOKIE)
        .iter()
        .filter_map(|v| v.to_str().ok())
        .find(|v| v.starts_with(&format!("{SESSION_COOKIE}=")))
        .map(str::to_owned)
}

/// The CSRF token a signed-in page carries (`data-csrf` on the body).
pub fn csrf_in(html: &str) -> String {
    let start = html
        .find("data-csrf=\"")
        .unwrap_or_else(|| panic!("the page has no CSRF token:\n{html}"))
        + "data-csrf=\"".len();
    let end = html[start..].find('"').expect("closing quote") + start;
    html[start..end].to_owned()
}

pub fn location(response: &Response) -> String {
    response
        .headers()
        .get(LOCATION)
        .and_then(|v| v.to_str().ok())
        .unwrap_or_default()
        .to_owned()
}

pub async fn json(response: Response) -> (StatusCode, Value) {
    let status = response.status();
    let bytes = response.bytes().await.expect("response body");
    let value = serde_json::from_slice(&bytes).unwrap_or_else(|e| {
        panic!(
            "{status}: the body is not JSON ({e}): {}",
            String::from_utf8_lossy(&bytes)
        )
    });
    (status, value)
}

pub async fn text(response: Response) -> (StatusCode, String) {
    let status = response.status();
    (status, response.text().await.expect("response body"))
}

/// The message of a JSON error body, `{"error": {"status": …, "message": …}}`.
pub fn error_message(body: &Value) -> &str {
    body["error"]["message"]
        .as_str()
        .unwrap_or_else(|| panic!("not an error body: {body}"))
}

/// The HTML between `<start` … and the first `end` after it.
pub fn section<'a>(html: &'a str, start: &str, end: &str) -> &'a str {
    let from = html
        .find(start)
        .unwrap_or_else(|| panic!("{start:?} is not on the page:\n{html}"));
    let to = html[from..]
        .find(end)
        .map(|n| from + n + end.len())
        .unwrap_or(html.len());
    &html[from..to]
}

/// A JSON call to the API of the project `catalog` (`path` after `/api/v1/projects/catalog`).
pub async fn call(
    app: &TestApp,
    token: &str,
    method: Method,
    path: &str,
    body: Value,
) -> (StatusCode, Value) {
    json(
        app.bearer(token, method, &format!("/api/v1/projects/catalog{path}"))
            .json(&body)
            .send()
            .await
            .unwrap(),
    )
    .await
}
