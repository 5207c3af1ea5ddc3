//! Charts drawn with `plotters` into an RGB buffer and saved as PNG.
//!
//! Text uses DejaVu Sans, embedded in the binary (assets/DejaVuSans.ttf), so
//! plots look the same on every machine and need no system fonts.

use std::path::Path;
use std::sync::Once;

use anyhow::Context;
use plotters::prelude::*;
use plotters::style::{FontStyle, register_font};

static FONT: &[u8] = include_bytes!("../assets/DejaVuSans.ttf");

pub(crate) fn ensure_font() {
    static REGISTER: Once = Once::new();
    REGISTER.call_once(|| {
        if register_font("sans-serif", FontStyle::Normal, FONT).is_err() {
            tracing::warn!("the embedded font did not load; plot text may be missing");
        }
    });
}

/// One named line: (x, y) points.
pub struct Series<'a> {
    /// The legend entry.
    pub name: &'a str,
    /// The points, in drawing order.
    pub points: Vec<(f64, f64)>,
}

impl<'a> Series<'a> {
    /// A line named `name` through `points`.
    pub fn new(name: &'a str, points: Vec<(f64, f64)>) -> Self {
        Self { name, points }
    }
}

/// One chart panel.
pub struct Panel<'a> {
    /// The caption above the chart.
    pub title: &'a str,
    /// The x axis's label.
    pub x_label: &'a str,
    /// The y axis's label.
    pub y_label: &'a str,
    /// The lines, each in its own colour.
    pub series: Vec<Series<'a>>,
}

const COLORS: [RGBColor; 6] = [
    RGBColor(31, 119, 180),
    RGBColor(255, 127, 14),
    RGBColor(44, 160, 44),
    RGBColor(214, 39, 40),
    RGBColor(148, 103, 189),
    RGBColor(140, 86, 75),
];

/// Draws panels stacked vertically into a `width` x (`panel_height` * n) PNG.
pub fn draw_panels(
    path: &Path,
    panels: &[Panel],
    width: u32,
    panel_height: u32,
) -> anyhow::Result<()> {
    ensure_font();
    let height = panel_height * panels.len().max(1) as u32;
    let mut rgb = vec![255u8; (width * height * 3) as usize];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (width, height)).into_drawing_area();
        root.fill(&WHITE).map_err(plot_err)?;
        let areas = root.split_evenly((panels.len().max(1), 1));
        for (panel, area) in panels.iter().zip(areas.iter()) {
            draw_panel(area, panel)?;
        }
        root.present().map_err(plot_err)?;
    }
    write_rgb_png(path, width, height, &rgb)
}

fn draw_panel(
    area: &DrawingArea<BitMapBackend, plotters::coord::Shift>,
    panel: &Panel,
) -> anyhow::Result<()> {
    let all = panel.series.iter().flat_map(|s| s.points.iter());
    let (mut x0, mut x1, mut y0, mut y1) = (f64::MAX, f64::MIN, f64::MAX, f64::MIN);
    for &(x, y) in all.filter(|(x, y)| x.is_finite() && y.is_finite()) {
        (x0, x1, y0, y1) = (x0.min(x), x1.max(x), y0.min(y), y1.max(y));
    }
    if x0 > x1 {
        (x0, x1, y0, y1) = (0.0, 1.0, 0.0, 1.0);
    }
    if x1 - x0 < 1e-9 {
        x1 = x0 + 1.0;
    }
    let pad = ((y1 - y0) * 0.05).max(1e-3);
    let mut chart = ChartBuilder::on(area)
        .caption(panel.title, ("sans-serif", 20))
        .margin(10)
        .x_label_area_size(40)
        .y_label_area_size(55)
        .build_cartesian_2d(x0..x1, (y0 - pad)..(y1 + pad))
        .map_err(plot_err)?;
    chart
        .configure_mesh()
        .x_desc(panel.x_label)
        .y_desc(panel.y_label)
        .label_style(("sans-serif", 13))
        .light_line_style(WHITE)
        .draw()
        .map_err(plot_err)?;
    for (i, s) in panel.series.iter().enumerate() {
        let color = COLORS[i % COLORS.len()];
        chart
            .draw_series(LineSeries::new(
                s.points.iter().copied(),
                color.stroke_width(2),
            ))
            .map_err(plot_err)?
            .label(s.name)
            .legend(move |(x, y)| {
                PathElement::new(vec![(x, y), (x + 18, y)], color.stroke_width(2))
            });
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.85))
        .border_style(BLACK)
        .label_font(("sans-serif", 13))
        .position(SeriesLabelPosition::UpperRight)
        .draw()
        .map_err(plot_err)?;
    Ok(())
}

fn plot_err<E: std::fmt::Debug>(e: E) -> anyhow::Error {
    anyhow::anyhow!("drawing the chart failed: {e:?}")
}

