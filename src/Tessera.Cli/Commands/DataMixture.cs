using System.Security.Cryptography;
using Tessera.Data;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera train --data a,b[,…]</c>: several prepared folders trained on as one mixture. The
/// batch reader draws windows uniformly from all their training shards, so each folder weighs in
/// by its size; validation covers every folder's validation split. All must share one tokenizer.
/// </summary>
public sealed class DataMixture : IDisposable
{
    readonly List<TokenShard> shards = [];

    DataMixture(IReadOnlyList<PreparedData> parts)
    {
        try
        {
            var train = new List<TokenShard>();
            var val = new List<TokenShard>();
            long bytes = 0;
            foreach (var d in parts)
            {
                train.Add(Keep(RunSetup.Open(d, Split.Train)));
                val.Add(Keep(RunSetup.Open(d, Split.Validation)));
                bytes += d.Validation.Bytes;
            }
            Data = new TrainData(train, val, bytes);
        }
        catch
        {
            Dispose();
            throw;
        }
    }

    TokenShard Keep(TokenShard s) { shards.Add(s); return s; }

    /// <summary>The shards of every part, as the trainer reads them.</summary>
    public TrainData Data { get; } = null!;

    /// <summary>Opens the train and validation shards of <paramref name="parts"/> (the caller disposes the mixture).</summary>
    public static DataMixture Open(IReadOnlyList<PreparedData> parts) => new(parts);

    /// <summary>
    /// The prepared folders of a comma-separated <c>--data</c>, or null for a single source. Every
    /// part must be a prepared folder and all must carry the same tokenizer.
    /// </summary>
    public static IReadOnlyList<PreparedData>? Parse(string data)
    {
        var parts = data.Split(',', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries);
        if (parts.Length < 2) return null;
        var loaded = new List<PreparedData>();
        foreach (var part in parts)
        {
            if (!File.Exists(Path.Combine(part, PreparedData.MetaFile)))
                throw new ArgumentException($"--data {data}: {part} is not a prepared data folder (no {PreparedData.MetaFile}); a mixture takes folders made by `tessera data prepare`.");
            loaded.Add(PreparedData.Load(part));
        }
        string first = Fingerprint(loaded[0]);
        for (int i = 1; i < loaded.Count; i++)
            if (Fingerprint(loaded[i]) != first)
                throw new ArgumentException($"--data {data}: {parts[i]} was tokenized with another tokenizer ({loaded[i].Tokenizer}, {loaded[i].VocabSize} ids) than {parts[0]} ({loaded[0].Tokenizer}, {loaded[0].VocabSize} ids).");
        return loaded;
    }

    static string Fingerprint(PreparedData d)
    {
        string tok = d.TokenizerPath();
        if (!Directory.Exists(tok)) return $"{tok}|{d.VocabSize}";
        return string.Join("|", Directory.GetFiles(tok).Order(StringComparer.Ordinal)
            .Select(f => Path.GetFileName(f) + ":" + Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))))) + $"|{d.VocabSize}";
    }

    /// <inheritdoc/>
    public void Dispose()
    {
        foreach (var s in shards) s.Dispose();
        shards.Clear();
    }
}
