//! CIFAR-10 and CIFAR-100 in their binary format (the dataset page's "binary version suitable
//! for C programs"), read from the archive as published or from its extracted folder.
//!
//! Design notes: `docs/design.md`, "data::cifar".

use std::fs::File;
use std::io::{BufReader, Read};
use std::path::{Path, PathBuf};

use burn::data::dataset::{Dataset, DatasetError};
use flate2::read::GzDecoder;

use super::catalogue::{DatasetSource, KnownFile};
use super::error::DataError;
use super::item::{ImageItem, Split, item_or_out_of_range};
use super::locate::Located;
use super::source;
use super::verify::{ArchiveHasher, check_published};

/// Side of a CIFAR image.
pub(crate) const CIFAR_SIDE: usize = 32;
/// Pixel bytes of a CIFAR image: three 32×32 planes.
const PIXELS: usize = 3 * CIFAR_SIDE * CIFAR_SIDE;
/// The most records one file may hold: the whole dataset's 60,000 images. A member or file
/// that claims more is refused before anything is read.
const MAX_RECORDS_PER_FILE: u64 = 60_000;

/// How one of the two datasets is laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CifarFormat {
    /// Name shown to people.
    pub display_name: &'static str,
    /// Name of its directory in the user cache.
    pub dir_name: &'static str,
    /// The published archive (`name` without `.gz`) with its reference digests. A format whose
    /// archive has no digest reads archives for structure only and cannot be downloaded.
    pub archive: KnownFile,
    /// Base URLs (ending in `/`) serving the archive, tried in order.
    pub mirrors: &'static [&'static str],
    /// The folder the archive unpacks to.
    pub folder: &'static str,
    /// Files of the training split, in order.
    pub train_files: &'static [&'static str],
    /// Files of the test split.
    pub test_files: &'static [&'static str],
    /// Records each file of the training split holds, where the format fixes it (the official
    /// files do): an extracted file with another count is a damaged extraction. `None` takes
    /// any whole number of records.
    pub train_file_records: Option<usize>,
    /// Records each file of the test split holds; see `train_file_records`.
    pub test_file_records: Option<usize>,
    /// The file of class names, one per line, by (fine) label.
    pub names_file: &'static str,
    /// Classes of the (fine) label.
    pub classes: usize,
    /// Classes of the coarse label, for CIFAR-100's superclasses; 0 where records have none.
    pub coarse_classes: usize,
}

impl CifarFormat {
    /// Bytes of one record.
    pub fn record_len(&self) -> usize {
        self.label_bytes() + PIXELS
    }

    fn label_bytes(&self) -> usize {
        if self.coarse_classes > 0 { 2 } else { 1 }
    }

    fn files(&self, split: Split) -> &'static [&'static str] {
        match split {
            Split::Train => self.train_files,
            Split::Test => self.test_files,
        }
    }

    fn file_records(&self, split: Split) -> Option<usize> {
        match split {
            Split::Train => self.train_file_records,
            Split::Test => self.test_file_records,
        }
    }

    /// The archive's file name, as published.
    pub fn archive_name(&self) -> String {
        self.archive.published_name()
    }

    /// The extracted folder in `dir`: `dir` itself if it is one, else `dir/<folder>`.
    fn extracted_folder(&self, dir: &Path) -> Option<PathBuf> {
        if dir.join(self.names_file).is_file() {
            Some(dir.to_path_buf())
        } else {
            Some(dir.join(self.folder)).filter(|folder| folder.is_dir())
        }
    }
}

impl DatasetSource for CifarFormat {
    fn dir_name(&self) -> &'static str {
        self.dir_name
    }

    fn display_name(&self) -> &'static str {
        self.display_name
    }

    fn lacks(&self, dir: &Path) -> Option<String> {
        if self.extracted_folder(dir).is_some() || dir.join(self.archive_name()).is_file() {
            return None;
        }
        Some(format!(
            "neither {} nor {}/ is there",
            self.archive_name(),
            self.folder
        ))
    }

    fn by_hand(&self) -> String {
        format!(
            "{} (the binary version from https://www.cs.toronto.edu/~kriz/cifar.html) or the \
             {}/ folder it unpacks to",
            self.archive_name(),
            self.folder
        )
    }

    fn to_download(&self, dir: &Path) -> Vec<KnownFile> {
        match self.lacks(dir) {
            Some(_) => vec![self.archive],
            None => Vec::new(),
        }
    }

    fn mirrors(&self) -> &'static [&'static str] {
        self.mirrors
    }
}

