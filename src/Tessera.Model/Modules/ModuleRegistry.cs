using Tessera.Kernels.IO;

namespace Tessera.Model.Modules;

/// <summary>One registry entry as <see cref="ModuleRegistry.List"/> sees it: its manifest, or the error that makes it unusable.</summary>
public sealed record RegistryEntry(string Folder, ModuleManifest? Manifest, string? Error)
{
    /// <summary>True when the entry reads and its weights match the manifest.</summary>
    public bool Usable => Error is null;
}

/// <summary>
/// A folder of modules, one sub-folder per id (module.safetensors + manifest.json). Every write
/// publishes a whole module folder atomically, so a crash leaves at most a staging folder or
/// nothing; entries a crash (or a person) left incomplete are reported one by one and never stop
/// the other modules or the base from loading.
/// </summary>
public sealed class ModuleRegistry(string root)
{
    /// <summary>The registry folder.</summary>
    public string Root { get; } = Path.GetFullPath(root);

    /// <summary>The folder of module <paramref name="id"/>.</summary>
    public string FolderOf(string id) => Path.Combine(Root, id);

    /// <summary>Every entry, sorted by folder name, each verified (hash) or carrying its error; leftover staging folders are listed as errors.</summary>
    public IReadOnlyList<RegistryEntry> List()
    {
        if (!Directory.Exists(Root)) return [];
        var entries = new List<RegistryEntry>();
        foreach (var dir in Directory.GetDirectories(Root).Order(StringComparer.Ordinal))
        {
            string name = Path.GetFileName(dir);
            if (name.StartsWith(AtomicFile.StagingPrefix, StringComparison.Ordinal) || name.StartsWith('.'))
            {
                entries.Add(new RegistryEntry(dir, null, $"{dir}: an interrupted write left this staging folder; it is ignored (remove it)."));
                continue;
            }
            try
            {
                var m = ModuleFile.Verify(dir);
                entries.Add(m.Id == name ? new RegistryEntry(dir, m, null)
                    : new RegistryEntry(dir, m, $"{dir}: the manifest's id '{m.Id}' differs from its folder name '{name}'."));
            }
            catch (Exception e) when (e is InvalidDataException or IOException) { entries.Add(new RegistryEntry(dir, null, e.Message)); }
        }
        return entries;
    }

    /// <summary>Copies the module folder <paramref name="source"/> into the registry after verifying it; an id already present is refused unless <paramref name="replace"/>.</summary>
    public ModuleManifest Add(string source, bool replace = false)
    {
        var m = ModuleFile.Verify(source);
        string target = FolderOf(m.Id);
        if (Directory.Exists(target) && !replace)
            throw new ArgumentException($"Module registry {Root}: a module with id '{m.Id}' is already registered; remove it first or pick another id.");
        AtomicFile.PublishDirectory(target, staging =>
        {
            File.Copy(Path.Combine(source, ModuleFile.WeightsName), Path.Combine(staging, ModuleFile.WeightsName));
            File.Copy(Path.Combine(source, ModuleFile.ManifestName), Path.Combine(staging, ModuleFile.ManifestName));
        });
        return ModuleFile.Verify(target);
    }

    /// <summary>Removes module <paramref name="id"/>; an unknown id is a clear error.</summary>
    public void Remove(string id)
    {
        string dir = FolderOf(id);
        if (!Directory.Exists(dir)) throw new ArgumentException($"Module registry {Root}: no module '{id}'.");
        Directory.Delete(dir, recursive: true);
    }

    /// <summary>Verifies module <paramref name="id"/> (manifest + weights hash); throws naming the problem.</summary>
    public ModuleManifest Verify(string id)
    {
        string dir = FolderOf(id);
        if (!Directory.Exists(dir)) throw new ArgumentException($"Module registry {Root}: no module '{id}'.");
        return ModuleFile.Verify(dir);
    }

    /// <summary>
    /// Attaches the modules <paramref name="ids"/> to <paramref name="baseModel"/> (each a registry id or a
    /// module folder path). Every module is checked (hash, base hash, shapes) before any is attached.
    /// </summary>
    public static void AttachAll(Transformer baseModel, IReadOnlyList<string> ids, string? registry)
    {
        if (ids.Count == 0) return;
        string baseHash = ModuleFile.BaseHash(baseModel);
        var loaded = new List<ModelModule>();
        try
        {
            foreach (var id in ids)
            {
                // A registry id wins over a folder of the same name in the working directory.
                string? registered = registry is not null && Directory.Exists(new ModuleRegistry(registry).FolderOf(id)) ? new ModuleRegistry(registry).FolderOf(id) : null;
                string dir = registered ?? (Directory.Exists(id) ? id
                    : registry is not null ? new ModuleRegistry(registry).FolderOf(id)
                    : throw new ArgumentException($"Module '{id}': not a module folder, and no --registry was given."));
                if (!Directory.Exists(dir)) throw new ArgumentException($"Module '{id}': no such module in registry {registry} (expected folder {dir}).");
                var m = ModuleFile.Load(dir, baseModel, baseHash);
                if (loaded.Exists(x => x.Id == m.Id)) { m.Dispose(); throw new ArgumentException($"Module id '{m.Id}' is named twice; module ids must be unique."); }
                loaded.Add(m);
            }
            foreach (var m in loaded) baseModel.Modules.Attach(m);
        }
        catch
        {
            foreach (var m in loaded) if (!baseModel.Modules.Attached.Contains(m)) m.Dispose();
            throw;
        }
    }
}
