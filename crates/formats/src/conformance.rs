//! Conformance cases (JSON test vectors; schema in tests/conformance/README.md):
//! reading a case, running it through the same reader and engine user data takes,
//! mapping the engine's results to the reference's field names, and comparing.

use std::collections::BTreeMap;

use concord_stats::agreement::report::{
    AgreementOptions, Metric, Prepared, Variance, WeightChoice, compute,
};
use concord_stats::{LabelKind, LabelSpec, LabelTypeRequest, Level, WeightScheme, Weights};
use serde_json::{Map, Value, json};

use concord_stats::AnnotationTable;
use concord_stats::aggregate::metrics::{
    UncertaintyBy, accuracy_against, accuracy_against_accepted, consistency, label_accuracy,
    uncertainty,
};
use concord_stats::aggregate::multi_label::binary_relevance;
use concord_stats::aggregate::{AggregateOptions, Method, aggregate};

use crate::{Format, read_annotations_from_bytes};

/// A parsed case.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
    /// Known answers (`input.gold`) and scoring-only answers (`input.ground_truth`): item → label.
    pub gold: Option<Map<String, Value>>,
    /// Several gold labels per item (`input.gold_pairs`: `[[item, label], …]`).
    pub gold_pairs: Option<Vec<(Value, Value)>>,
    pub ground_truth: Option<Map<String, Value>>,
    pub family: String,
    pub metric: String,
    pub params: Map<String, Value>,
    pub label_type: String,
    pub triples: Vec<[Value; 3]>,
    pub expected: Map<String, Value>,
    pub tolerance: Map<String, Value>,
}

fn field<'a>(v: &'a Value, key: &str) -> Result<&'a Value, String> {
    v.get(key).ok_or_else(|| format!("case has no '{key}'"))
}

impl Case {
    pub fn from_json(text: &str) -> Result<Case, String> {
        let v: Value = serde_json::from_str(text).map_err(|e| format!("invalid JSON: {e}"))?;
        let input = field(&v, "input")?;
        let triples = field(input, "triples")?
            .as_array()
            .ok_or("input.triples is not a list")?
            .iter()
            .map(|t| match t.as_array() {
                Some(a) if a.len() == 3 => Ok([a[0].clone(), a[1].clone(), a[2].clone()]),
                _ => Err("a triple is not [item, annotator, label]".to_string()),
            })
            .collect::<Result<_, _>>()?;
        let obj = |key: &str| -> Map<String, Value> {
            v.get(key)
                .and_then(Value::as_object)
                .cloned()
                .unwrap_or_default()
        };
        let text_of = |value: &Value, key: &str| -> Result<String, String> {
            Ok(field(value, key)?
                .as_str()
                .ok_or_else(|| format!("'{key}' is not a string"))?
                .to_string())
        };
        let gold_pairs = match input.get("gold_pairs") {
            None | Some(Value::Null) => None,
            Some(pairs) => Some(
                pairs
                    .as_array()
                    .ok_or("input.gold_pairs is not a list")?
                    .iter()
                    .map(|pair| match pair.as_array() {
                        Some(p) if p.len() == 2 => Ok((p[0].clone(), p[1].clone())),
                        _ => Err("a gold pair is not [item, label]".to_string()),
                    })
                    .collect::<Result<Vec<_>, _>>()?,
            ),
        };
        Ok(Case {
            gold_pairs,
            gold: input.get("gold").and_then(Value::as_object).cloned(),
            ground_truth: input
                .get("ground_truth")
                .and_then(Value::as_object)
                .cloned(),
            id: text_of(&v, "id")?,
            family: v
                .get("family")
                .and_then(Value::as_str)
                .unwrap_or_default()
                .to_string(),
            metric: text_of(&v, "metric")?,
            params: obj("params"),
            label_type: input
                .get("label_type")
                .and_then(Value::as_str)
                .unwrap_or("str")
                .to_string(),
            triples,
            expected: obj("expected"),
            tolerance: obj("tolerance"),
        })
    }
}

