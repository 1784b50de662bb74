namespace Tessera.Kernels.Reference;

/// <summary>Scalar twin of <see cref="Activations"/>. GELU is the tanh approximation (GPT-2, torch approximate="tanh").</summary>
public static class ScalarActivations
{
    const double GeluC = 0.7978845608028654; // sqrt(2/π)

    static double Sigmoid(double v) => 1.0 / (1.0 + Math.Exp(-v));

    /// <summary>y = x·σ(x).</summary>
    public static void Silu(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++) y[i] = (float)(x[i] * Sigmoid(x[i]));
    }

    /// <summary>dx = dy·σ(x)·(1 + x·(1 − σ(x))).</summary>
    public static void SiluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double s = Sigmoid(x[i]);
            dx[i] = (float)(dy[i] * s * (1 + x[i] * (1 - s)));
        }
    }

    /// <summary>y = ½x(1 + tanh(√(2/π)(x + 0.044715x³))).</summary>
    public static void Gelu(ReadOnlySpan<float> x, Span<float> y)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            y[i] = (float)(0.5 * v * (1 + Math.Tanh(GeluC * (v + 0.044715 * v * v * v))));
        }
    }

    /// <summary>Derivative of the tanh-approximated GELU times dy.</summary>
    public static void GeluBackward(ReadOnlySpan<float> x, ReadOnlySpan<float> dy, Span<float> dx)
    {
        for (int i = 0; i < x.Length; i++)
        {
            double v = x[i];
            double u = GeluC * (v + 0.044715 * v * v * v);
            double t = Math.Tanh(u);
            double du = GeluC * (1 + 3 * 0.044715 * v * v);
            dx[i] = (float)(dy[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du));
        }
    }

    /// <summary>SwiGLU: y = silu(gate) ⊙ up.</summary>
    public static void SwiGlu(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
    {
        for (int i = 0; i < gate.Length; i++) y[i] = (float)(gate[i] * Sigmoid(gate[i]) * up[i]);
    }

    /// <summary>dGate = dy·up·silu'(gate); dUp = dy·silu(gate). Both overwritten.</summary>
    public static void SwiGluBackward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> dy,
        Span<float> dGate, Span<float> dUp)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            double g = gate[i], s = Sigmoid(g);
            dUp[i] = (float)(dy[i] * g * s);
            dGate[i] = (float)(dy[i] * up[i] * s * (1 + g * (1 - s)));
        }
    }

    /// <summary>GeGLU: y = gelu_tanh(gate) ⊙ up.</summary>
    public static void GeGlu(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, Span<float> y)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            double v = gate[i];
            y[i] = (float)(0.5 * v * (1 + Math.Tanh(GeluC * (v + 0.044715 * v * v * v))) * up[i]);
        }
    }

    /// <summary>dGate = dy·up·gelu'(gate); dUp = dy·gelu(gate). Both overwritten.</summary>
    public static void GeGluBackward(ReadOnlySpan<float> gate, ReadOnlySpan<float> up, ReadOnlySpan<float> dy,
        Span<float> dGate, Span<float> dUp)
    {
        for (int i = 0; i < gate.Length; i++)
        {
            double v = gate[i];
            double t = Math.Tanh(GeluC * (v + 0.044715 * v * v * v));
            double du = GeluC * (1 + 3 * 0.044715 * v * v);
            dUp[i] = (float)(dy[i] * 0.5 * v * (1 + t));
            dGate[i] = (float)(dy[i] * up[i] * (0.5 * (1 + t) + 0.5 * v * (1 - t * t) * du));
        }
    }

    /// <summary>Soft-capping: y = cap·tanh(x / cap).</summary>
    public static void SoftCap(ReadOnlySpan<float> x, Span<float> y, float cap)
    {
        for (int i = 0; i < x.Length; i++) y[i] = (float)(cap * Math.Tanh((double)x[i] / cap));
    }

    /// <summary>dx = dy·(1 − (y/cap)²), from the output y of <see cref="SoftCap"/>.</summary>
    public static void SoftCapBackward(ReadOnlySpan<float> y, ReadOnlySpan<float> dy, Span<float> dx, float cap)
    {
        for (int i = 0; i < y.Length; i++)
        {
            double t = (double)y[i] / cap;
            dx[i] = (float)(dy[i] * (1 - t * t));
        }
    }
}
