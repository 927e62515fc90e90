//! The digest's trend chart: one line per metric over the last periods, the current period's
//! 95 % interval as a band, labelled axes, as a PNG a sponsor can read in Slack's preview.
//!
//! Drawn with `plotters` into an RGB buffer and encoded with `image`. The font is compiled in
//! (`assets/fonts/DejaVuSans.ttf`, registered with plotters' `ab_glyph` backend), so the chart
//! renders the same on a server with no fonts installed. The chart only draws what it is
//! given: the numbers reaching it have already passed the anonymity rules (a suppressed
//! period is `None` and leaves a gap).

use std::sync::OnceLock;

use image::ImageEncoder;
use plotters::prelude::*;
use plotters::style::FontStyle;

/// The embedded font: the only one the chart uses.
static DEJAVU_SANS: &[u8] = include_bytes!("../../assets/fonts/DejaVuSans.ttf");
/// The family name the chart's text asks plotters for.
const FONT: &str = "sans-serif";

/// Slack shows image previews up to about 360 px high in the channel and full width in the
/// viewer; 1200×600 keeps the text legible in both.
pub const DEFAULT_WIDTH: u32 = 1200;
pub const DEFAULT_HEIGHT: u32 = 600;

/// Distinct, colour-blind-friendly line colours (Okabe–Ito), reused past eight series.
const PALETTE: [RGBColor; 8] = [
    RGBColor(0, 114, 178),
    RGBColor(213, 94, 0),
    RGBColor(0, 158, 115),
    RGBColor(204, 121, 167),
    RGBColor(86, 180, 233),
    RGBColor(230, 159, 0),
    RGBColor(0, 0, 0),
    RGBColor(240, 228, 66),
];

/// One metric's line.
#[derive(Debug, Clone, PartialEq)]
pub struct ChartSeries {
    /// The legend entry (the metric's key or label).
    pub label: String,
    /// One point per period, oldest first: the period's label and its mean, `None` when the
    /// period has no number to show (suppressed under `k`, or no round).
    pub points: Vec<(String, Option<f64>)>,
    /// The 95 % interval around the current (last) period's value, drawn as a band.
    pub ci95: Option<(f64, f64)>,
}

/// What to draw. Every series shares the x axis: the period labels of the longest series.
#[derive(Debug, Clone, PartialEq)]
pub struct TrendChart {
    pub title: String,
    pub series: Vec<ChartSeries>,
    /// The y axis range; `None` fits the data (and the bands) with a margin.
    pub y_range: Option<(f64, f64)>,
    /// The y axis caption, e.g. "mean score (1–5)".
    pub y_label: String,
    pub width: u32,
    pub height: u32,
}

impl TrendChart {
    /// A chart of the default size with a generic y caption.
    pub fn new(title: impl Into<String>, series: Vec<ChartSeries>) -> Self {
        Self {
            title: title.into(),
            series,
            y_range: None,
            y_label: "mean".into(),
            width: DEFAULT_WIDTH,
            height: DEFAULT_HEIGHT,
        }
    }

    /// Whether any period of any series has a number to draw.
    pub fn has_data(&self) -> bool {
        self.series
            .iter()
            .any(|s| s.points.iter().any(|(_, v)| v.is_some_and(f64::is_finite)))
    }

    /// The x axis: the period labels of the series with the most periods.
    fn periods(&self) -> Vec<String> {
        self.series
            .iter()
            .max_by_key(|s| s.points.len())
            .map(|s| s.points.iter().map(|(l, _)| l.clone()).collect())
            .unwrap_or_default()
    }

    /// The y range to draw: the given one, else the data and bands with 10 % margins.
    fn y_bounds(&self) -> (f64, f64) {
        if let Some((lo, hi)) = self.y_range {
            if lo.is_finite() && hi.is_finite() && hi > lo {
                return (lo, hi);
            }
        }
        let values = self.series.iter().flat_map(|s| {
            s.points
                .iter()
                .filter_map(|(_, v)| *v)
                .chain(s.ci95.into_iter().flat_map(|(lo, hi)| [lo, hi]))
        });
        let (lo, hi) = values
            .filter(|v| v.is_finite())
            .fold((f64::INFINITY, f64::NEG_INFINITY), |(lo, hi), v| {
                (lo.min(v), hi.max(v))
            });
        if !lo.is_finite() {
            return (0.0, 1.0);
        }
        let span = (hi - lo).max(0.5);
        (lo - span * 0.1, hi + span * 0.1)
    }
}

