namespace Tessera.Retrieval.Mail;

/// <summary>
/// Where <c>data/fetch_mail.sh</c> puts the SpamAssassin public mail corpus (one raw message per
/// file, in the corpus's groups; data/MAIL.md), and how to list its messages.
/// </summary>
public static class MailCorpus
{
    /// <summary>The corpus's groups: three of ham (mailing lists and personal mail), two of spam.</summary>
    public static readonly string[] Groups = ["easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2"];

    /// <summary>The ham groups (the mail a user keeps).</summary>
    public static readonly string[] HamGroups = ["easy-ham-1", "easy-ham-2", "hard-ham-1"];

    /// <summary><c>$TESSERA_DATA/spam-assassin</c>, else <c>~/.cache/tessera-data/spam-assassin</c> (where the fetch script writes by default).</summary>
    public static string DefaultFolder =>
        Path.Combine(Environment.GetEnvironmentVariable("TESSERA_DATA") is { Length: > 0 } d ? d
            : Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "tessera-data"), "spam-assassin");

    /// <summary>Whether a complete copy is in <paramref name="folder"/> (the fetch script's <c>.complete</c> marker is written last).</summary>
    public static bool IsPresent(string? folder = null) => File.Exists(Path.Combine(folder ?? DefaultFolder, ".complete"));

    /// <summary>
    /// The message files of the given groups (default all), as (id, path) with id = "group/file",
    /// groups in the order given and files in ordinal name order.
    /// </summary>
    public static IEnumerable<(string Id, string Path)> Files(string? folder = null, IEnumerable<string>? groups = null)
    {
        folder ??= DefaultFolder;
        if (!IsPresent(folder)) throw new DirectoryNotFoundException($"mail corpus not found in {folder} (run data/fetch_mail.sh; see data/MAIL.md)");
        foreach (string g in groups ?? Groups)
        {
            string dir = Path.Combine(folder, g);
            if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"mail corpus group '{g}' not found in {folder} (groups: {string.Join(", ", Groups)})");
            foreach (string f in Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal))
                yield return ($"{g}/{Path.GetFileName(f)}", f);
        }
    }

    /// <summary>
    /// Reads one message file. The corpus's files are mostly ASCII with some Latin-1 8-bit bodies;
    /// bytes are read as UTF-8 where they are valid UTF-8 and as Latin-1 otherwise, so no byte is lost to a replacement character.
    /// </summary>
    public static string ReadText(string path) => DecodeText(File.ReadAllBytes(path));

    /// <summary>A mail file's bytes as text, as <see cref="ReadText"/> reads them: UTF-8 where valid, else Latin-1.</summary>
    public static string DecodeText(byte[] bytes)
    {
        try { return new System.Text.UTF8Encoding(false, throwOnInvalidBytes: true).GetString(bytes); }
        catch (System.Text.DecoderFallbackException) { return System.Text.Encoding.Latin1.GetString(bytes); }
    }
}
