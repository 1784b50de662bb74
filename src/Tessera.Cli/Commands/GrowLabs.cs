using System.CommandLine;
using Tessera.Data;
using Tessera.Text;
using Tessera.Training.Labs;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera lab upcycle</c> and <c>tessera lab btm</c>: growing a trained dense model (docs/modules-growth.md).</summary>
static class GrowLabs
{
    /// <summary>Adds the growth labs to <c>tessera lab</c>.</summary>
    public static void Add(Command lab, Func<string, string, Option[], LabCommand.LabBody, Command> sub)
    {
        var experts = new Option<int?>("--experts") { Description = "Experts per layer of the upcycled model (default 4)." };
        var topK = new Option<int?>("--top-k") { Description = "Experts per token (default 2)." };
        var moeSteps = new Option<long?>("--moe-steps") { Description = "Continued-training steps of the upcycled MoE; dense gets the same FLOPs." };
        var baseSteps = new Option<long?>("--base-steps") { Description = "Steps of the dense base." };
        var lrShare = new Option<double?>("--lr-share") { Description = "Peak LR of every continuation as a share of the base's (default 0.5)." };
        var seed = new Option<ulong?>("--seed") { Description = "Seed of the base's weights, every data order and the routers (default 1337; another seed trains another base)." };
        var layers = new Option<int?>("--layers") { Description = "Depth of the dense base (default 2)." };
        var seeds = new Option<string?>("--seeds") { Description = "Comma-separated seeds: the lab once per seed into OUT/seed-S (reused when already measured with the same plan), then one summary report." };
        var dim = new Option<int?>("--dim") { Description = "Width of the dense base, a multiple of 16 (default 64)." };
        lab.Subcommands.Add(sub("upcycle", "Sparse upcycling vs continued dense training from one dense base at equal added compute: held-out bpb curves.",
            [experts, topK, moeSteps, baseSteps, lrShare, seed, seeds, layers, dim], (p, quick, corpus, outDir, fitOnly, log, cancel) =>
            {
                if (fitOnly) throw new ArgumentException("--fit-only: the upcycling lab has nothing to re-fit; rerun without it (the base is cached).");
                var plan = quick ? UpcyclePlan.Quick : UpcyclePlan.Full;
                plan = plan with { Training = LabCommand.Training(p, plan.Training) };
                if (p.GetValue(experts) is { } e) plan = plan with { Experts = e };
                if (p.GetValue(topK) is { } k) plan = plan with { TopK = k };
                if (p.GetValue(moeSteps) is { } m) plan = plan with { MoeSteps = m };
                if (p.GetValue(baseSteps) is { } b) plan = plan with { BaseSteps = b };
                if (p.GetValue(lrShare) is { } lr) plan = plan with { ContinueLrShare = lr };
                if (p.GetValue(seed) is { } sd) plan = plan with { Training = plan.Training with { Seed = sd } };
                if (p.GetValue(layers) is { } ly) plan = plan with { Layers = ly };
                if (p.GetValue(dim) is { } dm) plan = plan with { Dim = dm };
                if (p.GetValue(seeds) is { } list)
                {
                    if (p.GetValue(seed) is not null) throw new ArgumentException("--seed and --seeds: name one of them.");
                    var (s, _) = UpcycleSeeds.Run(plan, ParseSeeds(list), corpus, outDir, log, cancel);
                    log($"upcycled − dense held-out bpb over {s.Seeds.Count} seeds: {string.Join(", ", s.Seeds.Select(x => x.Difference.ToString("+0.0000;-0.0000", System.Globalization.CultureInfo.InvariantCulture)))}; " +
                        $"mean {s.MeanDifference:+0.0000;-0.0000} ± {s.StdDifference:0.0000} → {(s.UpcyclingWinsEverySeed ? "upcycling wins on every seed" : "upcycling does not win on every seed")}");
                    return s;
                }
                var r = UpcycleLab.Run(plan, corpus, outDir, log, cancel);
                log($"held-out bpb after equal added compute ({r.Upcycled.AddedFlops:0.00e+0} FLOPs): dense {r.Dense.FinalBitsPerByte:F4}, upcycled {r.Upcycled.FinalBitsPerByte:F4} → {(r.UpcyclingWins ? "upcycling wins" : "upcycling does not win")}");
                return r;
            }));

        var code = new Option<string>("--code") { Description = "The second domain: a prepared data folder, or a source folder whose *.cs files are tokenized like --data (default: this repo's src).", DefaultValueFactory = _ => "src" };
        var branchSteps = new Option<long?>("--branch-steps") { Description = "Steps of each branch on its domain." };
        var mixSteps = new Option<long?>("--mix-steps") { Description = "Steps of the merged model's joint fine-tune on the union." };
        lab.Subcommands.Add(sub("btm", "Branch-train-mix (English and C# branches of one base, merged as experts, fine-tuned) vs one model trained on the union at equal compute.",
            [code, branchSteps, mixSteps, baseSteps, lrShare, seed, layers, dim], (p, quick, corpus, outDir, fitOnly, log, cancel) =>
            {
                if (fitOnly) throw new ArgumentException("--fit-only: the BTM lab has nothing to re-fit; rerun without it (the base is cached).");
                var plan = quick ? BtmPlan.Quick : BtmPlan.Full;
                plan = plan with { Training = LabCommand.Training(p, plan.Training) };
                if (p.GetValue(branchSteps) is { } bs) plan = plan with { BranchSteps = bs };
                if (p.GetValue(mixSteps) is { } ms) plan = plan with { MixSteps = ms };
                if (p.GetValue(baseSteps) is { } b) plan = plan with { BaseSteps = b };
                if (p.GetValue(lrShare) is { } lr) plan = plan with { ContinueLrShare = lr };
                if (p.GetValue(seed) is { } sd) plan = plan with { Training = plan.Training with { Seed = sd } };
                if (p.GetValue(layers) is { } ly) plan = plan with { Layers = ly };
                if (p.GetValue(dim) is { } dm) plan = plan with { Dim = dm };
                string codeData = PrepareCode(p.GetValue(code)!, p.GetValue<string>("--data")!, outDir, log);
                using var second = LabCorpus.PrepareOrOpen(codeData, log: log);
                var r = BtmLab.Run(plan, corpus, second, "English", "C#", outDir, log, cancel);
                log($"mean held-out bpb at equal added compute: union model {r.BaselineCurve[^1].UnionBitsPerByte:F4}, BTM {r.BtmCurve[^1].UnionBitsPerByte:F4} → {(r.BtmWins ? "BTM wins" : "BTM does not win")}");
                return r;
            }));
    }

