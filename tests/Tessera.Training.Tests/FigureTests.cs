using System.Buffers.Binary;
using System.Globalization;
using System.Xml.Linq;
using Tessera.Training.Experiments;

namespace Tessera.Training.Tests;

/// <summary>A fact that is skipped, with the reason, where PNG plots cannot be drawn (no font installed).</summary>
public sealed class PngFactAttribute : FactAttribute
{
    /// <summary>Skips when <see cref="Figure.PngUnavailableReason"/> is set.</summary>
    public PngFactAttribute()
    {
        if (Figure.PngUnavailableReason is { } why) Skip = $"PNG plots unavailable here: {why}.";
    }
}

/// <summary>Figures drawn with OxyPlot: what the SVG holds (series, curves, error bars, log scaling) and the PNG beside it.</summary>
public class FigureTests
{
    static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    /// <summary>Where <c>TESSERA_PLOT_SAMPLES</c> names a folder, the figures are also copied there to be looked at.</summary>
    internal static void Keep(string dir)
    {
        if (Environment.GetEnvironmentVariable("TESSERA_PLOT_SAMPLES") is not { Length: > 0 } samples) return;
        Directory.CreateDirectory(samples);
        foreach (var f in Directory.GetFiles(dir).Where(f => f.EndsWith(".svg") || f.EndsWith(".png")))
            File.Copy(f, Path.Combine(samples, Path.GetFileName(f)), overwrite: true);
    }

    /// <summary>The point lists of the polylines stroked in colour index <paramref name="color"/>, longest first.</summary>
    internal static List<double[][]> Polylines(XDocument doc, int color) => [.. doc.Descendants(Svg + "polyline")
        .Where(p => ((string?)p.Attribute("style") ?? "").Contains($"stroke:{Figure.SvgColor(color)}", StringComparison.Ordinal))
        .Select(p => p.Attribute("points")!.Value.Split(' ', StringSplitOptions.RemoveEmptyEntries)
            .Select(xy => xy.Split(',').Select(v => double.Parse(v, CultureInfo.InvariantCulture)).ToArray()).ToArray())
        .OrderByDescending(p => p.Length)];

    static List<string> Texts(XDocument doc) => [.. doc.Descendants(Svg + "text").Select(t => t.Value)];

    [Fact]
    public void FittedCurve_IsDrawnDensely_OverTheMeasuredPoints_InTheSameColour()
    {
        (double, double)[] measured = [(1e5, 3.1), (3e5, 2.7), (1e6, 2.45), (3e6, 2.32), (1e7, 2.27)];
        static double Law(double n) => 2.2 + 900 / Math.Pow(n, 0.6);
        var figure = new Figure("loss vs N", "N", "loss", logX: true)
            .Measured("C = 1e12", measured, 0)
            .Curve(null, Law, 5e4, 2e7, 0)
            .Measured("C = 4e12", [.. measured.Select(p => (p.Item1, p.Item2 - 0.2))], 1)
            .Curve(null, n => Law(n) - 0.2, 5e4, 2e7, 1);
        var doc = XDocument.Parse(figure.ToSvg());

        Assert.Equal(4, figure.Series.Count);
        Assert.Equal([SeriesStyle.Markers, SeriesStyle.Curve, SeriesStyle.Markers, SeriesStyle.Curve], figure.Series.Select(s => s.Style));
        foreach (int color in new[] { 0, 1 })
        {
            var curve = Polylines(doc, color)[0];
            Assert.Equal(Figure.CurvePoints, curve.Length);
            Assert.True(curve.Length >= 20 * measured.Length, $"curve {color}: {curve.Length} points for {measured.Length} measurements");
            // Sampled evenly in log N, the curve's screen x steps are even.
            var steps = curve.Zip(curve.Skip(1), (a, b) => b[0] - a[0]).ToArray();
            Assert.True(steps.Max() - steps.Min() < 0.01 + 1e-3 * steps.Average(), $"uneven x steps {steps.Min()}..{steps.Max()}");
        }
        // Measured points are markers: no series line joins them, but both appear in the legend.
        var texts = Texts(doc);
        Assert.Contains("C = 1e12", texts);
        Assert.Contains("C = 4e12", texts);
        Assert.Contains("loss vs N", texts);
    }

    [Fact]
    public void ErrorBars_SpanPlusMinusTheGivenError()
    {
        (double, double)[] points = [(1, 2.0), (2, 1.5), (4, 1.2)];
        double[] errors = [0.2, 0.1, 0.05];
        var doc = XDocument.Parse(new Figure("seeds", "epochs", "loss").Measured("mean of 3 seeds", points, 2, errors).ToSvg());
        // Each bar is a vertical segment in the series colour; its length in pixels is proportional to 2 × error.
        var bars = Polylines(doc, 2).Where(p => p.Length == 2 && Math.Abs(p[0][0] - p[1][0]) < 1e-6 && Math.Abs(p[0][1] - p[1][1]) > 1).ToList();
        Assert.Equal(points.Length, bars.Count);
        var lengths = bars.OrderBy(b => b[0][0]).Select(b => Math.Abs(b[0][1] - b[1][1])).ToArray();
        for (int i = 1; i < lengths.Length; i++) Assert.Equal(errors[i] / errors[0], lengths[i] / lengths[0], 3);
        Assert.Throws<ArgumentException>(() => new Figure("t", "x", "y").Measured("bad", points, 0, [0.1]));
    }

    [Fact]
    public void LogAxes_PutEqualRatiosAtEqualDistances_AndHigherYHigher()
    {
        var pts = new List<(double, double)> { (1, 10), (10, 1000), (100, 100000) };
        var doc = XDocument.Parse(SvgPlot.Lines("t", "x", "y", [("s", pts)], logX: true, logY: true));
        var xy = Polylines(doc, 0)[0];
        Assert.Equal(3, xy.Length);
        foreach (var p in xy) { Assert.InRange(p[0], 0, Figure.Width); Assert.InRange(p[1], 0, Figure.Height); }
        Assert.True(xy[0][1] > xy[1][1] && xy[1][1] > xy[2][1]);
        Assert.Equal(xy[1][0] - xy[0][0], xy[2][0] - xy[1][0], 2);
        Assert.Equal(xy[0][1] - xy[1][1], xy[1][1] - xy[2][1], 2);
        Assert.Contains("x (log scale)", Texts(doc));
    }

    [PngFact]
    public void Save_WritesAnSvgAndAPngOfTheStatedSize()
    {
        using var tmp = new TempDir();
        var figure = new Figure("saved", "x", "y").Measured("m", [(0, 1), (1, 2)], 0).Curve("f", x => 1 + x * x, 0, 1, 0);
        var files = figure.Save(tmp.Path, "fig");
        Assert.Equal([Path.Combine(tmp.Path, "fig.svg"), Path.Combine(tmp.Path, "fig.png")], files);
        XDocument.Parse(File.ReadAllText(files[0]));
        byte[] png = File.ReadAllBytes(files[1]);
        Assert.True(png.AsSpan(0, 8).SequenceEqual(new byte[] { 0x89, (byte)'P', (byte)'N', (byte)'G', 0x0D, 0x0A, 0x1A, 0x0A }), "PNG signature");
        Assert.Equal("IHDR", System.Text.Encoding.ASCII.GetString(png, 12, 4));
        Assert.Equal(Figure.Width, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(16)));
        Assert.Equal(Figure.Height, BinaryPrimitives.ReadInt32BigEndian(png.AsSpan(20)));
        Assert.True(png.Length > 5_000, $"a {png.Length}-byte PNG is too small to hold text and lines");
        Keep(tmp.Path);
    }
}