fn scalar_text(v: &Value) -> String {
    match v {
        Value::String(s) => s.clone(),
        other => other.to_string(),
    }
}

fn csv_field(s: &str) -> String {
    if s.contains([',', '"', '\n', '\r']) {
        format!("\"{}\"", s.replace('"', "\"\""))
    } else {
        s.to_string()
    }
}

/// The case's triples as the file a user would have: CSV, or JSONL for multi-label.
pub fn case_file(case: &Case) -> (Format, String) {
    if case.label_type == "set" {
        let mut out = String::new();
        for [item, annotator, label] in &case.triples {
            out.push_str(&json!({"item": scalar_text(item), "annotator": scalar_text(annotator), "label": label}).to_string());
            out.push('\n');
        }
        (Format::Jsonl, out)
    } else {
        let mut out = String::from("item,annotator,label\n");
        for [item, annotator, label] in &case.triples {
            out.push_str(&format!(
                "{},{},{}\n",
                csv_field(&scalar_text(item)),
                csv_field(&scalar_text(annotator)),
                csv_field(&scalar_text(label))
            ));
        }
        (Format::Csv, out)
    }
}

/// The `concord agreement` command-line flags equivalent to a case's params.
pub fn agreement_flags(case: &Case) -> Result<(Vec<String>, Metric), String> {
    let (metric, options, spec) = plan(case)?;
    let mut flags = vec!["--metric".to_string(), metric.key().to_string()];
    flags.push("--label-type".into());
    flags.push(
        match spec.kind {
            LabelTypeRequest::Exactly(LabelKind::Int) => "int",
            LabelTypeRequest::Exactly(LabelKind::Float) => "float",
            LabelTypeRequest::Exactly(LabelKind::Bool) => "bool",
            LabelTypeRequest::Exactly(LabelKind::Set) => "set",
            _ => "category",
        }
        .into(),
    );
    if let Some(categories) = &spec.categories {
        flags.push("--categories".into());
        flags.push(serde_json::to_string(categories).map_err(|e| e.to_string())?);
    }
    match &options.weights {
        WeightChoice::Scheme(s) => {
            flags.push("--weights".into());
            flags.push(s.name().into());
        }
        WeightChoice::Matrix(w) => {
            flags.push("--weights".into());
            flags.push("custom".into());
            flags.push("--weights-matrix".into());
            flags.push(serde_json::to_string(&w.rows()).map_err(|e| e.to_string())?);
        }
    }
    if let Some(level) = options.level {
        flags.push("--level".into());
        flags.push(level.name().into());
    }
    if options.alpha_distance.is_some() {
        flags.push("--level".into());
        flags.push("weights".into());
    }
    if options.variance == Variance::TwoRaterTable {
        flags.push("--variance".into());
        flags.push("two-rater-table".into());
    }
    flags.push("--confidence".into());
    flags.push(options.inference.confidence.to_string());
    if let Some(n) = options.inference.population {
        flags.push("--population".into());
        flags.push(n.to_string());
    }
    Ok((flags, metric))
}

