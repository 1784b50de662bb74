using Tessera.Thinking;
namespace Tessera.Evals.Thinking;

/// <summary>
/// The unbiased pass@k estimator (Chen et al. 2021): from n samples of which c are correct, the
/// probability that k samples drawn without replacement hold at least one correct one,
/// <c>1 − C(n−c, k) / C(n, k)</c>, computed as a product so it never overflows.
/// </summary>
public static class PassAtK
{
    /// <summary>pass@k for n samples with c correct.</summary>
    /// <exception cref="ArgumentOutOfRangeException">Unless 0 ≤ c ≤ n and 1 ≤ k ≤ n.</exception>
    public static double Estimate(int n, int c, int k)
    {
        if (n < 1 || c < 0 || c > n) throw new ArgumentOutOfRangeException(nameof(c), $"pass@k: need 0 ≤ c ≤ n with n ≥ 1 (n = {n}, c = {c})");
        if (k < 1 || k > n) throw new ArgumentOutOfRangeException(nameof(k), $"pass@k: need 1 ≤ k ≤ n (k = {k}, n = {n})");
        if (n - c < k) return 1.0;
        // C(n−c, k)/C(n, k) = Π_{i=n−c+1}^{n} (1 − k/i)
        double allWrong = 1.0;
        for (int i = n - c + 1; i <= n; i++) allWrong *= 1.0 - (double)k / i;
        return 1.0 - allWrong;
    }
}
