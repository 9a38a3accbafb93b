//! `ferrokms encrypt` and `ferrokms decrypt`: envelope encryption of files and pipes in the AWS
//! Encryption SDK message format, through any KMS (ferrokms or AWS) reached with the usual AWS
//! environment and config files.
//!
//! Output files are written to a temporary file in the same directory and renamed into place
//! only when the whole message has been written or verified, so a failed or interrupted run never
//! leaves a partial file under the requested name. Decrypting a signed message to stdout spools
//! the plaintext to a temporary file first and copies it out only after the signature verifies;
//! an unsigned message streams to stdout frame by frame (every frame is authenticated), and if
//! the message later proves truncated or tampered the command fails with a message saying the
//! output is incomplete.

use std::collections::BTreeMap;
use std::io::IsTerminal as _;
use std::path::{Path, PathBuf};

use aws_config::BehaviorVersion;
use clap::{Args, ValueEnum};
use indicatif::{ProgressBar, ProgressStyle};
use kms_client::envelope::{AlgorithmSuite, DEFAULT_FRAME_LENGTH, Decryptor, Encryptor};
use tokio::io::{AsyncRead, AsyncSeekExt as _, AsyncWriteExt as _, BufReader, BufWriter};

/// I/O buffer size: large enough that a 4 KiB frame never costs a system call of its own.
const IO_BUFFER: usize = 256 * 1024;
/// Inputs at least this large get a progress bar (when stderr is a terminal).
const PROGRESS_THRESHOLD: u64 = 16 * 1024 * 1024;

/// Which algorithm suite `encrypt` uses.
#[derive(Clone, Copy, Debug, Default, ValueEnum)]
pub enum Algorithm {
    /// 0x0478: AES-256-GCM, HKDF-SHA512, key commitment, no signature.
    #[default]
    Committing,
    /// 0x0578: as `committing`, plus an ECDSA P-384 signature (the AWS Encryption SDK's default).
    CommittingSigned,
}

/// `ferrokms encrypt`.
#[derive(Args, Debug)]
pub struct EncryptArgs {
    /// The KMS key: key id, key ARN, alias name (alias/...) or alias ARN.
    #[arg(long, value_name = "KEY")]
    key_id: String,
    /// An encryption-context pair, bound to the message and needed to decrypt it (repeatable).
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    context: Vec<(String, String)>,
    /// The file to encrypt [default: stdin].
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Where to write the message [default: stdout].
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// The algorithm suite.
    #[arg(long, value_enum, default_value_t)]
    algorithm: Algorithm,
    /// Plaintext bytes per frame.
    #[arg(long, value_name = "BYTES", default_value_t = DEFAULT_FRAME_LENGTH)]
    frame_length: u32,
}

/// `ferrokms decrypt`.
#[derive(Args, Debug)]
pub struct DecryptArgs {
    /// A pair the message's encryption context must contain (repeatable); the message is
    /// refused otherwise.
    #[arg(long = "context", value_name = "KEY=VALUE", value_parser = parse_pair)]
    context: Vec<(String, String)>,
    /// Only use these KMS key ARNs to decrypt the data key (strict mode; repeatable). Without
    /// it, the key named in the message is used if the caller may.
    #[arg(long = "key-id", value_name = "KEY_ARN")]
    key_ids: Vec<String>,
    /// The message to decrypt [default: stdin].
    #[arg(long, value_name = "FILE")]
    input: Option<PathBuf>,
    /// Where to write the plaintext [default: stdout].
    #[arg(long, value_name = "FILE")]
    output: Option<PathBuf>,
    /// Refuse messages with more encrypted data keys than this.
    #[arg(long, value_name = "N", default_value_t = kms_client::envelope::DEFAULT_MAX_ENCRYPTED_DATA_KEYS)]
    max_encrypted_data_keys: u16,
}

fn parse_pair(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((key, value)) if !key.is_empty() => Ok((key.to_owned(), value.to_owned())),
        _ => Err(format!("{text:?} is not KEY=VALUE")),
    }
}

