//! Multi-Region keys through `aws-sdk-kms`: one server serves every region (the SigV4 region of
//! each request), a replica has its primary's id and material, ciphertext, signatures and MACs
//! made in one region are accepted in another, and the set changes together (replication,
//! rotation, a new primary region, deletion).

use aws_sdk_kms::Client;
use aws_sdk_kms::primitives::Blob;
use aws_sdk_kms::types::{
    KeySpec, KeyState, KeyUsageType, MacAlgorithmSpec, MessageType, MultiRegionKeyType, OriginType,
    SigningAlgorithmSpec, Tag,
};
use kms_core::Clock as _;

use crate::common::{code_of, start, start_with_clock};

const EAST: &str = "us-east-1";
const WEST: &str = "eu-west-1";
const DAY: i64 = 86_400_000;

async fn create_mrk(kms: &Client, spec: KeySpec, usage: KeyUsageType) -> String {
    let created = kms.create_key().key_spec(spec).key_usage(usage).multi_region(true).send().await.unwrap();
    let metadata = created.key_metadata.unwrap();
    assert!(metadata.key_id.starts_with("mrk-"), "{}", metadata.key_id);
    assert_eq!(metadata.multi_region(), Some(true));
    let config = metadata.multi_region_configuration().unwrap();
    assert_eq!(config.multi_region_key_type(), Some(&MultiRegionKeyType::Primary));
    assert!(config.replica_keys().is_empty());
    metadata.key_id
}

async fn replicate(kms: &Client, key: &str, region: &str) -> aws_sdk_kms::types::KeyMetadata {
    kms.replicate_key().key_id(key).replica_region(region).send().await.unwrap().replica_key_metadata.unwrap()
}

async fn describe(kms: &Client, key: &str) -> aws_sdk_kms::types::KeyMetadata {
    kms.describe_key().key_id(key).send().await.unwrap().key_metadata.unwrap()
}

/// A replica shares its primary's id and material: ciphertext, MACs and signatures cross
/// regions both ways, while description, tags, policy and state are each key's own.
#[tokio::test]
async fn replicas_share_ciphertext_signatures_and_macs_across_regions() {
    let t = start().await;
    let (east, west) = (t.client_in(EAST), t.client_in(WEST));
    let key = create_mrk(&east, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await;
    let sealed = east
        .encrypt()
        .key_id(&key)
        .plaintext(Blob::new("made in the east"))
        .send()
        .await
        .unwrap()
        .ciphertext_blob
        .unwrap();

    let replica = west
        .replicate_key()
        .key_id(format!("arn:aws:kms:{EAST}:{}:key/{key}", t.server.account))
        .replica_region(WEST)
        .description("west copy")
        .tags(Tag::builder().tag_key("team").tag_value("west").build().unwrap())
        .send()
        .await;
    // ReplicateKey is called in the primary's region (a key ARN of another region is not found).
    assert_eq!(code_of(replica), "NotFoundException");
    let out = east
        .replicate_key()
        .key_id(&key)
        .replica_region(WEST)
        .description("west copy")
        .tags(Tag::builder().tag_key("team").tag_value("west").build().unwrap())
        .send()
        .await
        .unwrap();
    let replica = out.replica_key_metadata().unwrap();
    assert_eq!(replica.key_id(), key);
    assert_eq!(replica.arn(), Some(format!("arn:aws:kms:{WEST}:{}:key/{key}", t.server.account).as_str()));
    assert_eq!(replica.description(), Some("west copy"));
    assert_eq!(out.replica_tags().len(), 1);
    assert!(out.replica_policy().unwrap().contains("Enable IAM User Permissions"));

    let opened = west.decrypt().ciphertext_blob(sealed.clone()).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"made in the east");
    assert_eq!(opened.key_id(), replica.arn());
    let back = west.encrypt().key_id(&key).plaintext(Blob::new("made in the west")).send().await.unwrap();
    let opened = east.decrypt().ciphertext_blob(back.ciphertext_blob.unwrap()).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"made in the west");

    // Each region describes the set; the replica's own properties stay its own.
    let primary = describe(&east, &key).await;
    let config = primary.multi_region_configuration().unwrap();
    assert_eq!(config.replica_keys().iter().filter_map(|r| r.region()).collect::<Vec<_>>(), [WEST]);
    assert_eq!(primary.description(), Some(""));
    let described = describe(&west, &key).await;
    let config = described.multi_region_configuration().unwrap();
    assert_eq!(config.multi_region_key_type(), Some(&MultiRegionKeyType::Replica));
    assert_eq!(config.primary_key().unwrap().region(), Some(EAST));
    assert_eq!(described.current_key_material_id(), primary.current_key_material_id());
    assert!(east.list_resource_tags().key_id(&key).send().await.unwrap().tags().is_empty());
    assert!(west.list_keys().send().await.unwrap().keys().iter().any(|k| k.key_id() == Some(key.as_str())));
    west.disable_key().key_id(&key).send().await.unwrap();
    assert_eq!(code_of(west.decrypt().ciphertext_blob(sealed.clone()).send().await), "DisabledException");
    east.decrypt().ciphertext_blob(sealed).send().await.unwrap();

    // AWS's errors: a region that has the key, a replica asked to replicate, a single-Region key.
    assert_eq!(code_of(east.replicate_key().key_id(&key).replica_region(WEST).send().await), "AlreadyExistsException");
    assert_eq!(code_of(east.replicate_key().key_id(&key).replica_region(EAST).send().await), "AlreadyExistsException");
    let from_replica = west.replicate_key().key_id(&key).replica_region("ap-southeast-2").send().await;
    assert_eq!(code_of(from_replica), "UnsupportedOperationException");
    let single = t.create_key().await;
    let result = east.replicate_key().key_id(&single).replica_region(WEST).send().await;
    assert_eq!(code_of(result), "UnsupportedOperationException");

    // HMAC and signing keys: a MAC made in one region verifies in the other; so does a signature.
    let mac_key = create_mrk(&east, KeySpec::Hmac256, KeyUsageType::GenerateVerifyMac).await;
    replicate(&east, &mac_key, WEST).await;
    let message = Blob::new("the same message");
    let mac = east
        .generate_mac()
        .key_id(&mac_key)
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .message(message.clone())
        .send()
        .await
        .unwrap()
        .mac
        .unwrap();
    let verified = west
        .verify_mac()
        .key_id(&mac_key)
        .mac_algorithm(MacAlgorithmSpec::HmacSha256)
        .message(message.clone())
        .mac(mac)
        .send()
        .await
        .unwrap();
    assert!(verified.mac_valid());
    let signing = create_mrk(&east, KeySpec::EccNistP256, KeyUsageType::SignVerify).await;
    replicate(&east, &signing, WEST).await;
    let signature = east
        .sign()
        .key_id(&signing)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .message_type(MessageType::Raw)
        .message(message.clone())
        .send()
        .await
        .unwrap()
        .signature
        .unwrap();
    let verified = west
        .verify()
        .key_id(&signing)
        .signing_algorithm(SigningAlgorithmSpec::EcdsaSha256)
        .message_type(MessageType::Raw)
        .message(message)
        .signature(signature)
        .send()
        .await
        .unwrap();
    assert!(verified.signature_valid());
    let (east_public, west_public) = (
        east.get_public_key().key_id(&signing).send().await.unwrap().public_key.unwrap(),
        west.get_public_key().key_id(&signing).send().await.unwrap().public_key.unwrap(),
    );
    assert_eq!(east_public, west_public);
}

