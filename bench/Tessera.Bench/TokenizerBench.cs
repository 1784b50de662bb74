using System.Diagnostics;
using System.IO.Compression;
using System.Text;
using System.Text.Json;
using Tessera.Text;

namespace Tessera.Bench;

/// <summary>Settings for <see cref="TokenizerBench"/>.</summary>
/// <param name="Megabytes">How much of the default corpus to use (moby-dick, then SOTU speeches).</param>
/// <param name="VocabSize">Vocabulary size for the trained tokenizer and for spm_train.</param>
/// <param name="Cl100kPath">cl100k_base.tiktoken; null = look in the shared reference data.</param>
/// <param name="Repeats">Timed repetitions per measurement (the best is kept).</param>
/// <param name="PeersOnly">Only the peer comparisons (<see cref="TokenizerPeerBench"/>): no training, no JS peers.</param>
/// <param name="PeerMegabytes">Megabytes per text class for the peer comparisons.</param>
public sealed record TokenizerBenchOptions(double Megabytes = 4, int VocabSize = 8192, string? Cl100kPath = null, int Repeats = 3, bool PeersOnly = false, double PeerMegabytes = 1);

/// <summary>One encode-speed line.</summary>
/// <param name="Tokenizer">Vocabulary name.</param>
/// <param name="Engine">"tessera" or the npm peer's name.</param>
/// <param name="Threads">Threads used.</param>
/// <param name="Tokens">Number of ids produced.</param>
/// <param name="MegabytesPerSecond">Wall-clock throughput (best repeat).</param>
/// <param name="MegabytesPerCpuSecond">Bytes per second of process CPU time in that repeat: equal to the 1-thread figure when threads scale perfectly, whatever else the machine runs; null for external peers.</param>
public sealed record EncodeFigure(string Tokenizer, string Engine, int Threads, double MegabytesPerSecond, long Tokens, double? MegabytesPerCpuSecond = null);

/// <summary>Everything the tokenizer bench measured; peers absent or failing carry a note instead.</summary>
public sealed record TokenizerBenchResult(
    long CorpusBytes,
    List<EncodeFigure> Encode,
    double? RatioVsFasterJsPeer,
    string? FasterJsPeer,
    double TesseraTrainSeconds,
    double? SpmTrainSeconds,
    List<string> Notes,
    List<PeerRatio>? PeerRatios = null);

