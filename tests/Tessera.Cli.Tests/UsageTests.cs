using System.Diagnostics;
using System.Text.RegularExpressions;

namespace Tessera.Cli.Tests;

/// <summary>
/// Command-line mistakes (issue 20): an unknown command or option is one "error:" line with the
/// closest valid name and exit code 1, even with --help; --version prints version and commit; the
/// completion scripts drive System.CommandLine's [suggest] directive.
/// </summary>
[Collection(CliCollection.Name)]
public class UsageTests
{
    public static TheoryData<string[], string> Mistakes => new()
    {
        { ["genrate", "--model", "m", "--prompt", "hi"], "unknown command 'genrate' for 'tessera' (did you mean 'generate'?)" },
        { ["tokenizr", "--help"], "unknown command 'tokenizr' for 'tessera' (did you mean 'tokenizer'?)" },
        { ["tokenizer", "encdoe", "--help"], "unknown command 'encdoe' for 'tessera tokenizer' (did you mean 'encode'?)" },
        { ["no-such-command", "build", "--help"], "unknown command 'no-such-command' for 'tessera'; see 'tessera --help'" },
        { ["generate", "--model", "m", "--promt", "hi"], "unknown option '--promt' for 'tessera generate' (did you mean '--prompt'?)" },
        { ["tokenizer", "encode", "--tokenizer", "bytes", "--txt", "hi"], "unknown option '--txt' for 'tessera tokenizer encode' (did you mean '--text'?)" },
        { ["bench"], "'tessera bench' needs a command:" },
    };

    [Theory]
    [MemberData(nameof(Mistakes))]
    public void MistakeIsOneErrorLineWithSuggestionAndExitCodeOne(string[] args, string expected)
    {
        var r = CliProcess.Run(Path.GetTempPath(), args);
        Assert.Equal(1, r.ExitCode);
        Assert.Equal("", r.Stdout);   // no help text printed as if the command were fine
        var lines = r.Stderr.Split('\n', StringSplitOptions.RemoveEmptyEntries);
        Assert.True(lines.Length == 1, $"expected one stderr line, got:\n{r.Stderr}");
        Assert.StartsWith("error: ", lines[0]);
        Assert.Contains(expected, lines[0]);
    }

    [Fact]
    public void HelpOfAValidCommandStillWorksWithoutItsRequiredOptions()
    {
        var r = CliProcess.Run(Path.GetTempPath(), "generate", "--help");
        Assert.Equal(0, r.ExitCode);
        Assert.Contains("--prompt", r.Stdout);
        Assert.Equal("", r.Stderr);
    }

    [Fact]
    public void VersionPrintsVersionAndTheCommitItWasBuiltFrom()
    {
        var r = CliProcess.Run(Path.GetTempPath(), "--version");
        Assert.Equal(0, r.ExitCode);
        var m = Regex.Match(r.Stdout.Trim(), @"^tessera (\d+\.\d+\.\d+\S*) \(commit ([0-9a-f]{40}|unknown)\)$");
        Assert.True(m.Success, $"unexpected --version output: {r.Stdout}");
        // Built from this checkout (as CI and developers build it): the stamped commit is HEAD.
        string? head = Git("rev-parse HEAD");
        if (head is not null) Assert.Equal(head, m.Groups[2].Value);
    }

    [Fact]
    public void SuggestDirectiveCompletesCommandsAndOptions()
    {
        var commands = CliProcess.Run(Path.GetTempPath(), "[suggest:3]", "gen");
        Assert.Equal(0, commands.ExitCode);
        Assert.Contains("generate", commands.Stdout.Split('\n', StringSplitOptions.TrimEntries));
        var options = CliProcess.Run(Path.GetTempPath(), "[suggest:14]", "generate --pro");
        Assert.Contains("--prompt", options.Stdout.Split('\n', StringSplitOptions.TrimEntries));
    }

    [Fact]
    public void BashCompletionScriptCompletesThroughTheRealCommand()
    {
        string dir = CliProcess.TempDir();
        try
        {
            var script = CliProcess.Run(dir, "completion", "bash");
            Assert.Equal(0, script.ExitCode);
            File.WriteAllText(Path.Combine(dir, "tessera.bash"), script.Stdout);
            // A `tessera` on PATH that runs the built CLI, as the installed tool would.
            string shim = Path.Combine(dir, "tessera");
            File.WriteAllText(shim, $"#!/bin/sh\nexec dotnet \"{Path.Combine(AppContext.BaseDirectory, "tessera.dll")}\" \"$@\"\n");
            if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(shim, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.UserExecute);
            var psi = new ProcessStartInfo("/bin/bash") { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = dir };
            psi.ArgumentList.Add("-c");
            psi.ArgumentList.Add("source ./tessera.bash; COMP_LINE='tessera tokenizer en'; COMP_POINT=${#COMP_LINE}; _tessera_complete; printf '%s\\n' \"${COMPREPLY[@]}\"");
            psi.Environment["PATH"] = dir + ":" + Environment.GetEnvironmentVariable("PATH");
            using var p = Process.Start(psi)!;
            string output = p.StandardOutput.ReadToEnd();
            Assert.True(p.WaitForExit(60_000), "bash completion did not finish in a minute");
            Assert.Equal(["encode"], output.Split('\n', StringSplitOptions.RemoveEmptyEntries | StringSplitOptions.TrimEntries));
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Theory]
    [InlineData("zsh", "compctl -K _tessera_complete tessera")]
    [InlineData("pwsh", "Register-ArgumentCompleter -Native -CommandName tessera")]
    public void OtherShellScriptsUseTheSuggestDirective(string shell, string hook)
    {
        var r = CliProcess.Run(Path.GetTempPath(), "completion", shell);
        Assert.Equal(0, r.ExitCode);
        Assert.Contains(hook, r.Stdout);
        Assert.Contains("[suggest:", r.Stdout);
    }

    static string? Git(string args)
    {
        try
        {
            var psi = new ProcessStartInfo("git", args) { RedirectStandardOutput = true, RedirectStandardError = true, WorkingDirectory = AppContext.BaseDirectory };
            using var p = Process.Start(psi)!;
            string o = p.StandardOutput.ReadToEnd().Trim();
            p.WaitForExit();
            return p.ExitCode == 0 ? o : null;
        }
        catch (System.ComponentModel.Win32Exception) { return null; }
    }
}
