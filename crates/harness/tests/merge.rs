//! `authbench load --start-at/--hlog` and `authbench merge`: exact merged percentiles.
//!
//! The merge is checked three ways: against the histogram of a known sample set split over
//! three logs (no timing involved); end to end, with three real `authbench load` processes
//! against a local HTTP server; and against an independent decoder of the file format
//! written here from the HdrHistogram specification (base64, zlib, V2 encoding).

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::{
    io::{Read as _, Write as _},
    net::TcpListener,
    path::{Path, PathBuf},
    process::{Command, Output, Stdio},
    sync::OnceLock,
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use base64::{Engine as _, engine::general_purpose::STANDARD};
use harness::{
    drive::histogram::Latency,
    merge::{self, ErrorCounts, GeneratorLog, Meta},
};
use serde_json::Value;

fn authbench(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_authbench")).args(args).stdin(Stdio::null()).output().expect("run authbench")
}

/// A minimal HTTP/1.1 server on 127.0.0.1: every request gets `200 ok`, keep-alive.
fn serve() -> u16 {
    let listener = TcpListener::bind("127.0.0.1:0").unwrap();
    let port = listener.local_addr().unwrap().port();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut s) = stream else { continue };
            std::thread::spawn(move || {
                let _ = s.set_nodelay(true);
                let (mut buf, mut chunk) = (Vec::new(), [0u8; 4096]);
                loop {
                    let n = match s.read(&mut chunk) {
                        Ok(0) | Err(_) => return,
                        Ok(n) => n,
                    };
                    buf.extend_from_slice(&chunk[..n]);
                    while let Some(end) = buf.windows(4).position(|w| w == b"\r\n\r\n") {
                        buf.drain(..end + 4);
                        if s.write_all(b"HTTP/1.1 200 OK\r\ncontent-length: 2\r\n\r\nok").is_err() {
                            return;
                        }
                    }
                }
            });
        }
    });
    port
}

fn rfc3339(t: SystemTime) -> String {
    humantime::format_rfc3339_millis(t).to_string()
}

fn meta(generator: &str, answered: u64) -> Meta {
    Meta {
        generator: generator.into(),
        unit: merge::UNIT.into(),
        url: "http://127.0.0.1:1/".into(),
        offered_rps: Some(100.0),
        achieved_rps: 100.0,
        duration_s: 5.0,
        requests: answered,
        answered,
        errors: ErrorCounts::default(),
        start_at: None,
        late_ms: None,
        lag_p50_us: Some(10),
        lag_p99_us: Some(20),
        lag_max_us: Some(30),
    }
}

/// A deterministic spread of latencies from 1 µs to ~17 s (a 64-bit LCG).
fn samples(n: usize) -> Vec<u64> {
    let mut x: u64 = 0x2545_f491_4f6c_dd1d;
    (0..n)
        .map(|_| {
            x = x.wrapping_mul(6_364_136_223_846_793_005).wrapping_add(1_442_695_040_888_963_407);
            1 + (x >> 40) % (1 << ((x >> 8) % 25))
        })
        .collect()
}

const START: Duration = Duration::from_secs(1_765_054_800);

/// A log of (second, µs) samples over 5 seconds, through the writer `load --hlog` uses.
fn log_bytes(generator: &str, values: &[(usize, u64)]) -> Vec<u8> {
    let mut seconds = vec![Latency::new(); 5];
    for &(second, v) in values {
        seconds[second].record_us(v);
    }
    let m = meta(generator, values.len() as u64);
    let log =
        GeneratorLog { meta: &m, window_start: UNIX_EPOCH + START, window: Duration::from_secs(5), seconds: &seconds };
    let mut out = Vec::new();
    merge::write_log(&mut out, &log).unwrap();
    out
}

