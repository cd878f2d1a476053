//! The `filegate` binary: parses the command line and runs it.

use clap::Parser;

fn main() {
    filegate::logging::init();
    let cli = filegate::cli::Cli::parse();
    std::process::exit(filegate::cli::run(cli));
}
