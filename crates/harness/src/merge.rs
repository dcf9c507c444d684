//! `authbench merge`: several generators' `.hlog` files into one results point.
//!
//! A distributed open-loop run is G `authbench load --start-at T --hlog FILE` processes on G
//! machines. Each writes its measured window as an HdrHistogram interval log (the standard
//! V2 + DEFLATE format, one histogram per second, readable by HdrHistogram's own tools) with
//! `#authbench key=value` comments for what a histogram cannot hold: offered rate, requests,
//! errors, unit, lateness, scheduler lag. The merge *adds histograms*, second by second on
//! the wall clock, and takes every percentile from the sums: percentiles of parts cannot be
//! averaged into the percentile of the whole, histograms can be added exactly.
//!
//! [`write_log`] is the writer `load --hlog` uses, [`read_log`] the reader, [`merge`] the
//! sum; `docs/results.md` (*Interval logs and the merged point*) describes the comments
//! and the merged point's fields.

use std::{
    collections::{BTreeMap, HashMap},
    io::Write,
    path::{Path, PathBuf},
    time::{Duration, SystemTime, UNIX_EPOCH},
};

use anyhow::{Context as _, anyhow, bail};
use base64::{Engine as _, engine::general_purpose::STANDARD};
use hdrhistogram::{
    Histogram,
    serialization::{
        Deserializer, Serializer as _, V2DeflateSerializer,
        interval_log::{IntervalLogIterator, IntervalLogWriterBuilder, LogEntry},
    },
};
use serde::Serialize;

use crate::drive::histogram::{Latency, LatencySummary, summarize};

/// The unit of every value `load --hlog` records.
pub const UNIT: &str = "us";
/// A generator whose window began more than this after `--start-at` is flagged `late`
/// (one that was on time begins exactly at it).
pub const LATE_TOLERANCE_MS: f64 = 10.0;
/// A generator whose scheduler handed out 1 % of its requests later than this is flagged
/// `lag`: it may have been too busy to offer its rate on time.
pub const LAG_LIMIT_US: u64 = 1_000;

/// What a generator's `#authbench` comments say: everything but the histograms.
#[derive(Clone, Debug, PartialEq, Serialize)]
pub struct Meta {
    /// `--generator` (default: host name and process id).
    pub generator: String,
    pub unit: String,
    pub url: String,
    /// `None`: a closed-loop run.
    pub offered_rps: Option<f64>,
    pub achieved_rps: f64,
    pub duration_s: f64,
    /// Requests due in the window.
    pub requests: u64,
    /// Requests answered (any status): what the histograms hold.
    pub answered: u64,
    pub errors: ErrorCounts,
    /// `--start-at`, RFC 3339.
    pub start_at: Option<String>,
    /// How long after `--start-at` the run began.
    pub late_ms: Option<f64>,
    pub lag_p50_us: Option<u64>,
    pub lag_p99_us: Option<u64>,
    pub lag_max_us: Option<u64>,
}

/// Requests that failed, by kind; `total` as `error_ratio` counts them.
#[derive(Clone, Copy, Debug, Default, PartialEq, Serialize)]
pub struct ErrorCounts {
    pub total: u64,
    pub timeouts: u64,
    pub connect: u64,
    pub io: u64,
    pub unsent: u64,
    pub http_4xx: u64,
    pub http_5xx: u64,
}

impl ErrorCounts {
    fn add(&mut self, o: &ErrorCounts) {
        self.total += o.total;
        self.timeouts += o.timeouts;
        self.connect += o.connect;
        self.io += o.io;
        self.unsent += o.unsent;
        self.http_4xx += o.http_4xx;
        self.http_5xx += o.http_5xx;
    }
}

/// One generator's measured window, as [`write_log`] writes it.
#[derive(Debug)]
pub struct GeneratorLog<'a> {
    pub meta: &'a Meta,
    /// Wall-clock start of the window: the log's StartTime and BaseTime.
    pub window_start: SystemTime,
    pub window: Duration,
    /// One histogram per second of the window (µs), the last possibly partial.
    pub seconds: &'a [Latency],
}

fn opt<T: ToString>(v: Option<T>) -> String {
    v.map_or_else(|| "none".into(), |v| v.to_string())
}

