using System.CommandLine;

namespace Tessera.Cli.Commands;

/// <summary>PLACEHOLDER: the `gemm` command is being written.</summary>
public static class GemmBenchCommand
{
    public static Command Create()
    {
        var cmd = new Command("gemm", "(not yet implemented)");
        cmd.SetAction(_ => { Console.Error.WriteLine("error: 'gemm' is not implemented yet."); return CliRunner.Failure; });
        return cmd;
    }
}
