//! Images as the image codecs see them: planar `f32` samples in `[0, 1]`, grey or RGB, loaded from
//! and written to PNG/JPEG files with typed errors, and the quality figures every image result is
//! reported in (PSNR, SSIM and MS-SSIM on 8-bit values).

use std::path::Path;

use crate::CodecError;

/// An image: `channels` planes (1 = grey, 3 = RGB) of `height × width` samples in `[0, 1]`,
/// row-major, plane after plane.
#[derive(Clone, Debug, PartialEq)]
pub struct Picture {
    width: usize,
    height: usize,
    channels: usize,
    data: Vec<f32>,
}

impl Picture {
    /// An image from planar samples. Errors on a zero size, a channel count other than 1 or 3, a
    /// length that does not match, or a sample that is not finite.
    pub fn new(width: usize, height: usize, channels: usize, data: Vec<f32>) -> Result<Self, CodecError> {
        if width == 0 || height == 0 {
            return Err(CodecError::Input(format!("zero-size image ({width}×{height})")));
        }
        if channels != 1 && channels != 3 {
            return Err(CodecError::Input(format!(
                "{channels} channels: images are grey (1) or RGB (3)"
            )));
        }
        let want = width * height * channels;
        if data.len() != want {
            return Err(CodecError::Input(format!(
                "{width}×{height}×{channels} image needs {want} samples, got {}",
                data.len()
            )));
        }
        if let Some(i) = data.iter().position(|v| !v.is_finite()) {
            return Err(CodecError::Input(format!("image sample {i} is not finite")));
        }
        Ok(Picture {
            width,
            height,
            channels,
            data,
        })
    }

    /// A mid-grey image (every sample 0.5): what a receiver shows for a lost item.
    pub fn grey(width: usize, height: usize, channels: usize) -> Result<Self, CodecError> {
        Self::new(width, height, channels, vec![0.5; width * height * channels])
    }

