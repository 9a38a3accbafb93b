//! Reading a request body: a size limit, a deadline for the whole body, and a server-wide
//! budget of the bytes held by bodies that are still arriving.
//!
//! Without the deadline, a client that sends its headers in time and then one body byte every
//! few seconds holds its connection (and its request's memory) for as long as it likes; without
//! the budget, many clients that each send most of a large body and then stop hold the sum of
//! those bodies in memory (200 half-sent 1 MiB bodies held 411 MiB).

use std::sync::Arc;
use std::time::Duration;

use bytes::Bytes;
use http_body_util::BodyExt as _;
use kms_api::{ApiError, Exception};
use tokio::sync::Semaphore;

/// Bytes that bodies being read may hold at once across the server, by default (64 requests of
/// the largest default body size).
pub const DEFAULT_BUDGET_BYTES: usize = 64 * 1024 * 1024;

/// The server-wide budget of bytes held by request bodies: a permit per byte.
///
/// Bytes are taken as they arrive and given back when the request that read them is answered
/// (when its [`Held`] is dropped), so the budget bounds the memory of bodies in flight whatever
/// the number of connections.
pub(crate) struct BodyBudget {
    permits: Arc<Semaphore>,
    capacity: usize,
}

impl BodyBudget {
    /// A budget of `capacity` bytes (at most the semaphore's maximum).
    pub(crate) fn new(capacity: usize) -> Self {
        let capacity = capacity.clamp(1, Semaphore::MAX_PERMITS);
        Self { permits: Arc::new(Semaphore::new(capacity)), capacity }
    }

    /// Bytes held right now by bodies being read or requests not yet answered.
    pub(crate) fn held(&self) -> usize {
        self.capacity.saturating_sub(self.permits.available_permits())
    }

    /// The budget's size.
    pub(crate) fn capacity(&self) -> usize {
        self.capacity
    }

    /// Takes `bytes` more for `held`, or says that the budget has not that many left.
    fn take(&self, held: &mut Held, bytes: usize) -> Result<(), BodyError> {
        let n = u32::try_from(bytes).map_err(|_| BodyError::OverBudget)?;
        let permit = self.permits.try_acquire_many(n).map_err(|_| BodyError::OverBudget)?;
        // Given back by `Held::drop`, with the rest of the request's bytes.
        permit.forget();
        held.bytes = held.bytes.saturating_add(bytes);
        Ok(())
    }
}

/// The part of the budget one request holds; given back when it is dropped.
pub(crate) struct Held {
    permits: Arc<Semaphore>,
    bytes: usize,
}

impl Drop for Held {
    fn drop(&mut self) {
        if self.bytes > 0 {
            self.permits.add_permits(self.bytes);
        }
    }
}

/// Why a body could not be read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum BodyError {
    /// Longer than the limit (said by its `Content-Length`, or found while reading).
    TooLarge {
        /// The limit, in bytes.
        limit: usize,
    },
    /// Not complete by the deadline.
    TimedOut {
        /// The deadline, counted from when the handler began reading.
        after: Duration,
    },
    /// The server-wide budget of body bytes is spent.
    OverBudget,
    /// The connection failed while the body was arriving.
    Broken,
}

impl BodyError {
    /// The error the client is answered with.
    pub(crate) fn to_api(&self) -> ApiError {
        match self {
            Self::TooLarge { limit } => ApiError::with_message(
                Exception::RequestEntityTooLarge,
                format!("Request body must be at most {limit} bytes"),
            ),
            Self::TimedOut { after } => ApiError::with_message(
                Exception::RequestTimeout,
                format!("The request body was not received within {} ms", after.as_millis()),
            ),
            // The AWS SDKs retry ThrottlingException with backoff, which is what a client should
            // do while the server is short of memory for bodies.
            Self::OverBudget => ApiError::with_message(Exception::Throttling, "Rate exceeded"),
            Self::Broken => ApiError::with_message(Exception::Serialization, "The request body could not be read"),
        }
    }
}

/// Reads the whole body within `deadline`, holding at most `max_bytes` of it, each byte taken
/// from `budget` as it arrives.
///
/// When the budget is spent, the request is refused at once (rather than waiting for bytes to
/// be given back): a reader that waited would hold what it had read while waiting for others
/// to finish, and readers waiting on each other would stall until their deadlines, legitimate
/// requests among them. Refused requests give their bytes back at once, and clients retry.
///
/// # Errors
/// [`BodyError`] as described on each variant; whatever was taken from the budget is given back.
pub(crate) async fn read<B>(
    body: B,
    max_bytes: usize,
    deadline: Duration,
    budget: &BodyBudget,
) -> Result<(Bytes, Held), BodyError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    if usize::try_from(body.size_hint().lower()).map_or(true, |declared| declared > max_bytes) {
        return Err(BodyError::TooLarge { limit: max_bytes });
    }
    let mut held = Held { permits: Arc::clone(&budget.permits), bytes: 0 };
    let chunks = tokio::time::timeout(deadline, chunks(body, max_bytes, budget, &mut held))
        .await
        .map_err(|_| BodyError::TimedOut { after: deadline })??;
    let bytes = match <[Bytes; 1]>::try_from(chunks) {
        // One chunk (the usual case for a small body): no copy.
        Ok([only]) => only,
        Err(chunks) => {
            let mut all = Vec::with_capacity(held.bytes);
            for chunk in &chunks {
                all.extend_from_slice(chunk);
            }
            Bytes::from(all)
        }
    };
    Ok((bytes, held))
}

