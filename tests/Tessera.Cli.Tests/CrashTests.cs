using System.Diagnostics;
using System.Security.Cryptography;
using Tessera.Training;

namespace Tessera.Cli.Tests;

/// <summary>
/// kill -9 at random moments of every writer, out of process: after each kill the previous good
/// output is intact (byte-identical or still verifiable), and a rerun (or <c>--resume</c>) finishes;
/// a killed and resumed training run ends bit-identical to the uninterrupted one. CI runs 3 kills
/// per writer; <c>TESSERA_CRASH_KILLS=20</c> runs the full table (docs/reliability.md), and
/// <c>TESSERA_CRASH_TABLE=FILE</c> appends each writer's row to FILE.
/// </summary>
public class CrashTests
{
    static readonly int Kills = int.TryParse(Environment.GetEnvironmentVariable("TESSERA_CRASH_KILLS"), out int k) && k > 0 ? k : 3;
    static readonly string Dll = Path.Combine(AppContext.BaseDirectory, "tessera.dll");

    static readonly string[] Model = ["--layers", "2", "--dim", "32", "--heads", "2", "--kv-heads", "1", "--hidden", "64", "--experts", "2", "--top-k", "1",
        "--context", "64", "--seq", "32", "--batch", "2", "--eval-every", "4", "--checkpoint-every", "2", "--eval-batches", "2"];

    /// <summary>Starts tessera, kills it (SIGKILL) after <paramref name="delay"/>; true when it was killed rather than already finished.</summary>
    static bool RunAndKill(string dir, string[] args, TimeSpan delay)
    {
        var psi = new ProcessStartInfo("dotnet") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        psi.ArgumentList.Add(Dll);
        foreach (var a in args) psi.ArgumentList.Add(a);
        using var p = Process.Start(psi)!;
        _ = p.StandardOutput.ReadToEndAsync();
        _ = p.StandardError.ReadToEndAsync();
        if (p.WaitForExit(delay)) return false;
        p.Kill();                 // SIGKILL on Linux: no finally blocks, no flushes
        p.WaitForExit();
        return true;
    }

    static TimeSpan Timed(Action a)
    {
        var clock = Stopwatch.StartNew();
        a();
        return clock.Elapsed;
    }

