//! `aggregate --out`: one row per item, as CSV or JSON lines.
//!
//! At a million items the output is tens of megabytes; formatted row by row into `String`s and
//! `serde_json::Value`s it took longer than reading the labels. Here blocks of items are
//! formatted in parallel straight into byte buffers (no allocation per row or per field) and
//! written in order; a window of blocks at a time keeps memory flat.

use concord_stats::AnnotationTable;
use concord_stats::aggregate::Aggregation;
use concord_stats::aggregate::metrics::LnMemo;
use rayon::prelude::*;
use std::io::Write;

/// Items formatted by one task.
const BLOCK: usize = 8_192;

/// What every row is made of.
pub struct ItemRows<'a> {
    pub table: &'a AnnotationTable,
    pub result: &'a Aggregation,
    pub confidence: &'a [Option<f64>],
    pub gold: Option<&'a [Option<u32>]>,
}

impl ItemRows<'_> {
    /// Writes every item's row (after the CSV header) to `out`.
    pub fn write(&self, out: &mut impl Write, jsonl: bool) -> std::io::Result<()> {
        if !jsonl {
            out.write_all(&self.csv_header())?;
        }
        let n = self.table.n_items();
        let blocks: Vec<(usize, usize)> = (0..n)
            .step_by(BLOCK)
            .map(|start| (start, (start + BLOCK).min(n)))
            .collect();
        let window = rayon::current_num_threads().max(1) * 4;
        for group in blocks.chunks(window) {
            let texts: Vec<Vec<u8>> = group
                .par_iter()
                .map(|&(start, end)| self.block(start, end, jsonl))
                .collect();
            for text in texts {
                out.write_all(&text)?;
            }
        }
        Ok(())
    }

    fn block(&self, start: usize, end: usize, jsonl: bool) -> Vec<u8> {
        let mut buf = Vec::with_capacity((end - start) * 64);
        // One posterior row reused for every item of the block.
        let mut row = self
            .result
            .probas
            .as_ref()
            .map(|_| vec![0.0; self.result.k]);
        let json_order = if jsonl {
            self.json_name_order()
        } else {
            Vec::new()
        };
        let mut texts = FloatTexts::new();
        let mut ln = LnMemo::new();
        for item in start..end {
            let item = item as u32;
            let proba = match (&self.result.probas, row.as_deref_mut()) {
                (Some(probas), Some(row)) => {
                    probas.fill_row(item, row);
                    Some(&*row)
                }
                _ => None,
            };
            let entropy = proba.map(|row| entropy_with(row, |p| ln.of(p)));
            if jsonl {
                self.json_row(item, proba, entropy, &json_order, &mut buf);
            } else {
                self.csv_row(item, proba, entropy, &mut texts, &mut buf);
            }
        }
        buf
    }

    /// Value ids in the order of their names, as a `serde_json` object writes keys.
    fn json_name_order(&self) -> Vec<usize> {
        let names = self.table.values().names();
        let mut order: Vec<usize> = (0..names.len()).collect();
        order.sort_by(|&a, &b| names[a].cmp(&names[b]));
        order
    }

    fn csv_header(&self) -> Vec<u8> {
        let mut buf = b"item,label,confidence,entropy,agreement,ratings,tied".to_vec();
        if self.gold.is_some() {
            buf.extend_from_slice(b",gold");
        }
        if self.result.probas.is_some() {
            for name in self.table.values().names() {
                buf.push(b',');
                csv_field(&mut buf, &format!("p_{name}"));
            }
        }
        buf.push(b'\n');
        buf
    }

    fn csv_row(
        &self,
        item: u32,
        proba: Option<&[f64]>,
        entropy: Option<f64>,
        texts: &mut FloatTexts,
        buf: &mut Vec<u8>,
    ) {
        let label = self.result.labels[item as usize];
        csv_field(buf, self.table.item_name(item));
        buf.push(b',');
        if let Some(label) = label {
            csv_field(buf, self.table.values().name(label));
        }
        buf.push(b',');
        texts.write_opt(buf, self.confidence[item as usize]);
        buf.push(b',');
        texts.write_opt(buf, entropy);
        buf.push(b',');
        texts.write_opt(buf, agreement_with(self.table, item, label));
        buf.push(b',');
        push_count(buf, self.table.item_values(item).len());
        buf.push(b',');
        push_bool(buf, self.result.tied[item as usize]);
        if let Some(gold) = self.gold {
            buf.push(b',');
            if let Some(g) = gold[item as usize] {
                csv_field(buf, self.table.values().name(g));
            }
        }
        if let Some(row) = proba {
            for &p in row {
                buf.push(b',');
                texts.write(buf, p);
            }
        }
        buf.push(b'\n');
    }

    /// The keys in sorted order, as a `serde_json` object writes them.
    fn json_row(
        &self,
        item: u32,
        proba: Option<&[f64]>,
        entropy: Option<f64>,
        order: &[usize],
        buf: &mut Vec<u8>,
    ) {
        let label = self.result.labels[item as usize];
        let values = self.table.values();
        buf.extend_from_slice(b"{\"agreement\":");
        json_opt(buf, agreement_with(self.table, item, label));
        buf.extend_from_slice(b",\"confidence\":");
        json_opt(buf, self.confidence[item as usize]);
        buf.extend_from_slice(b",\"entropy\":");
        json_opt(buf, entropy);
        if let Some(gold) = self.gold {
            buf.extend_from_slice(b",\"gold\":");
            json_opt_str(buf, gold[item as usize].map(|g| values.name(g)));
        }
        buf.extend_from_slice(b",\"item\":");
        json_str(buf, self.table.item_name(item));
        buf.extend_from_slice(b",\"label\":");
        json_opt_str(buf, label.map(|l| values.name(l)));
        buf.extend_from_slice(b",\"posterior\":");
        match proba {
            Some(row) => {
                let names = values.names();
                buf.push(b'{');
                for (i, &v) in order.iter().enumerate() {
                    if i > 0 {
                        buf.push(b',');
                    }
                    json_str(buf, &names[v]);
                    buf.push(b':');
                    json_num(buf, row[v]);
                }
                buf.push(b'}');
            }
            None => buf.extend_from_slice(b"null"),
        }
        buf.extend_from_slice(b",\"ratings\":");
        push_count(buf, self.table.item_values(item).len());
        buf.extend_from_slice(b",\"tied\":");
        push_bool(buf, self.result.tied[item as usize]);
        buf.extend_from_slice(b"}\n");
    }
}

