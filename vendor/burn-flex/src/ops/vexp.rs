//! `exp` over f32 slices, eight lanes at a time, bit for bit equal to the C library's scalar
//! `expf` (R1 Lab patch).
//!
//! Every exp of the element-wise kernels (`exp`, `sigmoid`, softmax, attention) was a call of
//! the scalar `expf`, about an eighth of a training step. This computes the same function with
//! the same operations in the same order, on eight lanes of an AVX-512 register: glibc's `expf`
//! (2.28 and later, its FMA variant on x86-64) reduces `x·32/ln 2` to an integer `k` and a
//! remainder `r`, looks `2^(k mod 32 / 32)` up in a 32-entry table and multiplies it by a cubic
//! in `r`, all in double precision, then rounds once to f32. Equal operations give equal bits,
//! so results do not depend on whether a value went through this path or the scalar one.
//!
//! That equality is a property of the C library, not of this file, so it is checked where it
//! matters: on first use, the vector path runs over a fixed sweep of inputs and is switched on
//! only if every result equals the scalar `f32::exp`'s bits. Elsewhere (another libm, a CPU
//! without AVX-512) everything takes the scalar path, as before. Inputs off the C library's main
//! path are +0 below about -103.97 (-inf included) in both; NaN, overflow and the edge of
//! underflow go to the scalar function itself.

/// `xs[i] = xs[i].exp()`.
pub fn exp_in_place(xs: &mut [f32]) {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    if x86::enabled() {
        // SAFETY: `enabled` checked the CPU features the kernel is compiled for.
        unsafe { x86::exp_in_place(xs) };
        return;
    }
    for x in xs {
        *x = x.exp();
    }
}

/// `xs[i] = sigmoid(xs[i])`, computed as the scalar kernel did: `1 / (1 + e^-x)` for x ≥ 0 and
/// `e^x / (1 + e^x)` below, so the exp never overflows.
pub fn sigmoid_in_place(xs: &mut [f32]) {
    // The exps of a block go through a buffer on the stack: SiLU runs this over every hidden
    // activation of every step, so a heap buffer the size of the tensor would cost a fresh
    // allocation each time.
    const BLOCK: usize = 256;
    let mut e = [0f32; BLOCK];
    for block in xs.chunks_mut(BLOCK) {
        let e = &mut e[..block.len()];
        for (e, &x) in e.iter_mut().zip(block.iter()) {
            *e = if x >= 0.0 { -x } else { x };
        }
        exp_in_place(e);
        for (x, &e) in block.iter_mut().zip(e.iter()) {
            *x = if *x >= 0.0 { 1.0 / (1.0 + e) } else { e / (1.0 + e) };
        }
    }
}

/// Whether the vector path is in use (for tests and benchmarks).
pub fn vectorized() -> bool {
    #[cfg(all(target_arch = "x86_64", feature = "std"))]
    return x86::enabled();
    #[allow(unreachable_code)]
    false
}

#[cfg(all(target_arch = "x86_64", feature = "std"))]
mod x86 {
    use core::arch::x86_64::*;
    use std::sync::OnceLock;

    /// 32/ln 2, the polynomial's coefficients for `2^(r/32)` (cubic, highest first), and the
    /// shift that rounds a double to an integer in its low mantissa bits: glibc's
    /// `__exp2f_data` (`invln2_scaled`, `poly_scaled`, `shift`).
    const INV_LN2_N: f64 = f64::from_bits(0x4047_1547_652b_82fe);
    const C0: f64 = f64::from_bits(0x3ebc_6af8_4b91_2394);
    const C1: f64 = f64::from_bits(0x3f2e_bfce_50fa_c4f3);
    const C2: f64 = f64::from_bits(0x3f96_2e42_ff0c_52d6);
    const SHIFT: f64 = f64::from_bits(0x4338_0000_0000_0000);

