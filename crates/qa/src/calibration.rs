//! Calibration rounds: the report of a round (each annotator's agreement with the key the
//! QA experts' answers form and with the other annotators, per question and per category,
//! with intervals) and the pass / retrain verdicts that close it.
//!
//! The key of an item on a question is the answer most of the round's experts gave; when
//! experts split evenly the item has no key on that question and is not scored. An
//! annotator's share of answers equal to the key is a proportion with a Wilson interval;
//! Krippendorff's α between annotator and key (at the question's level) comes from the same
//! engine path as every agreement figure. The verdict compares the lowest share over the
//! questions with the round's threshold.

use crate::QaError;
use crate::compute::{alpha_and_percent, label_text};
use crate::report::Figure;
use concord_stats::TableBuilder;
use concord_stats::sampling::wilson;
use concord_store::ItemId;
use concord_store::UserId;
use concord_store::{
    CalibrationAnswer, CalibrationPart, CalibrationParticipant, CalibrationRound,
    CalibrationVerdict, Id, LabelSchema, NewCalibrationRound, Project, Question, QuestionKind,
    RoundStatus, RoundVerdict, Store, StoreError,
};
use serde::Serialize;
use serde_json::Value;
use std::collections::{BTreeMap, BTreeSet, HashMap};

/// Confidence of every interval in the report.
const CONFIDENCE: f64 = 0.95;

#[derive(Debug, Clone, Serialize)]
pub struct CalibrationReport {
    pub round: CalibrationRound,
    pub participants: Vec<CalibrationParticipant>,
    /// Items with a key on at least one question.
    pub keyed_items: usize,
    pub questions: Vec<QuestionCalibration>,
    /// One per annotator of the round; provisional while the round is open.
    pub verdicts: Vec<AnnotatorVerdict>,
    /// The project's guideline moved on since the round opened: time to repeat it.
    pub guideline_revised: bool,
}

