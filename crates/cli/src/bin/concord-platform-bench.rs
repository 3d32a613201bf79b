//! `concord-platform-bench`: import and export throughput, the QA loop (labels imported, a
//! consensus run, a release) and the server's memory, on generated catalog items, through the
//! real `concord` binary (the user's path).
//!
//! ```text
//! concord-platform-bench [--items 100000,1000000] [--labelled 333334] [--release-only]
//!                        [--postgres URL] [--smoke]
//! ```
//! Prints one table. Peer figures (Label Studio, doccano) come from the issue's measurements
//! on this machine class and are printed beside ours for reference.

use anyhow::{Context, Result, bail};
use clap::Parser;
use std::io::{BufRead, BufReader, Read, Write};
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(about = "Benchmark concord's import, export and server memory")]
struct Args {
    /// Item counts to import and export.
    #[arg(long, default_value = "100000,1000000")]
    items: String,
    /// Also run import and export on this PostgreSQL database (a scratch schema is used).
    #[arg(long)]
    postgres: Option<String>,
    /// Items labelled (3 labels each), put through the QA loop and released, at most (the
    /// release is exported as JSONL and Parquet).
    #[arg(long, default_value_t = LABELLED_ITEMS)]
    labelled: usize,
    /// Only the QA loop and the release (import, labels, consensus, release, its exports):
    /// no project exports, no server.
    #[arg(long)]
    release_only: bool,
    /// Tiny sizes, for CI: proves the benchmark still runs.
    #[arg(long)]
    smoke: bool,
    /// Only the pages' server time: every page on `concord demo`'s database (825
    /// annotators), as an administrator, from the `Server-Timing` header.
    #[arg(long)]
    pages: bool,
    /// Requests per page after one to warm up (`--pages`).
    #[arg(long, default_value_t = 7)]
    page_runs: usize,
    /// Keep the generated files and the SQLite database in this folder (default: a
    /// temporary folder removed at the end), e.g. to profile a step again by hand.
    #[arg(long)]
    keep: Option<PathBuf>,
    /// The concord binary (default: next to this one).
    #[arg(long)]
    concord: Option<PathBuf>,
}

fn concord_binary(args: &Args) -> Result<PathBuf> {
    if let Some(path) = &args.concord {
        return Ok(path.clone());
    }
    let me = std::env::current_exe()?;
    let path = me.with_file_name("concord");
    if !path.exists() {
        bail!(
            "{} not found; build it with `cargo build --release`",
            path.display()
        );
    }
    Ok(path)
}

const WORDS: &[&str] = &[
    "harbour", "lamps", "quiet", "northern", "signal", "paper", "river", "glass", "ember",
    "hollow", "static", "orchard", "velvet", "winter", "copper", "meadow", "tidal", "neon",
    "atlas", "sparrow",
];
const NAMES: &[&str] = &[
    "Mira Calloway-Tesh",
    "Odo Brennick",
    "Lark & The Wirelings",
    "Sefa Umarov-Lind",
    "The Pale Orchard",
    "Juno Marsh-Okafor",
    "Tilde Varga",
    "Quill Harbour Society",
];

