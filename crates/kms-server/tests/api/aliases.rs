//! CreateAlias, UpdateAlias, DeleteAlias, ListAliases and alias naming rules.

use aws_sdk_kms::primitives::Blob;

use crate::common::{code_of, error_of, start};

#[tokio::test]
async fn alias_lifecycle_survives_retargeting() {
    let t = start().await;
    let kms = t.client();
    let first = t.create_key().await;
    let second = t.create_key().await;
    let account = t.server.account.to_string();
    kms.create_alias().alias_name("alias/orders").target_key_id(&first).send().await.unwrap();
    let (code, message) = error_of(kms.create_alias().alias_name("alias/orders").target_key_id(&second).send().await);
    assert_eq!(code, "AlreadyExistsException");
    assert_eq!(message, format!("An alias with the name arn:aws:kms:us-east-1:{account}:alias/orders already exists"));
    // The same name is free in another region.
    let eu_key = t.client_in("eu-west-1").create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    t.client_in("eu-west-1").create_alias().alias_name("alias/orders").target_key_id(eu_key).send().await.unwrap();

    let old = kms.encrypt().key_id("alias/orders").plaintext(Blob::new("a")).send().await.unwrap();
    assert!(old.key_id().unwrap().ends_with(&first));
    kms.update_alias().alias_name("alias/orders").target_key_id(&second).send().await.unwrap();
    let new = kms.encrypt().key_id("alias/orders").plaintext(Blob::new("b")).send().await.unwrap();
    assert!(new.key_id().unwrap().ends_with(&second), "the alias follows the update at once");
    // Old ciphertext still decrypts: the key is in the blob.
    kms.decrypt().ciphertext_blob(old.ciphertext_blob.unwrap()).send().await.unwrap();

    let listed = kms.list_aliases().send().await.unwrap();
    let entry = listed.aliases().iter().find(|a| a.alias_name() == Some("alias/orders")).unwrap();
    assert_eq!(entry.target_key_id(), Some(second.as_str()));
    assert_eq!(entry.alias_arn(), Some(format!("arn:aws:kms:us-east-1:{account}:alias/orders").as_str()));
    assert!(entry.last_updated_date().unwrap().secs() >= entry.creation_date().unwrap().secs());
    assert!(kms.list_aliases().key_id(&first).send().await.unwrap().aliases().is_empty());
    assert_eq!(kms.list_aliases().key_id(&second).send().await.unwrap().aliases().len(), 1);

    kms.delete_alias().alias_name("alias/orders").send().await.unwrap();
    let (code, message) = error_of(kms.encrypt().key_id("alias/orders").plaintext(Blob::new("c")).send().await);
    assert_eq!(code, "NotFoundException");
    assert_eq!(message, format!("Alias arn:aws:kms:us-east-1:{account}:alias/orders is not found."));
    assert_eq!(code_of(kms.delete_alias().alias_name("alias/orders").send().await), "NotFoundException");
    assert_eq!(
        code_of(kms.update_alias().alias_name("alias/orders").target_key_id(&first).send().await),
        "NotFoundException"
    );
}

#[tokio::test]
async fn alias_naming_rules() {
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    let (code, message) = error_of(kms.create_alias().alias_name("orders").target_key_id(&id).send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.starts_with("Alias must start with the prefix \"alias/\""), "{message}");
    // AWS reserves alias/aws/ for AWS managed keys and answers NotAuthorizedException (as
    // recorded by moto's AWS-validated tests), for creating, renaming onto and deleting alike.
    let (code, message) = error_of(kms.create_alias().alias_name("alias/aws/s3").target_key_id(&id).send().await);
    assert_eq!(code, "NotAuthorizedException");
    assert!(message.contains("reserved for AWS managed keys"), "{message}");
    assert_eq!(
        code_of(kms.update_alias().alias_name("alias/aws/s3").target_key_id(&id).send().await),
        "NotAuthorizedException"
    );
    assert_eq!(code_of(kms.delete_alias().alias_name("alias/aws/ebs").send().await), "NotAuthorizedException");
    let (code, message) = error_of(kms.create_alias().alias_name("alias/has space").target_key_id(&id).send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("Member must satisfy regular expression pattern: ^[a-zA-Z0-9:/_-]+$"), "{message}");
    let long = format!("alias/{}", "a".repeat(251));
    assert_eq!(code_of(kms.create_alias().alias_name(long).target_key_id(&id).send().await), "ValidationException");
    // Aliases point at keys, not at aliases.
    kms.create_alias().alias_name("alias/ok_1/x/y-z").target_key_id(&id).send().await.unwrap();
    assert_eq!(
        code_of(kms.create_alias().alias_name("alias/two").target_key_id("alias/ok_1/x/y-z").send().await),
        "NotFoundException"
    );
    // A key pending deletion takes no new aliases.
    kms.schedule_key_deletion().key_id(&id).pending_window_in_days(7).send().await.unwrap();
    assert_eq!(
        code_of(kms.create_alias().alias_name("alias/late").target_key_id(&id).send().await),
        "KMSInvalidStateException"
    );
}

#[tokio::test]
async fn list_aliases_paginates() {
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    for i in 0..5 {
        kms.create_alias().alias_name(format!("alias/a{i}")).target_key_id(&id).send().await.unwrap();
    }
    let page = kms.list_aliases().limit(3).send().await.unwrap();
    assert!(page.truncated());
    assert_eq!(page.aliases().len(), 3);
    // Every page after it, to the end: the customer's aliases and AWS's predefined
    // `alias/aws/<service>` aliases (no target until a service creates its key), each once, in
    // name order, across page boundaries.
    let mut names: Vec<String> = page.aliases().iter().map(|a| a.alias_name().unwrap().to_owned()).collect();
    let mut marker = page.next_marker().map(str::to_owned);
    while let Some(m) = marker {
        let next = kms.list_aliases().limit(3).marker(m).send().await.unwrap();
        for a in next.aliases() {
            names.push(a.alias_name().unwrap().to_owned());
            assert_eq!(a.target_key_id().is_some(), !a.alias_name().unwrap().starts_with("alias/aws/"));
        }
        marker = next.truncated().then(|| next.next_marker().unwrap().to_owned());
    }
    let mut sorted = names.clone();
    sorted.sort();
    sorted.dedup();
    assert_eq!(names, sorted, "in order, each once");
    assert_eq!(names.iter().filter(|n| !n.starts_with("alias/aws/")).count(), 5);
    assert!(names.contains(&"alias/aws/s3".to_owned()) && names.contains(&"alias/aws/ebs".to_owned()));
    // A key's aliases are only its own.
    let own = kms.list_aliases().key_id(&id).send().await.unwrap();
    assert_eq!(own.aliases().len(), 5);
    assert_eq!(code_of(kms.list_aliases().marker("%%%").send().await), "InvalidMarkerException");
}
