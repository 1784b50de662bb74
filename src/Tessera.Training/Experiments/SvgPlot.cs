using System.Globalization;
using System.Text;

namespace Tessera.Training.Experiments;

/// <summary>
/// A self-contained SVG line chart for experiment reports: a title, labelled axes with "nice"
/// ticks (linear or log10), one polyline with markers per series and a legend. No scripts, no
/// external fonts or styles, so the file renders the same in a browser, an IDE preview or a
/// Markdown viewer. Points that are not finite (or not positive on a log axis) are skipped.
/// </summary>
public static class SvgPlot
{
    const int Width = 720, Height = 440;
    const int Left = 72, Right = 190, Top = 44, Bottom = 56;
    static readonly string[] Palette = ["#1f77b4", "#d62728", "#2ca02c", "#ff7f0e", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f", "#bcbd22", "#17becf"];
    static readonly CultureInfo Inv = CultureInfo.InvariantCulture;

    /// <summary>
    /// Draws <paramref name="series"/> (name, points) as lines against shared axes and returns the
    /// SVG document. <paramref name="logX"/>/<paramref name="logY"/> use log10 axes.
    /// </summary>
    public static string Lines(string title, string xLabel, string yLabel,
        IReadOnlyList<(string name, IReadOnlyList<(double x, double y)> points)> series,
        bool logX = false, bool logY = false)
    {
        ArgumentNullException.ThrowIfNull(series);
        var x = new Axis(logX); var y = new Axis(logY);
        foreach (var (_, points) in series)
            foreach (var (px, py) in points)
                if (x.Accepts(px) && y.Accepts(py)) { x.Include(px); y.Include(py); }
        x.Finish(); y.Finish();

        double plotW = Width - Left - Right, plotH = Height - Top - Bottom;
        double Sx(double v) => Left + x.Fraction(v) * plotW;
        double Sy(double v) => Top + (1 - y.Fraction(v)) * plotH;

        var svg = new StringBuilder();
        svg.Append(Inv, $"<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{Width}\" height=\"{Height}\" viewBox=\"0 0 {Width} {Height}\" font-family=\"sans-serif\" font-size=\"12\">\n");
        svg.Append(Inv, $"<rect width=\"{Width}\" height=\"{Height}\" fill=\"white\"/>\n");
        svg.Append(Inv, $"<text x=\"{Left + plotW / 2:0.#}\" y=\"24\" text-anchor=\"middle\" font-size=\"15\" font-weight=\"bold\">{Escape(title)}</text>\n");

        // Grid and tick labels first, so the data lines draw on top.
        foreach (double t in x.Ticks())
        {
            double px = Sx(t);
            svg.Append(Inv, $"<line x1=\"{px:0.##}\" y1=\"{Top}\" x2=\"{px:0.##}\" y2=\"{Top + plotH:0.##}\" stroke=\"#e5e5e5\"/>\n");
            svg.Append(Inv, $"<text x=\"{px:0.##}\" y=\"{Top + plotH + 16:0.##}\" text-anchor=\"middle\">{Escape(x.Label(t))}</text>\n");
        }
        foreach (double t in y.Ticks())
        {
            double py = Sy(t);
            svg.Append(Inv, $"<line x1=\"{Left}\" y1=\"{py:0.##}\" x2=\"{Left + plotW:0.##}\" y2=\"{py:0.##}\" stroke=\"#e5e5e5\"/>\n");
            svg.Append(Inv, $"<text x=\"{Left - 6}\" y=\"{py + 4:0.##}\" text-anchor=\"end\">{Escape(y.Label(t))}</text>\n");
        }
        svg.Append(Inv, $"<rect x=\"{Left}\" y=\"{Top}\" width=\"{plotW:0.##}\" height=\"{plotH:0.##}\" fill=\"none\" stroke=\"#333\"/>\n");
        svg.Append(Inv, $"<text x=\"{Left + plotW / 2:0.##}\" y=\"{Height - 14}\" text-anchor=\"middle\">{Escape(xLabel)}{(logX ? " (log)" : "")}</text>\n");
        svg.Append(Inv, $"<text x=\"18\" y=\"{Top + plotH / 2:0.##}\" text-anchor=\"middle\" transform=\"rotate(-90 18 {Top + plotH / 2:0.##})\">{Escape(yLabel)}{(logY ? " (log)" : "")}</text>\n");

        for (int s = 0; s < series.Count; s++)
        {
            var (name, points) = series[s];
            string color = Palette[s % Palette.Length];
            var path = new StringBuilder();
            var markers = new StringBuilder();
            foreach (var (px, py) in points)
            {
                if (!x.Accepts(px) || !y.Accepts(py)) continue;
                double cx = Sx(px), cy = Sy(py);
                path.Append(Inv, $"{(path.Length == 0 ? "" : " ")}{cx:0.##},{cy:0.##}");
                markers.Append(Inv, $"<circle cx=\"{cx:0.##}\" cy=\"{cy:0.##}\" r=\"2.5\" fill=\"{color}\"/>\n");
            }
            if (path.Length > 0)
                svg.Append(Inv, $"<polyline fill=\"none\" stroke=\"{color}\" stroke-width=\"2\" points=\"{path}\"/>\n").Append(markers);
            double ly = Top + 10 + s * 20;
            svg.Append(Inv, $"<line x1=\"{Left + plotW + 14:0.##}\" y1=\"{ly:0.##}\" x2=\"{Left + plotW + 38:0.##}\" y2=\"{ly:0.##}\" stroke=\"{color}\" stroke-width=\"2\"/>\n");
            svg.Append(Inv, $"<text x=\"{Left + plotW + 44:0.##}\" y=\"{ly + 4:0.##}\">{Escape(name)}</text>\n");
        }
        svg.Append("</svg>\n");
        return svg.ToString();
    }

    static string Escape(string s) => s.Replace("&", "&amp;").Replace("<", "&lt;").Replace(">", "&gt;").Replace("\"", "&quot;");

    /// <summary>One axis: the data range (in log10 units on a log axis), padded and rounded to ticks.</summary>
    sealed class Axis(bool log)
    {
        double lo = double.PositiveInfinity, hi = double.NegativeInfinity, step;

        public bool Accepts(double v) => double.IsFinite(v) && (!log || v > 0);
        public void Include(double v) { double u = log ? Math.Log10(v) : v; lo = Math.Min(lo, u); hi = Math.Max(hi, u); }

        public void Finish()
        {
            if (lo > hi) { lo = 0; hi = 1; }                        // no data: an empty unit axis
            if (hi - lo < 1e-12 * Math.Max(1, Math.Abs(hi))) { double pad = Math.Max(Math.Abs(hi) * 0.05, log ? 0.5 : 0.5); lo -= pad; hi += pad; }
            if (log) { lo = Math.Floor(lo); hi = Math.Ceiling(hi); step = Math.Max(1, Math.Ceiling((hi - lo) / 8)); return; }
            step = NiceStep((hi - lo) / 6);
            lo = Math.Floor(lo / step) * step;
            hi = Math.Ceiling(hi / step) * step;
        }

        public double Fraction(double v) => ((log ? Math.Log10(v) : v) - lo) / (hi - lo);

        public IEnumerable<double> Ticks()
        {
            int n = (int)Math.Round((hi - lo) / step);
            for (int i = 0; i <= n; i++)
            {
                double u = lo + i * step;
                yield return log ? Math.Pow(10, u) : u;
            }
        }

        public string Label(double v)
        {
            if (log) return v.ToString("G3", Inv);
            if (Math.Abs(v) < step * 1e-6) return "0";
            int decimals = Math.Max(0, (int)Math.Ceiling(-Math.Log10(step) - 1e-9));
            return Math.Abs(v) >= 1e6 ? v.ToString("G3", Inv) : v.ToString("F" + Math.Min(decimals, 6), Inv);
        }

        /// <summary>The smallest 1, 2 or 5 × 10^k at least <paramref name="raw"/>.</summary>
        static double NiceStep(double raw)
        {
            double p = Math.Pow(10, Math.Floor(Math.Log10(raw)));
            double f = raw / p;
            return (f <= 1 ? 1 : f <= 2 ? 2 : f <= 5 ? 5 : 10) * p;
        }
    }
}