/// Write `log` as an HdrHistogram interval log. The identifying comments come first, the
/// counts last, ending with an `end` line: a copy cut at a line boundary is then refused
/// as truncated rather than merged as a shorter run.
pub fn write_log<W: Write>(out: &mut W, log: &GeneratorLog<'_>) -> anyhow::Result<()> {
    let m = log.meta;
    let generator: String = m.generator.chars().map(|c| if c.is_whitespace() { '_' } else { c }).collect();
    let mut builder = IntervalLogWriterBuilder::new();
    builder
        .add_comment("[Histogram log format version 1.3]")
        .add_comment(&format!("authbench generator={generator} unit={}", m.unit))
        .add_comment(&format!(
            "authbench url={} offered_rps={} duration_s={}",
            m.url.replace(char::is_whitespace, "%20"),
            opt(m.offered_rps),
            m.duration_s
        ))
        .add_comment(&format!("authbench start_at={} late_ms={}", opt(m.start_at.as_deref()), opt(m.late_ms)))
        .with_start_time(log.window_start)
        .with_base_time(log.window_start);
    let mut serializer = V2DeflateSerializer::new();
    let mut writer = builder.begin_log_with(out, &mut serializer)?;
    for (i, h) in log.seconds.iter().enumerate() {
        let offset = Duration::from_secs(i as u64);
        let length = log.window.saturating_sub(offset).min(Duration::from_secs(1));
        writer.write_histogram(h.histogram(), offset, length, None).map_err(|e| anyhow!("{e}"))?;
    }
    let e = &m.errors;
    writer.write_comment(&format!(
        "authbench requests={} answered={} achieved_rps={} errors={} timeouts={} connect={} io={} unsent={} http_4xx={} http_5xx={}",
        m.requests, m.answered, m.achieved_rps, e.total, e.timeouts, e.connect, e.io, e.unsent, e.http_4xx, e.http_5xx
    ))?;
    writer.write_comment(&format!(
        "authbench lag_p50_us={} lag_p99_us={} lag_max_us={}",
        opt(m.lag_p50_us),
        opt(m.lag_p99_us),
        opt(m.lag_max_us)
    ))?;
    writer.write_comment(&format!("authbench end intervals={}", log.seconds.len()))?;
    Ok(())
}

/// [`write_log`] to `path`, through `path.tmp` renamed at the end: an interrupted run
/// leaves nothing half-written under `path`.
pub fn write_file(path: &Path, log: &GeneratorLog<'_>) -> anyhow::Result<()> {
    let mut buf = Vec::new();
    write_log(&mut buf, log)?;
    write_whole(path, &buf)
}

fn write_whole(path: &Path, bytes: &[u8]) -> anyhow::Result<()> {
    let tmp = tmp_path(path);
    std::fs::write(&tmp, bytes).with_context(|| format!("cannot write {}", tmp.display()))?;
    std::fs::rename(&tmp, path).with_context(|| format!("cannot rename {} to {}", tmp.display(), path.display()))
}

/// `FILE.tmp` beside `FILE`.
pub fn tmp_path(path: &Path) -> PathBuf {
    let mut name = path.file_name().unwrap_or_default().to_os_string();
    name.push(".tmp");
    path.with_file_name(name)
}

/// One interval read back.
#[derive(Debug)]
pub struct Interval {
    /// Wall-clock start, seconds since the Unix epoch (BaseTime/StartTime + offset).
    pub start_s: f64,
    pub length_s: f64,
    pub histogram: Histogram<u64>,
}

/// A log read back: its intervals and, for a log `load --hlog` wrote, its comments
/// (`None` for a plain HdrHistogram log).
#[derive(Debug)]
pub struct ReadLog {
    pub file: String,
    pub meta: Option<Meta>,
    pub intervals: Vec<Interval>,
}

impl ReadLog {
    /// All intervals added up.
    pub fn total(&self) -> anyhow::Result<Histogram<u64>> {
        let first = self.intervals.first().ok_or_else(|| anyhow!("{}: no intervals", self.file))?;
        let mut total = empty_like(&first.histogram);
        for i in &self.intervals {
            total.add(&i.histogram).map_err(|e| anyhow!("{}: cannot add its histograms: {e:?}", self.file))?;
        }
        Ok(total)
    }
}

/// An empty histogram that can take `h` and anything like it, however large its values.
fn empty_like(h: &Histogram<u64>) -> Histogram<u64> {
    let mut e = h.clone();
    e.reset();
    e.auto(true);
    e
}

/// Seconds in a year: the Java reader's test for offsets against a StartTime.
const YEAR_S: f64 = 365.25 * 86_400.0;

