namespace Tessera.Kernels;

/// <summary>Input checks shared by the top-k kernel and its scalar twin.</summary>
public static class TopKChecks
{
    /// <summary>Throws unless 1 ≤ k ≤ cols.</summary>
    public static void Check(int cols, int k)
    {
        if (k < 1 || k > cols)
            throw new ArgumentOutOfRangeException(nameof(k), k, $"TopK: k must be in [1, {cols}], got {k}.");
    }
}
