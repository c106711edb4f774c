//! Feeds arbitrary bytes to the IDX reader: gzip detection and decompression, then both the
//! image and the label parser. Any panic, overflow or runaway allocation is a bug.
#![no_main]

use libfuzzer_sys::fuzz_target;
use nin::data::idx;

fuzz_target!(|data: &[u8]| {
    let Ok(content) = idx::decompress(data.to_vec()) else {
        return;
    };
    if let Ok(images) = idx::parse_images(content.clone()) {
        // Every index the header admits must be servable.
        for index in [0, images.count / 2, images.count.saturating_sub(1)] {
            if index < images.count {
                assert!(images.image(index).is_some());
            }
        }
    }
    let _ = idx::parse_labels(content, 10);
});