/// The dataset's page, which serves both archives.
const TORONTO: &[&str] = &["https://www.cs.toronto.edu/~kriz/"];

/// CIFAR-10: 60,000 32×32 colour images in 10 classes.
pub const CIFAR10: CifarFormat = CifarFormat {
    display_name: "CIFAR-10",
    dir_name: "cifar-10",
    // 170,052,171 bytes.
    archive: KnownFile {
        name: "cifar-10-binary.tar",
        sha256: None,
        gz_sha256: Some("c4a38c50a1bc5f3a1c5537f2155ab9d68f9f25eb1ed8d9ddda3db29a59bca1dd"),
        gz_md5: Some("c32a1d4ab5d03f1284b67883e8d87530"),
    },
    mirrors: TORONTO,
    folder: "cifar-10-batches-bin",
    train_files: &[
        "data_batch_1.bin",
        "data_batch_2.bin",
        "data_batch_3.bin",
        "data_batch_4.bin",
        "data_batch_5.bin",
    ],
    test_files: &["test_batch.bin"],
    train_file_records: Some(10_000),
    test_file_records: Some(10_000),
    names_file: "batches.meta.txt",
    classes: 10,
    coarse_classes: 0,
};

/// CIFAR-100: 60,000 32×32 colour images in 100 classes, grouped in 20 superclasses.
pub const CIFAR100: CifarFormat = CifarFormat {
    display_name: "CIFAR-100",
    dir_name: "cifar-100",
    // 168,513,733 bytes.
    archive: KnownFile {
        name: "cifar-100-binary.tar",
        sha256: None,
        gz_sha256: Some("58a81ae192c23a4be8b1804d68e518ed807d710a4eb253b1f2a199162a40d8ec"),
        gz_md5: Some("03b5dce01913d631647c71ecec9e9cb8"),
    },
    mirrors: TORONTO,
    folder: "cifar-100-binary",
    train_files: &["train.bin"],
    test_files: &["test.bin"],
    train_file_records: Some(50_000),
    test_file_records: Some(10_000),
    names_file: "fine_label_names.txt",
    classes: 100,
    coarse_classes: 20,
};

/// One split of CIFAR-10 or CIFAR-100 in memory: 3 × 32 × 32 bytes and the labels per image.
#[derive(Debug, Clone)]
pub struct CifarDataset {
    pixels: Vec<u8>,
    labels: Vec<u8>,
    coarse_labels: Vec<u8>,
    class_names: Vec<String>,
}

impl CifarDataset {
    /// The class names, by label.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// CIFAR-100's superclass (coarse label) of image `index`; `None` for CIFAR-10 or past
    /// the end.
    pub fn coarse_label(&self, index: usize) -> Option<usize> {
        self.coarse_labels.get(index).map(|&l| usize::from(l))
    }

    /// The item at `index`, or `None` past the end.
    pub fn item(&self, index: usize) -> Option<ImageItem> {
        let label = usize::from(*self.labels.get(index)?);
        Some(ImageItem {
            pixels: self.pixels[index * PIXELS..(index + 1) * PIXELS].to_vec(),
            channels: 3,
            height: CIFAR_SIDE,
            width: CIFAR_SIDE,
            label,
        })
    }
}

impl Dataset<ImageItem> for CifarDataset {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        item_or_out_of_range(self.item(index), index, self.labels.len())
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// CIFAR-10 (Krizhevsky, 2009): 32×32 colour images in 10 classes, 50,000 for training and
/// 10,000 for testing.
pub struct Cifar10;

/// CIFAR-100: 32×32 colour images in 100 classes, with fine labels as the label and the
/// superclass (one of 20) from [`CifarDataset::coarse_label`].
pub struct Cifar100;

impl Cifar10 {
    /// Reads `split` from `dir`, which holds the archive (`cifar-10-binary.tar.gz`) or its
    /// extracted folder (`cifar-10-batches-bin/`), or is that folder.
    pub fn from_dir(dir: &Path, split: Split) -> Result<CifarDataset, DataError> {
        read(&CIFAR10, dir, split)
    }

