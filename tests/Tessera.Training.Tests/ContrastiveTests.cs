using Tessera.Model;
using Tessera.Tensors;
using Tessera.Text;
using Tessera.Training.Contrastive;

namespace Tessera.Training.Tests;

public class ContrastiveTests
{
    /// <summary>
    /// An independent double-precision InfoNCE: mean pooling (not the op's sum; the unit vectors are
    /// the same), cosine with explicit norms, log-softmax over rows and, when symmetric, columns.
    /// </summary>
    static double Reference(double[] q, int[] ql, int tq, double[] p, int[] pl, int tp, int d, double tau, bool symmetric)
    {
        int b = ql.Length;
        double[][] Pool(double[] h, int[] len, int t) => Enumerable.Range(0, b).Select(i =>
            Enumerable.Range(0, d).Select(k => Enumerable.Range(0, len[i]).Average(pos => h[(i * t + pos) * d + k])).ToArray()).ToArray();
        var u = Pool(q, ql, tq);
        var v = Pool(p, pl, tp);
        double Norm(double[] x) => Math.Sqrt(x.Sum(a => a * a));
        var s = new double[b, b];
        for (int i = 0; i < b; i++)
            for (int j = 0; j < b; j++)
                s[i, j] = u[i].Zip(v[j], (x, y) => x * y).Sum() / (Norm(u[i]) * Norm(v[j])) / tau;
        double rows = 0, cols = 0;
        for (int i = 0; i < b; i++) rows += -s[i, i] + Math.Log(Enumerable.Range(0, b).Sum(j => Math.Exp(s[i, j])));
        for (int j = 0; j < b; j++) cols += -s[j, j] + Math.Log(Enumerable.Range(0, b).Sum(i => Math.Exp(s[i, j])));
        return symmetric ? (rows + cols) / (2 * b) : rows / b;
    }

