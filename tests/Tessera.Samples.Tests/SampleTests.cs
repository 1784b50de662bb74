using System.Net.Http.Json;
using System.Text.Json;
using Tessera.Inference;
using Tessera.Server;
using Tessera.Text;

namespace Tessera.Samples.Tests;

/// <summary>Each sample runs as a user runs it and prints exactly the engine's greedy reply.</summary>
public sealed class SampleTests(SampleModelFixture fixture) : IClassFixture<SampleModelFixture>
{
    const string Prompt = "What is a tessera?";
    const int MaxTokens = 24;

    [Fact]
    public async Task ChatInProcessStreamsTheEnginesGreedyReply()
    {
        string expected = await fixture.Model.GreedyReply(Prompt, MaxTokens);
        Assert.NotEqual("", expected);   // a reply that ends at once would make the comparison vacuous
        var r = Samples.Run("ChatInProcess", fixture.Model.Path, Prompt, MaxTokens.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Equal(expected + "\n", r.Stdout);
        Assert.Contains("finish: ", r.Stderr);
    }

    [Fact]
    public async Task SemanticKernelWithInProcessServerGivesTheEnginesGreedyReply()
    {
        string expected = await fixture.Model.GreedyReply(Prompt, MaxTokens);
        var r = Samples.Run("SemanticKernel", fixture.Model.Path, Prompt, MaxTokens.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Equal(expected + "\n", r.Stdout);
    }

    [Fact]
    public async Task SemanticKernelAgainstARunningServerGivesTheServersGreedyReply()
    {
        // The server as `tessera serve` runs it, on a free loopback port.
        using var engine = new BatchingEngine(GgufWeights.Load(fixture.Model.Path));
        var served = new ServedModel("tiny-moe", engine, GgufVocabulary.Load(fixture.Model.Path).Tokenizer);
        await using var server = await TesseraServer.StartAsync(served, new ServerOptions { Port = 0 });
        using var http = new HttpClient { BaseAddress = server.Address, Timeout = TimeSpan.FromMinutes(2) };
        var response = await http.PostAsJsonAsync("v1/chat/completions", new
        {
            model = "tiny-moe", temperature = 0, max_tokens = MaxTokens, messages = new[] { new { role = "user", content = Prompt } },
        });
        response.EnsureSuccessStatusCode();
        using var body = JsonDocument.Parse(await response.Content.ReadAsStringAsync());
        string serverReply = body.RootElement.GetProperty("choices")[0].GetProperty("message").GetProperty("content").GetString()!;
        Assert.Equal(await fixture.Model.GreedyReply(Prompt, MaxTokens), serverReply);

        var r = Samples.Run("SemanticKernel", "--endpoint", new Uri(server.Address, "v1").ToString(), Prompt, MaxTokens.ToString(System.Globalization.CultureInfo.InvariantCulture));
        Assert.True(r.ExitCode == 0, $"exit {r.ExitCode}: {r.Stderr}");
        Assert.Equal(serverReply + "\n", r.Stdout);
        Assert.Contains("model tiny-moe", r.Stderr);
    }

    [Fact]
    public void SamplesRefuseAMissingModelWithUsage()
    {
        foreach (var name in new[] { "ChatInProcess", "SemanticKernel" })
        {
            var r = Samples.Run(name);
            Assert.Equal(1, r.ExitCode);
            Assert.StartsWith("usage: " + name, r.Stderr);
        }
    }
}

/// <summary>One model for all sample tests (making it trains a tokenizer and writes a GGUF file).</summary>
public sealed class SampleModelFixture : IDisposable
{
    /// <summary>The shared model.</summary>
    public SampleModel Model { get; } = new();

    /// <summary>Deletes the model.</summary>
    public void Dispose() => Model.Dispose();
}
