//! `cargo run --release --bin bench`: the load benchmark and the history check.
//!
//! One process holds a fast mock upstream (`mock`) and the load generator (`client`, `wire`, `load`); the
//! gateway under test is the release binary, started as a child with a generated config
//! (`gateway`) and watched through `/proc` (`procfs`). The yardstick (`hop`) is a bare reverse proxy
//! that this binary runs as a second child (`bench hop`). Each load scenario (`scenarios`) runs
//! straight against the mock, through the hop, then through the gateway; `report` prints the table,
//! the ratios and the targets.
//! `--scenario open-streams` (`streams`) and `--scenario soak` (`soak`) are the memory scenarios;
//! `history-check` (`history_check`, with `proxy` for `--outage`) verifies the request history;
//! `instructions` counts the gateway's instructions per request under callgrind, with the baseline config, with budgets and with traffic management.

use std::io::Write;
use std::path::PathBuf;
use std::process::ExitCode;
use std::sync::Arc;
use std::time::Duration;

use clap::{Parser, Subcommand, ValueEnum};

mod client;
mod db;
mod gateway;
mod history_check;
mod hop;
mod instructions;
mod load;
mod mock;
mod procfs;
mod proxy;
mod report;
mod scenarios;
mod soak;
mod streams;
mod wire;

use report::progress;

#[derive(Parser)]
#[command(
    name = "bench",
    about = "Benchmark ai-gateway against a mock upstream (docs/src/benchmark.md)"
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    /// Which scenarios: `all` is every load scenario plus open-streams; soak only when named.
    #[arg(long, value_enum, default_value = "all")]
    scenario: Which,
    /// Measured seconds per run (each scenario runs three times: direct, through the hop, through the gateway).
    #[arg(long, default_value_t = 5.0)]
    duration: f64,
    /// Unmeasured warm-up seconds before each run.
    #[arg(long, default_value_t = 1.0)]
    warmup: f64,
    /// Connections of the throughput, fixed-rate and stream-max scenarios.
    #[arg(long, default_value_t = 64)]
    connections: usize,
    /// Arrivals per second of the fixed-rate (open-loop) scenario.
    #[arg(long, default_value_t = 50.0)]
    rate: f64,
    /// Content chunks per stream in stream-max.
    #[arg(long, default_value_t = 20)]
    stream_chunks: u32,
    /// µs between stream events in stream-max (0: back to back).
    #[arg(long, default_value_t = 0)]
    stream_delay_us: u64,
    /// Content chunks per stream in the TTFT scenarios.
    #[arg(long, default_value_t = 16)]
    ttft_chunks: u32,
    /// µs between stream events in the TTFT scenarios.
    #[arg(long, default_value_t = 1_000)]
    ttft_delay_us: u64,
    /// Streams held open by open-streams.
    #[arg(long, default_value_t = 5_000)]
    streams: usize,
    /// Seconds open-streams samples once all are open.
    #[arg(long, default_value_t = 5.0)]
    hold_seconds: f64,
    /// Soak length in minutes.
    #[arg(long, default_value_t = 10.0)]
    minutes: f64,
    #[arg(long, default_value_t = 32)]
    soak_connections: usize,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// The gateway binary (default: `ai-gateway` beside this binary, built first).
    #[arg(long, global = true)]
    gateway_bin: Option<PathBuf>,
    /// Do not run `cargo build --release --bin ai-gateway` first.
    #[arg(long, global = true)]
    no_build: bool,
    /// An existing PostgreSQL database to connect to; a fresh `bench_<uuid>` is created beside it.
    #[arg(long, global = true, default_value = "postgres://postgres@127.0.0.1:5432/test")]
    postgres: String,
    /// Keep the fresh database (and print its URL) instead of dropping it.
    #[arg(long, global = true)]
    keep_db: bool,
}

