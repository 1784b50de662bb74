using System.Security.Cryptography;
using System.Text.Json;
using System.Text.Json.Nodes;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Tensors;

namespace Tessera.Training;

/// <summary>
/// A checkpoint is a folder <c>step-NNNNNNNN/</c> inside a run folder:
/// <code>
///   model.safetensors       weights under Hugging Face Llama/Mixtral names (F32)
///   config.json             ModelConfig.ToHuggingFaceJson()
///   optimizer.safetensors   AdamW moments, "{param}.exp_avg" / "{param}.exp_avg_sq"
///   trainer_state.json      step, data cursor, RNG, options (see TrainerState)
///   tokenizer/              optional; filled by the caller's hook (the CLI copies its tokenizer here)
///   checkpoint.json         manifest: every file's size and SHA-256, written last
/// </code>
/// Crash safety: <see cref="AtomicFile.PublishDirectory"/> writes everything into a hidden staging
/// folder, the manifest last, and only then renames the folder to its final name (an atomic rename). Older checkpoints are
/// deleted only after a newer one is complete, so a crash at any moment leaves the previous
/// complete checkpoint intact. Loading verifies the manifest, so a truncated or altered file
/// fails with an error that names it.
/// </summary>
public static class Checkpoint
{
    /// <summary>Weights of a checkpoint (safetensors, Llama/Mixtral tensor names).</summary>
    public const string ModelFile = "model.safetensors";
    /// <summary>The model configuration saved beside the weights.</summary>
    public const string ConfigFile = "config.json";
    /// <summary>AdamW moments, saved so training resumes bit-exactly.</summary>
    public const string OptimizerFile = "optimizer.safetensors";
    /// <summary>Step, data cursor, RNG state and options (<see cref="TrainerState"/>).</summary>
    public const string StateFile = "trainer_state.json";
    /// <summary>Lists the files of a complete checkpoint with their sizes and hashes; written last, so its presence marks the checkpoint complete.</summary>
    public const string ManifestFile = "checkpoint.json";
    /// <summary>Subfolder a caller may fill (through the save hook) with tokenizer files.</summary>
    public const string TokenizerFolder = "tokenizer";
    const string ManifestFormat = "tessera-checkpoint-v1";
    const string Prefix = "step-";

    /// <summary>Folder name of the checkpoint after <paramref name="step"/> steps.</summary>
    public static string FolderName(long step) => $"{Prefix}{step:D8}";

    /// <summary>
    /// Writes a complete checkpoint of <paramref name="model"/> (and, when given, the optimizer and
    /// trainer state) as <c>runDirectory/step-NNNNNNNN</c> and returns its path.
    /// <paramref name="extras"/> runs with the staging folder before the manifest is written, so
    /// files it adds (e.g. under <see cref="TokenizerFolder"/>) are covered by the manifest.
    /// </summary>
    public static string Save(string runDirectory, long step, Transformer model, AdamW? optimizer = null, TrainerState? state = null,
        Action<string>? extras = null)
    {
        string final = Path.Combine(runDirectory, FolderName(step));
        // The new checkpoint is complete on disk before one rename publishes it; a same-step
        // folder (a re-run of this step) is set aside first and removed after the swap.
        try
        {
            AtomicFile.PublishDirectory(final, staging =>
            {
                SafetensorsWriter.Write(Path.Combine(staging, ModelFile), WeightTensors(model), new Dictionary<string, string> { ["format"] = "pt" });
                AtomicFile.WriteAllText(Path.Combine(staging, ConfigFile), model.Config.ToHuggingFaceJson());
                if (optimizer is not null)
                    SafetensorsWriter.Write(Path.Combine(staging, OptimizerFile), MomentTensors(optimizer),
                        new Dictionary<string, string> { ["step"] = optimizer.StepCount.ToString(System.Globalization.CultureInfo.InvariantCulture) });
                if (state is not null) AtomicFile.WriteAllText(Path.Combine(staging, StateFile), state.ToJson());
                extras?.Invoke(staging);
                WriteManifest(staging, step);
            });
        }
        catch (IOException e)
        {
            // Typically a full disk. PublishDirectory removed its half-written staging folder (it would
            // only hold the space a retry needs); the published checkpoints were never touched.
            string previous = List(runDirectory) is { Count: > 0 } done ? $"the last good checkpoint {done[^1]} is intact" : "no earlier checkpoint exists";
            throw new IOException($"{runDirectory}: could not write the checkpoint of step {step} ({e.Message.Trim()}); {previous}. Free space and rerun with --resume.", e);
        }
        return final;
    }

