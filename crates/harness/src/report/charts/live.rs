//! Live sessions as an axis (`live-memory.svg`): the bytes each system's holder took for
//! its preloaded sessions against how many there were — the store's growth where it was
//! read before and after (Redis, PostgreSQL), the instances' whole RSS otherwise.

use std::collections::BTreeMap;

use plotters::prelude::*;

use super::{FONT, Key, LEGEND_W, SIZE, color, side_legend, svg, top};
use crate::{plan::System, report::analysis::Analysis};

/// Per system: (sessions, MB held), one value per step.
pub(super) fn lines(a: &Analysis<'_>) -> BTreeMap<System, Vec<(f64, f64)>> {
    let mut out: BTreeMap<System, Vec<(f64, f64)>> = BTreeMap::new();
    for p in &a.live {
        let Some(l) = &p.live else { continue };
        let held = l.state_bytes.saturating_sub(l.state_bytes_before.unwrap_or(0)) as f64 / 1e6;
        let line = out.entry(p.system).or_default();
        if !line.iter().any(|(x, _)| *x == l.sessions as f64) {
            line.push((l.sessions as f64, held));
        }
    }
    for line in out.values_mut() {
        line.sort_by(|x, y| x.0.total_cmp(&y.0));
    }
    out.retain(|_, l| l.len() > 1);
    out
}

pub(super) fn chart(a: &Analysis<'_>) -> anyhow::Result<String> {
    let lines = lines(a);
    let xs: Vec<f64> = lines.values().flat_map(|l| l.iter().map(|p| p.0)).collect();
    let (xmin, xmax) = (xs.iter().copied().fold(f64::INFINITY, f64::min), xs.iter().copied().fold(1.0, f64::max));
    let ymax = top(lines.values().flat_map(|l| l.iter().map(|p| p.1)));
    svg(|root| {
        let (plot, side) = root.split_horizontally(SIZE.0 - LEGEND_W);
        let mut legend = Vec::new();
        let mut chart = ChartBuilder::on(&plot)
            .caption("Server-side memory against live sessions", (FONT, 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d((xmin * 0.7..xmax * 1.4).log_scale().with_key_points(xs.clone()), 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc("live sessions (JWT: refresh-token families), log scale")
            .y_desc("MB held")
            .x_label_formatter(&|v| if *v >= 1e6 { format!("{}M", v / 1e6) } else { format!("{}k", v / 1e3) })
            .y_label_formatter(&|v| format!("{v:.0}"))
            .light_line_style(WHITE)
            .draw()?;
        for (system, line) in &lines {
            let c = color(*system);
            chart.draw_series(LineSeries::new(line.iter().copied(), c.stroke_width(2)))?;
            chart.draw_series(line.iter().map(|p| Circle::new(*p, 4, c.filled())))?;
            let how = match a.live.iter().find(|p| p.system == *system).and_then(|p| p.live.as_ref()) {
                Some(l) if l.state_bytes_before.is_some() => "store growth",
                _ => "instances' RSS",
            };
            legend.push((format!("{system} ({how})"), c, Key::Line));
        }
        side_legend(&side, &legend)
    })
}
