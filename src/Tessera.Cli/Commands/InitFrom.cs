using Tessera.Model;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera train --init-from PATH</c>: the run starts from the weights of a checkpoint (or of
/// the latest checkpoint of a run folder) with a fresh optimizer, step counter, schedule and data
/// order. The model's shape comes from that checkpoint; a shape flag that says otherwise is refused.
/// </summary>
public static class InitFrom
{
    /// <summary>A shape flag as given on the command line (null = not given) and the checkpoint's value.</summary>
    public readonly record struct ShapeFlag(string Flag, object? Given, object Actual);

    /// <summary>The verified checkpoint folder behind <paramref name="path"/> and its model config, without loading weights.</summary>
    public static (string Checkpoint, ModelConfig Config) Resolve(string path)
    {
        string dir = Checkpoint.Resolve(path);
        string configPath = Path.Combine(dir, Checkpoint.ConfigFile);
        return (dir, ModelConfig.FromHuggingFaceJson(File.ReadAllText(configPath), configPath));
    }

    /// <summary>Refuses --resume, --preset and every shape flag that contradicts <paramref name="config"/>.</summary>
    public static void CheckFlags(string checkpoint, ModelConfig config, bool resume, bool presetGiven, bool distributed, IEnumerable<ShapeFlag> flags)
    {
        if (resume) throw new ArgumentException("--init-from starts a new run from a checkpoint's weights; --resume continues a run exactly. Choose one.");
        if (distributed) throw new ArgumentException("--init-from runs in one process (not under mpirun or with --distributed).");
        if (presetGiven) throw new ArgumentException($"--preset: with --init-from the model's shape comes from {Path.Combine(checkpoint, Checkpoint.ConfigFile)}; drop --preset.");
        foreach (var f in flags)
            if (f.Given is not null && !f.Given.Equals(f.Actual))
                throw new ArgumentException($"{f.Flag} {f.Given} contradicts the checkpoint's {f.Actual} ({Path.Combine(checkpoint, Checkpoint.ConfigFile)}); drop {f.Flag} or start a fresh run.");
    }

    /// <summary>The tokenizer a run from <paramref name="checkpoint"/> uses when the data and --tokenizer name none: the checkpoint's own.</summary>
    public static string? CheckpointTokenizer(string checkpoint)
    {
        string dir = Path.Combine(checkpoint, Checkpoint.TokenizerFolder);
        if (!Directory.Exists(dir)) return null;
        return File.Exists(Path.Combine(dir, "bytes")) ? "bytes" : dir;
    }
}
