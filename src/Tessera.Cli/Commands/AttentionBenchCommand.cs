using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Tessera.Bench;
using Tessera.Kernels.IO;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera bench attention</c>: flash attention fwd/bwd against our naive GEMM+softmax attention
/// and PyTorch CPU in the same run, with ratios and scratch memory.
/// </summary>
public static class AttentionBenchCommand
{
    /// <summary>Builds the <c>tessera bench attention</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var batch = new Option<int>("--batch") { Description = "Batch size B.", DefaultValueFactory = _ => 8 };
        var heads = new Option<int>("--heads") { Description = "Query heads Hq.", DefaultValueFactory = _ => 8 };
        var kvHeads = new Option<int>("--kv-heads") { Description = "Key/value heads (default: --heads; fewer = grouped-query)." };
        var seq = new Option<int>("--seq") { Description = "Sequence length T.", DefaultValueFactory = _ => 512 };
        var dim = new Option<int>("--dim") { Description = "Head dimension D.", DefaultValueFactory = _ => 64 };
        var threads = new Option<int>("--threads") { Description = "Threads for ours and for torch.set_num_threads.", DefaultValueFactory = _ => Environment.ProcessorCount };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("attention", "Causal flash attention fwd/bwd vs naive (T×T) attention and PyTorch CPU.")
        {
            batch, heads, kvHeads, seq, dim, threads, json,
        };
        cmd.SetAction(parse =>
        {
            int h = parse.GetValue(heads);
            int kv = parse.GetValue(kvHeads);
            var opt = new AttentionBenchOptions(parse.GetValue(batch), h, kv == 0 ? h : kv, parse.GetValue(seq), parse.GetValue(dim), parse.GetValue(threads));
            bool asJson = parse.GetValue(json);
            var result = AttentionBench.Run(opt, stage => Console.Error.WriteLine($"timing {stage} ..."));
            if (asJson) Console.WriteLine(JsonSerializer.Serialize(ToJson(result), JsonNaming.Line));
            else Print(result);
            return 0;
        });
        return cmd;
    }

    static void Print(AttentionBenchResult r)
    {
        var o = r.Options;
        AnsiConsole.MarkupLine($"causal attention  B={o.Batch} Hq={o.Heads} Hkv={o.KvHeads} T={o.Seq} D={o.Dim}  threads={o.Threads}");
        var table = new Table().AddColumns("implementation", "fwd ms", "bwd ms", "fwd+bwd ms", "fwd GFLOP/s", "bwd GFLOP/s");
        void Row(string name, double f, double b, double fb) => table.AddRow(name, $"{f:F2}", $"{b:F2}", $"{fb:F2}",
            $"{o.FwdFlops / f / 1e6:F1}", $"{o.BwdFlops / b / 1e6:F1}");
        Row("tessera flash", r.Flash.FwdMs, r.Flash.BwdMs, r.Flash.FwdBwdMs);
        Row("tessera naive (GEMM+softmax)", r.Naive.FwdMs, r.Naive.BwdMs, r.Naive.FwdBwdMs);
        if (r.Torch.Naive is { } tn) Row($"torch {r.Torch.Version} naive", tn.FwdMs, tn.BwdMs, tn.FwdBwdMs);
        if (r.Torch.Sdpa is { } ts) Row($"torch {r.Torch.Version} sdpa", ts.FwdMs, ts.BwdMs, ts.FwdBwdMs);
        AnsiConsole.Write(table);

        Ratio("naive / flash", r.Naive.FwdMs / r.Flash.FwdMs, r.Naive.BwdMs / r.Flash.BwdMs, r.Naive.FwdBwdMs / r.Flash.FwdBwdMs);
        if (r.Torch.Naive is { } n) Ratio("torch naive / flash", n.FwdMs / r.Flash.FwdMs, n.BwdMs / r.Flash.BwdMs, n.FwdBwdMs / r.Flash.FwdBwdMs);
        if (r.Torch.Sdpa is { } s) Ratio("torch sdpa / flash", s.FwdMs / r.Flash.FwdMs, s.BwdMs / r.Flash.BwdMs, s.FwdBwdMs / r.Flash.FwdBwdMs);
        if (r.Torch.Note is { } note) AnsiConsole.WriteLine(note);
        AnsiConsole.WriteLine("GFLOP/s count useful causal work: fwd 4·B·Hq·T(T+1)/2·D, bwd 2.5× fwd (all implementations alike).");

        AnsiConsole.MarkupLine($"scratch: flash fwd {Mib(r.FlashForwardScratchBytes)}, flash bwd {Mib(r.FlashBackwardScratchBytes)}; " +
            $"naive T×T buffers {Mib(r.NaiveScratchBytes)} ({(double)r.NaiveScratchBytes / Math.Max(r.FlashForwardScratchBytes, r.FlashBackwardScratchBytes):F0}× flash)");
        AnsiConsole.MarkupLine($"flash vs naive: max |Δo| = {r.MaxAbsDiffO:E2}, max |Δdq| = {r.MaxAbsDiffDq:E2}");
    }

    static void Ratio(string what, double f, double b, double fb)
        => AnsiConsole.MarkupLine($"{what}: fwd {f:F2}×  bwd {b:F2}×  fwd+bwd {fb:F2}×  (> 1: flash is faster)");

    static string Mib(long bytes) => $"{bytes / (1024.0 * 1024.0):F2} MiB";

    static object ToJson(AttentionBenchResult r) => new
    {
        shape = new { batch = r.Options.Batch, heads = r.Options.Heads, kv_heads = r.Options.KvHeads, seq = r.Options.Seq, dim = r.Options.Dim },
        threads = r.Options.Threads,
        flash = Times(r.Flash.FwdMs, r.Flash.BwdMs, r.Flash.FwdBwdMs),
        naive = Times(r.Naive.FwdMs, r.Naive.BwdMs, r.Naive.FwdBwdMs),
        torch = new
        {
            version = r.Torch.Version,
            naive = r.Torch.Naive is { } n ? Times(n.FwdMs, n.BwdMs, n.FwdBwdMs) : null,
            sdpa = r.Torch.Sdpa is { } s ? Times(s.FwdMs, s.BwdMs, s.FwdBwdMs) : null,
            note = r.Torch.Note,
        },
        ratios = new
        {
            naive_over_flash = r.Naive.FwdBwdMs / r.Flash.FwdBwdMs,
            torch_naive_over_flash = r.Torch.Naive is { } tn ? tn.FwdBwdMs / r.Flash.FwdBwdMs : (double?)null,
            torch_sdpa_over_flash = r.Torch.Sdpa is { } ts ? ts.FwdBwdMs / r.Flash.FwdBwdMs : (double?)null,
        },
        scratch_bytes = new { flash_fwd = r.FlashForwardScratchBytes, flash_bwd = r.FlashBackwardScratchBytes, naive = r.NaiveScratchBytes },
        max_abs_diff = new { o = r.MaxAbsDiffO, dq = r.MaxAbsDiffDq },
    };

    static object Times(double f, double b, double fb) => new { fwd_ms = f, bwd_ms = b, fwdbwd_ms = fb };
}
