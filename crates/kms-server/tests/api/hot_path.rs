//! The cryptographic hot path needs no database read once a key is warm, and a disable or a
//! policy change is enforced on the very next request, even one whose key was being reloaded
//! while the change committed.

use std::sync::Arc;
use std::sync::atomic::{AtomicUsize, Ordering};

use async_trait::async_trait;
use base64::Engine as _;
use kms_api::Operation;
use kms_core::audit::AuditEvent;
use kms_core::ids::{AccountId, AliasName, KeyId, Region};
use kms_core::key::KeyRecord;
use kms_core::tag::Tag;
use kms_server::ops::dispatch;
use kms_server::{Caller, RequestContext, Service};
use kms_store::audit::{AuditDigest, AuditFilter, AuditRow};
use kms_store::{
    AccessKeyRecord, AliasRecord, GrantRecord, IdentityPolicyRecord, KeyUpdate, MaterialRecord, PrincipalRecord,
    SqliteStore, Store, StoreResult,
};

/// A store that counts every call, and can hold a policy read or write half-way.
struct Counting {
    inner: SqliteStore,
    calls: AtomicUsize,
    /// Held before the write (as if its commit were slow).
    policy_write: Gate,
    /// Held after the read, the old policy in hand.
    policy_read: Gate,
}

impl Counting {
    fn new(inner: SqliteStore) -> Self {
        Self { inner, calls: AtomicUsize::new(0), policy_write: Gate::default(), policy_read: Gate::default() }
    }

    fn tick(&self) {
        self.calls.fetch_add(1, Ordering::SeqCst);
    }
}

/// Where a store call stops, once armed, until the test lets it go.
#[derive(Default)]
struct Gate {
    armed: std::sync::atomic::AtomicBool,
    reached: tokio::sync::Notify,
    release: tokio::sync::Notify,
}

impl Gate {
    async fn pass(&self) {
        if self.armed.swap(false, Ordering::SeqCst) {
            self.reached.notify_one();
            self.release.notified().await;
        }
    }
}