/// Deterministic fictional catalog items (tracks, episodes, audiobooks, chapters).
fn write_items(path: &Path, n: usize) -> Result<u64> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    let mut state: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let types = ["track", "track", "track", "episode", "audiobook", "chapter"];
    for i in 0..n {
        let r = next();
        let kind = types[(r % types.len() as u64) as usize];
        let title = format!(
            "{} {} {}",
            WORDS[(r >> 8) as usize % WORDS.len()],
            WORDS[(r >> 16) as usize % WORDS.len()],
            i
        );
        let creator = NAMES[(r >> 24) as usize % NAMES.len()];
        let role = if kind == "track" {
            "artist"
        } else if kind == "episode" {
            "host"
        } else {
            "narrator"
        };
        let text = if kind == "track" {
            format!(
                "\"lyrics_excerpt\":\"{} on the {} wall, we counted ships\"",
                WORDS[(r >> 32) as usize % WORDS.len()],
                WORDS[(r >> 40) as usize % WORDS.len()]
            )
        } else {
            format!(
                "\"description\":\"A {} conversation about {} and {} (see https://example.com/show/{i})\"",
                WORDS[(r >> 32) as usize % WORDS.len()],
                WORDS[(r >> 40) as usize % WORDS.len()],
                WORDS[(r >> 48) as usize % WORDS.len()]
            )
        };
        writeln!(
            out,
            "{{\"id\":\"it_{i:08}\",\"item_type\":\"{kind}\",\"title\":\"{title}\",\"creators\":[{{\"name\":\"{creator}\",\"role\":\"{role}\"}}],\"language\":\"en\",\"markets\":[\"GB\",\"IE\",\"US\"],\"duration_ms\":{},\"explicit\":\"not_explicit\",\"preview_url\":\"https://example.com/p/{i}.mp3\",\"text\":{{{text}}},\"source_ids\":{{\"isrc\":\"XXC0N25{:05}\"}},\"priority\":{}}}",
            120_000 + r % 200_000,
            i % 100_000,
            r % 5
        )?;
    }
    out.flush()?;
    Ok(std::fs::metadata(path)?.len())
}

/// Runs a command, sampling its peak resident memory (VmHWM) until it exits.
fn run_measured(mut command: Command) -> Result<(f64, f64, String)> {
    let started = Instant::now();
    let mut child = command
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()?;
    let pid = child.id();
    let mut peak_kib = 0u64;
    loop {
        if let Some(kib) = proc_status_kib(pid, "VmHWM:") {
            peak_kib = peak_kib.max(kib);
        }
        if child.try_wait()?.is_some() {
            break;
        }
        std::thread::sleep(Duration::from_millis(5));
    }
    let seconds = started.elapsed().as_secs_f64();
    let output = child.wait_with_output()?;
    if !output.status.success() {
        bail!(
            "{:?} failed: {}",
            command,
            String::from_utf8_lossy(&output.stderr)
        );
    }
    let mut text = String::from_utf8_lossy(&output.stdout).to_string();
    text.push_str(&String::from_utf8_lossy(&output.stderr));
    Ok((seconds, peak_kib as f64 / 1024.0, text))
}

fn proc_status_kib(pid: u32, key: &str) -> Option<u64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}

fn concord(bin: &Path, db: &str) -> Command {
    let mut command = Command::new(bin);
    command
        .env("CONCORD_DATABASE_URL", db)
        .env("CONCORD_TEST_FAST_PASSWORD_HASH", "1");
    command
}

fn check(mut command: Command) -> Result<String> {
    let output = command.output()?;
    if !output.status.success() {
        bail!("{:?}: {}", command, String::from_utf8_lossy(&output.stderr));
    }
    Ok(String::from_utf8_lossy(&output.stdout).to_string())
}

/// Runs a step and adds its row: time, throughput of `amount` in `unit`, peak memory.
/// Writes what earlier steps left in the kernel's page cache to disk, so that a step's time
/// includes its own writes and flushes, not the tail of the previous step's (an export of a
/// million items leaves ≈ 400 MB to write back).
fn settle_disk() {
    let _ = Command::new("sync").status();
}

fn measure(
    rows: &mut Vec<Row>,
    what: String,
    command: Command,
    amount: f64,
    unit: &str,
) -> Result<()> {
    settle_disk();
    let (seconds, peak_mib, _) = run_measured(command)?;
    rows.push(Row {
        what,
        seconds,
        rate: format!("{:.0} {unit}", amount / seconds),
        peak_mib,
    });
    Ok(())
}

fn print_rows(rows: &[Row]) {
    println!("| step | seconds | throughput | peak RSS (MiB) |");
    println!("|---|---:|---:|---:|");
    for row in rows {
        println!(
            "| {} | {:.2} | {} | {:.0} |",
            row.what, row.seconds, row.rate, row.peak_mib
        );
    }
}

