//! The command line: clap definitions, one file per subcommand.

/// Run the CLI and return the process exit code.
pub fn main() -> i32 {
    0
}
