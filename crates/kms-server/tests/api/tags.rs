//! TagResource, UntagResource, ListResourceTags.

use aws_sdk_kms::types::Tag;

use crate::common::{code_of, error_of, start};

fn tag(k: &str, v: &str) -> Tag {
    Tag::builder().tag_key(k).tag_value(v).build().unwrap()
}

#[tokio::test]
async fn tag_untag_list() {
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    kms.tag_resource().key_id(&id).tags(tag("team", "pay")).tags(tag("env", "prod")).send().await.unwrap();
    kms.tag_resource().key_id(&id).tags(tag("env", "staging")).send().await.unwrap();
    let listed = kms.list_resource_tags().key_id(&id).send().await.unwrap();
    let pairs: Vec<(&str, &str)> = listed.tags().iter().map(|t| (t.tag_key(), t.tag_value())).collect();
    assert_eq!(pairs, vec![("env", "staging"), ("team", "pay")]);
    let page = kms.list_resource_tags().key_id(&id).limit(1).send().await.unwrap();
    assert!(page.truncated());
    let rest = kms.list_resource_tags().key_id(&id).marker(page.next_marker().unwrap()).send().await.unwrap();
    assert_eq!(rest.tags().len(), 1);
    assert_eq!(rest.tags()[0].tag_key(), "team");
    kms.untag_resource().key_id(&id).tag_keys("env").tag_keys("absent").send().await.unwrap();
    assert_eq!(kms.list_resource_tags().key_id(&id).send().await.unwrap().tags().len(), 1);
}

#[tokio::test]
async fn tag_rules_and_limits() {
    let t = start().await;
    let kms = t.client();
    let id = t.create_key().await;
    let (code, message) = error_of(kms.tag_resource().key_id(&id).tags(tag("aws:cost", "1")).send().await);
    assert_eq!((code.as_str(), message.as_str()), ("TagException", "Tags beginning with aws: are reserved"));
    let (code, message) = error_of(kms.tag_resource().key_id(&id).tags(tag(&"k".repeat(129), "v")).send().await);
    assert_eq!(code, "ValidationException");
    assert!(message.contains("tags.1.member.tagKey"), "{message}");
    let mut req = kms.tag_resource().key_id(&id);
    for i in 0..50 {
        req = req.tags(tag(&format!("k{i:02}"), "v"));
    }
    req.send().await.unwrap();
    let (code, _) = error_of(kms.tag_resource().key_id(&id).tags(tag("one-more", "v")).send().await);
    assert_eq!(code, "LimitExceededException");
    assert_eq!(kms.list_resource_tags().key_id(&id).send().await.unwrap().tags().len(), 50);
    // Overwriting an existing tag is not a new tag.
    kms.tag_resource().key_id(&id).tags(tag("k00", "changed")).send().await.unwrap();
    assert_eq!(code_of(kms.list_resource_tags().key_id(&id).limit(51).send().await), "ValidationException");
}
