//! Your own images: a folder with one sub-folder per class, each holding PNG or JPEG files, as
//! burn-dataset's `ImageFolderDataset` and torchvision's `ImageFolder` lay them out.
//!
//! Design notes: `docs/design.md`, "data::folder".

use std::path::{Path, PathBuf};

use burn::data::dataset::{Dataset, DatasetError};
use image::imageops::FilterType;

use super::error::DataError;
use super::item::{ImageItem, item_or_out_of_range};

/// The extensions read, compared without regard to case.
pub(crate) const IMAGE_EXTENSIONS: [&str; 3] = ["png", "jpg", "jpeg"];

/// The largest image side decoded, and the most memory a decoder may take: a file whose header
/// claims more (a decompression bomb) is refused before anything is allocated.
pub(crate) const MAX_SIDE: u32 = 16_384;
/// See `MAX_SIDE`.
pub(crate) const MAX_DECODE_BYTES: u64 = 256 << 20;

/// Reads an image file as an item of `channels` (1: grayscale, 3: RGB) planes of
/// `side × side` pixels, channels first, with label 0: the file's bytes through
/// [`decode_image`].
///
/// A file larger than 256 MiB is refused before it is read. The error says why
/// the file could not be read, without its path.
pub fn read_image(path: &Path, channels: usize, side: usize) -> Result<ImageItem, ImageError> {
    let io = |e: std::io::Error| ImageError::Io(e.to_string());
    let length = std::fs::metadata(path).map_err(io)?.len();
    if length > MAX_DECODE_BYTES {
        return Err(ImageError::TooLarge(length));
    }
    decode_image(&std::fs::read(path).map_err(io)?, channels, side)
}

/// Decodes PNG or JPEG bytes (the format is told from the bytes) into an item of `channels`
/// (1: grayscale, 3: RGB) planes of `side × side` pixels, channels first, with label 0: the
/// one way an image becomes a network's input here, for image folders, `predict` and the
/// browser page.
///
/// Decoding is bounded to sides of 16,384 pixels and 256 MiB of decoder memory: a header that
/// claims more (a decompression bomb) is refused before anything is allocated. The image is converted to the channel count and
/// resized to the side with a triangle filter.
///
/// ```
/// let png = std::fs::read(concat!(
///     env!("CARGO_MANIFEST_DIR"),
///     "/weights/fashion_mnist_compact/test-0-ankle-boot.png"
/// ))
/// .unwrap();
/// let item = nin::data::folder::decode_image(&png, 1, 28).unwrap();
/// assert_eq!((item.channels, item.height, item.width), (1, 28, 28));
/// assert!(nin::data::folder::decode_image(b"not an image", 1, 28).is_err());
/// ```
pub fn decode_image(bytes: &[u8], channels: usize, side: usize) -> Result<ImageItem, ImageError> {
    if !matches!(channels, 1 | 3) {
        return Err(ImageError::Channels(channels));
    }
    let edge = u32::try_from(side)
        .ok()
        .filter(|&edge| (1..=MAX_SIDE).contains(&edge))
        .ok_or(ImageError::Side(side))?;
    let mut reader = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| ImageError::Io(e.to_string()))?;
    let mut limits = image::Limits::default();
    limits.max_image_width = Some(MAX_SIDE);
    limits.max_image_height = Some(MAX_SIDE);
    limits.max_alloc = Some(MAX_DECODE_BYTES);
    reader.limits(limits);
    let image = reader
        .decode()
        .map_err(|e| ImageError::Decode(e.to_string()))?;
    if image.width() == 0 || image.height() == 0 {
        return Err(ImageError::Empty);
    }
    let pixels = if channels == 3 {
        let image = image::imageops::resize(&image.to_rgb8(), edge, edge, FilterType::Triangle);
        // Interleaved RGB to channels first.
        let interleaved = image.into_raw();
        (0..3)
            .flat_map(|c| interleaved.iter().skip(c).step_by(3).copied())
            .collect()
    } else {
        image::imageops::resize(&image.to_luma8(), edge, edge, FilterType::Triangle).into_raw()
    };
    Ok(ImageItem {
        pixels,
        channels,
        height: side,
        width: side,
        label: 0,
    })
}

