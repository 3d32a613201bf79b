//! `concord-model-bench`: automated-annotator throughput. A loopback chat-completions server
//! that answers every request at once with a valid label stands in for the model, so what
//! is measured is concord's side: the OpenAI-compatible client alone (calls per second), and
//! a whole model run over a project's queue (leases, prompt, call, validation, submit, call
//! cache) in labels per second, at several request concurrencies.
//!
//! ```text
//! concord-model-bench [--items 5000] [--concurrency 1,8,32] [--smoke]
//! ```
//!
//! Each level runs on a fresh SQLite project, so no answer comes from the call cache.

use anyhow::{Context, Result, bail};
use clap::Parser;
use concord_annotators::openai::{ChatClient, ClientOptions};
use concord_annotators::{RunOptions, run_model};
use concord_store::{
    ImportKind, LabelSchema, ModelKind, NewModelAnnotator, NewProject, OnConflict, PasswordCost,
    Store, StoreOptions, import_file,
};
use serde_json::json;
use std::sync::Arc;
use std::sync::atomic::{AtomicU64, Ordering};
use std::time::{Duration, Instant};
use tokio::io::{AsyncReadExt, AsyncWriteExt};
use tokio::net::{TcpListener, TcpStream};

#[derive(Parser)]
#[command(about = "Benchmark automated annotators against an instant loopback model server")]
struct Args {
    /// Items in each run's project.
    #[arg(long, default_value_t = 5_000)]
    items: usize,
    /// Concurrent requests to the model server (the model's max_concurrency), one run each.
    #[arg(long, default_value = "1,8,32")]
    concurrency: String,
    /// Tiny sizes, for CI: proves the benchmark still runs and every item gets its label.
    #[arg(long)]
    smoke: bool,
}

/// The answer the instant server gives: valid under the catalog-safety schema.
fn completion_body() -> String {
    let content = json!({"decision": "NOT_VIOLATING", "category": [], "severity": "S0",
                         "rationale": "a plain catalog entry", "confidence": 0.9})
    .to_string();
    json!({
        "id": "chatcmpl-bench", "object": "chat.completion", "model": "instant-model",
        "choices": [{"index": 0, "message": {"role": "assistant", "content": content},
                     "finish_reason": "stop"}],
        "usage": {"prompt_tokens": 800, "completion_tokens": 40, "total_tokens": 840}
    })
    .to_string()
}

/// Serves chat completions on loopback, instantly; returns its base URL and request counter.
async fn instant_server() -> Result<(String, Arc<AtomicU64>)> {
    let listener = TcpListener::bind("127.0.0.1:0").await?;
    let url = format!("http://{}/v1", listener.local_addr()?);
    let served = Arc::new(AtomicU64::new(0));
    let counter = served.clone();
    let response = Arc::new({
        let body = completion_body();
        format!(
            "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nContent-Length: {}\r\n\r\n{body}",
            body.len()
        )
    });
    tokio::spawn(async move {
        while let Ok((socket, _)) = listener.accept().await {
            let (counter, response) = (counter.clone(), response.clone());
            tokio::spawn(async move { serve_connection(socket, &counter, &response).await });
        }
    });
    Ok((url, served))
}

/// Answers each request of a keep-alive connection (headers, then Content-Length bytes).
async fn serve_connection(mut socket: TcpStream, served: &AtomicU64, response: &str) {
    let _ = socket.set_nodelay(true);
    let mut buffer: Vec<u8> = Vec::with_capacity(16 * 1024);
    let mut chunk = vec![0u8; 16 * 1024];
    loop {
        let Some(header_end) = buffer.windows(4).position(|w| w == b"\r\n\r\n") else {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
            continue;
        };
        let length = content_length(&buffer[..header_end]);
        let end = header_end + 4 + length;
        while buffer.len() < end {
            match socket.read(&mut chunk).await {
                Ok(0) | Err(_) => return,
                Ok(n) => buffer.extend_from_slice(&chunk[..n]),
            }
        }
        buffer.drain(..end);
        served.fetch_add(1, Ordering::Relaxed);
        if socket.write_all(response.as_bytes()).await.is_err() {
            return;
        }
    }
}

fn content_length(head: &[u8]) -> usize {
    String::from_utf8_lossy(head)
        .lines()
        .find_map(|line| {
            let (name, value) = line.split_once(':')?;
            name.trim()
                .eq_ignore_ascii_case("content-length")
                .then(|| value.trim().parse().ok())?
        })
        .unwrap_or(0)
}

/// Generated catalog items, one JSON object per line.
fn items_jsonl(n: usize) -> Vec<u8> {
    let mut out = Vec::with_capacity(n * 160);
    for i in 0..n {
        let line = json!({
            "id": format!("bench-{i:07}"),
            "item_type": "track",
            "title": format!("Benchmark item {i}"),
            "creators": [{"name": format!("Artist {}", i % 997), "role": "artist"}],
            "text": {"description": "A generated item for the model benchmark."},
        });
        out.extend_from_slice(line.to_string().as_bytes());
        out.push(b'\n');
    }
    out
}

