using System.CommandLine;

namespace Tessera.Cli.Commands;

/// <summary>PLACEHOLDER: the `attention` command is being written.</summary>
public static class AttentionBenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("attention", "(not yet implemented)");
        cmd.SetAction(_ => { Console.Error.WriteLine("error: 'attention' is not implemented yet."); return CliRunner.Failure; });
        return cmd;
    }
}
