using System.Text.Json;
using Tessera.Text.Templates;

namespace Tessera.Text.Tests;

/// <summary>
/// Our Jinja renderer against @huggingface/jinja 0.5.11: 20 conversations per model (system
/// prompts, multi-turn, generation prompt, tools where the template has them, templates that
/// raise), byte for byte, from fixtures bench/peers/chat-template-oracle.mjs writes (the
/// templates travel inside the fixtures, so this needs no peer at test time).
/// </summary>
public class ChatTemplateConformanceTests
{
    public static TheoryData<string> Models => new() { "gemma3", "llama3", "qwen3", "deepseek_v3", "gpt_oss", "mistral", "phi3" };

    [Theory]
    [MemberData(nameof(Models))]
    public void RendersLikeHuggingFaceJinja(string model)
    {
        using var doc = JsonDocument.Parse(File.ReadAllBytes(HfTokenizerConformanceTests.FixturePath(Path.Combine("..", "chat", model + ".json"))));
        var root = doc.RootElement;
        var template = new JinjaTemplate(root.GetProperty("template").GetString()!);
        var pinned = DateTime.Parse(root.GetProperty("strftime_now").GetString()! + "T12:00:00Z", null, System.Globalization.DateTimeStyles.AdjustToUniversal);
        var failures = new List<string>();
        int n = 0, raised = 0;
        foreach (var c in root.GetProperty("cases").EnumerateArray())
        {
            n++;
            string name = c.GetProperty("name").GetString()!;
            var vars = new Dictionary<string, object?>
            {
                ["messages"] = JinjaValues.FromJson(c.GetProperty("messages")),
                ["bos_token"] = root.GetProperty("bos_token").GetString(),
                ["eos_token"] = root.GetProperty("eos_token").GetString(),
                ["strftime_now"] = (Func<string, string>)(f => JinjaTemplate.Strftime(pinned, f)),
            };
            if (c.TryGetProperty("add_generation_prompt", out var agp)) vars["add_generation_prompt"] = agp.GetBoolean();
            if (c.TryGetProperty("extra", out var extra)) foreach (var p in extra.EnumerateObject()) vars[p.Name] = JinjaValues.FromJson(p.Value);
            string? got = null, error = null;
            try { got = template.Render(vars); }
            catch (JinjaException e) { error = e.Message; }
            if (c.TryGetProperty("error", out var expectedError))
            {
                raised++;
                if (error != expectedError.GetString()) failures.Add($"{name}: expected the template to raise \"{expectedError.GetString()}\", got {(error is null ? "output " + JsonSerializer.Serialize(got) : "error \"" + error + "\"")}");
                continue;
            }
            string expected = c.GetProperty("output").GetString()!;
            if (error is not null) failures.Add($"{name}: raised \"{error}\"");
            else if (got != expected)
            {
                int at = 0;
                while (at < Math.Min(got!.Length, expected.Length) && got[at] == expected[at]) at++;
                failures.Add($"{name}: differs at char {at}\n  expected …{JsonSerializer.Serialize(expected.Substring(Math.Max(0, at - 40), Math.Min(expected.Length - Math.Max(0, at - 40), 100)))}\n  got      …{JsonSerializer.Serialize(got.Substring(Math.Max(0, at - 40), Math.Min(got.Length - Math.Max(0, at - 40), 100)))}");
            }
        }
        Assert.Equal(20, n);
        Assert.True(failures.Count == 0, $"{model}: {failures.Count} of {n} conversations differ from @huggingface/jinja ({raised} expected raises):\n" + string.Join("\n", failures.Take(6)));
    }
}