/// What to compute for a case: the metric, engine options and label spec.
fn plan(case: &Case) -> Result<(Metric, AgreementOptions, LabelSpec), String> {
    let p = &case.params;
    let kind = match case.label_type.as_str() {
        "int" => LabelKind::Int,
        "float" => LabelKind::Float,
        "bool" => LabelKind::Bool,
        "set" => LabelKind::Set,
        _ => LabelKind::Category,
    };
    // The declared order: `categories`, else a `value_domain` given as a list (a
    // `value_domain` in words is informational).
    let categories = p
        .get("categories")
        .and_then(Value::as_array)
        .or_else(|| p.get("value_domain").and_then(Value::as_array))
        .map(|c| c.iter().map(scalar_text).collect::<Vec<_>>());
    let spec = LabelSpec {
        kind: LabelTypeRequest::Exactly(kind),
        categories,
    };
    let mut options = AgreementOptions::default();
    if let Some(level) = p.get("confidence_level").and_then(Value::as_f64) {
        options.inference.confidence = level;
    }
    if let Some(n) = p.get("population_size").and_then(Value::as_f64) {
        options.inference.population = Some(n);
    }
    if p.get("variance").and_then(Value::as_str) == Some("two_rater_table") {
        options.variance = Variance::TwoRaterTable;
    }
    let scheme = match p.get("weights").and_then(Value::as_str) {
        Some(name) => Some(name.parse::<WeightScheme>()?),
        None => None,
    };
    options.weights = match scheme {
        Some(WeightScheme::Custom) => {
            let rows: Vec<Vec<f64>> =
                serde_json::from_value(p.get("weights_matrix").cloned().unwrap_or(Value::Null))
                    .map_err(|e| format!("custom weights need weights_matrix: {e}"))?;
            WeightChoice::Matrix(Weights::custom(&rows)?)
        }
        Some(s) => WeightChoice::Scheme(s),
        None => WeightChoice::Scheme(WeightScheme::Identity),
    };
    let level = match (
        p.get("level").and_then(Value::as_str),
        p.get("distance").and_then(Value::as_str),
    ) {
        (_, Some("masi")) => Some(Level::Masi),
        (_, Some("binary")) | (Some("nominal"), _) => Some(Level::Nominal),
        (Some(level), _) => Some(level.parse::<Level>()?),
        (None, _) => None,
    };
    let metric = match case.metric.as_str() {
        "krippendorff_alpha_nominal" => {
            options.level = Some(Level::Nominal);
            Metric::KrippendorffAlpha
        }
        "bennett_s" => Metric::BrennanPrediger,
        "gwet_ac1_ac2" => Metric::GwetAc,
        "fleiss_kappa_generalized" => Metric::FleissGeneralized,
        "fleiss_kappa+randolph_kappa" => Metric::FleissKappa,
        other => other.parse::<Metric>()?,
    };
    if metric == Metric::KrippendorffAlpha && options.variance == Variance::Raw {
        match (level, scheme) {
            (Some(level), _) => options.level = Some(level),
            // Gwet's weighted α: distance 1 − w.
            (None, Some(_)) => options.alpha_distance = Some(Vec::new()),
            (None, None) => {}
        }
    }
    Ok((metric, options, spec))
}

/// α's distance from Gwet weights: δ = 1 − w.
pub fn distance_from_weights(w: &Weights) -> Vec<f64> {
    let q = w.q();
    (0..q * q).map(|i| 1.0 - w.get(i / q, i % q)).collect()
}

fn num(v: Option<f64>) -> Value {
    v.map_or(Value::Null, |x| json!(x))
}

