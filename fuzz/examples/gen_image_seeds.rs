//! Seed corpus for the `image_digital_payload` target: real codes of small images (grey and
//! colour, several sizes and steps) in the target's input layout (parameter length, parameters,
//! payload), written to `corpus/image_digital_payload/`.

use semcom_codec::image::digital::DigitalModel;
use semcom_codec::picture::Picture;

fn main() {
    let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("corpus/image_digital_payload");
    std::fs::create_dir_all(&dir).expect("corpus directory");
    let m = DigitalModel::dct();
    let mut n = 0;
    for (w, h, c) in [(8, 8, 3), (17, 9, 1), (24, 16, 3), (40, 33, 3)] {
        let data = (0..w * h * c)
            .map(|i| (((i * 37) % 251) as f32 / 250.0 * 0.5 + ((i % w) as f32 / w as f32) * 0.5).min(1.0))
            .collect();
        let pic = Picture::new(w, h, c, data).expect("valid picture");
        for step in [0, 60, 160, 480] {
            let code = m.encode(&pic, step).expect("encodes");
            let p = code.params();
            let mut input = vec![p.len() as u8];
            input.extend_from_slice(&p);
            input.extend_from_slice(&code.payload);
            std::fs::write(dir.join(format!("seed-{w}x{h}x{c}-{step}")), input).expect("write seed");
            n += 1;
        }
    }
    println!("wrote {n} seeds to {}", dir.display());
}