    /// Finds the dataset (`dir` if given, else `NIN_DATA_DIR`, the user cache, then, with the
    /// `download` feature, a download of the archive into the user cache) and reads `split`
    /// from it. Returns where it was found too.
    pub fn load(split: Split, dir: Option<&Path>) -> Result<(CifarDataset, Located), DataError> {
        load(&CIFAR10, split, dir)
    }

    /// The training split (50,000 images), found as [`load`](Self::load) does.
    pub fn train() -> Result<CifarDataset, DataError> {
        Self::load(Split::Train, None).map(|(data, _)| data)
    }

    /// The test split (10,000 images), found as [`load`](Self::load) does.
    pub fn test() -> Result<CifarDataset, DataError> {
        Self::load(Split::Test, None).map(|(data, _)| data)
    }
}

impl Cifar100 {
    /// Reads `split` from `dir`, which holds the archive (`cifar-100-binary.tar.gz`) or its
    /// extracted folder (`cifar-100-binary/`), or is that folder.
    pub fn from_dir(dir: &Path, split: Split) -> Result<CifarDataset, DataError> {
        read(&CIFAR100, dir, split)
    }

    /// Finds the dataset as [`Cifar10::load`] does and reads `split` from it.
    pub fn load(split: Split, dir: Option<&Path>) -> Result<(CifarDataset, Located), DataError> {
        load(&CIFAR100, split, dir)
    }

    /// The training split (50,000 images), found as [`load`](Self::load) does.
    pub fn train() -> Result<CifarDataset, DataError> {
        Self::load(Split::Train, None).map(|(data, _)| data)
    }

    /// The test split (10,000 images), found as [`load`](Self::load) does.
    pub fn test() -> Result<CifarDataset, DataError> {
        Self::load(Split::Test, None).map(|(data, _)| data)
    }
}

/// Finds `format`'s dataset as [`Cifar10::load`] does and reads `split` from it.
pub fn load(
    format: &CifarFormat,
    split: Split,
    dir: Option<&Path>,
) -> Result<(CifarDataset, Located), DataError> {
    let located = source::find(format, dir)?;
    Ok((read(format, &located.dir, split)?, located))
}

/// Reads `split` of `format` from `dir` (see [`Cifar10::from_dir`]): the extracted folder if
/// there is one, else the archive, whose digests are checked.
pub fn read(format: &CifarFormat, dir: &Path, split: Split) -> Result<CifarDataset, DataError> {
    let wanted = wanted_files(format, split);
    let archive = dir.join(format.archive_name());
    let members = match format.extracted_folder(dir) {
        Some(folder) => read_folder(format, &folder, &wanted, format.file_records(split))?,
        None if archive.is_file() => read_archive(format, &archive, &wanted)?,
        None => {
            return Err(DataError::Missing {
                dir: dir.display().to_string(),
                what: format.lacks(dir).unwrap_or_default(),
                fix: format!("put {} there", format.by_hand()),
            });
        }
    };
    parse(format, members)
}

/// The names of the files a split needs: its record files, then the class names.
fn wanted_files(format: &CifarFormat, split: Split) -> Vec<&'static str> {
    let mut files = format.files(split).to_vec();
    files.push(format.names_file);
    files
}

/// A file's name as errors show it, and its bytes.
struct Member {
    shown: String,
    bytes: Vec<u8>,
}

/// The most bytes a file of the dataset may hold: the records of the whole dataset.
fn max_file_bytes(format: &CifarFormat) -> u64 {
    MAX_RECORDS_PER_FILE * format.record_len() as u64
}

