//! The chaos experiments' timelines (`chaos-<experiment>.svg`).

use plotters::prelude::*;

use super::{FONT, Key, LEGEND_W, SIZE, color, int_label, side_legend, svg};
use crate::record::chaos::{ChaosRun, Experiment};

/// Chaos timelines: the share of answers that failed, per second, per system; the fault
/// shaded (a line for instance loss). A system that never failed lies on the zero line.
pub(super) fn timeline(e: Experiment, runs: &[&ChaosRun]) -> anyhow::Result<String> {
    let end = runs.iter().map(|r| r.timeline.len()).max().unwrap_or(1) as f64;
    let (start, stop) = runs.first().map_or((0.0, 0.0), |r| (r.fault_start_s, r.fault_end_s));
    svg(|root| {
        let (plot, side) = root.split_horizontally(SIZE.0 - LEGEND_W);
        let mut legend = Vec::new();
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("{}: failed answers per second", e.id()), (FONT, 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..end, 0f64..105f64)?;
        chart
            .configure_mesh()
            .x_desc("seconds into the run")
            .y_desc("failed (% of answers in that second)")
            .x_label_formatter(&int_label)
            .y_label_formatter(&int_label)
            .light_line_style(WHITE)
            .draw()?;
        let grey = RGBColor(150, 150, 150);
        let fault = if stop > start {
            format!("fault ({:.1}–{:.1} s)", start, stop)
        } else {
            format!("fault at {start:.1} s")
        };
        chart.draw_series(std::iter::once(Rectangle::new(
            [(start, 0.0), (stop.max(start + 0.05), 105.0)],
            grey.mix(0.25).filled(),
        )))?;
        legend.push((fault, grey, Key::Line));
        for r in runs {
            let c = color(r.system);
            let pts: Vec<(f64, f64)> = r
                .timeline
                .iter()
                .filter(|b| b.ok + b.failed() > 0)
                .map(|b| (b.t_s as f64 + 0.5, b.failed() as f64 / (b.ok + b.failed()) as f64 * 100.0))
                .collect();
            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
            chart.draw_series(pts.iter().map(|&(x, y)| Circle::new((x, y), 3, c.filled())))?;
            legend.push((r.system.to_string(), c, Key::Line));
        }
        side_legend(&side, &legend)
    })
}
