//! `cdcgan serve`: its handler (the arguments are [`ServeOptions`]).

use crate::serve::ServeOptions;

pub fn run_serve(options: ServeOptions) -> anyhow::Result<()> {
    crate::serve::serve(&options, |addr| {
        use std::io::Write;
        println!(
            "serving http://{addr}/ (run {}; Ctrl-C to stop)",
            options.run.display()
        );
        let _ = std::io::stdout().flush();
        if !addr.ip().is_loopback() {
            tracing::warn!(%addr, "listening beyond this machine: anyone who can reach it can use the page");
        }
    })
}