/// A count in decimal, as `Display` writes it, without the formatting machinery (a million
/// rows made `write!` a twentieth of writing them).
fn push_count(buf: &mut Vec<u8>, mut n: usize) {
    let mut digits = [0u8; 20];
    let mut at = digits.len();
    loop {
        at -= 1;
        digits[at] = b'0' + (n % 10) as u8;
        n /= 10;
        if n == 0 {
            break;
        }
    }
    buf.extend_from_slice(&digits[at..]);
}

fn push_bool(buf: &mut Vec<u8>, b: bool) {
    buf.extend_from_slice(if b { b"true" } else { b"false" });
}

pub fn entropy(row: &[f64]) -> f64 {
    entropy_with(row, f64::ln)
}

/// [`entropy`] with the logarithm given: a block of rows remembers its logarithms
/// ([`LnMemo`]), since posteriors repeat few values (vote shares in fifths).
fn entropy_with(row: &[f64], mut ln: impl FnMut(f64) -> f64) -> f64 {
    // `+ 0.0` turns a negative zero into zero.
    -row.iter()
        .filter(|p| **p > 0.0)
        .map(|&p| p * ln(p))
        .sum::<f64>()
        + 0.0
}

/// Share of the item's labels equal to `label`.
pub fn agreement_with(table: &AnnotationTable, item: u32, label: Option<u32>) -> Option<f64> {
    let label = label?;
    let values = table.item_values(item);
    Some(values.iter().filter(|v| **v == label).count() as f64 / values.len() as f64)
}

/// A CSV field, quoted when it holds a separator, a quote or a line break.
pub fn csv_field(buf: &mut Vec<u8>, s: &str) {
    if !s.contains([',', '"', '\n', '\r']) {
        buf.extend_from_slice(s.as_bytes());
        return;
    }
    buf.push(b'"');
    for part in s.split('"').enumerate() {
        if part.0 > 0 {
            buf.extend_from_slice(b"\"\"");
        }
        buf.extend_from_slice(part.1.as_bytes());
    }
    buf.push(b'"');
}

