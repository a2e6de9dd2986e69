using System.Text;
using System.Text.RegularExpressions;

namespace ObjectMigration.Engine.Transfer;

/// <summary>PowerShell-style wildcards (*, ?, [abc], ` escapes) over whole object keys; case-sensitive like S3.</summary>
public sealed class KeyPattern
{
    private readonly Regex _regex;

    public KeyPattern(string pattern)
    {
        var builder = new StringBuilder("^");
        for (var i = 0; i < pattern.Length; i++)
        {
            var c = pattern[i];
            switch (c)
            {
                case '`' when i + 1 < pattern.Length: builder.Append(Regex.Escape(pattern[++i].ToString())); break;
                case '*': builder.Append(".*"); break;
                case '?': builder.Append('.'); break;
                case '[':
                    var close = pattern.IndexOf(']', i + 1);
                    if (close < 0) { builder.Append(@"\["); break; }
                    builder.Append('[').Append(pattern[(i + 1)..close].Replace(@"\", @"\\")).Append(']');
                    i = close;
                    break;
                default: builder.Append(Regex.Escape(c.ToString())); break;
            }
        }
        _regex = new Regex(builder.Append('$').ToString(), RegexOptions.Singleline | RegexOptions.CultureInvariant);
    }

    public bool IsMatch(string key) => _regex.IsMatch(key);
}
