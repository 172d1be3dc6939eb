//! Per-layer keys and values of the positions already run, for generation without recomputation.

use burn::prelude::*;

/// One layer's cached keys (already rotated) and values, `[batch, heads, len, head_dim]`.
#[derive(Debug, Clone)]
pub(crate) struct LayerKv {
    pub(crate) k: Tensor<4>,
    pub(crate) v: Tensor<4>,
}

/// Keys and values of every layer for the positions `0..len()` of each row in a batch.
/// Filled by [`super::Transformer::forward_cached`]; all rows share the same length (prompts
/// batched together must have equal length, see the transformer's module docs).
#[derive(Debug, Clone)]
pub struct KvCache {
    pub(crate) layers: Vec<Option<LayerKv>>,
    pub(crate) len: usize,
    pub(crate) batch: usize,
}

impl KvCache {
    /// An empty cache for a model with `n_layers` blocks (or use `Transformer::new_cache`).
    pub fn new(n_layers: usize) -> KvCache {
        KvCache {
            layers: vec![None; n_layers],
            len: 0,
            batch: 0,
        }
    }

    /// Positions cached per row.
    pub fn len(&self) -> usize {
        self.len
    }

    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Rows cached (0 while empty).
    pub fn batch_size(&self) -> usize {
        self.batch
    }

    /// A cache whose rows are `rows` of this one, in that order (repeats allowed). Useful to
    /// drop finished rows from a batch, or to fan a prompt out.
    ///
    /// # Panics
    /// If a row index is out of range.
    pub fn select_rows(&self, rows: &[usize]) -> KvCache {
        for &row in rows {
            assert!(
                row < self.batch,
                "row {row} out of range for a cache of {} rows",
                self.batch
            );
        }
        let layers = self
            .layers
            .iter()
            .map(|layer| {
                layer.as_ref().map(|kv| {
                    let device = kv.k.device();
                    let ids: Vec<i64> = rows.iter().map(|&r| r as i64).collect();
                    let index =
                        Tensor::<1, Int>::from_data(TensorData::new(ids, [rows.len()]), &device);
                    LayerKv {
                        k: kv.k.clone().select(0, index.clone()),
                        v: kv.v.clone().select(0, index),
                    }
                })
            })
            .collect();
        KvCache {
            layers,
            len: self.len,
            batch: rows.len(),
        }
    }

    /// Each row repeated `g` times consecutively (rows `0,0,..,1,1,..`): prefill a batch of
    /// prompts once, then sample G completions of each from the shared prefix.
    pub fn repeat_each(&self, g: usize) -> KvCache {
        let rows: Vec<usize> = (0..self.batch)
            .flat_map(|r| std::iter::repeat_n(r, g))
            .collect();
        self.select_rows(&rows)
    }
}
