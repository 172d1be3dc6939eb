//! Per-layer keys and values of the positions already run, for generation without recomputation.

use burn::prelude::*;

/// One layer's cached keys (already rotated) and values, `[batch, heads, capacity, head_dim]`,
/// of which the first `len` positions are filled.
///
/// A decode step appends one position: while there is spare capacity it is written in place
/// (burn-flex assigns into a buffer it owns alone without copying), so a step costs its own
/// keys and values instead of a copy of the whole cache; the capacity grows by half when full.
/// Appends of several positions (a prefill, GRPO's completions on the prompt's cache) grow to
/// the exact length, as one concatenation, so autodiff sees the same graph as before.
#[derive(Debug, Clone)]
pub(crate) struct LayerKv {
    k: Tensor<4>,
    v: Tensor<4>,
    len: usize,
}

impl LayerKv {
    pub(crate) fn new(k: Tensor<4>, v: Tensor<4>) -> LayerKv {
        let len = k.dims()[2];
        LayerKv { k, v, len }
    }

    /// This cache with `k`, `v` `[batch, heads, new, head_dim]` after its positions.
    pub(crate) fn append(self, k: Tensor<4>, v: Tensor<4>) -> LayerKv {
        let [batch, heads, new, head_dim] = k.dims();
        let capacity = self.k.dims()[2];
        let len = self.len + new;
        if new == 1 && len <= capacity {
            let at = [0..batch, 0..heads, self.len..len, 0..head_dim];
            return LayerKv {
                k: self.k.slice_assign(at.clone(), k),
                v: self.v.slice_assign(at, v),
                len,
            };
        }
        let spare = if new == 1 { (len / 2).max(16) } else { 0 };
        let grow = |past: Tensor<4>, next: Tensor<4>| {
            let past = past.narrow(2, 0, self.len);
            let mut parts = vec![past, next];
            if spare > 0 {
                let device = parts[0].device();
                parts.push(Tensor::zeros([batch, heads, spare, head_dim], &device));
            }
            Tensor::cat(parts, 2)
        };
        LayerKv {
            k: grow(self.k, k),
            v: grow(self.v, v),
            len,
        }
    }

    /// The filled keys, `[batch, heads, len, head_dim]` (a view when there is spare capacity).
    pub(crate) fn keys(&self) -> Tensor<4> {
        self.filled(&self.k)
    }

    /// The filled values, as [`LayerKv::keys`].
    pub(crate) fn values(&self) -> Tensor<4> {
        self.filled(&self.v)
    }

    fn filled(&self, t: &Tensor<4>) -> Tensor<4> {
        if t.dims()[2] == self.len {
            t.clone()
        } else {
            t.clone().narrow(2, 0, self.len)
        }
    }

    fn select(&self, index: Tensor<1, Int>) -> LayerKv {
        LayerKv {
            k: select_rows_2d(&self.k, index.clone()),
            v: select_rows_2d(&self.v, index),
            len: self.len,
        }
    }
}

/// Rows of `t` `[batch, heads, positions, head_dim]` along the batch, selected as rows of a
/// `[batch, heads · positions · head_dim]` matrix. burn-flex selects (and, for gradients,
/// scatter-adds) a matrix's rows as whole slices, but walks a 4-D tensor element by element with
/// an index computation each; the values and their order of addition are the same.
fn select_rows_2d(t: &Tensor<4>, index: Tensor<1, Int>) -> Tensor<4> {
    let [batch, heads, positions, head_dim] = t.dims();
    let rows = index.dims()[0];
    t.clone()
        .reshape([batch, heads * positions * head_dim])
        .select(0, index)
        .reshape([rows, heads, positions, head_dim])
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
                    kv.select(index)
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