/// Run a case: returns `{"id", "result"}` with the expected's keys.
pub fn run_case(case: &Case) -> Result<Value, String> {
    if is_aggregation_case(case) {
        return run_aggregation_case(case);
    }
    let (metric, mut options, spec) = plan(case)?;
    let (format, text) = case_file(case);
    let file = read_annotations_from_bytes(&case.id, text.as_bytes(), format, &spec)
        .map_err(|e| e.to_string())?;
    let table = file.table;
    if options.alpha_distance.is_some() {
        let w = match &options.weights {
            WeightChoice::Matrix(w) => w.clone(),
            WeightChoice::Scheme(s) => Weights::for_domain(*s, table.values())?,
        };
        options.alpha_distance = Some(distance_from_weights(&w));
    }
    let prepared = Prepared::new(&table);
    let run =
        |metric: Metric| compute(&prepared, metric, &options, &|_| {}).map_err(|e| e.to_string());
    let primary = run(metric)?;
    let e = &primary.estimate;
    let mut all = Map::new();
    all.insert("value".into(), num(e.value));
    if let Some(reason) = &e.undefined {
        all.insert("undefined".into(), json!(true));
        all.insert("reason".into(), json!(reason));
    }
    let is_irrcac = case.params.contains_key("variance");
    if is_irrcac {
        // Gwet/irrCAC field names.
        all.insert("coefficient_name".into(), json!(primary.name));
        all.insert("pa".into(), num(e.pa));
        // irrCAC's table Scott's π and percent agreement report pe as 0.
        let reported_pe = match (options.variance, metric) {
            (Variance::TwoRaterTable, Metric::ScottPi | Metric::PercentAgreement) => Some(0.0),
            _ => e.pe,
        };
        all.insert("pe".into(), num(reported_pe));
        all.insert("se".into(), num(e.se));
        all.insert("ci95".into(), e.ci.map_or(Value::Null, |c| json!(c)));
        // At a confidence level other than 0.95 the interval is named plainly.
        all.insert("ci".into(), e.ci.map_or(Value::Null, |c| json!(c)));
        all.insert("z".into(), num(e.z));
        // irrCAC's raw Brennan–Prediger reports a one-sided p-value.
        let p = match (options.variance, metric) {
            (Variance::Raw, Metric::BrennanPrediger) => e.p_value_one_sided,
            _ => e.p_value,
        };
        all.insert("p_value".into(), num(p));
    } else {
        // statsmodels / sklearn names (Cohen family).
        all.insert("ase".into(), num(e.se));
        all.insert("ase_h0".into(), num(e.se_h0));
        all.insert("ci95_low".into(), num(e.ci.map(|c| c[0])));
        all.insert("ci95_high".into(), num(e.ci.map(|c| c[1])));
        all.insert("z".into(), num(e.z));
        all.insert("p_two_sided".into(), num(e.p_value));
    }
    if metric == Metric::FleissKappa {
        // Fleiss' intermediate quantities: mean observed agreement and chance agreement.
        all.insert("P_bar".into(), num(e.pa));
        all.insert("Pe_bar".into(), num(e.pe));
    }
    if case.metric == "fleiss_kappa+randolph_kappa" {
        all.insert("fleiss".into(), num(e.value));
        if e.value.is_none() {
            all.insert("fleiss_undefined".into(), json!(true));
        }
        let randolph = run(Metric::RandolphKappa)?;
        all.insert("randolph".into(), num(randolph.estimate.value));
    }
    let mut result = Map::new();
    for key in case.expected.keys() {
        result.insert(key.clone(), all.get(key).cloned().unwrap_or(Value::Null));
    }
    Ok(json!({"id": case.id, "result": result}))
}

/// Compare a result with the expected values under the case's tolerances.
/// Returns the list of mismatches (empty = pass).
pub fn compare(case: &Case, result: &Map<String, Value>) -> Vec<String> {
    let tol = &case.tolerance;
    let abs = tol.get("abs").and_then(Value::as_f64).unwrap_or(1e-9);
    let se_abs = tol
        .get("se_ci_p_abs")
        .and_then(Value::as_f64)
        .unwrap_or(abs);
    let mut problems = Vec::new();
    if case.metric == "mace" {
        // Labels and thetas depend on the reference's random generator: the contract is
        // accuracy against the ground truth, equal or better within 0.05.
        let expected = case
            .expected
            .get("accuracy_vs_ground_truth")
            .and_then(Value::as_f64)
            .unwrap_or(1.0);
        let got = result
            .get("accuracy_vs_ground_truth")
            .and_then(Value::as_f64)
            .unwrap_or(f64::NAN);
        if got.is_nan() || got < expected - 0.05 {
            problems.push(format!(
                "accuracy_vs_ground_truth: expected ≥ {expected} − 0.05, got {got}"
            ));
        }
        return problems;
    }
    for (key, expected) in &case.expected {
        if matches!(key.as_str(), "coefficient_name" | "reason") {
            continue; // informational
        }
        if key == "labels" {
            let sorted = |v: &Value| -> Value {
                match v {
                    Value::Object(map) => Value::Object(
                        map.iter()
                            .map(|(k, v)| {
                                let v = match v {
                                    Value::Array(list) => {
                                        let mut list = list.clone();
                                        list.sort_by_key(|x| x.to_string());
                                        Value::Array(list)
                                    }
                                    other => other.clone(),
                                };
                                (k.clone(), v)
                            })
                            .collect(),
                    ),
                    other => other.clone(),
                }
            };
            let got = result.get(key).unwrap_or(&Value::Null);
            if sorted(expected) != sorted(got) {
                problems.push(format!("labels: expected {expected}, got {got}"));
            }
            continue;
        }
        let field_tol = tol
            .get(&format!("{key}_abs"))
            .and_then(Value::as_f64)
            .unwrap_or(match key.as_str() {
                "se" | "ci95" | "p_value" | "z" | "ase" | "ase_h0" | "ci95_low" | "ci95_high"
                | "p_two_sided" => se_abs,
                _ => abs,
            });
        let got = result.get(key).unwrap_or(&Value::Null);
        if let Some(problem) = compare_value(key, expected, got, field_tol) {
            problems.push(problem);
        }
    }
    problems
}