fn line_of(bytes: &[u8], offset: usize) -> usize {
    bytes[..offset.min(bytes.len())].iter().filter(|&&b| b == b'\n').count() + 1
}

/// Read an interval log. Every error is one line naming `file`.
pub fn read_log(file: &str, bytes: &[u8]) -> anyhow::Result<ReadLog> {
    let (mut start_time, mut base_time) = (None::<f64>, None::<f64>);
    let mut intervals = Vec::new();
    let mut deserializer = Deserializer::new();
    for entry in IntervalLogIterator::new(bytes) {
        let entry = entry.map_err(|e| {
            let hdrhistogram::serialization::interval_log::LogIteratorError::ParseError { offset } = e;
            let line = line_of(bytes, offset);
            let last_line = !bytes[offset.min(bytes.len())..].contains(&b'\n');
            if offset == 0 && bytes.first() != Some(&b'#') {
                anyhow!(
                    "{file}: not an HdrHistogram interval log (its first line is neither a comment nor an interval)"
                )
            } else if last_line && !bytes.ends_with(b"\n") {
                anyhow!("{file}: truncated: line {line} is cut off mid-record")
            } else {
                anyhow!(
                    "{file}: line {line} is neither a comment nor an interval: not an interval log, or a corrupt one"
                )
            }
        })?;
        let h = match entry {
            LogEntry::StartTime(t) => {
                start_time = Some(t.as_secs_f64());
                continue;
            }
            LogEntry::BaseTime(t) => {
                base_time = Some(t.as_secs_f64());
                continue;
            }
            LogEntry::Interval(h) => h,
        };
        let encoded = h.encoded_histogram();
        // Where this interval is in the file, for the message.
        let line = line_of(bytes, (encoded.as_ptr() as usize).saturating_sub(bytes.as_ptr() as usize));
        let raw = STANDARD.decode(encoded.trim()).map_err(|e| {
            anyhow!("{file}: line {line}: the histogram is not valid base64 ({e}): truncated or corrupt")
        })?;
        check_cookie(&raw).map_err(|why| anyhow!("{file}: line {line}: {why}"))?;
        let histogram: Histogram<u64> = deserializer
            .deserialize(&mut raw.as_slice())
            .map_err(|e| anyhow!("{file}: line {line}: cannot decode the histogram ({e}): truncated or corrupt"))?;
        let offset = h.start_timestamp().as_secs_f64();
        let start_s = match (base_time, start_time) {
            (Some(base), _) => base + offset,
            (None, Some(start)) if offset < start - YEAR_S => start + offset,
            _ => offset,
        };
        intervals.push(Interval { start_s, length_s: h.duration().as_secs_f64(), histogram });
    }
    if intervals.is_empty() {
        bail!("{file}: not an HdrHistogram interval log (it holds no interval histograms)");
    }
    let meta = read_meta(file, bytes, &intervals)?;
    Ok(ReadLog { file: file.to_owned(), meta, intervals })
}

/// The first 4 bytes say the encoding; only V2 (compressed or not) is read. The nibble
/// 0xf0 is the word size, which V2 fixes.
fn check_cookie(raw: &[u8]) -> Result<(), String> {
    let cookie = raw.get(..4).map(|c| u32::from_be_bytes([c[0], c[1], c[2], c[3]])).ok_or("the histogram is empty")?;
    match cookie & 0xffff_ff0f {
        0x1c84_9303 | 0x1c84_9304 => Ok(()),
        0x1c84_9301 | 0x1c84_9302 => Err(format!("a V1 histogram (cookie {cookie:#010x}): only V2 is read")),
        0x1c84_9308 | 0x1c84_9309 => Err(format!("a V0 histogram (cookie {cookie:#010x}): only V2 is read")),
        _ => Err(format!("unknown histogram encoding (cookie {cookie:#010x}): only HdrHistogram V2 is read")),
    }
}

