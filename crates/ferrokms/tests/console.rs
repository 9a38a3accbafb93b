//! The web console at `/console`, against the real server.
//!
//! `console_api_over_http` speaks plain HTTP to the console's endpoints: security headers,
//! cookie flags, sign-in refusals, CSRF, authorization through the console matching the API's
//! (a user without `kms:ListKeys` is refused), a role session's sign-in, the policy check, a
//! deactivated key ending its session, the audit records of console calls, sign-out and
//! sign-in throttling. `console_over_tls_sets_secure_cookies` does the same over TLS.
//!
//! `console_in_chromium` drives Debian's chromium headless with npm's `playwright-core`
//! (`tests/console/e2e.mjs`) through sign-in, key creation, policy editing, deletion, the audit
//! view and sign-out, checks each page with axe-core, and writes a screenshot of each page to
//! `docs/console/`. It prints
//! `SKIPPED` when node, chromium or playwright-core is missing, unless
//! `FERROKMS_REQUIRE_BROWSER` is set (`.ci/run` installs them and sets it).

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::print_stdout,
    clippy::disallowed_methods,
    missing_docs
)]

mod support;

use std::io::{Read, Write};
use std::net::TcpStream;
use std::path::Path;
use std::process::Command;
use std::time::{Duration, Instant};

use serde_json::{Value, json};

/// One HTTP/1.1 exchange on a fresh connection.
struct Answer {
    status: u16,
    headers: Vec<(String, String)>,
    body: String,
}

impl Answer {
    fn header(&self, name: &str) -> Option<&str> {
        self.headers.iter().find(|(n, _)| n.eq_ignore_ascii_case(name)).map(|(_, v)| v.as_str())
    }

    fn json(&self) -> Value {
        serde_json::from_str(&self.body).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.body))
    }
}

fn http(addr: &str, method: &str, path: &str, headers: &[(&str, &str)], body: &str) -> Answer {
    let stream = TcpStream::connect(addr).unwrap();
    stream.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
    exchange(stream, addr, method, path, headers, body)
}

/// One HTTP/1.1 request and its answer on `stream` (plain TCP or TLS).
fn exchange(
    mut stream: impl Read + Write,
    addr: &str,
    method: &str,
    path: &str,
    headers: &[(&str, &str)],
    body: &str,
) -> Answer {
    let mut request = format!("{method} {path} HTTP/1.1\r\nHost: {addr}\r\nConnection: close\r\n");
    for (name, value) in headers {
        request.push_str(&format!("{name}: {value}\r\n"));
    }
    request.push_str(&format!("Content-Length: {}\r\n\r\n{body}", body.len()));
    stream.write_all(request.as_bytes()).unwrap();
    let mut raw = Vec::new();
    // A TLS peer may close without close_notify once it has answered: what arrived is the answer.
    if let Err(e) = stream.read_to_end(&mut raw) {
        assert_eq!(e.kind(), std::io::ErrorKind::UnexpectedEof, "{e}");
    }
    let text = String::from_utf8_lossy(&raw).into_owned();
    let (head, body) = text.split_once("\r\n\r\n").unwrap();
    let mut lines = head.lines();
    let status = lines.next().unwrap().split(' ').nth(1).unwrap().parse().unwrap();
    let headers =
        lines.filter_map(|l| l.split_once(':')).map(|(n, v)| (n.trim().to_owned(), v.trim().to_owned())).collect();
    Answer { status, headers, body: body.to_owned() }
}

/// A signed-in console session: its cookie and CSRF token.
struct Session {
    cookie: String,
    csrf: String,
}

const JSON: (&str, &str) = ("Content-Type", "application/json");

fn sign_in(addr: &str, id: &str, secret: &str) -> Result<Session, Answer> {
    let body = json!({"AccessKeyId": id, "SecretAccessKey": secret}).to_string();
    let answer = http(addr, "POST", "/console/api/sign-in", &[JSON], &body);
    if answer.status != 200 {
        return Err(answer);
    }
    let cookie = answer.header("set-cookie").unwrap().split(';').next().unwrap().to_owned();
    let csrf = answer.json()["csrfToken"].as_str().unwrap().to_owned();
    Ok(Session { cookie, csrf })
}

