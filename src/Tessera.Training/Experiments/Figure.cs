using System.Text;
using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Legends;
using OxyPlot.Series;

namespace Tessera.Training.Experiments;

/// <summary>How a series is drawn.</summary>
public enum SeriesStyle
{
    /// <summary>Markers joined by straight lines (a measured curve such as loss against step).</summary>
    LineAndMarkers,
    /// <summary>Markers only, with error bars when the series has them (measurements a fitted law is drawn over).</summary>
    Markers,
    /// <summary>A smooth line without markers (a fitted law evaluated densely; see <see cref="Figure.Curve"/>).</summary>
    Curve,
    /// <summary>A dashed line without markers (a reference level such as a teacher's loss).</summary>
    Reference,
}

/// <summary>
/// One series of a <see cref="Figure"/>. Series with the same <see cref="Color"/> index share a
/// colour, so a fitted curve matches the measurements it was fitted to. A series without a
/// <see cref="Name"/> is left out of the legend.
/// </summary>
public sealed record PlotSeries(string? Name, IReadOnlyList<(double X, double Y)> Points, SeriesStyle Style, int Color)
{
    /// <summary>Half-width of each point's error bar in y (e.g. the standard deviation over repeated seeds); null for none.</summary>
    public IReadOnlyList<double>? YErrors { get; init; }
}

/// <summary>
/// An experiment figure drawn with OxyPlot: title, labelled axes (linear or log10), series of
/// measurements, fitted curves, error bars and reference lines, and a legend outside the plot.
/// <see cref="ToSvg"/> uses OxyPlot's managed SVG exporter (no native code, no system fonts: text
/// stays text and the browser picks the face); <see cref="ToPng"/> rasterises the same figure
/// with OxyPlot.SkiaSharp, which needs one font file on the machine (see <see cref="PngUnavailableReason"/>).
/// Points that are not finite, or not positive on a log axis, are left out, as are their error bars.
/// Text is plain: OxyPlot reads <c>^{..}</c> and <c>_{..}</c> as super- and subscript markup, so
/// series names and titles should not contain <c>^</c>.
/// </summary>
public sealed class Figure(string title, string xLabel, string yLabel, bool logX = false, bool logY = false)
{
    /// <summary>Width of the exported image, pixels.</summary>
    public const int Width = 760;
    /// <summary>Height of the exported image, pixels.</summary>
    public const int Height = 460;
    /// <summary>Points a <see cref="Curve"/> is sampled at unless told otherwise: enough to look smooth at <see cref="Width"/>.</summary>
    public const int CurvePoints = 160;

    // The matplotlib "tab10" palette: distinct in print and for the common colour-vision deficiencies.
    static readonly OxyColor[] Palette = [.. new[] { 0x1f77b4, 0xd62728, 0x2ca02c, 0xff7f0e, 0x9467bd, 0x8c564b, 0xe377c2, 0x7f7f7f, 0xbcbd22, 0x17becf }
        .Select(c => OxyColor.FromRgb((byte)(c >> 16), (byte)(c >> 8), (byte)c))];

    // SVG: faces with Helvetica's metrics first, for browsers; PNG: the face Debian always has once any font is installed.
    const string SvgFont = "Liberation Sans, Arial, Helvetica, DejaVu Sans, sans-serif", PngFont = "DejaVu Sans";

    readonly List<PlotSeries> series = [];

    /// <summary>The figure's title.</summary>
    public string Title { get; } = title;
    /// <summary>Whether the x axis is log10.</summary>
    public bool LogX { get; } = logX;
    /// <summary>Whether the y axis is log10.</summary>
    public bool LogY { get; } = logY;
    /// <summary>The series in drawing order.</summary>
    public IReadOnlyList<PlotSeries> Series => series;

    /// <summary>How the SVG export writes colour index <paramref name="index"/> (e.g. <c>rgb(31,119,180)</c>).</summary>
    internal static string SvgColor(int index)
    {
        var c = Palette[index % Palette.Length];
        return $"rgb({c.R},{c.G},{c.B})";
    }

    /// <summary>Adds a series; returns this figure.</summary>
    public Figure Add(PlotSeries s)
    {
        ArgumentNullException.ThrowIfNull(s);
        if (s.YErrors is { } e && e.Count != s.Points.Count)
            throw new ArgumentException($"Series '{s.Name}': {s.Points.Count} points but {e.Count} error bars.");
        series.Add(s);
        return this;
    }

    /// <summary>Adds measurements drawn as markers (with ± <paramref name="yErrors"/> bars when given); returns this figure.</summary>
    public Figure Measured(string? name, IReadOnlyList<(double X, double Y)> points, int color, IReadOnlyList<double>? yErrors = null)
        => Add(new PlotSeries(name, points, SeriesStyle.Markers, color) { YErrors = yErrors });