/// The `#authbench` comments, checked against the histograms.
fn read_meta(file: &str, bytes: &[u8], intervals: &[Interval]) -> anyhow::Result<Option<Meta>> {
    let mut kv = HashMap::new();
    let mut ended = false;
    for line in bytes.split(|&b| b == b'\n') {
        let Some(rest) = line.strip_prefix(b"#authbench ") else { continue };
        let rest = std::str::from_utf8(rest).map_err(|_| anyhow!("{file}: an #authbench line is not UTF-8"))?;
        for token in rest.split_whitespace() {
            match token.split_once('=') {
                Some((k, v)) => {
                    kv.insert(k.to_owned(), v.to_owned());
                }
                None if token == "end" => ended = true,
                None => bail!("{file}: `{token}` in an #authbench line is not key=value"),
            }
        }
    }
    if kv.is_empty() && !ended {
        return Ok(None);
    }
    if !ended {
        bail!("{file}: truncated: no `#authbench end` line (the log was cut off or is still being written)");
    }
    let get =
        |k: &str| kv.get(k).map(String::as_str).ok_or_else(|| anyhow!("{file}: no `{k}=` in its #authbench lines"));
    fn num<T: std::str::FromStr>(file: &str, k: &str, v: &str) -> anyhow::Result<T> {
        v.parse().map_err(|_| anyhow!("{file}: #authbench {k}={v} is not a number"))
    }
    let n = |k: &str| -> anyhow::Result<u64> { num(file, k, get(k)?) };
    let maybe = |k: &str| -> anyhow::Result<Option<String>> {
        Ok(match get(k)? {
            "none" => None,
            v => Some(v.to_owned()),
        })
    };
    let maybe_f = |k: &str| maybe(k)?.map(|v| num::<f64>(file, k, &v)).transpose();
    let maybe_u = |k: &str| maybe(k)?.map(|v| num::<u64>(file, k, &v)).transpose();
    let meta = Meta {
        generator: get("generator")?.to_owned(),
        unit: get("unit")?.to_owned(),
        url: get("url")?.to_owned(),
        offered_rps: maybe_f("offered_rps")?,
        achieved_rps: num(file, "achieved_rps", get("achieved_rps")?)?,
        duration_s: num(file, "duration_s", get("duration_s")?)?,
        requests: n("requests")?,
        answered: n("answered")?,
        errors: ErrorCounts {
            total: n("errors")?,
            timeouts: n("timeouts")?,
            connect: n("connect")?,
            io: n("io")?,
            unsent: n("unsent")?,
            http_4xx: n("http_4xx")?,
            http_5xx: n("http_5xx")?,
        },
        start_at: maybe("start_at")?,
        late_ms: maybe_f("late_ms")?,
        lag_p50_us: maybe_u("lag_p50_us")?,
        lag_p99_us: maybe_u("lag_p99_us")?,
        lag_max_us: maybe_u("lag_max_us")?,
    };
    let declared = n("intervals")?;
    if declared != intervals.len() as u64 {
        bail!("{file}: {} intervals where its end line says {declared}: cut or edited", intervals.len());
    }
    let held: u64 = intervals.iter().map(|i| i.histogram.len()).sum();
    if held != meta.answered {
        bail!("{file}: its histograms hold {held} values where it says answered={}: cut or edited", meta.answered);
    }
    Ok(Some(meta))
}

/// Read the file at `path` (errors name it).
pub fn read_file(path: &Path) -> anyhow::Result<ReadLog> {
    let name = path.display().to_string();
    let bytes = std::fs::read(path).map_err(|e| anyhow!("{name}: cannot read: {e}"))?;
    read_log(&name, &bytes)
}

/// Why a generator's share of the merged point is suspect.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum GeneratorFlag {
    /// Its window began more than [`LATE_TOLERANCE_MS`] after `--start-at`: it measured
    /// a shifted window.
    Late,
    /// Its scheduler lag p99 was above [`LAG_LIMIT_US`].
    Lag,
}

/// One generator's line in the merged point.
#[derive(Clone, Debug, Serialize)]
pub struct GeneratorRow {
    pub file: String,
    /// `None` for a plain HdrHistogram log (no `#authbench` lines).
    pub generator: Option<String>,
    pub requests: u64,
    pub answered: u64,
    pub errors: u64,
    pub offered_rps: Option<f64>,
    pub achieved_rps: Option<f64>,
    pub p50_us: u64,
    pub p99_us: u64,
    pub late_ms: Option<f64>,
    pub lag_p99_us: Option<u64>,
    pub flags: Vec<GeneratorFlag>,
}

/// One second of the merged window: every generator's histogram of that second, added.
#[derive(Clone, Debug, Serialize)]
pub struct SecondRow {
    /// Seconds since `window_start`.
    pub offset_s: u64,
    pub answered: u64,
    pub p50_us: u64,
    pub p99_us: u64,
    pub max_us: u64,
}

