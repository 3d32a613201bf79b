//! Small server-rendered SVG charts (no script): bar charts and a line chart with markers.
//! Every mark carries its number in `data-value` and a `<title>`, so readers, screen readers
//! and tests see the figures the chart was drawn from.

use std::fmt::Write;

const WIDTH: f64 = 640.0;
const HEIGHT: f64 = 200.0;
const LEFT: f64 = 44.0;
const BOTTOM: f64 = 36.0;
const TOP: f64 = 10.0;

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

/// A vertical bar chart of labelled values.
pub fn bars(id: &str, title: &str, bars: &[(String, f64)]) -> String {
    let mut svg = open(id, title);
    if bars.is_empty() {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" class="empty">no data yet</text>"#,
            WIDTH / 2.0 - 40.0,
            HEIGHT / 2.0
        );
        svg.push_str("</svg>");
        return svg;
    }
    // All zero still gets a readable axis.
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    let max = if max > 0.0 { max } else { 1.0 };
    axis(&mut svg, 0.0, max);
    let plot_w = WIDTH - LEFT - 8.0;
    let plot_h = HEIGHT - TOP - BOTTOM;
    let slot = plot_w / bars.len() as f64;
    let label_every = tick_spacing(bars.iter().map(|(label, _)| label.as_str()), slot);
    for (i, (label, value)) in bars.iter().enumerate() {
        let h = plot_h * value / max;
        let x = LEFT + slot * i as f64 + slot * 0.1;
        let y = TOP + plot_h - h;
        let _ = write!(
            svg,
            r#"<rect class="bar" x="{x:.1}" y="{y:.1}" width="{:.1}" height="{h:.1}" data-label="{}" data-value="{}"><title>{}: {}</title></rect>"#,
            slot * 0.8,
            escape(label),
            number(*value),
            escape(label),
            number(*value)
        );
        if i % label_every == 0 {
            let _ = write!(
                svg,
                r#"<text class="tick" x="{:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                x + slot * 0.4,
                HEIGHT - BOTTOM + 14.0,
                escape(&shorten(label))
            );
        }
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

/// A line chart over [lo, hi] with interval whiskers and vertical markers between points
/// (e.g. guideline versions published).
pub fn line(
    id: &str,
    title: &str,
    points: &[Point],
    range: (f64, f64),
    markers: &[(usize, String)],
) -> String {
    let mut svg = open(id, title);
    if points.iter().all(|p| p.value.is_none()) {
        let _ = write!(
            svg,
            r#"<text x="{}" y="{}" class="empty">no data yet</text>"#,
            WIDTH / 2.0 - 40.0,
            HEIGHT / 2.0
        );
        svg.push_str("</svg>");
        return svg;
    }
    let (lo, hi) = range;
    axis(&mut svg, lo, hi);
    let plot = LinePlot {
        lo,
        hi,
        step: (WIDTH - LEFT - 8.0) / points.len().max(1) as f64,
    };
    plot.markers(&mut svg, markers);
    plot.path(&mut svg, points);
    plot.points(&mut svg, points);
    svg.push_str("</svg>");
    svg
}

/// Where a line chart puts its points: one column of `step` per point, values over [lo, hi].
struct LinePlot {
    lo: f64,
    hi: f64,
    step: f64,
}

impl LinePlot {
    const HEIGHT: f64 = HEIGHT - TOP - BOTTOM;

    fn x_of(&self, i: usize) -> f64 {
        LEFT + self.step * (i as f64 + 0.5)
    }

    fn y_of(&self, v: f64) -> f64 {
        TOP + Self::HEIGHT * (1.0 - ((v.clamp(self.lo, self.hi) - self.lo) / (self.hi - self.lo)))
    }

    /// Vertical lines between points, each named.
    fn markers(&self, svg: &mut String, markers: &[(usize, String)]) {
        for (at, name) in markers {
            let x = LEFT + self.step * *at as f64;
            let _ = write!(
                svg,
                r#"<line class="marker" x1="{x:.1}" x2="{x:.1}" y1="{TOP}" y2="{:.1}" data-marker="{}"><title>{}</title></line><text class="marker-label" x="{:.1}" y="{:.1}">{}</text>"#,
                TOP + Self::HEIGHT,
                escape(name),
                escape(name),
                x + 2.0,
                TOP + 10.0,
                escape(name)
            );
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

    /// Each point with its interval whisker, its value as a tooltip, and a tick label where
    /// there is room for one.
    fn points(&self, svg: &mut String, points: &[Point]) {
        let label_every = tick_spacing(points.iter().map(|p| p.label.as_str()), self.step);
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
                    r#"<circle class="point" cx="{x:.1}" cy="{:.1}" r="3.5" data-label="{}" data-value="{}"><title>{}: {v:.3}{ci}</title></circle>"#,
                    self.y_of(v),
                    escape(&p.label),
                    number(v),
                    escape(&p.label)
                );
            }
            if i % label_every == 0 {
                let _ = write!(
                    svg,
                    r#"<text class="tick" x="{x:.1}" y="{:.1}" text-anchor="middle">{}</text>"#,
                    HEIGHT - BOTTOM + 14.0,
                    escape(&shorten(&p.label))
                );
            }
        }
    }
}

