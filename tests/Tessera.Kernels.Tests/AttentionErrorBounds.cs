using Tessera.Kernels;

namespace Tessera.Kernels.Tests;

/// <summary>
/// Per-element error bounds for the tiled attention kernel, derived by running the kernel's own
/// fp32 arithmetic through the standard model (|fl(a∘b) − a∘b| ≤ u|a∘b|, dot products within
/// γₙ·Σ|aᵢbᵢ|, see <see cref="Tolerance"/>) and evaluated in double from the exact quantities.
/// The exact values are the ones the double-accumulating scalar twin returns before its final
/// rounding to float, so callers add one ulp of the reference on top.
///
/// Forward, row i (exact scores s_j = scale·q·k_j, weights w_j = exp(s_j − lse)):
///  • each computed score is off by δs_j ≤ γ_D·|scale|·Σ_d|q_d k_jd| (D-term FMA chain + scale);
///  • its unnormalised weight exp(fl(ŝ_j − m)) then carries relative error
///    ρ_j = expm1(δs_j) + u·|s_j − m| (rounding of the exponent argument) + c_e·u (exp, c_e =
///    <see cref="AttentionExp.MaxUlps"/>) + n_K·((c_e + 1)·u + 2u·s_max) for the ≤ n_K rescales
///    by exp(m_old − m_new) (exp error, argument rounding ≤ u·|m_old − m_new| ≤ 2u·s_max, product);
///  • l = Σ weights and acc = Σ weights·v are ≤ T-term FMA sums (γ_T);
///  • o = acc / l then satisfies |ô − o| ≤ (Σ_j w_j|v_j|(ρ_j + γ_T)(1 + γ_T) + |o|·R) / (1 − R)
///    + u·|o| with R = max ρ + γ_T + max ρ·γ_T, because perturbing numerator and denominator
///    weights by relative amounts ≤ ρ_j + γ_T moves the ratio by at most that.
///  • lse = m + log l: log-sum-exp is 1-Lipschitz in the max norm of the scores (max δs), l's
///    relative error R' enters as −log(1 − R'), MathF.Log adds ≤ 1 ulp (2u·|log l|) and the
///    addition u·|lse|.
/// Backward, for given q, k, v, o, lse, dO (x_ij = s_ij − lse_i, p_ij = exp x_ij):
///  • x̂ = fma(Σ̂ q·k, scale, −lse) is off by δs + u(|x| + δs); p̂ carries
///    εp = p·(expm1(δx) + c_e·u·(1 + expm1(δx)));
///  • dP = dO·v and D_i = dO·o are D-term dot products (γ_D); t = dP − D_i adds u|t|;
///    dS = p·t carries εS = εp·|t̂| + p·e_t + u·(p + εp)·|t̂|;
///  • dV = Σ_i p̂ dO, dK = scale·Σ_i dŜ q, dQ = scale·Σ_j dŜ k are n-term FMA sums
///    (n = group·T for dK/dV, T for dQ): Σ|errors|·|factor| + γ_n·Σ|terms|, plus u for the scale.
/// Soft-cap c (t = tanh(z/c), z = scale·q·k): the capped score c·t moves by (1 − t²)·δz from the
/// dot product's error, and the kernel's tanh adds c·((1 − t²)(2u|z/c| + c_e·u/2) + 4u|t|): the
/// argument's two roundings (scale/c and the product) through tanh′ = 1 − t², exp's error through
/// ∂[(1 − e)/(1 + e)]/∂e·e = (1 − t²)/2, then 1 − e, 1 + e, the division and ×c (the backward fuses
/// ×c into the exponent's fma: 3u|t|). The backward's factor f = 1 − t² (one fma) is off by
/// 2|t|·δt + u·f, and the extra product dS·f rounds once more.
/// The analysis is first order in u except where stated (expm1, the 1/(1 − R) factor); the
/// dropped terms are O(u²·T²), below 10⁻⁹ relative at the sizes tested.
/// </summary>
internal static class AttentionErrorBounds
{
    const double U = Tolerance.U;
    static readonly double Ce = AttentionExp.MaxUlps;

