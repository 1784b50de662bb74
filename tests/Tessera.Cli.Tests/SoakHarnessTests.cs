using Tessera.Cli.Commands;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Server;
using Tessera.Text;
using Xunit;

namespace Tessera.Cli.Tests;

/// <summary>The soak harness behind <c>tessera bench serve</c>, run briefly against a real in-process server.</summary>
public class SoakHarnessTests
{
    [Fact]
    public async Task ShortSoakCountsEveryMalformedRequestAs4xxAndSamplesMemory()
    {
        var tok = TokenizerFiles.Load("bytes");
        var config = new ModelConfig
        {
            VocabSize = tok.VocabSize, Dim = 32, Layers = 2, Heads = 2, KvHeads = 1, HiddenDim = 48, Experts = 2, TopK = 1, ContextLength = 96,
            TiedEmbeddings = false,
        };
        using var model = new Transformer(config, seed: 3);
        await using var server = await TesseraServer.StartAsync(new ServedModel("m", new ReferenceEngine(model), tok), new ServerOptions { Port = 0 });

        const int malformed = 60;
        var r = await ServeBenchCommand.RunAsync(server.Address, null, clients: 2, TimeSpan.FromSeconds(8), malformed, maxTokens: 4, log: null, CancellationToken.None);

        Assert.True(r.Ok, $"soak failed: {r.StreamErrors} stream errors, {r.Malformed5xx} 5xx, {r.MalformedOther} other; {string.Join("; ", r.FirstErrors)}");
        Assert.True(r.Streams > 0, "no stream completed");
        // The quota counts malformed requests only: a mutation that stayed valid (answered 200) is sent
        // beside them and does not use up a slot, so exactly the quota is answered 4xx.
        Assert.Equal(malformed, r.Malformed4xx);
        Assert.Equal(malformed + r.MalformedValid200, r.Malformed);
        Assert.True(r.RssStartMb > 0 && r.RssEndLevelMb > 0 && r.NativeEndLevelMb > 0, "memory was not sampled from /metrics");
        Assert.InRange(r.RssMaxMb, r.RssStartMb, double.MaxValue);
    }
}
