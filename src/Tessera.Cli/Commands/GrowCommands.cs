using System.CommandLine;
using System.Text.Json;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// Growing a trained model: <c>tessera upcycle</c> (dense → MoE whose experts copy the dense MLP)
/// and <c>tessera btm merge</c> (dense branches of one base → MoE whose experts are the branches'
/// MLPs). Both write a weights-only checkpoint <c>OUT/step-00000000</c> (atomic, with the source's
/// tokenizer and a lineage.json) that <c>tessera train --init-from OUT</c> continues.
/// </summary>
public static class GrowCommands
{
    /// <summary>What a grow command wrote.</summary>
    public sealed record GrowResult(string Checkpoint, int Experts, int TopK, long Parameters, long ActiveParameters, string BaseWeightsSha256);

    /// <summary>Builds <c>tessera upcycle</c>.</summary>
    public static Command Upcycle()
    {
        var from = new Option<string>("--from") { Description = "Dense run folder (its latest checkpoint) or checkpoint folder.", Required = true };
        var experts = new Option<int>("--experts") { Description = "Experts per layer, each a copy of the dense MLP.", DefaultValueFactory = _ => 4 };
        var topK = new Option<int>("--top-k") { Description = "Experts per token (≥ 2: renormalised gates keep the model equal to the dense one at the start).", DefaultValueFactory = _ => 2 };
        var output = new Option<string>("--out") { Description = "New run folder; the MoE checkpoint is written as OUT/step-00000000.", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the new routers (normal, std 0.02).", DefaultValueFactory = _ => 1337UL };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("upcycle", "Sparse upcycling: turn a dense checkpoint into a mixture of experts whose every expert is a copy of the dense MLP, with new routers.")
            { from, experts, topK, output, seed, json };
        cmd.SetAction(p =>
        {
            string outDir = p.GetValue(output)!;
            var (dir, config) = InitFrom.Resolve(p.GetValue(from)!);
            Upcycling.Config(config, p.GetValue(experts), p.GetValue(topK));      // every check before loading or writing
            RefuseUsed(outDir);
            using var dense = Checkpoint.LoadModel(dir);
            using var moe = Upcycling.Upcycle(dense, p.GetValue(experts), p.GetValue(topK), p.GetValue(seed));
            var lineage = Lineage.Of(dir, "upcycle");
            string saved = Save(outDir, moe, dir, lineage);
            Report(p.GetValue(json), new GrowResult(Path.GetFullPath(saved), moe.Config.Experts, moe.Config.TopK, moe.Config.ParameterCount, moe.Config.ActiveParameterCount, lineage.BaseWeightsSha256),
                $"upcycled {dir} → {saved}: {moe.Config.Experts} experts top-{moe.Config.TopK}, {moe.Config.ParameterCount:N0} parameters ({moe.Config.ActiveParameterCount:N0} active); continue with `tessera train --init-from {outDir}`");
            return 0;
        });
        return cmd;
    }

    /// <summary>Builds <c>tessera btm merge</c>.</summary>
    public static Command Btm()
    {
        var branches = new Option<string>("--branches") { Description = "Comma-separated dense branch runs (or checkpoints), each trained with --init-from the same base; expert e is branch e's MLP.", Required = true };
        var topK = new Option<int>("--top-k") { Description = "Experts per token of the merged model.", DefaultValueFactory = _ => 2 };
        var output = new Option<string>("--out") { Description = "New run folder; the merged checkpoint is written as OUT/step-00000000.", Required = true };
        var seed = new Option<ulong>("--seed") { Description = "Seed of the new routers (normal, std 0.02).", DefaultValueFactory = _ => 1337UL };
        var json = BenchCommand.JsonOption();
        var merge = new Command("merge", "Merge dense branches of one base into a mixture of experts: expert e = branch e's MLP, shared weights averaged, new routers.")
            { branches, topK, output, seed, json };
        merge.SetAction(p =>
        {
            string outDir = p.GetValue(output)!;
            var paths = p.GetValue(branches)!.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
            if (paths.Length < 2) throw new ArgumentException($"--branches: btm merge needs at least 2 branches, got {paths.Length}.");
            var resolved = paths.Select(InitFrom.Resolve).ToList();
            BranchMerge.Config([.. resolved.Select(r => r.Config)], paths, p.GetValue(topK));
            var lineages = resolved.Select(r => Lineage.Read(r.Checkpoint)
                ?? throw new ArgumentException($"Branch {r.Checkpoint} has no {Lineage.FileName}: it was not trained with `tessera train --init-from BASE`, so its base is unknown.")).ToList();
            for (int b = 1; b < lineages.Count; b++)
                if (lineages[b].BaseWeightsSha256 != lineages[0].BaseWeightsSha256)
                    throw new ArgumentException($"Branch {paths[b]} starts from another base ({lineages[b].Base}, weights sha256 {lineages[b].BaseWeightsSha256[..12]}…) than branch {paths[0]} ({lineages[0].Base}, {lineages[0].BaseWeightsSha256[..12]}…).");
            SameTokenizer(resolved.Select(r => r.Checkpoint).ToList(), paths);
            RefuseUsed(outDir);
            var models = new List<Transformer>();
            try
            {
                foreach (var r in resolved) models.Add(Checkpoint.LoadModel(r.Checkpoint));
                using var moe = BranchMerge.Merge(models, paths, p.GetValue(topK), p.GetValue(seed));
                var lineage = lineages[0] with { How = "btm-merge" };
                string saved = Save(outDir, moe, resolved[0].Checkpoint, lineage);
                Report(p.GetValue(json), new GrowResult(Path.GetFullPath(saved), moe.Config.Experts, moe.Config.TopK, moe.Config.ParameterCount, moe.Config.ActiveParameterCount, lineage.BaseWeightsSha256),
                    $"merged {paths.Length} branches → {saved}: {moe.Config.Experts} experts top-{moe.Config.TopK}, {moe.Config.ParameterCount:N0} parameters ({moe.Config.ActiveParameterCount:N0} active); fine-tune with `tessera train --init-from {outDir}`");
            }
            finally
            {
                foreach (var m in models) m.Dispose();
            }
            return 0;
        });
        return new Command("btm", "Branch-train-mix: merge dense branches of one base into a mixture of experts.") { merge };
    }

    static void RefuseUsed(string outDir)
    {
        if (Checkpoint.List(outDir).Count > 0) throw new ArgumentException($"--out {outDir} already holds checkpoints; choose a new folder.");
    }

    static void SameTokenizer(IReadOnlyList<string> checkpoints, IReadOnlyList<string> labels)
    {
        static string Fingerprint(string ckpt)
        {
            string dir = Path.Combine(ckpt, Checkpoint.TokenizerFolder);
            if (!Directory.Exists(dir)) return "";
            return string.Join("|", Directory.GetFiles(dir).Order(StringComparer.Ordinal)
                .Select(f => Path.GetFileName(f) + ":" + Convert.ToHexString(System.Security.Cryptography.SHA256.HashData(File.ReadAllBytes(f)))));
        }
        string first = Fingerprint(checkpoints[0]);
        for (int b = 1; b < checkpoints.Count; b++)
            if (Fingerprint(checkpoints[b]) != first) throw new ArgumentException($"Branch {labels[b]} carries another tokenizer than branch {labels[0]}.");
    }

    static string Save(string outDir, Transformer model, string source, Lineage lineage)
        => Checkpoint.Save(outDir, 0, model, extras: staging =>
        {
            string tok = Path.Combine(source, Checkpoint.TokenizerFolder);
            if (Directory.Exists(tok)) RunSetup.CopyTokenizer(tok, Path.Combine(staging, Checkpoint.TokenizerFolder));
            lineage.WriteTo(staging);
        });

    static void Report(bool json, GrowResult result, string line)
        => Console.WriteLine(json ? JsonSerializer.Serialize(result, JsonNaming.Line) : line);
}
