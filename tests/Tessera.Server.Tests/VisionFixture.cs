using StbImageWriteSharp;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Tensors;
using Tessera.Text;
using Tessera.Vision;

namespace Tessera.Server.Tests;

/// <summary>
/// The <see cref="ColourModel"/> trained in the fixture, saved with <see cref="MultimodalCheckpoint"/>,
/// loaded back and served on a live server over the batching engine.
/// </summary>
public sealed class VisionFixture : IAsyncLifetime
{
    public const string ModelId = "tessera-vision-test";

    public string Dir { get; } = Path.Combine(Path.GetTempPath(), "tessera-vision-" + Guid.NewGuid().ToString("N"));
    public MultimodalModel Model { get; private set; } = null!;
    public BatchingEngine Engine { get; private set; } = null!;
    public ServedModel Served { get; private set; } = null!;
    public TesseraServer Server { get; private set; } = null!;
    public HttpClient Http { get; } = new() { Timeout = TimeSpan.FromSeconds(60) };
    public double FinalLoss { get; private set; }

    public Uri ApiBase => new(Server.Address, "v1/");

    public async Task InitializeAsync()
    {
        var (trained, loss) = ColourModel.Train();
        FinalLoss = loss;
        using (trained) MultimodalCheckpoint.Save(trained, Dir);
        Model = MultimodalCheckpoint.Load(Dir);
        Engine = new BatchingEngine(Model.Decoder);
        Served = new ServedModel(ModelId, Engine, ColourModel.Tok) { Vision = new ServedVision(Model.Embedder, ColourModel.Tok) };
        Server = await TesseraServer.StartAsync(Served, new ServerOptions { Port = 0 });
    }

    /// <summary>The chat reply by the training forward (see <see cref="ColourModel.Greedy"/>).</summary>
    public (string Text, List<(double Best, double Second)> Logprobs) GreedyWithLogprobs(RgbImage image)
    {
        var (ids, lp) = ColourModel.Greedy(Model, ColourModel.PromptRows(), PatchGrid.Patches(image, ColourModel.Vision), ColourModel.Tok.SpecialTokens.Id(ChatTemplate.End));
        return (ColourModel.Text(ids), lp);
    }

    public string GreedyReply(RgbImage image) => GreedyWithLogprobs(image).Text;

    public async Task DisposeAsync()
    {
        Http.Dispose();
        await Server.DisposeAsync();
        Engine.Dispose();
        Model.Dispose();
        try { Directory.Delete(Dir, recursive: true); } catch (IOException) { }
    }
}