    /// <summary>Bounds on |fast − exact| for o (B, Hq, T, D) and lse (B, Hq, T).</summary>
    public static (double[] O, double[] Lse) Forward(float[] q, float[] k, float[] v, int batch, int heads, int kvHeads, int seq, int dim, float scale, int window,
        float softCap = 0f, int[]? prefix = null)
    {
        var boundO = new double[q.Length];
        var boundLse = new double[batch * heads * seq];
        var s = new double[seq]; var ds = new double[seq];
        int keyTiles = (seq + Attention.TileCols - 1) / Attention.TileCols;
        double gD = Tolerance.Gamma(dim), gT = Tolerance.Gamma(seq);
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            {
                int qo = (b * heads + h) * seq * dim, ko = (b * kvHeads + h / (heads / kvHeads)) * seq * dim;
                for (int i = 0; i < seq; i++)
                {
                    int lo = window > 0 ? Math.Max(0, i - window + 1) : 0, hi = Math.Max(i, (prefix is null ? 0 : prefix[b]) - 1);
                    double m = double.NegativeInfinity, sMax = 0, dsMax = 0;
                    for (int j = lo; j <= hi; j++)
                    {
                        double dot = 0, abs = 0;
                        for (int d = 0; d < dim; d++)
                        {
                            double t = (double)q[qo + i * dim + d] * k[ko + j * dim + d];
                            dot += t; abs += Math.Abs(t);
                        }
                        (s[j], ds[j], _, _) = Capped(dot * scale, gD * Math.Abs(scale) * abs, softCap, 4);
                        m = Math.Max(m, s[j]); sMax = Math.Max(sMax, Math.Abs(s[j]) + ds[j]); dsMax = Math.Max(dsMax, ds[j]);
                    }
                    double l = 0;
                    for (int j = lo; j <= hi; j++) l += Math.Exp(s[j] - m);
                    double rescale = keyTiles * ((Ce + 1) * U + 2 * U * sMax);
                    double rhoMax = 0;
                    for (int j = lo; j <= hi; j++)
                        rhoMax = Math.Max(rhoMax, Rho(ds[j], s[j] - m, dsMax, rescale));
                    double r = rhoMax + gT + rhoMax * gT;
                    for (int d = 0; d < dim; d++)
                    {
                        double weighted = 0, o = 0;
                        for (int j = lo; j <= hi; j++)
                        {
                            double w = Math.Exp(s[j] - m) / l, vj = v[ko + j * dim + d];
                            weighted += w * Math.Abs(vj) * (Rho(ds[j], s[j] - m, dsMax, rescale) + gT) * (1 + gT);
                            o += w * vj;
                        }
                        boundO[qo + i * dim + d] = (weighted + Math.Abs(o) * r) / (1 - r) + U * Math.Abs(o) + 1e-30;
                    }
                    double logL = Math.Log(l), lse = m + logL;
                    // The row's own key (j = i) is always visible, so l ≥ 1 and the max is finite.
                    double rNoScore = Ce * U + keyTiles * ((Ce + 1) * U + 2 * U * sMax) + 2 * U * sMax + gT;
                    boundLse[(b * heads + h) * seq + i] = dsMax - Math.Log(1 - rNoScore) + 2 * U * Math.Abs(logL) + U * Math.Abs(lse) + 1e-30;
                }
            }
        return (boundO, boundLse);
    }

    /// <summary>
    /// The exact (capped) score, its error bound, the backward factor 1 − t² and that factor's
    /// error, from the uncapped score z and its error dz; <paramref name="finalRoundings"/> counts
    /// the roundings after tanh's exp (4 in the forward, 3 in the backward).
    /// </summary>
    internal static (double S, double Ds, double F, double Ef) Capped(double z, double dz, float cap, int finalRoundings)
    {
        if (!(cap > 0)) return (z, dz, 1, 0);
        double w = z / cap, t = Math.Tanh(w), f = 1 - t * t;
        double ds = f * dz + cap * (f * (2 * U * Math.Abs(w) + Ce * U / 2) + finalRoundings * U * Math.Abs(t));
        return (cap * t, ds, f, 2 * Math.Abs(t) * ds / cap + U * f);
    }

    static double Rho(double ds, double x, double dsMax, double rescale)
        => double.ExpM1(ds) + U * (Math.Abs(x) + 2 * dsMax) + Ce * U + rescale;

