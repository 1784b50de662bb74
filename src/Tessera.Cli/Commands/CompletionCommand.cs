using System.CommandLine;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera completion bash|zsh|pwsh</c>: prints a shell script that wires tab completion to
/// System.CommandLine's <c>[suggest:POSITION]</c> directive, so the shell asks tessera itself which
/// commands, options and values fit at the cursor (the mechanism <c>dotnet-suggest</c> uses, without
/// needing that tool installed).
/// </summary>
public static class CompletionCommand
{
    /// <summary>Shells a script is available for.</summary>
    public static readonly string[] Shells = ["bash", "zsh", "pwsh"];

    /// <summary>Builds the <c>tessera completion</c> command with its options and handler.</summary>
    public static Command Create()
    {
        var shell = new Argument<string>("shell") { Description = "bash, zsh or pwsh" };
        shell.AcceptOnlyFromAmong(Shells);
        var cmd = new Command("completion", "Print a tab-completion script for bash, zsh or PowerShell (e.g. add 'source <(tessera completion bash)' to ~/.bashrc).") { shell };
        cmd.SetAction(p => Console.Write(Script(p.GetValue(shell)!)));
        return cmd;
    }

    /// <summary>The completion script for <paramref name="shell"/>.</summary>
    public static string Script(string shell) => shell switch
    {
        "bash" => """
            # tessera tab completion for bash: source <(tessera completion bash)
            _tessera_complete() {
              local IFS=$'\n'
              COMPREPLY=( $(tessera "[suggest:${COMP_POINT}]" "${COMP_LINE}" 2>/dev/null) )
            }
            complete -o default -F _tessera_complete tessera

            """,
        "zsh" => """
            # tessera tab completion for zsh: source <(tessera completion zsh)
            _tessera_complete() {
              local -a completions
              completions=( "${(@f)$(tessera "[suggest:${CURSOR}]" "${BUFFER}" 2>/dev/null)}" )
              reply=( "${completions[@]}" )
            }
            compctl -K _tessera_complete tessera

            """,
        "pwsh" => """
            # tessera tab completion for PowerShell: tessera completion pwsh | Out-String | Invoke-Expression
            Register-ArgumentCompleter -Native -CommandName tessera -ScriptBlock {
              param($wordToComplete, $commandAst, $cursorPosition)
              tessera "[suggest:$cursorPosition]" "$commandAst" 2>$null | ForEach-Object {
                [System.Management.Automation.CompletionResult]::new($_, $_, 'ParameterValue', $_)
              }
            }

            """,
        _ => throw new ArgumentException($"no completion script for shell '{shell}' (expected {string.Join(", ", Shells)})"),
    };
}
