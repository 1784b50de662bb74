using System.Globalization;
using System.Text;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Model.Modules;
using Tessera.Tensors;
using Tessera.Text;
using Tessera.Training.Experiments;

namespace Tessera.Training.Labs;

/// <summary>Sizes of the "no forgetting, exactly" experiment (docs/modules.md).</summary>
public sealed record ModulesPlan
{
    /// <summary>The base model's shape (vocabulary set from the corpus).</summary>
    public required ModelConfig Base { get; init; }
    /// <summary>Base pre-training steps on the English corpus.</summary>
    public long BaseSteps { get; init; }
    /// <summary>Steps of every new-domain run (module or full fine-tune: same steps, same tokens).</summary>
    public long ModuleSteps { get; init; }
    /// <summary>Sequences per step.</summary>
    public int BatchSize { get; init; } = 8;
    /// <summary>Tokens per sequence.</summary>
    public int SequenceLength { get; init; } = 128;
    /// <summary>Validation batches per held-out figure.</summary>
    public int EvalBatches { get; init; } = 16;
    /// <summary>Held-out figures along each new-domain run.</summary>
    public int CurvePoints { get; init; } = 6;
    /// <summary>Experts per layer of the experts module.</summary>
    public int ModuleExperts { get; init; } = 2;
    /// <summary>LoRA rank.</summary>
    public int LoraRank { get; init; } = 8;
    /// <summary>Weight of the router losses of the router-off experts module (row e; 0 skips it).</summary>
    public float RouterOffWeight { get; init; } = 1f;
    /// <summary>Learning rate of the base run and the new-domain runs.</summary>
    public float LearningRate { get; init; } = 3e-3f;

    /// <summary>The documented run (tiny-moe shape, byte tokens).</summary>
    public static ModulesPlan Full => new()
    {
        Base = ModelConfig.Preset("tiny-moe") with { ContextLength = 128 },
        BaseSteps = 1500, ModuleSteps = 400,
    };

    /// <summary>A pipeline check in about a minute.</summary>
    public static ModulesPlan Quick => new()
    {
        Base = ModelConfig.Preset("tiny-moe") with { Dim = 32, Heads = 2, KvHeads = 1, HiddenDim = 48, Layers = 2, ContextLength = 64 },
        BaseSteps = 40, ModuleSteps = 20, BatchSize = 4, SequenceLength = 64, EvalBatches = 4, CurvePoints = 2,
    };
}

/// <summary>One row of the forgetting table: held-out bits per byte on both domains.</summary>
public sealed record ForgettingRow(string Model, double EnglishBpb, double CodeBpb, bool BitIdenticalToBase, long TrainableParameters)
{
    /// <summary>Router-off row: share of English (token, layer) decisions that picked "base only" (null for other rows).</summary>
    public double? BaseOnlyEnglish { get; init; }
    /// <summary>Router-off row: the same share on C#.</summary>
    public double? BaseOnlyCode { get; init; }
}

/// <summary>Result of <see cref="ModulesLab.Run"/>.</summary>
public sealed record ModulesResult(string Corpus, string CodeCorpus, IReadOnlyList<ForgettingRow> Rows, IReadOnlyDictionary<string, IReadOnlyList<(long Step, double English, double Code)>> Curves);