    static Dictionary<string, string> Hashes(string dir) => Directory.EnumerateFiles(dir, "*", SearchOption.AllDirectories)
        // Temp files of an interrupted atomic write (".name.tmp", "name.tmp-PID") may remain: the
        // published files are what must be intact.
        .Where(f => !Path.GetFileName(f).StartsWith('.') && !Path.GetFileName(f).Contains(".tmp", StringComparison.Ordinal))
        .ToDictionary(f => Path.GetRelativePath(dir, f), f => Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))));

    static void Row(string writer, int kills, int killed, int intact, int finished, string check)
    {
        string line = $"| {writer} | {kills} | {killed} | {intact}/{kills} | {finished}/1 | {check} |";
        if (Environment.GetEnvironmentVariable("TESSERA_CRASH_TABLE") is { Length: > 0 } table) File.AppendAllText(table, line + Environment.NewLine);
    }

    /// <summary>
    /// The shape shared by the file writers: one good run, then kills of identical reruns; after each,
    /// the output's files must equal the good run's (old or new, never torn) and load; then a rerun finishes.
    /// </summary>
    static void KillRerunsOf(string writer, string dir, string[] args, string output, Action<string> load)
        => KillRerunsAnswerTheSame(writer, dir, args, () =>
        {
            string path = Path.Combine(dir, output);
            load(path);
            return string.Join(Environment.NewLine, Hashes(path).OrderBy(kv => kv.Key, StringComparer.Ordinal).Select(kv => $"{kv.Key} {kv.Value}"));
        }, "output byte-identical to the good run after every kill");

    static string Prepared(out string dir)
    {
        dir = CliProcess.TempDir();
        CliProcess.WriteCorpus(dir);
        Assert.Equal(0, CliProcess.Run(dir, "tokenizer", "train", "--input", "corpus.txt", "--vocab-size", "512", "--out", "tok").ExitCode);
        return dir;
    }

    [Fact]
    public void TokenizerTrainSurvivesKills()
    {
        string dir = CliProcess.TempDir();
        CliProcess.WriteCorpus(dir);
        try { KillRerunsOf("tokenizer train", dir, ["tokenizer", "train", "--input", "corpus.txt", "--vocab-size", "512", "--out", "tok"], "tok", p => Text.TokenizerFiles.Load(p)); }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void DataPrepareSurvivesKills()
    {
        Prepared(out string dir);
        try { KillRerunsOf("data prepare", dir, ["data", "prepare", "--tokenizer", "tok", "--input", "corpus.txt", "--out", "data"], "data", p => Assert.True(File.Exists(Path.Combine(p, "meta.json")))); }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void QuantizeSurvivesKills()
    {
        Prepared(out string dir);
        try
        {
            Assert.Equal(0, CliProcess.Run(dir, "data", "prepare", "--tokenizer", "tok", "--input", "corpus.txt", "--out", "data").ExitCode);
            Assert.Equal(0, CliProcess.Run(dir, ["train", "--data", "data", "--out", "run", "--steps", "2", .. Model]).ExitCode);
            Directory.CreateDirectory(Path.Combine(dir, "q"));
            KillRerunsOf("quantize", dir, ["quantize", "--model", "run", "--type", "q8_0", "--out", "q/m.gguf"], "q",
                p => { using var r = Tessera.Model.Checkpoints.GgufReader.Open(Path.Combine(p, "m.gguf")); Assert.NotEmpty(r.Tensors); });
        }
        finally { Directory.Delete(dir, true); }
    }

    /// <summary>
    /// The shape for writers whose rerun writes new files with the same content (an index re-adding the
    /// same documents, a manifest that records its build time): after each kill, what the output answers
    /// (<paramref name="fingerprint"/>, which fails when the output cannot be opened) must equal the
    /// good run's; then a rerun finishes and answers the same.
    /// </summary>
    static void KillRerunsAnswerTheSame(string writer, string dir, string[] args, Func<string> fingerprint, string check)
    {
        var duration = Timed(() => Assert.Equal(0, CliProcess.Run(dir, args).ExitCode));
        string good = fingerprint();
        var rng = new Random(writer.Sum(c => c) * 31 + Kills);
        int killed = 0, intact = 0;
        for (int i = 0; i < Kills; i++)
        {
            if (RunAndKill(dir, args, duration * rng.NextDouble())) killed++;
            string now = fingerprint();
            Assert.True(now == good, $"{writer}: after kill {i + 1} the output answers differently:\n{now}\nthe good run's:\n{good}");
            intact++;
        }
        var rerun = CliProcess.Run(dir, args);
        Assert.True(rerun.ExitCode == 0, $"{writer}: the rerun after the kills failed: {rerun.Stderr}");
        Assert.Equal(good, fingerprint());
        Row(writer, Kills, killed, intact, 1, check);
    }

    /// <summary>Runs tessera to completion and returns its standard output; a failure fails the test with its message.</summary>
    static string Answer(string dir, params string[] args)
    {
        var r = CliProcess.Run(dir, args);
        Assert.True(r.ExitCode == 0, $"tessera {string.Join(' ', args)} failed after a kill: {r.Stderr}");
        return r.Stdout;
    }

    [Fact]
    public void IndexBuildSurvivesKills()
    {
        // A folder of 6 documents over 2 Lucene shards; each rerun re-adds (replaces) every document,
        // so a kill lands in the middle of shard commits and the manifest update of a real extension.
        string dir = CliProcess.TempDir();
        try
        {
            string[] lines = File.ReadAllLines(CliProcess.WriteCorpus(dir));
            Directory.CreateDirectory(Path.Combine(dir, "docs"));
            for (int d = 0; d < 6; d++)
                File.WriteAllLines(Path.Combine(dir, "docs", $"part-{d}.txt"), lines.Skip(d * lines.Length / 6).Take(lines.Length / 6));
            string Fingerprint()
            {
                // Passage keys are internal (a re-added document gets new ones): compare which passages come back, in order.
                var sb = new System.Text.StringBuilder();
                foreach (string q in (string[])["whale ship", "captain Ahab", "the sea"])
                {
                    using var doc = System.Text.Json.JsonDocument.Parse(Answer(dir, "index", "search", "--index", "idx", "--query", q, "--k", "5", "--json"));
                    foreach (var hit in doc.RootElement.GetProperty("hits").EnumerateArray())
                        sb.Append(q).Append(": ").Append(hit.GetProperty("document_id").GetString()).Append(' ')
                          .Append(hit.GetProperty("start").GetInt64()).Append('+').Append(hit.GetProperty("length").GetInt64()).AppendLine();
                }
                Assert.True(sb.Length > 0, "the index answered no query");
                return sb.ToString();
            }
            KillRerunsAnswerTheSame("index build", dir, ["index", "build", "--input", "docs", "--out", "idx", "--shards", "2"], Fingerprint,
                "the last good index opens and returns the same passages for 3 queries after every kill");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void NGramBuildSurvivesKills()
    {
        Prepared(out string dir);
        try
        {
            Assert.Equal(0, CliProcess.Run(dir, "data", "prepare", "--tokenizer", "tok", "--input", "corpus.txt", "--out", "data").ExitCode);
            string Fingerprint()
            {
                // Every shard byte-identical, the manifest equal but for its build time, and the same answers.
                var sb = new System.Text.StringBuilder();
                foreach (var (file, hash) in Hashes(Path.Combine(dir, "ng")).OrderBy(kv => kv.Key, StringComparer.Ordinal))
                    if (file != "index.json") sb.Append(file).Append(' ').Append(hash).AppendLine();
                var manifest = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "ng", "index.json")))!.AsObject();
                manifest.Remove("build_seconds");
                sb.AppendLine(manifest.ToJsonString());
                foreach (string type in (string[])["count", "next"])
                {
                    using var doc = System.Text.Json.JsonDocument.Parse(Answer(dir, "ngram", "query", "--index", "ng", "--tokenizer", "tok", "--text", "the whale", "--type", type, "--json"));
                    sb.AppendLine(doc.RootElement.GetProperty("result").GetRawText());
                }
                return sb.ToString();
            }
            KillRerunsAnswerTheSame("ngram build", dir, ["ngram", "build", "--data", "data", "--out", "ng", "--shard-tokens", "16384", "--force"], Fingerprint,
                "shards byte-identical, manifest equal but for its build time, same query answers after every kill");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void TrainingKilledAndResumedEndsBitIdenticalToAnUninterruptedRun()
    {
        Prepared(out string dir);
        try
        {
            Assert.Equal(0, CliProcess.Run(dir, "data", "prepare", "--tokenizer", "tok", "--input", "corpus.txt", "--out", "data").ExitCode);
            string[] train = ["train", "--data", "data", "--steps", "12", .. Model];
            var duration = Timed(() => Assert.Equal(0, CliProcess.Run(dir, [.. train, "--out", "straight"]).ExitCode));
            var rng = new Random(12 ^ Kills);
            int killed = 0, intact = 0;
            string run = Path.Combine(dir, "killed");
            for (int i = 0; i < Kills; i++)
            {
                bool resumable = Checkpoint.List(run).Count > 0;
                if (RunAndKill(dir, [.. train, "--out", "killed", .. resumable ? ["--resume"] : Array.Empty<string>()], duration * rng.NextDouble())) killed++;
                // Whatever the kill interrupted, the newest complete checkpoint (if any yet) verifies and loads.
                if (Checkpoint.List(run).Count > 0)
                {
                    string latest = Checkpoint.Resolve(run);
                    using var m = Checkpoint.LoadModel(latest);
                }
                intact++;
            }
            var finish = CliProcess.Run(dir, [.. train, "--out", "killed", .. Checkpoint.List(run).Count > 0 ? ["--resume"] : Array.Empty<string>()]);
            Assert.True(finish.ExitCode == 0, finish.Stderr);
            string a = Checkpoint.Resolve(Path.Combine(dir, "straight")), b = Checkpoint.Resolve(run);
            Assert.Equal(Path.GetFileName(a), Path.GetFileName(b));
            foreach (var file in (string[])[Checkpoint.ModelFile, Checkpoint.OptimizerFile])
                Assert.True(File.ReadAllBytes(Path.Combine(a, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b, file))),
                    $"{file} after {killed} kills and resumes differs from the uninterrupted run's");
            Row("train", Kills, killed, intact, 1, "final weights + optimizer bit-identical to the uninterrupted run");
        }
        finally { Directory.Delete(dir, true); }
    }

    [Fact]
    public void DistillKilledAndResumedEndsBitIdenticalToAnUninterruptedRun()
    {
        Prepared(out string dir);
        try
        {
            Assert.Equal(0, CliProcess.Run(dir, "data", "prepare", "--tokenizer", "tok", "--input", "corpus.txt", "--out", "data").ExitCode);
            Assert.Equal(0, CliProcess.Run(dir, ["train", "--data", "data", "--out", "teacher", "--steps", "4", .. Model]).ExitCode);
            // Both students (scratch, then distilled) and the teacher-logit cache are written along the way;
            // kills land in any of them.
            string[] distill = ["distill", "--teacher", "teacher", "--data", "data", "--layers", "1", "--dim", "32", "--heads", "2", "--kv-heads", "1",
                "--hidden", "64", "--experts", "1", "--top-k", "1", "--context", "64", "--steps", "12", "--batch", "2", "--seq", "32",
                "--eval-every", "4", "--eval-batches", "1", "--logits-top-k", "8", "--json"];
            var duration = Timed(() => Assert.Equal(0, CliProcess.Run(dir, [.. distill, "--out", "straight"]).ExitCode));
            var rng = new Random(13 ^ Kills);
            int killed = 0, intact = 0;
            string run = Path.Combine(dir, "killed");
            for (int i = 0; i < Kills; i++)
            {
                if (RunAndKill(dir, [.. distill, "--out", "killed", .. Directory.Exists(run) ? ["--resume"] : Array.Empty<string>()], duration * rng.NextDouble())) killed++;
                // The newest complete checkpoint of each student (if any yet) verifies and loads.
                foreach (string student in (string[])["scratch", "distilled"])
                    if (Checkpoint.List(Path.Combine(run, student)).Count > 0)
                    {
                        using var m = Checkpoint.LoadModel(Checkpoint.Resolve(Path.Combine(run, student)));
                    }
                intact++;
            }
            var finish = CliProcess.Run(dir, [.. distill, "--out", "killed", .. Directory.Exists(run) ? ["--resume"] : Array.Empty<string>()]);
            Assert.True(finish.ExitCode == 0, finish.Stderr);
            foreach (string student in (string[])["scratch", "distilled"])
            {
                string a = Checkpoint.Resolve(Path.Combine(dir, "straight", student)), b = Checkpoint.Resolve(Path.Combine(run, student));
                Assert.Equal(Path.GetFileName(a), Path.GetFileName(b));
                foreach (var file in (string[])[Checkpoint.ModelFile, Checkpoint.OptimizerFile])
                    Assert.True(File.ReadAllBytes(Path.Combine(a, file)).AsSpan().SequenceEqual(File.ReadAllBytes(Path.Combine(b, file))),
                        $"{student}/{file} after {killed} kills and resumes differs from the uninterrupted run's");
            }
            // The reported held-out figures are the uninterrupted run's too.
            var straight = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "straight", "results.json"))).RootElement;
            var resumed = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(run, "results.json"))).RootElement;
            foreach (string student in (string[])["scratch", "distilled"])
                Assert.Equal(straight.GetProperty(student).GetProperty("bits_per_byte").GetDouble(), resumed.GetProperty(student).GetProperty("bits_per_byte").GetDouble());
            Row("distill", Kills, killed, intact, 1, "both students' final weights + optimizer and the reported bits/byte bit-identical to the uninterrupted run");
        }
        finally { Directory.Delete(dir, true); }
    }
}

