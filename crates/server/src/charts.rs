//! Small server-rendered SVG charts (no script needed to read them): bar charts and a line
//! chart with markers.
//!
//! What makes them readable at a glance:
//! * every mark (bar, point) carries its number in `data-value` and a `<title>` ("label:
//!   number"), which is its accessible name, and is focusable; `app.js` shows that title as a
//!   tooltip on hover and on keyboard focus;
//! * the x-axis labels never overlap: flat when they fit, turned 40° when they do not, and only
//!   every n-th drawn when even turned they would touch ([`XAxis`]); a label longer than 12
//!   characters is shortened with its full text as a `<title>`;
//! * a chart with more than one kind of mark (the line chart: line, interval, version markers)
//!   has a legend;
//! * a chart with nothing to draw says what will appear there, and when.

use std::fmt::Write;

const WIDTH: f64 = 640.0;
/// The plot's height; the chart's height adds the top margin and the x-axis labels' room.
const PLOT_H: f64 = 154.0;
const LEFT: f64 = 44.0;
const RIGHT: f64 = 8.0;
const TOP: f64 = 10.0;
/// The tick font is 10 units (app.css); a character is about 6.5 units wide at that size.
/// Scaling the chart scales the font with it, so the rules below hold at any width.
const FONT: f64 = 10.0;
const CHAR_W: f64 = 6.5;
/// The smallest gap between two neighbouring x-axis labels.
const GAP: f64 = 6.0;
/// How far turned labels are turned (degrees, counter-clockwise).
const TURN_DEG: f64 = 40.0;
/// Longer x-axis labels are shortened to this many characters (the last an ellipsis).
const MAX_LABEL_CHARS: usize = 12;

fn escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

fn number(value: f64) -> String {
    if value.fract() == 0.0 && value.abs() < 1e15 {
        format!("{value:.0}")
    } else {
        format!("{value:.3}")
    }
}

/// What a chart with no data shows instead: the sentence saying what will appear, and when.
fn empty_state(id: &str, title: &str, empty: &str) -> String {
    format!(
        r#"<p class="chart-empty" id="{}" data-empty aria-label="{}: no data">{}</p>"#,
        escape(id),
        escape(title),
        escape(empty)
    )
}

/// A vertical bar chart of labelled values; `empty` is what it says when there are none.
pub fn bars(id: &str, title: &str, bars: &[(String, f64)], empty: &str) -> String {
    if bars.is_empty() {
        return empty_state(id, title, empty);
    }
    let slot = (WIDTH - LEFT - RIGHT) / bars.len() as f64;
    let x_axis = XAxis::layout(bars.iter().map(|(label, _)| label.as_str()), slot);
    let mut svg = open(id, title, &x_axis);
    // All zero still gets a readable axis.
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    axis(&mut svg, 0.0, max);
    for (i, (label, value)) in bars.iter().enumerate() {
        let h = PLOT_H * value / max;
        let x = LEFT + slot * i as f64 + slot * 0.1;
        let y = TOP + PLOT_H - h;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" tabindex="0" role="img" data-label="{}" data-value="{}"><title>{}: {}</title></rect>"#,
            slot * 0.8,
            escape(label),
            number(*value),
            escape(label),
            number(*value)
        );
        x_axis.tick(&mut svg, i, x + slot * 0.4, label);
    }
    svg.push_str("</svg>");
    svg
}

/// One line point: x label, value (None: a gap), and the interval drawn around it.
pub struct Point {
    pub label: String,
    pub value: Option<f64>,
    pub ci: Option<[f64; 2]>,
}

/// What the line chart's marks stand for, in its legend.
pub struct LineLegend<'a> {
    pub line: &'a str,
    pub interval: &'a str,
    pub marker: &'a str,
}

