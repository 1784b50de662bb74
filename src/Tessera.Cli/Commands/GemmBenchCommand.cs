using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Spectre.Console;
using Tessera.Bench;
using Tessera.Kernels.IO;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera bench gemm</c>: our fp32 GEMM vs OpenBLAS <c>cblas_sgemm</c>, same run, same inputs.</summary>
public static class GemmBenchCommand
{
    /// <summary>Builds the <c>tessera bench gemm</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var sizes = new Option<string>("--sizes") { Description = "Square sizes M=N=K, comma-separated.", DefaultValueFactory = _ => "256,512,1024,2048" };
        var threads = new Option<string>("--threads") { Description = "Thread counts, comma-separated.", DefaultValueFactory = _ => "1,2" };
        var peak = new Option<double?>("--peak-gflops") { Description = "fp32 peak per thread in GFLOP/s for the % of peak column (default: measured with an FMA probe)." };
        var seconds = new Option<double>("--seconds") { Description = "Time bound for the timed repetitions of one implementation at one size.", DefaultValueFactory = _ => 0.6 };
        var shapes = new Option<string>("--shapes") { Description = "Extra M×N×K problems, comma-separated (e.g. 2048x8192x512, or 2048x8192x512:nt for A·Bᵀ; :tn, :tt), or a preset name (medium, large, …) for its GEMMs at B·T = 2048 tokens in the layouts training uses.", DefaultValueFactory = _ => "" };
        var cpuTime = new Option<bool>("--cpu-time") { Description = "Time on the calling thread's CPU clock (Linux; --threads 1 only): a busy machine inflates it far less than wall time." };
        var paired = new Option<bool>("--paired") { Description = "Alternate single calls of ours and OpenBLAS with the FMA probe before each pair; report the median per-pair ratio and % of the probe (for hosts whose speed drifts)." };
        var ab = new Option<string?>("--ab") { Description = "With --paired: pair our GEMM with a timing-only switch on against the same switch off, instead of against OpenBLAS (dynamic-split: blocks claimed from a counter vs one fixed range per thread; even-chunks: a multiple of the thread count of blocks vs blocks of the nominal size; a-stationary: the loop order; pack-a-once: each K block of A packed once for all column blocks; fine-chunks: row blocks of 4 panels vs one MC block; busy-spin: the worker pool's waiting threads keep the CPU for up to 200 µs before yielding; pack-a-rows: A stored K×M packed row by row vs panel by panel)." };
        var burst = new Option<int>("--burst") { Description = "With --paired: each side of a pair makes one untimed call, then this many timed calls back to back (2–100), and its figure is their median: steady-state calls, as a training step makes them, instead of the first call after a pause (default: one timed call per side)." };
        var json = BenchCommand.JsonOption();