/// <summary>Runs only where a tmpfs can be mounted (root with CAP_SYS_ADMIN, as on CI and the dev machines).</summary>
public sealed class TmpfsFactAttribute : FactAttribute
{
    public TmpfsFactAttribute()
    {
        if (!DiskFullTests.CanMount()) Skip = "needs to mount a tmpfs (root with CAP_SYS_ADMIN); disk-full behaviour untested here";
    }
}

/// <summary>A training run whose output folder fills up: one clear error, the last good checkpoint kept, resume works once there is room.</summary>
public class DiskFullTests
{
    static bool Sh(string cmd)
    {
        var psi = new ProcessStartInfo("/bin/sh") { RedirectStandardError = true, RedirectStandardOutput = true };
        psi.ArgumentList.Add("-c");
        psi.ArgumentList.Add(cmd);
        using var p = Process.Start(psi)!;
        p.WaitForExit();
        return p.ExitCode == 0;
    }

    public static bool CanMount()
    {
        if (!OperatingSystem.IsLinux() || Environment.UserName != "root") return false;
        string probe = Directory.CreateTempSubdirectory("tessera-tmpfs-probe").FullName;
        bool ok = Sh($"mount -t tmpfs -o size=64k tmpfs '{probe}'") && Sh($"umount '{probe}'");
        Directory.Delete(probe);
        return ok;
    }