/// A line chart over [lo, hi] with interval whiskers and vertical markers between points
/// (e.g. guideline versions published), and a legend of the kinds of marks it shows.
pub fn line(
    id: &str,
    title: &str,
    points: &[Point],
    range: (f64, f64),
    markers: &[(usize, String)],
    legend: &LineLegend<'_>,
    empty: &str,
) -> String {
    if points.iter().all(|p| p.value.is_none()) {
        return empty_state(id, title, empty);
    }
    let step = (WIDTH - LEFT - RIGHT) / points.len().max(1) as f64;
    let x_axis = XAxis::layout(points.iter().map(|p| p.label.as_str()), step);
    let mut svg = open(id, title, &x_axis);
    let (lo, hi) = range;
    axis(&mut svg, lo, hi);
    let plot = LinePlot { lo, hi, step };
    plot.markers(&mut svg, markers);
    plot.path(&mut svg, points);
    plot.points(&mut svg, points, &x_axis);
    svg.push_str("</svg>");
    svg.push_str(&legend_html(
        id,
        legend,
        points.iter().any(|p| p.ci.is_some()),
        !markers.is_empty(),
    ));
    svg
}

/// The line chart's legend: one entry per kind of mark the chart shows.
fn legend_html(id: &str, legend: &LineLegend<'_>, intervals: bool, markers: bool) -> String {
    let mut html = format!(
        r#"<ul class="chart-legend" id="{}-legend" aria-label="Legend">"#,
        escape(id)
    );
    let mut entry = |class: &str, text: &str| {
        let _ = write!(
            html,
            r#"<li><span class="key {class}" aria-hidden="true"></span>{}</li>"#,
            escape(text)
        );
    };
    entry("key-line", legend.line);
    if intervals {
        entry("key-interval", legend.interval);
    }
    if markers {
        entry("key-marker", legend.marker);
    }
    html.push_str("</ul>");
    html
}

/// Where a line chart puts its points: one column of `step` per point, values over [lo, hi].
struct LinePlot {
    lo: f64,
    hi: f64,
    step: f64,
}

impl LinePlot {
    fn x_of(&self, i: usize) -> f64 {
        LEFT + self.step * (i as f64 + 0.5)
    }

    fn y_of(&self, v: f64) -> f64 {
        TOP + PLOT_H * (1.0 - ((v.clamp(self.lo, self.hi) - self.lo) / (self.hi - self.lo)))
    }

    /// Vertical lines between points, each named; a name is written beside its line only when
    /// it clears the previous one written (the line's own title always has it).
    fn markers(&self, svg: &mut String, markers: &[(usize, String)]) {
        let mut free_from = f64::NEG_INFINITY;
        for (at, name) in markers {
            let x = LEFT + self.step * *at as f64;
            let _ = write!(
                svg,
                r#"<line class="marker" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" data-marker="{}"><title>{}</title></line>"#,
                TOP + PLOT_H,
                escape(name),
                escape(name),
            );
            if x + 2.0 >= free_from {
                let _ = write!(
                    svg,
                    r#"<text class="marker-label" x="{:.1}" y="{:.1}">{}</text>"#,
                    x + 2.0,
                    TOP + FONT,
                    escape(name)
                );
                free_from = x + 2.0 + name.chars().count() as f64 * CHAR_W + GAP;
            }
        }
    }

    /// The line through the points that have a value.
    fn path(&self, svg: &mut String, points: &[Point]) {
        let mut path = String::new();
        for (i, p) in points.iter().enumerate() {
            let Some(v) = p.value else { continue };
            let _ = write!(
                path,
                "{}{:.1},{:.1} ",
                if path.is_empty() { "M" } else { "L" },
                self.x_of(i),
                self.y_of(v)
            );
        }
        let _ = write!(svg, r#"<path class="line" d="{}"/>"#, path.trim_end());
    }

    /// Each point with its interval whisker, its value as a tooltip, and its x-axis label
    /// where the axis has room for it.
    fn points(&self, svg: &mut String, points: &[Point], x_axis: &XAxis) {
        for (i, p) in points.iter().enumerate() {
            let x = self.x_of(i);
            if let Some([a, b]) = p.ci {
                let _ = write!(
                    svg,
                    r#"<line class="whisker" x1="{x:.1}" x2="{x:.1}" y1="{:.1}" y2="{:.1}"/>"#,
                    self.y_of(a),
                    self.y_of(b),
                );
            }
            if let Some(v) = p.value {
                let ci =
                    p.ci.map(|[a, b]| format!(" [{a:.3}, {b:.3}]"))
                        .unwrap_or_default();
                let _ = write!(
                    svg,
                    r#"<circle class="point" cx="{x:.1}" cy="{:.1}" r="3.5" tabindex="0" role="img" data-label="{}" data-value="{}"><title>{}: {v:.3}{ci}</title></circle>"#,
                    self.y_of(v),
                    escape(&p.label),
                    number(v),
                    escape(&p.label)
                );
            }
            x_axis.tick(svg, i, x, &p.label);
        }
    }
}

fn open(id: &str, title: &str, x_axis: &XAxis) -> String {
    format!(
        r#"<svg class="chart" id="{}" viewBox="{:.1} 0 {:.1} {:.1}" role="group" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(id),
        -x_axis.overhang,
        WIDTH + x_axis.overhang,
        TOP + PLOT_H + x_axis.bottom,
        escape(title)
    )
}

fn axis(svg: &mut String, lo: f64, hi: f64) {
    for k in 0..=4 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        let y = TOP + PLOT_H * (1.0 - k as f64 / 4.0);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - RIGHT,
            LEFT - 4.0,
            y + 4.0,
            if hi - lo > 10.0 {
                format!("{v:.0}")
            } else {
                format!("{v:.2}")
            }
        );
    }
}

