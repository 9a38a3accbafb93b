//! Malformed requests, one table: each row is a raw request signed for real (the official
//! `aws-sigv4` signer, so that authentication passes and the row tests the wire layer) and the
//! exception, HTTP status and message AWS KMS answers it with.
//!
//! Sources for the expected answers: the AWS KMS API reference (members, limits, the
//! `ValidationException` wording "1 validation error detected: Value … at '…' failed to satisfy
//! constraint: …"), the AWS JSON 1.1 protocol (Smithy: `POST /`, `X-Amz-Target`,
//! `Content-Type: application/x-amz-json-1.1`, unknown members ignored by the receiver) and the
//! common errors of AWS services (`SerializationException` for a body that cannot be read as the
//! operation's input, `UnknownOperationException` for a target that names no operation).

use base64::Engine as _;
use base64::engine::general_purpose::STANDARD as B64;

use crate::common::{TestServer, signed, start};

const JSON: &str = "application/x-amz-json-1.1";

/// What a row expects.
enum Expect {
    /// HTTP 200.
    Ok,
    /// An error: status, `__type`, and a part of the message (lowercase match).
    Error(u16, &'static str, &'static str),
}

struct Row {
    name: &'static str,
    target: Option<&'static str>,
    content_type: &'static str,
    body: Vec<u8>,
    expect: Expect,
}

fn row(name: &'static str, op: &'static str, body: impl Into<Vec<u8>>, expect: Expect) -> Row {
    Row { name, target: Some(op), content_type: JSON, body: body.into(), expect }
}

fn b64(len: usize) -> String {
    B64.encode(vec![7u8; len])
}

