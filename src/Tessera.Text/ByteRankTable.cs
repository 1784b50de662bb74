using System.Numerics;
using System.Runtime.CompilerServices;
using System.Runtime.InteropServices;

namespace Tessera.Text;

/// <summary>
/// Open-addressing hash map from a byte string to (merge rank, token id), built for the BPE
/// hot path: lookups take a <see cref="ReadOnlySpan{T}"/> and never allocate. Keys live in
/// one arena; the table keeps the load factor at or below one half.
/// </summary>
public sealed class ByteRankTable
{
    /// <summary>Rank of a token that exists but no merge produces (only a whole-piece lookup finds it).</summary>
    public const int NoMerge = int.MaxValue;

    private byte[] _arena = new byte[1024];
    private int _arenaUsed;
    private int[] _slots;          // index into the entry arrays + 1; 0 = empty
    private int[] _keyOffset = new int[256];
    private int[] _keyLength = new int[256];
    private int[] _rank = new int[256];
    private int[] _id = new int[256];
    private uint[] _hash = new uint[256];
    private int _count;

    /// <summary>An empty table sized for about <paramref name="expected"/> byte strings (it grows as needed).</summary>
    public ByteRankTable(int expected = 256)
    {
        int cap = 16;
        while (cap < expected * 2) cap <<= 1;
        _slots = new int[cap];
    }

    /// <summary>Number of keys.</summary>
    public int Count => _count;

    /// <summary>Adds a key, or lowers the rank of an existing one. Returns false when the key already existed.</summary>
    public bool Add(ReadOnlySpan<byte> key, int rank, int id)
    {
        uint h = Hash(key);
        int mask = _slots.Length - 1;
        int i = (int)h & mask;
        while (_slots[i] != 0)
        {
            int e = _slots[i] - 1;
            if (_hash[e] == h && KeyEquals(e, key))
            {
                if (rank < _rank[e]) _rank[e] = rank;
                return false;
            }
            i = (i + 1) & mask;
        }
        if (_count == _id.Length) GrowEntries();
        while (_arenaUsed + key.Length > _arena.Length) Array.Resize(ref _arena, _arena.Length * 2);
        key.CopyTo(_arena.AsSpan(_arenaUsed));
        _keyOffset[_count] = _arenaUsed;
        _keyLength[_count] = key.Length;
        _arenaUsed += key.Length;
        _rank[_count] = rank;
        _id[_count] = id;
        _hash[_count] = h;
        _count++;
        _slots[i] = _count;
        if (_count * 2 > _slots.Length) Rehash();
        return true;
    }

    /// <summary>Looks a key up; on success returns its merge rank and token id.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public bool TryGet(ReadOnlySpan<byte> key, out int rank, out int id)
    {
        uint h = Hash(key);
        int mask = _slots.Length - 1;
        int i = (int)h & mask;
        ref int slots = ref MemoryMarshal.GetArrayDataReference(_slots);
        while (true)
        {
            int s = Unsafe.Add(ref slots, i);
            if (s == 0) { rank = NoMerge; id = -1; return false; }
            int e = s - 1;
            if (_hash[e] == h && KeyEquals(e, key)) { rank = _rank[e]; id = _id[e]; return true; }
            i = (i + 1) & mask;
        }
    }

    /// <summary>Merge rank of a key, or <see cref="NoMerge"/> when absent or not produced by a merge.</summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    public int Rank(ReadOnlySpan<byte> key) => TryGet(key, out int rank, out _) ? rank : NoMerge;

    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private bool KeyEquals(int e, ReadOnlySpan<byte> key) =>
        _keyLength[e] == key.Length && _arena.AsSpan(_keyOffset[e], key.Length).SequenceEqual(key);

    /// <summary>
    /// Multiply-rotate hash over 8-byte words: much cheaper than a general-purpose hash for
    /// the short keys BPE looks up, and good enough for a power-of-two table.
    /// </summary>
    [MethodImpl(MethodImplOptions.AggressiveInlining)]
    private static uint Hash(ReadOnlySpan<byte> key)
    {
        ulong h = 0x9E3779B97F4A7C15UL ^ (ulong)key.Length;
        ref byte p = ref MemoryMarshal.GetReference(key);
        int n = key.Length, i = 0;
        for (; i + 8 <= n; i += 8)
        {
            h ^= Unsafe.ReadUnaligned<ulong>(ref Unsafe.Add(ref p, i));
            h = BitOperations.RotateLeft(h * 0xFF51AFD7ED558CCDUL, 29);
        }
        if (i < n)
        {
            ulong tail = 0;
            for (int k = 0; i < n; i++, k += 8) tail |= (ulong)Unsafe.Add(ref p, i) << k;
            h ^= tail;
            h = BitOperations.RotateLeft(h * 0xFF51AFD7ED558CCDUL, 29);
        }
        h *= 0xC4CEB9FE1A85EC53UL;
        return (uint)(h >> 32) ^ (uint)h;
    }

    private void GrowEntries()
    {
        int n = _id.Length * 2;
        Array.Resize(ref _keyOffset, n);
        Array.Resize(ref _keyLength, n);
        Array.Resize(ref _rank, n);
        Array.Resize(ref _id, n);
        Array.Resize(ref _hash, n);
    }

    private void Rehash()
    {
        var slots = new int[_slots.Length * 2];
        int mask = slots.Length - 1;
        for (int e = 0; e < _count; e++)
        {
            int i = (int)_hash[e] & mask;
            while (slots[i] != 0) i = (i + 1) & mask;
            slots[i] = e + 1;
        }
        _slots = slots;
    }
}
