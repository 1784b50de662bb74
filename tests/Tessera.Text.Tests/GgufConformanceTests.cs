namespace Tessera.Text.Tests;

/// <summary>Exact match on llama.cpp's tokenizer test cases for the vocab-only GGUF files.</summary>
public class GgufConformanceTests
{
    private const string Gpt2 = "tokenizer/gguf-vocab/ggml-vocab-gpt-2.gguf";
    private const string Spm = "tokenizer/gguf-vocab/ggml-vocab-llama-spm.gguf";

    private static (string[] Inputs, int[][] Expected) ReadCases(string gguf)
    {
        var inputs = File.ReadAllText(SharedData.PathOf(gguf + ".inp")).Split("\n__ggml_vocab_test__\n");
        var lines = File.ReadAllText(SharedData.PathOf(gguf + ".out")).Split('\n');
        // The .inp ends with a separator, leaving one empty trailing element (47 pieces, 46 cases);
        // the .out has one line per case.
        Assert.Equal("", inputs[^1]);
        inputs = inputs[..^1];
        var expected = lines.Take(inputs.Length)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray()).ToArray();
        return (inputs, expected);
    }

    private static void CheckAll(string gguf, int expectedCases)
    {
        var vocab = GgufVocabulary.Load(SharedData.PathOf(gguf));
        var (inputs, expected) = ReadCases(gguf);
        Assert.Equal(expectedCases, inputs.Length);
        var failures = new List<string>();
        for (int i = 0; i < inputs.Length; i++)
        {
            // llama.cpp's test-tokenizer-0 tokenizes with add_special = false and parse_special = false.
            var got = vocab.Tokenizer.Encode(inputs[i]).ToArray();
            if (!got.SequenceEqual(expected[i]))
                failures.Add($"case {i} '{inputs[i].Replace("\n", "\\n")}': expected [{string.Join(" ", expected[i])}] got [{string.Join(" ", got)}]");
        }
        Assert.True(failures.Count == 0, $"{failures.Count} of {inputs.Length} cases differ:\n" + string.Join("\n", failures));
    }

    [SharedDataFact(Gpt2)]
    public void Gpt2Vocabulary_MatchesAll46Cases() => CheckAll(Gpt2, 46);

    [SharedDataFact(Spm)]
    public void LlamaSpmVocabulary_MatchesAll46Cases() => CheckAll(Spm, 46);

    [SharedDataFact(Spm)]
    public void LlamaSpm_AddsBosPerMetadata_AndDecodesBack()
    {
        var vocab = GgufVocabulary.Load(SharedData.PathOf(Spm));
        Assert.True(vocab.AddBos);
        Assert.Equal(1, vocab.BosId);
        var ids = vocab.EncodePrompt("Hello world");
        Assert.Equal(1, ids[0]);
        Assert.Equal(vocab.Tokenizer.Encode("Hello world"), ids.Skip(1));
        Assert.Equal(" Hello  world\n", vocab.Tokenizer.Decode(vocab.Tokenizer.Encode(" Hello  world\n").ToArray()));
    }

    [SharedDataFact(Gpt2)]
    public void Gpt2_DoesNotAddBos_AndEndOfTextIsSpecial()
    {
        var vocab = GgufVocabulary.Load(SharedData.PathOf(Gpt2));
        Assert.False(vocab.AddBos);
        Assert.Equal(50256, vocab.Tokenizer.SpecialTokens.Id("<|endoftext|>"));
        Assert.Equal([50256], vocab.Tokenizer.Encode("<|endoftext|>", allowSpecial: true));
        Assert.NotEqual([50256], vocab.Tokenizer.Encode("<|endoftext|>"));
    }
}
