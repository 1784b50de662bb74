using Tessera.Data;
using Tessera.Kernels.IO;

namespace Tessera.Cli.Commands;

/// <summary>
/// The two domains of the cascade experiment, written as plain text so that <c>tessera data
/// prepare --train/--validation</c> and <c>tessera train</c> can use them: English (the embedded
/// corpus) and C# (the repository's own sources under <c>src/</c>). Each domain is split by
/// document with the default <see cref="DocumentSplit"/> (the same rule <c>tessera train --data
/// embedded</c> uses, so the English held-out documents are held out from both models).
/// </summary>
/// <remarks>
/// Layout written under the output folder: <c>english/train/english.txt</c>,
/// <c>english/val/english.txt</c>, <c>mixed/train/{english,code}.txt</c>,
/// <c>mixed/val/{english,code}.txt</c>, and the held-out documents the workload draws its prompts
/// from: <c>heldout/english/*.txt</c> and <c>heldout/code/*.txt</c> (one document per file).
/// </remarks>
static class CascadeCorpus
{
    /// <summary>Writes the layout; returns (English train/held-out, code train/held-out) document counts.</summary>
    public static (int EnglishTrain, int EnglishHeldOut, int CodeTrain, int CodeHeldOut) Write(string outDir, string codeDir)
    {
        var english = EmbeddedCorpus.Read();
        if (!Directory.Exists(codeDir)) throw new DirectoryNotFoundException($"cascade corpus: the code folder {codeDir} does not exist (run from the repository root, or pass --code DIR).");
        var code = CorpusFiles.Read(codeDir, include: ["*.cs"]);
        var split = new DocumentSplit();
        var (enTrain, enHeld) = Split(english, split);
        var (codeTrain, codeHeld) = Split(code, split);
        if (enHeld.Count == 0 || codeHeld.Count == 0) throw new InvalidDataException("cascade corpus: a domain has no held-out documents.");
        string Join(List<CorpusDocument> docs) => string.Join("\n\n", docs.Select(d => d.Text));
        AtomicFile.WriteAllText(Dir(outDir, "english", "train", "english.txt"), Join(enTrain));
        AtomicFile.WriteAllText(Dir(outDir, "english", "val", "english.txt"), Join(enHeld));
        AtomicFile.WriteAllText(Dir(outDir, "mixed", "train", "english.txt"), Join(enTrain));
        AtomicFile.WriteAllText(Dir(outDir, "mixed", "train", "code.txt"), Join(codeTrain));
        AtomicFile.WriteAllText(Dir(outDir, "mixed", "val", "english.txt"), Join(enHeld));
        AtomicFile.WriteAllText(Dir(outDir, "mixed", "val", "code.txt"), Join(codeHeld));
        for (int i = 0; i < enHeld.Count; i++) AtomicFile.WriteAllText(Dir(outDir, "heldout", "english", $"{i:D4}.txt"), enHeld[i].Text);
        for (int i = 0; i < codeHeld.Count; i++) AtomicFile.WriteAllText(Dir(outDir, "heldout", "code", $"{i:D4}.txt"), codeHeld[i].Text);
        return (enTrain.Count, enHeld.Count, codeTrain.Count, codeHeld.Count);
    }

    /// <summary>The held-out documents of one domain (<c>english</c> or <c>code</c>), in file order.</summary>
    public static IReadOnlyList<string> HeldOut(string corpusDir, string domain)
    {
        string dir = Path.Combine(corpusDir, "heldout", domain);
        if (!Directory.Exists(dir)) throw new DirectoryNotFoundException($"cascade corpus: {dir} is missing; write it first with `tessera bench cascade --write-corpus {corpusDir}`.");
        var files = Directory.GetFiles(dir, "*.txt");
        Array.Sort(files, StringComparer.Ordinal);
        return [.. files.Select(File.ReadAllText)];
    }

    static (List<CorpusDocument> Train, List<CorpusDocument> HeldOut) Split(IReadOnlyList<CorpusDocument> docs, DocumentSplit split)
    {
        var train = new List<CorpusDocument>();
        var held = new List<CorpusDocument>();
        foreach (var d in docs) (split.Assign(d.Key) == Data.Split.Train ? train : held).Add(d);
        return (train, held);
    }

    static string Dir(string root, string a, string b, string file)
    {
        string dir = Path.Combine(root, a, b);
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, file);
    }
}