/// The `wanted` files of an extracted folder: the split's record files, each holding
/// `records` records where that is given, then the class names.
fn read_folder(
    format: &CifarFormat,
    folder: &Path,
    wanted: &[&str],
    records: Option<usize>,
) -> Result<Vec<Member>, DataError> {
    let record_files = wanted.len() - 1;
    wanted
        .iter()
        .enumerate()
        .map(|(index, name)| {
            let path = folder.join(name);
            let shown = path.display().to_string();
            // A file larger than the whole dataset's records is refused before it is read.
            if let Ok(metadata) = std::fs::metadata(&path)
                && metadata.len() > max_file_bytes(format)
            {
                return Err(cifar_error(
                    &shown,
                    0,
                    format!(
                        "{} bytes, more than the {MAX_RECORDS_PER_FILE} records of the whole \
                         dataset; the file is not {}",
                        metadata.len(),
                        format.display_name
                    ),
                ));
            }
            let bytes = std::fs::read(&path).map_err(|e| {
                if e.kind() == std::io::ErrorKind::NotFound {
                    DataError::Missing {
                        dir: folder.display().to_string(),
                        what: name.to_string(),
                        fix: "the folder is incomplete: extract the archive again".into(),
                    }
                } else {
                    cifar_error(&shown, 0, format!("cannot read it: {e}"))
                }
            })?;
            if let Some(expected) = records.filter(|_| index < record_files) {
                let held = bytes.len() / format.record_len();
                if bytes.len() != expected * format.record_len() {
                    return Err(cifar_error(
                        &shown,
                        0,
                        format!(
                            "{} bytes, {held} whole records, where the official file holds \
                             {expected}: the extraction is damaged; extract {} again",
                            bytes.len(),
                            format.archive_name()
                        ),
                    ));
                }
            }
            Ok(Member { shown, bytes })
        })
        .collect()
}

/// Streams the archive once and keeps the members in `wanted`, each checked against the
/// largest size the format allows before it is read. The same pass digests the whole file,
/// which must be the published archive.
fn read_archive(
    format: &CifarFormat,
    path: &Path,
    wanted: &[&str],
) -> Result<Vec<Member>, DataError> {
    let shown = path.display().to_string();
    let broken = |e: std::io::Error| {
        cifar_error(
            &shown,
            0,
            format!("not a complete gzip-compressed tar archive ({e}); fetch it again"),
        )
    };
    let file =
        File::open(path).map_err(|e| cifar_error(&shown, 0, format!("cannot open it: {e}")))?;
    let digesting = Digesting {
        inner: file,
        hasher: ArchiveHasher::default(),
    };
    let mut archive = tar::Archive::new(GzDecoder::new(BufReader::new(digesting)));
    let mut found: Vec<Option<Vec<u8>>> = vec![None; wanted.len()];
    for entry in archive.entries().map_err(broken)? {
        let mut entry = entry.map_err(broken)?;
        let name = entry.path().map_err(broken)?.to_path_buf();
        let Some(slot) = wanted_slot(format, &name, wanted) else {
            continue;
        };
        let size = entry.header().size().map_err(broken)?;
        if size > max_file_bytes(format) {
            return Err(cifar_error(
                &format!("{shown}: {}", name.display()),
                0,
                format!(
                    "the member claims {size} bytes, more than the {} records of the whole \
                     dataset; the archive is not {}",
                    MAX_RECORDS_PER_FILE, format.display_name
                ),
            ));
        }
        let mut bytes = Vec::with_capacity(size as usize);
        entry.read_to_end(&mut bytes).map_err(broken)?;
        if bytes.len() as u64 != size {
            return Err(broken(std::io::Error::from(
                std::io::ErrorKind::UnexpectedEof,
            )));
        }
        found[slot] = Some(bytes);
    }
    // The tar reader stops at the end-of-archive blocks: digest what follows them too.
    let mut rest = archive.into_inner().into_inner().into_inner();
    std::io::copy(&mut rest, &mut std::io::sink()).map_err(broken)?;
    check_published(&rest.hasher.finish(), &format.archive, &shown)?;
    found
        .into_iter()
        .zip(wanted)
        .map(|(bytes, name)| {
            let bytes = bytes.ok_or_else(|| DataError::Missing {
                dir: shown.clone(),
                what: format!("the member {}/{name}", format.folder),
                fix: "the archive is incomplete or another dataset's: fetch it again".into(),
            })?;
            Ok(Member {
                shown: format!("{shown}: {}/{name}", format.folder),
                bytes,
            })
        })
        .collect()
}

