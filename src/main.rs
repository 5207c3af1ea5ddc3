use std::io::IsTerminal;

use tracing_subscriber::EnvFilter;

fn main() -> std::process::ExitCode {
    cdcgan::backend::tune_allocator();
    tracing_subscriber::fmt()
        .with_env_filter(
            EnvFilter::try_from_default_env().unwrap_or_else(|_| EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        // Colour codes only for a terminal: `cdcgan train 2> log` stays plain text.
        .with_ansi(std::io::stderr().is_terminal())
        .with_target(false)
        .init();
    match cdcgan::cli::main() {
        Ok(()) => std::process::ExitCode::SUCCESS,
        Err(e) if e.is::<cdcgan::cli::Interrupted>() => std::process::ExitCode::from(130),
        Err(e) => {
            eprintln!("error: {e:#}");
            std::process::ExitCode::FAILURE
        }
    }
}
