//! Checkpoints: named tensors, their content hash, and a small self-describing file format.
//!
//! A checkpoint's identity is [`content_hash`]: blake3 over a canonical encoding of its tensors,
//! never over file bytes. Model tensors carry the names of `ModelConfig::tensor_shapes`
//! (`"blocks.0.attn.wq.weight"`, ...); optimizer state saved beside them carries the `"adam."`
//! prefix (see `model::optim`), which [`load_named`] skips.
//!
//! File layout ([`encode`] / [`decode`]), all integers little-endian:
//! ```text
//! magic            8 bytes  "R1LCKPT1"
//! header_len       u64
//! header           header_len bytes of JSON:
//!                  { "format": "r1lab-checkpoint", "version": 1, "content_hash": "<hex>",
//!                    "tensors": [{ "name", "dtype", "shape", "offset", "nbytes" }, ...],
//!                    "extra": <caller's JSON: config, vocabulary, step, ...> }
//! data             the tensors' f32 values, row-major, in name order, back to back
//! ```
//! Encoding is deterministic (JSON object keys sorted), and [`decode`] refuses a file whose
//! tensors no longer hash to the header's `content_hash`.

use std::collections::{BTreeMap, BTreeSet};

use burn::module::{Module, ModuleVisitor, Param};
use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::config::ModelConfig;
use super::transformer::Transformer;

/// The only dtype stored today.
pub const F32: &str = "f32";

/// Names with this prefix hold optimizer state, not model weights.
pub const OPTIMIZER_PREFIX: &str = "adam.";

const MAGIC: &[u8; 8] = b"R1LCKPT1";
const FORMAT: &str = "r1lab-checkpoint";
const VERSION: u32 = 1;
const HASH_DOMAIN: &[u8] = b"r1lab/tensors/v1\0";

/// One tensor, host side: row-major f32 values.
#[derive(Debug, Clone, PartialEq)]
pub struct NamedTensor {
    pub name: String,
    pub shape: Vec<usize>,
    pub dtype: String,
    pub data: Vec<f32>,
}

impl NamedTensor {
    pub fn f32(name: impl Into<String>, shape: Vec<usize>, data: Vec<f32>) -> NamedTensor {
        assert_eq!(
            shape.iter().product::<usize>(),
            data.len(),
            "shape and data disagree"
        );
        NamedTensor {
            name: name.into(),
            shape,
            dtype: F32.to_string(),
            data,
        }
    }

    /// Read a float tensor off its device (autodiff or not).
    pub fn from_tensor<const D: usize>(name: impl Into<String>, tensor: &Tensor<D>) -> NamedTensor {
        let shape = tensor.dims().to_vec();
        let data = tensor
            .to_data()
            .try_into_vec_as::<f32>()
            .expect("float tensor converts to f32");
        NamedTensor::f32(name, shape, data)
    }

    /// A tensor on `device`. Panics if the rank is not `D`.
    pub fn to_tensor<const D: usize>(&self, device: &Device) -> Tensor<D> {
        assert_eq!(
            self.shape.len(),
            D,
            "tensor `{}` has rank {}",
            self.name,
            self.shape.len()
        );
        Tensor::from_data(
            TensorData::new(self.data.clone(), self.shape.clone()),
            device,
        )
    }
}

/// Why a checkpoint was refused.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum CheckpointError {
    #[error("not an R1 Lab checkpoint (bad magic bytes)")]
    BadMagic,
    #[error("malformed checkpoint: {0}")]
    Malformed(String),
    #[error("checkpoint content hash mismatch: expected {expected}, the tensors hash to {actual}")]
    HashMismatch { expected: String, actual: String },
    #[error("checkpoint lacks tensor `{name}`")]
    MissingTensor { name: String },
    #[error("checkpoint has tensor `{name}`, which the model does not have")]
    UnexpectedTensor { name: String },
    #[error("tensor `{name}` has shape {actual:?}, expected {expected:?}")]
    ShapeMismatch {
        name: String,
        expected: Vec<usize>,
        actual: Vec<usize>,
    },
    #[error("tensor `{name}` has dtype `{dtype}`; only f32 is supported")]
    UnsupportedDtype { name: String, dtype: String },
    #[error("invalid model config: {}", describe(.0))]
    InvalidConfig(Vec<(String, String)>),
}

fn describe(problems: &[(String, String)]) -> String {
    let parts: Vec<String> = problems.iter().map(|(f, r)| format!("`{f}` {r}")).collect();
    parts.join("; ")
}

/// Every float parameter of `module`, named by its path (`"blocks.0.attn.wq.weight"`), sorted.
pub fn named_tensors<M: Module>(module: &M) -> Vec<NamedTensor> {
    let mut collector = Collector::default();
    module.visit(&mut collector);
    let mut out = collector.out;
    out.sort_by(|a, b| a.name.cmp(&b.name));
    out
}

#[derive(Default)]
struct Collector {
    path: Vec<String>,
    out: Vec<NamedTensor>,
}