fn call(addr: &str, s: &Session, service: &str, action: &str, parameters: Value) -> Answer {
    let body = json!({"Service": service, "Action": action, "Parameters": parameters}).to_string();
    http(addr, "POST", "/console/api/call", &[JSON, ("Cookie", &s.cookie), ("X-Ferrokms-Csrf", &s.csrf)], &body)
}

/// The text of the first `<name>` element of an XML answer.
fn xml_field<'a>(xml: &'a str, name: &str) -> &'a str {
    xml.split(&format!("<{name}>")).nth(1).and_then(|s| s.split(&format!("</{name}>")).next()).unwrap()
}

/// A query-protocol request (STS or IAM) to `service`, SigV4-signed as `(id, secret)`.
fn signed(addr: &str, (id, secret): (&str, &str), service: &str, body: &str) -> Answer {
    use aws_credential_types::Credentials;
    use aws_sigv4::http_request::{SignableBody, SignableRequest, SigningSettings, sign};
    use aws_smithy_runtime_api::client::identity::Identity;
    let identity: Identity = Credentials::new(id, secret, None, None, "console-test").into();
    let params = aws_sigv4::sign::v4::SigningParams::builder()
        .identity(&identity)
        .region("us-east-1")
        .name(service)
        .time(std::time::SystemTime::now())
        .settings(SigningSettings::default())
        .build()
        .unwrap()
        .into();
    let content_type = ("content-type", "application/x-www-form-urlencoded");
    let signed_headers = [("host", addr), content_type];
    let signable = SignableRequest::new(
        "POST",
        format!("http://{addr}/"),
        signed_headers.iter().copied(),
        SignableBody::Bytes(body.as_bytes()),
    )
    .unwrap();
    let (instructions, _) = sign(signable, &params).unwrap().into_parts();
    let signature: Vec<(String, String)> = instructions.headers().map(|(n, v)| (n.to_owned(), v.to_owned())).collect();
    let mut headers = vec![content_type];
    headers.extend(signature.iter().map(|(n, v)| (n.as_str(), v.as_str())));
    http(addr, "POST", "/", &headers, body)
}

/// An IAM action with the aws CLI's encoding of its parameters, which must succeed.
fn iam(addr: &str, creds: (&str, &str), action: &str, params: &[(&str, &str)]) -> String {
    let mut body = format!("Action={action}&Version=2010-05-08");
    for (name, value) in params {
        body.push_str(&format!("&{name}={}", kms_server::query::url_encode(value)));
    }
    let answer = signed(addr, creds, "iam", &body);
    assert_eq!(answer.status, 200, "{action}: {}", answer.body);
    answer.body
}

/// STS AssumeRole as `creds`: the role session's (id, secret, token).
fn assume_role(addr: &str, creds: (&str, &str), role_arn: &str) -> (String, String, String) {
    let body = format!(
        "Action=AssumeRole&Version=2011-06-15&RoleSessionName=console-test&RoleArn={}",
        kms_server::query::url_encode(role_arn)
    );
    let answer = signed(addr, creds, "sts", &body);
    assert_eq!(answer.status, 200, "AssumeRole: {}", answer.body);
    let field = |name| xml_field(&answer.body, name).to_owned();
    (field("AccessKeyId"), field("SecretAccessKey"), field("SessionToken"))
}