/// How the x-axis labels are laid out so that no two overlap. Labels sit one per `slot`
/// (the width of a bar or a line chart's column), centred at `LEFT + slot · (i + ½)`.
///
/// * Flat, every label, when the longest (shortened) label and a gap fit in a slot.
/// * Otherwise turned by [`TURN_DEG`]: turned labels are parallel strips `FONT` high, so two
///   labels `d` apart along the axis are `d · sin θ` apart across their strips, and they clear
///   each other once that is `FONT + GAP`; only every `every`-th label is drawn when one slot is
///   less than that. The axis then gets the height of the longest turned label, and the chart
///   widens to the left by `overhang` when the first label would stick out of it.
#[derive(Debug, Clone, Copy, PartialEq)]
struct XAxis {
    every: usize,
    turned: bool,
    /// Room under the plot for the labels.
    bottom: f64,
    /// Room left of x = 0 for the first turned labels.
    overhang: f64,
}

impl XAxis {
    const FLAT_BOTTOM: f64 = 24.0;
    /// The turned labels' anchor, under the plot.
    const TURNED_DROP: f64 = 10.0;

    fn layout<'a>(labels: impl Iterator<Item = &'a str>, slot: f64) -> XAxis {
        let widths: Vec<f64> = labels
            .map(|label| shorten(label).chars().count() as f64 * CHAR_W)
            .collect();
        let longest = widths.iter().copied().fold(CHAR_W, f64::max);
        if longest + GAP <= slot {
            return XAxis {
                every: 1,
                turned: false,
                bottom: Self::FLAT_BOTTOM,
                overhang: 0.0,
            };
        }
        let (sin, cos) = TURN_DEG.to_radians().sin_cos();
        let every = ((FONT + GAP) / sin / slot).ceil().max(1.0) as usize;
        // A turned label ends at its anchor and runs down and to the left of it.
        let leftmost = widths
            .iter()
            .enumerate()
            .step_by(every)
            .map(|(i, w)| LEFT + slot * (i as f64 + 0.5) - w * cos - FONT * sin)
            .fold(f64::INFINITY, f64::min);
        XAxis {
            every,
            turned: true,
            bottom: Self::TURNED_DROP + longest * sin + FONT * cos + 2.0,
            overhang: (2.0 - leftmost).max(0.0).ceil(),
        }
    }

    /// The label of slot `i` centred at `x`, if it is one of those drawn; a shortened label
    /// keeps its full text as a title.
    fn tick(&self, svg: &mut String, i: usize, x: f64, label: &str) {
        if i % self.every != 0 {
            return;
        }
        let short = shorten(label);
        let title = if short == label {
            String::new()
        } else {
            format!("<title>{}</title>", escape(label))
        };
        let y = TOP + PLOT_H;
        if self.turned {
            let y = y + Self::TURNED_DROP;
            let _ = write!(
                svg,
                r#"<g class="tick-label">{title}<text class="tick" x="{x:.1}" y="{y:.1}" text-anchor="end" transform="rotate(-{TURN_DEG} {x:.1} {y:.1})">{}</text></g>"#,
                escape(&short)
            );
        } else {
            let _ = write!(
                svg,
                r#"<g class="tick-label">{title}<text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text></g>"#,
                y + 14.0,
                escape(&short)
            );
        }
    }
}

