using System.Text;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Scheduling;

/// <summary>
/// Keys to probe when a runner cuts part of another runner's listing range for itself. S3 lists in key order and tells
/// nothing of how many keys lie where, so where a range's keys are is learned by asking for the keys after a point.
/// </summary>
public static class SplitPoint
{
    /// <summary>The last character (U+10FFFF): <c>prefix + Last</c> comes after every key that starts with the prefix.</summary>
    public const string Last = "\U0010FFFF";

    /// <summary>
    /// A key after <paramref name="low"/> and before <paramref name="high"/> (null: no bound), half-way at the first
    /// character where the two differ. Above ASCII the half is taken of ASCII first, where most keys are: a probe past
    /// the point finds keys beyond ASCII too, and otherwise the point is a bound for the next. Null when no useful key
    /// lies between (<paramref name="high"/> is <paramref name="low"/> and a control character).
    /// </summary>
    public static string? Between(string low, string? high)
    {
        var lows = Runes(low);
        var highs = high is null ? null : Runes(high);
        var i = 0;
        while (highs is not null && i < lows.Count && i < highs.Count && lows[i] == highs[i]) i++;
        if (highs is not null && i >= highs.Count) return null; // high is not after low
        var below = i < lows.Count ? lows[i] : -1; // -1: low ends here
        var above = highs is null ? 0x110000 : highs[i]; // past U+10FFFF: no bound
        if (above < below) return null; // high is before low
        if (below < 0x7F && above > 0x80) above = 0x80;
        var middle = (below + above) / 2;
        if (middle is >= 0xD800 and <= 0xDFFF) middle = below < 0xD7FF ? 0xD7FF : 0xE000;
        // Control characters are no keys anyone makes: a key made of them would be a useless place to cut.
        if (middle > below && middle < above && middle >= 0x20)
        {
            return Join(lows, i) + char.ConvertFromUtf32(middle);
        }
        if (below < 0) return null;
        // No character fits between at i: keep low's and go one character further, where anything after low's rest fits.
        var rest = Between(string.Concat(lows.Skip(i + 1).Select(char.ConvertFromUtf32)), null);
        return rest is null ? null : Join(lows, i + 1) + rest;
    }

    /// <summary>The keys that start with the first <paramref name="length"/> characters of <paramref name="key"/> all come before this.</summary>
    public static string AfterPrefixOf(string key, int length) => Join(Runes(key), length) + Last;

    /// <summary>How many characters (not UTF-16 units) <paramref name="key"/> has.</summary>
    public static int Length(string key) => Runes(key).Count;

    /// <summary>
    /// How wide a range looks from its bounds: the position of the first character where they differ (lower is wider;
    /// -1 for a range without an end), so an idle runner cuts the range with most left to list.
    /// </summary>
    public static int Narrowness(ListingRange range)
    {
        if (range.LastKey is null) return -1;
        var (a, b) = (Runes(range.ListFrom), Runes(range.LastKey));
        var i = 0;
        while (i < a.Count && i < b.Count && a[i] == b[i]) i++;
        return i;
    }

    private static List<int> Runes(string text) => text.EnumerateRunes().Select(r => r.Value).ToList();

    private static string Join(List<int> runes, int count)
    {
        var text = new StringBuilder();
        foreach (var rune in runes.Take(count)) text.Append(char.ConvertFromUtf32(rune));
        return text.ToString();
    }
}
