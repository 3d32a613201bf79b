//! The annotation table, built from factorized columns.

use std::fmt::Write as _;

use concord_stats::table::{LabelKind, TableError};
use concord_stats::{AnnotationTable, Interner, LabelSpec, LabelTypeRequest, TableBuilder};
use numpy::{PyArray1, PyReadonlyArray1};
use pyo3::exceptions::PyValueError;
use pyo3::prelude::*;

/// One factorized column: its name (for messages), a code per row and the number of codes;
/// `names` gives the text of each code where the engine reads it (labels). Items and
/// annotators need none: the engine only tells them apart, and Python keeps the values to
/// index the results, so their codes stand for them.
struct Column<'a> {
    name: &'a str,
    codes: &'a [i64],
    n_codes: usize,
    names: Option<&'a [String]>,
}

impl Column<'_> {
    /// Codes as engine ids; a missing value (pandas' code −1) or an out-of-range code names
    /// the column and the row.
    fn ids(&self) -> Result<Vec<u32>, String> {
        let n = self.n_codes as i64;
        let mut ids = Vec::with_capacity(self.codes.len());
        for (row, &code) in self.codes.iter().enumerate() {
            if code < 0 || code >= n {
                return Err(if code < 0 {
                    format!("column '{}', row {row}: missing value", self.name)
                } else {
                    format!(
                        "column '{}', row {row}: code {code} is not below the {n} names given",
                        self.name
                    )
                });
            }
            ids.push(code as u32);
        }
        Ok(ids)
    }

    /// The names in code order (the codes themselves when there are no names); two different
    /// values written alike (1 and "1") are an error, since the engine would merge them.
    fn interner(&self) -> Result<Interner, String> {
        let Some(names) = self.names else {
            let mut interner = Interner::with_capacity(self.n_codes, self.n_codes * 7);
            let mut text = String::with_capacity(20);
            for code in 0..self.n_codes {
                text.clear();
                // Writing into a String cannot fail.
                let _ = write!(text, "{code}");
                interner.intern(&text);
            }
            return Ok(interner);
        };
        let bytes = names.iter().map(String::len).sum();
        let mut interner = Interner::with_capacity(names.len(), bytes);
        for name in names {
            let (_, fresh) = interner.intern(name);
            if !fresh {
                return Err(format!(
                    "column '{}': two different values are both written '{name}'",
                    self.name
                ));
            }
        }
        Ok(interner)
    }
}

/// An annotation table held by Python. Immutable; several models and coefficients can run on
/// the same one.
#[pyclass(frozen, module = "concord._engine")]
pub struct Table {
    pub(crate) table: AnnotationTable,
    /// Engine value id of each label code.
    label_values: Vec<u32>,
}

fn label_kind(label_type: &str) -> PyResult<LabelTypeRequest> {
    let request: LabelTypeRequest = label_type.parse().map_err(PyValueError::new_err)?;
    if request == LabelTypeRequest::Exactly(LabelKind::Set) {
        return Err(PyValueError::new_err(
            "set (multi-label) labels are not supported by the Python package yet",
        ));
    }
    Ok(request)
}

#[pymethods]
impl Table {
    /// `columns` names the item, annotator and label columns (for messages); each `*_codes`
    /// array gives one code per row, below `n_items` / `n_annotators` / the number of
    /// `label_names` (the text of each label code).
    #[new]
    #[pyo3(signature = (columns, item_codes, n_items, annotator_codes, n_annotators, label_codes, label_names, label_type, categories=None))]
    #[allow(clippy::too_many_arguments)]
    fn new(
        py: Python<'_>,
        columns: [String; 3],
        item_codes: PyReadonlyArray1<'_, i64>,
        n_items: usize,
        annotator_codes: PyReadonlyArray1<'_, i64>,
        n_annotators: usize,
        label_codes: PyReadonlyArray1<'_, i64>,
        label_names: Vec<String>,
        label_type: &str,
        categories: Option<Vec<String>>,
    ) -> PyResult<Self> {
        let kind = label_kind(label_type)?;
        let item_codes = item_codes.as_slice()?;
        let annotator_codes = annotator_codes.as_slice()?;
        let label_codes = label_codes.as_slice()?;
        if item_codes.len() != annotator_codes.len() || item_codes.len() != label_codes.len() {
            return Err(PyValueError::new_err(
                "the item, annotator and label columns differ in length",
            ));
        }
        let [item_column, annotator_column, label_column] = &columns;
        let item = Column {
            name: item_column,
            codes: item_codes,
            n_codes: n_items,
            names: None,
        };
        let annotator = Column {
            name: annotator_column,
            codes: annotator_codes,
            n_codes: n_annotators,
            names: None,
        };
        let label = Column {
            name: label_column,
            codes: label_codes,
            n_codes: label_names.len(),
            names: Some(&label_names),
        };
        let spec = LabelSpec { kind, categories };
        py.allow_threads(|| build(&item, &annotator, &label, &spec))
            .map_err(PyValueError::new_err)
    }

    #[getter]
    fn n_items(&self) -> usize {
        self.table.n_items()
    }
    #[getter]
    fn n_annotators(&self) -> usize {
        self.table.n_annotators()
    }
    #[getter]
    fn n_rows(&self) -> usize {
        self.table.n_rows()
    }
    /// The label values in the engine's order (numeric for numbers, by name for text,
    /// declared order when categories were given).
    #[getter]
    fn values(&self) -> Vec<String> {
        self.table.values().names().to_vec()
    }
    /// How the labels were read: category, int, float or bool.
    #[getter]
    fn label_kind(&self) -> String {
        format!("{:?}", self.table.values().kind()).to_lowercase()
    }
    /// The engine value id of each label code.
    fn label_values<'py>(&self, py: Python<'py>) -> Bound<'py, PyArray1<i64>> {
        PyArray1::from_vec(
            py,
            self.label_values.iter().map(|&v| i64::from(v)).collect(),
        )
    }
}

fn build(
    item: &Column<'_>,
    annotator: &Column<'_>,
    label: &Column<'_>,
    spec: &LabelSpec,
) -> Result<Table, String> {
    let label_names = label.names.unwrap_or_default();
    let builder = TableBuilder {
        items: item.interner()?,
        annotators: annotator.interner()?,
        raw_labels: label.interner()?,
        row_item: item.ids()?,
        row_annotator: annotator.ids()?,
        row_raw_label: label.ids()?,
    };
    let table = builder.build(spec).map_err(|e| match e {
        TableError::Label(bad) => {
            let row = label
                .codes
                .iter()
                .position(|&c| c == i64::from(bad.raw_label))
                .map(|row| format!(", row {row}"))
                .unwrap_or_default();
            format!("column '{}'{row}: {bad}", label.name)
        }
        other => format!("column '{}': {other}", label.name),
    })?;
    let label_values = label_names
        .iter()
        .map(|name| {
            table.values().find_label(name).ok_or_else(|| {
                format!(
                    "column '{}': label '{name}' has no value in the table",
                    label.name
                )
            })
        })
        .collect::<Result<_, _>>()?;
    Ok(Table {
        table,
        label_values,
    })
}
