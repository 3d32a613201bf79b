//! Two `concord serve` processes on one database (a SQLite file; a PostgreSQL schema): the
//! overlap holds across processes, so it rests on the database, not on a lock inside a server.

use std::io::{BufRead, BufReader};
use std::process::{Child, Command, Stdio};
use std::sync::Arc;

use concord_store::{LabelSchema, NewProject, NewUser, PasswordCost, Role, Store, StoreOptions};
use serde_json::Value;

use crate::support::skip_unless_required;

struct Server {
    child: Child,
    url: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(url: &str, schema: Option<&str>) -> Server {
    let mut command = Command::new(env!("CARGO_BIN_EXE_concord"));
    command.args(["serve", "--listen", "127.0.0.1:0", "--database-url", url]);
    if let Some(schema) = schema {
        command.args(["--database-schema", schema]);
    }
    let mut child = command
        .env("RUST_LOG", "warn")
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("concord serve starts");
    let mut line = String::new();
    BufReader::new(child.stdout.take().unwrap())
        .read_line(&mut line)
        .unwrap();
    let url = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("concord serve said {line:?}"))
        .trim_end_matches('/')
        .to_owned();
    Server { child, url }
}

#[test]
fn sixty_four_annotators_on_two_server_processes_on_one_sqlite_file_never_exceed_the_overlap() {
    let dir = tempfile::tempdir().unwrap();
    let file = dir.path().join("race.db");
    race(file.to_str().unwrap(), None);
}

#[test]
fn sixty_four_annotators_on_two_server_processes_on_postgresql_never_exceed_the_overlap() {
    let Ok(url) = std::env::var("CONCORD_TEST_POSTGRES_URL") else {
        skip_unless_required(
            "two server processes on PostgreSQL",
            "set CONCORD_TEST_POSTGRES_URL",
        );
        return;
    };
    let schema = format!("cli_two_servers_{}", std::process::id());
    race(&url, Some(&schema));
}

/// 20 items × overlap 2 = 40 slots; 64 annotators, alternating between two server
/// processes, ask for work at once behind a barrier.
fn race(url: &str, schema: Option<&str>) {
    let runtime = tokio::runtime::Runtime::new().unwrap();
    let mut options = StoreOptions::new(url, concord_qa::gold_accuracy_upper_bound);
    options.pg_schema = schema.map(str::to_owned);
    options.password_cost = PasswordCost::Fast;
    let store = runtime.block_on(Store::open(options)).unwrap();

    let (project_id, tokens) = runtime.block_on(async {
        let project = store
            .create_project(
                NewProject {
                    slug: "race".into(),
                    name: "Race".into(),
                    description: String::new(),
                    schema: LabelSchema::catalog_safety(),
                },
                None,
            )
            .await
            .unwrap();
        store
            .update_project(
                project.id,
                "Race",
                "",
                serde_json::json!({"queue": {"overlap": 2}}),
                None,
            )
            .await
            .unwrap();
        let items: String = (0..20)
            .map(|i| {
                format!("{{\"id\":\"t{i}\",\"item_type\":\"track\",\"title\":\"Track {i}\"}}\n")
            })
            .collect();
        concord_store::import_file(
            &store,
            project.id,
            concord_store::ImportKind::Items,
            "items.jsonl",
            std::io::Cursor::new(items.into_bytes()),
            concord_formats::items::RecordFormat::Jsonl,
            concord_store::OnConflict::Error,
            None,
            |_| {},
        )
        .await
        .unwrap();
        let mut tokens = Vec::new();
        for n in 0..64 {
            let name = format!("racer{n:02}");
            let user = store
                .create_user(
                    NewUser {
                        username: name.clone(),
                        display_name: None,
                        password: None,
                        is_admin: false,
                        kind: concord_store::AccountKind::Human,
                    },
                    None,
                )
                .await
                .unwrap();
            store
                .set_member(project.id, &name, Role::Annotator, None)
                .await
                .unwrap();
            tokens.push(store.create_api_token(user.id, "race").await.unwrap().0);
        }
        (project.id, tokens)
    });

    let servers = [serve(url, schema), serve(url, schema)];
    let bases: Vec<String> = servers
        .iter()
        .map(|s| format!("{}/api/v1/projects/race/queue/next", s.url))
        .collect();
    let served: Vec<(usize, Value)> = runtime.block_on(async {
        let client = reqwest::Client::new();
        let barrier = Arc::new(tokio::sync::Barrier::new(tokens.len()));
        let mut tasks = Vec::new();
        for (n, token) in tokens.into_iter().enumerate() {
            let (client, barrier) = (client.clone(), barrier.clone());
            // Alternate the annotators between the two processes.
            let url = bases[n % 2].clone();
            tasks.push(tokio::spawn(async move {
                barrier.wait().await;
                let response = client.post(url).bearer_auth(token).send().await.unwrap();
                assert!(response.status().is_success(), "{}", response.status());
                (n % 2, response.json::<Value>().await.unwrap())
            }));
        }
        let mut served = Vec::new();
        for task in tasks {
            served.push(task.await.unwrap());
        }
        served
    });
    drop(servers);

    let mut per_item = std::collections::HashMap::<i64, usize>::new();
    let mut by_server = [0, 0];
    for (server, body) in &served {
        if body["status"] == "leased" {
            *per_item
                .entry(body["item"]["id"].as_i64().unwrap())
                .or_default() += 1;
            by_server[*server] += 1;
        } else {
            assert_eq!(body["status"], "empty", "{body}");
        }
    }
    let integrity = runtime.block_on(store.queue_integrity(project_id)).unwrap();
    if let Some(schema) = schema {
        runtime.block_on(store.drop_schema(schema)).unwrap();
    }
    assert!(
        per_item.values().all(|&n| n <= 2),
        "an item went past its overlap: {per_item:?}"
    );
    assert_eq!(
        per_item.values().sum::<usize>(),
        40,
        "every one of the 40 slots is taken"
    );
    assert!(
        by_server.iter().all(|&n| n > 0),
        "both processes served work: {by_server:?}"
    );
    assert_eq!(integrity.items_over_overlap, 0, "the database agrees");
}