fn rows(key_id: &str) -> Vec<Row> {
    use Expect::{Error, Ok};
    let serialization = |hint| Error(400, "SerializationException", hint);
    let validation = |hint| Error(400, "ValidationException", hint);
    let encrypt = "TrentService.Encrypt";
    let list = "TrentService.ListKeys";
    let random = "TrentService.GenerateRandom";
    let decrypt = "TrentService.Decrypt";
    let deep = format!("{{\"Surprise\": {}{}}}", "[".repeat(5000), "]".repeat(5000));
    vec![
        // Bodies that are not JSON, or not a JSON object.
        row("truncated JSON", encrypt, "{\"KeyId\": \"k\"", serialization("eof")),
        row("trailing garbage", list, "{} {}", serialization("trailing")),
        row("not JSON at all", list, "KeyId=k", serialization("object")),
        row("array", list, "[]", serialization("object")),
        row(
            "array of every member, in order",
            "TrentService.DeleteAlias",
            "[\"alias/a\", null]",
            serialization("object"),
        ),
        row("string", list, "\"ListKeys\"", serialization("object")),
        row("number", list, "42", serialization("object")),
        // Skipped, not recursed into: no stack to overflow.
        row("5000-deep nesting in an unknown member", list, deep, Ok),
        row("lone surrogate escape", encrypt, "{\"KeyId\": \"\\ud800\"}", serialization("")),
        row("non-UTF-8 body", encrypt, b"{\"KeyId\": \"\xff\xfe\"}".to_vec(), serialization("utf-8")),
        row("non-UTF-8 in an unknown member", list, b"{\"Other\": \"\x87\"}".to_vec(), serialization("utf-8")),
        // Members of the wrong type.
        row("number for a string", encrypt, "{\"KeyId\": 5, \"Plaintext\": \"AA==\"}", serialization("string")),
        row("string for an integer", list, "{\"Limit\": \"5\"}", serialization("")),
        row(
            "string for a boolean",
            encrypt,
            format!("{{\"KeyId\": \"{key_id}\", \"Plaintext\": \"AA==\", \"DryRun\": \"yes\"}}"),
            serialization("bool"),
        ),
        row(
            "string for a map",
            encrypt,
            format!("{{\"KeyId\": \"{key_id}\", \"Plaintext\": \"AA==\", \"EncryptionContext\": \"a=b\"}}"),
            serialization("map"),
        ),
        row(
            "number in a map",
            encrypt,
            format!("{{\"KeyId\": \"{key_id}\", \"Plaintext\": \"AA==\", \"EncryptionContext\": {{\"a\": 1}}}}"),
            serialization("string"),
        ),
        row(
            "string for a list",
            encrypt,
            format!("{{\"KeyId\": \"{key_id}\", \"Plaintext\": \"AA==\", \"GrantTokens\": \"t\"}}"),
            serialization("sequence"),
        ),
        row(
            "object for a blob",
            encrypt,
            format!("{{\"KeyId\": \"{key_id}\", \"Plaintext\": {{}}}}"),
            serialization("string"),
        ),
        // Numbers where integers are expected.
        row("number beyond f64", list, "{\"Limit\": 1e400}", serialization("number")),
        row("integer beyond i64", list, "{\"Limit\": 99999999999999999999999}", serialization("")),
        row("fraction", list, "{\"Limit\": 1.5}", serialization("")),
        row(
            "negative limit",
            list,
            "{\"Limit\": -1}",
            validation(
                "value '-1' at 'limit' failed to satisfy constraint: member must have value greater than or equal to 1",
            ),
        ),
        row(
            "zero bytes",
            random,
            "{\"NumberOfBytes\": 0}",
            validation(
                "value '0' at 'numberofbytes' failed to satisfy constraint: member must have value greater than or equal to 1",
            ),
        ),
        row(
            "too many bytes",
            random,
            "{\"NumberOfBytes\": 1025}",
            validation(
                "value '1025' at 'numberofbytes' failed to satisfy constraint: member must have value less than or equal to 1024",
            ),
        ),
        row(
            "i32 overflow",
            random,
            "{\"NumberOfBytes\": 4294967296}",
            validation("at 'numberofbytes' failed to satisfy constraint"),
        ),
        // Blobs.
        row(
            "invalid base64",
            encrypt,
            format!("{{\"KeyId\": \"{key_id}\", \"Plaintext\": \"***\"}}"),
            serialization("base64"),
        ),
        row(
            "base64 with bad padding",
            encrypt,
            format!("{{\"KeyId\": \"{key_id}\", \"Plaintext\": \"AAA\"}}"),
            serialization("base64"),
        ),
        row(
            "empty plaintext",
            encrypt,
            format!("{{\"KeyId\": \"{key_id}\", \"Plaintext\": \"\"}}"),
            validation(
                "value at 'plaintext' failed to satisfy constraint: member must have length greater than or equal to 1",
            ),
        ),
        row(
            "plaintext over 4096 bytes",
            encrypt,
            format!("{{\"KeyId\": \"{key_id}\", \"Plaintext\": \"{}\"}}", b64(4097)),
            validation(
                "value at 'plaintext' failed to satisfy constraint: member must have length less than or equal to 4096",
            ),
        ),
        row(
            "plaintext of 4096 bytes",
            encrypt,
            format!("{{\"KeyId\": \"{key_id}\", \"Plaintext\": \"{}\"}}", b64(4096)),
            Ok,
        ),
        row(
            "ciphertext over 6144 bytes",
            decrypt,
            format!("{{\"CiphertextBlob\": \"{}\"}}", b64(6145)),
            validation(
                "value at 'ciphertextblob' failed to satisfy constraint: member must have length less than or equal to 6144",
            ),
        ),
        row(
            "empty ciphertext",
            decrypt,
            "{\"CiphertextBlob\": \"\"}",
            validation(
                "value at 'ciphertextblob' failed to satisfy constraint: member must have length greater than or equal to 1",
            ),
        ),
        row(
            "ciphertext that is not ours",
            decrypt,
            format!("{{\"CiphertextBlob\": \"{}\"}}", b64(200)),
            Error(400, "InvalidCiphertextException", ""),
        ),
        // Missing and unknown members.
        row(
            "missing required members",
            encrypt,
            "{}",
            validation(
                "2 validation errors detected: value null at 'keyid' failed to satisfy constraint: member must not \
                 be null; value null at 'plaintext' failed to satisfy constraint: member must not be null",
            ),
        ),
        // Every member's violation is reported, not only the first.
        row(
            "an oversized plaintext and an unknown algorithm",
            encrypt,
            format!(
                "{{\"KeyId\": \"{key_id}\", \"Plaintext\": \"{}\", \"EncryptionAlgorithm\": \"ROT13\"}}",
                b64(4097)
            ),
            // In the order of AWS's model, which lists members alphabetically.
            validation(
                "2 validation errors detected: value 'rot13' at 'encryptionalgorithm' failed to satisfy \
                 constraint: member must satisfy enum value set: [symmetric_default, rsaes_oaep_sha_1, \
                 rsaes_oaep_sha_256, sm2pke]; value at 'plaintext' failed to satisfy constraint: member must have \
                 length less than or equal to 4096",
            ),
        ),
        row(
            "a zero limit and an empty marker",
            list,
            "{\"Limit\": 0, \"Marker\": \"\"}",
            validation(
                "2 validation errors detected: value '0' at 'limit' failed to satisfy constraint: member must have \
                 value greater than or equal to 1; value '' at 'marker' failed to satisfy constraint: member must \
                 have length greater than or equal to 1",
            ),
        ),
        row(
            "an empty ciphertext and an oversized key id",
            decrypt,
            format!("{{\"CiphertextBlob\": \"\", \"KeyId\": \"{}\"}}", "k".repeat(2049)),
            validation(
                "2 validation errors detected: value at 'ciphertextblob' failed to satisfy constraint: member must \
                 have length greater than or equal to 1; value '",
            ),
        ),
        // AWS's model requires KeyId and Operations; a grantee (GranteePrincipal, or a service
        // principal) is checked after them.
        row(
            "the required members of a grant missing",
            "TrentService.CreateGrant",
            "{}",
            validation(
                "2 validation errors detected: value null at 'keyid' failed to satisfy constraint: member must not \
                 be null; value null at 'operations' failed to satisfy constraint: member must not be null",
            ),
        ),
        row(
            "a grant without a grantee",
            "TrentService.CreateGrant",
            format!("{{\"KeyId\": \"{key_id}\", \"Operations\": [\"Encrypt\"]}}"),
            validation(
                "1 validation error detected: value null at 'granteeprincipal' failed to satisfy constraint: member \
                 must not be null",
            ),
        ),
        row(
            "an alias name outside the model's pattern",
            "TrentService.CreateAlias",
            format!("{{\"AliasName\": \"alias/no spaces\", \"TargetKeyId\": \"{key_id}\"}}"),
            validation(
                "1 validation error detected: value 'alias/no spaces' at 'aliasname' failed to satisfy constraint: \
                 member must satisfy regular expression pattern: ^[a-za-z0-9:/_-]+$",
            ),
        ),
        row(
            "a policy with a character outside the model's pattern",
            "TrentService.PutKeyPolicy",
            format!("{{\"KeyId\": \"{key_id}\", \"Policy\": \"{{}}\\u4e2d\"}}"),
            validation("at 'policy' failed to satisfy constraint: member must satisfy regular expression pattern"),
        ),
        row(
            "a grant operation outside the model's enum",
            "TrentService.CreateGrant",
            format!(
                "{{\"KeyId\": \"{key_id}\", \"GranteePrincipal\": \"arn:aws:iam::111122223333:root\", \
                 \"Operations\": [\"Encrypt\", \"Teleport\"]}}"
            ),
            validation(
                "value 'teleport' at 'operations.2.member' failed to satisfy constraint: member must satisfy enum value set",
            ),
        ),
        row(
            "a rotation period under 90 days",
            "TrentService.EnableKeyRotation",
            format!("{{\"KeyId\": \"{key_id}\", \"RotationPeriodInDays\": 89}}"),
            validation(
                "1 validation error detected: value '89' at 'rotationperiodindays' failed to satisfy constraint: \
                 member must have value greater than or equal to 90",
            ),
        ),
        row(
            "no key and a window of zero days",
            "TrentService.ScheduleKeyDeletion",
            "{\"PendingWindowInDays\": 0}",
            validation(
                "2 validation errors detected: value null at 'keyid' failed to satisfy constraint: member must not \
                 be null; value '0' at 'pendingwindowindays' failed to satisfy constraint: member must have value \
                 greater than or equal to 1",
            ),
        ),
        row(
            "an alias name and a target both missing",
            "TrentService.CreateAlias",
            "{}",
            validation(
                "2 validation errors detected: value null at 'aliasname' failed to satisfy constraint: member must \
                 not be null; value null at 'targetkeyid' failed to satisfy constraint: member must not be null",
            ),
        ),
        row(
            "a violation outranks a malformed grant token",
            encrypt,
            "{\"Plaintext\": \"AA==\", \"GrantTokens\": [\"not a token\"]}",
            validation("1 validation error detected: value null at 'keyid'"),
        ),
        row("unknown members are ignored", list, "{\"Limit\": 5, \"Surprise\": {\"deep\": [1, 2.5, null]}}", Ok),
        row(
            "member names are case-sensitive",
            encrypt,
            format!("{{\"keyid\": \"{key_id}\", \"Plaintext\": \"AA==\"}}"),
            validation("at 'keyid' failed to satisfy constraint: member must not be null"),
        ),
        row(
            "duplicated member",
            encrypt,
            format!("{{\"KeyId\": \"{key_id}\", \"KeyId\": \"alias/other\", \"Plaintext\": \"AA==\"}}"),
            serialization("duplicate field `keyid`"),
        ),
        row("null member is absent", list, "{\"Limit\": null}", Ok),
        // Empty and oversized bodies.
        row("empty body is an empty request", list, "", Ok),
        row("empty body for an operation with required members", encrypt, "", validation("must not be null")),
        row(
            "body over 1 MiB",
            list,
            vec![b' '; kms_server::http::MAX_BODY_BYTES + 1],
            Error(413, "RequestEntityTooLargeException", "at most"),
        ),
        // Routing.
        Row {
            name: "missing X-Amz-Target",
            target: None,
            content_type: JSON,
            body: b"{}".to_vec(),
            expect: Error(400, "UnknownOperationException", ""),
        },
        row(
            "unknown operation",
            "TrentService.FlyToTheMoon",
            "{}",
            Error(400, "UnknownOperationException", "flytothemoon"),
        ),
        row(
            "another service's target",
            "DynamoDB_20120810.ListTables",
            "{}",
            Error(400, "UnknownOperationException", "dynamodb_20120810.listtables"),
        ),
        row(
            "operation name is case-sensitive",
            "TrentService.listkeys",
            "{}",
            Error(400, "UnknownOperationException", "trentservice.listkeys"),
        ),
        // An operation not implemented yet checks its request like any other, then says so.
        row(
            "unimplemented operation",
            "TrentService.CreateCustomKeyStore",
            "{\"CustomKeyStoreName\": \"store\"}",
            Error(400, "UnsupportedOperationException", "createcustomkeystore"),
        ),
        row(
            "unimplemented operation with a malformed request",
            "TrentService.CreateCustomKeyStore",
            "{}",
            validation("1 validation error detected: value null at 'customkeystorename'"),
        ),
        // Content types.
        Row {
            name: "AWS JSON 1.0 content type",
            target: Some(list),
            content_type: "application/x-amz-json-1.0",
            body: b"{}".to_vec(),
            expect: Ok,
        },
        Row {
            name: "content type with a charset",
            target: Some(list),
            content_type: "application/x-amz-json-1.1; charset=utf-8",
            body: b"{}".to_vec(),
            expect: Ok,
        },
        Row {
            name: "plain JSON content type",
            target: Some(list),
            content_type: "application/json",
            body: b"{}".to_vec(),
            expect: Error(400, "UnknownOperationException", "content-type"),
        },
        Row {
            name: "text content type",
            target: Some(list),
            content_type: "text/plain",
            body: b"{}".to_vec(),
            expect: Error(400, "UnknownOperationException", "content-type"),
        },
    ]
}

