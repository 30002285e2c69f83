//! `semcom`: the command-line tool of the semcom stack.

mod bench;
mod channel;
mod codec;
mod demo;
mod eval;
mod image;
mod image_digital;
mod link;
mod plot;
mod probe;
mod quic;
mod radio;
mod rx;
mod sensor;
mod sim;
mod simimage;
mod simlink;
mod simlink_image;
mod simlink_quic;
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
    /// Transmit 802.11a/g frames on a radio (SoapySDR device, UDP virtual radio) or to an IQ
    /// file / SigMF recording.
    Tx(tx::TxArgs),
    /// Receive 802.11a/g frames from a radio, an IQ file or a SigMF recording.
    Rx(rx::RxArgs),
    /// A channel emulator between two UDP virtual radios (or files): noise, CFO, fading.
    Channel(channel::ChannelArgs),
    /// List SoapySDR devices and what they support.
    Probe(probe::ProbeArgs),
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
    /// The semantic link against the classical one on built-in samples (about a minute).
    Demo(demo::DemoArgs),
    /// QUIC: certificates, a server that receives items, a sender.
    #[command(subcommand)]
    Quic(quic::QuicCommand),
    /// A lossy UDP link between a QUIC sender and server: loss, delay, jitter, rate limit, or
    /// loss that follows the PHY at an SNR.
    Emulate(quic::EmulateArgs),
    /// Send files as items over the radio link, QUIC, or the radio with fallback to QUIC.
    Send(link::SendDirArgs),
    /// Receive items of the radio link on a live radio (the other end of `semcom send -a/--udp`).
    Recv(link::RecvArgs),
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
        Command::Channel(a) => channel::run(a),
        Command::Probe(a) => probe::run(a),
        Command::Sim(c) => sim::run(c),
        Command::Bench(c) => bench::run(c),
        Command::Train(c) => train::run(c),
        Command::Eval(c) => eval::run(c),
        Command::Encode(a) => codec::encode(a),
        Command::Decode(a) => codec::decode(a),
        Command::Demo(a) => demo::run(a),
        Command::Quic(c) => quic::run(c),
        Command::Emulate(a) => quic::emulate(a),
        Command::Send(a) => link::run(a),
        Command::Recv(a) => link::recv(a),
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
            eprintln!("error: {}", message(&e));
            ExitCode::FAILURE
        }
    }
}

/// An error and its causes, `: `-separated, each cause once: an error that prints its source
/// (`file: No such file or directory`) is not followed by that source again.
fn message(e: &anyhow::Error) -> String {
    let mut out = String::new();
    for cause in e.chain() {
        let s = cause.to_string();
        if !out.ends_with(&s) {
            if !out.is_empty() {
                out.push_str(": ");
            }
            out.push_str(&s);
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    #[test]
    fn error_messages_name_each_cause_once() {
        let io = std::io::Error::new(std::io::ErrorKind::NotFound, "No such file or directory");
        let e = anyhow::Error::new(semcom_transport::TransportError::Io {
            path: "a.cf32".into(),
            source: io,
        })
        .context("opening the input");
        assert_eq!(message(&e), "opening the input: a.cf32: No such file or directory");
        let e = anyhow::anyhow!("inner").context("outer");
        assert_eq!(message(&e), "outer: inner");
    }

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
            "semcom tx -a driver=hackrf -f 2.45G -s 20M -g 40 --rate 12 --repeat 5 --interval 10ms --items -",
            "semcom tx --udp 127.0.0.1:5000 --random 100 -n 10 --format ci16",
            "semcom rx -a driver=hackrf,serial=0x1 -f 2.45G -s 20M -g LNA=20,VGA=30 --json --record out.sigmf-data",
            "semcom rx --udp 0.0.0.0:5001 --count 100 --duration 1m",
            "semcom rx -i out.sigmf-meta",
            "semcom channel --in udp:127.0.0.1:5000 --out udp:127.0.0.1:5001 --snr 15 --cfo 2k --fading rayleigh",
            "semcom probe",
            "semcom probe -a driver=rtlsdr --json",
            "semcom sim link --snr -5:1:25 --channels awgn,rayleigh --semantic-mcs qpsk-1/2 -o out",
            "semcom sim link --text a.txt --telemetry t.ndjson --held-out 0.2 --zstd-dict --insecure --limit 10",
            "semcom demo",
            "semcom sim image --data d --mode jpeg --snr 0:2:20 --ratio 1/16 --channel rayleigh --json --plot p.png -n 4",
            "semcom sim image --data d --mode analog --seed 3 --realisations 4",
            "semcom quic cert --cert c.der --key k.der --name gw.local",
            "semcom quic serve --listen 127.0.0.1:4433 --cert c.der --key k.der --out got --count 5",
            "semcom quic send --connect 127.0.0.1:4434 --cert c.der items --zstd --item-timeout 2s",
            "semcom emulate --listen 127.0.0.1:4434 --forward 127.0.0.1:4433 --loss 0.1 --delay 20ms --jitter 5ms --rate 1M",
            "semcom emulate --snr -2 --phy-rate 12 --channel rayleigh --duration 10s",
            "semcom send items --link auto --passphrase secret-words --snr 5 --connect 127.0.0.1:4433 --cert c.der",
            "semcom send items --link radio --key k.bin",
            "semcom send items --link radio --key k.bin --udp 127.0.0.1:5000 -s 2M",
            "semcom send items --link radio --passphrase p -a driver=hackrf -f 2.45G -g 30",
            "semcom recv --udp 0.0.0.0:5000 --key k.bin -o got --count 10 --json",
            "semcom quic send --connect 127.0.0.1:4434 --cert c.der items --no-datagrams",
            "semcom sim link --modalities image --image kodak --image-psnr 28 --image-margin 0.5 --no-analog",
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
            "semcom tx --random 10",
            "semcom sim link --channels fog",
            "semcom sim image --data d --mode jpeg --ratio 1/0",
            "semcom sim image --data d --mode jpeg --ratio 2/1",
            "semcom sim image --data d --mode jpeg --ratio x",
            "semcom sim image --data d --mode jpeg --snr 3:1:2",
            "semcom sim image --data d --mode digital",
            "semcom send items --link radio --key k --insecure",
            "semcom recv --udp 127.0.0.1:5000 --key k --insecure",
            "semcom recv --udp 127.0.0.1:5000 -a driver=hackrf",
            "semcom emulate --phy-rate x",
            "semcom tx --random 10 -o x.cf32 --udp 127.0.0.1:1",
            "semcom tx --items - -n 3 -o x.cf32",
            "semcom tx --random 10 -o x --gap 3 --interval 1ms",
            "semcom rx -a driver=x --udp 127.0.0.1:1",
            "semcom rx -i x.cf32 --duration 10parsecs",
            "semcom channel --in udp:127.0.0.1:1",
        ] {
            let args: Vec<&str> = bad.split_whitespace().collect();
            assert!(Cli::try_parse_from(&args).is_err(), "{bad} should be refused");
        }
    }
}
