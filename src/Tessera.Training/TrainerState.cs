using System.Text.Json;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Tensors;

namespace Tessera.Training;

/// <summary>
/// Everything besides weights and optimizer moments that a resumed run needs to continue
/// bit-exactly: the step (which fixes the schedule position), the data cursor, the trainer's
/// RNG state and the options. Saved as trainer_state.json.
/// </summary>
public sealed record TrainerState
{
    /// <summary>Format tag checked on load.</summary>
    public const string FormatName = "tessera-trainer-state-v1";

    /// <summary>Format tag of the file; must equal <see cref="FormatName"/> on load.</summary>
    public string Format { get; init; } = FormatName;
    /// <summary>Completed optimizer steps; the next step runs at schedule position <see cref="Step"/>.</summary>
    public long Step { get; init; }
    /// <summary>Training tokens consumed so far.</summary>
    public long TokensSeen { get; init; }
    /// <summary>AdamW's bias-correction step count.</summary>
    public long OptimizerStep { get; init; }
    /// <summary>Where the training reader resumes.</summary>
    public DataCursor Cursor { get; init; }
    /// <summary>The trainer RNG's 32 state bytes as hex.</summary>
    public string Rng { get; init; } = "";
    /// <summary>Learning rate of the last step taken (informational; the schedule recomputes it).</summary>
    public float LearningRate { get; init; }
    /// <summary>Training wall time so far, seconds (informational).</summary>
    public double ElapsedSeconds { get; init; }
    /// <summary>The run's options.</summary>
    public TrainOptions Options { get; init; } = new();
    /// <summary>The distillation objective the run trains with (null: the model's own loss).</summary>
    public DistillReference? Distillation { get; init; }

    /// <summary>The RNG state.</summary>
    public RngState RngState() => Tensors.RngState.FromBytes(Convert.FromHexString(Rng));

    /// <summary>Serialises to JSON (snake_case, <see cref="JsonNaming"/>).</summary>
    public string ToJson() => JsonNaming.Serialize(this);

    /// <summary>Parses trainer_state.json (snake_case, or the PascalCase names of older files); throws <see cref="InvalidDataException"/> naming <paramref name="source"/>.</summary>
    public static TrainerState FromJson(string json, string source)
    {
        TrainerState? s;
        try { s = JsonNaming.Deserialize<TrainerState>(json); }
        catch (JsonException e) { throw new InvalidDataException($"{source}: corrupt trainer state ({e.Message})"); }
        if (s is null || s.Format != FormatName)
            throw new InvalidDataException($"{source}: not a Tessera trainer state (format '{s?.Format}', expected '{FormatName}').");
        if (s.Step < 0 || s.Rng.Length != 64)
            throw new InvalidDataException($"{source}: corrupt trainer state (step {s.Step}, rng '{s.Rng}').");
        try { s.RngState(); s.Options.Validate(); }
        catch (Exception e) when (e is FormatException or ArgumentException) { throw new InvalidDataException($"{source}: corrupt trainer state ({e.Message})"); }
        return s;
    }
}
