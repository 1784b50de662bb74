using Tessera.Inference;
using Tessera.Text;

namespace Tessera.Evals.LongContext;

/// <summary>What to run: lengths (tokens), needle depths, items per cell, tasks.</summary>
public sealed record LongContextOptions
{
    /// <summary>Prompt lengths in tokens; lengths past the model's context are skipped (and listed as such).</summary>
    public IReadOnlyList<int> Lengths { get; init; } = [1024, 2048, 4096, 8192];
    /// <summary>Depths of the single needle for the depth × length grid.</summary>
    public IReadOnlyList<double> Depths { get; init; } = [0, 0.25, 0.5, 0.75, 1];
    /// <summary>Items per (task, length[, depth]) cell.</summary>
    public int Samples { get; init; } = 10;
    /// <summary>Tasks to run.</summary>
    public IReadOnlyList<RulerTask> Tasks { get; init; } = Enum.GetValues<RulerTask>();
    /// <summary>Seed of the generated items.</summary>
    public ulong Seed { get; init; } = 7;
    /// <summary>Requests in flight at once (the engine batches them).</summary>
    public int Parallel { get; init; } = 8;
}

/// <summary>Scores: per task and length, and the single-needle depth × length grid (rows = depths, columns = lengths).</summary>
/// <param name="Lengths">The lengths that ran (those within the context).</param>
/// <param name="Skipped">Lengths skipped because prompt + answer would not fit the context.</param>
/// <param name="Depths">Grid rows.</param>
/// <param name="Tasks">task → length → mean score (fraction of expected strings found, averaged over items).</param>
/// <param name="NeedleGrid">Single-needle score at [depth][length].</param>
/// <param name="Items">Items scored in all.</param>
public sealed record LongContextReport(IReadOnlyList<int> Lengths, IReadOnlyList<int> Skipped, IReadOnlyList<double> Depths,
    IReadOnlyDictionary<string, IReadOnlyDictionary<int, double>> Tasks, double[][] NeedleGrid, int Items);

/// <summary>
/// Runs the RULER-style tasks through an inference engine with greedy decoding: each item's prompt
/// (BOS, then the text) is generated from for a few tokens per expected answer, and the item
/// scores the fraction of its expected strings that appear in the output (RULER's metric).
/// </summary>
public static class LongContextEval
{
    /// <summary>Tokens generated per expected answer string (7-digit numbers, 5-letter names and words, with spaces and separators).</summary>
    public const int TokensPerAnswer = 12;

    /// <summary>Scores one output against the expected strings: the fraction found.</summary>
    public static double Score(string output, IReadOnlyList<string> answers)
        => answers.Count == 0 ? 0 : answers.Count(a => output.Contains(a, StringComparison.Ordinal)) / (double)answers.Count;

