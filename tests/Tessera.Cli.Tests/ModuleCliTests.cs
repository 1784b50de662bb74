namespace Tessera.Cli.Tests;

/// <summary>The module workflow end to end through the CLI, at --quick size: base, module training and resume, registry, composition at load, refusals, report.</summary>
[Collection(CliCollection.Name)]
public class ModuleCliTests
{
    static readonly string[] Model = ["--layers", "2", "--dim", "32", "--heads", "2", "--kv-heads", "1", "--hidden", "48", "--experts", "2", "--top-k", "1",
        "--context", "64", "--seq", "32", "--batch", "2", "--eval-every", "0", "--checkpoint-every", "0", "--eval-batches", "1"];
    static readonly string[] Small = ["--seq", "32", "--batch", "2", "--eval-batches", "2", "--checkpoint-every", "0"];

    [Fact]
    public void TrainAModuleOnAFrozenBase_RegisterVerifyComposeAndReport_RefusingOtherBasesAndTampering()
    {
        string dir = CliProcess.TempDir();
        try
        {
            CliProcess.WriteCorpus(dir);
            Directory.CreateDirectory(Path.Combine(dir, "code"));
            for (int i = 0; i < 12; i++)
                File.WriteAllText(Path.Combine(dir, "code", $"F{i}.cs"), string.Concat(Enumerable.Repeat($"public static int F{i}(int x) {{ return x * {i} + 1; }}\n", 60)));
            CliProcess.Run(dir, "data", "prepare", "--input", "corpus.txt", "--tokenizer", "bytes", "--out", "en", "--json").Json();
            CliProcess.Run(dir, "data", "prepare", "--input", "code", "--include", "*.cs", "--tokenizer", "bytes", "--out", "cs", "--json").Json();
            CliProcess.Run(dir, ["train", "--data", "en", "--out", "base", "--steps", "3", .. Model, "--json"]).Json();
            CliProcess.Run(dir, ["train", "--data", "en", "--out", "other", "--steps", "3", "--seed", "7", .. Model, "--json"]).Json();

            string[] module = ["train", "--base", "base", "--freeze-base", "--add-module", "code", "--module-kind", "experts", "--data", "cs", "--out", "mod", .. Small];
            var trained = CliProcess.Run(dir, [.. module, "--steps", "3", "--json"]).Json();
            Assert.Equal(3, trained.GetProperty("steps").GetInt32());
            var resumed = CliProcess.Run(dir, [.. module, "--steps", "5", "--resume", "--json"]).Json();
            Assert.Equal(5, resumed.GetProperty("steps").GetInt32());

            var routed = CliProcess.Run(dir, ["train", "--base", "base", "--freeze-base", "--add-module", "code-routed", "--data", "cs", "--router-off-data", "en", "--out", "mod-routed", "--steps", "2", .. Small, "--json"]).Json();
            Assert.Equal(2, routed.GetProperty("steps").GetInt32());
            var loraOff = CliProcess.Run(dir, ["train", "--base", "base", "--freeze-base", "--add-module", "x", "--module-kind", "lora", "--data", "cs", "--router-off-data", "en", "--out", "m3", "--steps", "1"]);
            Assert.NotEqual(0, loraOff.ExitCode);
            Assert.Contains("needs an experts module", loraOff.Stderr);

            var added = CliProcess.Run(dir, "module", "add", "mod/module", "--registry", "reg", "--json").Json();
            Assert.Equal("code", added.GetProperty("id").GetString());
            var list = CliProcess.Run(dir, "module", "list", "--registry", "reg", "--json").Json();
            Assert.Equal(1, list.GetArrayLength());
            Assert.Equal(0, CliProcess.Run(dir, "module", "verify", "code", "--registry", "reg", "--base", "base").ExitCode);

            var plain = CliProcess.Run(dir, "eval", "--model", "base", "--data", "cs", "--bpb-tokens", "256", "--json").Json();
            var composed = CliProcess.Run(dir, "eval", "--model", "base", "--data", "cs", "--bpb-tokens", "256", "--module", "code", "--registry", "reg", "--json").Json();
            Assert.NotEqual(plain.GetProperty("bits_per_byte")[0].GetProperty("bits_per_byte").GetDouble(),
                composed.GetProperty("bits_per_byte")[0].GetProperty("bits_per_byte").GetDouble());

            var generated = CliProcess.Run(dir, "generate", "--model", "base", "--prompt", "public", "--max-tokens", "4", "--temperature", "0", "--module", "code", "--registry", "reg", "--json").Json();
            Assert.Equal(4, generated.GetProperty("tokens").GetInt32());

            ServeComposesModules(dir, generated.GetProperty("text").GetString()!);

            var refused = CliProcess.Run(dir, "eval", "--model", "other", "--data", "cs", "--bpb-tokens", "256", "--module", "code", "--registry", "reg");
            Assert.NotEqual(0, refused.ExitCode);
            Assert.Contains("was built for base", refused.Stderr);

            var report = CliProcess.Run(dir, "module", "report", "--base", "base", "--module", "code", "--registry", "reg", "--data", "english=en", "--data", "csharp=cs",
                "--windows", "2", "--seq", "32", "--out", "rep");
            Assert.True(report.ExitCode == 0, report.Stderr);
            Assert.Contains("<svg", File.ReadAllText(Path.Combine(dir, "rep", "expert-use.svg")));
            Assert.Contains("base only", File.ReadAllText(Path.Combine(dir, "rep", "report.md")));

            string weights = Path.Combine(dir, "reg", "code", "module.safetensors");
            var bytes = File.ReadAllBytes(weights);
            bytes[^1] ^= 1;
            File.WriteAllBytes(weights, bytes);
            var tampered = CliProcess.Run(dir, "module", "verify", "code", "--registry", "reg");
            Assert.NotEqual(0, tampered.ExitCode);
            Assert.Contains("modified or damaged", tampered.Stderr);

            var missing = CliProcess.Run(dir, ["train", "--base", "nowhere", "--freeze-base", "--add-module", "x", "--data", "cs", "--out", "m2", "--steps", "1"]);
            Assert.NotEqual(0, missing.ExitCode);
            Assert.Contains("nowhere", missing.Stderr);
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    /// <summary>
    /// <c>serve --modules reg</c> with a registry holding a module for this base and one for another:
    /// the first is served as base+code with generate --module's reply, the second is listed as refused
    /// and a request naming it gets a 400 saying why; <c>--module</c> for another base stops serve.
    /// </summary>
    static void ServeComposesModules(string dir, string generatedText)
    {
        CliProcess.Run(dir, ["train", "--base", "other", "--freeze-base", "--add-module", "foreign", "--module-kind", "lora", "--data", "cs", "--out", "mod-other", "--steps", "1", .. Small, "--json"]).Json();
        CliProcess.Run(dir, "module", "add", "mod-other/module", "--registry", "reg", "--json").Json();

        var psi = new System.Diagnostics.ProcessStartInfo("dotnet") { WorkingDirectory = dir, RedirectStandardOutput = true, RedirectStandardError = true, UseShellExecute = false };
        foreach (var a in new[] { Path.Combine(AppContext.BaseDirectory, "tessera.dll"), "serve", "--model", "base", "--modules", "reg", "--port", "0", "--prefix-cache-mb", "0", "--json" }) psi.ArgumentList.Add(a);
        using var server = System.Diagnostics.Process.Start(psi)!;
        try
        {
            var stderr = server.StandardError.ReadToEndAsync();
            var line = server.StandardOutput.ReadLineAsync();
            Assert.True(line.Wait(TimeSpan.FromMinutes(2)) && line.Result is not null, $"serve did not start: {(server.HasExited ? stderr.Result : "(still running)")}");
            var started = System.Text.Json.JsonDocument.Parse(line.Result!).RootElement;
            Assert.Equal(["code"], started.GetProperty("modules").EnumerateArray().Select(e => e.GetString()));
            Assert.Contains("was built for base", started.GetProperty("refused_modules").GetProperty("foreign").GetString());
            var address = new Uri(started.GetProperty("address").GetString()!);
            using var http = new HttpClient { Timeout = TimeSpan.FromSeconds(60) };
            System.Text.Json.JsonElement Post(string body, int status)
            {
                var r = http.PostAsync(new Uri(address, "v1/completions"), new StringContent(body, System.Text.Encoding.UTF8, "application/json")).GetAwaiter().GetResult();
                string text = r.Content.ReadAsStringAsync().GetAwaiter().GetResult();
                Assert.True((int)r.StatusCode == status, text);
                return System.Text.Json.JsonDocument.Parse(text).RootElement.Clone();
            }
            var reply = Post("""{"model":"base+code","prompt":"public","max_tokens":4,"temperature":0}""", 200);
            Assert.Equal(generatedText, reply.GetProperty("choices")[0].GetProperty("text").GetString());
            Assert.Equal("code", reply.GetProperty("tessera").GetProperty("modules")[0].GetString());
            var error = Post("""{"model":"base","prompt":"public","max_tokens":4,"tessera_module":"foreign"}""", 400).GetProperty("error");
            Assert.Contains("'foreign' was not attached at load", error.GetProperty("message").GetString());
            Assert.Contains("was built for base", error.GetProperty("message").GetString());
            Post("""{"model":"base","prompt":"public","max_tokens":2}""", 200);   // still serving
        }
        finally { if (!server.HasExited) server.Kill(entireProcessTree: true); server.WaitForExit(10_000); }

        var wrongBase = CliProcess.Run(dir, "serve", "--model", "other", "--module", "code", "--registry", "reg", "--port", "0");
        Assert.Equal(1, wrongBase.ExitCode);
        Assert.Contains("was built for base", wrongBase.Stderr);
    }
}

