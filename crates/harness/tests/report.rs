//! `authbench report`: rendering from a fixed results.json (a real default sweep on a
//! 2-core machine, histograms trimmed) — files, well-formed SVG, the numbers in the text,
//! and byte-identical re-rendering.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    collections::BTreeMap,
    path::{Path, PathBuf},
    process::Command,
};

use harness::{
    plan::System,
    record::Results,
    report::{self, analysis::Analysis, usl},
};

const CHARTS: [&str; 6] = ["throughput.svg", "latency.svg", "store.svg", "cpu.svg", "rejection.svg", "usl.svg"];

fn fixture() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/full-sweep")
}

/// A latency run at 70 % of `p`'s rate with `p`'s latency and CPU, for fabricated
/// schema-2 results.
fn latency_run(p: &harness::record::Point) -> harness::record::LatencyRun {
    harness::record::LatencyRun {
        share: 0.7,
        offered_rps: (p.achieved_rps * 0.7).round(),
        achieved_rps: (p.achieved_rps * 0.7).round(),
        requests: 5000,
        duration_s: 3.0,
        error_ratio: 0.0,
        latency_us: p.latency_us,
        throttled_periods: None,
        periods: None,
        instance_utilization: 0.7,
        cpu_per_request_us: Some(p.cpu.per_request_us),
        store_per_request_us: p.cpu.store_per_request_us,
        slo_met: true,
        histogram: p.histogram.clone(),
        routes: Default::default(),
        classes: Vec::new(),
    }
}

/// A scratch copy of the fixture, so rendering never writes into the source tree.
fn scratch() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture().join("results.json"), dir.path().join("results.json")).unwrap();
    dir
}

fn read_all(dir: &Path) -> BTreeMap<String, Vec<u8>> {
    std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap())
        .map(|e| (e.file_name().to_string_lossy().into_owned(), std::fs::read(e.path()).unwrap()))
        .collect()
}

fn rendered() -> (tempfile::TempDir, String) {
    let dir = scratch();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    (dir, md)
}

/// The cells of the Markdown table row whose first cells are `lead`.
fn row(md: &str, lead: &[&str]) -> Vec<String> {
    md.lines()
        .filter(|l| l.starts_with('|'))
        .map(|l| l.trim_matches('|').split(" | ").map(|c| c.trim().to_owned()).collect::<Vec<_>>())
        .find(|cells| cells.len() >= lead.len() && cells.iter().zip(lead).all(|(c, l)| c == l))
        .unwrap_or_else(|| panic!("no table row starting {lead:?}"))
}

#[test]
fn writes_the_report_the_html_and_every_chart() {
    let dir = scratch();
    let written = report::render(dir.path()).unwrap();
    assert_eq!(written.first().unwrap().file_name().unwrap(), "report.md");
    for name in ["report.md", "report.html"].iter().chain(CHARTS.iter()) {
        let path = dir.path().join(name);
        assert!(path.is_file(), "{name} missing");
        assert!(written.contains(&path), "{name} not reported as written");
    }
    // Nothing else: no temp files left behind.
    assert_eq!(read_all(dir.path()).len(), 2 + CHARTS.len() + 1, "{:?}", read_all(dir.path()).keys());
}

#[test]
fn every_svg_is_well_formed_and_drawn_without_font_files() {
    let (dir, _) = rendered();
    for name in CHARTS {
        let text = std::fs::read_to_string(dir.path().join(name)).unwrap();
        let doc = roxmltree::Document::parse(&text).unwrap_or_else(|e| panic!("{name}: {e}"));
        let root = doc.root_element();
        assert_eq!(root.tag_name().name(), "svg", "{name}");
        assert_eq!(root.attribute("width"), Some("900"), "{name}");
        let texts = doc.descendants().filter(|n| n.has_tag_name("text")).count();
        assert!(texts > 5, "{name}: axis labels and titles are <text> elements, found {texts}");
        assert!(!text.contains("<image"), "{name}: no embedded bitmaps");
    }
}

#[test]
fn html_is_self_contained() {
    let (dir, _) = rendered();
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    assert!(html.starts_with("<!DOCTYPE html>"));
    assert_eq!(html.matches("<svg").count(), CHARTS.len(), "every chart inline");
    assert!(!html.contains("<script"), "no JavaScript");
    assert!(!html.contains("<link"), "no external stylesheet");
    assert!(!html.contains("<img"), "charts are inline, not linked");
    let urls: Vec<&str> = html.match_indices("http").map(|(i, _)| &html[i..(i + 26).min(html.len())]).collect();
    assert!(urls.iter().all(|u| u.starts_with("http://www.w3.org/2000/svg")), "only the SVG namespace: {urls:?}");
    // The headings the Markdown has are all there.
    for h in [
        "The source's comparison table, with numbers",
        "When to choose which",
        "What saturated first",
        "Limits of this run",
    ] {
        assert!(html.contains(&format!(">{h}<")), "{h}");
    }
}

#[test]
fn rendering_twice_gives_identical_bytes() {
    let a = scratch();
    let b = scratch();
    report::render(a.path()).unwrap();
    report::render(b.path()).unwrap();
    let first = read_all(a.path());
    assert_eq!(first, read_all(b.path()), "two directories, same results.json");
    report::render(a.path()).unwrap();
    assert_eq!(first, read_all(a.path()), "re-rendering in place");
}

#[test]
fn the_first_screen_states_the_decision_with_numbers() {
    let (_dir, md) = rendered();
    let first: Vec<&str> = md.lines().take(14).collect();
    let first = first.join("\n");
    // session-redis's N=8 point did not hold its rate: named, never judged.
    assert!(
        first.contains("**Every system kept scaling up to N=8 on this rig (×1.92–×2.15 for the last step)"),
        "{first}"
    );
    assert!(
        first.contains(
            "Not judged: session-redis, jwt-rs256 and jwt-eddsa (a point of their last step did not hold its rate)"
        ),
        "{first}"
    );
    // Findings with numbers, the not-held mark, and what is not measured.
    assert!(first.contains("session-memory (sticky) 27.4k, jwt-hs256 14.6k"), "{first}");
    assert!(first.contains("session-redis 5.2k✗"), "{first}");
    assert!(first.contains("fail as (N−1)/N predicts, to within 0.5 percentage points"), "{first}");
    assert!(
        first.contains("49.5% / 75.0% / 87.4% of requests rejected at N=2/4/8 (predicted 50.0% / 75.0% / 87.5%)"),
        "{first}"
    );
    assert!(first.contains("**Not measured in this run:** the revocation window (`authbench revocation`)"), "{first}");
    assert!(first.contains("capped at 0.1 core"), "the rig is on the first screen: {first}");
}

