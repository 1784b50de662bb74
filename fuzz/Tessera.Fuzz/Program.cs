using Tessera.Fuzz;

// tessera fuzz harness:
//   Tessera.Fuzz TARGET                 run under AFL++ (fuzz/run.sh does this; SharpFuzz persistent mode)
//   Tessera.Fuzz TARGET --replay DIR..  run every file of the folders once, report findings (exit 1 on any)
//   Tessera.Fuzz --list                 the targets
//   Tessera.Fuzz --make-seeds DIR [T..]  write the seed corpus (all targets, or only those named)
if (args.Length == 0 || args[0] == "--list")
{
    foreach (var t in FuzzTarget.All) Console.WriteLine(t.Name);
    return 0;
}
if (args[0] == "--make-seeds")
{
    Seeds.Write(args.Length > 1 ? args[1] : "fuzz/corpus", args.Skip(2).ToArray());   // optional: only these targets
    return 0;
}
var target = FuzzTarget.Get(args[0]);
if (args.Length > 1 && args[1] == "--replay")
{
    int files = 0, findings = 0;
    foreach (var dir in args.Skip(2).Where(Directory.Exists))
        foreach (var file in Directory.EnumerateFiles(dir).Order(StringComparer.Ordinal))
        {
            files++;
            try { target.Run(File.ReadAllBytes(file)); }
            catch (Exception e)
            {
                findings++;
                Console.WriteLine($"FINDING {file}: {e.GetType().Name}: {e.Message.Split('\n')[0]}");
                if (Environment.GetEnvironmentVariable("TESSERA_FUZZ_TRACE") == "1") Console.WriteLine(e);
            }
        }
    Console.WriteLine($"{target.Name}: {files} inputs replayed, {findings} findings");
    return findings == 0 ? 0 : 1;
}
SharpFuzz.Fuzzer.Run(stream =>
{
    using var buffer = new MemoryStream();
    stream.CopyTo(buffer);
    target.Run(buffer.GetBuffer().AsSpan(0, (int)buffer.Length));
});
return 0;
