using Tessera.Text;
using Tessera.Vision;

namespace Tessera.Server.Tests;

/// <summary>A video model (frame embedding of N rows) takes at most N images per chat request; more is a 400 before any decoding.</summary>
public class VideoChatImagesTests(VisionFixture f) : IClassFixture<VisionFixture>
{
    [Fact]
    public void MoreImagesThanAVideoModelsFramesAreA400()
    {
        using var embedder = new PatchEmbedder(ColourModel.Vision with { Frames = 2 }, f.Model.Decoder.Config.Dim, seed: 1);
        var served = new ServedModel("video", f.Engine, ColourModel.Tok) { Vision = new ServedVision(embedder, ColourModel.Tok) };
        var message = new ChatMessage("user", ColourModel.Question);
        var png = ColourModel.Png(ColourModel.Image(0, 16, 16, new Random(1)));
        var s = ColourModel.Tok.SpecialTokens;   // Tessera's chat format: BOS, the user marker, the text, end, the assistant marker
        var ids = new List<int> { s.Id(ChatTemplate.Bos), s.Id("<|user|>") };
        ids.AddRange(ColourModel.Tok.Encode(ColourModel.Question));
        ids.AddRange([s.Id(ChatTemplate.End), s.Id("<|assistant|>")]);
        List<ChatImage> Images(int n) => [.. Enumerable.Range(0, n).Select(i => new ChatImage(message, png, $"messages[0].content[{i}]"))];

        var ex = Assert.Throws<ApiException>(() => ChatImages.Build(served, ids, [message], Images(3)));
        Assert.Equal(400, ex.Status);
        Assert.Equal("too_many_images", ex.Code);
        Assert.Contains("at most 2 frames", ex.Message);
        // Two frames are accepted and embedded as one clip.
        var (rows, vectors, _) = ChatImages.Build(served, ids, [message], Images(2));
        Assert.Equal(2 * ColourModel.Vision.TokensPerImage * embedder.Dim, vectors.Length);
        Assert.Equal(2 * ColourModel.Vision.TokensPerImage, rows.Count(r => r == ImageSpans.VectorId));
    }
}