    /// Decode PNG or JPEG bytes (the format is sniffed). Grey images stay grey; everything else
    /// (palette, alpha, 16 bit) becomes 8-bit RGB.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, CodecError> {
        if bytes.is_empty() {
            return Err(CodecError::Input("empty image file".into()));
        }
        let format = image::guess_format(bytes)
            .map_err(|_| CodecError::Input("not a PNG or JPEG image (unrecognised file signature)".into()))?;
        if !matches!(format, image::ImageFormat::Png | image::ImageFormat::Jpeg) {
            return Err(CodecError::Input(format!(
                "{format:?} images are not supported (PNG or JPEG)"
            )));
        }
        let img = image::load_from_memory_with_format(bytes, format)
            .map_err(|e| CodecError::Input(format!("cannot decode {format:?} image: {e}")))?;
        Self::from_dynamic(img)
    }

    /// Load a PNG or JPEG file.
    pub fn load(path: impl AsRef<Path>) -> Result<Self, CodecError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| CodecError::Io {
            path: path.display().to_string(),
            source,
        })?;
        Self::from_bytes(&bytes).map_err(|e| match e {
            CodecError::Input(m) => CodecError::Input(format!("{}: {m}", path.display())),
            e => e,
        })
    }

    fn from_dynamic(img: image::DynamicImage) -> Result<Self, CodecError> {
        let (w, h) = (img.width() as usize, img.height() as usize);
        let grey = matches!(
            img.color(),
            image::ColorType::L8 | image::ColorType::L16 | image::ColorType::La8
        );
        if grey {
            let l = img.to_luma8();
            let data = l.as_raw().iter().map(|&v| v as f32 / 255.0).collect();
            return Self::new(w, h, 1, data);
        }
        let rgb = img.to_rgb8();
        let raw = rgb.as_raw();
        let mut data = vec![0f32; w * h * 3];
        for (i, px) in raw.chunks_exact(3).enumerate() {
            for c in 0..3 {
                data[c * w * h + i] = px[c] as f32 / 255.0;
            }
        }
        Self::new(w, h, 3, data)
    }

    /// Width in pixels.
    pub fn width(&self) -> usize {
        self.width
    }
    /// Height in pixels.
    pub fn height(&self) -> usize {
        self.height
    }
    /// 1 (grey) or 3 (RGB).
    pub fn channels(&self) -> usize {
        self.channels
    }
    /// Planar samples in `[0, 1]` (values outside are allowed in reconstructions and clamped on
    /// output).
    pub fn data(&self) -> &[f32] {
        &self.data
    }
    /// Mutable planar samples.
    pub fn data_mut(&mut self) -> &mut [f32] {
        &mut self.data
    }
    /// One plane.
    pub fn plane(&self, c: usize) -> &[f32] {
        let n = self.width * self.height;
        &self.data[c * n..(c + 1) * n]
    }
    /// Number of real sample values (width × height × channels).
    pub fn len(&self) -> usize {
        self.data.len()
    }
    /// Never true for a constructed picture (zero sizes are refused); here for completeness.
    pub fn is_empty(&self) -> bool {
        self.data.is_empty()
    }

    /// The samples as 8-bit values, interleaved (RGBRGB… or grey), rounded and clamped.
    pub fn to_u8_interleaved(&self) -> Vec<u8> {
        let n = self.width * self.height;
        let mut out = vec![0u8; n * self.channels];
        for c in 0..self.channels {
            for (i, &v) in self.plane(c).iter().enumerate() {
                out[i * self.channels + c] = to_u8(v);
            }
        }
        out
    }

    /// Round every sample to the nearest 8-bit level (what a PNG of this picture holds).
    pub fn quantised(&self) -> Picture {
        let data = self.data.iter().map(|&v| to_u8(v) as f32 / 255.0).collect();
        Picture { data, ..*self }
    }

    /// A copy of the `w × h` window at `(x, y)`; errors when it does not fit.
    pub fn crop(&self, x: usize, y: usize, w: usize, h: usize) -> Result<Picture, CodecError> {
        if w == 0 || h == 0 || x + w > self.width || y + h > self.height {
            return Err(CodecError::Input(format!(
                "crop {w}×{h} at ({x}, {y}) does not fit a {}×{} image",
                self.width, self.height
            )));
        }
        let mut data = Vec::with_capacity(w * h * self.channels);
        for c in 0..self.channels {
            let p = self.plane(c);
            for r in y..y + h {
                data.extend_from_slice(&p[r * self.width + x..r * self.width + x + w]);
            }
        }
        Picture::new(w, h, self.channels, data)
    }

    /// Encode as PNG.
    pub fn to_png(&self) -> Result<Vec<u8>, CodecError> {
        let mut out = std::io::Cursor::new(Vec::new());
        let color = if self.channels == 1 {
            image::ColorType::L8
        } else {
            image::ColorType::Rgb8
        };
        image::write_buffer_with_format(
            &mut out,
            &self.to_u8_interleaved(),
            self.width as u32,
            self.height as u32,
            color,
            image::ImageFormat::Png,
        )
        .map_err(|e| CodecError::Input(format!("cannot encode PNG: {e}")))?;
        Ok(out.into_inner())
    }

    /// Encode as baseline JPEG at `quality` 1 … 100 (the `image` crate's encoder: YCbCr 4:4:4,
    /// no chroma subsampling, the standard Huffman tables).
    pub fn to_jpeg(&self, quality: u8) -> Result<Vec<u8>, CodecError> {
        if !(1..=100).contains(&quality) {
            return Err(CodecError::Input(format!("JPEG quality {quality}: 1 … 100")));
        }
        let mut out = Vec::new();
        let color = if self.channels == 1 {
            image::ColorType::L8
        } else {
            image::ColorType::Rgb8
        };
        image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, quality)
            .encode(&self.to_u8_interleaved(), self.width as u32, self.height as u32, color)
            .map_err(|e| CodecError::Input(format!("cannot encode JPEG: {e}")))?;
        Ok(out)
    }

    /// Write a PNG file.
    pub fn save_png(&self, path: impl AsRef<Path>) -> Result<(), CodecError> {
        let path = path.as_ref();
        let bytes = self.to_png()?;
        std::fs::write(path, bytes).map_err(|source| CodecError::Io {
            path: path.display().to_string(),
            source,
        })
    }
}

