//! The report's charts, drawn with plotters' SVG backend into strings.
//!
//! No font files are involved: text stays `<text>` elements and the browser picks the face.
//! Coordinates are integers and the data is iterated in sorted order, so a chart is a pure
//! function of the results. A chart whose data the run does not have is left out (and the
//! text says why), rather than drawn empty.

use plotters::{coord::Shift, element::DashedPathElement, prelude::*};

use crate::{
    plan::{Lb, System},
    record::{
        Point,
        chaos::{ChaosRun, Experiment},
    },
    report::analysis::{Analysis, SATURATED, Series, attribute},
};

mod chaos;
mod live;
pub(crate) mod store_axis;
mod usl;

pub use usl::usl_reach;

use chaos::timeline;

const SIZE: (u32, u32) = (900, 520);
const FONT: &str = "sans-serif";

/// One rendered chart.
#[derive(Clone, Debug)]
pub struct Chart {
    /// File name next to the report, e.g. `throughput.svg`.
    pub file: &'static str,
    pub title: String,
    pub svg: String,
}

/// A fixed colour per system, the same in every chart.
pub fn color(system: System) -> RGBColor {
    // In the order of `System::ALL`: session-memory, session-redis, jwt-hs256, -rs256,
    // -es256, -eddsa, +denylist, +denylist-cached, then the `@stock` verifiers in a light
    // shade of their algorithm's colour, then session-postgres (dark blue-green) and its
    // touch-throttled variant (a light shade of it), session-redis-cluster (dark magenta),
    // session-redis+cached (a light shade of session-redis's red). The control is grey:
    // the rig, not a contender.
    const PALETTE: [RGBColor; 16] = [
        RGBColor(31, 119, 180),
        RGBColor(214, 39, 40),
        RGBColor(44, 160, 44),
        RGBColor(148, 103, 189),
        RGBColor(255, 127, 14),
        RGBColor(140, 86, 75),
        RGBColor(227, 119, 194),
        RGBColor(23, 190, 207),
        RGBColor(152, 223, 138),
        RGBColor(197, 176, 213),
        RGBColor(255, 187, 120),
        RGBColor(196, 156, 148),
        RGBColor(0, 104, 93),
        RGBColor(102, 194, 165),
        RGBColor(174, 1, 126),
        RGBColor(255, 152, 150),
    ];
    if system.is_control() {
        return RGBColor(127, 127, 127);
    }
    System::ALL.iter().position(|s| *s == system).and_then(|i| PALETTE.get(i)).copied().unwrap_or(RGBColor(99, 99, 99))
}

type Area<'a> = DrawingArea<SVGBackend<'a>, Shift>;

fn svg(draw: impl FnOnce(&Area<'_>) -> anyhow::Result<()>) -> anyhow::Result<String> {
    let mut out = String::new();
    {
        let root = SVGBackend::with_string(&mut out, SIZE).into_drawing_area();
        root.fill(&WHITE)?;
        draw(&root)?;
        root.present()?;
    }
    Ok(out)
}

/// Marker for a measured point: filled when it held, hollow when it did not.
fn marker(x: f64, y: f64, held: bool, c: RGBColor) -> Circle<(f64, f64), i32> {
    if held { Circle::new((x, y), 4, c.filled()) } else { Circle::new((x, y), 5, c.stroke_width(2)) }
}

fn legend_line(c: RGBColor) -> impl Fn((i32, i32)) -> PathElement<(i32, i32)> {
    move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], c.stroke_width(2))
}

fn top(v: impl IntoIterator<Item = f64>) -> f64 {
    let m = v.into_iter().filter(|x| x.is_finite()).fold(0.0, f64::max);
    if m > 0.0 { m * 1.12 } else { 1.0 }
}

fn int_label(v: &f64) -> String {
    format!("{v:.0}")
}

fn thousands(v: &f64) -> String {
    if *v >= 1000.0 { format!("{:.0}k", v / 1000.0) } else { format!("{v:.0}") }
}

