//! `concord-bench`: speed and memory of the agreement engine on the standard synthetic
//! scenarios of `peer_bench.py gen`, side by side with the Python peers in the same run.
//!
//! ```text
//! concord-bench --data DIR [--scenarios a,b] [--peers --peer-script PATH --python PY]
//! concord-bench --smoke            # tiny generated data, every step, no peers (CI)
//! concord-bench --ds-yardstick --scenario n1m_k10_r5 [--pairs 5]
//! ```
//!
//! `--ds-yardstick` times concord's Dawid–Skene against the naive implementation issue 30
//! names as its yardstick (see [`yardstick`]), as interleaved pairs of processes.

use std::path::{Path, PathBuf};
use std::time::Instant;

use anyhow::{Context, Result, bail};
use clap::Parser;
use concord_formats::read_annotations;
use concord_stats::agreement::bootstrap::BootstrapOptions;
use concord_stats::agreement::pairs::pairwise_cohen;
use concord_stats::agreement::two_rater::CohenWeights;
use concord_stats::{AgreementOptions, Inference, LabelSpec, Metric, Prepared, compute};
use serde_json::Value;

#[derive(Parser)]
#[command(about = "Benchmark concord's agreement engine against the Python peers")]
struct Args {
    /// Folder written by `peer_bench.py gen --workdir`.
    #[arg(long, default_value = "/tmp/peer_bench_data")]
    data: PathBuf,
    #[arg(
        long,
        alias = "scenario",
        default_value = "n100k_k2_r3,n100k_k10_r5,n100k_k5_r3to5,n1m_k2_r3,n1m_k10_r5,n1m_k5_r3to5"
    )]
    scenarios: String,
    /// Bootstrap replicates.
    #[arg(long, default_value_t = 1000)]
    bootstrap: usize,
    /// Run on tiny generated data (no peers): keeps the bench from rotting in CI.
    #[arg(long)]
    smoke: bool,
    /// Also time the Python peers on the same data in this run.
    #[arg(long)]
    peers: bool,
    #[arg(long, default_value = "../shared/bench/peer_bench.py")]
    peer_script: PathBuf,
    #[arg(long, default_value = "python3")]
    python: String,
    /// Peer algorithms to time.
    #[arg(
        long,
        default_value = "kripp_nominal_vc,sm_fleiss,sk_cohen_pairs,irr_gwet,irr_fleiss,irr_kripp,nltk_alpha"
    )]
    peer_algos: String,
    /// Peer time limit per run, seconds.
    #[arg(long, default_value_t = 300)]
    peer_timeout: u64,
    /// Benchmark the consensus models instead of the agreement coefficients.
    #[arg(long)]
    aggregation: bool,
    /// Models to time with --aggregation.
    #[arg(long, default_value = "mv,wawa,zbs,ds,one-coin-ds,glad,mace,kos,mmsr")]
    methods: String,
    /// Recorded peer results (peer_bench.py's JSON), for runs too slow to repeat here.
    #[arg(long)]
    recorded: Option<PathBuf>,
    /// Time concord's Dawid–Skene (100 iterations) against the naive yardstick of issue 30,
    /// as interleaved pairs of processes (yardstick, concord, yardstick, …).
    #[arg(long)]
    ds_yardstick: bool,
    /// Pairs to run with --ds-yardstick.
    #[arg(long, default_value_t = 5)]
    pairs: usize,
    /// The yardstick's table layout: `label-true` ([annotator][label][true], the default)
    /// or the textbook's `true-label` ([annotator][true][label]).
    #[arg(long, default_value = "label-true")]
    yardstick_layout: String,
    /// Time whole `concord` commands as a user runs them (issue 30): reading the file alone,
    /// `aggregate --method mv --out`, and `agreement`, as interleaved rounds of processes.
    #[arg(long)]
    whole_commands: bool,
    /// Rounds to run with --whole-commands.
    #[arg(long, default_value_t = 5)]
    rounds: usize,
    /// Internal: load FILE, run one model, print its time and peak memory as JSON.
    /// METHOD `ds-yardstick` runs the naive Dawid–Skene.
    #[arg(long, hide = true, num_args = 2, value_names = ["METHOD", "FILE"])]
    child: Option<Vec<String>>,
    /// Internal: with --child, also write the labels (u32, little-endian) to this file.
    #[arg(long, hide = true)]
    labels_out: Option<PathBuf>,
}

struct Row {
    scenario: String,
    rows: usize,
    load_s: f64,
    bytes_per_row: f64,
    alpha_s: f64,
    all_coefficients_s: f64,
    pairs_s: f64,
    n_pairs: usize,
    bootstrap_s: f64,
    alpha: f64,
}

