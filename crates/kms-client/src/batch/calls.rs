//! Counting the KMS calls a client makes, with an `aws-sdk-kms` interceptor.

use std::collections::BTreeMap;
use std::sync::{Arc, Mutex, PoisonError};

use aws_sdk_kms::Client;
use aws_sdk_kms::config::interceptors::BeforeTransmitInterceptorContextRef;
use aws_sdk_kms::config::{ConfigBag, Intercept, RuntimeComponents};
use aws_sdk_kms::error::BoxError;

/// Counts requests sent, per operation (`DescribeKey`, `GetKeyPolicy`, …), including retried
/// attempts. Clones share one count.
#[derive(Debug, Clone, Default)]
pub struct CallCounter {
    counts: Arc<Mutex<BTreeMap<String, u64>>>,
}

impl CallCounter {
    /// A counter at zero.
    #[must_use]
    pub fn new() -> Self {
        Self::default()
    }

    /// A client like `client` whose requests this counter counts.
    #[must_use]
    pub fn attach(&self, client: &Client) -> Client {
        Client::from_conf(client.config().to_builder().interceptor(self.clone()).build())
    }

    /// Requests sent for one operation.
    #[must_use]
    pub fn count(&self, operation: &str) -> u64 {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).get(operation).copied().unwrap_or(0)
    }

    /// Requests sent, all operations.
    #[must_use]
    pub fn total(&self) -> u64 {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).values().sum()
    }

    /// Every operation's count.
    #[must_use]
    pub fn snapshot(&self) -> BTreeMap<String, u64> {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).clone()
    }

    /// Back to zero.
    pub fn reset(&self) {
        self.counts.lock().unwrap_or_else(PoisonError::into_inner).clear();
    }
}

impl Intercept for CallCounter {
    fn name(&self) -> &'static str {
        "CallCounter"
    }

    fn read_before_transmit(
        &self,
        context: &BeforeTransmitInterceptorContextRef<'_>,
        _runtime_components: &RuntimeComponents,
        _cfg: &mut ConfigBag,
    ) -> Result<(), BoxError> {
        let target = context.request().headers().get("x-amz-target").unwrap_or("unknown");
        let operation = target.rsplit('.').next().unwrap_or(target).to_owned();
        *self.counts.lock().unwrap_or_else(PoisonError::into_inner).entry(operation).or_insert(0) += 1;
        Ok(())
    }
}
