namespace Tessera.Vision;

/// <summary>
/// An image that cannot be used: unsupported format, truncated or corrupt data, no pixels, or more
/// pixels than the cap. The message names the source and the expected value; servers answer it
/// with 400, the CLI with one line.
/// </summary>
public sealed class ImageDecodeException(string message) : Exception(message);