    [Theory]
    [InlineData(true)]
    [InlineData(false)]
    public void InfoNce_loss_and_gradient_match_a_reference_by_finite_differences(bool symmetric)
    {
        const int b = 4, tq = 3, tp = 5, d = 6;
        const float tau = 0.2f;
        int[] ql = [3, 1, 2, 3], pl = [5, 2, 4, 1];
        var rng = new Random(7);
        var qv = Enumerable.Range(0, b * tq * d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        var pv = Enumerable.Range(0, b * tp * d).Select(_ => (float)(rng.NextDouble() * 2 - 1)).ToArray();
        using var qt = Tensor.FromArray(qv, [b * tq, d]);
        using var pt = Tensor.FromArray(pv, [b * tp, d]);
        qt.RequiresGrad = true; pt.RequiresGrad = true;
        float loss;
        using (var g = new Graph())
        {
            var l = InfoNce.Loss(g, qt, ql, pt, pl, tau, symmetric);
            loss = l.Item();
            g.Backward(l);
        }
        double[] qd = qv.Select(x => (double)x).ToArray(), pd = pv.Select(x => (double)x).ToArray();
        double Ref() => Reference(qd, ql, tq, pd, pl, tp, d, tau, symmetric);
        Assert.Equal(Ref(), loss, 5);

        void Check(double[] values, float[] analytic, int[] lengths, int t, string what)
        {
            const double h = 1e-5;
            for (int at = 0; at < values.Length; at++)
            {
                double keep = values[at];
                values[at] = keep + h; double up = Ref();
                values[at] = keep - h; double down = Ref();
                values[at] = keep;
                double fd = (up - down) / (2 * h);
                int row = at / d / t, pos = at / d % t;
                if (pos >= lengths[row]) Assert.Equal(0f, analytic[at]);   // padding gets no gradient
                else Assert.True(Math.Abs(analytic[at] - fd) <= 1e-5 + 1e-4 * Math.Abs(fd), $"{what}[{at}]: analytic {analytic[at]}, finite difference {fd}");
            }
        }
        Check(qd, qt.Grad!.ToArray(), ql, tq, "queries");
        Check(pd, pt.Grad!.ToArray(), pl, tp, "positives");
    }

    [Fact]
    public void InfoNce_rejects_bad_shapes_with_clear_errors()
    {
        using var one = Tensor.FromArray(new float[4], [1, 4]);
        using var two = Tensor.FromArray([1, 0, 0, 0, 0, 1, 0, 0], [2, 4]);
        using var g = new Graph();
        Assert.Contains("at least 2 pairs", Assert.Throws<ArgumentException>(() => InfoNce.Loss(g, one, [1], one, [1], 0.1f)).Message);
        Assert.Contains("length 3", Assert.Throws<ArgumentException>(() => InfoNce.Loss(g, two, [1, 3], two, [1, 1], 0.1f)).Message);
        Assert.Throws<ArgumentOutOfRangeException>(() => InfoNce.Loss(g, two, [1, 1], two, [1, 1], 0f));
    }

    static readonly (string Q, string P)[] Pairs =
    [
        ("a red fruit", "apple: a red fruit that grows on trees"), ("a large grey animal", "elephant: a large grey animal with a trunk"),
        ("frozen water", "ice: frozen water, cold and hard"), ("a vehicle with wheels", "car: a vehicle with four wheels and an engine"),
        ("a place to sleep", "bed: a place to sleep at night"), ("tool for writing", "pen: a tool for writing with ink"),
        ("small flying insect", "fly: a small flying insect"), ("hot drink from leaves", "tea: a hot drink made from leaves"),
    ];

    static Transformer Tiny(ITokenizer tok) => new(new ModelConfig { VocabSize = tok.VocabSize, Dim = 32, Layers = 2, Heads = 4, KvHeads = 2, HiddenDim = 48, ContextLength = 64, TiedEmbeddings = false }, seed: 3);

    [Fact]
    public void The_models_gradient_of_the_contrastive_loss_matches_finite_differences()
    {
        var tok = new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        using var model = Tiny(tok);
        var batch = Pairs.Take(3).ToArray();
        int[] Row(string s) => [.. tok.Encode(s)];
        var qs = batch.Select(x => Row(x.Q)).ToArray();
        var ps = batch.Select(x => Row(x.P)).ToArray();
        int tq = qs.Max(r => r.Length), tp = ps.Max(r => r.Length);
        int[] Pack(int[][] rows, int t) { var a = new int[rows.Length * t]; for (int i = 0; i < rows.Length; i++) rows[i].CopyTo(a, i * t); return a; }
        int[] qIds = Pack(qs, tq), pIds = Pack(ps, tp), ql = [.. qs.Select(r => r.Length)], pl = [.. ps.Select(r => r.Length)];
        double Loss(bool backward)
        {
            using var g = new Graph(backward);
            var l = InfoNce.Loss(g, model.Forward(g, qIds, 3, tq).Hidden, ql, model.Forward(g, pIds, 3, tp).Hidden, pl, 0.5f);
            if (backward) g.Backward(l);
            return l.Item();
        }
        model.Parameters.ZeroGrad();
        Loss(true);
        var rng = new Random(11);
        int checkedCount = 0;
        foreach (var param in model.Parameters.All.Where(t => !t.Name.Contains("lm_head")))
        {
            var w = param.AsSpan();
            var grad = param.Grad!.ToArray();
            for (int n = 0; n < 2; n++)
            {
                int at = Enumerable.Range(0, w.Length).Where(i => grad[i] != 0).OrderBy(_ => rng.Next()).FirstOrDefault(-1);
                if (at < 0) continue;
                const float h = 1e-2f;
                float keep = w[at];
                w[at] = keep + h; double up = Loss(false);
                w[at] = keep - h; double down = Loss(false);
                w[at] = keep;
                double fd = (up - down) / (2 * h);
                Assert.True(Math.Abs(grad[at] - fd) <= 2e-3 + 0.05 * Math.Abs(fd), $"{param.Name}[{at}]: analytic {grad[at]}, finite difference {fd}");
                checkedCount++;
            }
        }
        Assert.True(checkedCount >= 10, $"only {checkedCount} weights checked");
    }

    [Fact]
    public void Contrastive_fine_tuning_separates_the_pairs_and_leaves_the_head_alone()
    {
        var tok = new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        using var model = Tiny(tok);
        var head = model.Parameters.All.First(t => t.Name.Contains("lm_head")).ToArray();
        var pairs = Pairs.Select(x => new ContrastivePair(x.Q, x.P)).ToList();
        using var trainer = new ContrastiveTrainer(model, tok, null, new ContrastiveOptions
        {
            Steps = 60, BatchSize = 8, LearningRate = 3e-3f, MinLearningRate = 3e-3f, WarmupSteps = 0, Temperature = 0.1f, WeightDecay = 0,
        });
        var before = trainer.Evaluate(pairs);
        ContrastiveStep? last = null;
        for (int i = 0; i < 60; i++) last = trainer.TrainStep(pairs);
        var after = trainer.Evaluate(pairs);
        Assert.True(after.Loss < before.Loss * 0.5, $"loss {before.Loss:F3} → {after.Loss:F3}");
        Assert.Equal(1.0, after.Accuracy);
        Assert.Equal(60, last!.Step);
        Assert.Equal(head, model.Parameters.All.First(t => t.Name.Contains("lm_head")).ToArray());   // untied: no gradient reaches the LM head (no decay here)
    }

    [Fact]
    public void Pair_files_round_trip_and_bad_lines_name_the_line()
    {
        using var tmp = new TempDir();
        var pairs = Pairs.Select(x => new ContrastivePair(x.Q, x.P)).ToList();
        ContrastivePairs.Write(tmp.File("pairs.jsonl"), pairs);
        Assert.Equal(pairs, ContrastivePairs.Load(tmp.File("pairs.jsonl")));
        File.WriteAllText(tmp.File("bad.jsonl"), "{\"query\":\"a\",\"positive\":\"b\"}\n{\"query\":\"a\"}\n");
        Assert.Contains("bad.jsonl:2", Assert.Throws<InvalidDataException>(() => ContrastivePairs.Load(tmp.File("bad.jsonl"))).Message);
        Assert.Throws<FileNotFoundException>(() => ContrastivePairs.Load(tmp.File("missing.jsonl")));
    }
}
