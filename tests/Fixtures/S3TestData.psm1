# Seeds and reads test buckets through a plain AWSSDK client, independent of the module under test.
# The SDK is loaded from the built module's dependencies folder into the default load context, which is also
# how the tests prove the module's private copies do not clash with a version loaded by someone else.

Set-StrictMode -Version Latest
$ErrorActionPreference = 'Stop'

function Import-AwsSdk([string] $ModulePath) {
    $dependencies = Join-Path (Split-Path $ModulePath) 'dependencies'
    if (-not ('Amazon.S3.AmazonS3Client' -as [type])) {
        Add-Type -Path (Join-Path $dependencies 'AWSSDK.Core.dll'), (Join-Path $dependencies 'AWSSDK.S3.dll')
    }
}

function New-TestS3Client {
    param([Parameter(Mandatory)] $Fixture, [string] $Endpoint = $Fixture.Endpoint)
    $config = [Amazon.S3.AmazonS3Config]::new()
    $config.ServiceURL = $Endpoint
    $config.ForcePathStyle = $true
    $config.AuthenticationRegion = 'us-east-1'
    $config.RequestChecksumCalculation = [Amazon.Runtime.RequestChecksumCalculation]::WHEN_REQUIRED
    $config.ResponseChecksumValidation = [Amazon.Runtime.ResponseChecksumValidation]::WHEN_REQUIRED
    [Amazon.S3.AmazonS3Client]::new([Amazon.Runtime.BasicAWSCredentials]::new($Fixture.AccessKey, $Fixture.SecretKey), $config)
}

function New-TestBucket {
    param([Parameter(Mandatory)] $Client, [string] $Prefix = 'om')
    $name = "$Prefix-" + [guid]::NewGuid().ToString('n').Substring(0, 12)
    $null = $Client.PutBucketAsync($name).GetAwaiter().GetResult()
    $name
}

function Get-TestBytes([int] $Length, [int] $Seed) {
    $bytes = [byte[]]::new($Length)
    [System.Random]::new($Seed).NextBytes($bytes)
    , $bytes
}

function Write-TestObject {
    param([Parameter(Mandatory)] $Client, [Parameter(Mandatory)][string] $Bucket, [Parameter(Mandatory)][string] $Key,
        [byte[]] $Content = @(), [string] $ContentType = 'application/octet-stream', [hashtable] $Metadata = @{})
    $request = [Amazon.S3.Model.PutObjectRequest]::new()
    $request.BucketName = $Bucket
    $request.Key = $Key
    $request.InputStream = [System.IO.MemoryStream]::new($Content)
    $request.ContentType = $ContentType
    $request.UseChunkEncoding = $false
    foreach ($name in $Metadata.Keys) { $request.Metadata.Add($name, $Metadata[$name]) }
    $null = $Client.PutObjectAsync($request).GetAwaiter().GetResult()
}

function Read-TestObject {
    param([Parameter(Mandatory)] $Client, [Parameter(Mandatory)][string] $Bucket, [Parameter(Mandatory)][string] $Key)
    $response = $Client.GetObjectAsync($Bucket, $Key).GetAwaiter().GetResult()
    try {
        $buffer = [System.IO.MemoryStream]::new()
        $response.ResponseStream.CopyTo($buffer)
        $metadata = @{}
        foreach ($name in $response.Metadata.Keys) { $metadata[($name -replace '^x-amz-meta-', '')] = $response.Metadata[$name] }
        [pscustomobject]@{ Content = $buffer.ToArray(); ContentType = $response.Headers.ContentType; Metadata = $metadata }
    } finally { $response.Dispose() }
}

function Get-TestKeys {
    param([Parameter(Mandatory)] $Client, [Parameter(Mandatory)][string] $Bucket)
    $request = [Amazon.S3.Model.ListObjectsV2Request]::new()
    $request.BucketName = $Bucket
    do {
        $page = $Client.ListObjectsV2Async($request).GetAwaiter().GetResult()
        foreach ($o in @($page.S3Objects)) { if ($o) { $o.Key } }
        $request.ContinuationToken = $page.NextContinuationToken
    } while ($page.IsTruncated)
}

Export-ModuleMember -Function Import-AwsSdk, New-TestS3Client, New-TestBucket, Get-TestBytes, Write-TestObject, Read-TestObject, Get-TestKeys
