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
    /// <paramref name="maxTokens"/> only the first that many targets are scored and the byte count
    /// is that of their decoded text (BOS excluded); otherwise <paramref name="splitBytes"/> (from
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

        int vocab = model.Config.VocabSize;
        int B = Math.Max(1, batchTokens / W);
        var ids = new int[B * W];
        var next = new int[B * W];
        var starts = new long[B];
        var scratch = new float[vocab];
        double nats = 0;
        long scoredUpTo = 0;   // targets t[1..scoredUpTo] are done
        long nextStart = 0;
        while (scoredUpTo < goal)
        {
            int rows = 0;
            // Queue up to B windows; each scores targets (lastScoredByPrevious, start + W].
            long plannedUpTo = scoredUpTo;
            while (rows < B && plannedUpTo < goal)
            {
                long s = Math.Min(nextStart, N - 1 - W);
                starts[rows++] = s;
                plannedUpTo = Math.Min(goal, s + W);
                nextStart = s + S;
            }
            for (int r = 0; r < rows; r++)
            {
                shard.Read(starts[r], ids.AsSpan(r * W, W));
                shard.Read(starts[r] + 1, next.AsSpan(r * W, W));
            }
            using (var g = new Graph(recordGradients: false))
            {
                var logits = model.Forward(g, ids.AsSpan(0, rows * W), rows, W).Logits.AsSpan("BitsPerByte"); // (rows·W, V)
                for (int r = 0; r < rows; r++)
                {
                    long s = starts[r];
                    // Target index of position p is s + p + 1; score those in (scoredUpTo, min(goal, s + W)].
                    long end = Math.Min(goal, s + W);
                    for (long t = Math.Max(scoredUpTo + 1, s + 1); t <= end; t++)
                    {
                        int p = (int)(t - s - 1);
                        nats -= LogLikelihoodScorer.LogProbOf(logits.Slice((r * W + p) * vocab, vocab), next[r * W + p], scratch, out _);
                    }
                    scoredUpTo = Math.Max(scoredUpTo, end);
                }
            }
            progress?.Invoke(scoredUpTo, goal);
        }

        long bytes = complete ? splitBytes : DecodedBytes(shard, goal, tokenizer);
        return new BitsPerByteResult(split, goal, N, bytes, nats, complete, W, S);
    }

    /// <summary>UTF-8 bytes of targets t[1..count], special tokens (BOS) excluded.</summary>
    public static long DecodedBytes(TokenShard shard, long count, ITokenizer tokenizer)
    {
        long bytes = 0;
        var buf = new int[65536];
        var plain = new List<int>(buf.Length);
        for (long at = 1; at <= count; at += buf.Length)
        {
            int n = (int)Math.Min(buf.Length, count - at + 1);
            shard.Read(at, buf.AsSpan(0, n));
            plain.Clear();
            for (int i = 0; i < n; i++) if (!tokenizer.SpecialTokens.IsSpecial(buf[i])) plain.Add(buf[i]);
            bytes += tokenizer.DecodeBytes(System.Runtime.InteropServices.CollectionsMarshal.AsSpan(plain)).Length;
        }
        return bytes;
    }
}
