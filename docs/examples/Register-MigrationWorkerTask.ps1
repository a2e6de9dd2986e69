<#
.SYNOPSIS
    Registers a Windows scheduled task that runs a migration worker at start-up, as the user who saved the connectors.
.DESCRIPTION
    The task runs "Start-MigrationWorker" in a hidden pwsh, restarts it if it fails, and never times it out. It logs on
    with a password (not S4U): connector secrets are protected with DPAPI for that user, which needs the user's keys.
    Jobs are handed to it with New-MigrationJob -Detached, run as the same user.
.EXAMPLE
    ./Register-MigrationWorkerTask.ps1 -Credential (Get-Credential CONTOSO\migrator) -MaxJobs 4
#>
[CmdletBinding(SupportsShouldProcess)]
param(
    [Parameter(Mandatory)][pscredential] $Credential,
    [ValidateRange(1, 64)][int] $MaxJobs = 4,
    [string] $TaskName = 'ObjectMigration worker'
)
$ErrorActionPreference = 'Stop'
# Expanded by the worker's own pwsh when the task runs, so the log lands in that user's state folder.
$command = 'Import-Module ObjectMigration -ErrorAction Stop; ' +
    "Start-MigrationWorker -MaxJobs $MaxJobs -ErrorAction Stop *>> (Join-Path `$env:LOCALAPPDATA 'ObjectMigration\worker.log')"
$action = New-ScheduledTaskAction -Execute 'pwsh.exe' -Argument "-NoProfile -NonInteractive -WindowStyle Hidden -Command `"$command`""
$trigger = New-ScheduledTaskTrigger -AtStartup
$settings = New-ScheduledTaskSettingsSet -ExecutionTimeLimit ([TimeSpan]::Zero) -RestartCount 10 -RestartInterval (New-TimeSpan -Minutes 1) `
    -MultipleInstances IgnoreNew -StartWhenAvailable -RunOnlyIfNetworkAvailable
if ($PSCmdlet.ShouldProcess($TaskName, 'Register scheduled task')) {
    Register-ScheduledTask -TaskName $TaskName -Action $action -Trigger $trigger -Settings $settings `
        -User $Credential.UserName -Password $Credential.GetNetworkCredential().Password -RunLevel Limited | Out-Null
    Start-ScheduledTask -TaskName $TaskName
    Write-Host "Registered and started '$TaskName'. Stop it cleanly with Get-MigrationWorker | Stop-MigrationWorker."
}
