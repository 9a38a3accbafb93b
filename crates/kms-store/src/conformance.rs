//! The store conformance suite: every behaviour the service relies on, written once against
//! `&dyn Store` and run against each backend by that backend's tests.
//!
//! Each check uses fresh random-looking ids derived from `seed`, so the suite can run against a
//! shared database more than once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

use kms_core::Timestamp;
use kms_core::ids::{AccountId, AliasName, KeyId, MaterialId, Region};
use kms_core::key::{KeyRecord, KeyRequest, KeyState};
use kms_core::tag::Tag;

use crate::{
    AccessKeyRecord, AliasRecord, GrantRecord, IdentityPolicyRecord, KeyBundle, KeyUpdate, MaterialRecord,
    PrincipalRecord, PrincipalType, SessionRecord, Store, StoreError,
};

/// A test key: id derived from `seed` and `n`, enabled, symmetric.
pub fn key(seed: u8, n: u8, account: &str) -> KeyRecord {
    KeyRequest::symmetric_default().new_key(
        KeyId::from_bytes([seed, n, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1]),
        AccountId::parse(account).unwrap(),
        Region::parse("us-east-1").unwrap(),
        Timestamp::from_unix_millis(1_700_000_000_000),
        format!("key {n}"),
        MaterialId::from_bytes([n; 32]),
    )
}

/// An alias `name` naming `target`, in its account and region, created with it.
pub fn alias(target: &KeyRecord, name: &str) -> AliasRecord {
    AliasRecord {
        account: target.account.clone(),
        region: target.region.clone(),
        name: AliasName::parse(name).unwrap(),
        target: target.key_id,
        created: target.created,
        updated: target.created,
    }
}

/// The first material of a test key.
pub fn material(k: &KeyRecord) -> MaterialRecord {
    MaterialRecord {
        key_id: k.key_id,
        material_id: k.current_material,
        wrapped: vec![1, 2, 3],
        created: k.created,
        rotation: None,
    }
}

/// A tag.
pub fn tag(k: &str, v: &str) -> Tag {
    Tag { key: k.into(), value: v.into() }
}

/// Runs every check. `seed` must differ between runs against the same database.
pub async fn run_all(store: &dyn Store, seed: u8) {
    keys_round_trip_and_compare_and_swap(store, seed).await;
    listing_is_scoped_and_paged(store, seed).await;
    aliases_are_unique_per_account_and_region(store, seed).await;
    tags_upsert_and_limit(store, seed).await;
    policies_and_settings(store, seed).await;
    access_keys(store, seed).await;
    principals_and_identity_policies(store, seed).await;
    managed_policies(store, seed).await;
    rewrapping(store, seed).await;
    grants_are_limited_per_key(store, seed).await;
    key_bundles_hold_every_part_of_their_key(store, seed).await;
    imported_materials_come_and_go_with_their_record(store, seed).await;
}

/// A key awaiting imported material is created without material; imports add material and
/// deletions remove it, each with the key's new record (compare-and-swap), and a material's
/// expiry makes its key due.
async fn imported_materials_come_and_go_with_their_record(store: &dyn Store, seed: u8) {
    use kms_core::key::{Import, KeyRequest, Origin};
    let t0 = Timestamp::from_unix_millis(1_700_000_000_000);
    let base = key(seed, 41, "141414141414");
    let request = KeyRequest { origin: Origin::External, ..KeyRequest::symmetric_default() };
    let k = request.new_key(base.key_id, base.account, base.region, t0, String::new(), base.current_material);
    store.create_key(&k, &[], "{}", &[], &[], &[]).await.unwrap();
    assert!(store.materials(k.key_id).await.unwrap().is_empty());
    let import = |byte: u8, valid_to: Option<Timestamp>| Import {
        material: MaterialId::from_bytes([byte; 32]),
        import_type: None,
        claimed_id: None,
        description: None,
        valid_to,
    };
    let record = |id: MaterialId| MaterialRecord {
        key_id: k.key_id,
        material_id: id,
        wrapped: vec![byte_of(id); 3],
        created: t0,
        rotation: None,
    };
    let (imported, _) = k.import(t0, import(1, Some(t0.plus_days(10)))).unwrap();
    let first = imported.current_material;
    assert!(matches!(
        store.update_keys(&[update(imported.disable().unwrap(), vec![record(first)], vec![])], &[]).await,
        Err(StoreError::Conflict)
    ));
    store.update_keys(&[update(imported.clone(), vec![record(first)], vec![])], &[]).await.unwrap();
    assert_eq!(store.materials(k.key_id).await.unwrap(), vec![record(first)]);
    assert!(!store.due_keys(t0.plus_days(10).plus_millis(-1), 10).await.unwrap().contains(&k.key_id));
    assert!(store.due_keys(t0.plus_days(10), 10).await.unwrap().contains(&k.key_id));

    let (expired, gone) = imported.expire_imported(t0.plus_days(10)).unwrap();
    store.update_keys(&[update(expired.clone(), vec![], gone)], &[]).await.unwrap();
    assert!(store.materials(k.key_id).await.unwrap().is_empty());
    assert!(!store.due_keys(t0.plus_days(10), 10).await.unwrap().contains(&k.key_id));
    let (back, _) = expired.import(t0, import(1, None)).unwrap();
    store.update_keys(&[update(back.clone(), vec![record(first)], vec![])], &[]).await.unwrap();
    assert_eq!(store.key(k.key_id).await.unwrap().unwrap(), back);

    // Several keys change together or not at all: one stale record undoes the others.
    let other = key(seed, 42, "141414141414");
    store.create_key(&other, &[material(&other)], "{}", &[], &[], &[]).await.unwrap();
    let (fresh, stale) = (other.disable().unwrap(), back.disable().unwrap().disable().unwrap());
    let both = [KeyUpdate::record(fresh.clone()), KeyUpdate::record(stale)];
    assert!(matches!(store.update_keys(&both, &[]).await, Err(StoreError::Conflict)));
    assert_eq!(store.key(other.key_id).await.unwrap().unwrap(), other, "nothing changed");
    store
        .update_keys(&[KeyUpdate::record(fresh.clone()), KeyUpdate::record(back.disable().unwrap())], &[])
        .await
        .unwrap();
    assert_eq!(store.key(other.key_id).await.unwrap().unwrap(), fresh);
    // A deletion takes its updates with it.
    let updated = fresh.enable().unwrap();
    assert!(store.delete_key(k.key_id, back.revision + 1, &[KeyUpdate::record(updated.clone())], &[]).await.unwrap());
    assert_eq!(store.key(other.key_id).await.unwrap().unwrap(), updated);
    assert!(store.key(k.key_id).await.unwrap().is_none());
}

fn update(key: KeyRecord, add: Vec<MaterialRecord>, remove: Vec<MaterialId>) -> KeyUpdate {
    KeyUpdate { key, add, remove }
}