fn context_of(pairs: Vec<(String, String)>) -> Result<BTreeMap<String, String>, String> {
    let mut context = BTreeMap::new();
    for (key, value) in pairs {
        if context.insert(key.clone(), value).is_some() {
            return Err(format!("--context {key} is given twice"));
        }
    }
    Ok(context)
}

/// A KMS client from the default AWS chain: AWS_ENDPOINT_URL_KMS / AWS_ENDPOINT_URL,
/// AWS_ACCESS_KEY_ID / AWS_PROFILE / ..., AWS_REGION / the profile's region, AWS_CA_BUNDLE.
async fn kms_client() -> Result<aws_sdk_kms::Client, String> {
    let mut loader = aws_config::defaults(BehaviorVersion::latest());
    if let Some(http) = crate::trust::sdk_http_client(crate::trust::env_ca_bundle().as_deref())? {
        loader = loader.http_client(http);
    }
    let config = loader.load().await;
    if config.region().is_none() {
        return Err("no AWS region: set AWS_REGION (or a region in the AWS config profile)".to_owned());
    }
    Ok(aws_sdk_kms::Client::new(&config))
}

/// The input stream, its size when it is a file, and a progress bar.
async fn open_input(path: Option<&Path>) -> Result<(Box<dyn AsyncRead + Unpin + Send>, ProgressBar), String> {
    match path.filter(|p| p.as_os_str() != "-") {
        Some(path) => {
            let file = tokio::fs::File::open(path).await.map_err(|e| format!("cannot open {}: {e}", path.display()))?;
            let len = file.metadata().await.map(|m| m.len()).unwrap_or(0);
            let bar = progress(Some(len));
            let reader = bar.wrap_async_read(BufReader::with_capacity(IO_BUFFER, file));
            Ok((Box::new(reader), bar))
        }
        None => {
            let bar = progress(None);
            let reader = bar.wrap_async_read(BufReader::with_capacity(IO_BUFFER, tokio::io::stdin()));
            Ok((Box::new(reader), bar))
        }
    }
}

fn progress(len: Option<u64>) -> ProgressBar {
    let interactive = std::io::stderr().is_terminal();
    match len {
        Some(len) if interactive && len >= PROGRESS_THRESHOLD => ProgressBar::new(len).with_style(
            ProgressStyle::with_template("{bar:40} {binary_bytes}/{binary_total_bytes} {binary_bytes_per_sec} {eta}")
                .unwrap_or_else(|_| ProgressStyle::default_bar()),
        ),
        None if interactive => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {binary_bytes} {binary_bytes_per_sec}")
                .unwrap_or_else(|_| ProgressStyle::default_spinner()),
        ),
        _ => ProgressBar::hidden(),
    }
}

/// A temporary file next to `target`, to be renamed onto it on success.
fn temp_next_to(target: &Path) -> Result<tempfile::NamedTempFile, String> {
    let dir = match target.parent() {
        Some(p) if !p.as_os_str().is_empty() => p.to_path_buf(),
        _ => PathBuf::from("."),
    };
    tempfile::Builder::new()
        .prefix(".ferrokms-")
        .tempfile_in(&dir)
        .map_err(|e| format!("cannot create a temporary file in {}: {e}", dir.display()))
}

fn async_file(temp: &tempfile::NamedTempFile) -> Result<tokio::fs::File, String> {
    let file = temp.as_file().try_clone().map_err(|e| format!("temporary file: {e}"))?;
    Ok(tokio::fs::File::from_std(file))
}

async fn finish(
    writer: BufWriter<tokio::fs::File>,
    temp: tempfile::NamedTempFile,
    target: &Path,
) -> Result<(), String> {
    let mut writer = writer;
    writer.flush().await.map_err(|e| format!("writing {}: {e}", target.display()))?;
    writer.get_ref().sync_all().await.map_err(|e| format!("writing {}: {e}", target.display()))?;
    temp.persist(target).map_err(|e| format!("cannot rename the output onto {}: {}", target.display(), e.error))?;
    Ok(())
}

