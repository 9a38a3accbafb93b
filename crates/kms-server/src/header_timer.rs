//! The timer behind hyper's header-read timeout (the slow-loris guard), one per connection, that
//! touches the runtime's timer wheel about once per timeout period instead of twice per request.
//!
//! hyper arms a new sleep every time it starts waiting for a request head and drops it once the
//! head has arrived. With tokio's own sleeps that is, per request, an allocation, an insertion
//! into the timer wheel when first polled and a removal when dropped, both under the wheel's
//! lock: about 3% of the server's CPU time per Encrypt on the benchmark machine. Here all the
//! sleeps of one connection share one tokio sleep, the connection's alarm, which is only ever
//! moved when it would ring too late. On a busy keep-alive connection every new deadline is later
//! than the one the alarm is set for, so the alarm stays put; when it rings early, the poll that
//! follows sets it to the deadline still waited for, which is the one timer operation per period.

use std::future::Future;
use std::pin::Pin;
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll};
use std::time::{Duration, Instant};

use hyper::rt::{Sleep, Timer};

/// The hyper timer of one connection (give each connection its own: its sleeps share one alarm).
#[derive(Clone, Default)]
pub(crate) struct ConnectionTimer {
    alarm: Arc<Mutex<Alarm>>,
}

/// The connection's one tokio sleep, created when first needed.
#[derive(Default)]
struct Alarm {
    sleep: Option<Pin<Box<tokio::time::Sleep>>>,
}

impl Alarm {
    /// Ready once `deadline` has passed; otherwise the alarm is set to ring no later than
    /// `deadline` and will wake `cx`.
    fn poll_until(&mut self, deadline: tokio::time::Instant, cx: &mut Context<'_>) -> Poll<()> {
        let sleep = self.sleep.get_or_insert_with(|| Box::pin(tokio::time::sleep_until(deadline)));
        if sleep.deadline() > deadline {
            sleep.as_mut().reset(deadline);
        }
        while sleep.as_mut().poll(cx).is_ready() {
            if sleep.deadline() >= deadline {
                return Poll::Ready(());
            }
            // It rang for an earlier deadline, one no longer waited for.
            sleep.as_mut().reset(deadline);
        }
        Poll::Pending
    }
}

/// One of hyper's sleeps: a deadline on the connection's alarm.
struct HeaderSleep {
    alarm: Arc<Mutex<Alarm>>,
    deadline: tokio::time::Instant,
}

impl Future for HeaderSleep {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        let deadline = self.deadline;
        self.alarm.lock().unwrap_or_else(PoisonError::into_inner).poll_until(deadline, cx)
    }
}

impl Sleep for HeaderSleep {}

impl Timer for ConnectionTimer {
    fn sleep(&self, duration: Duration) -> Pin<Box<dyn Sleep>> {
        let now = tokio::time::Instant::now();
        // A duration too long to add is as good as forever (about 30 years, as tokio has it).
        let far = Duration::from_secs(86_400 * 365 * 30);
        self.sleep_until(now.checked_add(duration).unwrap_or_else(|| now + far).into_std())
    }

    fn sleep_until(&self, deadline: Instant) -> Pin<Box<dyn Sleep>> {
        Box::pin(HeaderSleep { alarm: Arc::clone(&self.alarm), deadline: deadline.into() })
    }

    fn now(&self) -> Instant {
        tokio::time::Instant::now().into_std()
    }

    fn reset(&self, sleep: &mut Pin<Box<dyn Sleep>>, new_deadline: Instant) {
        match sleep.as_mut().downcast_mut_pin::<HeaderSleep>() {
            Some(ours) => ours.get_mut().deadline = new_deadline.into(),
            None => *sleep = self.sleep_until(new_deadline),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Polls a sleep once without a task to wake.
    fn ready(sleep: &mut Pin<Box<dyn Sleep>>) -> bool {
        sleep.as_mut().poll(&mut Context::from_waker(std::task::Waker::noop())).is_ready()
    }

    async fn advance(millis: u64) {
        tokio::time::advance(Duration::from_millis(millis)).await;
    }

    #[tokio::test(start_paused = true)]
    async fn a_sleep_rings_at_its_deadline_not_at_an_earlier_one_of_the_connection() {
        let timer = ConnectionTimer::default();
        let first = timer.now() + Duration::from_millis(100);
        let mut early = timer.sleep_until(first);
        assert!(!ready(&mut early));
        drop(early); // the head arrived: the alarm stays set for 100 ms
        advance(50).await;
        let mut later = timer.sleep(Duration::from_millis(100)); // due at 150 ms
        assert!(!ready(&mut later));
        advance(60).await; // 110 ms: the alarm rang for the dropped sleep
        assert!(!ready(&mut later), "rang at the dropped sleep's deadline");
        advance(30).await; // 140 ms
        assert!(!ready(&mut later));
        advance(10).await; // 150 ms
        assert!(ready(&mut later));
    }

    #[tokio::test(start_paused = true)]
    async fn an_earlier_deadline_moves_the_alarm_forward_and_reset_moves_a_sleep() {
        let timer = ConnectionTimer::default();
        let mut long = timer.sleep(Duration::from_secs(10));
        assert!(!ready(&mut long));
        let mut short = timer.sleep(Duration::from_millis(20));
        assert!(!ready(&mut short));
        advance(20).await;
        assert!(ready(&mut short), "the alarm was set for 10 s and not brought forward");
        assert!(!ready(&mut long));
        timer.reset(&mut long, timer.now() + Duration::from_millis(5));
        advance(5).await;
        assert!(ready(&mut long));
    }

    #[tokio::test(start_paused = true)]
    async fn a_ringing_alarm_wakes_the_connection() {
        let timer = ConnectionTimer::default();
        let sleep = timer.sleep(Duration::from_millis(30));
        let waited = tokio::time::timeout(Duration::from_millis(40), sleep).await;
        assert!(waited.is_ok(), "the sleep's task was not woken at its deadline");
    }
}
