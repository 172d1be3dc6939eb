use burn::module::Module;
use burn::prelude::*;

use super::checkpoint::CheckpointError;
use super::*;
use crate::rng::Rng;

/// Logits of the KV-cache path and the full forward agree to this (max abs difference).
const CACHE_TOLERANCE: f32 = 1e-4;

fn tiny() -> ModelConfig {
    ModelConfig {
        vocab_size: 37,
        d_model: 16,
        n_layers: 2,
        n_heads: 2,
        d_ff: 32,
        max_seq_len: 64,
        init_seed: 7,
        ..ModelConfig::default()
    }
}

fn random_rows(seed: u64, rows: usize, len: usize, vocab: usize) -> Vec<Vec<u32>> {
    let mut rng = Rng::new(seed);
    (0..rows)
        .map(|_| (0..len).map(|_| rng.below(vocab as u64) as u32).collect())
        .collect()
}

fn values<const D: usize>(t: Tensor<D>) -> Vec<f32> {
    t.into_data().try_into_vec_as::<f32>().unwrap()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len());
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Mean next-token negative log-likelihood of `rows` (all positions).
fn next_token_loss(model: &Transformer, rows: &[Vec<u32>], device: &Device) -> Tensor<1> {
    let inputs: Vec<Vec<u32>> = rows.iter().map(|r| r[..r.len() - 1].to_vec()).collect();
    let targets: Vec<Vec<u32>> = rows.iter().map(|r| r[1..].to_vec()).collect();
    let logp = token_logprobs(
        model.forward(tokens_tensor(&inputs, device)),
        tokens_tensor(&targets, device),
    );
    logp.mean().neg()
}

#[test]
fn config_counts_match_the_model() {
    let config = tiny();
    let model = config.init(&Device::flex());
    assert_eq!(model.num_params(), config.parameter_count());
    let names: Vec<(String, Vec<usize>)> = named_tensors(&model)
        .into_iter()
        .map(|t| (t.name, t.shape))
        .collect();
    assert_eq!(names, config.tensor_shapes());
    assert!(names.iter().any(|(n, _)| n == "blocks.1.attn.wq.weight"));
    // 6·(L·(4d² + 3d·d_ff) + V·d) + 12·L·d·T
    let n = 2.0 * (4.0 * 256.0 + 3.0 * 16.0 * 32.0) + 37.0 * 16.0;
    assert_eq!(
        config.flops_per_token_training(64),
        6.0 * n + 12.0 * 2.0 * 16.0 * 64.0
    );
}

#[test]
fn validate_names_the_fields() {
    let config = ModelConfig {
        vocab_size: 0,
        n_heads: 3,
        norm_eps: 0.0,
        ..ModelConfig::default()
    };
    let problems = config.validate().unwrap_err();
    let fields: Vec<&str> = problems.iter().map(|(f, _)| f.as_str()).collect();
    assert_eq!(fields, ["vocab_size", "n_heads", "norm_eps"]);
    let json = serde_json::json!({ "d_model": 64, "n_layer": 2 });
    let err = serde_json::from_value::<ModelConfig>(json)
        .unwrap_err()
        .to_string();
    assert!(err.contains("n_layer"), "{err}");
}

#[test]
fn kv_cache_matches_full_forward() {
    let device = Device::flex();
    let model = tiny().init(&device);
    let (prompt_len, steps) = (6, 24); // the cache grows twice (see `LayerKv::append`)
    let rows = random_rows(1, 2, prompt_len + steps, 37);

    let full = values(model.forward(tokens_tensor(&rows, &device)));

    let mut cache = model.new_cache();
    let prompts: Vec<Vec<u32>> = rows.iter().map(|r| r[..prompt_len].to_vec()).collect();
    let mut pieces = vec![model.forward_cached(tokens_tensor(&prompts, &device), &mut cache)];
    for step in 0..steps {
        let next: Vec<Vec<u32>> = rows.iter().map(|r| vec![r[prompt_len + step]]).collect();
        pieces.push(model.forward_cached(tokens_tensor(&next, &device), &mut cache));
    }
    assert_eq!(cache.len(), prompt_len + steps);
    let cached = values(Tensor::cat(pieces, 1));
    let diff = max_abs_diff(&full, &cached);
    assert!(diff < CACHE_TOLERANCE, "max abs diff {diff}");
}

