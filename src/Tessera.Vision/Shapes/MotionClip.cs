namespace Tessera.Vision.Shapes;

/// <summary>
/// A shape of a clip: what it is, where its centre is at frame 0, which way it moves, and the
/// frame it appears at (it is not drawn before).
/// </summary>
public sealed record MovingShape(string Kind, string Colour, bool Large, int X, int Y, string Direction, int Appears)
{
    /// <summary>The shape as drawn at frame <paramref name="t"/> of a clip that moves <paramref name="speed"/> pixels per frame.</summary>
    public Shape At(int t, int speed)
    {
        var (dx, dy) = MotionClip.Step(Direction);
        return new Shape(Kind, Colour, Large, X + dx * speed * t, Y + dy * speed * t);
    }

    /// <summary>"red circle".</summary>
    public string Name => $"{Colour} {Kind}";
}

/// <summary>
/// The shapes world in motion: 1–2 shapes of the world's kinds and colours moving in straight lines
/// (left, right, up or down; by default 16 pixels, one patch, over the clip) on the black 64×64 canvas, each
/// appearing at some frame. Frames are drawn by <see cref="ShapeScene"/>'s rasteriser; centres
/// start anywhere that keeps the whole path on the canvas, so no single frame tells the direction,
/// and two shapes stay 16 pixels apart in every frame. Deterministic in the seed.
/// </summary>
public sealed class MotionClip
{
    /// <summary>Directions, as answered.</summary>
    public static readonly string[] Directions = ["left", "right", "up", "down"];

    /// <summary>Pixels moved over the whole clip by default (one patch: the harder setting, 5 pixels a frame at 4 frames).</summary>
    public const int Travel = 16;

    /// <summary>Most pixels a clip may travel: a radius-7 shape's centre stays within 8..56.</summary>
    public const int MaxTravel = 48;

    /// <summary>Unit step of a direction (y grows downward).</summary>
    public static (int Dx, int Dy) Step(string direction) => direction switch
    {
        "left" => (-1, 0), "right" => (1, 0), "up" => (0, -1), "down" => (0, 1),
        _ => throw new ArgumentException($"MotionClip: unknown direction '{direction}'."),
    };

    MotionClip(List<MovingShape> shapes, int frames, int travel)
    {
        Shapes = shapes;
        FrameCount = frames;
        TravelPixels = travel;
    }

    /// <summary>The shapes.</summary>
    public IReadOnlyList<MovingShape> Shapes { get; }

    /// <summary>Frames in the clip.</summary>
    public int FrameCount { get; }

    /// <summary>Pixels the clip was drawn to travel over its frames (<see cref="Travel"/> by default).</summary>
    public int TravelPixels { get; }

    /// <summary>Pixels per frame (<see cref="TravelPixels"/> over the clip, rounded down).</summary>
    public int Speed => TravelPixels / (FrameCount - 1);

    /// <summary>
    /// A random clip of <paramref name="frames"/> (2–8) frames whose (colour, kind) pairs satisfy
    /// <paramref name="allowed"/> and, with <paramref name="mustHave"/>, one that satisfies it.
    /// <paramref name="maxShapes"/> 1 makes one-shape clips (a curriculum's first stage); at 2 the draws are the same as without it.
    /// <paramref name="travel"/> is the pixels each shape moves over the clip (<see cref="Travel"/>–<see cref="MaxTravel"/>;
    /// at <see cref="Travel"/> the draws are the same as without it); more than 16 moves a shape across patches.
    /// </summary>
    public static MotionClip Random(Random rng, int frames, Func<string, string, bool> allowed, Func<string, string, bool>? mustHave = null, int maxShapes = 2, int travel = Travel)
    {
        if (frames is < 2 or > 8) throw new ArgumentException($"MotionClip: {frames} frames; clips have 2 to 8.");
        if (travel is < Travel or > MaxTravel) throw new ArgumentException($"MotionClip: travel {travel} pixels; clips travel {Travel} to {MaxTravel}.");
        int speed = travel / (frames - 1);
        while (true)
        {
            int count = rng.Next(1, Math.Clamp(maxShapes, 1, 2) + 1);
            var shapes = new List<MovingShape>();
            for (int i = 0; i < count; i++)
            {
                string kind, colour;
                do { kind = ShapeScene.Kinds[rng.Next(ShapeScene.Kinds.Length)]; colour = ShapeScene.Colours[rng.Next(ShapeScene.Colours.Length)].Name; } while (!allowed(colour, kind));
                string dir = Directions[rng.Next(4)];
                var (dx, dy) = Step(dir);
                int span = speed * (frames - 1);
                // Centre range 8..56 keeps a radius-7 shape inside the canvas at both ends of the path.
                int x = dx < 0 ? rng.Next(8 + span, 57) : dx > 0 ? rng.Next(8, 57 - span) : rng.Next(8, 57);
                int y = dy < 0 ? rng.Next(8 + span, 57) : dy > 0 ? rng.Next(8, 57 - span) : rng.Next(8, 57);
                shapes.Add(new MovingShape(kind, colour, rng.Next(2) == 1, x, y, dir, rng.Next(frames - 1)));
            }
            if (count == 2)
            {
                if (shapes[0].Name == shapes[1].Name || shapes[0].Appears == shapes[1].Appears) continue;
                bool apart = true;
                for (int t = 0; t < frames && apart; t++)
                {
                    Shape a = shapes[0].At(t, speed), b = shapes[1].At(t, speed);
                    apart = Math.Max(Math.Abs(a.X - b.X), Math.Abs(a.Y - b.Y)) >= 16;
                }
                if (!apart) continue;
            }
            if (mustHave is not null && !shapes.Any(s => mustHave(s.Colour, s.Kind))) continue;
            return new MotionClip(shapes, frames, travel);
        }
    }

