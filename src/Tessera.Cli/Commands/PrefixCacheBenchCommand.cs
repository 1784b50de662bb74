using System.CommandLine;
using System.Text.Json;
using Spectre.Console;
using Tessera.Bench;
using Tessera.Kernels.IO;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera bench prefix-cache</c>: time to first token with a shared system prompt, with and without the prefix cache, in one run.</summary>
public static class PrefixCacheBenchCommand
{
    /// <summary>The command.</summary>
    public static Command Create()
    {
        var requests = new Option<int>("--requests") { Description = "Requests sent to each engine, one at a time.", DefaultValueFactory = _ => 100 };
        var system = new Option<int>("--system-tokens") { Description = "Tokens of the shared system prompt.", DefaultValueFactory = _ => 1000 };
        var budget = new Option<int>("--budget-mb") { Description = "Prefix cache budget in MB.", DefaultValueFactory = _ => 32 };
        var json = new Option<bool>("--json") { Description = "Print the result as JSON." };
        var cmd = new Command("prefix-cache", "Prefix cache: time to first token with a shared system prompt, cached vs plain (same run), replies compared, cache memory vs budget.")
            { requests, system, budget, json };
        cmd.SetAction(p =>
        {
            bool asJson = p.GetValue(json);
            if (p.GetValue(requests) < 1 || p.GetValue(system) < 16 || p.GetValue(system) > PrefixCacheBench.ModelConfig.ContextLength - 40 || p.GetValue(budget) < 1)
                throw new ArgumentException($"--requests must be ≥ 1, --system-tokens in [16, {PrefixCacheBench.ModelConfig.ContextLength - 40}], --budget-mb ≥ 1.");
            Action<string>? progress = asJson ? null : line => AnsiConsole.MarkupLine($"[grey]{Markup.Escape(line)}[/]");
            var r = PrefixCacheBench.Run(p.GetValue(requests), p.GetValue(system), (long)p.GetValue(budget) << 20, progress);
            if (asJson) { Console.WriteLine(JsonSerializer.Serialize(r, JsonNaming.Indented)); return 0; }
            AnsiConsole.MarkupLine($"{r.Requests} requests, {r.SystemTokens}-token shared system prompt, random {PrefixCacheBench.ModelConfig.Dim}-wide {PrefixCacheBench.ModelConfig.Layers}-layer model, greedy 8 tokens each");
            AnsiConsole.MarkupLine($"time to first token: plain {r.PlainTtftMs:F1} ms (median {r.PlainMedianMs:F1}), cached {r.CachedTtftMs:F1} ms (median {r.CachedMedianMs:F1}) → [bold]{r.Speedup:F1}×[/]");
            AnsiConsole.MarkupLine($"same replies with and without the cache: [bold]{r.SameTokens}[/]; {r.RestoredTokens:N0} prompt positions copied instead of computed");
            AnsiConsole.MarkupLine($"cache memory: peak {r.PeakCacheBytes / 1e6:F1} MB of a {r.BudgetBytes / 1e6:F1} MB budget ({(r.PeakCacheBytes <= r.BudgetBytes ? "under" : "[red]OVER[/]")})");
            return 0;
        });
        return cmd;
    }
}
