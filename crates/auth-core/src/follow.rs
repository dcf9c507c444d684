//! Keeping a local copy current from a Redis pub/sub channel: what `jwt-server`'s cached
//! denylist and `session-server`'s session near-cache share.
//!
//! A background task subscribes to the channel *first* and then re-syncs the copy (the
//! denylist loads every entry; the session cache starts empty), so a change made in
//! between is seen in the re-sync, the channel, or both. Pub/sub does not replay: a
//! message published while nobody listened is gone, so when the subscription is lost the
//! copy is marked out of sync (the follower decides what that means: fail closed, or fall
//! through to the store) until it is back and re-synced. The loss is noticed when the
//! connection closes, or at the latest by the ping sent every [`PING_EVERY`] (answer
//! within the store timeout).

use std::{
    future::Future,
    pin::Pin,
    sync::{Arc, Weak},
    time::Duration,
};

use futures_util::StreamExt as _;
use tokio::sync::oneshot;

use crate::store::{StoreError, bounded};

/// How often the subscription is pinged to notice a Redis that stopped answering.
pub const PING_EVERY: Duration = Duration::from_secs(1);
/// Pause between attempts to re-subscribe.
const RETRY_EVERY: Duration = Duration::from_millis(200);

/// A local copy kept current from a channel. The task holds only a `Weak` to it and ends
/// when the last strong handle is dropped.
pub trait Follower: Send + Sync + 'static {
    /// Bring the copy up to date after (re-)subscribing, before it is marked in sync.
    fn resync(self: Arc<Self>) -> Pin<Box<dyn Future<Output = Result<(), StoreError>> + Send>>;
    /// One message from the channel.
    fn message(&self, payload: &str);
    /// The subscription is up and the copy re-synced (`true`), or it was lost (`false`).
    fn set_in_sync(&self, in_sync: bool);
}

/// Subscribe to `channel` on the Redis at `url` and keep `follower` current in a background
/// task. Returns once the first subscription and re-sync are done; their failure is a
/// start-up error (and ends the task).
pub async fn follow<F: Follower>(
    url: &str,
    channel: String,
    timeout: Duration,
    follower: &Arc<F>,
) -> Result<(), StoreError> {
    let client =
        redis::Client::open(url).map_err(|e| StoreError::Unavailable(format!("bad Redis URL {url:?}: {e}")))?;
    let (first_tx, first_rx) = oneshot::channel();
    tokio::spawn(run(client, channel, timeout, Arc::downgrade(follower), first_tx));
    match first_rx.await {
        Ok(result) => result,
        Err(_) => Err(StoreError::Unavailable("subscription task ended".into())),
    }
}

async fn run<F: Follower>(
    client: redis::Client,
    channel: String,
    timeout: Duration,
    weak: Weak<F>,
    first: oneshot::Sender<Result<(), StoreError>>,
) {
    let mut first = Some(first);
    loop {
        match subscribe(&client, &channel, timeout, &weak).await {
            Ok((mut sink, mut stream)) => {
                let Some(follower) = weak.upgrade() else { return };
                follower.set_in_sync(true);
                drop(follower);
                if let Some(tx) = first.take() {
                    let _ = tx.send(Ok(()));
                }
                let mut ping = tokio::time::interval(PING_EVERY);
                ping.reset();
                loop {
                    tokio::select! {
                        msg = stream.next() => {
                            let Some(msg) = msg else { break };
                            let Some(follower) = weak.upgrade() else { return };
                            if let Ok(text) = std::str::from_utf8(msg.get_payload_bytes()) {
                                follower.message(text);
                            }
                        }
                        _ = ping.tick() => {
                            if weak.strong_count() == 0 {
                                return;
                            }
                            if bounded(timeout, sink.ping::<redis::Value>()).await.is_err() {
                                break;
                            }
                        }
                    }
                }
                let Some(follower) = weak.upgrade() else { return };
                follower.set_in_sync(false);
            }
            Err(e) => {
                if let Some(tx) = first.take() {
                    let _ = tx.send(Err(e));
                    return;
                }
            }
        }
        tokio::time::sleep(RETRY_EVERY).await;
        if weak.strong_count() == 0 {
            return;
        }
    }
}

async fn subscribe<F: Follower>(
    client: &redis::Client,
    channel: &str,
    timeout: Duration,
    weak: &Weak<F>,
) -> Result<(redis::aio::PubSubSink, redis::aio::PubSubStream), StoreError> {
    let pubsub = bounded(timeout.max(Duration::from_secs(2)), client.get_async_pubsub()).await?;
    let (mut sink, stream) = pubsub.split();
    bounded(timeout, sink.subscribe(channel)).await?;
    // Subscribed before re-syncing: a change made meanwhile is in the re-sync or the stream.
    if let Some(follower) = weak.upgrade() {
        follower.resync().await?;
    }
    Ok((sink, stream))
}