/// Adds the size of the file the last step wrote to its description.
fn note_size(rows: &mut [Row], file: &Path) {
    if let (Some(row), Ok(meta)) = (rows.last_mut(), std::fs::metadata(file)) {
        row.what += &format!(", {:.1} MiB", meta.len() as f64 / (1 << 20) as f64);
    }
}

struct Row {
    what: String,
    seconds: f64,
    rate: String,
    peak_mib: f64,
}

/// Labels by 3 of 60 simulated annotators on each of the first `items` items: a latent
/// severity per item, each annotator right with a probability of their own (0.6–0.95),
/// otherwise off by one level. CSV `item,annotator,decision,severity`.
fn write_annotations(path: &Path, items: usize) -> Result<usize> {
    let mut out = std::io::BufWriter::with_capacity(1 << 20, std::fs::File::create(path)?);
    writeln!(out, "item,annotator,decision,severity")?;
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut rows = 0;
    for i in 0..items {
        let truth = (next() % 5) as usize;
        let first = (next() % 60) as usize;
        for k in 0..3 {
            let annotator = (first + k * 17) % 60;
            let skill = 0.6 + 0.35 * (annotator as f64 / 59.0);
            let roll = (next() % 10_000) as f64 / 10_000.0;
            let level = if roll < skill {
                truth
            } else if truth == 0 || (truth < 4 && next() % 2 == 0) {
                truth + 1
            } else {
                truth - 1
            };
            writeln!(
                out,
                "it_{i:08},bench-annotator-{annotator:02},{},{}",
                DECISIONS[level], SEVERITIES[level]
            )?;
            rows += 1;
        }
    }
    out.flush()?;
    Ok(rows)
}

/// The generated labels' scale: severity level → (decision, severity code).
const SEVERITIES: [&str; 5] = ["S0", "S1", "S2", "S3", "S4"];
const DECISIONS: [&str; 5] = [
    "NOT_VIOLATING",
    "NOT_VIOLATING",
    "BORDERLINE",
    "VIOLATING",
    "VIOLATING",
];

/// Labels of ten late annotators, one per item on the first `items` items.
fn write_late_annotations(path: &Path, items: usize) -> Result<usize> {
    let mut out = std::io::BufWriter::new(std::fs::File::create(path)?);
    writeln!(out, "item,annotator,decision,severity")?;
    for i in 0..items {
        let level = (i * 7 + i / 3) % 5;
        writeln!(
            out,
            "it_{i:08},bench-late-{:02},{},{}",
            i % 10,
            DECISIONS[level],
            SEVERITIES[level]
        )?;
    }
    out.flush()?;
    Ok(items)
}

/// Most labelled items in a project (3 labels each: about a million labels).
const LABELLED_ITEMS: usize = 333_334;