fn open(id: &str, title: &str) -> String {
    format!(
        r#"<svg class="chart" id="{}" viewBox="0 0 {WIDTH} {HEIGHT}" role="img" aria-label="{}" xmlns="http://www.w3.org/2000/svg">"#,
        escape(id),
        escape(title)
    )
}

fn axis(svg: &mut String, lo: f64, hi: f64) {
    let plot_h = HEIGHT - TOP - BOTTOM;
    for k in 0..=4 {
        let v = lo + (hi - lo) * k as f64 / 4.0;
        let y = TOP + plot_h * (1.0 - k as f64 / 4.0);
        let _ = write!(
            svg,
            r#"<line class="grid" x1="{LEFT}" x2="{}" y1="{y:.1}" y2="{y:.1}"/><text class="tick" x="{}" y="{:.1}" text-anchor="end">{}</text>"#,
            WIDTH - 8.0,
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

/// How many slots apart the x-axis labels go so that none overlaps its neighbour: each gets
/// the room of the longest (shortened) label, about 6.5 units a character at the 10-unit
/// tick font, plus a gap. Scaling the chart scales the font with it, so this holds at any
/// width.
fn tick_spacing<'a>(labels: impl Iterator<Item = &'a str>, slot: f64) -> usize {
    let longest = labels
        .map(|label| shorten(label).chars().count())
        .max()
        .unwrap_or(1) as f64;
    ((longest * 6.5 + 10.0) / slot).ceil().max(1.0) as usize
}

fn shorten(label: &str) -> String {
    if label.chars().count() > 12 {
        label.chars().take(11).collect::<String>() + "…"
    } else {
        label.to_owned()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_bar_and_point_carries_its_number() {
        let svg = bars(
            "b",
            "Labels",
            &[("2026-11-23".into(), 12.0), ("a<b".into(), 0.5)],
        );
        assert!(
            svg.contains(r#"data-label="2026-11-23" data-value="12""#),
            "{svg}"
        );
        assert!(
            svg.contains(r#"data-label="a&lt;b" data-value="0.500""#),
            "{svg}"
        );
        let svg = line(
            "l",
            "α",
            &[
                Point {
                    label: "w1".into(),
                    value: Some(0.7),
                    ci: Some([0.6, 0.8]),
                },
                Point {
                    label: "w2".into(),
                    value: None,
                    ci: None,
                },
            ],
            (0.0, 1.0),
            &[(1, "v2".into())],
        );
        assert!(
            svg.contains(r#"data-value="0.700""#) && svg.contains(r#"data-marker="v2""#),
            "{svg}"
        );
        assert!(bars("e", "none", &[]).contains("no data yet"));
    }

    /// The x positions of a chart's tick labels along the bottom axis.
    fn tick_xs(svg: &str) -> Vec<f64> {
        svg.split(r#"<text class="tick" x=""#)
            .skip(1)
            .filter(|rest| {
                rest.split('>')
                    .next()
                    .is_some_and(|tag| tag.contains("middle"))
            })
            .filter_map(|rest| rest.split('"').next()?.parse().ok())
            .collect()
    }

    #[test]
    fn axis_labels_are_spaced_by_their_length_so_they_never_overlap() {
        let names: Vec<(String, f64)> = (0..20)
            .map(|i| (format!("annotator-{i:02}-long"), i as f64))
            .collect();
        let xs = tick_xs(&bars("a", "Labels per annotator", &names));
        assert!(xs.len() >= 2, "{xs:?}");
        // 12 characters shortened ("annotator-0…") need about 78 units.
        assert!(xs.windows(2).all(|w| w[1] - w[0] >= 12.0 * 6.5), "{xs:?}");
        let short: Vec<(String, f64)> = (0..5).map(|i| (format!("d{i}"), 1.0)).collect();
        assert_eq!(
            tick_xs(&bars("s", "Short", &short)).len(),
            5,
            "short labels all fit"
        );
    }
}
