using System.Diagnostics;
using Tessera.Inference;
using Tessera.Inference.Constraints;

namespace Tessera.Bench;

/// <summary>
/// The cost of structured output at batch 1: the same model, prompt, sampler and seed, decoded
/// plainly and under a JSON-schema constraint, interleaved round by round. Per-token time counts
/// everything a step does (forward pass, mask, sampling), so the ratio is the masking overhead.
/// </summary>
/// <param name="Vocabulary">Which vocabulary the masks walk (model tokenizer, cl100k ranks, …).</param>
/// <param name="PlainMsPerToken">Best per-token time of the unconstrained runs.</param>
/// <param name="ConstrainedMsPerToken">Best per-token time of the constrained runs (warm mask cache).</param>
/// <param name="Overhead">Constrained ÷ plain − 1 (warm).</param>
/// <param name="ColdOverhead">The same from the first round, while the mask cache fills.</param>
/// <param name="ConstrainedTokens">Tokens the first constrained run produced (it ends when the JSON is complete); the plain run decodes as many.</param>
/// <param name="CacheHitRate">Mask look-ups answered from the cache, over all rounds.</param>
/// <param name="Valid">True when every constrained output parsed as JSON.</param>
/// <param name="MaskMsPerToken">Time inside the constraint's logits processor per token (best round): the overhead itself, free of the run-to-run noise of the totals.</param>
/// <param name="ColdMaskMsPerToken">The same in the first round (mask cache filling).</param>
public sealed record ConstrainedDecodeResult(string Vocabulary, double PlainMsPerToken, double ConstrainedMsPerToken, double Overhead, double ColdOverhead,
    int ConstrainedTokens, double CacheHitRate, bool Valid, double MaskMsPerToken, double ColdMaskMsPerToken);

/// <summary>Runs <see cref="ConstrainedDecodeResult"/>'s measurement.</summary>
public static class ConstrainedDecodeBench
{
    /// <summary>The schema decoded: nested object, bounded integer, enum, arrays, optional fields.</summary>
    public const string Schema = """
        {"type":"object","properties":{"name":{"type":"string"},"age":{"type":"integer","minimum":0,"maximum":150},
         "role":{"enum":["admin","editor","viewer"]},"tags":{"type":"array","items":{"type":"string","maxLength":12},"maxItems":6},
         "address":{"type":"object","properties":{"city":{"type":"string"},"zip":{"type":"string","maxLength":10}},"required":["city"]},
         "score":{"type":"number","minimum":-1,"maximum":1}},"required":["name","age","role","tags","address"]}
        """;

    /// <summary>
    /// A vocabulary for a model without a tokenizer: the first <paramref name="size"/> − 1 ranks of
    /// cl100k_base (all 256 bytes, then its most frequent merges) when the file is found, else the
    /// 256 bytes and printable-ASCII pairs. The last id is left as the end token.
    /// </summary>
    public static (TokenVocabulary Vocabulary, string Name) DefaultVocabulary(int size)
    {
        string? cl100kPath = TokenizerBench.FindShared("tokenizer/tiktoken/cl100k_base.tiktoken");
        var tokens = new byte[]?[size];
        string name;
        if (cl100kPath is not null && File.Exists(cl100kPath))
        {
            var ranks = Text.TiktokenFile.Read(cl100kPath);
            for (int i = 0; i < size - 1 && i < ranks.Length; i++) tokens[i] = ranks[i];
            name = $"cl100k_base ranks 0–{size - 2}";
        }
        else
        {
            for (int i = 0; i < 256 && i < size - 1; i++) tokens[i] = [(byte)i];
            for (int i = 256; i < size - 1; i++) tokens[i] = [(byte)(0x20 + (i - 256) / 95 % 95), (byte)(0x20 + (i - 256) % 95)];
            name = "bytes + printable-ASCII pairs (cl100k_base.tiktoken not found)";
        }
        return (new TokenVocabulary(tokens), name);
    }