#[test]
fn the_source_table_has_the_fixtures_numbers() {
    let (_dir, md) = rendered();
    let head = row(&md, &["aspect", "measure"]);
    assert_eq!(&head[2..], ["session-memory", "session-redis", "jwt-hs256", "jwt-rs256", "jwt-es256", "jwt-eddsa"]);
    let bytes = row(&md, &["State", "bytes held server-side per session"]);
    assert_eq!(bytes[3], "152 B (Redis `MEMORY USAGE`)");
    let cred = row(&md, &["State", "credential bytes sent per request"]);
    // Cookie: __Host-sid=<43>; Authorization: Bearer <token> as jwt-server issues them
    // (checked against a live login: 363, 662, 406, 406-character tokens).
    assert_eq!(&cred[2..], ["62 B", "62 B", "385 B", "684 B", "428 B", "428 B"]);
    let gain = row(&md, &["Scalability", "gain over the last step in N (×, ideal ×2 for a doubling)"]);
    assert_eq!(gain[3], "×1.12 (4→8)✗");
    assert_eq!(gain[4], "×2.15 (4→8)");
    // Medians over the points that held their rate.
    let load = row(&md, &["Server load", "CPU µs per request, median over held points at N=1–8 (instance + store)"]);
    assert_eq!(&load[2..], ["21", "55 + 18", "42", "61", "90", "67"]);
    let cmds = row(&md, &["Server load", "store commands per request"]);
    assert_eq!(&cmds[2..], ["0", "1.00", "0", "0", "0", "0"]);
    // A sweep alone: the rows the experiments fill say so rather than guess.
    let r = row(&md, &["Security", "revocation window: logout on one instance → refused on all, p50 (max)"]);
    assert!(r[2..].iter().all(|c| c == "not measured in this run"), "{r:?}");
    let r = row(&md, &["Expiry", "how soon the server can end a credential"]);
    assert!(r[2..].iter().all(|c| c == "not measured in this run"), "{r:?}");
}

/// The sweep fixture with the revocation and chaos runs beside it: the committed reference
/// experiments (30 revocation repeats on 2 instances; chaos at 300 req/s on 3), measured on
/// another VM than the sweep.
fn with_experiments() -> (tempfile::TempDir, String) {
    let dir = scratch();
    for f in ["revocation.json", "chaos.json"] {
        std::fs::copy(
            Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/experiments").join(f),
            dir.path().join(f),
        )
        .unwrap();
    }
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    (dir, md)
}

#[test]
fn revocation_and_chaos_fill_the_security_failure_and_expiry_rows() {
    let (dir, md) = with_experiments();
    let table: Vec<&str> = md.lines().filter(|l| l.starts_with("| ")).collect();
    assert!(
        !table.iter().any(|l| l.contains("not measured yet") || l.contains("not measured in this run")),
        "{table:#?}"
    );
    let window = row(&md, &["Security", "revocation window: logout on one instance → refused on all, p50 (max)"]);
    assert_eq!(window[2], "0.35 ms (max 2.06 ms)");
    assert_eq!(window[3], "0.67 ms (max 2.03 ms)");
    assert_eq!(window[4], "5.97 s (max 5.98 s)");
    assert_eq!(&window[5..], ["= jwt-hs256 (same mechanism: `exp`)"; 3]);
    let freeze = row(&md, &["Security", "store stopped for a few seconds: answers failed; recovery"]);
    assert_eq!(freeze[2], "0.0% failed; nothing failed");
    assert_eq!(freeze[3], "16.7% failed; last failure 4.82 ms after the fault");
    let restart = row(&md, &["Security", "store restarted empty: answers failed, users logged out; recovery"]);
    assert_eq!(
        restart[3],
        "32.1% failed, 300 of 300 users logged in again; under 1% failing 5 s after the fault, last failure 7.00 s after"
    );
    let loss = row(&md, &["Scalability", "one instance lost: answers failed, users logged out; recovery"]);
    assert!(loss[2].starts_with("2.5% failed, 100 of 300 users logged in again"), "{loss:?}");
    assert_eq!(loss[4], "0.2% failed; last failure 75.10 ms after the fault");
    let expiry = row(&md, &["Expiry", "how soon the server can end a credential"]);
    assert_eq!(expiry[3], "at once on every instance: p99 2.03 ms");
    assert!(expiry[4].starts_with("not before `exp`"), "{expiry:?}");
    // First screen, the section, its charts, and the other machine named.
    let first: String = md.lines().take(20).collect::<Vec<_>>().join("\n");
    assert!(first.contains("jwt-hs256 kept working for 5.97 s at a 5 s access-token lifetime"), "{first}");
    assert!(first.contains("logged out 100 of 300 users of in-memory sessions (100 expected"), "{first}");
    assert!(md.contains("## Revocation and failures"));
    assert!(md.contains("It ran on another machine than the sweep"), "the kernels differ");
    for chart in ["chaos-store-freeze.svg", "chaos-store-restart.svg", "chaos-instance-loss.svg"] {
        assert!(md.contains(&format!("]({chart})")), "{chart} linked");
        let svg = std::fs::read_to_string(dir.path().join(chart)).unwrap();
        roxmltree::Document::parse(&svg).unwrap_or_else(|e| panic!("{chart}: {e}"));
    }
    // Deterministic with the experiments too.
    let again = with_experiments().0;
    assert_eq!(read_all(dir.path()), read_all(again.path()));
}

#[test]
fn experiments_without_a_sweep_are_refused_with_a_pointer() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(fixture().join("../experiments/chaos.json"), dir.path().join("chaos.json")).unwrap();
    let err = report::render(dir.path()).unwrap_err().to_string();
    assert!(err.contains("holds chaos.json but no sweep (results.json)"), "{err}");
}

#[test]
fn fits_in_the_report_are_the_fits_of_the_held_points() {
    let (_dir, md) = rendered();
    let results = Results::read(&fixture()).unwrap();
    // Independently: the held points of jwt-hs256, straight from the file.
    let held: Vec<(f64, f64)> = results
        .points
        .iter()
        .filter(|p| p.system == System::JWT_HS256 && p.held)
        .map(|p| (p.instances as f64, p.achieved_rps))
        .collect();
    assert_eq!(held.len(), 4);
    let f = usl::fit(&held).unwrap();
    let r = row(&md, &["jwt-hs256", "1, 2, 4, 8"]);
    assert_eq!(r[3], format!("{:.4}", f.sigma));
    assert_eq!(r[5], format!("{:.0}", f.lambda));
    assert_eq!(r[6], format!("{:.3}", f.r2));
    // Pinned values for this fixture.
    let sm = row(&md, &["session-memory (sticky)", "1, 2, 4, 8"]);
    assert_eq!(&sm[3..9], ["0.0134", "0", "3744", "0.999", "0–3.50e-3", "none (κ≈0)"]);
    // Too few held points: refused, with the reason and the excluded points named.
    let rs = row(&md, &["jwt-rs256", "2, 8"]);
    assert_eq!(rs[2], "N=1: p99 8.15 ms > SLO 5.00 ms; N=4: p99 6.18 ms > SLO 5.00 ms");
    assert_eq!(rs[3], "no fit: 2 usable points — a 3-parameter fit needs at least 4");
    let redis = row(&md, &["session-redis", "1, 2, 4"]);
    assert_eq!(redis[2], "N=8: p99 5.93 ms > SLO 5.00 ms");
}

#[test]
fn bottlenecks_are_named_by_the_utilization_law() {
    let results = Results::read(&fixture()).unwrap();
    let a = Analysis::new(&results);
    let (_dir, md) = rendered();
    assert!(md.contains(
        "- **session-redis**: store saturated first, at N=8 (instances 52%, store 95%, generator 34%, machine 44%)."
    ));
    assert!(md.contains("- **jwt-hs256**: nothing reached 85%; the p99 objective broke first at every N"), "{md}");
    // Session-memory behind round-robin is its own (rejecting) series, not a scaling one.
    assert_eq!(a.rejecting.len(), 1);
    assert_eq!(a.series.len(), 6);
    let sticky = a.series_of(System::SESSION_MEMORY).unwrap();
    assert_eq!(sticky.label(), "session-memory (sticky)");
    assert_eq!(
        sticky.points.iter().map(|p| p.instances).collect::<Vec<_>>(),
        [1, 2, 4, 8],
        "N=1 joins the sticky line"
    );
}

