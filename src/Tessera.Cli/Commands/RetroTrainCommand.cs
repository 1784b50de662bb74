using System.CommandLine;
using System.Globalization;
using System.Text;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Retrieval.Retro;
using Tessera.Retrieval.Sparse;
using Tessera.Text;
using Tessera.Training;
using Tessera.Training.Experiments;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera train --index IDX</c>: RETRO-style training in context (docs/retrieval.md). The
/// prepared data is turned into rows of neighbours + chunks u−1, u, u+1 with the loss on u and u+1
/// (<see cref="RetroTrainingData"/>, written to <c>OUT/retro-data</c>), and the usual trainer runs on
/// them: checkpoints, <c>--resume</c>, evaluation. <c>--neighbours 0</c> trains the same examples
/// without retrieval, the comparison the RETRO claim needs.
/// </summary>
public static class RetroTrainCommand
{
    /// <summary>The passage index (<c>tessera index build</c>).</summary>
    public static readonly Option<string?> Index = new("--index") { Description = "RETRO-style training: a passage index (`tessera index build`) searched with every example's chunk u; its best passages, other than the document's own or held-out text, are read before the chunks (docs/retrieval.md)." };
    /// <summary>Tokens per chunk.</summary>
    public static readonly Option<int> Chunk = new("--retro-chunk") { Description = "With --index: tokens per chunk, C; rows are k·2C + 3C tokens (sets --seq).", DefaultValueFactory = _ => 64 };
    /// <summary>Neighbours per example.</summary>
    public static readonly Option<int> Neighbours = new("--neighbours") { Description = "With --index: neighbours per example, k (0 = the same examples without retrieval, the baseline).", DefaultValueFactory = _ => 1 };
    /// <summary>Training example cap.</summary>
    public static readonly Option<int> Examples = new("--retro-examples") { Description = "With --index: at most this many training examples, a seeded draw (0 = every example; each is one BM25 search).", DefaultValueFactory = _ => 0 };

    /// <summary>How a neighbour is cut from its passage.</summary>
    public static readonly Option<string> Window = new("--retro-window") { Description = "With --index: aligned = the passage's tokens lined up with chunk u and their continuation (RETRO's chunk + continuation); start = the passage's first 2C tokens.", DefaultValueFactory = _ => "aligned" };

    /// <summary>Every RETRO option (added to <c>tessera train</c>).</summary>
    public static IEnumerable<Option> All => [Index, Chunk, Neighbours, Examples, Window];

    /// <summary>Folder of the RETRO-layout data inside a run folder.</summary>
    public const string DataFolder = "retro-data";

    /// <summary>True when the command line asks for RETRO-style training; refuses the RETRO flags without --index.</summary>
    public static bool Requested(ParseResult p)
    {
        if (p.GetValue(Index) is not null) return true;
        var stray = new Option[] { Chunk, Neighbours, Examples, Window }.Where(o => p.GetResult(o) is { Implicit: false }).Select(o => o.Name).ToList();
        if (stray.Count > 0) throw new ArgumentException($"{string.Join(", ", stray)} belong(s) to RETRO-style training; add --index IDX.");
        return false;
    }

