using System.Globalization;
using System.Security.Cryptography;
using System.Text;
using ObjectMigration.Engine.Storage;
using Xunit;
using Xunit.Abstractions;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// The official AWS Signature Version 4 test suite (aws-sig-v4-test-suite) against <see cref="SigV4Signer.Authorize"/>.
/// <para>
/// The vectors come from npm: the AWS SDK for JavaScript's signer, <c>@smithy/signature-v4</c> (pinned in
/// tests/Fixtures/package.json; the test harness's <c>npm ci</c> installs it). The package does not ship the suite's raw
/// .req/.creq/.sts/.authz files (its .npmignore drops them); it ships them as a generated fixture,
/// <c>dist-es/suite.fixture.js</c>, built from each case's .req (parsed: method, path, query, headers with repeated and
/// folded values already joined with commas, body) and its .authz. So each case here checks the Authorization header
/// byte for byte: the signature is an HMAC of the string to sign, which embeds the SHA-256 of the canonical request, so
/// it only matches when both are exactly the suite's. Byte-for-byte canonical request and string to sign are checked on
/// AWS's documented S3 example in <see cref="S3SignerTests"/>.
/// </para>
/// <para>
/// What the fixture covers: the suite's top-level cases (get-vanilla*, get-header-*, get-unreserved, get-utf8,
/// post-header-*, post-vanilla*, post-x-www-form-urlencoded*) and the session-token cases as post-sts-header-before (the
/// token is a signed header) and post-sts-header-after (the token is added after signing, so it is not in the request).
/// The normalize-path/* cases (get-space, get-relative, get-slash*, ...) are not in the fixture, so they do not run; they
/// would not apply to S3 anyway, which neither normalises paths nor encodes them twice. Every path the fixture does
/// carry reads the same under both rules (checked per case), so encoding it once, as for S3, is what the suite expects.
/// </para>
/// </summary>
public sealed class SigV4TestSuiteTests(ITestOutputHelper output)
{
    private const string Package = "@smithy/signature-v4";
    private const string FixtureFile = "dist-es/suite.fixture.js";
    private const string MissingVectors = "vectors-not-installed";

    // The suite's own constants (its README): the fixture must carry exactly these.
    private const string AccessKeyId = "AKIDEXAMPLE";
    private const string SecretAccessKey = "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY";
    private const string Region = "us-east-1";
    private const string Service = "service";
    private const string AmzDate = "20150830T123600Z";

    public static IEnumerable<object[]> Cases()
    {
        // Discovery must not throw or come back empty: a missing package becomes one case that fails with the reason.
        if (!File.Exists(SuiteFixture.Path)) return [[MissingVectors]];
        return SuiteFixture.Load().Requests.Select(r => new object[] { r.GetString("name") });
    }

    [Theory]
    [MemberData(nameof(Cases))]
    public void Authorization_matches_the_suite(string name)
    {
        var suite = SuiteFixture.Load();
        var testCase = suite.Requests.Single(r => r.GetString("name") == name);
        var request = testCase.GetObject("request");

        var method = request.GetString("method");
        var path = request.GetString("path");
        // S3 keeps the path as given and encodes it once; the generic suite removes '.', '..' and empty segments and
        // encodes twice. For a path with no such segment and no '%', both give the same canonical path.
        Assert.True(ReadsTheSameForS3(path), $"{name}: path '{path}' needs the generic suite's normalisation, which S3 does not do");
        var canonicalPath = SigV4Signer.UriEncode(path, keepSlash: true);
        var canonicalQuery = CanonicalQuery(request.TryGet("query") as JsObject);

        var headers = new List<KeyValuePair<string, string>>();
        foreach (var (header, value) in request.GetObject("headers"))
        {
            // A repeated header arrives as one comma-joined string (the fixture's parser joins them); a list is accepted too.
            foreach (var v in value is List<object?> list ? list.Cast<string>() : [(string)value!]) headers.Add(new(header, v));
        }
        var body = request.TryGet("body") as string ?? "";
        var payloadHash = Hex(SHA256.HashData(Encoding.UTF8.GetBytes(body)));

        var signingKey = SigV4Signer.DeriveSigningKey(SecretAccessKey, AmzDate[..8], Region, Service);
        var (canonicalRequest, stringToSign, authorization) = SigV4Signer.Authorize(
            method, canonicalPath, canonicalQuery, headers, payloadHash, AmzDate, Region, Service, AccessKeyId, signingKey);
        output.WriteLine($"canonical request:\n{canonicalRequest}\n\nstring to sign:\n{stringToSign}");

        var expected = testCase.GetString("authorization");
        // The parts that do not depend on the hashes first, so a failure says which step went wrong.
        var signedHeaders = expected.Split("SignedHeaders=")[1].Split(',')[0];
        Assert.Equal(signedHeaders, canonicalRequest.Split('\n')[^2]);
        Assert.Equal(
            $"AWS4-HMAC-SHA256\n{AmzDate}\n{AmzDate[..8]}/{Region}/{Service}/aws4_request\n{Hex(SHA256.HashData(Encoding.UTF8.GetBytes(canonicalRequest)))}",
            stringToSign);
        Assert.Equal(expected, authorization);
    }