#[derive(Debug, Clone, Serialize)]
pub struct QuestionCalibration {
    pub key: String,
    pub prompt: String,
    /// Items whose experts agree on an answer to this question.
    pub keyed: usize,
    /// Items the experts answered but split evenly on: not scored.
    pub experts_split: usize,
    /// α among the annotators on the round's items.
    pub group_alpha: Figure,
    pub annotators: Vec<AnnotatorCalibration>,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnnotatorCalibration {
    pub user_id: UserId,
    pub annotator: String,
    pub with_key: KeyAgreement,
    /// The share of answers equal to the other annotators' majority (items where they tie
    /// are left out).
    pub with_group: Share,
    pub categories: Vec<CategoryAgreement>,
}

#[derive(Debug, Clone, Serialize)]
pub struct KeyAgreement {
    #[serde(flatten)]
    pub share: Share,
    pub alpha: Figure,
}

/// `same` of `compared` answers, as a share with its Wilson interval.
#[derive(Debug, Clone, Serialize)]
pub struct Share {
    pub compared: usize,
    pub same: usize,
    pub percent: Figure,
}

/// How an annotator finds one category (an option of the question): of the items whose key
/// has it, how many they gave it too; and how often they gave it where the key did not.
#[derive(Debug, Clone, Serialize)]
pub struct CategoryAgreement {
    pub code: String,
    pub label: String,
    pub key_items: usize,
    pub matched: usize,
    pub recall: Figure,
    pub extra: usize,
}

#[derive(Debug, Clone, Serialize)]
pub struct AnnotatorVerdict {
    pub user_id: UserId,
    pub annotator: String,
    pub verdict: CalibrationVerdict,
    /// The lowest share of answers equal to the key over the questions.
    pub score: Option<f64>,
    /// Keyed items this annotator answered, of `keyed_items`.
    pub answered_keyed: usize,
    /// Questions below the threshold.
    pub below_threshold: Vec<String>,
}

/// Which items a new round holds.
#[derive(Debug, Clone)]
pub enum RoundItems {
    /// The project's items with these external ids, in this order.
    External(Vec<String>),
    /// This many of the project's items, settled ones first (see `Store::calibration_sample`).
    Sample(usize),
}

/// What an analyst asks for when opening a round; unset fields take the project's
/// `settings.qa.calibration`.
#[derive(Debug, Clone)]
pub struct RoundRequest {
    pub name: String,
    pub items: RoundItems,
    pub threshold: Option<f64>,
    pub hold_until_verdict: Option<bool>,
}

/// Opens a round on the project's items.
pub async fn open_round(
    store: &Store,
    project: &Project,
    request: RoundRequest,
    actor: Option<UserId>,
) -> Result<CalibrationRound, QaError> {
    let settings = &project.settings.qa.calibration;
    let item_ids = match &request.items {
        RoundItems::External(ids) => store.item_ids_by_external(project.id, ids).await?,
        RoundItems::Sample(count) => store.calibration_sample(project.id, *count).await?,
    };
    let new = NewCalibrationRound {
        name: request.name,
        item_ids,
        threshold: request.threshold.unwrap_or(settings.threshold),
        hold_until_verdict: request
            .hold_until_verdict
            .unwrap_or(settings.hold_until_verdict),
        repeats: None,
    };
    Ok(store.open_calibration_round(project, new, actor).await?)
}

/// Opens a repeat of a round: the same items and threshold, under the guideline version
/// current now.
pub async fn repeat_round(
    store: &Store,
    project: &Project,
    round_id: Id,
    actor: Option<UserId>,
) -> Result<CalibrationRound, QaError> {
    let round = store.calibration_round(project.id, round_id).await?;
    let items = store.calibration_items(round.id).await?;
    let version = match project.current_guideline_version_id {
        Some(id) => Some(store.guideline_by_id(id).await?.version),
        None => None,
    };
    let base = round
        .name
        .split(" (repeat")
        .next()
        .unwrap_or(&round.name)
        .to_owned();
    let name = match version {
        Some(v) => format!("{base} (repeat, guideline v{v})"),
        None => format!("{base} (repeat)"),
    };
    let new = NewCalibrationRound {
        name,
        item_ids: items.iter().map(|i| i.item_id).collect(),
        threshold: round.threshold,
        hold_until_verdict: round.hold_until_verdict,
        repeats: Some(round.id),
    };
    Ok(store.open_calibration_round(project, new, actor).await?)
}

/// After a guideline revision is published: with `settings.qa.calibration.repeat_on_revision`,
/// the project's latest round is repeated, unless a round is open or there is none.
pub async fn repeat_after_revision(
    store: &Store,
    project_slug: &str,
    actor: Option<UserId>,
) -> Result<Option<CalibrationRound>, QaError> {
    let project = store.project(project_slug).await?;
    if !project.settings.qa.calibration.repeat_on_revision {
        return Ok(None);
    }
    let rounds = store.calibration_rounds(project.id).await?;
    let Some(latest) = rounds.first() else {
        return Ok(None);
    };
    if latest.status == RoundStatus::Open
        || latest.guideline_version_id == project.current_guideline_version_id
    {
        return Ok(None);
    }
    let repeat = repeat_round(store, &project, latest.id, actor).await?;
    tracing::info!(round = repeat.id, project = %project.slug, "calibration round repeated after a guideline revision");
    Ok(Some(repeat))
}

/// A round's report under the project's current schema.
pub async fn round_report(
    store: &Store,
    project: &Project,
    round_id: Id,
) -> Result<CalibrationReport, QaError> {
    let round = store.calibration_round(project.id, round_id).await?;
    let participants = store.calibration_participants(project.id, round.id).await?;
    let answers = store.calibration_answers(round.id).await?;
    let schema = store.current_schema(project.id).await?.definition;
    let revised = round.guideline_version_id != project.current_guideline_version_id;
    Ok(calibration_report(
        round,
        participants,
        &schema,
        &answers,
        revised,
    ))
}

/// Closes an open round with the verdicts of its report; returns the report as closed.
pub async fn close_round(
    store: &Store,
    project: &Project,
    round_id: Id,
    actor: Option<UserId>,
) -> Result<CalibrationReport, QaError> {
    let report = round_report(store, project, round_id).await?;
    if report.round.status != RoundStatus::Open {
        return Err(StoreError::Conflict(format!(
            "calibration round {round_id} is already closed"
        ))
        .into());
    }
    if report.keyed_items == 0 {
        return Err(StoreError::Conflict(
            "the round has no key yet: no item has an answer most of its QA experts agree on"
                .into(),
        )
        .into());
    }
    let verdicts = report
        .verdicts
        .iter()
        .map(|v| RoundVerdict {
            user_id: v.user_id,
            verdict: v.verdict,
            score: v.score,
        })
        .collect();
    let round = store
        .close_calibration_round(project.id, round_id, verdicts, actor)
        .await?;
    // The answers and figures did not change: only the round and its people (verdicts,
    // holds) are read again.
    let participants = store.calibration_participants(project.id, round_id).await?;
    Ok(CalibrationReport {
        round,
        participants,
        ..report
    })
}

/// The report of a round from its answers (pure: the rules are tested on plain data).
pub fn calibration_report(
    round: CalibrationRound,
    participants: Vec<CalibrationParticipant>,
    schema: &LabelSchema,
    answers: &[CalibrationAnswer],
    guideline_revised: bool,
) -> CalibrationReport {
    let annotators: Vec<&CalibrationParticipant> = participants
        .iter()
        .filter(|p| p.part == CalibrationPart::Annotator)
        .collect();
    let answered: HashMap<(UserId, ItemId), &Value> = answers
        .iter()
        .map(|a| ((a.user_id, a.item_id), &a.answer))
        .collect();
    let keys: Vec<QuestionKey> = schema
        .questions
        .iter()
        .map(|q| QuestionKey::of(q, answers))
        .collect();
    let keyed_items: BTreeSet<ItemId> = keys.iter().flat_map(|k| k.keys.keys().copied()).collect();
    let questions: Vec<QuestionCalibration> = schema
        .questions
        .iter()
        .zip(&keys)
        .map(|(question, key)| question_calibration(question, key, &annotators, &answered))
        .collect();
    let verdicts = annotators
        .iter()
        .map(|person| verdict(person, &questions, &keyed_items, &answered, round.threshold))
        .collect();
    CalibrationReport {
        round,
        keyed_items: keyed_items.len(),
        participants,
        questions,
        verdicts,
        guideline_revised,
    }
}

/// An answer to one question: its canonical text (what is compared) and its codes.
#[derive(Debug, Clone)]
struct Given {
    text: String,
    codes: Vec<String>,
}

fn given(question: &Question, answer: &Value) -> Option<Given> {
    let value = answer.get(&question.key)?;
    let text = label_text(question, value)?;
    let codes = match value {
        Value::Array(codes) => codes
            .iter()
            .filter_map(Value::as_str)
            .map(String::from)
            .collect(),
        Value::String(code) => vec![code.clone()],
        _ => Vec::new(),
    };
    Some(Given { text, codes })
}

/// The experts' key on one question: per item, the answer most of them gave.
struct QuestionKey {
    keys: BTreeMap<ItemId, Given>,
    split: usize,
}

impl QuestionKey {
    fn of(question: &Question, answers: &[CalibrationAnswer]) -> QuestionKey {
        let mut by_item: BTreeMap<ItemId, Vec<Given>> = BTreeMap::new();
        for a in answers.iter().filter(|a| a.part == CalibrationPart::Expert) {
            if let Some(g) = given(question, &a.answer) {
                by_item.entry(a.item_id).or_default().push(g);
            }
        }
        let mut keys = BTreeMap::new();
        let mut split = 0;
        for (item, givens) in by_item {
            match majority(givens.iter()) {
                Some(winner) => {
                    keys.insert(item, winner.clone());
                }
                None => split += 1,
            }
        }
        QuestionKey { keys, split }
    }
}

/// The answer given most often; `None` when the top is shared (or nothing was given).
fn majority<'a>(givens: impl Iterator<Item = &'a Given>) -> Option<&'a Given> {
    let mut counts: BTreeMap<&str, (usize, &Given)> = BTreeMap::new();
    for g in givens {
        counts.entry(g.text.as_str()).or_insert((0, g)).0 += 1;
    }
    let top = counts.values().map(|(n, _)| *n).max()?;
    let mut at_top = counts.values().filter(|(n, _)| *n == top);
    let (_, winner) = at_top.next()?;
    at_top.next().is_none().then_some(*winner)
}

