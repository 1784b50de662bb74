namespace Tessera.Kernels;

/// <summary>Cache sizes of this machine's cores, for blocking decisions (read once).</summary>
internal static class CpuCaches
{
    /// <summary>
    /// The L2 cache of one core in bytes, from Linux's <c>/sys/devices/system/cpu/cpu0/cache</c> (the
    /// unified or data cache at level 2); 1 MB where that is not readable.
    /// </summary>
    public static int L2BytesPerCore { get; } = ReadL2Bytes() ?? 1 << 20;

    /// <summary>
    /// Whether the CPU reports the vendor string "GenuineIntel" (CPUID leaf 0): some blocking choices
    /// measured differently on Intel and AMD cores (<see cref="PanelMatMul.DecodeSlices"/>).
    /// </summary>
    public static bool IsIntel { get; } = ReadIsIntel();

    static bool ReadIsIntel()
    {
        if (!System.Runtime.Intrinsics.X86.X86Base.IsSupported) return false;
        var (_, ebx, ecx, edx) = System.Runtime.Intrinsics.X86.X86Base.CpuId(0, 0);
        return ebx == 0x756E6547 && edx == 0x49656E69 && ecx == 0x6C65746E;   // "Genu" "ineI" "ntel"
    }

    static int? ReadL2Bytes()
    {
        const string root = "/sys/devices/system/cpu/cpu0/cache";
        try
        {
            if (!Directory.Exists(root)) return null;
            foreach (var dir in Directory.EnumerateDirectories(root, "index*"))
            {
                if (File.ReadAllText(Path.Combine(dir, "level")).Trim() != "2") continue;
                if (File.ReadAllText(Path.Combine(dir, "type")).Trim() == "Instruction") continue;
                return ParseSize(File.ReadAllText(Path.Combine(dir, "size")));
            }
        }
        catch (IOException) { }
        catch (UnauthorizedAccessException) { }
        return null;
    }

    /// <summary>"2048K" / "2M" / "1048576" as bytes; null when unreadable or outside 4 KB–1 GB.</summary>
    internal static int? ParseSize(string text)
    {
        text = text.Trim();
        long scale = text.EndsWith('K') ? 1L << 10 : text.EndsWith('M') ? 1L << 20 : 1;
        if (!long.TryParse(text.TrimEnd('K', 'M'), System.Globalization.NumberStyles.None, System.Globalization.CultureInfo.InvariantCulture, out long value)) return null;
        long bytes = value * scale;
        return bytes is >= 4096 and <= 1L << 30 ? (int)bytes : null;
    }
}
