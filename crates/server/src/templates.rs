//! Templates (embedded in the binary), their filters, and the static files.

use axum::Router;
use axum::http::header;
use axum::response::IntoResponse;
use axum::routing::get;
use minijinja::{Environment, Value};

macro_rules! templates {
    ($env:ident, $($name:literal),* $(,)?) => {
        $( $env.add_template($name, include_str!(concat!("../templates/", $name)))
            .unwrap_or_else(|e| panic!("template {}: {e}", $name)); )*
    };
}

pub fn environment() -> Environment<'static> {
    let mut env = Environment::new();
    env.set_auto_escape_callback(|_| minijinja::AutoEscape::Html);
    env.set_undefined_behavior(minijinja::UndefinedBehavior::Chainable);
    templates!(
        env,
        "base.html",
        "error.html",
        "login.html",
        "projects.html",
        "project.html",
        "settings.html",
        "guidelines.html",
        "guideline_edit.html",
        "guideline_diff.html",
        "items.html",
        "items_bulk.html",
        "item.html",
        "import.html",
        "_foreign_report.html",
        "job.html",
        "account.html",
        "users.html",
        "label.html",
        "label_item.html",
        "item_text.html",
        "my_work.html",
        "team.html",
        "quality.html",
        "escalations.html",
        "adjudicate.html",
        "precedents.html",
        "escalation_rules.html",
        "releases.html",
        "dashboard.html",
        "feedback.html",
        "revision.html",
        "sql.html",
        "models.html",
        "_model_scores.html",
        "retest.html",
        "calibration.html",
        "calibration_round.html",
        "exposure.html",
        "pager.html",
    );
    env.add_filter("datetime", datetime);
    env.add_filter("duration", duration);
    env.add_filter("markdown", |text: String| {
        Value::from_safe_string(crate::markdown::render(&text))
    });
    env.add_filter("pretty", |value: Value| {
        serde_json::to_string_pretty(&value).unwrap_or_default()
    });
    env
}

/// A span of milliseconds for people: `45 s`, `12.5 min`, `3.2 h`.
fn duration(ms: i64) -> String {
    let seconds = ms as f64 / 1000.0;
    if seconds < 60.0 {
        format!("{seconds:.0} s")
    } else if seconds < 3600.0 {
        format!("{:.1} min", seconds / 60.0)
    } else {
        format!("{:.1} h", seconds / 3600.0)
    }
}

/// Milliseconds since the epoch as `YYYY-MM-DD HH:MM UTC`.
fn datetime(ms: Option<i64>) -> String {
    let Some(ms) = ms else { return String::new() };
    let secs = ms.div_euclid(1000);
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02} {:02}:{:02} UTC",
        rem / 3600,
        (rem % 3600) / 60
    )
}

/// Howard Hinnant's days-to-civil algorithm.
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const APP_CSS: &str = include_str!("../static/app.css");
const APP_JS: &str = include_str!("../static/app.js");
const LABEL_JS: &str = include_str!("../static/label.js");
const HTMX_JS: &str = include_str!("../static/vendor/htmx-2.0.11.min.js");

pub fn static_routes<S: Clone + Send + Sync + 'static>() -> Router<S> {
    fn asset(content_type: &'static str, body: &'static str) -> impl IntoResponse {
        (
            [
                (header::CONTENT_TYPE, content_type),
                (header::CACHE_CONTROL, "public, max-age=3600"),
            ],
            body,
        )
    }
    Router::new()
        .route(
            "/static/app.css",
            get(|| async { asset("text/css; charset=utf-8", APP_CSS) }),
        )
        .route(
            "/static/app.js",
            get(|| async { asset("text/javascript; charset=utf-8", APP_JS) }),
        )
        .route(
            "/static/label.js",
            get(|| async { asset("text/javascript; charset=utf-8", LABEL_JS) }),
        )
        .route(
            "/static/htmx.min.js",
            get(|| async { asset("text/javascript; charset=utf-8", HTMX_JS) }),
        )
        // Browsers ask for it on every page; a 404 would be a console error on each of them.
        .route(
            "/favicon.ico",
            get(|| async {
                (
                    axum::http::StatusCode::NO_CONTENT,
                    [(header::CACHE_CONTROL, "public, max-age=86400")],
                )
            }),
        )
}

#[cfg(test)]
mod tests {
    #[test]
    fn every_template_parses() {
        let env = super::environment();
        assert!(env.templates().count() >= 15);
    }

    #[test]
    fn durations_read_in_the_largest_sensible_unit() {
        assert_eq!(super::duration(4_400), "4 s");
        assert_eq!(super::duration(750_000), "12.5 min");
        assert_eq!(super::duration(11_520_000), "3.2 h");
    }

    #[test]
    fn dates_render_in_utc() {
        assert_eq!(super::datetime(Some(0)), "1970-01-01 00:00 UTC");
        assert_eq!(
            super::datetime(Some(1_795_392_000_000)),
            "2026-11-23 00:00 UTC"
        );
    }
}
