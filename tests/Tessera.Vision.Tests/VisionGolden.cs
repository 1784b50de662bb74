using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Model.Tests;

namespace Tessera.Vision.Tests;

/// <summary>The fixture of reference/vision_reference.py, loaded as a <see cref="MultimodalModel"/>.</summary>
internal sealed class VisionGolden
{
    public static string Dir => Path.Combine(AppContext.BaseDirectory, "fixtures", "vision");

    public GoldenFixture Fx { get; } = GoldenFixture.Load("vision/golden");

    public VisionConfig Config => new(Fx.ConfigInt("image_size"), Fx.ConfigInt("patch_size"), Fx.ConfigInt("channels"));

    public int Batch => Fx.ConfigInt("batch");

    public int Seq => Fx.ConfigInt("seq");

    /// <summary>The decoder from the HF folder plus the embedder with the fixture's vision weights.</summary>
    public MultimodalModel Load()
    {
        var decoder = HfFolder.Load(Dir);
        var embedder = new PatchEmbedder(Config, decoder.Config.Dim);
        foreach (var name in Fx.Root.GetProperty("vision_parameters").EnumerateArray().Select(e => e.GetString()!))
            embedder.Parameters.Load(name, Fx.Floats("vision/" + name));
        return new MultimodalModel(decoder, embedder);
    }

    /// <summary>Patch rows of every fixture image, through <see cref="PatchGrid"/> (the layout under test).</summary>
    public float[] Patches()
    {
        var images = Fx.Floats("images");
        int s = Config.ImageSize, per = s * s * 3, n = images.Length / per;
        var all = new List<float>();
        for (int i = 0; i < n; i++) all.AddRange(PatchGrid.Patches(images.AsSpan(i * per, per), Config));
        return [.. all];
    }
}
