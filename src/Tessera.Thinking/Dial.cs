using Tessera.Inference;

namespace Tessera.Thinking;

/// <summary>How test-time compute is spent on one question.</summary>
public enum ThinkStrategy
{
    /// <summary>One greedy completion (the baseline; n is ignored).</summary>
    Greedy,
    /// <summary>Self-consistency: n samples, the most common answer wins.</summary>
    Vote,
    /// <summary>Best-of-n with the exact verifier (<see cref="TraceChecker"/>): the most common answer among verified samples, else among all.</summary>
    Verify,
    /// <summary>Best-of-n by the model's own judgement: the sample with the highest mean token log-probability.</summary>
    Score,
    /// <summary>Sequential revision: greedy first, then up to n − 1 times resample from the first step the verifier rejects.</summary>
    Revise,
}

/// <summary>A strategy at a compute budget: n samples (or revision attempts), with or without the calculator.</summary>
public sealed record ThinkOptions(ThinkStrategy Strategy, int N = 1, bool Calculator = false)
{
    /// <summary>Most samples one question may spend (the server and CLI refuse more).</summary>
    public const int MaxN = 64;

    /// <summary>Sampling temperature of the samples after the first greedy one.</summary>
    public float Temperature { get; init; } = 0.8f;

    /// <summary>Seed of sample i is Seed + i.</summary>
    public ulong Seed { get; init; }

    /// <summary>Let the model call the retrieval search tool (<c>&lt;&lt;search:QUERY=</c>); the decoder must have one.</summary>
    public bool Search { get; init; }

    /// <summary>Token budget of one completion.</summary>
    public int MaxNewTokens { get; init; } = 160;

    /// <summary>Checks the ranges; the message names the field and the allowed range.</summary>
    public ThinkOptions Validate()
    {
        if (N < 1 || N > MaxN) throw new ArgumentOutOfRangeException(nameof(N), $"think: n = {N} is out of range; 1 ≤ n ≤ {MaxN}");
        if (!(Temperature > 0 && Temperature <= 2)) throw new ArgumentOutOfRangeException(nameof(Temperature), $"think: temperature = {Temperature} is out of range; 0 < temperature ≤ 2");
        if (MaxNewTokens < 1 || MaxNewTokens > 4096) throw new ArgumentOutOfRangeException(nameof(MaxNewTokens), $"think: max tokens = {MaxNewTokens} is out of range; 1 ≤ max tokens ≤ 4096");
        return this;
    }

    /// <summary>Parses a strategy name (greedy, vote, verify, score, revise); the error lists them.</summary>
    public static ThinkStrategy ParseStrategy(string name) =>
        Enum.TryParse<ThinkStrategy>(name, ignoreCase: true, out var s) && Enum.IsDefined(s) && !int.TryParse(name, out _)
            ? s
            : throw new ArgumentException($"think: unknown strategy '{name}'; expected one of greedy, vote, verify, score, revise");
}

/// <summary>The chosen completion, its answer, and the compute spent (prompt once, plus every token the model processed after it).</summary>
public sealed record ThinkResult(Completion Chosen, decimal? Answer, long Tokens, IReadOnlyList<Completion> Samples);

/// <summary>
/// The test-time compute dial: runs a <see cref="ThinkStrategy"/> on one question. The selection
/// rules are pure functions of the samples (so the lab can score every budget from one set of 64
/// samples); <see cref="RunAsync"/> draws the samples and applies them. Samples run concurrently,
/// so a batching engine decodes them together and shares the prompt's KV blocks.
/// </summary>
public static class Dial
{
    /// <summary>Runs <paramref name="options"/> on a prompt whose question states <paramref name="stated"/>.</summary>
    public static async Task<ThinkResult> RunAsync(ToolDecoder decoder, IReadOnlyList<int> prompt, IReadOnlyList<decimal> stated,
        ThinkOptions options, CancellationToken cancel = default)
    {
        options.Validate();
        if (options.Strategy == ThinkStrategy.Revise)
        {
            var steps = await ReviseAsync(decoder, prompt, stated, options, cancel);
            var last = steps[^1];
            return new ThinkResult(last.Completion, TraceChecker.AnswerOf(last.Completion.Text), prompt.Count + last.Tokens, [.. steps.Select(s => s.Completion)]);
        }
        int n = options.Strategy == ThinkStrategy.Greedy ? 1 : options.N;
        var samples = await SampleAsync(decoder, prompt, n, options, cancel);
        int pick = Select(options.Strategy, samples, stated);
        long tokens = prompt.Count + samples.Sum(s => (long)s.Tokens);
        return new ThinkResult(samples[pick], TraceChecker.AnswerOf(samples[pick].Text), tokens, samples);
    }

