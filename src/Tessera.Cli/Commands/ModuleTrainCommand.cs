using System.CommandLine;
using System.Globalization;
using System.Text.Json;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Model.Modules;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera train --base … --freeze-base --add-module ID</c>: trains one module on a frozen base
/// (see <see cref="ModuleTrainer"/>); the module folder lands in OUT/module, ready for <c>tessera module add</c>.
/// </summary>
public static class ModuleTrainCommand
{
    /// <summary>The base model (run folder or checkpoint) the module attaches to.</summary>
    public static readonly Option<string?> Base = new("--base") { Description = "Module training: the base (run folder or checkpoint) to attach a module to; needs --freeze-base and --add-module." };
    /// <summary>Freezes the base (required with --base: only the module trains).</summary>
    public static readonly Option<bool> FreezeBase = new("--freeze-base") { Description = "Module training: the base gets no gradient and no optimizer state; its weights stay bit for bit." };
    /// <summary>Id of the new module.</summary>
    public static readonly Option<string?> AddModule = new("--add-module") { Description = "Module training: id of the new module (a name without '/', '.' or spaces)." };
    /// <summary>experts or lora.</summary>
    public static readonly Option<string> Kind = new("--module-kind") { Description = "Module training: experts (new FFN experts + router entries) or lora (low-rank adapters).", DefaultValueFactory = _ => "experts" };
    /// <summary>Layers (comma-separated; default all).</summary>
    public static readonly Option<string?> Layers = new("--module-layers") { Description = "Module training: comma-separated layer indices (default: every layer)." };
    /// <summary>Experts per layer.</summary>
    public static readonly Option<int> Experts = new("--module-experts") { Description = "Module training: new experts per layer (experts kind).", DefaultValueFactory = _ => 2 };
    /// <summary>LoRA rank.</summary>
    public static readonly Option<int> Rank = new("--lora-rank") { Description = "Module training: LoRA rank (lora kind).", DefaultValueFactory = _ => 8 };
    /// <summary>LoRA projections.</summary>
    public static readonly Option<string?> Projections = new("--lora-projections") { Description = "Module training: comma-separated projections (default q_proj,v_proj,o_proj and a dense base's gate/up/down_proj)." };
    /// <summary>Domain name recorded in the manifest.</summary>
    public static readonly Option<string?> Domain = new("--domain") { Description = "Module training: domain name recorded in the manifest (default: the data folder's name)." };

    /// <summary>Base-domain data for router-off training.</summary>
    public static readonly Option<string?> RouterOffData = new("--router-off-data") { Description = "Module training (experts): a prepared folder of the base's own domain; each step the routers are also taught to send its tokens to 'base only' (docs/modules.md)." };

    /// <summary>Weight of the router-off losses.</summary>
    public static readonly Option<float> RouterOffWeight = new("--router-off-weight") { Description = "Module training: weight of the router-off losses (with --router-off-data).", DefaultValueFactory = _ => 1f };

    /// <summary>Every module-training option (added to <c>tessera train</c>).</summary>
    public static IEnumerable<Option> All => [Base, FreezeBase, AddModule, Kind, Layers, Experts, Rank, Projections, Domain, RouterOffData, RouterOffWeight];

    /// <summary>True when the command line asks for module training.</summary>
    public static bool Requested(ParseResult p) => p.GetValue(Base) is not null || p.GetValue(AddModule) is not null;

