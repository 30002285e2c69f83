//! The refinement network of the analog image decoder: a small convolutional network that works
//! channels-last at 1/32, 1/16 and 1/8 of the image resolution (block, half block, quarter block) (wide layers where there are few
//! positions) and ends in pixel shuffles, so most of its arithmetic is plain matrix products.
//!
//! Convolutions are written as "shift and stack, then one matrix product" (im2col) rather than
//! with candle's `conv2d`, whose backward pass is slow on CPU; the result is the same operator.

use candle_core::{Module, Result, Tensor, D};
use candle_nn::{linear, Linear, VarBuilder};

/// The last pixel shuffle: from 1/(BLOCK/4) resolution to full resolution.
const OUT_FACTOR: usize = super::BLOCK / 4;

/// Channel widths of the refinement network.
#[derive(Clone, Copy, Debug, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
pub struct NetConfig {
    /// Input channels per block (coefficients + reliability features).
    pub input: usize,
    /// Width at block resolution.
    pub coarse: usize,
    /// Width at half-block resolution.
    pub mid: usize,
    /// Width at quarter-block resolution.
    pub fine: usize,
    /// Residual 3 × 3 convolutions at block, half-block and quarter-block resolution (models
    /// written before this field have one at each).
    #[serde(default = "one_each")]
    pub depth: [usize; 3],
}

/// The most residual convolutions per scale a model may have.
pub const MAX_DEPTH: usize = 16;

fn one_each() -> [usize; 3] {
    [1, 1, 1]
}

/// A 3 × 3 convolution with zero padding, channels-last `(B, H, W, C)`.
#[derive(Debug)]
struct Conv3 {
    lin: Linear,
}

impl Conv3 {
    fn new(cin: usize, cout: usize, vb: VarBuilder) -> Result<Self> {
        Ok(Conv3 {
            lin: linear(9 * cin, cout, vb)?,
        })
    }

    fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let (b, h, w, _) = x.dims4()?;
        let xp = x.pad_with_zeros(1, 1, 1)?.pad_with_zeros(2, 1, 1)?;
        let mut parts = Vec::with_capacity(9);
        for dy in 0..3 {
            let row = xp.narrow(1, dy, h)?;
            for dx in 0..3 {
                parts.push(row.narrow(2, dx, w)?);
            }
        }
        let cols = Tensor::cat(&parts, 3)?;
        let k = cols.dim(3)?;
        let y = self.lin.forward(&cols.reshape((b * h * w, k))?)?;
        y.reshape((b, h, w, ()))
    }
}

/// Depth to space (pixel shuffle), channels-last: `(B, H, W, r·r·C)` → `(B, r·H, r·W, C)`.
pub fn depth_to_space(x: &Tensor, r: usize) -> Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    let co = c / (r * r);
    x.reshape(vec![b, h, w, r, r, co])?
        .permute(vec![0, 1, 3, 2, 4, 5])?
        .contiguous()?
        .reshape((b, h * r, w * r, co))
}

/// Pointwise (1 × 1) layer on a channels-last tensor.
fn pointwise(lin: &Linear, x: &Tensor) -> Result<Tensor> {
    let (b, h, w, c) = x.dims4()?;
    lin.forward(&x.reshape((b * h * w, c))?)?.reshape((b, h, w, ()))
}

/// The refinement network: features per block in, an RGB correction at full resolution
/// out.
#[derive(Debug)]
pub struct Refiner {
    a1: Linear,
    a2: Vec<Conv3>,
    up1: Linear,
    b1: Vec<Conv3>,
    up2: Linear,
    c1: Vec<Conv3>,
    out: Linear,
}

/// `n` residual convolutions of width `c`: the first is called `name`, the others `name_1` …
fn stack(n: usize, c: usize, name: &str, vb: &VarBuilder) -> Result<Vec<Conv3>> {
    (0..n)
        .map(|i| {
            let n = if i == 0 {
                name.to_string()
            } else {
                format!("{name}_{i}")
            };
            Conv3::new(c, c, vb.pp(n))
        })
        .collect()
}