/// <summary>
/// <c>tessera bench tokenizer</c>: encode MB/s for cl100k_base and a freshly trained 8k
/// vocabulary (1 thread, and all cores through <see cref="BpeTokenizer.EncodeParallel"/>), BPE training time, and in the same run the npm peers
/// gpt-tokenizer and js-tiktoken (cl100k_base, single-threaded) and Debian's
/// <c>spm_train --model_type=bpe</c> on the same text and vocabulary size.
/// </summary>
public static class TokenizerBench
{
    /// <summary>Runs the bench; <paramref name="log"/> receives progress lines.</summary>
    public static TokenizerBenchResult Run(TokenizerBenchOptions o, Action<string> log)
    {
        var notes = new List<string>();
        log($"peer comparisons, single thread, {o.PeerMegabytes} MB per text class (ratio > 1: tessera faster):");
        var peerRatios = TokenizerPeerBench.Run(o.PeerMegabytes, o.Repeats, notes, log);
        if (o.PeersOnly)
        {
            foreach (var n in notes) log("note: " + n);
            return new TokenizerBenchResult(0, [], null, null, 0, null, notes, peerRatios);
        }
        string text = LoadCorpus(o.Megabytes);
        long bytes = Encoding.UTF8.GetByteCount(text);
        log($"corpus: {bytes / 1e6:F2} MB of English (data/corpus: moby-dick + sotu)");
        var figures = new List<EncodeFigure>();

        // Training (counts on all cores, merges single-threaded).
        var sw = Stopwatch.StartNew();
        var trained = BpeTrainer.Train(Chunks(text), new BpeTrainerOptions(o.VocabSize), out var report);
        double trainSeconds = sw.Elapsed.TotalSeconds;
        log($"tessera BPE training, vocab {o.VocabSize}: {trainSeconds:F2} s (count {report.CountTime.TotalSeconds:F2} s, merge {report.MergeTime.TotalSeconds:F2} s)");

        string? cl100kPath = o.Cl100kPath ?? FindShared("tokenizer/tiktoken/cl100k_base.tiktoken");
        BpeTokenizer? cl100k = null;
        if (cl100kPath is not null && File.Exists(cl100kPath)) cl100k = TiktokenEncodings.Load("cl100k_base", cl100kPath);
        else notes.Add("cl100k_base.tiktoken not found: pass --cl100k PATH or set TESSERA_SHARED; cl100k figures skipped");

        foreach (var (name, tok) in new (string, BpeTokenizer?)[] { ("cl100k_base", cl100k), ($"trained-{o.VocabSize}", trained) })
        {
            if (tok is null) continue;
            WarmUp(tok, text);
            var serial = tok.Encode(text);
            figures.Add(MeasureEncode(name, tok, text, bytes, 1, o.Repeats));
            log(Line(figures[^1]));
            if (Environment.ProcessorCount > 1)
            {
                // Parallel encoding must give the single-threaded ids, not just as many of them.
                if (!tok.EncodeParallel(text, Environment.ProcessorCount).SequenceEqual(serial))
                    notes.Add($"{name}: EncodeParallel ids differ from Encode");
                figures.Add(MeasureEncode(name, tok, text, bytes, Environment.ProcessorCount, o.Repeats));
                log(Line(figures[^1]) + $", {figures[^1].MegabytesPerSecond / figures[^2].MegabytesPerSecond:F2}x the 1-thread wall speed");
            }
        }

        // JavaScript peers, same text, same process run.
        double? ratio = null;
        string? faster = null;
        var textFile = Path.Combine(Path.GetTempPath(), $"tessera-bench-{Environment.ProcessId}.txt");
        File.WriteAllText(textFile, text, new UTF8Encoding(false));
        try
        {
            var peers = RunNodePeers(textFile, o.Repeats, notes);
            foreach (var (peer, seconds, tokens) in peers)
            {
                figures.Add(new EncodeFigure("cl100k_base", peer, 1, bytes / 1e6 / seconds, tokens));
                log(Line(figures[^1]));
                var ours = figures.Find(f => f.Tokenizer == "cl100k_base" && f.Engine == "tessera" && f.Threads == 1);
                if (ours is not null && ours.Tokens != tokens) notes.Add($"{peer} produced {tokens} tokens, tessera {ours.Tokens}: outputs differ");
            }
            var ours1 = figures.Find(f => f.Tokenizer == "cl100k_base" && f.Engine == "tessera" && f.Threads == 1);
            if (ours1 is not null && peers.Count > 0)
            {
                var best = peers.MinBy(p => p.Seconds);
                faster = best.Peer;
                ratio = ours1.MegabytesPerSecond / (bytes / 1e6 / best.Seconds);
                log($"ratio vs faster JS peer ({faster}), single-threaded: {ratio:F2}x (target >= 2x)");
            }

            double? spm = RunSpmTrain(textFile, o.VocabSize, notes, log);
            if (spm is double s) log($"ratio spm_train / tessera training time: {s / trainSeconds:F2}x (> 1 means tessera is faster)");
            foreach (var n in notes) log("note: " + n);
            return new TokenizerBenchResult(bytes, figures, ratio, faster, trainSeconds, spm, notes, peerRatios);
        }
        finally { File.Delete(textFile); }
    }

    private static string Line(EncodeFigure f) =>
        $"encode {f.Tokenizer,-14} {f.Engine,-14} {f.Threads,2} thread(s): {f.MegabytesPerSecond,8:F2} MB/s ({f.Tokens:N0} tokens)" +
        (f.MegabytesPerCpuSecond is double c ? $", {c:F2} MB per CPU-second" : "");