#[test]
fn merged_histogram_is_exactly_the_histogram_of_all_samples() {
    let all = samples(30_000);
    let mut whole = Latency::new();
    let mut parts: [Vec<(usize, u64)>; 3] = Default::default();
    for (i, &v) in all.iter().enumerate() {
        whole.record_us(v);
        parts[(i * 7 + i / 3) % 3].push((i % 5, v));
    }
    assert!(parts.iter().all(|p| p.len() > 9_000), "uneven split");
    let dir = tempfile::tempdir().unwrap();
    let mut logs = Vec::new();
    for (k, part) in parts.iter().enumerate() {
        let path = dir.path().join(format!("g{k}.hlog"));
        std::fs::write(&path, log_bytes(&format!("g{k}"), part)).unwrap();
        logs.push(merge::read_file(&path).unwrap());
    }
    let merged = merge::merge(&logs).unwrap();

    let buckets = |h: &hdrhistogram::Histogram<u64>| -> Vec<(u64, u64)> {
        h.iter_recorded().map(|v| (v.value_iterated_to(), v.count_at_value())).collect()
    };
    let expected = buckets(whole.histogram());
    assert!(expected.len() > 1_000, "the samples cover many buckets ({})", expected.len());
    assert_eq!(buckets(&merged.total), expected, "every bucket count equal");
    assert_eq!(merged.total.len(), 30_000);
    assert_eq!(merged.answered, 30_000);
    assert_eq!(merged.requests, 30_000);
    assert_eq!(merged.latency_us, whole.summary());
    // Each generator's own percentiles are those of its part alone.
    for (row, part) in merged.generators.iter().zip(&parts) {
        let mut own = Latency::new();
        part.iter().for_each(|&(_, v)| own.record_us(v));
        assert_eq!((row.p50_us, row.p99_us), (own.summary().p50, own.summary().p99));
        assert_eq!(row.answered, part.len() as u64);
    }
    // Aligned on the wall clock: five seconds of 6000 samples each, not fifteen seconds.
    assert_eq!(
        merged.seconds.iter().map(|s| (s.offset_s, s.answered)).collect::<Vec<_>>(),
        (0..5).map(|s| (s, 6_000)).collect::<Vec<_>>()
    );
    assert_eq!(merged.offered_rps, Some(300.0));
    assert!(merged.flags.is_empty(), "{:?}", merged.flags);
    // The summed histogram travels with the point, as results.json's `histogram` does.
    let back = Latency::from_base64(&merged.histogram).unwrap();
    assert_eq!(buckets(back.histogram()), expected);
}

#[test]
fn write_file_leaves_no_temporary_file() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("a.hlog");
    let seconds = vec![Latency::new(); 2];
    let m = meta("a", 0);
    let log = GeneratorLog {
        meta: &m,
        window_start: SystemTime::now(),
        window: Duration::from_millis(1500),
        seconds: &seconds,
    };
    merge::write_file(&path, &log).unwrap();
    let names: Vec<_> = std::fs::read_dir(dir.path()).unwrap().map(|e| e.unwrap().file_name()).collect();
    assert_eq!(names, vec![std::ffi::OsString::from("a.hlog")]);
    let text = std::fs::read_to_string(&path).unwrap();
    assert!(text.contains("#[StartTime: ") && text.contains("#[BaseTime: "), "{text}");
    // The last interval is the half second that is left.
    assert!(text.lines().any(|l| l.starts_with("1.000,0.500,")), "{text}");
    assert_eq!(merge::read_file(&path).unwrap().intervals.len(), 2);
}

/// Three generators at 100 req/s each, started together, and one started 300 ms late.
struct DistributedRun {
    dir: tempfile::TempDir,
    /// `authbench load --json` of each on-time generator.
    reports: Vec<Value>,
    late_report: Value,
    /// `authbench merge --json` of the three.
    merged: Value,
}

impl DistributedRun {
    fn hlog(&self, k: usize) -> PathBuf {
        self.dir.path().join(format!("g{k}.hlog"))
    }
}

fn load_args(port: u16, start_at: &str, hlog: &Path, generator: &str, duration: &str) -> Vec<String> {
    let hlog = hlog.display().to_string();
    let url = format!("http://127.0.0.1:{port}/");
    [
        "load",
        "--url",
        &url,
        "--rate",
        "100",
        "--duration",
        duration,
        "--warmup",
        "500ms",
        "--open-connections",
        "4",
        "--start-at",
        start_at,
        "--hlog",
        &hlog,
        "--generator",
        generator,
        "--json",
    ]
    .map(String::from)
    .to_vec()
}

fn spawn(args: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_authbench"))
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .unwrap()
}

fn json_of(child: std::process::Child) -> Value {
    let out = child.wait_with_output().unwrap();
    assert!(out.status.success(), "load failed: {}", String::from_utf8_lossy(&out.stderr));
    serde_json::from_slice(&out.stdout).unwrap()
}

