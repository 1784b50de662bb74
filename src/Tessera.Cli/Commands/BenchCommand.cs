using System.CommandLine;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera bench &lt;what&gt;</c>: prints figures and same-run comparisons.</summary>
public static class BenchCommand
{
    /// <summary>Builds the <c>tessera bench</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var bench = new Command("bench", "Benchmarks that print figures and the same-run comparison they are judged by.");
        bench.Subcommands.Add(GemmBenchCommand.Create());
        bench.Subcommands.Add(AttentionBenchCommand.Create());
        bench.Subcommands.Add(TokenizerBenchCommand.Create());
        bench.Subcommands.Add(DecodeBenchCommand.Create());
        bench.Subcommands.Add(PrefixCacheBenchCommand.Create());
        bench.Subcommands.Add(TrainBenchCommand.Create());
        bench.Subcommands.Add(NGramBenchCommand.Create());
        bench.Subcommands.Add(DistributedBenchCommand.Create());
        bench.Subcommands.Add(ServeBenchCommand.Create());
        bench.Subcommands.Add(AnnBenchCommand.Create());
        bench.Subcommands.Add(RetrievalBenchCommand.Create());
        bench.Subcommands.Add(CascadeBenchCommand.Create());
        return bench;
    }

    /// <summary>The shared <c>--json</c> flag.</summary>
    public static Option<bool> JsonOption() => new("--json") { Description = "Print the final result as JSON instead of a table." };
}
