using System.CommandLine;
using System.Globalization;
using System.Text;
using System.Text.Json;
using Tessera.Data;
using Tessera.Kernels.IO;
using Tessera.Model;
using Tessera.Model.Modules;
using Tessera.Tensors;
using Tessera.Training.Experiments;

namespace Tessera.Cli.Commands;

/// <summary>
/// <c>tessera module report</c>: runs the base with its modules over held-out windows of each named
/// domain and writes, per module expert (entry 0 = "base only"), the tokens routed to it most, its
/// load per domain, and an SVG heat map of expert use by domain.
/// </summary>
public static class ModuleReport
{
    /// <summary>Builds the subcommand.</summary>
    public static Command Create()
    {
        var baseOpt = new Option<string>("--base") { Description = "The base (run folder or checkpoint).", Required = true };
        var data = new Option<string[]>("--data") { Description = "name=prepared-folder, one per domain (repeat); its validation split is read.", Required = true };
        var windows = new Option<int>("--windows") { Description = "Windows of --seq tokens read per domain.", DefaultValueFactory = _ => 64 };
        var seq = new Option<int>("--seq") { Description = "Tokens per window.", DefaultValueFactory = _ => 128 };
        var top = new Option<int>("--top") { Description = "Tokens listed per expert.", DefaultValueFactory = _ => 10 };
        var tokenizer = new Option<string?>("--tokenizer") { Description = "Tokenizer folder or `bytes` for showing tokens (default: the base's)." };
        var output = new Option<string>("--out") { Description = "Folder for report.json, report.md and expert-use.svg.", DefaultValueFactory = _ => "module-report" };
        var cmd = new Command("report", "Per module expert: the tokens routed to it most, its load per domain, and an SVG heat map of expert use by domain.")
        { baseOpt, ModuleCommand.Registry, ModuleCommand.Modules, data, windows, seq, top, tokenizer, output };
        cmd.SetAction(p =>
        {
            var (model, resolved) = ModelFiles.LoadModel(p.GetValue(baseOpt)!);
            using var _ = model;
            ModuleCommand.AttachFromCommandLine(p, model, Console.Error.WriteLine);
            if (model.Modules.Attached.All(m => m.Spec.Kind != ModuleKind.Experts))
                throw new ArgumentException("module report: attach at least one experts module (--module <id>); LoRA modules have no routing to report.");
            var tok = ModelFiles.LoadTokenizer(p.GetValue(baseOpt)!, resolved, p.GetValue(tokenizer)).Tokenizer;
            var domains = (p.GetValue(data) ?? []).Select(d => d.Split('=', 2) is [var n, var f] ? (Name: n, Folder: f) : throw new ArgumentException($"--data '{d}': expected name=folder.")).ToList();
            // counts[(module, layer)][domain][entry] and tokenCounts[(module, layer)][entry][token id]
            var load = new Dictionary<(string, int), long[][]>();
            var tokens = new Dictionary<(string, int), Dictionary<int, long>[]>();
            int T = Math.Min(p.GetValue(seq), model.Config.ContextLength);
            for (int d = 0; d < domains.Count; d++)
            {
                var prepared = PreparedData.Load(domains[d].Folder);
                using var shard = TokenShard.Open(prepared.ShardPath(Split.Validation));
                var reader = new BatchReader([shard], 1, T, 0, shuffle: false);
                var ids = new int[T]; var tgt = new int[T];
                long n = Math.Min(p.GetValue(windows), reader.WindowCount);
                for (long w = 0; w < n; w++)
                {
                    reader.Next(ids, tgt);
                    using (var g = new Graph(recordGradients: false)) model.Forward(g, ids, 1, T);
                    foreach (var m in model.Modules.Attached)
                        foreach (var (layer, routes) in m.LastRouting)
                        {
                            int entries = m.Spec.Experts + 1;
                            if (!load.TryGetValue((m.Id, layer), out var perDomain))
                            {
                                load[(m.Id, layer)] = perDomain = [.. domains.Select(_ => new long[entries])];
                                tokens[(m.Id, layer)] = [.. Enumerable.Range(0, entries).Select(_ => new Dictionary<int, long>())];
                            }
                            for (int i = 0; i < routes.Length; i++)
                            {
                                perDomain[d][routes[i]]++;
                                var byToken = tokens[(m.Id, layer)][routes[i]];
                                byToken[ids[i]] = byToken.GetValueOrDefault(ids[i]) + 1;
                            }
                        }
                }
            }
            string outDir = p.GetValue(output)!;
            Directory.CreateDirectory(outDir);
            var rowNames = new List<string>();
            var rowsOut = new List<object>();
            var md = new StringBuilder("| module | layer | expert | " + string.Join(" | ", domains.Select(d => $"load on {d.Name}")) + " | tokens routed to it most |\n|---|---|---|" + string.Concat(domains.Select(_ => "---|")) + "---|\n");
            var cells = new List<double[]>();
            foreach (var ((id, layer), perDomain) in load.OrderBy(kv => kv.Key.Item1, StringComparer.Ordinal).ThenBy(kv => kv.Key.Item2))
                for (int e = 0; e < perDomain[0].Length; e++)
                {
                    var share = perDomain.Select(c => c.Sum() == 0 ? 0 : (double)c[e] / c.Sum()).ToArray();
                    var topTokens = tokens[(id, layer)][e].OrderByDescending(kv => kv.Value).ThenBy(kv => kv.Key).Take(p.GetValue(top))
                        .Select(kv => (Text: tok.Decode([kv.Key]), Count: kv.Value)).ToList();
                    string name = $"{id} L{layer} {(e == 0 ? "base only" : $"expert {e - 1}")}";
                    rowNames.Add(name);
                    cells.Add(share);
                    rowsOut.Add(new { module = id, layer, expert = e == 0 ? "base_only" : (e - 1).ToString(CultureInfo.InvariantCulture), load = domains.Select((dd, i) => new { domain = dd.Name, share = share[i] }), top_tokens = topTokens.Select(t => new { token = t.Text, count = t.Count }) });
                    md.Append(CultureInfo.InvariantCulture, $"| {id} | {layer} | {(e == 0 ? "base only" : (e - 1).ToString(CultureInfo.InvariantCulture))} | {string.Join(" | ", share.Select(s => s.ToString("P1", CultureInfo.InvariantCulture)))} | ");
                    md.AppendLine(string.Join(" ", topTokens.Select(t => $"`{Escape(t.Text)}`×{t.Count}")) + " |");
                }
            var values = new double[rowNames.Count, domains.Count];
            for (int r = 0; r < rowNames.Count; r++) for (int c = 0; c < domains.Count; c++) values[r, c] = cells[r][c];
            new HeatMap("Module expert use by domain (share of tokens)", rowNames, [.. domains.Select(d => d.Name)], values).Save(outDir, "expert-use");
            AtomicFile.WriteAllText(Path.Combine(outDir, "report.json"), JsonSerializer.Serialize(new { base_model = resolved, domains = domains.Select(d => d.Name), experts = rowsOut }, JsonNaming.Indented));
            AtomicFile.WriteAllText(Path.Combine(outDir, "report.md"), md.ToString());
            Console.WriteLine($"module report → {Path.Combine(outDir, "report.md")} and expert-use.svg ({rowNames.Count} experts × {domains.Count} domains)");
            return 0;
        });
        return cmd;
    }

    static string Escape(string s)
    {
        var b = new StringBuilder();
        foreach (char c in s) b.Append(c switch { '\n' => "\\n", '\t' => "\\t", '|' => "\\|", '`' => "'", ' ' => "␠", _ => c < ' ' ? "?" : c.ToString() });
        return b.ToString();
    }
}
