//! The `reddiff` command-line tool.

use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(name = "reddiff", version, about = "Image restoration with diffusion priors (RED-diff) on any GPU through wgpu")]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Print the selected GPU adapter, its limits and features (REDDIFF_BACKEND / REDDIFF_ADAPTER choose).
    Adapter,
}

fn main() {
    let cli = Cli::parse();
    let result = match cli.command {
        Command::Adapter => reddiff::Gpu::new().map(|g| println!("{}", g.adapter())),
    };
    if let Err(e) = result {
        eprintln!("error: {e}");
        std::process::exit(1);
    }
}