fn compare_value(path: &str, expected: &Value, got: &Value, tol: f64) -> Option<String> {
    match (expected, got) {
        (Value::Number(e), Value::Number(g)) => {
            let (e, g) = (
                e.as_f64().unwrap_or(f64::NAN),
                g.as_f64().unwrap_or(f64::NAN),
            );
            ((e - g).abs() > tol || g.is_nan())
                .then(|| format!("{path}: expected {e}, got {g} (tolerance {tol})"))
        }
        (Value::Array(e), Value::Array(g)) => {
            if e.len() != g.len() {
                return Some(format!(
                    "{path}: expected {} entries, got {}",
                    e.len(),
                    g.len()
                ));
            }
            e.iter()
                .zip(g)
                .enumerate()
                .find_map(|(i, (e, g))| compare_value(&format!("{path}[{i}]"), e, g, tol))
        }
        (Value::Object(e), Value::Object(g)) => {
            let mut keys: BTreeMap<&String, ()> = e.keys().map(|k| (k, ())).collect();
            keys.extend(g.keys().map(|k| (k, ())));
            keys.keys().find_map(|k| {
                compare_value(
                    &format!("{path}.{k}"),
                    e.get(*k).unwrap_or(&Value::Null),
                    g.get(*k).unwrap_or(&Value::Null),
                    tol,
                )
            })
        }
        (e, g) if e == g => None,
        (e, g) => Some(format!("{path}: expected {e}, got {g}")),
    }
}

// ---------------------------------------------------------------------------
// Aggregation and data-quality metrics (crowd-kit families)
// ---------------------------------------------------------------------------

const METRIC_CASES: [&str; 4] = [
    "accuracy_on_aggregates",
    "accuracy_on_gold",
    "consistency",
    "uncertainty",
];

fn is_aggregation_case(case: &Case) -> bool {
    case.family == "crowdkit_aggregation" || METRIC_CASES.contains(&case.metric.as_str())
}

/// The aggregation method and options a case asks for, and whether it is multi-label.
pub fn aggregation_plan(case: &Case) -> Result<(Method, AggregateOptions, bool), String> {
    let p = &case.params;
    let mut options = AggregateOptions::default();
    if let Some(n) = p.get("n_iter").and_then(Value::as_u64) {
        options.iterations = Some(n as usize);
    }
    match p.get("tol") {
        Some(Value::Null) => options.tol = Some(f64::NEG_INFINITY),
        Some(v) => options.tol = v.as_f64(),
        None => {}
    }
    if let Some(seed) = p.get("random_state").and_then(Value::as_u64) {
        options.seed = seed;
    }
    if let Some(restarts) = p.get("n_restarts").and_then(Value::as_u64) {
        options.mace_restarts = restarts as usize;
    }
    if let Some(method) = p.get("method").and_then(Value::as_str) {
        options.mace_variational = method == "vb";
    }
    let (name, multi) = match case.metric.as_str() {
        "binary_relevance(majority_vote)" => ("mv", true),
        "majority_vote"
        | "accuracy_on_aggregates"
        | "consistency"
        | "uncertainty"
        | "accuracy_on_gold" => ("mv", false),
        "zero_based_skill" => ("zbs", false),
        "gold_majority_vote" => ("gold-mv", false),
        "dawid_skene" => ("ds", false),
        "one_coin_dawid_skene" => ("one-coin-ds", false),
        other => (other, false),
    };
    Ok((name.parse::<Method>()?, options, multi))
}

