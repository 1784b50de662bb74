using System.Runtime.Intrinsics;
using Tessera.Kernels.Reference;

namespace Tessera.Kernels;

/// <summary>
/// SiLU, GELU (tanh approximation), SwiGLU, GeGLU and soft-capping, forward/backward. Same contract as
/// <see cref="ScalarActivations"/>.
/// </summary>
/// <remarks>
/// Everything is written through the logistic σ so one exp serves each element:
/// tanh(w) = 2σ(2w) − 1, hence GELU(x) = x·σ(z) with z = 2√(2/π)(x + 0.044715x³), and
/// ½(1 − tanh²) = 2σ(1 − σ). σ and 1 − σ are each formed as (1 or e)/(1 + e) with e = exp(−|z|),
/// which never overflows and keeps relative accuracy in both tails (no 1 − σ cancellation).
/// Large inputs are split into 4096-element chunks over <see cref="WorkerPool.Shared"/>.
/// </remarks>
public static class Activations
{
    const float K1 = 1.5957691216057308f;                 // 2·√(2/π)
    const float K2 = 1.5957691216057308f * 0.044715f;     // 2·√(2/π)·0.044715
    const float K3 = 3f * 1.5957691216057308f * 0.044715f; // d/dx of K2·x³ over x²

    /// <summary>y = x·σ(x).</summary>
    public static void Silu(ReadOnlySpan<float> x, Span<float> y)
    {
        SpanChecks.Length(y.Length, x.Length, "Activations.Silu", "y", x.Length);
        Elementwise.MapParallel(new SiluOp(), x, y);
    }

