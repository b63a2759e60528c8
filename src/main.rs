//! Entry point: parse, run, print the error once, map it to an exit code.
//!
//! All the work lives in the library; this file only turns a failed run into the one-line
//! `statectl: error: ...` message of the contract and its documented exit status.

use std::process::ExitCode;

fn main() -> ExitCode {
    statectl::main()
}
