//! Conformance cases (JSON test vectors; schema in tests/conformance/README.md):
//! reading a case, running it through the same reader and engine user data takes,
//! mapping the engine's results to the reference's field names, and comparing.

use std::collections::BTreeMap;

use concord_stats::agreement::report::{
    AgreementOptions, Metric, Prepared, Variance, WeightChoice, compute,
};
use concord_stats::{LabelKind, LabelSpec, LabelTypeRequest, Level, WeightScheme, Weights};
use serde_json::{Map, Value, json};

use crate::{Format, read_annotations_from_bytes};

/// A parsed case.
#[derive(Clone, Debug)]
pub struct Case {
    pub id: String,
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
        Ok(Case {
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
    let categories = p
        .get("categories")
        .and_then(Value::as_array)
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
    for (key, expected) in &case.expected {
        if matches!(key.as_str(), "coefficient_name" | "reason") {
            continue; // informational
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
