using System.Text;
using System.Text.Json;
using Tessera.Kernels;
using Tessera.Kernels.IO;
using Tessera.Text;

namespace Tessera.Data;

/// <summary>Per-split totals written to <c>meta.json</c> (bytes are what bits-per-byte divides by).</summary>
public sealed record SplitStats(int Documents, long Tokens, long Bytes);

/// <summary>
/// What <see cref="ShardBuilder.Prepare"/> wrote. <see cref="Tokenizer"/> is as recorded in
/// meta.json: <c>bytes</c>, a path relative to the data folder (the copy in
/// <see cref="TokenizerFolder"/>), or an absolute path (a GGUF vocabulary, which is not copied);
/// <see cref="TokenizerPath"/> resolves it, so the folder can be moved and used from anywhere.
/// </summary>
public sealed record PreparedData(string Directory, string Tokenizer, int VocabSize, int BosId,
    SplitStats Train, SplitStats Validation, SplitStats Test)
{
    /// <summary>Name of the file inside a prepared folder that records the tokenizer, vocabulary size, BOS id and per-split statistics.</summary>
    public const string MetaFile = "meta.json";
    /// <summary>Subfolder of a prepared folder that holds a copy of the tokenizer its shards were encoded with.</summary>
    public const string TokenizerFolder = "tokenizer";

    /// <summary>
    /// The tokenizer to load (<see cref="TokenizerFiles.Load"/>): <c>bytes</c>, or the recorded path
    /// resolved against the data folder. meta.json files written before the tokenizer was kept in
    /// the folder named it relative to the working directory of <c>data prepare</c>; that is tried
    /// second, so they still load from there.
    /// </summary>
    /// <exception cref="FileNotFoundException">Neither place holds it; the message names meta.json and both paths.</exception>
    public string TokenizerPath()
    {
        if (Tokenizer == "bytes") return Tokenizer;
        string inFolder = Path.GetFullPath(Path.Combine(Directory, Tokenizer));
        if (File.Exists(inFolder) || System.IO.Directory.Exists(inFolder)) return inFolder;
        string fromWorkingDirectory = Path.GetFullPath(Tokenizer);
        if (!Path.IsPathRooted(Tokenizer) && (File.Exists(fromWorkingDirectory) || System.IO.Directory.Exists(fromWorkingDirectory))) return fromWorkingDirectory;
        throw new FileNotFoundException(
            $"{Path.Combine(Directory, MetaFile)}: tokenizer '{Tokenizer}' not found (looked for {inFolder}" +
            (Path.IsPathRooted(Tokenizer) ? "" : $" and {fromWorkingDirectory}") + "); pass --tokenizer or prepare the data again.", inFolder);
    }

    /// <summary>The shard file of a split.</summary>
    public string ShardPath(Split split) => Path.Combine(Directory, ShardBuilder.FileName(split));

    /// <summary>Stats of a split.</summary>
    public SplitStats Stats(Split split) => split switch { Split.Train => Train, Split.Validation => Validation, _ => Test };

    /// <summary>Name of the file inside a prepared folder that lists every split's document keys, in shard order.</summary>
    public const string KeysFile = "keys.json";

    /// <summary>
    /// The keys of <paramref name="split"/>'s documents in shard order (a file's relative path, a JSONL
    /// record's id, <c>path#n</c> for a message of an mbox), or null for a folder prepared before
    /// <see cref="KeysFile"/> was written or one whose file does not match its shard.
    /// </summary>
    public IReadOnlyList<string>? Keys(Split split) => AllKeys().GetValueOrDefault(split);

    /// <summary>
    /// Every split's keys from one read of <see cref="KeysFile"/>: a split is missing when the folder has
    /// no such file, or when its list does not match its shard (see <see cref="Keys"/>).
    /// </summary>
    public IReadOnlyDictionary<Split, IReadOnlyList<string>> AllKeys()
    {
        var found = new Dictionary<Split, IReadOnlyList<string>>();
        string path = Path.Combine(Directory, KeysFile);
        if (!File.Exists(path)) return found;
        Dictionary<string, string[]>? all;
        try { all = JsonNaming.Deserialize<Dictionary<string, string[]>>(File.ReadAllText(path)); }
        catch (JsonException) { return found; }
        foreach (var split in new[] { Split.Train, Split.Validation, Split.Test })
            if (all is not null && all.TryGetValue(ShardBuilder.FileName(split), out var keys) && keys.Length == Stats(split).Documents) found[split] = keys;
        return found;
    }

    /// <summary>Reads <c>meta.json</c> from a prepared folder, with a clear error when it is missing or malformed.</summary>
    public static PreparedData Load(string directory)
    {
        var path = Path.Combine(directory, MetaFile);
        if (!File.Exists(path)) throw new FileNotFoundException($"{directory} is not a prepared data folder (no {MetaFile}); run `tessera data prepare` first.", path);
        try
        {
            var d = JsonNaming.Deserialize<PreparedData>(File.ReadAllText(path)) ?? throw new JsonException("null");
            return d with { Directory = directory };
        }
        catch (JsonException e)
        {
            throw new InvalidDataException($"{path}: malformed ({e.Message}).");
        }
    }
}

