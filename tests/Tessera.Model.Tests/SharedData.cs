namespace Tessera.Model.Tests;

/// <summary>
/// Locates ../shared/data (reference files written by other projects). Set TESSERA_SHARED to
/// override. Tests that need it use <see cref="SharedFactAttribute"/> and are skipped, with a
/// message saying so, when it is absent.
/// </summary>
public static class SharedData
{
    public static string? Root { get; } = Find();

    static string? Find()
    {
        var env = Environment.GetEnvironmentVariable("TESSERA_SHARED");
        if (!string.IsNullOrEmpty(env)) return Directory.Exists(Path.Combine(env, "data")) ? Path.Combine(env, "data") : null;
        for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
        {
            var candidate = Path.Combine(dir.FullName, "shared", "data");
            if (Directory.Exists(candidate)) return candidate;
        }
        return null;
    }

    public static string File(string relative) => Path.Combine(Root ?? throw new InvalidOperationException("../shared/data is absent"), relative);
}

/// <summary>A fact that is skipped with a clear message when ../shared/data is absent.</summary>
public sealed class SharedFactAttribute : FactAttribute
{
    public SharedFactAttribute()
    {
        if (SharedData.Root is null) Skip = "../shared/data not found (set TESSERA_SHARED): reference-data test skipped.";
    }
}
