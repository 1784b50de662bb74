using System.Globalization;
using System.Text;

namespace Tessera.Vision.FashionMnist;

/// <summary>
/// A grid of example images with the model's answer under each (green when right, red with the
/// true answer when wrong), as one self-contained SVG: each image row is drawn as runs of equal
/// colour (black is the background and is not drawn), so flat images stay small. Grey images are
/// rounded to 16 levels so the runs are long enough to keep the file small (~10× smaller).
/// </summary>
public static class ExampleGrid
{
    /// <summary>The SVG for <paramref name="images"/> (side×side grey bytes each) with answers and truths.</summary>
    public static string Svg(string title, IReadOnlyList<byte[]> images, int side, IReadOnlyList<string> answers, IReadOnlyList<string> truths, int columns = 4, int scale = 4)
    {
        if (images.Count != answers.Count || images.Count != truths.Count) throw new ArgumentException("ExampleGrid: one answer and one truth per image.");
        return Draw(title, images.Count, side, side, i => (x, y) => { int v = Level(images[i][y * side + x]); return v << 16 | v << 8 | v; },
            i => null, answers, truths, columns, scale, captionWidth: 0);
    }

    /// <summary>
    /// The SVG for colour <paramref name="images"/> (all the same size), each with the question asked
    /// about it (one grey line), the model's answer and the true one.
    /// </summary>
    public static string Svg(string title, IReadOnlyList<RgbImage> images, IReadOnlyList<string> questions, IReadOnlyList<string> answers, IReadOnlyList<string> truths, int columns = 4, int scale = 3)
    {
        if (images.Count != answers.Count || images.Count != truths.Count || images.Count != questions.Count)
            throw new ArgumentException("ExampleGrid: one question, answer and truth per image.");
        if (images.Count == 0) throw new ArgumentException("ExampleGrid: no images.");
        int w = images[0].Width, h = images[0].Height;
        if (images.Any(im => im.Width != w || im.Height != h)) throw new ArgumentException($"ExampleGrid: images must all be {w}×{h}.");
        return Draw(title, images.Count, w, h, i => (x, y) =>
        {
            int o = (y * w + x) * 3;
            var rgb = images[i].Rgb;
            return rgb[o] << 16 | rgb[o + 1] << 8 | rgb[o + 2];
        }, i => questions[i], answers, truths, columns, scale, captionWidth: 300);
    }

    static string Draw(string title, int count, int w, int h, Func<int, Func<int, int, int>> pixels, Func<int, string?> question,
        IReadOnlyList<string> answers, IReadOnlyList<string> truths, int columns, int scale, int captionWidth)
    {
        bool withQuestions = Enumerable.Range(0, count).Any(i => question(i) is not null);
        int cellW = Math.Max(w * scale, captionWidth), cellH = h * scale, captionH = withQuestions ? 17 + 3 * 14 + 4 : 30, pad = 10, titleH = 28;
        int rows = (count + columns - 1) / columns;
        int width = columns * (cellW + pad) + pad, height = titleH + rows * (cellH + captionH + pad) + pad;
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, sans-serif\">\n");
        sb.Append(inv, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n<text x=\"{pad}\" y=\"19\" font-size=\"15\">{Escape(title)}</text>\n");
        for (int i = 0; i < count; i++)
        {
            int x0 = pad + (i % columns) * (cellW + pad), y0 = titleH + (i / columns) * (cellH + captionH + pad);
            int ix = x0 + (cellW - w * scale) / 2;
            var px = pixels(i);
            sb.Append(inv, $"<g transform=\"translate({ix},{y0}) scale({scale})\"><rect width=\"{w}\" height=\"{h}\" fill=\"black\"/>");
            for (int y = 0; y < h; y++)
                for (int x = 0; x < w;)
                {
                    int v = px(x, y);
                    int run = 1;
                    while (x + run < w && px(x + run, y) == v) run++;
                    if (v != 0) sb.Append(inv, $"<rect x=\"{x}\" y=\"{y}\" width=\"{run}\" height=\"1\" fill=\"#{v:X6}\"/>");
                    x += run;
                }
            sb.Append("</g>\n");
            int line = y0 + cellH + 17;
            if (question(i) is { } q)
            {
                sb.Append(inv, $"<text x=\"{x0 + cellW / 2}\" y=\"{line}\" font-size=\"10\" text-anchor=\"middle\" fill=\"#555555\">{Escape(q)}</text>\n");
                line += 17;
            }
            bool right = answers[i] == truths[i];
            string caption = right ? answers[i] : $"{answers[i]} (is {truths[i]})";
            foreach (var part in withQuestions ? Wrap(caption, captionWidth / 6) : [caption])
            {
                sb.Append(inv, $"<text x=\"{x0 + cellW / 2}\" y=\"{line + 2}\" font-size=\"{(withQuestions ? 11 : 13)}\" text-anchor=\"middle\" fill=\"{(right ? "#1a7f37" : "#cf222e")}\">{Escape(part)}</text>\n");
                line += 14;
            }
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    /// <summary>Lines of at most <paramref name="chars"/> characters, broken between words.</summary>
    static List<string> Wrap(string text, int chars)
    {
        var lines = new List<string>();
        var current = new StringBuilder();
        foreach (var word in text.Split(' '))
        {
            if (current.Length > 0 && current.Length + 1 + word.Length > chars) { lines.Add(current.ToString()); current.Clear(); }
            if (current.Length > 0) current.Append(' ');
            current.Append(word);
        }
        if (current.Length > 0) lines.Add(current.ToString());
        return lines;
    }

    static int Level(byte v) => (v >> 4) * 17;

    static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