#[test]
fn the_model_says_it_is_a_model_and_how_far_off_it_was() {
    let (_dir, md) = rendered();
    assert!(md.contains("> This section is a model, not a measurement"));
    let two = row(&md, &["2 cores"]);
    assert_eq!(&two[1..], ["1.6", "7.2", "29.8", "142.7"]);
    // advise's three example profiles, answered from this run.
    for name in
        ["A small internal app", "A large public API needing 1 s revocation", "A high-traffic read-mostly service"]
    {
        assert!(md.contains(&format!("### {name}")), "{name}");
    }
    // Checked out of sample: each point from the demands of the other held points of its line.
    assert!(md.contains("Of 19 points that held, 4 (21%) are within ±15%"), "{md}");
    let r = Results::read(&fixture()).unwrap();
    let hs: Vec<&harness::record::Point> =
        r.points.iter().filter(|p| p.system == System::JWT_HS256 && p.held && p.instances != 2).collect();
    let mut d: Vec<f64> = hs.iter().map(|p| p.cpu.per_request_us).collect();
    d.sort_by(f64::total_cmp);
    let predicted = 2.0 * r.caps.instance_cpu * 1e6 / d[d.len() / 2];
    let cells = row(&md, &["jwt-hs256", "2"]);
    assert!(cells[3].starts_with(&format!("{:.1}k (", predicted / 1e3)), "{cells:?} vs {predicted}");
    assert_eq!(cells[4], "instances");
}

