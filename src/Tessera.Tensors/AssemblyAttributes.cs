using System.Runtime.CompilerServices;

// The vectorised internals (DoubleSums, AdamWKernel, BufferPool.SizeClass) are compared with scalar twins there.
[assembly: InternalsVisibleTo("Tessera.Tensors.Tests")]