fn time<T>(f: impl FnOnce() -> T) -> (T, f64) {
    let start = Instant::now();
    let out = f();
    (out, start.elapsed().as_secs_f64())
}

fn bench_file(scenario: &str, path: &Path, replicates: usize) -> Result<Row> {
    let spec = LabelSpec::default();
    let (file, load_s) = time(|| read_annotations(path, None, &spec));
    let file = file?;
    let table = file.table;
    let options = AgreementOptions::default();
    // α from triples: a fresh Prepared so the count patterns are part of the time.
    let (alpha, alpha_s) = time(|| {
        let prepared = Prepared::new(&table);
        compute(&prepared, Metric::KrippendorffAlpha, &options, &|_| {})
    });
    let alpha = alpha?.estimate.value.unwrap_or(f64::NAN);
    let (all, all_coefficients_s) = time(|| {
        let prepared = Prepared::new(&table);
        [
            Metric::PercentAgreement,
            Metric::KrippendorffAlpha,
            Metric::FleissGeneralized,
            Metric::GwetAc,
            Metric::BrennanPrediger,
            Metric::FleissKappa,
            Metric::RandolphKappa,
        ]
        .iter()
        .map(|&m| compute(&prepared, m, &options, &|_| {}))
        .collect::<Result<Vec<_>, _>>()
    });
    all?;
    let (pairs, pairs_s) = time(|| {
        pairwise_cohen(
            &table,
            CohenWeights::Unweighted,
            10,
            &Inference::default(),
            &|_, _| {},
        )
    });
    // Both indexes exist now: the all-pairs pass built the annotator index.
    let bytes_per_row = table.index_bytes() as f64 / table.n_rows() as f64;
    let boot_options = AgreementOptions {
        bootstrap: Some(BootstrapOptions {
            replicates,
            seed: 1,
            confidence: 0.95,
        }),
        ..AgreementOptions::default()
    };
    let (boot, bootstrap_s) = time(|| {
        let prepared = Prepared::new(&table);
        compute(&prepared, Metric::KrippendorffAlpha, &boot_options, &|_| {})
    });
    boot?;
    Ok(Row {
        scenario: scenario.to_string(),
        rows: table.n_rows(),
        load_s,
        bytes_per_row,
        alpha_s,
        all_coefficients_s,
        pairs_s,
        n_pairs: pairs.len(),
        bootstrap_s,
        alpha,
    })
}

/// Tiny synthetic data (deterministic): `n` items, `k` classes, `r` ratings each.
fn write_smoke_data(path: &Path, n: usize, k: u64, r: usize) -> Result<()> {
    let mut state: u64 = 0x2545_F491_4F6C_DD1D;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let mut csv = String::from("item,worker,label\n");
    for item in 0..n {
        let truth = next() % k;
        for slot in 0..r {
            let worker = (item * 7 + slot * 13) % 97;
            let label = if next() % 10 < 7 { truth } else { next() % k };
            csv.push_str(&format!("{item},{worker},{label}\n"));
        }
    }
    std::fs::write(path, csv).with_context(|| format!("cannot write {}", path.display()))
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_else(|| "unknown CPU".into());
    format!("{cpu}, {} threads", rayon::current_num_threads())
}

fn commit() -> String {
    std::process::Command::new("git")
        .args(["rev-parse", "--short", "HEAD"])
        .output()
        .ok()
        .filter(|o| o.status.success())
        .map(|o| String::from_utf8_lossy(&o.stdout).trim().to_string())
        .unwrap_or_else(|| "unknown".into())
}

fn run_peers(args: &Args, scenarios: &[&str]) -> Result<Value> {
    let out = std::env::temp_dir().join("concord-bench-peers.json");
    let _ = std::fs::remove_file(&out);
    let status = std::process::Command::new(&args.python)
        .arg(&args.peer_script)
        .args(["bench", "--workdir"])
        .arg(&args.data)
        .args([
            "--scenarios",
            &scenarios.join(","),
            "--algos",
            &args.peer_algos,
            "--timeout",
        ])
        .arg(args.peer_timeout.to_string())
        .arg("--out")
        .arg(&out)
        .status()
        .context("cannot start the peer benchmark")?;
    if !status.success() {
        bail!("the peer benchmark failed ({status})");
    }
    let text = std::fs::read_to_string(&out)?;
    Ok(serde_json::from_str(&text)?)
}

fn peer_seconds(peers: &Value, scenario: &str, algo: &str) -> Option<f64> {
    peers["runs"]
        .as_array()?
        .iter()
        .find(|r| r["scenario"] == scenario && r["algo"] == algo)
        .and_then(|r| {
            let fit = r["fit_s"].as_f64()?;
            Some(fit + r["prep_s"].as_f64().unwrap_or(0.0))
        })
}

