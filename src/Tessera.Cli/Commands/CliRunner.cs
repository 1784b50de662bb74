using System.CommandLine;

namespace Tessera.Cli.Commands;

/// <summary>
/// Runs the parsed command and turns any failure into one clear line on stderr with a
/// non-zero exit code (the command contract in DESIGN.md).
/// </summary>
public static class CliRunner
{
    /// <summary>Exit code for a failure reported as one line.</summary>
    public const int Failure = 1;

    /// <summary>Parses <paramref name="args"/> against <paramref name="root"/> and runs the matched command; returns the process exit code.</summary>
    public static int Invoke(RootCommand root, string[] args)
    {
        var parse = root.Parse(args);
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