/// <summary>
/// "No forgetting, exactly": a base trained on the embedded English corpus, then on C# sources
/// (a) nothing, (b) an experts module routed off, (c) routed on, the same for a LoRA module, and
/// (d) full fine-tuning at the same steps and tokens. Writes results.json, report.md and
/// modules-forgetting.svg into the lab folder; the base checkpoint is cached in OUT/base.
/// </summary>
public static class ModulesLab
{
    /// <summary>Runs the experiment; <paramref name="codeSource"/> is the folder whose *.cs files form the new domain.</summary>
    public static ModulesResult Run(ModulesPlan plan, LabCorpus english, string codeSource, string outDir, Action<string> log, CancellationToken cancel = default)
    {
        Directory.CreateDirectory(outDir);
        var englishData = new TrainData([english.Train], [english.Validation], english.ValidationBytes);
        string codeDir = Path.Combine(outDir, "code-data");
        if (!File.Exists(Path.Combine(codeDir, PreparedData.MetaFile)))
        {
            var docs = CorpusFiles.ChunkIfFew(CorpusFiles.Read(codeSource, null, CorpusFiles.DefaultTextField, ["*.cs"]));
            log($"tokenizing {docs.Count} C# documents from {codeSource} (bytes) → {codeDir}");
            ShardBuilder.Prepare(docs, TokenizerFiles.Load("bytes"), "bytes", new DocumentSplit(), codeDir);
        }
        var prepared = PreparedData.Load(codeDir);
        using var codeTrain = TokenShard.Open(prepared.ShardPath(Split.Train));
        using var codeVal = TokenShard.Open(prepared.ShardPath(Split.Validation));
        var codeData = new TrainData([codeTrain], [codeVal], prepared.Validation.Bytes);
        var config = plan.Base with { VocabSize = Math.Max(english.VocabSize, codeTrain.VocabSize) };
        var options = new TrainOptions
        {
            Steps = plan.BaseSteps, BatchSize = plan.BatchSize, SequenceLength = plan.SequenceLength, LearningRate = plan.LearningRate,
            MinLearningRate = plan.LearningRate / 10, WarmupSteps = Math.Max(1, plan.BaseSteps / 10), EvalEvery = 0, CheckpointEvery = 0,
        }.Validate();

        string baseDir = Path.Combine(outDir, "base");
        var saved = Checkpoint.List(baseDir);
        if (saved.Count == 0 || Checkpoint.LoadState(saved[^1]).Step < plan.BaseSteps)
        {
            log($"training the base ({config.Dim}-wide, {config.Layers} layers, {config.Experts} experts) for {plan.BaseSteps} steps on {english.Description}");
            using var t = saved.Count == 0 ? new Trainer(config, options, englishData, baseDir) : Trainer.Resume(baseDir, englishData);
            t.StepCompleted = s => { if (s.Step % 100 == 0) log($"  base step {s.Step}: loss {s.Loss:F4} ({s.StepSeconds * 1000:F0} ms/step)"); };
            t.Run(cancel);
            cancel.ThrowIfCancellationRequested();   // an interrupted base is kept as a checkpoint, never measured as if finished
        }
        string baseCheckpoint = Checkpoint.Resolve(baseDir);
        var newDomain = options with { Steps = plan.ModuleSteps, WarmupSteps = Math.Max(1, plan.ModuleSteps / 10), Seed = options.Seed + 1 };
        (double En, double Code) Eval(Transformer m) =>
            (ModuleTrainer.HeldOut(m, englishData, plan.BatchSize, plan.SequenceLength, plan.EvalBatches).BitsPerByte,
             ModuleTrainer.HeldOut(m, codeData, plan.BatchSize, plan.SequenceLength, plan.EvalBatches).BitsPerByte);

        var rows = new List<ForgettingRow>();
        var curves = new Dictionary<string, IReadOnlyList<(long, double, double)>>();
        using var baseModel = Checkpoint.LoadModel(baseCheckpoint);
        var (baseEn, baseCode) = Eval(baseModel);
        rows.Add(new ForgettingRow("(a) base", baseEn, baseCode, true, 0));
        log($"(a) base: English {baseEn:F4} bpb, code {baseCode:F4} bpb");
        var reference = Logits(baseModel, englishData, plan);

        // Trains to the module budget, measuring both domains at the curve points; the curve starts at the base.
        List<(long, double, double)> TrainWithCurve(Func<long> step, Action trainStep, Transformer evaluated)
        {
            var curve = new List<(long, double, double)> { (0, baseEn, baseCode) };
            while (step() < newDomain.Steps && !cancel.IsCancellationRequested)
            {
                trainStep();
                if (step() % Math.Max(1, newDomain.Steps / plan.CurvePoints) == 0 || step() == newDomain.Steps)
                {
                    var (e, c) = Eval(evaluated);
                    curve.Add((step(), e, c));
                    log($"  step {step()}: English {e:F4}, code {c:F4} bpb");
                }
            }
            cancel.ThrowIfCancellationRequested();
            return curve;
        }

        foreach (var kind in new[] { ModuleKind.Experts, ModuleKind.Lora })
        {
            string name = kind == ModuleKind.Experts ? "experts" : "lora";
            var spec = new ModuleSpec($"code-{name}", kind, [.. Enumerable.Range(0, config.Layers)], Experts: plan.ModuleExperts, Rank: plan.LoraRank);
            var curve = new List<(long, double, double)>();
            using (var trainer = new ModuleTrainer(baseModel, spec, newDomain, codeData, Path.Combine(outDir, $"module-{name}"), domain: "csharp"))
            {
                log($"training the {name} module ({trainer.Module.Parameters.ElementCount:N0} parameters) for {plan.ModuleSteps} steps on C#");
                curve = TrainWithCurve(() => trainer.Step, () => trainer.TrainStep(), baseModel);
                var (onEn, onCode) = Eval(baseModel);
                baseModel.Modules.RouteOff();
                var (offEn, offCode) = Eval(baseModel);
                bool identical = offEn.Equals(baseEn) && offCode.Equals(baseCode) && Logits(baseModel, englishData, plan).AsSpan().SequenceEqual(reference);
                long count = trainer.Module.Parameters.ElementCount;
                rows.Add(new ForgettingRow($"(b) base + {name} module, routed off", offEn, offCode, identical, count));
                rows.Add(new ForgettingRow($"(c) base + {name} module, on", onEn, onCode, false, count));
                log($"(b) {name} off: English {offEn:F4}, code {offCode:F4} bpb, bit-identical to base: {identical}");
                log($"(c) {name} on: English {onEn:F4}, code {onCode:F4} bpb");
                trainer.Save(new Dictionary<string, double> { ["english_bpb"] = onEn, ["code_bpb"] = onCode, ["base_code_bpb"] = baseCode });
            }
            curves[name] = curve;
        }

        if (plan.RouterOffWeight > 0)
        {
            // (e) The experts module again, its routers also taught "base only" on English batches (docs/modules.md).
            var spec = new ModuleSpec("code-routed", ModuleKind.Experts, [.. Enumerable.Range(0, config.Layers)], Experts: plan.ModuleExperts);
            using var trainer = new ModuleTrainer(baseModel, spec, newDomain, codeData, Path.Combine(outDir, "module-routed"), domain: "csharp",
                routerOff: new RouterOff(englishData, plan.RouterOffWeight));
            log($"training the experts module with router-off on English (weight {plan.RouterOffWeight}) for {plan.ModuleSteps} steps");
            var curve = TrainWithCurve(() => trainer.Step, () => trainer.TrainStep(), baseModel);
            var (onEn, onCode) = Eval(baseModel);
            var share = BaseOnlyShare(baseModel, trainer.Module, englishData, codeData, plan);
            rows.Add(new ForgettingRow("(e) base + experts module, router trained off on English, on", onEn, onCode, false, trainer.Module.Parameters.ElementCount)
                { BaseOnlyEnglish = share.English, BaseOnlyCode = share.Code });
            log($"(e) router-off experts on: English {onEn:F4}, code {onCode:F4} bpb; tokens routed to base only: English {share.English:P1}, C# {share.Code:P1}");
            trainer.Save(new Dictionary<string, double> { ["english_bpb"] = onEn, ["code_bpb"] = onCode, ["base_code_bpb"] = baseCode });
            curves["experts, router-off"] = curve;
        }

        using (var ft = Checkpoint.LoadModel(baseCheckpoint))
        using (var trainer = new Trainer(ft, newDomain, codeData))
        {
            log($"control: full fine-tuning ({ft.Parameters.ElementCount:N0} parameters) for {plan.ModuleSteps} steps on C#");
            var curve = TrainWithCurve(() => trainer.Step, () => trainer.TrainStep(), ft);
            var (en, code) = Eval(ft);
            rows.Add(new ForgettingRow("(d) full fine-tune (control)", en, code, false, ft.Parameters.ElementCount));
            curves["full fine-tune"] = curve;
            log($"(d) full fine-tune: English {en:F4}, code {code:F4} bpb");
        }

        var result = new ModulesResult(english.Description, $"{Path.GetFullPath(codeSource)} *.cs ({prepared.Train.Tokens:N0} train / {prepared.Validation.Tokens:N0} validation byte tokens)", rows, curves);
        Write(result, plan, outDir);
        return result;
    }