fn fmt_s(v: Option<f64>) -> String {
    v.map_or("—".into(), |s| format!("{s:.3}"))
}

fn peak_rss_mib() -> f64 {
    status_mib("VmHWM:")
}

/// A memory figure of this process from `/proc/self/status` (`VmHWM:`, `VmRSS:`), in MiB.
fn status_mib(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .ok()
        .and_then(|s| {
            s.lines()
                .find(|l| l.starts_with(field))
                .and_then(|l| l.split_whitespace().nth(1)?.parse::<f64>().ok())
        })
        .map_or(f64::NAN, |kib| kib / 1024.0)
}

/// CPU time (user + system, all threads) this process has used so far, in seconds.
fn process_cpu_s() -> f64 {
    // Fields 14 and 15 of /proc/self/stat, in clock ticks; the command name (field 2) may
    // hold spaces, so count from the closing parenthesis.
    let ticks = std::fs::read_to_string("/proc/self/stat")
        .ok()
        .and_then(|stat| {
            let rest = stat.rsplit_once(')')?.1;
            let fields: Vec<&str> = rest.split_whitespace().collect();
            let user: f64 = fields.get(11)?.parse().ok()?;
            let system: f64 = fields.get(12)?.parse().ok()?;
            Some(user + system)
        })
        .unwrap_or(f64::NAN);
    // USER_HZ is 100 on every Linux ABI concord runs on.
    ticks / 100.0
}

fn write_labels(path: &Path, labels: &[u32]) -> Result<()> {
    let bytes: Vec<u8> = labels.iter().flat_map(|l| l.to_le_bytes()).collect();
    std::fs::write(path, bytes).with_context(|| format!("cannot write {}", path.display()))
}