fn distributed_run() -> &'static DistributedRun {
    static RUN: OnceLock<DistributedRun> = OnceLock::new();
    RUN.get_or_init(|| {
        let port = serve();
        // A static is never dropped: keep its files under target/, not in /tmp.
        let dir = tempfile::tempdir_in(env!("CARGO_TARGET_TMPDIR")).unwrap();
        // Time enough for four processes to start and connect on a busy machine.
        let start_at = rfc3339(SystemTime::now() + Duration::from_secs(3));
        let children: Vec<_> = (0..3)
            .map(|k| spawn(&load_args(port, &start_at, &dir.path().join(format!("g{k}.hlog")), &format!("g{k}"), "3s")))
            .collect();
        let past = rfc3339(SystemTime::now() - Duration::from_millis(300));
        let mut late = load_args(port, &past, &dir.path().join("late.hlog"), "g-late", "1s");
        late.extend(["--max-late".into(), "2s".into()]);
        let late = spawn(&late);
        let reports: Vec<Value> = children.into_iter().map(json_of).collect();
        let late_report = json_of(late);
        let files: Vec<String> = (0..3).map(|k| dir.path().join(format!("g{k}.hlog")).display().to_string()).collect();
        let out_json = dir.path().join("merged.json").display().to_string();
        let mut args = vec!["merge", "--json", "--out", &out_json];
        args.extend(files.iter().map(String::as_str));
        let out = authbench(&args);
        assert!(out.status.success(), "merge failed: {}", String::from_utf8_lossy(&out.stderr));
        let merged: Value = serde_json::from_slice(&out.stdout).unwrap();
        let written: Value = serde_json::from_str(&std::fs::read_to_string(&out_json).unwrap()).unwrap();
        assert_eq!(written, merged, "--out holds what --json printed");
        DistributedRun { dir, reports, late_report, merged }
    })
}

fn u(v: &Value) -> u64 {
    v.as_u64().unwrap_or_else(|| panic!("not an integer: {v}"))
}

#[test]
fn three_generators_merge_to_their_sum() {
    let run = distributed_run();
    let m = &run.merged;
    let requests: Vec<u64> = run.reports.iter().map(|r| u(&r["requests"])).collect();
    for (k, r) in requests.iter().enumerate() {
        assert!((295..=305).contains(r), "generator {k} had {r} requests in 3 s at 100/s");
        assert_eq!(run.reports[k]["start_late_ms"].as_f64(), Some(0.0), "{}", run.reports[k]);
    }
    assert_eq!(u(&m["requests"]), requests.iter().sum::<u64>(), "{m:#}");
    let answered: u64 = run.reports.iter().flat_map(|r| r["by_status"].as_object().unwrap().values().map(u)).sum();
    assert_eq!(u(&m["answered"]), answered);
    assert_eq!(m["offered_rps"].as_f64(), Some(300.0));
    assert_eq!(u(&m["errors"]["total"]), 0, "{m:#}");

    for (row, report) in m["generators"].as_array().unwrap().iter().zip(&run.reports) {
        // A generator's own percentiles from its per-second histograms are those of its window.
        assert_eq!(u(&row["p50_us"]), u(&report["latency_us"]["p50"]), "{row}");
        assert_eq!(u(&row["p99_us"]), u(&report["latency_us"]["p99"]), "{row}");
        assert_eq!(u(&row["requests"]), u(&report["requests"]));
        assert_eq!(row["late_ms"].as_f64(), Some(0.0));
        assert!(!row["flags"].as_array().unwrap().contains(&"late".into()), "{row}");
    }
    for q in ["p50", "p99"] {
        let own: Vec<u64> = run.reports.iter().map(|r| u(&r["latency_us"][q])).collect();
        let merged = u(&m["latency_us"][q]);
        let (lo, hi) = (*own.iter().min().unwrap(), *own.iter().max().unwrap());
        assert!((lo..=hi).contains(&merged), "merged {q} {merged} outside the generators' {own:?}");
    }
    // Started together: three seconds of about 300 requests each, not shifted copies.
    let seconds = m["seconds"].as_array().unwrap();
    assert_eq!(seconds.len(), 3, "{m:#}");
    for s in seconds {
        assert!((280..=320).contains(&u(&s["answered"])), "{s}");
    }
}

