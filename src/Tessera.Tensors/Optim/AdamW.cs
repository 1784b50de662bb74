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
    readonly ParameterChunks chunks;
    Kernels.AdamWConstants constants;
    Action<int, int, int>? stepBody;

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
        chunks = ParameterChunks.Of(this.parameters);
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
    public void Step() => OpProfile.Time("AdamW.Step", StepCore);

    void StepCore()
    {
        StepCount++;
        double lr = LearningRate, b1 = Beta1, b2 = Beta2;
        var k = new Kernels.AdamWConstants
        {
            B1 = Beta1, B2 = Beta2, Eps = Epsilon,
            StepSize = (float)(lr / (1 - Math.Pow(b1, StepCount))),
            Bc2Sqrt = (float)Math.Sqrt(1 - Math.Pow(b2, StepCount)),
            Shrink = (float)(1 - lr * WeightDecay),
            OneMinusB1 = (float)(1 - b1), OneMinusB2 = (float)(1 - b2),
        };
        // Elementwise, so any split gives the same bits; chunks spread the memory-bound loop over the pool.
        var body = stepBody ??= (_, start, end) =>
        {
            for (int c = start; c < end; c++)
            {
                var (i, at, n) = chunks[c];
                var p = parameters[i];
                if (p.Grad is null) continue;
                Kernels.AdamWUpdate.Update(p.AsSpan("AdamW.Step").Slice(at, n), p.Grad.AsSpan("AdamW.Step").Slice(at, n),
                    m[i].AsSpan("AdamW.Step").Slice(at, n), v[i].AsSpan("AdamW.Step").Slice(at, n),
                    decay[i] && WeightDecay != 0, constants);
            }
        };
        constants = k;
        if (chunks.Elements < 1 << 16) body(0, 0, chunks.Count);
        else Kernels.WorkerPool.Shared.For(chunks.Count, body);
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