/// How a legend entry is drawn.
#[derive(Clone, Copy)]
enum Key {
    Line,
    Dashed,
    Hollow,
}

/// Width of the legend column to the right of the busier charts: a legend drawn inside
/// the plot hides data somewhere for some run; beside it, never.
const LEGEND_W: u32 = 215;

/// Draw a legend into its own column.
fn side_legend(area: &Area<'_>, entries: &[(String, RGBColor, Key)]) -> anyhow::Result<()> {
    for (i, (text, c, key)) in entries.iter().enumerate() {
        let y = 70 + i as i32 * 22;
        match key {
            Key::Line => area.draw(&PathElement::new(vec![(6, y), (30, y)], c.stroke_width(2)))?,
            Key::Dashed => area.draw(&DashedPathElement::new(vec![(6, y), (30, y)], 5, 4, c.stroke_width(1)))?,
            Key::Hollow => area.draw(&Circle::new((18, y), 5, c.stroke_width(2)))?,
        }
        area.draw(&Text::new(text.clone(), (38, y - 7), (FONT, 13)))?;
    }
    Ok(())
}

/// All charts the results support, in the report's order.
pub fn all(a: &Analysis<'_>) -> anyhow::Result<Vec<Chart>> {
    let mut out = Vec::new();
    if !a.series.is_empty() {
        out.push(Chart {
            file: "throughput.svg",
            title: "Max sustained throughput vs instances".into(),
            svg: throughput(a)?,
        });
    }
    if let Some(n) = a.largest_n()
        && a.series.iter().any(|s| s.at(n).is_some())
    {
        out.push(Chart {
            file: "latency.svg",
            title: format!("p99 and p50 latency vs offered load at N={n}"),
            svg: latency(a, n)?,
        });
    }
    if a.series.iter().any(|s| s.system.uses_store() && s.points.iter().any(|p| p.store.is_some())) {
        out.push(Chart {
            file: "store.svg",
            title: "The store: commands/s and CPU utilization vs instances".into(),
            svg: store(a)?,
        });
    }
    if !a.costs.is_empty() {
        out.push(Chart { file: "cpu.svg", title: "CPU per request, instance and store".into(), svg: cpu(a)? });
    }
    if !a.rejecting.is_empty() {
        out.push(Chart {
            file: "rejection.svg",
            title: "Instance-local sessions: rejected requests vs instances".into(),
            svg: rejection(a)?,
        });
    }
    if !store_axis::lines(a).1.is_empty() {
        out.push(Chart {
            file: "store-ceiling.svg",
            title: "Capacity against the store's CPU cap".into(),
            svg: store_axis::chart(a)?,
        });
    }
    if !live::lines(a).is_empty() {
        out.push(Chart {
            file: "live-memory.svg",
            title: "Server-side memory against live sessions".into(),
            svg: live::chart(a)?,
        });
    }
    if a.series.iter().any(|s| s.fit.is_ok()) {
        out.push(Chart {
            file: "usl.svg",
            title: format!("Universal Scalability Law fits, a model to N={}", usl_reach(a)),
            svg: usl::chart(a)?,
        });
    }
    if let Some(ch) = a.chaos {
        for e in Experiment::ALL {
            let runs: Vec<&ChaosRun> = ch.runs.iter().filter(|r| r.experiment == e).collect();
            // A login storm fails nothing: its table is the figure.
            if !runs.is_empty() && e != Experiment::LoginStorm {
                out.push(Chart {
                    file: crate::report::content::chaos_chart_file(e),
                    title: format!("{}: failed answers per second", e.id()),
                    svg: timeline(e, &runs)?,
                });
            }
        }
    }
    Ok(out)
}