    /// <summary>Runs every task at every length (and the needle at every depth) and returns the scores.</summary>
    public static async Task<LongContextReport> RunAsync(IGenerationEngine engine, ITokenizer tokenizer, int? bos, RulerTasks tasks,
        LongContextOptions options, Action<string>? log = null, CancellationToken cancel = default)
    {
        if (options.Samples < 1) throw new ArgumentException($"--samples must be ≥ 1 (got {options.Samples}).");
        if (options.Lengths.Count == 0) throw new ArgumentException("Name at least one length.");
        int context = engine.Config.ContextLength;
        var lengths = new List<int>();
        var skipped = new List<int>();
        foreach (int len in options.Lengths.Distinct().Order())
            (len + 1 + TokensPerAnswer * 4 <= context ? lengths : skipped).Add(len);
        if (lengths.Count == 0)
            throw new ArgumentException($"Every length ({string.Join(", ", options.Lengths)}) plus its answer exceeds the model's context of {context} tokens.");

        var jobs = new List<(RulerTask Task, int Length, int Depth, RulerItem Item)>();
        ulong k = options.Seed * 1_000_003;
        foreach (var task in options.Tasks)
            foreach (int len in lengths)
            {
                if (task == RulerTask.SingleNeedle)
                {
                    for (int d = 0; d < options.Depths.Count; d++)
                        for (int s = 0; s < options.Samples; s++)
                            jobs.Add((task, len, d, tasks.Generate(task, len, options.Depths[d], k++)));
                }
                else
                    for (int s = 0; s < options.Samples; s++)
                        jobs.Add((task, len, -1, tasks.Generate(task, len, options.Depths[s % options.Depths.Count], k++)));
            }
        log?.Invoke($"long context: {jobs.Count} items, lengths {string.Join(", ", lengths)}{(skipped.Count > 0 ? $" (skipped, past the context of {context}: {string.Join(", ", skipped)})" : "")}");

        var scores = new double[jobs.Count];
        using var gate = new SemaphoreSlim(Math.Max(1, options.Parallel));
        int done = 0;
        var running = jobs.Select(async (job, i) =>
        {
            await gate.WaitAsync(cancel);
            try
            {
                var ids = new List<int>();
                if (bos is int b) ids.Add(b);
                ids.AddRange(tokenizer.Encode(job.Item.Prompt));
                int budget = Math.Min(TokensPerAnswer * job.Item.Answers.Count + 4, context - ids.Count);
                var request = new GenerationRequest(ids, budget, SamplingOptions.Greedy);
                var output = new List<int>();
                await foreach (var ev in engine.GenerateAsync(request, cancel)) output.Add(ev.Id);
                scores[i] = Score(tokenizer.Decode(output.ToArray()), job.Item.Answers);
                int n = Interlocked.Increment(ref done);
                if (n % 50 == 0 || n == jobs.Count) log?.Invoke($"  {n}/{jobs.Count} items");
            }
            finally { gate.Release(); }
        }).ToList();
        await Task.WhenAll(running);

        var byTask = new Dictionary<string, IReadOnlyDictionary<int, double>>();
        foreach (var task in options.Tasks)
        {
            var perLength = new Dictionary<int, double>();
            foreach (int len in lengths)
            {
                var cell = jobs.Select((j, i) => (j, i)).Where(x => x.j.Task == task && x.j.Length == len).Select(x => scores[x.i]).ToList();
                perLength[len] = cell.Count == 0 ? double.NaN : cell.Average();
            }
            byTask[Name(task)] = perLength;
        }
        var grid = new double[options.Depths.Count][];
        for (int d = 0; d < grid.Length; d++)
        {
            grid[d] = new double[lengths.Count];
            for (int l = 0; l < lengths.Count; l++)
            {
                var cell = jobs.Select((j, i) => (j, i)).Where(x => x.j.Task == RulerTask.SingleNeedle && x.j.Depth == d && x.j.Length == lengths[l]).Select(x => scores[x.i]).ToList();
                grid[d][l] = cell.Count == 0 ? double.NaN : cell.Average();
            }
        }
        return new LongContextReport(lengths, skipped, options.Depths, byTask, grid, jobs.Count);
    }

    /// <summary>The snake_case name of a task as reports and the CLI use it.</summary>
    public static string Name(RulerTask task) => task switch
    {
        RulerTask.SingleNeedle => "niah_single", RulerTask.MultiKey => "niah_multikey", RulerTask.MultiValue => "niah_multivalue",
        RulerTask.MultiQuery => "niah_multiquery", RulerTask.VariableTracking => "variable_tracking", RulerTask.CommonWords => "common_words",
        _ => throw new ArgumentOutOfRangeException(nameof(task)),
    };

    /// <summary>Parses a comma-separated task list (names as <see cref="Name"/> writes them, or <c>all</c>).</summary>
    public static IReadOnlyList<RulerTask> ParseTasks(string list)
    {
        if (list.Trim() == "all") return Enum.GetValues<RulerTask>();
        var all = Enum.GetValues<RulerTask>().ToDictionary(Name);
        return [.. list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(t => all.TryGetValue(t, out var v) ? v : throw new ArgumentException($"Unknown long-context task '{t}' (known: {string.Join(", ", all.Keys)}, or all)."))];
    }
}
