using System.Text;
using Tessera.Data;

namespace Tessera.Retrieval.Retro;

/// <summary>What <see cref="RetroCorpus.ReadMail"/> read and kept.</summary>
/// <param name="Messages">Message files read.</param>
/// <param name="Kept">Documents kept.</param>
/// <param name="Empty">Messages dropped because their text body is empty (after trimming).</param>
/// <param name="Duplicates">Messages dropped because an earlier message (group, then file name order) has the same document text, whitespace aside.</param>
public sealed record MailCorpusCounts(int Messages, int Kept, int Empty, int Duplicates);

/// <summary>
/// The documents of the RETRO lab and the one split rule it uses. Two corpora: the embedded one
/// (State of the Union addresses and Moby-Dick chapters) and the SpamAssassin public mail corpus
/// (<c>data/fetch_mail.sh</c>), where one message is one document. Mailing-list replies quote
/// earlier messages of their thread, which are other documents: the text reuse RETRO's database
/// has and the embedded corpus lacks (docs/retrieval.md, "RETRO on the mail corpus").
/// </summary>
public static class RetroCorpus
{
    /// <summary>
    /// The mail groups the lab reads: the ham (mailing-list mail, where replies quote). Spam is left
    /// out: its reuse is one campaign sent many times (templates, HTML), not text a reader builds on.
    /// </summary>
    public static IReadOnlyList<string> HamGroups { get; } = ["easy-ham-1", "easy-ham-2", "hard-ham-1"];

    /// <summary>Where <c>data/fetch_mail.sh</c> puts the corpus: <c>${TESSERA_DATA:-~/.cache/tessera-data}/spam-assassin</c>.</summary>
    public static string DefaultMailFolder
    {
        get
        {
            string? root = Environment.GetEnvironmentVariable("TESSERA_DATA");
            if (string.IsNullOrEmpty(root)) root = Path.Combine(Environment.GetFolderPath(Environment.SpecialFolder.UserProfile), ".cache", "tessera-data");
            return Path.Combine(root, "spam-assassin");
        }
    }

    /// <summary>
    /// The held-out documents of the lab: the validation and test documents of a 90/5/5
    /// <see cref="DocumentSplit"/> by key with <paramref name="seed"/>; the rest train.
    /// </summary>
    public static (List<CorpusDocument> Train, List<CorpusDocument> HeldOut) Split(IEnumerable<CorpusDocument> documents, ulong seed)
    {
        var split = new DocumentSplit(0.05, 0.05, seed);
        var train = new List<CorpusDocument>();
        var heldOut = new List<CorpusDocument>();
        foreach (var d in documents) (split.Assign(d.Key) == Tessera.Data.Split.Train ? train : heldOut).Add(d);
        return (train, heldOut);
    }

    /// <summary>
    /// One message's document text: <c>"Subject: " + subject + "\n\n" + body</c>, line ends as
    /// <c>\n</c>, body trimmed. Every other header is dropped: transport headers (Received, Message-ID,
    /// list headers) are boilerplate a model memorises and carry nothing a reader would quote.
    /// </summary>
    public static string MailDocumentText(string subject, string body)
        => "Subject: " + Oneline(subject) + "\n\n" + body.Replace("\r\n", "\n").Replace('\r', '\n').Trim();

    static string Oneline(string s) => string.Join(' ', s.Split((char[])['\r', '\n', '\t', ' '], StringSplitOptions.RemoveEmptyEntries));

    /// <summary>
    /// The mail corpus as documents: every file of each group folder under <paramref name="folder"/>
    /// (one RFC 822 message per file), parsed by <paramref name="parse"/> into (subject, text body),
    /// in group order then file-name order (ordinal). The key is <c>group/file</c>. Messages with an
    /// empty body are dropped, and so is a message whose text equals an earlier one's (whitespace
    /// collapsed): a copy of a message is a duplicate, not text reused by another document.
    /// </summary>
    public static IReadOnlyList<CorpusDocument> ReadMail(string folder, IReadOnlyList<string> groups, Func<byte[], (string Subject, string Body)> parse,
        out MailCorpusCounts counts)
    {
        ArgumentNullException.ThrowIfNull(groups);
        ArgumentNullException.ThrowIfNull(parse);
        if (!Directory.Exists(folder))
            throw new DirectoryNotFoundException($"{folder}: the mail corpus folder is missing; run data/fetch_mail.sh (docs/retrieval.md).");
        var docs = new List<CorpusDocument>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int messages = 0, empty = 0, duplicates = 0;
        foreach (var group in groups)
        {
            string dir = Path.Combine(folder, group);
            if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"{dir}: mail group '{group}' is missing from {folder}; run data/fetch_mail.sh.");
            var files = Directory.GetFiles(dir);
            Array.Sort(files, StringComparer.Ordinal);
            foreach (var file in files)
            {
                messages++;
                (string subject, string body) = parse(File.ReadAllBytes(file));
                if (string.IsNullOrWhiteSpace(body)) { empty++; continue; }
                string text = MailDocumentText(subject ?? "", body);
                if (!seen.Add(Collapse(text))) { duplicates++; continue; }
                docs.Add(new CorpusDocument(group + "/" + Path.GetFileName(file), text));
            }
        }
        if (docs.Count == 0) throw new InvalidDataException($"{folder}: no message with a text body in {string.Join(", ", groups)}.");
        counts = new MailCorpusCounts(messages, docs.Count, empty, duplicates);
        return docs;
    }

    static string Collapse(string s)
    {
        var b = new StringBuilder(s.Length);
        bool space = false;
        foreach (char c in s)
        {
            if (char.IsWhiteSpace(c)) { space = b.Length > 0; continue; }
            if (space) b.Append(' ');
            space = false;
            b.Append(c);
        }
        return b.ToString();
    }
}
