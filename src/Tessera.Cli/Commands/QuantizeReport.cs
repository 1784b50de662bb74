using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Tensors;

namespace Tessera.Cli.Commands;

/// <summary>
/// Quantization judged by statistics (STYLE §10): for each storage type, the model is written to
/// GGUF, read back (dequantized to fp32) and run with the plain <see cref="Transformer"/> forward on
/// held-out tokens next to the fp32 model. Reported per type: perplexity of the next token,
/// mean KL(p_fp32 ‖ p_quant) over positions, top-1 agreement with fp32, and the file size.
/// Going through the written file means the numbers describe exactly what <c>tessera quantize</c> ships.
/// </summary>
public static class QuantizeReport
{
    /// <summary>One row: the variant, its GGUF bytes and bits per parameter, perplexity, mean KL (nats) and top-1 agreement.</summary>
    public sealed record Row(string Variant, long FileBytes, double BitsPerParameter, double Perplexity, double KlDivergence, double Top1Agreement);

    /// <summary>The variants compared: fp32 reference, F16, Q8_0, Q4_0, ternary with groups of <paramref name="group"/>, per-tensor ternary.</summary>
    public static IReadOnlyList<(string Name, GgufExportOptions? Options)> Variants(int group) =>
    [
        ("fp32", null),
        ("f16", new GgufExportOptions { Type = GgufWeightType.F16 }),
        ("q8_0", new GgufExportOptions { Type = GgufWeightType.Q8_0 }),
        ("q4_0", new GgufExportOptions { Type = GgufWeightType.Q4_0 }),
        ($"ternary/g{group}", new GgufExportOptions { Type = GgufWeightType.Ternary, TernaryGroup = group }),
        ("ternary/tensor", new GgufExportOptions { Type = GgufWeightType.Ternary, TernaryGroup = 0 }),
    ];

    /// <summary>Evaluates every variant of <paramref name="reference"/> on <paramref name="tokens"/> in windows of <paramref name="seq"/>.</summary>
    public static IReadOnlyList<Row> Run(Transformer reference, ReadOnlySpan<int> tokens, int seq, int group, string tempDir, Action<string>? progress = null)
    {
        seq = Math.Min(seq, reference.Config.ContextLength);
        int windows = (tokens.Length - 1) / seq;
        if (windows < 1) throw new ArgumentException($"The report needs more than {seq} held-out tokens; got {tokens.Length}.");
        var variants = Variants(group);
        var models = new Transformer[variants.Count];
        var bytes = new long[variants.Count];
        Directory.CreateDirectory(tempDir);
        try
        {
            for (int v = 0; v < variants.Count; v++)
            {
                if (variants[v].Options is not { } options) { models[v] = reference; continue; }
                string path = Path.Combine(tempDir, $"report-{v}.gguf");
                GgufModel.Save(reference, path, options);
                bytes[v] = new FileInfo(path).Length;
                models[v] = GgufModel.Load(path);
                File.Delete(path);
            }
            var nll = new double[variants.Count];
            var kl = new double[variants.Count];
            var agree = new long[variants.Count];
            long positions = 0;
            int vocab = reference.Config.VocabSize;
            var refLogProbs = new double[vocab];
            var logProbs = new double[vocab];
            for (int w = 0; w < windows; w++)
            {
                var ids = tokens.Slice(w * seq, seq).ToArray();
                var logits = new float[variants.Count][];
                for (int v = 0; v < variants.Count; v++)
                {
                    using var g = new Graph(recordGradients: false);
                    logits[v] = models[v].Forward(g, ids, 1, seq).Logits.AsSpan().ToArray();
                }
                for (int t = 0; t < seq; t++)
                {
                    int target = tokens[w * seq + t + 1];
                    int refTop = LogSoftmax(logits[0].AsSpan(t * vocab, vocab), refLogProbs);
                    for (int v = 0; v < variants.Count; v++)
                    {
                        int top = LogSoftmax(logits[v].AsSpan(t * vocab, vocab), logProbs);
                        nll[v] -= logProbs[target];
                        double k = 0;
                        for (int i = 0; i < vocab; i++) k += Math.Exp(refLogProbs[i]) * (refLogProbs[i] - logProbs[i]);
                        kl[v] += k;
                        if (top == refTop) agree[v]++;
                    }
                }
                positions += seq;
                progress?.Invoke($"report: window {w + 1}/{windows}");
            }
            long parameters = reference.Config.ParameterCount;
            var rows = new Row[variants.Count];
            for (int v = 0; v < variants.Count; v++)
            {
                long fileBytes = variants[v].Options is null ? parameters * 4 : bytes[v];
                rows[v] = new Row(variants[v].Name, fileBytes, fileBytes * 8.0 / parameters, Math.Exp(nll[v] / positions), kl[v] / positions, (double)agree[v] / positions);
            }
            return rows;
        }
        finally
        {
            for (int v = 0; v < models.Length; v++)
                if (models[v] is { } m && !ReferenceEquals(m, reference)) m.Dispose();
        }
    }

    /// <summary>log-softmax in double; returns the argmax.</summary>
    static int LogSoftmax(ReadOnlySpan<float> logits, double[] output)
    {
        int arg = 0;
        for (int i = 1; i < logits.Length; i++) if (logits[i] > logits[arg]) arg = i;
        double max = logits[arg], sum = 0;
        for (int i = 0; i < logits.Length; i++) sum += Math.Exp(logits[i] - max);
        double lse = max + Math.Log(sum);
        for (int i = 0; i < logits.Length; i++) output[i] = logits[i] - lse;
        return arg;
    }
}
