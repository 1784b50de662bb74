using System.CommandLine;
using Tessera.Kernels.IO;
using Tessera.Training;
using Tessera.Training.Contrastive;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera train --objective contrastive --pairs FILE.jsonl --init-from MODEL</c>: fine-tunes a
/// model as a bi-encoder with InfoNCE over in-batch negatives (<see cref="ContrastiveTrainer"/>);
/// the checkpoint in OUT serves as <c>--model</c> / <c>--dense-model</c> of the retrieval commands.
/// </summary>
public static class ContrastiveTrainCommand
{
    /// <summary>lm (default) or contrastive.</summary>
    public static readonly Option<string> Objective = new("--objective") { Description = "Training objective: lm (next token, default) or contrastive (bi-encoder, InfoNCE with in-batch negatives; needs --pairs and --init-from).", DefaultValueFactory = _ => "lm" };
    /// <summary>The pairs file.</summary>
    public static readonly Option<string?> Pairs = new("--pairs") { Description = "Contrastive: JSON lines of {\"query\": ..., \"positive\": ...}." };
    /// <summary>Softmax temperature.</summary>
    public static readonly Option<float> Temperature = new("--temperature") { Description = "Contrastive: temperature of the similarity softmax.", DefaultValueFactory = _ => 0.05f };
    /// <summary>Query token cap.</summary>
    public static readonly Option<int> MaxQueryTokens = new("--max-query-tokens") { Description = "Contrastive: tokens kept of each query.", DefaultValueFactory = _ => 64 };
    /// <summary>Positive token cap.</summary>
    public static readonly Option<int> MaxPositiveTokens = new("--max-positive-tokens") { Description = "Contrastive: tokens kept of each positive passage.", DefaultValueFactory = _ => 128 };

    /// <summary>Every contrastive option (added to <c>tessera train</c>).</summary>
    public static IEnumerable<Option> All => [Objective, Pairs, Temperature, MaxQueryTokens, MaxPositiveTokens];

    /// <summary>True when the command line asks for the contrastive objective.</summary>
    public static bool Requested(ParseResult p) => p.GetValue(Objective) switch
    {
        "lm" => false,
        "contrastive" => true,
        var other => throw new ArgumentException($"--objective: expected lm or contrastive, got '{other}'."),
    };

    /// <summary>Runs contrastive fine-tuning; returns the exit code.</summary>
    public static int Run(ParseResult p, TrainOptions train, string? initFrom, string outDir, bool json, CancellationToken cancel)
    {
        string pairsFile = p.GetValue(Pairs) ?? throw new ArgumentException("--objective contrastive needs --pairs FILE.jsonl (lines of {\"query\": ..., \"positive\": ...}).");
        string start = initFrom ?? throw new ArgumentException("--objective contrastive needs --init-from MODEL (the run folder or checkpoint to fine-tune).");
        var pairs = ContrastivePairs.Load(pairsFile);
        var (model, resolved) = ModelFiles.LoadModel(start);
        using var owned = model;
        var (tok, bos, _) = ModelFiles.LoadTokenizer(start, resolved, null);
        var options = new ContrastiveOptions
        {
            Steps = checked((int)train.Steps), BatchSize = train.BatchSize, LearningRate = train.LearningRate, MinLearningRate = train.MinLearningRate,
            WarmupSteps = train.WarmupSteps, ClipNorm = train.ClipNorm, WeightDecay = train.WeightDecay, Seed = (int)(train.Seed & int.MaxValue),
            Temperature = p.GetValue(Temperature), MaxQueryTokens = p.GetValue(MaxQueryTokens), MaxPositiveTokens = p.GetValue(MaxPositiveTokens),
        };
        using var trainer = new ContrastiveTrainer(model, tok, bos, options);
        void Say(string s) { if (!json) Console.Error.WriteLine(s); }
        var summary = trainer.Run(pairs, s =>
        {
            if (s.Step % 10 == 0 || s.Step == options.Steps) Say($"step {s.Step}/{options.Steps}  loss {s.Loss:F3}  in-batch acc {s.Accuracy:P0}  lr {s.LearningRate:E2}  {s.Seconds:F2} s");
        }, Say, cancel);
        string tokDir = ModelFiles.FindTokenizer(resolved, start);
        Directory.CreateDirectory(outDir);
        string saved = Checkpoint.Save(outDir, summary.Steps, model, extras: staging => CopyFolder(tokDir, Path.Combine(staging, Checkpoint.TokenizerFolder)));
        var result = new { objective = "contrastive", init_from = resolved, pairs = pairsFile, checkpoint = saved, summary };
        AtomicFile.WriteAllText(Path.Combine(outDir, "contrastive.json"), JsonNaming.SerializeObject(result));
        if (json) Console.WriteLine(JsonNaming.SerializeObject(result));
        else Say($"saved {saved}");
        return 0;
    }

    static void CopyFolder(string from, string to)
    {
        Directory.CreateDirectory(to);
        foreach (var f in Directory.GetFiles(from)) File.Copy(f, Path.Combine(to, Path.GetFileName(f)));
    }
}
