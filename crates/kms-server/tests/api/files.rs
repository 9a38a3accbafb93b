//! File modes: everything ferrokms writes in its data directory is its owner's alone.

#![cfg(unix)]

use std::os::unix::fs::PermissionsExt as _;
use std::path::{Path, PathBuf};

use aws_sdk_kms::primitives::Blob;

use crate::common::{config, start_with};

/// Every file and directory under `dir` (and `dir` itself) with its permission bits.
fn modes(dir: &Path) -> Vec<(PathBuf, u32, bool)> {
    let mut out = vec![(dir.to_owned(), std::fs::metadata(dir).unwrap().permissions().mode() & 0o777, true)];
    for entry in std::fs::read_dir(dir).unwrap() {
        let entry = entry.unwrap();
        let meta = entry.metadata().unwrap();
        if meta.is_dir() {
            out.extend(modes(&entry.path()));
        } else {
            out.push((entry.path(), meta.permissions().mode() & 0o777, false));
        }
    }
    out
}

fn assert_private(dir: &Path) {
    for (path, mode, is_dir) in modes(dir) {
        let want = if is_dir { 0o700 } else { 0o600 };
        assert_eq!(mode, want, "{} has mode {mode:o}", path.display());
    }
}

/// A data directory that already exists with mode 0755 is tightened to 0700, and the
/// database, its WAL and shared-memory files, the lock file, the root key and the credentials
/// file are 0600, while the server runs and after it stopped; a database left 0644 is made
/// private at the next start. (Before, the database and the lock file were created 0644 in
/// whatever the directory was.)
#[tokio::test]
async fn every_file_in_the_data_directory_is_private() {
    let dir = tempfile::tempdir().unwrap();
    std::fs::set_permissions(dir.path(), std::fs::Permissions::from_mode(0o755)).unwrap();
    let data = dir.path().to_owned();
    let t = start_with(config(&data), dir).await;
    let kms = t.client();
    let key = kms.create_key().send().await.unwrap().key_metadata.unwrap().key_id;
    kms.encrypt().key_id(&key).plaintext(Blob::new("x")).send().await.unwrap();
    let names: Vec<String> =
        modes(&data).iter().filter_map(|(p, _, _)| Some(p.file_name()?.to_str()?.to_owned())).collect();
    for expected in
        ["ferrokms.db", "ferrokms.db-wal", "ferrokms.db-shm", "ferrokms.lock", "root.key", "admin-credentials"]
    {
        assert!(names.iter().any(|n| n == expected), "{expected} is not in {names:?}");
    }
    assert_private(&data);
    let crate::common::TestServer { server, dir, .. } = t;
    server.shutdown().await;
    assert_private(&data);

    // Files an older version left readable are made private at the next start.
    std::fs::set_permissions(data.join("ferrokms.db"), std::fs::Permissions::from_mode(0o644)).unwrap();
    std::fs::set_permissions(&data, std::fs::Permissions::from_mode(0o750)).unwrap();
    let t = start_with(config(&data), dir).await;
    t.client().list_keys().send().await.unwrap();
    assert_private(&data);
    t.server.shutdown().await;
}