fn question_calibration(
    question: &Question,
    key: &QuestionKey,
    annotators: &[&CalibrationParticipant],
    answered: &HashMap<(UserId, ItemId), &Value>,
) -> QuestionCalibration {
    // Every annotator's answer to this question, by item.
    let mut by_item: BTreeMap<ItemId, Vec<(UserId, Given)>> = BTreeMap::new();
    for ((user, item), answer) in answered {
        if annotators.iter().any(|p| p.user_id == *user)
            && let Some(g) = given(question, answer)
        {
            by_item.entry(*item).or_default().push((*user, g));
        }
    }
    let mut group = TableBuilder::new();
    for (item, givens) in &by_item {
        for (user, g) in givens {
            group.push(&item.to_string(), &user.to_string(), &g.text);
        }
    }
    let group_alpha = if group.is_empty() {
        undefined("no annotator has answered yet")
    } else {
        alpha_and_percent(question, group).0
    };
    QuestionCalibration {
        key: question.key.clone(),
        prompt: question.prompt.clone(),
        keyed: key.keys.len(),
        experts_split: key.split,
        group_alpha,
        annotators: annotators
            .iter()
            .map(|person| annotator_calibration(question, key, person, answered, &by_item))
            .collect(),
    }
}

fn annotator_calibration(
    question: &Question,
    key: &QuestionKey,
    person: &CalibrationParticipant,
    answered: &HashMap<(UserId, ItemId), &Value>,
    by_item: &BTreeMap<ItemId, Vec<(UserId, Given)>>,
) -> AnnotatorCalibration {
    // Keyed items this person answered; a missing answer to the question is a miss.
    let scored: Vec<(ItemId, &Given, Option<Given>)> = key
        .keys
        .iter()
        .filter_map(|(item, truth)| {
            let answer = answered.get(&(person.user_id, *item))?;
            Some((*item, truth, given(question, answer)))
        })
        .collect();
    let same = scored
        .iter()
        .filter(|(_, truth, mine)| mine.as_ref().is_some_and(|m| m.text == truth.text))
        .count();
    let mut pairs = TableBuilder::new();
    for (item, truth, mine) in &scored {
        if let Some(mine) = mine {
            pairs.push(&item.to_string(), "annotator", &mine.text);
            pairs.push(&item.to_string(), "key", &truth.text);
        }
    }
    let alpha = if pairs.is_empty() {
        undefined("no keyed item answered yet")
    } else {
        alpha_and_percent(question, pairs).0
    };
    AnnotatorCalibration {
        user_id: person.user_id,
        annotator: person.username.clone(),
        with_key: KeyAgreement {
            share: share(same, scored.len()),
            alpha,
        },
        with_group: with_group(person.user_id, by_item),
        categories: categories(question, &scored),
    }
}

