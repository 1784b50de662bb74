namespace Tessera.Training;

/// <summary>
/// Linear warmup then cosine decay: step s (0-based, the step about to be taken) runs at
/// lr·(s + 1)/warmup while s &lt; warmup, then at min + (lr − min)·½(1 + cos(π·p)) with
/// p = (s − warmup)/(steps − warmup), reaching min at the last step's end. Steps past the end stay at min.
/// </summary>
public readonly record struct LearningRateSchedule(float Peak, float Min, long Warmup, long Steps)
{
    /// <summary>The schedule of a run's options.</summary>
    public static LearningRateSchedule From(TrainOptions o) => new(o.LearningRate, o.MinLearningRate, o.WarmupSteps, o.Steps);

    /// <summary>Learning rate for step <paramref name="step"/> (computed in double, rounded once to float).</summary>
    public float At(long step)
    {
        if (step < Warmup) return (float)((double)Peak * (step + 1) / Warmup);
        double progress = Math.Min(1.0, (double)(step - Warmup) / Math.Max(1, Steps - Warmup));
        return (float)(Min + ((double)Peak - Min) * 0.5 * (1 + Math.Cos(Math.PI * progress)));
    }
}