    /// <summary>
    /// n completions at once: sample 0 is greedy when <paramref name="greedyFirst"/>, the others are
    /// drawn at the options' temperature with seed Seed + i.
    /// </summary>
    public static async Task<Completion[]> SampleAsync(ToolDecoder decoder, IReadOnlyList<int> prompt, int n, ThinkOptions options,
        CancellationToken cancel = default, bool greedyFirst = false)
    {
        var tasks = new Task<Completion>[n];
        for (int i = 0; i < n; i++)
        {
            var sampling = new SamplingOptions { Temperature = i == 0 && (greedyFirst || options.Strategy == ThinkStrategy.Greedy) ? 0f : options.Temperature, Seed = options.Seed + (ulong)i };
            tasks[i] = decoder.SampleAsync(prompt, "", options.MaxNewTokens, sampling, options.Calculator, cancel, options.Search);
        }
        return await Task.WhenAll(tasks);
    }

    /// <summary>The index of the sample a strategy picks among <paramref name="samples"/>.</summary>
    public static int Select(ThinkStrategy strategy, IReadOnlyList<Completion> samples, IReadOnlyList<decimal> stated)
    {
        if (samples.Count == 0) throw new ArgumentException("think: no samples to choose from");
        switch (strategy)
        {
            case ThinkStrategy.Greedy: return 0;
            case ThinkStrategy.Vote: return Majority(samples, _ => true);
            case ThinkStrategy.Score:
            {
                int best = 0;
                for (int i = 1; i < samples.Count; i++)
                    if (samples[i].MeanLogprob > samples[best].MeanLogprob) best = i;
                return best;
            }
            case ThinkStrategy.Verify:
            {
                var ok = new bool[samples.Count];
                bool any = false;
                for (int i = 0; i < samples.Count; i++) any |= ok[i] = TraceChecker.Check(stated, samples[i].Text).Verified;
                return any ? Majority(samples, i => ok[i]) : Majority(samples, _ => true);
            }
            default: throw new ArgumentException($"think: {strategy} is sequential; run it with RunAsync or ReviseAsync");
        }
    }

    /// <summary>
    /// The first sample (among those <paramref name="include"/> keeps) whose answer is the most common
    /// one; samples without an answer vote only when none has one. Ties go to the answer seen first.
    /// </summary>
    public static int Majority(IReadOnlyList<Completion> samples, Func<int, bool> include)
    {
        var counts = new Dictionary<decimal, (int Count, int First)>();
        int fallback = -1;
        for (int i = 0; i < samples.Count; i++)
        {
            if (!include(i)) continue;
            if (fallback < 0) fallback = i;
            if (TraceChecker.AnswerOf(samples[i].Text) is not { } a) continue;
            counts[a] = counts.TryGetValue(a, out var c) ? (c.Count + 1, c.First) : (1, i);
        }
        int best = -1, bestCount = 0;
        foreach (var (count, first) in counts.Values)
            if (count > bestCount || (count == bestCount && first < best)) { best = first; bestCount = count; }
        return best >= 0 ? best : Math.Max(fallback, 0);
    }

    /// <summary>One attempt of a revision: the completion after it and the tokens spent so far (after the prompt).</summary>
    public readonly record struct ReviseStep(Completion Completion, bool Verified, long Tokens);

    /// <summary>
    /// Sequential revision: a greedy completion, then up to N − 1 more attempts, each keeping the text
    /// before the first step the verifier rejects and sampling the rest (seed Seed + attempt). Stops at
    /// the first verified completion. Element i is the state after attempt i.
    /// </summary>
    public static async Task<List<ReviseStep>> ReviseAsync(ToolDecoder decoder, IReadOnlyList<int> prompt, IReadOnlyList<decimal> stated,
        ThinkOptions options, CancellationToken cancel = default)
    {
        var steps = new List<ReviseStep>();
        long tokens = 0;
        string keep = "";
        for (int attempt = 0; attempt < options.N; attempt++)
        {
            var sampling = new SamplingOptions { Temperature = attempt == 0 ? 0f : options.Temperature, Seed = options.Seed + (ulong)attempt };
            var c = await decoder.SampleAsync(prompt, keep, options.MaxNewTokens, sampling, options.Calculator, cancel, options.Search);
            tokens += c.Tokens;
            var check = TraceChecker.Check(stated, c.Text);
            steps.Add(new ReviseStep(c, check.Verified, tokens));
            if (check.Verified) break;
            keep = c.Text[..check.FirstBad];
            // Never keep a dangling '#' or a half-open call: restart that step.
            if (keep.EndsWith('#')) keep = keep[..^1];
        }
        return steps;
    }
}