/// <summary>
/// Corpus → token shards: assigns every document to train/validation/test by key, encodes in
/// parallel (the output order is the input order, so shards are identical run to run), and
/// writes <c>train.bin</c>, <c>val.bin</c>, <c>test.bin</c> and <c>meta.json</c>. Each document
/// is preceded by BOS so packed windows see document boundaries.
/// </summary>
public static class ShardBuilder
{
    /// <summary>The shard file name of a split inside a prepared folder: <c>train.bin</c>, <c>val.bin</c> or <c>test.bin</c>.</summary>
    public static string FileName(Split split) => split switch { Split.Train => "train.bin", Split.Validation => "val.bin", _ => "test.bin" };

    /// <summary>
    /// Encodes and writes the three splits, each document assigned by <paramref name="split"/> (a
    /// hash of its key); <paramref name="progress"/> gets (documents encoded, total).
    /// <paramref name="tokenizerSource"/> is what <paramref name="tokenizer"/> was loaded from (a
    /// directory, a file or <c>bytes</c>); it is copied into the folder (see <see cref="KeepTokenizer"/>).
    /// The folder is published whole (see <see cref="PrepareSplits"/>).
    /// </summary>
    public static PreparedData Prepare(IReadOnlyList<CorpusDocument> documents, ITokenizer tokenizer, string tokenizerSource,
        DocumentSplit split, string outDir, Action<int, int>? progress = null)
    {
        split.Validate();
        var parts = new Dictionary<Split, List<CorpusDocument>> { [Split.Train] = [], [Split.Validation] = [], [Split.Test] = [] };
        foreach (var d in documents) parts[split.Assign(d.Key)].Add(d);
        foreach (var s in new[] { Split.Train, Split.Validation })
            if (parts[s].Count == 0)
                throw new ArgumentException($"The corpus has {documents.Count} document(s) and none landed in the {s.ToString().ToLowerInvariant()} split; add documents or change the split fractions.");
        return PrepareSplits(parts[Split.Train], parts[Split.Validation], parts[Split.Test], tokenizer, tokenizerSource, outDir, progress);
    }

    /// <summary>
    /// Encodes and writes splits the caller chose (e.g. a given training file and validation file):
    /// every document of <paramref name="train"/> goes to <c>train.bin</c>, and so on, in order.
    /// Training and validation must hold documents; test may be empty. The folder is filled under a
    /// staging name and renamed into place (<see cref="AtomicFile.PublishDirectory"/>), so a prepare
    /// that fails leaves no half folder and a previous prepared folder at <paramref name="outDir"/>
    /// intact. An existing <paramref name="outDir"/> is replaced only when it is empty or a prepared
    /// folder (it has meta.json), never a folder of other files.
    /// </summary>
    public static PreparedData PrepareSplits(IReadOnlyList<CorpusDocument> train, IReadOnlyList<CorpusDocument> validation,
        IReadOnlyList<CorpusDocument> test, ITokenizer tokenizer, string tokenizerSource, string outDir, Action<int, int>? progress = null)
    {
        if (!tokenizer.SpecialTokens.TryGetId(ChatTemplate.Bos, out int bos))
            throw new ArgumentException($"Tokenizer {tokenizer.Name} has no {ChatTemplate.Bos} token, which packing needs to mark document starts.");
        if (train.Count == 0) throw new ArgumentException("The training split holds no documents; nothing was written.");
        if (validation.Count == 0) throw new ArgumentException("The validation split holds no documents; nothing was written.");
        CheckReplaceable(outDir);

        var splits = new[] { (Split.Train, train), (Split.Validation, validation), (Split.Test, test) };
        var all = splits.SelectMany(s => s.Item2).ToArray();
        var encoded = new int[all.Length][];
        var prompts = new int[all.Length]; // tokens of each document's context-only prefix (0: trained whole)
        int done = 0;
        void EncodeDocument(int i)
        {
            var d = all[i];
            if (d.LossStart > 0)
            {
                // Prompt and completion are encoded apart, so the loss boundary is a token boundary.
                if (d.LossStart > d.Text.Length) throw new ArgumentException($"Document {d.Key}: loss start {d.LossStart} is past its {d.Text.Length} characters.");
                var prompt = tokenizer.Encode(d.Text[..d.LossStart]);
                prompts[i] = prompt.Count;
                encoded[i] = [.. prompt, .. tokenizer.Encode(d.Text[d.LossStart..])];
            }
            else encoded[i] = [.. tokenizer.Encode(d.Text)];
            int n = Interlocked.Increment(ref done);
            if (progress is not null && (n % 16 == 0 || n == all.Length)) lock (encoded) progress(n, all.Length);
        }
        // Documents claimed one at a time on the shared pool: their lengths differ widely.
        WorkerPool.Shared.For(all.Length, all.Length, (first, end) => { for (int i = first; i < end; i++) EncodeDocument(i); });

        PreparedData? result = null;
        AtomicFile.PublishDirectory(outDir, staging =>
        {
            var stats = new Dictionary<Split, SplitStats>();
            var keys = new Dictionary<string, string[]>();
            int at = 0;
            foreach (var (s, docs) in splits)
            {
                var ids = new List<int[]>(docs.Count);
                long bytes = 0, tokens = 0;
                bool masked = false;
                int first = at;
                foreach (var d in docs)
                {
                    ids.Add(encoded[at]);
                    bytes += Encoding.UTF8.GetByteCount(d.Text);
                    tokens += encoded[at].Length + 1;
                    masked |= prompts[at] > 0;
                    at++;
                }
                TokenShard.Write(Path.Combine(staging, FileName(s)), ids, tokenizer.VocabSize, bos);
                if (masked) TokenShard.WriteLossMask(Path.Combine(staging, FileName(s)), LossMask(ids, prompts.AsSpan(first, docs.Count), tokens));
                stats[s] = new SplitStats(docs.Count, tokens, bytes);
                keys[FileName(s)] = [.. docs.Select(d => d.Key)];
            }
            AtomicFile.WriteAllText(Path.Combine(staging, PreparedData.KeysFile), JsonNaming.Serialize(keys));
            string recorded = KeepTokenizer(tokenizerSource, staging);
            result = new PreparedData(outDir, recorded, tokenizer.VocabSize, bos, stats[Split.Train], stats[Split.Validation], stats[Split.Test]);
            AtomicFile.WriteAllText(Path.Combine(staging, PreparedData.MetaFile), JsonNaming.Serialize(result with { Directory = "." }));
        });
        return result!;
    }