/// Projecting only the last positions of a prefill gives those positions' logits bit for bit,
/// with as few rows as batch-independence needs, for a vocabulary small and large.
#[test]
fn a_prefill_tail_has_the_full_prefills_logits_exactly() {
    let device = Device::flex();
    for vocab in [37, 1021] {
        let config = ModelConfig {
            vocab_size: vocab,
            ..tiny()
        };
        let model = config.init(&device);
        for batch in [1, 3] {
            let rows = random_rows(5, batch, 20, vocab);
            let full = model.forward_cached(tokens_tensor(&rows, &device), &mut model.new_cache());
            let tail = crate::generate::min_positions(vocab).div_ceil(batch);
            let mut cache = model.new_cache();
            let last = model.forward_cached_tail(tokens_tensor(&rows, &device), &mut cache, tail);
            assert_eq!(last.dims(), [batch, tail, vocab]);
            assert_eq!(cache.len(), 20, "the cache holds every position");
            assert_eq!(
                values(last),
                values(full.narrow(1, 20 - tail, tail)),
                "vocab {vocab}, batch {batch}"
            );
        }
    }
}

#[test]
fn kv_cache_repeat_each_matches_full_forward() {
    let device = Device::flex();
    let model = tiny().init(&device);
    let (g, prompt_len, steps) = (3, 5, 10);
    let prompts = random_rows(2, 2, prompt_len, 37);
    let continuations = random_rows(3, 2 * g, steps, 37);

    let mut cache = model.new_cache();
    let prefill = model.forward_cached(tokens_tensor(&prompts, &device), &mut cache);
    let mut cache = cache.repeat_each(g);
    assert_eq!((cache.batch_size(), cache.len()), (2 * g, prompt_len));
    let mut pieces = Vec::new();
    for step in 0..steps {
        let next: Vec<Vec<u32>> = continuations.iter().map(|c| vec![c[step]]).collect();
        pieces.push(values(
            model.forward_cached(tokens_tensor(&next, &device), &mut cache),
        ));
    }
    let prefill = values(prefill);
    let vocab = 37;

    for row in 0..2 * g {
        let mut sequence = prompts[row / g].clone();
        sequence.extend(&continuations[row]);
        let full = values(model.forward(tokens_tensor(&[sequence], &device)));
        let prompt_part =
            &prefill[(row / g) * prompt_len * vocab..(row / g + 1) * prompt_len * vocab];
        let diff = max_abs_diff(&full[..prompt_len * vocab], prompt_part);
        assert!(diff < CACHE_TOLERANCE, "prefill row {row}: {diff}");
        for (step, piece) in pieces.iter().enumerate() {
            let at = (prompt_len + step) * vocab;
            let diff = max_abs_diff(
                &full[at..at + vocab],
                &piece[row * vocab..(row + 1) * vocab],
            );
            assert!(diff < CACHE_TOLERANCE, "row {row} step {step}: {diff}");
        }
    }
}