    /// <summary>Bounds on |fast − exact| for dq, dk, dv given the same inputs to both implementations.</summary>
    public static (double[] Dq, double[] Dk, double[] Dv) Backward(float[] q, float[] k, float[] v, float[] o, float[] lse, float[] dO,
        int batch, int heads, int kvHeads, int seq, int dim, float scale, int window, bool roundedInputs = false, float softCap = 0f, int[]? prefix = null)
    {
        // roundedInputs: o and lse are the float roundings of the true forward's values, and the
        // bound is wanted against the true gradient. Rounding lse by u|lse| scales every p by up to
        // that relative amount (an extra exponent error), and rounding o moves D_i by ≤ u·Σ|dO·o|.
        double inputU = roundedInputs ? U : 0;
        int group = heads / kvHeads;
        // Accumulate Σ|error|·|factor| and Σ|term| per output; combine at the end.
        var dqErr = new double[q.Length]; var dqAbs = new double[q.Length];
        var dkErr = new double[k.Length]; var dkAbs = new double[k.Length]; var dkVal = new double[k.Length];
        var dvErr = new double[k.Length]; var dvAbs = new double[k.Length];
        var dqVal = new double[q.Length];
        double gD = Tolerance.Gamma(dim);
        for (int b = 0; b < batch; b++)
            for (int h = 0; h < heads; h++)
            {
                int qo = (b * heads + h) * seq * dim, ko = (b * kvHeads + h / group) * seq * dim;
                for (int i = 0; i < seq; i++)
                {
                    int lo = window > 0 ? Math.Max(0, i - window + 1) : 0, hi = Math.Max(i, (prefix is null ? 0 : prefix[b]) - 1);
                    double li = lse[(b * heads + h) * seq + i];
                    double delta = 0, deltaAbs = 0;
                    for (int d = 0; d < dim; d++)
                    {
                        double t = (double)dO[qo + i * dim + d] * o[qo + i * dim + d];
                        delta += t; deltaAbs += Math.Abs(t);
                    }
                    double eDelta = (gD + inputU) * deltaAbs;
                    for (int j = lo; j <= hi; j++)
                    {
                        double sq = 0, sqAbs = 0, dp = 0, dpAbs = 0;
                        for (int d = 0; d < dim; d++)
                        {
                            double a = (double)q[qo + i * dim + d] * k[ko + j * dim + d];
                            double c = (double)dO[qo + i * dim + d] * v[ko + j * dim + d];
                            sq += a; sqAbs += Math.Abs(a); dp += c; dpAbs += Math.Abs(c);
                        }
                        var (sc0, dsc, f, ef) = Capped(sq * scale, gD * Math.Abs(scale) * sqAbs, softCap, 3);
                        double x = sc0 - li, p = Math.Exp(x);
                        double ex = double.ExpM1(dsc + U * (Math.Abs(x) + dsc) + inputU * Math.Abs(li));
                        double ep = p * (ex + Ce * U * (1 + ex));
                        double t = dp - delta;
                        double et = (gD * dpAbs + eDelta) * (1 + U) + U * Math.Abs(t);
                        double tHat = Math.Abs(t) + et;
                        double dS = p * t * f;
                        double eS = (ep * tHat + p * et + U * (p + ep) * tHat) * (f + ef) + Math.Abs(p * t) * ef
                            + (softCap > 0 ? U * Math.Abs(dS) : 0);
                        for (int d = 0; d < dim; d++)
                        {
                            int qi = qo + i * dim + d, kj = ko + j * dim + d;
                            double dOv = Math.Abs(dO[qi]), qv = Math.Abs(q[qi]), kv = Math.Abs(k[kj]);
                            dvErr[kj] += ep * dOv; dvAbs[kj] += (p + ep) * dOv;
                            dkErr[kj] += eS * qv; dkAbs[kj] += (Math.Abs(dS) + eS) * qv; dkVal[kj] += dS * q[qi] * scale;
                            dqErr[qi] += eS * kv; dqAbs[qi] += (Math.Abs(dS) + eS) * kv; dqVal[qi] += dS * k[kj] * scale;
                        }
                    }
                }
            }
        double gKey = Tolerance.Gamma(group * seq), gQuery = Tolerance.Gamma(seq), sc = Math.Abs(scale);
        var bq = new double[q.Length]; var bk = new double[k.Length]; var bv = new double[k.Length];
        for (int i = 0; i < q.Length; i++) bq[i] = sc * (dqErr[i] + gQuery * dqAbs[i]) + U * Math.Abs(dqVal[i]) + 1e-30;
        for (int i = 0; i < k.Length; i++)
        {
            bk[i] = sc * (dkErr[i] + gKey * dkAbs[i]) + U * Math.Abs(dkVal[i]) + 1e-30;
            bv[i] = dvErr[i] + gKey * dvAbs[i] + 1e-30;
        }
        return (bq, bk, bv);
    }
}