/// The texts of the floats a block wrote lately, by their bits. Majority vote's
/// posteriors, entropy and agreement take a handful of values over a million items, and
/// formatting each one again was a fifth of `aggregate --out`'s time. Models whose values
/// rarely repeat (Dawid–Skene's posteriors) soon stop looking here.
struct FloatTexts {
    slots: Vec<FloatText>,
    lookups: u32,
    hits: u32,
}

#[derive(Clone, Copy)]
struct FloatText {
    bits: u64,
    /// 0: an empty slot (no float is written as nothing).
    len: u8,
    text: [u8; FLOAT_TEXT_MAX],
}

/// Longer texts (tiny numbers in full decimal) are written each time.
const FLOAT_TEXT_MAX: usize = 24;
const FLOAT_TEXT_SLOTS: usize = 256;
/// After this many lookups, fewer than one hit in eight turns the memory off.
const FLOAT_TEXT_TRIAL: u32 = 4_096;

impl FloatTexts {
    fn new() -> Self {
        FloatTexts {
            slots: vec![
                FloatText {
                    bits: 0,
                    len: 0,
                    text: [0; FLOAT_TEXT_MAX],
                };
                FLOAT_TEXT_SLOTS
            ],
            lookups: 0,
            hits: 0,
        }
    }

    fn write_opt(&mut self, buf: &mut Vec<u8>, v: Option<f64>) {
        if let Some(v) = v {
            self.write(buf, v);
        }
    }

    /// `v` as [`display_f64`] writes it.
    fn write(&mut self, buf: &mut Vec<u8>, v: f64) {
        if self.lookups >= FLOAT_TEXT_TRIAL && self.hits < FLOAT_TEXT_TRIAL / 8 {
            display_f64(buf, v);
            return;
        }
        self.lookups = self.lookups.saturating_add(1);
        let bits = v.to_bits();
        // Fibonacci hashing: the top byte of the product spreads nearby values apart.
        let slot = &mut self.slots[(bits.wrapping_mul(0x9e37_79b9_7f4a_7c15) >> 56) as usize];
        if slot.len != 0 && slot.bits == bits {
            self.hits = self.hits.saturating_add(1);
            buf.extend_from_slice(&slot.text[..slot.len as usize]);
            return;
        }
        let start = buf.len();
        display_f64(buf, v);
        let text = &buf[start..];
        if text.len() <= FLOAT_TEXT_MAX {
            slot.bits = bits;
            slot.len = text.len() as u8;
            slot.text[..text.len()].copy_from_slice(text);
        }
    }
}

/// `v` exactly as `Display` writes it, several times faster for short numbers. Both write
/// the shortest digits that read back as `v`, closest to it; they differ in notation (ryu's
/// trailing ".0" and exponents, the latter left to `Display`) and in how they break an exact
/// tie between two closest candidates (950688386470819.25: ".2" against ".3"). A tie needs two
/// candidates within one ulp, which decimals of at most 15 significant digits are too far
/// apart for, so longer ones are left to `Display`.
fn display_f64(buf: &mut Vec<u8>, v: f64) {
    if v.is_finite() {
        let mut digits = ryu::Buffer::new();
        let text = digits.format_finite(v);
        if !text.contains('e') {
            let text = text.strip_suffix(".0").unwrap_or(text);
            let significant = text
                .bytes()
                .filter(u8::is_ascii_digit)
                .skip_while(|&b| b == b'0')
                .count();
            if significant <= 15 {
                buf.extend_from_slice(text.as_bytes());
                return;
            }
        }
    }
    // Writing into a Vec cannot fail.
    let _ = write!(buf, "{v}");
}

fn json_num(buf: &mut Vec<u8>, v: f64) {
    // serde_json writes a non-finite number as null, as the Value path did.
    let _ = serde_json::to_writer(&mut *buf, &v);
}

fn json_opt(buf: &mut Vec<u8>, v: Option<f64>) {
    match v {
        Some(v) => json_num(buf, v),
        None => buf.extend_from_slice(b"null"),
    }
}

fn json_str(buf: &mut Vec<u8>, s: &str) {
    let _ = serde_json::to_writer(&mut *buf, s);
}