/// Chart 1: held throughput vs N per system, with each system's ideal N·X(1).
fn throughput(a: &Analysis<'_>) -> anyhow::Result<String> {
    let max_n = a.largest_n().unwrap_or(1) as f64;
    let control = a.control.iter().flat_map(|c| c.points.iter().map(|p| p.achieved_rps));
    let ymax = top(a
        .series
        .iter()
        .flat_map(|s| {
            let x1 = s.at(1).map_or(0.0, |p| p.achieved_rps);
            s.points.iter().map(|p| p.achieved_rps).chain(std::iter::once(x1 * max_n))
        })
        .chain(control));
    svg(|root| {
        let (plot, side) = root.split_horizontally(SIZE.0 - LEGEND_W);
        let mut legend = Vec::new();
        let mut chart = ChartBuilder::on(&plot)
            .caption("Max sustained throughput vs instances", (FONT, 18))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..max_n + 0.5, 0f64..ymax)?;
        chart
            .configure_mesh()
            .x_desc("instances (N)")
            .y_desc("requests/s that held the SLO")
            .x_label_formatter(&int_label)
            .y_label_formatter(&thousands)
            .light_line_style(WHITE)
            .draw()?;
        for s in &a.series {
            let c = color(s.system);
            let pts: Vec<(f64, f64)> = s.points.iter().map(|p| (p.instances as f64, p.achieved_rps)).collect();
            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
            legend.push((s.label(), c, Key::Line));
            chart.draw_series(s.points.iter().map(|p| marker(p.instances as f64, p.achieved_rps, p.held, c)))?;
            if let Some(one) = s.at(1) {
                let ideal = [(1.0, one.achieved_rps), (max_n, max_n * one.achieved_rps)];
                chart.draw_series(DashedLineSeries::new(ideal, 6, 5, c.mix(0.6).stroke_width(1)))?;
            }
        }
        if let Some(k) = &a.control {
            // The rig's own line: what the same stack holds without authenticating.
            let c = color(k.system);
            let pts: Vec<(f64, f64)> = k.points.iter().map(|p| (p.instances as f64, p.achieved_rps)).collect();
            chart.draw_series(LineSeries::new(pts, c.stroke_width(3)))?;
            chart.draw_series(k.points.iter().map(|p| marker(p.instances as f64, p.achieved_rps, p.held, c)))?;
            legend.push(("control (the rig alone)".into(), c, Key::Line));
        }
        let grey = RGBColor(120, 120, 120);
        legend.push(("ideal: N × X(1)".into(), grey, Key::Dashed));
        legend.push(("did not hold".into(), grey, Key::Hollow));
        side_legend(&side, &legend)
    })
}

