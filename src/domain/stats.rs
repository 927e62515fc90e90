//! The statistics the digest and the ROI report print, as pure functions.
//!
//! SQL returns, per group, the count, the sum and the sum of squares of the answers; a
//! [`Summary`] turns those into n, mean and sample variance. A change between two groups is
//! reported with Welch's 95 % confidence interval (unequal variances, Welch–Satterthwaite
//! degrees of freedom, the Student t quantile computed for those degrees of freedom, so a
//! small group gets the wide interval it deserves). A change whose interval contains 0 is
//! "within noise". eNPS is % promoters (9–10) minus % detractors (0–6).
//!
//! The API is shared with the ROI report: keep it stable.

use serde::Serialize;

/// n, mean and sample variance (n − 1 in the denominator; 0 when n = 1) of one group.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Summary {
    pub n: u64,
    pub mean: f64,
    pub var: f64,
}

impl Summary {
    /// From what SQL returns: `COUNT(x)`, `SUM(x)`, `SUM(x * x)`. `None` for an empty group.
    pub fn from_sums(n: i64, sum: f64, sum_sq: f64) -> Option<Summary> {
        if n <= 0 {
            return None;
        }
        let nf = n as f64;
        let mean = sum / nf;
        let var = if n < 2 {
            0.0
        } else {
            // Rounding can push a zero variance a hair below 0.
            ((sum_sq - sum * sum / nf) / (nf - 1.0)).max(0.0)
        };
        Some(Summary {
            n: n as u64,
            mean,
            var,
        })
    }

    /// From raw values (tests and small in-memory groups).
    pub fn from_values(values: &[f64]) -> Option<Summary> {
        let sum: f64 = values.iter().sum();
        let sum_sq: f64 = values.iter().map(|v| v * v).sum();
        Summary::from_sums(values.len() as i64, sum, sum_sq)
    }

    pub fn sd(&self) -> f64 {
        self.var.sqrt()
    }

    /// The 95 % confidence interval of the mean (t with n − 1 degrees of freedom); `None`
    /// under 2 values.
    pub fn mean_ci95(&self) -> Option<Interval> {
        if self.n < 2 {
            return None;
        }
        let half = t_quantile(0.975, self.n as f64 - 1.0) * (self.var / self.n as f64).sqrt();
        Some(Interval {
            lo: self.mean - half,
            hi: self.mean + half,
        })
    }
}

/// A closed interval `[lo, hi]`.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Interval {
    pub lo: f64,
    pub hi: f64,
}

impl Interval {
    pub fn contains(&self, x: f64) -> bool {
        self.lo <= x && x <= self.hi
    }
}

/// The difference `a.mean − b.mean` with Welch's 95 % confidence interval.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Welch {
    pub delta: f64,
    pub ci95: Interval,
    /// Welch–Satterthwaite degrees of freedom (infinite when both variances are 0).
    pub df: f64,
    /// The t quantile used (0.975, `df`).
    pub t: f64,
}

impl Welch {
    /// The interval contains 0: the change cannot be told apart from noise.
    pub fn within_noise(&self) -> bool {
        within_noise(&self.ci95)
    }
}

/// `true` when the interval contains 0.
pub fn within_noise(ci: &Interval) -> bool {
    ci.contains(0.0)
}

/// Welch's 95 % interval for `a.mean − b.mean`. `None` when either group has fewer than 2
/// values (no variance estimate, so no honest interval).
pub fn welch_ci95(a: &Summary, b: &Summary) -> Option<Welch> {
    if a.n < 2 || b.n < 2 {
        return None;
    }
    let delta = a.mean - b.mean;
    let va = a.var / a.n as f64;
    let vb = b.var / b.n as f64;
    let se2 = va + vb;
    if se2 <= 0.0 {
        // Both groups constant: the difference is exact.
        return Some(Welch {
            delta,
            ci95: Interval {
                lo: delta,
                hi: delta,
            },
            df: f64::INFINITY,
            t: 0.0,
        });
    }
    let mut denom = 0.0;
    if va > 0.0 {
        denom += va * va / (a.n as f64 - 1.0);
    }
    if vb > 0.0 {
        denom += vb * vb / (b.n as f64 - 1.0);
    }
    let df = se2 * se2 / denom;
    let t = t_quantile(0.975, df);
    let half = t * se2.sqrt();
    Some(Welch {
        delta,
        ci95: Interval {
            lo: delta - half,
            hi: delta + half,
        },
        df,
        t,
    })
}