/// The client alone: `calls` completions at `concurrency`, calls per second.
async fn client_rate(url: &str, concurrency: usize, calls: usize) -> Result<f64> {
    let client = ChatClient::new(ClientOptions {
        base_url: url.to_owned(),
        model: "instant-model".into(),
        api_key: None,
        temperature: 0.0,
        timeout: Duration::from_secs(30),
        max_concurrency: concurrency,
        rate_per_minute: None,
        max_attempts: 1,
        backoff: Duration::from_millis(10),
    })
    .map_err(anyhow::Error::msg)?;
    let schema = json!({"type": "object"});
    let started = Instant::now();
    let mut tasks = tokio::task::JoinSet::new();
    for worker in 0..concurrency {
        let (client, schema) = (client.clone(), schema.clone());
        let share = calls / concurrency + usize::from(worker < calls % concurrency);
        tasks.spawn(async move {
            for _ in 0..share {
                client
                    .complete("You label catalog items.", "Benchmark item", &schema)
                    .await?;
            }
            Ok::<_, concord_annotators::openai::CallError>(())
        });
    }
    while let Some(done) = tasks.join_next().await {
        done.context("a client task panicked")?
            .context("a call failed")?;
    }
    Ok(calls as f64 / started.elapsed().as_secs_f64())
}

/// What one whole model run did.
struct RunFigures {
    labelled: i64,
    failures: i64,
    requests: u64,
    per_second: f64,
}

/// A fresh project of `items` items, a model at `concurrency`, one run over the queue.
async fn model_run(
    url: &str,
    served: &AtomicU64,
    items: usize,
    concurrency: usize,
) -> Result<RunFigures> {
    let dir = tempfile::tempdir()?;
    let mut options = StoreOptions::new(
        dir.path().join("model-bench.db").to_string_lossy(),
        concord_qa::gold_accuracy_upper_bound,
    );
    options.password_cost = PasswordCost::Fast;
    let store = Store::open(options).await?;
    let project = store
        .create_project(
            NewProject {
                slug: "model-bench".into(),
                name: "Model benchmark".into(),
                description: String::new(),
                schema: LabelSchema::catalog_safety(),
            },
            None,
        )
        .await?;
    import_file(
        &store,
        project.id,
        ImportKind::Items,
        "bench-items.jsonl",
        std::io::Cursor::new(items_jsonl(items)),
        concord_formats::items::RecordFormat::Jsonl,
        OnConflict::Error,
        None,
        |_| {},
    )
    .await
    .context("importing the benchmark items")?;
    let mut new = NewModelAnnotator::new("instant", ModelKind::OpenAi);
    new.base_url = url.to_owned();
    new.model = "instant-model".into();
    new.max_concurrency = concurrency as i64;
    let project = store.project("model-bench").await?;
    let model = store.create_model_annotator(&project, new, None).await?;
    let before = served.load(Ordering::Relaxed);
    let started = Instant::now();
    let run = run_model(&store, &model, RunOptions::default()).await?;
    let seconds = started.elapsed().as_secs_f64();
    Ok(RunFigures {
        labelled: run.counts.labelled,
        failures: run.counts.failures,
        requests: served.load(Ordering::Relaxed) - before,
        per_second: run.counts.labelled as f64 / seconds,
    })
}

fn main() -> Result<()> {
    let mut args = Args::parse();
    if args.smoke {
        args.items = 40;
        args.concurrency = "1,8".into();
    }
    let levels: Vec<usize> = args
        .concurrency
        .split(',')
        .map(|s| s.trim().parse().context("--concurrency takes numbers"))
        .collect::<Result<_>>()?;
    if levels.iter().any(|&c| !(1..=256).contains(&c)) {
        bail!("--concurrency levels must be 1 to 256");
    }
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()?;
    let lines = runtime.block_on(async {
        let (url, served) = instant_server().await?;
        let mut lines = vec![
            format!(
                "Model benchmark: {} items per run, an instant loopback chat-completions server, SQLite",
                args.items
            ),
            String::new(),
            "| concurrency | client calls/s | run labels/s | labelled | failures | requests |".into(),
            "|---:|---:|---:|---:|---:|---:|".into(),
        ];
        for &concurrency in &levels {
            let calls = client_rate(&url, concurrency, args.items).await?;
            let run = model_run(&url, &served, args.items, concurrency).await?;
            lines.push(format!(
                "| {concurrency} | {calls:.0} | {:.0} | {} | {} | {} |",
                run.per_second, run.labelled, run.failures, run.requests
            ));
            if run.labelled != args.items as i64 || run.failures != 0 {
                println!("{}", lines.join("\n"));
                bail!(
                    "CHECK FAILED: {} of {} items labelled, {} failures",
                    run.labelled,
                    args.items,
                    run.failures
                );
            }
        }
        Ok::<_, anyhow::Error>(lines)
    })?;
    println!("{}", lines.join("\n"));
    println!("\nGoal (issue 25): at least 500 labels/s against an instant server.");
    Ok(())
}
