using System.Diagnostics;

namespace Tessera.Retrieval.Tests;

public class EmbeddingsSampleTests
{
    [Fact]
    public async Task The_embeddings_sample_runs_and_every_text_retrieves_itself()
    {
        string dll = Path.Combine(AppContext.BaseDirectory, "Embeddings.dll");
        Assert.True(File.Exists(dll), $"sample not built next to the tests: {dll}");
        var psi = new ProcessStartInfo("dotnet", [dll]) { RedirectStandardOutput = true, RedirectStandardError = true };
        using var proc = Process.Start(psi)!;
        var stdout = proc.StandardOutput.ReadToEndAsync();
        var stderr = proc.StandardError.ReadToEndAsync();
        using var timeout = new CancellationTokenSource(TimeSpan.FromSeconds(120));
        await proc.WaitForExitAsync(timeout.Token);
        Assert.True(proc.ExitCode == 0, $"exit {proc.ExitCode}: {await stderr}");
        string output = await stdout;
        Assert.Contains("dimensions: 48, embeddings: 4", output);
        Assert.Contains("self-retrieval: 4/4", output);
        for (int i = 0; i < 4; i++) Assert.Contains($"query {i} -> text-{i} (cosine 1.0000)", output);
        Assert.Contains("search by text:", output);
    }
}