/// The gold answers of a case as a CSV file (item,label).
pub fn gold_file(answers: &Map<String, Value>) -> String {
    let mut out = String::from("item,label\n");
    for (item, label) in answers {
        out.push_str(&format!(
            "{},{}\n",
            csv_field(item),
            csv_field(&scalar_text(label))
        ));
    }
    out
}

/// Several gold labels per item as a CSV file (item,label), one row per pair.
pub fn gold_pairs_file(pairs: &[(Value, Value)]) -> String {
    let mut out = String::from("item,label\n");
    for (item, label) in pairs {
        out.push_str(&format!(
            "{},{}\n",
            csv_field(&scalar_text(item)),
            csv_field(&scalar_text(label))
        ));
    }
    out
}

/// The case's known answers as the file a user passes with `--known`: `input.gold_pairs`
/// (several per item) or `input.gold`.
pub fn known_file(case: &Case) -> Option<String> {
    match (&case.gold_pairs, &case.gold) {
        (Some(pairs), _) => Some(gold_pairs_file(pairs)),
        (None, Some(gold)) => Some(gold_file(gold)),
        (None, None) => None,
    }
}

/// A label as the case writes it: typed like the input labels.
fn label_json(table: &AnnotationTable, label_type: &str, value: u32) -> Value {
    let name = table.values().name(value);
    match label_type {
        "int" => name
            .parse::<i64>()
            .map_or_else(|_| json!(name), |v| json!(v)),
        "float" => name
            .parse::<f64>()
            .map_or_else(|_| json!(name), |v| json!(v)),
        "bool" => json!(name == "true"),
        _ => json!(name),
    }
}

fn label_key(table: &AnnotationTable, label_type: &str, value: u32) -> String {
    match label_type {
        "bool" => {
            if table.values().name(value) == "true" {
                "True".into()
            } else {
                "False".into()
            }
        }
        _ => table.values().name(value).to_string(),
    }
}

fn per_item_map(table: &AnnotationTable, values: impl Fn(u32) -> Option<Value>) -> Value {
    let mut map = Map::new();
    for item in 0..table.n_items() as u32 {
        if let Some(v) = values(item) {
            map.insert(table.item_name(item).to_string(), v);
        }
    }
    Value::Object(map)
}

fn per_annotator_map(table: &AnnotationTable, values: &[Option<f64>]) -> Value {
    let mut map = Map::new();
    for (a, v) in values.iter().enumerate() {
        if let Some(v) = v {
            map.insert(table.annotator_name(a as u32).to_string(), json!(v));
        }
    }
    Value::Object(map)
}

fn reference_labels(
    table: &AnnotationTable,
    answers: &Map<String, Value>,
) -> Result<Vec<Option<u32>>, String> {
    let gold = crate::read_gold_from_bytes(
        "ground truth",
        gold_file(answers).as_bytes(),
        Format::Csv,
        table,
    )
    .map_err(|e| e.to_string())?;
    Ok(gold.known.per_item(table.n_items()))
}

