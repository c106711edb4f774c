//! The training curve, drawn as d2l's `train_ch6` draws it: train loss, train accuracy and
//! test accuracy against epoch, on one set of axes.

use std::path::Path;

use plotters::prelude::*;

use super::{EpochMetrics, TrainError, artifacts};

/// Reads one value of an epoch's row.
type Field = fn(&EpochMetrics) -> f64;

/// Draws the curve of `rows` as an SVG image and writes it to `path` atomically.
pub fn write_training_svg(
    rows: &[EpochMetrics],
    title: &str,
    path: &Path,
) -> Result<(), TrainError> {
    let svg = training_svg(rows, title).map_err(|reason| TrainError::Artifact {
        path: path.to_path_buf(),
        reason: format!("cannot draw the training curve: {reason}"),
    })?;
    artifacts::write_atomic(path, svg.as_bytes())
}

/// The SVG text of the training curve of `rows`.
pub fn training_svg(rows: &[EpochMetrics], title: &str) -> Result<String, PlotError> {
    let mut svg = String::new();
    {
        let root = SVGBackend::with_string(&mut svg, (720, 480)).into_drawing_area();
        root.fill(&WHITE).map_err(PlotError::new)?;
        let last_epoch = rows.iter().map(|r| r.epoch).max().unwrap_or(1).max(1) as f64;
        let first_epoch = rows.iter().map(|r| r.epoch).min().unwrap_or(1) as f64;
        let top = rows
            .iter()
            .map(|r| r.train_loss)
            .filter(|v| v.is_finite())
            .fold(1.0_f64, f64::max)
            * 1.05;
        let mut chart = ChartBuilder::on(&root)
            .caption(title, ("sans-serif", 20))
            .margin(16)
            .x_label_area_size(40)
            .y_label_area_size(50)
            .build_cartesian_2d((first_epoch - 0.1)..(last_epoch + 0.1), 0.0..top)
            .map_err(PlotError::new)?;
        chart
            .configure_mesh()
            .x_desc("epoch")
            .x_labels(rows.len().clamp(2, 12))
            .x_label_formatter(&|x| format!("{x:.0}"))
            .draw()
            .map_err(PlotError::new)?;
        let series: [(&str, RGBColor, Field); 3] = [
            ("train loss", BLUE, |r| r.train_loss),
            ("train acc", MAGENTA, |r| r.train_accuracy),
            ("test acc", GREEN, |r| r.test_accuracy),
        ];
        for (label, color, value) in series {
            let points: Vec<(f64, f64)> = rows
                .iter()
                .map(|r| (r.epoch as f64, value(r)))
                .filter(|(_, v)| v.is_finite())
                .collect();
            chart
                .draw_series(LineSeries::new(points.clone(), color.stroke_width(2)))
                .map_err(PlotError::new)?
                .label(label)
                .legend(move |(x, y)| {
                    PathElement::new(vec![(x, y), (x + 20, y)], color.stroke_width(2))
                });
            chart
                .draw_series(
                    points
                        .into_iter()
                        .map(|p| Circle::new(p, 3, color.filled())),
                )
                .map_err(PlotError::new)?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::MiddleRight)
            .background_style(WHITE.mix(0.8))
            .border_style(BLACK)
            .draw()
            .map_err(PlotError::new)?;
        root.present().map_err(PlotError::new)?;
    }
    Ok(svg)
}

/// Why plotters could not draw the training curve.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{0}")]
pub struct PlotError(pub String);

impl PlotError {
    fn new(error: impl std::fmt::Display) -> Self {
        Self(error.to_string())
    }
}