fn byte_of(id: MaterialId) -> u8 {
    id.as_bytes()[0]
}

/// Reset (run after everything else, on a store holding what [`run_all`] left): every key,
/// alias, grant, tag, policy and principal goes, but each account's admin user with its
/// long-term access key and AdministratorAccess policy, the settings and the audit trail stay.
pub async fn run_reset(store: &dyn Store) {
    let account = AccountId::parse("777777777777").unwrap();
    let admin = PrincipalRecord {
        arn: format!("arn:aws:iam::{account}:user/admin"),
        account: account.clone(),
        kind: PrincipalType::User,
        name: "admin".into(),
        principal_id: "AIDARESETADMIN".into(),
        trust_policy: None,
        created: Timestamp::from_unix_millis(1),
        attributes: Default::default(),
    };
    let user = PrincipalRecord {
        arn: format!("arn:aws:iam::{account}:user/tester"),
        name: "tester".into(),
        principal_id: "AIDARESETTESTER".into(),
        ..admin.clone()
    };
    for p in [&admin, &user] {
        store.create_principal(p, &[]).await.unwrap();
    }
    let everything = r#"{"Statement":[]}"#;
    let admin_policy = IdentityPolicyRecord {
        principal_arn: admin.arn.clone(),
        name: "AdministratorAccess".into(),
        document: everything.into(),
    };
    let other_policy = IdentityPolicyRecord { name: "extra".into(), ..admin_policy.clone() };
    let user_policy = IdentityPolicyRecord { principal_arn: user.arn.clone(), ..admin_policy.clone() };
    for p in [&admin_policy, &other_policy, &user_policy] {
        store.put_identity_policy(p, &[]).await.unwrap();
    }
    let admin_key = AccessKeyRecord {
        access_key_id: "AKIARESETADMIN000000".into(),
        account: account.clone(),
        principal_arn: admin.arn.clone(),
        wrapped_secret: vec![1],
        created: Timestamp::from_unix_millis(1),
        session: None,
        active: true,
        last_used: None,
    };
    let user_key = AccessKeyRecord {
        access_key_id: "AKIARESETTESTER00000".into(),
        principal_arn: user.arn.clone(),
        ..admin_key.clone()
    };
    for k in [&admin_key, &user_key] {
        store.create_access_key(k, &[]).await.unwrap();
    }
    let k = key(200, 1, account.as_str());
    store.create_key(&k, &[material(&k)], "{}", &[tag("a", "1")], &[], &[]).await.unwrap();
    store.init_setting("reset-conformance", "kept").await.unwrap();
    let before = head_seq(store).await;

    store.reset(&[event(9_000, "Reset", None, None)]).await.unwrap();

    assert!(store.key(k.key_id).await.unwrap().is_none());
    assert!(store.tags(k.key_id).await.unwrap().is_empty());
    assert_eq!(store.list_principals(&account).await.unwrap(), vec![admin.clone()]);
    assert!(store.principal(&user.arn).await.unwrap().is_none());
    assert_eq!(store.identity_policies(&admin.arn).await.unwrap(), vec![admin_policy]);
    assert_eq!(store.access_key(&admin_key.access_key_id).await.unwrap(), Some(admin_key));
    assert!(store.access_key(&user_key.access_key_id).await.unwrap().is_none());
    assert_eq!(store.setting("reset-conformance").await.unwrap().as_deref(), Some("kept"));
    assert!(head_seq(store).await > before, "the reset is recorded in the audit trail");
}

async fn head_seq(store: &dyn Store) -> u64 {
    store.audit_head().await.unwrap().map_or(0, |(seq, _)| seq)
}

async fn keys_round_trip_and_compare_and_swap(store: &dyn Store, seed: u8) {
    let k = key(seed, 1, "111111111111");
    store.create_key(&k, &[material(&k)], "{}", &[tag("a", "1")], &[], &[]).await.unwrap();
    assert_eq!(store.key(k.key_id).await.unwrap().as_ref(), Some(&k));
    assert!(matches!(store.create_key(&k, &[material(&k)], "{}", &[], &[], &[]).await, Err(StoreError::AlreadyExists)));
    let disabled = k.disable().unwrap();
    store.update_key(&disabled, &[]).await.unwrap();
    assert_eq!(store.key(k.key_id).await.unwrap().unwrap().state, KeyState::Disabled);
    // A writer that read the old revision loses.
    let stale = k.enable().unwrap();
    assert!(matches!(store.update_key(&stale, &[]).await, Err(StoreError::Conflict)));
    let ghost = key(seed, 99, "111111111111").disable().unwrap();
    assert!(matches!(store.update_key(&ghost, &[]).await, Err(StoreError::NotFound)));
    assert_eq!(store.materials(k.key_id).await.unwrap(), vec![material(&k)]);
    assert!(store.key(key(seed, 98, "111111111111").key_id).await.unwrap().is_none());
    // Rotation: the new record and its new material land together, compare-and-swap as updates.
    let k = key(seed, 3, "111111111111");
    store.create_key(&k, &[material(&k)], "{}", &[], &[], &[]).await.unwrap();
    let current = store.key(k.key_id).await.unwrap().unwrap();
    let new_material = MaterialId::from_bytes([seed.wrapping_add(100); 32]);
    let rotated = current
        .rotate(Timestamp::from_unix_millis(1_700_000_100_000), new_material, kms_core::key::RotationKind::OnDemand)
        .unwrap();
    let material_record = MaterialRecord {
        key_id: k.key_id,
        material_id: new_material,
        wrapped: vec![4, 5, 6],
        created: Timestamp::from_unix_millis(1_700_000_100_000),
        rotation: Some(kms_core::key::RotationKind::OnDemand),
    };
    let stale = rotated.disable().unwrap();
    let stale_update = update(stale, vec![material_record.clone()], vec![]);
    assert!(matches!(store.update_keys(&[stale_update], &[]).await, Err(StoreError::Conflict)));
    store.update_keys(&[update(rotated.clone(), vec![material_record.clone()], vec![])], &[]).await.unwrap();
    let materials = store.materials(k.key_id).await.unwrap();
    assert_eq!(materials.len(), 2);
    assert_eq!(materials[1], material_record);
    assert_eq!(materials[0].rotation, None);
    assert_eq!(store.key(k.key_id).await.unwrap().unwrap().current_material, new_material);
    let states = store.key_states().await.unwrap();
    assert!(states.iter().any(|(s, n)| s == "Disabled" && *n >= 1), "{states:?}");
}