/// Why bytes or a file could not become an image item.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[non_exhaustive]
pub enum ImageError {
    /// A channel count other than 1 (grayscale) or 3 (RGB) was asked for.
    #[error("images are read as grayscale (1 channel) or RGB (3), not {0} channels")]
    Channels(usize),
    /// A side of 0 pixels or more than 16,384 was asked for.
    #[error("a side of {0} pixels is outside 1..={MAX_SIDE}")]
    Side(usize),
    /// The file is larger than 256 MiB; it was not read.
    #[error("the file holds {0} bytes, more than the {MAX_DECODE_BYTES} an image may take")]
    TooLarge(u64),
    /// The file could not be read.
    #[error("{0}")]
    Io(String),
    /// The bytes are no PNG or JPEG the decoder can read within its limits.
    #[error("{0}")]
    Decode(String),
    /// The image has a side of 0 pixels.
    #[error("the image has no pixels")]
    Empty,
    /// An image item of another shape than the network reads, or whose pixels do not fill it.
    #[error(
        "an image of [channels, height, width] {actual:?} where {expected:?} is read: \
         prepare it with Preprocessing::decode"
    )]
    Shape {
        /// `[channels, height, width]` the network reads.
        expected: [usize; 3],
        /// The item's shape.
        actual: [usize; 3],
    },
}

/// A file that was skipped, and why.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Unreadable {
    /// The file.
    pub path: PathBuf,
    /// Why it could not be read.
    pub reason: String,
}

impl std::fmt::Display for Unreadable {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "{}: {}", self.path.display(), self.reason)
    }
}

/// The images of a class folder tree, decoded, converted and held in memory.
///
/// ```no_run
/// use nin::data::ImageFolder;
///
/// let train = ImageFolder::open("photos/train".as_ref(), 3, 32)?;
/// // The test folder takes the training folder's classes, so the labels agree.
/// let test = ImageFolder::with_classes("photos/test".as_ref(), 3, 32, train.class_names())?;
/// for file in train.skipped() {
///     eprintln!("skipped {file}");
/// }
/// # Ok::<(), nin::data::DataError>(())
/// ```
#[derive(Debug, Clone)]
pub struct ImageFolder {
    pixels: Vec<u8>,
    labels: Vec<u32>,
    class_names: Vec<String>,
    channels: usize,
    side: usize,
    skipped: Vec<Unreadable>,
}

impl ImageFolder {
    /// Reads every image under `dir`'s class sub-folders as `channels` (1 or 3) planes of
    /// `side × side` pixels. The classes are the sub-folders, in sorted order.
    pub fn open(dir: &Path, channels: usize, side: usize) -> Result<Self, DataError> {
        let classes = class_folders(dir)?;
        Self::read(dir, channels, side, classes)
    }

    /// As [`open`](Self::open), with the labels of `classes` (a training folder's
    /// [`class_names`](Self::class_names)): a sub-folder of another name is an error, and a
    /// class without a sub-folder has no images here.
    pub fn with_classes(
        dir: &Path,
        channels: usize,
        side: usize,
        classes: &[String],
    ) -> Result<Self, DataError> {
        let found = class_folders(dir)?;
        if let Some(stranger) = found.iter().find(|name| !classes.contains(name)) {
            return Err(folder_error(
                dir,
                format!(
                    "the sub-folder {stranger}/ is not one of the {} classes of the training \
                     images ({})",
                    classes.len(),
                    classes.join(", ")
                ),
                "give both folders the same class sub-folders",
            ));
        }
        Self::read(dir, channels, side, classes.to_vec())
    }

