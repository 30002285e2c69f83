//! The file format of the sensor and image models: safetensors of little-endian f32 tensors with
//! one metadata key whose value is the model's config as JSON. One key, because safetensors writes
//! the metadata map in hash order: with two, the same model could be written as different bytes.

use std::collections::HashMap;

use serde::de::DeserializeOwned;
use serde::Serialize;

use crate::CodecError;

/// Serialises `tensors` (name, shape, values) with `config` as JSON under metadata `key`.
pub fn to_bytes<C: Serialize>(
    key: &str,
    config: &C,
    tensors: &[(String, Vec<usize>, &[f32])],
) -> Result<Vec<u8>, CodecError> {
    let backend = |e: &dyn std::fmt::Display| CodecError::Backend(e.to_string());
    let bytes: Vec<(&String, &Vec<usize>, Vec<u8>)> = tensors
        .iter()
        .map(|(n, s, v)| (n, s, v.iter().flat_map(|x| x.to_le_bytes()).collect()))
        .collect();
    let views = bytes
        .iter()
        .map(|(n, s, b)| {
            safetensors::tensor::TensorView::new(safetensors::Dtype::F32, s.to_vec(), b)
                .map(|v| (n.to_string(), v))
                .map_err(|e| backend(&e))
        })
        .collect::<Result<Vec<_>, _>>()?;
    let meta: HashMap<String, String> =
        [(key.to_string(), serde_json::to_string(config).map_err(|e| backend(&e))?)].into();
    safetensors::serialize(views, Some(meta)).map_err(|e| backend(&e))
}

/// The tensors of a model file, by name: shape and values.
#[derive(Debug)]
pub struct Tensors {
    path: String,
    map: HashMap<String, (Vec<usize>, Vec<f32>)>,
}

impl Tensors {
    /// Every tensor, by name.
    pub fn into_map(self) -> HashMap<String, (Vec<usize>, Vec<f32>)> {
        self.map
    }

    /// The values of tensor `name`; an error naming the file when it is missing.
    pub fn get(&self, name: &str) -> Result<Vec<f32>, CodecError> {
        self.map
            .get(name)
            .map(|(_, v)| v.clone())
            .ok_or_else(|| bad(&self.path, format!("tensor {name} missing")))
    }

    /// As [`Tensors::get`], and the tensor must hold exactly `len` values.
    pub fn get_len(&self, name: &str, len: usize) -> Result<Vec<f32>, CodecError> {
        let v = self.get(name)?;
        if v.len() != len {
            return Err(bad(
                &self.path,
                format!("tensor {name} has {} values, expected {len}", v.len()),
            ));
        }
        Ok(v)
    }
}

/// A model-file error naming the file.
pub fn bad(path: &str, reason: String) -> CodecError {
    CodecError::Model {
        path: path.to_string(),
        reason,
    }
}

/// Reads a model file's bytes: the config under metadata `key` and every tensor (all must be
/// f32). `kind` names the model in the error for a file without that key ("not a semcom {kind}
/// model …"); `path` names the file in every error.
pub fn from_bytes<C: DeserializeOwned>(
    bytes: &[u8],
    path: &str,
    key: &str,
    kind: &str,
) -> Result<(C, Tensors), CodecError> {
    let (_, meta) = safetensors::SafeTensors::read_metadata(bytes)
        .map_err(|e| bad(path, format!("not a safetensors file: {e}")))?;
    let meta = meta.metadata().clone().unwrap_or_default();
    let json = meta.get(key).ok_or_else(|| {
        bad(
            path,
            format!("not a semcom {kind} model (no `{key}` metadata; a text prior or another file?)"),
        )
    })?;
    let config: C = serde_json::from_str(json).map_err(|e| bad(path, format!("config: {e}")))?;
    let st = safetensors::SafeTensors::deserialize(bytes).map_err(|e| bad(path, format!("tensors: {e}")))?;
    let mut map = HashMap::new();
    for (name, view) in st.tensors() {
        if view.dtype() != safetensors::Dtype::F32 {
            return Err(bad(path, format!("tensor {name} is not f32")));
        }
        let v = view
            .data()
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect();
        map.insert(name, (view.shape().to_vec(), v));
    }
    Ok((
        config,
        Tensors {
            path: path.to_string(),
            map,
        },
    ))
}

#[cfg(test)]
mod tests {
    use std::path::Path;

    fn shipped(name: &str) -> (std::path::PathBuf, Vec<u8>) {
        let p = Path::new(concat!(env!("CARGO_MANIFEST_DIR"), "/../models")).join(name);
        let b = std::fs::read(&p).unwrap_or_else(|e| panic!("{}: {e}", p.display()));
        (p, b)
    }

    #[test]
    fn shipped_models_serialise_back_to_their_own_bytes() {
        // The model id is the hash of the file, so writing a loaded model must give the same bytes.
        let (p, b) = shipped("sensor-har.safetensors");
        assert_eq!(crate::sensor::SensorModel::load(&p).unwrap().to_bytes().unwrap(), b);
        let (p, b) = shipped("image-digital.safetensors");
        assert_eq!(
            crate::image::digital::DigitalModel::load(&p)
                .unwrap()
                .to_bytes()
                .unwrap(),
            b
        );
        let (p, b) = shipped("image-jscc.safetensors");
        assert_eq!(crate::image::AnalogJscc::load(&p).unwrap().to_bytes().unwrap(), b);
    }

    #[test]
    fn a_model_file_of_another_kind_is_named() {
        let (_, b) = shipped("sensor-har.safetensors");
        let e = super::from_bytes::<serde_json::Value>(&b, "x", "semcom.image", "image").unwrap_err();
        assert!(e.to_string().contains("not a semcom image model"), "{e}");
    }
}
