using System.Globalization;
using System.Text;
using System.Text.Json;
using Tessera.Kernels.IO;
using Tessera.Training.Experiments;

namespace Tessera.Training.Labs;

/// <summary>One seed's end points in <see cref="UpcycleSeedsResult"/>.</summary>
public sealed record UpcycleSeedRow(ulong Seed, double BaseBitsPerByte, double DenseBitsPerByte, double UpcycledBitsPerByte, double AddedFlops)
{
    /// <summary>Upcycled minus dense held-out bpb (negative: upcycling wins this seed).</summary>
    public double Difference => UpcycledBitsPerByte - DenseBitsPerByte;
}

/// <summary>Everything <c>results.json</c> of a multi-seed upcycling lab holds: the per-seed end points and their summary.</summary>
public sealed record UpcycleSeedsResult(string Lab, string Corpus, UpcyclePlan Plan, IReadOnlyList<UpcycleSeedRow> Seeds,
    double MeanDifference, double StdDifference, double StandardError, bool UpcyclingWinsEverySeed);

/// <summary>
/// <c>tessera lab upcycle --seeds a,b,c</c>: the upcycling lab once per seed (each its own base,
/// data order and routers) in <c>OUT/seed-S</c>, then one report over all of them: a table of
/// upcycled − dense per seed with mean, standard deviation and standard error, and one figure with
/// every seed's two curves.
/// </summary>
public static class UpcycleSeeds
{
    /// <summary>
    /// Runs (or, when <c>OUT/seed-S/results.json</c> holds a result of the same plan on the same
    /// corpus, reuses) each seed and writes the summary into <paramref name="outDir"/>.
    /// </summary>
    public static (UpcycleSeedsResult Summary, IReadOnlyList<UpcycleLabResult> Runs) Run(UpcyclePlan plan, IReadOnlyList<ulong> seeds, LabCorpus corpus, string outDir,
        Action<string>? log = null, CancellationToken cancel = default)
    {
        if (seeds.Count < 1) throw new ArgumentException("--seeds: name at least one seed.");
        if (seeds.Distinct().Count() != seeds.Count) throw new ArgumentException($"--seeds {string.Join(',', seeds)}: a seed is named twice.");
        var runs = new List<UpcycleLabResult>();
        foreach (var seed in seeds)
        {
            var p = plan with { Training = plan.Training with { Seed = seed } };
            string dir = Path.Combine(outDir, $"seed-{seed}");
            if (Cached(dir, p, corpus.Description) is { } hit)
            {
                log?.Invoke($"seed {seed}: cached ({dir})");
                runs.Add(hit);
                continue;
            }
            log?.Invoke($"seed {seed} → {dir}");
            runs.Add(UpcycleLab.Run(p, corpus, dir, log, cancel));
        }
        var rows = runs.Select(r => new UpcycleSeedRow(r.Plan.Training.Seed, r.BaseBitsPerByte, r.Dense.FinalBitsPerByte, r.Upcycled.FinalBitsPerByte, r.Upcycled.AddedFlops)).ToList();
        double mean = rows.Average(r => r.Difference);
        double sd = rows.Count < 2 ? 0 : Math.Sqrt(rows.Sum(r => (r.Difference - mean) * (r.Difference - mean)) / (rows.Count - 1));
        var summary = new UpcycleSeedsResult("upcycle", corpus.Description, plan, rows, mean, sd, sd / Math.Sqrt(rows.Count), rows.All(r => r.Difference < 0));
        WriteReport(summary, runs, outDir);
        return (summary, runs);
    }

    /// <summary>The result in <c>dir/results.json</c> when it was measured with <paramref name="plan"/> on <paramref name="corpus"/>, else null.</summary>
    internal static UpcycleLabResult? Cached(string dir, UpcyclePlan plan, string corpus)
    {
        string path = Path.Combine(dir, ExperimentReport.ResultsFile);
        if (!File.Exists(path)) return null;
        try
        {
            var r = JsonNaming.Deserialize<UpcycleLabResult>(File.ReadAllText(path));
            return r is not null && r.Plan == plan && r.Corpus == corpus ? r : null;
        }
        catch (JsonException) { return null; }
    }

    static void WriteReport(UpcycleSeedsResult s, IReadOnlyList<UpcycleLabResult> runs, string outDir)
    {
        var inv = CultureInfo.InvariantCulture;
        var p = s.Plan;
        var figure = new Figure($"Upcycling vs continued dense training, {runs.Count} seeds", "added training FLOPs", "held-out bits per byte");
        foreach (var r in runs)
        {
            figure.Add(new PlotSeries($"{r.Dense.Name}, seed {r.Plan.Training.Seed}", [.. r.Dense.Curve.Select(c => (c.AddedFlops, c.BitsPerByte[0]))], SeriesStyle.LineAndMarkers, 0));
            figure.Add(new PlotSeries($"{r.Upcycled.Name}, seed {r.Plan.Training.Seed}", [.. r.Upcycled.Curve.Select(c => (c.AddedFlops, c.BitsPerByte[0]))], SeriesStyle.LineAndMarkers, 1));
        }
        var first = runs[0];
        var md = new StringBuilder();
        md.AppendLine(inv, $"Data: {s.Corpus}. Per seed: a dense L{p.Layers}-d{p.Dim} base trained {p.BaseSteps} steps of {p.Training.TokensPerStep} tokens, then continued " +
            $"dense for {first.Dense.Steps} steps and upcycled ({p.Experts} experts, top-{p.TopK}) for {first.Upcycled.Steps} steps: the same added FLOPs ({first.Upcycled.AddedFlops:0.00e+0}). " +
            $"Each seed's own report is in `seed-S/`.");
        md.AppendLine();
        md.AppendLine("![held-out bpb vs added FLOPs, every seed](upcycle-seeds.svg)");
        md.AppendLine();
        md.AppendLine("| seed | base bpb | dense, continued | upcycled | upcycled − dense |");
        md.AppendLine("|---|---|---|---|---|");
        foreach (var r in s.Seeds)
            md.AppendLine(inv, $"| {r.Seed} | {r.BaseBitsPerByte:F4} | {r.DenseBitsPerByte:F4} | {r.UpcycledBitsPerByte:F4} | {r.Difference:+0.0000;-0.0000} |");
        md.AppendLine(inv, $"| mean ± sd (± s.e.) | | {s.Seeds.Average(r => r.DenseBitsPerByte):F4} | {s.Seeds.Average(r => r.UpcycledBitsPerByte):F4} | {s.MeanDifference:+0.0000;-0.0000} ± {s.StdDifference:0.0000} (± {s.StandardError:0.0000}) |");
        md.AppendLine();
        md.AppendLine(s.UpcyclingWinsEverySeed ? "Upcycling wins on every seed." : "Upcycling does NOT win on every seed (missed).");
        ExperimentReport.Write(outDir, "Upcycling lab over seeds: sparse upcycling vs continued dense training", s, md.ToString(),
            new Dictionary<string, Figure> { ["upcycle-seeds"] = figure });
    }
}