/// eNPS of a group: `n` answers, `score` = % promoters (9–10) − % detractors (0–6), in
/// −100…100.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Enps {
    pub n: u64,
    pub score: f64,
}

/// eNPS from the counts of promoters, passives (7–8) and detractors. `None` when there is no
/// answer.
pub fn enps(promoters: u64, passives: u64, detractors: u64) -> Option<Enps> {
    let n = promoters + passives + detractors;
    if n == 0 {
        return None;
    }
    let score = 100.0 * (promoters as f64 - detractors as f64) / n as f64;
    Some(Enps { n, score })
}

/// The `p` quantile of Student's t distribution with `df` degrees of freedom (`df` may be
/// fractional, as Welch's is), for `p` in (0, 1). Found by bisection on the CDF, which is
/// computed from the regularized incomplete beta function; exact to ~1e-10.
pub fn t_quantile(p: f64, df: f64) -> f64 {
    assert!(p > 0.0 && p < 1.0, "t_quantile: p must be in (0, 1)");
    assert!(df > 0.0, "t_quantile: df must be positive");
    if df.is_infinite() {
        return normal_quantile(p);
    }
    if p < 0.5 {
        return -t_quantile(1.0 - p, df);
    }
    if p == 0.5 {
        return 0.0;
    }
    // Bracket: the quantile grows without bound as df → 0; double until the CDF passes p.
    let mut lo = 0.0;
    let mut hi = 1.0;
    while t_cdf(hi, df) < p {
        lo = hi;
        hi *= 2.0;
        if hi > 1e12 {
            return hi;
        }
    }
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if t_cdf(mid, df) < p {
            lo = mid;
        } else {
            hi = mid;
        }
        if hi - lo < 1e-12 * hi.max(1.0) {
            break;
        }
    }
    0.5 * (lo + hi)
}

/// Student's t CDF at `t` with `df` degrees of freedom.
pub fn t_cdf(t: f64, df: f64) -> f64 {
    let x = df / (df + t * t);
    let tail = 0.5 * regularized_incomplete_beta(df / 2.0, 0.5, x);
    if t >= 0.0 {
        1.0 - tail
    } else {
        tail
    }
}

/// The standard normal quantile, by bisection on the normal CDF (used only for infinite
/// degrees of freedom).
fn normal_quantile(p: f64) -> f64 {
    let cdf = |z: f64| 0.5 * erfc(-z / std::f64::consts::SQRT_2);
    let (mut lo, mut hi) = (-40.0, 40.0);
    for _ in 0..200 {
        let mid = 0.5 * (lo + hi);
        if cdf(mid) < p {
            lo = mid;
        } else {
            hi = mid;
        }
    }
    0.5 * (lo + hi)
}

/// Complementary error function (Numerical Recipes `erfcc`, relative error < 1.2e-7).
fn erfc(x: f64) -> f64 {
    let z = x.abs();
    let t = 1.0 / (1.0 + 0.5 * z);
    let r = t
        * (-z * z - 1.265_512_23
            + t * (1.000_023_68
                + t * (0.374_091_96
                    + t * (0.096_784_18
                        + t * (-0.186_288_06
                            + t * (0.278_868_07
                                + t * (-1.135_203_98
                                    + t * (1.488_515_87
                                        + t * (-0.822_152_23 + t * 0.170_872_77)))))))))
            .exp();
    if x >= 0.0 {
        r
    } else {
        2.0 - r
    }
}