fn to_u8(v: f32) -> u8 {
    (v * 255.0).round().clamp(0.0, 255.0) as u8
}

/// Mean squared error between two pictures of the same shape, on 8-bit values (both are rounded
/// and clamped first, as a viewer would see them), in units of 8-bit levels squared.
pub fn mse_u8(a: &Picture, b: &Picture) -> Result<f64, CodecError> {
    same_shape(a, b)?;
    let sum: f64 = a
        .data
        .iter()
        .zip(&b.data)
        .map(|(&x, &y)| {
            let d = to_u8(x) as f64 - to_u8(y) as f64;
            d * d
        })
        .sum();
    Ok(sum / a.data.len() as f64)
}

/// Peak signal-to-noise ratio in dB on 8-bit values (peak 255), over all channels together;
/// identical pictures give `f64::INFINITY`.
pub fn psnr(a: &Picture, b: &Picture) -> Result<f64, CodecError> {
    let mse = mse_u8(a, b)?;
    Ok(if mse == 0.0 {
        f64::INFINITY
    } else {
        10.0 * (255.0f64 * 255.0 / mse).log10()
    })
}

/// SSIM window: an 11 × 11 Gaussian, σ = 1.5 (separable; taps normalised to sum 1).
const SSIM_RADIUS: usize = 5;
const SSIM_SIGMA: f64 = 1.5;
/// MS-SSIM scale weights (Wang, Simoncelli, Bovik 2003), finest first.
const MS_SSIM_WEIGHTS: [f64; 5] = [0.0448, 0.2856, 0.3001, 0.2363, 0.1333];
const C1: f64 = (0.01 * 255.0) * (0.01 * 255.0);
const C2: f64 = (0.03 * 255.0) * (0.03 * 255.0);

/// A plane of 8-bit values as `f64`.
struct Plane {
    w: usize,
    h: usize,
    v: Vec<f64>,
}

impl Plane {
    fn of(p: &Picture, c: usize) -> Plane {
        Plane {
            w: p.width,
            h: p.height,
            v: p.plane(c).iter().map(|&x| f64::from(to_u8(x))).collect(),
        }
    }

    /// 2 × 2 averages (an odd last row or column is dropped).
    fn half(&self) -> Plane {
        let (w, h) = (self.w / 2, self.h / 2);
        let mut v = Vec::with_capacity(w * h);
        for y in 0..h {
            for x in 0..w {
                let i = 2 * y * self.w + 2 * x;
                v.push(0.25 * (self.v[i] + self.v[i + 1] + self.v[i + self.w] + self.v[i + self.w + 1]));
            }
        }
        Plane { w, h, v }
    }
}

/// Gaussian-weighted means over every window that lies wholly inside the plane ("valid").
fn gauss_valid(v: &[f64], w: usize, h: usize, taps: &[f64]) -> Vec<f64> {
    let n = taps.len();
    let (ow, oh) = (w + 1 - n, h + 1 - n);
    let mut rows = vec![0.0; ow * h];
    for y in 0..h {
        let r = &v[y * w..(y + 1) * w];
        for x in 0..ow {
            rows[y * ow + x] = taps.iter().zip(&r[x..x + n]).map(|(t, s)| t * s).sum();
        }
    }
    let mut out = vec![0.0; ow * oh];
    for y in 0..oh {
        for (t, tap) in taps.iter().enumerate() {
            let src = &rows[(y + t) * ow..(y + t + 1) * ow];
            for (o, s) in out[y * ow..(y + 1) * ow].iter_mut().zip(src) {
                *o += tap * s;
            }
        }
    }
    out
}

