using System.IO.Compression;
using System.Text;
using Tessera.Model.Checkpoints;
using Tessera.Text;

namespace Tessera.Model.Tests;

/// <summary>
/// Tokenizers embedded in GGUF files (tokenizer.ggml.*, llama.cpp's gpt2 model) come back through
/// <see cref="GgufVocabulary"/> encoding exactly as the original.
/// </summary>
public class GgufTokenizerTests : IDisposable
{
    readonly string dir = Path.Combine(Path.GetTempPath(), "tessera-gguf-tok-" + Guid.NewGuid().ToString("N"));

    public GgufTokenizerTests() => Directory.CreateDirectory(dir);

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static readonly Lazy<string> EnglishLazy = new(() =>
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var path = Path.Combine(d.FullName, "data", "corpus", "moby-dick.txt.gz");
            if (!System.IO.File.Exists(path)) continue;
            using var gz = new GZipStream(System.IO.File.OpenRead(path), CompressionMode.Decompress);
            return new StreamReader(gz, Encoding.UTF8).ReadToEnd();
        }
        throw new FileNotFoundException("data/corpus/moby-dick.txt.gz not found above " + AppContext.BaseDirectory);
    });

    /// <summary>Training text and the sample checked after the round trip (a different part of the book, plus edge cases).</summary>
    static string TrainText => EnglishLazy.Value[..300_000];

    static string Sample => EnglishLazy.Value.Substring(600_000, 200_000) +
        " Über naïve café — 你好，世界 🌍 𝐀𝐁c it's THEY'RE\r\n\t  1234567 <|end|> <|user|>\n\n  ";

    static readonly Lazy<BpeTokenizer> TrainedLazy = new(() => BpeTrainer.Train([TrainText], new BpeTrainerOptions(VocabSize: 1200), out _));

    static ModelConfig Config(int vocab) => new()
    {
        VocabSize = vocab, Dim = 32, Layers = 1, Heads = 2, KvHeads = 2, HiddenDim = 64, ContextLength = 16,
    };

    string SaveWith(ITokenizer tok, int modelVocab, GgufWeightType type = GgufWeightType.Q8_0)
    {
        using var model = new Transformer(Config(modelVocab), seed: 3);
        string path = Path.Combine(dir, $"m-{Guid.NewGuid():N}.gguf");
        GgufModel.Save(model, path, new GgufExportOptions { Type = type, Tokenizer = tok });
        return path;
    }

    [Fact]
    public void TrainedTokenizer_RoundTripsThroughGguf_WithIdenticalIds()
    {
        var tok = TrainedLazy.Value;
        string path = SaveWith(tok, tok.VocabSize);
        var vocab = GgufVocabulary.Load(path);
        var loaded = Assert.IsType<BpeTokenizer>(vocab.Tokenizer);

        Assert.Equal(tok.VocabSize, loaded.VocabSize);
        Assert.Equal(tok.Pattern, loaded.Pattern);
        Assert.Equal(tok.SpecialTokens.ById, loaded.SpecialTokens.ById);
        var expected = tok.Encode(Sample);
        Assert.True(expected.Count > 40_000);
        Assert.Equal(expected, loaded.Encode(Sample));
        Assert.Equal(tok.Encode(Sample, allowSpecial: true), loaded.Encode(Sample, allowSpecial: true));
        Assert.Equal(Sample, loaded.Decode(loaded.Encode(Sample).ToArray()));
        for (int id = 0; id < tok.VocabSize; id++) Assert.Equal(tok.TokenBytes(id).ToArray(), loaded.TokenBytes(id).ToArray());

        Assert.Equal(tok.SpecialTokens.Id(ChatTemplate.Bos), vocab.BosId);
        Assert.Equal(tok.SpecialTokens.Id(ChatTemplate.Eos), vocab.EosId);
        Assert.Equal(tok.SpecialTokens.Id(ChatTemplate.End), vocab.EotId);
        Assert.True(vocab.AddBos);
        Assert.False(vocab.AddEos);
        Assert.Equal([tok.SpecialTokens.Id(ChatTemplate.Bos), .. tok.Encode("Hello")], vocab.EncodePrompt("Hello"));
    }

    [Fact]
    public void Metadata_IsWhatLlamaCppReads()
    {
        var tok = TrainedLazy.Value;
        string path = SaveWith(tok, tok.VocabSize + 5);
        var m = GgufVocabReader.Read(path);
        Assert.Equal("gpt2", m.Get<string>("tokenizer.ggml.model"));
        Assert.Equal("llama-bpe", m.Get<string>("tokenizer.ggml.pre"));
        var tokens = m.Get<string[]>("tokenizer.ggml.tokens");
        var types = m.Get<int[]>("tokenizer.ggml.token_type");
        var merges = m.Get<string[]>("tokenizer.ggml.merges");
        // One token string per embedding row (llama.cpp sizes the model by it), all distinct.
        Assert.Equal(tok.VocabSize + 5, tokens.Length);
        Assert.Equal(tokens.Length, tokens.Distinct().Count());
        Assert.Equal(tokens.Length, types.Length);
        for (int id = 0; id < tokens.Length; id++)
        {
            if (id >= tok.VocabSize) { Assert.Equal(GgufTokenizerMetadata.TypeUnused, types[id]); continue; }
            bool special = tok.SpecialTokens.IsSpecial(id);
            Assert.Equal(special ? GgufTokenizerMetadata.TypeControl : GgufTokenizerMetadata.TypeNormal, types[id]);
            Assert.Equal(special ? tok.SpecialTokens.TextOf(id) : Gpt2ByteMap.ToText(tok.TokenBytes(id)), tokens[id]);
        }
        // Every trained merge is listed once, in training (= id) order, joining two earlier tokens.
        int multiByte = Enumerable.Range(0, tok.VocabSize).Count(id => !tok.SpecialTokens.IsSpecial(id) && tok.TokenBytes(id).Length > 1);
        Assert.Equal(multiByte, merges.Length);
        var idOf = tokens.Select((t, i) => (t, i)).ToDictionary(x => x.t, x => x.i);
        int previous = -1;
        foreach (var merge in merges)
        {
            var parts = merge.Split(' ');
            Assert.Equal(2, parts.Length);
            int merged = idOf[parts[0] + parts[1]];
            Assert.True(merged > previous, $"merge '{merge}' is out of order");
            Assert.True(idOf[parts[0]] < merged && idOf[parts[1]] < merged, $"merge '{merge}' uses a later token");
            previous = merged;
        }
        Assert.Equal((uint)tok.SpecialTokens.Id(ChatTemplate.End), m.Get<uint>("tokenizer.ggml.eot_token_id"));
        Assert.Equal((uint)tok.SpecialTokens.Id(ChatTemplate.Pad), m.Get<uint>("tokenizer.ggml.padding_token_id"));
        Assert.True(m.Get<bool>("tokenizer.ggml.add_bos_token"));
        Assert.Contains("<|assistant|>", m.Get<string>("tokenizer.chat_template"));

        // Padding rows are not tokens once read back.
        var loaded = (BpeTokenizer)GgufVocabulary.Load(path).Tokenizer;
        Assert.Equal(tok.VocabSize + 5, loaded.VocabSize);
        Assert.False(loaded.IsAssigned(tok.VocabSize + 2));
        Assert.Equal(tok.Encode(Sample), loaded.Encode(Sample));
    }

    [Fact]
    public void ByteTokenizer_RoundTripsThroughGguf()
    {
        var tok = new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        string path = SaveWith(tok, tok.VocabSize);
        var loaded = GgufVocabulary.Load(path).Tokenizer;
        Assert.Equal(tok.VocabSize, loaded.VocabSize);
        string text = Sample[..5000] + "<|end|>";
        Assert.Equal(tok.Encode(text), loaded.Encode(text));
        Assert.Equal(tok.Encode(text, allowSpecial: true), loaded.Encode(text, allowSpecial: true));
        Assert.Empty(GgufVocabReader.Read(path).Get<string[]>("tokenizer.ggml.merges"));
    }

    [Fact]
    public void ModelSmallerThanTokenizer_IsRejected()
    {
        var tok = new ByteTokenizer(ChatTemplate.DefaultSpecialTokens);
        var e = Assert.Throws<ArgumentException>(() => SaveWith(tok, 100));
        Assert.Contains("100 token rows", e.Message);
    }

    [Fact]
    public void ModelWeights_StillRoundTrip_WithATokenizerEmbedded()
    {
        var tok = TrainedLazy.Value;
        using var model = new Transformer(Config(tok.VocabSize), seed: 5);
        string path = Path.Combine(dir, "f32.gguf");
        GgufModel.Save(model, path, new GgufExportOptions { Type = GgufWeightType.F32, Tokenizer = tok });
        using var loaded = GgufModel.Load(path);
        foreach (var p in model.Parameters.All)
            Assert.True(p.AsSpan().SequenceEqual(loaded.Parameters[p.Name].AsSpan()), p.Name);
    }

    [SharedFact]
    public void Cl100k_RoundTripsThroughGgufMetadata()
    {
        // No model: the tokenizer metadata alone, so the 100k-token merge derivation is checked on a real vocabulary.
        var tok = TiktokenEncodings.Load("cl100k_base", SharedData.File("tokenizer/tiktoken/cl100k_base.tiktoken"));
        var w = new GgufWriter();
        w.Set("general.architecture", "llama");
        foreach (var (k, v) in GgufTokenizerMetadata.Build(tok, tok.VocabSize)) w.Set(k, v);
        string path = Path.Combine(dir, "cl100k.gguf");
        w.Write(path);
        var loaded = GgufVocabulary.Load(path).Tokenizer;
        string text = Sample[..100_000];
        Assert.Equal(tok.Encode(text), loaded.Encode(text));
        Assert.Equal(tok.Encode("<|endoftext|> x", allowSpecial: true), loaded.Encode("<|endoftext|> x", allowSpecial: true));
    }
}
