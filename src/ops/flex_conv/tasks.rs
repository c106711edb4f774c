//! How a batch is split over the rayon pool, and how many images share one matrix product.

use crate::ops::gemm::Threads;
use crate::ops::geometry::ConvGeometry;

/// Images per task and the threads each task's matrix products may use.
///
/// One level of threading: with at least as many images as threads, each thread takes a
/// contiguous run of images and runs its products on its own (a product per thread beats one
/// split over the threads: `perf --gemm`, docs/performance.md); with fewer images than
/// threads, each image is a task and its products spread over the pool.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) struct ImageTasks {
    pub images_per_task: usize,
    pub product_threads: Threads,
}

impl ImageTasks {
    pub(crate) fn for_batch(batch: usize) -> Self {
        let threads = rayon::current_num_threads().max(1);
        if batch >= threads {
            Self {
                images_per_task: batch.div_ceil(threads),
                product_threads: Threads::One,
            }
        } else {
            Self {
                images_per_task: 1,
                product_threads: Threads::All,
            }
        }
    }

    /// Number of tasks for `batch` images.
    pub(crate) fn count(&self, batch: usize) -> usize {
        batch.div_ceil(self.images_per_task)
    }

    /// Images whose patch matrices share one product.
    pub(crate) fn images_per_product(&self, g: &ConvGeometry) -> usize {
        g.images_per_product(self.images_per_task)
    }
}
