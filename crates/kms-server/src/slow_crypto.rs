//! Cryptography too slow for the request path's threads: RSA key generation (up to a second for
//! RSA_4096). It runs on a thread of its own, never on the async workers (which would stall
//! every request they serve) nor on tokio's blocking pool, which the binary keeps at two threads
//! for the SQLite store: two key generations there held both threads, and every store call and
//! audit write waited behind them (Encrypt's p99 107× its usual, `ferrokms-bench key-specs`).
//! One generation runs at a time; others wait for it without holding any thread.

use std::sync::LazyLock;

use tokio::sync::Semaphore;

/// At most this many generations run at once (each takes a core while it runs).
const AT_ONCE: usize = 1;

static SLOTS: LazyLock<Semaphore> = LazyLock::new(|| Semaphore::new(AT_ONCE));

/// Runs `work` on a thread of its own when it is `slow` (see [`run`]), else in place.
pub(crate) async fn run_if<T: Send + 'static>(slow: bool, work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    if slow { run(work).await } else { Some(work()) }
}

/// Runs `work` on a thread of its own, one at a time, and waits for its result without
/// blocking the caller's thread. `None` if the thread could not be started or panicked.
pub(crate) async fn run<T: Send + 'static>(work: impl FnOnce() -> T + Send + 'static) -> Option<T> {
    let _slot = SLOTS.acquire().await.ok()?;
    let (done, result) = tokio::sync::oneshot::channel();
    std::thread::Builder::new()
        .name("ferrokms-keygen".into())
        .spawn(move || {
            let _ = done.send(work());
        })
        .ok()?;
    result.await.ok()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Work runs off the caller's thread and its result comes back; generations queue.
    #[tokio::test(flavor = "current_thread")]
    async fn work_runs_on_its_own_thread() {
        let caller = std::thread::current().id();
        let (a, b) = tokio::join!(run(move || std::thread::current().id() != caller), run(|| 7));
        assert_eq!((a, b), (Some(true), Some(7)));
    }
}