    /// `bits(2^(i/32)) - (i << 47)`: adding `k << 47` to entry `k mod 32` gives `2^(k/32)`.
    const TABLE: [u64; 32] = [
        0x3ff0_0000_0000_0000,
        0x3fef_d9b0_d315_8574,
        0x3fef_b558_6cf9_890f,
        0x3fef_9301_d012_5b51,
        0x3fef_72b8_3c7d_517b,
        0x3fef_5487_3168_b9aa,
        0x3fef_387a_6e75_6238,
        0x3fef_1e9d_f51f_dee1,
        0x3fef_06fe_0a31_b715,
        0x3fee_f1a7_373a_a9cb,
        0x3fee_dea6_4c12_3422,
        0x3fee_ce08_6061_892d,
        0x3fee_bfda_d536_2a27,
        0x3fee_b42b_569d_4f82,
        0x3fee_ab07_dd48_5429,
        0x3fee_a47e_b03a_5585,
        0x3fee_a09e_667f_3bcd,
        0x3fee_9f75_e8ec_5f74,
        0x3fee_a114_73eb_0187,
        0x3fee_a589_994c_ce13,
        0x3fee_ace5_422a_a0db,
        0x3fee_b737_b0cd_c5e5,
        0x3fee_c491_82a3_f090,
        0x3fee_d503_b23e_255d,
        0x3fee_e89f_995a_d3ad,
        0x3fee_ff76_f2fb_5e47,
        0x3fef_199b_dd85_529c,
        0x3fef_3720_dcef_9069,
        0x3fef_5818_dcfb_a487,
        0x3fef_7c97_337b_9b5f,
        0x3fef_a4af_a2a4_90da,
        0x3fef_d076_5b6e_4540,
    ];

    /// The inputs glibc's `expf` computes by its main path: from -0x1.9d1d9ep6 (about -103.28)
    /// to 0x1.62e42ep6 (about 88.72, the largest x whose exp is finite).
    const MAIN_FROM: f32 = f32::from_bits(0xc2ce_8ecf);
    const MAIN_TO: f32 = f32::from_bits(0x42b1_7217);
    /// Below this (about -103.97, and -inf) the result is +0: the exp of the causal mask's -inf
    /// scores, half of every attention row in training.
    const ZERO_BELOW: f32 = f32::from_bits(0xc2cf_f1b4);

    pub(super) fn enabled() -> bool {
        static ENABLED: OnceLock<bool> = OnceLock::new();
        *ENABLED.get_or_init(|| {
            std::arch::is_x86_feature_detected!("avx512f")
                && std::arch::is_x86_feature_detected!("avx2")
                && std::arch::is_x86_feature_detected!("fma")
                // SAFETY: the features were just detected.
                && unsafe { agrees_with_scalar() }
        })
    }

    /// Whether the vector path gives the scalar `expf`'s bits on a sweep of about half a million
    /// inputs: every 4093rd f32 bit pattern below 104, with both signs, and the ranges' ends.
    #[target_feature(enable = "avx512f,avx2,fma")]
    unsafe fn agrees_with_scalar() -> bool {
        let mut inputs: Vec<f32> = (0u32..0x42d0_0000)
            .step_by(4093)
            .flat_map(|bits| [f32::from_bits(bits), -f32::from_bits(bits)])
            .collect();
        inputs.extend([MAIN_FROM, MAIN_TO, ZERO_BELOW, f32::NEG_INFINITY, f32::INFINITY]);
        inputs.extend([88.0, -88.0, 0.0, -0.0, 1e-30, -1e-30]);
        let mut outputs = inputs.clone();
        unsafe { exp_in_place(&mut outputs) };
        inputs
            .iter()
            .zip(&outputs)
            .all(|(x, y)| x.exp().to_bits() == y.to_bits())
    }