    /// <summary>Measures batch-1 decode of <paramref name="tokens"/> tokens with and without the constraint; null when the model's context cannot hold the schema's shortest instance.</summary>
    public static ConstrainedDecodeResult? Run(InferenceWeights weights, TokenVocabulary vocabulary, string vocabularyName, int endId, int tokens, int rounds = 4, Action<string>? progress = null)
    {
        var constraint = new TokenConstraint(JsonSchemaGrammar.Compile(Schema), vocabulary);
        var ends = new HashSet<int> { endId };
        int[] prompt = [.. Enumerable.Range(0, 16).Select(i => (i * 7919 + 13) % Math.Min(256, weights.Config.VocabSize))];
        int budget = Math.Min(weights.Config.ContextLength - prompt.Length - 1, Math.Max(tokens, constraint.MinTokens + tokens));
        if (budget < constraint.MinTokens + 8) return null;
        using var dec = new SequenceDecoder(weights);
        double plain = double.MaxValue, constrained = double.MaxValue, coldPlain = 0, coldConstrained = 0, mask = double.MaxValue, coldMask = 0;
        int produced = 0;
        bool valid = true;
        for (int r = 0; r < rounds; r++)
        {
            progress?.Invoke($"round {r + 1}/{rounds}: batch-1 decode of {tokens} tokens, plain and JSON-schema constrained");
            // The constraint's cache starts empty in round 0 (cold) and is warm afterwards. The budget
            // leaves room past the shortest instance; the plain run then decodes as many tokens as the
            // constrained one produced, so both read the same KV-cache lengths.
            var (ct, n, text, m) = Decode(dec, prompt, budget, (ulong)r, constraint, ends, vocabulary);
            var (pt, _, _, _) = Decode(dec, prompt, n, (ulong)r, null, ends, vocabulary);
            if (r == 0) { coldPlain = pt; coldConstrained = ct; produced = n; coldMask = m; }
            mask = Math.Min(mask, m);
            plain = Math.Min(plain, pt); constrained = Math.Min(constrained, ct);
            try { using var _ = System.Text.Json.JsonDocument.Parse(text); }
            catch (System.Text.Json.JsonException) { valid = false; }
        }
        var (hits, misses) = constraint.CacheStats;
        return new ConstrainedDecodeResult(vocabularyName, plain, constrained, constrained / plain - 1, coldConstrained / coldPlain - 1, produced,
            hits + misses == 0 ? 0 : hits / (double)(hits + misses), valid, mask, coldMask);
    }

    // Decodes after the prompt at temperature 1; returns ms per generated token, the count, the text and ms per token inside the mask.
    static (double MsPerToken, int Tokens, byte[] Text, double MaskMs) Decode(SequenceDecoder dec, int[] prompt, int tokens, ulong seed, TokenConstraint? constraint, HashSet<int> ends, TokenVocabulary vocabulary)
    {
        var options = new SamplingOptions { Temperature = 1f, Seed = seed };
        Timed? timed = constraint is null ? null : new Timed(constraint.Processor(prompt.Length, tokens, ends));
        if (timed is not null) options = options with { LogitsProcessor = timed };
        var sampler = new Sampler(options, prompt);
        var text = new List<byte>();
        dec.Reset();
        dec.Feed(prompt);
        var sw = Stopwatch.StartNew();
        int n = 0;
        while (n < tokens)
        {
            int id = sampler.Next(dec.Logits(0));
            n++;
            if (constraint is not null && ends.Contains(id)) break;
            if (vocabulary.Bytes(id) is { } b) text.AddRange(b);
            dec.Feed([id]);
        }
        return (sw.Elapsed.TotalMilliseconds / n, n, [.. text], timed is null ? 0 : Stopwatch.GetElapsedTime(0, timed.Ticks).TotalMilliseconds / n);
    }

    sealed class Timed(ILogitsProcessor inner) : ILogitsProcessor
    {
        public long Ticks;
        public void Process(ReadOnlySpan<int> history, Span<float> logits)
        {
            long t = Stopwatch.GetTimestamp();
            inner.Process(history, logits);
            Ticks += Stopwatch.GetTimestamp() - t;
        }
    }
}