impl ModuleVisitor for Collector {
    fn enter_module(&mut self, name: &str, _container_type: &str) {
        self.path.push(name.to_string());
    }
    fn exit_module(&mut self, _name: &str, _container_type: &str) {
        self.path.pop();
    }
    fn visit_float<const D: usize>(&mut self, param: &Param<Tensor<D>>) {
        self.out
            .push(NamedTensor::from_tensor(self.path.join("."), &param.val()));
    }
}

/// blake3 (hex) of the canonical encoding: a domain tag, the tensor count, then for each tensor
/// in name order: name, dtype, rank, each dimension, the byte length and the little-endian bytes
/// of its values; every string and count length-prefixed as a u64 LE.
pub fn content_hash(tensors: &[NamedTensor]) -> String {
    let mut sorted: Vec<&NamedTensor> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut hasher = blake3::Hasher::new();
    let u64le = |h: &mut blake3::Hasher, x: usize| {
        h.update(&(x as u64).to_le_bytes());
    };
    hasher.update(HASH_DOMAIN);
    u64le(&mut hasher, sorted.len());
    for t in sorted {
        u64le(&mut hasher, t.name.len());
        hasher.update(t.name.as_bytes());
        u64le(&mut hasher, t.dtype.len());
        hasher.update(t.dtype.as_bytes());
        u64le(&mut hasher, t.shape.len());
        for &dim in &t.shape {
            u64le(&mut hasher, dim);
        }
        u64le(&mut hasher, t.data.len() * 4);
        hasher.update(&f32_bytes(&t.data));
    }
    hasher.finalize().to_hex().to_string()
}

/// Refuse `tensors` unless they hash to `expected`.
pub fn verify_content_hash(tensors: &[NamedTensor], expected: &str) -> Result<(), CheckpointError> {
    let actual = content_hash(tensors);
    if actual == expected {
        Ok(())
    } else {
        Err(CheckpointError::HashMismatch {
            expected: expected.to_string(),
            actual,
        })
    }
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Header {
    format: String,
    version: u32,
    content_hash: String,
    tensors: Vec<Entry>,
    extra: serde_json::Value,
}

#[derive(Serialize, Deserialize)]
#[serde(deny_unknown_fields)]
struct Entry {
    name: String,
    dtype: String,
    shape: Vec<usize>,
    offset: u64,
    nbytes: u64,
}

/// The checkpoint file for `tensors` (any order; stored sorted) plus `extra` metadata.
///
/// # Panics
/// On duplicate names, a dtype other than f32, or data that disagrees with its shape.
pub fn encode(tensors: &[NamedTensor], extra: &serde_json::Value) -> Vec<u8> {
    let mut sorted: Vec<&NamedTensor> = tensors.iter().collect();
    sorted.sort_by(|a, b| a.name.cmp(&b.name));
    let mut entries = Vec::with_capacity(sorted.len());
    let mut offset = 0u64;
    for (i, t) in sorted.iter().enumerate() {
        assert!(
            i == 0 || sorted[i - 1].name != t.name,
            "duplicate tensor `{}`",
            t.name
        );
        assert_eq!(t.dtype, F32, "tensor `{}`: only f32 is supported", t.name);
        assert_eq!(
            t.shape.iter().product::<usize>(),
            t.data.len(),
            "tensor `{}`: shape and data disagree",
            t.name
        );
        let nbytes = t.data.len() as u64 * 4;
        entries.push(Entry {
            name: t.name.clone(),
            dtype: t.dtype.clone(),
            shape: t.shape.clone(),
            offset,
            nbytes,
        });
        offset += nbytes;
    }
    let header = Header {
        format: FORMAT.to_string(),
        version: VERSION,
        content_hash: content_hash(tensors),
        tensors: entries,
        extra: extra.clone(),
    };
    let header = serde_json::to_vec(&header).expect("header serialises");
    let mut out = Vec::with_capacity(16 + header.len() + offset as usize);
    out.extend_from_slice(MAGIC);
    out.extend_from_slice(&(header.len() as u64).to_le_bytes());
    out.extend_from_slice(&header);
    for t in sorted {
        out.extend_from_slice(&f32_bytes(&t.data));
    }
    out
}

/// Read a checkpoint file: its tensors (sorted by name) and its extra metadata. Refuses a file
/// whose tensors do not hash to the `content_hash` recorded in its header.
pub fn decode(bytes: &[u8]) -> Result<(Vec<NamedTensor>, serde_json::Value), CheckpointError> {
    let malformed = CheckpointError::Malformed;
    if bytes.len() < 16 || bytes[..8] != MAGIC[..] {
        return Err(CheckpointError::BadMagic);
    }
    let header_len = u64::from_le_bytes(bytes[8..16].try_into().expect("8 bytes"));
    let header_end = 16u64
        .checked_add(header_len)
        .filter(|&end| end <= bytes.len() as u64)
        .ok_or_else(|| malformed(format!("header of {header_len} bytes runs past the end")))?
        as usize;
    let header: Header = serde_json::from_slice(&bytes[16..header_end])
        .map_err(|e| malformed(format!("header: {e}")))?;
    if header.format != FORMAT || header.version != VERSION {
        return Err(malformed(format!(
            "format {} version {}, expected {FORMAT} version {VERSION}",
            header.format, header.version
        )));
    }
    let data = &bytes[header_end..];
    let mut tensors = Vec::with_capacity(header.tensors.len());
    let mut offset = 0u64;
    for entry in &header.tensors {
        if let Some(previous) = tensors.last().map(|t: &NamedTensor| &t.name) {
            if *previous >= entry.name {
                return Err(malformed(format!(
                    "tensor names not strictly sorted at `{}`",
                    entry.name
                )));
            }
        }
        if entry.dtype != F32 {
            return Err(CheckpointError::UnsupportedDtype {
                name: entry.name.clone(),
                dtype: entry.dtype.clone(),
            });
        }
        let count = entry
            .shape
            .iter()
            .try_fold(1usize, |acc, &d| acc.checked_mul(d))
            .ok_or_else(|| malformed(format!("tensor `{}`: shape overflows", entry.name)))?;
        let expected_bytes = (count as u64)
            .checked_mul(4)
            .ok_or_else(|| malformed(format!("tensor `{}`: shape overflows", entry.name)))?;
        if entry.offset != offset || entry.nbytes != expected_bytes {
            return Err(malformed(format!(
                "tensor `{}`: offset {} / {} bytes, expected {offset} / {expected_bytes}",
                entry.name, entry.offset, entry.nbytes,
            )));
        }
        let end = offset
            .checked_add(entry.nbytes)
            .filter(|&end| end <= data.len() as u64)
            .ok_or_else(|| malformed(format!("tensor `{}` runs past the end", entry.name)))?;
        let values = data[offset as usize..end as usize]
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes(b.try_into().expect("4 bytes")))
            .collect();
        tensors.push(NamedTensor::f32(
            entry.name.clone(),
            entry.shape.clone(),
            values,
        ));
        offset = end;
    }
    if offset != data.len() as u64 {
        return Err(malformed(format!(
            "{} trailing bytes after the tensors",
            data.len() as u64 - offset
        )));
    }
    verify_content_hash(&tensors, &header.content_hash)?;
    Ok((tensors, header.extra))
}

