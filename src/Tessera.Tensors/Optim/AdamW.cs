namespace Tessera.Tensors;

/// <summary>
/// AdamW with decoupled weight decay and bias correction, fp32 moments, following the update of
/// torch.optim.AdamW (torch 1.13, single-tensor path) term by term:
/// <code>
/// p ← p·(1 − lr·wd)
/// m ← β₁m + (1 − β₁)g;  v ← β₂v + (1 − β₂)g²
/// p ← p − (lr / (1 − β₁ᵗ)) · m / (√v / √(1 − β₂ᵗ) + ε)
/// </code>
/// Parameters without a gradient are skipped (their step count still advances, as in torch).
/// </summary>
public sealed class AdamW : IDisposable
{
    readonly Tensor[] parameters;
    readonly bool[] decay;
    readonly Tensor[] m, v;

    /// <summary>
    /// Optimizes <paramref name="parameters"/>. <paramref name="decays"/> picks which of them get
    /// weight decay (default: all, as torch does for a single parameter group).
    /// </summary>
    public AdamW(IReadOnlyList<Tensor> parameters, float learningRate = 1e-3f, float beta1 = 0.9f, float beta2 = 0.999f,
        float epsilon = 1e-8f, float weightDecay = 1e-2f, Func<Tensor, bool>? decays = null)
    {
        if (!(learningRate >= 0)) throw new ArgumentOutOfRangeException(nameof(learningRate), learningRate, "AdamW: learning rate must be ≥ 0.");
        if (!(beta1 is >= 0 and < 1) || !(beta2 is >= 0 and < 1)) throw new ArgumentOutOfRangeException(nameof(beta1), $"AdamW: betas must be in [0, 1), got ({beta1}, {beta2}).");
        this.parameters = [.. parameters];
        decay = new bool[this.parameters.Length];
        m = new Tensor[this.parameters.Length];
        v = new Tensor[this.parameters.Length];
        for (int i = 0; i < this.parameters.Length; i++)
        {
            var p = this.parameters[i];
            p.ThrowIfUnusable("AdamW");
            decay[i] = decays?.Invoke(p) ?? true;
            m[i] = Tensor.Zeros(p.Shape, p.Name + ".exp_avg");
            v[i] = Tensor.Zeros(p.Shape, p.Name + ".exp_avg_sq");
        }
        LearningRate = learningRate; Beta1 = beta1; Beta2 = beta2; Epsilon = epsilon; WeightDecay = weightDecay;
    }

    /// <summary>Learning rate of the next step (schedules set it before each step).</summary>
    public float LearningRate { get; set; }

    /// <summary>First-moment decay β₁.</summary>
    public float Beta1 { get; }

    /// <summary>Second-moment decay β₂.</summary>
    public float Beta2 { get; }

    /// <summary>Denominator ε.</summary>
    public float Epsilon { get; }

    /// <summary>Decoupled weight decay coefficient.</summary>
    public float WeightDecay { get; }

    /// <summary>Steps taken so far (t of the bias correction); settable to resume from a checkpoint.</summary>
    public long StepCount { get; set; }

    /// <summary>The optimized parameters, in order.</summary>
    public IReadOnlyList<Tensor> Parameters => parameters;

    /// <summary>First moment (exp_avg) of parameter i.</summary>
    public Tensor FirstMoment(int i) => m[i];

    /// <summary>Second moment (exp_avg_sq) of parameter i.</summary>
    public Tensor SecondMoment(int i) => v[i];

    /// <summary>Applies one update from the parameters' current gradients.</summary>
    public void Step()
    {
        StepCount++;
        double lr = LearningRate, b1 = Beta1, b2 = Beta2;
        float b1f = Beta1, b2f = Beta2, eps = Epsilon;
        float stepSize = (float)(lr / (1 - Math.Pow(b1, StepCount)));
        float bc2Sqrt = (float)Math.Sqrt(1 - Math.Pow(b2, StepCount));
        float shrink = (float)(1 - lr * WeightDecay);
        float oneMinusB1 = (float)(1 - b1), oneMinusB2 = (float)(1 - b2);
        for (int i = 0; i < parameters.Length; i++)
        {
            var p = parameters[i];
            if (p.Grad is null) continue;
            var ps = p.AsSpan("AdamW.Step"); var g = p.Grad.AsSpan("AdamW.Step");
            var ms = m[i].AsSpan("AdamW.Step"); var vs = v[i].AsSpan("AdamW.Step");
            bool wd = decay[i] && WeightDecay != 0;
            for (int j = 0; j < ps.Length; j++)
            {
                float gj = g[j];
                if (wd) ps[j] *= shrink;
                ms[j] = ms[j] * b1f + gj * oneMinusB1;
                vs[j] = vs[j] * b2f + gj * gj * oneMinusB2;
                float denom = MathF.Sqrt(vs[j]) / bc2Sqrt + eps;
                ps[j] -= stepSize * (ms[j] / denom);
            }
        }
    }

    /// <summary>Zeroes every parameter's gradient.</summary>
    public void ZeroGrad()
    {
        foreach (var p in parameters) p.ZeroGrad();
    }

    /// <summary>Frees the moment buffers (not the parameters).</summary>
    public void Dispose()
    {
        foreach (var t in m) t.Dispose();
        foreach (var t in v) t.Dispose();
    }
}
