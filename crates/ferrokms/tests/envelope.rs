//! `ferrokms encrypt` / `ferrokms decrypt`, the binary, against a real ferrokms server started in
//! process: files and pipes, context checks, refused messages leave no output file, a 1 GiB round
//! trip in bounded memory, and interoperability with the AWS Encryption SDK CLI both ways.

#![allow(
    clippy::unwrap_used,
    clippy::expect_used,
    clippy::indexing_slicing,
    clippy::panic,
    clippy::print_stdout,
    clippy::print_stderr,
    missing_docs
)]

use std::io::{Read as _, Write as _};
use std::path::Path;
use std::process::{Command, Output, Stdio};

use aws_credential_types::Credentials;
use aws_sdk_kms::config::{BehaviorVersion, Region};

const BIN: &str = env!("CARGO_BIN_EXE_ferrokms");

struct Fixture {
    server: kms_server::RunningServer,
    access_key: String,
    secret: String,
    kms: aws_sdk_kms::Client,
    key_arn: String,
    dir: tempfile::TempDir,
}

async fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let mut config = kms_server::ServerConfig::new(dir.path().join("data"));
    config.listen = "127.0.0.1:0".parse().unwrap();
    let server = kms_server::start(config).await.unwrap();
    let admin = server.new_admin.as_ref().unwrap();
    let access_key = admin.access_key_id.clone();
    let secret = String::from_utf8(admin.secret_access_key.expose_secret().to_vec()).unwrap();
    let kms_config = aws_sdk_kms::Config::builder()
        .behavior_version(BehaviorVersion::latest())
        .region(Region::new("us-east-1"))
        .endpoint_url(format!("http://{}", server.local_addr))
        .credentials_provider(Credentials::new(&access_key, &secret, None, None, "test"))
        .build();
    let kms = aws_sdk_kms::Client::from_conf(kms_config);
    let key_arn = kms.create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    Fixture { server, access_key, secret, kms, key_arn, dir }
}

impl Fixture {
    /// A command with the AWS environment pointing at the test server and nothing from the
    /// user's own AWS configuration.
    fn command(&self, program: &str) -> Command {
        let mut command = Command::new(program);
        for var in ["AWS_PROFILE", "AWS_SESSION_TOKEN", "AWS_ENDPOINT_URL", "AWS_DEFAULT_PROFILE"] {
            command.env_remove(var);
        }
        command
            .env("AWS_ENDPOINT_URL_KMS", format!("http://{}", self.server.local_addr))
            .env("AWS_ACCESS_KEY_ID", &self.access_key)
            .env("AWS_SECRET_ACCESS_KEY", &self.secret)
            .env("AWS_REGION", "us-east-1")
            .env("AWS_DEFAULT_REGION", "us-east-1")
            .env("AWS_CONFIG_FILE", self.dir.path().join("no-aws-config"))
            .env("AWS_SHARED_CREDENTIALS_FILE", self.dir.path().join("no-aws-credentials"))
            .env("AWS_EC2_METADATA_DISABLED", "true")
            .env("FERROKMS_LOG", "warn");
        command
    }

    fn ferrokms(&self, args: &[&str]) -> Command {
        let mut command = self.command(BIN);
        command.args(args);
        command
    }

    fn path(&self, name: &str) -> String {
        self.dir.path().join(name).to_str().unwrap().to_owned()
    }
}

/// Runs a command on a blocking thread (the in-process server needs the runtime meanwhile).
async fn run(mut command: Command, stdin: Vec<u8>) -> Output {
    tokio::task::spawn_blocking(move || {
        let mut child = command.stdin(Stdio::piped()).stdout(Stdio::piped()).stderr(Stdio::piped()).spawn().unwrap();
        let mut input = child.stdin.take().unwrap();
        let writer = std::thread::spawn(move || {
            let _ = input.write_all(&stdin);
        });
        let output = child.wait_with_output().unwrap();
        writer.join().unwrap();
        output
    })
    .await
    .unwrap()
}

fn stderr(output: &Output) -> String {
    String::from_utf8_lossy(&output.stderr).into_owned()
}

fn sample(len: usize) -> Vec<u8> {
    (0..len).map(|i| (i.wrapping_mul(31) ^ (i >> 8)) as u8).collect()
}