    /// <summary>
    /// Calls the encode paths often enough for tiered compilation to promote them (30 calls
    /// each, then a background re-JIT), and waits for it: otherwise whichever figure is taken
    /// first runs partly on unoptimized code and looks slower than the ones after it.
    /// </summary>
    private static void WarmUp(BpeTokenizer tok, string text)
    {
        string slice = text[..Math.Min(text.Length, 128 * 1024)];
        for (int i = 0; i < 40; i++)
        {
            tok.Encode(slice[..(slice.Length / 8)]);
            tok.EncodeParallel(slice, 2);
        }
        Thread.Sleep(500);
    }

    /// <summary>
    /// Best of <paramref name="repeats"/> timed runs of <see cref="BpeTokenizer.Encode"/> (1 thread)
    /// or <see cref="BpeTokenizer.EncodeParallel"/>, whole text in and all ids out, with the
    /// process CPU time of the same run so contention shows even on a busy machine.
    /// </summary>
    private static EncodeFigure MeasureEncode(string name, BpeTokenizer tok, string text, long bytes, int threads, int repeats)
    {
        long tokens = 0;
        double best = double.MaxValue, bestCpu = double.MaxValue;
        using var process = Process.GetCurrentProcess();
        for (int r = 0; r <= repeats; r++) // r = 0 warms up the JIT and the thread pool
        {
            process.Refresh();
            var cpu0 = process.TotalProcessorTime;
            var sw = Stopwatch.StartNew();
            tokens = threads == 1 ? tok.Encode(text).Count : tok.EncodeParallel(text, threads).Count;
            double wall = sw.Elapsed.TotalSeconds;
            process.Refresh();
            double cpu = (process.TotalProcessorTime - cpu0).TotalSeconds;
            if (r > 0) { best = Math.Min(best, wall); bestCpu = Math.Min(bestCpu, cpu); }
        }
        return new EncodeFigure(name, "tessera", threads, bytes / 1e6 / best, tokens, bytes / 1e6 / bestCpu);
    }

    private static string[] SplitAtLines(string text, int parts)
    {
        var result = new List<string>();
        int start = 0;
        for (int p = 1; p <= parts && start < text.Length; p++)
        {
            int target = (int)((long)text.Length * p / parts);
            int cut = p == parts ? text.Length : text.IndexOf('\n', Math.Max(target, start));
            cut = cut < 0 ? text.Length : Math.Min(cut + 1, text.Length);
            result.Add(text[start..cut]);
            start = cut;
        }
        return result.ToArray();
    }

    private static IEnumerable<string> Chunks(string text) => SplitAtLines(text, Math.Max(1, text.Length / TrainingCorpus.ChunkChars));

    private static List<(string Peer, double Seconds, long Tokens)> RunNodePeers(string textFile, int repeats, List<string> notes)
    {
        var peers = new List<(string, double, long)>();
        string? nodeDir = FindRepoPath("bench/node");
        if (nodeDir is null) { notes.Add("bench/node not found (run from the repo); JS peers skipped"); return peers; }
        if (!Directory.Exists(Path.Combine(nodeDir, "node_modules", "gpt-tokenizer")) || !Directory.Exists(Path.Combine(nodeDir, "node_modules", "js-tiktoken")))
        {
            notes.Add($"npm peers not installed: run `npm install --prefix {nodeDir}`; JS peers skipped");
            return peers;
        }
        var (code, stdout, stderr) = Run("node", [Path.Combine(nodeDir, "bench.mjs"), textFile, repeats.ToString()], 600);
        if (code is null) { notes.Add("node not found on PATH; JS peers skipped"); return peers; }
        if (code != 0) { notes.Add($"node bench failed: {stderr.Trim()}"); return peers; }
        using var doc = JsonDocument.Parse(stdout);
        foreach (var p in doc.RootElement.EnumerateObject())
        {
            if (p.Value.TryGetProperty("error", out var err)) { notes.Add($"{p.Name}: {err.GetString()}"); continue; }
            peers.Add((p.Name, p.Value.GetProperty("seconds").GetDouble(), p.Value.GetProperty("tokens").GetInt64()));
        }
        return peers;
    }

