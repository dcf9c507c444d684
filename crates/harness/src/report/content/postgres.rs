//! The PostgreSQL store's writes: what the sliding expiry costs in rows and WAL.

use super::*;

/// What the PostgreSQL-backed points wrote: rows updated and WAL per request, bytes per
/// session, and the settings that decide what a write costs. Nothing without such points.
pub(super) fn writes(a: &Analysis<'_>, d: &mut Doc, backed: &[&Series<'_>]) {
    let pg: Vec<&&Series<'_>> = backed.iter().filter(|s| s.system.needs_postgres()).collect();
    if pg.is_empty() {
        return;
    }
    let mut rows = Vec::new();
    for s in &pg {
        for p in &s.points {
            let st = p.store.as_ref();
            let num = |v: Option<f64>, digits: usize| v.map_or("—".into(), |x| format!("{x:.digits$}"));
            rows.push(vec![
                s.label(),
                p.instances.to_string(),
                format!("{:.0}{}", p.achieved_rps, held_mark(p)),
                num(st.and_then(|x| x.writes_per_request), 3),
                num(st.and_then(|x| x.wal_bytes_per_request), 0),
                num(st.and_then(|x| x.bytes_per_session), 0),
            ]);
        }
    }
    let facts = a.results.postgres.as_ref().map_or(String::new(), |f| {
        let on = |b: bool| if b { "on" } else { "off" };
        format!(
            " The private PostgreSQL {} ran with fsync {}, synchronous_commit {}, a {} sessions table, its data on {}.",
            f.version,
            on(f.fsync),
            on(f.synchronous_commit),
            if f.unlogged { "UNLOGGED" } else { "logged" },
            if f.data_filesystem.is_empty() { "an unrecorded file system" } else { &f.data_filesystem }
        )
    });
    d.p(format!(
        "PostgreSQL: each authenticated request is one statement (commands/request counts statements, from \
         pg_stat_statements: exact). What differs is whether it writes: `session-postgres` updates the session row on every \
         request, `session-postgres+touch` only when its expiry was written more than {:.0} % of the idle timeout ago. \
         Rows updated come from the statistics views, which lag by up to a second at each edge of a window; WAL bytes are \
         exact. Bytes per session is table + index over rows, in whole 8 KiB pages, so with few sessions it is \
         mostly free space.{facts}",
        crate::plan::TOUCH_FRACTION * 100.0
    ));
    d.table(&["system", "N", "requests/s", "writes/request", "WAL bytes/request", "bytes/session"], "lrrrrr", rows);
}
