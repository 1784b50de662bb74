using System.Text.Json;
using System.Text.Json.Serialization;
using Tessera.Kernels.IO;

namespace Tessera.Training.Experiments;

/// <summary>
/// The files every experiment leaves in its run folder: <c>results.json</c> (the machine-readable
/// result), <c>report.md</c> (a short human summary that links the plots) and one SVG per plot,
/// with a PNG beside it when the plot is given as a <see cref="Figure"/>.
/// Each file is written atomically, so a crashed run never leaves half a report.
/// </summary>
public static class ExperimentReport
{
    /// <summary>The machine-readable result file in a run folder.</summary>
    public const string ResultsFile = "results.json";
    /// <summary>The human-readable report in a run folder.</summary>
    public const string MarkdownFile = "report.md";

    /// <summary>
    /// Writes <paramref name="resultsJson"/> serialised (<see cref="JsonNaming"/>: snake_case) to <c>results.json</c>,
    /// <c># name</c> followed by <paramref name="markdown"/> to <c>report.md</c>, and each entry of
    /// <paramref name="svgs"/> to <c>KEY.svg</c> (keys are plain file stems such as "bpb"; the
    /// markdown embeds each as an image whose link target is <c>KEY.svg</c>). Creates <paramref name="dir"/>; returns
    /// the paths written, results first.
    /// </summary>
    public static IReadOnlyList<string> Write(string dir, string name, object resultsJson, string markdown,
        IReadOnlyDictionary<string, string> svgs)
    {
        ArgumentNullException.ThrowIfNull(svgs);
        var written = WriteText(dir, name, resultsJson, markdown, svgs.Keys);
        foreach (var (key, svg) in svgs)
        {
            string path = Path.Combine(dir, key.EndsWith(".svg", StringComparison.OrdinalIgnoreCase) ? key : key + ".svg");
            AtomicFile.WriteAllText(path, svg);
            written.Add(path);
        }
        return written;
    }

    /// <summary>
    /// As <see cref="Write(string, string, object, string, IReadOnlyDictionary{string, string})"/>, with
    /// each figure saved as <c>KEY.svg</c> and <c>KEY.png</c> (<see cref="Figure.Save"/>; the PNG is left
    /// out, and the SVG still written, where <see cref="Figure.PngUnavailableReason"/> says PNGs cannot be drawn).
    /// </summary>
    public static IReadOnlyList<string> Write(string dir, string name, object resultsJson, string markdown,
        IReadOnlyDictionary<string, Figure> figures)
    {
        ArgumentNullException.ThrowIfNull(figures);
        var written = WriteText(dir, name, resultsJson, markdown, figures.Keys);
        foreach (var (key, figure) in figures) written.AddRange(figure.Save(dir, key));
        return written;
    }

    static List<string> WriteText(string dir, string name, object resultsJson, string markdown, IEnumerable<string> plotKeys)
    {
        ArgumentNullException.ThrowIfNull(resultsJson);
        foreach (var key in plotKeys)
            if (key.Length == 0 || key.IndexOfAny(['/', '\\', ':']) >= 0 || key.StartsWith('.'))
                throw new ArgumentException($"Plot name '{key}' is not a plain file name.");
        Directory.CreateDirectory(dir);
        var written = new List<string>();

        string results = Path.Combine(dir, ResultsFile);
        AtomicFile.WriteAllText(results, JsonNaming.SerializeObject(resultsJson) + "\n");
        written.Add(results);

        string report = Path.Combine(dir, MarkdownFile);
        AtomicFile.WriteAllText(report, $"# {name}\n\n{markdown.TrimEnd()}\n");
        written.Add(report);
        return written;
    }
}
