//! Automated annotators against a real store (SQLite file) and a tiny real HTTP server on
//! loopback that speaks the chat-completions protocol (the only test double).

use concord_annotators::rules::{RulesError, RulesModel};
use concord_annotators::{RunError, RunOptions, run_model};
use concord_formats::items::{ItemReader, RecordFormat};
use concord_store::ItemId;
use concord_store::ProjectId;
use concord_store::{
    Item, LabelSchema, ModelAnnotator, ModelKind, NewModelAnnotator, NewProject, OnConflict,
    PasswordCost, Project, Store, StoreOptions,
};
use serde_json::{Value, json};
use std::collections::VecDeque;
use std::sync::{Arc, Mutex};
use std::time::Duration;
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::TcpListener;

// ---------------------------------------------------------------- the loopback server

/// What the server does with one request.
#[derive(Clone, Debug)]
enum Reply {
    /// A completion whose content is this text.
    Content(String),
    /// An HTTP status with a body, and `Retry-After` seconds if given.
    Status(u16, Option<u64>),
    /// Answers after this long.
    Slow(Duration, String),
    /// Closes the connection without answering.
    Drop,
}

fn valid() -> Reply {
    Reply::Content(
        json!({"decision": "NOT_VIOLATING", "category": [], "severity": "S0",
               "rationale": "a plain track title", "confidence": 0.8})
        .to_string(),
    )
}

struct ChatServer {
    url: String,
    script: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<Value>>>,
    authorizations: Arc<Mutex<Vec<String>>>,
}

impl ChatServer {
    /// Replies from `script` in order, then `valid()` for every further request.
    async fn start(script: Vec<Reply>) -> ChatServer {
        let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
        let url = format!("http://{}/v1", listener.local_addr().unwrap());
        let script = Arc::new(Mutex::new(VecDeque::from(script)));
        let requests = Arc::new(Mutex::new(Vec::new()));
        let authorizations = Arc::new(Mutex::new(Vec::new()));
        let (s, r, a) = (script.clone(), requests.clone(), authorizations.clone());
        tokio::spawn(async move {
            loop {
                let Ok((socket, _)) = listener.accept().await else {
                    return;
                };
                let (s, r, a) = (s.clone(), r.clone(), a.clone());
                tokio::spawn(async move { serve_connection(socket, s, r, a).await });
            }
        });
        ChatServer {
            url,
            script,
            requests,
            authorizations,
        }
    }

    fn request_count(&self) -> usize {
        self.requests.lock().unwrap().len()
    }

    fn push(&self, reply: Reply) {
        self.script.lock().unwrap().push_back(reply);
    }
}