    [Fact]
    public void Fixture_carries_the_suites_constants_and_cases()
    {
        var suite = SuiteFixture.Load();
        Assert.Equal(Region, suite.Region);
        Assert.Equal(Service, suite.Service);
        Assert.Equal(AccessKeyId, suite.AccessKeyId);
        Assert.Equal(SecretAccessKey, suite.SecretAccessKey);
        Assert.Equal(AmzDate, suite.SigningDate.ToString("yyyyMMdd'T'HHmmss'Z'", CultureInfo.InvariantCulture));

        var names = suite.Requests.Select(r => r.GetString("name")).ToList();
        Assert.Equal(names.Count, names.Distinct().Count());
        Assert.Equal(24, names.Count);
        foreach (var name in new[]
        {
            "get-vanilla", "get-vanilla-query-order-key-case", "get-vanilla-utf8-query", "get-header-value-trim",
            "get-header-key-duplicate", "get-header-value-multiline", "get-utf8", "get-unreserved", "post-header-key-case",
            "post-vanilla-query-nonunreserved", "post-x-www-form-urlencoded", "post-sts-header-before", "post-sts-header-after",
        })
        {
            Assert.Contains(name, names);
        }
        foreach (var request in suite.Requests)
        {
            Assert.Equal(AmzDate, request.GetObject("request").GetObject("headers").GetString("x-amz-date"));
        }
        // The session-token case signs the token like any other header.
        var sts = suite.Requests.Single(r => r.GetString("name") == "post-sts-header-before");
        Assert.Contains("x-amz-security-token", sts.GetObject("request").GetObject("headers").Select(h => h.Key));
        Assert.Contains("SignedHeaders=host;x-amz-date;x-amz-security-token,", sts.GetString("authorization"));
    }

    /// <summary>Sorted by encoded name, then encoded value; both RFC 3986 encoded; "name=" for an empty value.</summary>
    private static string CanonicalQuery(JsObject? query)
    {
        if (query is null) return "";
        var pairs = new List<(string Name, string Value)>();
        foreach (var (name, value) in query)
        {
            foreach (var v in value is List<object?> list ? list.Cast<string>() : [(string)value!])
            {
                pairs.Add((SigV4Signer.UriEncode(name, keepSlash: false), SigV4Signer.UriEncode(v, keepSlash: false)));
            }
        }
        return string.Join('&', pairs
            .OrderBy(p => p.Name, StringComparer.Ordinal)
            .ThenBy(p => p.Value, StringComparer.Ordinal)
            .Select(p => p.Name + "=" + p.Value));
    }

    private static bool ReadsTheSameForS3(string path) =>
        path.StartsWith('/') && !path.Contains('%') &&
        path[1..].Split('/').Skip(path == "/" ? 1 : 0).All(segment => segment is not ("" or "." or ".."));

    private static string Hex(byte[] bytes) => Convert.ToHexString(bytes).ToLowerInvariant();

    private sealed record Suite(string Region, string Service, string AccessKeyId, string SecretAccessKey, DateTime SigningDate, List<JsObject> Requests);

    /// <summary>Finds and reads the fixture the npm package ships.</summary>
    private static class SuiteFixture
    {
        private static readonly Lazy<Suite> Cached = new(Read);