// long: one benchmark step after another, each a few lines; clearer in one piece.
#[allow(clippy::too_many_arguments)]
fn bench_backend(
    bin: &Path,
    db: &str,
    label: &str,
    sizes: &[usize],
    labelled_at_most: usize,
    release_only: bool,
    dir: &Path,
    rows: &mut Vec<Row>,
) -> Result<()> {
    for &n in sizes {
        let file = dir.join(format!("items_{n}.jsonl"));
        if !file.exists() {
            write_items(&file, n)?;
        }
        let slug = format!("bench-{n}");
        let mut create = concord(bin, db);
        create.args(["project", "create", &slug, "--name", &format!("Bench {n}")]);
        check(create)?;
        let mut import = concord(bin, db);
        import.arg("import").arg(&slug).arg(&file);
        measure(
            rows,
            format!("{label}: import {n} items (JSONL)"),
            import,
            n as f64,
            "items/s",
        )?;
        let project_exports: &[&str] = if release_only {
            &[]
        } else {
            &["jsonl", "csv", "parquet"]
        };
        for format in project_exports {
            let out = dir.join(format!("export_{n}.{format}"));
            let mut export = concord(bin, db);
            export
                .args(["export", &slug, "--format", format, "--out"])
                .arg(&out);
            measure(
                rows,
                format!("{label}: export {n} items ({format})"),
                export,
                n as f64,
                "items/s",
            )?;
            note_size(rows, &out);
            let _ = std::fs::remove_file(&out);
        }

        // The QA loop on the same project: labels imported, a consensus run (Dawid–Skene,
        // agreement report, escalations), a release.
        let labelled = n.min(labelled_at_most);
        let labels = dir.join(format!("labels_{labelled}.csv"));
        let count = write_annotations(&labels, labelled)?;
        let mut import = concord(bin, db);
        import
            .args(["import", &slug, "--kind", "annotations"])
            .arg(&labels);
        measure(
            rows,
            format!("{label}: import {count} labels (CSV)"),
            import,
            count as f64,
            "labels/s",
        )?;
        let mut consensus = concord(bin, db);
        consensus.args(["consensus", &slug]);
        measure(
            rows,
            format!("{label}: consensus run over {count} labels (read, DS + report, store)"),
            consensus,
            count as f64,
            "labels/s",
        )?;
        // A refresh: the same run again with nothing new (only the rows that changed are
        // written), then after 1 % more labels (a late annotator team on 10,000 items).
        let mut again = concord(bin, db);
        again.args(["consensus", &slug]);
        measure(
            rows,
            format!("{label}: consensus rerun, nothing new"),
            again,
            count as f64,
            "labels/s",
        )?;
        let late = dir.join(format!("late_labels_{labelled}.csv"));
        let late_count = write_late_annotations(&late, labelled.min(10_000))?;
        let mut import = concord(bin, db);
        import
            .args(["import", &slug, "--kind", "annotations"])
            .arg(&late);
        check(import)?;
        let mut after_new = concord(bin, db);
        after_new.args(["consensus", &slug]);
        measure(
            rows,
            format!("{label}: consensus rerun after {late_count} new labels"),
            after_new,
            (count + late_count) as f64,
            "labels/s",
        )?;
        let mut release = concord(bin, db);
        release.args(["release", "create", &slug, "bench"]);
        measure(
            rows,
            format!("{label}: release of {labelled} labelled items"),
            release,
            labelled as f64,
            "items/s",
        )?;
        for format in ["jsonl", "parquet"] {
            let out = dir.join(format!("release_{labelled}.{format}"));
            let mut export = concord(bin, db);
            export
                .args([
                    "release", "export", &slug, "bench", "--format", format, "--out",
                ])
                .arg(&out);
            measure(
                rows,
                format!("{label}: release export of {labelled} items ({format})"),
                export,
                labelled as f64,
                "items/s",
            )?;
            note_size(rows, &out);
            let _ = std::fs::remove_file(&out);
        }
    }
    Ok(())
}

struct Server {
    child: Child,
    address: String,
}

