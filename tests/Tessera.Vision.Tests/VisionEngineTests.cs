using Tessera.Inference;
using Tessera.Model.Tests;
using Tessera.Tensors;
using Xunit.Abstractions;
using static Tessera.Model.Tests.ModelFixture;

namespace Tessera.Vision.Tests;

/// <summary>
/// The inference engine with images: the same rows (patch vectors where ids are negative) and the
/// same prefix-LM mask through <see cref="ForwardPass"/> and <see cref="BatchingEngine"/> give the
/// training forward's logits and the torch reference's; batching mixed text and image requests
/// changes nothing.
/// </summary>
public class VisionEngineTests(ITestOutputHelper output)
{
    static double Tol(int layers) => (9 + 20 * layers) * 66.0 / (1 << 24);

    /// <summary>Fixture row b: its ids, its image's vectors (from the embedder) and its prefix length.</summary>
    static (int[] Ids, float[] Vectors, int Prefix) Row(VisionGolden gold, MultimodalModel model, int b)
    {
        var ids = gold.Fx.Ints("input_ids").AsSpan(b * gold.Seq, gold.Seq).ToArray();
        int per = gold.Config.TokensPerImage * gold.Config.PatchValues;
        var patches = gold.Patches().AsSpan(b * per, per).ToArray();   // one image per row, in row order
        return (ids, model.Embedder.Embed(patches), gold.Fx.Ints("prefix")[b]);
    }

    [Fact]
    public void ForwardPassWithImagesEqualsTrainingForwardAndTheReference()
    {
        var gold = new VisionGolden();
        using var model = gold.Load();
        float[] train;
        using (var g = new Graph(recordGradients: false))
            train = model.Forward(g, gold.Fx.Ints("input_ids"), gold.Batch, gold.Seq, gold.Patches(), gold.Fx.Ints("prefix")).Logits.ToArray();
        var reference = gold.Fx.Floats("logits");
        var weights = InferenceWeights.FromTransformer(model.Decoder);
        int V = model.Decoder.Config.VocabSize, D = model.Decoder.Config.Dim;
        using var cache = new KvCache(model.Decoder.Config, gold.Batch);
        var pass = new ForwardPass(weights, cache);
        var engine = new float[train.Length];
        for (int b = 0; b < gold.Batch; b++)
        {
            cache.Ensure(b);
            var (ids, vectors, prefix) = Row(gold, model, b);
            // The prefix in one pass, then chunks of 4 (the causal row's image is split across chunks).
            int pos = 0, used = 0;
            while (pos < ids.Length)
            {
                int take = pos < prefix ? prefix - pos : Math.Min(4, ids.Length - pos);
                var rows = new TokenRow[take];
                int vecRows = 0;
                for (int i = 0; i < take; i++) { rows[i] = new TokenRow(b, pos + i, ids[pos + i], prefix); if (ids[pos + i] < 0) vecRows++; }
                pass.Run(rows, Enumerable.Range(0, take).ToArray(), vectors: vectors.AsSpan(used * D, vecRows * D));
                for (int i = 0; i < take; i++) pass.Logits(i).CopyTo(engine.AsSpan(((b * gold.Seq) + pos + i) * V, V));
                pos += take; used += vecRows;
            }
        }
        double tol = Tol(model.Decoder.Config.Layers);
        Compare("engine vs training", train, engine, tol, output.WriteLine);
        Compare("engine vs torch", reference, engine, tol, output.WriteLine);
    }

