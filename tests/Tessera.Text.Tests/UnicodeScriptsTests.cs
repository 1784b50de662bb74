using System.Text.Json;
using System.Text.Json.Nodes;

namespace Tessera.Text.Tests;

/// <summary>
/// HF's UnicodeScripts pre-tokenizer against HF tokenizers itself: a WordPiece vocabulary of single
/// characters ("##"-continued) makes every pre-token boundary visible in the ids, so the committed
/// fixture (bench/peers/hf-unicode-scripts-oracle.mjs) checks each cut and each dropped space.
/// </summary>
public class UnicodeScriptsTests
{
    [Fact]
    public void Cuts_MatchHfTokenizers_OnTheStressCorpusAndScriptBoundaries()
    {
        var root = JsonNode.Parse(File.ReadAllText(HfTokenizerConformanceTests.FixturePath("unicode-scripts.json")))!;
        string file = Path.Combine(Path.GetTempPath(), $"tessera-unicode-scripts-{Environment.ProcessId}.json");
        File.WriteAllText(file, root["tokenizer"]!.ToJsonString());
        try
        {
            var tok = HfTokenizer.Load(file);
            OracleCases.AssertIds(root["cases"]!.AsArray(), t => tok.Encode(t, allowSpecial: false), "HF tokenizers", 100);
        }
        finally { File.Delete(file); }
    }

    [Fact]
    public void ScriptTable_IsUnicode9_WithHfsFixes()
    {
        int Script(int cp) => HfPreTokenizer.UnicodeScripts.ScriptOf(cp);
        int Named(string name) => UnicodeScripts9.Index(name);
        Assert.Equal(Named("Latin"), Script('a'));
        Assert.Equal(Named("Common"), Script('0'));
        Assert.Equal(Named("Han"), Script('京'));
        Assert.Equal(Named("Han"), Script('い'));      // Hiragana counts as Han
        Assert.Equal(Named("Han"), Script('グ'));      // Katakana too
        Assert.Equal(Named("Han"), Script(0x30FC));   // ー, Common in Unicode, Han here
        Assert.Equal(-1, Script(' '));                 // any
        Assert.Equal(Named("Common"), Script('\t'));
        Assert.Equal(Named("Inherited"), Script(0x0301));
        Assert.Equal(Named("Adlam"), Script(0x1E900)); // new in Unicode 9.0
        Assert.Equal(-1, Script(0x1F970));             // 🥰, Unicode 11: unassigned in 9.0, so any
        Assert.Equal(Named("Tangut"), Script(0x17000));
        Assert.Equal(-1, Script(0x10FFFF));
    }
}
