//! Finding a dataset on disk: the order of places, the authority of a named directory, the
//! message when nothing is found, and the content check.
#![cfg(feature = "dataset")]

use crate::common;

use std::path::Path;

use nin::data::source::{self, Digested, FASHION_MNIST_FILES, MNIST_FILES};
use nin::data::{DataError, FashionMnist, Mnist, Place, Split};

/// Writes the four files (content irrelevant to `locate`) into `dir`, gzip-named.
fn fake_copy(dir: &Path) {
    std::fs::create_dir_all(dir).unwrap();
    for file in FASHION_MNIST_FILES.files {
        std::fs::write(dir.join(format!("{}.gz", file.name)), b"x").unwrap();
    }
}

#[test]
fn places_are_searched_in_order_and_named_directories_are_authoritative() {
    let root = tempfile::tempdir().unwrap();
    let (explicit, env, cache) = (
        root.path().join("a"),
        root.path().join("b"),
        root.path().join("c"),
    );
    fake_copy(&cache);

    let found = source::locate_in(&MNIST_FILES, None, None, Some(&cache)).unwrap();
    assert_eq!(
        (found.dir.as_path(), found.place),
        (cache.as_path(), Place::UserCache)
    );

    fake_copy(&env);
    let found = source::locate_in(&MNIST_FILES, None, Some(&env), Some(&cache)).unwrap();
    assert_eq!(found.place, Place::EnvVar);

    // A named directory that lacks the files is the error, even with a good cache behind it.
    std::fs::create_dir_all(&explicit).unwrap();
    let err =
        source::locate_in(&MNIST_FILES, Some(&explicit), Some(&env), Some(&cache)).unwrap_err();
    assert_eq!(err.tried.len(), 1);
    assert_eq!(err.tried[0].place, Place::Explicit);
    assert!(
        err.to_string()
            .contains("train-images-idx3-ubyte[.gz] is missing"),
        "{err}"
    );
}

#[test]
fn nothing_found_lists_every_place_and_both_fixes() {
    let root = tempfile::tempdir().unwrap();
    let cache = root.path().join("cache");
    let err = source::locate_in(&MNIST_FILES, None, None, Some(&cache)).unwrap_err();
    let message = err.to_string();
    println!("{message}");
    assert!(
        message.starts_with("MNIST not found. Looked in:"),
        "{message}"
    );
    assert!(
        message.contains("the directory passed in: not given"),
        "{message}"
    );
    assert!(message.contains("NIN_DATA_DIR: not given"), "{message}");
    assert!(message.contains(&format!(
        "the user cache ({}): no such directory",
        cache.display()
    )));
    assert!(
        message.contains("(the `dir` argument) or set NIN_DATA_DIR"),
        "{message}"
    );

    // Fashion-MNIST also offers the Debian/Ubuntu package (whether or not it is installed here,
    // an explicit empty directory is reported without looking further).
    let empty = root.path().join("empty");
    std::fs::create_dir_all(&empty).unwrap();
    let err = source::locate_in(&FASHION_MNIST_FILES, Some(&empty), None, None).unwrap_err();
    assert!(
        err.to_string()
            .contains("sudo apt-get install dataset-fashion-mnist"),
        "{err}"
    );
}

#[test]
fn content_that_differs_from_the_published_dataset_is_rejected() {
    let dir = tempfile::tempdir().unwrap();
    // Well-formed IDX files, but not Fashion-MNIST's.
    let mut images = vec![0, 0, 8, 3, 0, 0, 0, 1, 0, 0, 0, 2, 0, 0, 0, 2];
    images.extend_from_slice(&[1, 2, 3, 4]);
    std::fs::write(dir.path().join("t10k-images-idx3-ubyte"), &images).unwrap();
    std::fs::write(
        dir.path().join("t10k-labels-idx1-ubyte"),
        [0, 0, 8, 1, 0, 0, 0, 1, 7],
    )
    .unwrap();

    let err = FashionMnist::from_dir(dir.path(), Split::Test).unwrap_err();
    match &err {
        DataError::Checksum {
            expected, actual, ..
        } => {
            assert_eq!(
                *expected,
                FASHION_MNIST_FILES
                    .file("t10k-images-idx3-ubyte")
                    .and_then(|f| f.sha256)
                    .unwrap()
            );
            assert_eq!(*actual, source::sha256_hex(&images));
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    assert!(
        err.to_string().contains("t10k-images-idx3-ubyte: SHA-256"),
        "{err}"
    );
}

#[test]
fn mnist_archives_must_be_the_published_ones_and_plain_files_are_checked_for_structure() {
    let dir = tempfile::tempdir().unwrap();
    let labels = common::idx::idx_file(&[2], &[3, 1]);
    std::fs::write(
        dir.path().join("t10k-images-idx3-ubyte"),
        common::idx::images(2, 28, 28),
    )
    .unwrap();
    // A decompressed copy: nothing but its structure is known, and it is fine.
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte"), &labels).unwrap();
    let test = Mnist::from_dir(dir.path(), Split::Test).unwrap();
    assert_eq!(test.labels(), &[3, 1]);

    // A gzip file is compared with the archive the mirrors publish.
    std::fs::remove_file(dir.path().join("t10k-labels-idx1-ubyte")).unwrap();
    let archive = common::idx::gzip(&labels);
    std::fs::write(dir.path().join("t10k-labels-idx1-ubyte.gz"), &archive).unwrap();
    let err = Mnist::from_dir(dir.path(), Split::Test).unwrap_err();
    match &err {
        DataError::Checksum {
            digested,
            expected,
            actual,
            ..
        } => {
            assert_eq!(*digested, Digested::Archive);
            assert_eq!(Some(*expected), MNIST_FILES.files[3].gz_sha256);
            assert_eq!(*actual, source::sha256_hex(&archive));
        }
        other => panic!("expected a checksum error, got {other}"),
    }
    assert!(
        err.to_string().contains("SHA-256 of the gzip file"),
        "{err}"
    );
}

#[test]
fn sha256_matches_a_known_vector() {
    assert_eq!(
        source::sha256_hex(b"abc"),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
}
