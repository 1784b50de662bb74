using Tessera.Data;
using Tessera.Retrieval.Mail;

namespace Tessera.Retrieval.Retro;

/// <summary>What <see cref="RetroCorpus.ReadMail"/> read and kept.</summary>
/// <param name="Messages">Message files read.</param>
/// <param name="Kept">Documents kept.</param>
/// <param name="Empty">Messages dropped because their text body is empty (after trimming).</param>
/// <param name="Duplicates">Messages dropped because an earlier message (in <see cref="MailCorpus.Files"/> order) has the same document text, whitespace aside.</param>
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
    /// The mail groups the lab reads: the ham (<see cref="MailCorpus.HamGroups"/>: mailing-list mail,
    /// where replies quote). Spam is left out: its reuse is one campaign sent many times (templates,
    /// HTML), not text a reader builds on.
    /// </summary>
    public static IReadOnlyList<string> MailGroups => MailCorpus.HamGroups;

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
    /// The mail corpus as documents: every message of <paramref name="groups"/> (default
    /// <see cref="MailGroups"/>) in <paramref name="folder"/> (default <see cref="MailCorpus.DefaultFolder"/>),
    /// in <see cref="MailCorpus.Files"/> order, its text <see cref="MailMessage.ToDocumentText"/>
    /// (<c>"Subject: …\n\n" + body</c>: every other header is dropped, since transport headers are
    /// boilerplate a model memorises and nobody quotes), keyed <c>group/file</c>. Messages with an
    /// empty text body are dropped, and so is a message whose text equals an earlier one's (whitespace
    /// collapsed): a copy of a message is a duplicate, not text reused by another document.
    /// <paramref name="dates"/>, when given, receives each kept document's Date header where it parses.
    /// </summary>
    public static IReadOnlyList<CorpusDocument> ReadMail(string? folder, IReadOnlyList<string>? groups, out MailCorpusCounts counts,
        IDictionary<string, DateTimeOffset>? dates = null)
    {
        var docs = new List<CorpusDocument>();
        var seen = new HashSet<string>(StringComparer.Ordinal);
        int messages = 0, empty = 0, duplicates = 0;
        foreach (var (id, path) in MailCorpus.Files(folder, groups ?? MailGroups))
        {
            messages++;
            var message = MailMessage.Parse(MailCorpus.ReadText(path));
            if (string.IsNullOrWhiteSpace(message.Body)) { empty++; continue; }
            string text = message.ToDocumentText();
            if (!seen.Add(Collapse(text))) { duplicates++; continue; }
            docs.Add(new CorpusDocument(id, text));
            if (dates is not null && message.Date is { } date) dates[id] = date;
        }
        if (docs.Count == 0) throw new InvalidDataException($"{folder ?? MailCorpus.DefaultFolder}: no message with a text body in {string.Join(", ", groups ?? MailGroups)}.");
        counts = new MailCorpusCounts(messages, docs.Count, empty, duplicates);
        return docs;
    }

    /// <summary>Whitespace runs as one space, none at the ends (the duplicate check's key).</summary>
    static string Collapse(string s) => string.Join(' ', s.Split((char[]?)null, StringSplitOptions.RemoveEmptyEntries));
}