#[test]
fn a_generator_that_started_late_is_flagged() {
    let run = distributed_run();
    let late_ms = run.late_report["start_late_ms"].as_f64().unwrap();
    assert!(late_ms >= 300.0, "{}", run.late_report);
    let late = run.dir.path().join("late.hlog").display().to_string();
    let on_time = run.hlog(0).display().to_string();
    let out = authbench(&["merge", "--json", &on_time, &late]);
    assert!(out.status.success(), "{}", String::from_utf8_lossy(&out.stderr));
    let m: Value = serde_json::from_slice(&out.stdout).unwrap();
    // `lag` may come too on a busy machine (a debug build sharing 2 cores): only `late` is
    // asserted, and only on the late generator.
    let late_flag = |flags: &Value| flags.as_array().unwrap().contains(&"late".into());
    assert!(late_flag(&m["flags"]), "{m:#}");
    let rows = m["generators"].as_array().unwrap();
    assert!(!late_flag(&rows[0]["flags"]), "{m:#}");
    assert!(late_flag(&rows[1]["flags"]), "{m:#}");
    assert_eq!(rows[1]["late_ms"].as_f64(), Some(late_ms));
    let text = authbench(&["merge", &on_time, &late]);
    let text = String::from_utf8(text.stdout).unwrap();
    // The flags column may read `late` or `late,lag`.
    let flagged = |l: &str| l.split_whitespace().any(|w| w.split(',').any(|f| f == "late"));
    assert!(text.lines().any(|l| flagged(l) && l.contains(&late)), "{text}");
    assert!(!text.lines().any(|l| flagged(l) && l.contains(&on_time)), "{text}");
}

#[test]
fn a_start_time_too_far_in_the_past_is_refused() {
    let port = serve();
    let dir = tempfile::tempdir().unwrap();
    let hlog = dir.path().join("x.hlog");
    let past = rfc3339(SystemTime::now() - Duration::from_secs(5));
    let out = authbench(&load_args(port, &past, &hlog, "x", "1s").iter().map(String::as_str).collect::<Vec<_>>());
    assert_eq!(out.status.code(), Some(2), "{}", String::from_utf8_lossy(&out.stderr));
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(stderr.trim_end().lines().count(), 1, "{stderr}");
    assert!(stderr.contains("start time") && stderr.contains("in the past"), "{stderr}");
    assert!(out.stdout.is_empty());
    assert_eq!(std::fs::read_dir(dir.path()).unwrap().count(), 0, "nothing written");
}

/// An HdrHistogram V2 decoder written from the format's description, sharing no code with
/// the hdrhistogram crate: base64, then the compressed envelope (cookie, length, zlib),
/// then the V2 header and ZigZag LEB128 counts, negative values being runs of zeros.
mod independent {
    use std::io::Read as _;

    #[derive(Debug, PartialEq)]
    pub struct Decoded {
        pub sigfigs: u32,
        pub lowest: u64,
        pub highest: u64,
        pub total: u64,
    }

    fn be32(b: &[u8], at: usize) -> u32 {
        u32::from_be_bytes(b[at..at + 4].try_into().unwrap())
    }

    fn be64(b: &[u8], at: usize) -> u64 {
        u64::from_be_bytes(b[at..at + 8].try_into().unwrap())
    }

    /// LEB128 of at most 9 bytes, the 9th contributing all 8 of its bits.
    pub fn varint(b: &[u8], pos: &mut usize) -> u64 {
        let mut value = 0u64;
        for i in 0..9 {
            let byte = b[*pos];
            *pos += 1;
            if i == 8 {
                return value | u64::from(byte) << 56;
            }
            value |= u64::from(byte & 0x7f) << (7 * i);
            if byte & 0x80 == 0 {
                break;
            }
        }
        value
    }

    pub fn zigzag(v: u64) -> i64 {
        (v >> 1) as i64 ^ -((v & 1) as i64)
    }

