//! Where a dataset's files come from and how they are checked: the catalogue of known files,
//! the search, the verification, and [`find`], which downloads what the search does not find.
//!
//! Design notes: `docs/design.md`, "data::source".

use std::path::Path;

pub use super::catalogue::*;
pub use super::error::Digested;
pub use super::locate::*;
pub use super::verify::*;

/// Finds the dataset as [`locate`] does and, with the `download` feature, downloads it into the
/// user cache when no directory was named and no copy was found (see
/// [`download::locate_or_download`](super::download::locate_or_download)).
pub fn find(
    source: &(impl DatasetSource + ?Sized),
    explicit: Option<&Path>,
) -> Result<Located, NotFound> {
    #[cfg(feature = "download")]
    return super::download::locate_or_download(
        source,
        explicit,
        &super::download::Downloader::new(),
    );
    #[cfg(not(feature = "download"))]
    locate(source, explicit)
}
