using System.Text.Json;
using System.Xml.Linq;
using Tessera.Training.Experiments;

namespace Tessera.Training.Tests;

/// <summary>The shared experiment report writer: SVG line plots and the results/report files.</summary>
public class DistillReportTests
{
    static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [Fact]
    public void Plot_is_well_formed_svg_with_one_line_per_series_and_a_legend()
    {
        var a = new List<(double, double)> { (0, 3.5), (100, 2.5), (200, 2.1) };
        var b = new List<(double, double)> { (0, 3.4), (100, double.NaN), (200, 1.9) };
        string svg = SvgPlot.Lines("bpb <vs> step", "step", "bits per byte", [("scratch", a), ("distilled & co", b)]);
        var doc = XDocument.Parse(svg);                  // throws if escaping is wrong
        Assert.Equal(3, FigureTests.Polylines(doc, 0)[0].Length);
        Assert.Equal(2, FigureTests.Polylines(doc, 1)[0].Length);   // the NaN point is skipped
        Assert.Empty(FigureTests.Polylines(doc, 2));                 // two series, two colours
        var texts = doc.Descendants(Svg + "text").Select(t => t.Value).ToList();
        Assert.Contains("bpb <vs> step", texts);
        Assert.Contains("scratch", texts);
        Assert.Contains("distilled & co", texts);
        Assert.Contains("step", texts);
        // The y tick labels are about the data [1.9, 3.5]: several of them, none far outside it.
        var yTicks = doc.Descendants(Svg + "text").Where(t => (string?)t.Attribute("text-anchor") == "end")
            .Select(t => double.TryParse(t.Value, System.Globalization.CultureInfo.InvariantCulture, out double v) ? v : double.NaN)
            .Where(double.IsFinite).ToList();
        Assert.True(yTicks.Count >= 3 && yTicks.Min() >= 1.9 - 0.5 && yTicks.Max() <= 3.5 + 0.5 && yTicks.Max() - yTicks.Min() >= 0.5 * (3.5 - 1.9), string.Join(",", yTicks));
    }

    [Fact]
    public void Empty_and_constant_series_still_give_valid_svg()
    {
        XDocument.Parse(SvgPlot.Lines("empty", "x", "y", []));
        XDocument.Parse(SvgPlot.Lines("flat", "x", "y", [("teacher", new List<(double, double)> { (0, 1.5), (10, 1.5) })]));
    }

    [Fact]
    public void Report_writes_results_markdown_and_plots()
    {
        using var tmp = new TempDir();
        string dir = tmp.File("run");
        var files = ExperimentReport.Write(dir, "Distillation", new { TeacherBpb = 1.5, Diverged = double.NaN },
            "Teacher 1.5 bpb.\n\n![bpb](bpb.svg)\n", new Dictionary<string, string> { ["bpb"] = "<svg/>" });
        Assert.Equal(3, files.Count);
        using var json = JsonDocument.Parse(File.ReadAllText(Path.Combine(dir, "results.json")));
        Assert.Equal(1.5, json.RootElement.GetProperty("teacher_bpb").GetDouble());
        Assert.Equal("NaN", json.RootElement.GetProperty("diverged").GetString());
        Assert.StartsWith("# Distillation\n\nTeacher 1.5 bpb.", File.ReadAllText(Path.Combine(dir, "report.md")));
        Assert.Equal("<svg/>", File.ReadAllText(Path.Combine(dir, "bpb.svg")));
        Assert.Throws<ArgumentException>(() => ExperimentReport.Write(dir, "x", new { }, "", new Dictionary<string, string> { ["../evil"] = "" }));
    }

}
