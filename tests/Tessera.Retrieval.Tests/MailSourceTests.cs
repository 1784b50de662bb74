using Tessera.Retrieval.Sparse;

namespace Tessera.Retrieval.Tests;

/// <summary>
/// <c>index build --input</c> over a mail folder (<see cref="DocumentSource"/>): each message one
/// document (subject and decoded text, dated by its Date header), an mbox one document per message,
/// files that only look like mail kept as plain text, and bad files skipped with their name and reason.
/// </summary>
public class MailSourceTests
{
    const string Plain =
        "From alice@example.org  Thu Aug 22 12:36:23 2002\n" +
        "Return-Path: <alice@example.org>\n" +
        "From: Alice <alice@example.org>\n" +
        "Subject: Lunch on\n the boat\n" +
        "Date: Thu, 22 Aug 2002 13:52:59 +0100\n" +
        "\n" +
        "The ferry leaves pier 39 at noon.\n";

    const string Multipart =
        "Received: from mx.example.org by example.net; Fri, 23 Aug 2002 09:00:00 +0000\n" +
        "From: bob@example.net\n" +
        "Subject: Menu\n" +
        "Date: Fri, 23 Aug 2002 09:00:00 +0000\n" +
        "MIME-Version: 1.0\n" +
        "Content-Type: multipart/alternative; boundary=\"XX\"\n" +
        "\n" +
        "--XX\n" +
        "Content-Type: text/plain; charset=utf-8\n" +
        "Content-Transfer-Encoding: quoted-printable\n" +
        "\n" +
        "The caf=C3=A9 serves quince tart from nine =\nthirty.\n" +
        "--XX\n" +
        "Content-Type: text/html\n" +
        "\n" +
        "<html><b>The caf&eacute; serves quince tart</b></html>\n" +
        "--XX--\n";

    static string Base64Message() =>
        "From: carol@example.com\nSubject: Keys\nDate: Sat, 24 Aug 2002 10:00:00 +0000\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n" +
        Convert.ToBase64String("The spare key hangs behind the barometer.\n"u8.ToArray()) + "\n";

    const string Mbox =
        "From dave@example.com  Mon Sep  2 08:00:00 2002\n" +
        "From: dave@example.com\nSubject: first\nDate: Mon, 2 Sep 2002 08:00:00 +0000\n\nAlpha walrus text.\n\n" +
        "From erin@example.com  Tue Sep  3 08:00:00 2002\n" +
        "From: erin@example.com\nSubject: second\nDate: Tue, 3 Sep 2002 08:00:00 +0000\n\nBeta walrus text.\n\n" +
        "From here on, the walrus sleeps.\n\n" +          // a body line, not a separator: no header block follows
        ">From the archive, a quoted line.\n\n" +
        "From frank@example.com  Wed Sep  4 08:00:00 2002\n" +
        "From: frank@example.com\nSubject: third\nDate: Wed, 4 Sep 2002 08:00:00 +0000\n\nGamma walrus text.\n";

    const string LooksLikeMail = "From the desk of Jane: remember\nSubject: groceries\n\nmilk, eggs\n";   // one field, no originator: a note
    const string Yaml = "title: Trip\ndate: 2020-01-01\n\nWe went to the coast.\n";
    const string Truncated = "From: gina@example.com\nSubject: cut off\nDate: Thu, 5 Sep 2002 0";   // no blank line: the header block never ends
    const string Empty = "From: hal@example.com\nSubject:\nDate: Fri, 6 Sep 2002 08:00:00 +0000\n\n   \n";
    const string Garbage = "From: ivy@example.com\nSubject: broken\nDate: Sat, 7 Sep 2002 08:00:00 +0000\nContent-Type: multipart/mixed; boundary=B\n\n" +
                           "--B\nContent-Type: text/plain\nContent-Transfer-Encoding: base64\n\n@@not base64, the orchid@@\n";

    static readonly DateTimeOffset Written = new(2020, 5, 6, 7, 8, 9, TimeSpan.Zero);

    static void Write(string root, string relative, string text) => WriteBytes(root, relative, System.Text.Encoding.UTF8.GetBytes(text));

    static void WriteBytes(string root, string relative, byte[] bytes)
    {
        string path = Path.Combine(root, relative);
        Directory.CreateDirectory(Path.GetDirectoryName(path)!);
        File.WriteAllBytes(path, bytes);
        File.SetLastWriteTimeUtc(path, Written.UtcDateTime);
    }