#[test]
fn console_api_over_http() {
    let dir = tempfile::tempdir().unwrap();
    let server = support::serve(dir.path());
    let addr = server.addr.as_str();
    let (id, secret) = support::credentials(dir.path());

    // The page and its assets: content types and the security headers.
    let page = http(addr, "GET", "/console/", &[], "");
    assert_eq!(page.status, 200);
    assert_eq!(page.header("content-type"), Some("text/html; charset=utf-8"));
    let csp = page.header("content-security-policy").unwrap();
    assert!(csp.contains("script-src 'self'") && csp.contains("frame-ancestors 'none'"), "{csp}");
    assert!(!csp.contains("unsafe-inline"), "{csp}");
    assert_eq!(page.header("x-content-type-options"), Some("nosniff"));
    assert!(!page.body.contains("<script>"), "no inline script");
    let script = http(addr, "GET", "/console/assets/app.js", &[], "");
    assert_eq!(script.header("content-type"), Some("text/javascript; charset=utf-8"));
    assert_eq!(http(addr, "GET", "/console/assets/../../etc/passwd", &[], "").status, 404);
    assert_eq!(http(addr, "GET", "/console", &[], "").header("location"), Some("/console/"));

    // Sign-in: a wrong secret, an unknown key and a malformed form are refused without a cookie.
    let wrong = sign_in(addr, &id, "wrong-secret").err().unwrap();
    assert_eq!(wrong.status, 401);
    assert!(wrong.header("set-cookie").is_none());
    assert_eq!(wrong.json()["__type"], "UnrecognizedClientException");
    assert_eq!(sign_in(addr, "AKIANOSUCHKEY0000000", &secret).err().unwrap().status, 401);
    let malformed = http(addr, "POST", "/console/api/sign-in", &[JSON], "{\"AccessKeyId\":");
    assert_eq!(malformed.status, 400);
    assert_eq!(malformed.json()["__type"], "ValidationException");
    let form = http(addr, "POST", "/console/api/sign-in", &[("Content-Type", "text/plain")], "{}");
    assert_eq!(form.status, 415, "only JSON (a cross-site form cannot send it)");

    // Sign-in: the cookie's flags.
    let body = json!({"AccessKeyId": id, "SecretAccessKey": secret}).to_string();
    let signed = http(addr, "POST", "/console/api/sign-in", &[JSON], &body);
    assert_eq!(signed.status, 200, "{}", signed.body);
    let cookie = signed.header("set-cookie").unwrap();
    assert!(cookie.starts_with("ferrokms_console="), "{cookie}");
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console"] {
        assert!(cookie.split("; ").any(|f| f == flag), "{flag} missing: {cookie}");
    }
    assert!(!cookie.contains("Secure"), "plain HTTP on loopback: no Secure flag ({cookie})");
    assert_eq!(signed.header("cache-control"), Some("no-store"));
    let admin = Session {
        cookie: cookie.split(';').next().unwrap().to_owned(),
        csrf: signed.json()["csrfToken"].as_str().unwrap().to_owned(),
    };
    assert_eq!(admin.csrf.len(), 64);
    // Signing in again from the same browser replaces its session with a new id.
    let again = http(addr, "POST", "/console/api/sign-in", &[JSON, ("Cookie", &admin.cookie)], &body);
    assert_eq!(again.status, 200);
    let replaced = http(addr, "GET", "/console/api/session", &[("Cookie", &admin.cookie)], "");
    assert_eq!(replaced.status, 401, "the previous session ended");
    let admin = Session {
        cookie: again.header("set-cookie").unwrap().split(';').next().unwrap().to_owned(),
        csrf: again.json()["csrfToken"].as_str().unwrap().to_owned(),
    };
    assert_ne!(admin.csrf, signed.json()["csrfToken"].as_str().unwrap());
    let info = http(addr, "GET", "/console/api/session", &[("Cookie", &admin.cookie)], "").json();
    assert_eq!(info["accessKeyId"], id.as_str());
    assert!(info["keySpecs"].as_array().unwrap().iter().any(|s| s == "ML_DSA_65"));

    // CSRF: a state-changing call without the token, with another, or marked cross-site is
    // refused; with it, it runs.
    let create = json!({"Service": "kms", "Action": "CreateKey", "Parameters": {}}).to_string();
    let no_token = http(addr, "POST", "/console/api/call", &[JSON, ("Cookie", &admin.cookie)], &create);
    assert_eq!(no_token.status, 403);
    assert_eq!(no_token.json()["__type"], "InvalidCsrfTokenException");
    let other = "00".repeat(32);
    let wrong_token = http(
        addr,
        "POST",
        "/console/api/call",
        &[JSON, ("Cookie", &admin.cookie), ("X-Ferrokms-Csrf", &other)],
        &create,
    );
    assert_eq!(wrong_token.status, 403);
    let cross_site = http(
        addr,
        "POST",
        "/console/api/call",
        &[JSON, ("Cookie", &admin.cookie), ("X-Ferrokms-Csrf", &admin.csrf), ("Sec-Fetch-Site", "cross-site")],
        &create,
    );
    assert_eq!(cross_site.status, 403);
    let no_cookie = http(addr, "POST", "/console/api/call", &[JSON, ("X-Ferrokms-Csrf", &admin.csrf)], &create);
    assert_eq!(no_cookie.status, 401);
    let listed = call(addr, &admin, "kms", "ListKeys", json!({}));
    assert_eq!(listed.json()["Keys"].as_array().unwrap().len(), 0, "the refused CreateKeys made nothing");
    let created = call(addr, &admin, "kms", "CreateKey", json!({"Description": "from the console"}));
    assert_eq!(created.status, 200, "{}", created.body);
    let key_id = created.json()["KeyMetadata"]["KeyId"].as_str().unwrap().to_owned();

    // The policy check says what PutKeyPolicy would, saving nothing.
    let check = |s: &Session, policy: &str| {
        let body = json!({"KeyId": key_id, "Policy": policy}).to_string();
        http(
            addr,
            "POST",
            "/console/api/check-policy",
            &[JSON, ("Cookie", &s.cookie), ("X-Ferrokms-Csrf", &s.csrf)],
            &body,
        )
    };
    let current = call(addr, &admin, "kms", "GetKeyPolicy", json!({"KeyId": key_id})).json()["Policy"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(check(&admin, &current).json(), json!({"valid": true, "lockoutSafe": true}));
    let only_describe = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Principal": {"AWS": "*"},
        "Action": "kms:DescribeKey", "Resource": "*"}]});
    assert_eq!(check(&admin, &only_describe.to_string()).json(), json!({"valid": true, "lockoutSafe": false}));
    let malformed = check(&admin, r#"{"Version": "2012-10-17", "Statement": [{"Effect": "Perhaps"}]}"#).json();
    assert_eq!(malformed["valid"], false);
    assert_eq!(malformed["__type"], "MalformedPolicyDocumentException");
    let unknown = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": format!("arn:aws:iam::{}:user/nobody-here", info["account"].as_str().unwrap())},
        "Action": "kms:*", "Resource": "*"}]});
    assert_eq!(check(&admin, &unknown.to_string()).json()["valid"], false, "unknown principals are refused");
    let after = call(addr, &admin, "kms", "GetKeyPolicy", json!({"KeyId": key_id})).json()["Policy"]
        .as_str()
        .unwrap()
        .to_owned();
    assert_eq!(after, current, "checking saved nothing");
    let no_token = http(
        addr,
        "POST",
        "/console/api/check-policy",
        &[JSON, ("Cookie", &admin.cookie)],
        &json!({"KeyId": key_id, "Policy": current}).to_string(),
    );
    assert_eq!(no_token.status, 403);

    // Bad calls get clear errors, never a 500.
    for (body, kind) in [
        (json!({"Service": "sts", "Action": "GetCallerIdentity"}), "ValidationException"),
        (json!({"Service": "kms", "Action": "../x"}), "ValidationException"),
        (json!({"Service": "kms", "Action": "NoSuchOperation"}), "UnknownOperationException"),
        (json!({"Service": "iam", "Action": "TagUser", "Parameters": {"Tags": []}}), "ValidationException"),
    ] {
        let answer = http(
            addr,
            "POST",
            "/console/api/call",
            &[JSON, ("Cookie", &admin.cookie), ("X-Ferrokms-Csrf", &admin.csrf)],
            &body.to_string(),
        );
        assert_eq!(answer.status, 400, "{body}: {}", answer.body);
        assert!(answer.body.contains(kind), "{body}: {}", answer.body);
    }
    // The admin API (FerrokmsAdmin.*) is not reachable: a KMS action names TrentService's.
    let admin_api = call(addr, &admin, "kms", "ListPrincipals", json!({}));
    assert_eq!(admin_api.status, 400);
    assert!(admin_api.body.contains("UnknownOperationException"), "{}", admin_api.body);

    // Authorization is the API's: a user with no policy is refused ListKeys through the
    // console too.
    assert_eq!(call(addr, &admin, "iam", "CreateUser", json!({"UserName": "nobody"})).status, 200);
    let key = call(addr, &admin, "iam", "CreateAccessKey", json!({"UserName": "nobody"}));
    assert_eq!(key.status, 200, "{}", key.body);
    assert_eq!(key.header("content-type"), Some("text/xml"));
    let (nobody_id, nobody_secret) =
        (xml_field(&key.body, "AccessKeyId").to_owned(), xml_field(&key.body, "SecretAccessKey").to_owned());
    let nobody = sign_in(addr, &nobody_id, &nobody_secret).unwrap_or_else(|a| panic!("{}", a.body));
    let denied = call(addr, &nobody, "kms", "ListKeys", json!({}));
    assert_eq!(denied.status, 400);
    assert_eq!(denied.json()["__type"], "AccessDeniedException");
    assert!(denied.json()["message"].as_str().unwrap().contains("kms:ListKeys"), "{}", denied.body);
    let denied_key = call(addr, &nobody, "kms", "DescribeKey", json!({"KeyId": key_id}));
    assert_eq!(denied_key.json()["__type"], "AccessDeniedException", "{}", denied_key.body);
    let verify_denied = http(
        addr,
        "POST",
        "/console/api/verify-audit",
        &[JSON, ("Cookie", &nobody.cookie), ("X-Ferrokms-Csrf", &nobody.csrf)],
        "{}",
    );
    assert_eq!(verify_denied.json()["__type"], "AccessDeniedException", "verifying needs cloudtrail:LookupEvents");
    let denied_check = check(&nobody, &current);
    assert_eq!(denied_check.status, 400);
    assert_eq!(denied_check.json()["__type"], "AccessDeniedException", "the check needs kms:GetKeyPolicy");
    assert_eq!(call(addr, &nobody, "iam", "ListUsers", json!({})).status, 403, "IAM answers AccessDenied with 403");

    // A role session signs in with its session token (and not without it, or with another).
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": info["principal"]}, "Action": "sts:AssumeRole"}]});
    let role = call(
        addr,
        &admin,
        "iam",
        "CreateRole",
        json!({"RoleName": "console-reader", "AssumeRolePolicyDocument": trust.to_string()}),
    );
    assert_eq!(role.status, 200, "{}", role.body);
    let reader =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"}]});
    let put = call(
        addr,
        &admin,
        "iam",
        "PutRolePolicy",
        json!({"RoleName": "console-reader", "PolicyName": "list", "PolicyDocument": reader.to_string()}),
    );
    assert_eq!(put.status, 200, "{}", put.body);
    let (role_id, role_secret, token) = assume_role(addr, (&id, &secret), xml_field(&role.body, "Arn"));
    assert_eq!(sign_in(addr, &role_id, &role_secret).err().unwrap().status, 401, "a session needs its token");
    let with = |token: &str| {
        let body = json!({"AccessKeyId": role_id, "SecretAccessKey": role_secret, "SessionToken": token}).to_string();
        http(addr, "POST", "/console/api/sign-in", &[JSON], &body)
    };
    assert_eq!(with(&format!("{token}x")).status, 401, "another token");
    let session = with(&token);
    assert_eq!(session.status, 200, "{}", session.body);
    assert!(
        session.json()["principal"].as_str().unwrap().contains(":assumed-role/console-reader/"),
        "{}",
        session.body
    );
    let role_session = Session {
        cookie: session.header("set-cookie").unwrap().split(';').next().unwrap().to_owned(),
        csrf: session.json()["csrfToken"].as_str().unwrap().to_owned(),
    };
    let role_keys = call(addr, &role_session, "kms", "ListKeys", json!({}));
    assert_eq!(role_keys.status, 200, "{}", role_keys.body);
    assert_eq!(role_keys.json()["Keys"].as_array().unwrap().len(), 1);
    let role_denied = call(addr, &role_session, "kms", "CreateKey", json!({}));
    assert_eq!(role_denied.json()["__type"], "AccessDeniedException", "{}", role_denied.body);

    // Its key made inactive, the next call finds the session ended.
    let inactive = call(
        addr,
        &admin,
        "iam",
        "UpdateAccessKey",
        json!({"UserName": "nobody", "AccessKeyId": nobody_id, "Status": "Inactive"}),
    );
    assert_eq!(inactive.status, 200, "{}", inactive.body);
    let ended = call(addr, &nobody, "kms", "ListKeys", json!({}));
    assert_eq!(ended.status, 401, "{}", ended.body);
    assert_eq!(ended.json()["__type"], "SignedOutException");
    assert_eq!(sign_in(addr, &nobody_id, &nobody_secret).err().unwrap().status, 401, "inactive keys do not sign in");

    // The console's calls are in the audit trail as the principal's, with the console's user
    // agent (refused ones too); sign-ins as ConsoleLogin. Reads and refusals are written in
    // batches, off the request path: wait for them.
    let records = |name: &str| -> Vec<Value> {
        let attribute = json!([{"AttributeKey": "EventName", "AttributeValue": name}]);
        let events = call(addr, &admin, "cloudtrail", "LookupEvents", json!({"LookupAttributes": attribute})).json();
        events["Events"]
            .as_array()
            .unwrap()
            .iter()
            .map(|e| serde_json::from_str(e["CloudTrailEvent"].as_str().unwrap()).unwrap())
            .collect()
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    loop {
        let created = records("CreateKey");
        let listed = records("ListKeys");
        let logins = records("ConsoleLogin");
        let by_console = |r: &Value| r["userAgent"] == "ferrokms-console";
        let done = created.iter().any(|r| by_console(r) && r["userIdentity"]["accessKeyId"] == id.as_str())
            && listed.iter().any(|r| {
                by_console(r)
                    && r["errorCode"] == "AccessDeniedException"
                    && r["userIdentity"]["accessKeyId"] == nobody_id.as_str()
            })
            && logins.iter().filter(|r| r["responseElements"]["consoleLogin"] == "Success").count() >= 2;
        if done {
            assert!(created.iter().all(by_console), "the CSRF-refused CreateKeys never reached the API: {created:?}");
            break;
        }
        assert!(Instant::now() < deadline, "console calls missing from the trail: {created:?} {listed:?} {logins:?}");
        std::thread::sleep(Duration::from_millis(200));
    }

    // The audit chain's verification, through LookupEvents' authorization.
    let verify = http(
        addr,
        "POST",
        "/console/api/verify-audit",
        &[JSON, ("Cookie", &admin.cookie), ("X-Ferrokms-Csrf", &admin.csrf)],
        "{}",
    );
    assert_eq!(verify.status, 200, "{}", verify.body);
    assert_eq!(verify.json()["intact"], true, "{}", verify.body);
    assert!(verify.json()["records"].as_u64().unwrap() > 10, "{}", verify.body);

    // The dashboard's samples.
    let metrics = http(addr, "GET", "/console/api/metrics", &[("Cookie", &admin.cookie)], "");
    assert_eq!(metrics.status, 200, "{}", metrics.body);
    assert!(metrics.json()["points"].is_array());
    assert_eq!(http(addr, "GET", "/console/api/metrics", &[], "").status, 401);

    // Sign-out needs the token, then ends the session.
    let sign_out = |headers: &[(&str, &str)]| http(addr, "POST", "/console/api/sign-out", headers, "{}");
    assert_eq!(sign_out(&[JSON, ("Cookie", &admin.cookie)]).status, 403);
    let out = sign_out(&[JSON, ("Cookie", &admin.cookie), ("X-Ferrokms-Csrf", &admin.csrf)]);
    assert_eq!(out.status, 200);
    assert!(out.header("set-cookie").unwrap().contains("Max-Age=0"));
    assert_eq!(call(addr, &admin, "kms", "ListKeys", json!({})).status, 401);
    assert_eq!(http(addr, "GET", "/console/api/session", &[("Cookie", &admin.cookie)], "").status, 401);

    // Guessing is limited as failed SigV4 requests are, per source: past the burst (20 by
    // default, with the failures above counted), even the right secret is not checked.
    let mut throttled = 0;
    for _ in 0..25 {
        let answer = sign_in(addr, &id, "guess").err().unwrap();
        if answer.status == 429 {
            assert_eq!(answer.json()["__type"], "ThrottlingException");
            throttled += 1;
        }
    }
    assert!(throttled >= 5, "{throttled} of 25 guesses throttled");
    assert_eq!(sign_in(addr, &id, &secret).err().unwrap().status, 429, "not checked past the limit");
    drop(server);
}