/// Mean SSIM and mean contrast-structure term of two planes, over the valid windows.
fn ssim_terms(a: &Plane, b: &Plane) -> (f64, f64) {
    let taps: Vec<f64> = {
        let t: Vec<f64> = (0..=2 * SSIM_RADIUS)
            .map(|i| {
                let d = i as f64 - SSIM_RADIUS as f64;
                (-d * d / (2.0 * SSIM_SIGMA * SSIM_SIGMA)).exp()
            })
            .collect();
        let s: f64 = t.iter().sum();
        t.iter().map(|x| x / s).collect()
    };
    let prod = |f: &dyn Fn(f64, f64) -> f64| -> Vec<f64> { a.v.iter().zip(&b.v).map(|(&x, &y)| f(x, y)).collect() };
    let g = |v: &[f64]| gauss_valid(v, a.w, a.h, &taps);
    let (mx, my) = (g(&a.v), g(&b.v));
    let (xx, yy, xy) = (
        g(&prod(&|x, _| x * x)),
        g(&prod(&|_, y| y * y)),
        g(&prod(&|x, y| x * y)),
    );
    let (mut s_sum, mut cs_sum) = (0.0, 0.0);
    for i in 0..mx.len() {
        let (ux, uy) = (mx[i], my[i]);
        let (vx, vy, cxy) = (xx[i] - ux * ux, yy[i] - uy * uy, xy[i] - ux * uy);
        let cs = (2.0 * cxy + C2) / (vx + vy + C2);
        cs_sum += cs;
        s_sum += cs * (2.0 * ux * uy + C1) / (ux * ux + uy * uy + C1);
    }
    let n = mx.len() as f64;
    (s_sum / n, cs_sum / n)
}

/// Structural similarity (Wang, Bovik, Sheikh, Simoncelli 2004) on 8-bit values (both pictures
/// rounded and clamped first): 11 × 11 Gaussian window with σ = 1.5, K1 = 0.01, K2 = 0.03,
/// L = 255, population (co)variances, averaged over the windows lying wholly inside the image.
/// RGB: the mean of the three channels' SSIM. Equals scikit-image's
/// `structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
/// data_range=255, channel_axis=-1)`. Needs at least 11 × 11 pixels.
pub fn ssim(a: &Picture, b: &Picture) -> Result<f64, CodecError> {
    check_window(a, b, 1)?;
    let sum: f64 = (0..a.channels)
        .map(|c| ssim_terms(&Plane::of(a, c), &Plane::of(b, c)).0)
        .sum();
    Ok(sum / a.channels as f64)
}

/// Multi-scale SSIM (Wang, Simoncelli, Bovik, Asilomar 2003) on 8-bit values: five scales, each
/// after the first a 2 × 2 average of the previous (odd rows and columns dropped); the
/// contrast-structure term at every scale and the luminance term at the coarsest, weighted
/// 0.0448, 0.2856, 0.3001, 0.2363, 0.1333 (finest first), with [`ssim`]'s window and
/// constants. Negative per-scale terms (anti-correlated noise) are clamped to zero, as
/// TensorFlow's `ssim_multiscale` does. RGB: the mean of the three channels' MS-SSIM. Needs at
/// least 176 × 176 pixels (11 at the coarsest scale).
pub fn ms_ssim(a: &Picture, b: &Picture) -> Result<f64, CodecError> {
    check_window(a, b, 16)?;
    let mut total = 0.0;
    for c in 0..a.channels {
        let (mut x, mut y) = (Plane::of(a, c), Plane::of(b, c));
        let mut v = 1.0;
        for (j, &wt) in MS_SSIM_WEIGHTS.iter().enumerate() {
            let (s, cs) = ssim_terms(&x, &y);
            if j + 1 == MS_SSIM_WEIGHTS.len() {
                v *= s.max(0.0).powf(wt);
            } else {
                v *= cs.max(0.0).powf(wt);
                (x, y) = (x.half(), y.half());
            }
        }
        total += v;
    }
    Ok(total / a.channels as f64)
}

fn check_window(a: &Picture, b: &Picture, scale: usize) -> Result<(), CodecError> {
    same_shape(a, b)?;
    let need = (2 * SSIM_RADIUS + 1) * scale;
    if a.width < need || a.height < need {
        return Err(CodecError::Input(format!(
            "{}×{} image is too small: {} needs at least {need}×{need}",
            a.width,
            a.height,
            if scale == 1 { "SSIM" } else { "MS-SSIM" }
        )));
    }
    Ok(())
}