/// The naive yardstick in this process: load, fit (wall and CPU time), print as JSON.
fn yardstick_child(file: &Path, layout: &str, labels_out: Option<&Path>) -> Result<()> {
    let (loaded, load_s) = time(|| read_annotations(file, None, &LabelSpec::default()));
    let table = loaded?.table;
    let cpu_before = process_cpu_s();
    let label_major = match layout {
        "label-true" => true,
        "true-label" => false,
        other => bail!("unknown yardstick layout {other} (label-true or true-label)"),
    };
    let (labels, fit_s) = time(|| yardstick::dawid_skene(&table, 100, label_major));
    let fit_cpu_s = process_cpu_s() - cpu_before;
    if let Some(path) = labels_out {
        write_labels(path, &labels)?;
    }
    println!(
        "{}",
        serde_json::json!({"load_s": load_s, "fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "peak_rss_mib": peak_rss_mib(), "iterations": 100})
    );
    Ok(())
}

/// One model in this process: load, fit, score against the scenario's gold.
fn child(method: &str, file: &Path, labels_out: Option<&Path>) -> Result<()> {
    use concord_stats::aggregate::{AggregateOptions, Method, aggregate, metrics::label_accuracy};
    if let Some(layout) = method.strip_prefix("ds-yardstick:") {
        return yardstick_child(file, layout, labels_out);
    }
    if method == "load" {
        return load_child(file);
    }
    let method: Method = method.parse().map_err(anyhow::Error::msg)?;
    let (loaded, load_s) = time(|| read_annotations(file, None, &LabelSpec::default()));
    let table = loaded?.table;
    let options = AggregateOptions {
        // Fixed 100 iterations for the EM models, as the peers are run.
        iterations: matches!(method, Method::DawidSkene | Method::OneCoinDawidSkene).then_some(100),
        tol: matches!(method, Method::DawidSkene | Method::OneCoinDawidSkene)
            .then_some(f64::NEG_INFINITY),
        ..AggregateOptions::default()
    };
    let cpu_before = process_cpu_s();
    let (result, fit_s) = time(|| aggregate(&table, method, &options, &|_, _| {}));
    let fit_cpu_s = process_cpu_s() - cpu_before;
    let result = result?;
    if let Some(path) = labels_out {
        let labels: Vec<u32> = result
            .labels
            .iter()
            .map(|l| l.unwrap_or(u32::MAX))
            .collect();
        write_labels(path, &labels)?;
    }
    let gold_path = file.with_file_name("gold.csv");
    let accuracy = concord_formats::read_gold(&gold_path, &table)
        .ok()
        .and_then(|g| label_accuracy(&result.labels, &g.known.per_item(table.n_items())))
        .map(|a| a.0);
    println!(
        "{}",
        serde_json::json!({"load_s": load_s, "fit_s": fit_s, "fit_cpu_s": fit_cpu_s, "peak_rss_mib": peak_rss_mib(), "accuracy": accuracy, "iterations": result.iterations})
    );
    Ok(())
}

/// Reads and interns FILE and nothing else: the yardstick of the whole-command goals, and
/// the table's resident bytes per label (item-major columns and interned names; the
/// annotator index is built only by the models that need it).
fn load_child(file: &Path) -> Result<()> {
    let rss_before = current_rss_mib();
    let (loaded, load_s) = time(|| read_annotations(file, None, &LabelSpec::default()));
    let table = loaded?.table;
    let rows = table.n_rows().max(1) as f64;
    println!(
        "{}",
        serde_json::json!({
            "load_s": load_s,
            "rows": table.n_rows(),
            "table_bytes_per_label": table.heap_bytes() as f64 / rows,
            "resident_growth_bytes_per_label": (current_rss_mib() - rss_before) * 1048576.0 / rows,
            "peak_rss_mib": peak_rss_mib(),
        })
    );
    Ok(())
}

fn current_rss_mib() -> f64 {
    status_mib("VmRSS:")
}

/// Wall seconds of one whole process, its stdout discarded.
fn time_process(program: &Path, args: &[&std::ffi::OsStr]) -> Result<f64> {
    let start = Instant::now();
    let status = std::process::Command::new(program)
        .args(args)
        .stdout(std::process::Stdio::null())
        .stderr(std::process::Stdio::null())
        .status()
        .with_context(|| format!("cannot run {}", program.display()))?;
    let seconds = start.elapsed().as_secs_f64();
    if !status.success() {
        bail!("{} {:?} failed: {status}", program.display(), args);
    }
    Ok(seconds)
}

fn median(mut values: Vec<f64>) -> f64 {
    values.sort_by(f64::total_cmp);
    values[values.len() / 2]
}

/// Interleaved rounds of: reading the file alone (`--child load`), `concord aggregate
/// --method mv --out`, `concord agreement`; medians, and each command over the read.
fn whole_commands_bench(args: &Args, scenarios: &[&str]) -> Result<()> {
    let exe = std::env::current_exe()?;
    let concord = exe.with_file_name("concord");
    if !concord.exists() {
        bail!(
            "{} not found: build the concord binary too",
            concord.display()
        );
    }
    let out_dir = tempfile_dir()?;
    println!(
        "| scenario | read alone (s) | table B/label | resident growth B/label | aggregate mv --out (s) | ÷ read | agreement (s) |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|");
    for scenario in scenarios {
        let file = args.data.join(scenario).join("labels.csv");
        let out = out_dir.join(format!("{scenario}.csv"));
        let (mut read, mut mv, mut agreement) = (Vec::new(), Vec::new(), Vec::new());
        let mut load = Value::Null;
        for _ in 0..args.rounds.max(1) {
            let start = Instant::now();
            load = run_child("load", &file)?;
            read.push(start.elapsed().as_secs_f64());
            mv.push(time_process(
                &concord,
                &[
                    "aggregate".as_ref(),
                    "--method".as_ref(),
                    "mv".as_ref(),
                    "--out".as_ref(),
                    out.as_os_str(),
                    file.as_os_str(),
                ],
            )?);
            agreement.push(time_process(
                &concord,
                &["agreement".as_ref(), file.as_os_str()],
            )?);
        }
        let (read, mv, agreement) = (median(read), median(mv), median(agreement));
        println!(
            "| {scenario} | {read:.3} | {:.1} | {:.1} | {mv:.3} | {:.2}× | {agreement:.3} |",
            load["table_bytes_per_label"].as_f64().unwrap_or(f64::NAN),
            load["resident_growth_bytes_per_label"]
                .as_f64()
                .unwrap_or(f64::NAN),
            mv / read,
        );
    }
    std::fs::remove_dir_all(&out_dir).ok();
    Ok(())
}

fn run_child(method: &str, file: &Path) -> Result<Value> {
    run_child_with_labels(method, file, None)
}

fn run_child_with_labels(method: &str, file: &Path, labels_out: Option<&Path>) -> Result<Value> {
    let exe = std::env::current_exe()?;
    let mut command = std::process::Command::new(exe);
    command.arg("--child").arg(method).arg(file);
    if let Some(path) = labels_out {
        command.arg("--labels-out").arg(path);
    }
    let out = command.output()?;
    if !out.status.success() {
        return Ok(
            serde_json::json!({"error": String::from_utf8_lossy(&out.stderr).trim().to_string()}),
        );
    }
    Ok(serde_json::from_slice(&out.stdout)?)
}

/// The recorded peer run of `algo` on `scenario` did not finish within `limit` seconds:
/// it timed out or was extrapolated past a limit at least as long, failed, or took longer.
fn recorded_beyond_limit(recorded: Option<&Value>, scenario: &str, algo: &str, limit: u64) -> bool {
    let Some(recorded) = recorded else {
        return false;
    };
    let recorded_limit = recorded["timeout_s"].as_f64().unwrap_or(0.0);
    recorded["runs"]
        .as_array()
        .and_then(|runs| {
            runs.iter()
                .find(|r| r["scenario"] == scenario && r["algo"] == algo)
        })
        .is_some_and(|run| match run["status"].as_str() {
            Some("ok") => run["fit_s"].as_f64().is_some_and(|fit| fit > limit as f64),
            Some("timeout" | "skipped_extrapolated" | "error") => recorded_limit >= limit as f64,
            _ => false,
        })
}

fn aggregation_bench(args: &Args, scenarios: &[&str]) -> Result<()> {
    let methods: Vec<&str> = args
        .methods
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    let peer_algo = |m: &str| match m {
        "mv" => Some("ck_mv"),
        "wawa" => Some("ck_wawa"),
        "zbs" => Some("ck_zbs"),
        "ds" => Some("ck_ds100"),
        "one-coin-ds" => Some("ck_onecoin100"),
        "glad" => Some("ck_glad"),
        "mace" => Some("ck_mace"),
        "kos" => Some("ck_kos"),
        "mmsr" => Some("ck_mmsr"),
        _ => None,
    };
    let recorded: Option<Value> = match &args.recorded {
        Some(path) => Some(serde_json::from_str(&std::fs::read_to_string(path)?)?),
        None => None,
    };
    let peers = if args.peers {
        // A peer run the recording shows cannot finish within the time limit (timed out,
        // extrapolated past it, or failed) is not started again: its recorded outcome is
        // reported instead.
        let mut runs = Vec::new();
        for scenario in scenarios {
            let algos: Vec<&str> = methods
                .iter()
                .filter_map(|m| peer_algo(m))
                .filter(|algo| {
                    !recorded_beyond_limit(recorded.as_ref(), scenario, algo, args.peer_timeout)
                })
                .collect();
            if algos.is_empty() {
                continue;
            }
            let mut a = Args::parse_from(["concord-bench"]);
            a.data = args.data.clone();
            a.python = args.python.clone();
            a.peer_script = args.peer_script.clone();
            a.peer_timeout = args.peer_timeout;
            a.peer_algos = algos.join(",");
            let result = run_peers(&a, &[scenario])?;
            runs.extend(result["runs"].as_array().cloned().unwrap_or_default());
        }
        Some(serde_json::json!({ "runs": runs }))
    } else {
        None
    };
    println!();
    println!(
        "| scenario | model | concord fit s | concord peak MiB | concord accuracy | crowd-kit fit s | crowd-kit peak MiB | crowd-kit accuracy | speed-up |"
    );
    println!("|---|---|---:|---:|---:|---:|---:|---:|---:|");
    for scenario in scenarios {
        let file = args.data.join(scenario).join("labels.csv");
        for method in &methods {
            eprintln!("concord: {scenario} {method}");
            let ours = run_child(method, &file)?;
            let peer_run = |source: &Option<Value>| -> Option<Value> {
                let algo = peer_algo(method)?;
                source.as_ref()?["runs"]
                    .as_array()?
                    .iter()
                    .find(|r| r["scenario"] == *scenario && r["algo"] == algo)
                    .cloned()
            };
            let (peer, origin) = match peer_run(&peers) {
                Some(run) if run["fit_s"].is_number() => (Some(run), ""),
                _ => (peer_run(&recorded), " (recorded)"),
            };
            let peer_fit = peer.as_ref().and_then(|p| p["fit_s"].as_f64());
            let peer_text = match (&peer, peer_fit) {
                (_, Some(fit)) => format!("{fit:.3}{origin}"),
                (Some(p), None) => p["note"]
                    .as_str()
                    .or(p["skipped"].as_str())
                    .or(p["error"].as_str())
                    .or(p["status"].as_str())
                    .map_or("not run".into(), |s| {
                        let why: String = s.chars().take(64).collect();
                        if origin.is_empty() {
                            format!("— ({why})")
                        } else {
                            format!("— (recorded: {why})")
                        }
                    }),
                (None, None) => "—".into(),
            };
            let fit = ours["fit_s"].as_f64();
            println!(
                "| {scenario} | {method} | {} | {} | {} | {peer_text} | {} | {} | {} |",
                fit.map_or_else(
                    || ours["error"]
                        .as_str()
                        .unwrap_or("error")
                        .chars()
                        .take(60)
                        .collect(),
                    |f| format!("{f:.3}")
                ),
                ours["peak_rss_mib"]
                    .as_f64()
                    .map_or("—".into(), |m| format!("{m:.0}")),
                ours["accuracy"]
                    .as_f64()
                    .map_or("—".into(), |a| format!("{a:.4}")),
                peer.as_ref()
                    .and_then(|p| p["peak_rss_mib"].as_f64())
                    .map_or("—".into(), |m| format!("{m:.0}")),
                peer.as_ref()
                    .and_then(|p| p["accuracy"].as_f64())
                    .map_or("—".into(), |a| format!("{a:.4}")),
                match (fit, peer_fit) {
                    (Some(f), Some(p)) if f > 0.0 => format!("{:.0}×", p / f),
                    _ => "—".into(),
                }
            );
        }
    }
    Ok(())
}

fn main() -> Result<()> {
    let args = Args::parse();
    if let Some(child_args) = &args.child {
        return child(
            &child_args[0],
            Path::new(&child_args[1]),
            args.labels_out.as_deref(),
        );
    }
    println!("concord-bench · commit {} · {}", commit(), machine());
    if args.smoke {
        let dir = tempfile_dir()?;
        let path = dir.join("smoke.csv");
        write_smoke_data(&path, 2_000, 4, 3)?;
        let row = bench_file("smoke_n2k_k4_r3", &path, 50)?;
        print_rows(&[row], None);
        for method in [
            "mv",
            "wawa",
            "zbs",
            "ds",
            "one-coin-ds",
            "glad",
            "mace",
            "mmsr",
            "ds-yardstick:label-true",
        ] {
            let result = run_child(method, &path)?;
            if result.get("error").is_some() {
                bail!("{method} failed on the smoke data: {result}");
            }
            println!("smoke {method}: {result}");
        }
        std::fs::remove_dir_all(&dir).ok();
        return Ok(());
    }
    let scenarios: Vec<&str> = args
        .scenarios
        .split(',')
        .map(str::trim)
        .filter(|s| !s.is_empty())
        .collect();
    if args.aggregation {
        return aggregation_bench(&args, &scenarios);
    }
    if args.ds_yardstick {
        return yardstick_bench(&args, &scenarios);
    }
    if args.whole_commands {
        return whole_commands_bench(&args, &scenarios);
    }
    let mut rows = Vec::new();
    for scenario in &scenarios {
        let path = args.data.join(scenario).join("labels.csv");
        if !path.exists() {
            bail!(
                "{} not found: run `peer_bench.py gen --workdir {}` first",
                path.display(),
                args.data.display()
            );
        }
        eprintln!("concord: {scenario}");
        rows.push(bench_file(scenario, &path, args.bootstrap)?);
    }
    let peers = if args.peers {
        Some(run_peers(&args, &scenarios)?)
    } else {
        None
    };
    if let Some(p) = &peers {
        println!("peers: {}", p["versions"]);
    }
    print_rows(&rows, peers.as_ref());
    Ok(())
}

fn tempfile_dir() -> Result<PathBuf> {
    let dir = std::env::temp_dir().join(format!("concord-bench-smoke-{}", std::process::id()));
    std::fs::create_dir_all(&dir)?;
    Ok(dir)
}

fn print_rows(rows: &[Row], peers: Option<&Value>) {
    println!();
    println!(
        "| scenario | labels | load+intern s | bytes/label | α s | 7 coefficients + SE/CI s | Cohen all pairs s (pairs) | bootstrap α s | α |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        println!(
            "| {} | {} | {:.3} | {:.1} | {:.3} | {:.3} | {:.3} ({}) | {:.3} | {:.6} |",
            r.scenario,
            r.rows,
            r.load_s,
            r.bytes_per_row,
            r.alpha_s,
            r.all_coefficients_s,
            r.pairs_s,
            r.n_pairs,
            r.bootstrap_s,
            r.alpha
        );
    }
    let Some(peers) = peers else { return };
    println!();
    println!("Same run, Python peers (prep + fit seconds; load excluded):");
    println!();
    println!(
        "| scenario | krippendorff (vc) | nltk α | irrCAC gwet | irrCAC fleiss | irrCAC kripp | statsmodels fleiss | sklearn Cohen 50-annotator pairs | concord α | α speed-up vs krippendorff |"
    );
    println!("|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|");
    for r in rows {
        let s = |a| peer_seconds(peers, &r.scenario, a);
        let kripp = s("kripp_nominal_vc");
        println!(
            "| {} | {} | {} | {} | {} | {} | {} | {} | {:.3} | {} |",
            r.scenario,
            fmt_s(kripp),
            fmt_s(s("nltk_alpha")),
            fmt_s(s("irr_gwet")),
            fmt_s(s("irr_fleiss")),
            fmt_s(s("irr_kripp")),
            fmt_s(s("sm_fleiss")),
            fmt_s(s("sk_cohen_pairs")),
            r.alpha_s,
            kripp.map_or("—".into(), |k| format!("{:.0}×", k / r.alpha_s))
        );
    }
}

/// Interleaved pairs (yardstick, concord, yardstick, concord, …), each fit in a process of
/// its own: whatever else runs on the machine meanwhile weighs on both sides alike.
fn yardstick_bench(args: &Args, scenarios: &[&str]) -> Result<()> {
    let dir = tempfile_dir()?;
    for scenario in scenarios {
        let file = args.data.join(scenario).join("labels.csv");
        if !file.exists() {
            bail!(
                "{} not found: run `peer_bench.py gen --workdir {}` first",
                file.display(),
                args.data.display()
            );
        }
        println!();
        println!(
            "Dawid–Skene, 100 iterations, {scenario}: naive yardstick ({} tables) vs concord",
            args.yardstick_layout
        );
        println!();
        println!(
            "| pair | yardstick wall s | yardstick CPU s | concord wall s | concord CPU s | wall ratio | CPU ratio |"
        );
        println!("|---:|---:|---:|---:|---:|---:|---:|");
        let (naive_labels, ours_labels) = (dir.join("yardstick.bin"), dir.join("concord.bin"));
        let mut totals = [0.0; 4];
        for pair in 1..=args.pairs.max(1) {
            eprintln!("{scenario}: pair {pair}");
            let first = pair == 1;
            let naive = run_child_with_labels(
                &format!("ds-yardstick:{}", args.yardstick_layout),
                &file,
                first.then_some(naive_labels.as_path()),
            )?;
            let ours = run_child_with_labels("ds", &file, first.then_some(ours_labels.as_path()))?;
            let get = |v: &Value, key: &str| -> Result<f64> {
                v[key]
                    .as_f64()
                    .with_context(|| format!("no {key} in the child's answer: {v}"))
            };
            let times = [
                get(&naive, "fit_s")?,
                get(&naive, "fit_cpu_s")?,
                get(&ours, "fit_s")?,
                get(&ours, "fit_cpu_s")?,
            ];
            for (total, t) in totals.iter_mut().zip(times) {
                *total += t;
            }
            println!(
                "| {pair} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
                times[0],
                times[1],
                times[2],
                times[3],
                times[2] / times[0],
                times[3] / times[1]
            );
        }
        let n = args.pairs.max(1) as f64;
        println!(
            "| mean | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} | {:.2} |",
            totals[0] / n,
            totals[1] / n,
            totals[2] / n,
            totals[3] / n,
            totals[2] / totals[0],
            totals[3] / totals[1]
        );
        let read = |path: &Path| -> Result<Vec<u8>> {
            std::fs::read(path).with_context(|| format!("cannot read {}", path.display()))
        };
        let (a, b) = (read(&naive_labels)?, read(&ours_labels)?);
        let same = a
            .chunks_exact(4)
            .zip(b.chunks_exact(4))
            .filter(|(x, y)| x == y)
            .count();
        let items = a.len().max(b.len()) / 4;
        println!();
        println!(
            "labels: {same} of {items} items the same ({:.4} %)",
            100.0 * same as f64 / items.max(1) as f64
        );
    }
    std::fs::remove_dir_all(&dir).ok();
    Ok(())
}

/// The naive Dawid–Skene that issue 30 measures concord against: what a careful
/// textbook implementation does, nothing deliberately slow and nothing tuned. A plain CSR
/// by item of (annotator, label) pairs, f64 confusion tables in log space, the E-step over
/// items on two threads (two halves), the M-step a serial accumulation. Same start as
/// concord's (majority-vote posteriors), same probability floor (1e-10), a fixed number of
/// iterations and no early stop.
///
/// The tables are `[annotator][label][true]`: the row a rating reads in the E-step (and
/// adds to in the M-step) is contiguous. The textbook's `[annotator][true][label]` strides
/// those accesses over k cache lines and took about three times as long here; it is kept
/// (`--yardstick-layout true-label`) to show that, but the yardstick is the faster one.
mod yardstick {
    use concord_stats::AnnotationTable;

    const EPS: f64 = 1e-10;

    /// Where P(label | truth) of `annotator` lives in its k × k table.
    #[inline(always)]
    fn at<const LABEL_MAJOR: bool>(k: usize, truth: usize, label: usize) -> usize {
        if LABEL_MAJOR {
            label * k + truth
        } else {
            truth * k + label
        }
    }

    /// The most probable label per item (the first on ties) after `iterations` EM rounds,
    /// with tables `[annotator][label][true]` (`label_major`) or `[annotator][true][label]`.
    pub fn dawid_skene(table: &AnnotationTable, iterations: usize, label_major: bool) -> Vec<u32> {
        if label_major {
            fit::<true>(table, iterations)
        } else {
            fit::<false>(table, iterations)
        }
    }

    fn fit<const LABEL_MAJOR: bool>(table: &AnnotationTable, iterations: usize) -> Vec<u32> {
        let k = table.n_values();
        let n_items = table.n_items();
        let n_annotators = table.n_annotators();
        if k == 0 {
            return vec![0; n_items];
        }
        let (offsets, annotators, labels) = table.item_columns();
        let offsets: Vec<usize> = offsets.iter().map(|&o| o as usize).collect();
        let pairs: Vec<(u32, u32)> = annotators
            .iter()
            .zip(labels)
            .map(|(&a, &l)| (a, l))
            .collect();

        // T[item][class]: majority-vote shares to start.
        let mut t = vec![0.0; n_items * k];
        for item in 0..n_items {
            let row = &mut t[item * k..(item + 1) * k];
            for &(_, label) in &pairs[offsets[item]..offsets[item + 1]] {
                row[label as usize] += 1.0;
            }
            let total: f64 = row.iter().sum();
            if total > 0.0 {
                row.iter_mut().for_each(|v| *v /= total);
            }
        }
        let mut log_p = vec![0.0; k];
        let mut log_e = vec![0.0; n_annotators * k * k];
        let mut counts = vec![0.0; n_annotators * k * k];
        m_step::<LABEL_MAJOR>(&t, &offsets, &pairs, k, &mut counts, &mut log_p, &mut log_e);
        for _ in 0..iterations {
            let half = n_items / 2;
            let (first, second) = t.split_at_mut(half * k);
            std::thread::scope(|scope| {
                let (offsets, pairs, log_p, log_e) = (&offsets, &pairs, &log_p, &log_e);
                scope.spawn(move || {
                    e_step::<LABEL_MAJOR>(first, 0, offsets, pairs, k, log_p, log_e);
                });
                e_step::<LABEL_MAJOR>(second, half, offsets, pairs, k, log_p, log_e);
            });
            m_step::<LABEL_MAJOR>(&t, &offsets, &pairs, k, &mut counts, &mut log_p, &mut log_e);
        }
        t.chunks_exact(k.max(1))
            .map(|row| {
                let mut best = 0;
                for (c, v) in row.iter().enumerate() {
                    if *v > row[best] {
                        best = c;
                    }
                }
                best as u32
            })
            .collect()
    }

    /// Priors and confusion tables from the posteriors T.
    fn m_step<const LABEL_MAJOR: bool>(
        t: &[f64],
        offsets: &[usize],
        pairs: &[(u32, u32)],
        k: usize,
        counts: &mut [f64],
        log_p: &mut [f64],
        log_e: &mut [f64],
    ) {
        let n_items = offsets.len() - 1;
        counts.fill(0.0);
        let mut class_totals = vec![0.0; k];
        for item in 0..n_items {
            let row = &t[item * k..(item + 1) * k];
            for (total, v) in class_totals.iter_mut().zip(row) {
                *total += v;
            }
            for &(annotator, label) in &pairs[offsets[item]..offsets[item + 1]] {
                let table = &mut counts[annotator as usize * k * k..][..k * k];
                for (truth, v) in row.iter().enumerate() {
                    table[at::<LABEL_MAJOR>(k, truth, label as usize)] += v;
                }
            }
        }
        for (log, total) in log_p.iter_mut().zip(&class_totals) {
            *log = (total / n_items as f64).max(EPS).ln();
        }
        for (table, logs) in counts
            .chunks_exact(k * k)
            .zip(log_e.chunks_exact_mut(k * k))
        {
            for truth in 0..k {
                let total: f64 = (0..k)
                    .map(|label| table[at::<LABEL_MAJOR>(k, truth, label)].max(EPS))
                    .sum();
                for label in 0..k {
                    let i = at::<LABEL_MAJOR>(k, truth, label);
                    logs[i] = (table[i].max(EPS) / total).ln();
                }
            }
        }
    }

    /// Posteriors of the items from `first` (rows `t`): a softmax of log-likelihoods.
    fn e_step<const LABEL_MAJOR: bool>(
        t: &mut [f64],
        first: usize,
        offsets: &[usize],
        pairs: &[(u32, u32)],
        k: usize,
        log_p: &[f64],
        log_e: &[f64],
    ) {
        for (offset, row) in t.chunks_exact_mut(k.max(1)).enumerate() {
            let item = first + offset;
            row.copy_from_slice(log_p);
            for &(annotator, label) in &pairs[offsets[item]..offsets[item + 1]] {
                let table = &log_e[annotator as usize * k * k..][..k * k];
                for (truth, v) in row.iter_mut().enumerate() {
                    *v += table[at::<LABEL_MAJOR>(k, truth, label as usize)];
                }
            }
            let max = row.iter().copied().fold(f64::NEG_INFINITY, f64::max);
            let mut total = 0.0;
            for v in row.iter_mut() {
                *v = (*v - max).exp();
                total += *v;
            }
            row.iter_mut().for_each(|v| *v /= total);
        }
    }
}