async fn listing_is_scoped_and_paged(store: &dyn Store, seed: u8) {
    let account = format!("2222222222{seed:02}");
    let account = &account[account.len() - 12..];
    for n in 10..15 {
        let k = key(seed, n, account);
        store.create_key(&k, &[material(&k)], "{}", &[], &[], &[]).await.unwrap();
    }
    let other = key(seed, 20, "333333333333");
    store.create_key(&other, &[material(&other)], "{}", &[], &[], &[]).await.unwrap();
    let acct = AccountId::parse(account).unwrap();
    let region = Region::parse("us-east-1").unwrap();
    let first = store.list_keys(&acct, &region, None, 3).await.unwrap();
    assert_eq!(first.len(), 3);
    let rest = store.list_keys(&acct, &region, first.last().copied(), 100).await.unwrap();
    assert_eq!(rest.len(), 2);
    assert!(!first.iter().chain(&rest).any(|id| *id == other.key_id));
    let elsewhere = store.list_keys(&acct, &Region::parse("eu-west-1").unwrap(), None, 100).await.unwrap();
    assert!(elsewhere.is_empty());
}

async fn aliases_are_unique_per_account_and_region(store: &dyn Store, seed: u8) {
    let k = key(seed, 30, "444444444444");
    let k2 = key(seed, 31, "444444444444");
    for x in [&k, &k2] {
        store.create_key(x, &[material(x)], "{}", &[], &[], &[]).await.unwrap();
    }
    let alias = alias(&k, &format!("alias/app-{seed}"));
    let name = alias.name.clone();
    store.create_alias(&alias, &[]).await.unwrap();
    assert!(matches!(store.create_alias(&alias, &[]).await, Err(StoreError::AlreadyExists)));
    let other_region = AliasRecord { region: Region::parse("eu-west-1").unwrap(), ..alias.clone() };
    store.create_alias(&other_region, &[]).await.unwrap();
    let moved = AliasRecord { target: k2.key_id, updated: k.created.plus_days(1), ..alias.clone() };
    store.update_alias(&moved, &[]).await.unwrap();
    assert_eq!(store.alias(&k.account, &k.region, &name).await.unwrap(), Some(moved.clone()));
    let by_key = store.list_aliases(&k.account, &k.region, Some(k2.key_id), None, 10).await.unwrap();
    assert_eq!(by_key, vec![moved]);
    assert!(store.list_aliases(&k.account, &k.region, Some(k.key_id), None, 10).await.unwrap().is_empty());
    assert!(store.delete_alias(&k.account, &k.region, &name, &[]).await.unwrap());
    assert!(!store.delete_alias(&k.account, &k.region, &name, &[]).await.unwrap());
    assert!(matches!(store.update_alias(&alias, &[]).await, Err(StoreError::NotFound)));
    assert!(store.alias(&k.account, &other_region.region, &name).await.unwrap().is_some());
}

async fn tags_upsert_and_limit(store: &dyn Store, seed: u8) {
    let k = key(seed, 40, "555555555555");
    store.create_key(&k, &[material(&k)], "{}", &[tag("b", "1")], &[], &[]).await.unwrap();
    store.put_tags(k.key_id, &[tag("a", "x"), tag("b", "2")], 3, &[]).await.unwrap();
    assert_eq!(store.tags(k.key_id).await.unwrap(), vec![tag("a", "x"), tag("b", "2")]);
    let err = store.put_tags(k.key_id, &[tag("c", ""), tag("d", "")], 3, &[]).await;
    assert!(matches!(err, Err(StoreError::LimitExceeded(3))));
    assert_eq!(store.tags(k.key_id).await.unwrap().len(), 2, "a refused put changes nothing");
    store.remove_tags(k.key_id, &["a".into(), "zz".into()], &[]).await.unwrap();
    assert_eq!(store.tags(k.key_id).await.unwrap(), vec![tag("b", "2")]);
}

async fn policies_and_settings(store: &dyn Store, seed: u8) {
    let k = key(seed, 50, "666666666666");
    store.create_key(&k, &[material(&k)], "{\"v\":1}", &[], &[], &[]).await.unwrap();
    assert_eq!(store.policy(k.key_id).await.unwrap().as_deref(), Some("{\"v\":1}"));
    store.put_policy(k.key_id, "{\"v\":2}", &[]).await.unwrap();
    assert_eq!(store.policy(k.key_id).await.unwrap().as_deref(), Some("{\"v\":2}"));
    let name = format!("conformance-{seed}");
    assert!(store.init_setting(&name, "a").await.unwrap());
    assert!(!store.init_setting(&name, "b").await.unwrap());
    assert_eq!(store.setting(&name).await.unwrap().as_deref(), Some("a"));
    store.set_setting(&name, "c").await.unwrap();
    assert_eq!(store.setting(&name).await.unwrap().as_deref(), Some("c"));
}

async fn access_keys(store: &dyn Store, seed: u8) {
    let record = AccessKeyRecord {
        access_key_id: format!("AKIACONFORMANCE{seed:05}"),
        account: AccountId::parse("777777777777").unwrap(),
        principal_arn: format!("arn:aws:iam::777777777777:user/admin{seed}"),
        wrapped_secret: vec![9; 40],
        created: Timestamp::from_unix_millis(1),
        session: None,
        active: true,
        last_used: None,
    };
    store.create_access_key(&record, &[]).await.unwrap();
    assert!(matches!(store.create_access_key(&record, &[]).await, Err(StoreError::AlreadyExists)));
    assert_eq!(store.access_key(&record.access_key_id).await.unwrap(), Some(record.clone()));
    assert!(store.access_key("AKIANOSUCHKEY0000000").await.unwrap().is_none());
    let temporary = AccessKeyRecord {
        access_key_id: format!("ASIACONFORMANCE{seed:05}"),
        session: Some(SessionRecord {
            session_name: "job-1".into(),
            token_digest: vec![7; 32],
            expires: Timestamp::from_unix_millis(3_600_000),
            tags: vec![crate::PrincipalTag { key: "project".into(), value: "x".into() }],
        }),
        ..record.clone()
    };
    store.create_access_key(&temporary, &[]).await.unwrap();
    assert_eq!(store.access_key(&temporary.access_key_id).await.unwrap(), Some(temporary.clone()));
    assert_eq!(store.access_keys_of(&record.principal_arn).await.unwrap().len(), 2);
    assert!(store.delete_access_key(&temporary.access_key_id, &[]).await.unwrap());
    assert!(!store.delete_access_key(&temporary.access_key_id, &[]).await.unwrap());
}

