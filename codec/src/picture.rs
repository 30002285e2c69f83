//! Images as the image codecs see them: planar `f32` samples in `[0, 1]`, grey or RGB, loaded from
//! and written to PNG/JPEG files with typed errors, and the quality figures every image result is
//! reported in (PSNR on 8-bit values).

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

    #[test]
    fn crop_takes_the_window() {
        let p = ramp(8, 4, 3);
        let c = p.crop(2, 1, 3, 2).unwrap();
        assert_eq!(c.plane(1)[0], p.plane(1)[8 + 2]);
        assert!(p.crop(6, 0, 3, 1).is_err());
    }
}
