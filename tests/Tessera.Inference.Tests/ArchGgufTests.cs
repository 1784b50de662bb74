using Tessera.Model;
using Tessera.Model.Architectures;
using Tessera.Model.Checkpoints;
using Tessera.Model.Tests;

namespace Tessera.Inference.Tests;

/// <summary>
/// Every architecture through GGUF: Tessera writes the family's GGUF (its keys, its tensor names,
/// llama's permuted q/k, Gemma's 1 + w norms, stacked experts) and reads it back, both as a
/// training model and as inference weights.
/// </summary>
public class ArchGgufTests
{
    static string Dir(string family) => Path.Combine(AppContext.BaseDirectory, "fixtures", "arch", family);

    /// <summary>Families whose GGUF form Tessera writes (llama3's rope scaling lives in a rope_freqs tensor that Tessera does not write).</summary>
    public static readonly TheoryData<string> Families = new() { "llama", "mistral", "mixtral", "qwen2", "qwen3", "qwen3_moe", "gemma", "gemma2", "gemma3" };

    [Theory]
    [MemberData(nameof(Families))]
    public void F32GgufRoundTripsTheConfigAndTheWeightsAndDecodesBitIdentically(string family)
    {
        using var model = HfFolder.Load(Dir(family));
        string path = Path.Combine(Path.GetTempPath(), $"tessera-arch-{family}-{Environment.ProcessId}.gguf");
        try
        {
            GgufModel.Save(model, path, new GgufExportOptions { Type = GgufWeightType.F32 });
            // GGUF carries the model, not the training-only coefficients (aux-loss weights, capacity, dropout).
            static ModelConfig Inference(ModelConfig c) => c with { LoadBalanceCoef = 0, RouterZLossCoef = 0, CapacityFactor = 0, Dropout = 0 };
            using (var r = GgufReader.Open(path)) Assert.Equal(Inference(model.Config), Inference(GgufModel.ReadConfig(r)));

            // Back as a training model: every tensor equal; a 1 + w norm stored in GGUF comes back as (1 + w) − 1.
            using var back = GgufModel.Load(path);
            var names = model.Recipe.Names;
            foreach (var (role, layer, expert) in TensorInstances.Of(model.Config, names))
            {
                string n = names.Hf(role, layer, expert);
                var want = model.Parameters[n].AsSpan().ToArray();
                var got = back.Parameters[n].AsSpan().ToArray();
                if (!names.Transform(role).HasFlag(GgufTransform.AddOne)) Assert.Equal(want, got);
                else for (int i = 0; i < want.Length; i++) Assert.Equal(want[i] + 1f, got[i] + 1f);
            }

            // As inference weights: the same logits, bit for bit, as the weights taken from the model.
            var fx = GoldenFixture.Load($"arch/{family}/golden");
            int t = fx.ConfigInt("seq");
            var prompt = fx.Ints("input_ids").AsSpan(0, t).ToArray();
            float[] Logits(InferenceWeights w)
            {
                using var d = new SequenceDecoder(w);
                d.Feed(prompt, allLogits: true);
                return Enumerable.Range(0, t).SelectMany(i => d.Logits(i).ToArray()).ToArray();
            }
            Assert.Equal(Logits(InferenceWeights.FromTransformer(model)), Logits(GgufWeights.Load(path)));
        }
        finally { File.Delete(path); }
    }

    [Fact]
    public void UnknownArchitecturesAndContradictoryKeysFailNamingTheFileAndKey()
    {
        string path = Path.Combine(Path.GetTempPath(), $"tessera-arch-bad-{Environment.ProcessId}.gguf");
        try
        {
            new GgufWriter().Set("general.architecture", "falcon")
                .Add(new GgufTensor("token_embd.weight", GgmlType.F32, [4, 8], new byte[4 * 8 * 4])).Write(path);
            var e = Assert.Throws<InvalidDataException>(() => GgufWeights.Load(path));
            Assert.Contains(path, e.Message);
            Assert.Contains("'falcon'", e.Message);
            Assert.Contains("gemma3", e.Message);   // the list of what Tessera reads
        }
        finally { File.Delete(path); }

        string cfg = Path.Combine(Path.GetTempPath(), $"tessera-arch-cfg-{Environment.ProcessId}");
        Directory.CreateDirectory(cfg);
        try
        {
            File.WriteAllText(Path.Combine(cfg, "config.json"), """{"model_type":"falcon","hidden_size":8}""");
            var e = Assert.Throws<InvalidDataException>(() => HfFolder.ReadConfig(cfg));
            Assert.Contains("model_type 'falcon'", e.Message);
            Assert.Contains("config.json", e.Message);
            File.WriteAllText(Path.Combine(cfg, "config.json"), File.ReadAllText(Path.Combine(Dir("qwen3"), "config.json")).Replace("\"head_dim\": 8", "\"head_dim\": 7"));
            Assert.Contains("head dim 7", Assert.Throws<InvalidDataException>(() => HfFolder.ReadConfig(cfg)).Message);
            // Weights whose shape disagrees with the config: the error names the tensor and the expected shape.
            File.WriteAllText(Path.Combine(cfg, "config.json"), File.ReadAllText(Path.Combine(Dir("llama"), "config.json")).Replace("\"intermediate_size\": 24", "\"intermediate_size\": 28"));
            File.Copy(Path.Combine(Dir("llama"), "model.safetensors"), Path.Combine(cfg, "model.safetensors"));
            var shape = Assert.Throws<InvalidDataException>(() => HfFolder.Load(cfg)).Message;
            Assert.Contains("mlp.gate_proj.weight", shape);
            Assert.Contains("(28, 32)", shape);
        }
        finally { Directory.Delete(cfg, recursive: true); }
    }
}
