using Tessera.Kernels.IO;

namespace Tessera.Kernels.Tests;

/// <summary>The one atomic writer and the one mapped reader: failure leaves the old bytes, truncation names the file.</summary>
public sealed class AtomicFileTests : IDisposable
{
    readonly string dir = Directory.CreateTempSubdirectory("tessera-io-").FullName;

    public void Dispose() => Directory.Delete(dir, recursive: true);

    static byte[] RandomBytes(int n, int seed)
    {
        var b = new byte[n];
        new Random(seed).NextBytes(b);
        return b;
    }

    [Theory]
    [InlineData(0)]
    [InlineData(1)]
    [InlineData(100_000)]      // past the 64 KiB stream buffer, so bytes really reached the temporary file
    public void WriterThatThrowsMidWrite_LeavesThePreviousFileByteIdentical(int writtenBeforeFailure)
    {
        string path = Path.Combine(dir, "data.bin");
        var before = RandomBytes(5000, 1);
        AtomicFile.WriteAllBytes(path, before);
        var e = Assert.Throws<IOException>(() => AtomicFile.Write(path, fs =>
        {
            fs.Write(RandomBytes(writtenBeforeFailure, 2));
            throw new IOException("disk full (simulated)");
        }));
        Assert.Equal("disk full (simulated)", e.Message);
        Assert.Equal(before, File.ReadAllBytes(path));
        Assert.Equal([path], Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public void FirstWriteThatThrows_LeavesNoFileAtAll()
    {
        string path = Path.Combine(dir, "new.bin");
        Assert.Throws<InvalidOperationException>(() => AtomicFile.Write(path, fs => { fs.WriteByte(1); throw new InvalidOperationException(); }));
        Assert.Empty(Directory.GetFileSystemEntries(dir));
    }

    [Fact]
    public void SuccessfulWrite_ReplacesTheFileAndLeavesNoTemporary()
    {
        string path = Path.Combine(dir, "sub", "t.txt");
        AtomicFile.WriteAllText(path, "first");
        AtomicFile.WriteAllText(path, "second, longer");
        Assert.Equal("second, longer", File.ReadAllText(path));
        Assert.Equal([path], Directory.GetFileSystemEntries(Path.Combine(dir, "sub")));
        Assert.Equal((byte)'s', File.ReadAllBytes(path)[0]);                  // no UTF-8 byte-order mark
    }

    [Fact]
    public void DirectoryWhoseFillThrows_LeavesThePreviousFolderIntact()
    {
        string run = Path.Combine(dir, "step-1");
        AtomicFile.PublishDirectory(run, d => { File.WriteAllBytes(Path.Combine(d, "a.bin"), RandomBytes(300, 3)); });
        var before = File.ReadAllBytes(Path.Combine(run, "a.bin"));
        Assert.Throws<IOException>(() => AtomicFile.PublishDirectory(run, d =>
        {
            File.WriteAllBytes(Path.Combine(d, "a.bin"), RandomBytes(300, 4));
            File.WriteAllText(Path.Combine(d, "b.txt"), "partial");
            throw new IOException("crash (simulated)");
        }));
        Assert.Equal(before, File.ReadAllBytes(Path.Combine(run, "a.bin")));
        Assert.Equal([Path.Combine(run, "a.bin")], Directory.GetFileSystemEntries(run));
        Assert.Equal([run], Directory.GetFileSystemEntries(dir));           // no staging folder left
    }

    [Fact]
    public void DirectoryPublish_ReplacesTheWholeFolder()
    {
        string run = Path.Combine(dir, "out");
        AtomicFile.PublishDirectory(run, d => File.WriteAllText(Path.Combine(d, "old.txt"), "old"));
        AtomicFile.PublishDirectory(run, d => File.WriteAllText(Path.Combine(d, "new.txt"), "new"));
        Assert.Equal([Path.Combine(run, "new.txt")], Directory.GetFileSystemEntries(run));
        Assert.Equal([run], Directory.GetFileSystemEntries(dir));
    }

    [Theory]
    [InlineData(0)]
    [InlineData(5)]
    public void MappedReadPastTheEnd_NamesTheFileTheKindAndTheRange(int length)
    {
        string path = Path.Combine(dir, "short.bin");
        File.WriteAllBytes(path, RandomBytes(length, 5));
        using var m = MappedFile.OpenRead(path, "test file");
        Assert.Equal(length, m.Length);
        var e = Assert.Throws<InvalidDataException>(() => m.Bytes(0, 8, "the header"));
        Assert.Equal($"{path}: truncated test file: the header needs bytes [0, 8) but the file has {length} bytes.", e.Message);
        if (length >= 4) Assert.Equal(File.ReadAllBytes(path)[..4], m.Bytes(0, 4, "four bytes").ToArray());
    }

    [Fact]
    public void MappingAMissingFile_NamesIt()
    {
        string path = Path.Combine(dir, "absent.bin");
        var e = Assert.Throws<FileNotFoundException>(() => MappedFile.OpenRead(path, "test file"));
        Assert.Equal($"Test file not found: {path}", e.Message);
    }

    [Fact]
    public void ReadWriteMap_GrowsTheFileAndWritesThrough()
    {
        string path = Path.Combine(dir, "grow.bin");
        AtomicFile.WriteAllBytes(path, new byte[] { 1, 2, 3 });
        using (var m = MappedFile.OpenReadWrite(path, "cache", 16))
        {
            Assert.Equal(new byte[] { 1, 2, 3, 0 }, m.Bytes(0, 4, "start").ToArray());
            m.WritableBytes(15, 1, "last byte")[0] = 9;
            m.Flush();
        }
        var bytes = File.ReadAllBytes(path);
        Assert.Equal(16, bytes.Length);
        Assert.Equal(9, bytes[15]);
    }
}
