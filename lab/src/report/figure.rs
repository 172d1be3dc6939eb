//! One figure: overlaid curves of several runs, drawn as SVG or PNG by the same code.
//!
//! Pure: a [`Figure`] holds the points; nothing here reads the store. The PNG's text is set in
//! DejaVu Sans, embedded in the binary, so a figure looks the same on any machine and needs no
//! system font.

use std::path::Path;
use std::sync::OnceLock;

use plotters::coord::Shift;

use crate::curves::downsample;
use plotters::prelude::*;

/// Pixels of every figure (SVG user units).
pub const WIDTH: u32 = 900;
pub const HEIGHT: u32 = 480;
/// Slices of the x range a curve is downsampled to before drawing ([`downsample`] keeps each
/// slice's first, lowest, highest and last point, so spikes survive): two per pixel column.
pub const DRAWN_BUCKETS: usize = 2 * WIDTH as usize;

/// The colours of the curves, in order (Tableau 10): distinct, and readable on white.
pub const PALETTE: [(u8, u8, u8); 10] = [
    (31, 119, 180),
    (255, 127, 14),
    (44, 160, 44),
    (214, 39, 40),
    (148, 103, 189),
    (140, 86, 75),
    (227, 119, 194),
    (127, 127, 127),
    (188, 189, 34),
    (23, 190, 207),
];

/// One run's curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    /// The legend: the run's name and short id.
    pub label: String,
    /// The experiment it came from (full id).
    pub experiment: String,
    /// `(step, value)` by step.
    pub points: Vec<(f64, f64)>,
}

/// Curves of one metric across runs.
#[derive(Debug, Clone, PartialEq)]
pub struct Figure {
    /// A file-name stem: `completion-length`.
    pub name: String,
    pub title: String,
    pub y_label: String,
    pub curves: Vec<Curve>,
}

#[derive(Debug, thiserror::Error)]
pub enum FigureError {
    #[error("figure `{name}`: {reason}")]
    Draw { name: String, reason: String },
}

impl Figure {
    /// The experiments its curves came from, in curve order, each once.
    pub fn experiments(&self) -> Vec<&str> {
        let mut ids: Vec<&str> = Vec::new();
        for curve in &self.curves {
            if !ids.contains(&curve.experiment.as_str()) {
                ids.push(&curve.experiment);
            }
        }
        ids
    }

    /// The figure as an SVG document.
    pub fn to_svg(&self) -> Result<String, FigureError> {
        let mut svg = String::new();
        {
            let root = SVGBackend::with_string(&mut svg, (WIDTH, HEIGHT)).into_drawing_area();
            self.draw(&root)?;
            root.present().map_err(|e| self.error(e))?;
        }
        Ok(svg)
    }

    /// The figure as a PNG file at `path`.
    pub fn write_png(&self, path: &Path) -> Result<(), FigureError> {
        let root = BitMapBackend::new(path, (WIDTH, HEIGHT)).into_drawing_area();
        self.draw(&root)?;
        root.present().map_err(|e| self.error(e))
    }

    fn error(&self, e: impl std::fmt::Display) -> FigureError {
        FigureError::Draw {
            name: self.name.clone(),
            reason: e.to_string(),
        }
    }

    fn draw<DB: DrawingBackend>(&self, root: &DrawingArea<DB, Shift>) -> Result<(), FigureError> {
        register_font();
        let err = |e: DrawingAreaErrorKind<DB::ErrorType>| self.error(e);
        root.fill(&WHITE).map_err(err)?;
        let (chart_area, footer) = root.split_vertically(HEIGHT - 22);
        let curves: Vec<Vec<(f64, f64)>> = self
            .curves
            .iter()
            .map(|c| downsample(&finite(&c.points), DRAWN_BUCKETS))
            .collect();
        let (x_range, y_range) = bounds(&curves);
        let mut chart = ChartBuilder::on(&chart_area)
            .caption(&self.title, ("sans-serif", 20))
            .margin(10)
            .x_label_area_size(36)
            .y_label_area_size(64)
            .build_cartesian_2d(x_range, y_range)
            .map_err(err)?;
        chart
            .configure_mesh()
            .x_desc("step")
            .x_label_formatter(&|x| step_label(*x))
            .y_desc(self.y_label.as_str())
            .light_line_style(RGBColor(246, 246, 246))
            .label_style(("sans-serif", 13))
            .draw()
            .map_err(err)?;
        for (i, (curve, points)) in self.curves.iter().zip(curves).enumerate() {
            let (r, g, b) = PALETTE[i % PALETTE.len()];
            let color = RGBColor(r, g, b);
            chart
                .draw_series(LineSeries::new(points, color.stroke_width(2)))
                .map_err(err)?
                .label(curve.label.as_str())
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(3))
                });
        }
        if !self.curves.is_empty() {
            chart
                .configure_series_labels()
                .position(SeriesLabelPosition::UpperRight)
                .background_style(WHITE.mix(0.85))
                .border_style(RGBColor(180, 180, 180))
                .label_font(("sans-serif", 13))
                .draw()
                .map_err(err)?;
        }
        let ids: Vec<&str> = self.experiments().iter().map(|id| &id[..12]).collect();
        footer
            .draw_text(
                &format!("experiments: {}", ids.join(", ")),
                &("sans-serif", 12).into_font().color(&RGBColor(90, 90, 90)),
                (10, 4),
            )
            .map_err(err)?;
        Ok(())
    }
}