    /// <summary>
    /// The per-token loss mask of a packed split: 0 on each document's prompt tokens, 1 on the rest.
    /// The BOS before a document is the target that ends the previous one, so it takes the mask of
    /// the previous token (a model trained on completions learns where they stop).
    /// </summary>
    static byte[] LossMask(List<int[]> docs, ReadOnlySpan<int> promptTokens, long tokens)
    {
        var mask = new byte[tokens];
        long at = 0;
        byte previous = 1;
        for (int d = 0; d < docs.Count; d++)
        {
            mask[at++] = previous;
            for (int i = 0; i < docs[d].Length; i++) mask[at++] = (byte)(i < promptTokens[d] ? 0 : 1);
            if (docs[d].Length > 0) previous = mask[at - 1];
        }
        return mask;
    }

    /// <summary>Refuses an output folder that holds files but is not a prepared folder: publishing would replace them.</summary>
    static void CheckReplaceable(string outDir)
    {
        if (!Directory.Exists(outDir) || File.Exists(Path.Combine(outDir, PreparedData.MetaFile)) || !Directory.EnumerateFileSystemEntries(outDir).Any()) return;
        throw new ArgumentException($"{Path.GetFullPath(outDir)} exists and is not a prepared data folder (no {PreparedData.MetaFile}); " +
            "preparing replaces the whole folder, so choose a new or empty one.");
    }

    /// <summary>
    /// Copies the tokenizer files into <c>outDir/tokenizer/</c> and returns what meta.json records:
    /// <c>bytes</c>; <c>tokenizer</c> for a Tessera tokenizer directory (its rank and config files);
    /// <c>tokenizer/NAME</c> for a .tiktoken (with the config beside it, if any) or tokenizer.json file.
    /// A .gguf file is a whole model, so it is not copied: its absolute path is recorded.
    /// </summary>
    public static string KeepTokenizer(string source, string outDir)
    {
        if (source == "bytes") return source;
        string full = Path.GetFullPath(source);
        if (full.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase)) return full;
        string target = Path.Combine(outDir, PreparedData.TokenizerFolder);
        if (Path.GetFullPath(target) == Path.TrimEndingDirectorySeparator(full)) return PreparedData.TokenizerFolder;   // already in place
        IEnumerable<string> files;
        string recorded;
        if (Directory.Exists(full))
        {
            files = new[] { TokenizerFiles.RanksFile, TokenizerFiles.ConfigFile }.Select(f => Path.Combine(full, f)).Where(File.Exists);
            recorded = PreparedData.TokenizerFolder;
        }
        else
        {
            if (!File.Exists(full)) throw new FileNotFoundException($"tokenizer not found: {source}", source);
            string beside = Path.Combine(Path.GetDirectoryName(full)!, TokenizerFiles.ConfigFile);
            files = full.EndsWith(".tiktoken", StringComparison.OrdinalIgnoreCase) && File.Exists(beside) ? [full, beside] : [full];
            recorded = PreparedData.TokenizerFolder + "/" + Path.GetFileName(full);
        }
        foreach (var f in files)
        {
            using var src = File.OpenRead(f);
            AtomicFile.Write(Path.Combine(target, Path.GetFileName(f)), src.CopyTo);
        }
        return recorded;
    }
}
