//! `semcom encode/decode --modality image`, `semcom train image-digital` and `semcom eval
//! image-digital` end to end, and their errors for bad input (non-zero exit, a message naming
//! the problem, no panic).

use semcom_codec::image::digital::{DigitalCode, DigitalModel};
use semcom_codec::picture::{psnr, Picture};
use semcom_codec::SemanticFrame;
use std::path::Path;

mod common;

use common::{assert_fails, ok, s, semcom, tmp};

/// A textured colour test image (deterministic).
fn picture(w: usize, h: usize, phase: f32) -> Picture {
    let data = (0..3 * w * h)
        .map(|i| {
            let (c, y, x) = (i / (w * h), (i / w) % h, i % w);
            let v = 0.5
                + 0.3 * ((x as f32 * 0.09 + c as f32 + phase).sin() * (y as f32 * 0.07).cos())
                + 0.1 * (((x * 7 + y * 13) % 17) as f32 / 17.0 - 0.5);
            v.clamp(0.0, 1.0)
        })
        .collect();
    Picture::new(w, h, 3, data).unwrap()
}

const MODEL: &str = "models/image-digital.safetensors";

#[test]
fn encode_decode_round_trips_at_the_target_rate() {
    let pic = picture(96, 64, 0.0);
    let input = tmp("in.png");
    pic.save_png(&input).unwrap();
    let model = DigitalModel::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/image-digital.safetensors"
    )))
    .unwrap();
    for (flag, value) in [("--bpp", "1.0"), ("--bpp", "0.5"), ("--quality", "60")] {
        let (sem, back) = (tmp("x.sem"), tmp("x.png"));
        ok(&semcom(&[
            "encode",
            "--modality",
            "image",
            s(&input),
            "-o",
            s(&sem),
            "--model",
            MODEL,
            flag,
            value,
        ]));
        let bytes = std::fs::read(&sem).unwrap();
        if flag == "--bpp" {
            let budget = value.parse::<f64>().unwrap() * 96.0 * 64.0 / 8.0;
            assert!(bytes.len() as f64 <= budget, "{} bytes over {budget}", bytes.len());
            assert!(bytes.len() as f64 >= 0.9 * budget, "{} bytes of {budget}", bytes.len());
        }
        ok(&semcom(&["decode", s(&sem), "-o", s(&back), "--model", MODEL]));
        let decoded = Picture::load(&back).unwrap();
        // The decoder's picture is the encoder's own reconstruction, sample for sample.
        let frame = SemanticFrame::from_bytes(&bytes[1 + usize::from(bytes[0] >= 0x80)..]).unwrap();
        let code = DigitalCode::from_parts(&frame.params, &frame.payload, 1 << 20).unwrap();
        let own = model.reconstruction(&code).unwrap();
        assert_eq!(psnr(&own, &decoded).unwrap(), f64::INFINITY, "{flag} {value}");
        assert!(psnr(&pic, &decoded).unwrap() > 25.0);
    }
}

#[test]
fn bad_input_gives_clear_errors() {
    let sem = tmp("bad.sem");
    // Not an image.
    let txt = tmp("not-an-image.png");
    std::fs::write(&txt, b"hello, this is text").unwrap();
    assert_fails(
        &semcom(&[
            "encode",
            "--modality",
            "image",
            s(&txt),
            "-o",
            s(&sem),
            "--model",
            MODEL,
        ]),
        "image",
    );
    // A truncated PNG.
    let png = picture(40, 32, 1.0).to_png().unwrap();
    let cut = tmp("cut.png");
    std::fs::write(&cut, &png[..png.len() / 2]).unwrap();
    assert_fails(
        &semcom(&[
            "encode",
            "--modality",
            "image",
            s(&cut),
            "-o",
            s(&sem),
            "--model",
            MODEL,
        ]),
        "image",
    );
    // A zero-size PNG: the width field of IHDR set to 0.
    let mut zero = png.clone();
    zero[16..20].copy_from_slice(&0u32.to_be_bytes());
    let z = tmp("zero.png");
    std::fs::write(&z, &zero).unwrap();
    assert_fails(
        &semcom(&["encode", "--modality", "image", s(&z), "-o", s(&sem), "--model", MODEL]),
        "image",
    );
    // Bad rate settings.
    let good = tmp("good.png");
    std::fs::write(&good, &png).unwrap();
    assert_fails(
        &semcom(&[
            "encode",
            "--modality",
            "image",
            s(&good),
            "-o",
            s(&sem),
            "--model",
            MODEL,
            "--quality",
            "0",
        ]),
        "--quality",
    );
    assert_fails(
        &semcom(&[
            "encode",
            "--modality",
            "image",
            s(&good),
            "-o",
            s(&sem),
            "--model",
            MODEL,
            "--bpp",
            "0",
        ]),
        "--bpp",
    );
    // A corrupt payload: the CRC catches a flipped byte.
    ok(&semcom(&[
        "encode",
        "--modality",
        "image",
        s(&good),
        "-o",
        s(&sem),
        "--model",
        MODEL,
        "--bpp",
        "2",
    ]));
    let mut bytes = std::fs::read(&sem).unwrap();
    let n = bytes.len();
    bytes[n - 10] ^= 0x55;
    let bad = tmp("flipped.sem");
    std::fs::write(&bad, &bytes).unwrap();
    assert_fails(
        &semcom(&["decode", s(&bad), "-o", s(&tmp("o.png")), "--model", MODEL]),
        "CRC",
    );
    // A cut file.
    std::fs::write(&bad, &bytes[..n / 2]).unwrap();
    assert_fails(
        &semcom(&["decode", s(&bad), "-o", s(&tmp("o.png")), "--model", MODEL]),
        "past the end",
    );
}