/// Chart 2: p99 (every search step and the final run) and p50 (final run) vs offered load.
fn latency(a: &Analysis<'_>, n: usize) -> anyhow::Result<String> {
    let slo_ms = Some(a.results.config.slo_p99.as_secs_f64() * 1e3);
    // Per series: its point at N and the (offered, p99 ms) curve of its search.
    type Line<'s, 'p> = (&'s Series<'p>, &'p Point, Vec<(f64, f64)>);
    let lines: Vec<Line<'_, '_>> = a
        .series
        .iter()
        .filter_map(|s| {
            let p = s.at(n)?;
            let mut pts: Vec<(f64, f64)> = p.search.iter().map(|st| (st.offered_rps, st.p99_us as f64 / 1e3)).collect();
            pts.push((p.offered_rps.unwrap_or(p.achieved_rps), p.latency_us.p99 as f64 / 1e3));
            pts.retain(|(x, y)| x.is_finite() && *y > 0.0);
            pts.sort_by(|a, b| a.0.total_cmp(&b.0).then(a.1.total_cmp(&b.1)));
            Some((s, p, pts))
        })
        .collect();
    let xmax = top(lines.iter().flat_map(|l| l.2.iter().map(|p| p.0)));
    let ys = lines.iter().flat_map(|l| l.2.iter().map(|p| p.1).chain(std::iter::once(l.1.latency_us.p50 as f64 / 1e3)));
    let (lo, hi) =
        ys.chain(slo_ms).filter(|y| *y > 0.0).fold((f64::INFINITY, 0.0f64), |(lo, hi), y| (lo.min(y), hi.max(y)));
    let (lo, hi) = if lo.is_finite() { (lo * 0.7, hi * 1.5) } else { (0.1, 10.0) };
    let keys: Vec<f64> = [0.05, 0.1, 0.2, 0.5, 1.0, 2.0, 5.0, 10.0, 20.0, 50.0, 100.0, 200.0, 500.0, 1000.0, 2000.0]
        .into_iter()
        .filter(|k| *k >= lo && *k <= hi)
        .collect();
    svg(|root| {
        let (plot, side) = root.split_horizontally(SIZE.0 - LEGEND_W);
        let mut legend = Vec::new();
        let mut chart = ChartBuilder::on(&plot)
            .caption(
                format!("Latency vs offered load at N={n}: p99 of each try (lines), p50 of the final run (squares)"),
                (FONT, 16),
            )
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(0f64..xmax, (lo..hi).log_scale().with_key_points(keys))?;
        chart
            .configure_mesh()
            .x_desc("offered load (requests/s)")
            .y_desc("latency (ms, log scale)")
            .x_label_formatter(&thousands)
            .y_label_formatter(&|v| format!("{v}"))
            .light_line_style(WHITE)
            .draw()?;
        for (s, p, pts) in &lines {
            let c = color(s.system);
            chart.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?;
            legend.push((s.label(), c, Key::Line));
            chart.draw_series(pts.iter().map(|&(x, y)| Circle::new((x, y), 3, c.filled())))?;
            let x = p.offered_rps.unwrap_or(p.achieved_rps);
            let p50 = (p.latency_us.p50 as f64 / 1e3).max(lo);
            chart.draw_series(std::iter::once(
                EmptyElement::at((x, p50)) + Rectangle::new([(-4, -4), (4, 4)], c.filled()),
            ))?;
        }
        if let Some(slo) = slo_ms {
            let grey = RGBColor(90, 90, 90);
            chart.draw_series(DashedLineSeries::new([(0.0, slo), (xmax, slo)], 6, 5, grey.stroke_width(1)))?;
            legend.push((format!("p99 objective {slo} ms"), grey, Key::Dashed));
        }
        side_legend(&side, &legend)
    })
}

/// Chart 3: the store's commands/s and CPU utilization vs N (left), instance utilization
/// beside it (right). Where commands/s flattens while the store's CPU nears its cap, the
/// store is the bottleneck.
fn store(a: &Analysis<'_>) -> anyhow::Result<String> {
    let backed: Vec<&Series<'_>> = a.series.iter().filter(|s| s.system.uses_store()).collect();
    let max_n = a.largest_n().unwrap_or(1) as f64;
    let ops = |p: &Point| p.store.as_ref().map(|st| st.ops_per_sec);
    let ymax = top(backed.iter().flat_map(|s| {
        let one = s.at(1).and_then(ops).unwrap_or(0.0);
        s.points.iter().filter_map(|p| ops(p)).chain(std::iter::once(one * max_n))
    }));
    svg(|root| {
        let (left, right) = root.split_horizontally(SIZE.0 / 2);
        let mut l = ChartBuilder::on(&left)
            .caption("Store commands/s (dashed: ideal N × ops(1))", (FONT, 15))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..max_n + 0.5, 0f64..ymax)?;
        l.configure_mesh()
            .x_desc("instances (N)")
            .y_desc("commands/s")
            .x_label_formatter(&int_label)
            .y_label_formatter(&thousands)
            .light_line_style(WHITE)
            .draw()?;
        for s in &backed {
            let c = color(s.system);
            let pts: Vec<(f64, f64)> = s.points.iter().filter_map(|p| Some((p.instances as f64, ops(p)?))).collect();
            l.draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?.label(s.label()).legend(legend_line(c));
            l.draw_series(s.points.iter().filter_map(|p| Some(marker(p.instances as f64, ops(p)?, p.held, c))))?;
            if let Some(one) = s.at(1).and_then(ops) {
                l.draw_series(DashedLineSeries::new(
                    [(1.0, one), (max_n, one * max_n)],
                    6,
                    5,
                    c.mix(0.6).stroke_width(1),
                ))?;
            }
        }
        l.configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .draw()?;

        let mut r = ChartBuilder::on(&right)
            .caption("CPU utilization (share of the cap)", (FONT, 15))
            .margin(12)
            .x_label_area_size(40)
            .y_label_area_size(48)
            .build_cartesian_2d(0f64..max_n + 0.5, 0f64..110f64)?;
        r.configure_mesh()
            .x_desc("instances (N)")
            .y_desc("% of cap")
            .x_label_formatter(&int_label)
            .y_label_formatter(&int_label)
            .light_line_style(WHITE)
            .draw()?;
        for s in &backed {
            let c = color(s.system);
            let store: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter_map(|p| Some((p.instances as f64, attribute(a.results, p).store? * 100.0)))
                .collect();
            let inst: Vec<(f64, f64)> = s
                .points
                .iter()
                .filter(|p| p.cpu.instance_utilization.is_finite())
                .map(|p| (p.instances as f64, p.cpu.instance_utilization * 100.0))
                .collect();
            r.draw_series(LineSeries::new(store.clone(), c.stroke_width(3)))?
                .label(format!("{}: store", s.label()))
                .legend(legend_line(c));
            r.draw_series(store.iter().map(|&(x, y)| Circle::new((x, y), 4, c.filled())))?;
            let light = c.mix(0.55);
            r.draw_series(DashedLineSeries::new(inst.clone(), 6, 4, light.stroke_width(2)))?
                .label(format!("{}: instances", s.label()))
                .legend(move |(x, y)| PathElement::new(vec![(x, y), (x + 20, y)], light.stroke_width(2)));
            r.draw_series(inst.iter().map(|&(x, y)| Circle::new((x, y), 3, c.stroke_width(1))))?;
        }
        let grey = RGBColor(90, 90, 90);
        r.draw_series(DashedLineSeries::new(
            [(0.0, SATURATED * 100.0), (max_n + 0.5, SATURATED * 100.0)],
            3,
            4,
            grey.stroke_width(1),
        ))?
        .label(format!("saturated ({:.0}%)", SATURATED * 100.0))
        .legend(legend_line(grey));
        r.configure_series_labels()
            .position(SeriesLabelPosition::LowerRight)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 12))
            .draw()?;
        Ok(())
    })
}

