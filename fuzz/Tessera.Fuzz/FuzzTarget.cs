namespace Tessera.Fuzz;

/// <summary>
/// One fuzz target: feeds arbitrary bytes to a parser. A clean rejection (the exception types our
/// readers document, thrown by our own code with a message) returns normally; anything else —
/// an exception from inside the runtime (index out of range, overflow, a JSON reader error no code
/// of ours caught), a wrong round trip, a hang — escapes and is a crash.
/// </summary>
public abstract class FuzzTarget
{
    /// <summary>The name <c>fuzz/run.sh</c> and the corpus folder use.</summary>
    public abstract string Name { get; }

    /// <summary>Runs one input. Throws only for a finding.</summary>
    public void Run(ReadOnlySpan<byte> input)
    {
        try { Execute(input); }
        catch (Exception e) when (IsCleanRejection(e)) { }
    }

    /// <summary>Runs one input without forgiving clean rejections (tests use it to see the message).</summary>
    public void RunUnfiltered(ReadOnlySpan<byte> input) => Execute(input);

    /// <summary>The parser call itself.</summary>
    protected abstract void Execute(ReadOnlySpan<byte> input);

    /// <summary>
    /// An exception a reader throws on purpose for bad input: one of the documented types, raised by
    /// Tessera code (not by the runtime on its behalf), with a message.
    /// </summary>
    public static bool IsCleanRejection(Exception e)
    {
        bool documented = e is InvalidDataException or FormatException or NotSupportedException or ArgumentException or KeyNotFoundException
            or Server.ApiException { Status: >= 400 and < 500 }
            or Text.Templates.JinjaException or Vision.ImageDecodeException;
        string? thrower = e.TargetSite?.DeclaringType?.FullName;
        return documented && thrower is not null && thrower.StartsWith("Tessera.", StringComparison.Ordinal) && !string.IsNullOrWhiteSpace(e.Message);
    }

    /// <summary>A per-process scratch file for readers that take a path (in /dev/shm when it exists, to spare the disk).</summary>
    protected static string Scratch(string name)
    {
        string root = Directory.Exists("/dev/shm") ? "/dev/shm" : Path.GetTempPath();
        string dir = Path.Combine(root, $"tessera-fuzz-{Environment.ProcessId}");
        Directory.CreateDirectory(dir);
        return Path.Combine(dir, name);
    }

    /// <summary>Writes the input to a scratch file and returns its path.</summary>
    protected static string ToFile(ReadOnlySpan<byte> input, string name)
    {
        string path = Scratch(name);
        using (var f = new FileStream(path, FileMode.Create, FileAccess.Write)) f.Write(input);
        return path;
    }

    /// <summary>Every target, by name.</summary>
    public static IReadOnlyList<FuzzTarget> All { get; } =
    [
        new GgufTarget(), new SafetensorsTarget(), new ShardTarget(), new CheckpointTarget(), new DistillCacheTarget(),
        new TiktokenTarget(), new HfTokenizerTarget(), new TokenizerRoundTripTarget(), new ServerRequestTarget(),
        new ImageTarget(), new ChatTemplateTarget(), new RegexGrammarTarget(), new ManifestTarget(),
    ];

    /// <summary>The target called <paramref name="name"/>.</summary>
    public static FuzzTarget Get(string name) => All.FirstOrDefault(t => t.Name == name)
        ?? throw new ArgumentException($"no fuzz target '{name}'; targets: {string.Join(", ", All.Select(t => t.Name))}");
}

/// <summary>A finding that is not an exception (a round trip that changed the data).</summary>
public sealed class FuzzFinding(string message) : Exception(message);
