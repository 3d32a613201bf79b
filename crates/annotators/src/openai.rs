//! An OpenAI-compatible chat-completions client (OpenAI, vLLM, llama.cpp server, Ollama's
//! OpenAI endpoint): `POST {base}/chat/completions`, with a concurrency limit, a rate limit,
//! and retries with back-off for timeouts, 429 (honouring `Retry-After`), 5xx and dropped
//! connections. The API key comes from the environment and is never stored or logged.

use serde_json::{Value, json};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;
use tokio::sync::{Mutex, Semaphore};
use tokio::time::Instant;

/// No `Debug`: it holds the API key, which must never reach a log.
#[derive(Clone)]
pub struct ClientOptions {
    pub base_url: String,
    pub model: String,
    pub api_key: Option<String>,
    pub temperature: f64,
    pub timeout: Duration,
    pub max_concurrency: usize,
    pub rate_per_minute: Option<u32>,
    /// Attempts per call for transient errors (timeouts, 429, 5xx, connection errors).
    pub max_attempts: u32,
    /// The first back-off; each retry doubles it (capped at 30 s).
    pub backoff: Duration,
}

/// A call that did not give an answer to read.
#[derive(Debug, thiserror::Error)]
pub enum CallError {
    /// The server kept failing (or timing out) through every attempt.
    #[error("the model server failed {attempts} times; last: {last}")]
    Unavailable { attempts: u32, last: String },
    /// The server refused the request (4xx other than 429): retrying will not help.
    #[error("the model server refused the request ({status}): {body}")]
    Refused { status: u16, body: String },
}

/// One completion: the text, what the server says it is, and what it cost.
#[derive(Debug, Clone)]
pub struct Completion {
    pub content: String,
    pub model_version: String,
    pub prompt_tokens: i64,
    pub completion_tokens: i64,
}

pub struct ChatClient {
    http: reqwest::Client,
    options: ClientOptions,
    slots: Semaphore,
    next_start: Mutex<Instant>,
    /// Set when the server refused `response_format`: later calls go without it.
    plain_json: AtomicBool,
}

impl ChatClient {
    pub fn new(options: ClientOptions) -> Result<Arc<ChatClient>, String> {
        let http = reqwest::Client::builder()
            .timeout(options.timeout)
            .pool_max_idle_per_host(options.max_concurrency.max(1))
            .build()
            .map_err(|e| format!("cannot build the HTTP client: {e}"))?;
        Ok(Arc::new(ChatClient {
            http,
            slots: Semaphore::new(options.max_concurrency.max(1)),
            next_start: Mutex::new(Instant::now()),
            plain_json: AtomicBool::new(false),
            options,
        }))
    }

    fn url(&self) -> String {
        format!(
            "{}/chat/completions",
            self.options.base_url.trim_end_matches('/')
        )
    }

    /// Waits for the rate limit's next start time.
    async fn pace(&self) {
        let Some(rate) = self.options.rate_per_minute.filter(|r| *r > 0) else {
            return;
        };
        let interval = Duration::from_secs(60) / rate;
        let start = {
            let mut next = self.next_start.lock().await;
            let start = (*next).max(Instant::now());
            *next = start + interval;
            start
        };
        tokio::time::sleep_until(start).await;
    }

