//! `--store redis-cluster` over a real Redis Cluster of three primaries the test starts
//! (`harness::deploy::cluster`): sessions spread over the shards, work on every instance,
//! end everywhere at logout; a stopped shard fails closed for the sessions it holds and
//! only for those.

#![allow(clippy::unwrap_used, clippy::expect_used)]

mod common;

use std::time::{Duration, Instant};

use common::*;
use harness::deploy::cluster::{key_slot, start_cluster};
use reqwest::StatusCode;

const PREFIX: &str = "authbench-test:cluster:";

#[tokio::test]
async fn sessions_spread_over_the_shards_and_a_stopped_shard_fails_only_its_own() {
    if RedisServer::skip_test() {
        return;
    }
    let logs = tempfile::tempdir().unwrap();
    let mut cluster = start_cluster(3, |_| Ok(None), logs.path()).await.expect("a 3-shard Redis Cluster");
    let urls = cluster.urls();
    let flags =
        ["--store", "redis-cluster", "--redis-url", &urls, "--redis-prefix", PREFIX, "--store-timeout", "300ms"];
    let a = TestServer::start("cl-a", &flags).await;
    let b = TestServer::start("cl-b", &flags).await;
    let http = client();

    // 30 sessions: each shard holds some (all on one of three would be chance 3·(1/3)^30).
    let mut sessions = Vec::new();
    for k in 0..30 {
        let user = format!("user{}", 1 + k % 9);
        let id = login(&http, &a, &user, None).await;
        let slot = key_slot(&cluster.nodes[0].url, &format!("{PREFIX}s:{id}")).await.unwrap();
        sessions.push((user, id, cluster.shard_of(slot)));
    }
    for shard in 0..3 {
        assert!(sessions.iter().any(|s| s.2 == shard), "no session on shard {shard}");
    }
    for (user, id, _) in &sessions {
        expect_me(&me(&http, &b, id).await, user, "user", "cl-b");
    }
    // Logout on one instance ends the session on the other at once.
    let (_, gone, _) = sessions.pop().unwrap();
    assert_eq!(post_empty(&http, &b.at("/logout"), Some(&cookie(&gone))).await.status, StatusCode::NO_CONTENT);
    me(&http, &a, &gone).await.assert_error(401, "unauthenticated");

    // Shard 1 stops: its sessions fail closed (503), everyone else's still answer.
    if let Some(p) = &mut cluster.nodes[1].process {
        p.stop().await;
    }
    for _ in 0..2 {
        for (user, id, shard) in &sessions {
            let started = Instant::now();
            let r = me(&http, &a, id).await;
            assert!(started.elapsed() < Duration::from_secs(1), "/me took {:?}", started.elapsed());
            if *shard == 1 {
                r.assert_error(503, "store_unavailable");
                assert_eq!(r.header("retry-after"), Some("1"));
            } else {
                expect_me(&r, user, "user", "cl-a");
            }
        }
    }
    // New logins whose session lands on a live shard still work.
    let mut fresh = None;
    for k in 0..30 {
        let user = format!("user{}", 1 + k % 9);
        let r = post_json(&http, &a.at("/login"), &credentials(&user, DEMO_PASSWORD), None).await;
        if r.status == StatusCode::OK {
            fresh = Some((user, session_id(r.set_cookie())));
            break;
        }
        // The user's throttle counter or the new session fell on the stopped shard.
        r.assert_error(503, "store_unavailable");
    }
    let (user, fresh) = fresh.expect("no login succeeded with two of three shards up");
    expect_me(&me(&http, &b, &fresh).await, &user, "user", "cl-b");

    // It comes back (empty: no persistence): its sessions are unknown now, a 401, never a
    // 200; the rest never noticed.
    cluster.restart(1, None, logs.path()).await.unwrap();
    let back = Instant::now();
    for (user, id, shard) in &sessions {
        loop {
            let r = me(&http, &a, id).await;
            if *shard == 1 && r.status == StatusCode::SERVICE_UNAVAILABLE {
                assert!(back.elapsed() < Duration::from_secs(10), "still 503 ten seconds after the shard came back");
                tokio::time::sleep(Duration::from_millis(100)).await;
                continue;
            }
            if *shard == 1 {
                r.assert_error(401, "unauthenticated");
            } else {
                expect_me(&r, user, "user", "cl-a");
            }
            break;
        }
    }
    cluster.stop().await;
}