/// The embedded font, registered once for every figure of the process.
fn register_font() {
    static REGISTERED: OnceLock<()> = OnceLock::new();
    REGISTERED.get_or_init(|| {
        static FONT: &[u8] = include_bytes!("../../assets/DejaVuSans.ttf");
        plotters::style::register_font("sans-serif", FontStyle::Normal, FONT)
            .unwrap_or_else(|_| panic!("the embedded DejaVu Sans is a valid font"));
    });
}

/// A step on the x axis: `1000`, not `1000.0`; a fraction only where a short run's ticks fall
/// between steps (`1.5`), with at most three decimals.
fn step_label(x: f64) -> String {
    let text = format!("{x:.3}");
    text.trim_end_matches('0').trim_end_matches('.').to_string()
}

fn finite(points: &[(f64, f64)]) -> Vec<(f64, f64)> {
    points
        .iter()
        .copied()
        .filter(|(x, y)| x.is_finite() && y.is_finite())
        .collect()
}

/// The axis ranges that hold every point, with a little room above and below; a flat or empty
/// figure still gets ranges of some width.
pub fn bounds(curves: &[Vec<(f64, f64)>]) -> (std::ops::Range<f64>, std::ops::Range<f64>) {
    let all = curves.iter().flatten();
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all {
        x0 = x0.min(x);
        x1 = x1.max(x);
        y0 = y0.min(y);
        y1 = y1.max(y);
    }
    if x0 > x1 {
        return (0.0..1.0, 0.0..1.0);
    }
    if x1 - x0 < 1e-12 {
        x1 = x0 + 1.0;
    }
    let pad = if y1 - y0 < 1e-12 {
        0.5_f64.max(y0.abs() * 0.1)
    } else {
        (y1 - y0) * 0.05
    };
    // Shares, rates and lengths do not go below zero: neither does their axis.
    let low = if y0 >= 0.0 {
        (y0 - pad).max(0.0)
    } else {
        y0 - pad
    };
    (x0..x1, low..y1 + pad)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn figure(curves: usize, points: usize) -> Figure {
        Figure {
            name: "reward".into(),
            title: "Reward".into(),
            y_label: "mean reward".into(),
            curves: (0..curves)
                .map(|c| Curve {
                    label: format!("run-{c}"),
                    experiment: format!("{c:x}{}", "0".repeat(63)),
                    points: (0..points)
                        .map(|i| (i as f64, (i as f64 * 0.1 + c as f64).sin()))
                        .collect(),
                })
                .collect(),
        }
    }

    #[test]
    fn step_labels_are_whole_where_they_can_be() {
        assert_eq!(step_label(1000.0), "1000");
        assert_eq!(step_label(1.5), "1.5");
        assert_eq!(step_label(1.2000000000000002), "1.2");
        assert_eq!(step_label(0.0), "0");
    }

    #[test]
    fn bounds_hold_every_point_and_survive_flat_or_empty_figures() {
        let (x, y) = bounds(&[vec![(1.0, 2.0), (5.0, -1.0)]]);
        assert!(x.start <= 1.0 && x.end >= 5.0 && y.start < -1.0 && y.end > 2.0);
        let (x, y) = bounds(&[vec![(3.0, 7.0)]]);
        assert!(x.end > x.start && y.end > y.start && y.contains(&7.0));
        assert_eq!(bounds(&[]), (0.0..1.0, 0.0..1.0));
    }

    /// The texts of an SVG, in document order.
    fn texts(svg: &str) -> Vec<String> {
        svg.split("<text")
            .skip(1)
            .map(|t| {
                let body = &t[t.find('>').unwrap() + 1..t.find("</text>").unwrap()];
                body.trim().to_string()
            })
            .collect()
    }

    /// The lines of an SVG drawn in a colour, by stroke width.
    fn strokes(svg: &str, (r, g, b): (u8, u8, u8)) -> Vec<String> {
        let colour = format!("stroke=\"#{r:02X}{g:02X}{b:02X}\"");
        svg.split("<polyline")
            .skip(1)
            .filter(|p| p[..p.find('>').unwrap()].contains(&colour))
            .map(|p| {
                let width = &p[p.find("stroke-width=\"").unwrap() + 14..];
                width[..width.find('"').unwrap()].to_string()
            })
            .collect()
    }

    /// The SVG's structure: per curve, a line in its palette colour and a legend mark; the
    /// title, axis names, legend and experiment ids as text.
    #[test]
    fn svg_has_a_line_per_curve_the_legend_and_the_ids() {
        let figure = figure(3, 500);
        let svg = figure.to_svg().unwrap();
        assert!(svg.starts_with("<svg"), "{}", &svg[..80]);
        for colour in &PALETTE[..3] {
            assert_eq!(
                strokes(&svg, *colour),
                ["2", "3"],
                "the curve, then its legend mark"
            );
        }
        assert!(strokes(&svg, PALETTE[3]).is_empty());
        let texts = texts(&svg);
        assert_eq!(texts[0], "Reward");
        for text in ["run-0", "run-1", "run-2", "mean reward", "step"] {
            assert!(texts.iter().any(|t| t == text), "{text} in {texts:?}");
        }
        assert_eq!(
            texts.last().unwrap(),
            "experiments: 000000000000, 100000000000, 200000000000"
        );
    }

    /// The SVG's skeleton, one line per element: its tag, its stroke or fill colour, and its
    /// text; coordinates left out, so the snapshot changes when what is drawn changes.
    fn skeleton(svg: &str) -> String {
        let attribute = |element: &str, name: &str| -> Option<String> {
            let start = element.find(&format!(" {name}=\""))? + name.len() + 3;
            let end = start + element[start..].find('"')?;
            Some(element[start..end].to_string())
        };
        let mut out = String::new();
        for piece in svg.split('<').skip(1) {
            if piece.starts_with('/') {
                continue;
            }
            let tag: String = piece
                .chars()
                .take_while(|c| c.is_ascii_alphanumeric())
                .collect();
            let head = &piece[..piece.find('>').unwrap_or(piece.len())];
            let colour = attribute(head, "stroke").or_else(|| attribute(head, "fill"));
            let text = piece[piece.find('>').map_or(piece.len(), |i| i + 1)..].trim();
            out.push_str(&tag);
            if let Some(colour) = colour {
                out.push_str(&format!(" {colour}"));
            }
            if !text.is_empty() {
                out.push_str(&format!(" {text:?}"));
            }
            out.push('\n');
        }
        out
    }

    #[test]
    fn svg_structure_snapshot() {
        let figure = Figure {
            name: "completion-length".into(),
            title: "Completion length over RL".into(),
            y_label: "mean tokens".into(),
            curves: vec![
                Curve {
                    label: "r1-zero/grpo 1a2b3c4d".into(),
                    experiment: format!("1a2b3c4d{}", "0".repeat(56)),
                    points: vec![(1.0, 40.0), (2.0, 44.0), (3.0, 52.0)],
                },
                Curve {
                    label: "r1/rl 5e6f7a8b".into(),
                    experiment: format!("5e6f7a8b{}", "0".repeat(56)),
                    points: vec![(1.0, 61.0), (2.0, 58.0), (3.0, 66.0)],
                },
            ],
        };
        insta::assert_snapshot!(skeleton(&figure.to_svg().unwrap()));
    }

    /// A long curve is thinned before drawing: the SVG stays small and keeps its extremes.
    #[test]
    fn long_curves_are_drawn_from_a_thinned_copy() {
        let svg = figure(1, 50_000).to_svg().unwrap();
        let line = svg
            .split("<polyline")
            .find(|p| p.contains("stroke-width=\"2\""))
            .unwrap();
        let points = line.matches(',').count();
        assert!(points <= 4 * DRAWN_BUCKETS, "{points} points drawn");
        assert!(svg.len() < 200_000, "{} bytes", svg.len());
        assert!(points < 50_000);
    }

    #[test]
    fn png_is_written_with_the_figure_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("reward.png");
        figure(2, 20_000).write_png(&path).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        assert_eq!(&bytes[..8], b"\x89PNG\r\n\x1a\n");
        let width = u32::from_be_bytes(bytes[16..20].try_into().unwrap());
        let height = u32::from_be_bytes(bytes[20..24].try_into().unwrap());
        assert_eq!((width, height), (WIDTH, HEIGHT));
    }

    #[test]
    fn an_empty_figure_still_draws() {
        let svg = figure(0, 0).to_svg().unwrap();
        assert_eq!(texts(&svg)[0], "Reward");
    }
}