fn run_aggregation_case(case: &Case) -> Result<Value, String> {
    let (method, mut options, multi) = aggregation_plan(case)?;
    let kind = match case.label_type.as_str() {
        "int" => LabelKind::Int,
        "float" => LabelKind::Float,
        "bool" => LabelKind::Bool,
        "set" => LabelKind::Set,
        _ => LabelKind::Category,
    };
    let spec = LabelSpec {
        kind: LabelTypeRequest::Exactly(kind),
        categories: None,
    };
    let (format, text) = case_file(case);
    let table = read_annotations_from_bytes(&case.id, text.as_bytes(), format, &spec)
        .map_err(|e| e.to_string())?
        .table;
    let lt = case.label_type.as_str();
    let mut all = Map::new();
    let known = match known_file(case) {
        Some(file) => Some(
            crate::read_gold_from_bytes("gold", file.as_bytes(), Format::Csv, &table)
                .map_err(|e| e.to_string())?
                .known,
        ),
        None => None,
    };
    if case.metric != "accuracy_on_gold" {
        options.known = known.clone();
    }
    let noop = |_: usize, _: f64| {};
    if multi {
        let (labels, _) =
            binary_relevance(&table, method, &options, &noop).map_err(|e| e.to_string())?;
        let elements = table.values().elements();
        all.insert(
            "labels".into(),
            per_item_map(&table, |item| {
                Some(json!(
                    labels[item as usize]
                        .iter()
                        .map(|&e| elements[e as usize].clone())
                        .collect::<Vec<_>>()
                ))
            }),
        );
    } else {
        let result = aggregate(&table, method, &options, &noop).map_err(|e| e.to_string())?;
        all.insert(
            "labels".into(),
            per_item_map(&table, |item| {
                result.labels[item as usize].map(|v| label_json(&table, lt, v))
            }),
        );
        if result.probas.is_some() {
            let rows = per_item_map(&table, |item| {
                let scores = result.proba(item)?;
                let mut row = Map::new();
                for (v, score) in scores.iter().enumerate() {
                    row.insert(label_key(&table, lt, v as u32), json!(score));
                }
                Some(Value::Object(row))
            });
            all.insert("scores".into(), rows.clone());
            all.insert("probas".into(), rows);
        }
        if let Some(skills) = &result.skills {
            let skills: Vec<Option<f64>> = skills.iter().map(|s| Some(*s)).collect();
            all.insert("skills".into(), per_annotator_map(&table, &skills));
        }
        if let Some(priors) = &result.priors {
            let mut map = Map::new();
            for (v, p) in priors.iter().enumerate() {
                map.insert(label_key(&table, lt, v as u32), json!(p));
            }
            all.insert("priors".into(), Value::Object(map));
        }
        if let Some(confusion) = &result.confusion {
            let k = confusion.k;
            let mut map = Map::new();
            for a in 0..table.n_annotators() {
                for y in 0..k {
                    if !confusion.is_observed(a, y) {
                        continue;
                    }
                    let mut row = Map::new();
                    for c in 0..k {
                        row.insert(
                            label_key(&table, lt, c as u32),
                            json!(confusion.get(a, c, y)),
                        );
                    }
                    map.insert(
                        format!(
                            "{}|{}",
                            table.annotator_name(a as u32),
                            label_key(&table, lt, y as u32)
                        ),
                        Value::Object(row),
                    );
                }
            }
            all.insert("errors".into(), Value::Object(map));
        }
        if let Some(alphas) = &result.alphas {
            let alphas: Vec<Option<f64>> = alphas.iter().map(|s| Some(*s)).collect();
            all.insert("alphas".into(), per_annotator_map(&table, &alphas));
        }
        if let Some(betas) = &result.betas {
            all.insert(
                "betas".into(),
                per_item_map(&table, |item| Some(json!(betas[item as usize]))),
            );
        }
        if let Some(thetas) = &result.thetas {
            let k = result.k;
            let rows: Vec<Vec<f64>> = thetas.chunks(k.max(1)).map(<[f64]>::to_vec).collect();
            all.insert("thetas".into(), json!(rows));
        }
        all.insert("iterations_run".into(), json!(result.iterations));
        if let Some(truth) = &case.ground_truth {
            let reference = reference_labels(&table, truth)?;
            if let Some((accuracy, _)) = label_accuracy(&result.labels, &reference) {
                all.insert("accuracy_vs_ground_truth".into(), json!(accuracy));
            }
        }
        match case.metric.as_str() {
            "accuracy_on_aggregates" => {
                let accuracy = accuracy_against(&table, &result.labels);
                all.insert("value".into(), json!(accuracy.overall));
                all.insert(
                    "per_worker".into(),
                    per_annotator_map(&table, &accuracy.per_annotator),
                );
            }
            "accuracy_on_gold" => {
                let known = known
                    .as_ref()
                    .ok_or("accuracy_on_gold needs input.gold or input.gold_pairs")?;
                let mut accepted: Vec<Vec<u32>> = vec![Vec::new(); table.n_items()];
                for &(item, value) in &known.answers {
                    accepted[item as usize].push(value);
                }
                let accuracy = accuracy_against_accepted(&table, &accepted);
                all.insert("value".into(), json!(accuracy.overall));
                all.insert(
                    "per_worker".into(),
                    per_annotator_map(&table, &accuracy.per_annotator),
                );
            }
            "consistency" => {
                let skills = result.skills.clone().unwrap_or_default();
                all.insert("value".into(), json!(consistency(&table, &result, &skills)));
            }
            "uncertainty" => {
                let by = match case.params.get("compute_by").and_then(Value::as_str) {
                    Some("worker") => UncertaintyBy::Annotator,
                    _ => UncertaintyBy::Item,
                };
                let skills = workers_skills(case, &table)?;
                let values = uncertainty(&table, skills.as_deref(), by);
                if case
                    .params
                    .get("aggregate")
                    .and_then(Value::as_bool)
                    .unwrap_or(true)
                {
                    all.insert(
                        "value".into(),
                        json!(values.iter().sum::<f64>() / values.len().max(1) as f64),
                    );
                } else {
                    let map = match by {
                        UncertaintyBy::Item => {
                            per_item_map(&table, |item| Some(json!(values[item as usize])))
                        }
                        UncertaintyBy::Annotator => per_annotator_map(
                            &table,
                            &values.iter().map(|v| Some(*v)).collect::<Vec<_>>(),
                        ),
                    };
                    all.insert("values".into(), map);
                }
            }
            _ => {}
        }
    }
    let mut result = Map::new();
    for key in case.expected.keys() {
        result.insert(key.clone(), all.get(key).cloned().unwrap_or(Value::Null));
    }
    Ok(json!({"id": case.id, "result": result}))
}

