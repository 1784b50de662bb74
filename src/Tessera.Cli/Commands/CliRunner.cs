using System.CommandLine;
using System.CommandLine.Completions;
using System.CommandLine.Help;
using System.CommandLine.Parsing;

namespace Tessera.Cli.Commands;

/// <summary>
/// Runs the parsed command and turns any failure into one clear line on stderr with a
/// non-zero exit code (the command contract in DESIGN.md). Command-line mistakes are caught before
/// anything runs, even when <c>--help</c> is also given: an unknown command or option names the
/// closest valid one.
/// </summary>
public static class CliRunner
{
    /// <summary>Exit code for a failure reported as one line.</summary>
    public const int Failure = 1;

    /// <summary>Parses <paramref name="args"/> against <paramref name="root"/> and runs the matched command; returns the process exit code.</summary>
    public static int Invoke(RootCommand root, string[] args)
    {
        VersionInfo.Attach(root);
        var parse = root.Parse(args);
        // The [suggest] directive (shell completion) answers for partial, still-invalid command lines;
        // help for a command is shown even when its required options are missing, but not for a
        // command or option that does not exist.
        bool completing = root.Directives.OfType<SuggestDirective>().Any(d => parse.GetResult(d) is not null);
        bool mistaken = !completing && (parse.Action is HelpAction ? parse.UnmatchedTokens.Count > 0 : parse.Errors.Count > 0);
        if (mistaken)
        {
            Console.Error.WriteLine($"error: {UsageErrors.Describe(parse)}");
            return Failure;
        }
        try
        {
            return parse.Invoke(new InvocationConfiguration { EnableDefaultExceptionHandler = false });
        }
        catch (Exception e)
        {
            var inner = e is AggregateException { InnerException: { } ie } ? ie : e;
            Console.Error.WriteLine($"error: {inner.Message}");
            if (Environment.GetEnvironmentVariable("TESSERA_DEBUG") == "1") Console.Error.WriteLine(inner);
            return Failure;
        }
    }
}
