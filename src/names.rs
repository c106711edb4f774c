//! The names of the crate's fixed choices (backends, presets, optimisers, precisions,
//! strategies, kernels) as the command line and `config.json` spell them, each written once,
//! parsed in one way with one error. [`Named`] lists them, for command-line parsers.

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
///
/// ```
/// use nin::names::Named;
///
/// let names: Vec<&str> = nin::Precision::all().iter().map(|p| p.name()).collect();
/// assert_eq!(names, ["f32", "f16", "bf16"]);
/// ```
pub trait Named: Copy + 'static {
    /// What the values are, for errors.
    const KIND: &'static str;

    /// Every value.
    fn all() -> &'static [Self];

    /// The value's name.
    fn name(self) -> &'static str;
}

/// The value of `T` called `given`, in any case and with surrounding spaces ignored.
///
/// ```
/// let strategy: nin::train::Strategy = nin::names::parse("DDP").unwrap();
/// assert_eq!(strategy, nin::train::Strategy::Ddp);
/// ```
pub fn parse<T: Named>(given: &str) -> Result<T, UnknownName> {
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

/// The value of `T` that `value`, the environment variable `var`'s, names: `None` where it is
/// unset or empty, and where it names none, which is reported on stderr with the variable and
/// the valid names and otherwise ignored: these variables are read inside kernels, which have
/// no error to return.
pub(crate) fn from_environment<T: Named>(var: &str, value: Option<String>) -> Option<T> {
    let value = value.filter(|value| !value.trim().is_empty())?;
    parse(&value)
        .map_err(|err| eprintln!("nin: ignoring {var}: {err}"))
        .ok()
}

/// The impls every [`Named`] enum has, from its names: `FromStr` (through [`parse`]),
/// `Display`, and the conversions to and from a name that
/// `#[serde(into = "&'static str", try_from = "String")]` uses.
macro_rules! impl_named {
    ($type:ty) => {
        impl ::std::str::FromStr for $type {
            type Err = $crate::UnknownName;

            fn from_str(name: &str) -> Result<Self, Self::Err> {
                $crate::names::parse(name)
            }
        }

        impl ::std::fmt::Display for $type {
            fn fmt(&self, f: &mut ::std::fmt::Formatter<'_>) -> ::std::fmt::Result {
                f.write_str($crate::names::Named::name(*self))
            }
        }

        impl From<$type> for &'static str {
            fn from(value: $type) -> Self {
                $crate::names::Named::name(value)
            }
        }

        impl TryFrom<String> for $type {
            type Error = $crate::UnknownName;

            fn try_from(name: String) -> Result<Self, Self::Error> {
                $crate::names::parse(&name)
            }
        }
    };
}
pub(crate) use impl_named;
