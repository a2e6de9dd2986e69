using System.Text;

namespace ObjectMigration.Engine.State;

/// <summary>
/// PowerShell wildcards over object keys (*, ?, [a-c], ` escapes), read exactly as <see cref="Transfer.KeyPattern"/>
/// reads them, written in each store's dialect: SQLite GLOB and PostgreSQL regular expressions. Both are
/// case-sensitive, like S3 keys.
/// </summary>
internal static class WildcardSql
{
    private abstract record Token;
    private sealed record Literal(char Value) : Token;
    private sealed record AnySequence : Token;
    private sealed record AnyCharacter : Token;
    /// <summary>A class as written between the brackets (ranges, a leading ^ negates), taken as it is.</summary>
    private sealed record CharacterClass(string Content) : Token;

    /// <summary>The same reading as KeyPattern: a backtick makes the next character plain, an unclosed [ is plain.</summary>
    private static IEnumerable<Token> Read(string pattern)
    {
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            if (c == '`' && i + 1 < pattern.Length) { yield return new Literal(pattern[++i]); continue; }
            if (c == '*') { yield return new AnySequence(); continue; }
            if (c == '?') { yield return new AnyCharacter(); continue; }
            if (c == '[')
            {
                var close = pattern.IndexOf(']', i + 1);
                if (close > i + 1)
                {
                    yield return new CharacterClass(pattern[(i + 1)..close]);
                    i = close;
                    continue;
                }
            }
            yield return new Literal(c);
        }
    }

    /// <summary>SQLite GLOB: *, ? and [...] as they are; a plain *, ? or [ inside brackets, where GLOB has no escape.</summary>
    public static string ToGlob(string pattern)
    {
        var glob = new StringBuilder();
        foreach (var token in Read(pattern))
        {
            switch (token)
            {
                case Literal { Value: '*' or '?' or '[' } l: glob.Append('[').Append(l.Value).Append(']'); break;
                case Literal l: glob.Append(l.Value); break;
                case AnySequence: glob.Append('*'); break;
                case AnyCharacter: glob.Append('?'); break;
                case CharacterClass k: glob.Append('[').Append(k.Content).Append(']'); break;
            }
        }
        return glob.ToString();
    }

    /// <summary>
    /// A PostgreSQL regular expression (ARE) matching the whole key: metacharacters escaped, backslashes and [ inside a
    /// class escaped (AREs read escapes there), '.' matching a line break too, as in KeyPattern's single-line mode.
    /// </summary>
    public static string ToPostgresRegex(string pattern)
    {
        var regex = new StringBuilder("^");
        foreach (var token in Read(pattern))
        {
            switch (token)
            {
                case Literal { Value: '\\' or '^' or '$' or '.' or '|' or '?' or '*' or '+' or '(' or ')' or '[' or ']' or '{' or '}' } l:
                    regex.Append('\\').Append(l.Value);
                    break;
                case Literal l: regex.Append(l.Value); break;
                case AnySequence: regex.Append(".*"); break;
                case AnyCharacter: regex.Append('.'); break;
                case CharacterClass k: regex.Append('[').Append(k.Content.Replace(@"\", @"\\").Replace("[", @"\[")).Append(']'); break;
            }
        }
        return regex.Append('$').ToString();
    }
}