fn same_shape(a: &Picture, b: &Picture) -> Result<(), CodecError> {
    if (a.width, a.height, a.channels) != (b.width, b.height, b.channels) {
        return Err(CodecError::Input(format!(
            "pictures differ in shape: {}×{}×{} vs {}×{}×{}",
            a.width, a.height, a.channels, b.width, b.height, b.channels
        )));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ramp(w: usize, h: usize, c: usize) -> Picture {
        let data = (0..w * h * c).map(|i| (i % 256) as f32 / 255.0).collect();
        Picture::new(w, h, c, data).unwrap()
    }

    #[test]
    fn png_round_trip_is_exact_for_rgb_and_grey() {
        for c in [1, 3] {
            let p = ramp(17, 9, c);
            let back = Picture::from_bytes(&p.to_png().unwrap()).unwrap();
            assert_eq!(back.channels(), c);
            assert_eq!(psnr(&p, &back).unwrap(), f64::INFINITY);
        }
    }

    #[test]
    fn psnr_matches_the_formula() {
        // Every sample off by exactly 5 levels: MSE 25, PSNR = 10 log10(255² / 25) = 34.151 dB.
        let a = Picture::new(4, 4, 1, vec![100.0 / 255.0; 16]).unwrap();
        let b = Picture::new(4, 4, 1, vec![105.0 / 255.0; 16]).unwrap();
        let p = psnr(&a, &b).unwrap();
        assert!((p - 34.1514).abs() < 1e-3, "{p}");
    }

    #[test]
    fn bad_input_is_a_typed_error() {
        assert!(matches!(Picture::from_bytes(b""), Err(CodecError::Input(_))));
        assert!(matches!(
            Picture::from_bytes(b"hello, not an image"),
            Err(CodecError::Input(_))
        ));
        let png = ramp(8, 8, 3).to_png().unwrap();
        let cut = Picture::from_bytes(&png[..png.len() / 2]).unwrap_err();
        assert!(cut.to_string().contains("cannot decode"), "{cut}");
        assert!(Picture::new(0, 4, 3, vec![]).is_err());
        assert!(Picture::new(2, 2, 3, vec![f32::NAN; 12]).is_err());
        assert!(Picture::new(2, 2, 2, vec![0.0; 8]).is_err());
        assert!(psnr(&ramp(2, 2, 1), &ramp(2, 2, 3)).is_err());
    }

    /// Deterministic noise of amplitude ±`amp` levels on every 8-bit sample (interleaved index i:
    /// ((i · 2654435761) mod 2³² >> 16) mod (2·amp + 1) − amp), clamped to 0 … 255.
    fn noisy(p: &Picture, amp: i64) -> Picture {
        let u = p.to_u8_interleaved();
        let (w, h, c) = (p.width, p.height, p.channels);
        let mut data = vec![0f32; u.len()];
        for (i, &v) in u.iter().enumerate() {
            let hash = ((i as u64).wrapping_mul(2_654_435_761) & 0xffff_ffff) >> 16;
            let n = (hash % (2 * amp as u64 + 1)) as i64 - amp;
            data[(i % c) * w * h + i / c] = (i64::from(v) + n).clamp(0, 255) as f32 / 255.0;
        }
        Picture::new(w, h, c, data).unwrap()
    }

    fn kodak(name: &str) -> Option<Picture> {
        let path =
            std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join(format!("../../shared/datasets/kodak/{name}.png"));
        if !path.exists() {
            eprintln!("skipping: {} not found", path.display());
            return None;
        }
        Some(Picture::load(path).unwrap())
    }

    fn green(p: &Picture) -> Picture {
        Picture::new(p.width, p.height, 1, p.plane(1).to_vec()).unwrap()
    }

    /// Against scikit-image 0.26.0, computed with
    /// `python3 -m venv v && v/bin/pip install scikit-image` and
    /// `structural_similarity(a, b, gaussian_weights=True, sigma=1.5, use_sample_covariance=False,
    /// data_range=255, channel_axis=-1)` (and without `channel_axis` on the green plane), `a` the
    /// Kodak PNG read by `skimage.io.imread`, `b` = `noisy(a, amp)` as above (same formula in
    /// numpy). Reference values: kodim01 ±20: RGB 0.741869, green 0.748359; kodim23 ±6: RGB
    /// 0.880430, green 0.878846.
    #[test]
    fn ssim_matches_scikit_image() {
        for (name, amp, rgb, grey) in [("kodim01", 20, 0.741869, 0.748359), ("kodim23", 6, 0.880430, 0.878846)] {
            let Some(a) = kodak(name) else { return };
            let b = noisy(&a, amp);
            let s = ssim(&a, &b).unwrap();
            assert!((s - rgb).abs() < 1e-3, "{name} RGB: {s} vs {rgb}");
            let g = ssim(&green(&a), &green(&b)).unwrap();
            assert!((g - grey).abs() < 1e-3, "{name} green: {g} vs {grey}");
        }
    }

    #[test]
    fn ms_ssim_is_one_for_identical_images_and_falls_with_noise() {
        // A synthetic textured image (no data needed): smooth gradients plus a checker pattern.
        let (w, h) = (200, 180);
        let data = (0..3 * w * h)
            .map(|i| {
                let (c, x, y) = (i / (w * h), i % w, (i / w) % h);
                let t = 0.3 + 0.3 * ((x as f32 / 17.0).sin() * (y as f32 / 11.0 + c as f32).cos());
                t + if (x / 8 + y / 8) % 2 == 0 { 0.2 } else { 0.0 }
            })
            .collect();
        let a = Picture::new(w, h, 3, data).unwrap();
        assert!((ms_ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
        assert!((ssim(&a, &a).unwrap() - 1.0).abs() < 1e-12);
        let mut last = 1.0;
        for amp in [2, 5, 10, 20, 40, 80] {
            let m = ms_ssim(&a, &noisy(&a, amp)).unwrap();
            assert!(m < last && m > 0.0, "±{amp}: MS-SSIM {m} after {last}");
            last = m;
        }
        // Symmetric, and grey works too.
        let b = noisy(&a, 10);
        assert!((ms_ssim(&a, &b).unwrap() - ms_ssim(&b, &a).unwrap()).abs() < 1e-12);
        assert!(ms_ssim(&green(&a), &green(&b)).unwrap() < 1.0);
        // Too small, or shapes that differ: a typed error.
        let small = a.crop(0, 0, 170, 170).unwrap();
        assert!(matches!(ms_ssim(&small, &small), Err(CodecError::Input(_))));
        assert!(ssim(&small, &small).is_ok());
        assert!(ssim(&a.crop(0, 0, 10, 30).unwrap(), &a.crop(0, 0, 10, 30).unwrap()).is_err());
        assert!(ssim(&a, &green(&a)).is_err());
    }

    #[test]
    fn jpeg_round_trip_improves_with_quality() {
        let p = ramp(64, 48, 3);
        let (lo, hi) = (p.to_jpeg(10).unwrap(), p.to_jpeg(95).unwrap());
        assert!(lo.len() < hi.len());
        let (a, b) = (Picture::from_bytes(&lo).unwrap(), Picture::from_bytes(&hi).unwrap());
        assert!(psnr(&p, &a).unwrap() < psnr(&p, &b).unwrap());
        assert_eq!(
            Picture::from_bytes(&ramp(9, 7, 1).to_jpeg(50).unwrap())
                .unwrap()
                .channels(),
            1
        );
        assert!(p.to_jpeg(0).is_err() && p.to_jpeg(101).is_err());
    }

    #[test]
    fn crop_takes_the_window() {
        let p = ramp(8, 4, 3);
        let c = p.crop(2, 1, 3, 2).unwrap();
        assert_eq!(c.plane(1)[0], p.plane(1)[8 + 2]);
        assert!(p.crop(6, 0, 3, 1).is_err());
    }
}
