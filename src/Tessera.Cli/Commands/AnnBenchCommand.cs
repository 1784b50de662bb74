using System.CommandLine;
using Tessera.Kernels.IO;
using Tessera.Retrieval.Dense;

namespace Tessera.Cli.Commands;

/// <summary><c>tessera bench ann</c>: USearch HNSW recall@k and throughput against exact search, same run, same vectors.</summary>
public static class AnnBenchCommand
{
    /// <summary>The command.</summary>
    public static Command Create()
    {
        var vectors = new Option<int>("--vectors") { Description = "Vectors to index.", DefaultValueFactory = _ => 200_000 };
        var dims = new Option<int>("--dims") { Description = "Vector width.", DefaultValueFactory = _ => 64 };
        var queries = new Option<int>("--queries") { Description = "Queries timed on each side.", DefaultValueFactory = _ => 500 };
        var k = new Option<int>("--k") { Description = "Neighbours per query.", DefaultValueFactory = _ => 10 };
        var ef = new Option<int>("--ef") { Description = "HNSW search beam width (expansion_search).", DefaultValueFactory = _ => 64 };
        var json = BenchCommand.JsonOption();
        var cmd = new Command("ann", "HNSW (USearch) recall@k against exact search, and both throughputs, on clustered unit vectors.") { vectors, dims, queries, k, ef, json };
        cmd.SetAction(p =>
        {
            bool quiet = p.GetValue(json);
            var r = AnnBenchmark.Run(p.GetValue(vectors), p.GetValue(dims), p.GetValue(queries), p.GetValue(k), expansionSearch: p.GetValue(ef),
                progress: quiet ? null : s => Console.Error.WriteLine(s));
            if (quiet) Console.WriteLine(JsonNaming.SerializeObject(new { r.Vectors, r.Dimensions, r.Queries, r.K, recall_at_k = r.RecallAtK, r.ExactQps, r.HnswQps, r.Speedup, r.BuildSeconds, r.ExpansionSearch }));
            else Console.WriteLine($"ann: {r.Vectors:N0} vectors × {r.Dimensions} dims, {r.Queries} queries, k={r.K}, ef={r.ExpansionSearch}: " +
                                   $"HNSW recall@{r.K} {r.RecallAtK:F3} at {r.HnswQps:N0} q/s vs exact {r.ExactQps:N0} q/s = {r.Speedup:F1}× (build {r.BuildSeconds:F1} s, one thread each)");
            return 0;
        });
        return cmd;
    }
}
