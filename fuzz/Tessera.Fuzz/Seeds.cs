using System.Text;
using Tessera.Data;
using Tessera.Model;
using Tessera.Model.Checkpoints;
using Tessera.Server;
using Tessera.Text;
using Tessera.Training;

namespace Tessera.Fuzz;

/// <summary>
/// Writes the committed seed corpus (fuzz/corpus/TARGET/): small valid files made by our own
/// writers, plus a few hand-made edge cases. Run again only to refresh it (<c>Tessera.Fuzz --make-seeds fuzz/corpus</c>).
/// </summary>
public static class Seeds
{
    public static void Write(string root)
    {
        void Put(string target, string name, ReadOnlySpan<byte> bytes)
        {
            string dir = Path.Combine(root, target);
            Directory.CreateDirectory(dir);
            File.WriteAllBytes(Path.Combine(dir, name), bytes.ToArray());
        }
        string tmp = Directory.CreateTempSubdirectory("tessera-seeds").FullName;
        try
        {
            var config = new ModelConfig { VocabSize = 64, Dim = 8, Layers = 1, Heads = 2, KvHeads = 1, HiddenDim = 16, ContextLength = 16, TiedEmbeddings = false };
            using var model = new Transformer(config, seed: 1);
            foreach (var type in (GgufWeightType[])[GgufWeightType.F32, GgufWeightType.F16, GgufWeightType.Q8_0, GgufWeightType.Q4_0])
            {
                string p = Path.Combine(tmp, $"m-{type}.gguf");
                GgufModel.Save(model, p, new GgufExportOptions { Type = type });
                Put("gguf", $"tiny-{type.ToString().ToLowerInvariant()}.gguf", File.ReadAllBytes(p));
            }
            string st = Path.Combine(tmp, "t.safetensors");
            SafetensorsWriter.Write(st, [SafetensorsTensor.F32("a", [2, 3], [1, 2, 3, 4, 5, 6]), SafetensorsTensor.F32("b", [4], [0.5f, -1, 2, 1e-3f])], new Dictionary<string, string> { ["format"] = "pt" });
            Put("safetensors", "two-tensors.safetensors", File.ReadAllBytes(st));
            Put("safetensors", "empty-header.safetensors", [2, 0, 0, 0, 0, 0, 0, 0, (byte)'{', (byte)'}']);

            string shard = Path.Combine(tmp, "s.shard");
            TokenShard.Write(shard, [[1, 2, 3, 4], [5, 6], [7, 8, 9]], 64, bosId: 0);
            Put("shard", "three-docs.shard", File.ReadAllBytes(shard));
            TokenShard.Write(shard, [[70000, 1, 2]], 70001);
            Put("shard", "wide-ids.shard", File.ReadAllBytes(shard));

            string run = Path.Combine(tmp, "run");
            string ck = Checkpoint.Save(run, 3, model, state: new TrainerState { Step = 3, TokensSeen = 96, Rng = new string('0', 64) });
            Put("checkpoint", "config-and-state.bin", [.. File.ReadAllBytes(Path.Combine(ck, Checkpoint.ConfigFile)), 0, .. File.ReadAllBytes(Path.Combine(ck, Checkpoint.StateFile))]);
            Put("checkpoint", "config-only.bin", File.ReadAllBytes(Path.Combine(ck, Checkpoint.ConfigFile)));

            Put("distill-cache", "valid-tail.bin", DistillCacheTarget.ValidFile.AsSpan(72));

            var bpe = BpeTrainer.Train(["low lower lowest newer newest wider wide widest 123 4567 ünï 日本 😀\n"], new BpeTrainerOptions(280), out _);
            string tokDir = Path.Combine(tmp, "tok");
            TokenizerFiles.Save(bpe, tokDir);
            foreach (var f in Directory.EnumerateFiles(tokDir, "*.tiktoken")) Put("tiktoken", "trained-280.tiktoken", File.ReadAllBytes(f));
            Put("tiktoken", "two-lines.tiktoken", "IQ== 0\nIg== 1\n"u8);

            Put("hf-tokenizer", "byte-level-bpe.json", Encoding.UTF8.GetBytes("""
                {"version":"1.0","added_tokens":[{"id":6,"content":"<|endoftext|>","special":true}],
                 "pre_tokenizer":{"type":"ByteLevel","add_prefix_space":false,"use_regex":true},
                 "model":{"type":"BPE","vocab":{"a":0,"b":1,"c":2,"ab":3,"abc":4,"Ġ":5},"merges":["a b","ab c"]}}
                """));
            Put("hf-tokenizer", "merges-as-pairs.json", Encoding.UTF8.GetBytes("""
                {"pre_tokenizer":{"type":"Sequence","pretokenizers":[{"type":"Split","pattern":{"Regex":"\\s+"},"behavior":"Isolated"},{"type":"ByteLevel","use_regex":false}]},
                 "model":{"type":"BPE","vocab":{"x":0,"y":1,"xy":2},"merges":[["x","y"]]}}
                """));

            Put("tokenizer", "ascii.txt", "the quick brown fox\n"u8);
            Put("tokenizer", "unicode.txt", "ünïcödé 日本語 😀 \t\r\n"u8);
            Put("tokenizer", "invalid-utf8.bin", [0xFF, 0xC3, 0x28, 0xED, 0xA0, 0x80, 0xF4, 0x90, 0x80, 0x80, (byte)'a']);

            var gen = new MalformedRequests("m", seed: 1);
            for (int e = 0; e < 3; e++)
                Put("server-request", $"valid-{e}.bin", [(byte)e, .. Encoding.UTF8.GetBytes(gen.ValidBody(MalformedRequests.Paths[e]).Replace("\"max_tokens\":4", "\"max_tokens\":2,\"logprobs\":" + (e == 1 ? "2,\"echo\":true" : "true,\"top_logprobs\":2") + ",\"stream\":" + (e == 0 ? "true" : "false")))]);
            for (int i = 0; i < 24; i++)
            {
                var r = gen.Next();
                if (r.Body.Length > 4096) continue;
                Put("server-request", $"malformed-{i:D2}-{r.Kind.TrimEnd('?')}.bin", [(byte)Array.IndexOf(MalformedRequests.Paths, r.Path), .. r.Body]);
            }
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }
}
