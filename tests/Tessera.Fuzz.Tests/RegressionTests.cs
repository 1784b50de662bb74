using System.Buffers.Binary;

namespace Tessera.Fuzz.Tests;

/// <summary>Each finding, named. The input files live in fuzz/regressions/TARGET and are replayed by <see cref="CorpusReplayTests"/> too.</summary>
public class RegressionTests
{
    static byte[] ValidDistillTail() => DistillCacheTarget.ValidFile.AsSpan(72).ToArray();

    // Found while writing the distill-cache harness: a slot entry past the file's records made
    // DistillCache.Read dereference memory outside the mapping (AccessViolationException, the
    // process died). The slot table is now checked on open and a damaged cache is rebuilt.
    [Fact]
    public void DistillCacheSlotPastTheRecordsIsRebuiltNotRead()
    {
        var tail = ValidDistillTail();
        BinaryPrimitives.WriteInt32LittleEndian(tail.AsSpan(128 - 72), 100_000_000);
        FuzzTarget.Get("distill-cache").Run(tail);
    }

    // Same harness: a stored id outside the vocabulary went straight to the student's loss.
    [Fact]
    public void DistillCacheIdOutsideTheVocabularyIsRejectedByName()
    {
        var tail = ValidDistillTail();
        BinaryPrimitives.WriteUInt16LittleEndian(tail.AsSpan(256 - 72), 65535);
        var e = Assert.Throws<InvalidDataException>(() => RunUnfiltered("distill-cache", tail));
        Assert.Contains("outside the vocabulary", e.Message);
        Assert.Contains(".dcache", e.Message);
    }

    static void RunUnfiltered(string name, byte[] input) => FuzzTarget.Get(name).RunUnfiltered(input);
}
