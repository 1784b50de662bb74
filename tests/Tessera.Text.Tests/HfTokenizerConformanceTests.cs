using System.Text.Json;

namespace Tessera.Text.Tests;

/// <summary>
/// Exactness against HF tokenizers (the Rust library, npm tokenizers 0.23.2) on the real
/// tokenizer.json files of eight models and the generated stress corpus: ids with and without
/// special tokens and decoded text, from fixtures that bench/peers/hf-tokenizer-oracle.mjs writes.
/// </summary>
public class HfTokenizerConformanceTests
{
    internal static string FixturePath(string name) => Path.Combine(AppContext.BaseDirectory, "Fixtures", "hf", name);

    /// <summary>The stress corpus cases (name, text), lone surrogates included.</summary>
    internal static List<(string Name, string Text)> Corpus()
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(FixturePath("stress-corpus.json")));
        var list = new List<(string, string)>();
        foreach (var c in doc.RootElement.EnumerateArray())
        {
            string name = c.GetProperty("name").GetString()!;
            string text = c.TryGetProperty("text", out var t) ? t.GetString()! : new string(c.GetProperty("utf16").EnumerateArray().Select(u => (char)u.GetInt32()).ToArray());
            list.Add((name, text));
        }
        return list;
    }

    private static void Check(string model)
    {
        var tok = HfPeers.Tokenizer(model);
        var corpus = Corpus().ToDictionary(c => c.Name, c => c.Text);
        using var doc = JsonDocument.Parse(File.ReadAllBytes(FixturePath(model + ".json")));
        var failures = new List<string>();
        int n = 0;
        foreach (var c in doc.RootElement.GetProperty("cases").EnumerateArray())
        {
            n++;
            string name = c.GetProperty("name").GetString()!;
            string text = corpus[name];
            var ids = c.GetProperty("ids").EnumerateArray().Select(x => x.GetInt32()).ToList();
            var idsSpecial = c.TryGetProperty("ids_special", out var full) ? full.EnumerateArray().Select(x => x.GetInt32()).ToList()
                : [.. c.GetProperty("special_prefix").EnumerateArray().Select(x => x.GetInt32()), .. ids, .. c.GetProperty("special_suffix").EnumerateArray().Select(x => x.GetInt32())];
            var got = tok.Encode(text, allowSpecial: true, addSpecialTokens: false);
            if (!got.SequenceEqual(ids)) failures.Add($"{name}: encode\n  expected [{string.Join(",", ids)}]\n  got      [{string.Join(",", got)}]");
            var gotSpecial = tok.Encode(text, allowSpecial: true, addSpecialTokens: true);
            if (!gotSpecial.SequenceEqual(idsSpecial)) failures.Add($"{name}: encode with special tokens\n  expected [{string.Join(",", idsSpecial)}]\n  got      [{string.Join(",", gotSpecial)}]");
            string decoded = c.GetProperty("decoded").GetString()!;
            string gotDecoded = tok.Decode(ids.ToArray());
            if (gotDecoded != decoded) failures.Add($"{name}: decode\n  expected {JsonSerializer.Serialize(decoded)}\n  got      {JsonSerializer.Serialize(gotDecoded)}");
            string decodedSpecial = c.GetProperty("decoded_special").GetString()!;
            string gotDecodedSpecial = tok.Decode(idsSpecial.ToArray());
            if (gotDecodedSpecial != decodedSpecial) failures.Add($"{name}: decode with special tokens\n  expected {JsonSerializer.Serialize(decodedSpecial)}\n  got      {JsonSerializer.Serialize(gotDecodedSpecial)}");
        }
        Assert.True(n >= 80, $"{model}: only {n} cases in the fixture");
        Assert.True(failures.Count == 0, $"{model}: {failures.Count} mismatches against HF tokenizers over {n} cases:\n" + string.Join("\n", failures.Take(8)));
    }

    [HfPeerFact("gemma3")] public void Gemma3() => Check("gemma3");
    [HfPeerFact("llama3")] public void Llama3() => Check("llama3");
    [HfPeerFact("llama3_1")] public void Llama3_1() => Check("llama3_1");
    [HfPeerFact("qwen3")] public void Qwen3() => Check("qwen3");
    [HfPeerFact("deepseek_v3")] public void DeepseekV3() => Check("deepseek_v3");
    [HfPeerFact("gptoss")] public void GptOss() => Check("gptoss");
    [HfPeerFact("llama2")] public void Llama2() => Check("llama2");
    [HfPeerFact("gpt4o")] public void Gpt4o() => Check("gpt4o");
}