#[async_trait]
impl Store for Counting {
    fn describe(&self) -> String {
        self.inner.describe()
    }
    async fn setting(&self, name: &str) -> StoreResult<Option<String>> {
        self.tick();
        self.inner.setting(name).await
    }
    async fn set_setting(&self, name: &str, value: &str) -> StoreResult<()> {
        self.tick();
        self.inner.set_setting(name, value).await
    }
    async fn init_setting(&self, name: &str, value: &str) -> StoreResult<bool> {
        self.tick();
        self.inner.init_setting(name, value).await
    }
    async fn create_key(
        &self,
        k: &KeyRecord,
        m: &[MaterialRecord],
        p: &str,
        t: &[Tag],
        u: &[KeyUpdate],
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        self.tick();
        self.inner.create_key(k, m, p, t, u, audit).await
    }
    async fn key(&self, id: KeyId) -> StoreResult<Option<KeyRecord>> {
        self.tick();
        self.inner.key(id).await
    }
    async fn update_key(&self, key: &KeyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        self.tick();
        self.inner.update_key(key, audit).await
    }
    async fn list_keys(&self, a: &AccountId, r: &Region, after: Option<KeyId>, n: usize) -> StoreResult<Vec<KeyId>> {
        self.tick();
        self.inner.list_keys(a, r, after, n).await
    }
    async fn update_keys(&self, updates: &[KeyUpdate], audit: &[AuditEvent]) -> StoreResult<()> {
        self.tick();
        self.inner.update_keys(updates, audit).await
    }
    async fn due_keys(&self, now: kms_core::Timestamp, limit: usize) -> StoreResult<Vec<KeyId>> {
        self.tick();
        self.inner.due_keys(now, limit).await
    }
    async fn delete_key(&self, id: KeyId, revision: u64, u: &[KeyUpdate], audit: &[AuditEvent]) -> StoreResult<bool> {
        self.tick();
        self.inner.delete_key(id, revision, u, audit).await
    }
    async fn materials(&self, id: KeyId) -> StoreResult<Vec<MaterialRecord>> {
        self.tick();
        self.inner.materials(id).await
    }
    async fn create_alias(&self, alias: &AliasRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        self.tick();
        self.inner.create_alias(alias, audit).await
    }
    async fn update_alias(&self, alias: &AliasRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        self.tick();
        self.inner.update_alias(alias, audit).await
    }
    async fn delete_alias(&self, a: &AccountId, r: &Region, n: &AliasName, audit: &[AuditEvent]) -> StoreResult<bool> {
        self.tick();
        self.inner.delete_alias(a, r, n, audit).await
    }
    async fn alias(&self, a: &AccountId, r: &Region, n: &AliasName) -> StoreResult<Option<AliasRecord>> {
        self.tick();
        self.inner.alias(a, r, n).await
    }
    async fn list_aliases(
        &self,
        a: &AccountId,
        r: &Region,
        target: Option<KeyId>,
        after: Option<&AliasName>,
        n: usize,
    ) -> StoreResult<Vec<AliasRecord>> {
        self.tick();
        self.inner.list_aliases(a, r, target, after, n).await
    }
    async fn tags(&self, id: KeyId) -> StoreResult<Vec<Tag>> {
        self.tick();
        self.inner.tags(id).await
    }
    async fn put_tags(&self, id: KeyId, tags: &[Tag], max: usize, audit: &[AuditEvent]) -> StoreResult<()> {
        self.tick();
        self.inner.put_tags(id, tags, max, audit).await
    }
    async fn remove_tags(&self, id: KeyId, keys: &[String], audit: &[AuditEvent]) -> StoreResult<()> {
        self.tick();
        self.inner.remove_tags(id, keys, audit).await
    }
    async fn policy(&self, id: KeyId) -> StoreResult<Option<String>> {
        self.tick();
        let read = self.inner.policy(id).await;
        self.policy_read.pass().await;
        read
    }
    async fn put_policy(&self, id: KeyId, document: &str, audit: &[AuditEvent]) -> StoreResult<()> {
        self.tick();
        self.policy_write.pass().await;
        self.inner.put_policy(id, document, audit).await
    }
    async fn access_key(&self, id: &str) -> StoreResult<Option<AccessKeyRecord>> {
        self.tick();
        self.inner.access_key(id).await
    }
    async fn create_access_key(&self, record: &AccessKeyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        self.tick();
        self.inner.create_access_key(record, audit).await
    }
    async fn delete_access_key(&self, id: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        self.tick();
        self.inner.delete_access_key(id, audit).await
    }
    async fn materials_after(
        &self,
        after: Option<(KeyId, kms_core::ids::MaterialId)>,
        limit: usize,
    ) -> StoreResult<Vec<MaterialRecord>> {
        self.tick();
        self.inner.materials_after(after, limit).await
    }
    async fn rewrap_material(
        &self,
        key_id: KeyId,
        material_id: kms_core::ids::MaterialId,
        old: &[u8],
        new: &[u8],
    ) -> StoreResult<bool> {
        self.tick();
        self.inner.rewrap_material(key_id, material_id, old, new).await
    }
    async fn access_keys_after(&self, after: &str, limit: usize) -> StoreResult<Vec<AccessKeyRecord>> {
        self.tick();
        self.inner.access_keys_after(after, limit).await
    }
    async fn rewrap_access_key(&self, id: &str, old: &[u8], new: &[u8]) -> StoreResult<bool> {
        self.tick();
        self.inner.rewrap_access_key(id, old, new).await
    }
    async fn record_key_use(&self, id: &str, used: &kms_store::KeyUse) -> StoreResult<()> {
        self.tick();
        self.inner.record_key_use(id, used).await
    }
    async fn set_access_key_active(&self, id: &str, active: bool, audit: &[AuditEvent]) -> StoreResult<bool> {
        self.tick();
        self.inner.set_access_key_active(id, active, audit).await
    }
    async fn access_keys_of(&self, principal_arn: &str) -> StoreResult<Vec<AccessKeyRecord>> {
        self.tick();
        self.inner.access_keys_of(principal_arn).await
    }
    async fn create_principal(&self, record: &PrincipalRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        self.tick();
        self.inner.create_principal(record, audit).await
    }
    async fn principal(&self, arn: &str) -> StoreResult<Option<PrincipalRecord>> {
        self.tick();
        self.inner.principal(arn).await
    }
    async fn principal_by_name(
        &self,
        account: &AccountId,
        kind: kms_store::PrincipalType,
        name: &str,
    ) -> StoreResult<Option<PrincipalRecord>> {
        self.tick();
        self.inner.principal_by_name(account, kind, name).await
    }
    async fn rename_principal(
        &self,
        old_arn: &str,
        renamed: &PrincipalRecord,
        audit: &[AuditEvent],
    ) -> StoreResult<bool> {
        self.tick();
        self.inner.rename_principal(old_arn, renamed, audit).await
    }
    async fn update_principal(&self, record: &PrincipalRecord, audit: &[AuditEvent]) -> StoreResult<bool> {
        self.tick();
        self.inner.update_principal(record, audit).await
    }
    async fn create_managed_policy(
        &self,
        record: &kms_store::ManagedPolicyRecord,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        self.tick();
        self.inner.create_managed_policy(record, audit).await
    }
    async fn managed_policy(&self, arn: &str) -> StoreResult<Option<kms_store::ManagedPolicyRecord>> {
        self.tick();
        self.inner.managed_policy(arn).await
    }
    async fn managed_policies(&self, account: &AccountId) -> StoreResult<Vec<kms_store::ManagedPolicyRecord>> {
        self.tick();
        self.inner.managed_policies(account).await
    }
    async fn update_managed_policy(
        &self,
        record: &kms_store::ManagedPolicyRecord,
        audit: &[AuditEvent],
    ) -> StoreResult<()> {
        self.tick();
        self.inner.update_managed_policy(record, audit).await
    }
    async fn delete_managed_policy(&self, arn: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        self.tick();
        self.inner.delete_managed_policy(arn, audit).await
    }
    async fn list_principals(&self, account: &AccountId) -> StoreResult<Vec<PrincipalRecord>> {
        self.tick();
        self.inner.list_principals(account).await
    }
    async fn delete_principal(&self, arn: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        self.tick();
        self.inner.delete_principal(arn, audit).await
    }
    async fn put_identity_policy(&self, record: &IdentityPolicyRecord, audit: &[AuditEvent]) -> StoreResult<()> {
        self.tick();
        self.inner.put_identity_policy(record, audit).await
    }
    async fn delete_identity_policy(&self, principal_arn: &str, name: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        self.tick();
        self.inner.delete_identity_policy(principal_arn, name, audit).await
    }
    async fn identity_policies(&self, principal_arn: &str) -> StoreResult<Vec<IdentityPolicyRecord>> {
        self.tick();
        self.inner.identity_policies(principal_arn).await
    }
    async fn create_grant(&self, grant: &GrantRecord, max_per_key: usize, audit: &[AuditEvent]) -> StoreResult<()> {
        self.tick();
        self.inner.create_grant(grant, max_per_key, audit).await
    }
    async fn grants(&self, key_id: KeyId) -> StoreResult<Vec<GrantRecord>> {
        self.tick();
        self.inner.grants(key_id).await
    }
    async fn grant(&self, grant_id: &str) -> StoreResult<Option<GrantRecord>> {
        self.tick();
        self.inner.grant(grant_id).await
    }
    async fn grants_for_retiring(&self, account: &AccountId, principal: &str) -> StoreResult<Vec<GrantRecord>> {
        self.tick();
        self.inner.grants_for_retiring(account, principal).await
    }
    async fn delete_grant(&self, grant_id: &str, audit: &[AuditEvent]) -> StoreResult<bool> {
        self.tick();
        self.inner.delete_grant(grant_id, audit).await
    }
    // Metrics and the audit trail are not counted: the trail is written in the background, in
    // batches, off the request path (the calls counted are the reads a request could wait for).
    async fn key_states(&self) -> StoreResult<Vec<(String, u64)>> {
        self.inner.key_states().await
    }
    async fn append_audit(&self, events: Arc<[AuditEvent]>) -> StoreResult<()> {
        self.inner.append_audit(events).await
    }
    async fn audit_after(&self, after_seq: u64, limit: usize) -> StoreResult<Vec<AuditRow>> {
        self.inner.audit_after(after_seq, limit).await
    }
    async fn audit_query(&self, filter: &AuditFilter) -> StoreResult<Vec<AuditRow>> {
        self.inner.audit_query(filter).await
    }
    async fn last_key_usage(&self, key_arn: &str) -> StoreResult<Option<AuditRow>> {
        self.inner.last_key_usage(key_arn).await
    }
    async fn audit_head(&self) -> StoreResult<Option<(u64, Vec<u8>)>> {
        self.inner.audit_head().await
    }
    async fn reset(&self, audit: &[AuditEvent]) -> StoreResult<()> {
        self.inner.reset(audit).await
    }
    async fn audit_seq_before(&self, cutoff: kms_core::Timestamp) -> StoreResult<Option<u64>> {
        self.inner.audit_seq_before(cutoff).await
    }
    async fn prune_audit(&self, seq: u64) -> StoreResult<u64> {
        self.inner.prune_audit(seq).await
    }
    async fn put_audit_digest(&self, digest: &AuditDigest) -> StoreResult<()> {
        self.inner.put_audit_digest(digest).await
    }
    async fn audit_digests(&self) -> StoreResult<Vec<AuditDigest>> {
        self.inner.audit_digests().await
    }
}