impl TrendChart {
    /// The chart of a digest: its metrics' trends over the last periods, titled with the
    /// program and the period. One y axis: when metrics have different ranges (a 1–5 scale
    /// beside a 0–1 yes/no), the range most of them share is drawn.
    pub fn from_digest(digest: &super::numbers::Digest) -> TrendChart {
        let title = format!("{}: {}", digest.program_name, digest.period.label);
        TrendChart::from_trends(title, &digest.trends)
    }

    /// A chart of `trends` (see [`TrendChart::from_digest`]).
    pub fn from_trends(title: String, trends: &[super::numbers::TrendSeries]) -> TrendChart {
        let mut ranges: Vec<((f64, f64), usize)> = Vec::new();
        for t in trends {
            match ranges.iter_mut().find(|(r, _)| *r == t.range) {
                Some((_, n)) => *n += 1,
                None => ranges.push((t.range, 1)),
            }
        }
        // The most shared range; the first one among equals.
        let range = ranges
            .iter()
            .fold(None::<((f64, f64), usize)>, |best, &(r, n)| match best {
                Some((_, m)) if m >= n => best,
                _ => Some((r, n)),
            })
            .map(|(r, _)| r);
        let series = trends
            .iter()
            .filter(|t| Some(t.range) == range)
            .map(|t| ChartSeries {
                label: t.label.clone(),
                points: t.points.clone(),
                ci95: t.current_ci,
            })
            .collect();
        let mut chart = TrendChart::new(title, series);
        if let Some((lo, hi)) = range {
            chart.y_range = Some((lo, hi));
            chart.y_label = format!("mean ({lo:.0}–{hi:.0})");
        }
        chart
    }
}

/// Renders the digest's chart and queues its upload to `channel` in the caller's
/// transaction (the one that records the digest), keyed `dedupe_key` (one per channel and
/// period). `true` when queued, `false` when that key was queued before.
pub async fn enqueue_digest_chart(
    tx: &mut crate::storage::StoreTx,
    digest: &super::numbers::Digest,
    channel: &str,
    dedupe_key: &str,
    now: chrono::DateTime<chrono::Utc>,
) -> Result<bool, ChartUploadError> {
    let png = render_trend_chart(&TrendChart::from_digest(digest))?;
    let filename = format!(
        "{}-{}.png",
        digest.program,
        digest.period.start.get(..10).unwrap_or("trend")
    );
    let title = format!("{}: trend, {}", digest.program_name, digest.period.label);
    Ok(crate::slack::outbound::upload::enqueue_chart_upload(
        tx, channel, &filename, &title, png, dedupe_key, now,
    )
    .await?)
}

