//! An automated annotator scored like a person, question by question: agreement with the
//! human consensus and accuracy on gold (overall and per category, each with its Wilson
//! interval from `concord-stats`), a calibration table where it stated a confidence, and
//! its confusion matrix against the consensus.

use crate::report::{
    CalibrationBand, ModelCategoryScore, ModelConfusion, ModelQuestionScore, Share,
};
use concord_store::answer::same_value;
use concord_store::{Question, QuestionKind};
use serde_json::Value;
use std::collections::{BTreeMap, HashMap};

/// Confidence bands of the calibration table: below 0.5, then tenths up to 1 (inclusive).
pub const BANDS: [(f64, f64); 6] = [
    (0.0, 0.5),
    (0.5, 0.6),
    (0.6, 0.7),
    (0.7, 0.8),
    (0.8, 0.9),
    (0.9, 1.0),
];

/// The band of a stated confidence in `[0, 1]`.
pub fn band_of(confidence: f64) -> usize {
    let tenths = (confidence * 10.0).floor().clamp(4.0, 9.0) as usize;
    tenths - 4
}

#[derive(Debug, Default, Clone, Copy)]
struct Count {
    successes: u64,
    trials: u64,
}

impl Count {
    fn add(&mut self, success: bool) {
        self.trials += 1;
        self.successes += u64::from(success);
    }

    fn share(self) -> Share {
        Share::wilson(self.successes, self.trials)
    }
}

#[derive(Debug, Default, Clone, Copy)]
struct CategoryCount {
    consensus: Count,
    gold: Count,
}

/// What one label of the model says about it against the truth on its item.
pub struct Scored<'a> {
    pub given: &'a Value,
    /// The consensus label, when the consensus decided the item.
    pub consensus: Option<&'a Value>,
    /// The gold answer to the question, on a gold item.
    pub gold: Option<&'a Value>,
    /// The model's stated confidence, when it gave one.
    pub confidence: Option<f64>,
}

/// One automated annotator's answers to one question, counted.
#[derive(Debug)]
pub struct QuestionTally {
    pub name: String,
    pub labels: usize,
    agreement: Count,
    gold: Count,
    categories: HashMap<String, CategoryCount>,
    /// Per band: the answers against the consensus, and the sum of stated confidences.
    bands: [(Count, f64); BANDS.len()],
    /// (model answer, consensus answer) → items.
    confusion: HashMap<(String, String), u64>,
}

impl QuestionTally {
    pub fn new(name: &str) -> QuestionTally {
        QuestionTally {
            name: name.to_owned(),
            labels: 0,
            agreement: Count::default(),
            gold: Count::default(),
            categories: HashMap::new(),
            bands: [(Count::default(), 0.0); BANDS.len()],
            confusion: HashMap::new(),
        }
    }

    /// Counts one label; returns whether it equals the consensus (None: undecided item).
    pub fn add(&mut self, label: Scored<'_>) -> Option<bool> {
        self.labels += 1;
        let given_codes = codes(label.given);
        if let Some(truth) = label.gold {
            self.gold.add(same_value(label.given, truth));
            for code in codes(truth) {
                let hit = given_codes.contains(&code);
                self.categories.entry(code).or_default().gold.add(hit);
            }
        }
        let truth = label.consensus?;
        let same = same_value(label.given, truth);
        self.agreement.add(same);
        for code in codes(truth) {
            let hit = given_codes.contains(&code);
            self.categories.entry(code).or_default().consensus.add(hit);
        }
        if let (Value::String(given), Value::String(truth)) = (label.given, truth) {
            *self
                .confusion
                .entry((given.clone(), truth.clone()))
                .or_default() += 1;
        }
        if let Some(confidence) = label.confidence.filter(|c| (0.0..=1.0).contains(c)) {
            let band = &mut self.bands[band_of(confidence)];
            band.0.add(same);
            band.1 += confidence;
        }
        Some(same)
    }

    pub fn agreement(&self) -> Share {
        self.agreement.share()
    }

    /// The question's scores, categories and classes in schema order.
    pub fn score(&self, question: &Question) -> ModelQuestionScore {
        let categories = question
            .options
            .iter()
            .filter_map(|option| {
                let count = self.categories.get(&option.value)?;
                Some(ModelCategoryScore {
                    code: option.value.clone(),
                    label: option.label.clone(),
                    agreement: count.consensus.share(),
                    gold: count.gold.share(),
                })
            })
            .collect();
        ModelQuestionScore {
            question: question.key.clone(),
            labels: self.labels,
            agreement: self.agreement.share(),
            gold: self.gold.share(),
            categories,
            calibration: self.calibration(),
            confusion: self.confusion_matrix(question),
        }
    }

    fn calibration(&self) -> Vec<CalibrationBand> {
        BANDS
            .iter()
            .zip(&self.bands)
            .filter(|(_, (count, _))| count.trials > 0)
            .map(|(&(low, high), &(count, sum))| CalibrationBand {
                low,
                high,
                mean_confidence: sum / count.trials as f64,
                accuracy: count.share(),
            })
            .collect()
    }

    fn confusion_matrix(&self, question: &Question) -> Option<ModelConfusion> {
        if question.kind == QuestionKind::Multi {
            return None;
        }
        let classes: Vec<String> = question.options.iter().map(|o| o.value.clone()).collect();
        let index: BTreeMap<&str, usize> = classes
            .iter()
            .enumerate()
            .map(|(i, c)| (c.as_str(), i))
            .collect();
        let mut counts = vec![vec![0u64; classes.len()]; classes.len()];
        for ((given, truth), &n) in &self.confusion {
            if let (Some(&g), Some(&t)) = (index.get(given.as_str()), index.get(truth.as_str())) {
                counts[g][t] += n;
            }
        }
        let max = counts.iter().flatten().copied().max().unwrap_or(0);
        Some(ModelConfusion {
            classes,
            counts,
            max,
        })
    }
}

/// The codes a value names: a code, or a list of codes.
fn codes(value: &Value) -> Vec<String> {
    match value {
        Value::String(code) => vec![code.clone()],
        Value::Array(codes) => codes
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        _ => Vec::new(),
    }
}

#[cfg(test)]
mod tests {
    use super::band_of;

    #[test]
    fn confidences_fall_in_their_band_edges_included_below() {
        assert_eq!(band_of(0.0), 0);
        assert_eq!(band_of(0.49), 0);
        assert_eq!(band_of(0.5), 1);
        assert_eq!(band_of(0.7), 3);
        assert_eq!(band_of(0.8), 4);
        assert_eq!(band_of(0.95), 5);
        assert_eq!(band_of(1.0), 5);
    }
}
