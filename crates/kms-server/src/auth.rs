//! Authentication: SigV4 verification against access keys that ferrokms issues.
//!
//! Secrets are stored wrapped by the root key; unwrapped ones and derived signing keys are
//! cached in memory (a signing key is valid for one access key, day, region and service), so a
//! warm caller costs two HMACs of SigV4 derivation less per request and no database read.

use std::collections::HashMap;
use std::sync::{Arc, RwLock};

use http::request::Parts;
use kms_api::{ApiError, Exception};
use kms_core::Clock;
use kms_core::ids::{AccountId, Region};
use kms_crypto::{RootKeyProvider, SecretBytes};
use kms_sigv4::{SigV4Error, SigningKey};
use kms_store::Store;

use crate::error::ServiceError;
use crate::service::Caller;

/// The access key id accepted with `--insecure-dev-credentials`.
pub const DEV_ACCESS_KEY_ID: &str = "test";
const DEV_SECRET: &[u8] = b"test";
const SIGNING_KEY_CACHE_LIMIT: usize = 10_000;

/// A known access key.
struct Credential {
    account: AccountId,
    principal_arn: String,
    secret: SecretBytes,
}

type ScopeKey = (String, String, String, String);

/// Verifies requests and says who sent them.
pub struct Authenticator {
    store: Arc<dyn Store>,
    root: Arc<dyn RootKeyProvider>,
    clock: Arc<dyn Clock>,
    dev: Option<Arc<Credential>>,
    credentials: RwLock<HashMap<String, Arc<Credential>>>,
    signing_keys: RwLock<HashMap<ScopeKey, Arc<SigningKey>>>,
}

fn sigv4_error(e: &SigV4Error) -> ApiError {
    let exception = Exception::from_name(e.aws_error_code()).unwrap_or(Exception::IncompleteSignature);
    let message = e.to_string();
    ApiError::new(exception, (!message.is_empty()).then_some(message))
}

fn unrecognized() -> ServiceError {
    ServiceError::Api(sigv4_error(&SigV4Error::UnrecognizedClient))
}

/// The AAD that binds a wrapped secret access key to its access key id.
pub fn secret_aad(access_key_id: &str) -> Vec<u8> {
    format!("ferrokms:access-key:{access_key_id}").into_bytes()
}

impl Authenticator {
    /// An authenticator over the store's access keys; with `dev_account`, also the insecure
    /// `test`/`test` key acting as that account's root.
    pub fn new(
        store: Arc<dyn Store>,
        root: Arc<dyn RootKeyProvider>,
        clock: Arc<dyn Clock>,
        dev_account: Option<AccountId>,
    ) -> Self {
        let dev = dev_account.map(|account| {
            Arc::new(Credential {
                principal_arn: format!("arn:aws:iam::{account}:root"),
                account,
                secret: SecretBytes::new(DEV_SECRET.to_vec()),
            })
        });
        Self { store, root, clock, dev, credentials: RwLock::default(), signing_keys: RwLock::default() }
    }

    async fn credential(&self, access_key_id: &str) -> Result<Option<Arc<Credential>>, ServiceError> {
        if access_key_id == DEV_ACCESS_KEY_ID {
            return Ok(self.dev.clone());
        }
        if let Some(c) = self.credentials.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(access_key_id) {
            return Ok(Some(Arc::clone(c)));
        }
        let Some(record) = self.store.access_key(access_key_id).await? else {
            return Ok(None);
        };
        let secret = self.root.unwrap(&secret_aad(access_key_id), &record.wrapped_secret)?;
        let credential = Arc::new(Credential { account: record.account, principal_arn: record.principal_arn, secret });
        self.credentials
            .write()
            .unwrap_or_else(std::sync::PoisonError::into_inner)
            .insert(access_key_id.to_owned(), Arc::clone(&credential));
        Ok(Some(credential))
    }

    fn signing_key(&self, credential: &Credential, pending: &kms_sigv4::PendingRequest) -> Arc<SigningKey> {
        let scope: ScopeKey = (
            pending.access_key_id().to_owned(),
            pending.scope_date().to_owned(),
            pending.region().to_owned(),
            pending.service().to_owned(),
        );
        if let Some(k) = self.signing_keys.read().unwrap_or_else(std::sync::PoisonError::into_inner).get(&scope) {
            return Arc::clone(k);
        }
        let key = Arc::new(SigningKey::derive(
            credential.secret.expose_secret(),
            pending.scope_date(),
            pending.region(),
            pending.service(),
        ));
        let mut cache = self.signing_keys.write().unwrap_or_else(std::sync::PoisonError::into_inner);
        if cache.len() >= SIGNING_KEY_CACHE_LIMIT {
            cache.clear();
        }
        cache.insert(scope, Arc::clone(&key));
        key
    }

    /// Verifies a KMS request's signature and returns the caller and the request's region.
    ///
    /// # Errors
    /// `MissingAuthenticationTokenException`, `IncompleteSignatureException`,
    /// `InvalidSignatureException` or `UnrecognizedClientException` as AWS answers them.
    pub async fn authenticate(&self, parts: &Parts, body: &[u8]) -> Result<(Caller, Region), ServiceError> {
        let pending = kms_sigv4::parse(parts).map_err(|e| ServiceError::Api(sigv4_error(&e)))?;
        let credential = self.credential(pending.access_key_id()).await?.ok_or_else(unrecognized)?;
        if pending.security_token().is_some() {
            // ferrokms issues no session tokens yet, so any token is one we cannot honour.
            return Err(unrecognized());
        }
        let key = self.signing_key(&credential, &pending);
        let now = self.clock.now().unix_seconds();
        pending.verify(parts, body, &key, now, "kms").map_err(|e| ServiceError::Api(sigv4_error(&e)))?;
        let region = Region::parse(pending.region()).map_err(|_| {
            ServiceError::Api(ApiError::with_message(
                Exception::InvalidSignature,
                "Credential should be scoped to a valid region.",
            ))
        })?;
        let caller = Caller {
            account: credential.account.clone(),
            principal_arn: credential.principal_arn.clone(),
            access_key_id: pending.access_key_id().to_owned(),
        };
        Ok((caller, region))
    }
}