#[test]
fn the_command_line_renders_and_reports_a_missing_run_clearly() {
    let dir = scratch();
    let bin = env!("CARGO_BIN_EXE_authbench");
    let out = Command::new(bin).arg("report").arg(dir.path()).output().unwrap();
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let stdout = String::from_utf8_lossy(&out.stdout);
    assert!(stdout.starts_with("report: ") && stdout.contains("report.md"), "{stdout}");

    let missing = dir.path().join("no-such-run");
    let out = Command::new(bin).arg("report").arg(&missing).output().unwrap();
    assert!(!out.status.success());
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(stderr.lines().count(), 1, "one clear line: {stderr}");
    assert!(stderr.contains("cannot read") && stderr.contains("results.json"), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
}

#[test]
fn a_run_without_points_is_refused() {
    let dir = scratch();
    let mut results = Results::read(dir.path()).unwrap();
    results.points.clear();
    results.write(dir.path()).unwrap();
    let err = report::render(dir.path()).unwrap_err().to_string();
    assert!(err.contains("no measured points"), "{err}");
}

/// Smaller or odder runs than the fixture (one system, a quick sweep, N=1 only, uncapped,
/// nothing held) still render, with well-formed charts and a headline that fits them.
#[test]
fn partial_and_odd_runs_render_with_a_fitting_headline() {
    let full = Results::read(&fixture()).unwrap();
    let variant = |keep: &dyn Fn(&harness::record::Point) -> bool, edit: &dyn Fn(&mut Results)| {
        let mut r = full.clone();
        r.points.retain(|p| keep(p));
        edit(&mut r);
        let dir = tempfile::tempdir().unwrap();
        report::render_results(&r, dir.path()).unwrap();
        for (name, bytes) in read_all(dir.path()) {
            if name.ends_with(".svg") {
                roxmltree::Document::parse(std::str::from_utf8(&bytes).unwrap())
                    .unwrap_or_else(|e| panic!("{name}: {e}"));
            }
        }
        let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
        md.lines().nth(4).unwrap().to_owned()
    };
    let none = |_: &mut Results| {};
    // Every system the fixture measured (it predates the denylist systems).
    let measured: Vec<System> =
        System::ALL.into_iter().filter(|s| full.points.iter().any(|p| p.system == *s)).collect();
    assert_eq!(measured.len(), 6, "{measured:?}");
    for s in measured {
        let headline = variant(&|p| p.system == s, &none);
        assert!(headline.starts_with("**"), "{s}: {headline}");
    }
    assert!(variant(&|p| p.system == System::JWT_HS256, &none).starts_with("**jwt-hs256 kept scaling up to N=8"));
    assert!(variant(&|p| p.instances <= 2, &none).contains("up to N=2"));
    assert!(variant(&|p| p.instances == 1, &none).contains("Only one instance count was measured"));
    let uncapped = variant(&|_| true, &|r| {
        r.caps.capped = false;
        r.caps.reason = Some("cgroups not writable".into());
        for p in &mut r.points {
            p.capped = false;
        }
    });
    assert!(uncapped.starts_with("**Uncapped run:"), "{uncapped}");
    // 1 → 8 in one step: session-redis still "scaled", but its store is already at its limit.
    // (Held forced: the fixture's session-redis N=8 did not hold, and a verdict never rests
    // on such a point.)
    let all_held = |r: &mut Results| r.points.iter_mut().for_each(|p| p.held = true);
    let jump = variant(&|p| p.instances == 1 || p.instances == 8, &all_held);
    assert!(jump.contains("but session-redis's store reached 95% of its cap at N=8"), "{jump}");
    let store_bound = variant(&|_| true, &all_held);
    assert!(store_bound.starts_with("**Scaling out stopped only where a shared store ran out"), "{store_bound}");
    // A line whose largest N held less than twice its N = 1 did not scale out, whatever its
    // last step did: 5 157 at N = 8 against 3 000 at N = 1.
    let never = variant(&|_| true, &|r| {
        all_held(r);
        for p in r.points.iter_mut().filter(|p| p.system == System::SESSION_REDIS && p.instances == 1) {
            p.achieved_rps = 3000.0;
        }
    });
    assert!(
        never.contains("session-redis never held twice its one-instance rate (5.2k at N=8 against 3.0k at N=1)"),
        "{never}"
    );
    assert!(
        store_bound.contains(
            "session-redis gained only ×1.12, its store (capped at 0.1 core) at 95% of its CPU while the instances were 52% busy"
        ),
        "{store_bound}"
    );
    // A step whose last point the generator limited is a lower bound, and says so.
    let rig_bound = variant(&|p| p.system == System::JWT_HS256, &|r| {
        for p in r.points.iter_mut().filter(|p| p.instances == 8) {
            p.flags.push(harness::record::Flag::Generator);
        }
    });
    assert!(rig_bound.contains("saturated at the last point of jwt-hs256 ×2.15: its gain is"), "{rig_bound}");
    // A line that fell short only where the generator ran out is a lower bound, not a stop.
    let held_back = variant(&|p| p.system != System::SESSION_REDIS, &|r| {
        for p in r.points.iter_mut().filter(|p| p.system == System::JWT_HS256 && p.instances == 8) {
            p.achieved_rps = 8000.0;
            p.flags.push(harness::record::Flag::Generator);
        }
    });
    assert!(!held_back.contains("stopped"), "{held_back}");
    assert!(held_back.contains("saturated at the last point of jwt-hs256 ×1.18"), "{held_back}");
    let none_held = variant(&|_| true, &|r| r.points.iter_mut().for_each(|p| p.held = false));
    assert!(none_held.starts_with("**No system held its rate at two instance counts"), "{none_held}");
    assert!(!none_held.contains("gained"), "no verdict from points that did not hold: {none_held}");
}

#[test]
fn fits_for_results_json_cover_lines_with_four_held_points_and_round_trip() {
    let results = harness::record::Results::read(&fixture()).unwrap();
    let fits = harness::report::fits(&results);
    // In the fixture only session-memory (sticky) and jwt-hs256 have four held points.
    let names: Vec<String> = fits.iter().map(|f| format!("{}/{}", f.system, f.lb)).collect();
    assert_eq!(names, ["session-memory/sticky", "jwt-hs256/round-robin"], "{fits:#?}");
    for f in &fits {
        assert_eq!(f.model, "usl");
        assert!(f.sigma >= 0.0 && f.kappa >= 0.0 && f.lambda > 0.0 && f.r2 <= 1.0, "{f:?}");
        assert_eq!(f.peak_instances.is_none(), f.kappa <= 1e-9, "no peak exactly when κ ≈ 0: {f:?}");
    }
    // Written into results.json and read back unchanged (a missing peak is `null`).
    let dir = scratch();
    let mut with_fits = results.clone();
    with_fits.fits = fits.clone();
    with_fits.write(dir.path()).unwrap();
    let back = harness::record::Results::read(dir.path()).unwrap().fits;
    assert_eq!(back.len(), fits.len());
    for (b, f) in back.iter().zip(&fits) {
        assert_eq!((b.system, b.lb, b.peak_instances.is_some()), (f.system, f.lb, f.peak_instances.is_some()));
        // JSON keeps 17 significant digits; the last ulp may differ.
        for (x, y) in [(b.sigma, f.sigma), (b.kappa, f.kappa), (b.lambda, f.lambda), (b.r2, f.r2)] {
            assert!((x - y).abs() <= 1e-12 * y.abs().max(1.0), "{b:?} vs {f:?}");
        }
    }
}

/// An external deployment (`--target`): instance CPU unknown (NaN in memory, null in the
/// file). The report says "—" and names the deployment, never "NaN" or a made-up 0 %.
#[test]
fn an_external_run_renders_unknown_instance_cpu_as_unknown() {
    let mut r = Results::read(&fixture()).unwrap();
    r.points.retain(|p| p.system == System::SESSION_REDIS);
    r.caps.capped = false;
    r.caps.reason = Some("external deployment: caps are the deployment's".into());
    for p in &mut r.points {
        p.external = true;
        p.capped = false;
        p.targets = vec!["http://127.0.0.1:8080".into()];
        p.flags = vec![harness::record::Flag::External];
        p.cpu.instances_total_s = f64::NAN;
        p.cpu.per_request_us = f64::NAN;
        p.cpu.instance_utilization = f64::NAN;
        p.cpu.machine_s = Some(0.5 * p.duration_s);
    }
    let dir = tempfile::tempdir().unwrap();
    r.write(dir.path()).unwrap();
    let back = Results::read(dir.path()).unwrap();
    assert!(back.points[0].cpu.per_request_us.is_nan(), "null in the file reads back as unknown");
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(!md.contains("NaN"), "{md}");
    assert!(md.contains("an **external deployment** (`--target` http://127.0.0.1:8080)"), "{md}");
    assert!(md.contains("**External deployment.**"));
    assert!(md.contains("external: 4"), "flags count the external points: {md}");
    for (name, bytes) in read_all(dir.path()) {
        if name.ends_with(".svg") {
            let svg = std::str::from_utf8(&bytes).unwrap();
            assert!(!svg.contains("NaN"), "{name}");
            roxmltree::Document::parse(svg).unwrap_or_else(|e| panic!("{name}: {e}"));
        }
    }
}

/// Where `written` differs from `recorded`, ignoring keys only `written` has (fields added
/// since, at their defaults): the first differing path.
fn lost(recorded: &serde_json::Value, written: &serde_json::Value, path: &str) -> Option<String> {
    use serde_json::Value;
    match (recorded, written) {
        (Value::Object(r), Value::Object(w)) => r
            .iter()
            .find_map(|(k, v)| w.get(k).map_or(Some(format!("{path}.{k}")), |x| lost(v, x, &format!("{path}.{k}")))),
        (Value::Array(r), Value::Array(w)) if r.len() == w.len() => {
            r.iter().zip(w).enumerate().find_map(|(i, (v, x))| lost(v, x, &format!("{path}[{i}]")))
        }
        _ => (recorded != written).then(|| format!("{path}: {recorded} became {written}")),
    }
}

/// The typed schemas read every committed result file and write back the same JSON values:
/// the report's types lose nothing that a run recorded, and old runs stay readable.
#[test]
fn typed_result_files_read_and_write_every_committed_file_unchanged() {
    use harness::record::{chaos::ChaosResults, revocation::RevocationResults};
    fn same<T: serde::de::DeserializeOwned + serde::Serialize>(path: &Path) {
        let text = std::fs::read_to_string(path).unwrap();
        let raw: serde_json::Value = serde_json::from_str(&text).unwrap();
        let typed: T = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
        let written = serde_json::to_value(&typed).unwrap();
        if let Some(at) = lost(&raw, &written, "") {
            panic!("{} changes when read and written, at {at}", path.display());
        }
    }
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../..");
    let mut sweeps = vec![fixture()];
    for entry in std::fs::read_dir(root.join("bench-results")).unwrap() {
        let dir = entry.unwrap().path();
        if dir.join("results.json").is_file() {
            sweeps.push(dir);
        }
    }
    assert!(sweeps.len() >= 2, "the committed reference run is among them");
    let experiments = Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/fixtures/experiments");
    for dir in sweeps.iter().chain([&experiments]) {
        if dir.join("results.json").is_file() {
            same::<Results>(&dir.join("results.json"));
        }
        if dir.join("revocation.json").is_file() {
            same::<RevocationResults>(&dir.join("revocation.json"));
        }
        if dir.join("chaos.json").is_file() {
            same::<ChaosResults>(&dir.join("chaos.json"));
        }
    }
}

/// What a reader of `report.html` sees as text: tags stripped, and nothing of the charts,
/// the stylesheet or `<code>` (where a `*` or backtick is meant literally). Inline tags
/// vanish so `*<em>x</em>*` still reads as `*x*`; every other tag ends a line, so two table
/// cells or list items never run together into a false pair.
fn visible_text(html: &str) -> String {
    let mut html = html.to_owned();
    for (open, close) in [("<svg", "</svg>"), ("<style", "</style>"), ("<code", "</code>")] {
        while let Some(start) = html.find(open) {
            let end = html[start..].find(close).map(|e| start + e + close.len()).expect("closed element");
            html.replace_range(start..end, "\n");
        }
    }
    let mut text = String::new();
    let mut rest = html.as_str();
    while let Some(start) = rest.find('<') {
        text.push_str(&rest[..start]);
        let end = rest[start..].find('>').map(|e| start + e + 1).expect("closed tag");
        let name = rest[start + 1..end - 1].trim_start_matches('/');
        let name = name.split(|c: char| !c.is_ascii_alphanumeric()).next().unwrap_or_default();
        if !matches!(name, "em" | "strong" | "a") {
            text.push('\n');
        }
        rest = &rest[end..];
    }
    text.push_str(rest);
    text
}

#[test]
fn the_html_shows_no_markdown_markup() {
    let (dir, md) = with_experiments();
    // The Markdown does use the markup this test looks for, so the test can fail.
    assert!(md.contains("(see *Limits of this run*)") && md.contains("(see *Revocation and failures*)"));
    assert!(md.contains("**") && md.contains('`'));
    let html = std::fs::read_to_string(dir.path().join("report.html")).unwrap();
    for line in visible_text(&html).lines() {
        // An emphasis pair: a run of `*` that opens (text follows it) and a later run that
        // closes (text precedes it). A lone `*` or `**` between spaces is literal in Markdown too.
        let mut runs = Vec::new();
        let mut rest = line;
        while let Some(start) = rest.find('*') {
            let end = rest[start..].find(|c| c != '*').map_or(rest.len(), |e| start + e);
            let at = line.len() - rest.len();
            runs.push((at + start, at + end));
            rest = &rest[end..];
        }
        let opens = |&(_, end): &(usize, usize)| line[end..].starts_with(|c: char| !c.is_whitespace());
        let closes = |&(start, _): &(usize, usize)| !line[..start].ends_with(char::is_whitespace) && start > 0;
        let pair = runs.iter().enumerate().any(|(k, r)| opens(r) && runs[k + 1..].iter().any(closes));
        assert!(!pair, "emphasis markup shows as text: {line}");
        assert!(line.matches('`').count() < 2, "code markup shows as text: {line}");
    }
    // Cross-references are links to the section they name.
    for (id, name) in [("limits", "Limits of this run"), ("revocation-failures", "Revocation and failures")] {
        assert!(html.contains(&format!("<h2 id=\"{id}\">{name}</h2>")), "{id}");
        assert!(html.contains(&format!("(see <a href=\"#{id}\"><em>{name}</em></a>)")), "{name} is not a link");
    }
}

/// `authbench compare` as a regression gate: the committed reference run against itself
/// changes nothing; against a copy with 20 % less throughput, `--fail-above 10` fails.
#[test]
fn compare_passes_a_run_against_itself_and_fails_a_slower_copy() {
    let bin = env!("CARGO_BIN_EXE_authbench");
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-results/2026-11-27-default");
    let a = tempfile::tempdir().unwrap();
    let b = tempfile::tempdir().unwrap();
    std::fs::copy(reference.join("results.json"), a.path().join("results.json")).unwrap();
    let mut slower = Results::read(&reference).unwrap();
    for p in &mut slower.points {
        p.achieved_rps *= 0.8;
    }
    slower.write(b.path()).unwrap();

    let same = Command::new(bin).arg("compare").arg(a.path()).arg(a.path()).args(["--fail-above", "10"]).output();
    let same = same.unwrap();
    let stdout = String::from_utf8_lossy(&same.stdout);
    assert!(same.status.success(), "{}{stdout}", String::from_utf8_lossy(&same.stderr));
    assert!(stdout.contains("raw figures") && stdout.contains("no system got worse"), "{stdout}");
    assert!(a.path().join("compare.md").is_file());

    let out = Command::new(bin).arg("compare").arg(a.path()).arg(b.path()).args(["--fail-above", "10"]).output();
    let out = out.unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(1), "{stderr}");
    assert!(stderr.contains("worse by more than 10%") && stderr.contains("throughput ×0.80"), "{stderr}");
    assert!(String::from_utf8_lossy(&out.stdout).contains("| jwt-hs256 | round-robin |"));
    // Without the gate the same comparison is only a report.
    assert!(Command::new(bin).arg("compare").arg(a.path()).arg(b.path()).output().unwrap().status.success());

    for (args, needle) in [
        (vec!["compare", "/no/such/run", "/no/such/run"], "cannot read"),
        (vec!["compare", "/tmp", "/tmp", "--fail-above=-5"], "greater than zero"),
        (vec!["compare", "/tmp", "/tmp", "--fail-above", "ten"], "not a number"),
        (vec!["compare", "/tmp"], "<B>"),
    ] {
        let out = Command::new(bin).args(&args).output().unwrap();
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && stderr.contains(needle), "{args:?}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
    }
}

