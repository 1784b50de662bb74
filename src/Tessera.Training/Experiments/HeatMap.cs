using System.Text;
using OxyPlot;
using OxyPlot.Axes;
using OxyPlot.Series;

namespace Tessera.Training.Experiments;

/// <summary>
/// A labelled heat map (rows × columns of values, e.g. expert use by domain), exported as SVG with
/// the same OxyPlot exporter and size as <see cref="Figure"/>; each cell is annotated with its value.
/// </summary>
public sealed class HeatMap(string title, IReadOnlyList<string> rows, IReadOnlyList<string> columns, double[,] values)
{
    /// <summary>The heat map as a standalone SVG document.</summary>
    public string ToSvg()
    {
        if (values.GetLength(0) != rows.Count || values.GetLength(1) != columns.Count)
            throw new ArgumentException($"HeatMap: {values.GetLength(0)}×{values.GetLength(1)} values for {rows.Count} rows × {columns.Count} columns.");
        var model = new PlotModel { Title = title, TitleFontSize = 14, DefaultFont = "Arial", DefaultFontSize = 12, Background = OxyColors.White };
        // Cells sit at integer coordinates: x = column, y = row, labelled by category axes.
        var x = new CategoryAxis { Position = AxisPosition.Bottom, Key = "x", GapWidth = 0 };
        foreach (var c in columns) x.Labels.Add(c);
        var y = new CategoryAxis { Position = AxisPosition.Left, Key = "y", GapWidth = 0 };
        foreach (var r in rows) y.Labels.Add(r);
        model.Axes.Add(x);
        model.Axes.Add(y);
        model.Axes.Add(new LinearColorAxis { Position = AxisPosition.Right, Palette = OxyPalettes.Viridis(200), Minimum = 0 });
        var data = new double[columns.Count, rows.Count];
        for (int r = 0; r < rows.Count; r++) for (int c = 0; c < columns.Count; c++) data[c, r] = values[r, c];
        model.Series.Add(new HeatMapSeries
        {
            X0 = 0, X1 = columns.Count - 1, Y0 = 0, Y1 = rows.Count - 1, Data = data, XAxisKey = "x", YAxisKey = "y",
            RenderMethod = HeatMapRenderMethod.Rectangles, LabelFontSize = 0.25, LabelFormatString = "0.000", CoordinateDefinition = HeatMapCoordinateDefinition.Center,
        });
        using var ms = new MemoryStream();
        new SvgExporter { Width = Figure.Width, Height = Math.Max(Figure.Height, 60 + 28 * rows.Count) }.Export(model, ms);
        return new UTF8Encoding(false).GetString(ms.ToArray()).TrimStart('\uFEFF');
    }

    /// <summary>Writes <c>STEM.svg</c> into <paramref name="dir"/> atomically; returns its path.</summary>
    public string Save(string dir, string stem)
    {
        string path = Path.Combine(dir, stem + ".svg");
        Kernels.IO.AtomicFile.WriteAllText(path, ToSvg());
        return path;
    }
}