/// Over TLS the session cookie is also `Secure`, and the console works the same.
#[test]
fn console_over_tls_sets_secure_cookies() {
    use rustls::pki_types::pem::PemObject;
    use rustls::pki_types::{CertificateDer, ServerName};
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    let init = Command::new(support::BIN).args(["init", "--self-signed", "--data-dir"]).arg(&data).output().unwrap();
    assert!(init.status.success(), "{}", String::from_utf8_lossy(&init.stderr));
    let (cert, key, ca) = (data.join("tls/cert.pem"), data.join("tls/key.pem"), data.join("tls/ca.pem"));
    let mut child = Command::new(support::BIN)
        .args(["serve", "--listen", "127.0.0.1:0", "--data-dir"])
        .arg(&data)
        .args(["--tls-cert", cert.to_str().unwrap(), "--tls-key", key.to_str().unwrap()])
        .stdout(std::process::Stdio::piped())
        .stderr(std::process::Stdio::null())
        .spawn()
        .unwrap();
    let mut lines = std::io::BufRead::lines(std::io::BufReader::new(child.stdout.take().unwrap()));
    let mut addr = None;
    for line in lines.by_ref() {
        let line = line.unwrap();
        if let Some(a) = line.strip_prefix("ferrokms listening on https://") {
            addr = Some(a.to_owned());
        }
        if line.starts_with("ready;") {
            break;
        }
    }
    std::thread::spawn(move || for _ in lines {});
    let server = support::Server { child, addr: addr.expect("serves https"), first_output: Vec::new() };
    let mut roots = rustls::RootCertStore::empty();
    for cert in CertificateDer::pem_file_iter(&ca).unwrap() {
        roots.add(cert.unwrap()).unwrap();
    }
    let config = std::sync::Arc::new(
        rustls::ClientConfig::builder_with_provider(std::sync::Arc::new(kms_crypto::tls_provider()))
            .with_safe_default_protocol_versions()
            .unwrap()
            .with_root_certificates(roots)
            .with_no_client_auth(),
    );
    let https = |method: &str, path: &str, headers: &[(&str, &str)], body: &str| {
        let name = ServerName::IpAddress(std::net::IpAddr::from([127, 0, 0, 1]).into());
        let connection = rustls::ClientConnection::new(std::sync::Arc::clone(&config), name).unwrap();
        let socket = TcpStream::connect(&server.addr).unwrap();
        socket.set_read_timeout(Some(Duration::from_secs(30))).unwrap();
        exchange(rustls::StreamOwned::new(connection, socket), &server.addr, method, path, headers, body)
    };
    let (id, secret) = support::credentials(&data);
    let body = json!({"AccessKeyId": id, "SecretAccessKey": secret}).to_string();
    let signed = https("POST", "/console/api/sign-in", &[JSON], &body);
    assert_eq!(signed.status, 200, "{}", signed.body);
    let cookie = signed.header("set-cookie").unwrap().to_owned();
    for flag in ["HttpOnly", "SameSite=Strict", "Path=/console", "Secure"] {
        assert!(cookie.split("; ").any(|f| f == flag), "{flag} missing: {cookie}");
    }
    let session = cookie.split(';').next().unwrap();
    let csrf = signed.json()["csrfToken"].as_str().unwrap().to_owned();
    let call = json!({"Service": "kms", "Action": "ListKeys"}).to_string();
    let listed = https("POST", "/console/api/call", &[JSON, ("Cookie", session), ("X-Ferrokms-Csrf", &csrf)], &call);
    assert_eq!(listed.status, 200, "{}", listed.body);
    assert!(listed.json()["Keys"].is_array());
    drop(server);
}