/// Chart 4: CPU µs per request per system — the median over its instance counts, instance
/// and store stacked, with a whisker from the lowest to the highest total over N.
fn cpu(a: &Analysis<'_>) -> anyhow::Result<String> {
    let bars: Vec<(System, f64, f64, f64, f64)> = a
        .costs
        .iter()
        .filter_map(|c| {
            let s = a.series_of(c.system)?;
            let totals = s.points.iter().map(|p| p.cpu.per_request_us + p.cpu.store_per_request_us.unwrap_or(0.0));
            let (lo, hi) = totals.fold((f64::INFINITY, 0.0f64), |(lo, hi), t| (lo.min(t), hi.max(t)));
            Some((c.system, c.instance_us, c.store_us.unwrap_or(0.0), lo, hi))
        })
        .collect();
    let k = bars.len() as f64;
    let ymax = top(bars.iter().map(|b| b.4.max(b.1 + b.2)));
    svg(|root| {
        let labels: Vec<String> = bars.iter().map(|b| b.0.to_string()).collect();
        let mut chart = ChartBuilder::on(root)
            .caption(
                "CPU per request, median over N (solid: instance; light: store; whisker: lowest–highest N)",
                (FONT, 17),
            )
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(64)
            .build_cartesian_2d(-0.5f64..k - 0.5, 0f64..ymax)?;
        chart
            .configure_mesh()
            .disable_x_mesh()
            .x_labels(bars.len().max(1))
            .x_label_formatter(&|v| {
                let i = v.round();
                if (v - i).abs() < 1e-6 && i >= 0.0 {
                    labels.get(i as usize).cloned().unwrap_or_default()
                } else {
                    String::new()
                }
            })
            .x_label_style((FONT, 13))
            .y_desc("CPU µs per request")
            .y_label_formatter(&int_label)
            .light_line_style(WHITE)
            .draw()?;
        let black = RGBColor(40, 40, 40);
        for (i, (system, inst, store, lo, hi)) in bars.iter().enumerate() {
            let x = i as f64;
            let c = color(*system);
            chart.draw_series(std::iter::once(Rectangle::new([(x - 0.3, 0.0), (x + 0.3, *inst)], c.filled())))?;
            if *store > 0.0 {
                chart.draw_series(std::iter::once(Rectangle::new(
                    [(x - 0.3, *inst), (x + 0.3, inst + store)],
                    c.mix(0.35).filled(),
                )))?;
            }
            if hi > lo {
                chart
                    .draw_series(std::iter::once(PathElement::new(vec![(x, *lo), (x, *hi)], black.stroke_width(1))))?;
                for y in [*lo, *hi] {
                    chart.draw_series(std::iter::once(PathElement::new(
                        vec![(x - 0.06, y), (x + 0.06, y)],
                        black.stroke_width(1),
                    )))?;
                }
            }
            let text = if *store > 0.0 { format!("{inst:.0} + {store:.0}") } else { format!("{inst:.0}") };
            chart.draw_series(std::iter::once(Text::new(
                text,
                (x + 0.08, hi.max(inst + store) + ymax * 0.03),
                (FONT, 13),
            )))?;
        }
        Ok(())
    })
}

