//! A vectorisable e^x for the kernels' activations.

/// e^x in f32 without a library call, so that the loops around it vectorise: x = n ln 2 + r with
/// |r| <= ln 2 / 2, e^r by Cephes' `expf` polynomial (relative error about 2e-7 over the range),
/// times 2^n built from its exponent bits. Saturates to 0 below -87 and to e^88 above 88, where
/// every caller here (the SiLU's sigmoid, the GELU's erf) has long since reached its limit.
#[inline(always)]
pub fn exp(x: f32) -> f32 {
    let x = x.clamp(-87.0, 88.0);
    // Round to nearest by adding and removing 1.5 * 2^23 (f32::round is a library call on baseline
    // x86-64); the sum's low mantissa bits then hold n itself, which saves a float-to-int cast
    // (saturating in Rust, which keeps the loop from vectorising).
    const ROUND: f32 = 12_582_912.0;
    let shifted = x * std::f32::consts::LOG2_E + ROUND;
    let n = shifted - ROUND;
    let n_bits = shifted.to_bits().wrapping_sub(ROUND.to_bits());
    // ln 2 in two parts, so that n * ln 2 is subtracted without rounding away r's low bits.
    let r = x - n * 0.693_359_4 + n * 2.121_944_4e-4;
    let p = ((((1.987_569_1e-4 * r + 1.398_199_9e-3) * r + 8.333_452e-3) * r + 4.166_579_6e-2) * r
        + 1.666_666_5e-1)
        * r
        + 0.5;
    let e_r = p * r * r + r + 1.0;
    e_r * f32::from_bits(n_bits.wrapping_add(127) << 23)
}

#[cfg(test)]
mod tests {
    #[test]
    fn exp_matches_the_library_to_a_few_ulp() {
        let mut worst = 0.0f64;
        for i in -90_000..=90_000 {
            let x = i as f32 * 1e-3;
            let want = (x as f64).clamp(-87.0, 88.0).exp();
            worst = worst.max(((super::exp(x) as f64 - want) / want).abs());
        }
        assert!(worst < 5e-7, "worst relative error {worst}");
    }
}