async fn call(svc: &Service, ctx: &RequestContext, op: Operation, body: serde_json::Value) -> serde_json::Value {
    let out = dispatch(svc, ctx, op, body.to_string().as_bytes()).await.map_err(|e| e.to_string()).unwrap();
    serde_json::from_slice(&out).unwrap()
}

fn context(principal: kms_core::policy::Principal) -> RequestContext {
    RequestContext {
        caller: Caller { principal: principal.into(), access_key_id: "AKIATEST".into(), tags: std::sync::Arc::new([]) },
        region: Region::parse("us-east-1").unwrap(),
        request_id: "r".into(),
        source_ip: std::net::IpAddr::from([127, 0, 0, 1]),
        transport: kms_server::Transport::Plain,
        source_arn: None,
        source_account: None,
        via_service: None,
        key_arn: Default::default(),
        audit: None,
    }
}

fn service(store: Arc<Counting>, dir: &std::path::Path) -> Service {
    let root_path = dir.join("root.key");
    let root = if root_path.exists() {
        kms_crypto::FileRootKey::load(&root_path).unwrap()
    } else {
        kms_crypto::FileRootKey::create(&root_path, &kms_crypto::SystemRng).unwrap()
    };
    Service::new(
        store,
        Arc::new(root),
        Arc::new(kms_server::clock::SystemClock),
        Arc::new(kms_crypto::SystemRng),
        100,
        kms_core::ids::AccountId::parse("111122223333").unwrap(),
        false,
    )
}

