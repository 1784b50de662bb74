namespace Tessera.Text.Tests;

/// <summary>
/// llama.cpp's vocabulary test files (models/ggml-vocab-*.gguf with .inp/.out, the expected ids
/// written by HF tokenizers): looked for in ../shared/data/tokenizer/gguf-vocab, then in
/// $TESSERA_LLAMA_VOCAB or ~/.cache/tessera/llama-vocab (copy them there from a llama.cpp checkout).
/// </summary>
public class LlamaVocabConformanceTests
{
    internal static string? Find(string file)
    {
        var candidates = new List<string>();
        if (SharedData.Root is { } shared) candidates.Add(Path.Combine(shared, "tokenizer", "gguf-vocab", file));
        if (Environment.GetEnvironmentVariable("TESSERA_LLAMA_VOCAB") is { Length: > 0 } env) candidates.Add(Path.Combine(env, file));
        candidates.Add(Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "tessera", "llama-vocab", file));
        return candidates.FirstOrDefault(File.Exists);
    }

    private static void CheckAll(string name)
    {
        string gguf = Find($"ggml-vocab-{name}.gguf")!;
        string inp = Find($"ggml-vocab-{name}.gguf.inp")!, outp = Find($"ggml-vocab-{name}.gguf.out")!;
        var vocab = GgufVocabulary.Load(gguf);
        var inputs = File.ReadAllText(inp).Split("\n__ggml_vocab_test__\n");
        Assert.Equal("", inputs[^1]);
        inputs = inputs[..^1];
        var expected = File.ReadAllText(outp).Split('\n').Take(inputs.Length)
            .Select(l => l.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(int.Parse).ToArray()).ToArray();
        Assert.True(inputs.Length >= 40, $"{name}: only {inputs.Length} cases");
        var failures = new List<string>();
        for (int i = 0; i < inputs.Length; i++)
        {
            // test-tokenizer-0: add_special = false, parse_special = false.
            var got = vocab.Tokenizer.Encode(inputs[i]).ToArray();
            if (!got.SequenceEqual(expected[i]))
                failures.Add($"case {i} '{inputs[i].Replace("\n", "\\n")}': expected [{string.Join(" ", expected[i])}] got [{string.Join(" ", got)}]");
        }
        Assert.True(failures.Count == 0, $"{name}: {failures.Count} of {inputs.Length} cases differ:\n" + string.Join("\n", failures.Take(10)));
    }

    [LlamaVocabFact("bert-bge")] public void BertBge() => CheckAll("bert-bge");
    [LlamaVocabFact("deepseek-coder")] public void DeepseekCoder() => CheckAll("deepseek-coder");
    [LlamaVocabFact("deepseek-llm")] public void DeepseekLlm() => CheckAll("deepseek-llm");
    [LlamaVocabFact("falcon")] public void Falcon() => CheckAll("falcon");
    [LlamaVocabFact("gpt-2")] public void Gpt2() => CheckAll("gpt-2");
    [LlamaVocabFact("llama-spm")] public void LlamaSpm() => CheckAll("llama-spm");
    [LlamaVocabFact("mpt")] public void Mpt() => CheckAll("mpt");
    [LlamaVocabFact("phi-3")] public void Phi3() => CheckAll("phi-3");
    [LlamaVocabFact("refact")] public void Refact() => CheckAll("refact");
    [LlamaVocabFact("starcoder")] public void Starcoder() => CheckAll("starcoder");
    [LlamaVocabFact("llama-bpe")] public void LlamaBpe() => CheckAll("llama-bpe");
    [LlamaVocabFact("qwen2")] public void Qwen2() => CheckAll("qwen2");
    [LlamaVocabFact("command-r")] public void CommandR() => CheckAll("command-r");
}

/// <summary>A fact skipped, with the reason, when a llama.cpp vocab file set is not on this machine.</summary>
public sealed class LlamaVocabFactAttribute : FactAttribute
{
    public LlamaVocabFactAttribute(string name)
    {
        foreach (var ext in new[] { ".gguf", ".gguf.inp", ".gguf.out" })
            if (LlamaVocabConformanceTests.Find($"ggml-vocab-{name}{ext}") is null)
            {
                Skip = $"llama.cpp vocab file ggml-vocab-{name}{ext} not found (../shared/data/tokenizer/gguf-vocab, $TESSERA_LLAMA_VOCAB or ~/.cache/tessera/llama-vocab)";
                return;
            }
    }
}