    /// <summary>Runs module training; returns the exit code.</summary>
    public static int Run(ParseResult p, TrainOptions options, string data, string outDir, bool resume, bool json, CancellationToken cancel)
    {
        string basePath = p.GetValue(Base) ?? throw new ArgumentException("--add-module needs --base (the run folder or checkpoint to attach the module to).");
        string id = p.GetValue(AddModule) ?? throw new ArgumentException("--base needs --add-module <id> (the module to train).");
        if (!p.GetValue(FreezeBase)) throw new ArgumentException("--base trains a module on a frozen base: add --freeze-base (full fine-tuning of a base is not this command).");
        if (!File.Exists(Path.Combine(data, PreparedData.MetaFile)))
            throw new ArgumentException($"--data {data}: module training needs a prepared folder (meta.json) tokenized with the base's tokenizer (tessera data prepare --tokenizer <base>/tokenizer).");
        var kind = p.GetValue(Kind) switch
        {
            "experts" => ModuleKind.Experts, "lora" => ModuleKind.Lora,
            var k => throw new ArgumentException($"--module-kind '{k}': expected experts or lora."),
        };
        var (model, resolved) = ModelFiles.LoadModel(basePath);
        using var _ = model;
        int[] layers = p.GetValue(Layers) is { } l ? ParseInts(l, "--module-layers") : [.. Enumerable.Range(0, model.Config.Layers)];
        var spec = new ModuleSpec(id, kind, layers, p.GetValue(Experts), 0, p.GetValue(Rank), 2f * p.GetValue(Rank),
            p.GetValue(Projections)?.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries));
        var prepared = PreparedData.Load(data);
        using var train = RunSetup.Open(prepared, Split.Train);
        using var val = RunSetup.Open(prepared, Split.Validation);
        var trainData = new TrainData([train], [val], prepared.Validation.Bytes);
        string dataHash = ModuleFile.FileSha256(prepared.ShardPath(Split.Train));
        string? offDir = p.GetValue(RouterOffData);
        if (offDir is not null && !File.Exists(Path.Combine(offDir, PreparedData.MetaFile)))
            throw new ArgumentException($"--router-off-data {offDir}: needs a prepared folder (meta.json) of the base's domain, tokenized with the base's tokenizer.");
        var offPrepared = offDir is null ? null : PreparedData.Load(offDir);
        using var offTrain = offPrepared is null ? null : RunSetup.Open(offPrepared, Split.Train);
        var routerOff = offTrain is null ? null : new RouterOff(new TrainData([offTrain]), p.GetValue(RouterOffWeight));
        using var trainer = new ModuleTrainer(model, spec, options, trainData, outDir, resume, p.GetValue(Domain) ?? Path.GetFileName(Path.GetFullPath(data).TrimEnd('/')), dataHash, routerOff);
        if (!json)
            Console.WriteLine($"module '{id}' ({p.GetValue(Kind)}, layers {string.Join(",", layers)}, {trainer.Module.Parameters.ElementCount:N0} parameters) on frozen base {resolved} " +
                              $"({model.Parameters.ElementCount:N0} parameters) | {options.Steps} steps × {options.TokensPerStep:N0} tokens" + (trainer.Step > 0 ? $" | resuming at step {trainer.Step}" : ""));
        long every = Math.Max(1, options.Steps / 20);
        trainer.StepCompleted = r => { if (!json && (r.Step % every == 0 || r.Step == r.Steps)) Console.WriteLine($"step {r.Step}/{r.Steps} loss {r.Loss:F4} lr {r.LearningRate:G3} ({r.Seconds * 1000:F0} ms)"); };
        var (baseLoss, baseBpb) = WithRouting(model, null, () => ModuleTrainer.HeldOut(model, trainData, options.BatchSize, options.SequenceLength, options.EvalBatches));
        string? dir = trainer.Run(cancel);
        var (loss, bpb) = ModuleTrainer.HeldOut(model, trainData, options.BatchSize, options.SequenceLength, options.EvalBatches);
        var metrics = new Dictionary<string, double> { ["val_loss"] = loss, ["val_bpb"] = bpb, ["base_val_bpb"] = baseBpb };
        dir = trainer.Save(metrics);
        if (json) Console.WriteLine(JsonSerializer.Serialize(new { module = id, folder = Path.GetFullPath(dir), steps = trainer.Step, val_bpb = bpb, base_val_bpb = baseBpb }, JsonNaming.Line));
        else Console.WriteLine($"held-out {bpb:F4} bits/byte on {Path.GetFileName(data)} (base alone {baseBpb:F4}) | module → {dir}");
        return 0;
    }

    /// <summary>Runs <paramref name="f"/> with every module routed off (ids null) and restores the routing after.</summary>
    static T WithRouting<T>(Transformer model, string[]? ids, Func<T> f)
    {
        if (model.Modules.Attached.Count == 0) return f();
        model.Modules.RouteOff();
        try { return f(); }
        finally { model.Modules.Route(ids); }
    }

    /// <summary>Comma-separated integers, each checked.</summary>
    public static int[] ParseInts(string text, string option)
        => [.. text.Split(',', StringSplitOptions.TrimEntries | StringSplitOptions.RemoveEmptyEntries)
            .Select(s => int.TryParse(s, NumberStyles.Integer, CultureInfo.InvariantCulture, out int v) ? v : throw new ArgumentException($"{option}: '{s}' is not an integer."))];
}
