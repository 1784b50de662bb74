using System.CommandLine;
using System.Text.Json;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Model.Modules;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera module list|add|remove|verify|report</c> over a registry folder (one sub-folder per
/// module: module.safetensors + manifest.json). See docs/modules.md.
/// </summary>
public static class ModuleCommand
{
    /// <summary>The registry folder option shared by the subcommands and by eval/generate.</summary>
    public static readonly Option<string> Registry = new("--registry") { Description = "Module registry folder.", DefaultValueFactory = _ => "modules" };

    /// <summary>Modules to attach at load (registry ids or module folders), for eval/generate.</summary>
    public static readonly Option<string[]> Modules = new("--module") { Description = "Attach a module (registry id or module folder) to the base; repeat for several. Refused when built for another base.", AllowMultipleArgumentsPerToken = false };

    /// <summary>Builds the <c>tessera module</c> command.</summary>
    public static Command Create()
    {
        var cmd = new Command("module", "Modules on a frozen base: list, add, remove, verify and report the modules of a registry folder.");
        var json = BenchCommand.JsonOption();

        var list = new Command("list", "Every module of the registry with its kind, base hash, domain and metrics; damaged or incomplete entries are listed with their error.") { Registry, json };
        list.SetAction(p =>
        {
            var entries = new ModuleRegistry(p.GetValue(Registry)!).List();
            if (p.GetValue(json))
                Console.WriteLine(JsonSerializer.Serialize(entries.Select(e => new { folder = e.Folder, ok = e.Usable, error = e.Error, manifest = e.Manifest }), JsonNaming.Line));
            else if (entries.Count == 0) Console.WriteLine($"no modules in {Path.GetFullPath(p.GetValue(Registry)!)}");
            else
                foreach (var e in entries)
                    Console.WriteLine(e.Manifest is { } m && e.Usable
                        ? $"{m.Id,-20} v{m.Version} {m.Kind,-7} layers {string.Join(",", m.Layers)} base {m.BaseHash[..12]}… domain {m.Domain} " +
                          string.Join(" ", m.Metrics.Select(kv => $"{kv.Key}={kv.Value:F4}"))
                        : $"{Path.GetFileName(e.Folder),-20} UNUSABLE: {e.Error}");
            return 0;
        });
        cmd.Subcommands.Add(list);

        var source = new Argument<string>("folder") { Description = "A module folder (e.g. the OUT/module of `tessera train --add-module`)." };
        var replace = new Option<bool>("--replace") { Description = "Replace a registered module with the same id." };
        var add = new Command("add", "Verify a module folder and copy it into the registry (atomically); an existing id is refused unless --replace.") { source, Registry, replace, json };
        add.SetAction(p =>
        {
            var m = new ModuleRegistry(p.GetValue(Registry)!).Add(p.GetValue(source)!, p.GetValue(replace));
            Console.WriteLine(p.GetValue(json) ? JsonSerializer.Serialize(m, JsonNaming.Line) : $"added module '{m.Id}' ({m.Kind}) for base {m.BaseHash[..12]}…");
            return 0;
        });
        cmd.Subcommands.Add(add);

        var id = new Argument<string>("id") { Description = "Module id." };
        var remove = new Command("remove", "Remove a module from the registry.") { id, Registry };
        remove.SetAction(p => { new ModuleRegistry(p.GetValue(Registry)!).Remove(p.GetValue(id)!); Console.WriteLine($"removed module '{p.GetValue(id)}'"); return 0; });
        cmd.Subcommands.Add(remove);

        var baseOpt = new Option<string?>("--base") { Description = "Also check the module attaches to this base (base hash and shapes)." };
        var verify = new Command("verify", "Check a module's weights against the SHA-256 in its manifest (and, with --base, that it fits that base); non-zero exit on any mismatch.") { id, Registry, baseOpt, json };
        verify.SetAction(p =>
        {
            var reg = new ModuleRegistry(p.GetValue(Registry)!);
            var m = reg.Verify(p.GetValue(id)!);
            if (p.GetValue(baseOpt) is { } b)
            {
                var (model, _) = ModelFiles.LoadModel(b);
                using var _m = model;
                ModuleFile.Load(reg.FolderOf(m.Id), model).Dispose();
            }
            Console.WriteLine(p.GetValue(json) ? JsonSerializer.Serialize(new { id = m.Id, ok = true, weights_sha256 = m.WeightsSha256 }, JsonNaming.Line)
                : $"module '{m.Id}': OK (weights sha256 {m.WeightsSha256[..16]}…{(p.GetValue(baseOpt) is null ? "" : ", fits the base")})");
            return 0;
        });
        cmd.Subcommands.Add(verify);
        cmd.Subcommands.Add(ModuleReport.Create());
        return cmd;
    }

    /// <summary>Attaches the modules named on the command line (if any) to <paramref name="model"/>; logs what was attached.</summary>
    public static void AttachFromCommandLine(ParseResult p, Transformer model, Action<string>? log)
    {
        var ids = p.GetValue(Modules) ?? [];
        if (ids.Length == 0) return;
        ModuleRegistry.AttachAll(model, ids, p.GetValue(Registry));
        log?.Invoke($"modules attached: {string.Join(", ", model.Modules.Attached.Select(m => $"{m.Id} ({m.Spec.Kind.ToString().ToLowerInvariant()})"))}");
    }
}
