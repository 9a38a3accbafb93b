//! The compliance job against a real ferrokms server: 300 resources over four keys cost four
//! calls of each kind, and every resource gets exactly one audit line with the right decision.

#![allow(clippy::unwrap_used, clippy::expect_used, clippy::indexing_slicing, clippy::panic, missing_docs)]

use std::collections::BTreeMap;
use std::io::Write;
use std::sync::{Arc, Mutex};

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};
use compliance_job::{demo_inventory, parse_inventory, run};
use kms_client::batch::{CallCounter, Decision, Mode};
use serde_json::Value;

#[derive(Clone, Default)]
struct Lines(Arc<Mutex<Vec<u8>>>);

impl Write for Lines {
    fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
        self.0.lock().unwrap().extend_from_slice(buf);
        Ok(buf.len())
    }
    fn flush(&mut self) -> std::io::Result<()> {
        Ok(())
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 4)]
async fn three_hundred_resources_over_four_keys() {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kms_server::ServerConfig::new(dir.path().to_path_buf());
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = kms_server::start(config).await.unwrap();
    let text = std::fs::read_to_string(dir.path().join("admin-credentials")).unwrap();
    let field = |name: &str| {
        text.lines().find_map(|l| l.strip_prefix(name)).unwrap().trim_start_matches([' ', '=']).trim().to_owned()
    };
    let sdk = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", server.local_addr))
        .credentials_provider(Credentials::new(
            field("aws_access_key_id"),
            field("aws_secret_access_key"),
            None,
            None,
            "test",
        ))
        .build();
    let kms = aws_sdk_kms::Client::from_conf(sdk);
    for (alias, rotate, enabled) in [("a", true, true), ("b", true, true), ("c", false, true), ("d", true, false)] {
        let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
        kms.create_alias().alias_name(format!("alias/compliance-{alias}")).target_key_id(&key).send().await.unwrap();
        if rotate {
            kms.enable_key_rotation().key_id(&key).send().await.unwrap();
        }
        if !enabled {
            kms.disable_key().key_id(&key).send().await.unwrap();
        }
    }
    let keys = ["alias/compliance-a", "alias/compliance-b", "alias/compliance-c", "alias/compliance-d"];
    let resources = demo_inventory(300, &keys);
    assert_eq!(resources.len(), 300);

    let calls = CallCounter::new();
    let lines = Lines::default();
    let report = run(calls.attach(&kms), resources, lines.clone(), 16, Mode::CollectAll).await;

    assert_eq!(calls.count("DescribeKey"), 4, "{:?}", calls.snapshot());
    assert_eq!(calls.count("GetKeyPolicy"), 4, "{:?}", calls.snapshot());
    assert_eq!(calls.count("GetKeyRotationStatus"), 4, "{:?}", calls.snapshot());
    assert_eq!(calls.total(), 12);

    let audit: Vec<Value> = String::from_utf8(lines.0.lock().unwrap().clone())
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(audit.len(), 300);
    let by_resource: BTreeMap<&str, &Value> = audit.iter().map(|l| (l["resource"].as_str().unwrap(), l)).collect();
    assert_eq!(by_resource.len(), 300, "one line per resource");
    for (i, outcome) in report.outcomes.iter().enumerate() {
        let line = by_resource[outcome.resource.as_str()];
        assert_eq!(line["decision"], outcome.decision.as_str());
        assert_eq!(line["key"], keys[(i / 3) % 4]);
        let queue = outcome.resource.contains(":sqs:");
        let expected = match ((i / 3) % 4, queue) {
            (0 | 1, _) | (2, true) => Decision::Compliant,
            _ => Decision::NonCompliant,
        };
        assert_eq!(outcome.decision, expected, "{outcome:?}");
        match ((i / 3) % 4, queue) {
            (2, false) => assert_eq!(line["reasons"][0], "RotationEnabled: automatic rotation is disabled"),
            (3, _) => assert_eq!(line["reasons"][0], "KeyEnabled: key state is Disabled"),
            _ => {}
        }
    }
    // 75 resources on each key: all on a and b pass, on c only the 25 queues, none on d.
    assert_eq!(report.count(Decision::Compliant), 175);
    assert_eq!(report.count(Decision::NonCompliant), 125);
    server.shutdown().await;
}

#[test]
fn inventories_parse_with_line_numbers() {
    let resources =
        parse_inventory("# id,key,rules\nbucket-1,alias/a\nqueue-1,alias/b,KeyEnabled;SymmetricEncryption\n").unwrap();
    assert_eq!(resources.len(), 2);
    assert_eq!(resources[1].rules.len(), 2);
    assert_eq!(resources[0].rules.len(), 5);
    assert_eq!(parse_inventory("a,b\nnokey\n").unwrap_err(), "line 2: expected resource,key[,rules]");
    assert_eq!(parse_inventory("a,b,Sometimes\n").unwrap_err(), "line 1: unknown rule Sometimes");
}
