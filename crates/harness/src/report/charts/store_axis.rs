//! Store capacity as an axis (`store-ceiling.svg`): each store-backed system's capacity at
//! the largest N against the store's CPU cap, with the ceiling its instances alone would
//! give (dashed) — where the lines meet, the instances become the limit.

use plotters::prelude::*;

use super::{FONT, Key, LEGEND_W, SIZE, color, marker, side_legend, svg, thousands, top};
use crate::report::analysis::{Analysis, capacity, median};

/// One system's line: (store cores, capacity, held) at `n`, and its instances' ceiling.
pub(crate) struct Line {
    pub label: String,
    pub system: crate::plan::System,
    pub points: Vec<(f64, f64, bool)>,
    pub instance_ceiling: Option<f64>,
}

/// The lines of the chart (and of the report's table): every store-backed system at the
/// largest N it was measured at under more than one store cap.
pub(crate) fn lines(a: &Analysis<'_>) -> (usize, Vec<Line>) {
    let Some(n) = a.store_axis.iter().flat_map(|c| c.points.iter().map(|p| p.instances)).max() else {
        return (0, Vec::new());
    };
    let mut out: Vec<Line> = Vec::new();
    for cap in &a.store_axis {
        let Some(p) = cap.points.iter().find(|p| p.instances == n) else { continue };
        let label = cap.system.to_string();
        let i = match out.iter().position(|l| l.label == label) {
            Some(i) => i,
            None => {
                out.push(Line { label, system: cap.system, points: Vec::new(), instance_ceiling: None });
                out.len() - 1
            }
        };
        let line = &mut out[i];
        line.points.push((cap.cores, p.achieved_rps, p.held));
    }
    for line in &mut out {
        // The instances' own ceiling: N × cap over their median CPU per request at this N.
        let demands: Vec<f64> = a
            .store_axis
            .iter()
            .filter(|c| c.system == line.system)
            .flat_map(|c| c.points.iter().filter(|p| p.instances == n).map(|p| p.cpu.per_request_us))
            .collect();
        line.instance_ceiling = median(demands).map(|d| capacity(n as f64 * a.results.caps.instance_cpu, d));
    }
    out.retain(|l| l.points.len() > 1);
    (n, out)
}

pub(super) fn chart(a: &Analysis<'_>) -> anyhow::Result<String> {
    let (n, lines) = lines(a);
    let xs: Vec<f64> = lines.iter().flat_map(|l| l.points.iter().map(|p| p.0)).collect();
    let (xmin, xmax) = (xs.iter().copied().fold(f64::INFINITY, f64::min), xs.iter().copied().fold(0.0, f64::max));
    let ymax = top(lines.iter().flat_map(|l| l.points.iter().map(|p| p.1).chain(l.instance_ceiling))) * 1.15;
    svg(|root| {
        let (plot, side) = root.split_horizontally(SIZE.0 - LEGEND_W);
        let mut legend = Vec::new();
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("Capacity at N={n} vs the store's CPU cap"), (FONT, 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (xmin * 0.8..xmax * 1.25).log_scale().with_key_points(xs.clone()),
                0f64..ymax.max(1.0),
            )?;
        chart
            .configure_mesh()
            .x_desc("store CPU cap, cores (log scale)")
            .y_desc("requests/s")
            .x_label_formatter(&|v| format!("{v}"))
            .y_label_formatter(&thousands)
            .light_line_style(WHITE)
            .draw()?;
        for l in &lines {
            let c = color(l.system);
            chart.draw_series(LineSeries::new(l.points.iter().map(|p| (p.0, p.1)), c.stroke_width(2)))?;
            chart.draw_series(l.points.iter().map(|p| marker(p.0, p.1, p.2, c)))?;
            legend.push((l.label.clone(), c, Key::Line));
            if let Some(ceiling) = l.instance_ceiling {
                chart.draw_series(DashedLineSeries::new(
                    [(xmin * 0.8, ceiling), (xmax * 1.25, ceiling)],
                    6,
                    5,
                    c.stroke_width(1),
                ))?;
                legend.push((format!("{}: instances' ceiling", l.label), c, Key::Dashed));
            }
        }
        side_legend(&side, &legend)
    })
}