/// The person's answers against the majority of the other annotators, item by item.
fn with_group(user_id: UserId, by_item: &BTreeMap<ItemId, Vec<(UserId, Given)>>) -> Share {
    let (mut compared, mut same) = (0, 0);
    for givens in by_item.values() {
        let Some((_, mine)) = givens.iter().find(|(u, _)| *u == user_id) else {
            continue;
        };
        let others = givens.iter().filter(|(u, _)| *u != user_id).map(|(_, g)| g);
        if let Some(group) = majority(others) {
            compared += 1;
            same += usize::from(group.text == mine.text);
        }
    }
    share(same, compared)
}

fn categories(
    question: &Question,
    scored: &[(ItemId, &Given, Option<Given>)],
) -> Vec<CategoryAgreement> {
    if !matches!(
        question.kind,
        QuestionKind::Single | QuestionKind::Multi | QuestionKind::Ordinal
    ) {
        return Vec::new();
    }
    question
        .options
        .iter()
        .filter_map(|option| {
            let code = option.value.as_str();
            let (mut key_items, mut matched, mut extra) = (0, 0, 0);
            for (_, truth, mine) in scored {
                let in_key = truth.codes.iter().any(|c| c == code);
                let in_mine = mine
                    .as_ref()
                    .is_some_and(|m| m.codes.iter().any(|c| c == code));
                key_items += usize::from(in_key);
                matched += usize::from(in_key && in_mine);
                extra += usize::from(!in_key && in_mine);
            }
            (key_items > 0 || extra > 0).then(|| CategoryAgreement {
                code: code.to_owned(),
                label: option.label.clone(),
                key_items,
                matched,
                recall: share(matched, key_items).percent,
                extra,
            })
        })
        .collect()
}