/// A calibrated run says how fast its machine was; an older run without a calibration
/// says nothing about it.
#[test]
fn the_limits_give_the_calibration_when_the_run_has_one() {
    use harness::record::calibration::{Calibration, Probe};
    let (_dir, md) = rendered();
    assert!(!md.contains("**Calibration**"));
    let dir = scratch();
    let mut r = Results::read(dir.path()).unwrap();
    let probe = |at_s, cpu_loop_us| Probe { at_s, cpu_loop_us, loopback_rtt_us: 31.0, store_ping_us: Some(52.0) };
    r.calibration = Some(Calibration { probes: vec![probe(0.0, 4000.0), probe(60.0, 4400.0), probe(120.0, 4200.0)] });
    r.write(dir.path()).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let line = md.lines().find(|l| l.contains("**Calibration**")).expect("a calibration bullet");
    assert!(line.contains("medians of 3 probes") && line.contains("4200 µs (4000–4400)"), "{line}");
    assert!(line.contains("loopback round trip 31 µs") && line.contains("Redis PING 52 µs"), "{line}");
}

/// A run with the control line: the control gets its own section and a grey line in the
/// throughput chart, its fit is recorded, and it never becomes a contender (no column of
/// the source table, no cost of its own in the verdicts).
#[test]
fn the_control_line_is_the_rigs_yardstick_not_a_contender() {
    let dir = scratch();
    let mut r = Results::read(dir.path()).unwrap();
    let control: Vec<_> = r
        .points
        .iter()
        .filter(|p| p.system == System::JWT_HS256)
        .map(|p| {
            let mut c = p.clone();
            c.system = System::CONTROL;
            c.achieved_rps *= 1.5;
            c.cpu.per_request_us -= 15.0;
            c
        })
        .collect();
    assert!(control.len() >= 4);
    r.points.extend(control);
    r.write(dir.path()).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("## The control line: what the rig costs"), "{md}");
    // jwt-hs256 costs exactly 15 µs more than this control at every N.
    let hs = md.lines().find(|l| l.starts_with("| jwt-hs256 | 15 (×")).expect("the auth-cost row");
    assert_eq!(hs.matches("| 15 (×").count(), 4, "{hs}");
    let source = md.lines().find(|l| l.starts_with("| aspect | measure |")).unwrap();
    assert!(!source.contains("control"), "{source}");
    let svg = std::fs::read_to_string(dir.path().join("throughput.svg")).unwrap();
    assert!(svg.contains("control (the rig alone)"));
    assert!(report::fits(&r).iter().any(|f| f.system == System::CONTROL));
}