#[tokio::test]
async fn warm_keys_cost_no_store_calls() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Counting::new(SqliteStore::open(&dir.path().join("db")).unwrap()));
    let svc = service(store.clone(), dir.path());
    let account = AccountId::parse("111122223333").unwrap();
    let ctx = context(kms_server::principals::root_principal(&account));
    let key = call(&svc, &ctx, Operation::CreateKey, serde_json::json!({})).await;
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    call(&svc, &ctx, Operation::CreateAlias, serde_json::json!({"AliasName": "alias/hot", "TargetKeyId": key_id}))
        .await;
    let plaintext = base64::engine::general_purpose::STANDARD.encode(b"hot path");
    let encrypt = serde_json::json!({"KeyId": "alias/hot", "Plaintext": plaintext, "EncryptionContext": {"a": "b"}});
    let first = call(&svc, &ctx, Operation::Encrypt, encrypt.clone()).await;

    // Let the audit writer finish its start-up reads before counting.
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let before = store.calls.load(Ordering::SeqCst);
    for _ in 0..50 {
        let ct = call(&svc, &ctx, Operation::Encrypt, encrypt.clone()).await;
        let dec = serde_json::json!({"CiphertextBlob": ct["CiphertextBlob"], "EncryptionContext": {"a": "b"}});
        let back = call(&svc, &ctx, Operation::Decrypt, dec).await;
        assert_eq!(back["Plaintext"], plaintext);
        call(&svc, &ctx, Operation::GenerateDataKey, serde_json::json!({"KeyId": key_id, "KeySpec": "AES_256"})).await;
    }
    assert_eq!(store.calls.load(Ordering::SeqCst), before, "no store call once the key and alias are warm");

    // A fresh service over the same store reads the key once, then never again.
    let cold = service(store.clone(), dir.path());
    tokio::time::sleep(std::time::Duration::from_millis(200)).await;
    let dec = serde_json::json!({"CiphertextBlob": first["CiphertextBlob"], "EncryptionContext": {"a": "b"}});
    call(&cold, &ctx, Operation::Decrypt, dec.clone()).await;
    let warmed = store.calls.load(Ordering::SeqCst);
    for _ in 0..10 {
        call(&cold, &ctx, Operation::Decrypt, dec.clone()).await;
    }
    assert_eq!(store.calls.load(Ordering::SeqCst), warmed);

    // Disabling is seen by the next request.
    call(&svc, &ctx, Operation::DisableKey, serde_json::json!({"KeyId": key_id})).await;
    let refused = dispatch(&svc, &ctx, Operation::Encrypt, encrypt.to_string().as_bytes()).await;
    assert!(refused.unwrap_err().to_string().contains("is disabled"));
}

