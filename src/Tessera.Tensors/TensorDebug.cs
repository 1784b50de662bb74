namespace Tessera.Tensors;

/// <summary>
/// Debug switches. With <see cref="CheckFinite"/> on (or the environment variable
/// <c>TESSERA_DEBUG_NAN=1</c> at start-up) every graph op scans its output, and backward scans
/// every gradient it produces, throwing at the first NaN/Inf with the op and shapes named —
/// so a NaN is caught where it is born instead of surfacing as a NaN loss many ops later.
/// </summary>
public static class TensorDebug
{
    /// <summary>When true, every op checks its output (and backward its gradients) for NaN/Inf.</summary>
    public static bool CheckFinite { get; set; } = Environment.GetEnvironmentVariable("TESSERA_DEBUG_NAN") == "1";

    internal static void ThrowIfNotFinite(string op, string what, Tensor t, ReadOnlySpan<Tensor> inputs)
    {
        var span = t.AsSpan(op);
        for (int i = 0; i < span.Length; i++)
        {
            if (float.IsFinite(span[i])) continue;
            var sb = new System.Text.StringBuilder();
            foreach (var x in inputs) sb.Append(sb.Length == 0 ? "" : ", ").Append('\'').Append(x.Name).Append("' ").Append(x.ShapeString);
            throw new ArithmeticException(
                $"{op}: {what} {t.ShapeString} has a non-finite value {span[i]} at flat index {i} (inputs: {sb}). TensorDebug.CheckFinite is on.");
        }
    }
}