/// Stolen CPU is the neighbour's, and the limits say how much of it there was.
#[test]
fn the_limits_give_the_cpu_steal_when_the_run_recorded_it() {
    let (_dir, md) = rendered();
    assert!(!md.contains("**CPU steal.**"), "older runs recorded none");
    let dir = scratch();
    let mut r = Results::read(dir.path()).unwrap();
    for (k, p) in r.points.iter_mut().enumerate() {
        // 5 s windows on 2 cores: 10 CPU seconds; 1 % steal, and 5 % once.
        p.cpu.steal_s = Some(if k == 3 { 0.5 } else { 0.1 });
    }
    r.write(dir.path()).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let line = md.lines().find(|l| l.contains("**CPU steal.**")).expect("a steal bullet");
    assert!(line.contains("up to 5% of the machine's CPU") && line.contains("(median 1%)"), "{line}");
}

#[test]
fn capacity_and_latency_are_reported_apart_from_schema_2_on() {
    let (_dir, old) = rendered();
    assert!(old.contains("max throughput = highest rate with p99 ≤ 5 ms"), "a schema-1 run keeps its own definition");
    assert!(!old.contains("Latency at 70% of capacity"));
    let dir = scratch();
    let mut r = Results::read(dir.path()).unwrap();
    r.schema_version = 2;
    for p in r.points.iter_mut().filter(|p| p.held && p.mode == harness::record::PointMode::FindMax) {
        let mut l = latency_run(p);
        l.throttled_periods = Some(50);
        l.periods = Some(500);
        l.instance_utilization = 0.6;
        l.latency_us.p99 = 1234;
        if p.system == System::JWT_RS256 && p.instances == 8 {
            l.latency_us.p99 = 7_500;
            l.slo_met = false;
        }
        p.latency = Some(l);
    }
    r.write(dir.path()).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(
        md.contains("capacity = the highest measured rate with ≥ 95% of the offered rate achieved and errors ≤ 1%"),
        "run line"
    );
    assert!(md.contains("## Latency at 70% of capacity"), "the latency section");
    let section = md.split("## Latency at 70% of capacity").nth(1).unwrap().split("\n## ").next().unwrap();
    let cells = row(section, &["jwt-rs256"]);
    assert_eq!(cells.last().unwrap(), "7.50 ✗", "a missed objective is marked in the N table: {cells:?}");
    assert_eq!(cells[1..3], ["—", "1.23"], "N=1 did not hold (no latency run), N=2 met: {cells:?}");
    let full = md.lines().find(|l| l.starts_with("| jwt-rs256 |") && l.contains("missed")).expect("the N=8 detail row");
    assert!(full.contains("| 10% |"), "throttled share 50 of 500 periods: {full}");
    assert!(!md.contains("missed the p99 objective in their final run"), "✗ no longer means the objective");
    // The JSON round-trips with the latency runs.
    let back = Results::read(dir.path()).unwrap();
    let latency = |r: &Results| r.points.iter().map(|p| p.latency.clone()).collect::<Vec<_>>();
    assert!(latency(&back) == latency(&r), "latency runs round-trip");
    assert_eq!(back.schema_version, 2);
}

#[test]
fn repeats_give_the_median_the_range_and_what_is_within_the_noise() {
    let (_dir, once) = rendered();
    assert!(!once.contains("## Repeats"), "one round: no repeats section");
    assert!(once.contains("One run per point, no repetitions"));
    let dir = scratch();
    let mut r = Results::read(dir.path()).unwrap();
    r.schema_version = 2;
    r.config.repeat = 3;
    for p in r.points.iter_mut().filter(|p| p.repeatable()) {
        let base = p.cpu.per_request_us;
        for (round, factor) in [(2, 1.1), (3, 0.95)] {
            // HS256 and RS256 far apart; EdDSA's rounds overlap RS256's.
            p.repeats.push(harness::record::Repeat {
                round,
                offered_rps: p.offered_rps.unwrap(),
                achieved_rps: p.achieved_rps,
                duration_s: 5.0,
                error_ratio: 0.0,
                held: round == 2,
                cpu_per_request_us: base * factor,
                steal_s: Some(0.0),
                latency_p99_us: None,
                latency_p50_us: None,
                slo_met: None,
                search: Vec::new(),
            });
        }
    }
    r.write(dir.path()).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("## Repeats: 3 rounds per point"), "the section");
    assert!(md.contains("probability 75%"), "coverage of 3 rounds");
    let section = md.split("## Repeats").nth(1).unwrap().split("\n## ").next().unwrap();
    let hs = row(section, &["jwt-hs256", "8"]);
    assert_eq!(hs[2], "2/3", "round 1 held, round 2 held, round 3 did not: {hs:?}");
    assert!(hs[5].contains('(') && hs[5].contains('–'), "CPU median with its range: {hs:?}");
    let cpu = section.lines().find(|l| l.starts_with("- **CPU per request**")).expect("a CPU verdict");
    assert!(cpu.contains("within the noise") || cpu.contains("apart"), "{cpu}");
    assert!(md.contains("3 interleaved rounds per point"), "the rig line says so");
}

/// A line that shares nothing gets a USL peak only when its κ interval lies above the
/// control's; a line that shares a store keeps its peak.
#[test]
fn a_shared_nothing_line_gets_no_peak_unless_its_kappa_lies_above_the_controls() {
    use harness::report::analysis::Peak;
    // The committed reference run: its RS256 and ES256 lines bend, it has no control line.
    let reference = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-results/2026-11-27-default");
    let results = Results::read(&reference).unwrap();
    let a = Analysis::new(&results);
    let es = a.series_of(System::JWT_ES256).unwrap();
    assert!(es.fit.as_ref().unwrap().peak().is_some(), "the fixture's ES256 line bends");
    assert!(matches!(a.peak(es), Some(Peak::NoControl(_))), "no control line: {:?}", a.peak(es));
    let redis = a.series_of(System::SESSION_REDIS).unwrap();
    assert!(matches!(a.peak(redis), Some(Peak::At(_))), "a shared store may make a peak: {:?}", a.peak(redis));
    // A control that bends just like ES256: ES256's curvature is the rig's.
    let mut with_control = results.clone();
    let copies: Vec<_> = results
        .points
        .iter()
        .filter(|p| p.system == System::JWT_ES256)
        .map(|p| harness::record::Point { system: System::CONTROL, ..p.clone() })
        .collect();
    with_control.points.extend(copies);
    let a = Analysis::new(&with_control);
    let es = a.series_of(System::JWT_ES256).unwrap();
    assert!(matches!(a.peak(es), Some(Peak::Rig(_))), "{:?}", a.peak(es));
    let dir = tempfile::tempdir().unwrap();
    results.write(dir.path()).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("not claimed (no control fit to compare)"), "the report says why no peak is given");
}