/// The body's data frames, as they arrived.
async fn chunks<B>(mut body: B, max_bytes: usize, budget: &BodyBudget, held: &mut Held) -> Result<Vec<Bytes>, BodyError>
where
    B: hyper::body::Body<Data = Bytes> + Unpin,
{
    let mut chunks = Vec::new();
    while let Some(frame) = body.frame().await {
        let Ok(data) = frame.map_err(|_| BodyError::Broken)?.into_data() else { continue };
        if held.bytes.saturating_add(data.len()) > max_bytes {
            return Err(BodyError::TooLarge { limit: max_bytes });
        }
        budget.take(held, data.len())?;
        chunks.push(data);
    }
    Ok(chunks)
}

#[cfg(test)]
#[allow(clippy::unwrap_used, clippy::indexing_slicing)]
mod tests {
    use std::collections::VecDeque;
    use std::convert::Infallible;
    use std::pin::Pin;
    use std::task::{Context, Poll};

    use http_body_util::Full;
    use hyper::body::{Body, Frame};

    use super::*;

    /// A body that sends its chunks, then ends or (when `stall`) sends nothing more, ever.
    struct Scripted {
        chunks: VecDeque<Bytes>,
        stall: bool,
    }

    impl Scripted {
        fn new(chunks: &[usize], stall: bool) -> Self {
            Self { chunks: chunks.iter().map(|n| Bytes::from(vec![b'x'; *n])).collect(), stall }
        }
    }

    impl Body for Scripted {
        type Data = Bytes;
        type Error = Infallible;

        fn poll_frame(mut self: Pin<&mut Self>, _: &mut Context<'_>) -> Poll<Option<Result<Frame<Bytes>, Infallible>>> {
            match self.chunks.pop_front() {
                Some(chunk) => Poll::Ready(Some(Ok(Frame::data(chunk)))),
                None if self.stall => Poll::Pending,
                None => Poll::Ready(None),
            }
        }
    }

    const LONG: Duration = Duration::from_secs(60);

    #[tokio::test]
    async fn a_body_in_chunks_is_read_whole_and_its_bytes_held_until_dropped() {
        let budget = BodyBudget::new(1000);
        let (bytes, held) = read(Scripted::new(&[100, 200, 300], false), 1000, LONG, &budget).await.unwrap();
        assert_eq!(bytes.len(), 600);
        assert_eq!(budget.held(), 600, "held while the request is being answered");
        drop(held);
        assert_eq!(budget.held(), 0);
        let (bytes, _held) = read(Full::new(Bytes::from_static(b"{}")), 1000, LONG, &budget).await.unwrap();
        assert_eq!(&bytes[..], b"{}");
    }

    #[tokio::test]
    async fn too_large_bodies_are_refused_and_give_their_bytes_back() {
        let budget = BodyBudget::new(10_000);
        let declared = read(Full::new(Bytes::from(vec![0u8; 2000])), 1000, LONG, &budget).await;
        assert_eq!(declared.err(), Some(BodyError::TooLarge { limit: 1000 }));
        let found = read(Scripted::new(&[600, 600], false), 1000, LONG, &budget).await;
        assert_eq!(found.err(), Some(BodyError::TooLarge { limit: 1000 }));
        assert_eq!(budget.held(), 0);
    }

    /// The deadline covers the whole body, however the bytes trickle in.
    #[tokio::test(start_paused = true)]
    async fn a_body_that_stops_arriving_times_out_and_gives_its_bytes_back() {
        let budget = BodyBudget::new(10_000);
        let after = Duration::from_millis(500);
        let stalled = read(Scripted::new(&[100], true), 1000, after, &budget).await;
        assert_eq!(stalled.err(), Some(BodyError::TimedOut { after }));
        assert_eq!(budget.held(), 0);
    }

    /// Bodies held at once never exceed the budget: past it, a body is refused at once.
    #[tokio::test(start_paused = true)]
    async fn bodies_beyond_the_budget_are_refused() {
        let budget = BodyBudget::new(1000);
        let (_first, held) = read(Scripted::new(&[700], false), 1000, LONG, &budget).await.unwrap();
        let second = read(Scripted::new(&[200, 200], false), 1000, LONG, &budget).await;
        assert_eq!(second.err(), Some(BodyError::OverBudget));
        assert_eq!(budget.held(), 700, "the refused body gave back what it had taken");
        drop(held);
        assert!(read(Scripted::new(&[200, 200], false), 1000, LONG, &budget).await.is_ok());
    }
}