/// Writes an 8-bit RGB PNG atomically.
pub fn write_rgb_png(path: &Path, width: u32, height: u32, rgb: &[u8]) -> anyhow::Result<()> {
    let mut bytes = Vec::new();
    {
        let mut encoder = png::Encoder::new(&mut bytes, width, height);
        encoder.set_color(png::ColorType::Rgb);
        encoder.set_depth(png::BitDepth::Eight);
        let mut writer = encoder.write_header().context("PNG header")?;
        writer.write_image_data(rgb).context("PNG data")?;
    }
    crate::store::write_atomic(path, &bytes)
}

/// One logging window as `loss.png` reads it.
#[derive(Debug, Clone, Copy)]
pub struct LossPoint {
    /// Global iteration count at the end of the window (the x axis).
    pub step: f64,
    /// D's mean loss over the window.
    pub d_loss: f32,
    /// G's mean loss over the window.
    pub g_loss: f32,
    /// Mean sigmoid(D(real)).
    pub d_real: f32,
    /// Mean sigmoid(D(fake)).
    pub d_fake: f32,
}

/// One evaluation as `quality.png` reads it.
#[derive(Debug, Clone, Copy)]
pub struct QualityPoint {
    /// 1-based epoch of the evaluation (the x axis).
    pub epoch: f64,
    /// Training wall time, minutes.
    pub minutes: f64,
    /// Share of samples the evaluator classifies as their requested label.
    pub accuracy: f32,
    /// Frechet distance to the test set in the evaluator's feature space
    /// (`None` where it was not measured: too few samples).
    pub frechet: Option<f32>,
    /// Share of samples inside the real digits' manifold.
    pub precision: f32,
    /// Share of real digits inside the samples' manifold.
    pub recall: f32,
}

/// `loss.png`: D and G losses, and D's mean outputs, against the step.
pub fn loss_plot(rows: &[LossPoint], out: &Path) -> anyhow::Result<()> {
    let pts = |f: fn(&LossPoint) -> f32| rows.iter().map(|r| (r.step, f(r) as f64)).collect();
    let panels = [
        Panel {
            title: "Losses",
            x_label: "iteration",
            y_label: "BCE",
            series: vec![
                Series::new("D loss", pts(|r| r.d_loss)),
                Series::new("G loss", pts(|r| r.g_loss)),
            ],
        },
        Panel {
            title: "Discriminator outputs",
            x_label: "iteration",
            y_label: "mean sigmoid",
            series: vec![
                Series::new("D(real)", pts(|r| r.d_real)),
                Series::new("D(G(z))", pts(|r| r.d_fake)),
            ],
        },
    ];
    draw_panels(out, &panels, 900, 380)
}

/// `quality.png`: the in-training evaluations against the epoch (nothing is
/// drawn until there is one).
pub fn quality_plot(rows: &[QualityPoint], out: &Path) -> anyhow::Result<()> {
    if rows.is_empty() {
        return Ok(());
    }
    let pts = |f: fn(&QualityPoint) -> f32| rows.iter().map(|q| (q.epoch, f(q) as f64)).collect();
    let by_time =
        |f: fn(&QualityPoint) -> f32| rows.iter().map(|q| (q.minutes, f(q) as f64)).collect();
    let panels = [
        Panel {
            title: "Conditional accuracy (evaluator's verdict = requested label)",
            x_label: "epoch",
            y_label: "share",
            series: vec![Series::new("accuracy", pts(|q| q.accuracy))],
        },
        Panel {
            title: "Frechet distance to the test set (evaluator features)",
            x_label: "epoch",
            y_label: "distance",
            series: vec![Series::new(
                "Frechet",
                rows.iter()
                    .filter_map(|q| Some((q.epoch, q.frechet? as f64)))
                    .collect(),
            )],
        },
        Panel {
            title: "Precision and recall (k = 3)",
            x_label: "epoch",
            y_label: "share",
            series: vec![
                Series::new("precision", pts(|q| q.precision)),
                Series::new("recall", pts(|q| q.recall)),
            ],
        },
        Panel {
            title: "Against training wall time",
            x_label: "minutes",
            y_label: "share",
            series: vec![
                Series::new("accuracy", by_time(|q| q.accuracy)),
                Series::new("recall", by_time(|q| q.recall)),
            ],
        },
    ];
    draw_panels(out, &panels, 900, 300)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn draws_a_real_png_with_lines() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("p.png");
        let panel = Panel {
            title: "t",
            x_label: "x",
            y_label: "y",
            series: vec![Series {
                name: "a",
                points: (0..50)
                    .map(|i| (i as f64, (i as f64 * 0.2).sin()))
                    .collect(),
            }],
        };
        draw_panels(&path, &[panel], 400, 300).unwrap();
        let decoder =
            png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let mut reader = decoder.read_info().unwrap();
        let mut buf = vec![0; reader.output_buffer_size()];
        reader.next_frame(&mut buf).unwrap();
        assert_eq!((reader.info().width, reader.info().height), (400, 300));
        // The line colour is present: something besides white, black and grey was drawn.
        assert!(buf.chunks(3).any(|p| p == [31, 119, 180]));
    }
}
