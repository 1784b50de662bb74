namespace Tessera.Vision.Shapes;

/// <summary>One shape of a scene: kind, colour, size class, centre (pixels).</summary>
public sealed record Shape(string Kind, string Colour, bool Large, int X, int Y)
{
    /// <summary>Circumradius in pixels on a 64-pixel canvas.</summary>
    public int Radius => Large ? 7 : 5;

    /// <summary>"large red circle".</summary>
    public string Words => $"{(Large ? "large" : "small")} {Colour} {Kind}";
}

/// <summary>
/// The shapes world: 1–4 shapes (circle, square, triangle, star) in six colours and two sizes on a
/// black 64×64 canvas, one per cell of a 4×4 grid in distinct columns, drawn by the repo's own deterministic rasteriser
/// (pixel centres inside the shape's outline). A scene depends only on its seed.
/// </summary>
public sealed class ShapeScene
{
    /// <summary>Shape kinds.</summary>
    public static readonly string[] Kinds = ["circle", "square", "triangle", "star"];

    /// <summary>Colours with their RGB values.</summary>
    public static readonly (string Name, byte R, byte G, byte B)[] Colours =
        [("red", 230, 40, 40), ("green", 40, 200, 60), ("blue", 50, 90, 240), ("yellow", 240, 220, 40), ("purple", 160, 60, 200), ("white", 240, 240, 240)];

    /// <summary>Canvas side in pixels.</summary>
    public const int Size = 64;

    /// <summary>The shapes, left to right.</summary>
    public IReadOnlyList<Shape> Shapes { get; }

    ShapeScene(List<Shape> shapes) => Shapes = [.. shapes.OrderBy(s => s.X)];

    /// <summary>A scene of the given shapes (a frame of a <see cref="MotionClip"/>).</summary>
    internal static ShapeScene Of(IEnumerable<Shape> shapes) => new([.. shapes]);

    /// <summary>
    /// A random scene: 1–4 shapes whose (colour, kind) pairs all satisfy <paramref name="allowed"/>
    /// and, with <paramref name="mustHave"/>, at least one that satisfies it (the compositional split).
    /// <paramref name="maxShapes"/> (1–4) caps the count for a curriculum; at 4 the draws are the same as without it.
    /// </summary>
    public static ShapeScene Random(Random rng, Func<string, string, bool> allowed, Func<string, string, bool>? mustHave = null, int maxShapes = 4)
    {
        while (true)
        {
            // One shape per 16-pixel cell of a 4×4 grid, in distinct columns (so "left of" is always
            // defined), centred in its cell ±1 pixel: a 16×16 patch then holds one whole shape.
            int count = rng.Next(1, Math.Clamp(maxShapes, 1, 4) + 1);
            var columns = Enumerable.Range(0, 4).OrderBy(_ => rng.Next()).Take(count).ToArray();
            var shapes = new List<Shape>();
            foreach (int col in columns)
            {
                string kind, colour;
                do { kind = Kinds[rng.Next(Kinds.Length)]; colour = Colours[rng.Next(Colours.Length)].Name; } while (!allowed(colour, kind));
                bool large = rng.Next(2) == 1;
                int row = rng.Next(4);
                shapes.Add(new Shape(kind, colour, large, col * 16 + 8 + rng.Next(-1, 2), row * 16 + 8 + rng.Next(-1, 2)));
            }
            if (shapes.Count != count) continue;
            if (mustHave is not null && !shapes.Any(s => mustHave(s.Colour, s.Kind))) continue;
            return new ShapeScene(shapes);
        }
    }

    /// <summary>The scene drawn on black.</summary>
    public RgbImage Render()
    {
        var rgb = new byte[Size * Size * 3];
        foreach (var s in Shapes)
        {
            var c = Colours.First(k => k.Name == s.Colour);
            for (int y = s.Y - s.Radius - 1; y <= s.Y + s.Radius + 1; y++)
                for (int x = s.X - s.Radius - 1; x <= s.X + s.Radius + 1; x++)
                {
                    if ((uint)x >= Size || (uint)y >= Size || !Inside(s, x + 0.5 - s.X, y + 0.5 - s.Y)) continue;
                    int o = (y * Size + x) * 3;
                    rgb[o] = c.R; rgb[o + 1] = c.G; rgb[o + 2] = c.B;
                }
        }
        return new RgbImage(Size, Size, rgb);
    }

    /// <summary>Whether offset (dx, dy) from the centre lies inside the shape (y grows downward).</summary>
    static bool Inside(Shape s, double dx, double dy)
    {
        double r = s.Radius;
        switch (s.Kind)
        {
            case "circle": return dx * dx + dy * dy <= r * r;
            case "square": { double h = r * 0.8; return Math.Abs(dx) <= h && Math.Abs(dy) <= h; }
            case "triangle":   // apex up, base at +0.8r; at most r wide each side, so a large one stays inside its 16-pixel patch (jitter ±1)
                return dy <= 0.8 * r && dy >= -r && Math.Abs(dx) <= Math.Min((dy + r) * 0.6, r);
            default:           // five-pointed star: inside if the polar radius is under the star outline
            {
                double angle = Math.Atan2(dx, -dy), rho = Math.Sqrt(dx * dx + dy * dy);
                double sector = Math.PI * 2 / 5, a = ((angle % sector) + sector) % sector;
                double t = Math.Abs(a - sector / 2) / (sector / 2);              // 1 at a point, 0 between points
                return rho <= r * (0.45 + 0.55 * t);
            }
        }
    }
}
