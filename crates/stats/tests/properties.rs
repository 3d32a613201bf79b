//! Properties every agreement coefficient must have, over random tables.

use concord_stats::agreement::bootstrap::BootstrapOptions;
use concord_stats::{
    AgreementOptions, AnnotationTable, LabelSpec, Level, Metric, Prepared, compute,
};
use proptest::prelude::*;

type Rows = Vec<(u32, u32, u32)>;

/// Random tables: up to 25 items, 6 annotators, 4 categories, 1–5 ratings per item.
fn rows() -> impl Strategy<Value = Rows> {
    prop::collection::vec(
        (0u32..25, prop::collection::vec((0u32..6, 0u32..4), 1..5)),
        2..25,
    )
    .prop_map(|items| {
        // One rating per (item, annotator): with repeats, "the last rating" (rater-identity
        // coefficients) legitimately depends on row order.
        let mut rows = Vec::new();
        let mut seen = std::collections::HashSet::new();
        for (item, ratings) in items {
            for (annotator, label) in ratings {
                if seen.insert((item, annotator)) {
                    rows.push((item, annotator, label));
                }
            }
        }
        rows
    })
}

fn table(
    rows: &Rows,
    item: impl Fn(u32) -> String,
    annotator: impl Fn(u32) -> String,
    label: impl Fn(u32) -> String,
) -> AnnotationTable {
    let owned: Vec<(String, String, String)> = rows
        .iter()
        .map(|&(i, a, l)| (item(i), annotator(a), label(l)))
        .collect();
    AnnotationTable::from_triples(
        owned
            .iter()
            .map(|(i, a, l)| (i.as_str(), a.as_str(), l.as_str())),
        &LabelSpec {
            kind: concord_stats::LabelTypeRequest::Exactly(concord_stats::LabelKind::Category),
            categories: None,
        },
    )
    .unwrap()
}

fn values(table: &AnnotationTable) -> Vec<Option<f64>> {
    let prepared = Prepared::new(table);
    let options = AgreementOptions::default();
    [
        Metric::PercentAgreement,
        Metric::KrippendorffAlpha,
        Metric::FleissGeneralized,
        Metric::GwetAc,
        Metric::BrennanPrediger,
        Metric::FleissKappa,
        Metric::CongerKappa,
    ]
    .iter()
    .map(|&m| {
        compute(&prepared, m, &options, &|_| {})
            .unwrap()
            .estimate
            .value
    })
    .collect()
}

fn same(a: &[Option<f64>], b: &[Option<f64>]) -> bool {
    a.iter().zip(b).all(|(x, y)| match (x, y) {
        (Some(x), Some(y)) => (x - y).abs() < 1e-9,
        (None, None) => true,
        _ => false,
    })
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn alpha_is_one_when_everyone_agrees(rows in rows()) {
        // Every annotator gives the item's own label (item mod 3); at least two labels in use.
        let mut agreeing: Rows = rows.iter().map(|&(i, a, _)| (i, a, i % 3)).collect();
        agreeing.extend([(100, 0, 0), (100, 1, 0), (101, 0, 1), (101, 1, 1)]);
        // Ordinal α on text labels needs their declared order.
        let owned: Vec<(String, String, String)> = agreeing
            .iter()
            .map(|&(i, a, l)| (i.to_string(), a.to_string(), l.to_string()))
            .collect();
        let t = AnnotationTable::from_triples(
            owned.iter().map(|(i, a, l)| (i.as_str(), a.as_str(), l.as_str())),
            &LabelSpec {
                kind: concord_stats::LabelTypeRequest::Exactly(concord_stats::LabelKind::Category),
                categories: Some(["0", "1", "2"].map(String::from).to_vec()),
            },
        )
        .unwrap();
        let prepared = Prepared::new(&t);
        for level in [Level::Nominal, Level::Ordinal] {
            let options = AgreementOptions { level: Some(level), ..Default::default() };
            let alpha = compute(&prepared, Metric::KrippendorffAlpha, &options, &|_| {}).unwrap();
            prop_assert!((alpha.estimate.value.unwrap() - 1.0).abs() < 1e-12);
        }
    }

    #[test]
    fn coefficients_do_not_depend_on_names_or_row_order(rows in rows(), seed in any::<u64>()) {
        let base = values(&table(&rows, |i| format!("item{i}"), |a| format!("ann{a}"), |l| format!("cat{l}")));
        // Rename ids and categories (an order-preserving renaming of categories keeps the value order).
        let renamed = values(&table(&rows, |i| format!("x{}", 1000 - i), |a| format!("rater-{}", 7 * a + 3), |l| format!("c{l}")));
        prop_assert!(same(&base, &renamed), "{base:?} vs {renamed:?}");
        // Permute rows.
        let mut shuffled = rows.clone();
        let n = shuffled.len();
        let mut state = seed | 1;
        for i in (1..n).rev() {
            state ^= state << 13; state ^= state >> 7; state ^= state << 17;
            shuffled.swap(i, (state % (i as u64 + 1)) as usize);
        }
        let permuted = values(&table(&shuffled, |i| format!("item{i}"), |a| format!("ann{a}"), |l| format!("cat{l}")));
        prop_assert!(same(&base, &permuted), "{base:?} vs {permuted:?}");
    }

    #[test]
    fn nominal_coefficients_do_not_depend_on_category_names(rows in rows()) {
        let base = values(&table(&rows, |i| i.to_string(), |a| a.to_string(), |l| format!("c{l}")));
        // A renaming that reverses the category order.
        let reversed = values(&table(&rows, |i| i.to_string(), |a| a.to_string(), |l| format!("c{}", 9 - l)));
        prop_assert!(same(&base, &reversed), "{base:?} vs {reversed:?}");
    }

    #[test]
    fn the_bootstrap_interval_contains_the_estimate(rows in rows(), seed in any::<u64>()) {
        let t = table(&rows, |i| i.to_string(), |a| a.to_string(), |l| l.to_string());
        let prepared = Prepared::new(&t);
        let options = AgreementOptions {
            bootstrap: Some(BootstrapOptions { replicates: 200, seed, confidence: 0.95 }),
            ..Default::default()
        };
        for metric in [Metric::PercentAgreement, Metric::BrennanPrediger] {
            let r = compute(&prepared, metric, &options, &|_| {}).unwrap();
            if let (Some(value), Some(b)) = (r.estimate.value, r.bootstrap) {
                // Percentile intervals of a mean-like statistic bracket the estimate.
                prop_assert!(b.ci[0] <= value + 1e-9 && value <= b.ci[1] + 1e-9, "{value} not in {:?}", b.ci);
            }
        }
    }
}
