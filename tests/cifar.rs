//! CIFAR-10 and CIFAR-100 read from generated archives in the real binary format (a few hundred
//! records with a pattern per class), from the archive, from its extracted folder and from the
//! folder itself; and each corruption of the format refused with an error naming the file.
#![cfg(feature = "dataset")]

use std::io::Write;
use std::path::Path;

use burn::data::dataset::Dataset;
use flate2::Compression;
use flate2::write::GzEncoder;
use nin::data::cifar::CifarFormat;
use nin::data::{CIFAR10, CIFAR100, Cifar10, Cifar100, DataError, Split};
use proptest::prelude::*;

/// One record: label byte(s), then the red, green and blue planes, each filled from the label
/// and the record's index so that every record differs.
fn record(format: &CifarFormat, index: usize) -> Vec<u8> {
    let fine = (index * 7) % format.classes;
    let mut bytes = Vec::with_capacity(format.record_len());
    if format.coarse_classes > 0 {
        bytes.push((fine % format.coarse_classes) as u8);
    }
    bytes.push(fine as u8);
    for channel in 0..3 {
        bytes.extend((0..1024).map(|i| ((fine * 20 + channel * 70 + i + index) % 256) as u8));
    }
    bytes
}

/// The files of `format` with `records` records each, and the class names.
fn files(format: &CifarFormat, split_files: &[&str], records: usize) -> Vec<(String, Vec<u8>)> {
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

fn all_files(format: &CifarFormat, records: usize) -> Vec<(String, Vec<u8>)> {
    let split_files: Vec<&str> = format
        .train_files
        .iter()
        .chain(format.test_files)
        .copied()
        .collect();
    files(format, &split_files, records)
}

/// `files` as `<folder>/<name>` members of a gzip-compressed tar archive.
fn archive(format: &CifarFormat, files: &[(String, Vec<u8>)]) -> Vec<u8> {
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

fn write_archive(dir: &Path, format: &CifarFormat, bytes: &[u8]) {
    std::fs::File::create(dir.join(format.archive))
        .unwrap()
        .write_all(bytes)
        .unwrap();
}

#[test]
fn an_archive_and_its_extracted_folder_give_the_same_images() {
    let format = &CIFAR10;
    let files = all_files(format, 30);
    let from_archive = tempfile::tempdir().unwrap();
    write_archive(from_archive.path(), format, &archive(format, &files));
    let train = Cifar10::from_dir(from_archive.path(), Split::Train).unwrap();
    let test = Cifar10::from_dir(from_archive.path(), Split::Test).unwrap();
    assert_eq!((train.len(), test.len()), (150, 30));
    assert_eq!(train.class_names().len(), 10);
    assert_eq!(train.class_names()[3], "class3");

    // Record 31 is the second of data_batch_2.bin: its label and planes, channels first.
    let item = train.get(31).unwrap();
    assert_eq!(item.shape(), [3, 32, 32]);
    let expected = record(format, 31);
    assert_eq!(item.label, usize::from(expected[0]));
    assert_eq!(item.pixels, expected[1..]);
    assert!(train.coarse_label(0).is_none());

    // The same files unpacked: from the folder's parent and from the folder itself.
    let unpacked = tempfile::tempdir().unwrap();
    let folder = unpacked.path().join(format.folder);
    std::fs::create_dir(&folder).unwrap();
    for (name, bytes) in &files {
        std::fs::write(folder.join(name), bytes).unwrap();
    }
    for dir in [unpacked.path(), folder.as_path()] {
        let again = Cifar10::from_dir(dir, Split::Train).unwrap();
        assert_eq!(again.len(), train.len());
        for index in [0, 31, 149] {
            assert_eq!(again.get(index).unwrap(), train.get(index).unwrap());
        }
    }
}

#[test]
fn cifar100_keeps_the_fine_label_and_the_superclass() {
    let format = &CIFAR100;
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), format, &archive(format, &all_files(format, 40)));
    let train = Cifar100::from_dir(dir.path(), Split::Train).unwrap();
    assert_eq!(train.len(), 40);
    assert_eq!(train.class_names().len(), 100);
    let expected = record(format, 7);
    let item = train.get(7).unwrap();
    assert_eq!(item.label, usize::from(expected[1]));
    assert_eq!(train.coarse_label(7), Some(usize::from(expected[0])));
    assert_eq!(item.pixels, expected[2..]);
}

