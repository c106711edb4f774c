//! The dynamic loss scale of `f16` training steps.

/// The dynamic loss scale of `f16` training, as PyTorch's `GradScaler` keeps it.
///
/// `f16` cannot hold magnitudes below about 6·10⁻⁸, and a NiN's activation gradients (the
/// loss's gradient spread over a batch and over every map position) come near that. A step
/// multiplies the loss by [`factor`](Self::factor) before its backward pass, so the gradients
/// inside the network are that much larger, and divides the parameters' gradients by it before
/// the optimiser sees them. A step whose gradients overflowed (an infinity or NaN after the
/// division) is skipped and the factor halved; after [`GROWTH_INTERVAL`](Self::GROWTH_INTERVAL)
/// steps in a row without overflow it doubles.
#[derive(Debug, Clone, Copy, PartialEq)]
pub(crate) struct LossScale {
    factor: f32,
    clean_steps: u32,
}

impl LossScale {
    /// The factor a run starts with: `2¹⁶`, as `GradScaler` does; the first steps halve it
    /// to what the gradients allow.
    pub const INITIAL: f32 = 65_536.0;
    /// Steps without overflow before the factor doubles.
    pub const GROWTH_INTERVAL: u32 = 2000;

    /// The scale a run starts with.
    pub fn new() -> Self {
        Self {
            factor: Self::INITIAL,
            clean_steps: 0,
        }
    }

    /// What the loss is multiplied by.
    pub fn factor(&self) -> f32 {
        self.factor
    }

    /// The scale for the next step, after a step whose gradients were finite or not.
    pub fn after_step(self, finite: bool) -> Self {
        if !finite {
            return Self {
                factor: (self.factor / 2.0).max(1.0),
                clean_steps: 0,
            };
        }
        let clean_steps = self.clean_steps + 1;
        if clean_steps >= Self::GROWTH_INTERVAL {
            Self {
                factor: (self.factor * 2.0).min(Self::INITIAL),
                clean_steps: 0,
            }
        } else {
            Self {
                factor: self.factor,
                clean_steps,
            }
        }
    }
}

impl Default for LossScale {
    fn default() -> Self {
        Self::new()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn overflow_halves_the_scale_and_a_long_clean_run_doubles_it() {
        let scale = LossScale::new().after_step(false).after_step(false);
        assert_eq!(scale.factor(), LossScale::INITIAL / 4.0);
        let mut grown = scale;
        for _ in 0..LossScale::GROWTH_INTERVAL - 1 {
            grown = grown.after_step(true);
        }
        assert_eq!(grown.factor(), scale.factor());
        assert_eq!(grown.after_step(true).factor(), scale.factor() * 2.0);
        let mut floor = LossScale::new();
        for _ in 0..40 {
            floor = floor.after_step(false);
        }
        assert_eq!(floor.factor(), 1.0);
    }
}
