using Tessera.Tensors;

namespace Tessera.Evals.Tests;

public class LogLikelihoodScorerTests
{
    const double U = 1.0 / (1 << 24);

    [Fact]
    public void UniformModelGivesMinusLogVocabPerToken()
    {
        using var m = TinyModels.Uniform();
        var scorer = new LogLikelihoodScorer(m, batchTokens: 64);
        var requests = new List<ScoringRequest>();
        for (int len = 1; len <= 20; len++) requests.Add(new ScoringRequest([TinyModels.Bos, .. TinyModels.Tokens(len % 5 + 1, (ulong)len)], TinyModels.Tokens(len, 100 + (ulong)len)));
        var scores = scorer.Score(requests);
        double lnV = Math.Log(m.Config.VocabSize);
        for (int i = 0; i < scores.Length; i++)
        {
            Assert.Equal(requests[i].Continuation.Length, scores[i].Tokens);
            // Zero logits: max = 0, Σexp = V summed in fp32 (error ≤ γ_V·V), so |err| ≤ tokens·γ_V relative.
            double bound = scores[i].Tokens * (m.Config.VocabSize + 2) * U * 2;
            Assert.InRange(scores[i].LogProb, -lnV * scores[i].Tokens - bound, -lnV * scores[i].Tokens + bound);
            Assert.True(scores[i].IsGreedy);   // all logits tie, so each target equals the max
        }
    }

    [Fact]
    public void BatchedScoresMatchOneSequencePerForward()
    {
        using var m = TinyModels.Random(context: 24);
        var requests = new List<ScoringRequest>();
        for (int i = 0; i < 30; i++)
            requests.Add(new ScoringRequest([TinyModels.Bos, .. TinyModels.Tokens(i % 7, (ulong)i + 1)], TinyModels.Tokens(1 + i % 11, (ulong)i + 50)));
        // A context too long for the window is cut from the left.
        requests.Add(new ScoringRequest([TinyModels.Bos, .. TinyModels.Tokens(40, 9)], TinyModels.Tokens(6, 10)));
        var batched = new LogLikelihoodScorer(m, batchTokens: 4096).Score(requests);
        for (int i = 0; i < requests.Count; i++)
        {
            double expected = Reference(m, requests[i], out bool greedy);
            // The two paths differ only in fp32 rounding order inside the forward pass: bound each
            // token's log-prob error by γ over the longest reduction (hidden dim) times the layers' count of GEMMs,
            // relative to the magnitude of the log-prob.
            int k = m.Config.HiddenDim * m.Config.Layers * 8;
            double bound = requests[i].Continuation.Length * k * U * (1 + Math.Abs(expected));
            Assert.InRange(batched[i].LogProb, expected - bound, expected + bound);
            Assert.Equal(requests[i].Continuation.Length, batched[i].Tokens);
        }
    }

    /// <summary>The slow twin: one sequence per forward, log-softmax in double.</summary>
    static double Reference(Tessera.Model.Transformer m, ScoringRequest r, out bool greedy)
    {
        int T = m.Config.ContextLength;
        int[] seq = [.. r.Context, .. r.Continuation];
        int drop = Math.Max(0, seq.Length - 1 - T);
        seq = seq[drop..];
        int first = r.Context.Length - drop;
        using var g = new Graph(recordGradients: false);
        var logits = m.Forward(g, seq.AsSpan(0, seq.Length - 1), 1, seq.Length - 1).Logits.ToArray();
        int V = m.Config.VocabSize;
        double sum = 0;
        greedy = true;
        for (int p = first - 1; p < seq.Length - 1; p++)
        {
            double max = double.NegativeInfinity;
            for (int v = 0; v < V; v++) max = Math.Max(max, logits[p * V + v]);
            double z = 0;
            for (int v = 0; v < V; v++) z += Math.Exp(logits[p * V + v] - max);
            sum += logits[p * V + seq[p + 1]] - max - Math.Log(z);
            greedy &= logits[p * V + seq[p + 1]] >= max;
        }
        return sum;
    }

    [Fact]
    public void RejectsEmptyContinuationAndOutOfVocabularyIds()
    {
        using var m = TinyModels.Random();
        var scorer = new LogLikelihoodScorer(m);
        Assert.Contains("continuation is empty", Assert.Throws<ArgumentException>(() => scorer.Score([new ScoringRequest([1], [])])).Message);
        Assert.Contains("context is empty", Assert.Throws<ArgumentException>(() => scorer.Score([new ScoringRequest([], [1])])).Message);
        Assert.Contains("outside the model's vocabulary", Assert.Throws<ArgumentException>(() => scorer.Score([new ScoringRequest([1], [100000])])).Message);
    }
}
