namespace Tessera.Kernels;

/// <summary>Input checks shared by the embedding kernels and their scalar twins.</summary>
public static class EmbeddingChecks
{
    /// <summary>Throws when an id does not name a row of the table.</summary>
    public static void Id(int id, int position, int rows)
    {
        if ((uint)id >= (uint)rows)
            throw new ArgumentOutOfRangeException(nameof(id), id, $"Embedding: id {id} at position {position} is outside the table's {rows} rows.");
    }
}
