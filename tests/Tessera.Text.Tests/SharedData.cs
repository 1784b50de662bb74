namespace Tessera.Text.Tests;

/// <summary>
/// Locates the external reference data (../shared/data beside the repo, or $TESSERA_SHARED)
/// without copying it into the repo. Tests that need it use <see cref="SharedDataFactAttribute"/>.
/// </summary>
public static class SharedData
{
    /// <summary>The shared data folder, or null when it cannot be found.</summary>
    public static string? Root { get; } = Locate();

    /// <summary>Full path of a file under the shared data folder.</summary>
    public static string PathOf(string relative) =>
        Path.Combine(Root ?? throw new InvalidOperationException("shared data folder not found"), relative);

    private static string? Locate()
    {
        var env = Environment.GetEnvironmentVariable("TESSERA_SHARED");
        if (!string.IsNullOrEmpty(env))
        {
            // Accept either the shared/ folder or shared/data itself.
            var data = Path.Combine(env, "data");
            if (Directory.Exists(Path.Combine(data, "tokenizer"))) return data;
            if (Directory.Exists(Path.Combine(env, "tokenizer"))) return env;
        }
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(Path.Combine(candidate, "tokenizer"))) return candidate;
        }
        return null;
    }
}

/// <summary>
/// A fact that is reported as skipped, with the reason, when the shared data folder (or the
/// named file in it) is missing. xunit 2 has no dynamic skip, so the check runs at discovery.
/// </summary>
public sealed class SharedDataFactAttribute : FactAttribute
{
    public SharedDataFactAttribute(string relativePath)
    {
        if (SharedData.Root is null)
            Skip = "shared reference data not found: set TESSERA_SHARED or place it at ../shared/data beside the repo";
        else if (!File.Exists(Path.Combine(SharedData.Root, relativePath)))
            Skip = $"shared reference file missing: {Path.Combine(SharedData.Root, relativePath)}";
    }
}