/// The error of reading the training split of `files` through an archive, as text.
fn archive_error(format: &CifarFormat, bytes: &[u8]) -> String {
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), format, bytes);
    let err =
        nin::data::cifar::read(format, dir.path(), Split::Train).expect_err("a corrupt archive");
    err.to_string()
}

#[test]
fn each_corruption_is_an_error_naming_the_file_and_where() {
    let format = &CIFAR10;
    let record_len = format.record_len();

    // A file that does not hold whole records: the partial one's offset is named.
    let mut files = all_files(format, 10);
    files[1].1.extend_from_slice(&[1, 2, 3, 4, 5]);
    let message = archive_error(format, &archive(format, &files));
    assert!(message.contains("data_batch_2.bin"), "{message}");
    assert!(
        message.contains(&format!("at byte {}", 10 * record_len)),
        "{message}"
    );

    // A label outside the classes: the label byte's offset.
    let mut files = all_files(format, 10);
    files[2].1[4 * record_len] = 10;
    let message = archive_error(format, &archive(format, &files));
    assert!(message.contains("data_batch_3.bin"), "{message}");
    assert!(
        message.contains("label 10 is outside the 10 classes"),
        "{message}"
    );
    assert!(
        message.contains(&format!("at byte {}", 4 * record_len)),
        "{message}"
    );

    // An archive cut short.
    let whole = archive(format, &all_files(format, 10));
    let message = archive_error(format, &whole[..whole.len() / 2]);
    assert!(message.contains(format.archive), "{message}");
    assert!(message.contains("not a complete"), "{message}");

    // A member missing.
    let mut files = all_files(format, 10);
    files.retain(|(name, _)| name != "data_batch_4.bin");
    let message = archive_error(format, &archive(format, &files));
    assert!(message.contains("data_batch_4.bin"), "{message}");

    // A member that claims more bytes than the whole dataset's records: refused before it is
    // read, so nothing of that size is allocated.
    let mut builder = tar::Builder::new(GzEncoder::new(Vec::new(), Compression::fast()));
    let mut header = tar::Header::new_gnu();
    header
        .set_path(format!("{}/data_batch_1.bin", format.folder))
        .unwrap();
    header.set_size(1 << 40);
    header.set_mode(0o644);
    header.set_cksum();
    builder.append(&header, &[0u8; 512][..]).unwrap();
    let bytes = builder.into_inner().unwrap().finish().unwrap();
    let message = archive_error(format, &bytes);
    assert!(message.contains("claims 1099511627776 bytes"), "{message}");

    // An extracted file larger than the whole dataset's records (a sparse file here, so that
    // the test writes nothing of that size): refused before it is read.
    let unpacked = tempfile::tempdir().unwrap();
    for (name, bytes) in all_files(format, 2) {
        std::fs::write(unpacked.path().join(name), bytes).unwrap();
    }
    std::fs::File::options()
        .write(true)
        .open(unpacked.path().join("data_batch_5.bin"))
        .unwrap()
        .set_len(1 << 36)
        .unwrap();
    let err = Cifar10::from_dir(unpacked.path(), Split::Train).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("data_batch_5.bin") && message.contains("68719476736 bytes"),
        "{message}"
    );

    // Neither archive nor folder.
    let empty = tempfile::tempdir().unwrap();
    let err = Cifar10::from_dir(empty.path(), Split::Test).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert!(err.to_string().contains(format.archive), "{err}");
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any archive cut short or with a byte changed reads or fails cleanly: no panic.
    #[test]
    fn a_damaged_archive_never_panics(cut in 0usize..4000, at in 0usize..4000, value: u8) {
        let format = &CIFAR10;
        let whole = archive(format, &all_files(format, 2));
        let mut bytes = whole[..whole.len().saturating_sub(cut)].to_vec();
        if !bytes.is_empty() {
            let index = at % bytes.len();
            bytes[index] = value;
        }
        let dir = tempfile::tempdir().unwrap();
        write_archive(dir.path(), format, &bytes);
        let _ = Cifar10::from_dir(dir.path(), Split::Train);
    }
}
