//! What the examples share.

use std::process::ExitCode;

/// Exits with success, or prints the error as one `error: ...` paragraph and exits with 1.
pub fn exit_with(result: Result<(), Box<dyn std::error::Error>>) -> ExitCode {
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(error) => {
            eprintln!("error: {error}");
            ExitCode::FAILURE
        }
    }
}
