using System.Reflection;
using ObjectMigration.Engine.State;

namespace ObjectMigration.Engine.Tests;

/// <summary>
/// The real state store with a hook after each call: a test sees or replaces what a method returned, or holds
/// the calling thread at a chosen moment. Everything else is the store itself.
/// </summary>
public class InterceptedStateStore : DispatchProxy
{
    private IStateStore _inner = null!;
    private Func<string, object?[], object?, object?> _after = null!;

    /// <summary><paramref name="after"/> gets the method name, its arguments and its result, and returns the result to give.</summary>
    public static IStateStore Wrap(IStateStore inner, Func<string, object?[], object?, object?> after)
    {
        var store = Create<IStateStore, InterceptedStateStore>();
        var interceptor = (InterceptedStateStore)(object)store;
        interceptor._inner = inner;
        interceptor._after = after;
        return store;
    }

    protected override object? Invoke(MethodInfo? method, object?[]? args)
    {
        object? result;
        try
        {
            result = method!.Invoke(_inner, args);
        }
        catch (TargetInvocationException e) when (e.InnerException is not null)
        {
            System.Runtime.ExceptionServices.ExceptionDispatchInfo.Throw(e.InnerException);
            throw;
        }
        return _after(method.Name, args ?? [], result);
    }
}
