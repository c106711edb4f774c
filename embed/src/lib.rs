//! `nin` as another crate depends on it: `default-features = false` with the `flex` backend, the
//! README's "modules only" line. CI builds this crate on its own (so that no feature of the main
//! crate's build leaks in) and runs its tests, which put a NiN block in a model of their own and
//! run the whole network forward.

use burn::module::Module;
use burn::nn::{Linear, LinearConfig};
use burn::tensor::{Device, Tensor};
use nin::{NinBlock, NinBlockConfig};

/// A classifier of a user's own: one NiN block as its stem, global average pooling, and a
/// linear layer.
#[derive(Module, Debug)]
pub struct StemAndHead {
    stem: NinBlock,
    head: Linear,
}

impl StemAndHead {
    /// A 5×5 block to 24 channels (then 1×1 layers of 48 and 12) for RGB images, and a head
    /// for `classes` classes.
    pub fn new(classes: usize, device: &Device) -> Self {
        Self {
            stem: NinBlockConfig::new(3, 24, 5)
                .with_padding(2)
                .with_mlp_channels(Some([48, 12]))
                .init(device),
            head: LinearConfig::new(12, classes).init(device),
        }
    }

    /// Class scores, `[N, classes]`, for images `[N, 3, H, W]`.
    pub fn forward(&self, images: Tensor<4>) -> Tensor<2> {
        let maps = self.stem.forward(images);
        let pooled = maps.mean_dim(3).mean_dim(2).flatten::<2>(1, 3);
        self.head.forward(pooled)
    }
}

#[cfg(test)]
mod tests {
    use burn::module::Module;
    use burn::tensor::{Device, Distribution, Tensor};
    use nin::NinConfig;

    use super::StemAndHead;

    fn finite(tensor: Tensor<2>) -> bool {
        tensor
            .into_data()
            .iter::<f32>()
            .all(|value| value.is_finite())
    }

    #[test]
    fn a_nin_block_runs_inside_a_model_of_ones_own() {
        let device = Device::flex();
        let model = StemAndHead::new(4, &device);
        let images = Tensor::<4>::random([2, 3, 20, 20], Distribution::Default, &device);
        let scores = model.forward(images);
        assert_eq!(scores.dims(), [2, 4]);
        assert!(finite(scores));
    }

    #[test]
    fn the_whole_network_classifies_on_flex() {
        let device = Device::flex();
        let compact = NinConfig::compact(10).init(&device).valid();
        let images = Tensor::<4>::random([3, 1, 28, 28], Distribution::Default, &device);
        let logits = compact.forward(images);
        assert_eq!(logits.dims(), [3, 10]);
        assert!(finite(logits));
        // d2l's network as its reference code counts it.
        assert_eq!(NinConfig::d2l(10).init(&device).num_params(), 1_992_166);
    }
}