    pub fn decode(raw: &[u8]) -> Decoded {
        // The word-size nibble (0x10) is masked off: the base cookies are 0x1c849304 and 0x1c849303.
        assert_eq!(be32(raw, 0) & !0xf0, 0x1c84_9304, "a compressed V2 histogram");
        let len = be32(raw, 4) as usize;
        let mut inner = Vec::new();
        flate2::read::ZlibDecoder::new(&raw[8..8 + len]).read_to_end(&mut inner).unwrap();
        assert_eq!(be32(&inner, 0) & !0xf0, 0x1c84_9303, "V2 inside");
        let payload = be32(&inner, 4) as usize;
        assert_eq!(be32(&inner, 8), 0, "normalizing index offset");
        let ratio = f64::from_bits(be64(&inner, 32));
        assert_eq!(ratio, 1.0, "integer to double ratio");
        let counts = &inner[40..40 + payload];
        let (mut pos, mut total, mut index) = (0, 0u64, 0u64);
        while pos < counts.len() {
            match zigzag(varint(counts, &mut pos)) {
                n if n < 0 => index += n.unsigned_abs(),
                n => {
                    total += n as u64;
                    index += 1;
                }
            }
        }
        assert!(index > 0);
        Decoded { sigfigs: be32(&inner, 12), lowest: be64(&inner, 16), highest: be64(&inner, 24), total }
    }

    #[test]
    fn zigzag_leb128_known_values() {
        let bytes = [0x02, 0x03, 0xac, 0x02, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff];
        let mut pos = 0;
        assert_eq!(zigzag(varint(&bytes, &mut pos)), 1);
        assert_eq!(zigzag(varint(&bytes, &mut pos)), -2, "a run of two zeros");
        assert_eq!(zigzag(varint(&bytes, &mut pos)), 150);
        assert_eq!(varint(&bytes, &mut pos), u64::MAX, "the 9th byte keeps all its bits");
        assert_eq!(pos, bytes.len());
    }
}

#[test]
fn an_hlog_from_load_reads_the_same_through_an_independent_decoder() {
    let run = distributed_run();
    let path = run.hlog(1);
    let text = std::fs::read_to_string(&path).unwrap();
    let ours = merge::read_file(&path).unwrap();
    let theirs: Vec<independent::Decoded> = text
        .lines()
        .filter(|l| !l.starts_with('#') && !l.is_empty())
        .map(|l| {
            let fields: Vec<&str> = l.split(',').collect();
            assert_eq!(fields.len(), 4, "start,length,max,histogram: {l}");
            independent::decode(&STANDARD.decode(fields[3]).unwrap())
        })
        .collect();
    assert_eq!(theirs.len(), 3, "one interval per second of the 3 s window");
    assert_eq!(ours.intervals.len(), theirs.len());
    for (i, (a, b)) in ours.intervals.iter().zip(&theirs).enumerate() {
        assert_eq!(a.histogram.len(), b.total, "interval {i}");
        assert_eq!((b.sigfigs, b.lowest, b.highest), (3, 1, 60_000_000), "interval {i}");
    }
    let total: u64 = theirs.iter().map(|d| d.total).sum();
    let answered: u64 = run.reports[1]["by_status"].as_object().unwrap().values().map(u).sum();
    assert_eq!(total, answered);
    assert_eq!(total, u(&run.merged["generators"][1]["answered"]));
    assert!(
        text.contains(&format!("#authbench requests={} answered={answered} ", u(&run.reports[1]["requests"]))),
        "{text}"
    );
}

/// `authbench merge FILE...` on bad input: exit 2, one line on stderr naming the file,
/// no --out written.
fn refused(files: &[&Path], expect: &str) {
    let dir = tempfile::tempdir().unwrap();
    let out_json = dir.path().join("out.json");
    let mut args = vec!["merge".to_string(), "--out".into(), out_json.display().to_string()];
    args.extend(files.iter().map(|f| f.display().to_string()));
    let out = authbench(&args.iter().map(String::as_str).collect::<Vec<_>>());
    let stderr = String::from_utf8(out.stderr).unwrap();
    assert_eq!(out.status.code(), Some(2), "{expect}: {stderr}");
    assert_eq!(stderr.trim_end().lines().count(), 1, "one line: {stderr}");
    assert!(stderr.contains(expect), "expected {expect:?} in {stderr}");
    if let Some(bad) = files.last() {
        assert!(stderr.contains(&bad.display().to_string()), "names the file: {stderr}");
    }
    assert!(!out_json.exists() && !merge::tmp_path(&out_json).exists(), "nothing written");
}

