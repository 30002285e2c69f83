//! The Karhunen–Loève transform learned per channel: the eigenvectors of the covariance of that
//! channel's training windows, strongest first (cyclic Jacobi eigen-decomposition in f64).

/// Eigen-decomposition of the symmetric `n × n` matrix `a` (row-major): eigenvalues descending
/// and the matching eigenvectors as rows of the returned matrix.
pub fn symmetric_eigen(a: &[f64], n: usize) -> (Vec<f64>, Vec<f64>) {
    let mut a = a.to_vec();
    let mut v = vec![0f64; n * n];
    for i in 0..n {
        v[i * n + i] = 1.0;
    }
    for _sweep in 0..60 {
        let off: f64 = (0..n)
            .flat_map(|i| (0..n).filter(move |&j| j != i).map(move |j| (i, j)))
            .map(|(i, j)| a[i * n + j] * a[i * n + j])
            .sum();
        let diag: f64 = (0..n).map(|i| a[i * n + i] * a[i * n + i]).sum();
        if off <= 1e-22 * diag.max(1e-300) {
            break;
        }
        for p in 0..n {
            for q in p + 1..n {
                let apq = a[p * n + q];
                if apq.abs() < 1e-300 {
                    continue;
                }
                let theta = (a[q * n + q] - a[p * n + p]) / (2.0 * apq);
                let t = theta.signum() / (theta.abs() + (theta * theta + 1.0).sqrt());
                let t = if theta == 0.0 { 1.0 } else { t };
                let c = 1.0 / (t * t + 1.0).sqrt();
                let s = t * c;
                for k in 0..n {
                    let (akp, akq) = (a[k * n + p], a[k * n + q]);
                    a[k * n + p] = c * akp - s * akq;
                    a[k * n + q] = s * akp + c * akq;
                }
                for k in 0..n {
                    let (apk, aqk) = (a[p * n + k], a[q * n + k]);
                    a[p * n + k] = c * apk - s * aqk;
                    a[q * n + k] = s * apk + c * aqk;
                }
                for k in 0..n {
                    let (vkp, vkq) = (v[k * n + p], v[k * n + q]);
                    v[k * n + p] = c * vkp - s * vkq;
                    v[k * n + q] = s * vkp + c * vkq;
                }
            }
        }
    }
    let mut order: Vec<usize> = (0..n).collect();
    order.sort_by(|&i, &j| a[j * n + j].total_cmp(&a[i * n + i]));
    let values = order.iter().map(|&i| a[i * n + i]).collect();
    let mut rows = vec![0f64; n * n];
    for (r, &i) in order.iter().enumerate() {
        for k in 0..n {
            rows[r * n + k] = v[k * n + i];
        }
    }
    (values, rows)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn matches_a_known_decomposition() {
        // [[2,1],[1,2]]: eigenvalues 3 and 1, eigenvectors (1,1)/√2 and (1,−1)/√2.
        let (val, vec) = symmetric_eigen(&[2.0, 1.0, 1.0, 2.0], 2);
        assert!((val[0] - 3.0).abs() < 1e-12 && (val[1] - 1.0).abs() < 1e-12);
        let h = std::f64::consts::FRAC_1_SQRT_2;
        assert!((vec[0].abs() - h).abs() < 1e-12 && (vec[0] - vec[1]).abs() < 1e-12);
        assert!((vec[2] + vec[3]).abs() < 1e-12);
        // A random symmetric matrix: A·v = λ·v and the vectors are orthonormal.
        let n = 12;
        let mut a = vec![0f64; n * n];
        for i in 0..n {
            for j in 0..=i {
                let x = ((i * 31 + j * 17) % 13) as f64 - 6.0;
                a[i * n + j] = x;
                a[j * n + i] = x;
            }
        }
        let (val, vec) = symmetric_eigen(&a, n);
        for r in 0..n {
            for i in 0..n {
                let av: f64 = (0..n).map(|k| a[i * n + k] * vec[r * n + k]).sum();
                assert!((av - val[r] * vec[r * n + i]).abs() < 1e-9);
            }
            for s in 0..n {
                let d: f64 = (0..n).map(|k| vec[r * n + k] * vec[s * n + k]).sum();
                assert!((d - f64::from(u8::from(r == s))).abs() < 1e-9);
            }
        }
    }
}
