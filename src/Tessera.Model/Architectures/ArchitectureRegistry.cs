namespace Tessera.Model.Architectures;

/// <summary>
/// Every architecture Tessera knows, by name, HF model_type and GGUF general.architecture.
/// Adding a family is one file beside this one plus one line in <see cref="All"/>.
/// </summary>
public static class ArchitectureRegistry
{
    /// <summary>The families (one line each).</summary>
    static readonly Architecture[] All =
    [
        new Llama(),
        new Qwen2(),
        new Qwen3(),
        new Gemma(),
        new Gemma2(),
        new Gemma3(),
    ];

    /// <summary>The registry keys.</summary>
    public static IEnumerable<string> Names => All.Select(a => a.Name);

    /// <summary>The family named <paramref name="name"/> (a registry key).</summary>
    public static bool TryGet(string name, out Architecture architecture)
    {
        architecture = All.FirstOrDefault(a => a.Name == name)!;
        return architecture is not null;
    }

    /// <summary>The family of a registry key; the error lists the known ones.</summary>
    public static Architecture Get(string name)
        => TryGet(name, out var a) ? a : throw new ArgumentException($"Unknown architecture '{name}'. Known architectures: {string.Join(", ", Names)}.");

    /// <summary>The family reading HF <c>model_type</c> <paramref name="modelType"/>, or null.</summary>
    public static Architecture? ForHfModelType(string modelType) => All.FirstOrDefault(a => a.HfModelTypes.Contains(modelType));

    /// <summary>The family reading GGUF <c>general.architecture</c> <paramref name="ggufArch"/>, or null.</summary>
    public static Architecture? ForGguf(string ggufArch) => All.FirstOrDefault(a => a.GgufNames.Contains(ggufArch));

    /// <summary>Every HF model_type known (for error messages).</summary>
    public static IEnumerable<string> HfModelTypes => All.SelectMany(a => a.HfModelTypes);

    /// <summary>Every GGUF architecture known (for error messages).</summary>
    public static IEnumerable<string> GgufArchitectures => All.SelectMany(a => a.GgufNames);
}