    static List<SafetensorsTensor> WeightTensors(Transformer model)
    {
        var list = new List<SafetensorsTensor>();
        foreach (var p in model.Parameters.All) list.Add(SafetensorsTensor.F32(p.Name, ToLongs(p.Shape), p.AsSpan("Checkpoint.Save")));
        return list;
    }

    static List<SafetensorsTensor> MomentTensors(AdamW opt)
    {
        var list = new List<SafetensorsTensor>();
        for (int i = 0; i < opt.Parameters.Count; i++)
        {
            var p = opt.Parameters[i];
            list.Add(SafetensorsTensor.F32(p.Name + ".exp_avg", ToLongs(p.Shape), opt.FirstMoment(i).AsSpan("Checkpoint.Save")));
            list.Add(SafetensorsTensor.F32(p.Name + ".exp_avg_sq", ToLongs(p.Shape), opt.SecondMoment(i).AsSpan("Checkpoint.Save")));
        }
        return list;
    }

    static long[] ToLongs(ReadOnlySpan<int> shape)
    {
        var s = new long[shape.Length];
        for (int i = 0; i < s.Length; i++) s[i] = shape[i];
        return s;
    }

    static void WriteManifest(string folder, long step)
    {
        var files = new JsonArray();
        foreach (var path in Directory.GetFiles(folder, "*", SearchOption.AllDirectories).Order(StringComparer.Ordinal))
        {
            string rel = Path.GetRelativePath(folder, path).Replace('\\', '/');
            if (rel == ManifestFile) continue;
            files.Add(new JsonObject { ["path"] = rel, ["bytes"] = new FileInfo(path).Length, ["sha256"] = Sha256(path) });
        }
        var manifest = new JsonObject { ["format"] = ManifestFormat, ["step"] = step, ["files"] = files };
        AtomicFile.WriteAllText(Path.Combine(folder, ManifestFile), manifest.ToJsonString(JsonNaming.Indented));
    }

    static string Sha256(string path)
    {
        using var fs = File.OpenRead(path);
        return Convert.ToHexStringLower(SHA256.HashData(fs));
    }

    /// <summary>Complete checkpoints (folders with a manifest) in a run folder, oldest first.</summary>
    public static IReadOnlyList<string> List(string runDirectory)
    {
        var found = new List<(long Step, string Path)>();
        if (!Directory.Exists(runDirectory)) return [];
        foreach (var dir in Directory.GetDirectories(runDirectory, Prefix + "*"))
        {
            string name = Path.GetFileName(dir);
            if (long.TryParse(name.AsSpan(Prefix.Length), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long step)
                && File.Exists(Path.Combine(dir, ManifestFile)))
                found.Add((step, dir));
        }
        found.Sort((a, b) => a.Step.CompareTo(b.Step));
        return [.. found.Select(f => f.Path)];
    }

    /// <summary>
    /// A checkpoint folder from <paramref name="path"/>: the folder itself when it holds a manifest,
    /// otherwise the latest complete checkpoint of the run folder. Verifies it (see <see cref="Verify"/>).
    /// </summary>
    public static string Resolve(string path)
    {
        if (!Directory.Exists(path)) throw new DirectoryNotFoundException($"Checkpoint folder not found: {path}");
        string dir = File.Exists(Path.Combine(path, ManifestFile)) ? path
            : List(path) is { Count: > 0 } all ? all[^1]
            : throw new InvalidDataException($"{path}: no complete checkpoint (no {ManifestFile} here and no {Prefix}* folder with one).");
        Verify(dir);
        return dir;
    }

    /// <summary>
    /// Checks every file listed in the manifest against its size and SHA-256; throws an
    /// <see cref="InvalidDataException"/> naming the first bad file (and the previous checkpoint, if any).
    /// </summary>
    public static void Verify(string checkpointDirectory)
    {
        string manifestPath = Path.Combine(checkpointDirectory, ManifestFile);
        if (!File.Exists(manifestPath)) throw new InvalidDataException($"{checkpointDirectory}: incomplete checkpoint ({ManifestFile} is missing).");
        JsonNode? root;
        try { root = JsonNode.Parse(File.ReadAllText(manifestPath)); }
        catch (JsonException e) { throw Corrupt(checkpointDirectory, manifestPath, $"not valid JSON ({e.Message})"); }
        if (root?["format"]?.GetValue<string>() != ManifestFormat || root["files"] is not JsonArray files)
            throw Corrupt(checkpointDirectory, manifestPath, $"not a {ManifestFormat} manifest");
        foreach (var f in files)
        {
            string rel;
            long expected;
            string? sha;
            try
            {
                rel = f?["path"]?.GetValue<string>() ?? throw Corrupt(checkpointDirectory, manifestPath, "a file entry has no path");
                expected = f["bytes"]?.GetValue<long>() ?? -1;
                sha = f["sha256"]?.GetValue<string>();
            }
            catch (Exception e) when (e is InvalidOperationException or FormatException)
            {
                throw Corrupt(checkpointDirectory, manifestPath, $"malformed file entry ({e.Message})");
            }
            string file = Path.Combine(checkpointDirectory, rel);
            if (rel.Contains("..") || Path.IsPathRooted(rel)) throw Corrupt(checkpointDirectory, manifestPath, $"file entry '{rel}' leaves the folder");
            if (!File.Exists(file)) throw Corrupt(checkpointDirectory, file, "missing");
            long actual = new FileInfo(file).Length;
            if (actual != expected) throw Corrupt(checkpointDirectory, file, $"truncated or altered ({actual} bytes, the manifest says {expected})");
            if (Sha256(file) != sha) throw Corrupt(checkpointDirectory, file, "contents do not match the manifest's SHA-256");
        }
    }