/// A reader that digests every byte it passes on.
struct Digesting<R> {
    inner: R,
    hasher: ArchiveHasher,
}

impl<R: Read> Read for Digesting<R> {
    fn read(&mut self, buf: &mut [u8]) -> std::io::Result<usize> {
        let n = self.inner.read(buf)?;
        self.hasher.update(&buf[..n]);
        Ok(n)
    }
}

/// Which of `wanted` the archive member `name` is (`<folder>/<file>`), if any.
fn wanted_slot(format: &CifarFormat, name: &Path, wanted: &[&str]) -> Option<usize> {
    let folder = PathBuf::from(format.folder);
    let file = name.strip_prefix(&folder).ok()?;
    wanted.iter().position(|w| file == Path::new(w))
}

/// The records of the split's files (all but the last member) and the class names (the last).
fn parse(format: &CifarFormat, mut members: Vec<Member>) -> Result<CifarDataset, DataError> {
    let names = members.pop().expect("the class names are always wanted");
    let class_names = class_names(format, &names)?;
    let record = format.record_len();
    let label_bytes = format.label_bytes();
    let records: usize = members.iter().map(|m| m.bytes.len() / record).sum();
    let mut dataset = CifarDataset {
        pixels: Vec::with_capacity(records * PIXELS),
        labels: Vec::with_capacity(records),
        coarse_labels: Vec::with_capacity(if label_bytes == 2 { records } else { 0 }),
        class_names,
    };
    for member in &members {
        // The size bound was checked where each file was read; here, whole records.
        let whole = member.bytes.len() / record * record;
        if whole != member.bytes.len() {
            return Err(cifar_error(
                &member.shown,
                whole as u64,
                format!(
                    "{} bytes are not a whole number of {record}-byte {} records",
                    member.bytes.len(),
                    format.display_name
                ),
            ));
        }
        for (index, chunk) in member.bytes.chunks_exact(record).enumerate() {
            let offset = (index * record) as u64;
            let (labels, pixels) = chunk.split_at(label_bytes);
            let fine = *labels.last().expect("at least one label byte");
            check_label(
                &member.shown,
                offset + label_bytes as u64 - 1,
                fine,
                format.classes,
            )?;
            if label_bytes == 2 {
                check_label(&member.shown, offset, labels[0], format.coarse_classes)?;
                dataset.coarse_labels.push(labels[0]);
            }
            dataset.labels.push(fine);
            dataset.pixels.extend_from_slice(pixels);
        }
    }
    Ok(dataset)
}

fn check_label(file: &str, offset: u64, label: u8, classes: usize) -> Result<(), DataError> {
    if usize::from(label) < classes {
        return Ok(());
    }
    Err(cifar_error(
        file,
        offset,
        format!("label {label} is outside the {classes} classes"),
    ))
}

/// One name per line, as many as the classes (blank lines, which the files end with, left
/// out).
fn class_names(format: &CifarFormat, file: &Member) -> Result<Vec<String>, DataError> {
    let text = std::str::from_utf8(&file.bytes)
        .map_err(|e| cifar_error(&file.shown, e.valid_up_to() as u64, "not UTF-8 text".into()))?;
    let names: Vec<String> = text
        .lines()
        .map(str::trim)
        .filter(|line| !line.is_empty())
        .map(String::from)
        .collect();
    if names.len() != format.classes {
        return Err(cifar_error(
            &file.shown,
            0,
            format!(
                "{} class names, but {} has {} classes",
                names.len(),
                format.display_name,
                format.classes
            ),
        ));
    }
    Ok(names)
}

fn cifar_error(file: &str, offset: u64, problem: String) -> DataError {
    DataError::Malformed {
        file: file.to_string(),
        offset,
        problem,
    }
}
