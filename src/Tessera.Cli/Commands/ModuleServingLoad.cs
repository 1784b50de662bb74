using System.CommandLine;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Model.Modules;
using Tessera.Server;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera serve --model BASE --modules REGISTRY</c> (every module of the registry built for this
/// base) or <c>--module ID</c> (repeatable, all or nothing): attaches the modules at load and serves
/// them through one engine (<see cref="ModuleServing"/>, docs/modules.md).
/// </summary>
static class ModuleServingLoad
{
    /// <summary>A registry folder whose every usable module built for this base is attached.</summary>
    public static readonly Option<string?> All = new("--modules") { Description = "Module registry folder: attach every module in it built for this base (the others are listed and refused per request); requests pick modules by model name BASE+ID or the tessera_module field (docs/modules.md)." };

    /// <summary>What a request that names no module gets.</summary>
    public static readonly Option<string> Default = new("--modules-default") { Description = "With modules: what a request naming none gets: none (the base alone, bit for bit) or all (every module on, routers decide per token).", DefaultValueFactory = _ => "none" };

    /// <summary>True when the command line asks for modules.</summary>
    public static bool Wanted(ParseResult p) => p.GetValue(All) is not null || (p.GetValue(ModuleCommand.Modules) ?? []).Length > 0;

    /// <summary>
    /// Attaches the modules to <paramref name="model"/> and returns the engine's view of them, plus the
    /// ids of registry modules that were not attached with the reason. <c>--module</c> ids must all
    /// load (any failure is the command's error); <c>--modules</c> attaches what fits and reports the rest.
    /// </summary>
    public static (InferenceModules Modules, Dictionary<string, string> Refused) Attach(ParseResult p, Transformer? model, Action<string> log)
    {
        if (model is null) throw new ArgumentException("--module/--modules need an fp32 base (a Tessera run or checkpoint folder, or a Hugging Face folder), not a .gguf file.");
        if (p.GetValue(Default) is not ("none" or "all")) throw new ArgumentException($"--modules-default must be none or all, got '{p.GetValue(Default)}'.");
        var refused = new Dictionary<string, string>(StringComparer.Ordinal);
        var named = p.GetValue(ModuleCommand.Modules) ?? [];
        if (named.Length > 0) ModuleRegistry.AttachAll(model, named, p.GetValue(ModuleCommand.Registry));
        if (p.GetValue(All) is { } folder)
        {
            if (!Directory.Exists(folder)) throw new DirectoryNotFoundException($"--modules: registry folder {Path.GetFullPath(folder)} does not exist.");
            string baseHash = ModuleFile.BaseHash(model);
            foreach (var entry in new ModuleRegistry(folder).List())
            {
                string id = entry.Manifest?.Id ?? Path.GetFileName(entry.Folder);
                if (!entry.Usable) { refused[id] = entry.Error!; log($"module {id}: not attached: {entry.Error}"); continue; }
                if (model.Modules.Attached.Any(m => m.Id == id)) continue;   // also named with --module
                try { model.Modules.Attach(ModuleFile.Load(entry.Folder, model, baseHash)); }
                catch (Exception e) when (e is ArgumentException or InvalidDataException or IOException)
                {
                    refused[id] = e.Message;
                    log($"module {id}: not attached: {e.Message}");
                }
            }
        }
        if (model.Modules.Attached.Count == 0)
            throw new ArgumentException($"no module could be attached to this base ({(refused.Count == 0 ? "the registry is empty" : string.Join("; ", refused.Select(kv => $"{kv.Key}: {kv.Value}")))}).");
        log($"modules attached: {string.Join(", ", model.Modules.Attached.Select(m => $"{m.Id} ({m.Spec.Kind.ToString().ToLowerInvariant()})"))}");
        return (new InferenceModules(model), refused);
    }
}
