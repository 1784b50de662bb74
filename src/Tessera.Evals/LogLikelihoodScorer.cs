using System.Numerics.Tensors;
using Tessera.Model;
using Tessera.Tensors;

namespace Tessera.Evals;

/// <summary>
/// One thing to score: log p(<paramref name="Continuation"/> | <paramref name="Context"/>).
/// The context must hold at least one token (callers put BOS first), the continuation at least one.
/// </summary>
public readonly record struct ScoringRequest(int[] Context, int[] Continuation);

/// <summary>
/// The score of one <see cref="ScoringRequest"/>: the summed natural-log probability of the
/// continuation tokens, their count, and whether every continuation token was the model's
/// argmax (greedy) choice.
/// </summary>
public readonly record struct ContinuationScore(double LogProb, int Tokens, bool IsGreedy);

/// <summary>
/// Scores continuations with a no-grad forward pass, several sequences per forward. Sequences
/// are sorted by length and packed into batches of at most <see cref="BatchTokens"/> (B·T)
/// tokens; shorter rows are right-padded, which cannot change the scores because attention is
/// causal and padding only follows the scored positions. (For an MoE model with a capacity
/// factor, padding tokens would compete for expert capacity; dropless models, the default, are
/// exact.) A context longer than the model's window is cut from the left.
/// </summary>
public sealed class LogLikelihoodScorer
{
    readonly Transformer model;

    /// <summary>Scores with <paramref name="model"/>; <paramref name="batchTokens"/> caps B·T per forward pass.</summary>
    public LogLikelihoodScorer(Transformer model, int batchTokens = 8192)
    {
        if (batchTokens < 1) throw new ArgumentOutOfRangeException(nameof(batchTokens), batchTokens, "Batch token budget must be positive.");
        this.model = model;
        BatchTokens = batchTokens;
    }

    /// <summary>Largest B·T of one forward pass.</summary>
    public int BatchTokens { get; }

    /// <summary>The model being scored.</summary>
    public Transformer Model => model;

    /// <summary>Scores every request; element i of the result belongs to request i.</summary>
    public ContinuationScore[] Score(IReadOnlyList<ScoringRequest> requests)
    {
        int ctxLen = model.Config.ContextLength, vocab = model.Config.VocabSize;
        var sequences = new int[requests.Count][];
        var firstTarget = new int[requests.Count];
        for (int i = 0; i < requests.Count; i++)
        {
            var (ctx, cont) = requests[i];
            if (ctx is null || ctx.Length == 0) throw new ArgumentException($"Scoring request {i}: the context is empty (put BOS first).");
            if (cont is null || cont.Length == 0) throw new ArgumentException($"Scoring request {i}: the continuation is empty.");
            if (cont.Length > ctxLen) throw new ArgumentException($"Scoring request {i}: continuation of {cont.Length} tokens does not fit the model's context of {ctxLen}.");
            // Inputs are every token but the last (whose successor is not scored), so ctx + cont − 1 ≤ context length.
            int keepCtx = Math.Min(ctx.Length, ctxLen + 1 - cont.Length);
            var seq = new int[keepCtx + cont.Length];
            ctx.AsSpan(ctx.Length - keepCtx).CopyTo(seq);
            cont.CopyTo(seq.AsSpan(keepCtx));
            foreach (int id in seq)
                if ((uint)id >= (uint)vocab) throw new ArgumentException($"Scoring request {i}: token id {id} is outside the model's vocabulary of {vocab}.");
            sequences[i] = seq;
            firstTarget[i] = keepCtx;
        }

        var order = new int[requests.Count];
        for (int i = 0; i < order.Length; i++) order[i] = i;
        Array.Sort(order, (a, b) => sequences[b].Length != sequences[a].Length ? sequences[b].Length.CompareTo(sequences[a].Length) : a.CompareTo(b));

        var results = new ContinuationScore[requests.Count];
        var scratch = new float[vocab];
        for (int start = 0; start < order.Length;)
        {
            int T = sequences[order[start]].Length - 1;    // longest row of this batch (sorted descending)
            int B = Math.Max(1, Math.Min(order.Length - start, BatchTokens / Math.Max(T, 1)));
            var ids = new int[B * T];                       // (B, T), right-padded with id 0
            for (int b = 0; b < B; b++) sequences[order[start + b]].AsSpan(0, sequences[order[start + b]].Length - 1).CopyTo(ids.AsSpan(b * T));
            using (var g = new Graph(recordGradients: false))
            {
                var logits = model.Forward(g, ids, B, T).Logits.AsSpan("LogLikelihoodScorer"); // (B·T, V)
                for (int b = 0; b < B; b++)
                {
                    int r = order[start + b];
                    var seq = sequences[r];
                    double sum = 0;
                    bool greedy = true;
                    for (int p = firstTarget[r] - 1; p < seq.Length - 1; p++)
                    {
                        var row = logits.Slice((b * T + p) * vocab, vocab);
                        sum += LogProbOf(row, seq[p + 1], scratch, out bool isMax);
                        greedy &= isMax;
                    }
                    results[r] = new ContinuationScore(sum, seq.Length - firstTarget[r], greedy);
                }
            }
            start += B;
        }
        return results;
    }

    /// <summary>
    /// log softmax(<paramref name="logits"/>)[<paramref name="target"/>], computed as
    /// x_t − max − log Σ exp(x − max) so large logits cannot overflow; <paramref name="isMax"/>
    /// says whether the target is the argmax.
    /// </summary>
    public static double LogProbOf(ReadOnlySpan<float> logits, int target, Span<float> scratch, out bool isMax)
    {
        float max = TensorPrimitives.Max(logits);
        var s = scratch[..logits.Length];
        TensorPrimitives.Subtract(logits, max, s);
        TensorPrimitives.Exp(s, s);
        double sumExp = TensorPrimitives.Sum<float>(s);
        isMax = logits[target] >= max;
        return logits[target] - max - Math.Log(sumExp);
    }
}