/// What a root-key rotation walks and replaces: every material and access key, in order, each
/// replaced only if still wrapped as read.
async fn rewrapping(store: &dyn Store, seed: u8) {
    let account = format!("6666666666{seed:02}");
    let k = key(seed, 150, &account);
    store.create_key(&k, &[material(&k)], "{}", &[], &[], &[]).await.unwrap();
    let mut all = Vec::new();
    let mut after = None;
    loop {
        let page = store.materials_after(after, 3).await.unwrap();
        let Some(last) = page.last() else { break };
        after = Some((last.key_id, last.material_id));
        all.extend(page);
    }
    let mine = all.iter().find(|m| m.key_id == k.key_id).unwrap();
    assert_eq!(mine.wrapped, vec![1, 2, 3]);
    let ordered: Vec<(String, Vec<u8>)> =
        all.iter().map(|m| (m.key_id.storage(), m.material_id.as_bytes().to_vec())).collect();
    assert!(ordered.windows(2).all(|w| w[0] < w[1]), "in key and material order, each once");
    assert!(!store.rewrap_material(k.key_id, k.current_material, &[9], &[4, 5]).await.unwrap(), "not as read");
    assert!(store.rewrap_material(k.key_id, k.current_material, &[1, 2, 3], &[4, 5]).await.unwrap());
    assert_eq!(store.materials(k.key_id).await.unwrap()[0].wrapped, vec![4, 5]);
    let principal = PrincipalRecord {
        arn: format!("arn:aws:iam::{account}:user/rewrap"),
        account: AccountId::parse(&account).unwrap(),
        kind: PrincipalType::User,
        name: "rewrap".into(),
        principal_id: format!("AIDAREWRAP{seed:05}"),
        trust_policy: None,
        created: Timestamp::from_unix_millis(1),
        attributes: Default::default(),
    };
    store.create_principal(&principal, &[]).await.unwrap();
    let access = AccessKeyRecord {
        access_key_id: format!("AKIAREWRAP{seed:010}"),
        account: principal.account.clone(),
        principal_arn: principal.arn.clone(),
        wrapped_secret: vec![7],
        created: Timestamp::from_unix_millis(1),
        session: None,
        active: true,
        last_used: None,
    };
    store.create_access_key(&access, &[]).await.unwrap();
    let listed = store.access_keys_after("", 10_000).await.unwrap();
    assert!(listed.iter().any(|a| a.access_key_id == access.access_key_id));
    let after_it = store.access_keys_after(&access.access_key_id, 10_000).await.unwrap();
    assert!(after_it.iter().all(|a| a.access_key_id > access.access_key_id));
    assert!(!store.rewrap_access_key(&access.access_key_id, &[8], &[9]).await.unwrap());
    assert!(store.rewrap_access_key(&access.access_key_id, &[7], &[9]).await.unwrap());
    assert_eq!(store.access_key(&access.access_key_id).await.unwrap().unwrap().wrapped_secret, vec![9]);
}

/// Managed policies: unique names per account, replaced only at the revision read, deleted once.
async fn managed_policies(store: &dyn Store, seed: u8) {
    use crate::{ManagedPolicyRecord, PolicyVersionRecord};
    let account = AccountId::parse(&format!("7777777777{seed:02}")).unwrap();
    let v1 =
        PolicyVersionRecord { id: "v1".into(), document: "{\"a\":1}".into(), created: Timestamp::from_unix_millis(1) };
    let policy = ManagedPolicyRecord {
        arn: format!("arn:aws:iam::{account}:policy/team/read"),
        account: account.clone(),
        name: "read".into(),
        policy_id: format!("ANPACONFORMANCE{seed:05}"),
        path: "/team/".into(),
        description: Some("reads".into()),
        created: Timestamp::from_unix_millis(1),
        updated: Timestamp::from_unix_millis(1),
        default_version: "v1".into(),
        next_version: 2,
        versions: vec![v1.clone()],
        tags: Vec::new(),
        revision: 0,
    };
    store.create_managed_policy(&policy, &[]).await.unwrap();
    let same_name = ManagedPolicyRecord { arn: format!("arn:aws:iam::{account}:policy/read"), ..policy.clone() };
    assert!(matches!(store.create_managed_policy(&same_name, &[]).await, Err(StoreError::AlreadyExists)));
    let read = store.managed_policy(&policy.arn).await.unwrap().unwrap();
    assert_eq!(read.revision, 1);
    assert_eq!(ManagedPolicyRecord { revision: 0, ..read.clone() }, policy);
    assert_eq!(read.default_document(), Some("{\"a\":1}"));
    let v2 = PolicyVersionRecord { id: "v2".into(), document: "{\"a\":2}".into(), ..v1 };
    let changed = ManagedPolicyRecord {
        versions: vec![policy.versions[0].clone(), v2],
        default_version: "v2".into(),
        ..read.clone()
    };
    store.update_managed_policy(&changed, &[]).await.unwrap();
    // A writer that read the old revision is refused, not lost.
    assert!(matches!(store.update_managed_policy(&changed, &[]).await, Err(StoreError::Conflict)));
    let now = store.managed_policy(&policy.arn).await.unwrap().unwrap();
    assert_eq!((now.revision, now.default_document()), (2, Some("{\"a\":2}")));
    assert_eq!(store.managed_policies(&account).await.unwrap().len(), 1);
    assert!(store.delete_managed_policy(&policy.arn, &[]).await.unwrap());
    assert!(!store.delete_managed_policy(&policy.arn, &[]).await.unwrap());
    assert!(matches!(store.update_managed_policy(&now, &[]).await, Err(StoreError::NotFound)));
    assert!(store.managed_policies(&account).await.unwrap().is_empty());
}

