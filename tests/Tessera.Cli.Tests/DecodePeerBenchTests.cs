using System.Text.Json;
using Tessera.Bench;

namespace Tessera.Cli.Tests;

/// <summary>
/// <c>bench decode --peer llama.cpp</c> on the default random model, one type, one short round: both engines report a
/// rate, and each row carries the memory roofline it is read against (the higher of two bandwidth readings, over the bytes
/// a token reads, which can be no more than the file). Skipped with a message when the llama.cpp peer is absent.
/// </summary>
[Collection(CliCollection.Name)]
public class DecodePeerBenchTests
{
    [Fact]
    public void PeerRowsCarryTheirRoofline()
    {
        if (PeerDecodeBench.LlamaCppFolder() is null)
        {
            Console.WriteLine("llama.cpp peer not installed (bench/peers/install-llama-cpp.sh): bench decode --peer check skipped.");
            return;
        }
        string dir = CliProcess.TempDir();
        try
        {
            var r = CliProcess.Run(dir, "bench", "decode", "--peer", "llama.cpp", "--types", "q8_0", "--decode-tokens", "8", "--rounds", "1", "--sequences", "1", "--json");
            Assert.True(r.ExitCode == 0, r.Stderr);
            using var doc = JsonDocument.Parse(r.Stdout);
            var row = Assert.Single(doc.RootElement.GetProperty("rows").EnumerateArray().ToList());
            Assert.Equal("Q8_0", row.GetProperty("type").GetString());
            Assert.True(row.GetProperty("tessera_tok_s").GetDouble() > 0 && row.GetProperty("llama_cpp_tok_s").GetDouble() > 0, row.ToString());
            double bandwidth = row.GetProperty("bandwidth_gbps").GetDouble(), roofline = row.GetProperty("roofline_tok_s").GetDouble();
            double fileBytes = row.GetProperty("file_mb").GetDouble() * 1e6;
            Assert.True(bandwidth > 0, row.ToString());
            // Bytes per token are the file's tensors less the untied embedding table: never more than the file, and more
            // than half of it for this model (its embedding table is a small part of its parameters).
            Assert.InRange(roofline, bandwidth * 1e9 / fileBytes, 2 * bandwidth * 1e9 / fileBytes);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
