using Tessera.Inference;
using Tessera.Model;
using Tessera.Server;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera serve --model LARGE --cascade-small SMALL</c>: loads the small model beside the large
/// one (each its own engine) and puts a <see cref="Cascade"/> over the two (docs/cascade.md).
/// </summary>
static class CascadeServing
{
    /// <summary>The small model's weights, engine and served model; disposing it frees them.</summary>
    public sealed class Loaded(Transformer? owner, BatchingEngine engine, ServedModel model, string dir) : IDisposable
    {
        /// <summary>The served small model.</summary>
        public ServedModel Model { get; } = model;
        /// <summary>The checkpoint folder it came from.</summary>
        public string Dir { get; } = dir;

        /// <summary>Frees the engine and the weights.</summary>
        public void Dispose()
        {
            engine.Dispose();
            owner?.Dispose();
        }
    }

    /// <summary>Loads the small model the way <c>serve --model</c> loads one (with <paramref name="tokenizer"/> if given; <paramref name="prefixCacheMb"/> null: the default budget for its size).</summary>
    public static Loaded LoadSmall(string path, string? tokenizer, int? prefixCacheMb)
    {
        string full = Path.GetFullPath(path);
        if (!Directory.Exists(full) && !File.Exists(full)) throw new FileNotFoundException($"--cascade-small: {full} does not exist (give the small model's run or checkpoint folder).");
        var (owner, weights, dir) = ModelFiles.LoadWeights(full);
        try
        {
            var tok = ModelFiles.LoadTokenizer(full, dir, tokenizer).Tokenizer;
            if (weights.Config.VocabSize < tok.VocabSize)
                throw new InvalidDataException($"{dir}: the tokenizer has {tok.VocabSize} ids but the small model only {weights.Config.VocabSize}.");
            var engine = new BatchingEngine(weights, new BatchingOptions { PrefixCacheBytes = prefixCacheMb is { } mb ? (long)mb << 20 : BatchingOptions.DefaultPrefixCacheBytes(weights.Config) });
            return new Loaded(owner, engine, new ServedModel(ServeCommand.DefaultName(dir), engine, tok), dir);
        }
        catch
        {
            owner?.Dispose();
            throw;
        }
    }

    /// <summary>
    /// The cascade: <paramref name="name"/> (default <c>cascade</c>) routes; the two models keep
    /// their folder names, suffixed <c>-small</c>/<c>-large</c> when those are the same.
    /// </summary>
    public static Cascade Build(string? name, Loaded small, ServedModel large, string largeName, double threshold)
    {
        Cascade.CheckThreshold(threshold, "--cascade-threshold");
        string smallId = small.Model.Id, largeId = largeName;
        if (smallId == largeId) { smallId += "-small"; largeId += "-large"; }
        var s = smallId == small.Model.Id ? small.Model : new ServedModel(smallId, small.Model.Engine, small.Model.Tokenizer);
        var l = new ServedModel(largeId, large.Engine, large.Tokenizer) { Retriever = large.Retriever };
        return new Cascade(name ?? "cascade", s, l, threshold);
    }
}
