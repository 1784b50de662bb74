using System.Text.Json.Nodes;
using Tessera.Inference;
using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Cli.Commands;

/// <summary>
/// The one loader behind generate, serve, eval, quantize and bench decode: a model is a Tessera
/// checkpoint or run folder (its latest verified checkpoint), a .gguf file of any registered
/// architecture (quantized tensors kept quantized for inference), or a Hugging Face folder
/// (config.json + model.safetensors or shards + tokenizer.json).
/// </summary>
public static class ModelFiles
{
    /// <summary>What kind of source a path is; the error says what was expected.</summary>
    public static ModelSourceKind Kind(string source)
    {
        if (source.EndsWith(".gguf", StringComparison.OrdinalIgnoreCase))
            return File.Exists(source) ? ModelSourceKind.Gguf : throw new FileNotFoundException($"no such GGUF file: {source}");
        if (!Directory.Exists(source)) throw new DirectoryNotFoundException($"model not found: {source} (expected a run or checkpoint folder, a .gguf file, or a Hugging Face folder with config.json)");
        if (File.Exists(Path.Combine(source, Checkpoint.ManifestFile)) || Checkpoint.List(source).Count > 0) return ModelSourceKind.Checkpoint;
        if (HfFolder.IsModelFolder(source)) return ModelSourceKind.HuggingFace;
        throw new InvalidDataException($"{source}: neither a Tessera run/checkpoint folder (no {Checkpoint.ManifestFile}) nor a Hugging Face model folder (config.json + model.safetensors).");
    }

    /// <summary>
    /// Inference weights (packed; GGUF quantized tensors kept as stored) and, for fp32 sources, the
    /// model they borrow from (dispose it after use); Name is the file or resolved folder.
    /// </summary>
    public static (Transformer? Model, InferenceWeights Weights, string Name) LoadWeights(string source)
    {
        switch (Kind(source))
        {
            case ModelSourceKind.Gguf:
                return (null, GgufWeights.Load(source), source);
            case ModelSourceKind.HuggingFace:
            {
                var hf = HfFolder.Load(source);
                return (hf, InferenceWeights.FromTransformer(hf), source);
            }
            default:
            {
                string dir = Checkpoint.Resolve(source);
                var model = Checkpoint.LoadModel(dir);
                return (model, InferenceWeights.FromTransformer(model), dir);
            }
        }
    }

    /// <summary>The fp32 model of any source (GGUF tensors dequantized) and its resolved name.</summary>
    public static (Transformer Model, string Name) LoadModel(string source) => Kind(source) switch
    {
        ModelSourceKind.Gguf => (GgufModel.Load(source), source),
        ModelSourceKind.HuggingFace => (HfFolder.Load(source), source),
        _ => (Checkpoint.LoadModel(Checkpoint.Resolve(source)), Checkpoint.Resolve(source)),
    };

    /// <summary>
    /// The tokenizer with its BOS and EOS ids: <paramref name="explicitTokenizer"/> when given, else
    /// the GGUF file's vocabulary, the HF folder's tokenizer.json (BOS/EOS from config.json), or the
    /// checkpoint's saved tokenizer.
    /// </summary>
    public static (ITokenizer Tokenizer, int? Bos, int? Eos) LoadTokenizer(string source, string resolved, string? explicitTokenizer)
    {
        if (explicitTokenizer is not null)
        {
            var given = File.Exists(explicitTokenizer) || explicitTokenizer == "bytes" ? TokenizerFiles.Load(explicitTokenizer) : RunSetup.LoadRunTokenizer(explicitTokenizer);
            return (given, Special(given, ChatTemplate.Bos), Special(given, ChatTemplate.Eos));
        }
        switch (Kind(source))
        {
            case ModelSourceKind.Gguf:
            {
                GgufVocabulary vocab;
                try { vocab = GgufVocabulary.Load(source); }
                catch (Exception e) when (e is InvalidDataException or KeyNotFoundException or FormatException)
                {
                    throw new ArgumentException($"{source} carries no usable vocabulary ({e.Message}); pass --tokenizer <folder>.", e);
                }
                return (vocab.Tokenizer, vocab.AddBos ? vocab.BosId : null, vocab.EosId);
            }
            case ModelSourceKind.HuggingFace:
            {
                string file = Path.Combine(source, "tokenizer.json");
                if (!File.Exists(file)) throw new ArgumentException($"{source}: no tokenizer.json; pass --tokenizer.");
                var tok = TokenizerFiles.Load(file);
                var config = JsonNode.Parse(File.ReadAllText(Path.Combine(source, "config.json")));
                int? Id(string key) => config?[key] is JsonValue v && v.TryGetValue(out int i) ? i : null;
                return (tok, Id("bos_token_id") ?? Special(tok, ChatTemplate.Bos), Id("eos_token_id") ?? Special(tok, ChatTemplate.Eos));
            }
            default:
            {
                var tok = RunSetup.LoadRunTokenizer(FindTokenizer(resolved, source));
                return (tok, Special(tok, ChatTemplate.Bos), Special(tok, ChatTemplate.Eos));
            }
        }
    }

    static int? Special(ITokenizer tok, string name) => tok.SpecialTokens.TryGetId(name, out int id) ? id : null;

    /// <summary>The checkpoint's own tokenizer folder, else the run folder's.</summary>
    public static string FindTokenizer(string checkpointDir, string given)
    {
        foreach (var candidate in (string[])[Path.Combine(checkpointDir, Checkpoint.TokenizerFolder), Path.Combine(given, Checkpoint.TokenizerFolder),
                     Path.Combine(Path.GetDirectoryName(checkpointDir) ?? checkpointDir, Checkpoint.TokenizerFolder)])
            if (Directory.Exists(candidate)) return candidate;
        throw new ArgumentException($"no tokenizer saved with {checkpointDir}; pass --tokenizer");
    }
}

/// <summary>The kinds of model source <see cref="ModelFiles"/> reads.</summary>
public enum ModelSourceKind
{
    /// <summary>A Tessera checkpoint or run folder.</summary>
    Checkpoint,
    /// <summary>A GGUF file.</summary>
    Gguf,
    /// <summary>A Hugging Face model folder.</summary>
    HuggingFace,
}