    private static double? RunSpmTrain(string textFile, int vocab, List<string> notes, Action<string> log)
    {
        var prefix = Path.Combine(Path.GetTempPath(), $"tessera-spm-{Environment.ProcessId}");
        var args = new[]
        {
            $"--input={textFile}", $"--model_prefix={prefix}", $"--vocab_size={vocab}", "--model_type=bpe",
            "--character_coverage=1.0", "--byte_fallback=true", $"--num_threads={Environment.ProcessorCount}",
            "--max_sentence_length=1000000", "--minloglevel=2",
        };
        var sw = Stopwatch.StartNew();
        var (code, _, stderr) = Run("spm_train", args, 600);
        double seconds = sw.Elapsed.TotalSeconds;
        foreach (var ext in new[] { ".model", ".vocab" }) File.Delete(prefix + ext);
        if (code is null) { notes.Add("spm_train not found: install Debian's `sentencepiece` package (apt-get install sentencepiece) for the training comparison"); return null; }
        if (code != 0) { notes.Add($"spm_train failed ({code}): {LastLine(stderr)}"); return null; }
        log($"spm_train --model_type=bpe, vocab {vocab}, {Environment.ProcessorCount} threads: {seconds:F2} s");
        return seconds;
    }

    private static string LastLine(string s) => s.Trim().Split('\n')[^1];

    private static (int? Code, string Stdout, string Stderr) Run(string exe, string[] args, int timeoutSeconds)
    {
        var psi = new ProcessStartInfo(exe) { RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in args) psi.ArgumentList.Add(a);
        Process? p;
        try { p = Process.Start(psi); }
        catch (System.ComponentModel.Win32Exception) { return (null, "", ""); }
        if (p is null) return (null, "", "");
        using (p)
        {
            var stdout = p.StandardOutput.ReadToEndAsync();
            var stderr = p.StandardError.ReadToEndAsync();
            if (!p.WaitForExit(timeoutSeconds * 1000)) { p.Kill(entireProcessTree: true); return (-1, "", "timed out"); }
            return (p.ExitCode, stdout.Result, stderr.Result);
        }
    }

    /// <summary>The default English corpus (data/corpus), cut to about <paramref name="megabytes"/> MB at a line end.</summary>
    public static string LoadCorpus(double megabytes)
    {
        string? dir = FindRepoPath("data/corpus") ?? throw new FileNotFoundException("data/corpus not found: run from the repo (data/fetch_corpus.sh writes it)");
        var sb = new StringBuilder();
        long want = (long)(megabytes * 1e6);
        foreach (var name in new[] { "moby-dick.txt.gz", "sotu.txt.gz" })
        {
            var path = Path.Combine(dir, name);
            if (!File.Exists(path)) throw new FileNotFoundException($"{path} missing: run data/fetch_corpus.sh");
            using var gz = new GZipStream(File.OpenRead(path), CompressionMode.Decompress);
            using var reader = new StreamReader(gz, Encoding.UTF8);
            string? line;
            while (sb.Length < want && (line = reader.ReadLine()) is not null) sb.Append(line).Append('\n');
            if (sb.Length >= want) break;
        }
        return sb.ToString();
    }

    private static string? FindRepoPath(string relative)
    {
        foreach (var start in new[] { Environment.CurrentDirectory, AppContext.BaseDirectory })
            for (var d = new DirectoryInfo(start); d is not null; d = d.Parent)
            {
                var candidate = Path.Combine(d.FullName, relative);
                if (Directory.Exists(candidate)) return candidate;
            }
        return null;
    }

    internal static string? FindShared(string relative)
    {
        var env = Environment.GetEnvironmentVariable("TESSERA_SHARED");
        if (!string.IsNullOrEmpty(env))
            foreach (var c in new[] { Path.Combine(env, "data", relative), Path.Combine(env, relative) })
                if (File.Exists(c)) return c;
        string? shared = FindRepoPath("shared/data");
        return shared is null ? null : File.Exists(Path.Combine(shared, relative)) ? Path.Combine(shared, relative) : null;
    }
}