/// ln Γ(x) for x > 0 (Lanczos, g = 7, n = 9; ~15 significant digits).
fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const COEF: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Reflection.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = COEF[0];
    let t = x + G + 0.5;
    for (i, c) in COEF.iter().enumerate().skip(1) {
        a += c / (x + i as f64);
    }
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

/// I_x(a, b), the regularized incomplete beta function (continued fraction, Lentz).
fn regularized_incomplete_beta(a: f64, b: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    if x >= 1.0 {
        return 1.0;
    }
    let ln_front = ln_gamma(a + b) - ln_gamma(a) - ln_gamma(b) + a * x.ln() + b * (1.0 - x).ln();
    let front = ln_front.exp();
    if x < (a + 1.0) / (a + b + 2.0) {
        front * beta_cf(a, b, x) / a
    } else {
        1.0 - front * beta_cf(b, a, 1.0 - x) / b
    }
}

fn beta_cf(a: f64, b: f64, x: f64) -> f64 {
    const TINY: f64 = 1e-300;
    const EPS: f64 = 1e-15;
    let qab = a + b;
    let qap = a + 1.0;
    let qam = a - 1.0;
    let mut c = 1.0;
    let mut d = 1.0 - qab * x / qap;
    if d.abs() < TINY {
        d = TINY;
    }
    d = 1.0 / d;
    let mut h = d;
    for m in 1..=300 {
        let m = m as f64;
        let m2 = 2.0 * m;
        let aa = m * (b - m) * x / ((qam + m2) * (a + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        h *= d * c;
        let aa = -(a + m) * (qab + m) * x / ((a + m2) * (qap + m2));
        d = 1.0 + aa * d;
        if d.abs() < TINY {
            d = TINY;
        }
        c = 1.0 + aa / c;
        if c.abs() < TINY {
            c = TINY;
        }
        d = 1.0 / d;
        let del = d * c;
        h *= del;
        if (del - 1.0).abs() < EPS {
            break;
        }
    }
    h
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, tol: f64) -> bool {
        (a - b).abs() <= tol
    }

    #[test]
    fn summary_from_sums_matches_the_textbook_variance() {
        // 2, 4, 4, 4, 5, 5, 7, 9: mean 5, squared deviations sum 32, sample var 32/7.
        let s = Summary::from_sums(8, 40.0, 232.0).unwrap();
        assert_eq!(s.n, 8);
        assert!(close(s.mean, 5.0, 1e-12));
        assert!(close(s.var, 32.0 / 7.0, 1e-12));
        assert_eq!(Summary::from_sums(0, 0.0, 0.0), None);
        let one = Summary::from_sums(1, 3.0, 9.0).unwrap();
        assert_eq!(one.var, 0.0);
        assert_eq!(one.mean_ci95(), None);
        // Mean 5, sd √(32/7) = 2.13809, t(0.975, 7) = 2.364624 → half-width 1.78748.
        let ci = s.mean_ci95().unwrap();
        assert!(close(ci.lo, 5.0 - 1.78748, 1e-4) && close(ci.hi, 5.0 + 1.78748, 1e-4));
    }

    #[test]
    fn t_quantiles_match_published_tables() {
        // Student t tables, two-sided 95 %.
        for (df, expected) in [
            (1.0, 12.706_204_736),
            (2.0, 4.302_652_730),
            (3.0, 3.182_446_305),
            (5.0, 2.570_581_836),
            (10.0, 2.228_138_852),
            (30.0, 2.042_272_456),
            (120.0, 1.979_930_405),
        ] {
            let t = t_quantile(0.975, df);
            assert!(close(t, expected, 1e-6), "df {df}: {t} vs {expected}");
        }
        assert!(close(t_quantile(0.975, f64::INFINITY), 1.959_963_985, 1e-5));
        assert!(close(t_quantile(0.025, 10.0), -2.228_138_852, 1e-6));
        // Fractional df lies between its neighbours.
        let t = t_quantile(0.975, 4.5);
        assert!(t < t_quantile(0.975, 4.0) && t > t_quantile(0.975, 5.0));
    }

    #[test]
    fn welch_interval_on_a_hand_computed_example() {
        // a = 4, 5, 5, 4, 5 (n 5, mean 4.6, var 0.3); b = 3, 4, 3, 4 (n 4, mean 3.5, var 1/3).
        // se² = 0.3/5 + (1/3)/4 = 0.06 + 0.083333 = 0.143333; se = 0.378594.
        // df = 0.143333² / (0.06²/4 + 0.083333²/3) = 0.020544 / (0.0009 + 0.0023148) = 6.3905.
        // t(0.975, 6.3905) ≈ 2.4111 (between t(6) = 2.4469 and t(7) = 2.3646, linear in 1/df)
        // → half-width 2.4111 × 0.378594 = 0.91284; delta 1.1 → [0.1872, 2.0128].
        let a = Summary::from_values(&[4.0, 5.0, 5.0, 4.0, 5.0]).unwrap();
        let b = Summary::from_values(&[3.0, 4.0, 3.0, 4.0]).unwrap();
        let w = welch_ci95(&a, &b).unwrap();
        assert!(close(w.delta, 1.1, 1e-12));
        assert!(close(w.df, 6.3905, 1e-3), "df {}", w.df);
        assert!(close(w.t, 2.4111, 1e-3), "t {}", w.t);
        assert!(close(w.ci95.lo, 0.1872, 1e-3), "lo {}", w.ci95.lo);
        assert!(close(w.ci95.hi, 2.0128, 1e-3), "hi {}", w.ci95.hi);
        assert!(!w.within_noise());
        // Not the 1.96 shortcut: that would give a narrower interval.
        assert!(w.ci95.hi - w.ci95.lo > 2.0 * 1.96 * 0.378_594 + 0.1);
    }

    #[test]
    fn welch_interval_containing_zero_is_within_noise() {
        let a = Summary::from_values(&[1.0, 5.0, 3.0]).unwrap();
        let b = Summary::from_values(&[2.0, 4.0, 3.5]).unwrap();
        let w = welch_ci95(&a, &b).unwrap();
        assert!(w.ci95.lo < 0.0 && w.ci95.hi > 0.0);
        assert!(w.within_noise());
    }

    #[test]
    fn welch_needs_two_values_per_group_and_handles_constant_groups() {
        let one = Summary::from_values(&[4.0]).unwrap();
        let two = Summary::from_values(&[4.0, 5.0]).unwrap();
        assert!(welch_ci95(&one, &two).is_none());
        let a = Summary::from_values(&[4.0, 4.0]).unwrap();
        let b = Summary::from_values(&[3.0, 3.0, 3.0]).unwrap();
        let w = welch_ci95(&a, &b).unwrap();
        assert_eq!(w.ci95, Interval { lo: 1.0, hi: 1.0 });
        assert!(!w.within_noise());
        // One constant group: df falls back to the other group's n − 1.
        let c = Summary::from_values(&[1.0, 2.0, 3.0]).unwrap();
        let w = welch_ci95(&c, &b).unwrap();
        assert!(close(w.df, 2.0, 1e-9));
    }

    #[test]
    fn enps_is_promoters_minus_detractors_in_percent() {
        // 5 promoters, 3 passives, 2 detractors: 50 % − 20 % = 30.
        let e = enps(5, 3, 2).unwrap();
        assert_eq!(e.n, 10);
        assert!(close(e.score, 30.0, 1e-12));
        assert!(close(enps(0, 0, 4).unwrap().score, -100.0, 1e-12));
        assert_eq!(enps(0, 0, 0), None);
    }
}
