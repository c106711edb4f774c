//! The names of the crate's fixed choices (presets, precisions, strategies, kernels) as the
//! command line and `config.json` spell them, parsed in one way with one error.

/// A name that names none of a kind's values.
///
/// ```
/// let err = "f8".parse::<nin::Precision>().unwrap_err();
/// assert_eq!(err.to_string(), "unknown precision `f8`; use one of: f32, f16, bf16");
/// ```
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("unknown {kind} `{given}`; use one of: {}", valid.join(", "))]
pub struct UnknownName {
    /// What was being named: `precision`, `preset`, ….
    pub kind: &'static str,
    /// The name given.
    pub given: String,
    /// Every valid name.
    pub valid: Vec<&'static str>,
}

/// An enum whose values each have one name.
pub(crate) trait Named: Copy + 'static {
    /// What the values are, for errors.
    const KIND: &'static str;

    /// Every value.
    fn all() -> &'static [Self];

    /// The value's name.
    fn name(self) -> &'static str;
}

/// The value of `T` called `given`, in any case and with surrounding spaces ignored.
pub(crate) fn parse<T: Named>(given: &str) -> Result<T, UnknownName> {
    let wanted = given.trim().to_ascii_lowercase();
    T::all()
        .iter()
        .copied()
        .find(|value| value.name() == wanted)
        .ok_or_else(|| UnknownName {
            kind: T::KIND,
            given: given.to_string(),
            valid: T::all().iter().map(|value| value.name()).collect(),
        })
}