    /// <summary>The figure: both domains' held-out bpb along every new-domain run; dashed: the base (= every module routed off).</summary>
    static Figure Plot(ForgettingRow baseRow, IReadOnlyDictionary<string, IReadOnlyList<(long Step, double English, double Code)>> curves)
    {
        var fig = new Figure("No forgetting: held-out bits/byte while training on C#", "steps on the new domain", "held-out bits per byte");
        long last = curves.Values.Max(c => c[^1].Step);
        fig.Add(new PlotSeries("base = module routed off: English", [(0, baseRow.EnglishBpb), (last, baseRow.EnglishBpb)], SeriesStyle.Reference, 0));
        int color = 1;
        foreach (var (name, curve) in curves)
        {
            fig.Add(new PlotSeries($"{name}: English", [.. curve.Select(p => ((double)p.Step, p.English))], SeriesStyle.LineAndMarkers, color));
            fig.Add(new PlotSeries($"{name}: C#", [.. curve.Select(p => ((double)p.Step, p.Code))], SeriesStyle.Markers, color));
            color++;
        }
        return fig;
    }

    /// <summary>Redraws the figure from OUT/results.json (no training).</summary>
    public static void Replot(string outDir)
    {
        using var doc = System.Text.Json.JsonDocument.Parse(File.ReadAllText(Path.Combine(outDir, "results.json")));
        var root = doc.RootElement;
        var row0 = root.GetProperty("rows")[0];
        var baseRow = new ForgettingRow(row0.GetProperty("model").GetString()!, row0.GetProperty("english_bpb").GetDouble(), row0.GetProperty("code_bpb").GetDouble(), true, 0);
        var curves = new Dictionary<string, IReadOnlyList<(long, double, double)>>();
        foreach (var c in root.GetProperty("curves").EnumerateObject())
            curves[c.Name] = [.. c.Value.EnumerateArray().Select(p => (p.GetProperty("step").GetInt64(), p.GetProperty("english").GetDouble(), p.GetProperty("code").GetDouble()))];
        Plot(baseRow, curves).Save(outDir, "modules-forgetting");
    }