/// A long generation as the sampler runs it: the cache grows several times, writes in place in
/// between, and drops a finished row halfway; every step's logits still match a full forward.
#[test]
fn kv_cache_long_decode_with_dropped_rows_matches_full_forward() {
    let device = Device::flex();
    let config = ModelConfig {
        max_seq_len: 256,
        ..tiny()
    };
    let model = config.init(&device);
    let (prompt_len, steps) = (20, 200);
    let rows = random_rows(9, 3, prompt_len + steps, 37);
    let full: Vec<Vec<f32>> = rows
        .iter()
        .map(|r| values(model.forward(tokens_tensor(std::slice::from_ref(r), &device))))
        .collect();
    let vocab = 37;

    let mut cache = model.new_cache();
    let prompts: Vec<Vec<u32>> = rows.iter().map(|r| r[..prompt_len].to_vec()).collect();
    model.forward_cached(tokens_tensor(&prompts, &device), &mut cache);
    let mut live: Vec<usize> = vec![0, 1, 2];
    for step in 0..steps {
        if step == steps / 2 {
            // Row 1 finished: the batch goes on without it.
            live = vec![0, 2];
            cache = cache.select_rows(&[0, 2]);
        }
        let next: Vec<Vec<u32>> = live
            .iter()
            .map(|&r| vec![rows[r][prompt_len + step]])
            .collect();
        let logits = values(model.forward_cached(tokens_tensor(&next, &device), &mut cache));
        for (i, &row) in live.iter().enumerate() {
            let at = (prompt_len + step) * vocab;
            let diff = max_abs_diff(
                &full[row][at..at + vocab],
                &logits[i * vocab..(i + 1) * vocab],
            );
            assert!(diff < CACHE_TOLERANCE, "row {row} step {step}: {diff}");
        }
    }
}

#[test]
fn causal_later_tokens_do_not_change_earlier_logits() {
    let device = Device::flex();
    let model = tiny().init(&device);
    let mut rows = random_rows(4, 1, 12, 37);
    let before = values(model.forward(tokens_tensor(&rows, &device)));
    rows[0][7] = (rows[0][7] + 1) % 37;
    let after = values(model.forward(tokens_tensor(&rows, &device)));
    let vocab = 37;
    assert_eq!(before[..7 * vocab], after[..7 * vocab]);
    assert!(max_abs_diff(&before[7 * vocab..], &after[7 * vocab..]) > 1e-4);
}

#[test]
fn init_is_a_function_of_the_seed() {
    let device = Device::flex();
    let hash = |seed| {
        content_hash(&named_tensors(
            &ModelConfig {
                init_seed: seed,
                ..tiny()
            }
            .init(&device),
        ))
    };
    assert_eq!(hash(7), hash(7));
    assert_ne!(hash(7), hash(8));
    // The autodiff device holds the very same values.
    let on_autodiff = ModelConfig {
        init_seed: 7,
        ..tiny()
    }
    .init(&device.clone().autodiff());
    assert_eq!(content_hash(&named_tensors(&on_autodiff)), hash(7));
}