/// Held-out validation: the largest N predicted from N ≤ 4 by the USL and by the demand
/// model, with the demands of the latency runs.
#[test]
fn the_largest_n_is_predicted_from_the_small_ones_and_the_errors_are_given() {
    let dir = scratch();
    let mut r = Results::read(dir.path()).unwrap();
    r.schema_version = 2;
    let hs: Vec<harness::record::Point> = r.points.iter().filter(|p| p.system == System::JWT_HS256).cloned().collect();
    let mut three = hs.iter().find(|p| p.instances == 2).unwrap().clone();
    three.instances = 3;
    three.achieved_rps = (hs[1].achieved_rps + hs[2].achieved_rps) / 2.0;
    r.points.push(three);
    for p in r.points.iter_mut().filter(|p| p.system == System::JWT_HS256) {
        let mut l = latency_run(p);
        l.cpu_per_request_us = Some(50.0);
        p.latency = Some(l);
    }
    r.write(dir.path()).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let section = md
        .split("## Held-out validation: the largest N predicted from N ≤ 4")
        .nth(1)
        .expect("the section")
        .split("\n## ")
        .next()
        .unwrap();
    let cells = row(section, &["jwt-hs256"]);
    let measured = hs.iter().find(|p| p.instances == 8).unwrap().achieved_rps;
    // Demand model: 8 × 0.1 core / 50 µs = 16 000 req/s.
    let err = (16_000.0 - measured) / measured * 100.0;
    assert_eq!(cells[3], format!("16.0k ({err:+.0}%)"), "{cells:?}");
    assert!(cells[2].contains('(') && cells[2].contains('%'), "a USL prediction with its error: {cells:?}");
    assert_eq!(cells[4], "50");
    assert!(section.contains("median error"), "{section}");
    // Without N=3, the USL cannot be fitted on N ≤ 4 and the section says so.
    let (_d, plain) = rendered();
    assert!(
        !plain.contains("## Held-out validation"),
        "a schema-1 run without latency runs still gets the section? {plain}"
    );
}

/// `--store-rtt 0,500us`: the point at 500 µs sits beside the main line's in its own
/// section, the rest of the report keeps to the main line.
#[test]
fn the_round_trip_axis_sets_each_store_system_beside_itself_at_the_largest_n() {
    let dir = scratch();
    let mut r = Results::read(dir.path()).unwrap();
    r.schema_version = 2;
    r.config.store_rtts = vec![std::time::Duration::ZERO, std::time::Duration::from_micros(500)];
    for p in r.points.iter_mut().filter(|p| p.held) {
        p.latency = Some(latency_run(p));
    }
    for p in r.points.iter_mut().filter(|p| p.system == harness::plan::System::SESSION_REDIS) {
        p.store_rtt_us = Some(0.0);
        p.latency = Some(latency_run(p));
    }
    let main = r.points.iter().find(|p| p.system == harness::plan::System::SESSION_REDIS && p.instances == 8).unwrap();
    let mut far = main.clone();
    far.store_rtt_us = Some(500.0);
    far.achieved_rps = main.achieved_rps * 0.6;
    let l = far.latency.as_mut().unwrap();
    l.latency_us.p50 += 600;
    far.store_rtt = Some(harness::record::StoreRtt {
        target_us: 500.0,
        via_us: Some(560.0),
        direct_us: Some(50.0),
        added_us: Some(510.0),
        samples: 60,
        within: true,
        proxy_cpu_s: Some(0.3),
        hold_us: Some(250.0),
    });
    let main_rps = main.achieved_rps;
    r.points.push(far);
    r.write(dir.path()).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let section =
        md.split("## The store's round trip as an axis").nth(1).expect("the section").split("\n## ").next().unwrap();
    assert!(section.contains("at N=8 with the store 0 and 500 µs away"), "{section}");
    let far_row = section.lines().find(|l| l.starts_with("| session-redis | 500 |")).expect("the 500 µs row");
    assert!(far_row.contains("| 510 |"), "the achieved round trip: {far_row}");
    assert!(section.contains("×0.60"), "capacity against the main line: {section}");
    assert!(section.contains("+0.60 ms, 1.2 times the added round trip"), "p50 against the round trip: {section}");
    assert!(md.contains("hold plus the proxy's own forwarding make the target — 250–250 µs"), "the steered hold");
    // The main line keeps its own N=8 point.
    let a = Analysis::new(&r);
    let line = a.series.iter().find(|s| s.system == harness::plan::System::SESSION_REDIS).unwrap();
    assert_eq!(line.at(8).unwrap().achieved_rps, main_rps, "the axis point stays out of the main line");
    assert_eq!(a.rtt_axis.len(), 2, "session-redis at 0 and at 500 µs");
}

/// A capacity whose every search try held is a lower bound — unless a resource was already
/// at its cap, when it cannot be much higher; the report says which is which.
#[test]
fn unbracketed_capacities_are_told_apart_by_whether_a_resource_was_at_its_cap() {
    let dir = scratch();
    let mut r = Results::read(dir.path()).unwrap();
    r.schema_version = 2;
    let cap = r.caps.instance_cpu;
    for (system, n, busy) in [("jwt-rs256", 4, 0.5), ("jwt-es256", 4, 1.0)] {
        let p = r.points.iter_mut().find(|p| p.system.to_string() == system && p.instances == n).unwrap();
        p.search_end = Some(harness::record::SearchEnd::Unbracketed);
        for s in &mut p.search {
            s.held = true;
        }
        p.cpu.instances_total_s = busy * cap * n as f64 * p.duration_s;
        p.cpu.instance_utilization = busy;
    }
    r.write(dir.path()).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let lower = md.lines().find(|l| l.contains("**Capacity not bracketed.**")).expect("the lower-bound item");
    assert!(lower.contains("jwt-rs256 N=4") && !lower.contains("jwt-es256"), "{lower}");
    let ceiling =
        md.lines().find(|l| l.contains("**Capacity at a CPU ceiling, not bracketed.**")).expect("the ceiling item");
    assert!(ceiling.contains("jwt-es256 N=4") && !ceiling.contains("jwt-rs256"), "{ceiling}");
}

#[test]
fn a_run_with_both_verifiers_says_what_the_library_call_path_cost() {
    let (_plain, md) = rendered();
    assert!(!md.contains("## JWT's cost without the library's call path"), "only when a run has @stock systems");

    // The fixture's jwt-hs256 points again as jwt-hs256@stock, at 1.25× the CPU per request.
    let dir = scratch();
    let path = dir.path().join("results.json");
    let mut results: serde_json::Value = serde_json::from_str(&std::fs::read_to_string(&path).unwrap()).unwrap();
    let points = results["points"].as_array_mut().unwrap();
    let mut stock: Vec<serde_json::Value> = points.iter().filter(|p| p["system"] == "jwt-hs256").cloned().collect();
    assert!(!stock.is_empty());
    for p in &mut stock {
        p["system"] = "jwt-hs256@stock".into();
        let us = p["cpu"]["per_request_us"].as_f64().unwrap();
        p["cpu"]["per_request_us"] = (us * 1.25).into();
    }
    points.extend(stock);
    std::fs::write(&path, serde_json::to_string(&results).unwrap()).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("## JWT's cost without the library's call path"), "{md}");
    let section = &md[md.find("## JWT's cost without the library's call path").unwrap()..];
    let cells = row(section, &["jwt-hs256"]);
    let (cached, stock): (f64, f64) = (cells[1].parse().unwrap(), cells[2].parse().unwrap());
    assert!((stock / cached - 1.25).abs() < 0.02, "{cells:?}");
    assert_eq!(cells[4], "20 %", "{cells:?}");
    assert!(md.contains("The library's call path was jwt-hs256 20 % of the stock request"), "{md}");
}

#[test]
fn the_shared_store_advice_says_whether_sharding_was_measured() {
    let (_dir, md) = rendered();
    assert!(md.contains("Past that, shard the store (sharding was not measured in this run)."), "{md}");
    // The committed shards run measured 1, 2 and 4 shards: the advice gives its figures.
    let shards = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-results/2026-12-02-shards");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(shards.join("results.json"), dir.path().join("results.json")).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    assert!(md.contains("Sharding was measured: 1 shard held "), "{md}");
    assert!(md.contains("(×1.77 for ×4 the store's cores)"), "{md}");
    assert!(!md.contains("sharding was not measured"));
}