/// [`decode`], also requiring the content hash the caller expects (the store's record).
pub fn decode_expecting(
    bytes: &[u8],
    expected_hash: &str,
) -> Result<(Vec<NamedTensor>, serde_json::Value), CheckpointError> {
    let (tensors, extra) = decode(bytes)?;
    verify_content_hash(&tensors, expected_hash)?;
    Ok((tensors, extra))
}

/// A model built from named tensors. Every tensor of `config` must be present with its exact
/// shape; optimizer tensors (`"adam."` prefix) are skipped; any other name is refused.
pub fn load_named(
    config: &ModelConfig,
    tensors: &[NamedTensor],
    device: &Device,
) -> Result<Transformer, CheckpointError> {
    config.validate().map_err(CheckpointError::InvalidConfig)?;
    let mut by_name: BTreeMap<&str, &NamedTensor> = BTreeMap::new();
    for t in tensors
        .iter()
        .filter(|t| !t.name.starts_with(OPTIMIZER_PREFIX))
    {
        if by_name.insert(&t.name, t).is_some() {
            return Err(CheckpointError::Malformed(format!(
                "duplicate tensor `{}`",
                t.name
            )));
        }
    }
    let expected: BTreeSet<String> = config.tensor_shapes().into_iter().map(|(n, _)| n).collect();
    if let Some(name) = by_name.keys().find(|n| !expected.contains(**n)) {
        return Err(CheckpointError::UnexpectedTensor {
            name: name.to_string(),
        });
    }
    Transformer::build(config, device, &mut |name, shape| {
        let t = by_name
            .get(name)
            .ok_or_else(|| CheckpointError::MissingTensor {
                name: name.to_string(),
            })?;
        check_tensor(t, shape)?;
        Ok(t.data.clone())
    })
}

/// `t` is f32, has `shape`, and as many values as the shape says.
pub(crate) fn check_tensor(t: &NamedTensor, shape: &[usize]) -> Result<(), CheckpointError> {
    if t.dtype != F32 {
        return Err(CheckpointError::UnsupportedDtype {
            name: t.name.clone(),
            dtype: t.dtype.clone(),
        });
    }
    if t.shape != shape {
        return Err(CheckpointError::ShapeMismatch {
            name: t.name.clone(),
            expected: shape.to_vec(),
            actual: t.shape.clone(),
        });
    }
    if t.data.len() != shape.iter().product::<usize>() {
        return Err(CheckpointError::Malformed(format!(
            "tensor `{}` has {} values for shape {:?}",
            t.name,
            t.data.len(),
            t.shape
        )));
    }
    Ok(())
}

fn f32_bytes(values: &[f32]) -> Vec<u8> {
    values.iter().flat_map(|v| v.to_le_bytes()).collect()
}
