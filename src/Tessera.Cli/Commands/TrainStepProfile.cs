using Tessera.Tensors;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>bench train --profile</c>: the op profile of the timed steps grouped by op family, each
/// family with its achieved GFLOP/s (products: GEMMs, attention) or GB/s (everything else)
/// against the peak and the copy bandwidth measured in the same run.
/// </summary>
static class TrainStepProfile
{
    /// <summary>The families in print order; <see cref="FamilyOf"/> maps an entry key to one of them.</summary>
    static readonly string[] Families =
    [
        "GEMM forward", "GEMM backward", "attention", "embedding + LM head", "norms", "elementwise + layout",
        "router / dispatch", "optimizer", "allocation",
    ];

    /// <summary>The family of a profile key such as <c>Linear fwd</c>, <c>Linear[head] bwd</c> or <c>AdamW.Step</c>.</summary>
    internal static string FamilyOf(string key)
    {
        int space = key.LastIndexOf(' ');
        string op = space > 0 && key[(space + 1)..] is "fwd" or "bwd" ? key[..space] : key;
        bool backward = key.EndsWith(" bwd", StringComparison.Ordinal);
        if (op.EndsWith("[head]", StringComparison.Ordinal)) return "embedding + LM head";
        int bracket = op.IndexOf('[', StringComparison.Ordinal);
        if (bracket > 0) op = op[..bracket];
        return op switch
        {
            "Linear" or "MatMul" => backward ? "GEMM backward" : "GEMM forward",
            "Attention" => "attention",
            "EmbedInputs" or "CrossEntropy" or "SoftCap" => "embedding + LM head",
            "RmsNorm" => "norms",
            "TopK" or "Softmax" or "NormalizeRows" or "GatherRows" or "GatherColumns" or "CombineExperts"
                or "ScatterRowsWeighted" or "LoadBalanceLoss" or "RouterZLoss" => "router / dispatch",
            "AdamW.Step" or "ClipGlobalNorm" => "optimizer",
            OpProfile.AllocationKey => "allocation",
            _ => "elementwise + layout",
        };
    }

    /// <summary>
    /// One line per family (ms per step, share of the step, rate against the machine) and one per
    /// op entry under it; <paramref name="stepMs"/> is the step on the same clock as the profile,
    /// and what the profile does not cover (graph building, data, Dispose) is printed as "other".
    /// </summary>
    public static void Print(Action<string> progress, int steps, double stepMs, double peakGflops, double bandwidthGBps, long parameters, string clock)
    {
        var entries = OpProfile.Entries();
        var byFamily = new Dictionary<string, List<OpProfileEntry>>();
        foreach (var entry in entries)
        {
            // The optimizer's bytes per call: AdamW reads p, g, m, v and writes p, m, v; the clip reads g and scales it in place.
            var e = entry.Key switch
            {
                "AdamW.Step" => entry with { Bytes = 28.0 * parameters * entry.Calls },
                "ClipGlobalNorm" => entry with { Bytes = 12.0 * parameters * entry.Calls },
                _ => entry,
            };
            string f = FamilyOf(e.Key);
            if (!byFamily.TryGetValue(f, out var list)) byFamily[f] = list = [];
            list.Add(e);
        }
        progress($"  per-op profile ({clock}), ms per step; products against the peak {peakGflops:F0} GFLOP/s, the rest against the copy bandwidth {bandwidthGBps:F1} GB/s (both measured in this run):");
        double profiled = 0;
        foreach (string family in Families)
        {
            if (!byFamily.TryGetValue(family, out var list)) continue;
            double ms = 0, flops = 0, bytes = 0;
            foreach (var e in list) { ms += e.Milliseconds; flops += e.Flops; bytes += e.Bytes; }
            profiled += ms;
            progress($"    {family,-22} {ms / steps,9:F2} ms {100 * ms / steps / stepMs,5:F1}%  {Rate(flops, bytes, ms, peakGflops, bandwidthGBps)}");
            foreach (var e in list)
                progress($"      {e.Key,-26} {e.Milliseconds / steps,9:F2} ms  ({e.Calls / steps} calls)  {Rate(e.Flops, e.Bytes, e.Milliseconds, peakGflops, bandwidthGBps)}");
        }
        double other = stepMs - profiled / steps;
        progress($"    {"other (graph, data)",-22} {other,9:F2} ms {100 * other / stepMs,5:F1}%  (step {stepMs:F2} ms minus the profiled ops)");
        progress($"    tensor buffer pool holds {BufferPool.RetainedBytes / 1048576.0:F0} MiB between steps");
    }

    static string Rate(double flops, double bytes, double ms, double peakGflops, double bandwidthGBps)
    {
        if (ms <= 0) return "";
        if (flops > 0)
        {
            double g = flops / (ms / 1000) / 1e9;
            return $"{g,7:F1} GFLOP/s = {100 * g / peakGflops,5:F1}% of peak";
        }
        if (bytes > 0)
        {
            double gb = bytes / (ms / 1000) / 1e9;
            return $"{gb,7:F1} GB/s    = {100 * gb / bandwidthGBps,5:F1}% of copy bandwidth";
        }
        return "";
    }
}