    /// # Safety
    /// The CPU must have AVX-512F, AVX2 and FMA.
    #[target_feature(enable = "avx512f,avx2,fma")]
    pub(super) unsafe fn exp_in_place(xs: &mut [f32]) {
        let mut chunks = xs.chunks_exact_mut(8);
        for chunk in &mut chunks {
            let ptr = chunk.as_mut_ptr();
            // SAFETY: the chunk holds eight f32s.
            let x = unsafe { _mm256_loadu_ps(ptr) };
            let main = _mm256_and_ps(
                _mm256_cmp_ps::<_CMP_GE_OQ>(x, _mm256_set1_ps(MAIN_FROM)),
                _mm256_cmp_ps::<_CMP_LE_OQ>(x, _mm256_set1_ps(MAIN_TO)),
            );
            let zero = _mm256_cmp_ps::<_CMP_LT_OQ>(x, _mm256_set1_ps(ZERO_BELOW));
            // Lanes neither on the main path nor zero (NaN, overflow, the edge of underflow)
            // take the C library's own path.
            let scalar = !_mm256_movemask_ps(_mm256_or_ps(main, zero)) & 0xff;
            let y = _mm256_andnot_ps(zero, exp8(x));
            unsafe { _mm256_storeu_ps(ptr, y) };
            if scalar != 0 {
                let mut inputs = [0f32; 8];
                unsafe { _mm256_storeu_ps(inputs.as_mut_ptr(), x) };
                for (lane, value) in inputs.iter().enumerate() {
                    if scalar & (1 << lane) != 0 {
                        chunk[lane] = value.exp();
                    }
                }
            }
        }
        for x in chunks.into_remainder() {
            *x = x.exp();
        }
    }

    /// glibc's `expf` on eight lanes, valid on its main path (`MAIN_FROM..=MAIN_TO`). Each line
    /// is one operation of the scalar code, fused where it fuses them.
    #[inline]
    #[target_feature(enable = "avx512f,avx2,fma")]
    fn exp8(x: __m256) -> __m256 {
        let xd = _mm512_cvtps_pd(x);
        let inv_ln2_n = _mm512_set1_pd(INV_LN2_N);
        let shift = _mm512_set1_pd(SHIFT);
        // k in the low bits of `shifted`, rounded to nearest even.
        let shifted = _mm512_fmadd_pd(inv_ln2_n, xd, shift);
        let k = _mm512_castpd_si512(shifted);
        let kd = _mm512_sub_pd(shifted, shift);
        // r = x·32/ln 2 - k, with x·32/ln 2 never rounded.
        let r = _mm512_fmsub_pd(inv_ln2_n, xd, kd);
        // 2^(k/32): the table entry of k mod 32 (two 16-entry lookups, picked by bit 4), its
        // exponent raised by k << 47.
        // SAFETY: `TABLE` has 32 entries, read as four rows of eight.
        let [t0, t8, t16, t24] =
            [0, 8, 16, 24].map(|from| unsafe { _mm512_loadu_si512(TABLE.as_ptr().add(from).cast()) });
        let low = _mm512_permutex2var_epi64(t0, k, t8);
        let high = _mm512_permutex2var_epi64(t16, k, t24);
        let upper_half = _mm512_test_epi64_mask(k, _mm512_set1_epi64(16));
        let entry = _mm512_mask_blend_epi64(upper_half, low, high);
        let scale = _mm512_castsi512_pd(_mm512_add_epi64(entry, _mm512_slli_epi64::<47>(k)));
        // s · (C0·r³ + C1·r² + C2·r + 1), as (C0·r + C1)·r² + (C2·r + 1).
        let z = _mm512_fmadd_pd(_mm512_set1_pd(C0), r, _mm512_set1_pd(C1));
        let r2 = _mm512_mul_pd(r, r);
        let y = _mm512_fmadd_pd(_mm512_set1_pd(C2), r, _mm512_set1_pd(1.0));
        let y = _mm512_fmadd_pd(z, r2, y);
        _mm512_cvtpd_ps(_mm512_mul_pd(y, scale))
    }
}
