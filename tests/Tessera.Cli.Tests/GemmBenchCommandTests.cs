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

    /// <summary><c>--paired --ab</c>: our GEMM against itself with a timing-only switch off; the same bits
    /// come out either way (max relative difference exactly 0), the pairs are counted and the ratio is
    /// the median of per-pair ratios, inside its interquartile range.</summary>
    [Fact]
    public void AbPairsOurGemmWithTheSwitchOff()
    {
        string dir = CliProcess.TempDir();
        try
        {
            var r = CliProcess.Run(dir, "bench", "gemm", "--sizes", "300", "--threads", "2", "--paired", "--ab", "even-chunks",
                "--seconds", "0.01", "--peak-gflops", "100", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            Assert.StartsWith("ours with even-chunks off", doc.RootElement.GetProperty("open_blas").GetString());
            var row = Assert.Single(doc.RootElement.GetProperty("rows").EnumerateArray().ToList());
            Assert.Equal(0.0, row.GetProperty("max_relative_difference").GetDouble());
            Assert.True(row.GetProperty("ours_repetitions").GetInt32() >= 5, row.ToString());
            double ratio = row.GetProperty("ratio").GetDouble(), low = row.GetProperty("ratio_low").GetDouble(), high = row.GetProperty("ratio_high").GetDouble();
            Assert.True(low <= ratio && ratio <= high && low > 0, row.ToString());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary><c>--paired --burst N</c>: each side of a pair is an untimed call and N timed ones, the row says N, both
    /// sides get a % of the probe, and (our GEMM on both sides, --ab) the bits and the ratio's quartiles hold as with
    /// single calls.</summary>
    [Fact]
    public void BurstTimesSeveralCallsPerSide()
    {
        string dir = CliProcess.TempDir();
        try
        {
            var r = CliProcess.Run(dir, "bench", "gemm", "--sizes", "200", "--threads", "1", "--paired", "--ab", "pack-a-once", "--burst", "3",
                "--seconds", "0.01", "--peak-gflops", "100", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            // The micro-kernel alone is measured in every wall-clock run, against a probe of the same moment.
            Assert.True(doc.RootElement.GetProperty("micro_kernel_gflops_per_thread").GetDouble() > 0, r.Stdout);
            Assert.True(doc.RootElement.GetProperty("micro_kernel_percent_of_peak").GetDouble() > 0, r.Stdout);
            var row = Assert.Single(doc.RootElement.GetProperty("rows").EnumerateArray().ToList());
            Assert.Equal(3, row.GetProperty("burst").GetInt32());
            Assert.Equal(0.0, row.GetProperty("max_relative_difference").GetDouble());
            double ours = row.GetProperty("percent_of_peak").GetDouble(), other = row.GetProperty("open_blas_percent_of_peak").GetDouble();
            Assert.True(ours > 0 && other > 0, row.ToString());
            double ratio = row.GetProperty("ratio").GetDouble(), low = row.GetProperty("ratio_low").GetDouble(), high = row.GetProperty("ratio_high").GetDouble();
            Assert.True(low <= ratio && ratio <= high && low > 0, row.ToString());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>On an AVX-512 CPU the comparison runs OpenBLAS's AVX-512 kernels even where its own CPU
    /// detection does not know the model (0.3.21 picks "Prescott" SSE3 kernels on a model 207 Xeon): the
    /// bench reloads it with <c>OPENBLAS_CORETYPE</c> and names the kernels and the override. Skipped where
    /// OpenBLAS is absent, the CPU lacks AVX-512, or the caller chose a core type itself.</summary>
    [Fact]
    public void OpenBlasRunsItsAvx512KernelsOnAnAvx512Cpu()
    {
        if (!System.Runtime.Intrinsics.X86.Avx512F.IsSupported || Environment.GetEnvironmentVariable("OPENBLAS_CORETYPE") is not null) return;
        string dir = CliProcess.TempDir();
        try
        {
            var r = CliProcess.Run(dir, "bench", "gemm", "--sizes", "64", "--threads", "1", "--seconds", "0.01", "--peak-gflops", "100", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            var root = doc.RootElement;
            if (root.GetProperty("open_blas_core").ValueKind == JsonValueKind.Null) return;   // OpenBLAS not installed
            string core = root.GetProperty("open_blas_core").GetString()!, description = root.GetProperty("open_blas").GetString()!;
            Assert.True(root.GetProperty("open_blas_avx512").GetBoolean(), description);
            Assert.Contains(core, new[] { "SkylakeX", "Cooperlake", "SapphireRapids" });
            Assert.Contains($"kernels: {core}", description);
            if (root.GetProperty("open_blas_forced_from").GetString() is { } detected)
                Assert.Contains($"forced with OPENBLAS_CORETYPE={core}: its own CPU detection chose {detected}", description);
            // The override reached OpenBLAS, so its results still agree with ours.
            var row = Assert.Single(root.GetProperty("rows").EnumerateArray().ToList());
            Assert.True(row.GetProperty("max_relative_difference").GetDouble() < 1e-5, row.ToString());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