    /// Asks for a completion of `system` + `user`, retrying transient failures.
    pub async fn complete(
        &self,
        system: &str,
        user: &str,
        answer_schema: &Value,
    ) -> Result<Completion, CallError> {
        let _slot = self
            .slots
            .acquire()
            .await
            .map_err(|_| CallError::Unavailable {
                attempts: 0,
                last: "the client was closed".into(),
            })?;
        let mut backoff = self.options.backoff;
        let mut last = String::new();
        let attempts = self.options.max_attempts.max(1);
        for attempt in 1..=attempts {
            self.pace().await;
            let with_schema = !self.plain_json.load(Ordering::Relaxed);
            let mut body = json!({
                "model": self.options.model,
                "temperature": self.options.temperature,
                "messages": [
                    {"role": "system", "content": system},
                    {"role": "user", "content": user},
                ],
            });
            body["response_format"] = if with_schema {
                json!({"type": "json_schema", "json_schema": {"name": "label", "strict": true, "schema": answer_schema}})
            } else {
                json!({"type": "json_object"})
            };
            let mut request = self.http.post(self.url()).json(&body);
            if let Some(key) = &self.options.api_key {
                request = request.bearer_auth(key);
            }
            let mut wait = backoff;
            match request.send().await {
                Err(e) => {
                    last = if e.is_timeout() {
                        format!("no answer within {:?}", self.options.timeout)
                    } else {
                        format!("connection error: {}", without_url(&e))
                    };
                }
                Ok(response) => {
                    let status = response.status();
                    let retry_after = response
                        .headers()
                        .get(reqwest::header::RETRY_AFTER)
                        .and_then(|v| v.to_str().ok())
                        .and_then(|v| v.trim().parse::<u64>().ok());
                    match response.text().await {
                        Err(e) => last = format!("reading the answer: {}", without_url(&e)),
                        Ok(text) if status.is_success() => return read_completion(&text),
                        Ok(_) if status.as_u16() == 429 => {
                            last = "429 too many requests".into();
                            if let Some(seconds) = retry_after {
                                wait = Duration::from_secs(seconds.min(120));
                            }
                        }
                        Ok(text) if status.is_server_error() => {
                            last = format!("{status}: {}", short(&text));
                        }
                        Ok(text)
                            if with_schema
                                && status.as_u16() == 400
                                && text.contains("response_format") =>
                        {
                            // A server without structured output: ask for plain JSON instead.
                            self.plain_json.store(true, Ordering::Relaxed);
                            last = format!("{status}: {}", short(&text));
                            continue;
                        }
                        Ok(text) => {
                            return Err(CallError::Refused {
                                status: status.as_u16(),
                                body: short(&text),
                            });
                        }
                    }
                }
            }
            if attempt < attempts {
                tracing::warn!(attempt, wait_ms = wait.as_millis() as u64, error = %last, "model call failed; retrying");
                tokio::time::sleep(wait).await;
                backoff = (backoff * 2).min(Duration::from_secs(30));
            }
        }
        Err(CallError::Unavailable { attempts, last })
    }
}

/// reqwest's errors name the URL; the key is never in it, but keep messages short.
fn without_url(e: &reqwest::Error) -> String {
    let mut text = e.to_string();
    if let Some(url) = e.url() {
        text = text.replace(url.as_str(), "the model server");
    }
    let mut source = std::error::Error::source(e);
    while let Some(inner) = source {
        text = format!("{text}: {inner}");
        source = inner.source();
    }
    text
}

fn short(text: &str) -> String {
    text.chars().take(300).collect()
}

/// The reply's content and usage. A 200 whose body is not a chat completion is an answer
/// that cannot be read: its text is returned as the content, so it is recorded and retried
/// like any other invalid answer.
fn read_completion(text: &str) -> Result<Completion, CallError> {
    let parsed: Value = serde_json::from_str(text).unwrap_or(Value::Null);
    let content = parsed
        .pointer("/choices/0/message/content")
        .and_then(Value::as_str)
        .map(str::to_owned)
        .unwrap_or_else(|| text.to_owned());
    let tokens = |name: &str| {
        parsed
            .pointer(&format!("/usage/{name}"))
            .and_then(Value::as_i64)
            .unwrap_or(0)
    };
    Ok(Completion {
        content,
        model_version: parsed
            .get("model")
            .and_then(Value::as_str)
            .unwrap_or_default()
            .to_owned(),
        prompt_tokens: tokens("prompt_tokens"),
        completion_tokens: tokens("completion_tokens"),
    })
}
