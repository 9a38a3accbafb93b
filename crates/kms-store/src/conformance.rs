//! The store conformance suite: every behaviour the service relies on, written once against
//! `&dyn Store` and run against each backend by that backend's tests.
//!
//! Each check uses fresh random-looking ids derived from `seed`, so the suite can run against a
//! shared database more than once.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

use kms_core::Timestamp;
use kms_core::ids::{AccountId, AliasName, KeyId, MaterialId, Region};
use kms_core::key::{KeyManager, KeyRecord, KeySpec, KeyState, KeyUsage, Origin};
use kms_core::tag::Tag;

use crate::{AccessKeyRecord, AliasRecord, MaterialRecord, Store, StoreError};

fn key(seed: u8, n: u8, account: &str) -> KeyRecord {
    KeyRecord {
        key_id: KeyId::from_bytes([seed, n, 0, 0, 0, 0, 0x40, 0, 0x80, 0, 0, 0, 0, 0, 0, 1]),
        account: AccountId::parse(account).unwrap(),
        region: Region::parse("us-east-1").unwrap(),
        created: Timestamp::from_unix_millis(1_700_000_000_000),
        description: format!("key {n}"),
        state: KeyState::Enabled,
        key_spec: KeySpec::SymmetricDefault,
        key_usage: KeyUsage::EncryptDecrypt,
        origin: Origin::AwsKms,
        key_manager: KeyManager::Customer,
        multi_region: false,
        deletion: None,
        current_material: MaterialId::from_bytes([n; 32]),
        revision: 0,
    }
}

fn material(k: &KeyRecord) -> MaterialRecord {
    MaterialRecord { key_id: k.key_id, material_id: k.current_material, wrapped: vec![1, 2, 3], created: k.created }
}

fn tag(k: &str, v: &str) -> Tag {
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
}

async fn keys_round_trip_and_compare_and_swap(store: &dyn Store, seed: u8) {
    let k = key(seed, 1, "111111111111");
    store.create_key(&k, &material(&k), "{}", &[tag("a", "1")]).await.unwrap();
    assert_eq!(store.key(k.key_id).await.unwrap().as_ref(), Some(&k));
    assert!(matches!(store.create_key(&k, &material(&k), "{}", &[]).await, Err(StoreError::AlreadyExists)));
    let disabled = k.disable().unwrap();
    store.update_key(&disabled).await.unwrap();
    assert_eq!(store.key(k.key_id).await.unwrap().unwrap().state, KeyState::Disabled);
    // A writer that read the old revision loses.
    let stale = k.enable().unwrap();
    assert!(matches!(store.update_key(&stale).await, Err(StoreError::Conflict)));
    let ghost = key(seed, 99, "111111111111").disable().unwrap();
    assert!(matches!(store.update_key(&ghost).await, Err(StoreError::NotFound)));
    assert_eq!(store.materials(k.key_id).await.unwrap(), vec![material(&k)]);
    assert!(store.key(key(seed, 98, "111111111111").key_id).await.unwrap().is_none());
}

async fn listing_is_scoped_and_paged(store: &dyn Store, seed: u8) {
    let account = format!("2222222222{seed:02}");
    let account = &account[account.len() - 12..];
    for n in 10..15 {
        let k = key(seed, n, account);
        store.create_key(&k, &material(&k), "{}", &[]).await.unwrap();
    }
    let other = key(seed, 20, "333333333333");
    store.create_key(&other, &material(&other), "{}", &[]).await.unwrap();
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
        store.create_key(x, &material(x), "{}", &[]).await.unwrap();
    }
    let name = AliasName::parse(&format!("alias/app-{seed}")).unwrap();
    let alias = AliasRecord {
        account: k.account.clone(),
        region: k.region.clone(),
        name: name.clone(),
        target: k.key_id,
        created: k.created,
        updated: k.created,
    };
    store.create_alias(&alias).await.unwrap();
    assert!(matches!(store.create_alias(&alias).await, Err(StoreError::AlreadyExists)));
    let other_region = AliasRecord { region: Region::parse("eu-west-1").unwrap(), ..alias.clone() };
    store.create_alias(&other_region).await.unwrap();
    let moved = AliasRecord { target: k2.key_id, updated: k.created.plus_days(1), ..alias.clone() };
    store.update_alias(&moved).await.unwrap();
    assert_eq!(store.alias(&k.account, &k.region, &name).await.unwrap(), Some(moved.clone()));
    let by_key = store.list_aliases(&k.account, &k.region, Some(k2.key_id), None, 10).await.unwrap();
    assert_eq!(by_key, vec![moved]);
    assert!(store.list_aliases(&k.account, &k.region, Some(k.key_id), None, 10).await.unwrap().is_empty());
    assert!(store.delete_alias(&k.account, &k.region, &name).await.unwrap());
    assert!(!store.delete_alias(&k.account, &k.region, &name).await.unwrap());
    assert!(matches!(store.update_alias(&alias).await, Err(StoreError::NotFound)));
    assert!(store.alias(&k.account, &other_region.region, &name).await.unwrap().is_some());
}

async fn tags_upsert_and_limit(store: &dyn Store, seed: u8) {
    let k = key(seed, 40, "555555555555");
    store.create_key(&k, &material(&k), "{}", &[tag("b", "1")]).await.unwrap();
    store.put_tags(k.key_id, &[tag("a", "x"), tag("b", "2")], 3).await.unwrap();
    assert_eq!(store.tags(k.key_id).await.unwrap(), vec![tag("a", "x"), tag("b", "2")]);
    let err = store.put_tags(k.key_id, &[tag("c", ""), tag("d", "")], 3).await;
    assert!(matches!(err, Err(StoreError::LimitExceeded(3))));
    assert_eq!(store.tags(k.key_id).await.unwrap().len(), 2, "a refused put changes nothing");
    store.remove_tags(k.key_id, &["a".into(), "zz".into()]).await.unwrap();
    assert_eq!(store.tags(k.key_id).await.unwrap(), vec![tag("b", "2")]);
}

async fn policies_and_settings(store: &dyn Store, seed: u8) {
    let k = key(seed, 50, "666666666666");
    store.create_key(&k, &material(&k), "{\"v\":1}", &[]).await.unwrap();
    assert_eq!(store.policy(k.key_id).await.unwrap().as_deref(), Some("{\"v\":1}"));
    store.put_policy(k.key_id, "{\"v\":2}").await.unwrap();
    assert_eq!(store.policy(k.key_id).await.unwrap().as_deref(), Some("{\"v\":2}"));
    let name = format!("conformance-{seed}");
    assert!(store.init_setting(&name, "a").await.unwrap());
    assert!(!store.init_setting(&name, "b").await.unwrap());
    assert_eq!(store.setting(&name).await.unwrap().as_deref(), Some("a"));
}

async fn access_keys(store: &dyn Store, seed: u8) {
    let record = AccessKeyRecord {
        access_key_id: format!("AKIACONFORMANCE{seed:05}"),
        account: AccountId::parse("777777777777").unwrap(),
        principal_arn: "arn:aws:iam::777777777777:user/admin".into(),
        wrapped_secret: vec![9; 40],
        created: Timestamp::from_unix_millis(1),
    };
    store.create_access_key(&record).await.unwrap();
    assert!(matches!(store.create_access_key(&record).await, Err(StoreError::AlreadyExists)));
    assert_eq!(store.access_key(&record.access_key_id).await.unwrap(), Some(record));
    assert!(store.access_key("AKIANOSUCHKEY0000000").await.unwrap().is_none());
}
