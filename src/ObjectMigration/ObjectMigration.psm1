# Registers the engine's private AssemblyLoadContext before PowerShell looks at the cmdlets (their parameters
# and output types come from the engine), then loads the compiled cmdlets.
$binary = [System.Reflection.Assembly]::LoadFrom((Join-Path $PSScriptRoot 'ObjectMigration.dll'))
$null = $binary.GetType('ObjectMigration.ModuleInitializer').GetMethod('Register').Invoke($null, @())
# By path, not -Assembly: a second Import-Module -Force would get the first import's cached assembly module back with
# no cmdlets in the new module's scope.
Import-Module (Join-Path $PSScriptRoot 'ObjectMigration.dll')
Export-ModuleMember -Cmdlet (Import-PowerShellDataFile (Join-Path $PSScriptRoot 'ObjectMigration.psd1')).CmdletsToExport