    /// <summary>"1337,2,3" → seeds; one clear error naming the bad entry.</summary>
    static ulong[] ParseSeeds(string list)
    {
        var parts = list.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries);
        var seeds = new ulong[parts.Length];
        for (int i = 0; i < parts.Length; i++)
            if (!ulong.TryParse(parts[i], System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out seeds[i]))
                throw new ArgumentException($"--seeds {list}: '{parts[i]}' is not a non-negative integer seed.");
        if (seeds.Length == 0) throw new ArgumentException("--seeds: name at least one seed, e.g. --seeds 1337,2,3.");
        return seeds;
    }

    /// <summary>A prepared folder as is; a source folder's *.cs files tokenized with the English data's tokenizer into OUT/code-data (reused when present).</summary>
    static string PrepareCode(string code, string englishData, string outDir, Action<string> log)
    {
        if (File.Exists(Path.Combine(code, PreparedData.MetaFile))) return code;
        if (!Directory.Exists(code)) throw new ArgumentException($"--code {code}: neither a prepared data folder nor a source folder.");
        string target = Path.Combine(outDir, "code-data");
        if (File.Exists(Path.Combine(target, PreparedData.MetaFile))) return target;
        string tokenizer = PreparedData.Load(englishData).TokenizerPath();
        var docs = CorpusFiles.Read(code, include: ["*.cs"]);
        if (docs.Count == 0) throw new ArgumentException($"--code {code}: no *.cs files.");
        log($"tokenizing {docs.Count} C# files from {code} with {tokenizer} → {target}");
        ShardBuilder.Prepare(docs, TokenizerFiles.Load(tokenizer), tokenizer, new DocumentSplit(), target);
        return target;
    }
}