#[test]
fn checkpoint_round_trip_and_refusals() {
    let device = Device::flex();
    let config = tiny();
    let model = config.init(&device);
    let tensors = named_tensors(&model);
    let hash = content_hash(&tensors);
    let extra = serde_json::json!({ "config": config, "vocab": ["<eos>", "a"] });

    let bytes = encode(&tensors, &extra);
    assert_eq!(bytes, encode(&tensors, &extra), "encoding is deterministic");
    let (decoded, decoded_extra) = decode_expecting(&bytes, &hash).unwrap();
    assert_eq!(content_hash(&decoded), hash);
    assert_eq!(decoded_extra, extra);

    let loaded = load_named(&config, &decoded, &device).unwrap();
    let rows = random_rows(5, 2, 9, 37);
    assert_eq!(
        values(model.forward(tokens_tensor(&rows, &device))),
        values(loaded.forward(tokens_tensor(&rows, &device)))
    );

    // A flipped bit in the data: the recomputed hash no longer matches the header.
    let mut corrupt = bytes.clone();
    let last = corrupt.len() - 3;
    corrupt[last] ^= 0x01;
    assert!(matches!(
        decode(&corrupt),
        Err(CheckpointError::HashMismatch { .. })
    ));
    // The wrong expectation is refused too.
    assert!(matches!(
        decode_expecting(&bytes, "00"),
        Err(CheckpointError::HashMismatch { .. })
    ));
    assert_eq!(
        decode(b"not a checkpoint at all"),
        Err(CheckpointError::BadMagic)
    );

    // A wrong shape names the tensor.
    let mut reshaped = decoded.clone();
    let wq = reshaped
        .iter_mut()
        .find(|t| t.name == "blocks.0.attn.wq.weight")
        .unwrap();
    wq.shape = vec![8, 32];
    let err = load_named(&config, &reshaped, &device).unwrap_err();
    assert_eq!(
        err,
        CheckpointError::ShapeMismatch {
            name: "blocks.0.attn.wq.weight".into(),
            expected: vec![16, 16],
            actual: vec![8, 32],
        }
    );
    assert!(err.to_string().contains("blocks.0.attn.wq.weight"), "{err}");
    // So does a config that does not fit the file.
    let wider = ModelConfig {
        d_ff: 48,
        ..config.clone()
    };
    assert!(matches!(
        load_named(&wider, &decoded, &device),
        Err(CheckpointError::ShapeMismatch { name, .. }) if name == "blocks.0.mlp.w_gate.weight"
    ));
    // A missing tensor, and a stranger.
    let missing: Vec<NamedTensor> = decoded
        .iter()
        .filter(|t| t.name != "norm_final.weight")
        .cloned()
        .collect();
    assert_eq!(
        load_named(&config, &missing, &device).unwrap_err(),
        CheckpointError::MissingTensor {
            name: "norm_final.weight".into()
        }
    );
    let mut extra_tensor = decoded.clone();
    extra_tensor.push(NamedTensor::f32("lm_head.weight", vec![1], vec![0.0]));
    assert_eq!(
        load_named(&config, &extra_tensor, &device).unwrap_err(),
        CheckpointError::UnexpectedTensor {
            name: "lm_head.weight".into()
        }
    );
}

#[test]
fn adamw_steps_reduce_the_loss_and_valid_model_agrees() {
    let device = Device::flex().autodiff();
    let mut model = tiny().init(&device);
    let mut opt = AdamW::new(AdamWConfig::default());
    // Two sequences repeated: easy to memorise.
    let rows = random_rows(6, 2, 16, 37);

    let initial: f32 = next_token_loss(&model, &rows, &device).into_scalar();
    let mut last = initial;
    for _ in 0..8 {
        let loss = next_token_loss(&model, &rows, &device);
        last = loss.clone().into_scalar();
        let (next, stats) = opt.step(3e-3, model, loss.backward());
        assert!(stats.grad_norm.is_finite() && stats.grad_norm > 0.0);
        model = next;
    }
    let after: f32 = next_token_loss(&model, &rows, &device).into_scalar();
    assert!(
        after < initial - 0.1,
        "loss {initial} -> {after} (last seen {last})"
    );
    assert_eq!(opt.steps(), 8);

    // The inference copy: no autodiff, same numbers.
    let inference = model.valid();
    let plain = Device::flex();
    assert!(!inference.device().is_autodiff());
    let a = values(model.forward(tokens_tensor(&rows, &device)));
    let b = values(inference.forward(tokens_tensor(&rows, &plain)));
    assert!(max_abs_diff(&a, &b) < 1e-5);
    assert_eq!(
        content_hash(&named_tensors(&model)),
        content_hash(&named_tensors(&inference))
    );
}

#[test]
fn tokens_made_on_the_plain_device_train_an_autodiff_model() {
    let device = Device::flex().autodiff();
    let plain = Device::flex();
    let model = tiny().init(&device);
    let rows = random_rows(12, 2, 10, 37);
    let loss = next_token_loss(&model, &rows, &plain);
    let mut opt = AdamW::new(AdamWConfig::default());
    let (_, stats) = opt.step(1e-3, model, loss.backward());
    assert!(stats.grad_norm > 0.0);
}