impl Drop for Server {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn start_server(bin: &Path, db: &str) -> Result<Server> {
    let mut child = concord(bin, db)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .env("CONCORD_LOG", "warn")
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()?;
    let stdout = child.stdout.take().context("server stdout")?;
    let mut line = String::new();
    BufReader::new(stdout).read_line(&mut line)?;
    let address = line
        .trim()
        .strip_prefix("listening on http://")
        .context("server did not start")?
        .to_owned();
    Ok(Server { child, address })
}

fn http_get(address: &str, path: &str, token: &str) -> Result<usize> {
    let mut stream = TcpStream::connect(address)?;
    write!(
        stream,
        "GET {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
    )?;
    let mut sink = [0u8; 1 << 16];
    let mut total = 0;
    loop {
        let n = stream.read(&mut sink)?;
        if n == 0 {
            break;
        }
        total += n;
    }
    Ok(total)
}

/// One request on a fresh connection (`Connection: close`): the status and the body. The
/// body, when given, is a file streamed as it is read.
fn http_request(
    address: &str,
    method: &str,
    path: &str,
    token: &str,
    body: Option<&Path>,
) -> Result<(u16, String)> {
    let mut stream = TcpStream::connect(address)?;
    let length = match body {
        Some(file) => std::fs::metadata(file)?.len(),
        None => 0,
    };
    write!(
        stream,
        "{method} {path} HTTP/1.1\r\nHost: {address}\r\nAuthorization: Bearer {token}\r\n\
         Content-Type: application/x-ndjson\r\nContent-Length: {length}\r\nConnection: close\r\n\r\n"
    )?;
    if let Some(file) = body {
        std::io::copy(&mut std::fs::File::open(file)?, &mut stream)?;
    }
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no HTTP status in the response")?;
    let body = response
        .split_once("\r\n\r\n")
        .map(|(_, body)| body.to_owned())
        .unwrap_or_default();
    Ok((status, body))
}

/// Imports a file through the API as a user would (`POST …/imports`, then the job) and
/// returns the job's own duration: the server's clock from the job's creation, once the
/// upload is on disk, to its end.
fn import_through_api(address: &str, token: &str, slug: &str, file: &Path) -> Result<f64> {
    let (status, body) = http_request(
        address,
        "POST",
        &format!("/api/v1/projects/{slug}/imports?filename=items.jsonl"),
        token,
        Some(file),
    )?;
    if status != 202 {
        bail!("the import was refused ({status}): {body}");
    }
    let created: serde_json::Value = serde_json::from_str(&body)?;
    let id = created["job"]["id"].as_i64().context("no job id")?;
    loop {
        std::thread::sleep(Duration::from_millis(50));
        let (_, body) = http_request(address, "GET", &format!("/api/v1/jobs/{id}"), token, None)?;
        let job: serde_json::Value = serde_json::from_str(&body)?;
        let job = &job["job"];
        match job["status"].as_str() {
            Some("succeeded") => {}
            Some("failed") => bail!("the import job failed: {}", job["result"]),
            _ => continue,
        }
        let (Some(start), Some(end)) = (job["created_at"].as_i64(), job["finished_at"].as_i64())
        else {
            bail!("the job has no start or end time: {job}");
        };
        return Ok((end - start) as f64 / 1000.0);
    }
}

fn main() -> Result<()> {
    let args = Args::parse();
    let bin = concord_binary(&args)?;
    let sizes: Vec<usize> = if args.smoke {
        vec![2_000]
    } else {
        args.items
            .split(',')
            .map(|s| s.trim().parse())
            .collect::<Result<_, _>>()?
    };
    let temporary = tempfile::tempdir()?;
    let dir = match &args.keep {
        Some(keep) => {
            std::fs::create_dir_all(keep)?;
            if keep.join("bench.db").exists() {
                bail!(
                    "{} holds a bench.db already; remove it first",
                    keep.display()
                );
            }
            keep.clone()
        }
        None => temporary.path().to_path_buf(),
    };
    if args.pages {
        return page_times(&bin, &dir, args.page_runs.max(1));
    }
    let db_path = dir.join("bench.db");
    let db = db_path.to_string_lossy().to_string();
    let mut rows = Vec::new();
    bench_backend(
        &bin,
        &db,
        "SQLite",
        &sizes,
        args.labelled,
        args.release_only,
        &dir,
        &mut rows,
    )?;
    if args.release_only {
        print_rows(&rows);
        return Ok(());
    }

    // The server's memory: idle on the database just filled, then while serving exports
    // and item pages to 8 clients at once.
    let mut add = concord(&bin, &db);
    add.args(["user", "add", "bench", "--admin"]);
    check(add)?;
    let mut token = concord(&bin, &db);
    token.args(["user", "token", "bench"]);
    let token = check(token)?.trim().to_owned();
    let server = start_server(&bin, &db)?;
    std::thread::sleep(Duration::from_secs(2));
    let pid = server.child.id();
    let idle = proc_status_kib(pid, "VmRSS:").unwrap_or(0) as f64 / 1024.0;
    let largest = sizes.iter().max().copied().unwrap_or(0);
    let slug = format!("bench-{largest}");
    let started = Instant::now();
    let handles: Vec<_> = (0..8)
        .map(|i| {
            let address = server.address.clone();
            let token = token.clone();
            let slug = slug.clone();
            std::thread::spawn(move || -> Result<usize> {
                if i < 2 {
                    http_get(
                        &address,
                        &format!("/api/v1/projects/{slug}/export?format=jsonl"),
                        &token,
                    )
                } else {
                    let mut total = 0;
                    for page in 0..50 {
                        total += http_get(
                            &address,
                            &format!(
                                "/api/v1/projects/{slug}/items?limit=100&after={}",
                                page * 997
                            ),
                            &token,
                        )?;
                    }
                    Ok(total)
                }
            })
        })
        .collect();
    let mut bytes = 0;
    for handle in handles {
        bytes += handle
            .join()
            .map_err(|_| anyhow::anyhow!("client thread panicked"))??;
    }
    let loaded_seconds = started.elapsed().as_secs_f64();
    let loaded = proc_status_kib(pid, "VmHWM:").unwrap_or(0) as f64 / 1024.0;
    drop(server);

    // The same files through the API, into new projects, on a server of their own (so that
    // its peak memory is the imports'): the issue's goal is server-side time.
    for &n in &sizes {
        let mut create = concord(&bin, &db);
        create.args([
            "project",
            "create",
            &format!("api-{n}"),
            "--name",
            "Through the API",
        ]);
        check(create)?;
    }
    let server = start_server(&bin, &db)?;
    for &n in &sizes {
        let file = dir.join(format!("items_{n}.jsonl"));
        settle_disk();
        let seconds = import_through_api(&server.address, &token, &format!("api-{n}"), &file)?;
        rows.push(Row {
            what: format!("SQLite: import {n} items (JSONL) through the API, the job's own time"),
            seconds,
            rate: format!("{:.0} items/s", n as f64 / seconds),
            peak_mib: proc_status_kib(server.child.id(), "VmHWM:").unwrap_or(0) as f64 / 1024.0,
        });
    }
    drop(server);

    if let Some(url) = &args.postgres {
        let schema = format!("bench_{}", std::process::id());
        let separator = if url.contains('?') { '&' } else { '?' };
        let pg = format!("{url}{separator}options=-c%20search_path%3D{schema}");
        let mut admin = Command::new("psql");
        admin
            .arg(url)
            .arg("-qc")
            .arg(format!("CREATE SCHEMA {schema}"));
        check(admin)?;
        let outcome = bench_backend(
            &bin,
            &pg,
            "PostgreSQL",
            &sizes,
            args.labelled,
            args.release_only,
            &dir,
            &mut rows,
        );
        let mut drop_schema = Command::new("psql");
        drop_schema
            .arg(url)
            .arg("-qc")
            .arg(format!("DROP SCHEMA {schema} CASCADE"));
        let _ = check(drop_schema);
        outcome?;
    }

    print_rows(&rows);
    println!(
        "| `concord serve` idle ({largest} items in the database) | | | {idle:.0} (current RSS) |"
    );
    println!(
        "| `concord serve` under load: 2 full exports + 6 clients × 50 item pages, {:.1} MiB sent | {loaded_seconds:.2} | | {loaded:.0} |",
        bytes as f64 / (1 << 20) as f64
    );
    println!();
    println!(
        "Peers measured on this machine class (from the issue): Label Studio 1.23.2 imports ≈ 3,200 items/s, exports 100k items in 168 s, idles at ≈ 400 MiB; doccano 1.8.4 imports ≈ 3,000 items/s, exports 100k in 15–17 s with ≈ 2.3 GiB peak, idles at ≈ 1.4 GiB."
    );
    Ok(())
}

/// The pages' goal: each answered within this many milliseconds of server time.
const PAGE_GOAL_MS: f64 = 300.0;
const DEMO_SLUG: &str = "catalog-safety";

/// `--pages`: builds the demo, signs in as an administrator and asks for every page (the
/// browser suite's page walk) `runs` times after a first request, printing the median and
/// the slowest server time of each from its `Server-Timing` header.
fn page_times(bin: &Path, dir: &Path, runs: usize) -> Result<()> {
    let db_path = dir.join("demo.db");
    let db = db_path.to_string_lossy().to_string();
    let started = Instant::now();
    let mut demo = concord(bin, &db);
    demo.args(["demo", "--no-serve", "--database"])
        .arg(&db_path);
    check(demo)?;
    eprintln!("demo built in {:.1} s", started.elapsed().as_secs_f64());
    const PASSWORD: &str = "bench-pages-password";
    let mut add = concord(bin, &db);
    add.args(["user", "add", "bench", "--admin", "--password-stdin"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped());
    let mut child = add.spawn()?;
    if let Some(mut input) = child.stdin.take() {
        writeln!(input, "{PASSWORD}")?;
    }
    let out = child.wait_with_output()?;
    if !out.status.success() {
        bail!("user add: {}", String::from_utf8_lossy(&out.stderr));
    }
    let mut member = concord(bin, &db);
    member.args([
        "project",
        "member",
        DEMO_SLUG,
        "bench",
        "--role",
        "project_manager",
    ]);
    check(member)?;
    let server = start_server(bin, &db)?;
    let cookie = sign_in(&server.address, "bench", PASSWORD)?;
    let items = page_get(&server.address, &format!("/p/{DEMO_SLUG}/items"), &cookie)?;
    let item = first_number_after(&items.body, &format!("/p/{DEMO_SLUG}/items/"))
        .context("no item link on the items page")?;
    let escalations = page_get(
        &server.address,
        &format!("/p/{DEMO_SLUG}/escalations"),
        &cookie,
    )?;
    let escalated = first_number_after(&escalations.body, &format!("/p/{DEMO_SLUG}/adjudicate/"))
        .unwrap_or_else(|| item.clone());
    let p = format!("/p/{DEMO_SLUG}");
    let paths: Vec<String> = [
        "/".to_owned(),
        "/account".to_owned(),
        "/admin/users".to_owned(),
        p.clone(),
        format!("{p}/guidelines"),
        format!("{p}/guidelines/edit"),
        format!("{p}/guidelines/v/1"),
        format!("{p}/guidelines/diff"),
        format!("{p}/guidelines/revision"),
        format!("{p}/items"),
        format!("{p}/items/{item}"),
        format!("{p}/import"),
        format!("{p}/settings"),
        format!("{p}/settings?page=9"),
        format!("{p}/settings?q=worker"),
        format!("{p}/my-work"),
        format!("{p}/team"),
        format!("{p}/team?page=9"),
        format!("{p}/team?q=worker"),
        format!("{p}/dashboard"),
        format!("{p}/quality"),
        format!("{p}/escalations"),
        format!("{p}/escalations?status=resolved"),
        format!("{p}/adjudicate/{escalated}"),
        format!("{p}/precedents"),
        format!("{p}/releases"),
        format!("{p}/feedback"),
        format!("{p}/feedback/ana"),
        format!("{p}/escalation-rules"),
        format!("{p}/sql"),
        format!("{p}/models"),
        format!("{p}/retest"),
        format!("{p}/exposure"),
        format!("{p}/calibration"),
        format!("{p}/label"),
    ]
    .into();
    println!("| page | status | median ms | slowest ms | KiB |");
    println!("|---|---:|---:|---:|---:|");
    let mut over = Vec::new();
    for path in &paths {
        page_get(&server.address, path, &cookie)?;
        let mut times = Vec::with_capacity(runs);
        let mut last = None;
        for _ in 0..runs {
            let got = page_get(&server.address, path, &cookie)?;
            times.push(got.server_ms.context("no Server-Timing header")?);
            last = Some(got);
        }
        times.sort_by(f64::total_cmp);
        let median = times[times.len() / 2];
        let slowest = times[times.len() - 1];
        let (status, size) = last.map(|g| (g.status, g.body.len())).unwrap_or_default();
        let flag = if median > PAGE_GOAL_MS { " ⚠" } else { "" };
        println!(
            "| `{path}` | {status} | {median:.1}{flag} | {slowest:.1} | {:.0} |",
            size as f64 / 1024.0
        );
        if median > PAGE_GOAL_MS {
            over.push(path.clone());
        }
    }
    if over.is_empty() {
        eprintln!("every page under {PAGE_GOAL_MS} ms (median of {runs})");
    } else {
        eprintln!("over {PAGE_GOAL_MS} ms: {}", over.join(", "));
    }
    Ok(())
}

/// What a page request answered.
struct PageResponse {
    status: u16,
    server_ms: Option<f64>,
    body: String,
}

/// One request on a fresh connection, with the session cookie.
fn page_request(address: &str, request: &str) -> Result<(String, String)> {
    let mut stream = TcpStream::connect(address)?;
    stream.write_all(request.as_bytes())?;
    let mut response = Vec::new();
    stream.read_to_end(&mut response)?;
    let response = String::from_utf8_lossy(&response).into_owned();
    let (head, body) = response
        .split_once("\r\n\r\n")
        .context("no end of the response head")?;
    Ok((head.to_owned(), body.to_owned()))
}

fn header<'a>(head: &'a str, name: &str) -> impl Iterator<Item = &'a str> {
    head.lines().filter_map(move |line| {
        let (key, value) = line.split_once(':')?;
        key.trim().eq_ignore_ascii_case(name).then(|| value.trim())
    })
}

