using Tessera.Data;
using Tessera.Model;
using Tessera.Tensors;
using Tessera.Text;

namespace Tessera.Evals;

/// <summary>
/// Held-out bits per byte of one split. <see cref="Nats"/> is the summed −log p of every scored
/// target token (document-separating BOS tokens included, as in training); <see cref="Bytes"/> is
/// the UTF-8 size of the text those targets cover. <see cref="Complete"/> is false when only the
/// first <see cref="TokensScored"/> of <see cref="SplitTokens"/> − 1 targets were scored (a cap).
/// </summary>
public sealed record BitsPerByteResult(string Split, long TokensScored, long SplitTokens, long Bytes, double Nats, bool Complete,
    int Window, int Stride)
{
    /// <summary>Bits per UTF-8 byte of text.</summary>
    public double BitsPerByte => Bytes > 0 ? Nats / (Math.Log(2) * Bytes) : double.NaN;
    /// <summary>Mean cross-entropy per scored token (nats).</summary>
    public double LossPerToken => TokensScored > 0 ? Nats / TokensScored : double.NaN;
    /// <summary>Share of the split's targets that were scored.</summary>
    public double Fraction => SplitTokens > 1 ? (double)TokensScored / (SplitTokens - 1) : 0;
}

/// <summary>
/// Exact bits per byte over a token shard with sliding windows: windows of <c>window</c> tokens
/// start every <c>stride</c> tokens, the first window scores all its targets and every later one
/// only the targets no earlier window scored, so each target is scored exactly once and — after
/// the first window — with at least window − stride tokens of context. The last window is
/// aligned to the end of the stream so every window is full length and rows batch together.
/// </summary>
public static class BitsPerByte
{
    /// <summary>
    /// Scores <paramref name="shard"/> (the split called <paramref name="split"/>). With
    /// <paramref name="maxTokens"/> only that many targets are scored, in evenly spaced segments of
    /// at least 16 windows, and the byte count is that of their decoded text (BOS excluded); otherwise <paramref name="splitBytes"/> (from
    /// meta.json) is used. <paramref name="progress"/> gets (targets scored, targets to score).
    /// </summary>
    public static BitsPerByteResult Evaluate(Transformer model, TokenShard shard, string split, long splitBytes, ITokenizer tokenizer,
        long? maxTokens = null, int? window = null, int? stride = null, int batchTokens = 8192, Action<long, long>? progress = null)
    {
        int W = Math.Min(window ?? model.Config.ContextLength, model.Config.ContextLength);
        int S = stride ?? Math.Max(1, W / 2);
        if (W < 1 || S < 1 || S > W) throw new ArgumentException($"Bits per byte: stride {S} must be in [1, window {W}].");
        long N = shard.TokenCount;
        if (N < 2) throw new ArgumentException($"{shard.Path}: the {split} split has {N} token(s); bits per byte needs at least 2.");
        long targets = N - 1;
        long goal = maxTokens is { } cap && cap < targets ? Math.Max(1, cap) : targets;
        bool complete = goal == targets;
        W = (int)Math.Min(W, N - 1);
        S = Math.Min(S, W);

        var scratch = new float[model.Config.VocabSize];
        var buffers = new Buffers(Math.Max(1, batchTokens / W), W);
        double nats = 0;
        long bytes = 0, scored = 0;
        foreach (var (lo, len) in Segments(targets, goal, W))
        {
            long before = scored;
            nats += ScoreRange(model, shard, lo, lo + len, W, S, buffers, scratch, done => progress?.Invoke(before + done, goal));
            if (!complete) bytes += DecodedBytes(shard, lo + 1, len, tokenizer);
            scored += len;
        }
        return new BitsPerByteResult(split, goal, N, complete ? splitBytes : bytes, nats, complete, W, S);
    }

    /// <summary>
    /// The target ranges (t[lo+1..lo+len]) scored for a cap of <paramref name="goal"/> out of
    /// <paramref name="targets"/>: the whole split when there is no cap; otherwise disjoint
    /// segments of at least 16 windows, with the unscored remainder spread evenly between them so
    /// a corpus whose documents differ (a novel, then speeches) is sampled throughout rather than
    /// only at its start.
    /// </summary>
    public static IReadOnlyList<(long Lo, long Length)> Segments(long targets, long goal, int window)
    {
        if (goal >= targets) return [(0, targets)];
        long segment = Math.Max(16L * window, (goal + 63) / 64);
        int count = (int)((goal + segment - 1) / segment);
        long gap = targets - goal;
        var list = new List<(long, long)>(count);
        for (int g = 0; g < count; g++)
        {
            long len = Math.Min(segment, goal - g * segment);
            list.Add((g * segment + gap * g / count, len));
        }
        return list;
    }

