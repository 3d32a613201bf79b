"""Parquet files written by concord, read as they are by pyarrow, pandas, Polars and DuckDB:
the columns have the declared types and the
values are those of the JSONL release.

Run: CONCORD_BIN=target/release/concord python -m pytest tests/parquet
"""

import json
import os
import pathlib
import subprocess

import duckdb
import pandas
import polars
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

ROOT = pathlib.Path(__file__).resolve().parents[2]

ITEMS = [
    {"id": f"it_{n}", "item_type": "track", "title": f"Harbour lamps {n}",
     "creators": [{"name": "Odo Brennick", "role": "artist"}]}
    for n in range(1, 5)
]

LABELS = """item,annotator,decision,category,severity
it_1,ana,VIOLATING,DG.VIOL;IL.LAW,S3
it_1,ben,VIOLATING,DG.VIOL,S3
it_1,cyd,VIOLATING,DG.VIOL;IL.LAW,S4
it_2,ana,NOT_VIOLATING,,S0
it_2,ben,NOT_VIOLATING,,S0
it_2,cyd,NOT_VIOLATING,,S0
it_3,ana,BORDERLINE,SN.SEX,S2
it_3,ben,VIOLATING,SN.SEX,S3
it_3,cyd,NOT_VIOLATING,,S1
"""

SEVERITIES = ["S0", "S1", "S2", "S3", "S4"]


def concord_binary():
    path = pathlib.Path(os.environ.get("CONCORD_BIN", ROOT / "target" / "debug" / "concord"))
    if not path.exists():
        pytest.fail(f"{path} not found: build it (cargo build -p concord-cli) or set CONCORD_BIN")
    return str(path)


@pytest.fixture(scope="module")
def release(tmp_path_factory):
    """A project with three labelled items, its consensus and release v1, exported."""
    d = tmp_path_factory.mktemp("release")
    db = str(d / "p.db")

    def run(*args):
        done = subprocess.run([concord_binary(), *args, "--database-url", db],
                              capture_output=True, text=True)
        assert done.returncode == 0, done.stderr
        return done.stdout

    (d / "items.jsonl").write_text("".join(json.dumps(i) + "\n" for i in ITEMS))
    (d / "labels.csv").write_text(LABELS)
    run("project", "create", "pq", "--name", "Parquet")
    run("import", "pq", str(d / "items.jsonl"))
    run("import", "pq", "--kind", "annotations", str(d / "labels.csv"))
    run("consensus", "pq")
    run("release", "create", "pq", "v1")
    run("release", "export", "pq", "v1", "--format", "parquet", "--out", str(d / "items.parquet"))
    run("release", "export", "pq", "v1", "--out", str(d / "items.jsonl"))
    run("release", "export", "pq", "v1", "--labels", "--format", "parquet",
        "--out", str(d / "labels.parquet"))
    run("export", "pq", "--format", "parquet", "--out", str(d / "export.parquet"))
    return d


def test_release_items_have_the_declared_types(release):
    schema = pq.read_schema(release / "items.parquet")
    assert schema.field("item").type == pa.string()
    assert schema.field("source").type == pa.string()
    assert schema.field("adjudicated").type == pa.bool_()
    assert schema.field("is_gold").type == pa.bool_()
    assert schema.field("n_labels").type == pa.int64()
    assert pa.types.is_list(schema.field("guideline_versions").type)
    assert schema.field("guideline_versions").type.value_type == pa.int64()
    label = schema.field("label").type
    assert label.field("decision").type == pa.string()
    assert label.field("severity").type == pa.string()
    assert pa.types.is_list(label.field("category").type)
    assert label.field("category").type.value_type == pa.string()
    soft = schema.field("soft_label").type.field("severity").type
    assert [f.name for f in soft] == SEVERITIES, "one double per class, in the schema's order"
    assert all(f.type == pa.float64() for f in soft)
    agreement = schema.field("agreement").type
    assert all(f.type == pa.float64() for f in agreement)


