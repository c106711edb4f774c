//! The download path over a real socket: a server on 127.0.0.1 serves good, corrupt, truncated
//! and missing files, and only verified files may land in the cache.
#![cfg(feature = "download")]

use crate::common;

use std::collections::HashMap;

use burn::data::dataset::Dataset;
use std::path::Path;

use common::cifar::{all_files, archive, holding, published_as, write_folder};
use common::http::{Reply, Server};
use common::idx::{gzip, idx_file, images};
use nin::data::cifar;
use nin::data::download::{self, DownloadError, Downloader};
use nin::data::source::{self, DatasetFiles, FASHION_MNIST_FILES, KnownFile, MNIST_CLASSES};
use nin::data::{CIFAR10, FashionMnist, IdxDataset, Place, Split};

/// A four-file dataset small enough to serve many times: its description (with the SHA-256 of
/// each decompressed file) and the `.gz` archives a mirror would serve.
struct Synthetic {
    files: DatasetFiles,
    archives: Vec<(&'static str, Vec<u8>)>,
}

fn synthetic(with_digests: bool) -> Synthetic {
    let contents = [
        images(6, 4, 4),
        idx_file(&[6], &[0, 1, 2, 3, 4, 5]),
        images(3, 4, 4),
        idx_file(&[3], &[9, 8, 7]),
    ];
    let files = std::array::from_fn(|i| KnownFile {
        name: FASHION_MNIST_FILES.files[i].name,
        sha256: with_digests
            .then(|| &*Box::leak(source::sha256_hex(&contents[i]).into_boxed_str())),
        gz_sha256: None,
        gz_md5: None,
    });
    Synthetic {
        files: DatasetFiles {
            dir_name: "synthetic",
            display_name: "Synthetic",
            classes: &MNIST_CLASSES,
            files,
            system: None,
            mirrors: &[],
        },
        archives: files
            .iter()
            .zip(&contents)
            .map(|(file, content)| (file.name, gzip(content)))
            .collect(),
    }
}

/// Routes serving every archive under `/<prefix>/`, with `first` replacing the reply for the
/// first file (the first one fetched).
fn routes(data: &Synthetic, prefix: &str, first: Option<Reply>, into: &mut HashMap<String, Reply>) {
    for (i, (name, archive)) in data.archives.iter().enumerate() {
        let reply = match (&first, i) {
            (Some(reply), 0) => reply.clone(),
            _ => Reply::Body(archive.clone()),
        };
        into.insert(format!("/{prefix}/{name}.gz"), reply);
    }
}

/// A server with every archive intact under `/good/`.
fn serve_good(data: &Synthetic) -> Server {
    let mut table = HashMap::new();
    routes(data, "good", None, &mut table);
    Server::start(table)
}

fn entries(dir: &Path) -> Vec<String> {
    let mut names: Vec<String> = match std::fs::read_dir(dir) {
        Ok(read) => read
            .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
            .collect(),
        Err(_) => Vec::new(),
    };
    names.sort();
    names
}

#[test]
fn good_files_land_verified_and_load() {
    let data = synthetic(true);
    let server = serve_good(&data);
    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join("synthetic");

    let downloader = Downloader::new().with_mirrors([format!("{}good", server.base)]);
    downloader.fetch(&data.files, &dir).unwrap();

    let mut expected: Vec<String> = data
        .archives
        .iter()
        .map(|(name, _)| format!("{name}.gz"))
        .collect();
    expected.sort();
    assert_eq!(entries(&dir), expected, "only the four verified files land");
    let test = IdxDataset::from_dir(&dir, Split::Test, &data.files).unwrap();
    assert_eq!(test.labels(), &[9, 8, 7]);
    assert_eq!(
        test.item(1).unwrap().pixels,
        images(3, 4, 4)[16 + 16..16 + 32]
    );

    // Everything is there now: a second fetch asks for nothing.
    let before = server.requests().len();
    downloader.fetch(&data.files, &dir).unwrap();
    assert_eq!(server.requests().len(), before);
}

#[test]
fn corrupt_truncated_and_missing_files_are_rejected_and_leave_nothing() {
    let data = synthetic(true);
    let good = data.archives[0].1.clone();
    let mut flipped = good.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    let half = good[..good.len() / 2].to_vec();
    // A well-formed archive of other content: only the digest can tell.
    let other = gzip(&images(6, 4, 5));
    let cases = [
        ("corrupt", Some(Reply::Body(flipped)), "gzip"),
        ("wrong-content", Some(Reply::Body(other)), "SHA-256"),
        (
            "cut-short",
            Some(Reply::CutShort {
                body: half.clone(),
                announced: good.len(),
            }),
            "bytes",
        ),
        ("unsized-half", Some(Reply::Unsized(half)), "gzip"),
        ("missing", None, "404"),
    ];
    let mut table = HashMap::new();
    for (prefix, reply, _) in &cases {
        routes(&data, prefix, reply.clone(), &mut table);
        if reply.is_none() {
            table.remove(&format!("/{prefix}/{}.gz", data.archives[0].0));
        }
    }
    let server = Server::start(table);

    for (prefix, _, reason) in cases {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join("synthetic");
        let err = Downloader::new()
            .quiet()
            .with_mirrors([format!("{}{prefix}", server.base)])
            .fetch(&data.files, &dir)
            .unwrap_err();
        println!("{prefix}: {err}");
        match &err {
            DownloadError::AllMirrorsFailed { file, attempts } => {
                assert_eq!(file, data.archives[0].0);
                assert_eq!(attempts.len(), 1);
                assert!(attempts[0].reason.contains(reason), "{prefix}: {err}");
            }
            other => panic!("{prefix}: expected every mirror to fail, got {other}"),
        }
        assert!(err.to_string().contains("the `dir` argument"), "{err}");
        assert_eq!(entries(&dir), Vec::<String>::new(), "{prefix} left files");
    }
}

#[test]
fn a_bad_mirror_falls_through_to_the_next() {
    let data = synthetic(true);
    let mut corrupt = data.archives[0].1.clone();
    let last = corrupt.len() - 5;
    corrupt[last] ^= 1;
    let mut table = HashMap::new();
    routes(&data, "bad", Some(Reply::Body(corrupt)), &mut table);
    routes(&data, "good", None, &mut table);
    let server = Server::start(table);
    let cache = tempfile::tempdir().unwrap();

    Downloader::new()
        .quiet()
        .with_mirrors([
            format!("{}bad", server.base),
            format!("{}good/", server.base),
        ])
        .fetch(&data.files, cache.path())
        .unwrap();

    let first = format!("{}.gz", data.archives[0].0);
    assert_eq!(
        server.requests()[..2],
        [format!("/bad/{first}"), format!("/good/{first}")]
    );
    assert_eq!(entries(cache.path()).len(), 4);
    IdxDataset::from_dir(cache.path(), Split::Train, &data.files).unwrap();
}

#[test]
fn files_without_a_reference_digest_are_never_downloaded() {
    let data = synthetic(false);
    let server = serve_good(&data);
    let cache = tempfile::tempdir().unwrap();

    let err = Downloader::new()
        .with_mirrors([format!("{}good", server.base)])
        .fetch(&data.files, cache.path())
        .unwrap_err();
    assert!(matches!(err, DownloadError::NoDigest { .. }), "{err}");
    assert!(server.requests().is_empty());
    assert!(entries(cache.path()).is_empty());
}

#[test]
fn downloads_only_when_no_directory_was_named_and_not_offline() {
    let data = synthetic(true);
    let server = serve_good(&data);
    let downloader = Downloader::new()
        .quiet()
        .with_mirrors([format!("{}good", server.base)]);
    let root = tempfile::tempdir().unwrap();
    let (named, cache) = (root.path().join("named"), root.path().join("cache"));

    // A named directory without the files is the error; nothing is fetched behind it.
    let err = download::locate_or_download_in(
        &data.files,
        Some(&named),
        None,
        Some(&cache),
        Some(&downloader),
    )
    .unwrap_err();
    assert_eq!(err.tried[0].place, Place::Explicit);
    assert!(server.requests().is_empty());

    // Offline: the message says why nothing was downloaded.
    let err =
        download::locate_or_download_in(&data.files, None, None, Some(&cache), None).unwrap_err();
    let message = err.to_string();
    println!("{message}");
    assert!(
        message.contains("a download") && message.contains(download::OFFLINE_VAR),
        "{message}"
    );
    assert!(server.requests().is_empty());

    let found =
        download::locate_or_download_in(&data.files, None, None, Some(&cache), Some(&downloader))
            .unwrap();
    assert_eq!(
        (found.dir.as_path(), found.place),
        (cache.as_path(), Place::Download)
    );
    assert_eq!(server.requests().len(), 4);

    // Next time the cache serves.
    let found =
        download::locate_or_download_in(&data.files, None, None, Some(&cache), Some(&downloader))
            .unwrap();
    assert_eq!(found.place, Place::UserCache);
    assert_eq!(server.requests().len(), 4);
}

#[test]
fn fashion_mnist_downloads_and_verifies() {
    let test = "fashion_mnist_downloads_and_verifies";
    let Some((system_dir, _)) = FASHION_MNIST_FILES.system else {
        unreachable!("Fashion-MNIST has a system copy")
    };
    let system_dir = Path::new(system_dir);
    if let Some(name) = source::missing_file(system_dir, &FASHION_MNIST_FILES) {
        common::unavailable(
            test,
            "the Debian Fashion-MNIST copy to serve",
            "NIN_REQUIRE_DATA",
            &format!("{}: {name}[.gz] is missing", system_dir.display()),
        );
        return;
    }
    // Serve the real files, as a mirror would.
    let mut table = HashMap::new();
    for file in FASHION_MNIST_FILES.files {
        let path = source::find_file(system_dir, file.name).unwrap();
        let bytes = std::fs::read(&path).unwrap();
        let bytes = if path.extension().is_some_and(|e| e == "gz") {
            bytes
        } else {
            gzip(&bytes)
        };
        table.insert(format!("/fashion/{}.gz", file.name), Reply::Body(bytes));
    }
    let server = Server::start(table);
    let cache = tempfile::tempdir().unwrap();
    let started = std::time::Instant::now();
    // As on a machine without the Debian package, so the chain ends in a download.
    let without_system_copy = DatasetFiles {
        system: None,
        ..FASHION_MNIST_FILES
    };
    let found = download::locate_or_download_in(
        &without_system_copy,
        None,
        None,
        Some(cache.path()),
        Some(&Downloader::new().with_mirrors([format!("{}fashion", server.base)])),
    )
    .unwrap();
    println!("{test}: fetched and verified in {:.2?}", started.elapsed());
    assert_eq!(found.place, Place::Download);
    let test_split = FashionMnist::from_dir(cache.path(), Split::Test).unwrap();
    assert_eq!(burn::data::dataset::Dataset::len(&test_split), 10_000);
}

#[test]
fn cifar_downloads_as_its_one_verified_archive() {
    let bytes = archive(&CIFAR10, &all_files(&CIFAR10, 20));
    let format = published_as(&CIFAR10, &bytes);
    let name = format.archive_name();
    let mut flipped = bytes.clone();
    let middle = flipped.len() / 2;
    flipped[middle] ^= 0x40;
    // A well-formed archive of other records: only the digests can tell.
    let other = archive(&CIFAR10, &all_files(&CIFAR10, 21));
    let cases = [
        ("corrupt", Reply::Body(flipped), "SHA-256"),
        ("other", Reply::Body(other), "SHA-256"),
        (
            "cut-short",
            Reply::CutShort {
                body: bytes[..bytes.len() / 2].to_vec(),
                announced: bytes.len(),
            },
            "bytes",
        ),
        (
            "a-page",
            Reply::Body(b"<html>moved</html>".to_vec()),
            "gzip",
        ),
    ];
    let mut table: HashMap<String, Reply> = cases
        .iter()
        .map(|(prefix, reply, _)| (format!("/{prefix}/{name}"), reply.clone()))
        .collect();
    table.insert(format!("/good/{name}"), Reply::Body(bytes.clone()));
    let server = Server::start(table);
    let mirror = |prefix: &str| {
        Downloader::new()
            .quiet()
            .with_mirrors([format!("{}{prefix}", server.base)])
    };

    for (prefix, _, reason) in &cases {
        let cache = tempfile::tempdir().unwrap();
        let dir = cache.path().join(format.dir_name);
        let err =
            download::locate_or_download_in(&format, None, None, Some(&dir), Some(&mirror(prefix)))
                .unwrap_err();
        let message = err.to_string();
        println!("{prefix}: {message}");
        assert!(
            message.contains(&name) && message.contains(reason),
            "{message}"
        );
        assert_eq!(entries(&dir), Vec::<String>::new(), "{prefix} left files");
    }

    let cache = tempfile::tempdir().unwrap();
    let dir = cache.path().join(format.dir_name);
    let found =
        download::locate_or_download_in(&format, None, None, Some(&dir), Some(&mirror("good")))
            .unwrap();
    assert_eq!(found.place, Place::Download);
    assert_eq!(entries(&dir), vec![name.clone()]);
    let test = cifar::read(&format, &found.dir, Split::Test).unwrap();
    assert_eq!(test.len(), 20);
    // Next time the cache serves, with no request.
    let requests = server.requests().len();
    let found =
        download::locate_or_download_in(&format, None, None, Some(&dir), Some(&mirror("good")))
            .unwrap();
    assert_eq!(found.place, Place::UserCache);
    assert_eq!(server.requests().len(), requests);

    // NIN_DATA_DIR holding the extracted folder comes first, and is checked for structure.
    let env = tempfile::tempdir().unwrap();
    write_folder(env.path(), &format, &all_files(&CIFAR10, 5));
    let found = download::locate_or_download_in(
        &format,
        None,
        Some(env.path()),
        Some(&dir),
        Some(&mirror("good")),
    )
    .unwrap();
    assert_eq!(found.place, Place::EnvVar);
    assert_eq!(
        cifar::read(&holding(&format, 5), &found.dir, Split::Train)
            .unwrap()
            .len(),
        25
    );
    assert_eq!(server.requests().len(), requests);

    // The real CIFAR-10 description refuses the generated archive however it is served.
    let cache = tempfile::tempdir().unwrap();
    let err = Downloader::new()
        .quiet()
        .with_mirrors([format!("{}good", server.base)])
        .fetch(&CIFAR10, cache.path())
        .unwrap_err();
    assert!(err.to_string().contains("SHA-256"), "{err}");
    assert!(entries(cache.path()).is_empty());
}
