//! Generated CIFAR data in the real binary format: records whose colour tells the class apart,
//! written as the published archive or as its extracted folder.

use std::path::Path;

use flate2::Compression;
use flate2::write::GzEncoder;
use nin::data::cifar::CifarFormat;
use nin::data::source::{self, ArchiveDigests, KnownFile};

/// One record: label byte(s), then the red, green and blue planes. Each plane is one of three
/// levels chosen by the class (so a network can learn the class from colour alone), plus noise
/// that differs from record to record.
pub fn record(format: &CifarFormat, index: usize) -> Vec<u8> {
    let fine = (index * 7) % format.classes;
    let mut bytes = Vec::with_capacity(format.record_len());
    if format.coarse_classes > 0 {
        bytes.push((fine % format.coarse_classes) as u8);
    }
    bytes.push(fine as u8);
    for channel in 0..3 {
        let level = 30 + 95 * ((fine / 3usize.pow(channel as u32)) % 3);
        bytes.extend((0..1024).map(|i| {
            let noise = (i * 31 + index * 17 + channel * 7) % 41;
            (level + noise - 20) as u8
        }));
    }
    bytes
}

/// The named split files with `records` records each (numbered on across files), then the
/// class names file.
pub fn files(format: &CifarFormat, split_files: &[&str], records: usize) -> Vec<(String, Vec<u8>)> {
    let mut files: Vec<(String, Vec<u8>)> = split_files
        .iter()
        .enumerate()
        .map(|(file, name)| {
            let bytes = (0..records)
                .flat_map(|i| record(format, file * records + i))
                .collect();
            (name.to_string(), bytes)
        })
        .collect();
    let names: String = (0..format.classes).map(|c| format!("class{c}\n")).collect();
    files.push((
        format.names_file.to_string(),
        format!("{names}\n").into_bytes(),
    ));
    files
}

/// Every file of the dataset, training files then test files, `records` records each.
pub fn all_files(format: &CifarFormat, records: usize) -> Vec<(String, Vec<u8>)> {
    let split_files: Vec<&str> = format
        .train_files
        .iter()
        .chain(format.test_files)
        .copied()
        .collect();
    files(format, &split_files, records)
}

/// `files` as `<folder>/<name>` members of a gzip-compressed tar archive.
pub fn archive(format: &CifarFormat, files: &[(String, Vec<u8>)]) -> Vec<u8> {
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    for (name, bytes) in files {
        let mut header = tar::Header::new_gnu();
        header.set_size(bytes.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder
            .append_data(&mut header, format!("{}/{name}", format.folder), &bytes[..])
            .unwrap();
    }
    builder.into_inner().unwrap().finish().unwrap()
}

/// Writes `bytes` as the format's archive in `dir`.
pub fn write_archive(dir: &Path, format: &CifarFormat, bytes: &[u8]) {
    std::fs::write(dir.join(format.archive_name()), bytes).unwrap();
}

/// Writes `files` as the extracted folder in `dir`, and returns the folder.
pub fn write_folder(
    dir: &Path,
    format: &CifarFormat,
    files: &[(String, Vec<u8>)],
) -> std::path::PathBuf {
    let folder = dir.join(format.folder);
    std::fs::create_dir_all(&folder).unwrap();
    for (name, bytes) in files {
        std::fs::write(folder.join(name), bytes).unwrap();
    }
    folder
}

/// `format` whose extracted files hold `records` records each, where the official files hold
/// 10,000: generated folders are read with it.
pub fn holding(format: &CifarFormat, records: usize) -> CifarFormat {
    CifarFormat {
        train_file_records: Some(records),
        test_file_records: Some(records),
        ..*format
    }
}

/// `format` with no reference digests: archives are read for structure only.
pub fn unverified(format: &CifarFormat) -> CifarFormat {
    CifarFormat {
        archive: KnownFile {
            gz_sha256: None,
            gz_md5: None,
            ..format.archive
        },
        ..*format
    }
}

/// `format` whose reference digests are those of `archive`, as if it were the published one.
pub fn published_as(format: &CifarFormat, archive: &[u8]) -> CifarFormat {
    let ArchiveDigests { sha256, md5 } = ArchiveDigests::of(archive);
    assert_eq!(sha256, source::sha256_hex(archive));
    CifarFormat {
        archive: KnownFile {
            gz_sha256: Some(Box::leak(sha256.into_boxed_str())),
            gz_md5: Some(Box::leak(md5.into_boxed_str())),
            ..format.archive
        },
        ..*format
    }
}