    /// <summary>
    /// Adds <paramref name="f"/> sampled at <paramref name="points"/> x values from <paramref name="from"/>
    /// to <paramref name="to"/> (evenly in log x on a log x axis) as a smooth line; returns this figure.
    /// </summary>
    public Figure Curve(string? name, Func<double, double> f, double from, double to, int color, int points = CurvePoints)
    {
        ArgumentNullException.ThrowIfNull(f);
        if (points < 2) throw new ArgumentOutOfRangeException(nameof(points), points, "A curve needs at least 2 points.");
        if (LogX && !(from > 0 && to > 0)) throw new ArgumentException($"Curve '{name}' on a log x axis needs a positive range, got [{from}, {to}].");
        var xy = new List<(double, double)>(points);
        for (int i = 0; i < points; i++)
        {
            double t = (double)i / (points - 1);
            double x = LogX ? Math.Exp(Math.Log(from) + t * (Math.Log(to) - Math.Log(from))) : from + t * (to - from);
            xy.Add((x, f(x)));
        }
        return Add(new PlotSeries(name, xy, SeriesStyle.Curve, color));
    }

    /// <summary>The figure as a standalone SVG document (UTF-8 text, no DOCTYPE, no byte-order mark).</summary>
    public string ToSvg()
    {
        var model = Build(SvgFont);
        using var ms = new MemoryStream();
        // Text is laid out with a real font's metrics where one is installed (Skia resolves the
        // family list to the default face, DejaVu Sans on Debian: wider than Liberation/Arial, so a
        // browser's text fits the room left for it). Without fonts, OxyPlot's built-in metrics,
        // which run narrow in browsers; the SVG is still complete.
        using var measurer = PngUnavailableReason is null ? new OxyPlot.SkiaSharp.SkiaRenderContext() : null;
        new SvgExporter { Width = Width, Height = Height, TextMeasurer = measurer }.Export(model, ms);
        string svg = new UTF8Encoding(false).GetString(ms.ToArray()).TrimStart('\uFEFF');
        // The SVG 1.1 DOCTYPE only makes XML readers fetch or refuse a DTD; browsers ignore it.
        int doctype = svg.IndexOf("<!DOCTYPE", StringComparison.Ordinal);
        if (doctype >= 0) svg = svg.Remove(doctype, svg.IndexOf('>', doctype) - doctype + 1).Replace("\r\n\r\n", "\r\n").Replace("\n\n", "\n");
        return svg;
    }

    /// <summary>The figure as PNG bytes, <see cref="Width"/> × <see cref="Height"/> pixels.</summary>
    /// <exception cref="InvalidOperationException">PNG cannot be drawn here; the message is <see cref="PngUnavailableReason"/>.</exception>
    public byte[] ToPng()
    {
        if (PngUnavailableReason is { } why) throw new InvalidOperationException(why);
        var model = Build(PngFont);
        using var ms = new MemoryStream();
        new OxyPlot.SkiaSharp.PngExporter { Width = Width, Height = Height }.Export(model, ms);
        return ms.ToArray();
    }

    /// <summary>
    /// Null when PNGs can be drawn; otherwise why not. The rasteriser (SkiaSharp, bundled without
    /// system dependencies) needs at least one font file under the usual font folders to draw
    /// text: Debian's <c>fonts-dejavu-core</c> is enough.
    /// </summary>
    public static string? PngUnavailableReason => pngUnavailable.Value;

    static readonly Lazy<string?> pngUnavailable = new(() =>
    {
        try
        {
            // What OxyPlot.SkiaSharp does with a family name: resolve it (unknown names give the
            // default face) and read the font file for text shaping. With no font file that
            // stream is null and the export would throw.
            foreach (var family in new[] { PngFont, SvgFont })
            {
                var face = SkiaSharp.SKTypeface.FromFamilyName(family) ?? SkiaSharp.SKTypeface.Default;
                using var data = face?.OpenStream();
                if (data is null || data.Length == 0)
                    return "no font is installed, so PNG plots cannot draw text (install one, e.g. Debian's fonts-dejavu-core); the SVG beside it is complete";
            }
            return null;
        }
        catch (Exception e) when (e is DllNotFoundException or TypeInitializationException or BadImageFormatException)
        {
            return $"the SkiaSharp rasteriser does not load on this platform ({e.GetBaseException().Message}); the SVG is complete";
        }
    });

    /// <summary>Writes <c>STEM.svg</c> and, where PNGs can be drawn, <c>STEM.png</c> into <paramref name="dir"/> (atomically); returns the paths written.</summary>
    public IReadOnlyList<string> Save(string dir, string stem)
    {
        var written = new List<string>(2);
        string svg = Path.Combine(dir, stem + ".svg");
        Kernels.IO.AtomicFile.WriteAllText(svg, ToSvg());
        written.Add(svg);
        if (PngUnavailableReason is null)
        {
            string png = Path.Combine(dir, stem + ".png");
            Kernels.IO.AtomicFile.WriteAllBytes(png, ToPng());
            written.Add(png);
        }
        return written;
    }

