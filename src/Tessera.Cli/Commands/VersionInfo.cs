using System.CommandLine;
using System.CommandLine.Invocation;
using System.Reflection;

namespace Tessera.Cli.Commands;

/// <summary>
/// What <c>tessera --version</c> prints: the package version and the commit it was built from. The
/// build stamps the commit into AssemblyInformationalVersion ("0.1.0+&lt;sha&gt;", see
/// src/Directory.Build.props); a build outside a git checkout has none and says so.
/// </summary>
public static class VersionInfo
{
    /// <summary>The version without the commit, e.g. <c>0.1.0</c>.</summary>
    public static string Version => Split().Version;

    /// <summary>The full commit id the build came from, or null when it was not built from a git checkout.</summary>
    public static string? Commit => Split().Commit;

    /// <summary>The line <c>--version</c> prints: <c>tessera 0.1.0 (commit 1a2b3c…)</c>.</summary>
    public static string Line => $"tessera {Version} ({(Commit is { } c ? $"commit {c}" : "commit unknown")})";

    /// <summary>Makes the root command's <c>--version</c> option print <see cref="Line"/>.</summary>
    public static void Attach(RootCommand root)
    {
        foreach (var o in root.Options)
            if (o is VersionOption v) v.Action = new PrintVersion();
    }

    static (string Version, string? Commit) Split()
    {
        string info = typeof(VersionInfo).Assembly.GetCustomAttribute<AssemblyInformationalVersionAttribute>()?.InformationalVersion ?? "0.0.0";
        int plus = info.IndexOf('+');
        return plus < 0 ? (info, null) : (info[..plus], info[(plus + 1)..]);
    }

    sealed class PrintVersion : SynchronousCommandLineAction
    {
        public override int Invoke(ParseResult parseResult)
        {
            parseResult.InvocationConfiguration.Output.WriteLine(Line);
            return 0;
        }
    }
}