#[derive(Debug, thiserror::Error)]
pub enum ChartUploadError {
    #[error(transparent)]
    Chart(#[from] ChartError),
    #[error(transparent)]
    Store(#[from] crate::storage::StoreError),
}

#[derive(Debug, thiserror::Error)]
pub enum ChartError {
    #[error("chart size {0}×{1} is out of range (100–4000 px each way)")]
    Size(u32, u32),
    #[error("the embedded font could not be loaded")]
    Font,
    #[error("drawing the chart failed: {0}")]
    Draw(String),
    #[error("encoding the chart as PNG failed: {0}")]
    Encode(String),
}

fn draw_err(e: impl std::fmt::Display) -> ChartError {
    ChartError::Draw(e.to_string())
}

/// Registers the embedded font with plotters once per process.
fn register_font() -> Result<(), ChartError> {
    static REGISTERED: OnceLock<bool> = OnceLock::new();
    let ok = *REGISTERED.get_or_init(|| {
        plotters::style::register_font(FONT, FontStyle::Normal, DEJAVU_SANS).is_ok()
            && plotters::style::register_font(FONT, FontStyle::Bold, DEJAVU_SANS).is_ok()
    });
    ok.then_some(()).ok_or(ChartError::Font)
}

/// Renders the chart as PNG bytes. The same chart gives the same bytes. A chart with nothing
/// to draw (no series, or every period suppressed) says so in words instead of plotting.
pub fn render_trend_chart(chart: &TrendChart) -> Result<Vec<u8>, ChartError> {
    let (w, h) = (chart.width, chart.height);
    if !(100..=4000).contains(&w) || !(100..=4000).contains(&h) {
        return Err(ChartError::Size(w, h));
    }
    register_font()?;
    let mut rgb = vec![255u8; (w as usize) * (h as usize) * 3];
    {
        let root = BitMapBackend::with_buffer(&mut rgb, (w, h)).into_drawing_area();
        root.fill(&WHITE).map_err(draw_err)?;
        if chart.has_data() {
            draw_trend(&root, chart)?;
        } else {
            draw_empty(&root, chart)?;
        }
        root.present().map_err(draw_err)?;
    }
    let mut png = Vec::new();
    image::codecs::png::PngEncoder::new(&mut png)
        .write_image(&rgb, w, h, image::ColorType::Rgb8)
        .map_err(|e| ChartError::Encode(e.to_string()))?;
    Ok(png)
}

type Area<'a> = DrawingArea<BitMapBackend<'a>, plotters::coord::Shift>;

fn draw_trend(root: &Area<'_>, chart: &TrendChart) -> Result<(), ChartError> {
    let periods = chart.periods();
    let n = periods.len().max(1);
    let (y0, y1) = chart.y_bounds();
    let x_range = -0.5f64..(n as f64 - 0.5);
    let mut ctx = ChartBuilder::on(root)
        .caption(&chart.title, (FONT, 30).into_font())
        .margin(20)
        .x_label_area_size(70)
        .y_label_area_size(80)
        .build_cartesian_2d(x_range, y0..y1)
        .map_err(draw_err)?;
    let period_label = |x: &f64| -> String {
        let i = x.round();
        if (x - i).abs() > 1e-6 || i < 0.0 {
            return String::new();
        }
        periods.get(i as usize).cloned().unwrap_or_default()
    };
    ctx.configure_mesh()
        .x_labels(n + 2)
        .x_label_formatter(&period_label)
        .y_labels(8)
        .y_label_formatter(&|y| format!("{y:.1}"))
        .x_desc("period (start date)")
        .y_desc(&chart.y_label)
        .label_style((FONT, 20))
        .axis_desc_style((FONT, 22))
        .light_line_style(WHITE)
        .bold_line_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(draw_err)?;

    let last = n as f64 - 1.0;
    for (i, series) in chart.series.iter().enumerate() {
        let color = PALETTE[i % PALETTE.len()];
        // The band first, so the line and point stay on top of it.
        if let Some((lo, hi)) = series
            .ci95
            .filter(|(lo, hi)| lo.is_finite() && hi.is_finite())
        {
            let x = last;
            ctx.draw_series(std::iter::once(Rectangle::new(
                [(x - 0.12, lo), (x + 0.12, hi)],
                color.mix(0.18).filled(),
            )))
            .map_err(draw_err)?;
            ctx.draw_series(std::iter::once(PathElement::new(
                vec![(x, lo), (x, hi)],
                color.stroke_width(2),
            )))
            .map_err(draw_err)?;
        }
        // A suppressed period is a gap: each run of shown periods is its own line.
        let mut runs: Vec<Vec<(f64, f64)>> = vec![Vec::new()];
        for (x, (_, value)) in series.points.iter().enumerate() {
            match value.filter(|v| v.is_finite()) {
                Some(v) => runs.last_mut().expect("one run").push((x as f64, v)),
                None => runs.push(Vec::new()),
            }
        }
        let mut labelled = false;
        for run in runs.into_iter().filter(|r| !r.is_empty()) {
            let drawn = ctx
                .draw_series(LineSeries::new(run.clone(), color.stroke_width(4)))
                .map_err(draw_err)?;
            if !labelled {
                drawn.label(series.label.clone()).legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 24, y)], color.stroke_width(4))
                });
                labelled = true;
            }
            ctx.draw_series(run.into_iter().map(|p| Circle::new(p, 6, color.filled())))
                .map_err(draw_err)?;
        }
    }
    if chart.series.iter().any(|s| s.ci95.is_some()) {
        // A legend entry, not a line: what the bands are.
        let grey = RGBColor(120, 120, 120);
        ctx.draw_series(std::iter::empty::<Rectangle<(f64, f64)>>())
            .map_err(draw_err)?
            .label("95 % interval, current period")
            .legend(move |(x, y)| {
                Rectangle::new([(x, y - 8), (x + 24, y + 8)], grey.mix(0.3).filled())
            });
    }
    ctx.configure_series_labels()
        .position(SeriesLabelPosition::UpperLeft)
        .label_font((FONT, 20))
        .background_style(WHITE.mix(0.85))
        .border_style(RGBColor(200, 200, 200))
        .draw()
        .map_err(draw_err)?;
    Ok(())
}

