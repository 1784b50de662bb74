namespace Tessera.Tensors;

/// <summary>
/// Inverted dropout: in training each element is kept with probability 1 − p and scaled by
/// 1/(1 − p), so the expected activation is unchanged and evaluation is the identity.
/// The mask comes from an <see cref="Rng"/> drawn on the calling thread in element order, so a
/// run is bit-identical for the same RNG state (which the trainer saves in checkpoints).
/// </summary>
public sealed partial class Graph
{
    /// <summary>
    /// The stream dropout masks are drawn from. Null (the default) is evaluation mode: every
    /// <see cref="Dropout(Tensor, float)"/> is the identity. The trainer sets it on its training graphs.
    /// </summary>
    public Rng? DropoutRng { get; set; }

    /// <summary>
    /// Dropout with probability <paramref name="p"/> using <see cref="DropoutRng"/>; returns
    /// <paramref name="x"/> itself when p is 0 or the graph is in evaluation mode.
    /// </summary>
    public Tensor Dropout(Tensor x, float p) => p == 0 || DropoutRng is null ? x : Dropout(x, p, DropoutRng);

    /// <summary>y = x ⊙ m / (1 − p) with m ~ Bernoulli(1 − p) drawn from <paramref name="rng"/> (always applied).</summary>
    public Tensor Dropout(Tensor x, float p, Rng rng)
    {
        const string op = "Dropout";
        Usable(op, x);
        ArgumentNullException.ThrowIfNull(rng, op);
        if (!(p >= 0 && p < 1)) throw new ArgumentOutOfRangeException(nameof(p), p, $"{op}: probability must be in [0, 1).");
        var y = NewOutput(op, x.Shape, false, x);
        var mask = NewSaved(op, x.Shape);
        FillMask(mask.AsSpan(op), p, rng);
        System.Numerics.Tensors.TensorPrimitives.Multiply(x.AsSpan(op), mask.AsSpan(op), y.AsSpan(op));
        Record(op, y, [x], () =>
        {
            var g = GradSpan(x);
            System.Numerics.Tensors.TensorPrimitives.FusedMultiplyAdd(y.Grad!.AsSpan(op), mask.AsSpan(op), g, g);
        });
        return y;
    }

    /// <summary>
    /// Mask values 0 or 1/(1 − p): each element compares 32 random bits with p·2³², two elements
    /// per 64-bit draw, so the keep probability is exact to 2⁻³² and the draw count is fixed.
    /// </summary>
    static void FillMask(Span<float> mask, float p, Rng rng)
    {
        ulong threshold = (ulong)Math.Round(p * 4294967296.0);
        float keep = 1f / (1f - p);
        int i = 0;
        for (; i + 1 < mask.Length; i += 2)
        {
            ulong r = rng.NextUInt64();
            mask[i] = (r & 0xFFFF_FFFFUL) >= threshold ? keep : 0f;
            mask[i + 1] = (r >> 32) >= threshold ? keep : 0f;
        }
        if (i < mask.Length) mask[i] = (rng.NextUInt64() & 0xFFFF_FFFFUL) >= threshold ? keep : 0f;
    }
}
