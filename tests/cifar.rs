//! CIFAR-10 and CIFAR-100 read from generated archives in the real binary format (a few hundred
//! records with a pattern per class), from the archive, from its extracted folder and from the
//! folder itself; and each corruption of the format refused with an error naming the file.
#![cfg(feature = "dataset")]

use crate::common;

use burn::data::dataset::Dataset;
use common::cifar::{
    all_files, archive, holding, published_as, record, unverified, write_archive, write_folder,
};
use flate2::Compression;
use flate2::write::GzEncoder;
use nin::data::cifar::{self, CifarFormat};
use nin::data::source::Digested;
use nin::data::{CIFAR10, CIFAR100, Cifar10, DataError, Split};
use proptest::prelude::*;

#[test]
fn an_archive_and_its_extracted_folder_give_the_same_images() {
    let files = all_files(&CIFAR10, 30);
    let bytes = archive(&CIFAR10, &files);
    let format = &published_as(&CIFAR10, &bytes);
    let from_archive = tempfile::tempdir().unwrap();
    write_archive(from_archive.path(), format, &bytes);
    let train = cifar::read(format, from_archive.path(), Split::Train).unwrap();
    let test = cifar::read(format, from_archive.path(), Split::Test).unwrap();
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

    // The same files unpacked, read as files of 30 records (a folder is checked for its
    // structure and its record counts, not for digests): from the folder's parent and from the
    // folder itself.
    let unpacked = tempfile::tempdir().unwrap();
    let folder = write_folder(unpacked.path(), format, &files);
    for dir in [unpacked.path(), folder.as_path()] {
        let again = cifar::read(&holding(format, 30), dir, Split::Train).unwrap();
        assert_eq!(again.len(), train.len());
        for index in [0, 31, 149] {
            assert_eq!(again.get(index).unwrap(), train.get(index).unwrap());
        }
    }
}

#[test]
fn cifar100_keeps_the_fine_label_and_the_superclass() {
    let format = &unverified(&CIFAR100);
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), format, &archive(format, &all_files(format, 40)));
    let train = cifar::read(format, dir.path(), Split::Train).unwrap();
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
    let err = cifar::read(format, dir.path(), Split::Train).expect_err("a corrupt archive");
    err.to_string()
}

#[test]
fn each_corruption_is_an_error_naming_the_file_and_where() {
    let format = &unverified(&CIFAR10);
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
    assert!(message.contains(&format.archive_name()), "{message}");
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
    let err = cifar::read(&holding(format, 2), unpacked.path(), Split::Train).unwrap_err();
    let message = err.to_string();
    assert!(
        message.contains("data_batch_5.bin") && message.contains("68719476736 bytes"),
        "{message}"
    );

    // Neither archive nor folder.
    let empty = tempfile::tempdir().unwrap();
    let err = Cifar10::from_dir(empty.path(), Split::Test).unwrap_err();
    assert!(matches!(err, DataError::Missing { .. }), "{err}");
    assert!(err.to_string().contains(&format.archive_name()), "{err}");
}

#[test]
fn an_archive_must_be_the_published_one() {
    let bytes = archive(&CIFAR10, &all_files(&CIFAR10, 3));
    let dir = tempfile::tempdir().unwrap();
    write_archive(dir.path(), &CIFAR10, &bytes);
    // Well formed, but not the archive whose digests CIFAR-10 records.
    let err = Cifar10::from_dir(dir.path(), Split::Test).unwrap_err();
    match &err {
        DataError::Checksum {
            algorithm,
            digested,
            expected,
            ..
        } => {
            assert_eq!(*algorithm, "SHA-256");
            assert_eq!(*digested, Digested::Archive);
            assert_eq!(Some(*expected), CIFAR10.archive.gz_sha256);
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    assert!(err.to_string().contains("cifar-10-binary.tar.gz"), "{err}");

    // Both digests are checked: the right SHA-256 with another MD5 is refused too.
    let mut md5_differs = published_as(&CIFAR10, &bytes);
    md5_differs.archive.gz_md5 = CIFAR10.archive.gz_md5;
    let err = cifar::read(&md5_differs, dir.path(), Split::Test).unwrap_err();
    assert!(
        matches!(
            err,
            DataError::Checksum {
                algorithm: "MD5",
                ..
            }
        ),
        "{err}"
    );
    assert!(cifar::read(&published_as(&CIFAR10, &bytes), dir.path(), Split::Test).is_ok());
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    /// Any archive cut short or with a byte changed reads or fails cleanly: no panic.
    #[test]
    fn a_damaged_archive_never_panics(cut in 0usize..4000, at in 0usize..4000, value: u8) {
        let format = &unverified(&CIFAR10);
        let whole = archive(format, &all_files(format, 2));
        let mut bytes = whole[..whole.len().saturating_sub(cut)].to_vec();
        if !bytes.is_empty() {
            let index = at % bytes.len();
            bytes[index] = value;
        }
        let dir = tempfile::tempdir().unwrap();
        write_archive(dir.path(), format, &bytes);
        let _ = cifar::read(format, dir.path(), Split::Train);
    }
}

/// An extracted file of another record count than the official one is a damaged extraction:
/// an empty file, a short one, and the real description's 10,000 against generated files.
#[test]
fn an_empty_or_short_official_batch_file_is_an_error_naming_it() {
    let format = &holding(&CIFAR10, 30);
    let record_len = CIFAR10.record_len();
    for (name, records) in [("data_batch_2.bin", 0), ("data_batch_3.bin", 29)] {
        let dir = tempfile::tempdir().unwrap();
        let folder = write_folder(dir.path(), format, &all_files(format, 30));
        let path = folder.join(name);
        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..records * record_len]).unwrap();
        let err = cifar::read(format, dir.path(), Split::Train).unwrap_err();
        let message = err.to_string();
        assert!(matches!(err, DataError::Malformed { .. }), "{message}");
        assert!(
            message.contains(name)
                && message.contains(&format!("{records} whole records"))
                && message.contains("holds 30"),
            "{message}"
        );
        println!("{name} with {records} records: {message}");
    }
    let dir = tempfile::tempdir().unwrap();
    write_folder(dir.path(), format, &all_files(format, 30));
    let message = Cifar10::from_dir(dir.path(), Split::Test)
        .unwrap_err()
        .to_string();
    assert!(
        message.contains("test_batch.bin") && message.contains("holds 10000"),
        "{message}"
    );
}