/// `params.workers_skills` (annotator → skill) as a skill per annotator of the table.
fn workers_skills(case: &Case, table: &AnnotationTable) -> Result<Option<Vec<f64>>, String> {
    let Some(given) = case.params.get("workers_skills") else {
        return Ok(None);
    };
    let given = given
        .as_object()
        .ok_or("params.workers_skills is not a map of annotator to skill")?;
    (0..table.n_annotators() as u32)
        .map(|a| {
            let name = table.annotator_name(a);
            given
                .get(name)
                .and_then(Value::as_f64)
                .ok_or_else(|| format!("params.workers_skills has no skill for annotator {name:?}"))
        })
        .collect::<Result<Vec<_>, _>>()
        .map(Some)
}

/// The `concord aggregate` flags equivalent to an aggregation case (the known-answers
/// file, when the case has one, is passed separately with `--known`).
pub fn aggregation_flags(case: &Case) -> Result<Vec<String>, String> {
    let (method, options, multi) = aggregation_plan(case)?;
    let mut flags = vec![
        "--method".to_string(),
        method.key().to_string(),
        "--label-type".into(),
    ];
    flags.push(
        match case.label_type.as_str() {
            "int" => "int",
            "float" => "float",
            "bool" => "bool",
            "set" => "set",
            _ => "category",
        }
        .into(),
    );
    if multi {
        flags.push("--multi-label".into());
    }
    if let Some(n) = options.iterations {
        flags.push("--iterations".into());
        flags.push(n.to_string());
    }
    if let Some(tol) = options.tol {
        flags.push("--tol".into());
        flags.push(if tol == f64::NEG_INFINITY {
            "-inf".to_string()
        } else {
            tol.to_string()
        });
    }
    flags.push("--seed".into());
    flags.push(options.seed.to_string());
    flags.push("--restarts".into());
    flags.push(options.mace_restarts.to_string());
    flags.push("--mace-method".into());
    flags.push(if options.mace_variational { "vb" } else { "em" }.into());
    Ok(flags)
}
