using Tessera.Server.Tests;
using Tessera.Text;
using Tessera.Vision;

namespace Tessera.Cli.Tests;

/// <summary>
/// <c>tessera generate --image</c> on a multimodal checkpoint trained in the test: the generated ids
/// are the training forward's greedy ids for BOS, the images' patch rows and the prompt (prefix-LM
/// over all of it); bad images and models that take none are one clear error line.
/// </summary>
public class GenerateImageTests
{
    [Fact]
    public void GenerateWithImagesIsTheTrainingForwardsGreedyContinuation()
    {
        string dir = CliProcess.TempDir();
        try
        {
            var (model, _) = ColourModel.Train();
            using (model) MultimodalCheckpoint.Save(model, Path.Combine(dir, "model"));
            var rng = new Random(1);
            var red = ColourModel.Image(0, 20, 20, rng);
            var blue = ColourModel.Image(2, 16, 16, rng);
            File.WriteAllBytes(Path.Combine(dir, "red.png"), ColourModel.Png(red));
            File.WriteAllBytes(Path.Combine(dir, "blue.png"), ColourModel.Png(blue));
            using var loaded = MultimodalCheckpoint.Load(Path.Combine(dir, "model"));
            var tok = ColourModel.Tok;
            int bos = tok.SpecialTokens.Id(ChatTemplate.Bos), eos = tok.SpecialTokens.Id(ChatTemplate.Eos);

            foreach (var images in new[] { new[] { (red, "red.png") }, [(red, "red.png"), (blue, "blue.png")] })
            {
                var args = new List<string> { "generate", "--model", "model", "--tokenizer", "bytes", "--prompt", ColourModel.Question, "--temperature", "0", "--max-tokens", "6", "--json" };
                foreach (var (_, file) in images) { args.Add("--image"); args.Add(file); }
                var json = CliProcess.Run(dir, [.. args]).Json();

                var rows = new List<int> { bos };
                for (int i = 0; i < images.Length * ColourModel.Vision.TokensPerImage; i++) rows.Add(ImageSpans.VectorId);
                rows.AddRange(tok.Encode(ColourModel.Question));
                var patches = images.SelectMany(x => PatchGrid.Patches(x.Item1, ColourModel.Vision)).ToArray();
                var (expected, _) = ColourModel.Greedy(loaded, [.. rows], patches, eos, maxTokens: 6);
                var got = json.GetProperty("ids").EnumerateArray().Select(e => e.GetInt32()).ToList();
                if (got.Count > 0 && got[^1] == eos) got.RemoveAt(got.Count - 1);
                Assert.Equal(expected, got);
                Assert.Equal(rows.Count, json.GetProperty("prompt_tokens").GetInt32());
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void BadImagesAndTextOnlyModelsAreOneErrorLine()
    {
        string dir = CliProcess.TempDir();
        try
        {
            var (model, _) = ColourModel.Train();
            string mm = Path.Combine(dir, "model");
            using (model)
            {
                MultimodalCheckpoint.Save(model, mm);
                // The same folder without vision_config: a text-only model.
                string text = Path.Combine(dir, "text");
                MultimodalCheckpoint.Save(model, text);
                var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(text, "config.json")))!.AsObject();
                config.Remove("vision_config");
                File.WriteAllText(Path.Combine(text, "config.json"), config.ToJsonString());
                var png = ColourModel.Png(ColourModel.Image(1, 16, 16, new Random(2)));
                File.WriteAllBytes(Path.Combine(dir, "ok.png"), png);
                File.WriteAllBytes(Path.Combine(dir, "cut.png"), png[..(png.Length / 2)]);
                File.WriteAllBytes(Path.Combine(dir, "pic.gif"), [.. "GIF89a"u8, .. new byte[40]]);
                string[] Gen(string m, params string[] images) => ["generate", "--model", m, "--tokenizer", "bytes", "--prompt", "x", .. images.SelectMany(i => new[] { "--image", Path.Combine(dir, i) })];
                CliProcess.AssertOneErrorLine(Gen(mm, "cut.png"), "corrupt or truncated");
                CliProcess.AssertOneErrorLine(Gen(mm, "pic.gif"), "unsupported image format");
                CliProcess.AssertOneErrorLine(Gen(mm, "missing.png"), "no such file");
                CliProcess.AssertOneErrorLine(Gen(mm, [.. Enumerable.Repeat("ok.png", 16)]), "16 images");
                CliProcess.AssertOneErrorLine(Gen(text, "ok.png"), "not a multimodal model");
            }
        }
        finally { Directory.Delete(dir, recursive: true); }
    }
}
