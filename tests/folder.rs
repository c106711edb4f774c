//! Folders of your own images: classes from sub-folders, conversion to the asked channels and
//! size, unreadable files skipped and named, and folders that cannot serve refused.
#![cfg(feature = "dataset")]

use std::path::Path;

use burn::data::dataset::Dataset;
use nin::data::{DataError, ImageFolder};

fn save(path: &Path, colour: [u8; 3], side: u32) {
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    image::RgbImage::from_pixel(side, side, image::Rgb(colour))
        .save(path)
        .unwrap();
}

#[test]
fn classes_are_sorted_sub_folders_and_images_are_converted() {
    let dir = tempfile::tempdir().unwrap();
    let root = dir.path();
    save(&root.join("zebra/a.png"), [200, 10, 30], 40);
    save(&root.join("ant/b.PNG"), [0, 255, 0], 8);
    save(&root.join("ant/c.jpg"), [0, 0, 255], 16);
    std::fs::write(root.join("ant/notes.txt"), "not an image").unwrap();
    std::fs::write(root.join("ant/.hidden.png"), "hidden").unwrap();
    std::fs::write(root.join("README"), "a file beside the classes").unwrap();

    let rgb = ImageFolder::open(root, 3, 12).unwrap();
    assert_eq!(rgb.class_names(), ["ant", "zebra"]);
    assert_eq!(rgb.len(), 3);
    assert!(rgb.skipped().is_empty(), "{:?}", rgb.skipped());
    // Files in name order within a class: b.PNG, c.jpg, then zebra's a.png.
    let labels: Vec<usize> = (0..3).map(|i| rgb.get(i).unwrap().label).collect();
    assert_eq!(labels, [0, 0, 1]);
    let green = rgb.get(0).unwrap();
    assert_eq!(green.shape(), [3, 12, 12]);
    assert!(green.pixels[..144].iter().all(|&p| p == 0));
    assert!(green.pixels[144..288].iter().all(|&p| p == 255));
    let red = rgb.get(2).unwrap();
    assert!(
        red.pixels[..144].iter().all(|&p| p == 200),
        "red plane first"
    );

    let grey = ImageFolder::open(root, 1, 5).unwrap();
    assert_eq!(grey.get(2).unwrap().shape(), [1, 5, 5]);
    assert!(grey.get(3).is_err());
}

#[test]
fn an_unreadable_file_is_skipped_and_named() {
    let dir = tempfile::tempdir().unwrap();
    save(&dir.path().join("cat/ok.png"), [9, 9, 9], 4);
    let broken = dir.path().join("cat/broken.png");
    std::fs::write(&broken, b"\x89PNG\r\n\x1a\ncut").unwrap();
    let folder = ImageFolder::open(dir.path(), 3, 4).unwrap();
    assert_eq!(folder.len(), 1);
    assert_eq!(folder.skipped().len(), 1);
    assert_eq!(folder.skipped()[0].path, broken);
    println!("{}", folder.skipped()[0]);

    // Nothing readable at all is an error that names the first file.
    std::fs::remove_file(dir.path().join("cat/ok.png")).unwrap();
    let err = ImageFolder::open(dir.path(), 3, 4).unwrap_err();
    assert!(matches!(err, DataError::Folder { .. }), "{err}");
    assert!(err.to_string().contains("broken.png"), "{err}");
}

#[test]
fn folders_that_cannot_serve_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    // No class sub-folders.
    let err = ImageFolder::open(dir.path(), 3, 8).unwrap_err();
    assert!(err.to_string().contains("no class sub-folders"), "{err}");
    // Not there at all.
    let err = ImageFolder::open(&dir.path().join("missing"), 3, 8).unwrap_err();
    assert!(err.to_string().contains("cannot list it"), "{err}");
    // Empty class folders.
    std::fs::create_dir(dir.path().join("cat")).unwrap();
    let err = ImageFolder::open(dir.path(), 3, 8).unwrap_err();
    assert!(err.to_string().contains("hold no"), "{err}");
    // Channel counts other than 1 and 3.
    save(&dir.path().join("cat/a.png"), [1, 2, 3], 4);
    let err = ImageFolder::open(dir.path(), 4, 8).unwrap_err();
    assert!(err.to_string().contains("4 channels"), "{err}");

    // A test folder with a class the training folder lacks.
    let test = tempfile::tempdir().unwrap();
    save(&test.path().join("dog/a.png"), [1, 2, 3], 4);
    let train = ImageFolder::open(dir.path(), 3, 8).unwrap();
    let err = ImageFolder::with_classes(test.path(), 3, 8, train.class_names()).unwrap_err();
    assert!(err.to_string().contains("dog/"), "{err}");
    // One with fewer classes keeps the training labels.
    save(&test.path().join("zzz/a.png"), [1, 2, 3], 4);
    std::fs::remove_dir_all(test.path().join("dog")).unwrap();
    std::fs::remove_dir_all(test.path().join("zzz")).unwrap();
    save(&test.path().join("cat/b.png"), [1, 2, 3], 4);
    let names = ["ant".to_string(), "cat".to_string()];
    let test = ImageFolder::with_classes(test.path(), 3, 8, &names).unwrap();
    assert_eq!(test.get(0).unwrap().label, 1);
}