def test_release_items_hold_the_jsonl_values(release):
    table = pq.read_table(release / "items.parquet")
    rows = table.to_pylist()
    records = [json.loads(line) for line in (release / "items.jsonl").read_text().splitlines()]
    assert len(rows) == len(records) == 3
    for row, record in zip(rows, records):
        for field in ["item", "source", "adjudicated", "is_gold", "n_labels", "guideline_versions"]:
            assert row[field] == record[field], field
        for question in ["decision", "category", "severity"]:
            assert row["label"][question] == record["label"].get(question)
            assert row["agreement"][question] == record["agreement"].get(question)
            soft = row["soft_label"][question]
            if soft is None:
                assert question not in record["soft_label"]
                continue
            for cls, p in soft.items():
                assert p == pytest.approx(record["soft_label"][question].get(cls, 0.0))
    assert rows[0]["label"]["category"] == ["DG.VIOL", "IL.LAW"]
    assert rows[1]["label"]["category"] is None, "nobody chose a category: no consensus"


def test_the_qa_summary_is_in_the_key_value_metadata(release):
    metadata = pq.read_metadata(release / "items.parquet").metadata
    summary = json.loads(metadata[b"concord.qa_summary"])
    assert summary["labelled_items"] == 3
    assert summary["agreement"], "α per question with its interval"
    assert json.loads(metadata[b"concord.release"])["name"] == "v1"


def test_labels_and_the_export_have_typed_columns(release):
    labels = pq.read_table(release / "labels.parquet")
    assert labels.num_rows == 9
    assert labels.schema.field("automated").type == pa.bool_()
    assert labels.schema.field("guideline_version").type == pa.int64()
    export = pq.read_table(release / "export.parquet")
    assert export.num_rows == 4
    annotation = export.schema.field("annotations").type.value_type
    assert annotation.field("id").type == pa.int64()
    assert annotation.field("created_at").type == pa.timestamp("ms", tz="UTC")
    assert annotation.field("is_late").type == pa.bool_()
    assert export.schema.field("priority").type == pa.int64()
    counts = {r["id"]: len(r["annotations"]) for r in export.to_pylist()}
    assert counts == {"it_1": 3, "it_2": 3, "it_3": 3, "it_4": 0}


def test_pandas_gets_numbers_not_strings(release):
    frame = pandas.read_parquet(release / "items.parquet")
    assert frame["n_labels"].dtype == "int64"
    assert frame["adjudicated"].dtype == bool
    assert isinstance(frame["soft_label"][0]["severity"]["S3"], float)


def test_duckdb_reads_the_same_file(release):
    con = duckdb.connect()
    path = str(release / "items.parquet")
    types = dict(con.execute(f"SELECT column_name, column_type FROM (DESCRIBE SELECT * FROM '{path}')").fetchall())
    assert types["n_labels"] == "BIGINT"
    assert types["adjudicated"] == "BOOLEAN"
    assert types["guideline_versions"] == "BIGINT[]"
    assert "S3 DOUBLE" in types["soft_label"]
    (p,) = con.execute(
        f"SELECT soft_label.severity.S3 FROM '{path}' WHERE item = 'it_1'").fetchone()
    assert isinstance(p, float) and p == 0.5, "as in the JSONL: S3 and S4 half each"
    (n,) = con.execute(
        f"SELECT count(*) FROM '{path}' WHERE list_contains(label.category, 'IL.LAW')").fetchone()
    assert n == 1


def test_polars_reads_the_same_types_and_values(release):
    frame = polars.read_parquet(release / "items.parquet")
    assert frame.schema["n_labels"] == polars.Int64
    assert frame.schema["adjudicated"] == polars.Boolean
    assert frame.schema["guideline_versions"] == polars.List(polars.Int64)
    s3 = (
        frame.filter(polars.col("item") == "it_1")
        .select(polars.col("soft_label").struct.field("severity").struct.field("S3"))
        .item()
    )
    assert isinstance(s3, float) and s3 == 0.5, "as in the JSONL: S3 and S4 half each"
    labels = polars.read_parquet(release / "labels.parquet")
    assert labels.height == 9
    assert labels.schema["automated"] == polars.Boolean