    static InvalidDataException Corrupt(string checkpointDirectory, string file, string why)
    {
        string? run = Path.GetDirectoryName(Path.GetFullPath(checkpointDirectory));
        string? previous = run is null ? null : List(run).LastOrDefault(d => Path.GetFullPath(d) != Path.GetFullPath(checkpointDirectory)
            && string.CompareOrdinal(Path.GetFileName(d), Path.GetFileName(checkpointDirectory)) < 0);
        string hint = previous is null ? "" : $"; the previous checkpoint {previous} is untouched — resume from it explicitly";
        return new InvalidDataException($"Corrupt checkpoint: {file}: {why}{hint}.");
    }

    /// <summary>Loads the model of a checkpoint (or of the latest checkpoint of a run folder).</summary>
    public static Transformer LoadModel(string path)
    {
        string dir = Resolve(path);
        return LoadModelVerified(dir);
    }

    internal static Transformer LoadModelVerified(string dir)
    {
        string configPath = Path.Combine(dir, ConfigFile);
        if (!File.Exists(configPath)) throw new InvalidDataException($"Corrupt checkpoint: {configPath}: missing.");
        var config = ModelConfig.FromHuggingFaceJson(File.ReadAllText(configPath), configPath);
        var model = new Transformer(config);
        try
        {
            using var reader = SafetensorsReader.Open(Path.Combine(dir, ModelFile));
            foreach (var p in model.Parameters.All) ReadInto(reader, p.Name, p);
        }
        catch
        {
            model.Dispose();
            throw;
        }
        return model;
    }

    internal static void LoadOptimizer(string dir, AdamW optimizer, long stepCount)
    {
        using var reader = SafetensorsReader.Open(Path.Combine(dir, OptimizerFile));
        for (int i = 0; i < optimizer.Parameters.Count; i++)
        {
            string name = optimizer.Parameters[i].Name;
            ReadInto(reader, name + ".exp_avg", optimizer.FirstMoment(i));
            ReadInto(reader, name + ".exp_avg_sq", optimizer.SecondMoment(i));
        }
        optimizer.StepCount = stepCount;
    }

    internal static TrainerState LoadState(string dir)
    {
        string path = Path.Combine(dir, StateFile);
        if (!File.Exists(path)) throw new InvalidDataException($"{dir}: holds weights only ({StateFile} is missing), so training cannot resume from it.");
        return TrainerState.FromJson(File.ReadAllText(path), path);
    }

    static void ReadInto(SafetensorsReader reader, string name, Tensor target)
    {
        if (!reader.Contains(name)) throw new InvalidDataException($"{reader.Path}: no tensor named '{name}'.");
        var e = reader.Entry(name);
        bool same = e.Shape.Length == target.Rank;
        for (int d = 0; same && d < e.Shape.Length; d++) same = e.Shape[d] == target.Shape[d];
        if (!same) throw new InvalidDataException($"{reader.Path}: tensor '{name}' has shape [{string.Join(", ", e.Shape)}], the model expects {target.ShapeString}.");
        reader.ReadFloat32(e, target.AsSpan("Checkpoint.Load"));
    }

    /// <summary>
    /// Keeps the newest <paramref name="keep"/> complete checkpoints and removes older ones, plus
    /// staging folders left by crashed saves of other processes. Never touches the newest checkpoint.
    /// </summary>
    public static void Prune(string runDirectory, int keep)
    {
        var all = List(runDirectory);
        for (int i = 0; i < all.Count - Math.Max(1, keep); i++) Directory.Delete(all[i], recursive: true);
        string mine = "-" + Environment.ProcessId;
        foreach (var dir in Directory.GetDirectories(runDirectory, AtomicFile.StagingPrefix + "*"))
            if (!dir.EndsWith(mine, StringComparison.Ordinal)) Directory.Delete(dir, recursive: true);
    }
}