    [Fact]
    public void Mail_files_become_subject_and_decoded_text_dated_by_their_header()
    {
        using var tmp = new TempFolder();
        string root = tmp["mail"];
        Write(root, "inbox/plain.eml", Plain);
        Write(root, "inbox/multipart.eml", Multipart);
        Write(root, "inbox/b64.eml", Base64Message());
        var docs = DocumentSource.Read(root).ToDictionary(d => d.Id);

        Assert.Equal(["inbox/b64.eml", "inbox/multipart.eml", "inbox/plain.eml"], docs.Keys.Order(StringComparer.Ordinal));
        Assert.Equal("Subject: Lunch on the boat\n\nThe ferry leaves pier 39 at noon.", docs["inbox/plain.eml"].Text);
        Assert.Equal(new DateTimeOffset(2002, 8, 22, 13, 52, 59, TimeSpan.FromHours(1)), docs["inbox/plain.eml"].Date);
        string menu = docs["inbox/multipart.eml"].Text;
        Assert.Equal("Subject: Menu\n\nThe café serves quince tart from nine thirty.", menu);   // the text part, decoded; the html alternative left out
        Assert.Equal(new DateTimeOffset(2002, 8, 23, 9, 0, 0, TimeSpan.Zero), docs["inbox/multipart.eml"].Date);
        Assert.Equal("Subject: Keys\n\nThe spare key hangs behind the barometer.", docs["inbox/b64.eml"].Text);
    }

    [Fact]
    public void An_mbox_gives_one_document_per_message_and_a_body_line_from_is_no_separator()
    {
        using var tmp = new TempFolder();
        Write(tmp["mail"], "archive.mbox", Mbox);
        var docs = DocumentSource.Read(tmp["mail"]).ToList();
        Assert.Equal(["archive.mbox#1", "archive.mbox#2", "archive.mbox#3"], docs.Select(d => d.Id));
        Assert.Equal("Subject: first\n\nAlpha walrus text.", docs[0].Text);
        Assert.Equal("Subject: second\n\nBeta walrus text.\n\nFrom here on, the walrus sleeps.\n\n>From the archive, a quoted line.", docs[1].Text);
        Assert.Equal("Subject: third\n\nGamma walrus text.", docs[2].Text);
        Assert.Equal([2, 3, 4], docs.Select(d => d.Date!.Value.Day));
    }

    [Fact]
    public void Files_that_only_look_like_mail_stay_plain_text_with_the_file_date()
    {
        using var tmp = new TempFolder();
        Write(tmp["f"], "note.txt", LooksLikeMail);
        Write(tmp["f"], "trip.md", Yaml);
        var docs = DocumentSource.Read(tmp["f"]).ToDictionary(d => d.Id);
        Assert.Equal(LooksLikeMail, docs["note.txt"].Text);
        Assert.Equal(Yaml, docs["trip.md"].Text);
        Assert.Equal(Written, docs["note.txt"].Date);
        Assert.Equal(Written, docs["trip.md"].Date);
    }

    [Fact]
    public void A_message_without_a_date_header_takes_the_file_date()
    {
        using var tmp = new TempFolder();
        Write(tmp["f"], "undated.eml", "Received: from a by b\nFrom: jo@example.com\nSubject: no date here\n\nHello.\n");
        var doc = Assert.Single(DocumentSource.Read(tmp["f"]));
        Assert.Equal("Subject: no date here\n\nHello.", doc.Text);
        Assert.Equal(Written, doc.Date);
    }

    [Fact]
    public void Bad_files_are_skipped_by_name_or_kept_as_text_and_the_rest_is_indexed()
    {
        using var tmp = new TempFolder();
        string root = tmp["mail"];
        Write(root, "good.eml", Plain);
        WriteBytes(root, "attachment.bin", [0x50, 0x4B, 0x03, 0x04, 0, 0, 0x08, 0]);
        Write(root, "empty.eml", Empty);
        Write(root, "truncated.eml", Truncated);
        Write(root, "garbage.eml", Garbage);
        var skipped = new List<string>();
        var docs = DocumentSource.Read(root, skipped.Add).ToDictionary(d => d.Id);

        Assert.Equal(2, skipped.Count);
        Assert.Contains(skipped, s => s.StartsWith(Path.Combine(root, "attachment.bin") + ": skipped, binary", StringComparison.Ordinal));
        Assert.Contains(skipped, s => s.StartsWith(Path.Combine(root, "empty.eml") + ": skipped, a mail message with no subject and no text body", StringComparison.Ordinal));
        Assert.Equal(["garbage.eml", "good.eml", "truncated.eml"], docs.Keys.Order(StringComparer.Ordinal));
        Assert.Equal(Truncated, docs["truncated.eml"].Text);          // its header block never ends, so it is not read as mail: kept as the text it is
        Assert.StartsWith("Subject: broken\n\n", docs["garbage.eml"].Text);   // a part that is not base64 does not stop the message (its text is whatever the parser makes of it)

        // The whole folder indexes; hits carry the header date and offsets into the document text.
        Bm25IndexBuilder.Build(tmp["idx"], DocumentSource.Read(root), new IndexBuildOptions { PassageWords = 6 });
        using var index = Bm25Index.Open(tmp["idx"]);
        var hit = index.Search("ferry pier noon", 1)[0].Passage;
        Assert.Equal("good.eml", hit.DocumentId);
        Assert.Equal(new DateTimeOffset(2002, 8, 22, 12, 52, 59, TimeSpan.Zero), hit.Date);
        Assert.Equal(hit.Text, docs["good.eml"].Text.Substring(hit.Start, hit.Length));
        Assert.Contains("pier 39", hit.Text);
    }
}