        var cmd = new Command("gemm", "fp32 GEMM GFLOP/s, ours vs OpenBLAS cblas_sgemm, with ratio and % of peak.")
        {
            sizes, threads, peak, seconds, shapes, cpuTime, paired, ab, burst, json,
        };
        cmd.SetAction(parse =>
        {
            bool asJson = parse.GetValue(json);
            Func<long>? clock = null;
            if (parse.GetValue(cpuTime))
            {
                if (!OperatingSystem.IsLinux()) throw new ArgumentException("--cpu-time needs Linux (CLOCK_THREAD_CPUTIME_ID).");
                Tessera.Tensors.OpProfile.UseThreadCpuTime = true;
                clock = Tessera.Tensors.OpProfile.Now;
            }
            var options = new GemmBenchOptions(ParseList(parse.GetValue(sizes)!, "--sizes"), ParseList(parse.GetValue(threads)!, "--threads"),
                parse.GetValue(peak), parse.GetValue(seconds), ParseShapes(parse.GetValue(shapes)!), clock, parse.GetValue(paired), parse.GetValue(ab), parse.GetValue(burst));
            var report = GemmBench.Run(options, asJson ? null : line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]"));
            if (asJson) Console.WriteLine(JsonSerializer.Serialize(report, JsonNaming.Indented));
            else Print(report);
            return 0;
        });
        return cmd;
    }

    static void Print(GemmBenchReport report)
    {
        AnsiConsole.MarkupLine($"ours: [bold]{Markup.Escape(report.Kernel)}[/] micro-kernel, packed + cache-blocked");
        AnsiConsole.MarkupLine(report.OpenBlas is { } o ? $"{(o.StartsWith("ours", StringComparison.Ordinal) ? "other side" : "OpenBLAS")}: {Markup.Escape(o)}" : $"[yellow]{Markup.Escape(OpenBlas.NotFoundMessage)}[/]");
        // A DYNAMIC_ARCH OpenBLAS older than the CPU falls back to SSE3/AVX2 kernels; the bench reloads it with
        // its AVX-512 kernels (OpenBlas.TryLoad) unless OPENBLAS_CORETYPE was set, and warns when that did not happen.
        if (report.OpenBlasAvx512 == false && OpenBlas.CpuHasAvx512)
            AnsiConsole.MarkupLine($"[yellow]OpenBLAS is running its {Markup.Escape(report.OpenBlasCore ?? "?")} kernels, not AVX-512 ones, on this AVX-512 CPU: the ratio is not a comparison with its best code (OPENBLAS_CORETYPE=Cooperlake or SkylakeX selects them).[/]");
        AnsiConsole.MarkupLine($"peak: {Markup.Escape(report.PeakSource)}; % of peak = ours / (peak per thread × threads)");
        if (report.MicroKernelGflopsPerThread is { } kernel)
            AnsiConsole.MarkupLine($"micro-kernel alone (A micro-panel in L1, an L2-sized B block streaming past it, C tiles in L1; no packing, no C traffic): "
                + $"{kernel:F1} GFLOP/s per thread = [bold]{report.MicroKernelPercentOfPeak:F0}%[/] of a probe taken just before it: the most a GEMM on this kernel can reach");
        var table = new Table().AddColumns("M×N×K", "threads", "ours", "best", "OpenBLAS", "best", "ours/OpenBLAS", "% of peak", "max rel diff");
        foreach (var r in report.Rows)
            table.AddRow(
                r.Shape,
                r.Threads.ToString(CultureInfo.InvariantCulture),
                $"{r.OursMedianGflops:F1}",
                $"{r.OursBestGflops:F1}",
                r.OpenBlasMedianGflops is { } om ? $"{om:F1}" : "—",
                r.OpenBlasBestGflops is { } ob ? $"{ob:F1}" : "—",
                r.Ratio is { } ratio ? $"{ratio:F2}×" : "—",
                $"{r.PercentOfPeak:F0}%",
                r.MaxRelativeDifference is { } d ? d.ToString("0.0E+0", CultureInfo.InvariantCulture) : "—");
        AnsiConsole.Write(table);
        if (report.Rows.Count > 0 && report.Rows[0].PairedProbeGflops is not null)
        {
            int calls = report.Rows[0].Burst ?? 1;
            AnsiConsole.MarkupLine("[grey]paired: " + (calls > 1 ? $"turns of one untimed and {calls} timed back-to-back calls (figure: their median)" : "single calls")
                + " alternated ours/other side, ratio = median of per-pair ratios (IQR), % of peak = median of each side ÷ the FMA probe of all threads taken before each pair; "
                + "ceiling = 100% ÷ the other side's %: the ratio a GEMM at the probe's peak would reach:[/]");
            foreach (var r in report.Rows)
                AnsiConsole.MarkupLine($"  {Markup.Escape(r.Shape)} ×{r.Threads}: ratio {r.Ratio:F2}× (IQR {r.RatioLow:F2}–{r.RatioHigh:F2}, {r.OursRepetitions} pairs), " +
                    $"ours {r.PercentOfPeak:F0}% of the probe, other side {r.OpenBlasPercentOfPeak:F0}% (ceiling {100 / r.OpenBlasPercentOfPeak:F2}×" +
                    (report.MicroKernelPercentOfPeak is { } kp ? $", {kp / r.OpenBlasPercentOfPeak:F2}× at the micro-kernel's own rate" : "") + ") " +
                    $"({r.PairedProbeGflops:F0} GFLOP/s for {r.Threads} thread(s), {r.PairedProbeGflops / r.Threads:F0} per thread)");
        }
        AnsiConsole.MarkupLine("[grey]GFLOP/s = 2·M·N·K / median time (best: fastest repetition); C = A·B row-major; ratio and % of peak use medians.[/]");
    }

    /// <summary>"MxNxK[:nt|:tn|:tt],…" or a preset name: its projections and LM head at 2048 tokens, each as
    /// training runs it (forward y = x·Wᵀ, backward dx = dy·W and dW = dyᵀ·x with K = tokens).</summary>
    static List<GemmProblem> ParseShapes(string text)
    {
        var list = new List<GemmProblem>();
        if (string.IsNullOrWhiteSpace(text)) return list;
        if (Tessera.Model.ModelConfig.Presets.TryGetValue(text.Trim(), out var c))
        {
            int t = 2048, d = c.Dim, q = c.Heads * c.HeadDim, kv = c.KvHeads * c.HeadDim, h = c.HiddenDim, v = c.VocabSize;
            foreach (var (outF, inF) in new[] { (q, d), (kv, d), (d, q), (h, d), (d, h), (v, d) })
            {
                list.Add(new GemmProblem(t, outF, inF, TransB: true));    // forward y = x·Wᵀ
                list.Add(new GemmProblem(t, inF, outF));                  // backward dx = dy·W
                list.Add(new GemmProblem(outF, inF, t, TransA: true));    // backward dW = dyᵀ·x (K = tokens)
            }
            return list;
        }
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            var pieces = part.Split(':');
            var dims = pieces[0].Split('x', '×');
            string layout = pieces.Length == 2 ? pieces[1].ToLowerInvariant() : "nn";
            if (pieces.Length > 2 || layout is not ("nn" or "nt" or "tn" or "tt") || dims.Length != 3
                || !int.TryParse(dims[0], CultureInfo.InvariantCulture, out int m)
                || !int.TryParse(dims[1], CultureInfo.InvariantCulture, out int n) || !int.TryParse(dims[2], CultureInfo.InvariantCulture, out int k))
                throw new ArgumentException($"--shapes: '{part}' is not MxNxK[:nn|nt|tn|tt] (e.g. 2048x8192x512:nt) and '{text}' is not a preset ({string.Join(", ", Tessera.Model.ModelConfig.Presets.Keys)}).");
            list.Add(new GemmProblem(m, n, k, layout[0] == 't', layout[1] == 't'));
        }
        return list;
    }

    static List<int> ParseList(string text, string option)
    {
        var list = new List<int>();
        foreach (var part in text.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries))
        {
            if (!int.TryParse(part, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v))
                throw new ArgumentException($"{option}: '{part}' is not an integer.");
            list.Add(v);
        }
        return list;
    }
}
