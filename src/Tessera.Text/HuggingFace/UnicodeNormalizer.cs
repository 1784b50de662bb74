using System.Runtime.InteropServices;
using System.Text;

namespace Tessera.Text;

/// <summary>
/// Unicode normalization forms (NFC, NFD, NFKC, NFKD) that work whatever the process's
/// globalization mode. Tessera runs with invariant globalization, in which
/// <see cref="string.Normalize(NormalizationForm)"/> returns its input unchanged, so this
/// calls the system's ICU (libicuuc) directly, the library .NET itself would use. A machine
/// without ICU gets a clear error when a tokenizer that needs normalization is loaded.
/// </summary>
public static unsafe class UnicodeNormalizer
{
    private static readonly Lazy<Icu?> Library = new(Icu.TryLoad);

    /// <summary>Whether ICU was found.</summary>
    public static bool IsAvailable => Library.Value is not null;

    /// <summary>Throws unless ICU is available; <paramref name="component"/> names who needs it.</summary>
    /// <exception cref="NotSupportedException">No libicuuc on this machine.</exception>
    public static void EnsureAvailable(string component)
    {
        if (!IsAvailable) throw new NotSupportedException($"{component}: Unicode normalization needs the ICU library (libicuuc.so.*), which was not found on this machine");
    }

    /// <summary>Normalizes <paramref name="text"/> to <paramref name="form"/> (lone surrogates must have been replaced).</summary>
    public static string Normalize(string text, NormalizationForm form)
    {
        if (IsAsciiOrLatin1Fast(text, form)) return text;
        var icu = Library.Value ?? throw new NotSupportedException("Unicode normalization needs the ICU library (libicuuc.so.*), which was not found on this machine");
        return icu.Normalize(text, form);
    }

    // Below U+00A0 nothing decomposes or composes; for NFC/NFD all of Latin-1 is stable too except
    // the precomposed letters, so only ASCII is skipped for every form.
    private static bool IsAsciiOrLatin1Fast(string text, NormalizationForm form)
    {
        foreach (char c in text) if (c >= 0x80) return false;
        return true;
    }

    private sealed class Icu
    {
        private readonly delegate* unmanaged<int*, nint> _getNfc, _getNfd, _getNfkc, _getNfkd;
        private readonly delegate* unmanaged<nint, char*, int, char*, int, int*, int> _normalize;
        private readonly nint[] _instances = new nint[4];

        private Icu(nint lib, string suffix)
        {
            _getNfc = (delegate* unmanaged<int*, nint>)NativeLibrary.GetExport(lib, "unorm2_getNFCInstance" + suffix);
            _getNfd = (delegate* unmanaged<int*, nint>)NativeLibrary.GetExport(lib, "unorm2_getNFDInstance" + suffix);
            _getNfkc = (delegate* unmanaged<int*, nint>)NativeLibrary.GetExport(lib, "unorm2_getNFKCInstance" + suffix);
            _getNfkd = (delegate* unmanaged<int*, nint>)NativeLibrary.GetExport(lib, "unorm2_getNFKDInstance" + suffix);
            _normalize = (delegate* unmanaged<nint, char*, int, char*, int, int*, int>)NativeLibrary.GetExport(lib, "unorm2_normalize" + suffix);
        }

        public static Icu? TryLoad()
        {
            foreach (var name in new[] { "libicuuc.so", "libicuuc.so.80", "libicuuc.so.79", "libicuuc.so.78", "libicuuc.so.77", "libicuuc.so.76", "libicuuc.so.75",
                         "libicuuc.so.74", "libicuuc.so.73", "libicuuc.so.72", "libicuuc.so.71", "libicuuc.so.70", "libicuuc.so.69", "libicuuc.so.68", "libicuuc.so.67",
                         "libicuuc.so.66", "libicuuc.so.65", "libicuuc.so.63", "libicuuc.dylib", "icuuc.dll" })
            {
                if (!NativeLibrary.TryLoad(name, out nint lib)) continue;
                if (NativeLibrary.TryGetExport(lib, "unorm2_normalize", out _)) return new Icu(lib, "");
                for (int v = 90; v >= 50; v--)
                    if (NativeLibrary.TryGetExport(lib, $"unorm2_normalize_{v}", out _)) return new Icu(lib, $"_{v}");
            }
            return null;
        }

        private nint Instance(NormalizationForm form)
        {
            int k = form switch { NormalizationForm.FormC => 0, NormalizationForm.FormD => 1, NormalizationForm.FormKC => 2, _ => 3 };
            if (_instances[k] != 0) return _instances[k];
            int err = 0;
            nint inst = k switch { 0 => _getNfc(&err), 1 => _getNfd(&err), 2 => _getNfkc(&err), _ => _getNfkd(&err) };
            if (err > 0 || inst == 0) throw new InvalidOperationException($"ICU could not open the {form} normalizer (error {err})");
            return _instances[k] = inst;
        }

        public string Normalize(string text, NormalizationForm form)
        {
            nint inst = Instance(form);
            int capacity = text.Length * 3 + 16;
            while (true)
            {
                var dest = new char[capacity];
                int err = 0, n;
                fixed (char* s = text)
                fixed (char* d = dest)
                    n = _normalize(inst, s, text.Length, d, capacity, &err);
                const int BufferOverflow = 15;
                if (err == BufferOverflow) { capacity = n + 16; continue; }
                if (err > 0) throw new InvalidOperationException($"ICU normalization ({form}) failed with error {err}");
                return new string(dest, 0, n);
            }
        }
    }
}