    /// <summary>
    /// The training options for the RETRO layout: <c>--seq</c> becomes the row length (an explicit
    /// other value is refused), windows start at rows, and the validation cap is the batches evaluated.
    /// Also checks the flags that cannot be combined with --index, and that the index opens, before any work.
    /// </summary>
    public static (TrainOptions Options, RetroTrainingOptions Retro) Adjust(ParseResult p, Option<int> seq, TrainOptions options, bool distributed, bool asyncOrReplay, bool mixture)
    {
        if (distributed) throw new ArgumentException("--index trains in one process (the neighbour search runs before training); drop --distributed / mpirun.");
        if (asyncOrReplay) throw new ArgumentException("--index cannot be combined with --async or --replay.");
        if (mixture) throw new ArgumentException("--index takes one prepared data folder, not a mixture.");
        var retro = new RetroTrainingOptions
        {
            ChunkTokens = p.GetValue(Chunk), Neighbours = p.GetValue(Neighbours), Window = NeighbourWindows.Parse(p.GetValue(Window)!), MaxTrainExamples = p.GetValue(Examples),
            MaxValidationExamples = Math.Max(1, options.EvalBatches * options.BatchSize), Seed = options.Seed,
        }.Validate();
        int T = RetroLayout.SequenceLength(retro.ChunkTokens, retro.Neighbours);
        if (p.GetResult(seq) is { Implicit: false } && options.SequenceLength != T)
            throw new ArgumentException($"--seq {options.SequenceLength}: with --index a row is k·2C + 3C = {retro.Neighbours}·2·{retro.ChunkTokens} + 3·{retro.ChunkTokens} = {T} tokens; drop --seq or pass {T}.");
        string folder = p.GetValue(Index)!;
        if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"--index {folder}: no such folder; build one with `tessera index build --input DIR --out {folder}`.");
        using (Bm25Index.Open(folder)) { }   // a missing, partial or corrupt index is refused here, before any tokenizing
        return (options with { SequenceLength = T, AlignDocuments = true }, retro);
    }

    /// <summary>
    /// Builds (or reuses) <c>OUT/retro-data</c> from <paramref name="prepared"/>. A resumed run must
    /// find the folder it was trained on, with the same settings.
    /// </summary>
    public static (PreparedData Data, RetroDataSummary Summary) Prepare(ParseResult p, RetroTrainingOptions retro, PreparedData prepared, string outDir, bool resume, bool quiet, CancellationToken cancel)
    {
        string folder = Path.Combine(outDir, DataFolder), index = p.GetValue(Index)!;
        var wanted = RetroTrainingData.Settings(prepared, index, retro);
        if (resume)
        {
            var old = RetroTrainingData.ReadSummary(folder)
                ?? throw new ArgumentException($"--resume --index: {folder} holds no retrieval data ({RetroTrainingData.SettingsFile}); the run was not trained with --index, or its data was removed.");
            if (!old.SameInputs(wanted))
                throw new ArgumentException($"--resume --index: {folder} was built from other inputs or settings (data {old.Source}, index {old.Index} at {old.IndexState}, " +
                    $"chunk {old.ChunkTokens}, neighbours {old.Neighbours}, window {old.Window}, examples {old.MaxTrainExamples}); resume with those, or train afresh into a new --out.");
        }
        var tok = TokenizerFiles.Load(prepared.TokenizerPath());
        // The search's progress goes to stderr even with --json: it can take minutes (one BM25 search per example).
        var (data, s) = RetroTrainingData.Build(prepared, index, tok, retro, folder, Console.Error.WriteLine, cancel);
        if (!quiet)
            Console.Error.WriteLine($"retrieval data: {s.TrainExamples:N0} training, {s.ValidationExamples:N0} validation rows of {s.SequenceLength} tokens" +
                (retro.Neighbours == 0 ? "" : $"; {s.Searches:N0} searches, {s.MsPerExample:F1} ms per example, {s.FillerSlots:N0} filler slots, " +
                $"passed over (by {s.ExclusionRule}): {s.SkippedOwnText:N0} own, {s.SkippedHeldOutText:N0} held-out, {s.SkippedShort:N0} short; " +
                $"validation 13-gram overlap with neighbours mean {s.ValidationOverlapMean:F3}, above 0.5 for {s.ValidationOverlapOverHalf:P1}"));
        return (data, s);
    }

    /// <summary>
    /// Bits per byte of the scored tokens (chunk u+1) of the validation rows of <paramref name="s"/>, from the masked
    /// validation loss in nats per token, when the evaluation covered every row (it reads
    /// <c>--eval-batches</c> batches and the rows were capped to that); otherwise null.
    /// </summary>
    public static double? HeldOutBitsPerByte(double loss, RetroDataSummary s, TrainOptions options)
    {
        if (double.IsNaN(loss) || s.ValidationScoredBytes <= 0) return null;
        int batch = Math.Min(options.BatchSize, s.ValidationExamples);
        long evaluated = Math.Min(options.EvalBatches, s.ValidationExamples / batch) * (long)batch;
        if (evaluated != s.ValidationExamples) return null;
        return loss * evaluated * RetroLayout.ScoredTokens(s.ChunkTokens) / Math.Log(2) / s.ValidationScoredBytes;
    }

    /// <summary>The file a finished <c>train --index</c> run leaves in its folder (<see cref="RetroRunResult"/>), read by <c>tessera eval retro-plot</c>.</summary>
    public const string ResultFile = "retro-result.json";

    /// <summary>What a <c>train --index</c> run measured, written to <see cref="ResultFile"/> when its evaluation covered every validation row.</summary>
    /// <param name="Parameters">The model's parameters.</param>
    /// <param name="Neighbours">Neighbours per row, k (0: the baseline).</param>
    /// <param name="Window">How neighbours were cut ("aligned" or "start").</param>
    /// <param name="ChunkTokens">Tokens per chunk, C.</param>
    /// <param name="Seed">The run's seed (it draws the examples and the weights).</param>
    /// <param name="Steps">Optimizer steps taken.</param>
    /// <param name="HeldOutBitsPerByte">Bits per byte of chunk u+1 of the validation rows.</param>
    /// <param name="ValidationExamples">Validation rows scored.</param>
    /// <param name="ValidationOverlapMean">Mean 13-gram overlap of chunk u+1 with its neighbours (0 without).</param>
    /// <param name="Source">The prepared data the rows came from.</param>
    /// <param name="Index">The passage index searched.</param>
    public sealed record RetroRunResult(long Parameters, int Neighbours, string Window, int ChunkTokens, ulong Seed, long Steps, double HeldOutBitsPerByte,
        int ValidationExamples, double ValidationOverlapMean, string Source, string Index);

    /// <summary>Writes <see cref="ResultFile"/> into <paramref name="outDir"/> (atomically).</summary>
    public static void WriteResult(string outDir, RetroDataSummary s, long parameters, ulong seed, long steps, double bitsPerByte)
        => AtomicFile.WriteAllText(Path.Combine(outDir, ResultFile), JsonNaming.Serialize(new RetroRunResult(parameters, s.Neighbours, s.Window, s.ChunkTokens, seed, steps,
            bitsPerByte, s.ValidationExamples, s.ValidationOverlapMean, s.Source, s.Index)));

    /// <summary>
    /// <c>tessera eval retro-plot --runs RUN… --out FILE.svg</c>: the RETRO claim's figure from finished
    /// <c>train --index</c> runs: held-out bits per byte against parameters, one line without
    /// retrieval and one per neighbour setting, each point the mean over the runs (seeds) of that size;
    /// prints the table behind it.
    /// </summary>
    public static Command Plot()
    {
        var runs = new Option<string[]>("--runs") { Description = "Run folders of `tessera train --index` (each holds retro-result.json).", Required = true, AllowMultipleArgumentsPerToken = true };
        var output = new Option<string>("--out") { Description = "The SVG to write.", Required = true };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("retro-plot", "Held-out bits per byte (chunk u+1) against parameters, with and without retrieval, from finished `train --index` runs: an SVG and its table.") { runs, output, json };
        cmd.SetAction(p =>
        {
            var results = new List<(string Run, RetroRunResult R)>();
            foreach (string run in p.GetValue(runs)!)
            {
                string path = Path.Combine(run, ResultFile);
                if (!File.Exists(path)) throw new FileNotFoundException($"{run}: no {ResultFile}; it is written when a `train --index` run finishes with every validation row evaluated.");
                RetroRunResult? r;
                try { r = JsonNaming.Deserialize<RetroRunResult>(File.ReadAllText(path)); }
                catch (System.Text.Json.JsonException e) { throw new InvalidDataException($"{path}: not a retro result ({e.Message})."); }
                results.Add((run, r ?? throw new InvalidDataException($"{path}: empty.")));
            }
            var sources = results.Select(x => (x.R.Source, x.R.Index, x.R.ChunkTokens, x.R.ValidationExamples)).Distinct().ToList();
            if (sources.Count > 1)
                throw new ArgumentException($"--runs: the runs were scored on different rows ({string.Join("; ", sources.Select(x => $"{x.Source} / {x.Index}, C {x.ChunkTokens}, {x.ValidationExamples} rows"))}); plot runs of one data folder, index and chunk size.");
            static string Series(RetroRunResult r) => r.Neighbours == 0 ? "without retrieval" : $"with {r.Neighbours} neighbour{(r.Neighbours == 1 ? "" : "s")} ({r.Window})";
            var groups = results.GroupBy(x => Series(x.R)).OrderBy(g => g.Key == "without retrieval" ? 0 : 1).ThenBy(g => g.Key, StringComparer.Ordinal)
                .Select(g => (Name: g.Key, Points: g.GroupBy(x => x.R.Parameters).OrderBy(q => q.Key)
                    .Select(q => (Parameters: q.Key, Mean: q.Average(x => x.R.HeldOutBitsPerByte), Runs: q.OrderBy(x => x.R.Seed).ToList())).ToList())).ToList();
            var figure = SvgPlot.Lines("RETRO-style training: held-out bits per byte of chunk u+1", "parameters", "bits per byte",
                [.. groups.Select(g => (g.Name, (IReadOnlyList<(double, double)>)[.. g.Points.Select(q => ((double)q.Parameters, q.Mean))]))], logX: true);
            string svg = Path.GetFullPath(p.GetValue(output)!);
            Directory.CreateDirectory(Path.GetDirectoryName(svg)!);
            AtomicFile.WriteAllText(svg, figure);
            if (p.GetValue(json))
            {
                Console.WriteLine(JsonNaming.SerializeObject(new { svg, series = groups.Select(g => new { name = g.Name, points = g.Points.Select(q => new
                    { parameters = q.Parameters, mean_bits_per_byte = q.Mean, runs = q.Runs.Select(x => new { run = x.Run, seed = x.R.Seed, bits_per_byte = x.R.HeldOutBitsPerByte, overlap_mean = x.R.ValidationOverlapMean }) }) }) }));
                return 0;
            }
            var md = new StringBuilder("| series | parameters | mean bits/byte | runs (seed: bits/byte) |\n|---|---|---|---|\n");
            foreach (var g in groups)
                foreach (var q in g.Points)
                    md.Append(CultureInfo.InvariantCulture, $"| {g.Name} | {q.Parameters:N0} | {q.Mean:F4} | {string.Join(", ", q.Runs.Select(x => $"{x.R.Seed}: {x.R.HeldOutBitsPerByte:F4}"))} |\n");
            Console.Write(md.ToString());
            Console.WriteLine($"→ {svg}");
            return 0;
        });
        return cmd;
    }
}