/// Chart 5: rejected share vs N for instance-local sessions, with (N−1)/N.
fn rejection(a: &Analysis<'_>) -> anyhow::Result<String> {
    let max_n = a.largest_n().unwrap_or(1) as f64;
    let systems: Vec<System> = a.rejecting.iter().map(|s| s.system).collect();
    svg(|root| {
        let mut chart = ChartBuilder::on(root)
            .caption("Rejected requests vs instances: round-robin vs sticky (dashed: (N−1)/N)", (FONT, 17))
            .margin(12)
            .x_label_area_size(44)
            .y_label_area_size(56)
            .build_cartesian_2d(0f64..max_n + 0.5, 0f64..100f64)?;
        chart
            .configure_mesh()
            .x_desc("instances (N)")
            .y_desc("rejected (% of requests)")
            .x_label_formatter(&int_label)
            .y_label_formatter(&int_label)
            .light_line_style(WHITE)
            .draw()?;
        let grey = RGBColor(90, 90, 90);
        let expected: Vec<(f64, f64)> =
            (0..=70).map(|i| 1.0 + (max_n - 1.0) * i as f64 / 70.0).map(|n| (n, (n - 1.0) / n * 100.0)).collect();
        chart
            .draw_series(DashedLineSeries::new(expected, 6, 5, grey.stroke_width(1)))?
            .label("(N−1)/N")
            .legend(legend_line(grey));
        for s in a.series.iter().filter(|s| systems.contains(&s.system)).chain(a.rejecting.iter()) {
            let c = if s.lb == Lb::Sticky { color(s.system) } else { RGBColor(214, 39, 40) };
            let pts: Vec<(f64, f64)> = s.points.iter().map(|p| (p.instances as f64, p.error_ratio * 100.0)).collect();
            chart
                .draw_series(LineSeries::new(pts.clone(), c.stroke_width(2)))?
                .label(format!("{} ({})", s.system, s.lb))
                .legend(legend_line(c));
            chart.draw_series(pts.iter().map(|&(x, y)| Circle::new((x, y), 4, c.filled())))?;
        }
        chart
            .configure_series_labels()
            .position(SeriesLabelPosition::UpperLeft)
            .background_style(WHITE.mix(0.9))
            .border_style(BLACK)
            .label_font((FONT, 13))
            .draw()?;
        Ok(())
    })
}