/// Whether the browser test can run: node, Debian's chromium and the installed playwright-core.
fn browser_ready(test_dir: &Path) -> Result<(), String> {
    if !Command::new("node").arg("--version").output().is_ok_and(|o| o.status.success()) {
        return Err("node is not installed".into());
    }
    if !Path::new("/usr/bin/chromium").exists() {
        return Err("chromium is not installed (apt-get install chromium)".into());
    }
    if !test_dir.join("node_modules/playwright-core").exists() {
        return Err(format!("playwright-core is not installed (npm ci in {})", test_dir.display()));
    }
    Ok(())
}

#[test]
fn console_in_chromium() {
    let manifest = Path::new(env!("CARGO_MANIFEST_DIR"));
    let test_dir = manifest.join("tests/console");
    if let Err(reason) = browser_ready(&test_dir) {
        assert!(
            std::env::var_os("FERROKMS_REQUIRE_BROWSER").is_none(),
            "{reason}, but FERROKMS_REQUIRE_BROWSER is set"
        );
        println!("SKIPPED: {reason}");
        return;
    }
    let screenshots = manifest.join("../../docs/console");
    std::fs::create_dir_all(&screenshots).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let server = support::serve(dir.path());
    let (id, secret) = support::credentials(dir.path());
    // Principals for the principals page to list.
    let creds = (id.as_str(), secret.as_str());
    let admin_arn =
        xml_field(&signed(&server.addr, creds, "sts", "Action=GetCallerIdentity&Version=2011-06-15").body, "Arn")
            .to_owned();
    iam(&server.addr, creds, "CreateUser", &[("UserName", "alice")]);
    let trust = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Principal": {"AWS": admin_arn}, "Action": "sts:AssumeRole"}]});
    iam(
        &server.addr,
        creds,
        "CreateRole",
        &[("RoleName", "deployer"), ("AssumeRolePolicyDocument", &trust.to_string())],
    );
    let readers = json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow",
        "Action": ["kms:DescribeKey", "kms:ListKeys"], "Resource": "*"}]});
    iam(&server.addr, creds, "CreatePolicy", &[("PolicyName", "KeyReaders"), ("PolicyDocument", &readers.to_string())]);
    // A user who may list keys but not describe them.
    iam(&server.addr, creds, "CreateUser", &[("UserName", "lister")]);
    let list_only =
        json!({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "kms:ListKeys", "Resource": "*"}]});
    iam(
        &server.addr,
        creds,
        "PutUserPolicy",
        &[("UserName", "lister"), ("PolicyName", "list"), ("PolicyDocument", &list_only.to_string())],
    );
    let lister = iam(&server.addr, creds, "CreateAccessKey", &[("UserName", "lister")]);
    let output = Command::new("node")
        .arg(test_dir.join("e2e.mjs"))
        .current_dir(&test_dir)
        .env("CONSOLE_URL", format!("http://{}/console/", server.addr))
        .env("ACCESS_KEY_ID", &id)
        .env("SECRET_ACCESS_KEY", &secret)
        .env("LISTER_ACCESS_KEY_ID", xml_field(&lister, "AccessKeyId"))
        .env("LISTER_SECRET_ACCESS_KEY", xml_field(&lister, "SecretAccessKey"))
        .env("SCREENSHOTS", &screenshots)
        .env("FAILURE_SCREENSHOT", std::env::temp_dir().join("ferrokms-console-failure.png"))
        .env("CHROMIUM", "/usr/bin/chromium")
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let stderr = String::from_utf8_lossy(&output.stderr);
    println!("{stdout}");
    assert!(output.status.success(), "the browser test failed:\n{stdout}\n{stderr}");
    assert!(stdout.contains("console e2e: ok"));
    for page in ["sign-in", "keys", "key", "key-policy", "audit", "principals", "dashboard"] {
        assert!(screenshots.join(format!("{page}.png")).exists(), "no screenshot of {page}");
    }
    drop(server);
}
