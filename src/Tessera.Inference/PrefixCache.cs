using System.Runtime.InteropServices;

namespace Tessera.Inference;

/// <summary>What a <see cref="PrefixCache"/> has done: look-ups, prompt tokens restored from it, blocks stored and evicted, bytes held.</summary>
public readonly record struct PrefixCacheStats(long Lookups, long RestoredTokens, long StoredBlocks, long Evictions, long BytesUsed, long BudgetBytes, long PeakBytes);

/// <summary>
/// Keys and values of token prefixes, kept across requests in blocks of <see cref="BlockTokens"/>
/// positions. A block is keyed by a 64-bit hash chained over every token before it and its own
/// (so it matches only the same whole prefix) and also keeps its own ids, checked on every hit.
/// Blocks are shared by every sequence whose prompt starts with that prefix: a hit copies them into
/// the sequence's KV slot (the slot then diverges freely: copy on use, the stored block never
/// changes), so a shared system prompt or the earlier turns of a chat are computed once.
/// Eviction is least-recently-used under a byte budget. The budget is one pool of blocks,
/// allocated and committed when the cache is made (as a server reserves its KV memory up front):
/// blocks are taken from and returned to that pool, so a long-running server's memory does not
/// grow as the cache fills and churns (one allocation per block and a free per eviction let the
/// native heap fragment and grow under a soak). Used by one thread (the batching scheduler); not
/// thread-safe.
/// </summary>
public sealed unsafe class PrefixCache : IDisposable
{
    /// <summary>Positions per block.</summary>
    public const int BlockTokens = 16;

    readonly KvCache kv;
    readonly Dictionary<ulong, Block> blocks = [];
    readonly LinkedList<Block> lru = [];
    readonly Stack<int> freeBlocks = new();
    float* pool;
    long lookups, restored, stored, evictions, peak;

    sealed class Block(ulong key, int[] tokens, int index)
    {
        public readonly ulong Key = key;
        public readonly int[] Tokens = tokens;
        public readonly int Index = index;
        public LinkedListNode<Block>? Node;
    }

    /// <summary>A cache for <paramref name="kv"/>'s layout holding at most <paramref name="budgetBytes"/> of blocks.</summary>
    public PrefixCache(KvCache kv, long budgetBytes)
    {
        if (budgetBytes <= 0) throw new ArgumentException($"PrefixCache: the budget must be positive, got {budgetBytes} bytes.");
        this.kv = kv;
        BudgetBytes = budgetBytes;
        BlockBytes = BlockTokens * kv.BytesPerPosition;
        long capacity = budgetBytes / BlockBytes;
        if (capacity > int.MaxValue) throw new ArgumentException($"PrefixCache: a budget of {budgetBytes} bytes is {capacity} blocks, more than one pool can index.");
        long available = GC.GetGCMemoryInfo().TotalAvailableMemoryBytes;
        if (capacity * BlockBytes > available)
            throw new ArgumentException($"PrefixCache: a budget of {budgetBytes >> 20} MB does not fit the {available >> 20} MB this process may use.");
        Capacity = (int)capacity;
        if (Capacity > 0)
        {
            nuint bytes = (nuint)(Capacity * BlockBytes);
            pool = (float*)NativeMemory.AlignedAlloc(bytes, 64);
            NativeMemory.Clear(pool, bytes);   // commit the pages now: the server's footprint is set at start, not as the cache fills
        }
        for (int i = Capacity - 1; i >= 0; i--) freeBlocks.Push(i);
    }

    /// <summary>Blocks the pool holds (the budget divided by <see cref="BlockBytes"/>).</summary>
    public int Capacity { get; }

    /// <summary>The most bytes the blocks may take.</summary>
    public long BudgetBytes { get; }
    /// <summary>Bytes of one block (keys and values of every layer and kv head).</summary>
    public long BlockBytes { get; }

    /// <summary>Counters so far.</summary>
    public PrefixCacheStats Stats => new(lookups, restored, stored, evictions, Used, BudgetBytes, peak);

    // Bytes of the blocks in use: every pool block not on the free stack (none once disposed).
    long Used => pool == null ? 0 : (Capacity - freeBlocks.Count) * BlockBytes;