/// The merged results point.
#[derive(Debug, Serialize)]
pub struct Merged {
    /// `us` for logs `load --hlog` wrote; `None` when no file said.
    pub unit: Option<String>,
    /// The earliest interval's start, RFC 3339.
    pub window_start: String,
    /// From the earliest interval's start to the latest one's end.
    pub window_s: f64,
    /// Sums over the generators; `None` when one of them did not say.
    pub offered_rps: Option<f64>,
    pub achieved_rps: Option<f64>,
    pub requests: u64,
    pub answered: u64,
    pub errors: ErrorCounts,
    pub error_ratio: f64,
    /// Percentiles of the summed histogram.
    pub latency_us: LatencySummary,
    /// Any generator's flags.
    pub flags: Vec<GeneratorFlag>,
    pub generators: Vec<GeneratorRow>,
    pub seconds: Vec<SecondRow>,
    /// The summed histogram, V2 + DEFLATE, base64 (as `histogram` in results.json).
    pub histogram: String,
    #[serde(skip)]
    pub total: Histogram<u64>,
}

fn sum_opt(values: impl Iterator<Item = Option<f64>>) -> Option<f64> {
    values.sum::<Option<f64>>().map(|s| (s * 1000.0).round() / 1000.0)
}

/// Add the logs up. Refuses logs of different units or precision: their histograms
/// cannot be added exactly.
pub fn merge(logs: &[ReadLog]) -> anyhow::Result<Merged> {
    let first = logs.first().ok_or_else(|| anyhow!("no .hlog files given"))?;
    let unit_of = |l: &ReadLog| l.meta.as_ref().map(|m| m.unit.clone());
    let h0 = &first.intervals.first().ok_or_else(|| anyhow!("{}: no intervals", first.file))?.histogram;
    for l in logs {
        match (unit_of(first), unit_of(l)) {
            (a, b) if a == b => {}
            (Some(a), None) => bail!("{}: no `#authbench unit=` line, while {} is in {a}", l.file, first.file),
            (None, Some(b)) => bail!("{}: unit {b}, while {} has no `#authbench unit=` line", l.file, first.file),
            (a, b) => bail!("{}: unit {}, while {} is in {}", l.file, opt(b), first.file, opt(a)),
        }
        for i in &l.intervals {
            let h = &i.histogram;
            if (h.sigfig(), h.low()) != (h0.sigfig(), h0.low()) {
                bail!(
                    "{}: histograms of another precision than {}'s: they cannot be added exactly",
                    l.file,
                    first.file
                );
            }
        }
    }
    let origin = logs.iter().flat_map(|l| &l.intervals).map(|i| i.start_s).fold(f64::INFINITY, f64::min);
    let end = logs.iter().flat_map(|l| &l.intervals).map(|i| i.start_s + i.length_s).fold(origin, f64::max);
    let mut total = empty_like(h0);
    let mut seconds: BTreeMap<u64, Histogram<u64>> = BTreeMap::new();
    let (mut generators, mut errors) = (Vec::new(), ErrorCounts::default());
    for l in logs {
        let own = l.total()?;
        total.add(&own).map_err(|e| anyhow!("{}: cannot add its histograms: {e:?}", l.file))?;
        for i in &l.intervals {
            // Generators that started together have their intervals at the same seconds;
            // rounding absorbs clocks a little apart.
            let second = (i.start_s - origin).round().max(0.0) as u64;
            let slot = seconds.entry(second).or_insert_with(|| empty_like(h0));
            slot.add(&i.histogram).map_err(|e| anyhow!("{}: cannot add its histograms: {e:?}", l.file))?;
        }
        let meta = l.meta.as_ref();
        let (late_ms, lag_p99_us) = (meta.and_then(|m| m.late_ms), meta.and_then(|m| m.lag_p99_us));
        let mut flags = Vec::new();
        if late_ms.is_some_and(|ms| ms > LATE_TOLERANCE_MS) {
            flags.push(GeneratorFlag::Late);
        }
        if lag_p99_us.is_some_and(|us| us > LAG_LIMIT_US) {
            flags.push(GeneratorFlag::Lag);
        }
        let e = meta.map(|m| m.errors).unwrap_or_default();
        errors.add(&e);
        let s = summarize(&own);
        generators.push(GeneratorRow {
            file: l.file.clone(),
            generator: meta.map(|m| m.generator.clone()),
            requests: meta.map_or(own.len(), |m| m.requests),
            answered: own.len(),
            errors: e.total,
            offered_rps: meta.and_then(|m| m.offered_rps),
            achieved_rps: meta.map(|m| m.achieved_rps),
            p50_us: s.p50,
            p99_us: s.p99,
            late_ms,
            lag_p99_us,
            flags,
        });
    }
    let requests: u64 = generators.iter().map(|g| g.requests).sum();
    let mut flags: Vec<GeneratorFlag> = generators.iter().flat_map(|g| g.flags.iter().copied()).collect();
    flags.sort_by_key(|f| *f as u8);
    flags.dedup();
    let mut encoded = Vec::new();
    V2DeflateSerializer::new().serialize(&total, &mut encoded).map_err(|e| anyhow!("cannot encode the sum: {e}"))?;
    Ok(Merged {
        unit: unit_of(first),
        window_start: humantime::format_rfc3339_millis(UNIX_EPOCH + Duration::from_secs_f64(origin.max(0.0)))
            .to_string(),
        window_s: ((end - origin) * 1000.0).round() / 1000.0,
        offered_rps: sum_opt(generators.iter().map(|g| g.offered_rps)),
        achieved_rps: sum_opt(generators.iter().map(|g| g.achieved_rps)),
        requests,
        answered: total.len(),
        errors,
        error_ratio: if requests == 0 { 0.0 } else { errors.total as f64 / requests as f64 },
        latency_us: summarize(&total),
        flags,
        generators,
        seconds: seconds
            .into_iter()
            .map(|(offset_s, h)| {
                let s = summarize(&h);
                SecondRow { offset_s, answered: h.len(), p50_us: s.p50, p99_us: s.p99, max_us: s.max }
            })
            .collect(),
        histogram: STANDARD.encode(encoded),
        total,
    })
}

