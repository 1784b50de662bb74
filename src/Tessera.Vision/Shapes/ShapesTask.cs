namespace Tessera.Vision.Shapes;

/// <summary>Question types of the shapes world (plus captions).</summary>
public enum QuestionType
{
    /// <summary>"how many shapes ?" → one … four.</summary>
    Count,
    /// <summary>"what colour is the star ?" (a kind that occurs once) → a colour.</summary>
    Colour,
    /// <summary>"what shape is the red one ?" (a colour that occurs once) → a kind.</summary>
    Shape,
    /// <summary>"is the red circle left of the blue star ?" → yes / no.</summary>
    Position,
    /// <summary>"which is bigger , the red circle or the blue star ?" → the larger one's colour and kind.</summary>
    Bigger,
    /// <summary>"caption :" → every shape left to right ("large red circle and small blue star").</summary>
    Caption,
    /// <summary>Video: "which way is the red circle moving ?" → left, right, up or down.</summary>
    Direction,
    /// <summary>Video: "which appears first , the red circle or the blue star ?" → the one that appears in an earlier frame.</summary>
    Order,
    /// <summary>
    /// Video, an auxiliary (<see cref="ShapesOptions.PresenceFraction"/>): "which appears first , the red circle ?" → the number
    /// word of the first frame the shape is drawn in ("zero"–"four"); asked about two-shape clips.
    /// </summary>
    Presence,
}

/// <summary>One question about a scene and its reference answer (words).</summary>
public sealed record ShapeQuestion(QuestionType Type, string Question, string Answer);

/// <summary>
/// The shapes world as a task: a closed word vocabulary, questions and captions about scenes, the
/// compositional split, and the encoding of an example as input rows:
/// <c>&lt;|bos|&gt; &lt;|image|&gt; question answer : | answer &lt;|eos|&gt;</c>, where everything up to
/// "answer :" is the prefix (bidirectional under prefix-LM) and the loss covers the answer and EOS.
/// Text-only documents (scene descriptions in words, no image) are plain causal sequences.
/// </summary>
public static class ShapesTask
{
    /// <summary>Special ids.</summary>
    public const int Pad = 0, Bos = 1, Eos = 2, Image = 3;

    /// <summary>
    /// Colour–shape pairs held out of training: the compositional split's scenes contain at least one,
    /// training scenes none (each colour and each shape is still seen, in other pairs).
    /// </summary>
    public static readonly (string Colour, string Kind)[] HeldOut = [("red", "star"), ("green", "circle"), ("blue", "square"), ("yellow", "triangle")];

    static readonly string[] Numbers = ["zero", "one", "two", "three", "four"];

    /// <summary>
    /// The number word of <paramref name="n"/> ("zero"–"four"): count answers and the frames of an order rationale and a
    /// presence answer (<see cref="MotionClip.Ask"/>; a shape appears at most at frame four, so clips of up to six frames).
    /// </summary>
    public static string Number(int n)
        => n >= 0 && n < Numbers.Length ? Numbers[n] : throw new ArgumentException($"shapes vocabulary: no number word for {n} (0 to {Numbers.Length - 1}); order rationales need clips of at most {Numbers.Length + 1} frames.");

    /// <summary>id → word.</summary>
    public static readonly string[] Words = BuildWords();

    static readonly Dictionary<string, int> Ids = Words.Select((w, i) => (w, i)).ToDictionary(p => p.w, p => p.i);

    static string[] BuildWords()
    {
        var w = new List<string> { "<|pad|>", "<|bos|>", "<|eos|>", "<|image|>" };
        w.AddRange(["how", "many", "shapes", "?", "what", "colour", "is", "the", "shape", "one", "which", "bigger", ",", "or",
            "yes", "no", "left", "of", "caption", ":", "answer", "and", "there", "a", ".", "large", "small", "right"]);
        foreach (var n in Numbers) if (!w.Contains(n)) w.Add(n);
        foreach (var k in ShapeScene.Kinds) w.Add(k);
        foreach (var c in ShapeScene.Colours) w.Add(c.Name);
        w.AddRange(["way", "moving", "up", "down", "appears", "first"]);   // video (MotionClip); appended so the still words keep their ids
        return [.. w];
    }

