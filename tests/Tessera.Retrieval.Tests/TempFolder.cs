namespace Tessera.Retrieval.Tests;

/// <summary>A fresh folder under the temp directory, removed on dispose.</summary>
sealed class TempFolder : IDisposable
{
    public TempFolder() { Path = System.IO.Path.Combine(System.IO.Path.GetTempPath(), "tessera-retrieval-" + Guid.NewGuid().ToString("N")); Directory.CreateDirectory(Path); }
    public string Path { get; }
    public string this[string name] => System.IO.Path.Combine(Path, name);
    public void Dispose() { try { Directory.Delete(Path, true); } catch (IOException) { } }
}
