//! Plots for the simulation commands: PNG (bitmap) or SVG by file extension. Text uses the
//! DejaVu Sans font embedded in the binary, so no system font is needed.

use anyhow::{Context, Result};
use plotters::prelude::*;
use std::path::Path;

/// One curve.
pub struct Series {
    pub name: String,
    pub points: Vec<(f64, f64)>,
    pub dashed: bool,
}

fn register_font() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        // Only fails if the bytes are not a font; they are DejaVu Sans.
        let _ = plotters::style::register_font("sans-serif", FontStyle::Normal, dejavu::sans::regular());
    });
}

/// Curves on a logarithmic y axis; zero or negative values are left out (they have no place on
/// a log axis).
pub fn log_curves(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<()> {
    render(path, title, x_label, y_label, series, true)
}

/// Curves on a linear y axis (PSNR, similarity indices); non-finite values are left out.
pub fn curves(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series]) -> Result<()> {
    render(path, title, x_label, y_label, series, false)
}

fn render(path: &Path, title: &str, x_label: &str, y_label: &str, series: &[Series], log: bool) -> Result<()> {
    register_font();
    let svg = path.extension().is_some_and(|e| e.eq_ignore_ascii_case("svg"));
    if svg {
        let root = SVGBackend::new(path, (900, 600)).into_drawing_area();
        draw(root, title, x_label, y_label, series, log)
    } else {
        let root = BitMapBackend::new(path, (900, 600)).into_drawing_area();
        draw(root, title, x_label, y_label, series, log)
    }
    .with_context(|| format!("writing plot {}", path.display()))
}

fn draw<DB: DrawingBackend>(
    root: DrawingArea<DB, plotters::coord::Shift>,
    title: &str,
    x_label: &str,
    y_label: &str,
    series: &[Series],
    log: bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    let keep = move |p: &(f64, f64)| p.1.is_finite() && (!log || p.1 > 0.0);
    let xs = series.iter().flat_map(|s| s.points.iter().map(|p| p.0));
    let (x0, x1) = xs.fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), x| (a.min(x), b.max(x)));
    let (x0, x1) = if x0 < x1 { (x0, x1) } else { (x0 - 1.0, x0 + 1.0) };
    let ys = || {
        series
            .iter()
            .flat_map(|s| s.points.iter().filter(|p| keep(p)).map(|p| p.1))
    };
    root.fill(&WHITE).map_err(|e| anyhow::anyhow!("{e}"))?;
    let mut builder = ChartBuilder::on(&root);
    builder
        .caption(title, ("sans-serif", 22))
        .margin(15)
        .x_label_area_size(45)
        .y_label_area_size(70);
    if log {
        let ymin = ys().fold(1.0f64, f64::min).max(1e-7);
        let y0 = 10f64.powf(ymin.log10().floor());
        let mut chart = builder
            .build_cartesian_2d(x0..x1, (y0..1.0).log_scale())
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 15))
            .y_label_formatter(&|v| format!("{v:.0e}"))
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        draw_series(&mut chart, series, keep)?;
    } else {
        let (lo, hi) = ys().fold((f64::INFINITY, f64::NEG_INFINITY), |(a, b), y| (a.min(y), b.max(y)));
        let (lo, hi) = if lo < hi { (lo, hi) } else { (lo - 1.0, lo + 1.0) };
        let pad = 0.05 * (hi - lo);
        let mut chart = builder
            .build_cartesian_2d(x0..x1, (lo - pad)..(hi + pad))
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        chart
            .configure_mesh()
            .x_desc(x_label)
            .y_desc(y_label)
            .label_style(("sans-serif", 15))
            .draw()
            .map_err(|e| anyhow::anyhow!("{e}"))?;
        draw_series(&mut chart, series, keep)?;
    }
    root.present().map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}

fn draw_series<'a, DB: DrawingBackend + 'a, Y: plotters::coord::ranged1d::Ranged<ValueType = f64>>(
    chart: &mut ChartContext<'a, DB, Cartesian2d<plotters::coord::types::RangedCoordf64, Y>>,
    series: &[Series],
    keep: impl Fn(&(f64, f64)) -> bool,
) -> Result<()>
where
    DB::ErrorType: 'static,
{
    // Distinct colours for up to 10 series (the first six as before).
    let colors = [
        RED,
        BLUE,
        BLACK,
        GREEN,
        MAGENTA,
        CYAN,
        RGBColor(255, 140, 0),
        RGBColor(128, 0, 128),
        RGBColor(0, 120, 0),
        RGBColor(139, 69, 19),
    ];
    for (i, s) in series.iter().enumerate() {
        let color = colors[i % colors.len()];
        let pts: Vec<(f64, f64)> = s.points.iter().copied().filter(|p| keep(p)).collect();
        if s.dashed {
            chart
                .draw_series(DashedLineSeries::new(pts, 6, 4, color.stroke_width(2)))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(&s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
        } else {
            chart
                .draw_series(LineSeries::new(pts.clone(), color.stroke_width(2)))
                .map_err(|e| anyhow::anyhow!("{e}"))?
                .label(&s.name)
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], color));
            chart
                .draw_series(pts.into_iter().map(|p| Circle::new(p, 3, color.filled())))
                .map_err(|e| anyhow::anyhow!("{e}"))?;
        }
    }
    chart
        .configure_series_labels()
        .background_style(WHITE.mix(0.8))
        .border_style(BLACK)
        .label_font(("sans-serif", 15))
        .draw()
        .map_err(|e| anyhow::anyhow!("{e}"))?;
    Ok(())
}