#[tokio::test]
async fn files_and_pipes_round_trip_and_refusals_leave_no_output() {
    let f = fixture().await;
    let plaintext = sample(3 * 4096 + 17);
    std::fs::write(f.path("plain"), &plaintext).unwrap();

    // File to file, with context.
    let out = run(
        f.ferrokms(&[
            "encrypt",
            "--key-id",
            &f.key_arn,
            "--context",
            "purpose=test",
            "--context",
            "tenant=7",
            "--input",
            &f.path("plain"),
            "--output",
            &f.path("message"),
        ]),
        vec![],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let message = std::fs::read(f.path("message")).unwrap();
    assert_eq!(&message[..3], &[0x02, 0x04, 0x78], "suite 0x0478 by default");
    let out = run(
        f.ferrokms(&["decrypt", "--context", "tenant=7", "--input", &f.path("message"), "--output", &f.path("back")]),
        vec![],
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(std::fs::read(f.path("back")).unwrap(), plaintext);

    // Wrong context: refused, a clear message, a failure status, and no output file.
    let out = run(
        f.ferrokms(&["decrypt", "--context", "tenant=8", "--input", &f.path("message"), "--output", &f.path("wrong")]),
        vec![],
    )
    .await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("does not contain tenant=8"), "{}", stderr(&out));
    assert!(!Path::new(&f.path("wrong")).exists());

    // Tampered body: refused, no output file (even though earlier frames authenticated).
    let mut tampered = message.clone();
    let at = tampered.len() - 30;
    tampered[at] ^= 1;
    std::fs::write(f.path("tampered"), &tampered).unwrap();
    let out = run(f.ferrokms(&["decrypt", "--input", &f.path("tampered"), "--output", &f.path("t-out")]), vec![]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("does not authenticate"), "{}", stderr(&out));
    assert!(!Path::new(&f.path("t-out")).exists());
    // Nothing left behind in the directory but our own files.
    let leftovers: Vec<_> = std::fs::read_dir(f.dir.path())
        .unwrap()
        .filter_map(|e| e.ok()?.file_name().into_string().ok())
        .filter(|n| n.starts_with(".ferrokms-"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");

    // Unsigned message truncated, to stdout: the authenticated frames went out, and the command
    // fails saying that they must be discarded.
    let out = run(f.ferrokms(&["decrypt"]), message[..message.len() - 60].to_vec()).await;
    assert_eq!(out.status.code(), Some(1));
    assert!(stderr(&out).contains("incomplete and must be discarded"), "{}", stderr(&out));
    assert!(out.stdout.len() < plaintext.len());

    // Strict mode with another key: refused.
    let other = f.kms.create_key().send().await.unwrap().key_metadata.unwrap().arn.unwrap();
    let out = run(f.ferrokms(&["decrypt", "--key-id", &other, "--input", &f.path("message")]), vec![]).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("not among the allowed keys"), "{}", stderr(&out));

    // Signed suite through pipes, under an alias; a truncated signed message prints nothing.
    f.kms.create_alias().alias_name("alias/cli").target_key_id(&f.key_arn).send().await.unwrap();
    let out = run(
        f.ferrokms(&["encrypt", "--key-id", "alias/cli", "--algorithm", "committing-signed", "--context", "a=b"]),
        plaintext.clone(),
    )
    .await;
    assert!(out.status.success(), "{}", stderr(&out));
    let signed = out.stdout;
    assert_eq!(&signed[..3], &[0x02, 0x05, 0x78]);
    let out = run(f.ferrokms(&["decrypt", "--key-id", &f.key_arn, "--context", "a=b"]), signed.clone()).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, plaintext);
    let out = run(f.ferrokms(&["decrypt"]), signed[..signed.len() - 10].to_vec()).await;
    assert!(!out.status.success());
    assert!(out.stdout.is_empty(), "no plaintext before the signature verifies");
    assert!(stderr(&out).contains("truncated"), "{}", stderr(&out));

    // Usage errors.
    let out = run(f.ferrokms(&["encrypt", "--key-id", &f.key_arn, "--context", "novalue"]), vec![]).await;
    assert_eq!(out.status.code(), Some(2), "clap's usage error");
    let out = run(f.ferrokms(&["encrypt", "--key-id", "alias/missing"]), b"x".to_vec()).await;
    assert!(!out.status.success());
    assert!(stderr(&out).contains("NotFoundException"), "{}", stderr(&out));
    f.server.shutdown().await;
}

/// The generated 1 GiB input: 1 MiB blocks of fixed noise, each stamped with its index so that
/// a lost, repeated or reordered block is seen.
fn block(noise: &[u8], index: u64) -> Vec<u8> {
    let mut b = noise.to_vec();
    b[..8].copy_from_slice(&index.to_be_bytes());
    b
}

/// Peak resident set size (VmHWM, KiB) of a running process, sampled until it exits.
fn watch_peak_rss(pid: u32) -> std::thread::JoinHandle<u64> {
    std::thread::spawn(move || {
        let mut peak = 0;
        while let Ok(status) = std::fs::read_to_string(format!("/proc/{pid}/status")) {
            let Some(kib) = status
                .lines()
                .find_map(|l| l.strip_prefix("VmHWM:"))
                .and_then(|v| v.trim().trim_end_matches("kB").trim().parse::<u64>().ok())
            else {
                break; // a zombie has no memory lines
            };
            peak = peak.max(kib);
            std::thread::sleep(std::time::Duration::from_millis(5));
        }
        peak
    })
}

/// 1 GiB from a pipe into `ferrokms encrypt --output FILE`, then `ferrokms decrypt --input FILE`
/// into a pipe, compared block by block. Each process's peak RSS must stay under 64 MiB.
#[tokio::test]
#[allow(clippy::disallowed_methods)] // wall time is what is reported
async fn one_gib_round_trip_in_bounded_memory() {
    const BLOCKS: u64 = 1024;
    const BUDGET_KIB: u64 = 64 * 1024;
    let f = fixture().await;
    let noise = sample(1 << 20);
    let message = f.path("big.msg");

    let mut encrypt = f.ferrokms(&["encrypt", "--key-id", &f.key_arn, "--context", "size=1GiB", "--output", &message]);
    let noise_in = noise.clone();
    let (encrypt_peak, encrypt_secs) = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut child = encrypt.stdin(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let watcher = watch_peak_rss(child.id());
        let mut stdin = child.stdin.take().unwrap();
        for i in 0..BLOCKS {
            stdin.write_all(&block(&noise_in, i)).unwrap();
        }
        drop(stdin);
        assert!(child.wait().unwrap().success());
        (watcher.join().unwrap(), started.elapsed().as_secs_f64())
    })
    .await
    .unwrap();
    let size = std::fs::metadata(&message).unwrap().len();
    assert!(size > BLOCKS << 20);

    let mut decrypt = f.ferrokms(&["decrypt", "--context", "size=1GiB", "--input", &message]);
    let (decrypt_peak, decrypt_secs) = tokio::task::spawn_blocking(move || {
        let started = std::time::Instant::now();
        let mut child = decrypt.stdout(Stdio::piped()).stderr(Stdio::inherit()).spawn().unwrap();
        let watcher = watch_peak_rss(child.id());
        let mut stdout = child.stdout.take().unwrap();
        let mut got = vec![0u8; 1 << 20];
        for i in 0..BLOCKS {
            stdout.read_exact(&mut got).unwrap();
            assert!(got == block(&noise, i), "block {i} differs");
        }
        assert_eq!(stdout.read(&mut got).unwrap(), 0, "no bytes beyond 1 GiB");
        assert!(child.wait().unwrap().success());
        (watcher.join().unwrap(), started.elapsed().as_secs_f64())
    })
    .await
    .unwrap();
    println!(
        "1 GiB: encrypt {encrypt_secs:.1} s, peak RSS {} MiB; decrypt {decrypt_secs:.1} s, peak RSS {} MiB; message {size} bytes",
        encrypt_peak / 1024,
        decrypt_peak / 1024
    );
    assert!(encrypt_peak > 0 && decrypt_peak > 0, "RSS was sampled");
    assert!(encrypt_peak < BUDGET_KIB, "encrypt peak RSS {encrypt_peak} KiB over budget");
    assert!(decrypt_peak < BUDGET_KIB, "decrypt peak RSS {decrypt_peak} KiB over budget");
    f.server.shutdown().await;
}