    [Fact]
    public async Task MixedTextAndImageRequestsAreBatchInvariantAndMatchTheTrainingForward()
    {
        var gold = new VisionGolden();
        using var model = gold.Load();
        var r0 = Row(gold, model, 0);
        var r1 = Row(gold, model, 1);
        var requests = new[]
        {
            Request(r0.Ids[..13], r0.Vectors, r0.Prefix),          // image + prompt as a prefix
            Request([5, 9, 17, 33, 2, 40], null, 0),                 // text only
            Request(r1.Ids[..14], r1.Vectors, 0),                    // image inside causal text
            Request(r0.Ids[..15], r0.Vectors, 15),                   // the whole prompt as prefix
            Request([7, 8], null, 0),
        };
        var alone = new List<List<TokenEvent>>();
        foreach (var r in requests)
        {
            using var one = new BatchingEngine(model.Decoder, new BatchingOptions { MaxSequences = 1 });
            alone.Add(await Collect(one, r));
        }
        using var engine = new BatchingEngine(model.Decoder, new BatchingOptions { MaxSequences = 4, PrefillChunk = 5 });
        var together = await Task.WhenAll(requests.Select(r => Collect(engine, r)));
        for (int i = 0; i < requests.Length; i++)
        {
            Assert.Equal(alone[i].Select(e => e.Id), together[i].Select(e => e.Id));
            Assert.Equal(alone[i].Select(e => e.Logprob), together[i].Select(e => e.Logprob));   // bit for bit
        }

        // Engine tokens fed back through the training forward (with the same prefix) give the engine's log-probabilities.
        for (int i = 0; i < requests.Length; i++)
        {
            var r = requests[i];
            var seq = r.Prompt.Concat(alone[i].Select(e => e.Id)).ToArray();
            int vecRows = seq.Count(id => id < 0);
            float[] patches = vecRows == 0 ? [] : gold.Patches().AsSpan((i == 2 ? 1 : 0) * vecRows * gold.Config.PatchValues, vecRows * gold.Config.PatchValues).ToArray();
            using var g = new Graph(recordGradients: false);
            var logits = model.Forward(g, seq, 1, seq.Length, patches, r.PrefixLength == 0 ? default : [r.PrefixLength]).Logits.ToArray();
            int V = model.Decoder.Config.VocabSize;
            for (int k = 0; k < alone[i].Count; k++)
            {
                var row = logits.AsSpan((r.Prompt.Count - 1 + k) * V, V);
                double max = double.NegativeInfinity, sum = 0;
                foreach (float x in row) max = Math.Max(max, x);
                foreach (float x in row) sum += Math.Exp(x - max);
                double lp = row[alone[i][k].Id] - max - Math.Log(sum);
                Assert.True(Math.Abs(lp - alone[i][k].Logprob) < 1e-4, $"request {i} token {k}: engine log p {alone[i][k].Logprob}, training forward {lp}");
            }
        }
    }

    [Fact]
    public async Task ThePrefixCacheNeverSharesKvComputedFromImagesOrAPrefixMask()
    {
        // The prefix cache is keyed by token ids; image rows are all −1 and a bidirectional prefix
        // changes the KV of every position in it, so neither may be stored or restored.
        var gold = new VisionGolden();
        using var model = gold.Load();
        var r0 = Row(gold, model, 0);
        var other = r0.Vectors.Select(v => -v).ToArray();                // another image, same ids
        // Prompts of several 16-position cache blocks: the image, then text.
        int[] tail = [.. Enumerable.Range(0, 40).Select(i => 3 + i * 7 % 60)];
        int[] withImage = [.. r0.Ids[..13], .. tail];
        int[] text = [.. r0.Ids[..13].Where(id => id >= 0), .. tail];
        var requests = new[]
        {
            Request(withImage, r0.Vectors, 0),
            Request(withImage, other, 0),
            Request(withImage, other, 13),
            Request(text, null, 0),
            Request(text, null, 20),
            Request(text, null, 0),
        };
        using var cached = new BatchingEngine(model.Decoder, new BatchingOptions { MaxSequences = 1, PrefixCacheBytes = 64L << 20 });
        foreach (var r in requests)
        {
            using var plain = new BatchingEngine(model.Decoder, new BatchingOptions { MaxSequences = 1 });
            var want = await Collect(plain, r);
            var got = await Collect(cached, r);
            Assert.Equal(want.Select(e => e.Id), got.Select(e => e.Id));
            Assert.Equal(want.Select(e => e.Logprob), got.Select(e => e.Logprob));
        }
    }

    static GenerationRequest Request(int[] prompt, float[]? vectors, int prefix)
        => new(prompt, 6, SamplingOptions.Greedy) { InputVectors = vectors, PrefixLength = prefix };

    static async Task<List<TokenEvent>> Collect(BatchingEngine engine, GenerationRequest r)
    {
        var list = new List<TokenEvent>();
        await foreach (var e in engine.GenerateAsync(r)) list.Add(e);
        return list;
    }

    [Fact]
    public void EnginesWithoutVectorSupportRefuseImageRequests()
    {
        var gold = new VisionGolden();
        using var model = gold.Load();
        var r = Row(gold, model, 0);
        var request = Request(r.Ids[..13], r.Vectors, r.Prefix);
        var e = Assert.Throws<ArgumentException>(() => new ReferenceEngine(model.Decoder).Generate(request.Prompt, 2, SamplingOptions.Greedy));
        Assert.Contains("outside the vocabulary", e.Message);
        using var engine = new BatchingEngine(model.Decoder);
        var bad = request with { InputVectors = r.Vectors[..^1] };
        e = Assert.Throws<ArgumentException>(() => engine.GenerateAsync(bad));
        Assert.Contains("input values", e.Message);
    }
}
