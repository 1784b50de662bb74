using Tessera.Data;

namespace Tessera.Training;

/// <summary>
/// The token shards a run reads. <paramref name="ValidationBytes"/> is the UTF-8 byte count of the
/// text behind the validation shards; with it evaluation reports bits per byte
/// (0 = unknown, bits per byte is then NaN). The shards stay owned by the caller.
/// </summary>
public sealed record TrainData(IReadOnlyList<TokenShard> Train, IReadOnlyList<TokenShard>? Validation = null, long ValidationBytes = 0);