fn shorten(label: &str) -> String {
    if label.chars().count() > MAX_LABEL_CHARS {
        label.chars().take(MAX_LABEL_CHARS - 1).collect::<String>() + "…"
    } else {
        label.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn legend() -> LineLegend<'static> {
        LineLegend {
            line: "α per week",
            interval: "95 % interval",
            marker: "guideline version published",
        }
    }

    fn week(label: &str, value: Option<f64>, ci: Option<[f64; 2]>) -> Point {
        Point {
            label: label.into(),
            value,
            ci,
        }
    }

    #[test]
    fn every_bar_and_point_carries_its_number_as_a_focusable_title() {
        let svg = bars(
            "b",
            "Labels",
            &[("2026-11-23".into(), 12.0), ("a<b".into(), 0.5)],
            "none",
        );
        assert!(
            svg.contains(
                r#"data-label="2026-11-23" data-value="12"><title>2026-11-23: 12</title>"#
            ),
            "{svg}"
        );
        assert!(
            svg.contains(r#"data-label="a&lt;b" data-value="0.500"><title>a&lt;b: 0.500</title>"#),
            "{svg}"
        );
        assert_eq!(
            svg.matches(r#"tabindex="0" role="img""#).count(),
            2,
            "{svg}"
        );
        let svg = line(
            "l",
            "α",
            &[
                week("w1", Some(0.7), Some([0.6, 0.8])),
                week("w2", None, None),
            ],
            (0.0, 1.0),
            &[(1, "v2".into())],
            &legend(),
            "none",
        );
        assert!(
            svg.contains(r#"data-value="0.700"><title>w1: 0.700 [0.600, 0.800]</title>"#)
                && svg.contains(r#"data-marker="v2""#),
            "{svg}"
        );
    }

    #[test]
    fn a_chart_without_data_says_what_will_appear_there() {
        let empty = "No labels yet: labels per annotator appear here once annotators submit.";
        let html = bars("chart-annotators", "Labels per annotator", &[], empty);
        assert_eq!(
            html,
            r#"<p class="chart-empty" id="chart-annotators" data-empty aria-label="Labels per annotator: no data">No labels yet: labels per annotator appear here once annotators submit.</p>"#
        );
        let gaps = [week("w1", None, None), week("w2", None, None)];
        let html = line("a", "α", &gaps, (0.0, 1.0), &[], &legend(), "No α <yet>");
        assert!(
            html.contains(">No α &lt;yet&gt;</p>") && !html.contains("<svg"),
            "{html}"
        );
    }

    #[test]
    fn the_line_chart_has_a_legend_of_the_marks_it_shows() {
        let with_all = line(
            "l",
            "α",
            &[week("w1", Some(0.7), Some([0.6, 0.8]))],
            (0.0, 1.0),
            &[(0, "v1".into())],
            &legend(),
            "none",
        );
        for text in ["α per week", "95 % interval", "guideline version published"] {
            assert!(with_all.contains(text), "{text} in {with_all}");
        }
        let bare = line(
            "l",
            "α",
            &[week("w1", Some(0.7), None)],
            (0.0, 1.0),
            &[],
            &legend(),
            "none",
        );
        assert!(bare.contains("α per week"), "{bare}");
        assert!(
            !bare.contains("interval") && !bare.contains("version"),
            "{bare}"
        );
    }

    /// A drawn x-axis label: where it is anchored, whether turned, its text and title.
    #[derive(Debug)]
    struct Tick {
        x: f64,
        turned: bool,
        text: String,
        title: Option<String>,
    }

    fn ticks(svg: &str) -> Vec<Tick> {
        svg.split(r#"<g class="tick-label">"#)
            .skip(1)
            .map(|rest| {
                let group = rest.split("</g>").next().unwrap_or_default();
                let title = group
                    .strip_prefix("<title>")
                    .and_then(|t| t.split("</title>").next())
                    .map(str::to_owned);
                let x = group
                    .split(r#" x=""#)
                    .nth(1)
                    .and_then(|v| v.split('"').next())
                    .and_then(|v| v.parse().ok())
                    .unwrap_or(f64::NAN);
                let text = group
                    .rsplit("</text>")
                    .nth(1)
                    .and_then(|t| t.rsplit('>').next())
                    .unwrap_or_default()
                    .to_owned();
                Tick {
                    x,
                    turned: group.contains("rotate("),
                    text,
                    title,
                }
            })
            .collect()
    }

    /// Flat labels overlap when their boxes (width by characters) meet; turned ones when
    /// their strips are closer than the font's height.
    fn assert_no_overlap(ticks: &[Tick]) {
        let sin = TURN_DEG.to_radians().sin();
        for pair in ticks.windows(2) {
            let (a, b) = (&pair[0], &pair[1]);
            let apart = b.x - a.x;
            if a.turned {
                assert!(apart * sin >= FONT, "turned labels overlap: {a:?} {b:?}");
            } else {
                let half = |t: &Tick| t.text.chars().count() as f64 * CHAR_W / 2.0;
                assert!(
                    apart >= half(a) + half(b),
                    "flat labels overlap: {a:?} {b:?}"
                );
            }
        }
    }

    #[test]
    fn axis_labels_never_overlap_whatever_their_number_and_length() {
        for count in [1, 3, 5, 8, 12, 20, 40, 53, 120, 400] {
            for len in [2, 6, 10, 12, 30] {
                let data: Vec<(String, f64)> = (0..count)
                    .map(|i| (format!("{i:0>len$}"), i as f64))
                    .collect();
                let shown = ticks(&bars("a", "Labels", &data, "none"));
                assert!(!shown.is_empty(), "{count} labels of {len}: none drawn");
                assert_no_overlap(&shown);
                let points: Vec<Point> = data
                    .iter()
                    .map(|(l, v)| week(l, Some(*v / 400.0), None))
                    .collect();
                assert_no_overlap(&ticks(&line(
                    "l",
                    "α",
                    &points,
                    (0.0, 1.0),
                    &[],
                    &legend(),
                    "none",
                )));
            }
        }
    }

    #[test]
    fn labels_that_fit_stay_flat_and_all_drawn_and_others_turn_before_any_is_dropped() {
        let short: Vec<(String, f64)> = (0..5).map(|i| (format!("d{i}"), 1.0)).collect();
        let shown = ticks(&bars("s", "Short", &short, "none"));
        assert_eq!(shown.len(), 5, "short labels all fit");
        assert!(shown.iter().all(|t| !t.turned));
        // Twenty dates do not fit flat (78 units each in 29-unit slots), but turned they do.
        let days: Vec<(String, f64)> = (1..=20).map(|d| (format!("2026-11-{d:02}"), 3.0)).collect();
        let shown = ticks(&bars("d", "Labels per day", &days, "none"));
        assert_eq!(shown.len(), 20, "{shown:?}");
        assert!(shown.iter().all(|t| t.turned));
    }

    #[test]
    fn a_shortened_label_keeps_its_full_text_as_a_title() {
        let data = [
            ("annotator-with-a-long-name".to_owned(), 4.0),
            ("ana".to_owned(), 2.0),
        ];
        let shown = ticks(&bars("a", "Labels per annotator", &data, "none"));
        assert_eq!(shown[0].text, "annotator-w…");
        assert_eq!(
            shown[0].title.as_deref(),
            Some("annotator-with-a-long-name")
        );
        assert_eq!(
            (shown[1].text.as_str(), shown[1].title.as_deref()),
            ("ana", None)
        );
    }

    #[test]
    fn turned_labels_stay_inside_the_chart() {
        let names: Vec<(String, f64)> = (0..20)
            .map(|i| (format!("annotator-{i:02}-long"), i as f64))
            .collect();
        let svg = bars("a", "Labels per annotator", &names, "none");
        let view_box: Vec<f64> = svg
            .split(r#"viewBox=""#)
            .nth(1)
            .and_then(|v| v.split('"').next())
            .map(|v| v.split(' ').filter_map(|n| n.parse().ok()).collect())
            .unwrap_or_default();
        let (sin, cos) = TURN_DEG.to_radians().sin_cos();
        let first = &ticks(&svg)[0];
        let reach = first.x - first.text.chars().count() as f64 * CHAR_W * cos;
        assert!(reach >= view_box[0], "{reach} left of {view_box:?}");
        let depth = TOP + PLOT_H + XAxis::TURNED_DROP + 12.0 * CHAR_W * sin;
        assert!(depth <= view_box[3], "{depth} below {view_box:?}");
    }
}
