//! Files made to break `predict`: an image whose header claims 100,000×100,000 pixels (a
//! decompression bomb), truncated PNG and JPEG files, an empty file and a PNG of 0×0 pixels.
//! Each must end in a clean error naming the file, with no panic, and with memory bounded: where
//! GNU time is installed (CI installs it) the test reads the process's peak resident set.
#![cfg(all(feature = "pytorch", feature = "train"))]

use crate::common;

use std::path::{Path, PathBuf};
use std::process::Command;

use burn::tensor::Device;
use nin::train::{Preset, TrainingConfig};

/// Peak memory a refused file may cost `predict`, everything else included.
const MAX_RSS_KIB: u64 = 128 * 1024;

/// CRC-32 of PNG chunks (the IEEE polynomial, bit by bit).
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = 0xFFFF_FFFFu32;
    for &byte in bytes {
        crc ^= u32::from(byte);
        for _ in 0..8 {
            crc = if crc & 1 == 1 {
                (crc >> 1) ^ 0xEDB8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// One PNG chunk: length, type, data, CRC of type and data.
fn chunk(kind: &[u8; 4], data: &[u8]) -> Vec<u8> {
    let mut out = (data.len() as u32).to_be_bytes().to_vec();
    let body: Vec<u8> = kind.iter().chain(data).copied().collect();
    out.extend_from_slice(&body);
    out.extend_from_slice(&crc32(&body).to_be_bytes());
    out
}

/// A well-formed PNG header claiming `side`×`side` 8-bit gray pixels, with no pixel data.
fn png_bomb(side: u32) -> Vec<u8> {
    let mut png = b"\x89PNG\r\n\x1a\n".to_vec();
    let mut header = side.to_be_bytes().to_vec();
    header.extend_from_slice(&side.to_be_bytes());
    header.extend_from_slice(&[8, 0, 0, 0, 0]);
    png.extend(chunk(b"IHDR", &header));
    png.extend(chunk(b"IEND", &[]));
    png
}

/// A real 28×28 image encoded as `format`.
fn encoded(format: image::ImageFormat) -> Vec<u8> {
    let image = image::GrayImage::from_fn(28, 28, |x, y| image::Luma([(x * 9 + y * 3) as u8]));
    let mut bytes = std::io::Cursor::new(Vec::new());
    image.write_to(&mut bytes, format).unwrap();
    bytes.into_inner()
}

/// Runs `predict` on `file` with untrained compact weights, under GNU time when it is
/// installed; returns its status, its stderr, and its peak resident set in KiB if measured.
fn predict(weights: &Path, file: &Path) -> (std::process::ExitStatus, String, Option<u64>) {
    let time = Path::new("/usr/bin/time");
    let predict = common::example("predict");
    let mut command = if time.exists() {
        let mut command = Command::new(time);
        command.args(["-f", "peak-rss-kib %M"]).arg(&predict);
        command
    } else {
        Command::new(&predict)
    };
    let output = command
        .args(["--backend", "flex", "--preset", "compact", "--weights"])
        .arg(weights)
        .arg(file)
        .output()
        .unwrap();
    let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
    let rss = stderr
        .lines()
        .find_map(|line| line.strip_prefix("peak-rss-kib ")?.trim().parse().ok());
    (output.status, stderr, rss)
}

#[test]
fn bombs_truncated_and_empty_images_are_clean_errors_in_bounded_memory() {
    let test = "bombs_truncated_and_empty_images_are_clean_errors_in_bounded_memory";
    let dir = tempfile::tempdir().unwrap();
    let weights = dir.path().join("compact.safetensors");
    let model = TrainingConfig::preset(Preset::Compact)
        .model
        .init(&Device::flex());
    nin::pytorch::save_safetensors(&model, &weights).unwrap();

    let png = encoded(image::ImageFormat::Png);
    let jpeg = encoded(image::ImageFormat::Jpeg);
    // 20,000² pixels is 400 MB: under the image crate's own allocation limit, over predict's.
    let files: [(&str, Vec<u8>); 7] = [
        ("bomb.png", png_bomb(100_000)),
        ("bomb-20000.png", png_bomb(20_000)),
        ("truncated.png", png[..png.len() / 2].to_vec()),
        ("truncated.jpg", jpeg[..jpeg.len() / 2].to_vec()),
        ("empty.png", Vec::new()),
        ("zero-size.png", png_bomb(0)),
        ("header-only.jpg", jpeg[..2].to_vec()),
    ];
    // The same program on an intact file, for the memory it takes anyway.
    let intact = dir.path().join("intact.png");
    std::fs::write(&intact, &png).unwrap();
    let (status, stderr, baseline) = predict(&weights, &intact);
    assert!(status.success(), "{stderr}");

    for (name, bytes) in files {
        let path: PathBuf = dir.path().join(name);
        std::fs::write(&path, bytes).unwrap();
        let (status, stderr, rss) = predict(&weights, &path);
        println!(
            "{test}: {name}: {}",
            stderr.lines().next().unwrap_or_default()
        );
        assert!(!status.success(), "{name} was accepted");
        assert!(!stderr.contains("panicked"), "{name}: {stderr}");
        assert!(
            stderr.contains(name) && stderr.contains("cannot read the image"),
            "{stderr}"
        );
        if name.starts_with("bomb") {
            assert!(
                stderr.contains("limit"),
                "{name}: refused for its size: {stderr}"
            );
        }
        match (rss, baseline) {
            (Some(rss), Some(baseline)) => {
                println!("{test}: {name}: peak {rss} KiB (intact file: {baseline} KiB)");
                assert!(rss < MAX_RSS_KIB, "{name}: peak {rss} KiB");
            }
            _ => eprintln!(
                "{test}: skipping the memory check: /usr/bin/time (GNU time) is not installed"
            ),
        }
    }
}