/// `x` through residual convolutions with GELU.
fn residual(convs: &[Conv3], mut x: Tensor) -> Result<Tensor> {
    for c in convs {
        x = (c.forward(&x)?.gelu_erf()? + &x)?;
    }
    Ok(x)
}

impl Refiner {
    /// Builds (or loads, depending on `vb`) the network.
    pub fn new(cfg: &NetConfig, vb: VarBuilder) -> Result<Self> {
        Ok(Refiner {
            a1: linear(cfg.input, cfg.coarse, vb.pp("a1"))?,
            a2: stack(cfg.depth[0], cfg.coarse, "a2", &vb)?,
            up1: linear(cfg.coarse, 4 * cfg.mid, vb.pp("up1"))?,
            b1: stack(cfg.depth[1], cfg.mid, "b1", &vb)?,
            up2: linear(cfg.mid, 4 * cfg.fine, vb.pp("up2"))?,
            c1: stack(cfg.depth[2], cfg.fine, "c1", &vb)?,
            out: linear(cfg.fine, OUT_FACTOR * OUT_FACTOR * 3, vb.pp("out"))?,
        })
    }

    /// `x`: `(B, H/BLOCK, W/BLOCK, input)` → `(B, H, W, 3)`.
    pub fn forward(&self, x: &Tensor) -> Result<Tensor> {
        let a = residual(&self.a2, pointwise(&self.a1, x)?.gelu_erf()?)?;
        let m = residual(&self.b1, depth_to_space(&pointwise(&self.up1, &a)?, 2)?.gelu_erf()?)?;
        let f = residual(&self.c1, depth_to_space(&pointwise(&self.up2, &m)?, 2)?.gelu_erf()?)?;
        depth_to_space(&pointwise(&self.out, &f)?, OUT_FACTOR)
    }
}

/// Mean of every element (flattened; helper for losses).
pub fn mean_all(x: &Tensor) -> Result<Tensor> {
    x.flatten_all()?.mean(D::Minus1)
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn conv3_matches_a_direct_convolution() {
        let dev = Device::Cpu;
        let vm = candle_nn::VarMap::new();
        let vb = VarBuilder::from_varmap(&vm, DType::F32, &dev);
        let conv = Conv3::new(2, 3, vb).unwrap();
        let x = Tensor::arange(0f32, 2.0 * 4.0 * 5.0 * 2.0, &dev)
            .unwrap()
            .reshape((2, 4, 5, 2))
            .unwrap();
        let x = (x * 0.01).unwrap();
        let y = conv.forward(&x).unwrap();
        // The same convolution with candle's conv2d (channels-first, weights reordered).
        let w = conv
            .lin
            .weight()
            .reshape((3, 3, 3, 2))
            .unwrap()
            .permute((0, 3, 1, 2))
            .unwrap();
        let xc = x.permute((0, 3, 1, 2)).unwrap().contiguous().unwrap();
        let r = xc.conv2d(&w.contiguous().unwrap(), 1, 1, 1, 1).unwrap();
        let r = r
            .broadcast_add(&conv.lin.bias().unwrap().reshape((1, 3, 1, 1)).unwrap())
            .unwrap();
        let r = r.permute((0, 2, 3, 1)).unwrap();
        let d = (y - r).unwrap().abs().unwrap().flatten_all().unwrap().max(0).unwrap();
        assert!(d.to_scalar::<f32>().unwrap() < 1e-5);
    }

    #[test]
    fn depth_to_space_places_channels_in_blocks() {
        let dev = Device::Cpu;
        // One position, 4 channels (r = 2, C = 1): channel i goes to (i / 2, i % 2).
        let x = Tensor::new(&[0f32, 1.0, 2.0, 3.0], &dev)
            .unwrap()
            .reshape((1, 1, 1, 4))
            .unwrap();
        let y = depth_to_space(&x, 2)
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1::<f32>()
            .unwrap();
        assert_eq!(y, vec![0.0, 1.0, 2.0, 3.0]);
    }
}