/// Runs `ferrokms encrypt`.
///
/// # Errors
/// A message for the user: bad arguments, I/O, or the KMS error (e.g. `NotFoundException`).
pub async fn encrypt(args: EncryptArgs) -> Result<(), String> {
    let context = context_of(args.context)?;
    let kms = kms_client().await?;
    let suite = match args.algorithm {
        Algorithm::Committing => AlgorithmSuite::AesGcmHkdfSha512Commit,
        Algorithm::CommittingSigned => AlgorithmSuite::AesGcmHkdfSha512CommitEcdsaP384,
    };
    let encryptor = Encryptor::new(kms, args.key_id, context)
        .with_suite(suite)
        .with_frame_length(args.frame_length)
        .map_err(|e| format!("--frame-length: {e}"))?;
    let (input, bar) = open_input(args.input.as_deref()).await?;
    let result = match &args.output {
        Some(target) => {
            let temp = temp_next_to(target)?;
            let mut writer = BufWriter::with_capacity(IO_BUFFER, async_file(&temp)?);
            match encryptor.encrypt(input, &mut writer).await {
                Ok(_) => finish(writer, temp, target).await,
                Err(e) => Err(e.to_string()),
            }
        }
        None => {
            let mut writer = BufWriter::with_capacity(IO_BUFFER, tokio::io::stdout());
            encryptor.encrypt(input, &mut writer).await.map(|_| ()).map_err(|e| e.to_string())
        }
    };
    bar.finish_and_clear();
    result.map_err(|e| format!("encrypt: {e}"))
}

/// Runs `ferrokms decrypt`.
///
/// # Errors
/// A message for the user: bad arguments, I/O, a refused message (wrong context, tampered,
/// truncated, not committing), or the KMS error.
pub async fn decrypt(args: DecryptArgs) -> Result<(), String> {
    let context = context_of(args.context)?;
    let kms = kms_client().await?;
    let mut decryptor =
        Decryptor::new(kms).with_required_context(context).with_max_encrypted_data_keys(args.max_encrypted_data_keys);
    if !args.key_ids.is_empty() {
        decryptor = decryptor.with_allowed_keys(args.key_ids);
    }
    let (input, bar) = open_input(args.input.as_deref()).await?;
    let result = decrypt_to(&decryptor, input, args.output.as_deref()).await;
    bar.finish_and_clear();
    result.map_err(|e| format!("decrypt: {e}"))
}

async fn decrypt_to(
    decryptor: &Decryptor,
    input: Box<dyn AsyncRead + Unpin + Send>,
    output: Option<&Path>,
) -> Result<(), String> {
    let opened = decryptor.open(input).await.map_err(|e| e.to_string())?;
    if let Some(target) = output {
        let temp = temp_next_to(target)?;
        let mut writer = BufWriter::with_capacity(IO_BUFFER, async_file(&temp)?);
        opened.decrypt_to(&mut writer).await.map_err(|e| format!("{e} (no output was written)"))?;
        return finish(writer, temp, target).await;
    }
    let mut stdout = BufWriter::with_capacity(IO_BUFFER, tokio::io::stdout());
    if !opened.header().suite.is_signed() {
        return opened
            .decrypt_to(&mut stdout)
            .await
            .map(|_| ())
            .map_err(|e| format!("{e}; the output written so far is incomplete and must be discarded"));
    }
    // Signed: nothing reaches stdout before the signature verifies.
    let spool = tempfile::tempfile().map_err(|e| format!("cannot create a temporary file: {e}"))?;
    let mut spool = tokio::fs::File::from_std(spool);
    {
        let mut writer = BufWriter::with_capacity(IO_BUFFER, &mut spool);
        opened.decrypt_to(&mut writer).await.map_err(|e| format!("{e} (no output was written)"))?;
    }
    spool.rewind().await.map_err(|e| format!("temporary file: {e}"))?;
    let mut reader = BufReader::with_capacity(IO_BUFFER, spool);
    tokio::io::copy_buf(&mut reader, &mut stdout).await.map_err(|e| format!("writing stdout: {e}"))?;
    stdout.flush().await.map_err(|e| format!("writing stdout: {e}"))
}