/// With repeats, every figure the first screen and "when to choose" draw a verdict from
/// names its range over the rounds: a step's gain round by round (round i of one point
/// against round i of the other), each throughput and each CPU per request.
#[test]
fn a_repeated_runs_verdicts_name_their_ranges() {
    let dir = scratch();
    let mut r = Results::read(dir.path()).unwrap();
    r.schema_version = 2;
    r.config.repeat = 3;
    for p in r.points.iter_mut().filter(|p| p.repeatable()) {
        let (base, rate) = (p.cpu.per_request_us, p.achieved_rps);
        // Round 3 lost 10 % of the rate at N = 8 only, so each last step's gain is lower there.
        for (round, cpu, achieved) in [(2, 1.1, 1.0), (3, 0.95, if p.instances == 8 { 0.9 } else { 1.0 })] {
            p.repeats.push(harness::record::Repeat {
                round,
                offered_rps: p.offered_rps.unwrap(),
                achieved_rps: rate * achieved,
                duration_s: 5.0,
                error_ratio: 0.0,
                held: true,
                cpu_per_request_us: base * cpu,
                steal_s: Some(0.0),
                latency_p99_us: None,
                latency_p50_us: None,
                slo_met: None,
                search: Vec::new(),
            });
        }
    }
    r.write(dir.path()).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let first = md.split("\n## ").next().unwrap();
    // session-memory sticky, N = 4 → 8: 27 387 / 14 300 = ×1.92 in rounds 1 and 2, ×1.72 in 3.
    assert!(first.contains("the same servers gained ×1.92 (rounds ×1.72–×1.92) from N=4 to N=8"), "{first}");
    assert!(first.contains("for the last step, ×"), "the headline's gains with their rounds: {first}");
    // jwt-hs256 at N = 8: 14 586 in rounds 1 and 2, 13 127 in round 3.
    assert!(first.contains("jwt-hs256 14.6k (13.1k–14.6k)"), "{first}");
    // CPU per request: the median over the held points, and the range 0.95–1.1 × their figures.
    let hs: Vec<f64> = r
        .points
        .iter()
        .filter(|p| p.system == harness::plan::System::JWT_HS256 && p.held)
        .map(|p| p.cpu.per_request_us)
        .collect();
    let lo = hs.iter().copied().fold(f64::INFINITY, f64::min) * 0.95;
    let hi = hs.iter().copied().fold(0.0, f64::max) * 1.1;
    let want = format!("({lo:.0}–{hi:.0})");
    let cpu = first.lines().find(|l| l.starts_with("- **CPU per request**")).expect("a CPU finding");
    assert!(cpu.contains("in brackets the instance's range over their rounds"), "{cpu}");
    assert!(cpu.contains(&want), "jwt-hs256 {want}: {cpu}");
    let choose = md.split("## When to choose which").nth(1).unwrap().split("\n## ").next().unwrap();
    assert!(choose.contains(&format!("jwt-hs256 {} µs {want}", hs_median(&hs))), "{choose}");
    assert!(choose.contains("(rounds ×1.72–×1.92) from N=4 to N=8"), "{choose}");
}

/// A reference run lays its other sweeps out in sub-directories: the main report lists
/// them, and prices logins in *Your deployment* from the mixed one's per-route demands.
#[test]
fn a_reference_runs_parts_are_listed_and_its_mix_prices_logins() {
    let dir = scratch();
    let (_plain, plain) = rendered();
    assert!(!plain.contains("## The parts of this run"), "no sub-directories, no section");
    assert!(plain.contains("logins and refreshes are not priced"), "{plain}");
    let mixed = dir.path().join("mixed");
    std::fs::create_dir(&mixed).unwrap();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-results/2026-12-06-mixed/results.json");
    std::fs::copy(committed, mixed.join("results.json")).unwrap();
    std::fs::create_dir(dir.path().join("notes")).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let parts = md.split("## The parts of this run").nth(1).expect("the section").split("\n## ").next().unwrap();
    let cells = row(parts, &["[`mixed/`](mixed/report.md)"]);
    assert_eq!(cells[1], "the realistic mix: per-route objectives and demands", "{cells:?}");
    assert_eq!(cells[3], "1, 2", "{cells:?}");
    assert!(!parts.contains("notes/"), "a directory without a sweep is not a part: {parts}");
    assert!(md.contains("priced from the per-route demands of the mixed run beside it"), "{md}");
    assert!(md.contains("`mixed/results.json`"), "the re-rendering note names the file it read");
    let html = std::fs::read(dir.path().join("report.html")).unwrap();
    report::render(dir.path()).unwrap();
    assert_eq!(std::fs::read_to_string(dir.path().join("report.md")).unwrap(), md, "byte-identical with its parts");
    assert_eq!(std::fs::read(dir.path().join("report.html")).unwrap(), html);
}

/// A mix whose control line misses the read objective too says the read tail is the rig's
/// and the logins', with the control's p99 taken from the run, and which systems went
/// beyond twice the control's.
#[test]
fn a_mixed_runs_read_tail_is_set_against_the_control_line() {
    let dir = scratch();
    let committed = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../bench-results/2026-12-06-mixed/results.json");
    let raw = std::fs::read_to_string(&committed).unwrap();
    std::fs::write(dir.path().join("results.json"), &raw).unwrap();
    report::render(dir.path()).unwrap();
    let md = std::fs::read_to_string(dir.path().join("report.md")).unwrap();
    let results: serde_json::Value = serde_json::from_str(&raw).unwrap();
    let read_p99 = |system: &str, n: u64| {
        results["points"]
            .as_array()
            .unwrap()
            .iter()
            .find(|p| p["system"] == system && p["instances"] == n && p["lb"] == "round-robin")
            .and_then(|p| p["latency"]["classes"].as_array()?.iter().find(|c| c["class"] == "read")?["p99_us"].as_u64())
            .unwrap()
    };
    let ms = |us: u64| format!("{:.2}", us as f64 / 1000.0);
    let (c1, c2) = (read_p99("control", 1), read_p99("control", 2));
    assert!(c1 > 5_000 && c2 > 5_000, "this run's control missed the 5 ms read objective: {c1} {c2}");
    let para = md.lines().find(|l| l.starts_with("The control line — the same listener, caps and logins")).expect(&md);
    assert!(para.contains(&format!("p99 {} ms at N=1 and {} ms at N=2", ms(c1), ms(c2))), "{para}");
    assert!(para.contains("not the cost of checking a credential"), "{para}");
    // session-redis N=1 against the control's N=1: named only when beyond twice it.
    let r1 = read_p99("session-redis", 1);
    let named = para.contains(&format!("session-redis N=1 ({} ms against {} ms)", ms(r1), ms(c1)));
    assert_eq!(named, r1 > 2 * c1, "{para}");
}

/// The median of a few figures, rounded as the report prints µs.
fn hs_median(v: &[f64]) -> String {
    let mut v = v.to_vec();
    v.sort_by(f64::total_cmp);
    let m = if v.len() % 2 == 1 { v[v.len() / 2] } else { (v[v.len() / 2 - 1] + v[v.len() / 2]) / 2.0 };
    format!("{m:.0}")
}
