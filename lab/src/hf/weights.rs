//! The tensors of a model directory: `model.safetensors`, or the shards that
//! `model.safetensors.index.json` maps, read in place (a file is read once and never copied into
//! the object store) and converted to `f32` (bf16 and f16 checkpoints widen exactly).

use std::collections::BTreeMap;
use std::path::{Path, PathBuf};

use safetensors::{Dtype, SafeTensors};

use super::HfError;

/// One tensor: its shape and row-major `f32` values.
#[derive(Debug, Clone, PartialEq)]
pub struct HfTensor {
    pub shape: Vec<usize>,
    pub values: Vec<f32>,
}

/// Every tensor of a model by name, and the content hash of all of them.
#[derive(Debug)]
pub struct HfWeights {
    pub tensors: BTreeMap<String, HfTensor>,
    /// blake3 over each tensor's name, dtype, shape and stored bytes, in name order: the same
    /// weights stored in other shards or another file order hash alike.
    pub content_hash: String,
}

impl HfWeights {
    /// Reads the weights of `dir`.
    pub fn read(dir: &Path) -> Result<HfWeights, HfError> {
        let stored = stored_tensors(dir)?;
        let content_hash = hash_of(&stored);
        let mut tensors = BTreeMap::new();
        for (name, (path, dtype, shape, data)) in stored {
            let values = widen(dtype, &data).ok_or_else(|| HfError::Weights {
                path,
                message: format!("tensor `{name}` is {dtype:?}; F32, BF16 and F16 are read"),
            })?;
            tensors.insert(name, HfTensor { shape, values });
        }
        Ok(HfWeights {
            tensors,
            content_hash,
        })
    }

    /// The [`HfWeights::content_hash`] of `dir`'s weights, without converting them.
    pub fn content_hash_of(dir: &Path) -> Result<String, HfError> {
        Ok(hash_of(&stored_tensors(dir)?))
    }

    /// Takes the tensor `name`, which must have `shape`.
    pub fn take(&mut self, name: &str, shape: &[usize]) -> Result<Vec<f32>, HfError> {
        let tensor = self
            .tensors
            .remove(name)
            .ok_or_else(|| HfError::MissingTensor { name: name.into() })?;
        if tensor.shape != shape {
            return Err(HfError::TensorShape {
                name: name.into(),
                expected: shape.to_vec(),
                found: tensor.shape,
            });
        }
        Ok(tensor.values)
    }
}

/// Each stored tensor by name: the file it is in, its dtype, shape and bytes.
type Stored = BTreeMap<String, (PathBuf, Dtype, Vec<usize>, Vec<u8>)>;

fn stored_tensors(dir: &Path) -> Result<Stored, HfError> {
    let mut stored = Stored::new();
    for path in weight_files(dir)? {
        let bytes = std::fs::read(&path).map_err(|source| HfError::Io {
            path: path.clone(),
            source,
        })?;
        let file = SafeTensors::deserialize(&bytes).map_err(|e| HfError::Weights {
            path: path.clone(),
            message: e.to_string(),
        })?;
        for (name, view) in file.tensors() {
            stored.insert(
                name,
                (
                    path.clone(),
                    view.dtype(),
                    view.shape().to_vec(),
                    view.data().to_vec(),
                ),
            );
        }
    }
    Ok(stored)
}

/// blake3 over each tensor's name, dtype, shape and bytes, in name order.
fn hash_of(stored: &Stored) -> String {
    let mut hasher = blake3::Hasher::new();
    for (name, (_, dtype, shape, data)) in stored {
        hasher.update(format!("{name}\t{dtype:?}\t{shape:?}\n").as_bytes());
        hasher.update(data);
    }
    hasher.finalize().to_hex().to_string()
}

/// `model.safetensors`, or every shard named by `model.safetensors.index.json`.
fn weight_files(dir: &Path) -> Result<Vec<PathBuf>, HfError> {
    let single = dir.join("model.safetensors");
    if single.exists() {
        return Ok(vec![single]);
    }
    let index = dir.join("model.safetensors.index.json");
    let text = std::fs::read_to_string(&index).map_err(|source| HfError::Io {
        path: index.clone(),
        source,
    })?;
    let json: serde_json::Value = serde_json::from_str(&text).map_err(|e| HfError::Weights {
        path: index.clone(),
        message: e.to_string(),
    })?;
    let map = json
        .get("weight_map")
        .and_then(|m| m.as_object())
        .ok_or_else(|| HfError::Weights {
            path: index.clone(),
            message: "no `weight_map` object".into(),
        })?;
    let mut shards: Vec<PathBuf> = map
        .values()
        .filter_map(|f| f.as_str())
        .map(|f| dir.join(f))
        .collect();
    shards.sort();
    shards.dedup();
    Ok(shards)
}

/// Little-endian stored values as `f32`; `None` for dtypes that are not floats read here.
fn widen(dtype: Dtype, data: &[u8]) -> Option<Vec<f32>> {
    let halves = |f: fn(u16) -> f32| {
        data.chunks_exact(2)
            .map(|b| f(u16::from_le_bytes([b[0], b[1]])))
            .collect()
    };
    match dtype {
        Dtype::F32 => Some(
            data.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
        ),
        // bfloat16 is the top half of an f32.
        Dtype::BF16 => Some(halves(|h| f32::from_bits(u32::from(h) << 16))),
        Dtype::F16 => Some(halves(f16_to_f32)),
        _ => None,
    }
}

/// IEEE half precision to single, exactly (subnormals, infinities and NaN included).
fn f16_to_f32(h: u16) -> f32 {
    let sign = u32::from(h >> 15) << 31;
    let exponent = u32::from((h >> 10) & 0x1f);
    let mantissa = u32::from(h & 0x3ff);
    let bits = match (exponent, mantissa) {
        (0, 0) => sign,
        (0, m) => {
            // Subnormal: normalise the mantissa.
            let shift = m.leading_zeros() - 21;
            sign | ((113 - shift) << 23) | (((m << shift) & 0x3ff) << 13)
        }
        (0x1f, m) => sign | 0x7f80_0000 | (m << 13),
        (e, m) => sign | ((e + 112) << 23) | (m << 13),
    };
    f32::from_bits(bits)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn halves_widen_exactly() {
        assert_eq!(f16_to_f32(0x3c00), 1.0);
        assert_eq!(f16_to_f32(0xc000), -2.0);
        assert_eq!(f16_to_f32(0x7bff), 65504.0);
        assert_eq!(f16_to_f32(0x0001), 2f32.powi(-24));
        assert_eq!(f16_to_f32(0x0200), 2f32.powi(-15));
        assert!(f16_to_f32(0x7c00).is_infinite());
        assert!(f16_to_f32(0x7e00).is_nan());
        assert_eq!(widen(Dtype::BF16, &[0x80, 0x3f]).unwrap(), [1.0]);
        assert_eq!(widen(Dtype::I64, &[0; 8]), None);
    }
}
