namespace ObjectMigration.Engine.Scheduling;

/// <summary>
/// How many of a run's workers may be transferring at once: a semaphore whose size changes while it is used (the
/// adaptive level). Lowering it takes effect as transfers finish; none is interrupted. Priority waiters (parts of an
/// upload already open) go before the others (whole objects), so open uploads finish before new ones start.
/// </summary>
internal sealed class ConcurrencyGate(int limit)
{
    private readonly object _lock = new();
    private readonly LinkedList<TaskCompletionSource> _waiting = new();
    private readonly LinkedList<TaskCompletionSource> _waitingFirst = new();
    private int _limit = Math.Max(1, limit);
    private int _inFlight;
    private int _peak;

    public int Limit { get { lock (_lock) return _limit; } }

    public void SetLimit(int limit)
    {
        lock (_lock)
        {
            _limit = Math.Max(1, limit);
            GrantWhileRoom();
        }
    }

    /// <summary>The most transfers in flight at once since the last call; starts again from those in flight now.</summary>
    public int TakePeak()
    {
        lock (_lock)
        {
            var peak = _peak;
            _peak = _inFlight;
            return peak;
        }
    }

    public Task EnterAsync(CancellationToken ct, bool priority = false)
    {
        TaskCompletionSource waiter;
        LinkedListNode<TaskCompletionSource> node;
        LinkedList<TaskCompletionSource> queue;
        lock (_lock)
        {
            if (_inFlight < _limit && _waiting.Count == 0 && _waitingFirst.Count == 0)
            {
                Take();
                return Task.CompletedTask;
            }
            waiter = new TaskCompletionSource(TaskCreationOptions.RunContinuationsAsynchronously);
            queue = priority ? _waitingFirst : _waiting;
            node = queue.AddLast(waiter);
        }
        if (!ct.CanBeCanceled) return waiter.Task;
        var registration = ct.Register(() =>
        {
            lock (_lock)
            {
                // Granted meanwhile: the slot is the caller's, who sees the task completed and must Exit as usual.
                if (node.List is null) return;
                queue.Remove(node);
            }
            waiter.TrySetCanceled(ct);
        });
        return waiter.Task.ContinueWith(t => { registration.Dispose(); return t; }, TaskScheduler.Default).Unwrap();
    }

    public void Exit()
    {
        lock (_lock)
        {
            _inFlight--;
            GrantWhileRoom();
        }
    }

    private void Take()
    {
        _inFlight++;
        if (_inFlight > _peak) _peak = _inFlight;
    }

    private void GrantWhileRoom()
    {
        while (_inFlight < _limit && (_waitingFirst.First ?? _waiting.First) is { } first)
        {
            first.List!.Remove(first);
            Take();
            first.Value.TrySetResult();
        }
    }
}
