using ObjectMigration.Engine.Storage;

namespace ObjectMigration.Engine.Transfer;

/// <summary>
/// Exponential backoff with full jitter for retryable storage failures: each request's own. Throttling is also answered
/// across all workers of a store by its <see cref="Storage.Pacer"/>, which every attempt waits on.
/// </summary>
public sealed class RetryPolicy
{
    public int MaxAttempts { get; init; } = 6;
    public TimeSpan BaseDelay { get; init; } = TimeSpan.FromMilliseconds(250);
    public TimeSpan MaxDelay { get; init; } = TimeSpan.FromSeconds(20);

    public static RetryPolicy Default { get; } = new();

    /// <summary>Runs <paramref name="action"/>; returns its value, or throws the last error once the budget is spent.</summary>
    public async Task<T> RunAsync<T>(Func<CancellationToken, Task<T>> action, Action<StorageException, int>? onRetry, CancellationToken cancellationToken)
    {
        for (var attempt = 1; ; attempt++)
        {
            try
            {
                return await action(cancellationToken).ConfigureAwait(false);
            }
            catch (StorageException e) when (ShouldRetry(e) && attempt < MaxAttempts && !cancellationToken.IsCancellationRequested)
            {
                onRetry?.Invoke(e, attempt);
                var ceiling = Math.Min(MaxDelay.TotalMilliseconds, BaseDelay.TotalMilliseconds * Math.Pow(2, attempt - 1));
                await Task.Delay(TimeSpan.FromMilliseconds(Random.Shared.NextDouble() * ceiling), cancellationToken).ConfigureAwait(false);
            }
        }
    }

    /// <summary>A refused connection may be a restarting server: retried, and job-fatal only once the budget is spent.</summary>
    private static bool ShouldRetry(StorageException e) => e.IsRetryable || e.ErrorClass == ErrorClass.Connection;
}
