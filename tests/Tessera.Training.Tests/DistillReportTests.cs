using System.Text.Json;
using System.Xml.Linq;
using Tessera.Training.Experiments;

namespace Tessera.Training.Tests;

/// <summary>The shared experiment report writer: SVG line plots and the results/report files.</summary>
public class DistillReportTests
{
    static readonly XNamespace Svg = "http://www.w3.org/2000/svg";

    [Fact]
    public void Plot_is_well_formed_svg_with_one_polyline_per_series_and_a_legend()
    {
        var a = new List<(double, double)> { (0, 3.5), (100, 2.5), (200, 2.1) };
        var b = new List<(double, double)> { (0, 3.4), (100, double.NaN), (200, 1.9) };
        string svg = SvgPlot.Lines("bpb <vs> step", "step", "bits per byte", [("scratch", a), ("distilled & co", b)]);
        var doc = XDocument.Parse(svg);                  // throws if escaping is wrong
        var lines = doc.Descendants(Svg + "polyline").ToList();
        Assert.Equal(2, lines.Count);
        Assert.Equal(3, lines[0].Attribute("points")!.Value.Split(' ').Length);
        Assert.Equal(2, lines[1].Attribute("points")!.Value.Split(' ').Length);   // the NaN point is skipped
        var texts = doc.Descendants(Svg + "text").Select(t => t.Value).ToList();
        Assert.Contains("bpb <vs> step", texts);
        Assert.Contains("distilled & co", texts);
        Assert.Contains("step", texts);
        // Ticks cover the data: the y labels bracket [1.9, 3.5].
        var yTicks = doc.Descendants(Svg + "text").Where(t => (string?)t.Attribute("text-anchor") == "end")
            .Select(t => double.Parse(t.Value, System.Globalization.CultureInfo.InvariantCulture)).ToList();
        Assert.True(yTicks.Min() <= 1.9 && yTicks.Max() >= 3.5, string.Join(",", yTicks));
    }

    [Fact]
    public void Points_map_inside_the_plot_area_and_higher_y_is_drawn_higher()
    {
        var pts = new List<(double, double)> { (1, 10), (10, 1000), (100, 100000) };
        var doc = XDocument.Parse(SvgPlot.Lines("t", "x", "y", [("s", pts)], logX: true, logY: true));
        var frame = doc.Descendants(Svg + "rect").Last();
        double fx = D(frame, "x"), fy = D(frame, "y"), fw = D(frame, "width"), fh = D(frame, "height");
        var xy = doc.Descendants(Svg + "polyline").Single().Attribute("points")!.Value.Split(' ')
            .Select(p => p.Split(',').Select(v => double.Parse(v, System.Globalization.CultureInfo.InvariantCulture)).ToArray()).ToList();
        foreach (var p in xy) Assert.InRange(p[0], fx, fx + fw);
        foreach (var p in xy) Assert.InRange(p[1], fy, fy + fh);
        Assert.True(xy[0][1] > xy[1][1] && xy[1][1] > xy[2][1]);
        // On log axes equal ratios are equal distances.
        Assert.Equal(xy[1][0] - xy[0][0], xy[2][0] - xy[1][0], 1);
        Assert.Equal(xy[0][1] - xy[1][1], xy[1][1] - xy[2][1], 1);
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

    static double D(XElement e, string a) => double.Parse(e.Attribute(a)!.Value, System.Globalization.CultureInfo.InvariantCulture);
}
