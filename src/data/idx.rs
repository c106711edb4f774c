//! Reader for the IDX format of MNIST and Fashion-MNIST (`*-idx3-ubyte` images,
//! `*-idx1-ubyte` labels), plain or gzip-compressed.
//!
//! An IDX file is a 4-byte magic number (two zero bytes, an element-type byte, a dimension
//! count), one big-endian `u32` per dimension, then the elements. Only unsigned bytes (type
//! `0x08`) are accepted, which is what both datasets use. Every fault is an [`IdxError`] naming
//! the file; nothing here panics or allocates more than the bytes actually present, whatever the
//! header claims.

use std::io::Read;
use std::path::Path;

/// Element type byte for unsigned 8-bit values.
const UNSIGNED_BYTE: u8 = 0x08;
/// Largest file read, compressed or not. The Fashion-MNIST training images are 47 MB; this
/// leaves room for larger IDX datasets while stopping a gzip bomb or a wrong path early.
pub const MAX_FILE_BYTES: u64 = 1 << 30;
/// First two bytes of every gzip stream.
const GZIP_MAGIC: [u8; 2] = [0x1f, 0x8b];
/// Largest image side accepted.
pub const MAX_SIDE: usize = 1 << 14;

/// Images of one IDX file: `count` images of `rows × cols` bytes, row-major, stored contiguously.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxImages {
    /// Number of images.
    pub count: usize,
    /// Rows (height) of each image.
    pub rows: usize,
    /// Columns (width) of each image.
    pub cols: usize,
    /// `count · rows · cols` pixel values, image after image.
    pub pixels: Vec<u8>,
}

impl IdxImages {
    /// The pixels of image `index`, or `None` past the end.
    pub fn image(&self, index: usize) -> Option<&[u8]> {
        let size = self.rows * self.cols;
        let start = index.checked_mul(size)?;
        self.pixels.get(start..start.checked_add(size)?)
    }
}

/// What is wrong with an IDX file.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum IdxFault {
    /// Shorter than its own header.
    #[error("the file is {len} bytes, shorter than its {needed}-byte IDX header")]
    ShortHeader {
        /// Bytes present.
        len: usize,
        /// Bytes the header needs.
        needed: usize,
    },
    /// The first two bytes are not zero.
    #[error(
        "bad magic number {found:#010x}: not an IDX file (expected {expected:#010x}); \
         is it still compressed, or another format?"
    )]
    BadMagic {
        /// The first four bytes, big-endian.
        found: u32,
        /// The magic number this kind of file has.
        expected: u32,
    },
    /// Elements are not unsigned bytes.
    #[error("element type {0:#04x} is not unsigned byte (0x08)")]
    ElementType(u8),
    /// Wrong number of dimensions for images or labels.
    #[error("{found} dimensions where {expected} were expected (images have 3, labels 1)")]
    Dimensions {
        /// Dimensions in the header.
        found: u8,
        /// Dimensions this kind of file has.
        expected: u8,
    },
    /// Images with a zero or absurd side.
    #[error("image size {rows}×{cols} is outside 1..={MAX_SIDE} per side")]
    ImageSize {
        /// Rows in the header.
        rows: usize,
        /// Columns in the header.
        cols: usize,
    },
    /// The body is shorter than the header says.
    #[error("truncated: the header describes {claimed} bytes of data but only {actual} follow")]
    Truncated {
        /// Data bytes the header describes.
        claimed: u128,
        /// Data bytes present.
        actual: usize,
    },
    /// Bytes after the data the header describes.
    #[error("{extra} bytes of trailing garbage after the {claimed} bytes the header describes")]
    Trailing {
        /// Data bytes the header describes.
        claimed: usize,
        /// Bytes beyond them.
        extra: usize,
    },
    /// A label that is not a class index.
    #[error("label {label} at item {index} is outside the {classes} classes (0..{classes})")]
    LabelOutOfRange {
        /// The offending label.
        label: u8,
        /// Its position.
        index: usize,
        /// Number of classes.
        classes: usize,
    },
    /// The file, or its decompressed content, is larger than 1 GiB.
    #[error("larger than the {MAX_FILE_BYTES}-byte limit for IDX files")]
    TooLarge,
    /// The gzip stream is corrupt or cut short.
    #[error("corrupt gzip data: {0}")]
    Gzip(String),
}

/// An IDX file that could not be read, with its name.
#[derive(Debug, thiserror::Error)]
pub enum IdxError {
    /// The file could not be opened or read.
    #[error("{file}: cannot read: {source}")]
    Io {
        /// The file.
        file: String,
        /// The underlying error.
        #[source]
        source: std::io::Error,
    },
    /// The file's content is not a valid IDX file of the expected kind.
    #[error("{file}: {fault}")]
    Malformed {
        /// The file.
        file: String,
        /// What is wrong.
        fault: IdxFault,
    },
}

impl IdxError {
    /// A malformed-content error for the file at `path`.
    pub fn malformed(path: &Path, fault: IdxFault) -> Self {
        IdxError::Malformed {
            file: path.display().to_string(),
            fault,
        }
    }

    /// The fault, if the content (not the file system) was at fault.
    pub fn fault(&self) -> Option<&IdxFault> {
        match self {
            IdxError::Malformed { fault, .. } => Some(fault),
            IdxError::Io { .. } => None,
        }
    }
}

/// Header of an IDX file: its dimensions and where the data starts.
struct Header {
    dims: Vec<usize>,
    data_offset: usize,
}