    fn read(
        dir: &Path,
        channels: usize,
        side: usize,
        class_names: Vec<String>,
    ) -> Result<Self, DataError> {
        if !matches!(channels, 1 | 3) || side == 0 {
            return Err(folder_error(
                dir,
                format!("{channels} channels of {side}×{side} pixels cannot be read"),
                "ask for 1 (grayscale) or 3 (RGB) channels and a side of at least 1",
            ));
        }
        let mut folder = Self {
            pixels: Vec::new(),
            labels: Vec::new(),
            class_names,
            channels,
            side,
            skipped: Vec::new(),
        };
        for (label, class) in folder.class_names.clone().iter().enumerate() {
            let class_dir = dir.join(class);
            if !class_dir.is_dir() {
                continue;
            }
            for path in image_files(&class_dir)? {
                match read_image(&path, channels, side) {
                    Ok(item) => {
                        folder.pixels.extend_from_slice(&item.pixels);
                        folder.labels.push(label as u32);
                    }
                    Err(error) => folder.skipped.push(Unreadable {
                        path,
                        reason: error.to_string(),
                    }),
                }
            }
        }
        if folder.labels.is_empty() {
            let problem = match folder.skipped.first() {
                Some(first) => format!(
                    "none of its {} image files could be read (the first: {first})",
                    folder.skipped.len()
                ),
                None => format!("its class sub-folders hold no {} files", extensions()),
            };
            return Err(folder_error(
                dir,
                problem,
                "put PNG or JPEG images in one sub-folder per class",
            ));
        }
        Ok(folder)
    }

    /// The class names, by label: the sub-folders' names.
    pub fn class_names(&self) -> &[String] {
        &self.class_names
    }

    /// The files that could not be read, with why; they are not in the dataset.
    pub fn skipped(&self) -> &[Unreadable] {
        &self.skipped
    }

    /// Planes of every image.
    pub fn channels(&self) -> usize {
        self.channels
    }

    /// The item at `index`, or `None` past the end.
    pub fn item(&self, index: usize) -> Option<ImageItem> {
        let label = *self.labels.get(index)? as usize;
        let len = self.channels * self.side * self.side;
        Some(ImageItem {
            pixels: self.pixels[index * len..(index + 1) * len].to_vec(),
            channels: self.channels,
            height: self.side,
            width: self.side,
            label,
        })
    }
}

impl Dataset<ImageItem> for ImageFolder {
    fn get(&self, index: usize) -> Result<ImageItem, DatasetError> {
        item_or_out_of_range(self.item(index), index, self.labels.len())
    }

    fn len(&self) -> usize {
        self.labels.len()
    }
}

/// The names of `dir`'s sub-folders, sorted, hidden ones left out.
fn class_folders(dir: &Path) -> Result<Vec<String>, DataError> {
    let mut names = Vec::new();
    for entry in list(dir)? {
        let path = entry.path();
        let Some(name) = visible_name(&path) else {
            continue;
        };
        if path.is_dir() {
            names.push(name);
        }
    }
    if names.is_empty() {
        return Err(folder_error(
            dir,
            "it has no class sub-folders".into(),
            "put the images of each class in a sub-folder named after the class",
        ));
    }
    names.sort();
    Ok(names)
}

/// The image files directly in `dir`, sorted.
fn image_files(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let mut files: Vec<PathBuf> = list(dir)?
        .into_iter()
        .map(|entry| entry.path())
        .filter(|path| {
            visible_name(path).is_some()
                && path.is_file()
                && path.extension().and_then(|e| e.to_str()).is_some_and(|e| {
                    IMAGE_EXTENSIONS
                        .iter()
                        .any(|known| e.eq_ignore_ascii_case(known))
                })
        })
        .collect();
    files.sort();
    Ok(files)
}

fn list(dir: &Path) -> Result<Vec<std::fs::DirEntry>, DataError> {
    let entries = std::fs::read_dir(dir)
        .and_then(|read| read.collect::<Result<Vec<_>, _>>())
        .map_err(|e| {
            folder_error(
                dir,
                format!("cannot list it: {e}"),
                "pass a readable folder of class sub-folders",
            )
        })?;
    Ok(entries)
}

/// The file name, if it is valid UTF-8 and not hidden.
fn visible_name(path: &Path) -> Option<String> {
    let name = path.file_name()?.to_str()?;
    (!name.starts_with('.')).then(|| name.to_string())
}

fn extensions() -> String {
    IMAGE_EXTENSIONS.map(|e| format!(".{e}")).join("/")
}

fn folder_error(dir: &Path, problem: String, fix: &str) -> DataError {
    DataError::Folder {
        dir: dir.display().to_string(),
        problem,
        fix: fix.to_string(),
    }
}