#[test]
fn a_frame_from_other_weights_is_refused_naming_both_models() {
    // A second model, fitted with the KLT on two small images.
    let dir = tmp("train");
    std::fs::create_dir_all(&dir).unwrap();
    for i in 0..2 {
        picture(64, 48, i as f32)
            .save_png(dir.join(format!("p{i}.png")))
            .unwrap();
    }
    let other = tmp("other.safetensors");
    ok(&semcom(&[
        "train",
        "image-digital",
        "--data",
        s(&dir),
        "--transform",
        "klt",
        "-o",
        s(&other),
    ]));
    assert!(other.with_extension("md").exists());
    let input = tmp("m.png");
    picture(48, 40, 2.0).save_png(&input).unwrap();
    let sem = tmp("m.sem");
    ok(&semcom(&[
        "encode",
        "--modality",
        "image",
        s(&input),
        "-o",
        s(&sem),
        "--model",
        s(&other),
        "--bpp",
        "1",
    ]));
    let out = semcom(&["decode", s(&sem), "-o", s(&tmp("m-back.png")), "--model", MODEL]);
    let shipped = DigitalModel::load(Path::new(concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/../models/image-digital.safetensors"
    )))
    .unwrap()
    .id()
    .to_string();
    let theirs = DigitalModel::load(&other).unwrap().id().to_string();
    assert_fails(&out, &shipped);
    assert_fails(&out, &theirs);
    // Not a digital image model at all.
    assert_fails(
        &semcom(&[
            "decode",
            s(&sem),
            "-o",
            s(&tmp("m-back.png")),
            "--model",
            "models/sensor-har.safetensors",
        ]),
        "not a semcom digital image model",
    );
}

#[test]
fn eval_reports_both_codecs_on_a_small_set() {
    let dir = tmp("eval");
    std::fs::create_dir_all(&dir).unwrap();
    picture(64, 64, 0.5).save_png(dir.join("a.png")).unwrap();
    let out = semcom(&[
        "eval",
        "image-digital",
        "--data",
        s(&dir),
        "--model",
        MODEL,
        "--bpp",
        "1,2",
        "--json",
    ]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let rates = v["rates"].as_array().unwrap();
    assert_eq!(rates.len(), 2);
    for r in rates {
        let target = r["target_bpp"].as_f64().unwrap();
        assert!(r["semcom_bpp"].as_f64().unwrap() <= target);
        assert!(r["semcom_psnr"].as_f64().unwrap() > 20.0);
        assert!(r["jpeg_psnr"].as_f64().unwrap() > 10.0);
    }
}

#[test]
fn eval_image_conceal_beats_blank_on_kodak_photos() {
    let kodak = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../../shared/datasets/kodak"));
    if !kodak.join("kodim01.png").exists() {
        eprintln!("skipping: {} not found", kodak.display());
        return;
    }
    let out = semcom(&[
        "eval",
        "image-conceal",
        "--data",
        s(kodak),
        "--model",
        MODEL,
        "--limit",
        "4",
        "--bpp",
        "0.5",
        "--seeds",
        "1,2",
        "--json",
    ]);
    ok(&out);
    let v: serde_json::Value = serde_json::from_slice(&out.stdout).unwrap();
    let r = &v["rates"][0];
    assert!(r["sliced_bpp"].as_f64().unwrap() <= 0.5);
    assert!(r["dropped_fraction"].as_f64().unwrap() >= 0.1);
    let gain = r["gain_db"].as_f64().unwrap();
    assert!(gain >= 3.0, "concealment gain {gain:.2} dB");
    assert!(r["unsliced_psnr"].as_f64().unwrap() - r["sliced_psnr"].as_f64().unwrap() < 1.0);
}

#[test]
fn eval_image_conceal_refuses_bad_arguments() {
    let dir = tmp("conceal-bad");
    std::fs::create_dir_all(&dir).unwrap();
    picture(32, 32, 0.1).save_png(dir.join("a.png")).unwrap();
    let base = ["eval", "image-conceal", "--data", s(&dir), "--model", MODEL];
    assert_fails(&semcom(&[&base[..], &["--drop", "1.5"]].concat()), "--drop");
    assert_fails(&semcom(&[&base[..], &["--fragment", "0"]].concat()), "--fragment");
    assert_fails(&semcom(&[&base[..], &["--bpp=-1"]].concat()), "--bpp");
    // A small image still runs (one slice per fragment at most).
    ok(&semcom(&[&base[..], &["--bpp", "2", "--seeds", "4"]].concat()));
}