#[test]
fn resume_from_checkpoint_is_bit_identical() {
    let device = Device::flex().autodiff();
    let config = tiny();
    let rows = random_rows(7, 3, 12, 37);
    let adam = AdamWConfig::default();
    let train = |mut model: Transformer, opt: &mut AdamW, steps: usize| {
        for _ in 0..steps {
            let loss = next_token_loss(&model, &rows, &device);
            model = opt.step(1e-2, model, loss.backward()).0;
        }
        model
    };

    let mut straight_opt = AdamW::new(adam.clone());
    let straight = train(config.init(&device), &mut straight_opt, 4);

    let mut opt = AdamW::new(adam.clone());
    let half = train(config.init(&device), &mut opt, 2);
    let mut saved = named_tensors(&half);
    saved.extend(opt.named_state());
    let bytes = encode(&saved, &serde_json::json!({ "step": 2 }));
    drop((half, opt));

    let (loaded, _) = decode(&bytes).unwrap();
    let model = load_named(&config, &loaded, &device).unwrap();
    let mut opt = AdamW::load_named(adam, &loaded, &model).unwrap();
    assert_eq!(opt.steps(), 2);
    let resumed = train(model, &mut opt, 2);

    assert_eq!(
        content_hash(&named_tensors(&straight)),
        content_hash(&named_tensors(&resumed))
    );
    assert_eq!(
        content_hash(&straight_opt.named_state()),
        content_hash(&opt.named_state())
    );
}

#[test]
fn burn_optim_adamw_also_trains_the_model() {
    use burn::optim::{AdamWConfig as BurnAdamW, GradientsParams};
    let device = Device::flex().autodiff();
    let mut model = tiny().init(&device);
    let mut opt = BurnAdamW::new().init();
    let rows = random_rows(8, 2, 16, 37);
    let initial: f32 = next_token_loss(&model, &rows, &device).into_scalar();
    for _ in 0..5 {
        let loss = next_token_loss(&model, &rows, &device);
        let grads = GradientsParams::from_grads(loss.backward(), &model);
        model = opt.step(3e-3, model, grads);
    }
    let after: f32 = next_token_loss(&model, &rows, &device).into_scalar();
    assert!(after < initial, "loss {initial} -> {after}");
}

#[test]
fn token_logprobs_is_log_softmax_at_targets() {
    let device = Device::flex();
    let logits = Tensor::<3>::from_data(
        TensorData::new(vec![0.0f32, 1.0, 2.0, 3.0, 3.0, 3.0], [1, 2, 3]),
        &device,
    );
    let targets = tokens_tensor(&[vec![2, 0]], &device);
    let got = values(token_logprobs(logits, targets));
    let z: f32 = (0.0f32.exp() + 1.0f32.exp() + 2.0f32.exp()).ln();
    assert!((got[0] - (2.0 - z)).abs() < 1e-6);
    assert!((got[1] - (1.0f32 / 3.0).ln()).abs() < 1e-6);
}

/// Model hash after a few training steps plus a greedy cached generation: what a rerun must match.
fn trained_fingerprint() -> String {
    let device = Device::flex().autodiff();
    let mut model = tiny().init(&device);
    let mut opt = AdamW::new(AdamWConfig::default());
    let rows = random_rows(11, 3, 20, 37);
    for _ in 0..3 {
        let loss = next_token_loss(&model, &rows, &device);
        model = opt.step(1e-2, model, loss.backward()).0;
    }
    let policy = model.valid();
    let plain = Device::flex();
    let mut cache = policy.new_cache();
    let mut logits = policy.forward_cached(tokens_tensor(&rows[..1], &plain), &mut cache);
    let mut generated = Vec::new();
    for _ in 0..8 {
        let last = logits
            .clone()
            .narrow(1, logits.dims()[1] - 1, 1)
            .argmax(2)
            .reshape([1]);
        let id = last.into_data().try_into_vec_as::<i64>().unwrap()[0] as u32;
        generated.push(id);
        logits = policy.forward_cached(tokens_tensor(&[vec![id]], &plain), &mut cache);
    }
    let mut tensors = named_tensors(&policy);
    tensors.extend(opt.named_state());
    format!("{} {generated:?}", content_hash(&tensors))
}

