using Tessera.Model;

namespace Tessera.Inference;

/// <summary>
/// Speculative decoding (Leviathan et al. 2023; Chen et al. 2023) of one sequence: a small draft
/// model proposes k tokens one at a time, the target model checks all of them in one forward pass
/// over the k + 1 positions, and rejection sampling keeps the output distributed exactly as the
/// target's sampling distribution p (temperature and filters included):
/// <list type="bullet">
/// <item>drafted token d (drawn from the draft's distribution q) is accepted with probability min(1, p(d)/q(d));</item>
/// <item>the first rejection is replaced by a draw from norm(max(0, p − q)) and ends the step;</item>
/// <item>if all k are accepted, a bonus token is drawn from p at the next position.</item>
/// </list>
/// Greedy decoding accepts while the draft's token equals the target's argmax and otherwise emits
/// the target's argmax, so its output is the target's greedy output. Rejected positions are rolled
/// back by truncating each model's cache. Not thread-safe (see <see cref="SpeculativeEngine"/>).
/// </summary>
public sealed class SpeculativeDecoder : IDisposable
{
    readonly SequenceDecoder target, draft;
    readonly int k;
    float[][] q = [];
    float[] p = [], residual = [];

    /// <summary>Pairs <paramref name="targetWeights"/> with <paramref name="draftWeights"/> (same vocabulary), drafting <paramref name="draftTokens"/> per step.</summary>
    public SpeculativeDecoder(InferenceWeights targetWeights, InferenceWeights draftWeights, int draftTokens = 4)
    {
        if (draftTokens < 1) throw new ArgumentException($"draft tokens must be ≥ 1, got {draftTokens}.");
        if (targetWeights.Config.VocabSize != draftWeights.Config.VocabSize)
            throw new ArgumentException($"The draft model's vocabulary ({draftWeights.Config.VocabSize}) differs from the target's ({targetWeights.Config.VocabSize}).");
        target = new SequenceDecoder(targetWeights);
        draft = new SequenceDecoder(draftWeights);
        k = draftTokens;
        int V = targetWeights.Config.VocabSize;
        q = new float[k][];
        for (int i = 0; i < k; i++) q[i] = new float[V];
        p = new float[V]; residual = new float[V];
    }

    /// <summary>The target model's shape.</summary>
    public ModelConfig Config => target.Config;

    /// <summary>Tokens drafted per step (fewer near the end of the budget or the context).</summary>
    public int DraftTokens => k;

    /// <summary>Verification steps (target passes) so far.</summary>
    public long Steps { get; private set; }
    /// <summary>Draft tokens proposed so far.</summary>
    public long Drafted { get; private set; }
    /// <summary>Draft tokens accepted so far.</summary>
    public long Accepted { get; private set; }
    /// <summary>Tokens emitted so far.</summary>
    public long Generated { get; private set; }

    /// <summary>Mean tokens emitted per target pass (accepted drafts + the corrected or bonus token).</summary>
    public double TokensPerStep => Steps == 0 ? 0 : (double)Generated / Steps;

    /// <summary>Clears the counters.</summary>
    public void ResetStats() { Steps = Drafted = Accepted = Generated = 0; }

    /// <summary>The target's decoder (its cache slot 0 serves scoring and embedding between generations).</summary>
    internal SequenceDecoder Target => target;

    /// <summary>
    /// Generates for <paramref name="request"/> (checked up front), yielding each token as it is
    /// decided, with its log-probability under the target model (same definition as
    /// <see cref="ReferenceEngine.Describe"/>).
    /// </summary>
    public IEnumerable<TokenEvent> Generate(GenerationRequest request, CancellationToken cancel = default)
    {
        EngineChecks.Request(request, Config);
        return Run(request, cancel);
    }

