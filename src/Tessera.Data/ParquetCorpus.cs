using Parquet;
using Parquet.Schema;

namespace Tessera.Data;

/// <summary>
/// Parquet input (<c>.parquet</c>, read with Parquet.Net): one document per row of a string
/// column (<c>text</c> unless another is named), row groups in file order. A file without that
/// column is rejected with the columns it has; a column of another type is rejected too. Null
/// and empty cells are dropped, as empty documents are in every format.
/// </summary>
public static class ParquetCorpus
{
    /// <summary>Appends the documents of <paramref name="file"/> to <paramref name="docs"/>, keyed <c>key#row</c> (0-based over the whole file).</summary>
    /// <exception cref="InvalidDataException">Not a Parquet file, or no string column named <paramref name="column"/>.</exception>
    public static void Read(string file, string key, string column, List<CorpusDocument> docs)
    {
        if (new FileInfo(file).Length == 0) throw new InvalidDataException($"Corpus file {file} is empty.");
        using var stream = File.OpenRead(file);
        ParquetReader reader;
        try
        {
            reader = ParquetReader.CreateAsync(stream).GetAwaiter().GetResult();
        }
        catch (Exception e) when (e is IOException or InvalidDataException or NotSupportedException or ArgumentException)
        {
            throw new InvalidDataException($"{file} is not a readable Parquet file ({e.Message}).");
        }
        try
        {
            var fields = reader.Schema.GetDataFields();
            var field = fields.FirstOrDefault(f => f.Name == column && f.Path.Length == 1)
                ?? throw new InvalidDataException($"{file} has no column \"{column}\" (its columns: {string.Join(", ", fields.Select(f => f.Path.ToString()))}); name the text column with --text-field.");
            // Parquet.Net 6 describes a UTF-8 column it reads as ReadOnlyMemory<char>; a written schema says string.
            if (field.ClrType != typeof(string) && field.ClrType != typeof(ReadOnlyMemory<char>) || field.IsArray)
                throw new InvalidDataException($"{file}: column \"{column}\" holds {(field.IsArray ? "lists" : field.ClrType.Name)}, expected strings.");
            long row = 0;
            for (int g = 0; g < reader.RowGroupCount; g++)
            {
                using var group = reader.OpenRowGroupReader(g);
                var cells = new string?[checked((int)group.RowCount)];
                group.ReadAsync(field, cells.AsMemory(), null).GetAwaiter().GetResult();
                foreach (var text in cells)
                {
                    if (!string.IsNullOrEmpty(text)) docs.Add(new CorpusDocument($"{key}#{row}", text));
                    row++;
                }
            }
        }
        finally
        {
            reader.DisposeAsync().AsTask().GetAwaiter().GetResult();
        }
    }
}