fn status_code(status_line: &str) -> u16 {
    status_line.split_whitespace().nth(1).and_then(|s| s.parse().ok()).unwrap_or(0)
}

async fn key(t: &TestServer) -> String {
    t.create_key().await
}

#[tokio::test]
async fn every_malformed_request_gets_aws_exception_status_and_message() {
    let t = start().await;
    let key_id = key(&t).await;
    let creds = (t.admin_id.clone(), t.admin_secret.clone());
    let mut failures = Vec::new();
    for r in rows(&key_id) {
        let (status, body) =
            signed(t.server.local_addr, (&creds.0, &creds.1, None), "kms", r.target, r.content_type, &r.body).await;
        let code = status_code(&status);
        let json: serde_json::Value = serde_json::from_str(&body).unwrap_or_default();
        let kind = json["__type"].as_str().unwrap_or_default();
        let message = json["message"].as_str().unwrap_or_default();
        match r.expect {
            Expect::Ok => {
                if code != 200 {
                    failures.push(format!("{}: expected 200, got {status} {body}", r.name));
                }
            }
            Expect::Error(want_status, want_type, hint) => {
                let meaningful = message.len() >= 8 || want_type == "InvalidCiphertextException";
                if code != want_status || kind != want_type || !message.to_lowercase().contains(hint) || !meaningful {
                    failures.push(format!(
                        "{}: expected {want_status} {want_type} with '{hint}', got {status} {body}",
                        r.name
                    ));
                }
            }
        }
    }
    assert!(failures.is_empty(), "{} rows deviate:\n{}", failures.len(), failures.join("\n"));
    // Nothing a refused request carried was acted on: still one key, and the rows' server
    // stayed up (a panic in a handler would have closed the connection without an answer).
    assert_eq!(t.client().list_keys().send().await.unwrap().keys().len(), 1);
}

#[tokio::test]
async fn a_refused_plaintext_is_not_echoed() {
    // A Plaintext that fails decoding must not come back in the message (it is a secret).
    let t = start().await;
    let key_id = key(&t).await;
    let secret = "c2VjcmV0LXZhbHVlLTE*"; // not base64 because of '*'
    let body = format!("{{\"KeyId\": \"{key_id}\", \"Plaintext\": \"{secret}\"}}");
    let (status, answer) = signed(
        t.server.local_addr,
        (&t.admin_id, &t.admin_secret, None),
        "kms",
        Some("TrentService.Encrypt"),
        JSON,
        body.as_bytes(),
    )
    .await;
    assert_eq!(status_code(&status), 400, "{answer}");
    assert!(answer.contains("SerializationException"), "{answer}");
    assert!(!answer.contains("c2VjcmV0"), "the plaintext was echoed: {answer}");
}
