using System.Text;

namespace Tessera.Text;

/// <summary>
/// The tiktoken rank-file format: one <c>base64(token bytes) rank</c> per line, ranks being
/// token ids and merge priorities at once.
/// </summary>
public static class TiktokenFile
{
    /// <summary>Reads a rank file into token bytes indexed by rank (gaps are null).</summary>
    /// <exception cref="FormatException">A malformed line; the message names file and line.</exception>
    public static byte[]?[] Read(string path)
    {
        if (!File.Exists(path)) throw new FileNotFoundException($"tiktoken file not found: {path}", path);
        var tokens = new List<byte[]?>(100_000);
        int lineNo = 0;
        foreach (var line in File.ReadLines(path))
        {
            lineNo++;
            if (line.Length == 0) continue;
            int space = line.IndexOf(' ');
            if (space <= 0 || space != line.LastIndexOf(' '))
                throw new FormatException($"{path}:{lineNo}: expected 'base64 rank', got '{Clip(line)}'");
            byte[] bytes;
            try { bytes = Convert.FromBase64String(line[..space]); }
            catch (FormatException) { throw new FormatException($"{path}:{lineNo}: invalid base64 '{Clip(line[..space])}'"); }
            if (bytes.Length == 0) throw new FormatException($"{path}:{lineNo}: empty token");
            if (!int.TryParse(line.AsSpan(space + 1), out int rank) || rank < 0 || rank > 16_000_000)
                throw new FormatException($"{path}:{lineNo}: invalid rank '{Clip(line[(space + 1)..])}'");
            while (tokens.Count <= rank) tokens.Add(null);
            if (tokens[rank] is not null) throw new FormatException($"{path}:{lineNo}: rank {rank} appears twice");
            tokens[rank] = bytes;
        }
        if (tokens.Count == 0) throw new FormatException($"{path}: no tokens");
        return tokens.ToArray();
    }

    /// <summary>Writes token bytes (index = rank) as a rank file, atomically.</summary>
    public static void Write(string path, IReadOnlyList<byte[]?> tokens)
    {
        var sb = new StringBuilder(tokens.Count * 12);
        for (int i = 0; i < tokens.Count; i++)
            if (tokens[i] is { } t) sb.Append(Convert.ToBase64String(t)).Append(' ').Append(i).Append('\n');
        AtomicFile.WriteAllText(path, sb.ToString());
    }

    private static string Clip(string s) => s.Length <= 40 ? s : s[..40] + "...";
}