/// Rotation happens on the primary and reaches every replica in the same transaction; the
/// primary region can move to a replica's region.
#[tokio::test]
async fn rotation_is_shared_and_the_primary_region_can_move() {
    let t = start().await;
    let (east, west) = (t.client_in(EAST), t.client_in(WEST));
    let key = create_mrk(&east, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await;
    replicate(&east, &key, WEST).await;
    let old = east.encrypt().key_id(&key).plaintext(Blob::new("before")).send().await.unwrap().ciphertext_blob.unwrap();
    assert_eq!(code_of(west.rotate_key_on_demand().key_id(&key).send().await), "UnsupportedOperationException");
    assert_eq!(code_of(west.enable_key_rotation().key_id(&key).send().await), "UnsupportedOperationException");
    east.rotate_key_on_demand().key_id(&key).send().await.unwrap();
    let (primary, replica) = (describe(&east, &key).await, describe(&west, &key).await);
    assert_eq!(primary.current_key_material_id(), replica.current_key_material_id());
    let new = west.encrypt().key_id(&key).plaintext(Blob::new("after")).send().await.unwrap().ciphertext_blob.unwrap();
    assert_eq!(east.decrypt().ciphertext_blob(new).send().await.unwrap().plaintext().unwrap().as_ref(), b"after");
    assert_eq!(west.decrypt().ciphertext_blob(old).send().await.unwrap().plaintext().unwrap().as_ref(), b"before");
    east.enable_key_rotation().key_id(&key).rotation_period_in_days(180).send().await.unwrap();
    let status = west.get_key_rotation_status().key_id(&key).send().await.unwrap();
    assert!(status.key_rotation_enabled());
    assert_eq!(status.rotation_period_in_days(), Some(180));

    let moved = east.update_primary_region().key_id(&key).primary_region("ap-southeast-2").send().await;
    assert_eq!(code_of(moved), "NotFoundException");
    assert_eq!(
        code_of(west.update_primary_region().key_id(&key).primary_region(EAST).send().await),
        "UnsupportedOperationException"
    );
    east.update_primary_region().key_id(&key).primary_region(WEST).send().await.unwrap();
    let (was_primary, now_primary) = (describe(&east, &key).await, describe(&west, &key).await);
    let kind =
        |m: &aws_sdk_kms::types::KeyMetadata| m.multi_region_configuration().unwrap().multi_region_key_type().cloned();
    assert_eq!(
        (kind(&was_primary), kind(&now_primary)),
        (Some(MultiRegionKeyType::Replica), Some(MultiRegionKeyType::Primary))
    );
    assert_eq!(was_primary.multi_region_configuration().unwrap().primary_key().unwrap().region(), Some(WEST));
    west.rotate_key_on_demand().key_id(&key).send().await.unwrap();
    assert_eq!(
        describe(&east, &key).await.current_key_material_id(),
        describe(&west, &key).await.current_key_material_id()
    );
}

/// A primary key with replicas waits for them: PendingReplicaDeletion until the last replica is
/// deleted, then its own waiting period.
#[tokio::test]
async fn a_primary_is_deleted_after_its_replicas() {
    let (t, clock) = start_with_clock().await;
    let (east, west) = (t.client_in(EAST), t.client_in(WEST));
    let key = create_mrk(&east, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await;
    replicate(&east, &key, WEST).await;
    let scheduled = east.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();
    assert_eq!(scheduled.key_state(), Some(&KeyState::PendingReplicaDeletion));
    assert!(scheduled.deletion_date().is_none());
    let primary = describe(&east, &key).await;
    assert_eq!((primary.pending_deletion_window_in_days(), primary.deletion_date()), (Some(7), None));
    west.schedule_key_deletion().key_id(&key).pending_window_in_days(7).send().await.unwrap();

    let svc = &t.server.service;
    clock.advance_millis(7 * DAY);
    assert_eq!(svc.run_due_work().await.unwrap(), 1, "the replica goes; the primary waits");
    clock.advance_millis(-7 * DAY);
    assert_eq!(code_of(west.describe_key().key_id(&key).send().await), "NotFoundException");
    let primary = describe(&east, &key).await;
    assert_eq!(primary.key_state(), Some(&KeyState::PendingDeletion));
    assert!(primary.multi_region_configuration().unwrap().replica_keys().is_empty());
    let due = primary.deletion_date().unwrap().secs();
    assert_eq!(due, (clock.now().plus_days(14).unix_millis() / 1000), "its own 7 days start when the replica is gone");

    clock.advance_millis(14 * DAY);
    assert_eq!(svc.run_due_work().await.unwrap(), 1);
    clock.advance_millis(-14 * DAY);
    assert_eq!(code_of(east.describe_key().key_id(&key).send().await), "NotFoundException");
}

/// A multi-Region key of imported material: each replica needs the same material imported.
#[tokio::test]
async fn imported_multi_region_keys_take_the_same_material_in_each_region() {
    if !crate::key_spec_interop::openssl_present() {
        return;
    }
    let t = start().await;
    let (east, west) = (t.client_in(EAST), t.client_in(WEST));
    let key = east
        .create_key()
        .origin(OriginType::External)
        .multi_region(true)
        .send()
        .await
        .unwrap()
        .key_metadata
        .unwrap()
        .key_id;
    assert_eq!(
        code_of(east.replicate_key().key_id(&key).replica_region(WEST).send().await),
        "KMSInvalidStateException"
    );
    let dir = tempfile::tempdir().unwrap();
    let material = crate::import::random_file(dir.path(), "material.bin", 32);
    let other = crate::import::random_file(dir.path(), "other.bin", 32);
    let wrap = |kms: Client, file: std::path::PathBuf| {
        let key = key.clone();
        async move {
            crate::import::wrap(
                &kms,
                &key,
                aws_sdk_kms::types::AlgorithmSpec::RsaesOaepSha256,
                aws_sdk_kms::types::WrappingKeySpec::Rsa2048,
                &file,
            )
            .await
        }
    };
    crate::import::import(&east, &key, wrap(east.clone(), material.clone()).await).await;
    let replica = replicate(&east, &key, WEST).await;
    assert_eq!(replica.key_state(), Some(&KeyState::PendingImport));
    let wrong = crate::import::importing(&west, &key, wrap(west.clone(), other).await).send().await;
    assert_eq!(code_of(wrong), "IncorrectKeyMaterialException");
    crate::import::import(&west, &key, wrap(west.clone(), material).await).await;
    assert_eq!(describe(&west, &key).await.key_state(), Some(&KeyState::Enabled));
    let sealed = east.encrypt().key_id(&key).plaintext(Blob::new("imported")).send().await.unwrap();
    let opened = west.decrypt().ciphertext_blob(sealed.ciphertext_blob.unwrap()).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"imported");

    // New material goes into the primary first, then into each replica as existing material;
    // only then does the primary rotate to it, and the replicas with it.
    let next = crate::import::random_file(dir.path(), "next.bin", 32);
    let direct = crate::import::importing(&west, &key, wrap(west.clone(), next.clone()).await)
        .import_type(aws_sdk_kms::types::ImportType::NewKeyMaterial)
        .send()
        .await;
    assert_eq!(code_of(direct), "UnsupportedOperationException", "a replica takes new material from its primary");
    let new_id = crate::import::importing(&east, &key, wrap(east.clone(), next.clone()).await)
        .import_type(aws_sdk_kms::types::ImportType::NewKeyMaterial)
        .send()
        .await
        .unwrap()
        .key_material_id
        .unwrap();
    let state = |kms: Client| {
        let (key, new_id) = (key.clone(), new_id.clone());
        async move {
            let listed = kms
                .list_key_rotations()
                .key_id(&key)
                .include_key_material(aws_sdk_kms::types::IncludeKeyMaterial::AllKeyMaterial)
                .send()
                .await
                .unwrap();
            let entry = listed.rotations().iter().find(|r| r.key_material_id() == Some(new_id.as_str())).cloned();
            entry.and_then(|r| r.key_material_state().map(|s| s.as_str().to_owned()))
        }
    };
    assert_eq!(state(east.clone()).await.as_deref(), Some("PENDING_MULTI_REGION_IMPORT_AND_ROTATION"));
    assert_eq!(state(west.clone()).await.as_deref(), Some("PENDING_ROTATION"));
    assert_eq!(code_of(east.rotate_key_on_demand().key_id(&key).send().await), "KMSInvalidStateException");
    crate::import::import(&west, &key, wrap(west.clone(), next).await).await;
    assert_eq!(state(east.clone()).await.as_deref(), Some("PENDING_ROTATION"));
    east.rotate_key_on_demand().key_id(&key).send().await.unwrap();
    assert_eq!(describe(&west, &key).await.current_key_material_id(), Some(new_id.as_str()));
    let sealed = west.encrypt().key_id(&key).plaintext(Blob::new("rotated")).send().await.unwrap();
    let opened = east.decrypt().ciphertext_blob(sealed.ciphertext_blob.unwrap()).send().await.unwrap();
    assert_eq!(opened.plaintext().unwrap().as_ref(), b"rotated");
}

/// Policies restrict multi-Region keys with kms:ReplicaRegion, kms:PrimaryRegion,
/// kms:MultiRegion and kms:MultiRegionKeyType, and imports with kms:ValidTo.
#[tokio::test]
async fn condition_keys_restrict_multi_region_keys() {
    let t = start().await;
    let (east, west) = (t.client_in(EAST), t.client_in(WEST));
    let account = t.server.account.to_string();
    let key = create_mrk(&east, KeySpec::SymmetricDefault, KeyUsageType::EncryptDecrypt).await;
    let policy = serde_json::json!({
        "Version": "2012-10-17",
        "Statement": [
            {"Effect": "Allow", "Principal": {"AWS": format!("arn:aws:iam::{account}:root")}, "Action": "kms:*", "Resource": "*"},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:ReplicateKey", "Resource": "*",
             "Condition": {"StringNotEquals": {"kms:ReplicaRegion": WEST}}},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:UpdatePrimaryRegion", "Resource": "*",
             "Condition": {"StringEquals": {"kms:PrimaryRegion": "ap-southeast-2"}}},
            {"Effect": "Deny", "Principal": {"AWS": "*"}, "Action": "kms:Encrypt", "Resource": "*",
             "Condition": {"StringEquals": {"kms:MultiRegionKeyType": "REPLICA"}, "Bool": {"kms:MultiRegion": "true"}}},
        ]
    });
    east.put_key_policy().key_id(&key).policy(policy.to_string()).send().await.unwrap();
    let denied = east.replicate_key().key_id(&key).replica_region("ap-southeast-2").send().await;
    assert_eq!(code_of(denied), "AccessDeniedException");
    east.replicate_key().key_id(&key).replica_region(WEST).policy(policy.to_string()).send().await.unwrap();
    east.encrypt().key_id(&key).plaintext(Blob::new("primary")).send().await.unwrap();
    let refused = west.encrypt().key_id(&key).plaintext(Blob::new("replica")).send().await;
    assert_eq!(code_of(refused), "AccessDeniedException", "the replica's policy refuses Encrypt on replicas");
    let moved = east.update_primary_region().key_id(&key).primary_region("ap-southeast-2").send().await;
    assert_eq!(code_of(moved), "AccessDeniedException");
    east.update_primary_region().key_id(&key).primary_region(WEST).send().await.unwrap();
}
