//! Finding values that are not finite numbers in a model's parameters: the sign of weights
//! from a run that diverged.

use burn::module::{Module, ModuleVisitor, Param};
use burn::tensor::Tensor;

use super::Nin;

/// The first parameter or running statistic of `model` holding a value that is not a finite
/// number: its module path, the value's index in the flattened tensor, and the value.
pub(crate) fn first_non_finite(model: &Nin) -> Option<(String, usize, f32)> {
    #[derive(Default)]
    struct Finder {
        path: Vec<String>,
        found: Option<(String, usize, f32)>,
    }
    impl ModuleVisitor for Finder {
        fn enter_module(&mut self, name: &str, _container: &str) {
            self.path.push(name.to_string());
        }

        fn exit_module(&mut self, _name: &str, _container: &str) {
            self.path.pop();
        }

        fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
            if self.found.is_some() {
                return;
            }
            let data = param.val().into_data();
            let bad = data
                .iter::<f32>()
                .enumerate()
                .find(|(_, value)| !value.is_finite());
            if let Some((index, value)) = bad {
                self.found = Some((self.path.join("."), index, value));
            }
        }
    }
    let mut finder = Finder::default();
    model.visit(&mut finder);
    finder.found
}
