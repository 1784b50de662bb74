using System.Text;

namespace Tessera.Text.Tests;

/// <summary>Tokenizers shared by several test classes (built once per test run).</summary>
public static class TestTokenizers
{
    /// <summary>A small varied corpus: English prose, code, numbers, whitespace runs and non-Latin text.</summary>
    public static string Corpus { get; } = BuildCorpus();

    private static string BuildCorpus()
    {
        var sb = new StringBuilder();
        string[] lines =
        [
            "Call me Ishmael. Some years ago, never mind how long precisely, having little or no money in my purse,",
            "and nothing particular to interest me on shore, I thought I would sail about a little and see the watery part of the world.",
            "It's a way I have of driving off the spleen, and regulating the circulation. They're here; we'll see. I've DONE it!",
            "    for (int i = 0; i < n; i++) { total += values[i] * 2; }  // 1234567 89.5%",
            "Über naïve café — déjà vu. Привет, мир! 你好，世界。こんにちは 🌍🚀 العربية",
            "\t\tindented\r\nwindows line\n\n\nthree blank lines   trailing spaces   ",
        ];
        for (int r = 0; r < 40; r++)
            foreach (var l in lines) sb.Append(l).Append(r % 3 == 0 ? " " : "\n").Append(r).Append('\n');
        return sb.ToString();
    }

    private static readonly Lazy<BpeTokenizer> TrainedLazy = new(() =>
        BpeTrainer.Train([Corpus], new BpeTrainerOptions(VocabSize: 600), out _));

    /// <summary>A byte-level BPE trained on <see cref="Corpus"/> with 600 tokens (default specials).</summary>
    public static BpeTokenizer Trained => TrainedLazy.Value;

    private static readonly Lazy<BpeTokenizer?> Cl100kLazy = new(() =>
        SharedData.Root is null ? null : TiktokenEncodings.Load("cl100k_base", SharedData.PathOf("tokenizer/tiktoken/cl100k_base.tiktoken")));

    private static readonly Lazy<string> EnglishLazy = new(() =>
    {
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var path = Path.Combine(dir.FullName, "data", "corpus", "moby-dick.txt.gz");
            if (!File.Exists(path)) continue;
            using var gz = new System.IO.Compression.GZipStream(File.OpenRead(path), System.IO.Compression.CompressionMode.Decompress);
            return new StreamReader(gz, Encoding.UTF8).ReadToEnd();
        }
        throw new FileNotFoundException("data/corpus/moby-dick.txt.gz not found above " + AppContext.BaseDirectory);
    });

    /// <summary>The repo's English corpus (data/corpus/moby-dick.txt.gz, about 1.2 MB), whole.</summary>
    public static string English => EnglishLazy.Value;

    /// <summary>cl100k_base from the shared data (null when absent).</summary>
    public static BpeTokenizer? Cl100k => Cl100kLazy.Value;
}
