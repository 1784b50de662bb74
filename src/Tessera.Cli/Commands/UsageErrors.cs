using System.CommandLine;
using System.CommandLine.Parsing;

namespace Tessera.Cli.Commands;

/// <summary>
/// One-line descriptions of command-line mistakes: an unknown command or option with the closest
/// valid name ("did you mean …"), a group command given without its subcommand, or the parser's own
/// message (a missing required option, a value that does not parse), each pointing at the right
/// <c>--help</c>.
/// </summary>
public static class UsageErrors
{
    /// <summary>The line (without the <c>error: </c> prefix) for a parse result that has errors.</summary>
    public static string Describe(ParseResult parse)
    {
        var command = parse.CommandResult.Command;
        string path = CommandPath(parse.CommandResult);
        string help = $"see '{path} --help'";
        if (parse.UnmatchedTokens.Count > 0)
        {
            string token = parse.UnmatchedTokens[0];
            bool option = token.StartsWith('-') && token.Length > 1;
            var candidates = option ? OptionNames(parse.CommandResult) : command.Subcommands.Where(c => !c.Hidden).SelectMany(c => c.Aliases.Prepend(c.Name));
            string? guess = Closest(token, candidates);
            string what = option ? "option" : command.Subcommands.Count > 0 ? "command" : "argument";
            string hint = guess is null ? "" : $" (did you mean '{guess}'?)";
            return $"unknown {what} '{token}' for '{path}'{hint}; {help}";
        }
        if (command.Subcommands.Count > 0 && command.Action is null && parse.Tokens.All(t => t.Type != TokenType.Argument))
            return $"'{path}' needs a command: {string.Join(", ", command.Subcommands.Where(c => !c.Hidden).Select(c => c.Name))}; {help}";
        return $"{parse.Errors[0].Message.TrimEnd('.')}; {help}";
    }

    /// <summary>
    /// The candidate closest to <paramref name="token"/> by edit distance (adjacent swaps count as one
    /// edit), or one it is a prefix of; null when nothing is close enough to be a plausible typo.
    /// </summary>
    public static string? Closest(string token, IEnumerable<string> candidates)
    {
        string? best = null;
        int bestDistance = int.MaxValue;
        foreach (var c in candidates.Distinct())
        {
            int d = c.StartsWith(token, StringComparison.OrdinalIgnoreCase) && token.TrimStart('-').Length >= 2 ? 0 : Distance(token.ToLowerInvariant(), c.ToLowerInvariant());
            if (d < bestDistance || (d == bestDistance && string.CompareOrdinal(c, best) < 0)) (best, bestDistance) = (c, d);
        }
        int allowed = Math.Max(1, token.TrimStart('-').Length / 3);
        return bestDistance <= allowed ? best : null;
    }

    /// <summary>Optimal-string-alignment distance: insertions, deletions, substitutions and adjacent transpositions.</summary>
    public static int Distance(string a, string b)
    {
        var d = new int[a.Length + 1, b.Length + 1];
        for (int i = 0; i <= a.Length; i++) d[i, 0] = i;
        for (int j = 0; j <= b.Length; j++) d[0, j] = j;
        for (int i = 1; i <= a.Length; i++)
            for (int j = 1; j <= b.Length; j++)
            {
                int cost = a[i - 1] == b[j - 1] ? 0 : 1;
                d[i, j] = Math.Min(Math.Min(d[i - 1, j] + 1, d[i, j - 1] + 1), d[i - 1, j - 1] + cost);
                if (i > 1 && j > 1 && a[i - 1] == b[j - 2] && a[i - 2] == b[j - 1]) d[i, j] = Math.Min(d[i, j], d[i - 2, j - 2] + 1);
            }
        return d[a.Length, b.Length];
    }

    static IEnumerable<string> OptionNames(CommandResult result)
    {
        for (SymbolResult? r = result; r is CommandResult cr; r = r.Parent)
            foreach (var o in cr.Command.Options)
                if (!o.Hidden && (ReferenceEquals(cr, result) || o.Recursive))
                    foreach (var name in o.Aliases.Prepend(o.Name)) yield return name;
    }

    static string CommandPath(CommandResult result)
    {
        var names = new List<string>();
        for (SymbolResult? r = result; r is CommandResult cr; r = r.Parent)
            names.Add(cr.Command is RootCommand ? "tessera" : cr.Command.Name);
        names.Reverse();
        return string.Join(' ', names);
    }
}
