//! The store validates settings with its own lists of names, so that it does not depend on
//! the engine; these tests keep those lists and the engine's parsers in agreement.

use concord_stats::aggregate::Method;
use concord_stats::agreement::report::Metric;
use concord_store::{CONSENSUS_METHODS, REPORT_METRICS};
use std::collections::BTreeSet;

#[test]
fn the_stores_metric_names_are_the_engines() {
    let mut reached = BTreeSet::new();
    for name in REPORT_METRICS {
        let metric: Metric = name
            .parse()
            .unwrap_or_else(|e| panic!("the engine does not know {name:?}: {e}"));
        reached.insert(metric.key());
    }
    let all: BTreeSet<_> = Metric::ALL.iter().map(|m| m.key()).collect();
    assert_eq!(
        reached, all,
        "every coefficient is named in the store's list"
    );
    for metric in Metric::ALL {
        assert!(
            REPORT_METRICS.contains(&metric.key()),
            "{} is missing from the store's list",
            metric.key()
        );
    }
    assert!("not_a_metric".parse::<Metric>().is_err());
    assert!(!REPORT_METRICS.contains(&"not_a_metric"));
}

#[test]
fn the_stores_consensus_methods_are_engine_methods() {
    for name in CONSENSUS_METHODS {
        let method: Method = name
            .parse()
            .unwrap_or_else(|e| panic!("the engine does not know {name:?}: {e}"));
        assert_eq!(method.key(), name, "the store names {name:?} by its key");
    }
}
