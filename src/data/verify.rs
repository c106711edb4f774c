//! Checking a dataset file against its reference digests, decompressed or as published.

use std::path::Path;

use md5::Md5;
use sha2::{Digest, Sha256};

use super::catalogue::KnownFile;
use super::error::{DataError, Digested};
use super::idx::{self, IdxError};

/// Reads a dataset file (plain or gzip), checks it against `known`'s reference digest and
/// returns the decompressed content.
///
/// The decompressed digest is the authority where one is recorded. Otherwise a gzip file must
/// be byte for byte the published archive, and a plain file is left to the IDX reader's
/// structural checks, as nothing else is known about it.
pub fn read_verified(path: &Path, known: &KnownFile) -> Result<Vec<u8>, DataError> {
    let raw = idx::read_raw(path)?;
    verify(raw, known, &path.display().to_string())
}

/// [`read_verified`] for bytes already read; `file` names them in errors.
pub fn verify(raw: Vec<u8>, known: &KnownFile, file: &str) -> Result<Vec<u8>, DataError> {
    if known.sha256.is_none() && idx::is_gzip(&raw) {
        check_published(&ArchiveDigests::of(&raw), known, file)?;
    }
    let content = idx::decompress(raw).map_err(|fault| IdxError::Malformed {
        file: file.to_string(),
        fault,
    })?;
    if let Some(expected) = known.sha256 {
        check_digest(
            &sha256_hex(&content),
            expected,
            "SHA-256",
            Digested::Content,
            file,
        )?;
    }
    Ok(content)
}

/// Checks a file as a mirror served it, before anything is stored: against the digest of its
/// decompressed content where one is recorded, else as the published gzip file byte for byte.
/// A file with neither digest cannot be verified, so it is refused.
pub fn verify_published(raw: &[u8], known: &KnownFile, file: &str) -> Result<(), DataError> {
    if known.sha256.is_some() {
        return verify(raw.to_vec(), known, file).map(drop);
    }
    if !idx::is_gzip(raw) || !known.has_digest() {
        return Err(DataError::Malformed {
            file: file.to_string(),
            offset: 0,
            problem: format!(
                "not the gzip file {} as published, which is the only form that can be verified",
                known.published_name()
            ),
        });
    }
    check_published(&ArchiveDigests::of(raw), known, file)
}

/// The digests of a published file, taken in one pass.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ArchiveDigests {
    /// Lower-case hex SHA-256.
    pub sha256: String,
    /// Lower-case hex MD5.
    pub md5: String,
}

impl ArchiveDigests {
    /// The digests of `bytes`.
    pub fn of(bytes: &[u8]) -> Self {
        let mut hasher = ArchiveHasher::default();
        hasher.update(bytes);
        hasher.finish()
    }
}

/// [`ArchiveDigests`] of bytes fed in pieces, such as a file streamed once for reading.
#[derive(Debug, Clone, Default)]
pub struct ArchiveHasher {
    sha256: Sha256,
    md5: Md5,
}

impl ArchiveHasher {
    /// Feeds the next bytes.
    pub fn update(&mut self, bytes: &[u8]) {
        self.sha256.update(bytes);
        self.md5.update(bytes);
    }

    /// The digests of everything fed.
    pub fn finish(self) -> ArchiveDigests {
        ArchiveDigests {
            sha256: hex(&self.sha256.finalize()),
            md5: hex(&self.md5.finalize()),
        }
    }
}

/// Checks a published file's digests against every reference `known` records for it.
pub fn check_published(
    actual: &ArchiveDigests,
    known: &KnownFile,
    file: &str,
) -> Result<(), DataError> {
    if let Some(expected) = known.gz_sha256 {
        check_digest(&actual.sha256, expected, "SHA-256", Digested::Archive, file)?;
    }
    if let Some(expected) = known.gz_md5 {
        check_digest(&actual.md5, expected, "MD5", Digested::Archive, file)?;
    }
    Ok(())
}

fn check_digest(
    actual: &str,
    expected: &'static str,
    algorithm: &'static str,
    digested: Digested,
    file: &str,
) -> Result<(), DataError> {
    if actual == expected {
        return Ok(());
    }
    Err(DataError::Checksum {
        file: file.to_string(),
        algorithm,
        digested,
        expected,
        actual: actual.to_string(),
    })
}

/// Lower-case hex SHA-256 of `bytes`.
pub fn sha256_hex(bytes: &[u8]) -> String {
    hex(&Sha256::digest(bytes))
}

fn hex(digest: &[u8]) -> String {
    digest.iter().map(|b| format!("{b:02x}")).collect()
}
