//! What the examples share.

use std::process::ExitCode;

use clap::builder::TypedValueParser;

/// The examples' allocator choice, made as a binary makes it: keep freed memory for the next
/// training step ([`nin::ops::retain_freed_memory`]), unless `NIN_RETAIN_FREED_MEMORY=0` asks
/// for the C allocator's defaults (as `perf`'s "allocator defaults" row does).
pub fn retain_freed_memory_unless_declined() {
    let declined = std::env::var("NIN_RETAIN_FREED_MEMORY").is_ok_and(|v| v.trim() == "0");
    if !declined {
        nin::ops::retain_freed_memory();
    }
}

/// Exits with success, or prints the error as one `error: ...` paragraph, with the library's
/// names of what to change given as the examples' flags, and exits with 1.
pub fn exit_with(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {}", as_flags(&error.to_string()));
            ExitCode::FAILURE
        }
    }
}

/// A command-line parser for `values`, by the names the library gives them; `--help` lists
/// them.
pub fn named<T>(values: &'static [T]) -> impl TypedValueParser<Value = T>
where
    T: nin::names::Named + Clone + Send + Sync,
{
    clap::builder::PossibleValuesParser::new(values.iter().map(|value| value.name()))
        .try_map(|name| nin::names::parse::<T>(&name))
}

/// The library's errors name the setting to change as its API has it; here each becomes the
/// flag that sets it.
const FLAGS: [(&str, &str); 6] = [
    ("`TrainOptions::resume`", "--resume"),
    ("`TrainOptions::overwrite`", "--overwrite"),
    ("`TrainOptions::new`", "--artifact-dir"),
    ("`ArtifactDir::new`", "--artifact-dir"),
    ("`TrainingConfig::optimizer`", "--lr"),
    ("the `dir` argument", "--data-dir"),
];

/// `message` with the library's names of settings replaced by the flags that set them.
pub fn as_flags(message: &str) -> String {
    FLAGS.iter().fold(message.to_string(), |text, (api, flag)| {
        text.replace(api, flag)
    })
}
