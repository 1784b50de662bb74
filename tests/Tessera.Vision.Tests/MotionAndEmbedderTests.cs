using Tessera.Tensors;
using Tessera.Vision.FashionMnist;
using Tessera.Vision.Shapes;

namespace Tessera.Vision.Tests;

/// <summary>
/// Video (moving-shape clips, their questions, the frame embedding), the per-patch MLP embedder, the
/// shape-count curriculum and the colour example grid.
/// </summary>
public class MotionAndEmbedderTests
{
    /// <summary>Centre of the pixels of <paramref name="colour"/> in a frame, or null when it is not drawn.</summary>
    static (double X, double Y)? Centroid(RgbImage img, string colour)
    {
        var c = ShapeScene.Colours.First(k => k.Name == colour);
        double sx = 0, sy = 0; int n = 0;
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < img.Width; x++)
            {
                int o = (y * img.Width + x) * 3;
                if (img.Rgb[o] == c.R && img.Rgb[o + 1] == c.G && img.Rgb[o + 2] == c.B) { sx += x; sy += y; n++; }
            }
        return n == 0 ? null : (sx / n, sy / n);
    }

    [Fact]
    public void ClipAnswersFollowTheDrawnFrames()
    {
        var rng = new Random(4);
        int directions = 0, orders = 0;
        for (int i = 0; i < 150; i++)
        {
            int frames = 4 + i % 5;   // 4..8
            var clip = MotionClip.Random(rng, frames, (_, _) => true);
            var again = MotionClip.Random(new Random(1000 + i), frames, (_, _) => true);
            Assert.Equal(again.Render().SelectMany(f => f.Rgb), MotionClip.Random(new Random(1000 + i), frames, (_, _) => true).Render().SelectMany(f => f.Rgb));
            var images = clip.Render();
            Assert.Equal(frames, images.Length);
            // Distinct colours only, so each shape is found by its colour in the pixels.
            if (clip.Shapes.Select(s => s.Colour).Distinct().Count() != clip.Shapes.Count) continue;

            var d = clip.Ask(QuestionType.Direction, rng)!;
            string name = d.Question.Split(' ')[4];   // which way is the C K moving ?
            var track = images.Select(f => Centroid(f, name)).Where(p => p is not null).Select(p => p!.Value).ToList();
            Assert.True(track.Count >= 2, "a shape is visible in at least two frames");
            double dx = track[^1].X - track[0].X, dy = track[^1].Y - track[0].Y;
            string seen = Math.Abs(dx) > Math.Abs(dy) ? (dx > 0 ? "right" : "left") : (dy > 0 ? "down" : "up");
            Assert.Equal(seen, d.Answer);
            // Integer shifts of the same raster: the drawn centre moves exactly Speed pixels a frame while visible.
            Assert.Equal(clip.Speed * (track.Count - 1), Math.Max(Math.Abs(dx), Math.Abs(dy)), 1e-9);
            directions++;

            if (clip.Ask(QuestionType.Order, rng) is { } o)
            {
                var w = o.Question.Split(' ');   // which appears first , the C1 K1 or the C2 K2 ?
                int First(string colour) => Array.FindIndex(images, f => Centroid(f, colour) is not null);
                Assert.Equal(First(w[5]) < First(w[9]) ? $"{w[5]} {w[6]}" : $"{w[9]} {w[10]}", o.Answer);
                orders++;
            }
        }
        Assert.True(directions > 50 && orders > 20, $"{directions} direction and {orders} order checks");
        // Held-out pairs stay out of training clips.
        for (int i = 0; i < 200; i++)
            Assert.DoesNotContain(MotionClip.Random(rng, 4, (c, k) => !ShapesTask.IsHeldOut(c, k)).Shapes, s => ShapesTask.IsHeldOut(s.Colour, s.Kind));
    }

    /// <summary>Midpoint of the bounding box of <paramref name="colour"/>'s pixel centres in a frame, or null when it is not drawn.</summary>
    static (double X, double Y)? BoxMid(RgbImage img, string colour)
    {
        var c = ShapeScene.Colours.First(k => k.Name == colour);
        int x0 = int.MaxValue, x1 = -1, y0 = int.MaxValue, y1 = -1;
        for (int y = 0; y < img.Height; y++)
            for (int x = 0; x < img.Width; x++)
            {
                int o = (y * img.Width + x) * 3;
                if (img.Rgb[o] != c.R || img.Rgb[o + 1] != c.G || img.Rgb[o + 2] != c.B) continue;
                x0 = Math.Min(x0, x); x1 = Math.Max(x1, x); y0 = Math.Min(y0, y); y1 = Math.Max(y1, y);
            }
        return x1 < 0 ? null : ((x0 + x1 + 1) / 2.0, (y0 + y1 + 1) / 2.0);
    }

    /// <summary>
    /// Larger travel (<see cref="MotionClip.Random"/>'s travel, <c>--motion-travel</c>): labels still follow the drawn
    /// pixels, the drawn shape moves exactly Speed pixels a frame and, at 48 pixels over 4 frames, into the next
    /// 16-pixel patch every frame; the default draws are those of the 16-pixel generator; out-of-range travel is refused.
    /// </summary>
    [Fact]
    public void LargerTravelMovesShapesAcrossPatchesAndLabelsFollowThePixels()
    {
        var rng = new Random(6);
        int checks = 0;
        foreach (int travel in (int[])[16, 32, 48])
            for (int i = 0; i < 120; i++)
            {
                int frames = 2 + i % 7;   // 2..8
                var clip = MotionClip.Random(rng, frames, (_, _) => true, travel: travel);
                Assert.Equal(travel, clip.TravelPixels);
                Assert.Equal(travel / (frames - 1), clip.Speed);
                if (clip.Shapes.Select(s => s.Colour).Distinct().Count() != clip.Shapes.Count) continue;
                var images = clip.Render();
                foreach (var s in clip.Shapes)
                {
                    var track = images.Select(f => Centroid(f, s.Colour)).Where(p => p is not null).Select(p => p!.Value).ToList();
                    Assert.Equal(frames - s.Appears, track.Count);
                    double dx = track[^1].X - track[0].X, dy = track[^1].Y - track[0].Y;
                    Assert.Equal(Math.Abs(dx) > Math.Abs(dy) ? (dx > 0 ? "right" : "left") : (dy > 0 ? "down" : "up"), s.Direction);
                    for (int k = 1; k < track.Count; k++)
                        Assert.Equal(clip.Speed, Math.Abs(track[k].X - track[k - 1].X) + Math.Abs(track[k].Y - track[k - 1].Y), 1e-9);
                    if (travel == 48 && frames == 4)
                    {
                        var cells = images.Select(f => BoxMid(f, s.Colour)).Where(p => p is not null).Select(p => ((int)(p!.Value.X / 16), (int)(p.Value.Y / 16))).ToList();
                        for (int k = 1; k < cells.Count; k++) Assert.NotEqual(cells[k - 1], cells[k]);
                    }
                    checks++;
                }
            }
        Assert.True(checks > 300, $"{checks} shapes checked");
        for (int seed = 0; seed < 50; seed++)
            Assert.Equal(MotionClip.Random(new Random(seed), 4, (_, _) => true).Shapes, MotionClip.Random(new Random(seed), 4, (_, _) => true, travel: MotionClip.Travel).Shapes);
        Assert.Throws<ArgumentException>(() => MotionClip.Random(rng, 4, (_, _) => true, travel: 15));
        Assert.Contains("travel 49", Assert.Throws<ArgumentException>(() => MotionClip.Random(rng, 4, (_, _) => true, travel: 49)).Message);
        // The trainer's clips (training and evaluation) use the option.
        var t = new ShapesTrainer(new ShapesOptions { MotionFraction = 1, MotionTravel = 48 });
        Assert.All(t.MotionEvalSet(3, compositional: false, 10), x => Assert.Equal(48, x.Clip.TravelPixels));
        Assert.All(new ShapesTrainer(new ShapesOptions { MotionFraction = 1 }).MotionEvalSet(3, false, 10), x => Assert.Equal(16, x.Clip.TravelPixels));
    }

    /// <summary>
    /// <c>--motion-rationale</c>: a direction answer gives the shape's cell (column, row) at its first drawn frame and at
    /// the last frame, as the pixels show them, then the plain answer (same draws, same question); scoring takes the
    /// direction of a rationale answer and a plain answer as is; a training batch scores the five words and EOS.
    /// </summary>
    [Fact]
    public void DirectionRationaleGivesTheDrawnCellsThenTheSameVerdict()
    {
        var rng = new Random(12);
        string[] cellWords = ["zero", "one", "two", "three"];
        int checkedCells = 0, asked = 0;
        for (int i = 0; i < 300; i++)
        {
            var clip = MotionClip.Random(rng, 4, (_, _) => true, travel: i % 2 == 0 ? 48 : 16);
            int seed = rng.Next();
            var plain = clip.Ask(QuestionType.Direction, new Random(seed))!;
            var why = clip.Ask(QuestionType.Direction, new Random(seed), rationale: true)!;
            Assert.Equal(plain.Question, why.Question);
            Assert.EndsWith(" " + plain.Answer, why.Answer);
            Assert.Equal(plain.Answer, ShapesTask.DirectionVerdict(why.Answer));
            Assert.Equal(plain.Answer, ShapesTask.DirectionVerdict(plain.Answer));
            asked++;
            var w = plain.Question.Split(' ');   // which way is the C K moving ?
            if (clip.Shapes.Count(s => s.Colour == w[4]) != 1) continue;
            var images = clip.Render();
            var boxes = images.Select(f => BoxMid(f, w[4])).Where(p => p is not null).Select(p => p!.Value).ToList();
            var said = why.Answer.Split(' ');
            // The cell words of the first and the last drawn frame, wherever the drawn midpoint is clear of a cell edge.
            foreach (var (box, col, row) in (((double, double), string, string)[])[(boxes[0], said[0], said[1]), (boxes[^1], said[2], said[3])])
            {
                if (box.Item1 % 16 is > 1.5 and < 14.5) { Assert.Equal(cellWords[(int)(box.Item1 / 16)], col); checkedCells++; }
                if (box.Item2 % 16 is > 1.5 and < 14.5) { Assert.Equal(cellWords[(int)(box.Item2 / 16)], row); checkedCells++; }
            }
        }
        Assert.True(asked == 300 && checkedCells > 600, $"{checkedCells} cells checked");
        // Not a rationale: judged as it is.
        Assert.Equal("one two two two", ShapesTask.DirectionVerdict("one two two two"));
        Assert.Equal("one two two four right", ShapesTask.DirectionVerdict("one two two four right"));
        Assert.Equal("one two two two yes", ShapesTask.DirectionVerdict("one two two two yes"));
        // Scoring: the direction of a rationale answer, whatever its cells; a plain answer exactly; other types unchanged.
        var qWhy = new ShapeQuestion(QuestionType.Direction, "which way is the red circle moving ?", "one two two two right");
        var qPlain = qWhy with { Answer = "right" };
        var order = new ShapeQuestion(QuestionType.Order, "which appears first , the red circle or the blue star ?", "red circle");
        Assert.Equal(1.0, ShapesTrainer.Score([qWhy], ["zero zero three three right"], "t").Accuracy["direction"]);
        Assert.Equal(0.0, ShapesTrainer.Score([qWhy], ["one two two two left"], "t").Accuracy["direction"]);
        Assert.Equal(1.0, ShapesTrainer.Score([qPlain], ["right"], "t").Accuracy["direction"]);
        Assert.Equal(1.0, ShapesTrainer.Score([qPlain], ["one two two two right"], "t").Accuracy["direction"]);
        Assert.Equal(0.0, ShapesTrainer.Score([qPlain], ["right right"], "t").Accuracy["direction"]);
        Assert.Equal(0.5, ShapesTrainer.Score([order, order], ["red circle", "one two two two red circle"], "t").Accuracy["order"]);

        var t = new ShapesTrainer(new ShapesOptions { BatchSize = 32, TextFraction = 0, MotionFraction = 1, MotionTravel = 48, MotionRationale = true });
        var batch = t.TrainBatch(new Random(8));
        int moving = ShapesTask.Encode("moving")[0], directions = 0;
        for (int i = 0; i < batch.B; i++)
        {
            var targets = batch.Targets.AsSpan(i * batch.T, batch.T).ToArray();
            if (!batch.Ids.AsSpan(i * batch.T, batch.T).Contains(moving)) continue;
            int p = batch.Prefix[i];
            string said = ShapesTask.Decode(targets[(p - 1)..(p + 4)]);
            Assert.Contains(ShapesTask.DirectionVerdict(said), MotionClip.Directions);
            Assert.Equal(ShapesTask.Eos, targets[p + 4]);
            directions++;
        }
        Assert.True(directions > 5, $"{directions} direction questions in the batch");
    }

    /// <summary>
    /// <c>--order-rationale</c>: an order answer gives the frame each named shape is first drawn in (found in the pixels),
    /// in the order the question names them, then the plain answer (same draws, same question); scoring takes the name
    /// of a rationale answer and a plain answer as is; with the flag off the training stream is unchanged, and with it
    /// on only the order answers change (same images, same questions); a training batch scores the four words and EOS.
    /// </summary>
    [Fact]
    public void OrderRationaleGivesTheDrawnFirstFramesThenTheSameVerdict()
    {
        var rng = new Random(21);
        int framesChecked = 0, asked = 0;
        for (int i = 0; i < 1200; i++)
        {
            int frames = 3 + i % 4;   // 3–6: a shape appears at frame 0–4, the count words (two shapes never at 2 frames)
            var clip = MotionClip.Random(rng, frames, (_, _) => true, travel: i % 2 == 0 ? 48 : 16);
            int seed = rng.Next();
            var plain = clip.Ask(QuestionType.Order, new Random(seed));
            var why = clip.Ask(QuestionType.Order, new Random(seed), orderRationale: true);
            if (plain is null) { Assert.Null(why); continue; }
            Assert.Equal(plain.Question, why!.Question);
            Assert.EndsWith(" " + plain.Answer, why.Answer);
            Assert.Equal(plain.Answer, ShapesTask.OrderVerdict(why.Answer));
            Assert.Equal(plain.Answer, ShapesTask.OrderVerdict(plain.Answer));
            asked++;
            var w = plain.Question.Split(' ');   // which appears first , the C1 K1 or the C2 K2 ?
            if (w[5] == w[9]) continue;          // same colour: the pixels cannot tell them apart
            var images = clip.Render();
            var said = why.Answer.Split(' ');
            foreach (var (colour, word) in ((string, string)[])[(w[5], said[0]), (w[9], said[1])])
            {
                int first = Array.FindIndex(images, f => Centroid(f, colour) is not null);
                Assert.Equal(ShapesTask.Number(first), word);
                framesChecked++;
            }
            // The earlier-drawn one is the answer.
            int f1 = Array.FindIndex(images, f => Centroid(f, w[5]) is not null), f2 = Array.FindIndex(images, f => Centroid(f, w[9]) is not null);
            Assert.Equal(f1 < f2 ? $"{w[5]} {w[6]}" : $"{w[9]} {w[10]}", plain.Answer);
        }
        Assert.True(asked > 150 && framesChecked > 250, $"{asked} asked, {framesChecked} frames checked");
        // Five is past the count words: a clear error, not a wrong word.
        Assert.Contains("no number word for 5", Assert.Throws<ArgumentException>(() => ShapesTask.Number(5)).Message);
        // Not a rationale: judged as it is.
        Assert.Equal("two zero blue", ShapesTask.OrderVerdict("two zero blue"));
        Assert.Equal("two five blue star", ShapesTask.OrderVerdict("two five blue star"));
        Assert.Equal("two zero blue left", ShapesTask.OrderVerdict("two zero blue left"));
        // Scoring: the name of a rationale answer, whatever its frames; a plain answer exactly; direction unchanged.
        var qWhy = new ShapeQuestion(QuestionType.Order, "which appears first , the red circle or the blue star ?", "two zero blue star");
        var qPlain = qWhy with { Answer = "blue star" };
        Assert.Equal(1.0, ShapesTrainer.Score([qWhy], ["one zero blue star"], "t").Accuracy["order"]);
        Assert.Equal(0.0, ShapesTrainer.Score([qWhy], ["two zero red circle"], "t").Accuracy["order"]);
        Assert.Equal(1.0, ShapesTrainer.Score([qPlain], ["blue star"], "t").Accuracy["order"]);
        Assert.Equal(1.0, ShapesTrainer.Score([qPlain], ["two zero blue star"], "t").Accuracy["order"]);
        Assert.Equal(0.0, ShapesTrainer.Score([qPlain], ["blue star star"], "t").Accuracy["order"]);
        var dir = new ShapeQuestion(QuestionType.Direction, "which way is the red circle moving ?", "right");
        Assert.Equal(0.0, ShapesTrainer.Score([dir], ["two zero right"], "t").Accuracy["direction"]);

        // Off by default: the stream is the default one; on: the same images and questions, only order answers differ.
        var options = new ShapesOptions { BatchSize = 32, TextFraction = 0.1, MotionFraction = 1, MotionTravel = 48 };
        Assert.False(options.OrderRationale);
        int appears = ShapesTask.Encode("appears")[0], orders = 0, others = 0;
        for (int batchSeed = 8; batchSeed < 16; batchSeed++)
        {
            var off = new ShapesTrainer(options).TrainBatch(new Random(batchSeed));
            var on = new ShapesTrainer(options with { OrderRationale = true }).TrainBatch(new Random(batchSeed));
            Assert.Equal(off.Patches, on.Patches);
            Assert.Equal(off.Frames, on.Frames);
            Assert.Equal(off.B, on.B);
            for (int i = 0; i < on.B; i++)
            {
                int[] idsOff = off.Ids.AsSpan(i * off.T, off.T).ToArray(), idsOn = on.Ids.AsSpan(i * on.T, on.T).ToArray();
                int[] tgOn = on.Targets.AsSpan(i * on.T, on.T).ToArray(), tgOff = off.Targets.AsSpan(i * off.T, off.T).ToArray();
                int p = on.Prefix[i];
                Assert.Equal(off.Prefix[i], p);
                if (!idsOn.Contains(appears))
                {
                    Assert.Equal(idsOff.TakeWhile(x => x != 0), idsOn.TakeWhile(x => x != 0));
                    others++;
                    continue;
                }
                Assert.Equal(idsOff[..p], idsOn[..p]);   // same question
                string said = ShapesTask.Decode(tgOn[(p - 1)..(p + 3)]);
                Assert.Equal(ShapesTask.Decode(tgOff[(p - 1)..(p + 1)]), ShapesTask.OrderVerdict(said));
                Assert.NotEqual(said, ShapesTask.OrderVerdict(said));
                Assert.Equal(ShapesTask.Eos, tgOn[p + 3]);
                orders++;
            }
        }
        Assert.True(orders > 20 && others > 100, $"{orders} order questions, {others} others in 8 batches");
    }

    /// <summary>FNV-1a (64-bit) over a batch's ids, targets, prefixes, frame indices and patch values (as bits).</summary>
    static ulong Fingerprint(ulong h, ShapesTrainer.Batch b)
    {
        void Mix(int v) { for (int k = 0; k < 4; k++) { h ^= (byte)(v >> (8 * k)); h *= 1099511628211UL; } }
        foreach (int v in b.Ids) Mix(v);
        foreach (int v in b.Targets) Mix(v);
        foreach (int v in b.Prefix) Mix(v);
        foreach (int v in b.Frames) Mix(v);
        foreach (float v in b.Patches) Mix(BitConverter.SingleToInt32Bits(v));
        Mix(b.B); Mix(b.T);
        return h;
    }

    [Fact]
    public void DefaultClipStreamIsPinned()
    {
        // The motion recipe's training stream (stills and clips, one-shape and four-shape stages), fingerprinted at commit
        // 9972e2d, before --presence-fraction: options that leave an opt-in flag off must keep drawing exactly this stream.
        var options = new ShapesOptions { BatchSize = 16, PositionFraction = 0.5, PositionRationale = true, MotionFraction = 0.5, MotionTravel = 48 };
        var trainer = new ShapesTrainer(options);
        var rng = new Random(5);
        ulong h = 14695981039346656037UL;
        int clips = 0;
        for (int i = 0; i < 12; i++)
        {
            var b = trainer.TrainBatch(rng, i < 6 ? 1 : 4);
            if (b.Frames.Contains(3)) clips++;
            h = Fingerprint(h, b);
        }
        Assert.True(clips is > 2 and < 10, $"{clips} clip batches of 12");
        Assert.Equal(14206369974270705044UL, h);
        // The flag off is the default.
        Assert.Equal(0, options.PresenceFraction);
    }

    [Fact]
    public void PresenceQuestionsAnswerTheFirstDrawnFrameAndAreOptIn()
    {
        var rng = new Random(31);
        int checkedPixels = 0, oneShape = 0, later = 0;
        for (int i = 0; i < 1500; i++)
        {
            int frames = 3 + i % 4;   // 3–6: a shape appears at frame 0–4, the count words (two shapes never at 2 frames)
            var clip = MotionClip.Random(rng, frames, (_, _) => true, travel: i % 2 == 0 ? 48 : 16);
            var q = clip.Ask(QuestionType.Presence, rng);
            if (clip.Shapes.Count == 1) { Assert.Null(q); oneShape++; continue; }   // two-shape clips only
            Assert.NotNull(q);
            var w = q.Question.Split(' ');                 // which appears first , the C K ?
            Assert.Equal(["which", "appears", "first", ",", "the"], w[..5]);
            Assert.Equal("?", w[7]);
            var named = clip.Shapes.Single(s => s.Name == $"{w[5]} {w[6]}");
            Assert.Equal(ShapesTask.Number(named.Appears), q.Answer);
            if (named.Appears > clip.Shapes.Min(s => s.Appears)) later++;
            if (clip.Shapes.Count(s => s.Colour == named.Colour) > 1) continue;   // same colour: the pixels cannot tell them apart
            // The answer is the first frame in which the shape's colour is in the pixels.
            int first = Array.FindIndex(clip.Render(), f => Centroid(f, named.Colour) is not null);
            Assert.Equal(ShapesTask.Number(first), q.Answer);
            checkedPixels++;
        }
        Assert.True(checkedPixels > 250 && oneShape > 200 && later > 100 && later < checkedPixels - 100, $"{checkedPixels} answers checked against the pixels ({later} about the later shape), {oneShape} one-shape clips");
        // Scored on the whole answer; listed after direction and order when trained, absent otherwise.
        var pq = new ShapeQuestion(QuestionType.Presence, "which appears first , the red circle ?", "two");
        Assert.Equal(1.0, ShapesTrainer.Score([pq], ["two"], "t").Accuracy["presence"]);
        Assert.Equal(0.0, ShapesTrainer.Score([pq], ["two zero"], "t").Accuracy["presence"]);
        var options = new ShapesOptions { BatchSize = 32, TextFraction = 0.1, MotionFraction = 1, MotionTravel = 48 };
        var plainSet = new ShapesTrainer(options).MotionEvalSet(9, false, 6);
        var withSet = new ShapesTrainer(options with { PresenceFraction = 0.3 }).MotionEvalSet(9, false, 6);
        Assert.DoesNotContain(plainSet, x => x.Question.Type == QuestionType.Presence);
        Assert.Equal(plainSet.Select(x => x.Question), withSet.Take(12).Select(x => x.Question));
        Assert.Equal(6, withSet.Skip(12).Count(x => x.Question.Type == QuestionType.Presence));
        // In training: about the fraction asked of the clip questions, none in the one-shape stage; a number word and EOS are the targets.
        var trainer = new ShapesTrainer(options with { PresenceFraction = 0.3 });
        var tr = new Random(4);
        int presence = 0, clipQuestions = 0, onOneShape = 0;
        int appears = ShapesTask.Encode("appears")[0], or = ShapesTask.Encode("or")[0];
        for (int k = 0; k < 12; k++)
        {
            var b = trainer.TrainBatch(tr, k < 4 ? 1 : 4);
            for (int i = 0; i < b.B; i++)
            {
                var ids = b.Ids.AsSpan(i * b.T, b.T).ToArray();
                if (!ids.Contains(ImageSpans.VectorId)) continue;
                clipQuestions++;
                if (!ids.Contains(appears) || ids.Contains(or)) continue;
                presence++;
                if (k < 4) onOneShape++;
                int p = b.Prefix[i];
                var tg = b.Targets.AsSpan(i * b.T, b.T).ToArray();
                Assert.Contains(ShapesTask.Decode(tg[(p - 1)..p]), (string[])["zero", "one", "two"]);
                Assert.Equal(ShapesTask.Eos, tg[p]);
            }
        }
        Assert.True(onOneShape == 0 && presence > 0.15 * clipQuestions && presence < 0.3 * clipQuestions, $"{presence} presence of {clipQuestions} clip questions, {onOneShape} in the one-shape stage");
        // Clips past six frames have no number word for a late shape: refused before training.
        Assert.Contains("--presence-fraction", Assert.Throws<ArgumentException>(() => ShapesTrainer.CheckMotionOptions(options with { PresenceFraction = 0.3, MotionFrames = 7 })).Message);
        Assert.Contains("--presence-fraction", Assert.Throws<ArgumentException>(() => ShapesTrainer.CheckMotionOptions(options with { PresenceFraction = 1.5 })).Message);
    }

    [Fact]
    public void FrameEmbeddingNumbersTheImagesOfAClipAndRefusesTooMany()
    {
        var config = new VisionConfig(16, 8) { Frames = 3 };
        using var e = new PatchEmbedder(config, 8, seed: 2);
        var img = PatchGrid.Patches(new RgbImage(16, 16, [.. Enumerable.Range(0, 16 * 16 * 3).Select(i => (byte)(i * 7))]), config);
        float[] two = [.. img, .. img];
        var byDefault = e.Embed(two);
        using var g = new Graph(recordGradients: false);
        var explicitFrames = e.Forward(g, two, [0, 1]).ToArray();
        Assert.Equal(byDefault, explicitFrames);
        // The same image as frame 1 differs from frame 0 by exactly frame[1] − frame[0], on every patch.
        var table = e.Parameters[PatchEmbedder.FrameName].ToArray();
        int per = config.TokensPerImage * 8;
        for (int i = 0; i < per; i++)
            Assert.Equal(table[8 + i % 8] - table[i % 8], byDefault[per + i] - byDefault[i], 1e-5f);
        var ex = Assert.Throws<ArgumentException>(() => e.Embed([.. two, .. img, .. img]));
        Assert.Contains("at most 3 frames", ex.Message);
        using var g2 = new Graph(recordGradients: false);
        Assert.Throws<ArgumentException>(() => e.Forward(g2, two, [0]));
        // A still-image model has no frame table and ignores frame indices.
        using var still = new PatchEmbedder(new VisionConfig(16, 8), 8, seed: 2);
        Assert.DoesNotContain(still.Parameters.All, p => p.Name == PatchEmbedder.FrameName);
    }

    [Fact]
    public void MlpEmbedderMatchesItsFormulaAndItsGradientsMatchFiniteDifferences()
    {
        var config = new VisionConfig(8, 4, 1) { EmbedderHidden = 5 };
        int d = 3, pv = config.PatchValues, h = 5;
        using var e = new PatchEmbedder(config, d, seed: 9);
        var rng = new Random(3);
        foreach (var p in e.Parameters.All) { var s = p.AsSpan("t"); for (int i = 0; i < s.Length; i++) s[i] = (float)(rng.NextDouble() - 0.5); }
        var patches = new float[config.TokensPerImage * pv];
        for (int i = 0; i < patches.Length; i++) patches[i] = (float)rng.NextDouble();
        var probe = new float[config.TokensPerImage * d];
        for (int i = 0; i < probe.Length; i++) probe[i] = (float)(rng.NextDouble() - 0.5);

        float[] W1 = e.Parameters[PatchEmbedder.HiddenWeightName].ToArray(), b1 = e.Parameters[PatchEmbedder.HiddenBiasName].ToArray();
        float[] W = e.Parameters[PatchEmbedder.WeightName].ToArray(), b = e.Parameters[PatchEmbedder.BiasName].ToArray();
        float[] R = e.Parameters[PatchEmbedder.RowName].ToArray(), C = e.Parameters[PatchEmbedder.ColName].ToArray();
        static double Gelu(double v) => 0.5 * v * (1 + Math.Tanh(Math.Sqrt(2 / Math.PI) * (v + 0.044715 * v * v * v)));
        // Forward in float64 from the formula v = W·GELU(W₁·p + b₁) + b + row[r] + col[c].
        double Loss(float[] w1)
        {
            double total = 0;
            for (int m = 0; m < config.TokensPerImage; m++)
            {
                var hid = new double[h];
                for (int j = 0; j < h; j++)
                {
                    double s = b1[j];
                    for (int k = 0; k < pv; k++) s += w1[j * pv + k] * patches[m * pv + k];
                    hid[j] = Gelu(s);
                }
                for (int o = 0; o < d; o++)
                {
                    double v = b[o] + R[m / config.GridSide * d + o] + C[m % config.GridSide * d + o];
                    for (int j = 0; j < h; j++) v += W[o * h + j] * hid[j];
                    total += v * probe[m * d + o];
                }
            }
            return total;
        }
        using var g = new Graph();
        var y = e.Forward(g, patches);
        var got = y.ToArray();
        double reference = Loss(W1), ours = 0;
        for (int i = 0; i < got.Length; i++) ours += got[i] * probe[i];
        Assert.True(Math.Abs(ours - reference) < 1e-4 * (1 + Math.Abs(reference)), $"forward {ours} vs formula {reference}");
        // Backward: d(Σ y·probe)/dW₁ against central differences of the float64 formula.
        var probeT = g.Custom("Probe", [config.TokensPerImage, d], [], o => probe.CopyTo(o), static (_, _) => { });   // a constant
        var loss = g.Sum(g.Mul(y, probeT));
        g.Backward(loss);
        var grad = e.Parameters[PatchEmbedder.HiddenWeightName].Grad!.ToArray();
        const double eps = 1e-3;
        for (int i = 0; i < W1.Length; i += 7)
        {
            var plus = (float[])W1.Clone(); plus[i] += (float)eps;
            var minus = (float[])W1.Clone(); minus[i] -= (float)eps;
            double fd = (Loss(plus) - Loss(minus)) / ((double)plus[i] - minus[i]);
            Assert.True(Math.Abs(grad[i] - fd) < 2e-3 * (1 + Math.Abs(fd)), $"dW1[{i}]: graph {grad[i]}, finite difference {fd}");
        }
    }

    /// <summary>patch_norm: v = g ⊙ u/rms(u) + row[r] + col[c], u = W·p + b, in float64; dW and dg against central differences; the flag round-trips through vision_config.</summary>
    [Fact]
    public void PatchNormMatchesItsFormulaAndItsGradientsMatchFiniteDifferences()
    {
        var config = new VisionConfig(8, 4, 1) { PatchNorm = true };
        int d = 6, pv = config.PatchValues;
        using var e = new PatchEmbedder(config, d, seed: 9);
        var rng = new Random(5);
        foreach (var p in e.Parameters.All) { var s = p.AsSpan("t"); for (int i = 0; i < s.Length; i++) s[i] = (float)(rng.NextDouble() - 0.5); }
        var patches = new float[config.TokensPerImage * pv];
        for (int i = 0; i < patches.Length; i++) patches[i] = (float)rng.NextDouble();
        var probe = new float[config.TokensPerImage * d];
        for (int i = 0; i < probe.Length; i++) probe[i] = (float)(rng.NextDouble() - 0.5);
        float[] W = e.Parameters[PatchEmbedder.WeightName].ToArray(), b = e.Parameters[PatchEmbedder.BiasName].ToArray();
        float[] G = e.Parameters[PatchEmbedder.NormName].ToArray();
        float[] R = e.Parameters[PatchEmbedder.RowName].ToArray(), C = e.Parameters[PatchEmbedder.ColName].ToArray();
        double Loss(float[] w, float[] gain)
        {
            double total = 0;
            for (int m = 0; m < config.TokensPerImage; m++)
            {
                var u = new double[d];
                double ms = 0;
                for (int o = 0; o < d; o++)
                {
                    u[o] = b[o];
                    for (int k = 0; k < pv; k++) u[o] += w[o * pv + k] * patches[m * pv + k];
                    ms += u[o] * u[o] / d;
                }
                double inv = 1 / Math.Sqrt(ms + PatchEmbedder.NormEps);
                for (int o = 0; o < d; o++)
                    total += (gain[o] * u[o] * inv + R[m / config.GridSide * d + o] + C[m % config.GridSide * d + o]) * probe[m * d + o];
            }
            return total;
        }
        using var g = new Graph();
        var y = e.Forward(g, patches);
        var got = y.ToArray();
        double reference = Loss(W, G), ours = 0;
        for (int i = 0; i < got.Length; i++) ours += got[i] * probe[i];
        Assert.True(Math.Abs(ours - reference) < 1e-4 * (1 + Math.Abs(reference)), $"forward {ours} vs formula {reference}");
        var probeT = g.Custom("Probe", [config.TokensPerImage, d], [], o => probe.CopyTo(o), static (_, _) => { });   // a constant
        g.Backward(g.Sum(g.Mul(y, probeT)));
        var dW = e.Parameters[PatchEmbedder.WeightName].Grad!.ToArray();
        var dG = e.Parameters[PatchEmbedder.NormName].Grad!.ToArray();
        const double eps = 1e-3;
        for (int i = 0; i < W.Length; i += 5)
        {
            var plus = (float[])W.Clone(); plus[i] += (float)eps;
            var minus = (float[])W.Clone(); minus[i] -= (float)eps;
            double fd = (Loss(plus, G) - Loss(minus, G)) / ((double)plus[i] - minus[i]);
            Assert.True(Math.Abs(dW[i] - fd) < 2e-3 * (1 + Math.Abs(fd)), $"dW[{i}]: graph {dW[i]}, finite difference {fd}");
        }
        for (int i = 0; i < d; i++)
        {
            var plus = (float[])G.Clone(); plus[i] += (float)eps;
            var minus = (float[])G.Clone(); minus[i] -= (float)eps;
            double fd = (Loss(W, plus) - Loss(W, minus)) / ((double)plus[i] - minus[i]);
            Assert.True(Math.Abs(dG[i] - fd) < 2e-3 * (1 + Math.Abs(fd)), $"dg[{i}]: graph {dG[i]}, finite difference {fd}");
        }
        Assert.True(VisionConfig.FromJson(config.ToJson()).PatchNorm);
        Assert.False(VisionConfig.FromJson(new VisionConfig(8, 4, 1).ToJson()).PatchNorm);
    }

    [Fact]
    public void CurriculumCapsTheShapeCountAndReachesFourAtItsEnd()
    {
        var t = new ShapesTrainer(new ShapesOptions { CurriculumSteps = 900, CurriculumStart = 1, TextFraction = 0, BatchSize = 8 });
        Assert.Equal(1, t.MaxShapesAt(1));
        Assert.Equal(2, t.MaxShapesAt(300));
        Assert.Equal(4, t.MaxShapesAt(899));
        Assert.Equal(4, t.MaxShapesAt(900));
        Assert.Equal(4, new ShapesTrainer(new ShapesOptions()).MaxShapesAt(1));
        var rng = new Random(8);
        for (int i = 0; i < 100; i++) Assert.Single(ShapeScene.Random(rng, (_, _) => true, maxShapes: 1).Shapes);
        // At 4 the draws are those of the uncapped generator.
        Assert.Equal(ShapeScene.Random(new Random(9), (_, _) => true).Shapes, ShapeScene.Random(new Random(9), (_, _) => true, maxShapes: 4).Shapes);
        // Clips follow the curriculum: one shape (so only direction questions) in its first stage; at 2 the uncapped draws.
        for (int i = 0; i < 100; i++) Assert.Single(MotionClip.Random(rng, 4, (_, _) => true, maxShapes: 1).Shapes);
        Assert.Equal(MotionClip.Random(new Random(9), 4, (_, _) => true).Shapes, MotionClip.Random(new Random(9), 4, (_, _) => true, maxShapes: 2).Shapes);
        var video = new ShapesTrainer(new ShapesOptions { CurriculumSteps = 900, MotionFraction = 1, TextFraction = 0, BatchSize = 16 });
        var clips = video.TrainBatch(new Random(2), video.MaxShapesAt(1));
        int first = ShapesTask.Encode("first")[0], moving = ShapesTask.Encode("moving")[0];
        for (int b = 0; b < clips.B; b++)
        {
            var row = clips.Ids.AsSpan(b * clips.T, clips.T);
            Assert.True(row.Contains(moving) && !row.Contains(first), $"clip question {b} of the one-shape stage is not a direction question");
        }
    }

    /// <summary>Clip settings that could only fail mid-run are refused by Train before its first step, naming the flag.</summary>
    [Fact]
    public void TrainRefusesImpossibleClipSettingsBeforeAnyStep()
    {
        var ok = new ShapesOptions { Dim = 32, Layers = 1, Heads = 2, BatchSize = 4, Steps = 1, MotionFraction = 0.5, MotionFrames = 6, OrderRationale = true, MotionTravel = 48 };
        ShapesTrainer.CheckMotionOptions(ok);
        foreach (var (bad, flag) in new[] { (ok with { MotionFrames = 7 }, "--order-rationale"), (ok with { MotionTravel = 49 }, "--motion-travel"),
                     (ok with { MotionTravel = 8 }, "--motion-travel"), (ok with { MotionFrames = 9, OrderRationale = false }, "--motion-frames") })
        {
            var t = new ShapesTrainer(bad);
            using var model = t.NewModel();
            var before = model.Embedder.Parameters[PatchEmbedder.WeightName].ToArray();
            var e = Assert.Throws<ArgumentException>(() => t.Train(model));
            Assert.Contains(flag, e.Message);
            Assert.Equal(before, model.Embedder.Parameters[PatchEmbedder.WeightName].ToArray());
        }
        // Without clips the motion settings are not used, so nothing is refused.
        ShapesTrainer.CheckMotionOptions(ok with { MotionFraction = 0, MotionFrames = 9 });
    }

    /// <summary>A few steps on a batch of clips and text lower the loss and move the frame embedding.</summary>
    [Fact]
    public void MotionTrainingStepsLowerTheLossAndMoveTheFrameEmbedding()
    {
        var t = new ShapesTrainer(new ShapesOptions { Dim = 48, Layers = 2, Heads = 2, BatchSize = 8, TextFraction = 0.1, MotionFraction = 1.0 });
        using var model = t.NewModel();
        Assert.Equal(4, model.Embedder.Config.Frames);
        var batch = t.TrainBatch(new Random(3));
        Assert.Contains(3, batch.Frames);   // a 4-frame clip is in the batch
        var f0 = model.Embedder.Parameters[PatchEmbedder.FrameName].ToArray();
        var (first, last) = ShapesWorldTests.TrainOnOneBatch(model, batch, batch.Frames);
        Assert.True(last < 0.7 * first, $"loss {first:F3} → {last:F3} after 12 steps on one batch");
        Assert.NotEqual(f0, model.Embedder.Parameters[PatchEmbedder.FrameName].ToArray());
        // The model card says so, and the frame table round-trips.
        string dir = Path.Combine(Path.GetTempPath(), "tessera-video-" + Guid.NewGuid().ToString("N"));
        try
        {
            MultimodalCheckpoint.Save(model, dir);
            var config = System.Text.Json.Nodes.JsonNode.Parse(File.ReadAllText(Path.Combine(dir, "config.json")))!["vision_config"]!;
            Assert.Equal(4, config["max_frames"]!.GetValue<int>());
            using var back = MultimodalCheckpoint.Load(dir);
            Assert.Equal(model.Embedder.Parameters[PatchEmbedder.FrameName].ToArray(), back.Embedder.Parameters[PatchEmbedder.FrameName].ToArray());
        }
        finally { Directory.Delete(dir, recursive: true); }
    }

    [Fact]
    public void ColourExampleGridDrawsTheShapesAndMarksWrongAnswers()
    {
        var scene = ShapeScene.Random(new Random(1), (_, _) => true);
        var q = ShapesTask.Ask(scene, QuestionType.Count, new Random(1))!;
        string svg = ExampleGrid.Svg("t", [scene.Render(), scene.Render()], [q.Question, q.Question], [q.Answer, "four"], [q.Answer, q.Answer]);
        var c = ShapeScene.Colours.First(k => k.Name == scene.Shapes[0].Colour);
        Assert.Contains($"fill=\"#{c.R:X2}{c.G:X2}{c.B:X2}\"", svg);
        Assert.Contains(q.Question, svg);
        Assert.Contains($"four (is {q.Answer})", svg);
        Assert.Equal(2, svg.Split("<g transform").Length - 1);
    }
}