fn json_opt_str(buf: &mut Vec<u8>, s: Option<&str>) {
    match s {
        Some(s) => json_str(buf, s),
        None => buf.extend_from_slice(b"null"),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use concord_stats::LabelSpec;
    use concord_stats::aggregate::{AggregateOptions, Method, aggregate};
    use serde_json::json;

    fn table() -> AnnotationTable {
        let triples = [
            ("song, one", "a", "clean"),
            ("song, one", "b", "clean"),
            ("song, one", "c", "explicit"),
            ("ep\"2", "a", "explicit"),
            ("ep\"2", "b", "advisory"),
            ("book 3", "c", "advisory"),
        ];
        AnnotationTable::from_triples(triples, &LabelSpec::default()).unwrap()
    }

    fn rows_of(table: &AnnotationTable, method: Method, jsonl: bool) -> String {
        let result = aggregate(table, method, &AggregateOptions::default(), &|_, _| {}).unwrap();
        let confidence: Vec<Option<f64>> = (0..table.n_items() as u32)
            .map(
                |item| match (result.labels[item as usize], result.proba(item)) {
                    (Some(label), Some(row)) => Some(row[label as usize]),
                    _ => None,
                },
            )
            .collect();
        assert_eq!(result.confidence(), confidence);
        let gold = vec![Some(0), None, Some(2)];
        let rows = ItemRows {
            table,
            result: &result,
            confidence: &confidence,
            gold: Some(&gold),
        };
        let mut out = Vec::new();
        rows.write(&mut out, jsonl).unwrap();
        String::from_utf8(out).unwrap()
    }

    #[test]
    fn each_json_line_is_the_rows_json_object_with_sorted_keys() {
        let table = table();
        for method in [Method::MajorityVote, Method::DawidSkene] {
            let result =
                aggregate(&table, method, &AggregateOptions::default(), &|_, _| {}).unwrap();
            let text = rows_of(&table, method, true);
            let lines: Vec<&str> = text.lines().collect();
            assert_eq!(lines.len(), 3);
            let gold_names = [
                Some(table.values().name(0)),
                None,
                Some(table.values().name(2)),
            ];
            for (item, line) in lines.iter().enumerate() {
                let label = result.labels[item];
                let proba = result.proba(item as u32);
                let posterior = proba.as_deref().map(|row| {
                    table
                        .values()
                        .names()
                        .iter()
                        .zip(row)
                        .map(|(n, p)| (n.clone(), json!(p)))
                        .collect::<serde_json::Map<_, _>>()
                });
                let expected = json!({
                    "item": table.item_name(item as u32),
                    "label": label.map(|l| table.values().name(l)),
                    "confidence": match (label, &proba) {
                        (Some(l), Some(row)) => Some(row[l as usize]),
                        _ => None,
                    },
                    "posterior": posterior,
                    "entropy": proba.as_deref().map(entropy),
                    "agreement": agreement_with(&table, item as u32, label),
                    "ratings": table.item_values(item as u32).len(),
                    "tied": result.tied[item],
                    "gold": gold_names[item],
                });
                assert_eq!(*line, expected.to_string(), "{method:?}, item {item}");
            }
        }
    }

    #[test]
    fn csv_rows_quote_names_and_follow_the_header() {
        let text = rows_of(&table(), Method::MajorityVote, false);
        let mut lines = text.lines();
        assert_eq!(
            lines.next().unwrap(),
            "item,label,confidence,entropy,agreement,ratings,tied,gold,p_advisory,p_clean,p_explicit"
        );
        let first = lines.next().unwrap();
        assert!(first.starts_with("\"song, one\",clean,"), "{first}");
        assert!(first.contains(",3,false,advisory,"), "{first}");
        let second = lines.next().unwrap();
        assert!(second.starts_with("\"ep\"\"2\","), "{second}");
        assert_eq!(lines.count(), 1);
    }

    #[test]
    fn a_csv_field_is_quoted_only_when_it_must_be() {
        let mut buf = Vec::new();
        csv_field(&mut buf, "plain");
        buf.push(b'|');
        csv_field(&mut buf, "a,b");
        buf.push(b'|');
        csv_field(&mut buf, "say \"hi\"");
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            "plain|\"a,b\"|\"say \"\"hi\"\"\""
        );
    }

    #[test]
    fn numbers_are_written_as_serde_json_writes_them() {
        let mut buf = Vec::new();
        json_opt(&mut buf, Some(0.1 + 0.2));
        buf.push(b' ');
        json_opt(&mut buf, Some(f64::NAN));
        buf.push(b' ');
        json_opt(&mut buf, None);
        assert_eq!(
            String::from_utf8(buf).unwrap(),
            format!("{} null null", serde_json::json!(0.1 + 0.2))
        );
    }

    #[test]
    fn counts_and_flags_are_written_as_display_writes_them() {
        for n in [0, 1, 9, 10, 99, 100, 12_345, usize::MAX] {
            let mut buf = Vec::new();
            push_count(&mut buf, n);
            assert_eq!(String::from_utf8(buf).unwrap(), n.to_string());
        }
        for b in [true, false] {
            let mut buf = Vec::new();
            push_bool(&mut buf, b);
            assert_eq!(String::from_utf8(buf).unwrap(), b.to_string());
        }
    }

    #[test]
    fn numbers_are_written_exactly_as_display_writes_them() {
        // splitmix64: any well-spread bits do.
        let mut state = 5u64;
        let mut next = move || {
            state = state.wrapping_add(0x9e37_79b9_7f4a_7c15);
            let mut z = state;
            z = (z ^ (z >> 30)).wrapping_mul(0xbf58_476d_1ce4_e5b9);
            z = (z ^ (z >> 27)).wrapping_mul(0x94d0_49bb_1331_11eb);
            z ^ (z >> 31)
        };
        let mut values = vec![
            0.0,
            -0.0,
            1.0,
            2.0,
            0.5,
            0.1,
            0.2 + 0.1,
            1.0 / 3.0,
            1e-5,
            1.5e-6,
            1e-7,
            1e15,
            1e16,
            1.25e17,
            123456789.0,
            f64::MIN_POSITIVE,
            f64::MAX,
            f64::NAN,
            f64::INFINITY,
            f64::NEG_INFINITY,
        ];
        for _ in 0..20_000 {
            let unit = (next() >> 11) as f64 / (1u64 << 53) as f64;
            values.push(unit);
            values.push(unit * 10f64.powi((next() % 32) as i32 - 12));
            values.push(f64::from_bits(next()));
            // Dyadic values (short exact expansions, where ties live) at every magnitude.
            let bits = (next() % 52) as i32;
            values.push((next() >> 11) as f64 / 2f64.powi(bits));
        }
        for v in &values {
            let mut buf = Vec::new();
            display_f64(&mut buf, *v);
            assert_eq!(String::from_utf8(buf).unwrap(), v.to_string(), "{v:e}");
        }
        // Remembered texts are the same, whether a value repeats or not, before and after
        // the memory turns itself off.
        let mut texts = FloatTexts::new();
        let repeated = [0.0, 0.2, 0.4, 1.0, 0.6, -0.0, 1e-300, 0.9502705392332347];
        for (n, v) in values.iter().enumerate() {
            for v in [*v, repeated[n % repeated.len()]] {
                let mut buf = Vec::new();
                texts.write(&mut buf, v);
                assert_eq!(String::from_utf8(buf).unwrap(), v.to_string(), "{v:e}");
            }
        }
    }

    #[test]
    fn remembered_texts_turn_themselves_off_when_values_rarely_repeat() {
        let mut texts = FloatTexts::new();
        let mut buf = Vec::new();
        for n in 0..FLOAT_TEXT_TRIAL * 2 {
            texts.write(&mut buf, 1.0 + f64::from(n) * 1e-9);
        }
        assert_eq!(
            texts.lookups, FLOAT_TEXT_TRIAL,
            "no lookups after the trial"
        );
        let mut texts = FloatTexts::new();
        for n in 0..FLOAT_TEXT_TRIAL * 2 {
            texts.write(&mut buf, f64::from(n % 5) / 5.0);
        }
        assert_eq!(
            texts.lookups,
            FLOAT_TEXT_TRIAL * 2,
            "repeating values keep it on"
        );
        assert!(texts.hits > FLOAT_TEXT_TRIAL * 2 - 10);
    }
}
