namespace Tessera.Training;

/// <summary>
/// The distillation knobs: loss = <see cref="Alpha"/>·T²·KL(p_T^teacher ‖ p_T^student) +
/// (1 − <see cref="Alpha"/>)·cross-entropy (+ the student's router terms when it is an MoE), where
/// the teacher distribution is its <see cref="TopK"/> largest logits plus, with <see cref="TailBin"/>,
/// one bin holding the rest of its mass.
/// </summary>
public sealed record DistillOptions
{
    /// <summary>Weight of the distillation term; 1 − Alpha weighs the hard-label cross-entropy.</summary>
    public float Alpha { get; init; } = 0.5f;
    /// <summary>Softmax temperature T applied to both teacher and student logits in the KL term.</summary>
    public float Temperature { get; init; } = 1f;
    /// <summary>Teacher logits cached per position.</summary>
    public int TopK { get; init; } = 32;
    /// <summary>
    /// Keep the teacher's probability outside its top-k as one lumped "rest" bin (true), or
    /// renormalise the teacher over its top-k (false), which tells the student to give every other
    /// token nothing — harmful when the teacher is unsure (see docs/distillation.md).
    /// </summary>
    public bool TailBin { get; init; } = true;
    /// <summary>Sequences per teacher forward pass while the cache is built.</summary>
    public int TeacherBatch { get; init; } = 16;

    /// <summary>Throws one clear <see cref="ArgumentException"/> for the first impossible setting.</summary>
    public DistillOptions Validate()
    {
        void Require(bool ok, string message) { if (!ok) throw new ArgumentException($"Invalid distillation options: {message}."); }
        Require(Alpha is >= 0 and <= 1, $"alpha ({Alpha}) must be in [0, 1]");
        Require(Temperature > 0 && float.IsFinite(Temperature), $"temperature ({Temperature}) must be positive");
        Require(TopK >= 1, $"top-k ({TopK}) must be at least 1");
        Require(TeacherBatch >= 1, $"teacher batch ({TeacherBatch}) must be at least 1");
        return this;
    }
}

/// <summary>
/// What a distilled run's checkpoint records about its objective, so <c>--resume</c> can rebuild
/// it: the teacher-logit cache file and the loss settings. A checkpoint that carries one cannot be
/// resumed as plain training (it would silently switch to cross-entropy).
/// </summary>
public sealed record DistillReference(string CachePath, DistillOptions Options);
