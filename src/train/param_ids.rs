//! Parameter ids that are the same in every run of a configuration.
//!
//! burn gives each parameter, running statistic and flag an id drawn at random when a module is
//! built, and writes it into every record: `model.bpk`, the checkpoints, and the optimiser's
//! state, which it keys by those ids. Two runs of one seed, or a run and its resumed copy,
//! would write different `model.bpk` files for their ids alone, with equal weights. A run
//! numbers its network's ids instead, in the order burn visits them.

use burn::module::{Flag, Module, ModuleMapper, Param, ParamId, RunningState};
use burn::tensor::{Bool, Int, Tensor};

use crate::data::SplitMix64;
use crate::model::Nin;

/// `model` with its ids numbered: the `i`-th parameter burn visits gets an id derived from `i`,
/// and each batch norm's running statistics ids derived from its block and layer.
pub(super) fn numbered(model: Nin) -> Nin {
    let mut mapper = Numbering { next: 0 };
    let mut model = model.map(&mut mapper);
    for (block, nin_block) in model.blocks.iter_mut().enumerate() {
        let layers = [
            &mut nin_block.conv,
            &mut nin_block.mlp1,
            &mut nin_block.mlp2,
        ];
        for (layer, conv_norm_relu) in layers.into_iter().enumerate() {
            if let Some(norm) = &mut conv_norm_relu.norm {
                let id = |statistic: u64| {
                    let place = [RUNNING, block as u64, layer as u64, statistic];
                    ParamId::from(SplitMix64::derive(&place))
                };
                norm.running_mean = RunningState::with_id(id(0), norm.running_mean.value());
                norm.running_var = RunningState::with_id(id(1), norm.running_var.value());
            }
        }
    }
    model
}

/// The domains of the two kinds of ids, so that they never meet.
const PARAMETER: u64 = 0x6e69_6e5f_7061_7261;
const RUNNING: u64 = 0x6e69_6e5f_7275_6e73;

struct Numbering {
    next: u64,
}

impl Numbering {
    fn id(&mut self) -> ParamId {
        self.next += 1;
        ParamId::from(SplitMix64::derive(&[PARAMETER, self.next]))
    }
}

impl ModuleMapper for Numbering {
    fn map_float<const D: usize>(&mut self, mut param: Param<Tensor<D>>) -> Param<Tensor<D>> {
        param.id = self.id();
        param
    }

    fn map_int<const D: usize>(
        &mut self,
        mut param: Param<Tensor<D, Int>>,
    ) -> Param<Tensor<D, Int>> {
        param.id = self.id();
        param
    }

    fn map_bool<const D: usize>(
        &mut self,
        mut param: Param<Tensor<D, Bool>>,
    ) -> Param<Tensor<D, Bool>> {
        param.id = self.id();
        param
    }

    fn map_flag(&mut self, mut flag: Param<Flag>) -> Param<Flag> {
        flag.id = self.id();
        flag
    }
}

#[cfg(test)]
mod tests {
    use burn::module::ModuleVisitor;
    use burn::tensor::Device;

    use super::*;
    use crate::model::NinConfig;

    /// Every float id of a module (its running statistics' too), in visiting order.
    fn float_ids(model: &Nin) -> Vec<ParamId> {
        struct Ids(Vec<ParamId>);
        impl ModuleVisitor for Ids {
            fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
                self.0.push(param.id);
            }
        }
        let mut ids = Ids(Vec::new());
        model.visit(&mut ids);
        ids.0
    }

    #[test]
    fn two_networks_of_one_configuration_get_the_same_distinct_ids() {
        let config = NinConfig::compact(10).with_batch_norm(true);
        let device = Device::flex();
        let [one, two] = [0, 1].map(|_| numbered(config.init(&device)));
        let ids = float_ids(&one);
        assert_eq!(ids, float_ids(&two));
        let mut distinct = ids.clone();
        distinct.sort_unstable_by_key(ParamId::val);
        distinct.dedup();
        assert_eq!(distinct.len(), ids.len(), "every id once");
    }
}
