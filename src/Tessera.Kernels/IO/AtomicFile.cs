using System.Runtime.InteropServices;
using System.Text;

namespace Tessera.Kernels.IO;

/// <summary>
/// The one atomic writer. A file is written to a temporary sibling (same folder, so the rename
/// cannot cross file systems), flushed to disk, then renamed over the target; a folder is filled
/// under a staging name and renamed into place the same way. If anything throws before the
/// rename, the temporary is deleted and the previous file or folder is left byte-identical, so a
/// reader never sees half a file under the final name.
/// </summary>
public static partial class AtomicFile
{
    /// <summary>Prefix of the staging and set-aside folders <see cref="PublishDirectory"/> leaves beside the target while it works.</summary>
    public const string StagingPrefix = ".staging-";

    /// <summary>Writes <paramref name="path"/> with <paramref name="write"/> (temp + flush + fsync + rename).</summary>
    public static void Write(string path, Action<FileStream> write)
    {
        string full = Path.GetFullPath(path);
        string dir = Path.GetDirectoryName(full)!;
        Directory.CreateDirectory(dir);
        // Process id and a random suffix: two writers of the same file never share a temporary.
        string tmp = Path.Combine(dir, $".{Path.GetFileName(full)}.{Environment.ProcessId}.{Guid.NewGuid():N}.tmp");
        try
        {
            using (var fs = new FileStream(tmp, FileMode.CreateNew, FileAccess.Write, FileShare.None, 1 << 16))
            {
                write(fs);
                fs.Flush(flushToDisk: true);
            }
            File.Move(tmp, full, overwrite: true);
        }
        finally
        {
            if (File.Exists(tmp)) File.Delete(tmp);
        }
        SyncDirectory(dir);
    }

    /// <summary>Writes UTF-8 text (no byte-order mark) atomically.</summary>
    public static void WriteAllText(string path, string text)
        => Write(path, fs => fs.Write(new UTF8Encoding(false).GetBytes(text)));

    /// <summary>Writes bytes atomically.</summary>
    public static void WriteAllBytes(string path, ReadOnlyMemory<byte> bytes)
        => Write(path, fs => fs.Write(bytes.Span));

    /// <summary>
    /// Publishes the folder <paramref name="path"/>: <paramref name="fill"/> writes its contents into
    /// a staging folder beside it, which is then renamed to <paramref name="path"/>. An existing
    /// folder of that name is swapped with the staging folder in one atomic rename where the system
    /// can (Linux <c>renameat2</c> with <c>RENAME_EXCHANGE</c>), so a kill at any moment leaves the old
    /// folder or the new one under the name; elsewhere it is set aside first and removed only after
    /// the new one is in place (and moved back if the rename fails), and a kill between those two
    /// renames leaves it under the set-aside name. If <paramref name="fill"/> throws, the staging
    /// folder is removed and the existing folder is untouched.
    /// </summary>
    public static void PublishDirectory(string path, Action<string> fill)
    {
        string full = Path.GetFullPath(path.TrimEnd(Path.DirectorySeparatorChar, Path.AltDirectorySeparatorChar));
        string parent = Path.GetDirectoryName(full)!;
        string name = Path.GetFileName(full);
        Directory.CreateDirectory(parent);
        string staging = Path.Combine(parent, $"{StagingPrefix}{name}-{Environment.ProcessId}");
        string aside = Path.Combine(parent, $"{StagingPrefix}replaced-{name}-{Environment.ProcessId}");
        if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        Directory.CreateDirectory(staging);
        try
        {
            fill(staging);
            SyncDirectory(staging);
            bool replacing = Directory.Exists(full);
            if (replacing && Exchange(staging, full))
            {
                SyncDirectory(parent);
                return;                                           // staging now holds the old folder: removed below
            }
            if (replacing)
            {
                if (Directory.Exists(aside)) Directory.Delete(aside, recursive: true);
                Directory.Move(full, aside);
            }
            try { Directory.Move(staging, full); }
            catch
            {
                if (replacing) Directory.Move(aside, full);
                throw;
            }
            SyncDirectory(parent);
            if (replacing) Directory.Delete(aside, recursive: true);
        }
        finally
        {
            if (Directory.Exists(staging)) Directory.Delete(staging, recursive: true);
        }
    }

    /// <summary>
    /// fsyncs a folder so a rename inside it is durable. POSIX only; where the file system refuses
    /// (some network mounts do), the rename itself is still atomic and only its durability across
    /// a power cut is left to the file system.
    /// </summary>
    static void SyncDirectory(string dir)
    {
        if (OperatingSystem.IsWindows()) return;
        int fd = Open(dir, 0);                                    // O_RDONLY
        if (fd < 0) return;
        _ = Fsync(fd);
        _ = Close(fd);
    }

    /// <summary>Swaps two existing folders in one rename; false where the system or file system cannot (then nothing moved).</summary>
    static bool Exchange(string a, string b)
    {
        if (!OperatingSystem.IsLinux()) return false;
        try { return RenameAt2(CurrentDirectory, a, CurrentDirectory, b, RenameExchange) == 0; }
        catch (Exception e) when (e is DllNotFoundException or EntryPointNotFoundException) { return false; }
    }

    const int CurrentDirectory = -100;   // AT_FDCWD
    const uint RenameExchange = 2;       // RENAME_EXCHANGE

    [LibraryImport("libc", EntryPoint = "renameat2", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int RenameAt2(int fromDirectory, string from, int toDirectory, string to, uint flags);

    [LibraryImport("libc", EntryPoint = "open", StringMarshalling = StringMarshalling.Utf8)]
    private static partial int Open(string path, int flags);

    [LibraryImport("libc", EntryPoint = "fsync")]
    private static partial int Fsync(int fd);

    [LibraryImport("libc", EntryPoint = "close")]
    private static partial int Close(int fd);
}
