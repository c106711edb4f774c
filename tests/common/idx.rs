//! Small IDX files built in memory.

use std::io::Write;

/// An IDX file with unsigned-byte elements, the given dimensions and body.
pub fn idx_file(dims: &[u32], body: &[u8]) -> Vec<u8> {
    let mut bytes = vec![0, 0, 0x08, dims.len() as u8];
    for d in dims {
        bytes.extend_from_slice(&d.to_be_bytes());
    }
    bytes.extend_from_slice(body);
    bytes
}

/// An image file of `count` `rows`×`cols` images with a fixed pixel pattern.
pub fn images(count: u32, rows: u32, cols: u32) -> Vec<u8> {
    let body: Vec<u8> = (0..count * rows * cols)
        .map(|i| (i * 37 % 256) as u8)
        .collect();
    idx_file(&[count, rows, cols], &body)
}

/// `bytes` gzip-compressed.
pub fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut encoder = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    encoder.write_all(bytes).unwrap();
    encoder.finish().unwrap()
}
