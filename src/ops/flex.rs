//! What the flex kernels share: which tensors they take, and moving values in and out of flex
//! tensors.

use std::borrow::Cow;
use std::mem::MaybeUninit;

use burn::backend::DispatchDevice;
use burn::tensor::{DType, Device, Shape, TensorData};
use burn_flex::FlexTensor;

/// Whether the flex kernels run on tensors of `device` in `dtype`: flex (with or without
/// autodiff) and `f32`.
pub(crate) fn runs_on_flex(device: &Device, dtype: DType) -> bool {
    dtype == DType::F32
        && matches!(
            device.clone().inner().as_dispatch(),
            DispatchDevice::Flex(_)
        )
}

/// The tensor's values in row-major order, without a copy when it is already laid out so (a
/// strided or offset view is copied once).
pub(crate) fn f32_values(tensor: &FlexTensor) -> Cow<'_, [f32]> {
    assert_eq!(tensor.dtype(), DType::F32, "the flex kernels run in f32");
    match tensor.as_slice::<f32>() {
        Some(values) => Cow::Borrowed(values),
        None => Cow::Owned(
            tensor
                .to_contiguous()
                .as_slice::<f32>()
                .expect("a contiguous f32 tensor")
                .to_vec(),
        ),
    }
}

/// `tensor` as the owner of a row-major `f32` buffer that a kernel may overwrite in place
/// (through `storage_mut`): the tensor itself when nothing else shares its storage and that
/// storage holds exactly its values in order, else a row-major copy.
pub(crate) fn into_overwritable(tensor: FlexTensor) -> FlexTensor {
    assert_eq!(tensor.dtype(), DType::F32, "the flex kernels run in f32");
    let whole = tensor.layout().contiguous_offsets() == Some((0, tensor.storage::<f32>().len()));
    if whole && tensor.is_unique() {
        return tensor;
    }
    let shape = tensor.layout().shape().clone();
    flex_tensor(f32_values(&tensor).into_owned(), shape)
}

/// A flex tensor of `shape` holding `values`.
pub(crate) fn flex_tensor(values: Vec<f32>, shape: impl Into<Shape>) -> FlexTensor {
    FlexTensor::from_data(TensorData::new(values, shape.into()))
}

/// The dimensions of a 4-D flex tensor.
pub(crate) fn dims4(tensor: &FlexTensor, what: &str) -> [usize; 4] {
    let shape = tensor.layout().shape();
    assert_eq!(shape.num_dims(), 4, "{what} takes [N, C, H, W] tensors");
    [shape[0], shape[1], shape[2], shape[3]]
}

/// A vector of `len` values written by `fill`, without clearing them to zero first: for an
/// output that a kernel overwrites whole, the clearing is a pass over memory that buys nothing.
///
/// # Safety
///
/// `fill` must write every element of the slice it is given.
#[allow(unsafe_code)]
pub(crate) unsafe fn written_vec(
    len: usize,
    fill: impl FnOnce(&mut [MaybeUninit<f32>]),
) -> Vec<f32> {
    let mut values = Vec::with_capacity(len);
    fill(&mut values.spare_capacity_mut()[..len]);
    // SAFETY: the caller's promise: `fill` wrote each of the `len` values.
    unsafe { values.set_len(len) };
    values
}

/// `len` zeros, cleared by the rayon pool's threads together.
///
/// A kernel's output allocated with `vec![0.0; len]` on the thread that called it is cleared by
/// that thread alone while the pool waits: where freed memory is kept for reuse
/// ([`retain_freed_memory`](crate::ops::retain_freed_memory), which the examples turn on), a
/// large allocation is not fresh zero pages but a `memset`, and in a training step those
/// `memset`s were most of the training thread's own time (docs/performance.md, "The README's
/// command").
pub(crate) fn zeros(len: usize) -> Vec<f32> {
    use rayon::prelude::*;
    // Below this, one thread clears it faster than the pool can be woken.
    const CHUNK: usize = 1 << 16;
    if len <= CHUNK {
        return vec![0.0; len];
    }
    let fill = |values: &mut [MaybeUninit<f32>]| {
        values
            .par_chunks_mut(CHUNK)
            .for_each(|chunk| chunk.fill(MaybeUninit::new(0.0)));
    };
    // SAFETY: the chunks cover every value, and each is written.
    #[allow(unsafe_code)]
    unsafe {
        written_vec(len, fill)
    }
}

/// Per-channel results of tasks that each took a run of images, merged channel by channel in
/// task order (and so in image order): a result depends only on the batch and the number of
/// threads.
pub(crate) fn merge_in_order<T: Copy>(per_task: Vec<Vec<T>>, merge: impl Fn(T, T) -> T) -> Vec<T> {
    per_task
        .into_iter()
        .reduce(|mut all, task| {
            for (all, task) in all.iter_mut().zip(task) {
                *all = merge(*all, task);
            }
            all
        })
        .unwrap_or_default()
}
