//! The fused operation's autodiff node: the forward pass runs on the inner backend and saves
//! what the backward kernel needs.

use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend};
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use super::{BatchNormReluOps, Normalised};

/// The autodiff node of the fused operation: its backward pass calls the backend's kernel.
#[derive(Debug)]
struct BatchNormReluBackward;

/// What the backward pass keeps: input, gamma, beta, batch mean and variance, epsilon. Not the
/// output: the ReLU's mask is recomputed from the input, so the output can be freed as soon as
/// the next layer is done with it.
type SavedForBackward<B> = (
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    FloatTensor<B>,
    f64,
);

impl<B: Backend + BatchNormReluOps> Backward<B, 3> for BatchNormReluBackward {
    type State = SavedForBackward<B>;

    fn backward(self, ops: Ops<Self::State, 3>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, gamma, beta, mean, variance, epsilon) = ops.state;
        let output_grad = grads.consume::<B>(&ops.node);
        let (grad_x, grad_gamma, grad_beta) =
            B::batch_norm_relu_backward(x, gamma, beta, mean, variance, output_grad, epsilon);
        let [x_node, gamma_node, beta_node] = ops.parents;
        for (node, grad) in [
            (x_node, grad_x),
            (gamma_node, grad_gamma),
            (beta_node, grad_beta),
        ] {
            if let Some(node) = node {
                grads.register::<B>(node.id, grad);
            }
        }
    }
}

impl<B: Backend + BatchNormReluOps, C: CheckpointStrategy> BatchNormReluOps for Autodiff<B, C> {
    fn batch_statistics(x: FloatTensor<Self>) -> FloatTensor<Self> {
        Self::from_inner(B::batch_statistics(x.into_primitive()))
    }

    fn batch_norm_relu(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        statistics: FloatTensor<Self>,
        epsilon: f64,
    ) -> Normalised<Self> {
        let nodes = [x.node(), gamma.node(), beta.node()];
        let (x, gamma, beta) = (
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
        );
        // The statistics are functions of `x`; the backward pass differentiates through them
        // from `x` itself, so they enter untracked.
        let statistics = statistics.into_primitive();
        let (output, mean, variance) =
            B::batch_norm_relu(x.clone(), gamma.clone(), beta.clone(), statistics, epsilon);
        let saved = (x, gamma, beta, mean.clone(), variance.clone(), epsilon);
        let output = match BatchNormReluBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish(saved, output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        };
        (output, Self::from_inner(mean), Self::from_inner(variance))
    }

    fn batch_norm_relu_backward(
        x: FloatTensor<Self>,
        gamma: FloatTensor<Self>,
        beta: FloatTensor<Self>,
        mean: FloatTensor<Self>,
        variance: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        epsilon: f64,
    ) -> Normalised<Self> {
        // Gradients are not themselves differentiated: compute on the inner backend.
        let grads = B::batch_norm_relu_backward(
            x.into_primitive(),
            gamma.into_primitive(),
            beta.into_primitive(),
            mean.into_primitive(),
            variance.into_primitive(),
            output_grad.into_primitive(),
            epsilon,
        );
        let (x, gamma, beta) = grads;
        (
            Self::from_inner(x),
            Self::from_inner(gamma),
            Self::from_inner(beta),
        )
    }
}