const MESSAGE: RGBColor = RGBColor(60, 60, 60);
const NOTE: RGBColor = RGBColor(110, 110, 110);

fn draw_empty(root: &Area<'_>, chart: &TrendChart) -> Result<(), ChartError> {
    let (w, h) = root.dim_in_pixel();
    let centered = |size: u32, color: &'static RGBColor| {
        TextStyle::from((FONT, size).into_font()).color(color).pos(
            plotters::style::text_anchor::Pos::new(
                plotters::style::text_anchor::HPos::Center,
                plotters::style::text_anchor::VPos::Center,
            ),
        )
    };
    let mid = (w as i32 / 2, h as i32 / 2);
    root.draw(&Text::new(
        chart.title.clone(),
        (mid.0, 50),
        centered(30, &BLACK),
    ))
    .map_err(draw_err)?;
    root.draw(&Text::new(
        "Not enough answers to draw a trend yet",
        mid,
        centered(34, &MESSAGE),
    ))
    .map_err(draw_err)?;
    root.draw(&Text::new(
        "Periods with fewer answers than the anonymity threshold are never shown.",
        (mid.0, mid.1 + 50),
        centered(20, &NOTE),
    ))
    .map_err(draw_err)?;
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn period_labels(n: usize) -> Vec<String> {
        let first = chrono::NaiveDate::from_ymd_opt(2027, 1, 4).unwrap();
        (0..n)
            .map(|i| (first + chrono::Duration::weeks(i as i64)).to_string())
            .collect()
    }

    pub(crate) fn sample() -> TrendChart {
        let labels = period_labels(8);
        let coaching = [3.4, 3.6, 3.5, 3.8, 3.9, 4.0, 3.9, 4.1];
        let clarity = [
            Some(3.0),
            Some(3.1),
            None,
            Some(3.3),
            Some(3.2),
            Some(3.6),
            Some(3.5),
            Some(3.7),
        ];
        let series = vec![
            ChartSeries {
                label: "coaching_value".into(),
                points: labels.iter().cloned().zip(coaching.map(Some)).collect(),
                ci95: Some((3.8, 4.4)),
            },
            ChartSeries {
                label: "goal_clarity".into(),
                points: labels.iter().cloned().zip(clarity).collect(),
                ci95: Some((3.3, 4.1)),
            },
        ];
        let mut chart = TrendChart::new("Leadership Coaching 2027 — last 8 weeks", series);
        chart.y_range = Some((1.0, 5.0));
        chart.y_label = "mean score (1–5)".into();
        chart
    }

    /// The PNG signature, then IHDR's width and height (big-endian, bytes 16..24).
    fn png_size(png: &[u8]) -> (u32, u32) {
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n", "PNG signature");
        assert_eq!(&png[12..16], b"IHDR", "IHDR is the first chunk");
        let w = u32::from_be_bytes(png[16..20].try_into().unwrap());
        let h = u32::from_be_bytes(png[20..24].try_into().unwrap());
        (w, h)
    }

    fn decoded(png: &[u8]) -> image::RgbImage {
        image::load_from_memory_with_format(png, image::ImageFormat::Png)
            .expect("decodes")
            .to_rgb8()
    }

    #[test]
    fn a_trend_chart_is_a_png_of_the_stated_size() {
        let png = render_trend_chart(&sample()).unwrap();
        assert_eq!(png_size(&png), (DEFAULT_WIDTH, DEFAULT_HEIGHT));
        let img = decoded(&png);
        assert_eq!(img.dimensions(), (DEFAULT_WIDTH, DEFAULT_HEIGHT));
        // The first series' colour is on the canvas: its line was drawn.
        assert!(img.pixels().any(|p| p.0 == [0, 114, 178]));

        let mut small = sample();
        small.width = 800;
        small.height = 400;
        assert_eq!(png_size(&render_trend_chart(&small).unwrap()), (800, 400));
    }

    /// Writes the sample chart where `PULSELOOP_WRITE_CHART` says (how
    /// docs/images/digest-chart.png is made): `PULSELOOP_WRITE_CHART=docs/images/digest-chart.png
    /// cargo test --lib digest::chart`.
    #[test]
    fn the_sample_chart_can_be_written_for_the_docs() {
        let png = render_trend_chart(&sample()).unwrap();
        if let Ok(path) = std::env::var("PULSELOOP_WRITE_CHART") {
            std::fs::write(path, &png).unwrap();
        }
    }

    #[test]
    fn the_empty_chart_can_be_written_to_look_at() {
        let png = render_trend_chart(&TrendChart::new("Pilot Program", vec![])).unwrap();
        if let Ok(path) = std::env::var("PULSELOOP_WRITE_EMPTY_CHART") {
            std::fs::write(path, &png).unwrap();
        }
    }

    #[test]
    fn the_same_chart_gives_the_same_bytes() {
        let a = render_trend_chart(&sample()).unwrap();
        let b = render_trend_chart(&sample()).unwrap();
        assert_eq!(a.len(), b.len());
        assert_eq!(a, b);
    }

    #[test]
    fn text_is_drawn_with_the_embedded_font() {
        // With no font, plotters would fail or draw no glyphs: the title row holds dark pixels.
        let img = decoded(&render_trend_chart(&sample()).unwrap());
        let dark_in_title = (0..DEFAULT_WIDTH)
            .flat_map(|x| (10..50).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 100))
            .count();
        assert!(dark_in_title > 200, "title glyphs drawn: {dark_in_title}");
    }

    #[test]
    fn an_empty_or_all_suppressed_chart_says_not_enough_answers() {
        let none = TrendChart::new("No data", vec![]);
        assert!(!none.has_data());
        let png = render_trend_chart(&none).unwrap();
        assert_eq!(png_size(&png), (DEFAULT_WIDTH, DEFAULT_HEIGHT));

        let suppressed = TrendChart::new(
            "All suppressed",
            vec![ChartSeries {
                label: "coaching_value".into(),
                points: period_labels(8).into_iter().map(|l| (l, None)).collect(),
                ci95: None,
            }],
        );
        assert!(!suppressed.has_data());
        let img = decoded(&render_trend_chart(&suppressed).unwrap());
        // The message is written in the middle of the canvas; no line colour anywhere.
        let mid_y = DEFAULT_HEIGHT / 2;
        let dark = (0..DEFAULT_WIDTH)
            .flat_map(|x| (mid_y - 20..mid_y + 20).map(move |y| (x, y)))
            .filter(|&(x, y)| img.get_pixel(x, y).0.iter().all(|&c| c < 120))
            .count();
        assert!(dark > 300, "message drawn: {dark}");
        assert!(!img.pixels().any(|p| p.0 == [0, 114, 178]));
    }

    #[test]
    fn a_digest_chart_draws_the_metrics_that_share_the_most_common_range() {
        use crate::digest::numbers::TrendSeries;
        let trend = |key: &str, range: (f64, f64)| TrendSeries {
            key: key.into(),
            label: key.into(),
            points: period_labels(8)
                .into_iter()
                .map(|l| (l, Some(range.1 - 1.0)))
                .collect(),
            current_ci: Some((range.1 - 1.5, range.1 - 0.5)),
            range,
        };
        let trends = [
            trend("would_recommend", (0.0, 1.0)),
            trend("coaching_value", (1.0, 5.0)),
            trend("clarity", (1.0, 5.0)),
        ];
        let chart = TrendChart::from_trends("Pilot: 4 Jan – 11 Jan 2027".into(), &trends);
        let labels: Vec<&str> = chart.series.iter().map(|s| s.label.as_str()).collect();
        assert_eq!(labels, ["coaching_value", "clarity"]);
        assert_eq!(chart.y_range, Some((1.0, 5.0)));
        assert_eq!(chart.series[0].ci95, Some((3.5, 4.5)));
        assert_eq!(chart.series[0].points.len(), 8);
        render_trend_chart(&chart).unwrap();

        let none = TrendChart::from_trends("Empty".into(), &[]);
        assert!(!none.has_data());
        render_trend_chart(&none).unwrap();
    }

    #[test]
    fn odd_input_never_panics() {
        let mut odd = sample();
        odd.series[0].points[3].1 = Some(f64::NAN);
        odd.series[1].ci95 = Some((f64::NEG_INFINITY, 2.0));
        odd.y_range = Some((5.0, 1.0));
        render_trend_chart(&odd).unwrap();

        let single = TrendChart::new(
            "One period",
            vec![ChartSeries {
                label: "x".into(),
                points: vec![("2027-01-04".into(), Some(4.0))],
                ci95: Some((4.0, 4.0)),
            }],
        );
        render_trend_chart(&single).unwrap();

        let mut tiny = sample();
        tiny.width = 10;
        assert!(matches!(
            render_trend_chart(&tiny),
            Err(ChartError::Size(10, 600))
        ));
    }
}
