using Tessera.Data;
using Tessera.Model;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// The steps `train` and `quickstart` share: find or prepare the token shards, keep the
/// tokenizer with the run, and print progress.
/// </summary>
public static class RunSetup
{
    /// <summary>Marker file in a run's tokenizer folder meaning "the byte tokenizer".</summary>
    const string BytesMarker = "bytes";

    /// <summary>Loads the tokenizer a run folder (or checkpoint) carries.</summary>
    public static ITokenizer LoadRunTokenizer(string tokenizerDir)
        => File.Exists(Path.Combine(tokenizerDir, BytesMarker)) ? TokenizerFiles.Load("bytes") : TokenizerFiles.Load(tokenizerDir);

    /// <summary>Copies the tokenizer named by <paramref name="source"/> (a directory or `bytes`) into <paramref name="dir"/>.</summary>
    public static void CopyTokenizer(string source, string dir)
    {
        Directory.CreateDirectory(dir);
        if (source == "bytes") { File.WriteAllText(Path.Combine(dir, BytesMarker), "byte tokenizer: 256 bytes + the chat template's special tokens\n"); return; }
        if (!Directory.Exists(source)) throw new ArgumentException($"the run's tokenizer must be a tokenizer directory or `bytes` so it can travel with checkpoints; got {source}");
        foreach (var f in Directory.GetFiles(source)) File.Copy(f, Path.Combine(dir, Path.GetFileName(f)), overwrite: true);
    }

    /// <summary>
    /// Returns prepared data for `--data`: a folder with meta.json is used as is; text (a file, a
    /// folder, or `embedded`) is tokenized into <paramref name="preparedDir"/> first.
    /// </summary>
    public static PreparedData ResolveData(string data, string tokenizer, string preparedDir, bool quiet)
    {
        if (Directory.Exists(data) && File.Exists(Path.Combine(data, PreparedData.MetaFile))) return PreparedData.Load(data);
        var tok = TokenizerFiles.Load(tokenizer);
        var docs = DataCommand.Load(data, null);
        if (!quiet) Console.Error.WriteLine($"tokenizing {docs.Count} documents with {tok.Name} → {preparedDir}");
        return ShardBuilder.Prepare(docs, tok, tokenizer, new DocumentSplit(), preparedDir);
    }

    /// <summary>Opens a split's shard; the caller disposes it.</summary>
    public static TokenShard Open(PreparedData d, Split s) => TokenShard.Open(d.ShardPath(s));

    /// <summary>Prints a step line every <paramref name="every"/> steps (and the last one).</summary>
    public static void AttachProgress(Trainer trainer, long every, bool quiet)
    {
        if (quiet) return;
        trainer.StepCompleted = r =>
        {
            if (r.Step % every != 0 && r.Step != r.Steps && r.Step != 1) return;
            string drop = r.DroppedAssignments > 0 ? $" | dropped {r.DroppedAssignments}" : "";
            Console.WriteLine($"step {r.Step,6}/{r.Steps} | loss {r.Loss:F4} | lr {r.LearningRate:0.00e+0} | |g| {r.GradNorm:F2} | " +
                              $"{r.TokensPerSecond,7:N0} tok/s | MFU {r.Mfu * 100:F1}% | elapsed {Fmt(r.Elapsed)} | ETA {Fmt(r.Eta)}{drop}");
        };
        trainer.Evaluated = e =>
        {
            string load = e.ExpertLoads.Count == 0 ? "" : " | expert load " + string.Join(" ", e.ExpertLoads.Select(l => "[" + string.Join(",", l.Assigned) + "]"));
            // A loss-masked split (prompt/completion data, RETRO rows) has no bytes per token to convert with.
            string bpb = double.IsNaN(e.BitsPerByte) ? "bits/byte n/a (masked loss)" : $"{e.BitsPerByte:F4} bits/byte";
            Console.WriteLine($"eval @ {e.Step}: val loss {e.Loss:F4} | ppl {e.Perplexity:F1} | {bpb}{load}");
        };
        trainer.CheckpointSaved = path => Console.WriteLine($"checkpoint → {path}");
    }

    /// <summary>Formats a duration for progress lines: <c>1h05m</c> from an hour up, <c>4m07s</c> below.</summary>
    public static string Fmt(TimeSpan t) => t.TotalHours >= 1 ? $"{(int)t.TotalHours}h{t.Minutes:D2}m" : $"{t.Minutes}m{t.Seconds:D2}s";

    /// <summary>Builds the model config from a preset plus flag overrides; vocabulary always comes from the tokenizer.</summary>
    public static ModelConfig BuildConfig(string preset, int vocab, int? layers, int? dim, int? heads, int? kvHeads, int? hidden,
        int? experts, int? topK, int? context, int? window, float? capacity, string? arch = null, int? headDim = null, float? attnSoftCap = null, float? finalSoftCap = null)
    {
        var c = ModelConfig.Preset(preset) with { VocabSize = vocab };
        if (arch is not null) c = Tessera.Model.Architectures.ArchitectureRegistry.Get(arch).Apply(c);
        if (headDim is { } hdim) c = c with { HeadDim = hdim };
        if (attnSoftCap is { } ac) c = c with { AttentionSoftCap = ac };
        if (finalSoftCap is { } fc) c = c with { FinalSoftCap = fc };
        if (dim is { } d) c = c with { Dim = d };
        if (heads is { } h) c = c with { Heads = h, KvHeads = kvHeads ?? h };
        if (kvHeads is { } kv) c = c with { KvHeads = kv };
        if (layers is { } l) c = c with { Layers = l };
        if (hidden is { } hd) c = c with { HiddenDim = hd };
        if (experts is { } e) c = c with { Experts = e, TopK = topK ?? Math.Min(c.TopK, e) };
        if (topK is { } k) c = c with { TopK = k };
        if (context is { } ctx) c = c with { ContextLength = ctx };
        if (window is { } w) c = c with { SlidingWindow = w };
        if (capacity is { } cf) c = c with { CapacityFactor = cf };
        return c.Validate();
    }
}
