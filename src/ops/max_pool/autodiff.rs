//! The pool's autodiff node: it keeps the input and the output, from which the backward pass
//! finds each window's maximum again.

use burn::backend::tensor::FloatTensor;
use burn::backend::{AutodiffBackend, Backend};
use burn_autodiff::Autodiff;
use burn_autodiff::checkpoint::base::Checkpointer;
use burn_autodiff::checkpoint::strategy::CheckpointStrategy;
use burn_autodiff::grads::Gradients;
use burn_autodiff::ops::{Backward, Ops, OpsKind};

use super::MaxPoolOps;

#[derive(Debug)]
struct MaxPoolBackward;

/// Input, output, kernel and stride.
type Saved<B> = (FloatTensor<B>, FloatTensor<B>, [usize; 2], [usize; 2]);

impl<B: Backend + MaxPoolOps> Backward<B, 1> for MaxPoolBackward {
    type State = Saved<B>;

    fn backward(self, ops: Ops<Self::State, 1>, grads: &mut Gradients, _: &mut Checkpointer) {
        let (x, output, kernel, stride) = ops.state;
        let output_grad = grads.consume::<B>(&ops.node);
        let [x_node] = ops.parents;
        if let Some(node) = x_node {
            let grad = B::max_pool2d_plain_backward(x, output, output_grad, kernel, stride);
            grads.register::<B>(node.id, grad);
        }
    }
}

impl<B: Backend + MaxPoolOps, C: CheckpointStrategy> MaxPoolOps for Autodiff<B, C> {
    fn max_pool2d_plain(
        x: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self> {
        let nodes = [x.node()];
        let x = x.into_primitive();
        let output = B::max_pool2d_plain(x.clone(), kernel, stride);
        match MaxPoolBackward
            .prepare::<C>(nodes)
            .compute_bound()
            .stateful()
        {
            OpsKind::Tracked(prep) => prep.finish((x, output.clone(), kernel, stride), output),
            OpsKind::UnTracked(prep) => prep.finish(output),
        }
    }

    fn max_pool2d_plain_backward(
        x: FloatTensor<Self>,
        output: FloatTensor<Self>,
        output_grad: FloatTensor<Self>,
        kernel: [usize; 2],
        stride: [usize; 2],
    ) -> FloatTensor<Self> {
        // Gradients are not themselves differentiated: compute on the inner backend.
        Self::from_inner(B::max_pool2d_plain_backward(
            x.into_primitive(),
            output.into_primitive(),
            output_grad.into_primitive(),
            kernel,
            stride,
        ))
    }
}
