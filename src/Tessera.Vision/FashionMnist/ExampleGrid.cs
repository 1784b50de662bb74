using System.Globalization;
using System.Text;

namespace Tessera.Vision.FashionMnist;

/// <summary>
/// A grid of grey example images with the model's answer under each (green when right, red with the
/// true label when wrong), as one self-contained SVG: each image row is drawn as runs of equal grey,
/// with greys rounded to 16 levels so the runs are long enough to keep the file small (~10× smaller).
/// </summary>
public static class ExampleGrid
{
    /// <summary>The SVG for <paramref name="images"/> (side×side grey bytes each) with answers and truths.</summary>
    public static string Svg(string title, IReadOnlyList<byte[]> images, int side, IReadOnlyList<string> answers, IReadOnlyList<string> truths, int columns = 4, int scale = 4)
    {
        if (images.Count != answers.Count || images.Count != truths.Count) throw new ArgumentException("ExampleGrid: one answer and one truth per image.");
        int cell = side * scale, captionH = 30, pad = 10, titleH = 28;
        int rows = (images.Count + columns - 1) / columns;
        int width = columns * (cell + pad) + pad, height = titleH + rows * (cell + captionH + pad) + pad;
        var inv = CultureInfo.InvariantCulture;
        var sb = new StringBuilder();
        sb.Append(inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{width}\" height=\"{height}\" viewBox=\"0 0 {width} {height}\" font-family=\"DejaVu Sans, sans-serif\">\n");
        sb.Append(inv, $"<rect width=\"{width}\" height=\"{height}\" fill=\"white\"/>\n<text x=\"{pad}\" y=\"19\" font-size=\"15\">{Escape(title)}</text>\n");
        for (int i = 0; i < images.Count; i++)
        {
            int x0 = pad + (i % columns) * (cell + pad), y0 = titleH + (i / columns) * (cell + captionH + pad);
            sb.Append(inv, $"<g transform=\"translate({x0},{y0}) scale({scale})\"><rect width=\"{side}\" height=\"{side}\" fill=\"black\"/>");
            var img = images[i];
            for (int y = 0; y < side; y++)
                for (int x = 0; x < side;)
                {
                    int v = Level(img[y * side + x]);
                    int run = 1;
                    while (x + run < side && Level(img[y * side + x + run]) == v) run++;
                    if (v != 0) sb.Append(inv, $"<rect x=\"{x}\" y=\"{y}\" width=\"{run}\" height=\"1\" fill=\"#{v:X2}{v:X2}{v:X2}\"/>");
                    x += run;
                }
            sb.Append("</g>\n");
            bool right = answers[i] == truths[i];
            string caption = right ? answers[i] : $"{answers[i]} (is {truths[i]})";
            sb.Append(inv, $"<text x=\"{x0 + cell / 2}\" y=\"{y0 + cell + 19}\" font-size=\"13\" text-anchor=\"middle\" fill=\"{(right ? "#1a7f37" : "#cf222e")}\">{Escape(caption)}</text>\n");
        }
        sb.Append("</svg>\n");
        return sb.ToString();
    }

    static int Level(byte v) => (v >> 4) * 17;

    static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;");
}
