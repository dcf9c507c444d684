//! What a session costs apart from the HTTP around it: making and parsing an ID, a
//! memory-store lookup with 1, 2 and 4 threads looking up at once, and a Redis round trip
//! (a plain `GET`, and `RedisStore::get`'s `GETEX`). The Redis items are skipped, with a
//! message, when no Redis answers.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::{
    hint::black_box,
    sync::{Arc, Barrier},
    time::{Duration, Instant},
};

use auth_core::Role;
use benches::ids;
use criterion::{Criterion, Throughput};
use session_server::{
    id::{ENCODED_LEN, SessionId},
    store::{
        Session, SessionStore as _, Timeouts,
        memory::MemoryStore,
        redis::{RedisConfig, RedisStore},
    },
};

/// The servers' defaults (`--idle-timeout 30m`, `--absolute-timeout 8h`).
const TIMEOUTS: Timeouts = Timeouts { idle: Duration::from_secs(30 * 60), absolute: Duration::from_secs(8 * 3600) };
/// Sessions in the memory store while it is read; a power of two so an index is a mask.
const SESSIONS: usize = 1 << 16;
/// Distinct users behind them: sessions of one user share its name (`Arc<str>`), as they
/// do in the server, so a lookup's clone touches a shared reference count.
const USERS: usize = 1000;

fn id_benches(c: &mut Criterion) {
    let mut group = c.benchmark_group(ids::SESSION_ID_GROUP);
    group.bench_function(ids::SESSION_ID_GENERATE, |b| b.iter(SessionId::generate));
    let id = SessionId::generate();
    group.bench_function(ids::SESSION_ID_ENCODE, |b| {
        b.iter(|| {
            let mut buf = [0u8; ENCODED_LEN];
            black_box(black_box(&id).encode_into(&mut buf).len())
        })
    });
    let text = id.encode();
    group.bench_function(ids::SESSION_ID_PARSE, |b| b.iter(|| SessionId::parse(black_box(&text))));
    group.finish();
}

fn memory_benches(c: &mut Criterion) {
    let rt = common::runtime();
    // The store starts its purge task on the current runtime; it is never driven here
    // (nothing expires within the run anyway), so lookups are all that runs.
    let store = {
        let _enter = rt.enter();
        MemoryStore::new(TIMEOUTS)
    };
    let users: Vec<Arc<str>> = (0..USERS).map(|i| Arc::from(format!("user{i}"))).collect();
    let now = auth_core::unix_millis();
    let sessions: Vec<SessionId> = (0..SESSIONS).map(|_| SessionId::generate()).collect();
    for (i, id) in sessions.iter().enumerate() {
        let session = Session { user: users[i % USERS].clone(), role: Role::User, created_ms: now };
        common::ready(store.put(id, &session)).expect("put");
    }
    assert!(common::ready(store.get(&sessions[0])).expect("get").is_some());

    let mut group = c.benchmark_group(ids::SESSION_MEMORY_GROUP);
    for threads in ids::SESSION_MEMORY_THREADS {
        // Time per lookup as each thread sees it; criterion's throughput line is then the
        // lookups per second of all threads together.
        group.throughput(Throughput::Elements(threads as u64));
        group.bench_function(criterion::BenchmarkId::new("threads", threads), |b| {
            b.iter_custom(|iters| {
                let start = Barrier::new(threads);
                std::thread::scope(|s| {
                    let workers: Vec<_> = (0..threads)
                        .map(|t| {
                            let (store, sessions, start) = (&store, &sessions, &start);
                            s.spawn(move || {
                                start.wait();
                                let began = Instant::now();
                                for i in 0..iters as usize {
                                    let id = &sessions[(i + t * (SESSIONS / 4)) & (SESSIONS - 1)];
                                    black_box(common::ready(store.get(black_box(id))).ok());
                                }
                                began.elapsed()
                            })
                        })
                        .collect();
                    workers.into_iter().map(|w| w.join().expect("worker")).max().unwrap_or_default()
                })
            })
        });
    }
    group.finish();
}

fn redis_benches(c: &mut Criterion) {
    let rt = common::runtime();
    let Some((url, mut conn)) = rt.block_on(common::redis_or_skip("the session/redis benchmarks")) else {
        return;
    };
    let prefix = common::RedisPrefix::new();
    let session = Session { user: Arc::from("user1"), role: Role::User, created_ms: auth_core::unix_millis() };
    let store = rt
        .block_on(RedisStore::connect(
            &RedisConfig { url, cluster: false, key_prefix: prefix.0.clone(), timeout: Duration::from_millis(500) },
            TIMEOUTS,
        ))
        .expect("RedisStore");
    let id = SessionId::generate();
    rt.block_on(store.put(&id, &session)).expect("put");
    assert_eq!(rt.block_on(store.get(&id)).expect("get"), Some(session));
    // A plain key holding a value of the same size as the stored session.
    let key = format!("{}get", prefix.0);
    let value: Option<String> = rt
        .block_on(async {
            redis::cmd("SET")
                .arg(&key)
                .arg("1700000000000:user:user1")
                .arg("PX")
                .arg(600_000)
                .exec_async(&mut conn)
                .await?;
            redis::cmd("GET").arg(&key).query_async(&mut conn).await
        })
        .expect("SET + GET");
    assert!(value.is_some());

    let mut group = c.benchmark_group(ids::SESSION_REDIS_GROUP);
    group.bench_function(ids::SESSION_REDIS_GET, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = Instant::now();
                for _ in 0..iters {
                    let v: Option<String> = redis::cmd("GET").arg(&key).query_async(&mut conn).await.expect("GET");
                    black_box(v);
                }
                began.elapsed()
            })
        })
    });
    group.bench_function(ids::SESSION_REDIS_STORE_GET, |b| {
        b.iter_custom(|iters| {
            rt.block_on(async {
                let began = Instant::now();
                for _ in 0..iters {
                    black_box(store.get(black_box(&id)).await.expect("GETEX"));
                }
                began.elapsed()
            })
        })
    });
    group.finish();
    rt.block_on(prefix.cleanup(&mut conn));
}

fn main() {
    let mut c = common::criterion();
    id_benches(&mut c);
    memory_benches(&mut c);
    redis_benches(&mut c);
    c.final_summary();
}