fn verdict(
    person: &CalibrationParticipant,
    questions: &[QuestionCalibration],
    keyed_items: &BTreeSet<ItemId>,
    answered: &HashMap<(UserId, ItemId), &Value>,
    threshold: f64,
) -> AnnotatorVerdict {
    let answered_keyed = keyed_items
        .iter()
        .filter(|item| answered.contains_key(&(person.user_id, **item)))
        .count();
    let mut score: Option<f64> = None;
    let mut below = Vec::new();
    for question in questions.iter().filter(|q| q.keyed > 0) {
        let Some(mine) = question
            .annotators
            .iter()
            .find(|a| a.user_id == person.user_id)
        else {
            continue;
        };
        if let Some(value) = mine.with_key.share.percent.value {
            score = Some(score.map_or(value, |s: f64| s.min(value)));
            // `same / compared` rounds to the same double as the decimal threshold it
            // equals (4 / 5 and 0.8), so the comparison is exact.
            if value < threshold {
                below.push(question.key.clone());
            }
        }
    }
    let verdict = if answered_keyed < keyed_items.len() || keyed_items.is_empty() {
        CalibrationVerdict::Incomplete
    } else if below.is_empty() {
        CalibrationVerdict::Pass
    } else {
        CalibrationVerdict::Retrain
    };
    AnnotatorVerdict {
        user_id: person.user_id,
        annotator: person.username.clone(),
        verdict,
        score,
        answered_keyed,
        below_threshold: below,
    }
}

fn share(same: usize, compared: usize) -> Share {
    let percent = if compared == 0 {
        undefined("nothing to compare yet")
    } else {
        let p = wilson(same as u64, compared as u64, CONFIDENCE);
        Figure {
            value: p.estimate,
            ci: Some([p.low, p.high]),
            ..Figure::default()
        }
    };
    Share {
        compared,
        same,
        percent,
    }
}