fn esdk_cli() -> Option<&'static str> {
    let found = Command::new("aws-encryption-cli").arg("--version").output().is_ok_and(|o| o.status.success());
    if found {
        return Some("aws-encryption-cli");
    }
    assert!(
        std::env::var("FERROKMS_REQUIRE_ESDK_CLI").is_err(),
        "FERROKMS_REQUIRE_ESDK_CLI is set but aws-encryption-cli is not installed"
    );
    println!("skipping: aws-encryption-cli (pip install aws-encryption-sdk-cli) is not installed");
    None
}

/// Messages cross both ways between `ferrokms` and the AWS Encryption SDK CLI (Python), with an
/// encryption context, for the ESDK's default signing suite and the committing unsigned one.
#[tokio::test]
async fn aws_encryption_sdk_cli_interoperates_both_ways() {
    let Some(esdk) = esdk_cli() else { return };
    let f = fixture().await;
    let plaintext = sample(2 * 4096 + 99);
    std::fs::write(f.path("plain"), &plaintext).unwrap();
    let wrapping = format!("key={}", f.key_arn);

    // ferrokms → ESDK at the sizes where the final frame is special: empty, and an exact
    // multiple of the frame length (our final frame is then a full one).
    for size in [0, 2 * 4096] {
        let input = f.path(&format!("plain-{size}"));
        std::fs::write(&input, sample(size)).unwrap();
        let encrypted = format!("{input}.msg");
        let out =
            run(f.ferrokms(&["encrypt", "--key-id", &f.key_arn, "--input", &input, "--output", &encrypted]), vec![])
                .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let decrypted = format!("{input}.esdk-plain");
        let mut command = f.command(esdk);
        command.args(["--decrypt", "-S", "-i", &encrypted, "-o", &decrypted, "-w", &wrapping]);
        let out = run(command, vec![]).await;
        assert!(out.status.success(), "ESDK CLI failed to decrypt ours ({size} bytes): {}", stderr(&out));
        assert_eq!(std::fs::read(&decrypted).unwrap(), sample(size), "{size} bytes");
    }

    // ferrokms → ESDK, both suites.
    for algorithm in ["committing", "committing-signed"] {
        let encrypted = f.path(&format!("ours-{algorithm}"));
        let out = run(
            f.ferrokms(&[
                "encrypt",
                "--key-id",
                &f.key_arn,
                "--algorithm",
                algorithm,
                "--context",
                "app=interop",
                "--input",
                &f.path("plain"),
                "--output",
                &encrypted,
            ]),
            vec![],
        )
        .await;
        assert!(out.status.success(), "{}", stderr(&out));
        let decrypted = f.path(&format!("ours-{algorithm}.esdk-plain"));
        let mut command = f.command(esdk);
        command.args(["--decrypt", "-S", "-i", &encrypted, "-o", &decrypted, "-w", &wrapping, "-c", "app=interop"]);
        let out = run(command, vec![]).await;
        assert!(out.status.success(), "ESDK CLI failed to decrypt ours ({algorithm}): {}", stderr(&out));
        assert_eq!(std::fs::read(&decrypted).unwrap(), plaintext, "{algorithm}");

        // And the ESDK CLI skips a message without the context it requires (it warns and
        // writes nothing rather than failing).
        let refused = f.path(&format!("ours-{algorithm}.refused"));
        let mut command = f.command(esdk);
        command.args(["--decrypt", "-S", "-i", &encrypted, "-o", &refused, "-w", &wrapping, "-c", "app=other"]);
        let out = run(command, vec![]).await;
        assert!(stderr(&out).contains("did not match"), "{}", stderr(&out));
        assert!(std::fs::read(&refused).map(|b| b.is_empty()).unwrap_or(true));
    }

    // ESDK → ferrokms, an exact multiple of its frame length.
    let input = f.path("plain-8192");
    let encrypted = f.path("esdk-8192.msg");
    let mut command = f.command(esdk);
    command.args(["--encrypt", "-S", "-i", &input, "-o", &encrypted, "-w", &wrapping]);
    assert!(run(command, vec![]).await.status.success());
    let out = run(f.ferrokms(&["decrypt", "--input", &encrypted]), vec![]).await;
    assert!(out.status.success(), "{}", stderr(&out));
    assert_eq!(out.stdout, sample(2 * 4096));

    // ESDK → ferrokms: its default suite (0x0578, signed) and the committing unsigned one.
    for (algorithm, suite) in [(None, [0x05, 0x78]), (Some("AES_256_GCM_HKDF_SHA512_COMMIT_KEY"), [0x04, 0x78])] {
        let encrypted = f.path(&format!("esdk-{suite:?}"));
        let mut command = f.command(esdk);
        command.args(["--encrypt", "-S", "-i", &f.path("plain"), "-o", &encrypted, "-w", &wrapping]);
        command.args(["-c", "app=interop", "team=kms"]);
        if let Some(algorithm) = algorithm {
            command.args(["--algorithm", algorithm]);
        }
        let out = run(command, vec![]).await;
        assert!(out.status.success(), "ESDK CLI failed to encrypt: {}", stderr(&out));
        let message = std::fs::read(&encrypted).unwrap();
        assert_eq!(&message[..3], &[0x02, suite[0], suite[1]]);
        let decrypted = f.path(&format!("esdk-{suite:?}.plain"));
        let out = run(
            f.ferrokms(&[
                "decrypt",
                "--key-id",
                &f.key_arn,
                "--context",
                "app=interop",
                "--context",
                "team=kms",
                "--input",
                &encrypted,
                "--output",
                &decrypted,
            ]),
            vec![],
        )
        .await;
        assert!(out.status.success(), "ferrokms failed to decrypt the ESDK's message: {}", stderr(&out));
        assert_eq!(std::fs::read(&decrypted).unwrap(), plaintext);
        let out = run(f.ferrokms(&["decrypt", "--context", "team=other", "--input", &encrypted]), vec![]).await;
        assert!(!out.status.success());
        assert!(out.stdout.is_empty());
    }
    f.server.shutdown().await;
}