    [TmpfsFact]
    public void TrainingOntoAFullDiskFailsClearlyAndKeepsTheLastGoodCheckpoint()
    {
        string dir = CliProcess.TempDir();
        string outDir = Path.Combine(dir, "small");
        Directory.CreateDirectory(outDir);
        try
        {
            CliProcess.WriteCorpus(dir);
            Assert.Equal(0, CliProcess.Run(dir, "tokenizer", "train", "--input", "corpus.txt", "--vocab-size", "512", "--out", "tok").ExitCode);
            Assert.Equal(0, CliProcess.Run(dir, "data", "prepare", "--tokenizer", "tok", "--input", "corpus.txt", "--out", "data").ExitCode);
            // One checkpoint of this model is ~600 KB: 1.2 MB holds the first, not the second beside it.
            Assert.True(Sh($"mount -t tmpfs -o size=1200k tmpfs '{outDir}'"));
            try
            {
                string[] train = ["train", "--data", "data", "--out", "small/run", "--steps", "12", "--layers", "2", "--dim", "32", "--heads", "2", "--kv-heads", "1",
                    "--hidden", "64", "--experts", "2", "--top-k", "1", "--context", "64", "--seq", "32", "--batch", "2", "--eval-every", "4", "--checkpoint-every", "2", "--eval-batches", "2"];
                var full = CliProcess.Run(dir, train);
                Assert.NotEqual(0, full.ExitCode);
                string error = full.Stderr.Trim();
                Assert.True(!error.Contains('\n') && error.Contains("could not write the checkpoint") && error.Contains("No space left on device") && error.Contains("step-00000002 is intact"),
                    $"expected one line naming the disk-full failure and the kept checkpoint, got: {error}");
                string run = Path.Combine(outDir, "run");
                Assert.Empty(Directory.GetDirectories(run, ".staging-*"));
                string kept = Tessera.Training.Checkpoint.Resolve(run);   // verifies every file's SHA-256
                Assert.EndsWith("step-00000002", kept);

                Assert.True(Sh($"mount -o remount,size=16m '{outDir}'"));  // "free space"
                var resumed = CliProcess.Run(dir, [.. train, "--resume"]);
                Assert.True(resumed.ExitCode == 0, resumed.Stderr);
                Assert.EndsWith("step-00000012", Tessera.Training.Checkpoint.Resolve(run));
            }
            finally { Sh($"umount '{outDir}'"); }
        }
        finally { Directory.Delete(dir, true); }
    }
}
