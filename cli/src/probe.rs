//! `semcom probe`: the SoapySDR devices present and what each supports.

use anyhow::Result;
use clap::Args;

#[derive(Args, Debug)]
pub struct ProbeArgs {
    /// SoapySDR device arguments to match (default: every device), e.g. driver=hackrf.
    #[arg(short = 'a', long = "device", value_name = "ARGS", default_value = "")]
    device: String,
    /// Print JSON.
    #[arg(long)]
    json: bool,
}

#[cfg(feature = "soapy")]
pub fn run(a: ProbeArgs) -> Result<()> {
    use semcom_transport::radio::si;
    use semcom_transport::radio::soapy::{probe, RangeReport};
    let devices = probe(&a.device)?;
    if a.json {
        println!("{}", serde_json::to_string_pretty(&devices)?);
        return Ok(());
    }
    let ranges = |v: &[RangeReport], unit: &str| -> String {
        if v.is_empty() {
            return "-".into();
        }
        v.iter()
            .map(|r| {
                if r.min == r.max {
                    si(r.min, unit)
                } else {
                    format!("{} … {}", si(r.min, unit), si(r.max, unit))
                }
            })
            .collect::<Vec<_>>()
            .join(", ")
    };
    for d in &devices {
        println!("device: -a \"{}\"", d.args);
        println!("  driver {}, hardware {}", d.driver, d.hardware);
        for (k, v) in &d.hardware_info {
            println!("  {k}: {v}");
        }
        println!(
            "  timestamps: {}; clock sources: {}",
            if d.hardware_time { "yes" } else { "no" },
            d.clock_sources.join(", ")
        );
        for c in &d.channels {
            println!(
                "  {} channel {}{}:",
                c.direction,
                c.channel,
                if c.full_duplex { " (full duplex)" } else { "" }
            );
            println!("    frequency:    {}", ranges(&c.frequency, "Hz"));
            println!("    sample rates: {}", ranges(&c.sample_rates, "S/s"));
            println!("    bandwidths:   {}", ranges(&c.bandwidths, "Hz"));
            println!("    gain:         {} … {} dB", c.gain.min, c.gain.max);
            for (name, r) in &c.gain_elements {
                println!("      {name}: {} … {} dB", r.min, r.max);
            }
            println!("    antennas:     {}", c.antennas.join(", "));
            println!("    formats:      {}", c.formats.join(", "));
        }
    }
    Ok(())
}

#[cfg(not(feature = "soapy"))]
pub fn run(a: ProbeArgs) -> Result<()> {
    let _ = (a.device, a.json);
    anyhow::bail!("{}", crate::radio::NO_SOAPY)
}
