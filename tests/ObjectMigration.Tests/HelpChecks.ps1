# Dot-sourced by Help.Tests.ps1, in its own process and in the child that checks the converter's sample pages: what
# Get-Help says about a cmdlet of the imported module, against what the cmdlet is. Each function returns the problems
# it finds as sentences; none means the help is right.

function Get-HelpText($Value) {
    (($Value | ForEach-Object { if ($_ -is [string]) { $_ } else { $_.Text } }) -join "`n").Trim()
}

function Test-HelpSummary([string] $Name) {
    $help = Get-Help $Name -Full
    # Help PowerShell makes up for a cmdlet without MAML has no details.description, and a syntax as its synopsis.
    if (-not (Get-HelpText $help.details.description)) { "$Name has no synopsis." }
    if (-not (Get-HelpText $help.description)) { "$Name has no description." }
}

function Test-HelpParameter([string] $Name) {
    $command = Get-Command $Name
    $help = Get-Help $Name -Full
    $documented = @($help.parameters.parameter | Where-Object { $_ })
    # WhatIf and Confirm are no common parameters: a cmdlet that has them documents them, as PlatyPS does.
    $common = [System.Management.Automation.Cmdlet]::CommonParameters
    foreach ($parameter in $command.Parameters.Keys | Where-Object { $_ -notin $common }) {
        $entry = $documented | Where-Object name -EQ $parameter
        if (-not $entry) { "$Name -$parameter has no help." }
        elseif (-not (Get-HelpText $entry.description)) { "$Name -$parameter has no description." }
    }
}

function Test-HelpNamesRealParameter([string] $Name) {
    $command = Get-Command $Name
    $help = Get-Help $Name -Full
    $named = @($help.parameters.parameter.name) + @($help.syntax.syntaxItem | ForEach-Object { $_.parameter.name }) |
        Where-Object { $_ } | Sort-Object -Unique
    foreach ($parameter in $named) {
        if (-not $command.Parameters.ContainsKey($parameter)) { "$Name help names -$parameter, which $Name does not have." }
    }
}

function Test-HelpExample([string] $Name, [int] $Minimum = 2) {
    $help = Get-Help $Name -Full
    $examples = @($help.examples.example | Where-Object { $_ })
    if ($examples.Count -lt $Minimum) { "$Name has $($examples.Count) example(s), fewer than $Minimum." }
    $module = (Get-Command $Name).Module
    foreach ($example in $examples) {
        $title = ($example.title -replace '^-+\s*|\s*-+$', '')
        $code = ($example.code -join "`n") -replace '^PS> ', ''
        if (-not $code.Trim()) { "$Name '$title' has no code."; continue }
        $errors = $null
        $ast = [System.Management.Automation.Language.Parser]::ParseInput($code, [ref] $null, [ref] $errors)
        foreach ($e in $errors) { "$Name '$title' does not parse: $($e.Message) (line $($e.Extent.StartLineNumber))." }
        # A parameter of one of this module's cmdlets that the cmdlet does not have is an example that fails when run.
        foreach ($call in $ast.FindAll({ $args[0] -is [System.Management.Automation.Language.CommandAst] }, $true)) {
            $cmdlet = $module.ExportedCmdlets[$call.GetCommandName()]
            if (-not $cmdlet) { continue }
            $known = $cmdlet.Parameters.Values | ForEach-Object { $_.Name; $_.Aliases }
            foreach ($used in $call.CommandElements | Where-Object { $_ -is [System.Management.Automation.Language.CommandParameterAst] }) {
                if ($used.ParameterName -notin $known) { "$Name '$title' calls $($cmdlet.Name) with -$($used.ParameterName), which it does not have." }
            }
        }
    }
}

function Get-HelpProblem([string] $Name) {
    Test-HelpSummary $Name
    Test-HelpParameter $Name
    Test-HelpNamesRealParameter $Name
    Test-HelpExample $Name
}
