using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Model.Modules;
using Tessera.Tensors;

namespace Tessera.Training.Tests;

public class ModuleRegistryTests
{
    static readonly ModelConfig Config = new ModelConfig
    {
        VocabSize = 32, Dim = 16, Layers = 2, Heads = 2, KvHeads = 1, HiddenDim = 24, ContextLength = 16,
    }.Validate();

    static string SaveModule(Transformer model, string dir, string id, ModuleKind kind = ModuleKind.Lora, int[]? layers = null)
    {
        using var m = new ModelModule(new ModuleSpec(id, kind, layers ?? [0, 1], Rank: 4), model.Config, 3);
        new Rng(8).FillNormal(m.Parameters.All[^1].AsSpan(), 0f, 0.1f);
        ModuleFile.Save(dir, m, ModuleFile.BaseHash(model), domain: "test");
        return dir;
    }

    static float[] Logits(Transformer m)
    {
        int[] ids = [1, 2, 3, 4, 5, 6, 7, 8];
        using var g = new Graph(recordGradients: false);
        return m.Forward(g, ids, 1, ids.Length).Logits.ToArray();
    }

    [Fact]
    public void ModuleRoundTripsThroughTheRegistryAndComposesAtLoad()
    {
        using var dir = new TempDir();
        using var model = new Transformer(Config, seed: 1);
        var reg = new ModuleRegistry(dir.File("registry"));
        reg.Add(SaveModule(model, dir.File("a"), "a"));
        reg.Add(SaveModule(model, dir.File("b"), "b", ModuleKind.Experts));
        Assert.Equal(["a", "b"], reg.List().Select(e => e.Manifest!.Id));
        var baseLogits = Logits(model);
        ModuleRegistry.AttachAll(model, ["a", "b"], reg.Root);
        Assert.Equal(2, model.Modules.Attached.Count);
        Assert.False(Logits(model).AsSpan().SequenceEqual(baseLogits));
        model.Modules.RouteOff();
        Assert.True(Logits(model).AsSpan().SequenceEqual(baseLogits));
        Assert.Contains("already registered", Assert.Throws<ArgumentException>(() => reg.Add(dir.File("a"))).Message);
        reg.Remove("a");
        Assert.Equal(["b"], reg.List().Select(e => e.Manifest!.Id));
    }

    [Fact]
    public void AModuleBuiltForAnotherBaseIsRefusedNamingBothHashes()
    {
        using var dir = new TempDir();
        using var other = new Transformer(Config, seed: 2);
        using var model = new Transformer(Config, seed: 1);
        SaveModule(other, dir.File("m"), "m");
        var e = Assert.Throws<InvalidDataException>(() => ModuleRegistry.AttachAll(model, [dir.File("m")], null));
        Assert.Contains("was built for base", e.Message);
        Assert.Contains(ModuleFile.BaseHash(model)[..12], e.Message);
        Assert.Empty(model.Modules.Attached);
    }

    [Fact]
    public void TamperedWeightsFailVerify()
    {
        using var dir = new TempDir();
        using var model = new Transformer(Config, seed: 1);
        var reg = new ModuleRegistry(dir.File("registry"));
        reg.Add(SaveModule(model, dir.File("m"), "m"));
        reg.Verify("m");
        string weights = Path.Combine(reg.FolderOf("m"), ModuleFile.WeightsName);
        var bytes = File.ReadAllBytes(weights);
        bytes[^3] ^= 0x10;
        File.WriteAllBytes(weights, bytes);
        var e = Assert.Throws<InvalidDataException>(() => reg.Verify("m"));
        Assert.Contains("was modified or damaged", e.Message);
        Assert.Throws<InvalidDataException>(() => ModuleRegistry.AttachAll(model, ["m"], reg.Root));
    }

    [Fact]
    public void ACrashPartialRegistryNamesTheBrokenEntriesAndTheRestStaysUsable()
    {
        using var dir = new TempDir();
        using var model = new Transformer(Config, seed: 1);
        var reg = new ModuleRegistry(dir.File("registry"));
        reg.Add(SaveModule(model, dir.File("good"), "good"));
        reg.Add(SaveModule(model, dir.File("half"), "half"));
        File.Delete(Path.Combine(reg.FolderOf("half"), ModuleFile.WeightsName));           // a manifest without weights
        Directory.CreateDirectory(Path.Combine(reg.Root, AtomicFile.StagingPrefix + "x"));  // an interrupted publish
        File.WriteAllText(Path.Combine(reg.Root, AtomicFile.StagingPrefix + "x", "module.safetensors.tmp"), "partial");
        var entries = reg.List();
        Assert.Equal(3, entries.Count);
        Assert.Contains(entries, e => e.Usable && e.Manifest!.Id == "good");
        Assert.Contains(entries, e => !e.Usable && e.Error!.Contains("module.safetensors is missing"));
        Assert.Contains(entries, e => !e.Usable && e.Error!.Contains("interrupted write"));
        var baseLogits = Logits(model);
        Assert.Throws<InvalidDataException>(() => ModuleRegistry.AttachAll(model, ["good", "half"], reg.Root));
        Assert.Empty(model.Modules.Attached);                                               // all or nothing
        Assert.True(Logits(model).AsSpan().SequenceEqual(baseLogits));                      // the base is untouched
        ModuleRegistry.AttachAll(model, ["good"], reg.Root);
        Assert.Single(model.Modules.Attached);
    }

    [Fact]
    public void ShapesThatDoNotFitAndConflictingIdsAreClearErrors()
    {
        using var dir = new TempDir();
        using var deep = new Transformer(Config with { Layers = 3 }, seed: 1);
        using var model = new Transformer(Config, seed: 1);
        SaveModule(deep, dir.File("deep"), "deep", layers: [2]);
        // Same base hash claimed, different base: edit the manifest as a hand-made module would.
        var manifest = ModuleFile.ReadManifest(dir.File("deep")) with { BaseHash = ModuleFile.BaseHash(model) };
        AtomicFile.WriteAllText(Path.Combine(dir.File("deep"), ModuleFile.ManifestName), JsonNaming.Serialize(manifest));
        var e = Assert.Throws<InvalidDataException>(() => ModuleRegistry.AttachAll(model, [dir.File("deep")], null));
        Assert.Contains("does not fit this base", e.Message);
        Assert.Contains("layer 2 does not exist", e.Message);
        SaveModule(model, dir.File("x1"), "x");
        SaveModule(model, dir.File("x2"), "x");
        Assert.Contains("named twice", Assert.Throws<ArgumentException>(() => ModuleRegistry.AttachAll(model, [dir.File("x1"), dir.File("x2")], null)).Message);
        Assert.Empty(model.Modules.Attached);
    }
}