fn parse_header(bytes: &[u8], expected_dims: u8) -> Result<Header, IdxFault> {
    let expected_magic = u32::from(UNSIGNED_BYTE) << 8 | u32::from(expected_dims);
    let Some(magic) = bytes.first_chunk::<4>() else {
        return Err(IdxFault::ShortHeader {
            len: bytes.len(),
            needed: 4 + 4 * usize::from(expected_dims),
        });
    };
    if magic[0] != 0 || magic[1] != 0 {
        return Err(IdxFault::BadMagic {
            found: u32::from_be_bytes(*magic),
            expected: expected_magic,
        });
    }
    if magic[2] != UNSIGNED_BYTE {
        return Err(IdxFault::ElementType(magic[2]));
    }
    if magic[3] != expected_dims {
        return Err(IdxFault::Dimensions {
            found: magic[3],
            expected: expected_dims,
        });
    }
    let data_offset = 4 + 4 * usize::from(expected_dims);
    let Some(header) = bytes.get(4..data_offset) else {
        return Err(IdxFault::ShortHeader {
            len: bytes.len(),
            needed: data_offset,
        });
    };
    let dims = header
        .chunks_exact(4)
        .map(|d| u32::from_be_bytes([d[0], d[1], d[2], d[3]]) as usize)
        .collect();
    Ok(Header { dims, data_offset })
}

/// Checks the data after the header is exactly `claimed` bytes long (computed in `u128`, so no
/// header can overflow it).
fn check_body_len(bytes: &[u8], offset: usize, claimed: u128) -> Result<(), IdxFault> {
    let actual = bytes.len() - offset;
    if claimed > actual as u128 {
        return Err(IdxFault::Truncated { claimed, actual });
    }
    let claimed = claimed as usize;
    if actual > claimed {
        return Err(IdxFault::Trailing {
            claimed,
            extra: actual - claimed,
        });
    }
    Ok(())
}

/// Parses an `idx3-ubyte` image file already in memory (decompressed).
pub fn parse_images(bytes: Vec<u8>) -> Result<IdxImages, IdxFault> {
    let header = parse_header(&bytes, 3)?;
    let [count, rows, cols] = [header.dims[0], header.dims[1], header.dims[2]];
    if !(1..=MAX_SIDE).contains(&rows) || !(1..=MAX_SIDE).contains(&cols) {
        return Err(IdxFault::ImageSize { rows, cols });
    }
    let claimed = count as u128 * rows as u128 * cols as u128;
    check_body_len(&bytes, header.data_offset, claimed)?;
    let mut pixels = bytes;
    pixels.drain(..header.data_offset);
    Ok(IdxImages {
        count,
        rows,
        cols,
        pixels,
    })
}

/// Parses an `idx1-ubyte` label file already in memory (decompressed), checking every label is
/// below `classes`.
pub fn parse_labels(bytes: Vec<u8>, classes: usize) -> Result<Vec<u8>, IdxFault> {
    let header = parse_header(&bytes, 1)?;
    check_body_len(&bytes, header.data_offset, header.dims[0] as u128)?;
    let mut labels = bytes;
    labels.drain(..header.data_offset);
    if let Some((index, &label)) = labels
        .iter()
        .enumerate()
        .find(|(_, l)| usize::from(**l) >= classes)
    {
        return Err(IdxFault::LabelOutOfRange {
            label,
            index,
            classes,
        });
    }
    Ok(labels)
}

/// Decompresses `bytes` if they are gzip (by their magic number), else returns them unchanged.
/// Output is capped at [`MAX_FILE_BYTES`].
pub fn decompress(bytes: Vec<u8>) -> Result<Vec<u8>, IdxFault> {
    if !is_gzip(&bytes) {
        return Ok(bytes);
    }
    let mut out = Vec::new();
    let mut decoder = flate2::read::MultiGzDecoder::new(bytes.as_slice()).take(MAX_FILE_BYTES + 1);
    decoder
        .read_to_end(&mut out)
        .map_err(|e| IdxFault::Gzip(e.to_string()))?;
    if out.len() as u64 > MAX_FILE_BYTES {
        return Err(IdxFault::TooLarge);
    }
    Ok(out)
}

/// Reads a file (plain or gzip) into memory, decompressed.
pub fn read_decompressed(path: &Path) -> Result<Vec<u8>, IdxError> {
    let raw = read_raw(path)?;
    decompress(raw).map_err(|fault| IdxError::malformed(path, fault))
}

/// Reads a file's bytes as stored (still compressed if it is gzip), refusing files larger than
/// [`MAX_FILE_BYTES`].
pub fn read_raw(path: &Path) -> Result<Vec<u8>, IdxError> {
    let file = path.display().to_string();
    let io = |source| IdxError::Io {
        file: file.clone(),
        source,
    };
    let handle = std::fs::File::open(path).map_err(io)?;
    let mut raw = Vec::new();
    handle
        .take(MAX_FILE_BYTES + 1)
        .read_to_end(&mut raw)
        .map_err(io)?;
    if raw.len() as u64 > MAX_FILE_BYTES {
        return Err(IdxError::malformed(path, IdxFault::TooLarge));
    }
    Ok(raw)
}

/// Whether `bytes` start with the gzip magic number.
pub fn is_gzip(bytes: &[u8]) -> bool {
    bytes.starts_with(&GZIP_MAGIC)
}

/// Reads an image file (`*-idx3-ubyte`, optionally `.gz`).
pub fn read_images(path: &Path) -> Result<IdxImages, IdxError> {
    let bytes = read_decompressed(path)?;
    parse_images(bytes).map_err(|fault| IdxError::malformed(path, fault))
}

/// Reads a label file (`*-idx1-ubyte`, optionally `.gz`) whose labels must be below `classes`.
pub fn read_labels(path: &Path, classes: usize) -> Result<Vec<u8>, IdxError> {
    let bytes = read_decompressed(path)?;
    parse_labels(bytes, classes).map_err(|fault| IdxError::malformed(path, fault))
}
