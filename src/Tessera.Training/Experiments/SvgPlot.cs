namespace Tessera.Training.Experiments;

/// <summary>
/// The original one-call line chart of experiment reports, now drawn by <see cref="Figure"/>
/// (OxyPlot): one line with markers per series in palette order, shared axes (linear or log10)
/// and a legend. Points that are not finite (or not positive on a log axis) are skipped. For
/// fitted curves, error bars or a PNG beside the SVG, build a <see cref="Figure"/> instead.
/// </summary>
public static class SvgPlot
{
    /// <summary>
    /// Draws <paramref name="series"/> (name, points) as lines against shared axes and returns the
    /// SVG document. <paramref name="logX"/>/<paramref name="logY"/> use log10 axes.
    /// </summary>
    public static string Lines(string title, string xLabel, string yLabel,
        IReadOnlyList<(string name, IReadOnlyList<(double x, double y)> points)> series,
        bool logX = false, bool logY = false)
        => Figure(title, xLabel, yLabel, series, logX, logY).ToSvg();

    /// <summary>The <see cref="Experiments.Figure"/> that <see cref="Lines"/> draws, for callers that also want the PNG.</summary>
    public static Figure Figure(string title, string xLabel, string yLabel,
        IReadOnlyList<(string name, IReadOnlyList<(double x, double y)> points)> series,
        bool logX = false, bool logY = false)
    {
        ArgumentNullException.ThrowIfNull(series);
        var figure = new Figure(title, xLabel, yLabel, logX, logY);
        for (int i = 0; i < series.Count; i++)
            figure.Add(new PlotSeries(series[i].name, [.. series[i].points.Select(p => (p.x, p.y))], SeriesStyle.LineAndMarkers, i));
        return figure;
    }
}