    /// <summary>Whether (colour, kind) is held out.</summary>
    public static bool IsHeldOut(string colour, string kind) => HeldOut.Contains((colour, kind));

    /// <summary>Word ids of a space-separated text; throws naming an unknown word.</summary>
    public static int[] Encode(string text)
        => [.. text.Split(' ', StringSplitOptions.RemoveEmptyEntries).Select(w => Ids.TryGetValue(w, out int id) ? id : throw new ArgumentException($"shapes vocabulary: unknown word '{w}'."))];

    /// <summary>Words of ids (specials dropped).</summary>
    public static string Decode(IEnumerable<int> ids) => string.Join(' ', ids.Where(i => i > Image && i < Words.Length).Select(i => Words[i]));

    /// <summary>
    /// A question of <paramref name="type"/> about <paramref name="scene"/>, or null when the scene has
    /// nothing to ask it about. With <paramref name="focus"/>, questions about one shape ask about a
    /// shape that satisfies it when there is one. With <paramref name="rationale"/>, a position answer
    /// first names the left one of the pair, then says yes or no ("blue star no"); the draws are the
    /// same either way, so the scenes and questions do not change. With <paramref name="pair"/>, a position or bigger question
    /// pairs the first shape drawn only with a second one that satisfies it (null: any); when that shape has no such partner
    /// there is nothing to ask (null), so a caller that draws scenes until it gets a question gets such a pair.
    /// </summary>
    public static ShapeQuestion? Ask(ShapeScene scene, QuestionType type, Random rng, Func<Shape, bool>? focus = null, bool rationale = false, Func<Shape, Shape, bool>? pair = null)
    {
        var s = scene.Shapes;
        Shape? Pick(IEnumerable<Shape> candidates)
        {
            var list = candidates.ToList();
            if (focus is not null && list.Any(focus)) list = [.. list.Where(focus)];
            return list.Count == 0 ? null : list[rng.Next(list.Count)];
        }
        switch (type)
        {
            case QuestionType.Count: return new(type, "how many shapes ?", Number(s.Count));
            case QuestionType.Colour:
            {
                var t = Pick(s.Where(a => s.Count(b => b.Kind == a.Kind) == 1));
                return t is null ? null : new(type, $"what colour is the {t.Kind} ?", t.Colour);
            }
            case QuestionType.Shape:
            {
                var t = Pick(s.Where(a => s.Count(b => b.Colour == a.Colour) == 1));
                return t is null ? null : new(type, $"what shape is the {t.Colour} one ?", t.Kind);
            }
            case QuestionType.Position:
            case QuestionType.Bigger:
            {
                var named = s.Where(a => s.Count(b => b.Colour == a.Colour && b.Kind == a.Kind) == 1).ToList();
                var first = Pick(named);
                if (first is null) return null;
                var others = named.Where(b => b != first && (type == QuestionType.Position || b.Large != first.Large) && (pair is null || pair(first, b))).ToList();
                if (others.Count == 0) return null;
                var second = others[rng.Next(others.Count)];
                if (rng.Next(2) == 1) (first, second) = (second, first);
                string a = $"{first.Colour} {first.Kind}", b = $"{second.Colour} {second.Kind}";
                if (type == QuestionType.Position)
                {
                    string verdict = first.X < second.X ? "yes" : "no";
                    var left = first.X < second.X ? first : second;
                    return new(type, $"is the {a} left of the {b} ?", rationale ? $"{left.Colour} {left.Kind} {verdict}" : verdict);
                }
                return new(type, $"which is bigger , the {a} or the {b} ?", first.Large ? a : b);
            }
            default:
                return new(type, "caption :", string.Join(" and ", s.Select(x => x.Words)));
        }
    }

