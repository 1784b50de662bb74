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
        var json = BenchCommand.JsonOption();

        var cmd = new Command("gemm", "fp32 GEMM GFLOP/s, ours vs OpenBLAS cblas_sgemm, with ratio and % of peak.")
        {
            sizes, threads, peak, seconds, json,
        };
        cmd.SetAction(parse =>
        {
            bool asJson = parse.GetValue(json);
            var options = new GemmBenchOptions(ParseList(parse.GetValue(sizes)!, "--sizes"), ParseList(parse.GetValue(threads)!, "--threads"),
                parse.GetValue(peak), parse.GetValue(seconds));
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
        AnsiConsole.MarkupLine(report.OpenBlas is { } o ? $"OpenBLAS: {Markup.Escape(o)}" : $"[yellow]{Markup.Escape(OpenBlas.NotFoundMessage)}[/]");
        AnsiConsole.MarkupLine($"peak: {Markup.Escape(report.PeakSource)}; % of peak = ours / (peak per thread × threads)");
        var table = new Table().AddColumns("M=N=K", "threads", "ours", "best", "OpenBLAS", "best", "ours/OpenBLAS", "% of peak", "max rel diff");
        foreach (var r in report.Rows)
            table.AddRow(
                r.Size.ToString(CultureInfo.InvariantCulture),
                r.Threads.ToString(CultureInfo.InvariantCulture),
                $"{r.OursMedianGflops:F1}",
                $"{r.OursBestGflops:F1}",
                r.OpenBlasMedianGflops is { } om ? $"{om:F1}" : "—",
                r.OpenBlasBestGflops is { } ob ? $"{ob:F1}" : "—",
                r.Ratio is { } ratio ? $"{ratio:F2}×" : "—",
                $"{r.PercentOfPeak:F0}%",
                r.MaxRelativeDifference is { } d ? d.ToString("0.0E+0", CultureInfo.InvariantCulture) : "—");
        AnsiConsole.Write(table);
        AnsiConsole.MarkupLine("[grey]GFLOP/s = 2·M·N·K / median time (best: fastest repetition); C = A·B row-major; ratio and % of peak use medians.[/]");
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
