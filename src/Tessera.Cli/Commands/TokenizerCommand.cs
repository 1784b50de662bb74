using System.CommandLine;

namespace Tessera.Cli.Commands;

/// <summary>PLACEHOLDER: the `tokenizer` command is being written.</summary>
public static class TokenizerCommand
{
    public static Command Create()
    {
        var cmd = new Command("tokenizer", "(not yet implemented)");
        cmd.SetAction(_ => { Console.Error.WriteLine("error: 'tokenizer' is not implemented yet."); return CliRunner.Failure; });
        return cmd;
    }
}