    /// <summary>
    /// The yes/no of a position answer: the last word of a rationale answer ("colour kind yes|no", see
    /// <see cref="Ask"/>), else the answer itself. Position questions are scored on it, so a model trained
    /// with rationales is judged on its verdict alone and a plain answer is judged as before.
    /// </summary>
    public static string PositionVerdict(string answer)
    {
        var w = answer.Split(' ');
        return w.Length == 3 && ShapeScene.Colours.Any(c => c.Name == w[0]) && ShapeScene.Kinds.Contains(w[1]) && w[2] is "yes" or "no" ? w[2] : answer;
    }

    /// <summary>
    /// The direction of a direction answer: the last word of a rationale answer (four cell words, then the
    /// direction, see <see cref="MotionClip.Ask"/>), else the answer itself. Direction questions are scored on
    /// it, so a model trained with rationales is judged on its verdict alone and a plain answer as before.
    /// </summary>
    public static string DirectionVerdict(string answer)
    {
        var w = answer.Split(' ');
        return w.Length == 5 && w[..4].All(c => Array.IndexOf(Numbers, c) is >= 0 and <= 3) && MotionClip.Directions.Contains(w[4]) ? w[4] : answer;
    }

    /// <summary>
    /// The shape named by an order answer: the last two words of a rationale answer (two frame number words, then
    /// "colour kind", see <see cref="MotionClip.Ask"/>), else the answer itself. Order questions are scored on it,
    /// so a model trained with rationales is judged on its verdict alone and a plain answer as before.
    /// </summary>
    public static string OrderVerdict(string answer)
    {
        var w = answer.Split(' ');
        return w.Length == 4 && Numbers.Contains(w[0]) && Numbers.Contains(w[1]) && ShapeScene.Colours.Any(c => c.Name == w[2]) && ShapeScene.Kinds.Contains(w[3]) ? $"{w[2]} {w[3]}" : answer;
    }

    /// <summary>The part of an answer to a question of <paramref name="type"/> that is scored (<see cref="PositionVerdict"/>, <see cref="DirectionVerdict"/>, <see cref="OrderVerdict"/>; else the whole answer).</summary>
    public static string Verdict(QuestionType type, string answer) => type switch
    {
        QuestionType.Position => PositionVerdict(answer),
        QuestionType.Direction => DirectionVerdict(answer),
        QuestionType.Order => OrderVerdict(answer),
        _ => answer,
    };

    /// <summary>A text-only document about a scene (no image): its shapes and one relation, in words.</summary>
    public static string Describe(ShapeScene scene, Random rng)
    {
        var s = scene.Shapes;
        string text = $"there is a {string.Join(" and a ", s.Select(x => x.Words))} .";
        if (s.Count > 1)
        {
            int i = rng.Next(s.Count - 1);
            text += $" the {s[i].Colour} {s[i].Kind} is left of the {s[i + 1].Colour} {s[i + 1].Kind} .";
        }
        return text;
    }

    /// <summary>
    /// Input rows of a question about an image (or a clip of <paramref name="images"/> frames): ids
    /// (the images as <see cref="ImageSpans.VectorId"/> rows), the prefix length (BOS, images,
    /// question, "answer :") and the answer's ids with EOS.
    /// </summary>
    public static (int[] Prompt, int Prefix, int[] Answer) Encode(ShapeQuestion q, VisionConfig config, int images = 1)
    {
        var prompt = new List<int> { Bos };
        prompt.AddRange(Enumerable.Repeat(ImageSpans.VectorId, config.TokensPerImage * images));
        prompt.AddRange(Encode(q.Question));
        if (q.Type != QuestionType.Caption) prompt.AddRange(Encode("answer :"));
        return ([.. prompt], prompt.Count, [.. Encode(q.Answer), Eos]);
    }
}
