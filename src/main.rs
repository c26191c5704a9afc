use std::process::ExitCode;

fn main() -> ExitCode {
    cachescope::cli::main()
}