    /// <summary>The frames, in order.</summary>
    public RgbImage[] Render()
    {
        var frames = new RgbImage[FrameCount];
        for (int t = 0; t < FrameCount; t++)
            frames[t] = ShapeScene.Of(Shapes.Where(s => s.Appears <= t).Select(s => s.At(t, Speed))).Render();
        return frames;
    }

    /// <summary>
    /// The rationale of a direction answer: the shape's cell (column, row; "zero"–"three") at the first frame it is
    /// drawn in and at the last frame, as four words ("one two two two").
    /// </summary>
    public string Cells(MovingShape s)
    {
        Shape a = s.At(s.Appears, Speed), b = s.At(FrameCount - 1, Speed);
        return $"{ShapesTask.Number(a.X / 16)} {ShapesTask.Number(a.Y / 16)} {ShapesTask.Number(b.X / 16)} {ShapesTask.Number(b.Y / 16)}";
    }

    /// <summary>
    /// A question of <paramref name="type"/> (<see cref="QuestionType.Direction"/> or
    /// <see cref="QuestionType.Order"/>), or null when the clip has nothing to ask it about; with
    /// <paramref name="focus"/>, about a shape that satisfies it when there is one. With
    /// <paramref name="rationale"/>, a direction answer first gives the shape's first and last cells
    /// (<see cref="Cells"/>), then the direction ("one two two two right"). With <paramref name="orderRationale"/>, an
    /// order answer first gives the frame each named shape is first drawn in, in the order they are named
    /// (<see cref="ShapesTask.Number"/>), then the earlier one ("two zero blue star"). The draws are the same either way.
    /// <see cref="QuestionType.Presence"/> asks for the first frame one shape is drawn in ("which appears first , the red
    /// circle ?" → "two"), about either shape of a two-shape clip (null on a one-shape clip).
    /// </summary>
    public ShapeQuestion? Ask(QuestionType type, Random rng, Func<MovingShape, bool>? focus = null, bool rationale = false, bool orderRationale = false)
    {
        switch (type)
        {
            case QuestionType.Direction:
            {
                var list = Shapes.ToList();
                if (focus is not null && list.Any(focus)) list = [.. list.Where(focus)];
                var s = list[rng.Next(list.Count)];
                return new(type, $"which way is the {s.Name} moving ?", rationale ? $"{Cells(s)} {s.Direction}" : s.Direction);
            }
            case QuestionType.Order:
            {
                if (Shapes.Count < 2) return null;
                var (a, b) = rng.Next(2) == 0 ? (Shapes[0], Shapes[1]) : (Shapes[1], Shapes[0]);
                string first = (a.Appears < b.Appears ? a : b).Name;
                return new(type, $"which appears first , the {a.Name} or the {b.Name} ?",
                    orderRationale ? $"{ShapesTask.Number(a.Appears)} {ShapesTask.Number(b.Appears)} {first}" : first);
            }
            case QuestionType.Presence:
            {
                // Two-shape clips only: with one shape "the first frame anything is drawn in" is always right, and a model
                // trained on both answers every presence question that way (measured); here that is right half the time.
                if (Shapes.Count < 2) return null;
                var list = Shapes.ToList();
                if (focus is not null && list.Any(focus)) list = [.. list.Where(focus)];
                var s = list[rng.Next(list.Count)];
                return new(type, $"which appears first , the {s.Name} ?", ShapesTask.Number(s.Appears));
            }
            default: throw new ArgumentException($"MotionClip: {type} is not a motion question.");
        }
    }
}
