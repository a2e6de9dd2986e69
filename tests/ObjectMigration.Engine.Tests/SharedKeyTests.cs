using System.Security.Cryptography;
using ObjectMigration.Engine.Connectors;
using Xunit;

namespace ObjectMigration.Engine.Tests;

/// <summary>The key worker hosts of one shared state store share (issue 21): given by the operator, checked, never made up.</summary>
public sealed class SharedKeyTests : IDisposable
{
    private readonly string _folder = Path.Combine(Path.GetTempPath(), "om-sharedkey-" + Guid.NewGuid().ToString("n")[..8]);

    public SharedKeyTests() => Directory.CreateDirectory(_folder);

    public void Dispose() => Directory.Delete(_folder, recursive: true);

    [Fact]
    public void Hosts_with_the_same_key_read_each_others_secrets_and_a_host_with_another_key_is_told_which_variables_to_set()
    {
        var key = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        var sealedOnA = new SecretProtector(Path.Combine(_folder, "host-a"), SharedKey.From(key, null)).Protect("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG");
        var onB = new SecretProtector(Path.Combine(_folder, "host-b"), SharedKey.From(key, null)).Unprotect(sealedOnA);
        Assert.Equal(("AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG"), (onB.AccessKeyId, onB.SecretAccessKey));
        // Nothing of the key is written into the state folder.
        Assert.False(File.Exists(Path.Combine(_folder, "host-b", "secret.key")));

        var other = new SecretProtector(Path.Combine(_folder, "host-c"), SharedKey.From(Convert.ToBase64String(RandomNumberGenerator.GetBytes(32)), null));
        var refused = Assert.Throws<InvalidOperationException>(() => other.Unprotect(sealedOnA));
        Assert.Contains(SharedKey.Variable, refused.Message);
        Assert.DoesNotContain("wJalrXUtnFEMI", refused.Message);
    }

    [Theory]
    [InlineData("not base64!", "is not base64")]
    [InlineData("AAAA", "holds 3 bytes, not 32")]
    public void A_bad_key_is_refused_with_how_to_make_one_and_without_repeating_it(string given, string said)
    {
        var refused = Assert.Throws<InvalidOperationException>(() => SharedKey.From(given, null));
        Assert.Contains(said, refused.Message);
        Assert.Contains("openssl rand -base64 32", refused.Message);
        Assert.DoesNotContain(given, refused.Message);
    }

    [Fact]
    public void A_key_file_is_read_never_created_and_must_be_the_users_alone()
    {
        var missing = Path.Combine(_folder, "typo.key");
        var refused = Assert.Throws<InvalidOperationException>(() => SharedKey.From(null, missing));
        Assert.Contains(SharedKey.FileVariable, refused.Message);
        Assert.False(File.Exists(missing));

        var path = Path.Combine(_folder, "shared.key");
        File.WriteAllBytes(path, RandomNumberGenerator.GetBytes(32));
        if (!OperatingSystem.IsWindows())
        {
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite | UnixFileMode.GroupRead);
            Assert.Throws<StateNotPrivateException>(() => SharedKey.From(null, path));
            File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);
        }
        Assert.Equal(path, SharedKey.From(null, path)!.Describe);
    }

    [Fact]
    public void A_key_file_that_holds_the_key_as_base64_text_is_refused_with_how_to_write_the_bytes_not_to_seal_again()
    {
        var path = Path.Combine(_folder, "text.key");
        var text = Convert.ToBase64String(RandomNumberGenerator.GetBytes(32));
        File.WriteAllText(path, text + "\n");
        if (!OperatingSystem.IsWindows()) File.SetUnixFileMode(path, UnixFileMode.UserRead | UnixFileMode.UserWrite);

        var refused = Assert.Throws<InvalidOperationException>(() => SharedKey.From(null, path));

        Assert.Contains("as base64 text", refused.Message);
        Assert.Contains("openssl rand 32 >", refused.Message);
        Assert.Contains(SharedKey.Variable, refused.Message);
        Assert.DoesNotContain("Set-CloudConnector", refused.Message);
        Assert.DoesNotContain(text, refused.Message);
    }
}