/// A request that reloads a key while a PutKeyPolicy commits reads the old policy; it must not
/// leave it in the cache, where it would keep allowing what the new policy revoked until the
/// entry expired (issue #20, item 5). The interleaving is forced: PutKeyPolicy is held just
/// before its write, Encrypt's reload just after reading the old policy; the write commits and
/// PutKeyPolicy returns, then the reload finishes.
#[tokio::test]
async fn a_reload_racing_a_policy_change_does_not_cache_the_old_policy() {
    let dir = tempfile::tempdir().unwrap();
    let store = Arc::new(Counting::new(SqliteStore::open(&dir.path().join("db")).unwrap()));
    let svc = Arc::new(service(store.clone(), dir.path()));
    let account = AccountId::parse("111122223333").unwrap();
    let admin = context(kms_server::principals::root_principal(&account));
    let user_arn = format!("arn:aws:iam::{account}:user/u");
    // The user exists (a key policy may name only principals that do).
    let record = kms_store::PrincipalRecord {
        arn: user_arn.clone(),
        account: account.clone(),
        kind: kms_store::PrincipalType::User,
        name: "u".into(),
        principal_id: "AIDAUSER".into(),
        trust_policy: None,
        created: kms_core::Timestamp::from_unix_millis(0),
        attributes: Default::default(),
    };
    store.create_principal(&record, &[]).await.unwrap();
    let user = Arc::new(context(kms_core::policy::Principal {
        arn: user_arn.clone(),
        account: account.clone(),
        kind: kms_core::policy::PrincipalKind::User,
        user_id: "AIDAUSER".into(),
        username: Some("u".into()),
    }));
    let statement = |sid: &str, principal: &str, action: &str| serde_json::json!({"Sid": sid, "Effect": "Allow", "Principal": {"AWS": principal}, "Action": action, "Resource": "*"});
    let root = statement("root", &format!("arn:aws:iam::{account}:root"), "kms:*");
    let with_user = serde_json::json!({"Version": "2012-10-17", "Statement": [root.clone(), statement("u", &user_arn, "kms:Encrypt")]});
    let without_user = serde_json::json!({"Version": "2012-10-17", "Statement": [root]});
    let key = call(&svc, &admin, Operation::CreateKey, serde_json::json!({"Policy": with_user.to_string()})).await;
    let key_id = key["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();
    let encrypt = serde_json::json!({"KeyId": key_id, "Plaintext": "eA=="}).to_string();
    let encrypt_as_user = {
        let (svc, user, encrypt) = (Arc::clone(&svc), Arc::clone(&user), encrypt.clone());
        move || {
            let (svc, user, encrypt) = (Arc::clone(&svc), Arc::clone(&user), encrypt.clone());
            async move { dispatch(&svc, &user, Operation::Encrypt, encrypt.as_bytes()).await.map(drop) }
        }
    };
    encrypt_as_user().await.unwrap();

    store.policy_write.armed.store(true, Ordering::SeqCst);
    store.policy_read.armed.store(true, Ordering::SeqCst);
    let change = {
        let (svc, body) = (Arc::clone(&svc), serde_json::json!({"KeyId": key_id, "Policy": without_user.to_string()}));
        tokio::spawn(async move { call(&svc, &admin, Operation::PutKeyPolicy, body).await })
    };
    store.policy_write.reached.notified().await;
    let racing = tokio::spawn(encrypt_as_user());
    store.policy_read.reached.notified().await;
    store.policy_write.release.notify_one();
    change.await.unwrap();
    store.policy_read.release.notify_one();
    // Decided with the policy it read, which was current when it read it.
    racing.await.unwrap().unwrap();

    let after = encrypt_as_user().await;
    let refusal = after.expect_err("the old policy is cached again and still allows the user").to_string();
    assert!(refusal.contains("not authorized"), "{refusal}");
}
