using System.Text.Json;
using Tessera.Model.Checkpoints;


namespace Tessera.Model.Tests;

/// <summary>
/// The per-architecture golden fixtures written by reference/arch_reference.py
/// (fixtures/arch/&lt;family&gt;/: config.json, model.safetensors, golden.json + golden.bin) are
/// complete and agree with themselves: the safetensors file parses, holds exactly the listed
/// parameters in float32 with the shapes the HF config implies, every gradient has its
/// parameter's shape, and the logits cover (B·T, vocab). Parity of the model code against these
/// fixtures is tested where the architectures are implemented.
/// </summary>
public class ArchFixtureTests
{
    /// <summary>Family folder → the model_type its config.json must carry.</summary>
    public static readonly TheoryData<string, string> Families = new()
    {
        { "llama", "llama" }, { "llama3", "llama" }, { "mistral", "mistral" }, { "mixtral", "mixtral" },
        { "qwen2", "qwen2" }, { "qwen3", "qwen3" }, { "qwen3_moe", "qwen3_moe" },
        { "gemma", "gemma" }, { "gemma2", "gemma2" }, { "gemma3", "gemma3_text" },
    };

    static string Dir(string family) => Path.Combine(AppContext.BaseDirectory, "fixtures", "arch", family);

    static int[] Shape(SafetensorsEntry e) => [.. e.Shape.Select(d => checked((int)d))];

    [Theory]
    [MemberData(nameof(Families))]
    public void FixtureIsCompleteAndSelfConsistent(string family, string modelType)
    {
        foreach (var file in new[] { "config.json", "model.safetensors", "golden.json", "golden.bin" })
            Assert.True(File.Exists(Path.Combine(Dir(family), file)), $"fixtures/arch/{family}/{file} is missing");

        using var configDoc = JsonDocument.Parse(File.ReadAllText(Path.Combine(Dir(family), "config.json")));
        var cfg = configDoc.RootElement;
        Assert.Equal(modelType, cfg.GetProperty("model_type").GetString());
        int vocab = cfg.GetProperty("vocab_size").GetInt32(), dim = cfg.GetProperty("hidden_size").GetInt32();
        int heads = cfg.GetProperty("num_attention_heads").GetInt32(), kvHeads = cfg.GetProperty("num_key_value_heads").GetInt32();
        int layers = cfg.GetProperty("num_hidden_layers").GetInt32();
        int headDim = cfg.TryGetProperty("head_dim", out var hd) && hd.ValueKind == JsonValueKind.Number ? hd.GetInt32() : dim / heads;
        bool tied = cfg.GetProperty("tie_word_embeddings").GetBoolean();

        var fx = GoldenFixture.Load($"arch/{family}/golden");
        Assert.Equal(family, fx.Root.GetProperty("family").GetString());
        Assert.Equal(modelType, fx.Root.GetProperty("model_type").GetString());
        var names = fx.ParameterNames;

        using var st = SafetensorsReader.Open(Path.Combine(Dir(family), "model.safetensors"));
        Assert.Equal(names, st.Entries.Select(e => e.Name));               // same tensors, in data order
        Assert.All(st.Entries, e => Assert.Equal(SafetensorsDType.F32, e.DType));
        foreach (var n in names)
        {
            Assert.Equal(Shape(st.Entry(n)), fx.Shape("grad/" + n));
            Assert.All(fx.Floats("grad/" + n), g => Assert.True(float.IsFinite(g), $"{family}: grad/{n} is not finite"));
        }

        // The shapes the HF config implies for the tensors every family has.
        Assert.Equal([vocab, dim], Shape(st.Entry("model.embed_tokens.weight")));
        Assert.Equal([heads * headDim, dim], Shape(st.Entry("model.layers.0.self_attn.q_proj.weight")));
        Assert.Equal([kvHeads * headDim, dim], Shape(st.Entry("model.layers.0.self_attn.k_proj.weight")));
        Assert.Equal([dim, heads * headDim], Shape(st.Entry("model.layers.0.self_attn.o_proj.weight")));
        Assert.Equal(!tied, st.Contains("lm_head.weight"));
        Assert.True(st.Contains($"model.layers.{layers - 1}.input_layernorm.weight"), $"{family}: no tensors for layer {layers - 1}");
        Assert.False(st.Contains($"model.layers.{layers}.input_layernorm.weight"), $"{family}: tensors beyond num_hidden_layers");

        // Inputs: (B, T) ids in range; targets are the next tokens, or -100 (ignored).
        var shape = fx.Shape("input_ids");
        Assert.Equal(2, shape.Length);
        int b = shape[0], t = shape[1];
        Assert.Equal(shape, fx.Shape("targets"));
        var ids = fx.Ints("input_ids");
        var targets = fx.Ints("targets");
        Assert.All(ids, id => Assert.InRange(id, 0, vocab - 1));
        Assert.Contains(-100, targets);
        for (int r = 0; r < b; r++)
            for (int i = 0; i < t; i++)
            {
                int y = targets[r * t + i];
                if (y == -100) continue;
                Assert.InRange(y, 0, vocab - 1);
                if (i + 1 < t) Assert.Equal(ids[r * t + i + 1], y);
            }

        Assert.Equal([b * t, vocab], fx.Shape("logits"));
        Assert.All(fx.Floats("logits"), v => Assert.True(float.IsFinite(v), $"{family}: logits not finite"));
        double loss = fx.Scalar("loss");
        Assert.True(double.IsFinite(loss) && loss > 0, $"{family}: loss {loss} is not a positive finite number");

        // The prefix pass: the first prefix_len ids of row 0, one logits row per position.
        int p = fx.ConfigInt("prefix_len");
        Assert.Equal([1, p], fx.Shape("prefix/input_ids"));
        Assert.Equal(ids[..p], fx.Ints("prefix/input_ids"));
        Assert.Equal([p, vocab], fx.Shape("prefix/logits"));
    }
}