        public static string Path { get; } = System.IO.Path.Combine(
            RepoRoot(), "tests", "Fixtures", "node_modules", Package, FixtureFile);

        public static Suite Load() => Cached.Value;

        private static Suite Read()
        {
            if (!File.Exists(Path))
            {
                throw new InvalidOperationException(
                    $"The AWS SigV4 test-suite vectors are not installed ({Path} is missing): run the test harness, " +
                    "'dotnet pwsh ./build.ps1 -Task Test', whose npm ci in tests/Fixtures installs them " +
                    $"(or run 'npm ci' in tests/Fixtures), then run these tests again.");
            }
            var exports = JsLiteral.ParseModule(File.ReadAllText(Path));
            var credentials = (JsObject)exports["credentials"]!;
            var date = DateTime.Parse((string)exports["signingDate"]!, CultureInfo.InvariantCulture,
                DateTimeStyles.AdjustToUniversal | DateTimeStyles.AssumeUniversal);
            var requests = ((List<object?>)exports["requests"]!).Cast<JsObject>().ToList();
            return new Suite((string)exports["region"]!, (string)exports["service"]!, credentials.GetString("accessKeyId"),
                credentials.GetString("secretAccessKey"), date, requests);
        }

        private static string RepoRoot()
        {
            for (var dir = new DirectoryInfo(AppContext.BaseDirectory); dir is not null; dir = dir.Parent)
            {
                if (File.Exists(System.IO.Path.Combine(dir.FullName, "ObjectMigration.sln"))) return dir.FullName;
            }
            throw new InvalidOperationException($"No ObjectMigration.sln above {AppContext.BaseDirectory}: cannot find tests/Fixtures.");
        }
    }
}

/// <summary>A JavaScript object literal's properties, in source order.</summary>
internal sealed class JsObject : List<KeyValuePair<string, object?>>
{
    public object? TryGet(string key) => this.FirstOrDefault(p => p.Key == key).Value;

    public string GetString(string key) =>
        TryGet(key) as string ?? throw new InvalidDataException($"No string property '{key}' in the suite fixture.");

    public JsObject GetObject(string key) =>
        TryGet(key) as JsObject ?? throw new InvalidDataException($"No object property '{key}' in the suite fixture.");
}

/// <summary>
/// Reads the data of an ES module made only of <c>export const name = literal;</c> statements, which is what the suite
/// fixture is: objects (identifier or string keys), arrays, strings (either quote, JavaScript escapes), numbers,
/// true/false/null and <c>new Date("...")</c> (read as its string). Anything else is an error, never a guess.
/// </summary>
internal static class JsLiteral
{
    public static Dictionary<string, object?> ParseModule(string source)
    {
        var exports = new Dictionary<string, object?>(StringComparer.Ordinal);
        var reader = new Reader(source);
        while (true)
        {
            reader.SkipSpace();
            if (reader.AtEnd) return exports;
            reader.Expect("export");
            reader.SkipSpace();
            reader.Expect("const");
            reader.SkipSpace();
            var name = reader.Identifier();
            reader.SkipSpace();
            reader.Expect("=");
            exports[name] = reader.Value();
            reader.SkipSpace();
            reader.Expect(";");
        }
    }

    private sealed class Reader(string text)
    {
        private int _at;

        public bool AtEnd => _at >= text.Length;

        public void SkipSpace()
        {
            while (_at < text.Length)
            {
                if (char.IsWhiteSpace(text[_at]))
                {
                    _at++;
                }
                else if (text.AsSpan(_at).StartsWith("//"))
                {
                    var end = text.IndexOf('\n', _at);
                    _at = end < 0 ? text.Length : end;
                }
                else if (text.AsSpan(_at).StartsWith("/*"))
                {
                    var end = text.IndexOf("*/", _at + 2, StringComparison.Ordinal);
                    if (end < 0) throw Error("unterminated comment");
                    _at = end + 2;
                }
                else
                {
                    return;
                }
            }
        }

        public void Expect(string token)
        {
            if (!text.AsSpan(_at).StartsWith(token)) throw Error($"expected '{token}'");
            _at += token.Length;
        }

