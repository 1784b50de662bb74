using StbImageWriteSharp;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Tensors;
using Tessera.Text;
using Tessera.Vision;

namespace Tessera.Server.Tests;

/// <summary>
/// A multimodal model trained tiny in a test: the byte tokenizer, a 2-layer decoder and a patch
/// embedder learn to answer "colour?" about a noisy solid-colour image with "red", "green" or "blue"
/// in Tessera's chat format (the image right after the user marker, prefix-LM over the prompt).
/// About a second of training on 2 cores; shared by the server and CLI tests.
/// </summary>
public static class ColourModel
{
    public const string Question = "colour?";
    public static readonly string[] Colours = ["red", "green", "blue"];
    public static readonly VisionConfig Vision = new(ImageSize: 16, PatchSize: 8, Channels: 3);

    public static readonly ITokenizer Tok = TokenizerFiles.Load("bytes");

    public static ModelConfig Config => new()
    {
        VocabSize = Tok.VocabSize, Dim = 32, Layers = 2, Heads = 2, KvHeads = 1, HiddenDim = 64, ContextLength = 64, TiedEmbeddings = false,
    };

    /// <summary>A w×h image of colour <paramref name="k"/> (0 red, 1 green, 2 blue) with per-pixel noise.</summary>
    public static RgbImage Image(int k, int w, int h, Random rng)
    {
        var rgb = new byte[w * h * 3];
        for (int i = 0; i < w * h; i++)
            for (int c = 0; c < 3; c++) rgb[i * 3 + c] = (byte)(c == k ? rng.Next(170, 256) : rng.Next(0, 70));
        return new RgbImage(w, h, rgb);
    }

    public static byte[] Png(RgbImage image)
    {
        using var ms = new MemoryStream();
        new ImageWriter().WritePng(image.Rgb, image.Width, image.Height, ColorComponents.RedGreenBlue, ms);
        return ms.ToArray();
    }

    /// <summary>The chat prompt rows written out by hand (not through ChatImages): BOS, user, image rows, question, end, assistant.</summary>
    public static int[] PromptRows()
    {
        var s = Tok.SpecialTokens;
        var rows = new List<int> { s.Id(ChatTemplate.Bos), s.Id("<|user|>") };
        for (int i = 0; i < Vision.TokensPerImage; i++) rows.Add(ImageSpans.VectorId);
        rows.AddRange(Tok.Encode(Question));
        rows.Add(s.Id(ChatTemplate.End));
        rows.Add(s.Id("<|assistant|>"));
        return [.. rows];
    }

    /// <summary>Trains the model (150 AdamW steps of 12 examples); returns it and its last loss.</summary>
    public static (MultimodalModel Model, double Loss) Train()
    {
        var model = new MultimodalModel(new Transformer(Config, seed: 5), new PatchEmbedder(Vision, Config.Dim, seed: 6));
        var rng = new Random(7);
        var prompt = PromptRows();
        int end = Tok.SpecialTokens.Id(ChatTemplate.End);
        double loss = double.NaN;
        using var opt = new AdamW(model.AllParameters, 1e-2f, 0.9f, 0.95f, 1e-8f, 0f, _ => false);
        const int B = 12, T = 21;   // the longest sequence: 15 prompt rows + "green" + <|end|>, less one
        for (int step = 0; step < 150; step++)
        {
            var ids = new int[B * T]; var targets = new int[B * T]; var prefix = new int[B];
            Array.Fill(targets, -100);
            var patches = new List<float>();
            for (int b = 0; b < B; b++)
            {
                int k = rng.Next(3);
                var full = prompt.Concat(Tok.Encode(Colours[k])).Append(end).ToArray();
                full.AsSpan(0, full.Length - 1).CopyTo(ids.AsSpan(b * T));
                for (int t = prompt.Length - 1; t < full.Length - 1; t++) targets[b * T + t] = full[t + 1];
                prefix[b] = prompt.Length;
                patches.AddRange(PatchGrid.Patches(Image(k, 16, 16, rng), Vision));
            }
            using var g = new Graph();
            var r = model.Forward(g, ids, B, T, [.. patches], prefix, targets);
            loss = r.Loss!.Item();
            g.Backward(r.Loss!);
            GradClip.ClipGlobalNorm(model.AllParameters, 1.0);
            opt.Step();
            opt.ZeroGrad();
        }
        return (model, loss);
    }

    /// <summary>
    /// Greedy decoding of <paramref name="prompt"/> (prefix-LM over all of them) with the training
    /// forward — no engine, no server: the reference. Per step (the stop token included) the
    /// log-probability of the chosen token and of the runner-up.
    /// </summary>
    public static (List<int> Ids, List<(double Best, double Second)> Logprobs) Greedy(MultimodalModel model, int[] prompt, float[] patches, int stop, int maxTokens = 8)
    {
        var rows = prompt.ToList();
        int prefix = rows.Count;
        var logprobs = new List<(double, double)>();
        var reply = new List<int>();
        int v = model.Decoder.Config.VocabSize;
        for (int k = 0; k < maxTokens; k++)
        {
            using var g = new Graph(recordGradients: false);
            var logits = model.Forward(g, [.. rows], 1, rows.Count, patches, [prefix]).Logits.AsSpan("Greedy");
            var last = logits.Slice((rows.Count - 1) * v, v);
            int best = 0;
            for (int j = 1; j < last.Length; j++) if (last[j] > last[best]) best = j;
            double z = 0;
            int second = best == 0 ? 1 : 0;
            for (int j = 0; j < last.Length; j++)
            {
                z += Math.Exp(last[j] - last[best]);
                if (j != best && last[j] > last[second]) second = j;
            }
            logprobs.Add((-Math.Log(z), last[second] - last[best] - Math.Log(z)));
            if (best == stop) break;
            reply.Add(best);
            rows.Add(best);
        }
        return (reply, logprobs);
    }

    /// <summary>Reply text without special tokens.</summary>
    public static string Text(IEnumerable<int> ids) => Tok.Decode(ids.Where(id => !Tok.SpecialTokens.IsSpecial(id)).ToArray());
}
