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
    public static void Write(string root, IReadOnlyCollection<string>? only = null)
    {
        void Put(string target, string name, ReadOnlySpan<byte> bytes)
        {
            if (only is { Count: > 0 } && !only.Contains(target)) return;
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
            // One with its tokenizer embedded (a byte-level BPE of 270 ids, on a model with that vocabulary).
            var small = BpeTrainer.Train(["ab abc abd abd abc"], new BpeTrainerOptions(270), out _);
            using var vocabModel = new Transformer(config with { VocabSize = 272 }, seed: 2);
            string pv = Path.Combine(tmp, "m-vocab.gguf");
            GgufModel.Save(vocabModel, pv, new GgufExportOptions { Type = GgufWeightType.Q8_0, Tokenizer = small });
            Put("gguf", "tiny-q8_0-with-tokenizer.gguf", File.ReadAllBytes(pv));
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
            // Chat templates in the shapes models ship (ChatML, Llama-2 with raise_exception, a macro,
            // namespace/loop state, filters and tests).
            Put("chat-template", "chatml.jinja", Encoding.UTF8.GetBytes(
                "{% for message in messages %}{{'<|im_start|>' + message['role'] + '\n' + message['content'] + '<|im_end|>' + '\n'}}{% endfor %}{% if add_generation_prompt %}{{ '<|im_start|>assistant\n' }}{% endif %}"));
            Put("chat-template", "llama2.jinja", Encoding.UTF8.GetBytes(
                "{% if messages[0]['role'] == 'system' %}{% set loop_messages = messages[1:] %}{% set system_message = messages[0]['content'] %}{% else %}{% set loop_messages = messages %}{% set system_message = false %}{% endif %}"
                + "{% for message in loop_messages %}{% if (message['role'] == 'user') != (loop.index0 % 2 == 0) %}{{ raise_exception('Conversation roles must alternate user/assistant/user/assistant/...') }}{% endif %}"
                + "{% if loop.index0 == 0 and system_message != false %}{% set content = '<<SYS>>\n' + system_message + '\n<</SYS>>\n\n' + message['content'] %}{% else %}{% set content = message['content'] %}{% endif %}"
                + "{% if message['role'] == 'user' %}{{ bos_token + '[INST] ' + content.strip() + ' [/INST]' }}{% elif message['role'] == 'assistant' %}{{ ' '  + content.strip() + ' ' + eos_token }}{% endif %}{% endfor %}"));
            Put("chat-template", "macro-namespace.jinja", Encoding.UTF8.GetBytes(
                "{%- macro render(m, sep='\n') -%}{{ m.role | upper }}: {{ m.content | trim | replace('a', 'b') }}{{ sep }}{%- endmacro -%}"
                + "{%- set ns = namespace(n=0, last='') -%}{%- for m in messages if m.role != 'system' -%}{%- set ns.n = ns.n + 1 -%}{{ render(m) }}{%- if loop.last %}{% set ns.last = m.content %}{% endif -%}{%- endfor -%}"
                + "{{ ns.n }} {{ ns.last | length }} {{ messages | map(attribute='role') | join(',') }} {{ range(3) | list | tojson }} {{ (messages | selectattr('role', 'equalto', 'user') | list)[-1].content[:5] }}"
                + "{% if bos_token is defined and eos_token is string %}{{ '%d' | format(7) if false else 7 // 2 }}{% endif %}{{ strftime_now('%Y') | length }}"));
            Put("chat-template", "dict-items.jinja", Encoding.UTF8.GetBytes(
                "{% set d = {'a': 1, 'b': [1, 2.5, 'x'], 'c': none} %}{% for k, v in d | items %}{{ k }}={{ v | tojson(indent=2) }};{% endfor %}{% filter upper %}done {{ 'x' ~ 3 ** 2 ~ (10 % 4) }}{% endfilter %}{% for i in range(5) %}{% if i == 3 %}{% break %}{% endif %}{{ i }}{% endfor %}"));

            // Regex patterns (a NUL byte, then a text to match).
            foreach (var (name, pattern, text) in new[]
            {
                ("date", @"\d{4}-\d{2}-\d{2}", "2026-12-06"),
                ("email", @"[a-z0-9._]+@[a-z]+\.(com|org|net)", "a.b@example.org"),
                ("phone", @"^\(?\d{3}\)? ?\d{3}-\d{4}$", "(555) 123-4567"),
                ("alternation", @"(?:yes|no|maybe)( because [^.]{1,40}\.)?", "maybe because x."),
                ("classes", @"[A-Z][a-z]*(\s\w+){0,3}[.!?]", "Hello big world!"),
                ("unicode", @"ünï.{2}\u00e9\x41*", "ünï😀xéAA"),
            })
                Put("regex-grammar", $"{name}.bin", [.. Encoding.UTF8.GetBytes(pattern), 0, .. Encoding.UTF8.GetBytes(text)]);

            // The two index.json manifests (first byte: 0 = retrieval index, 1 = n-gram store), written by their own Save.
            string idx = Path.Combine(tmp, "idx");
            Directory.CreateDirectory(idx);
            new Retrieval.IndexManifest { Shards = 2, ShardGenerations = [3, 4], NextKey = 10, Documents = 4, Passages = 9, PassageWords = 100, Analyzer = "standard",
                Dense = new Retrieval.DenseManifest("hash-64", 64, 9, "dense.f32"), Updated = new DateTimeOffset(2026, 12, 6, 0, 0, 0, TimeSpan.Zero) }.Save(idx);
            Put("manifest", "retrieval-index.bin", [0, .. File.ReadAllBytes(Path.Combine(idx, "index.json"))]);
            new Data.NGram.NGramManifest(Data.NGram.NGramManifest.FormatName, Data.NGram.NGramManifest.CurrentVersion, new Data.NGram.TokenizerIdentity("bytes", 256, "abc123"), 2, 1000, 3, 1000,
                [new Data.NGram.NGramShardInfo("shard-000.bin", 1000, 3, 2, 4100, new string('0', 64))], 0.5).Save(idx);
            Put("manifest", "ngram-store.bin", [1, .. File.ReadAllBytes(Path.Combine(idx, "index.json"))]);
        }
        finally { Directory.Delete(tmp, recursive: true); }
    }
}