    static ulong Chain(ulong parent, ReadOnlySpan<int> ids)
    {
        // FNV-1a over the parent key and the block's ids (64-bit).
        ulong h = 14695981039346656037UL ^ parent;
        h *= 1099511628211UL;
        foreach (int id in ids)
        {
            h ^= (uint)id;
            h *= 1099511628211UL;
        }
        return h;
    }

    /// <summary>
    /// Copies the longest cached prefix of <paramref name="prompt"/> into <paramref name="slot"/>
    /// (whole blocks, always leaving at least one prompt token to feed, whose logits start the
    /// reply) and returns how many positions it filled.
    /// </summary>
    public int Restore(IReadOnlyList<int> prompt, int slot)
    {
        lookups++;
        int usable = (prompt.Count - 1) / BlockTokens;
        ulong key = 0;
        var ids = new int[BlockTokens];
        int b = 0;
        for (; b < usable; b++)
        {
            for (int i = 0; i < BlockTokens; i++) ids[i] = prompt[b * BlockTokens + i];
            key = Chain(key, ids);
            if (!blocks.TryGetValue(key, out var block) || !block.Tokens.AsSpan().SequenceEqual(ids)) break;
            Copy(Data(block), slot, b * BlockTokens, toSlot: true);
            lru.Remove(block.Node!);
            lru.AddFirst(block.Node!);
        }
        restored += b * BlockTokens;
        return b * BlockTokens;
    }

    /// <summary>Stores the whole blocks of the first <paramref name="length"/> positions of <paramref name="slot"/> (holding <paramref name="tokens"/>) that are not cached yet.</summary>
    public void Store(IReadOnlyList<int> tokens, int length, int slot)
    {
        if (Capacity == 0) return;
        ulong key = 0;
        var ids = new int[BlockTokens];
        for (int b = 0; (b + 1) * BlockTokens <= length; b++)
        {
            for (int i = 0; i < BlockTokens; i++) ids[i] = tokens[b * BlockTokens + i];
            key = Chain(key, ids);
            if (blocks.TryGetValue(key, out var have))
            {
                if (!have.Tokens.AsSpan().SequenceEqual(ids)) return;   // a hash collision: leave that prefix uncached
                lru.Remove(have.Node!);
                lru.AddFirst(have.Node!);
                continue;
            }
            while (freeBlocks.Count == 0 && lru.Last is { } last) Evict(last.Value);
            var block = new Block(key, (int[])ids.Clone(), freeBlocks.Pop());
            Copy(Data(block), slot, b * BlockTokens, toSlot: false);
            block.Node = lru.AddFirst(block);
            blocks[key] = block;
            peak = Math.Max(peak, Used);
            stored++;
        }
    }

    void Evict(Block block)
    {
        // Children of an evicted block can no longer be reached by Restore (it stops at the first
        // miss); they age out of the LRU list like any other block.
        lru.Remove(block.Node!);
        blocks.Remove(block.Key);
        freeBlocks.Push(block.Index);
        evictions++;
    }

    float* Data(Block block) => pool + (long)block.Index * (BlockBytes / sizeof(float));

    // Block layout: for each (layer, kv head): keys then values of BlockTokens positions × head dim.
    void Copy(float* block, int slot, int position, bool toSlot)
    {
        int run = BlockTokens * kv.HeadDim;
        long offset = (long)position * kv.HeadDim;
        float* p = block;
        for (int l = 0; l < kv.Layers; l++)
            for (int h = 0; h < kv.KvHeads; h++)
            {
                float* k = kv.Keys(slot, l, h) + offset, v = kv.Values(slot, l, h) + offset;
                var bs = new Span<float>(p, run); var bv = new Span<float>(p + run, run);
                if (toSlot) { bs.CopyTo(new Span<float>(k, run)); bv.CopyTo(new Span<float>(v, run)); }
                else { new Span<float>(k, run).CopyTo(bs); new Span<float>(v, run).CopyTo(bv); }
                p += 2 * run;
            }
    }

    /// <summary>Frees the pool (every block).</summary>
    public void Dispose()
    {
        if (pool != null) { NativeMemory.AlignedFree(pool); pool = null; }
        blocks.Clear();
        lru.Clear();
        freeBlocks.Clear();
    }
}