    /// <summary>dx = dy·σ(x)·(1 + x·(1 − σ(x))).</summary>
    public static void SiluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        SpanChecks.Length(dy.Length, x.Length, "Activations.SiluBackward", "dy", x.Length);
        SpanChecks.Length(dx.Length, x.Length, "Activations.SiluBackward", "dx", x.Length);
        Elementwise.MapParallel(new SiluBackwardOp(), x, dy, dx);
    }

    /// <summary>y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).</summary>
    public static void Gelu(ReadOnlySpan<float> x, Span<float> y)
    {
        SpanChecks.Length(y.Length, x.Length, "Activations.Gelu", "y", x.Length);
        Elementwise.MapParallel(new GeluOp(), x, y);
    }

    /// <summary>Derivative of the tanh-approximated GELU times dy.</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        SpanChecks.Length(dy.Length, x.Length, "Activations.GeluBackward", "dy", x.Length);
        SpanChecks.Length(dx.Length, x.Length, "Activations.GeluBackward", "dx", x.Length);
        Elementwise.MapParallel(new GeluBackwardOp(), x, dy, dx);
    }

    /// <summary>SwiGLU: y = silu(gate) ⊙ up.</summary>
    public static void SwiGlu(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
    {
        SpanChecks.Length(up.Length, gate.Length, "Activations.SwiGlu", "up", gate.Length);
        SpanChecks.Length(y.Length, gate.Length, "Activations.SwiGlu", "y", gate.Length);
        Elementwise.MapParallel(new SwiGluOp(), gate, up, y);
    }

    /// <summary>dGate = dy·up·silu'(gate); dUp = dy·silu(gate). Both overwritten.</summary>
    public static void SwiGluBackward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> dy,
        Span<float> dGate, Span<float> dUp)
    {
        const string op = "Activations.SwiGluBackward";
        int shape = gate.Length;
        SpanChecks.Length(up.Length, gate.Length, op, "up", shape);
        SpanChecks.Length(dy.Length, gate.Length, op, "dy", shape);
        SpanChecks.Length(dGate.Length, gate.Length, op, "dGate", shape);
        SpanChecks.Length(dUp.Length, gate.Length, op, "dUp", shape);
        Elementwise.MapParallel(new SwiGluBackwardOp(), gate, up, dy, dGate, dUp);
    }

    /// <summary>GeGLU (Gemma): y = gelu_tanh(gate) ⊙ up, the tanh-approximated GELU of HF's <c>gelu_pytorch_tanh</c>.</summary>
    public static void GeGlu(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
    {
        SpanChecks.Length(up.Length, gate.Length, "Activations.GeGlu", "up", gate.Length);
        SpanChecks.Length(y.Length, gate.Length, "Activations.GeGlu", "y", gate.Length);
        Elementwise.MapParallel(new GeGluOp(), gate, up, y);
    }

    /// <summary>dGate = dy·up·gelu'(gate); dUp = dy·gelu(gate). Both overwritten.</summary>
    public static void GeGluBackward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> dy,
        Span<float> dGate, Span<float> dUp)
    {
        const string op = "Activations.GeGluBackward";
        int shape = gate.Length;
        SpanChecks.Length(up.Length, gate.Length, op, "up", shape);
        SpanChecks.Length(dy.Length, gate.Length, op, "dy", shape);
        SpanChecks.Length(dGate.Length, gate.Length, op, "dGate", shape);
        SpanChecks.Length(dUp.Length, gate.Length, op, "dUp", shape);
        Elementwise.MapParallel(new GeGluBackwardOp(), gate, up, dy, dGate, dUp);
    }

    /// <summary>
    /// Soft-capping (Gemma 2 logits): y = cap·tanh(x / cap), squashing x smoothly into (−cap, cap).
    /// <paramref name="cap"/> must be positive and finite.
    /// </summary>
    /// <remarks>
    /// tanh|w| = (1 − e)/(1 + e) with e = exp(−2|w|): no overflow, and the error is a few ulps of the
    /// cap rather than of y (near 0 the subtraction 1 − e cancels), which is what the callers need:
    /// capped values go on to a softmax, where absolute error is what counts.
    /// </remarks>
    public static void SoftCap(ReadOnlySpan<float> x, Span<float> y, float cap)
    {
        CheckCap("Activations.SoftCap", cap);
        SpanChecks.Length(y.Length, x.Length, "Activations.SoftCap", "y", x.Length);
        Elementwise.MapParallel(new SoftCapOp(cap), x, y);
    }

    /// <summary>
    /// Backward of <see cref="SoftCap"/> from its output: dx = dy·(1 − (y/cap)²). Needs no input and
    /// no transcendental.
    /// </summary>
    public static void SoftCapBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float cap)
    {
        const string op = "Activations.SoftCapBackward";
        CheckCap(op, cap);
        SpanChecks.Length(dy.Length, y.Length, op, "dy", y.Length);
        SpanChecks.Length(dx.Length, y.Length, op, "dx", y.Length);
        Elementwise.MapParallel(new SoftCapBackwardOp(cap), y, dy, dx);
    }

    static void CheckCap(string op, float cap)
    {
        if (!(cap > 0) || float.IsInfinity(cap))
            throw new ArgumentOutOfRangeException(nameof(cap), cap, $"{op}: the cap must be positive and finite, got {cap}.");
    }

    /// <summary>tanh(w) = sign(w)·(1 − e)/(1 + e), e = exp(−2|w|), in the three widths.</summary>
    internal static Vector512<float> Tanh(Vector512<float> w)
    {
        var e = VectorMath.Exp(Vector512.Create(-2f) * Vector512.Abs(w));
        var t = (Vector512<float>.One - e) / (Vector512<float>.One + e);
        return Vector512.ConditionalSelect(Vector512.Create(-0f), w, t);   // copy w's sign bit
    }

    internal static Vector256<float> Tanh(Vector256<float> w)
    {
        var e = VectorMath.Exp(Vector256.Create(-2f) * Vector256.Abs(w));
        var t = (Vector256<float>.One - e) / (Vector256<float>.One + e);
        return Vector256.ConditionalSelect(Vector256.Create(-0f), w, t);
    }

    internal static float Tanh(float w)
    {
        float e = VectorMath.Exp(-2f * MathF.Abs(w));
        return MathF.CopySign((1f - e) / (1f + e), w);
    }

    // σ(z) and 1 − σ(z) without overflow or cancellation: e = exp(−|z|), d = 1/(1 + e);
    // for z ≥ 0 σ = d, 1 − σ = e·d; for z < 0 the two swap.
    static void Sigmoid(Vector512<float> z, out Vector512<float> s, out Vector512<float> oms)
    {
        var e = VectorMath.Exp(-Vector512.Abs(z));
        var d = Vector512<float>.One / (Vector512<float>.One + e);
        var ed = e * d;
        var pos = Vector512.GreaterThanOrEqual(z, Vector512<float>.Zero);
        s = Vector512.ConditionalSelect(pos, d, ed);
        oms = Vector512.ConditionalSelect(pos, ed, d);
    }

    static void Sigmoid(Vector256<float> z, out Vector256<float> s, out Vector256<float> oms)
    {
        var e = VectorMath.Exp(-Vector256.Abs(z));
        var d = Vector256<float>.One / (Vector256<float>.One + e);
        var ed = e * d;
        var pos = Vector256.GreaterThanOrEqual(z, Vector256<float>.Zero);
        s = Vector256.ConditionalSelect(pos, d, ed);
        oms = Vector256.ConditionalSelect(pos, ed, d);
    }

    static void Sigmoid(float z, out float s, out float oms)
    {
        float e = VectorMath.Exp(-MathF.Abs(z));
        float d = 1f / (1f + e);
        float ed = e * d;
        if (z >= 0) { s = d; oms = ed; } else { s = ed; oms = d; }
    }

    // σ alone: (1 or e)/(1 + e), one rounding fewer than via the reciprocal.
    static Vector512<float> Sigmoid(Vector512<float> z)
    {
        var e = VectorMath.Exp(-Vector512.Abs(z));
        var num = Vector512.ConditionalSelect(Vector512.GreaterThanOrEqual(z, Vector512<float>.Zero), Vector512<float>.One, e);
        return num / (Vector512<float>.One + e);
    }

    static Vector256<float> Sigmoid(Vector256<float> z)
    {
        var e = VectorMath.Exp(-Vector256.Abs(z));
        var num = Vector256.ConditionalSelect(Vector256.GreaterThanOrEqual(z, Vector256<float>.Zero), Vector256<float>.One, e);
        return num / (Vector256<float>.One + e);
    }

    static float Sigmoid(float z)
    {
        float e = VectorMath.Exp(-MathF.Abs(z));
        return (z >= 0 ? 1f : e) / (1f + e);
    }

    // z = 2√(2/π)(x + 0.044715x³) = x·(K1 + K2·x²); both factors positive-sum, so no cancellation.
    static Vector512<float> GeluArg(Vector512<float> x) => x * Vector512.FusedMultiplyAdd(Vector512.Create(K2), x * x, Vector512.Create(K1));
    static Vector256<float> GeluArg(Vector256<float> x) => x * Vector256.FusedMultiplyAdd(Vector256.Create(K2), x * x, Vector256.Create(K1));
    static float GeluArg(float x) => x * MathF.FusedMultiplyAdd(K2, x * x, K1);

    readonly struct SiluOp : IUnaryOp
    {
        public float Invoke(float x) => x * Sigmoid(x);
        public Vector256<float> Invoke(Vector256<float> x) => x * Sigmoid(x);
        public Vector512<float> Invoke(Vector512<float> x) => x * Sigmoid(x);
    }

    readonly struct GeluOp : IUnaryOp
    {
        public float Invoke(float x) => x * Sigmoid(GeluArg(x));
        public Vector256<float> Invoke(Vector256<float> x) => x * Sigmoid(GeluArg(x));
        public Vector512<float> Invoke(Vector512<float> x) => x * Sigmoid(GeluArg(x));
    }

    readonly struct SwiGluOp : IBinaryOp
    {
        public float Invoke(float g, float u) => g * Sigmoid(g) * u;
        public Vector256<float> Invoke(Vector256<float> g, Vector256<float> u) => g * Sigmoid(g) * u;
        public Vector512<float> Invoke(Vector512<float> g, Vector512<float> u) => g * Sigmoid(g) * u;
    }

    readonly struct GeGluOp : IBinaryOp
    {
        public float Invoke(float g, float u) => g * Sigmoid(GeluArg(g)) * u;
        public Vector256<float> Invoke(Vector256<float> g, Vector256<float> u) => g * Sigmoid(GeluArg(g)) * u;
        public Vector512<float> Invoke(Vector512<float> g, Vector512<float> u) => g * Sigmoid(GeluArg(g)) * u;
    }

    readonly struct SoftCapOp(float cap) : IUnaryOp
    {
        public float Invoke(float x) => cap * Tanh(x / cap);
        public Vector256<float> Invoke(Vector256<float> x) { var c = Vector256.Create(cap); return c * Tanh(x / c); }
        public Vector512<float> Invoke(Vector512<float> x) { var c = Vector512.Create(cap); return c * Tanh(x / c); }
    }

    // dx = dy·(1 − t²), t = y/cap; the fma forms 1 − t² with one rounding (no cancellation error beyond it).
    readonly struct SoftCapBackwardOp(float cap) : IBinaryOp
    {
        public float Invoke(float y, float dy) { float t = y / cap; return dy * MathF.FusedMultiplyAdd(-t, t, 1f); }
        public Vector256<float> Invoke(Vector256<float> y, Vector256<float> dy)
        {
            var t = y / Vector256.Create(cap);
            return dy * Vector256.FusedMultiplyAdd(-t, t, Vector256<float>.One);
        }
        public Vector512<float> Invoke(Vector512<float> y, Vector512<float> dy)
        {
            var t = y / Vector512.Create(cap);
            return dy * Vector512.FusedMultiplyAdd(-t, t, Vector512<float>.One);
        }
    }

    // dx = dy·σ·(1 + x·(1 − σ))
    readonly struct SiluBackwardOp : IBinaryOp
    {
        public float Invoke(float x, float dy) { Sigmoid(x, out var s, out var oms); return dy * (s * MathF.FusedMultiplyAdd(x, oms, 1f)); }
        public Vector256<float> Invoke(Vector256<float> x, Vector256<float> dy)
        {
            Sigmoid(x, out var s, out var oms);
            return dy * (s * Vector256.FusedMultiplyAdd(x, oms, Vector256<float>.One));
        }
        public Vector512<float> Invoke(Vector512<float> x, Vector512<float> dy)
        {
            Sigmoid(x, out var s, out var oms);
            return dy * (s * Vector512.FusedMultiplyAdd(x, oms, Vector512<float>.One));
        }
    }

    // With z = x(K1 + K2x²) and σ = σ(z): d/dx[x·σ(z)] = σ·(1 + x·(1 − σ)·z'), z' = K1 + 3K2x².
    readonly struct GeluBackwardOp : IBinaryOp
    {
        public float Invoke(float x, float dy)
        {
            Sigmoid(GeluArg(x), out var s, out var oms);
            float dz = MathF.FusedMultiplyAdd(K3, x * x, K1);
            return dy * (s * MathF.FusedMultiplyAdd(x * oms, dz, 1f));
        }
        public Vector256<float> Invoke(Vector256<float> x, Vector256<float> dy)
        {
            Sigmoid(GeluArg(x), out var s, out var oms);
            var dz = Vector256.FusedMultiplyAdd(Vector256.Create(K3), x * x, Vector256.Create(K1));
            return dy * (s * Vector256.FusedMultiplyAdd(x * oms, dz, Vector256<float>.One));
        }
        public Vector512<float> Invoke(Vector512<float> x, Vector512<float> dy)
        {
            Sigmoid(GeluArg(x), out var s, out var oms);
            var dz = Vector512.FusedMultiplyAdd(Vector512.Create(K3), x * x, Vector512.Create(K1));
            return dy * (s * Vector512.FusedMultiplyAdd(x * oms, dz, Vector512<float>.One));
        }
    }

    // (dGate, dUp) from (gate, up, dy).
    readonly struct SwiGluBackwardOp : ITernaryPairOp
    {
        public void Invoke(float g, float u, float dy, out float dGate, out float dUp)
        {
            Sigmoid(g, out var s, out var oms);
            dUp = dy * (g * s);
            dGate = (dy * u) * (s * MathF.FusedMultiplyAdd(g, oms, 1f));
        }
        public void Invoke(Vector256<float> g, Vector256<float> u, Vector256<float> dy, out Vector256<float> dGate, out Vector256<float> dUp)
        {
            Sigmoid(g, out var s, out var oms);
            dUp = dy * (g * s);
            dGate = (dy * u) * (s * Vector256.FusedMultiplyAdd(g, oms, Vector256<float>.One));
        }
        public void Invoke(Vector512<float> g, Vector512<float> u, Vector512<float> dy, out Vector512<float> dGate, out Vector512<float> dUp)
        {
            Sigmoid(g, out var s, out var oms);
            dUp = dy * (g * s);
            dGate = (dy * u) * (s * Vector512.FusedMultiplyAdd(g, oms, Vector512<float>.One));
        }
    }

    // (dGate, dUp) from (gate, up, dy): dUp = dy·gelu(g), dGate = (dy·u)·gelu'(g) with
    // gelu'(g) = σ·(1 + g·(1 − σ)·z') as in GeluBackwardOp.
    readonly struct GeGluBackwardOp : ITernaryPairOp
    {
        public void Invoke(float g, float u, float dy, out float dGate, out float dUp)
        {
            Sigmoid(GeluArg(g), out var s, out var oms);
            float dz = MathF.FusedMultiplyAdd(K3, g * g, K1);
            dUp = dy * (g * s);
            dGate = (dy * u) * (s * MathF.FusedMultiplyAdd(g * oms, dz, 1f));
        }
        public void Invoke(Vector256<float> g, Vector256<float> u, Vector256<float> dy, out Vector256<float> dGate, out Vector256<float> dUp)
        {
            Sigmoid(GeluArg(g), out var s, out var oms);
            var dz = Vector256.FusedMultiplyAdd(Vector256.Create(K3), g * g, Vector256.Create(K1));
            dUp = dy * (g * s);
            dGate = (dy * u) * (s * Vector256.FusedMultiplyAdd(g * oms, dz, Vector256<float>.One));
        }
        public void Invoke(Vector512<float> g, Vector512<float> u, Vector512<float> dy, out Vector512<float> dGate, out Vector512<float> dUp)
        {
            Sigmoid(GeluArg(g), out var s, out var oms);
            var dz = Vector512.FusedMultiplyAdd(Vector512.Create(K3), g * g, Vector512.Create(K1));
            dUp = dy * (g * s);
            dGate = (dy * u) * (s * Vector512.FusedMultiplyAdd(g * oms, dz, Vector512<float>.One));
        }
    }
}
