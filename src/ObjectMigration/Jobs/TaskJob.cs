using System.Management.Automation;

namespace ObjectMigration.Jobs;

/// <summary>A background job for short engine work (-AsJob on Test-CloudConnector): results go to Receive-Job.</summary>
public sealed class TaskJob : Job
{
    private readonly CancellationTokenSource _cancel = new();
    private readonly Func<CancellationToken, Task<IEnumerable<object>>> _work;
    private readonly Func<Exception, ErrorRecord> _toError;

    public TaskJob(string command, string name, Func<CancellationToken, Task<IEnumerable<object>>> work, Func<Exception, ErrorRecord> toError)
        : base(command, name)
    {
        _work = work;
        _toError = toError;
        PSJobTypeName = "ObjectMigrationTask";
    }

    public override string Location => Environment.MachineName;
    public override string StatusMessage => JobStateInfo.State.ToString();
    public override bool HasMoreData => Output.Count > 0 || Error.Count > 0;

    public void Start()
    {
        SetJobState(JobState.Running);
        _ = Task.Run(async () =>
        {
            try
            {
                foreach (var item in await _work(_cancel.Token).ConfigureAwait(false)) Output.Add(PSObject.AsPSObject(item));
                SetJobState(JobState.Completed);
            }
            catch (OperationCanceledException) when (_cancel.IsCancellationRequested)
            {
                SetJobState(JobState.Stopped);
            }
            catch (Exception e)
            {
                Error.Add(_toError(e));
                SetJobState(JobState.Failed);
            }
        });
    }

    public override void StopJob() => _cancel.Cancel();

    protected override void Dispose(bool disposing)
    {
        if (disposing) _cancel.Dispose();
        base.Dispose(disposing);
    }
}
