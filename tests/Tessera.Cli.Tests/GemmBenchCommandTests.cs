using System.Text.Json;

namespace Tessera.Cli.Tests;

/// <summary><c>bench gemm --shapes</c> with layouts: each problem is timed as written (op(A)·op(B)), and
/// where OpenBLAS is installed both libraries get the same transposed inputs (their results agree).</summary>
[Collection(CliCollection.Name)]
public class GemmBenchCommandTests
{
    [Fact]
    public void ShapesCarryTheirLayoutToBothLibraries()
    {
        string dir = CliProcess.TempDir();
        try
        {
            var r = CliProcess.Run(dir, "bench", "gemm", "--sizes", "16", "--shapes", "30x20x70:tn,30x20x70:nt,30x20x70:tt,30x20x70",
                "--threads", "1", "--seconds", "0.01", "--peak-gflops", "100", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            var rows = doc.RootElement.GetProperty("rows").EnumerateArray().ToList();
            Assert.Equal(["16³", "30×20×70 Aᵀ·B", "30×20×70 A·Bᵀ", "30×20×70 Aᵀ·Bᵀ", "30×20×70"], rows.Select(x => x.GetProperty("shape").GetString()));
            foreach (var row in rows)
            {
                Assert.True(row.GetProperty("ours_median_gflops").GetDouble() > 0);
                // Same inputs, same layout: fp32 sums of 70 products agree to a few ulps of the largest entry.
                if (row.GetProperty("max_relative_difference").ValueKind == JsonValueKind.Number)
                    Assert.True(row.GetProperty("max_relative_difference").GetDouble() < 1e-5, row.ToString());
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