async fn serve_connection(
    mut socket: tokio::net::TcpStream,
    script: Arc<Mutex<VecDeque<Reply>>>,
    requests: Arc<Mutex<Vec<Value>>>,
    authorizations: Arc<Mutex<Vec<String>>>,
) {
    let mut buffer = Vec::new();
    loop {
        // One request: headers, then Content-Length bytes of body.
        let header_end = loop {
            if let Some(at) = buffer.windows(4).position(|w| w == b"\r\n\r\n") {
                break at + 4;
            }
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        };
        let head = String::from_utf8_lossy(&buffer[..header_end]).to_string();
        let header = |name: &str| {
            head.lines().find_map(|line| {
                let (k, v) = line.split_once(':')?;
                k.trim()
                    .eq_ignore_ascii_case(name)
                    .then(|| v.trim().to_owned())
            })
        };
        let length: usize = header("content-length")
            .and_then(|v| v.parse().ok())
            .unwrap_or(0);
        while buffer.len() < header_end + length {
            let mut chunk = [0u8; 8192];
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        let body: Value =
            serde_json::from_slice(&buffer[header_end..header_end + length]).unwrap_or(Value::Null);
        buffer.drain(..header_end + length);
        requests.lock().unwrap().push(body);
        if let Some(auth) = header("authorization") {
            authorizations.lock().unwrap().push(auth);
        }
        let reply = script.lock().unwrap().pop_front().unwrap_or_else(valid);
        let (status, extra, text) = match reply {
            Reply::Drop => return,
            Reply::Content(content) => (200, String::new(), completion(&content)),
            Reply::Slow(wait, content) => {
                tokio::time::sleep(wait).await;
                (200, String::new(), completion(&content))
            }
            Reply::Status(status, retry_after) => (
                status,
                retry_after.map_or(String::new(), |s| format!("Retry-After: {s}\r\n")),
                json!({"error": {"message": "try later"}}).to_string(),
            ),
        };
        let response = format!(
            "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\n{extra}Content-Length: {}\r\n\r\n{text}",
            text.len()
        );
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn completion(content: &str) -> String {
    json!({
        "id": "chatcmpl-1", "object": "chat.completion", "model": "tiny-model-2025-01",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content}, "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 1000, "completion_tokens": 100, "total_tokens": 1100}
    })
    .to_string()
}

// ---------------------------------------------------------------- a project in a real store

struct Fixture {
    store: Store,
    project: Project,
    _dir: tempfile::TempDir,
}

async fn project_with_tracks(count: usize) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut options = StoreOptions::new(
        dir.path().join("concord.db").to_string_lossy().to_string(),
        |correct, answered| concord_stats::sampling::wilson(correct, answered, 0.95).high,
    );
    options.password_cost = PasswordCost::Fast;
    let store = Store::open(options).await.unwrap();
    let project = store
        .create_project(
            NewProject {
                slug: "tracks".into(),
                name: "Tracks".into(),
                description: String::new(),
                schema: LabelSchema::catalog_safety(),
            },
            None,
        )
        .await
        .unwrap();
    let mut csv = String::from("id,item_type,title\n");
    for n in 1..=count {
        let title = if n % 3 == 0 {
            format!("I will kill you {n}")
        } else {
            format!("Song {n}")
        };
        csv += &format!("t{n:04},track,{title}\n");
    }
    let records: Vec<_> = ItemReader::new(
        "items.csv",
        csv.as_bytes(),
        RecordFormat::guess("items.csv"),
    )
    .unwrap()
    .collect::<Result<_, _>>()
    .unwrap();
    let mut import = store
        .begin_item_import(project.id, "items.csv")
        .await
        .unwrap();
    import.stage(records).await.unwrap();
    import.publish(OnConflict::Error, None).await.unwrap();
    let project = store.project("tracks").await.unwrap();
    Fixture {
        store,
        project,
        _dir: dir,
    }
}

async fn chat_model(f: &Fixture, url: &str, timeout_ms: i64) -> ModelAnnotator {
    let mut new = NewModelAnnotator::new("tiny", ModelKind::OpenAi);
    new.base_url = url.to_owned();
    new.model = "tiny-model".into();
    new.max_concurrency = 4;
    new.timeout_ms = timeout_ms;
    new.price_in_per_1k = 0.01;
    new.price_out_per_1k = 0.03;
    f.store
        .create_model_annotator(&f.project, new, None)
        .await
        .unwrap()
}

fn quick() -> RunOptions {
    RunOptions {
        max_attempts: 5,
        backoff: Duration::from_millis(20),
        ..RunOptions::default()
    }
}

async fn model_labels(f: &Fixture, model: &ModelAnnotator) -> Vec<(ItemId, Value)> {
    let mut out = Vec::new();
    for item in all_items(f).await {
        for a in f.store.item_annotations(item.id).await.unwrap() {
            if a.annotator_id == model.user_id {
                out.push((item.id, a.answer));
            }
        }
    }
    out
}

async fn all_items(f: &Fixture) -> Vec<Item> {
    let filter = concord_store::ItemFilter {
        limit: 500,
        ..Default::default()
    };
    f.store
        .items_page(f.project.id, &filter)
        .await
        .unwrap()
        .items
}

// ---------------------------------------------------------------- the client and the run

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn valid_answers_become_labels_with_what_they_were_made_with() {
    let f = project_with_tracks(6).await;
    let server = ChatServer::start(Vec::new()).await;
    let model = chat_model(&f, &server.url, 5_000).await;
    let run = run_model(&f.store, &model, quick()).await.unwrap();
    assert_eq!(run.counts.labelled, 6);
    assert_eq!(run.counts.failures, 0);
    assert_eq!(run.counts.prompt_tokens, 6_000);
    assert_eq!(run.counts.completion_tokens, 600);
    assert!(
        (run.counts.cost - 6.0 * (0.01 + 0.003)).abs() < 1e-9,
        "{}",
        run.counts.cost
    );
    let labels = model_labels(&f, &model).await;
    assert_eq!(labels.len(), 6, "one label per item, none twice");
    // A copy, so that no lock is held across the awaits below.
    let request = server.requests.lock().unwrap()[0].clone();
    assert_eq!(request["model"], "tiny-model");
    assert_eq!(request["response_format"]["type"], "json_schema");
    let system = request["messages"][0]["content"].as_str().unwrap();
    assert!(
        system.contains("DG.HATE") && system.contains("severity"),
        "{system}"
    );
    let annotation = f.store.item_annotations(labels[0].0).await.unwrap()[0].clone();
    let made_with = f
        .store
        .model_label(annotation.id)
        .await
        .unwrap()
        .unwrap()
        .provenance;
    assert_eq!(made_with.model, "tiny-model");
    assert_eq!(made_with.model_version, "tiny-model-2025-01");
    assert_eq!(made_with.confidence, Some(0.8));
    assert_eq!(made_with.prompt_digest.len(), 16);
    assert_eq!(annotation.rationale, "a plain track title");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_invalid_answer_is_asked_again_once_then_recorded_and_never_a_label() {
    let f = project_with_tracks(2).await;
    let outside =
        json!({"decision": "MAYBE", "severity": "S0", "rationale": "", "confidence": 0.5})
            .to_string();
    // Item 1: invalid JSON then a label outside the schema → a failure. Item 2: invalid
    // JSON, then a valid answer → a label.
    let server = ChatServer::start(vec![
        Reply::Content("this is not json".into()),
        Reply::Content(outside.clone()),
        Reply::Content("{\"decision\": ".into()),
        valid(),
    ])
    .await;
    let mut model = chat_model(&f, &server.url, 5_000).await;
    // One call at a time, so the script's order is the items' order.
    model.max_concurrency = 1;
    let run = run_model(&f.store, &model, quick()).await.unwrap();
    assert_eq!((run.counts.labelled, run.counts.failures), (1, 1));
    assert_eq!(server.request_count(), 4);
    let failures = f.store.model_failures(run.id).await.unwrap();
    assert_eq!(failures.len(), 1);
    assert_eq!(failures[0].raw_answer, outside);
    assert!(
        failures[0].reason.contains("MAYBE"),
        "{}",
        failures[0].reason
    );
    let labels = model_labels(&f, &model).await;
    assert_eq!(labels.len(), 1);
    assert_ne!(labels[0].0, failures[0].item_id);
    let again = run_model(&f.store, &model, quick()).await.unwrap();
    assert_eq!(
        again.counts.labelled + again.counts.failures,
        0,
        "a failed item is not retried by the queue"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn rate_limits_server_errors_and_dropped_connections_are_retried() {
    let f = project_with_tracks(3).await;
    let server = ChatServer::start(vec![
        Reply::Status(429, Some(0)),
        Reply::Status(500, None),
        Reply::Drop,
        Reply::Status(503, None),
    ])
    .await;
    let mut model = chat_model(&f, &server.url, 5_000).await;
    model.max_concurrency = 1;
    let run = run_model(&f.store, &model, quick()).await.unwrap();
    assert_eq!((run.counts.labelled, run.counts.failures), (3, 0));
    assert_eq!(server.request_count(), 3 + 4);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_slow_answer_past_the_timeout_is_retried() {
    let f = project_with_tracks(1).await;
    let server = ChatServer::start(vec![Reply::Slow(
        Duration::from_millis(1_500),
        "late".into(),
    )])
    .await;
    let model = chat_model(&f, &server.url, 300).await;
    let run = run_model(&f.store, &model, quick()).await.unwrap();
    assert_eq!((run.counts.labelled, run.counts.failures), (1, 0));
    assert_eq!(server.request_count(), 2);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_stopped_run_resumes_where_it_stopped_and_the_cache_makes_a_rerun_free() {
    let f = project_with_tracks(5).await;
    // The server fails every attempt for a while: the run stops with an error, and the
    // items it labelled before stay labelled.
    let server = ChatServer::start(Vec::new()).await;
    let mut model = chat_model(&f, &server.url, 5_000).await;
    model.max_concurrency = 1;
    let first = run_model(
        &f.store,
        &model,
        RunOptions {
            limit: Some(2),
            ..quick()
        },
    )
    .await
    .unwrap();
    assert_eq!(first.counts.labelled, 2);
    for _ in 0..5 {
        server.push(Reply::Status(500, None));
    }
    let stopped = run_model(&f.store, &model, quick()).await.unwrap_err();
    assert!(matches!(stopped, RunError::Call { .. }), "{stopped}");
    assert_eq!(
        model_labels(&f, &model).await.len(),
        2,
        "nothing lost, nothing invalid stored"
    );
    let resumed = run_model(&f.store, &model, quick()).await.unwrap();
    assert_eq!(resumed.counts.labelled, 3, "the rest, and only the rest");
    let labels = model_labels(&f, &model).await;
    assert_eq!(labels.len(), 5);
    let calls = server.request_count();

    // A second model with the same model name and prompt on the same items: every answer
    // comes from the cache, at no cost.
    let mut twin = NewModelAnnotator::new("twin", ModelKind::OpenAi);
    twin.base_url = server.url.clone();
    twin.model = "tiny-model".into();
    twin.price_in_per_1k = 0.01;
    let twin = f
        .store
        .create_model_annotator(&f.project, twin, None)
        .await
        .unwrap();
    let rerun = run_model(&f.store, &twin, quick()).await.unwrap();
    assert_eq!(rerun.counts.labelled, 5);
    assert_eq!(rerun.counts.cached, 5);
    assert_eq!(rerun.counts.cost, 0.0);
    assert_eq!(server.request_count(), calls, "no call was made");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_key_comes_from_the_environment_and_a_missing_one_is_named() {
    let f = project_with_tracks(1).await;
    let server = ChatServer::start(Vec::new()).await;
    let mut new = NewModelAnnotator::new("keyed", ModelKind::OpenAi);
    new.base_url = server.url.clone();
    new.model = "tiny-model".into();
    new.api_key_env = "CONCORD_ANNOTATORS_TEST_KEY_UNSET".into();
    let model = f
        .store
        .create_model_annotator(&f.project, new, None)
        .await
        .unwrap();
    let err = run_model(&f.store, &model, quick()).await.unwrap_err();
    assert!(
        err.to_string()
            .contains("CONCORD_ANNOTATORS_TEST_KEY_UNSET"),
        "{err}"
    );
    assert_eq!(server.request_count(), 0);

    let mut new = NewModelAnnotator::new("keyed2", ModelKind::OpenAi);
    new.base_url = server.url.clone();
    new.model = "tiny-model".into();
    new.api_key_env = "PATH".into();
    let model = f
        .store
        .create_model_annotator(&f.project, new, None)
        .await
        .unwrap();
    run_model(&f.store, &model, quick()).await.unwrap();
    let path = std::env::var("PATH").unwrap();
    assert_eq!(
        server.authorizations.lock().unwrap()[0],
        format!("Bearer {path}")
    );
    let stored = serde_json::to_string(
        &f.store
            .model_annotator(f.project.id, "keyed2")
            .await
            .unwrap(),
    )
    .unwrap();
    assert!(!stored.contains(&path), "the key is never stored");
}

// ---------------------------------------------------------------- the rules model

const RULES: &str = r#"{
  "default": {"decision": "NOT_VIOLATING", "category": [], "severity": "S0"},
  "rules": [
    {"name": "threats", "keywords": ["kill you"],
     "answer": {"decision": "VIOLATING", "category": ["DG.VIOL"], "severity": "S3"}},
    {"name": "hate", "patterns": ["(?i)\\bvermin\\b"], "fields": ["title"],
     "answer": {"decision": "VIOLATING", "category": ["DG.HATE"], "severity": "S4"}},
    {"name": "explicit", "keywords": ["explicit"],
     "answer": {"decision": "BORDERLINE", "category": ["ADV.EXPL"], "severity": "S1"}}
  ]
}"#;

fn item(title: &str, text: Value) -> Item {
    Item {
        id: ItemId(1),
        project_id: ProjectId(1),
        external_id: "x".into(),
        item_type: "track".into(),
        title: title.into(),
        creators: json!(["Someone"]),
        metadata: json!({}),
        text,
        media_url: None,
        priority: 0,
        state: concord_store::ItemState::Queued,
        is_gold: false,
        gold_answer: None,
        created_at: 0,
        updated_at: 0,
    }
}

#[test]
fn a_rule_matches_whole_words_case_insensitively_in_any_text_field() {
    let rules = RulesModel::parse(RULES, &LabelSchema::catalog_safety()).unwrap();
    let hit = rules.label(&item(
        "Song",
        json!({"lyrics": "and then I'll KILL YOU tonight"}),
    ));
    assert_eq!(hit.matched, ["threats"]);
    assert_eq!(
        hit.answer,
        json!({"decision": "VIOLATING", "category": ["DG.VIOL"], "severity": "S3"})
    );
    let miss = rules.label(&item("Skill Yourself Up", json!({"lyrics": "skill you"})));
    assert!(miss.matched.is_empty());
    assert_eq!(
        miss.answer,
        json!({"decision": "NOT_VIOLATING", "category": [], "severity": "S0"})
    );
}

#[test]
fn matching_rules_combine_by_question_kind_and_fields_restrict_a_rule() {
    let rules = RulesModel::parse(RULES, &LabelSchema::catalog_safety()).unwrap();
    let both = rules.label(&item("Vermin", json!({"lyrics": "explicit; kill you"})));
    assert_eq!(both.matched, ["threats", "hate", "explicit"]);
    assert_eq!(
        both.answer,
        json!({"decision": "VIOLATING", "category": ["DG.VIOL", "DG.HATE", "ADV.EXPL"], "severity": "S4"}),
        "first decision, union of categories, highest severity"
    );
    let lyrics_only = rules.label(&item("Song", json!({"lyrics": "vermin"})));
    assert!(
        lyrics_only.matched.is_empty(),
        "the hate rule reads the title only"
    );
}

#[test]
fn a_bad_rules_file_is_refused_naming_the_problem() {
    let schema = LabelSchema::catalog_safety();
    let not_json = RulesModel::parse("{\n  \"rules\": [", &schema)
        .err()
        .unwrap();
    assert!(
        matches!(&not_json, RulesError::Syntax(m) if m.contains("line 2")),
        "{not_json}"
    );
    let unknown_code = RULES.replace("DG.VIOL", "DG.NOPE");
    let err = RulesModel::parse(&unknown_code, &schema).err().unwrap();
    assert!(
        matches!(&err, RulesError::Rule { rule, reason } if rule == "threats" && reason.contains("DG.NOPE")),
        "{err}"
    );
    let bad_pattern = RULES.replace("(?i)\\\\bvermin\\\\b", "(unclosed");
    let err = RulesModel::parse(&bad_pattern, &schema).err().unwrap();
    assert!(
        matches!(&err, RulesError::Rule { rule, .. } if rule == "hate"),
        "{err}"
    );
    let no_default = RULES.replace("\"severity\": \"S0\"", "\"severity\": \"S9\"");
    assert!(matches!(
        RulesModel::parse(&no_default, &schema),
        Err(RulesError::Default(_))
    ));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_rules_model_labels_the_whole_queue_once() {
    let f = project_with_tracks(9).await;
    let mut new = NewModelAnnotator::new("baseline", ModelKind::Rules);
    new.rules = RULES.into();
    let model = f
        .store
        .create_model_annotator(&f.project, new, None)
        .await
        .unwrap();
    let run = run_model(&f.store, &model, RunOptions::default())
        .await
        .unwrap();
    assert_eq!((run.counts.labelled, run.counts.failures), (9, 0));
    let labels = model_labels(&f, &model).await;
    let violating = labels
        .iter()
        .filter(|(_, a)| a["decision"] == "VIOLATING")
        .count();
    assert_eq!(violating, 3, "every third title is a threat");
    let again = run_model(&f.store, &model, RunOptions::default())
        .await
        .unwrap();
    assert_eq!(again.counts.labelled, 0);
}

// ---------------------------------------------------------------- https

/// A loopback server that answers a TLS hello with plain HTTP and hangs up.
async fn plain_http_server() -> String {
    let listener = TcpListener::bind("127.0.0.1:0").await.unwrap();
    let address = listener.local_addr().unwrap();
    tokio::spawn(async move {
        while let Ok((mut socket, _)) = listener.accept().await {
            let mut hello = [0u8; 512];
            let _ = socket.read(&mut hello).await;
            let _ = socket
                .write_all(b"HTTP/1.1 400 Bad Request\r\nContent-Length: 0\r\n\r\n")
                .await;
        }
    });
    format!("https://{address}/v1")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_https_endpoint_is_attempted_over_tls() {
    use concord_annotators::openai::{CallError, ChatClient, ClientOptions};
    let url = plain_http_server().await;
    let client = ChatClient::new(ClientOptions {
        base_url: url,
        model: "tiny-model".into(),
        api_key: None,
        temperature: 0.0,
        timeout: Duration::from_secs(5),
        max_concurrency: 1,
        rate_per_minute: None,
        max_attempts: 1,
        backoff: Duration::from_millis(10),
    })
    .unwrap();
    let error = client
        .complete("system", "user", &json!({"type": "object"}))
        .await
        .expect_err("a server that does not speak TLS gives no answer");
    let CallError::Unavailable { last, .. } = error else {
        panic!("expected a connection failure, got {error}");
    };
    // Without TLS in the client, reqwest refuses the URL before connecting ("scheme is not
    // http" / a builder error); with it, the handshake is tried and fails on this server.
    assert!(last.starts_with("connection error"), "{last}");
    let lower = last.to_lowercase();
    assert!(
        !lower.contains("scheme") && !lower.contains("builder"),
        "{last}"
    );
    assert!(
        lower.contains("tls")
            || lower.contains("corrupt")
            || lower.contains("handshake")
            || lower.contains("message"),
        "the failure is the TLS handshake's: {last}"
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn lanes_working_at_once_label_each_item_once_and_keep_to_the_limit() {
    let f = project_with_tracks(30).await;
    let server = ChatServer::start(Vec::new()).await;
    let mut model = chat_model(&f, &server.url, 5_000).await;
    model.max_concurrency = 6;
    let part = run_model(
        &f.store,
        &model,
        RunOptions {
            limit: Some(7),
            ..quick()
        },
    )
    .await
    .unwrap();
    assert_eq!(
        part.counts.labelled, 7,
        "six lanes, and still exactly the limit"
    );
    let account = f.store.user_by_id(model.user_id).await.unwrap();
    assert!(
        f.store
            .held_leases(&f.project, &account)
            .await
            .unwrap()
            .is_empty(),
        "a run that stops at its limit leaves no lease behind"
    );
    let rest = run_model(&f.store, &model, quick()).await.unwrap();
    assert_eq!(rest.counts.labelled, 23);
    let labels = model_labels(&f, &model).await;
    let items: std::collections::HashSet<ItemId> = labels.iter().map(|(item, _)| *item).collect();
    assert_eq!((labels.len(), items.len()), (30, 30), "every item once");
    assert_eq!(server.request_count(), 30, "no call twice");
}