        public string Identifier()
        {
            // Any Unicode letter may start one (the fixture has a query key 'ሴ'); a digit may not.
            var start = _at;
            while (_at < text.Length && (char.IsLetterOrDigit(text[_at]) || text[_at] is '_' or '$')) _at++;
            if (_at == start || char.IsDigit(text[start])) throw Error("expected an identifier");
            return text[start.._at];
        }

        public object? Value()
        {
            SkipSpace();
            if (AtEnd) throw Error("expected a value");
            switch (text[_at])
            {
                case '{': return Object();
                case '[': return Array();
                case '"' or '\'': return String();
            }
            if (text.AsSpan(_at).StartsWith("new Date("))
            {
                _at += "new Date(".Length;
                SkipSpace();
                var date = String();
                SkipSpace();
                Expect(")");
                return date;
            }
            if (char.IsDigit(text[_at]) || text[_at] == '-')
            {
                var start = _at++;
                while (_at < text.Length && (char.IsDigit(text[_at]) || text[_at] is '.' or 'e' or 'E' or '+' or '-')) _at++;
                return double.Parse(text[start.._at], CultureInfo.InvariantCulture);
            }
            var word = Identifier();
            return word switch
            {
                "true" => true,
                "false" => false,
                "null" => null,
                _ => throw Error($"unsupported value '{word}'"),
            };
        }

        private JsObject Object()
        {
            Expect("{");
            var result = new JsObject();
            while (true)
            {
                SkipSpace();
                if (text[_at] == '}') { _at++; return result; }
                var key = text[_at] is '"' or '\'' ? String() : Identifier();
                SkipSpace();
                Expect(":");
                result.Add(new(key, Value()));
                SkipSpace();
                if (text[_at] == ',') _at++;
                else if (text[_at] != '}') throw Error("expected ',' or '}'");
            }
        }

        private List<object?> Array()
        {
            Expect("[");
            var result = new List<object?>();
            while (true)
            {
                SkipSpace();
                if (text[_at] == ']') { _at++; return result; }
                result.Add(Value());
                SkipSpace();
                if (text[_at] == ',') _at++;
                else if (text[_at] != ']') throw Error("expected ',' or ']'");
            }
        }

        private string String()
        {
            var quote = text[_at++];
            var builder = new StringBuilder();
            while (true)
            {
                if (AtEnd) throw Error("unterminated string");
                var ch = text[_at++];
                if (ch == quote) return builder.ToString();
                if (ch is '\n' or '\r') throw Error("line break in a string");
                if (ch != '\\') { builder.Append(ch); continue; }
                var escape = text[_at++];
                switch (escape)
                {
                    case 'n': builder.Append('\n'); break;
                    case 'r': builder.Append('\r'); break;
                    case 't': builder.Append('\t'); break;
                    case 'b': builder.Append('\b'); break;
                    case 'f': builder.Append('\f'); break;
                    case 'v': builder.Append('\v'); break;
                    case '0' when _at >= text.Length || !char.IsDigit(text[_at]): builder.Append('\0'); break;
                    case 'x': builder.Append((char)Hex(2)); break;
                    case 'u' when text[_at] == '{':
                        var close = text.IndexOf('}', _at);
                        if (close < 0) throw Error("unterminated \\u{...}");
                        builder.Append(char.ConvertFromUtf32(int.Parse(text.AsSpan(_at + 1, close - _at - 1), NumberStyles.HexNumber, CultureInfo.InvariantCulture)));
                        _at = close + 1;
                        break;
                    case 'u': builder.Append((char)Hex(4)); break;
                    case '\r': if (_at < text.Length && text[_at] == '\n') _at++; break; // line continuation
                    case '\n': break;
                    case >= '1' and <= '9': throw Error("octal escapes are not supported");
                    default: builder.Append(escape); break; // \\, \", \', and identity escapes
                }
            }
        }

        private int Hex(int digits)
        {
            if (_at + digits > text.Length) throw Error("truncated escape");
            var value = int.Parse(text.AsSpan(_at, digits), NumberStyles.HexNumber, CultureInfo.InvariantCulture);
            _at += digits;
            return value;
        }

        private InvalidDataException Error(string what)
        {
            var line = text.AsSpan(0, Math.Min(_at, text.Length)).Count('\n') + 1;
            return new InvalidDataException($"Suite fixture, line {line}: {what}.");
        }
    }
}