#[derive(Subcommand)]
enum Command {
    /// N requests, then exactly N correct rows in `ai_requests`.
    HistoryCheck {
        /// Requests to send.
        #[arg(long, default_value_t = 10_000)]
        requests: usize,
        /// Connections.
        #[arg(long, default_value_t = 64)]
        concurrency: usize,
        /// Cut the database off (through a proxy) mid-run.
        #[arg(long)]
        outage: bool,
        /// Length of the outage.
        #[arg(long, default_value_t = 3.0)]
        outage_seconds: f64,
        /// `history.queue_capacity` of the gateway (default 10,000 would leave no headroom).
        #[arg(long, default_value_t = 50_000)]
        queue_capacity: usize,
        /// Longest wait for the rows after the load, seconds.
        #[arg(long, default_value_t = 120.0)]
        flush_timeout_seconds: f64,
    },
    /// Instructions per request under callgrind (valgrind), with the baseline config, budgets on, and a key pool with a concurrency cap.
    Instructions {
        /// Unmeasured requests first (connections, caches, lazy statics).
        #[arg(long, default_value_t = 300)]
        warmup: usize,
        /// Measured requests, one after another on one connection.
        #[arg(long, default_value_t = 2_000)]
        requests: usize,
        /// Share limits and budget counters through this Redis (e.g. redis://127.0.0.1:6379).
        #[arg(long)]
        redis: Option<String>,
    },
    /// The yardstick the benchmark starts as a child: a bare reverse proxy to the mock.
    #[command(hide = true)]
    Hop {
        /// Where to listen.
        #[arg(long)]
        listen: std::net::SocketAddr,
        /// The mock.
        #[arg(long)]
        upstream: std::net::SocketAddr,
    },
}

#[derive(Clone, Copy, PartialEq, Eq, ValueEnum)]
enum Which {
    All,
    Load,
    Sequential,
    Throughput,
    FixedRate,
    StreamMax,
    Ttft,
    OpenStreams,
    Soak,
}