fn page_get(address: &str, path: &str, cookie: &str) -> Result<PageResponse> {
    // HTTP/1.0: the body comes whole, never chunked.
    let (head, body) = page_request(
        address,
        &format!("GET {path} HTTP/1.0\r\nHost: {address}\r\nCookie: {cookie}\r\n\r\n"),
    )?;
    let status = head
        .split(' ')
        .nth(1)
        .and_then(|code| code.parse().ok())
        .context("no HTTP status")?;
    let server_ms = header(&head, "server-timing")
        .next()
        .and_then(|v| v.split("dur=").nth(1))
        .and_then(|v| v.split([';', ',']).next())
        .and_then(|v| v.parse().ok());
    Ok(PageResponse {
        status,
        server_ms,
        body,
    })
}

/// Signs in through the login form; returns the session cookie (`name=value`).
fn sign_in(address: &str, username: &str, password: &str) -> Result<String> {
    let form = format!("username={username}&password={password}");
    let (head, _) = page_request(
        address,
        &format!(
            "POST /login HTTP/1.0\r\nHost: {address}\r\nContent-Type: application/x-www-form-urlencoded\r\n\
             Content-Length: {}\r\n\r\n{form}",
            form.len()
        ),
    )?;
    header(&head, "set-cookie")
        .filter_map(|v| v.split(';').next())
        .find(|v| v.starts_with("concord_session="))
        .map(str::to_owned)
        .with_context(|| format!("signing in set no session cookie:\n{head}"))
}

/// The digits right after the first `prefix` in `text` that digits follow (the items page
/// also links `…/items/bulk`).
fn first_number_after(text: &str, prefix: &str) -> Option<String> {
    text.split(prefix).skip(1).find_map(|rest| {
        let digits: String = rest.chars().take_while(char::is_ascii_digit).collect();
        (!digits.is_empty()).then_some(digits)
    })
}
