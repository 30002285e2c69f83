//! `semcom`: the command-line tool of the semcom stack.

mod bench;
mod codec;
mod eval;
mod plot;
mod rx;
mod sim;
mod train;
mod tx;
mod units;

use clap::{Parser, Subcommand};
use std::process::ExitCode;

/// Semantic communication over OFDM radios: transmit, receive, simulate, benchmark.
#[derive(Parser, Debug)]
#[command(name = "semcom", version, about, propagate_version = true)]
struct Cli {
    /// More log output on stderr (-v info, -vv debug, -vvv trace); RUST_LOG overrides.
    #[arg(short, long, action = clap::ArgAction::Count, global = true)]
    verbose: u8,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand, Debug)]
enum Command {
    /// Modulate PSDUs into 802.11a/g IQ samples (cf32 at 20 MS/s, or a SigMF recording).
    Tx(tx::TxArgs),
    /// Decode 802.11a/g frames from an IQ file or SigMF recording.
    Rx(rx::RxArgs),
    /// Simulations.
    #[command(subcommand)]
    Sim(sim::SimCommand),
    /// Single-core throughput benchmarks.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// Code a file of items (text lines, telemetry records) into semantic frames.
    Encode(codec::EncodeArgs),
    /// Decode frames from `semcom encode` back into the items.
    Decode(codec::DecodeArgs),
    /// Measure the codecs against general-purpose compressors on held-out data.
    #[command(subcommand)]
    Eval(eval::EvalCommand),
    /// Train the codec's models (CPU, or a GPU when built with `--features cuda`).
    #[command(subcommand)]
    Train(train::TrainCommand),
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let default = match cli.verbose {
        0 => "warn",
        1 => "info",
        2 => "debug",
        _ => "trace",
    };
    let filter = tracing_subscriber::EnvFilter::try_from_default_env()
        .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new(default));
    tracing_subscriber::fmt()
        .with_writer(std::io::stderr)
        .with_env_filter(filter)
        .with_target(false)
        .init();
    let result = match cli.command {
        Command::Tx(a) => tx::run(a),
        Command::Rx(a) => rx::run(a),
        Command::Sim(c) => sim::run(c),
        Command::Bench(c) => bench::run(c),
        Command::Train(c) => train::run(c),
        Command::Eval(c) => eval::run(c),
        Command::Encode(a) => codec::encode(a),
        Command::Decode(a) => codec::decode(a),
    };
    match result {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // A closed stdout (e.g. `semcom rx … | head`) is not an error worth a message.
            if e.chain().any(|c| {
                c.downcast_ref::<std::io::Error>()
                    .is_some_and(|io| io.kind() == std::io::ErrorKind::BrokenPipe)
            }) {
                return ExitCode::SUCCESS;
            }
            eprintln!("error: {e:#}");
            ExitCode::FAILURE
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn definition_is_consistent() {
        Cli::command().debug_assert();
    }

    #[test]
    fn typical_command_lines_parse() {
        for line in [
            "semcom tx --rate 36 --random 100 -o x.cf32",
            "semcom tx --rate 6 --psdu f.bin --append-fcs --frames 3 --scrambler-seed 0b1011101 -o x.sigmf-data",
            "semcom rx -i x.cf32 --json",
            "semcom sim phy",
            "semcom sim phy --rate 54 --snr 10:2:30 --channel rayleigh --doppler 50 --taps 1,0.3j --plot p.png --json",
            "semcom bench phy --json",
            "semcom bench phy --filter ldpc --runs 21",
            "semcom sim code --code ldpc-1944-1/2 --ebn0 0:0.25:2 --decoders min-sum,sum-product --plot c.png",
            "semcom sim phy --mcs qpsk-1/2 --length 1000 --snr 2:0.5:4",
            "semcom sim rates --mcs qpsk-1/2,16qam-3/4 --target-per 0.01 --json",
            "semcom sim phy --segments qpsk-1/2:0:200,64qam-3/4:1:800 --snr 10:1:20 --json",
        ] {
            let args: Vec<&str> = line.split_whitespace().collect();
            let cli = Cli::try_parse_from(&args).unwrap_or_else(|e| panic!("{line}: {e}"));
            // Every field is accessed by the derive: a type mismatch would have panicked above.
            let _ = format!("{cli:?}");
        }
        for bad in [
            "semcom tx --rate 36 -o x.cf32",
            "semcom tx --random 10 --psdu f -o x",
            "semcom sim phy --snr 5:0:6",
            "semcom sim phy --taps 1+xj",
            "semcom sim code --decoders viterbi",
            "semcom sim phy --mcs qpsk-1/2 --segments qpsk-1/2:0:10",
        ] {
            let args: Vec<&str> = bad.split_whitespace().collect();
            assert!(Cli::try_parse_from(&args).is_err(), "{bad} should be refused");
        }
    }
}