    sealed class Buffers(int rows, int window)
    {
        public readonly int Rows = rows;
        public readonly int[] Ids = new int[rows * window], Next = new int[rows * window];
        public readonly long[] Starts = new long[rows];
    }

    /// <summary>−Σ log p of targets t[lo+1..hi]; the first window leaves W − S tokens of context before t[lo+1] where the stream allows.</summary>
    static double ScoreRange(Transformer model, TokenShard shard, long lo, long hi, int W, int S, Buffers buf, float[] scratch, Action<long> progress,
        double[]? perTarget = null)
    {
        long N = shard.TokenCount;
        int vocab = model.Config.VocabSize;
        double nats = 0;
        long scoredUpTo = lo;   // targets t[lo+1..scoredUpTo] are done
        long nextStart = Math.Max(0, lo + S - W);
        while (scoredUpTo < hi)
        {
            int rows = 0;
            // Queue up to B windows; each scores the targets in (previous window's end, start + W].
            long plannedUpTo = scoredUpTo;
            while (rows < buf.Rows && plannedUpTo < hi)
            {
                long s = Math.Min(nextStart, N - 1 - W);
                buf.Starts[rows++] = s;
                plannedUpTo = Math.Min(hi, s + W);
                nextStart = s + S;
            }
            for (int r = 0; r < rows; r++)
            {
                shard.Read(buf.Starts[r], buf.Ids.AsSpan(r * W, W));
                shard.Read(buf.Starts[r] + 1, buf.Next.AsSpan(r * W, W));
            }
            using (var g = new Graph(recordGradients: false))
            {
                var logits = model.Forward(g, buf.Ids.AsSpan(0, rows * W), rows, W).Logits.AsSpan("BitsPerByte"); // (rows·W, V)
                for (int r = 0; r < rows; r++)
                {
                    long s = buf.Starts[r];
                    // Position p predicts target index s + p + 1.
                    long end = Math.Min(hi, s + W);
                    for (long t = Math.Max(scoredUpTo + 1, s + 1); t <= end; t++)
                    {
                        int p = (int)(t - s - 1);
                        double lp = LogLikelihoodScorer.LogProbOf(logits.Slice((r * W + p) * vocab, vocab), buf.Next[r * W + p], scratch, out _);
                        nats -= lp;
                        if (perTarget is not null) perTarget[t - 1] = lp;
                    }
                    scoredUpTo = Math.Max(scoredUpTo, end);
                }
            }
            progress(scoredUpTo - lo);
        }
        return nats;
    }

    /// <summary>
    /// ln p of every target of <paramref name="shard"/> under the same sliding windows as
    /// <see cref="Evaluate"/> (entry t − 1 is target t); their negated sum is the nats Evaluate reports.
    /// </summary>
    public static double[] TargetLogProbs(Transformer model, TokenShard shard, int? window = null, int? stride = null, int batchTokens = 8192,
        Action<long, long>? progress = null)
    {
        int W = Math.Min(window ?? model.Config.ContextLength, model.Config.ContextLength);
        int S = stride ?? Math.Max(1, W / 2);
        long N = shard.TokenCount;
        if (N < 2) throw new ArgumentException($"{shard.Path}: {N} token(s); scoring needs at least 2.");
        if (N - 1 > Array.MaxLength) throw new ArgumentException($"{shard.Path}: {N - 1} targets do not fit one array.");
        W = (int)Math.Min(W, N - 1);
        S = Math.Min(Math.Max(1, S), W);
        var result = new double[N - 1];
        ScoreRange(model, shard, 0, N - 1, W, S, new Buffers(Math.Max(1, batchTokens / W), W), new float[model.Config.VocabSize],
            done => progress?.Invoke(done, N - 1), result);
        return result;
    }

    /// <summary>UTF-8 bytes of tokens t[first..first+count), special tokens (BOS) excluded.</summary>
    public static long DecodedBytes(TokenShard shard, long first, long count, ITokenizer tokenizer)
    {
        long bytes = 0;
        var buf = new int[65536];
        var plain = new List<int>(buf.Length);
        for (long at = first; at < first + count; at += buf.Length)
        {
            int n = (int)Math.Min(buf.Length, first + count - at);
            shard.Read(at, buf.AsSpan(0, n));
            plain.Clear();
            for (int i = 0; i < n; i++) if (!tokenizer.SpecialTokens.IsSpecial(buf[i])) plain.Add(buf[i]);
            bytes += tokenizer.DecodeBytes(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(plain)).Length;
        }
        return bytes;
    }
}
