//! `cdcgan serve`: its arguments and handler.

use std::net::SocketAddr;
use std::path::PathBuf;

use clap::Args;

use crate::serve::ServeOptions;

/// Arguments of `cdcgan serve`.
#[derive(Debug, Args)]
pub struct ServeArgs {
    /// The run directory whose generator answers (its EMA when it has one).
    #[arg(long)]
    pub run: PathBuf,
    /// Address to listen on, HOST:PORT (e.g. 127.0.0.1:8080, localhost:8080,
    /// 0.0.0.0:80; port 0: any free port, printed at start).
    #[arg(long, default_value = "127.0.0.1:8080", value_parser = super::values::parse_addr)]
    pub addr: SocketAddr,
    /// Generations running at once; further requests wait their turn.
    #[arg(long, default_value_t = 2)]
    pub max_concurrent: usize,
    /// Seconds a client has to send a request's headers (on a new or an idle
    /// kept-alive connection), or to take any bytes of an answer, before its
    /// connection is closed.
    #[arg(long, default_value_t = 10)]
    pub header_timeout: u64,
    /// Connections open at once; more get 503 [default: half the open-file limit, at most 1024].
    #[arg(long)]
    pub max_connections: Option<usize>,
}

pub fn run_serve(args: ServeArgs) -> anyhow::Result<()> {
    let options = ServeOptions {
        run: args.run,
        addr: args.addr,
        max_concurrent: args.max_concurrent,
        header_timeout: args.header_timeout,
        max_connections: args.max_connections,
        training_here: false,
    };
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