/// The log with the first interval's base64 histogram replaced by `f` of it.
fn with_base64(log: &str, f: impl Fn(&str) -> String) -> String {
    let mut done = false;
    log.lines()
        .map(|l| {
            if done || l.starts_with('#') {
                return format!("{l}\n");
            }
            done = true;
            let (head, b64) = l.rsplit_once(',').unwrap();
            format!("{head},{}\n", f(b64))
        })
        .collect()
}

/// The log with the first interval's histogram decoded, changed by `f`, and encoded again.
fn with_histogram(log: &str, f: impl Fn(&mut Vec<u8>)) -> String {
    with_base64(log, |b64| {
        let mut raw = STANDARD.decode(b64).unwrap();
        f(&mut raw);
        STANDARD.encode(raw)
    })
}

#[test]
fn bad_input_is_refused_with_one_line_naming_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let write = |name: &str, bytes: &[u8]| {
        let p = dir.path().join(name);
        std::fs::write(&p, bytes).unwrap();
        p
    };
    let spread: Vec<(usize, u64)> = samples(500).into_iter().enumerate().map(|(i, v)| (i % 5, v)).collect();
    let good_bytes = log_bytes("good", &spread);
    let good_text = String::from_utf8(good_bytes.clone()).unwrap();
    let good = write("good.hlog", &good_bytes);
    let first_interval = good_text.find("\n0.000,").unwrap() + 1;

    refused(&[], "no .hlog files");
    refused(&[&good, &write("notes.hlog", b"{\"not\": \"an interval log\"}\n")], "not an HdrHistogram interval log");
    refused(&[&write("empty.hlog", b"")], "not an HdrHistogram interval log");
    refused(&[&good, &write("cut.hlog", &good_bytes[..first_interval + 40])], "truncated");
    let at_line_end = good_text[..good_text.find("#authbench end").unwrap()].to_string();
    refused(&[&write("cut-at-line.hlog", at_line_end.as_bytes())], "truncated");
    let bad_base64 = with_base64(&good_text, |b64| format!("*{b64}"));
    refused(&[&write("base64.hlog", bad_base64.as_bytes())], "not valid base64");
    let bad_inflate = with_histogram(&good_text, |raw| raw[10..20].iter_mut().for_each(|b| *b ^= 0x5a));
    refused(&[&write("inflate.hlog", bad_inflate.as_bytes())], "cannot decode the histogram");
    let v1 = with_histogram(&good_text, |raw| raw[..4].copy_from_slice(&0x1c84_9312u32.to_be_bytes()));
    refused(&[&write("v1.hlog", v1.as_bytes())], "V1 histogram");
    let v0 = with_histogram(&good_text, |raw| raw[..4].copy_from_slice(&0x1c84_9308u32.to_be_bytes()));
    refused(&[&write("v0.hlog", v0.as_bytes())], "V0 histogram");
    let other = with_histogram(&good_text, |raw| raw[..4].copy_from_slice(&0xdead_beefu32.to_be_bytes()));
    refused(&[&write("other.hlog", other.as_bytes())], "unknown histogram encoding");
    let ms = good_text.replace("unit=us", "unit=ms");
    refused(&[&good, &write("ms.hlog", ms.as_bytes())], "unit ms");
    let plain: String = good_text.lines().filter(|l| !l.starts_with("#authbench")).map(|l| format!("{l}\n")).collect();
    refused(&[&good, &write("plain.hlog", plain.as_bytes())], "no `#authbench unit=` line");

    // The controls: the good log merges, alone and beside a plain HdrHistogram log of the
    // same unit-less kind.
    let alone = authbench(&["merge", &good.display().to_string()]);
    assert!(alone.status.success(), "{}", String::from_utf8_lossy(&alone.stderr));
    let plain_path = write("plain2.hlog", plain.as_bytes());
    let plain_only = authbench(&["merge", "--json", &plain_path.display().to_string()]);
    assert!(plain_only.status.success(), "{}", String::from_utf8_lossy(&plain_only.stderr));
    let m: Value = serde_json::from_slice(&plain_only.stdout).unwrap();
    assert_eq!(u(&m["answered"]), 500);
    assert_eq!(m["unit"], Value::Null);
}