#[test]
#[ignore = "run by determinism_across_processes in a child process"]
fn trained_fingerprint_child() {
    println!("FINGERPRINT={}", trained_fingerprint());
}

#[test]
fn determinism_across_processes() {
    let output = std::process::Command::new(std::env::current_exe().unwrap())
        .args([
            "--ignored",
            "--exact",
            "model::tests::trained_fingerprint_child",
            "--nocapture",
        ])
        .output()
        .unwrap();
    let stdout = String::from_utf8_lossy(&output.stdout);
    let child = stdout
        .lines()
        .find_map(|line| line.strip_prefix("FINGERPRINT="))
        .unwrap_or_else(|| panic!("child printed no fingerprint: {stdout}"));
    assert_eq!(child, trained_fingerprint());
}

/// The vendored burn-flex computes exp (and with it sigmoid and softmax) eight lanes at a time.
/// Its promise is the scalar kernels' bits, so that no result of the lab moved with it.
#[test]
fn vectorised_exp_sigmoid_and_softmax_equal_the_scalar_kernels_bit_for_bit() {
    #[cfg(target_arch = "x86_64")]
    if std::arch::is_x86_feature_detected!("avx512f") {
        assert!(
            burn_flex::ops::vexp::vectorized(),
            "this CPU has AVX-512, yet the vector exp disagreed with the C library's expf"
        );
    }
    let device = Device::flex();
    // Every 997th finite f32 of both signs, and the infinities: 4.3M values, an odd count.
    let mut xs: Vec<f32> = (0u32..0x7f80_0000)
        .step_by(997)
        .flat_map(|bits| [f32::from_bits(bits), -f32::from_bits(bits)])
        .collect();
    xs.extend([f32::INFINITY, f32::NEG_INFINITY, 88.0, -88.0, 0.5]);
    let exps = values(Tensor::<1>::from_floats(xs.as_slice(), &device).exp());
    for (x, y) in xs.iter().zip(&exps) {
        assert_eq!(x.exp().to_bits(), y.to_bits(), "exp({x:e})");
    }

    // A transposed view takes the copying path; sigmoid as the scalar kernel wrote it.
    let grid: Vec<f32> = (0..64 * 33).map(|i| (i as f32 - 1056.0) * 0.093).collect();
    let sigmoid = |x: f32| {
        if x >= 0.0 {
            1.0 / (1.0 + (-x).exp())
        } else {
            let e = x.exp();
            e / (1.0 + e)
        }
    };
    let transposed =
        Tensor::<2>::from_data(TensorData::new(grid.clone(), [64, 33]), &device).transpose();
    let got = values(burn::tensor::activation::sigmoid(transposed).transpose());
    for (x, y) in grid.iter().zip(&got) {
        assert_eq!(sigmoid(*x).to_bits(), y.to_bits(), "sigmoid({x})");
    }

    // Softmax rows (the fused kernel of sampling), against max, exp, an in-order sum and one
    // reciprocal.
    let logits: Vec<f32> = (0..7 * 45)
        .map(|i| ((i * 37 % 101) as f32 - 50.0) * 0.41)
        .collect();
    let got = values(burn::tensor::activation::softmax(
        Tensor::<2>::from_data(TensorData::new(logits.clone(), [7, 45]), &device),
        1,
    ));
    for (row, got) in logits.chunks(45).zip(got.chunks(45)) {
        let max = row.iter().copied().fold(f32::NEG_INFINITY, f32::max);
        let exps: Vec<f32> = row.iter().map(|x| (x - max).exp()).collect();
        let inverse = 1.0 / exps.iter().fold(0.0f32, |sum, e| sum + e);
        for (e, y) in exps.iter().zip(got) {
            assert_eq!((e * inverse).to_bits(), y.to_bits());
        }
    }
}