    IEnumerable<TokenEvent> Run(GenerationRequest r, CancellationToken cancel)
    {
        if (r.MaxNewTokens == 0) yield break;
        bool greedy = r.Sampling.Temperature == 0;
        var targetSampler = new Sampler(r.Sampling);
        if (targetSampler.Penalised) throw new ArgumentException("speculative decoding does not support frequency or presence penalties (drafted tokens would need the counts before they are accepted).");
        var draftSampler = new Sampler(r.Sampling with { Seed = r.Sampling.Seed ^ 0x5DEECE66DUL });
        var tokens = new List<int>(r.Prompt);
        var ext = new List<int>(tokens.Count + k + 1);
        target.Reset(); draft.Reset();
        if (tokens.Count > 1)
        {
            // Both caches hold everything but the last prompt token, which each step feeds.
            var head = r.Prompt.Take(tokens.Count - 1).ToArray();
            target.Feed(head);
            draft.Feed(head);
        }
        int produced = 0, ctx = Config.ContextLength;
        var emit = new List<(int Id, int Row)>(k + 1);
        while (!cancel.IsCancellationRequested)
        {
            int n = tokens.Count;
            int steps = Math.Min(k, Math.Min(r.MaxNewTokens - produced - 1, ctx - n - 1));   // never draft past the budget or the context
            steps = Math.Max(0, Math.Min(steps, draft.Config.ContextLength - n + 1));             // nor past the draft's context

            // Draft: one token at a time, feeding whatever the draft has not seen yet.
            long t = DecodeProfile.Start();
            ext.Clear(); ext.AddRange(tokens);
            for (int i = 0; i < steps; i++)
            {
                draft.Feed(Span(ext, draft.Tokens.Count));
                var qi = q[i];
                draftSampler.Distribution(draft.Logits(0), qi);
                ext.Add(greedy ? Sampler.ArgMax(qi) : draftSampler.Draw(qi));
            }

            // Verify: the pending token and the drafts in one target pass; row i predicts position n + i.
            t = DecodeProfile.Add(DecodePhase.Draft, t);
            target.Feed(Span(ext, target.Tokens.Count), allLogits: true);
            DecodeProfile.Add(DecodePhase.Verify, t);
            emit.Clear();
            int accepted = 0;
            for (int i = 0; i < steps; i++)
            {
                int d = ext[n + i];
                var logits = target.Logits(i);
                if (greedy)
                {
                    int best = targetSampler.Next(logits);   // greedy: the argmax of the biased logits
                    if (best == d) { emit.Add((d, i)); accepted++; continue; }
                    emit.Add((best, i));
                    break;
                }
                targetSampler.Distribution(logits, p);
                if (targetSampler.NextUniform() * q[i][d] < p[d]) { emit.Add((d, i)); accepted++; continue; }
                double mass = 0;
                for (int j = 0; j < p.Length; j++) { residual[j] = MathF.Max(0f, p[j] - q[i][j]); mass += residual[j]; }
                emit.Add((targetSampler.Draw(mass > 0 ? residual : p), i));
                break;
            }
            if (accepted == steps)
            {
                var logits = target.Logits(steps);
                if (greedy) emit.Add((targetSampler.Next(logits), steps));
                else { targetSampler.Distribution(logits, p); emit.Add((targetSampler.Draw(p), steps)); }
            }
            Steps++; Drafted += steps; Accepted += accepted;

            // Roll back what the target rejected; the draft keeps only what agrees with the output.
            target.Truncate(n + accepted);
            draft.Truncate(Math.Min(draft.Tokens.Count, n + accepted));

            foreach (var (id, row) in emit)
            {
                var ev = ReferenceEngine.Describe(target.Logits(row), id, r.TopLogprobs);
                tokens.Add(id);
                produced++; Generated++;
                bool stop = r.StopIds?.Contains(id) == true;
                bool last = stop || produced == r.MaxNewTokens || tokens.Count >= ctx;
                if (last) { yield return ev with { Finish = stop ? FinishReason.Stop : FinishReason.Length }; yield break; }
                yield return ev;
            }
        }
    }

    static int[] Span(List<int> list, int from)
    {
        var a = new int[list.Count - from];
        list.CopyTo(from, a, 0, a.Length);
        return a;
    }

    /// <summary>Frees the target and draft decoders and their caches.</summary>
    public void Dispose() { target.Dispose(); draft.Dispose(); }
}