async fn principals_and_identity_policies(store: &dyn Store, seed: u8) {
    let account = AccountId::parse(&format!("8888888888{seed:02}")).unwrap();
    let user = PrincipalRecord {
        arn: format!("arn:aws:iam::{account}:user/alice"),
        account: account.clone(),
        kind: PrincipalType::User,
        name: "alice".into(),
        principal_id: format!("AIDACONFORMANCE{seed:05}"),
        trust_policy: None,
        created: Timestamp::from_unix_millis(5),
        attributes: Default::default(),
    };
    store.create_principal(&user, &[]).await.unwrap();
    assert!(matches!(store.create_principal(&user, &[]).await, Err(StoreError::AlreadyExists)));
    let role = PrincipalRecord {
        arn: format!("arn:aws:iam::{account}:role/deployer"),
        kind: PrincipalType::Role,
        name: "deployer".into(),
        principal_id: format!("AROACONFORMANCE{seed:05}"),
        trust_policy: Some("{}".into()),
        ..user.clone()
    };
    store.create_principal(&role, &[]).await.unwrap();
    assert_eq!(store.principal(&role.arn).await.unwrap(), Some(role.clone()));
    assert_eq!(store.list_principals(&account).await.unwrap().len(), 2);
    // By name, whatever the path; the IAM attributes round-trip; updates need the principal.
    let found = store.principal_by_name(&account, PrincipalType::Role, "deployer").await.unwrap();
    assert_eq!(found, Some(role.clone()));
    assert!(store.principal_by_name(&account, PrincipalType::User, "deployer").await.unwrap().is_none());
    let described = PrincipalRecord {
        trust_policy: Some("{\"v\":2}".into()),
        attributes: crate::PrincipalAttributes {
            path: Some("/ops/".into()),
            description: Some("deploys".into()),
            max_session_duration: Some(7200),
            tags: vec![crate::PrincipalTag { key: "team".into(), value: "blue".into() }],
            attached_policies: vec![format!("arn:aws:iam::{account}:policy/p")],
            groups: vec!["ops".into()],
            oidc: None,
        },
        ..role.clone()
    };
    assert!(store.update_principal(&described, &[]).await.unwrap());
    assert_eq!(store.principal(&role.arn).await.unwrap(), Some(described.clone()));
    let nobody = PrincipalRecord { arn: format!("arn:aws:iam::{account}:role/nobody"), ..described.clone() };
    assert!(!store.update_principal(&nobody, &[]).await.unwrap());
    assert!(store.update_principal(&role, &[]).await.unwrap(), "back to no attributes");
    assert_eq!(store.principal(&role.arn).await.unwrap(), Some(role.clone()));
    // A renamed user keeps its id, keys and policies; the old ARN names nothing.
    let carol = PrincipalRecord {
        arn: format!("arn:aws:iam::{account}:user/carol"),
        name: "carol".into(),
        principal_id: format!("AIDACAROL{seed:05}"),
        ..user.clone()
    };
    store.create_principal(&carol, &[]).await.unwrap();
    let carol_key = AccessKeyRecord {
        access_key_id: format!("AKIACAROL{seed:011}"),
        account: account.clone(),
        principal_arn: carol.arn.clone(),
        wrapped_secret: vec![1],
        created: Timestamp::from_unix_millis(1),
        session: None,
        active: true,
        last_used: None,
    };
    store.create_access_key(&carol_key, &[]).await.unwrap();
    let carol_policy =
        IdentityPolicyRecord { principal_arn: carol.arn.clone(), name: "p".into(), document: "{}".into() };
    store.put_identity_policy(&carol_policy, &[]).await.unwrap();
    let renamed = PrincipalRecord {
        arn: format!("arn:aws:iam::{account}:user/ops/caroline"),
        name: "caroline".into(),
        attributes: crate::PrincipalAttributes { path: Some("/ops/".into()), ..Default::default() },
        ..carol.clone()
    };
    let taken = PrincipalRecord { name: "alice".into(), ..renamed.clone() };
    assert!(store.rename_principal(&carol.arn, &taken, &[]).await.is_err(), "alice is taken");
    assert!(store.rename_principal(&carol.arn, &renamed, &[]).await.unwrap());
    assert!(store.principal(&carol.arn).await.unwrap().is_none());
    assert_eq!(store.principal(&renamed.arn).await.unwrap(), Some(renamed.clone()));
    assert_eq!(store.access_key(&carol_key.access_key_id).await.unwrap().unwrap().principal_arn, renamed.arn);
    assert_eq!(store.identity_policies(&renamed.arn).await.unwrap().len(), 1);
    assert!(!store.rename_principal(&carol.arn, &renamed, &[]).await.unwrap(), "gone");
    assert!(store.delete_principal(&renamed.arn, &[]).await.unwrap());
    let policy =
        IdentityPolicyRecord { principal_arn: user.arn.clone(), name: "p".into(), document: "{\"a\":1}".into() };
    store.put_identity_policy(&policy, &[]).await.unwrap();
    let replaced = IdentityPolicyRecord { document: "{\"a\":2}".into(), ..policy.clone() };
    store.put_identity_policy(&replaced, &[]).await.unwrap();
    assert_eq!(store.identity_policies(&user.arn).await.unwrap(), vec![replaced]);
    let orphan = IdentityPolicyRecord { principal_arn: "arn:aws:iam::000000000000:user/none".into(), ..policy.clone() };
    assert!(matches!(store.put_identity_policy(&orphan, &[]).await, Err(StoreError::NotFound)));
    let key = AccessKeyRecord {
        access_key_id: format!("AKIAALICE{seed:011}"),
        account: account.clone(),
        principal_arn: user.arn.clone(),
        wrapped_secret: vec![1],
        created: Timestamp::from_unix_millis(1),
        session: None,
        active: true,
        last_used: None,
    };
    store.create_access_key(&key, &[]).await.unwrap();
    assert!(store.set_access_key_active(&key.access_key_id, false, &[]).await.unwrap());
    assert!(!store.access_key(&key.access_key_id).await.unwrap().unwrap().active);
    assert!(store.set_access_key_active(&key.access_key_id, true, &[]).await.unwrap());
    assert!(store.access_key(&key.access_key_id).await.unwrap().unwrap().active);
    assert!(!store.set_access_key_active("AKIANOSUCHKEY0000000", false, &[]).await.unwrap());
    let used =
        crate::KeyUse { time: Timestamp::from_unix_millis(42), service: "kms".into(), region: "eu-west-1".into() };
    store.record_key_use(&key.access_key_id, &used).await.unwrap();
    assert_eq!(store.access_key(&key.access_key_id).await.unwrap().unwrap().last_used, Some(used));
    // A key policy and a trust policy naming alice by ARN; a similar ARN that is not hers.
    let named = format!(r#"{{"Statement":[{{"Principal":{{"AWS":["{}","{}x"]}}}}]}}"#, user.arn, user.arn);
    let k = self::key(seed, 90, account.as_str());
    store.create_key(&k, &[material(&k)], &named, &[], &[], &[]).await.unwrap();
    let trusting = PrincipalRecord {
        arn: format!("arn:aws:iam::{account}:role/trusting"),
        name: "trusting".into(),
        principal_id: format!("AROATRUSTING{seed:05}"),
        trust_policy: Some(named.clone()),
        ..role.clone()
    };
    store.create_principal(&trusting, &[]).await.unwrap();
    assert!(store.delete_principal(&user.arn, &[]).await.unwrap());
    assert!(store.access_key(&key.access_key_id).await.unwrap().is_none(), "keys go with their principal");
    // Statements naming alice now name her unique id; the look-alike ARN is untouched.
    let rebound = named.replace(&format!("\"{}\"", user.arn), &format!("\"{}\"", user.principal_id));
    assert_eq!(store.policy(k.key_id).await.unwrap().as_deref(), Some(rebound.as_str()));
    assert_eq!(store.principal(&trusting.arn).await.unwrap().unwrap().trust_policy.as_deref(), Some(rebound.as_str()));
    assert!(store.identity_policies(&user.arn).await.unwrap().is_empty());
    assert!(!store.delete_principal(&user.arn, &[]).await.unwrap());
}

async fn grants_are_limited_per_key(store: &dyn Store, seed: u8) {
    let k = key(seed, 60, "999999999999");
    store.create_key(&k, &[material(&k)], "{}", &[], &[], &[]).await.unwrap();
    let grant = |n: u8| GrantRecord {
        grantee_id: None,
        grant_id: format!("{seed:02x}{n:02x}{}", "0".repeat(60)),
        key_id: k.key_id,
        account: k.account.clone(),
        region: k.region.clone(),
        name: None,
        grantee_principal: "arn:aws:iam::999999999999:role/app".into(),
        retiring_principal: Some(format!("arn:aws:iam::999999999999:role/ops{seed}")),
        grantee_service_principal: None,
        retiring_service_principal: None,
        source_arn: None,
        operations: vec!["Decrypt".into()],
        context_equals: None,
        context_subset: Some([("tenant".to_owned(), "a".to_owned())].into_iter().collect()),
        issuing_principal: "arn:aws:iam::999999999999:root".into(),
        created: Timestamp::from_unix_millis(9),
    };
    store.create_grant(&grant(1), 2, &[]).await.unwrap();
    store.create_grant(&grant(2), 2, &[]).await.unwrap();
    assert!(matches!(store.create_grant(&grant(3), 2, &[]).await, Err(StoreError::LimitExceeded(2))));
    assert_eq!(store.grants(k.key_id).await.unwrap(), vec![grant(1), grant(2)]);
    assert_eq!(store.grant(&grant(2).grant_id).await.unwrap(), Some(grant(2)));
    let ops = format!("arn:aws:iam::999999999999:role/ops{seed}");
    let retirable = store.grants_for_retiring(&k.account, &ops).await.unwrap();
    assert_eq!(retirable.len(), 2);
    assert!(store.delete_grant(&grant(1).grant_id, &[]).await.unwrap());
    assert!(!store.delete_grant(&grant(1).grant_id, &[]).await.unwrap());
    store.create_grant(&grant(3), 2, &[]).await.unwrap();
}

/// A key's bundle is what the single reads give for it, aliases of other keys left out; an
/// unknown key has none.
async fn key_bundles_hold_every_part_of_their_key(store: &dyn Store, seed: u8) {
    let k = key(seed, 70, "777777777777");
    let other = key(seed, 71, "777777777777");
    store
        .create_key(&k, &[material(&k)], r#"{"Statement":[]}"#, &[tag("b", "2"), tag("a", "1")], &[], &[])
        .await
        .unwrap();
    store.create_key(&other, &[material(&other)], "{}", &[tag("c", "3")], &[], &[]).await.unwrap();
    for (name, target) in [("zeta", &k), ("alpha", &k), ("other", &other)] {
        store.create_alias(&alias(target, &format!("alias/bundle-{seed}-{name}")), &[]).await.unwrap();
    }
    let grant = GrantRecord {
        grantee_id: None,
        grant_id: format!("{seed:02x}b1{}", "0".repeat(60)),
        key_id: k.key_id,
        account: k.account.clone(),
        region: k.region.clone(),
        name: Some("bundle".into()),
        grantee_principal: "arn:aws:iam::777777777777:role/app".into(),
        retiring_principal: None,
        grantee_service_principal: None,
        retiring_service_principal: None,
        source_arn: None,
        operations: vec!["Encrypt".into()],
        context_equals: None,
        context_subset: None,
        issuing_principal: "arn:aws:iam::777777777777:root".into(),
        created: Timestamp::from_unix_millis(7),
    };
    store.create_grant(&grant, 10, &[]).await.unwrap();

    let bundle = store.key_bundle(k.key_id).await.unwrap().unwrap();
    let aliases = store.list_aliases(&k.account, &k.region, Some(k.key_id), None, 100).await.unwrap();
    assert_eq!(aliases.len(), 2);
    let expected = KeyBundle {
        record: store.key(k.key_id).await.unwrap().unwrap(),
        materials: store.materials(k.key_id).await.unwrap(),
        policy: store.policy(k.key_id).await.unwrap(),
        grants: store.grants(k.key_id).await.unwrap(),
        tags: store.tags(k.key_id).await.unwrap(),
        aliases,
    };
    assert_eq!(bundle, expected);
    assert_eq!(bundle.policy.as_deref(), Some(r#"{"Statement":[]}"#));
    assert_eq!(bundle.tags, vec![tag("a", "1"), tag("b", "2")]);
    assert_eq!(bundle.grants, vec![grant]);
    let names: Vec<String> = bundle.aliases.iter().map(|a| a.name.to_string()).collect();
    assert_eq!(names, vec![format!("alias/bundle-{seed}-alpha"), format!("alias/bundle-{seed}-zeta")]);
    assert!(store.key_bundle(key(seed, 72, "777777777777").key_id).await.unwrap().is_none());
}

/// A test audit event numbered `n`.
pub fn event(n: u64, name: &str, key: Option<&str>, error: Option<&str>) -> kms_core::audit::AuditEvent {
    kms_core::audit::AuditEvent {
        event_id: format!("event-{n}"),
        time: Timestamp::from_unix_millis(1_700_000_000_000 + i64::try_from(n).unwrap() * 1000),
        event_name: name.into(),
        key_arn: key.map(str::to_owned),
        other_key_arn: None,
        principal: "arn:aws:iam::111122223333:user/alice".into(),
        error_code: error.map(str::to_owned),
        record: serde_json::json!({"eventName": name, "n": n}).to_string(),
    }
}

/// Due work and deletion for the scheduler. Needs a fresh database (due keys are global).
async fn scheduler_queries(store: &dyn Store) {
    let t0 = Timestamp::from_unix_millis(1_800_000_000_000);
    let rotating = key(200, 1, "121212121212").enable_rotation(t0, 90).unwrap();
    let doomed = key(200, 2, "121212121212").schedule_deletion(t0, 7).unwrap();
    let idle = key(200, 3, "121212121212");
    for k in [&rotating, &doomed, &idle] {
        store.create_key(k, &[material(k)], "{}", &[tag("t", "v")], &[], &[]).await.unwrap();
    }
    let alias = AliasRecord {
        account: doomed.account.clone(),
        region: doomed.region.clone(),
        name: AliasName::parse("alias/doomed").unwrap(),
        target: doomed.key_id,
        created: t0,
        updated: t0,
    };
    store.create_alias(&alias, &[]).await.unwrap();
    assert!(store.due_keys(t0.plus_days(7).plus_millis(-1), 10).await.unwrap().is_empty());
    assert_eq!(store.due_keys(t0.plus_days(7), 10).await.unwrap(), vec![doomed.key_id]);
    let mut due = store.due_keys(t0.plus_days(90), 10).await.unwrap();
    due.sort();
    let mut expected = vec![rotating.key_id, doomed.key_id];
    expected.sort();
    assert_eq!(due, expected);
    assert_eq!(store.due_keys(t0.plus_days(90), 1).await.unwrap().len(), 1);

    let before = store.audit_head().await.unwrap().map_or(0, |(s, _)| s);
    assert!(
        !store
            .delete_key(doomed.key_id, doomed.revision + 1, &[], &[event(90, "DeleteKey", None, None)])
            .await
            .unwrap()
    );
    assert_eq!(store.audit_head().await.unwrap().map_or(0, |(s, _)| s), before, "a stale delete records nothing");
    assert!(
        store.delete_key(doomed.key_id, doomed.revision, &[], &[event(91, "DeleteKey", None, None)]).await.unwrap()
    );
    assert_eq!(store.audit_head().await.unwrap().map_or(0, |(s, _)| s), before + 1);
    assert!(store.key(doomed.key_id).await.unwrap().is_none());
    assert!(store.materials(doomed.key_id).await.unwrap().is_empty());
    assert!(store.tags(doomed.key_id).await.unwrap().is_empty());
    assert!(store.policy(doomed.key_id).await.unwrap().is_none());
    assert!(store.alias(&alias.account, &alias.region, &alias.name).await.unwrap().is_none());
    assert!(store.key(idle.key_id).await.unwrap().is_some(), "other keys are untouched");
    assert!(!store.due_keys(t0.plus_days(90), 10).await.unwrap().contains(&doomed.key_id));
}

/// The audit trail: appended in order and chained, queried, verified. Needs a fresh database
/// (the chain is global).
pub async fn run_audit(store: &dyn Store) {
    audit_chain(store).await;
    scheduler_queries(store).await;
}

/// Queries and pruning over many appends of several events each (a store may keep each
/// append together, so answers must not depend on where one append ends and the next starts).
/// Needs a fresh database (it prunes the chain).
pub async fn run_audit_across_batches(store: &dyn Store) {
    use crate::audit::{AuditFilter, verify_run};
    let k1 = "arn:aws:kms:us-east-1:111122223333:key/batch-1";
    let k2 = "arn:aws:kms:us-east-1:111122223333:key/batch-2";
    let start = store.audit_head().await.unwrap().map_or(0, |(s, _)| s);
    // Ten appends of ten events: k1 in even appends, k2 in every third event.
    for batch in 0..10_u64 {
        let events: Vec<_> = (0..10_u64)
            .map(|i| {
                let n = 100 + batch * 10 + i;
                let key = if i % 3 == 0 {
                    k2
                } else if batch % 2 == 0 {
                    k1
                } else {
                    ""
                };
                event(n, if i == 9 { "Decrypt" } else { "Encrypt" }, (!key.is_empty()).then_some(key), None)
            })
            .collect();
        store.append_audit(events.into()).await.unwrap();
    }
    let all = store.audit_after(start, 1000).await.unwrap();
    assert_eq!(all.len(), 100);
    assert_eq!(
        store.audit_after(start + 15, 30).await.unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(),
        (start + 16..=start + 45).collect::<Vec<_>>(),
        "a page starting and ending inside appends"
    );
    let newest_k1 = AuditFilter { key_arn: Some(k1.into()), limit: 7, ..AuditFilter::default() };
    let expected: Vec<u64> =
        all.iter().rev().filter(|r| r.key_arn.as_deref() == Some(k1)).take(7).map(|r| r.seq).collect();
    assert_eq!(store.audit_query(&newest_k1).await.unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(), expected);
    let decrypts = AuditFilter {
        event_name: Some("Decrypt".into()),
        from: Some(all[0].time),
        limit: 100,
        ..AuditFilter::default()
    };
    assert_eq!(store.audit_query(&decrypts).await.unwrap().len(), 10);
    assert_eq!(store.last_key_usage(k2).await.unwrap().unwrap().seq, start + 100, "the last event of the last append");

    // Pruning removes exactly the records before the number given, including part of an append.
    let before = all[34].seq;
    let removed = store.prune_audit(before).await.unwrap();
    assert_eq!(removed, before - start - 1);
    let left = store.audit_after(0, 1000).await.unwrap();
    assert_eq!(left.first().map(|r| r.seq), Some(before), "the first record left is the one pruning stopped at");
    assert_eq!(left.len(), 66);
    verify_run(Some((all[33].seq, &all[33].hash)), &left).unwrap();
    assert_eq!(store.prune_audit(before).await.unwrap(), 0, "pruning again removes nothing");
    let still = store
        .audit_query(&AuditFilter { key_arn: Some(k2.into()), limit: 1000, ..AuditFilter::default() })
        .await
        .unwrap();
    assert!(still.iter().all(|r| r.seq >= before) && !still.is_empty());
    // Appending after a prune continues the chain.
    store.append_audit([event(300, "Encrypt", Some(k1), None)].into()).await.unwrap();
    let tail = store.audit_after(all[99].seq, 10).await.unwrap();
    verify_run(Some((all[99].seq, &all[99].hash)), &tail).unwrap();
}

async fn audit_chain(store: &dyn Store) {
    use crate::audit::{AuditDigest, AuditFilter, verify_run};
    let key = "arn:aws:kms:us-east-1:111122223333:key/k1";
    store
        .append_audit([event(1, "CreateKey", Some(key), None), event(2, "Encrypt", Some(key), None)].into())
        .await
        .unwrap();
    store.append_audit([event(3, "Decrypt", Some(key), Some("InvalidCiphertextException"))].into()).await.unwrap();
    store.append_audit([event(4, "ListKeys", None, None)].into()).await.unwrap();
    let rows = store.audit_after(0, 100).await.unwrap();
    assert_eq!(rows.iter().map(|r| r.seq).collect::<Vec<_>>(), vec![1, 2, 3, 4]);
    assert_eq!(rows[1].event_name, "Encrypt");
    verify_run(None, &rows).unwrap();
    assert_eq!(store.audit_after(2, 1).await.unwrap()[0].seq, 3);
    let (head_seq, head_hash) = store.audit_head().await.unwrap().unwrap();
    assert_eq!((head_seq, &head_hash), (4, &rows[3].hash));

    let by_key = AuditFilter { key_arn: Some(key.into()), limit: 10, ..AuditFilter::default() };
    assert_eq!(store.audit_query(&by_key).await.unwrap().len(), 3);
    let failures =
        AuditFilter { error_code: Some("InvalidCiphertextException".into()), limit: 10, ..AuditFilter::default() };
    assert_eq!(store.audit_query(&failures).await.unwrap()[0].seq, 3);
    let successes = AuditFilter { error_code: Some("-".into()), limit: 10, ..AuditFilter::default() };
    assert_eq!(store.audit_query(&successes).await.unwrap().len(), 3);
    let window = AuditFilter {
        from: Some(Timestamp::from_unix_millis(1_700_000_002_000)),
        to: Some(Timestamp::from_unix_millis(1_700_000_004_000)),
        limit: 10,
        ..AuditFilter::default()
    };
    assert_eq!(store.audit_query(&window).await.unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(), vec![3, 2]);
    // A page's cursor: only records before it, newest first.
    let page = AuditFilter { before_seq: Some(3), limit: 10, ..AuditFilter::default() };
    assert_eq!(store.audit_query(&page).await.unwrap().iter().map(|r| r.seq).collect::<Vec<_>>(), vec![2, 1]);
    // Retention: the newest record strictly older than the cutoff (events n are at n seconds).
    let at = |n: i64| Timestamp::from_unix_millis(1_700_000_000_000 + n * 1000);
    assert_eq!(store.audit_seq_before(at(1)).await.unwrap(), None, "nothing is older than the first");
    assert_eq!(store.audit_seq_before(at(3)).await.unwrap(), Some(2));
    assert_eq!(store.audit_seq_before(at(3).plus_millis(1)).await.unwrap(), Some(3));
    assert_eq!(store.audit_seq_before(at(60)).await.unwrap(), Some(4));
    let last = store.last_key_usage(key).await.unwrap().unwrap();
    assert_eq!(last.seq, 2, "the failed Decrypt and CreateKey do not count as use");
    assert!(store.last_key_usage("arn:aws:kms:us-east-1:111122223333:key/none").await.unwrap().is_none());
    // A ReEncrypt concerns two keys: it is the last use of both, and a query by either finds it.
    let other = "arn:aws:kms:us-east-1:111122223333:key/k2";
    let re_encrypt =
        kms_core::audit::AuditEvent { other_key_arn: Some(key.into()), ..event(5, "ReEncrypt", Some(other), None) };
    store.append_audit([re_encrypt].into()).await.unwrap();
    for arn in [key, other] {
        let last = store.last_key_usage(arn).await.unwrap().unwrap();
        assert_eq!((last.seq, last.other_key_arn.as_deref()), (5, Some(key)), "{arn}");
        let found = store.audit_query(&AuditFilter { key_arn: Some(arn.into()), ..by_key.clone() }).await.unwrap();
        assert_eq!(found.first().map(|r| r.seq), Some(5), "{arn}");
    }

    let digest =
        AuditDigest { seq: 4, hash: head_hash, created: Timestamp::from_unix_millis(5), signature: vec![1, 2] };
    store.put_audit_digest(&digest).await.unwrap();
    assert_eq!(store.audit_digests().await.unwrap(), vec![digest]);

    mutations_carry_their_audit_events(store).await;
}

/// The records appended since `after` (the chain's head sequence number before a call).
async fn appended_since(store: &dyn Store, after: u64) -> Vec<crate::audit::AuditRow> {
    store.audit_after(after, 100).await.unwrap()
}

async fn head(store: &dyn Store) -> u64 {
    store.audit_head().await.unwrap().map_or(0, |(seq, _)| seq)
}

/// A mutation given events appends exactly them, in the same transaction, after the records
/// already there; a refused mutation, or one that finds nothing to do, appends nothing.
async fn mutations_carry_their_audit_events(store: &dyn Store) {
    use crate::audit::verify_run;
    let start = head(store).await;
    let k = key(0xAD, 1, "111122223333");
    let arn = k.arn().to_string();
    let created = [event(101, "CreateKey", Some(&arn), None)];
    store.create_key(&k, &[material(&k)], "{}", &[tag("a", "1")], &[], &created).await.unwrap();
    let rows = appended_since(store, start).await;
    assert_eq!(rows.len(), 1, "exactly the event given");
    assert_eq!((rows[0].seq, rows[0].event_id.as_str()), (start + 1, "event-101"));
    assert_eq!(rows[0].record, created[0].canonical_json());
    assert_eq!(rows[0].key_arn.as_deref(), Some(arn.as_str()));

    // Refused changes append nothing.
    let refused = |n: u64, name: &str| [event(n, name, Some(&arn), None)];
    let again = store.create_key(&k, &[material(&k)], "{}", &[], &[], &refused(102, "CreateKey")).await;
    assert!(matches!(again, Err(StoreError::AlreadyExists)));
    let disabled = k.disable().unwrap();
    store.update_key(&disabled, &refused(103, "DisableKey")).await.unwrap();
    let stale = k.enable().unwrap();
    let lost = store.update_key(&stale, &refused(104, "EnableKey")).await;
    assert!(matches!(lost, Err(StoreError::Conflict)));
    let alias = alias(&k, "alias/audited");
    store.create_alias(&alias, &refused(105, "CreateAlias")).await.unwrap();
    let taken = store.create_alias(&alias, &refused(106, "CreateAlias")).await;
    assert!(matches!(taken, Err(StoreError::AlreadyExists)));
    let missing = AliasRecord { name: AliasName::parse("alias/missing").unwrap(), ..alias.clone() };
    assert!(matches!(store.update_alias(&missing, &refused(107, "UpdateAlias")).await, Err(StoreError::NotFound)));
    let gone = store.delete_alias(&k.account, &k.region, &missing.name, &refused(108, "DeleteAlias")).await;
    assert!(!gone.unwrap(), "nothing to delete");
    let over = store.put_tags(k.key_id, &[tag("b", ""), tag("c", "")], 2, &refused(109, "TagResource")).await;
    assert!(matches!(over, Err(StoreError::LimitExceeded(2))));
    let ghost = key(0xAD, 2, "111122223333");
    assert!(matches!(
        store.put_policy(ghost.key_id, "{}", &refused(110, "PutKeyPolicy")).await,
        Err(StoreError::NotFound)
    ));
    assert!(!store.delete_grant("no-such-grant", &refused(111, "RevokeGrant")).await.unwrap());
    assert!(!store.delete_principal("arn:aws:iam::111122223333:user/none", &refused(112, "DeleteUser")).await.unwrap());

    let ids: Vec<String> = appended_since(store, start).await.into_iter().map(|r| r.event_id).collect();
    assert_eq!(ids, ["event-101", "event-103", "event-105"], "only the changes that happened are recorded");
    assert_eq!(store.key(k.key_id).await.unwrap().unwrap().state, KeyState::Disabled);
    assert_eq!(store.tags(k.key_id).await.unwrap(), vec![tag("a", "1")], "the refused put changed nothing");

    // Several events for one change keep their order.
    let both = [event(113, "PutKeyPolicy", Some(&arn), None), event(114, "PutKeyPolicy", Some(&arn), None)];
    store.put_policy(k.key_id, "{\"v\":2}", &both).await.unwrap();
    let rows = appended_since(store, start + 3).await;
    assert_eq!(rows.iter().map(|r| r.event_id.as_str()).collect::<Vec<_>>(), ["event-113", "event-114"]);
    // An empty slice records nothing.
    store.put_policy(k.key_id, "{\"v\":3}", &[]).await.unwrap();
    assert_eq!(head(store).await, start + 5);
    verify_run(None, &store.audit_after(0, 1000).await.unwrap()).unwrap();
}
