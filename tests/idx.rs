//! The IDX reader on well-formed, corrupt and arbitrary bytes: every fault is a named error and
//! no input makes it panic.
#![cfg(feature = "dataset")]

use crate::common;

use common::idx::{gzip, idx_file, images};
use nin::data::idx::{self, IdxFault};
use nin::data::{DataError, FASHION_MNIST_CLASSES, IdxDataset};
use proptest::prelude::*;

#[test]
fn well_formed_files_round_trip_pixels_exactly() {
    let bytes = images(3, 4, 5);
    let parsed = idx::parse_images(bytes.clone()).unwrap();
    assert_eq!((parsed.count, parsed.rows, parsed.cols), (3, 4, 5));
    assert_eq!(parsed.pixels, bytes[16..]);
    assert_eq!(parsed.image(2).unwrap(), &bytes[16 + 40..16 + 60]);
    assert_eq!(parsed.image(3), None);

    let labels = idx::parse_labels(idx_file(&[4], &[0, 9, 3, 9]), 10).unwrap();
    assert_eq!(labels, [0, 9, 3, 9]);

    // gzip is recognised by its magic number and gives the same result.
    let unzipped = idx::decompress(gzip(&bytes)).unwrap();
    assert_eq!(unzipped, bytes);
}

#[test]
fn each_fault_is_reported() {
    let cases: Vec<(Vec<u8>, IdxFault)> = vec![
        (vec![0, 0], IdxFault::ShortHeader { len: 2, needed: 16 }),
        (
            vec![0x89, b'P', b'N', b'G', 0, 0, 0, 0],
            IdxFault::BadMagic {
                found: 0x8950_4e47,
                expected: 0x0000_0803,
            },
        ),
        (
            {
                let mut b = images(1, 2, 2);
                b[2] = 0x0d; // float elements
                b
            },
            IdxFault::ElementType(0x0d),
        ),
        (
            idx_file(&[4], &[0; 4]),
            IdxFault::Dimensions {
                found: 1,
                expected: 3,
            },
        ),
        (
            images(1, 2, 2)[..10].to_vec(),
            IdxFault::ShortHeader {
                len: 10,
                needed: 16,
            },
        ),
        (
            idx_file(&[1, 0, 5], &[]),
            IdxFault::ImageSize { rows: 0, cols: 5 },
        ),
        (
            idx_file(&[1, 100_000, 5], &[]),
            IdxFault::ImageSize {
                rows: 100_000,
                cols: 5,
            },
        ),
        (
            images(3, 4, 5)[..16 + 59].to_vec(),
            IdxFault::Truncated {
                claimed: 60,
                actual: 59,
            },
        ),
        (
            {
                let mut b = images(3, 4, 5);
                b.extend_from_slice(b"junk");
                b
            },
            IdxFault::Trailing {
                claimed: 60,
                extra: 4,
            },
        ),
        // A header claiming u32::MAX images of 16384×16384 pixels: refused, nothing allocated.
        (
            idx_file(&[u32::MAX, 16_384, 16_384], &[1, 2, 3]),
            IdxFault::Truncated {
                claimed: u32::MAX as u128 * 16_384 * 16_384,
                actual: 3,
            },
        ),
    ];
    for (bytes, expected) in cases {
        assert_eq!(
            idx::parse_images(bytes),
            Err(expected.clone()),
            "{expected}"
        );
    }

    assert_eq!(
        idx::parse_labels(idx_file(&[3], &[1, 10, 2]), 10),
        Err(IdxFault::LabelOutOfRange {
            label: 10,
            index: 1,
            classes: 10
        })
    );
    assert_eq!(
        idx::parse_labels(images(1, 1, 1), 10),
        Err(IdxFault::Dimensions {
            found: 3,
            expected: 1
        })
    );
    let mut corrupt = gzip(&images(2, 3, 3));
    let n = corrupt.len();
    corrupt.truncate(n - 12); // cut inside the deflate stream
    assert!(matches!(idx::decompress(corrupt), Err(IdxFault::Gzip(_))));
}

#[test]
fn file_errors_name_the_file() {
    let dir = tempfile::tempdir().unwrap();
    let images_path = dir.path().join("train-images-idx3-ubyte.gz");
    let labels_path = dir.path().join("train-labels-idx1-ubyte");
    std::fs::write(&images_path, gzip(&images(3, 2, 2))).unwrap();
    std::fs::write(&labels_path, idx_file(&[2], &[1, 2])).unwrap();

    let err =
        IdxDataset::from_files(&images_path, &labels_path, &FASHION_MNIST_CLASSES).unwrap_err();
    assert!(matches!(
        err,
        DataError::CountMismatch {
            images: 3,
            labels: 2,
            ..
        }
    ));
    let message = err.to_string();
    assert!(
        message.contains("train-images-idx3-ubyte.gz") && message.contains("3 images"),
        "{message}"
    );

    std::fs::write(&labels_path, idx_file(&[3], &[1, 2, 3]).split_at(10).0).unwrap();
    let err =
        IdxDataset::from_files(&images_path, &labels_path, &FASHION_MNIST_CLASSES).unwrap_err();
    let message = err.to_string();
    assert!(
        message.starts_with(&labels_path.display().to_string()),
        "{message}"
    );
    assert!(message.contains("truncated"), "{message}");

    let missing = dir.path().join("nothing-here");
    let err = idx::read_images(&missing).unwrap_err();
    assert!(err.to_string().contains("nothing-here") && err.fault().is_none());

    std::fs::write(&labels_path, idx_file(&[3], &[1, 2, 3])).unwrap();
    let dataset =
        IdxDataset::from_files(&images_path, &labels_path, &FASHION_MNIST_CLASSES).unwrap();
    assert_eq!(dataset.item(1).unwrap().label, 2);
    assert_eq!(dataset.item(2).unwrap().pixels, images(3, 2, 2)[16 + 8..]);
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    /// Arbitrary bytes never panic, with or without a plausible header in front.
    #[test]
    fn arbitrary_bytes_never_panic(bytes in proptest::collection::vec(any::<u8>(), 0..256)) {
        let _ = idx::parse_images(bytes.clone());
        let _ = idx::parse_labels(bytes.clone(), 10);
        let _ = idx::decompress(bytes.clone());
        let mut with_header = vec![0, 0, 8, 3];
        with_header.extend_from_slice(&bytes);
        let _ = idx::parse_images(with_header);
    }

    /// A valid file with one byte changed, removed or added is either still valid with the
    /// same shape or an error; never a panic.
    #[test]
    fn mutated_files_never_panic(
        count in 0u32..4, rows in 1u32..5, cols in 1u32..5,
        position in any::<prop::sample::Index>(), value in any::<u8>(), op in 0u8..3,
    ) {
        let mut bytes = images(count, rows, cols);
        let at = position.index(bytes.len());
        match op {
            0 => bytes[at] = value,
            1 => { bytes.remove(at); }
            _ => bytes.insert(at, value),
        }
        if let Ok(parsed) = idx::parse_images(bytes.clone()) {
            prop_assert_eq!(parsed.pixels.len(), parsed.count * parsed.rows * parsed.cols);
        }
        let _ = idx::decompress(gzip(&bytes)).map(idx::parse_images);
    }
}
