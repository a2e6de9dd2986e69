# Registers the engine's private AssemblyLoadContext before PowerShell looks at the cmdlets (their parameters
# and output types come from the engine), then loads the compiled cmdlets.
$binary = [System.Reflection.Assembly]::LoadFrom((Join-Path $PSScriptRoot 'ObjectMigration.dll'))
$null = $binary.GetType('ObjectMigration.ModuleInitializer').GetMethod('Register').Invoke($null, @())
Import-Module -Assembly $binary
Export-ModuleMember -Cmdlet (Import-PowerShellDataFile (Join-Path $PSScriptRoot 'ObjectMigration.psd1')).CmdletsToExport