/// Read every file, then merge; the first bad file stops it.
pub fn merge_files(paths: &[PathBuf]) -> anyhow::Result<Merged> {
    if paths.is_empty() {
        bail!("no .hlog files given (authbench merge FILE...)");
    }
    let logs = paths.iter().map(|p| read_file(p)).collect::<anyhow::Result<Vec<_>>>()?;
    merge(&logs)
}

/// The merged point as JSON to `path` (through `path.tmp`).
pub fn write_json(path: &Path, merged: &Merged) -> anyhow::Result<()> {
    write_whole(path, (serde_json::to_string_pretty(merged)? + "\n").as_bytes())
}

fn ms(us: u64) -> String {
    format!("{:.3}", us as f64 / 1e3)
}

/// The merged point as a text table.
pub fn text(m: &Merged) -> String {
    let rate = |r: Option<f64>| r.map_or("-".into(), |r| format!("{r:.1} req/s"));
    let (l, e) = (&m.latency_us, &m.errors);
    let mut out = format!(
        "merged {} generators: {:.1}s from {} (unit {})\n  offered   {}\n  achieved  {} ({} requests, {} answered)\n",
        m.generators.len(),
        m.window_s,
        m.window_start,
        m.unit.as_deref().unwrap_or("unknown"),
        rate(m.offered_rps),
        rate(m.achieved_rps),
        m.requests,
        m.answered
    );
    let quantiles = [("p50", l.p50), ("p90", l.p90), ("p99", l.p99), ("p99.9", l.p999), ("max", l.max)];
    let latency: Vec<String> = quantiles.iter().map(|(q, us)| format!("{q} {} ms", ms(*us))).collect();
    out += &format!("  latency   {}\n", latency.join("  "));
    out += &format!(
        "  errors    {} (timeouts {}  connect {}  io {}  unsent {}  4xx {}  5xx {}; {:.2}%)\n",
        e.total,
        e.timeouts,
        e.connect,
        e.io,
        e.unsent,
        e.http_4xx,
        e.http_5xx,
        m.error_ratio * 100.0
    );
    out += "  generator              requests  p50 ms   p99 ms   late ms  lag p99 µs  flags  file\n";
    for g in &m.generators {
        let flags: Vec<&str> = g.flags.iter().map(|f| if *f == GeneratorFlag::Late { "late" } else { "lag" }).collect();
        out += &format!(
            "  {:<22} {:>8}  {:>7}  {:>7}  {:>7}  {:>10}  {:<5}  {}\n",
            g.generator.as_deref().unwrap_or("-"),
            g.requests,
            ms(g.p50_us),
            ms(g.p99_us),
            g.late_ms.map_or("-".into(), |v| format!("{v:.1}")),
            opt(g.lag_p99_us),
            if flags.is_empty() { "-".into() } else { flags.join(",") },
            g.file
        );
    }
    out
}