    /// <summary>Share of (token, layer) router decisions that picked "base only", over the validation batches of each domain (module on).</summary>
    static (double English, double Code) BaseOnlyShare(Transformer model, ModelModule module, TrainData english, TrainData code, ModulesPlan plan)
    {
        double Share(TrainData data)
        {
            var reader = new BatchReader(data.Validation!, plan.BatchSize, plan.SequenceLength, 0, shuffle: false);
            var ids = new int[plan.BatchSize * plan.SequenceLength]; var tgt = new int[ids.Length];
            long zero = 0, all = 0;
            for (int b = 0; b < plan.EvalBatches; b++)
            {
                reader.Next(ids, tgt);
                using var g = new Graph(recordGradients: false);
                model.Forward(g, ids, plan.BatchSize, plan.SequenceLength);
                foreach (var (_, picks) in module.LastRouting) { foreach (int p in picks) if (p == 0) zero++; all += picks.Length; }
            }
            return all == 0 ? 0 : (double)zero / all;
        }
        return (Share(english), Share(code));
    }

    /// <summary>The logits of the first English validation batch, as raw floats (for the bitwise check).</summary>
    static float[] Logits(Transformer model, TrainData data, ModulesPlan plan)
    {
        var reader = new BatchReader(data.Validation!, 1, plan.SequenceLength, 0, shuffle: false);
        var ids = new int[plan.SequenceLength]; var tgt = new int[ids.Length];
        reader.Next(ids, tgt);
        using var g = new Graph(recordGradients: false);
        return model.Forward(g, ids, 1, plan.SequenceLength).Logits.AsSpan("Logits").ToArray();
    }

    static void Write(ModulesResult r, ModulesPlan plan, string outDir)
    {
        AtomicFile.WriteAllText(Path.Combine(outDir, "results.json"), JsonNaming.SerializeObject(new
        {
            r.Corpus, r.CodeCorpus, plan.BaseSteps, plan.ModuleSteps, plan.BatchSize, plan.SequenceLength, plan.EvalBatches,
            Rows = r.Rows,
            Curves = r.Curves.ToDictionary(kv => kv.Key, kv => kv.Value.Select(p => new { p.Step, p.English, p.Code }).ToArray()),
        }));
        Plot(r.Rows[0], r.Curves).Save(outDir, "modules-forgetting");
        var md = new StringBuilder();
        md.AppendLine("| model | English held-out bpb | C# held-out bpb | bit-identical to base | trainable parameters |");
        md.AppendLine("|---|---|---|---|---|");
        foreach (var row in r.Rows)
            md.AppendLine(CultureInfo.InvariantCulture, $"| {row.Model} | {row.EnglishBpb:F4} | {row.CodeBpb:F4} | {(row.Model.Contains("routed off") || row.Model.StartsWith("(a)") ? (row.BitIdenticalToBase ? "yes" : "NO") : "—")} | {row.TrainableParameters:N0} |");
        foreach (var row in r.Rows)
            if (row.BaseOnlyEnglish is { } en)
                md.AppendLine(CultureInfo.InvariantCulture, $"\n{row.Model}: router decisions to \"base only\": English {en:P1}, C# {row.BaseOnlyCode:P1}.");
        AtomicFile.WriteAllText(Path.Combine(outDir, ExperimentReport.MarkdownFile), md.ToString());
    }
}
