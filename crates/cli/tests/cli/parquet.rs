//! `concord release export --format parquet` and `concord export --format parquet`: the files
//! hold what the JSONL files hold, with typed columns, read back with the parquet crate.

use std::collections::HashMap;
use std::path::Path;
use std::process::Output;

use parquet::basic::Type as Physical;
use parquet::file::reader::{FileReader, SerializedFileReader};
use serde_json::{Value, json};

use crate::support::{concord, stderr, stdout, write};

fn ok(out: Output) -> String {
    assert!(out.status.success(), "{}", stderr(&out));
    stdout(&out)
}

/// The file's rows as JSON, its key-value metadata and each leaf column's physical type.
struct ParquetFile {
    rows: Vec<Value>,
    metadata: HashMap<String, String>,
    types: HashMap<String, Physical>,
}

fn read_parquet(path: &Path) -> ParquetFile {
    let reader = SerializedFileReader::new(std::fs::File::open(path).unwrap()).unwrap();
    let meta = reader.metadata().file_metadata();
    let metadata = meta
        .key_value_metadata()
        .into_iter()
        .flatten()
        .map(|kv| (kv.key.clone(), kv.value.clone().unwrap_or_default()))
        .collect();
    let types = meta
        .schema_descr()
        .columns()
        .iter()
        .map(|c| (c.path().string(), c.physical_type()))
        .collect();
    let rows = reader
        .get_row_iter(None)
        .unwrap()
        .map(|row| row.unwrap().to_json_value())
        .collect();
    ParquetFile {
        rows,
        metadata,
        types,
    }
}

fn jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

const ITEMS: &str = r#"{"id":"it_1","item_type":"track","title":"Harbour lamps","creators":[{"name":"Odo Brennick","role":"artist"}]}
{"id":"it_2","item_type":"episode","title":"Quiet signal","creators":[{"name":"Tilde Varga","role":"host"}]}
{"id":"it_3","item_type":"track","title":"Copper meadow","creators":[{"name":"Juno Marsh","role":"artist"}]}
{"id":"it_4","item_type":"track","title":"Unlabelled","creators":[{"name":"Juno Marsh","role":"artist"}]}
"#;

const LABELS: &str = "item,annotator,decision,category,severity
it_1,ana,VIOLATING,DG.VIOL;IL.LAW,S3
it_1,ben,VIOLATING,DG.VIOL,S3
it_1,cyd,VIOLATING,DG.VIOL;IL.LAW,S4
it_2,ana,NOT_VIOLATING,,S0
it_2,ben,NOT_VIOLATING,,S0
it_2,cyd,NOT_VIOLATING,,S0
it_3,ana,BORDERLINE,SN.SEX,S2
it_3,ben,VIOLATING,SN.SEX,S3
it_3,cyd,NOT_VIOLATING,,S1
";