    /// <summary>A fresh OxyPlot model of the figure (a model is built per export, so exports never share render state).</summary>
    PlotModel Build(string font)
    {
        var model = new PlotModel
        {
            Title = Title, TitleFontSize = 14, TitleFontWeight = FontWeights.Bold, DefaultFont = font, DefaultFontSize = 12, Background = OxyColors.White,
            TitleHorizontalAlignment = TitleHorizontalAlignment.CenteredWithinView, ClipTitle = false,
            PlotAreaBorderColor = OxyColor.FromRgb(0x33, 0x33, 0x33), Padding = new OxyThickness(8, 8, 24, 8),
        };
        model.Axes.Add(Axis(AxisPosition.Bottom, xLabel, LogX));
        model.Axes.Add(Axis(AxisPosition.Left, yLabel, LogY));
        model.Legends.Add(new Legend
        {
            LegendPlacement = LegendPlacement.Outside, LegendPosition = LegendPosition.RightTop, LegendBorder = OxyColors.Transparent,
            LegendBackground = OxyColors.White, LegendFontSize = 11, LegendSymbolLength = 22,
        });
        bool Keep(double x, double y) => double.IsFinite(x) && double.IsFinite(y) && (!LogX || x > 0) && (!LogY || y > 0);
        foreach (var s in series)
        {
            var color = Palette[s.Color % Palette.Length];
            if (s.Style == SeriesStyle.Markers)
            {
                var scatter = new ScatterErrorSeries
                {
                    Title = s.Name, MarkerType = MarkerType.Circle, MarkerSize = 4, MarkerFill = color, MarkerStroke = OxyColors.White,
                    MarkerStrokeThickness = 0.75, ErrorBarColor = color, ErrorBarStrokeThickness = 1.2, ErrorBarStopWidth = 3,
                };
                for (int i = 0; i < s.Points.Count; i++)
                {
                    var (x, y) = s.Points[i];
                    if (!Keep(x, y)) continue;
                    double err = s.YErrors is { } e && double.IsFinite(e[i]) ? Math.Abs(e[i]) : 0;
                    if (LogY && y - err <= 0) err = 0;                  // a bar through zero has no place on a log axis
                    scatter.Points.Add(new ScatterErrorPoint(x, y, 0, err));
                }
                model.Series.Add(scatter);
                continue;
            }
            var line = new LineSeries
            {
                Title = s.Name, Color = color, StrokeThickness = s.Style == SeriesStyle.Curve ? 1.8 : 1.6,
                LineStyle = s.Style == SeriesStyle.Reference ? LineStyle.Dash : LineStyle.Solid,
                MarkerType = s.Style == SeriesStyle.LineAndMarkers ? MarkerType.Circle : MarkerType.None, MarkerSize = 3, MarkerFill = color,
                // Keep every sampled point of a curve (the default merges points closer than 2 px).
                MinimumSegmentLength = 0,
            };
            foreach (var (x, y) in s.Points) if (Keep(x, y)) line.Points.Add(new DataPoint(x, y));
            model.Series.Add(line);
        }
        return model;
    }

    /// <summary>Log-axis tick labels: plain numbers from 0.001 to 10⁴, else mantissa and exponent such as <c>2e8</c>.</summary>
    static string LogLabel(double v)
    {
        var inv = System.Globalization.CultureInfo.InvariantCulture;
        if (v == 0 || (Math.Abs(v) >= 1e-3 && Math.Abs(v) < 1e4)) return v.ToString("G4", inv);
        int exponent = (int)Math.Floor(Math.Log10(Math.Abs(v)) + 1e-9);
        double mantissa = v / Math.Pow(10, exponent);
        return $"{mantissa.ToString("0.##", inv)}e{exponent}";
    }

    static Axis Axis(AxisPosition position, string title, bool log)
    {
        Axis axis = log ? new LogarithmicAxis { Base = 10, UseSuperExponentialFormat = false } : new LinearAxis();
        axis.Position = position;
        axis.Title = log ? title + " (log scale)" : title;
        axis.MajorGridlineStyle = LineStyle.Solid;
        axis.MajorGridlineColor = OxyColor.FromRgb(0xe0, 0xe0, 0xe0);
        axis.MinorGridlineStyle = log ? LineStyle.Dot : LineStyle.None;
        axis.MinorGridlineColor = OxyColor.FromRgb(0xee, 0xee, 0xee);
        axis.TickStyle = TickStyle.Outside;
        // Room for tick labels that a browser draws wider than the SVG exporter measured them.
        axis.AxisTitleDistance = position == AxisPosition.Left ? 14 : 6;
        if (log) axis.LabelFormatter = LogLabel;
        return axis;
    }
}
