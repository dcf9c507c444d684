//! Chart 6 (`usl.svg`): the fitted Universal Scalability Law curves on log-log axes, a
//! model drawn no further than twice the largest N measured, the measured points marked.

use plotters::prelude::*;

use super::{FONT, Key, LEGEND_W, SIZE, color, int_label, marker, side_legend, svg, thousands, top};
use crate::report::analysis::{Analysis, Series};

/// How far the USL chart and table extrapolate: twice the largest N measured (at least 2).
pub fn usl_reach(a: &Analysis<'_>) -> usize {
    2 * a.largest_n().unwrap_or(1).max(1)
}

/// Chart 6: the fitted USL curves, measured points marked.
pub(super) fn chart(a: &Analysis<'_>) -> anyhow::Result<String> {
    // A model, drawn no further than twice the largest N measured.
    let max = usl_reach(a);
    let curves: Vec<(&Series<'_>, Vec<(f64, f64)>)> = a
        .series
        .iter()
        .filter_map(|s| {
            let f = s.fit.as_ref().ok()?;
            Some((s, (1..=max).map(|n| (n as f64, f.predict(n as f64))).collect()))
        })
        .collect();
    let max = max as f64;
    let ys: Vec<f64> = curves
        .iter()
        .flat_map(|c| c.1.iter().map(|p| p.1))
        .chain(a.series.iter().flat_map(|s| s.points.iter().map(|p| p.achieved_rps)))
        .filter(|y| y.is_finite() && *y > 0.0)
        .collect();
    let ymin = ys.iter().copied().fold(f64::INFINITY, f64::min);
    let (ymin, ymax) = if ymin.is_finite() { (ymin * 0.7, top(ys.iter().copied()) * 1.3) } else { (1.0, 10.0) };
    let ykeys: Vec<f64> =
        (0..8).flat_map(|e| [1.0, 2.0, 5.0].map(|m| m * 10f64.powi(e))).filter(|k| *k >= ymin && *k <= ymax).collect();
    let measured_max = a.largest_n().unwrap_or(1) as f64;
    svg(|root| {
        let (plot, side) = root.split_horizontally(SIZE.0 - LEGEND_W);
        let mut legend = Vec::new();
        let mut chart = ChartBuilder::on(&plot)
            .caption(format!("USL fits, a model to N={max} (dots: measured; hollow: did not hold)"), (FONT, 17))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(
                (1f64..max).log_scale().with_key_points(
                    [1.0, 2.0, 4.0, 8.0, 16.0, 32.0, 64.0, 128.0].into_iter().filter(|k| *k <= max).collect::<Vec<_>>(),
                ),
                (ymin..ymax).log_scale().with_key_points(ykeys),
            )?;
        chart
            .configure_mesh()
            .x_desc("instances (N, log scale)")
            .y_desc("requests/s (log scale; linear scaling is a straight line)")
            .x_label_formatter(&int_label)
            .y_label_formatter(&thousands)
            .light_line_style(WHITE)
            .draw()?;
        let grey = RGBColor(150, 150, 150);
        chart.draw_series(DashedLineSeries::new(
            [(measured_max, ymin), (measured_max, ymax)],
            3,
            4,
            grey.stroke_width(1),
        ))?;
        chart.draw_series(std::iter::once(Text::new(
            "← measured | model →",
            (measured_max * 1.03, ymax * 0.8),
            (FONT, 12),
        )))?;
        for s in &a.series {
            let c = color(s.system);
            match curves.iter().find(|(cs, _)| std::ptr::eq(*cs, s)) {
                Some((_, pts)) => {
                    chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
                    legend.push((s.label(), c, Key::Line));
                }
                None => legend.push((format!("{} (no fit)", s.label()), c, Key::Hollow)),
            }
            chart.draw_series(s.points.iter().map(|p| marker(p.instances as f64, p.achieved_rps, p.held, c)))?;
        }
        side_legend(&side, &legend)
    })
}
