//! The convolution's autodiff node: the forward pass runs on the inner backend, and the backward
//! pass undoes the ReLU (if any) with the saved output, then calls the backend's backward kernel
//! for the gradients its parents need.

use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend};
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use super::{Conv2dGradients, Conv2dOps};
use crate::ops::conv_settings::ConvSettings;

#[derive(Debug)]
struct Conv2dBackward;

/// What the backward pass keeps.
#[derive(Clone, Debug)]
struct Saved<B: Backend> {
    x: FloatTensor<B>,
    weight: FloatTensor<B>,
    /// The output after the ReLU, when the ReLU is part of the operation.
    relu_output: Option<FloatTensor<B>>,
    stride: [usize; 2],
    padding: [usize; 2],
    /// The forward call's, so that the backward passes run as the caller asked.
    settings: ConvSettings,
}

impl<B: Backend + Conv2dOps> Backward<B, 3> for Conv2dBackward {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let saved = ops.state;
        let output_grad = grads.consume::<B>(&ops.node);
        let output_grad = match saved.relu_output {
            Some(output) => B::relu_backward(output, output_grad),
            None => output_grad,
        };
        let [x_node, weight_node, bias_node] = ops.parents;
        let (grad_x, grad_weight, grad_bias) = B::conv2d_backward(
            saved.x,
            saved.weight,
            output_grad,
            saved.stride,
            saved.padding,
            x_node.is_some(),
            saved.settings,
        )
        .into_parts();
        if let (Some(node), Some(grad)) = (x_node, grad_x) {
            grads.register::<B>(node.id, grad);
        }
        if let Some(node) = weight_node {
            grads.register::<B>(node.id, grad_weight);
        }
        if let Some(node) = bias_node {
            grads.register::<B>(node.id, grad_bias);
        }
    }
}

impl<B: Backend + Conv2dOps, C: CheckpointStrategy> Conv2dOps for Autodiff<B, C> {
    fn conv2d_relu(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        relu: bool,
        settings: ConvSettings,
    ) -> FloatTensor<Self> {
        let geometry = Geometry {
            stride,
            padding,
            relu,
            settings: settings.clone(),
        };
        track::<B, C, _>(x, weight, bias, geometry, |x, weight, bias| {
            (
                B::conv2d_relu(x, weight, bias, stride, padding, relu, settings),
                (),
            )
        })
        .0
    }

    #[cfg(feature = "flex")]
    fn conv2d_with_statistics(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        bias: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
    ) -> (FloatTensor<Self>, FloatTensor<Self>) {
        let geometry = Geometry {
            stride,
            padding,
            relu: false,
            settings: ConvSettings::default(),
        };
        let (output, statistics) =
            track::<B, C, _>(x, weight, bias, geometry, |x, weight, bias| {
                B::conv2d_with_statistics(x, weight, bias, stride, padding)
            });
        (output, Self::from_inner(statistics))
    }

    fn conv2d_backward(
        x: FloatTensor<Self>,
        weight: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        stride: [usize; 2],
        padding: [usize; 2],
        input_grad: bool,
        settings: ConvSettings,
    ) -> Conv2dGradients<Self> {
        // Gradients are not themselves differentiated: compute on the inner backend.
        let (dx, dw, db) = B::conv2d_backward(
            x.into_primitive(),
            weight.into_primitive(),
            output_grad.into_primitive(),
            stride,
            padding,
            input_grad,
            settings,
        )
        .into_parts();
        Conv2dGradients::from_parts(
            dx.map(Self::from_inner),
            Self::from_inner(dw),
            Self::from_inner(db),
        )
    }
}

/// What a convolution's node needs besides its tensors.
struct Geometry {
    stride: [usize; 2],
    padding: [usize; 2],
    /// Whether the output is after a ReLU.
    relu: bool,
    settings: ConvSettings,
}

/// Runs `forward` (a convolution of `x` with `weight` and `bias` on the inner backend, which
/// may return something besides its output) and registers the convolution's autodiff node on
/// its output.
fn track<B, C, Extra>(
    x: FloatTensor<Autodiff<B, C>>,
    weight: FloatTensor<Autodiff<B, C>>,
    bias: FloatTensor<Autodiff<B, C>>,
    geometry: Geometry,
    forward: impl FnOnce(FloatTensor<B>, FloatTensor<B>, FloatTensor<B>) -> (FloatTensor<B>, Extra),
) -> (FloatTensor<Autodiff<B, C>>, Extra)
where
    B: Backend + Conv2dOps,
    C: CheckpointStrategy,
{
    let nodes = [x.node(), weight.node(), bias.node()];
    let (x, weight) = (x.into_primitive(), weight.into_primitive());
    let (output, extra) = forward(x.clone(), weight.clone(), bias.into_primitive());
    let output = match Conv2dBackward
        .prepare::<C>(nodes)
        .compute_bound()
        .stateful()
    {
        OpsKind::Tracked(prep) => {
            let saved = Saved {
                x,
                weight,
                relu_output: geometry.relu.then(|| output.clone()),
                stride: geometry.stride,
                padding: geometry.padding,
                settings: geometry.settings,
            };
            prep.finish(saved, output)
        }
        OpsKind::UnTracked(prep) => prep.finish(output),
    };
    (output, extra)
}