fn undefined(reason: &str) -> Figure {
    Figure {
        undefined: Some(reason.into()),
        ..Figure::default()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_store::AnswerKind;
    use concord_store::ProjectId;
    use serde_json::json;

    fn schema() -> LabelSchema {
        serde_json::from_value(json!({
            "questions": [
                {"key": "decision", "prompt": "Decision", "kind": "single",
                 "options": [{"value": "OK", "label": "OK"}, {"value": "BAD", "label": "Bad"}]},
                {"key": "category", "prompt": "Category", "kind": "multi", "required": false,
                 "options": [{"value": "VIOL", "label": "Violence"},
                             {"value": "HATE", "label": "Hate"}]}
            ]
        }))
        .unwrap()
    }

    fn round(threshold: f64) -> CalibrationRound {
        CalibrationRound {
            id: 1,
            project_id: ProjectId(1),
            name: "R".into(),
            threshold,
            hold_until_verdict: true,
            guideline_version_id: None,
            guideline_version: None,
            repeats: None,
            status: RoundStatus::Open,
            created_by: None,
            created_at: 0,
            closed_at: None,
            items: 10,
            annotators: 3,
            experts: 2,
            answers: 0,
        }
    }

    fn person(id: Id, name: &str, part: CalibrationPart) -> CalibrationParticipant {
        CalibrationParticipant {
            user_id: UserId(id),
            username: name.into(),
            display_name: name.into(),
            part,
            answered: 0,
            verdict: None,
            score: None,
            held: false,
            released_by: None,
            released_at: None,
        }
    }

    fn said(user: Id, part: CalibrationPart, item: Id, answer: Value) -> CalibrationAnswer {
        CalibrationAnswer {
            user_id: UserId(user),
            username: format!("u{user}"),
            part,
            item_id: ItemId(item),
            kind: AnswerKind::Label,
            answer,
        }
    }

    /// Ten items; both experts say BAD on items 0–3 and OK on 4–9, except item 9 where they
    /// split. `good` matches the key on all nine keyed items, `weak` misses items 0 and 1,
    /// `absent` answers only item 0.
    fn answers() -> Vec<CalibrationAnswer> {
        use CalibrationPart::*;
        let mut out = Vec::new();
        for item in 0..10 {
            let key = if item < 4 { "BAD" } else { "OK" };
            let second = if item == 9 { "BAD" } else { key };
            let category = if item < 4 { json!(["VIOL"]) } else { json!([]) };
            out.push(said(
                10,
                Expert,
                item,
                json!({"decision": key, "category": category}),
            ));
            out.push(said(
                11,
                Expert,
                item,
                json!({"decision": second, "category": category}),
            ));
            out.push(said(
                1,
                Annotator,
                item,
                json!({"decision": key, "category": category}),
            ));
            let weak = if item < 2 { "OK" } else { key };
            let weak_category = if item < 2 {
                json!(["HATE"])
            } else {
                category.clone()
            };
            out.push(said(
                2,
                Annotator,
                item,
                json!({"decision": weak, "category": weak_category}),
            ));
        }
        out.push(said(
            3,
            Annotator,
            0,
            json!({"decision": "BAD", "category": ["VIOL"]}),
        ));
        out
    }

    fn report(threshold: f64) -> CalibrationReport {
        use CalibrationPart::*;
        let people = vec![
            person(1, "good", Annotator),
            person(2, "weak", Annotator),
            person(3, "absent", Annotator),
            person(10, "exp1", Expert),
            person(11, "exp2", Expert),
        ];
        calibration_report(round(threshold), people, &schema(), &answers(), false)
    }

    #[test]
    fn the_key_is_the_experts_majority_and_an_even_split_is_not_scored() {
        let report = report(0.8);
        let decision = &report.questions[0];
        assert_eq!((decision.keyed, decision.experts_split), (9, 1));
        // Both experts give the same categories on every item, item 9's empty set included.
        assert_eq!(report.questions[1].keyed, 10);
        assert_eq!(report.keyed_items, 10);
    }

    #[test]
    fn shares_of_the_key_carry_a_wilson_interval_and_alpha_beside_them() {
        let report = report(0.8);
        let decision = &report.questions[0];
        let weak = decision
            .annotators
            .iter()
            .find(|a| a.annotator == "weak")
            .unwrap();
        assert_eq!(
            (weak.with_key.share.same, weak.with_key.share.compared),
            (7, 9)
        );
        let p = wilson(7, 9, 0.95);
        assert_eq!(weak.with_key.share.percent.value, Some(7.0 / 9.0));
        assert_eq!(weak.with_key.share.percent.ci, Some([p.low, p.high]));
        let good = decision
            .annotators
            .iter()
            .find(|a| a.annotator == "good")
            .unwrap();
        assert_eq!(good.with_key.alpha.value, Some(1.0));
        assert!(weak.with_key.alpha.value.unwrap() < 1.0);
        // With the group: every item, the split one included (the key does not matter
        // here); on item 0 the others are `good` and `absent`, both BAD.
        assert_eq!((weak.with_group.same, weak.with_group.compared), (8, 10));
    }

    #[test]
    fn per_category_counts_what_the_key_has_found_and_what_was_added() {
        let report = report(0.8);
        let category = &report.questions[1];
        let weak = category
            .annotators
            .iter()
            .find(|a| a.annotator == "weak")
            .unwrap();
        let viol = weak.categories.iter().find(|c| c.code == "VIOL").unwrap();
        assert_eq!((viol.key_items, viol.matched, viol.extra), (4, 2, 0));
        let hate = weak.categories.iter().find(|c| c.code == "HATE").unwrap();
        assert_eq!((hate.key_items, hate.matched, hate.extra), (0, 0, 2));
        assert_eq!(hate.recall.value, None, "nothing in the key to find");
    }

    #[test]
    fn the_verdict_compares_the_lowest_share_with_the_threshold_and_needs_every_keyed_item() {
        let verdict = |report: &CalibrationReport, who: &str| {
            report
                .verdicts
                .iter()
                .find(|v| v.annotator == who)
                .cloned()
                .unwrap()
        };
        let strict = report(0.8);
        let weak = verdict(&strict, "weak");
        // decision 7/9, category 8/10: the lowest is the score.
        assert_eq!(weak.score, Some(7.0 / 9.0));
        assert_eq!(weak.verdict, CalibrationVerdict::Retrain);
        assert_eq!(weak.below_threshold, vec!["decision".to_string()]);
        assert_eq!(verdict(&strict, "good").verdict, CalibrationVerdict::Pass);
        let absent = verdict(&strict, "absent");
        assert_eq!(
            (absent.verdict, absent.answered_keyed),
            (CalibrationVerdict::Incomplete, 1)
        );
        // At exactly the lowest share, a pass.
        let lenient = report(7.0 / 9.0);
        assert_eq!(verdict(&lenient, "weak").verdict, CalibrationVerdict::Pass);
    }

    #[test]
    fn without_expert_answers_there_is_no_key_and_no_one_passes() {
        let only_annotators: Vec<CalibrationAnswer> = answers()
            .into_iter()
            .filter(|a| a.part == CalibrationPart::Annotator)
            .collect();
        let people = vec![person(1, "good", CalibrationPart::Annotator)];
        let report = calibration_report(round(0.8), people, &schema(), &only_annotators, false);
        assert_eq!(report.keyed_items, 0);
        assert_eq!(report.verdicts[0].verdict, CalibrationVerdict::Incomplete);
        assert!(
            report.questions[0].annotators[0]
                .with_key
                .share
                .percent
                .value
                .is_none()
        );
    }
}