#[tokio::main]
async fn main() -> ExitCode {
    let cli = Cli::parse();
    match run(cli).await {
        Ok(code) => code,
        Err(e) => {
            let _ = writeln!(std::io::stderr(), "bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Raises the soft RLIMIT_NOFILE to the hard limit (at most 20,000); children inherit it.
fn raise_nofile() -> u64 {
    use rustix::process::{Resource, Rlimit, getrlimit, setrlimit};
    let limit = getrlimit(Resource::Nofile);
    let want = limit.maximum.unwrap_or(20_000).min(20_000);
    if limit.current.is_some_and(|c| c < want) {
        let _ = setrlimit(
            Resource::Nofile,
            Rlimit {
                current: Some(want),
                maximum: limit.maximum,
            },
        );
    }
    getrlimit(Resource::Nofile).current.unwrap_or(want)
}

fn secs(s: f64) -> Duration {
    Duration::try_from_secs_f64(s).unwrap_or(Duration::ZERO)
}

async fn run(cli: Cli) -> Result<ExitCode, String> {
    if let Some(Command::Hop { listen, upstream }) = cli.command {
        let listener = tokio::net::TcpListener::bind(listen)
            .await
            .map_err(|e| format!("hop: bind {listen}: {e}"))?;
        hop::serve(listener, upstream).await.map_err(|e| format!("hop: {e}"))?;
        return Ok(ExitCode::SUCCESS);
    }
    let nofile = raise_nofile();
    let bin = gateway::locate(cli.common.gateway_bin.clone(), !cli.common.no_build)?;
    let mock = mock::Mock::start().await.map_err(|e| format!("mock: {e}"))?;
    let fresh = db::FreshDb::create(&cli.common.postgres).await?;
    let setup = gateway::Setup {
        mock_port: mock.port,
        database_url: fresh.url.clone(),
        queue_capacity: 100_000,
        dir: std::env::temp_dir().join("ai-gateway-bench").join(&fresh.name),
        budgets: gateway::Budgets::Off,
        virtual_key: false,
        traffic: false,
        redis: None,
        wrapper: Vec::new(),
    };
    progress(&format!(
        "gateway {}, mock on 127.0.0.1:{}, history in {}, files in {}, RLIMIT_NOFILE {nofile}",
        bin.display(),
        mock.port,
        fresh.url,
        setup.dir.display()
    ));
    let result = match &cli.command {
        Some(Command::HistoryCheck {
            requests,
            concurrency,
            outage,
            outage_seconds,
            queue_capacity,
            flush_timeout_seconds,
        }) => {
            let params = history_check::Params {
                requests: *requests,
                concurrency: *concurrency,
                outage: outage.then(|| secs(*outage_seconds)),
                flush_timeout: secs(*flush_timeout_seconds),
            };
            let setup = gateway::Setup {
                queue_capacity: *queue_capacity,
                ..setup
            };
            progress(&format!("history-check: history.queue_capacity = {queue_capacity}"));
            history_check::run(&mock, &bin, &setup, &fresh, &params)
                .await
                .map(|(report, pass)| {
                    print(&report);
                    if pass { ExitCode::SUCCESS } else { ExitCode::FAILURE }
                })
        }
        Some(Command::Instructions {
            warmup,
            requests,
            redis,
        }) => {
            let setup = gateway::Setup {
                redis: redis.clone(),
                ..setup
            };
            instructions::run(&bin, &setup, *warmup, *requests).await.map(|counts| {
                for c in &counts {
                    print(&format!(
                        "{:<12} {:>12.0} instructions per request\n",
                        c.name, c.per_request
                    ));
                }
                if let [off, rest @ ..] = counts.as_slice() {
                    for c in rest {
                        print(&format!(
                            "{} / baseline: {:.3}\n",
                            c.name,
                            c.per_request / off.per_request
                        ));
                    }
                }
                ExitCode::SUCCESS
            })
        }
        // Served at the top of `run`.
        Some(Command::Hop { .. }) => Ok(ExitCode::SUCCESS),
        None => benchmark(&cli, &mock, &bin, &setup).await.map(|()| ExitCode::SUCCESS),
    };
    if cli.common.keep_db {
        progress(&format!("kept {}", fresh.url));
    } else if let Err(e) = fresh.drop_db().await {
        progress(&e);
    }
    result
}

async fn benchmark(
    cli: &Cli,
    mock: &Arc<mock::Mock>,
    bin: &std::path::Path,
    setup: &gateway::Setup,
) -> Result<(), String> {
    let params = scenarios::Params {
        duration: secs(cli.duration),
        warmup: secs(cli.warmup),
        connections: cli.connections,
        rate: cli.rate,
        stream_chunks: cli.stream_chunks,
        stream_delay: Duration::from_micros(cli.stream_delay_us),
        ttft_chunks: cli.ttft_chunks,
        ttft_delay: Duration::from_micros(cli.ttft_delay_us),
    };
    let selected: Vec<_> = scenarios::all(&params)
        .into_iter()
        .filter(|s| match cli.scenario {
            Which::All | Which::Load => true,
            Which::Sequential => s.id == "sequential",
            Which::Throughput => s.id == "throughput",
            Which::FixedRate => s.id == "fixed-rate",
            Which::StreamMax => s.id == "stream-max",
            Which::Ttft => s.id.starts_with("ttft"),
            Which::OpenStreams | Which::Soak => false,
        })
        .collect();
    let setup = &setup.clone().production();
    if !selected.is_empty() {
        let exe = std::env::current_exe().map_err(|e| format!("cannot find this binary: {e}"))?;
        let hop = hop::Hop::start(&exe, mock.port).await?;
        let gw = gateway::Gateway::start(bin, setup, "load").await?;
        progress(&format!(
            "hop on {} (pid {}), gateway on {} (pid {}) with a virtual key and a gateway budget",
            hop.addr,
            hop.proc.pid(),
            gw.addr,
            gw.proc.pid()
        ));
        let rows = scenarios::run(mock, &hop, &gw, &selected, &params).await;
        let dropped = gw.health().await.ok().map(|h| h["history"]["dropped"].clone());
        progress(&hop.stop().await);
        progress(&gw.stop().await);
        print(&format!(
            "\n{}\n{}history rows dropped during the load scenarios: {}\n",
            report::table(&rows),
            report::render_verdicts(&report::verdicts(&rows)),
            dropped.map_or_else(|| "unknown".into(), |d| d.to_string())
        ));
    }
    if matches!(cli.scenario, Which::All | Which::OpenStreams) {
        let gw = gateway::Gateway::start(bin, setup, "open-streams").await?;
        let p = streams::Params {
            streams: cli.streams,
            opening: 256,
            hold: secs(cli.hold_seconds),
            slow_interval: Duration::from_secs(5),
        };
        let outcome = streams::run(mock, &gw, &p).await;
        progress(&gw.stop().await);
        print(&format!("\n{}", outcome?.render()));
    }
    if cli.scenario == Which::Soak {
        let gw = gateway::Gateway::start(bin, setup, "soak").await?;
        let p = soak::Params {
            duration: secs(cli.minutes * 60.0),
            connections: cli.soak_connections,
            every: Duration::from_secs(5),
        };
        let outcome = soak::run(mock, &gw, &p).await;
        progress(&gw.stop().await);
        print(&format!("\n{}", outcome?.render()));
    }
    Ok(())
}

fn print(text: &str) {
    let _ = write!(std::io::stdout().lock(), "{text}");
}