#[test]
fn a_parquet_release_holds_what_the_jsonl_release_holds_with_typed_columns() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("p.db");
    let db = db.to_str().unwrap();
    let run = |args: &[&str]| {
        let mut all = args.to_vec();
        all.extend(["--database-url", db]);
        ok(concord(&all))
    };
    let path = |name: &str| dir.path().join(name).to_str().unwrap().to_owned();
    run(&["project", "create", "pq", "--name", "Parquet"]);
    run(&[
        "import",
        "pq",
        write(&dir, "items.jsonl", ITEMS.as_bytes())
            .to_str()
            .unwrap(),
    ]);
    let labels = write(&dir, "labels.csv", LABELS.as_bytes());
    run(&[
        "import",
        "pq",
        "--kind",
        "annotations",
        labels.to_str().unwrap(),
    ]);
    run(&["consensus", "pq"]);
    run(&["release", "create", "pq", "v1"]);
    for (format, labels, file) in [
        ("jsonl", false, "items.jsonl"),
        ("parquet", false, "items.parquet"),
        ("jsonl", true, "labels.jsonl"),
        ("parquet", true, "labels.parquet"),
    ] {
        let out = path(file);
        let mut args = vec![
            "release", "export", "pq", "v1", "--format", format, "--out", &out,
        ];
        if labels {
            args.push("--labels");
        }
        run(&args);
    }

    // One row per released item, field by field as in the JSONL; soft labels carry every
    // class of the schema (0 where the JSONL leaves a class out).
    let file = read_parquet(&dir.path().join("items.parquet"));
    let records = jsonl(&dir.path().join("items.jsonl"));
    assert_eq!(file.rows.len(), 3, "the unlabelled item is not released");
    assert_eq!(file.rows.len(), records.len());
    for (row, record) in file.rows.iter().zip(&records) {
        for field in [
            "item",
            "source",
            "adjudicated",
            "is_gold",
            "n_labels",
            "guideline_versions",
        ] {
            assert_eq!(row[field], record[field], "{field} of {record}");
        }
        for question in ["decision", "category", "severity"] {
            assert_eq!(
                row["label"][question], record["label"][question],
                "{record}"
            );
            assert_eq!(row["agreement"][question], record["agreement"][question]);
            let Some(soft) = row["soft_label"][question].as_object() else {
                assert!(record["soft_label"].get(question).is_none(), "{record}");
                continue;
            };
            for (class, p) in soft {
                let expected = record["soft_label"][question].get(class).cloned();
                assert_eq!(
                    p.as_f64(),
                    Some(expected.and_then(|e| e.as_f64()).unwrap_or(0.0)),
                    "{question}.{class} of {record}"
                );
            }
            let classes: Vec<&String> = soft.keys().collect();
            if question == "severity" {
                assert_eq!(
                    classes,
                    ["S0", "S1", "S2", "S3", "S4"],
                    "the schema's order"
                );
            }
        }
    }
    assert_eq!(
        file.rows[0]["label"]["category"],
        json!(["DG.VIOL", "IL.LAW"]),
        "a multi-label answer is a list"
    );
    assert_eq!(
        (
            &file.rows[1]["label"]["category"],
            &file.rows[1]["soft_label"]["category"]
        ),
        (&Value::Null, &Value::Null),
        "nobody chose a category for it_2: no consensus, so nulls"
    );
    for (column, physical) in [
        ("item", Physical::BYTE_ARRAY),
        ("adjudicated", Physical::BOOLEAN),
        ("n_labels", Physical::INT64),
        ("guideline_versions.list.element", Physical::INT64),
        ("label.severity", Physical::BYTE_ARRAY),
        ("label.category.list.element", Physical::BYTE_ARRAY),
        ("soft_label.severity.S3", Physical::DOUBLE),
        ("soft_label.category.DG.VIOL", Physical::DOUBLE),
        ("agreement.decision", Physical::DOUBLE),
    ] {
        assert_eq!(file.types.get(column), Some(&physical), "{column}");
    }
    let summary: Value = serde_json::from_str(&file.metadata["concord.qa_summary"]).unwrap();
    assert_eq!(summary["labelled_items"], 3);
    assert_eq!(summary["method"], "ds");
    let release: Value = serde_json::from_str(&file.metadata["concord.release"]).unwrap();
    assert_eq!(release["name"], "v1");
    assert_eq!(release["items"], 3);
    assert!(
        release.get("summary").is_none(),
        "the summary has its own key"
    );

    // --labels: one row per individual label, the answer a struct of the questions.
    let file = read_parquet(&dir.path().join("labels.parquet"));
    let records = jsonl(&dir.path().join("labels.jsonl"));
    assert_eq!(file.rows.len(), 9);
    for (row, record) in file.rows.iter().zip(&records) {
        for field in [
            "item",
            "annotator",
            "automated",
            "kind",
            "guideline_version",
        ] {
            assert_eq!(row[field], record[field], "{field} of {record}");
        }
        for question in ["decision", "category", "severity"] {
            let expected = record["answer"]
                .get(question)
                .cloned()
                .unwrap_or(Value::Null);
            assert_eq!(row["answer"][question], expected, "{record}");
        }
    }
    assert_eq!(file.types.get("automated"), Some(&Physical::BOOLEAN));

    // A release that does not exist: a clear error, and no file is made.
    let missing = dir.path().join("missing.parquet");
    let out = concord(&[
        "release",
        "export",
        "pq",
        "v9",
        "--format",
        "parquet",
        "--out",
        missing.to_str().unwrap(),
        "--database-url",
        db,
    ]);
    assert!(!out.status.success());
    assert!(stderr(&out).contains("v9"), "{}", stderr(&out));
    assert!(!missing.exists());

    // The project's export: one row per item, its annotations a list of typed structs.
    run(&[
        "export",
        "pq",
        "--format",
        "parquet",
        "--out",
        &path("export.parquet"),
    ]);
    run(&[
        "export",
        "pq",
        "--format",
        "jsonl",
        "--out",
        &path("export.jsonl"),
    ]);
    let file = read_parquet(&dir.path().join("export.parquet"));
    let records = jsonl(&dir.path().join("export.jsonl"));
    assert_eq!(file.rows.len(), 4);
    for (row, record) in file.rows.iter().zip(&records) {
        for field in ["id", "item_type", "title", "state", "priority", "is_gold"] {
            assert_eq!(row[field], record[field], "{field} of {record}");
        }
        let creators: Value = serde_json::from_str(row["creators"].as_str().unwrap()).unwrap();
        assert_eq!(
            creators, record["creators"],
            "JSON documents stay JSON text"
        );
        let annotations = row["annotations"].as_array().unwrap();
        let expected = record["annotations"].as_array().unwrap();
        assert_eq!(annotations.len(), expected.len());
        for (a, e) in annotations.iter().zip(expected) {
            assert_eq!(a["id"], e["id"]);
            assert_eq!(a["annotator"], e["annotator"]);
            let answer: Value = serde_json::from_str(a["answer"].as_str().unwrap()).unwrap();
            assert_eq!(answer, e["answer"]);
        }
    }
    assert_eq!(
        file.types.get("annotations.list.element.created_at"),
        Some(&Physical::INT64)
    );
}
