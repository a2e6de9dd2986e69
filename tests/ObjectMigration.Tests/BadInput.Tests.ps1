# Every parameter of every exported cmdlet given bad values (issue 19, "Bad input"). Each value must be refused before
# anything is written: a specific error id, a message that names the parameter and says what to give instead, no stack
# trace, and the state database (every row of every table), the other files of the state folder and the session's
# PowerShell jobs as they were.

BeforeDiscovery {
    Import-Module $env:OBJECTMIGRATION_TEST_MODULE -Force
    $common = [System.Management.Automation.PSCmdlet]::CommonParameters + [System.Management.Automation.PSCmdlet]::OptionalCommonParameters
    $script:Commands = Get-Command -Module ObjectMigration -CommandType Cmdlet | Sort-Object Name

    # Hand-written cases: the values a person (or a runbook with an unset variable) gets wrong. Placeholders in <>
    # are filled in when the case runs (buckets and jobs exist only then). Base names the known-good arguments the
    # bad one is added to (see $Bases); Remove drops some of them; Names is the parameter the error must name.
    $hand = @(
        # ---- New-MigrationJob: names and connectors
        @{ Command = 'New-MigrationJob'; Parameter = 'Name'; Case = 'empty'; Arguments = @{ Name = '' }; ErrorId = 'InvalidArgument,Name'; Message = '*-Name is empty*give the job a name*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Name'; Case = 'white space'; Arguments = @{ Name = '   ' }; ErrorId = 'InvalidArgument,Name'; Message = '*-Name is empty*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Name'; Case = 'too long (129)'; Arguments = @{ Name = 'n' * 129 }; ErrorId = 'InvalidArgument,Name'; Message = '*use at most 128*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Name'; Case = 'a line break'; Arguments = @{ Name = "nightly`ncopy" }; ErrorId = 'InvalidArgument,Name'; Message = '*control characters*use printable characters*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Name'; Case = 'a tab and an escape'; Arguments = @{ Name = "a`tb$([char]27)[31m" }; ErrorId = 'InvalidArgument,Name'; Message = '*control characters*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceConnector'; Case = 'empty'; Arguments = @{ SourceConnector = '' }; ErrorId = 'ParameterArgumentValidationErrorEmptyStringNotAllowed'; Message = "*parameter 'SourceConnector'*empty string*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceConnector'; Case = 'white space'; Arguments = @{ SourceConnector = '  ' }; ErrorId = 'ConnectorNotFound,SourceConnector'; Message = "*-SourceConnector: no cloud connector is named '  '*Get-CloudConnector*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceConnector'; Case = 'an unknown connector'; Arguments = @{ SourceConnector = 'nobody' }; ErrorId = 'ConnectorNotFound,SourceConnector'; Message = "*no cloud connector is named 'nobody'*New-CloudConnector*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetConnector'; Case = 'an unknown connector'; Arguments = @{ TargetConnector = 'nobody' }; ErrorId = 'ConnectorNotFound,TargetConnector'; Message = "*-TargetConnector: no cloud connector is named 'nobody'*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetConnector'; Case = 'empty'; Arguments = @{ TargetConnector = '' }; ErrorId = 'InvalidArgument,TargetConnector'; Message = '*-TargetConnector is required*name the connector to copy into*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetConnector'; Case = 'given to an Inventory'; Arguments = @{ Type = 'Inventory' }; ErrorId = 'InvalidArgument,TargetConnector'; Message = '*Inventory reads the source only: leave out -TargetConnector*' }
        # ---- New-MigrationJob: buckets by S3's rules (a source may have a legacy us-east-1 name, a target may not)
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceBucket'; Case = 'empty'; Arguments = @{ SourceBucket = '' }; ErrorId = 'ParameterArgumentValidationErrorEmptyStringNotAllowed'; Message = "*parameter 'SourceBucket'*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceBucket'; Case = 'white space'; Arguments = @{ SourceBucket = '   ' }; ErrorId = 'InvalidArgument,SourceBucket'; Message = '*-SourceBucket is required: name the bucket to copy from*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceBucket'; Case = 'too short'; Arguments = @{ SourceBucket = 'ab' }; ErrorId = 'InvalidArgument,SourceBucket'; Message = '*not a valid S3 bucket name: use 3 to 63*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceBucket'; Case = 'too long (256)'; Arguments = @{ SourceBucket = 'a' * 256 }; ErrorId = 'InvalidArgument,SourceBucket'; Message = '*not a valid S3 bucket name*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceBucket'; Case = 'characters S3 never allowed'; Arguments = @{ SourceBucket = 'Bad_Bucket!!' }; ErrorId = 'InvalidArgument,SourceBucket'; Message = '*lower-case letters, digits, dots and hyphens*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceBucket'; Case = 'two dots in a row'; Arguments = @{ SourceBucket = 'bucket..name' }; ErrorId = 'InvalidArgument,SourceBucket'; Message = '*not a valid S3 bucket name*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceBucket'; Case = 'a leading hyphen'; Arguments = @{ SourceBucket = '-bucket' }; ErrorId = 'InvalidArgument,SourceBucket'; Message = '*starting and ending with a letter or digit*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceBucket'; Case = 'an IP address'; Arguments = @{ SourceBucket = '10.0.0.1' }; ErrorId = 'InvalidArgument,SourceBucket'; Message = '*not a valid S3 bucket name*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'empty'; Arguments = @{ TargetBucket = '' }; ErrorId = 'InvalidArgument,TargetBucket'; Message = '*-TargetBucket is required: name the bucket to copy into*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'white space'; Arguments = @{ TargetBucket = '  ' }; ErrorId = 'InvalidArgument,TargetBucket'; Message = '*-TargetBucket is required*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'upper case (legacy only)'; Arguments = @{ TargetBucket = 'MyBucket' }; ErrorId = 'InvalidArgument,TargetBucket'; Message = '*3 to 63 lower-case letters*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'an underscore (legacy only)'; Arguments = @{ TargetBucket = 'my_bucket' }; ErrorId = 'InvalidArgument,TargetBucket'; Message = '*3 to 63 lower-case letters*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'too long (64)'; Arguments = @{ TargetBucket = 'a' * 64 }; ErrorId = 'InvalidArgument,TargetBucket'; Message = '*3 to 63*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'too short'; Arguments = @{ TargetBucket = 'ab' }; ErrorId = 'InvalidArgument,TargetBucket'; Message = '*3 to 63*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'a dot next to a hyphen'; Arguments = @{ TargetBucket = 'my.-bucket' }; ErrorId = 'InvalidArgument,TargetBucket'; Message = '*not a valid S3 bucket name*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'a trailing hyphen'; Arguments = @{ TargetBucket = 'bucket-' }; ErrorId = 'InvalidArgument,TargetBucket'; Message = '*ending with a letter or digit*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'an IP address'; Arguments = @{ TargetBucket = '192.168.1.1' }; ErrorId = 'InvalidArgument,TargetBucket'; Message = '*not a valid S3 bucket name*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = "the reserved prefix 'xn--'"; Arguments = @{ TargetBucket = 'xn--bucket' }; ErrorId = 'InvalidArgument,TargetBucket'; Message = "*uses 'xn--', which S3 reserves*choose another bucket name*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = "the reserved suffix '-s3alias'"; Arguments = @{ TargetBucket = 'bucket-s3alias' }; ErrorId = 'InvalidArgument,TargetBucket'; Message = "*uses '-s3alias', which S3 reserves*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'a line break'; Arguments = @{ TargetBucket = "bucket`n" }; ErrorId = 'InvalidArgument,TargetBucket'; Message = '*not a valid S3 bucket name*' }
        # ---- New-MigrationJob: prefixes and keys
        @{ Command = 'New-MigrationJob'; Parameter = 'SourcePrefix'; Case = 'longer than a key'; Arguments = @{ SourcePrefix = 'p' * 1025 }; ErrorId = 'InvalidArgument,SourcePrefix'; Message = '*longer than an S3 key may be (1024 bytes)*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourcePrefix'; Case = 'longer than a key in UTF-8 bytes'; Arguments = @{ SourcePrefix = [string]::new([char]0x00E9, 513) }; ErrorId = 'InvalidArgument,SourcePrefix'; Message = '*1024 bytes*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourcePrefix'; Case = 'a line break'; Arguments = @{ SourcePrefix = "logs`n" }; ErrorId = 'InvalidArgument,SourcePrefix'; Message = '*control characters*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourcePrefix'; Case = 'white space only'; Arguments = @{ SourcePrefix = '   ' }; ErrorId = 'InvalidArgument,SourcePrefix'; Message = '*only white space: leave it out for the whole bucket*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetPrefix'; Case = "a '..' segment"; Arguments = @{ TargetPrefix = 'a/../b/' }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = "*'..' segment*give the folder-like prefix plainly*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetPrefix'; Case = "a leading '..'"; Arguments = @{ TargetPrefix = '../escape/' }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = "*'..' segment*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetPrefix'; Case = "a trailing '..'"; Arguments = @{ TargetPrefix = 'backup/..' }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = "*'..' segment*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetPrefix'; Case = "a '.' segment"; Arguments = @{ TargetPrefix = './backup/' }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = "*'.' or '..' segment*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetPrefix'; Case = 'a leading slash'; Arguments = @{ TargetPrefix = '/backup/' }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = "*starts with '/'*write 'backup/'*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetPrefix'; Case = 'a tab'; Arguments = @{ TargetPrefix = "back`tup/" }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = '*control characters*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetPrefix'; Case = 'longer than a key'; Arguments = @{ TargetPrefix = 't' * 1100 }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = '*1024 bytes*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetPrefix'; Case = 'white space only'; Arguments = @{ TargetPrefix = '  ' }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = '*only white space: leave it out for no prefix*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Key'; Case = 'an empty key'; Arguments = @{ Key = 'a.bin', '' }; ErrorId = 'InvalidArgument,Key'; Message = '*-Key has an empty key: give the full keys*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Key'; Case = 'a key longer than S3 allows'; Arguments = @{ Key = 'k' * 1025 }; ErrorId = 'InvalidArgument,Key'; Message = '*longer than an S3 key may be (1024 bytes)*' }
        # ---- New-MigrationJob: copying onto itself
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'the source bucket, no prefixes'; Arguments = @{ TargetConnector = 'src'; TargetBucket = '<source>' }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = '*The target is the source*Give another -TargetBucket, or a -TargetPrefix outside -SourcePrefix*'; Names = 'TargetPrefix' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetPrefix'; Case = 'inside the source prefix of the same bucket'; Arguments = @{ TargetConnector = 'src'; TargetBucket = '<source>'; SourcePrefix = 'c/'; TargetPrefix = 'c/copy/' }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = '*The target is the source*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourcePrefix'; Case = 'a source prefix with no target prefix, same bucket'; Arguments = @{ TargetConnector = 'src'; TargetBucket = '<source>'; SourcePrefix = 'c/' }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = '*The target is the source*'; Names = 'TargetPrefix' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetConnector'; Case = 'another connector to the same endpoint and bucket'; Arguments = @{ TargetConnector = 'src-alias'; TargetBucket = '<source>' }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = '*The target is the source*on the same endpoint*'; Names = 'TargetPrefix' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceEndpoint'; Case = 'the target connector''s endpoint and bucket, given inline'; Base = 'Unsaved'; Arguments = @{ TargetConnector = 'src'; TargetBucket = '<source>' }; ErrorId = 'InvalidArgument,TargetPrefix'; Message = '*The target is the source*'; Names = 'TargetPrefix' }
        # ---- New-MigrationJob: a source given inline (-SourceEndpoint)
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceEndpoint'; Case = 'no scheme'; Base = 'Unsaved'; Arguments = @{ SourceEndpoint = 'localhost:9000' }; ErrorId = 'InvalidArgument,SourceEndpoint'; Message = "*'localhost:9000' is not a valid -SourceEndpoint: give an http:// or https:// URL*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceEndpoint'; Case = 'a host name alone'; Base = 'Unsaved'; Arguments = @{ SourceEndpoint = 's3.example.com' }; ErrorId = 'InvalidArgument,SourceEndpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceEndpoint'; Case = 'file://'; Base = 'Unsaved'; Arguments = @{ SourceEndpoint = 'file:///etc/passwd' }; ErrorId = 'InvalidArgument,SourceEndpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceEndpoint'; Case = 'ftp://'; Base = 'Unsaved'; Arguments = @{ SourceEndpoint = 'ftp://files.example.com' }; ErrorId = 'InvalidArgument,SourceEndpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceEndpoint'; Case = 'empty'; Base = 'Unsaved'; Arguments = @{ SourceEndpoint = '' }; ErrorId = 'ParameterArgumentValidationErrorEmptyStringNotAllowed'; Message = "*parameter 'SourceEndpoint'*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceEndpoint'; Case = 'white space'; Base = 'Unsaved'; Arguments = @{ SourceEndpoint = '   ' }; ErrorId = 'InvalidArgument,SourceEndpoint'; Message = '*needs -SourceEndpoint, the URL of the S3 service*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceRegion'; Case = 'a line break'; Base = 'Unsaved'; Arguments = @{ SourceRegion = "us-east-1`n" }; ErrorId = 'InvalidArgument,SourceRegion'; Message = '*is not a region name: use letters, digits*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceRegion'; Case = 'a slash (breaks the signature scope)'; Base = 'Unsaved'; Arguments = @{ SourceRegion = 'us/east' }; ErrorId = 'InvalidArgument,SourceRegion'; Message = '*not a region name*e.g. us-east-1*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceRegion'; Case = 'too long'; Base = 'Unsaved'; Arguments = @{ SourceRegion = 'r' * 65 }; ErrorId = 'InvalidArgument,SourceRegion'; Message = '*at most 64*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceCredential'; Case = 'an empty secret'; Base = 'Unsaved'; Arguments = @{ SourceCredential = '<blank-secret>' }; ErrorId = 'InvalidArgument,SourceCredential'; Message = '*password (the secret access key) is empty*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SourceCredential'; Case = 'an access key id with spaces'; Base = 'Unsaved'; Arguments = @{ SourceCredential = '<spaced-key>' }; ErrorId = 'InvalidArgument,SourceCredential'; Message = '*access key id) has spaces*exactly as the provider shows it*' }
        # ---- New-MigrationJob: kinds, filters, ranges
        @{ Command = 'New-MigrationJob'; Parameter = 'Type'; Case = 'Update with nothing to change'; Arguments = @{ Type = 'Update' }; Remove = 'TargetConnector', 'TargetBucket'; ErrorId = 'InvalidArgument,Type'; Message = '*-Type Update needs something to change: give -SetStorageClass*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'TargetBucket'; Case = 'given to an Update'; Base = 'Update'; Arguments = @{ TargetBucket = '<target>' }; ErrorId = 'InvalidArgument,TargetBucket'; Message = '*changes the source''s objects in place: leave out -TargetBucket*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Overwrite'; Case = 'given to an Update'; Base = 'Update'; Arguments = @{ Overwrite = 'Always' }; ErrorId = 'InvalidArgument,Overwrite'; Message = '*leave -Overwrite out*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Include'; Case = 'an empty pattern'; Arguments = @{ Include = '' }; ErrorId = 'InvalidArgument,Include'; Message = "*-Include has an empty pattern: give wildcards*such as 'photos/*.jpg'*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'Include'; Case = 'a blank pattern among good ones'; Arguments = @{ Include = '*.jpg', '  ' }; ErrorId = 'InvalidArgument,Include'; Message = '*empty pattern*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Exclude'; Case = 'an empty pattern'; Arguments = @{ Exclude = '' }; ErrorId = 'InvalidArgument,Exclude'; Message = '*-Exclude has an empty pattern*leave -Exclude out*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'ExcludeContentType'; Case = 'an empty pattern'; Arguments = @{ ExcludeContentType = '' }; ErrorId = 'InvalidArgument,ExcludeContentType'; Message = "*-ExcludeContentType has an empty pattern: give content types*'video/*'*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'ModifiedAfter'; Case = 'later than -ModifiedBefore'; Arguments = @{ ModifiedAfter = [datetime]'2024-02-01'; ModifiedBefore = [datetime]'2024-01-01' }; ErrorId = 'InvalidArgument,ModifiedAfter'; Message = '*-ModifiedAfter must be earlier than -ModifiedBefore*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'ModifiedBefore'; Case = 'equal to -ModifiedAfter'; Arguments = @{ ModifiedAfter = [datetime]'2024-01-01'; ModifiedBefore = [datetime]'2024-01-01' }; ErrorId = 'InvalidArgument,ModifiedAfter'; Message = '*must be earlier than -ModifiedBefore*'; Names = 'ModifiedAfter' }
        @{ Command = 'New-MigrationJob'; Parameter = 'MinSize'; Case = 'negative'; Arguments = @{ MinSize = -1 }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'MinSize'*greater than or equal to 0*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'MaxSize'; Case = 'negative'; Arguments = @{ MaxSize = -1 }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'MaxSize'*greater than or equal to 0*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'MaxSize'; Case = 'smaller than -MinSize'; Arguments = @{ MinSize = 10MB; MaxSize = 1MB }; ErrorId = 'InvalidArgument,MinSize'; Message = '*-MinSize 10485760 is larger than -MaxSize 1048576*'; Names = 'MinSize' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Concurrency'; Case = 'zero'; Arguments = @{ Concurrency = 0 }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'Concurrency'*greater than or equal to 1*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'Concurrency'; Case = 'negative'; Arguments = @{ Concurrency = -8 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 1*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Concurrency'; Case = 'over 1024'; Arguments = @{ Concurrency = 1025 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*less than or equal to 1024*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'MaxBytesPerSecond'; Case = 'negative'; Arguments = @{ MaxBytesPerSecond = -1 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 0*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'MultipartThreshold'; Case = 'zero'; Arguments = @{ MultipartThreshold = 0 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 5242880*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'MultipartThreshold'; Case = 'under S3''s smallest part'; Arguments = @{ MultipartThreshold = 1MB }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 5242880*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'PartSize'; Case = 'negative'; Arguments = @{ PartSize = -5MB }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 5242880*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'PartSize'; Case = 'over 2 GiB'; Arguments = @{ PartSize = 3GB }; ErrorId = 'ParameterArgumentValidationError'; Message = '*less than or equal to 2147483647*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'NoProgressTimeout'; Case = 'zero'; Arguments = @{ NoProgressTimeout = 0 }; ErrorId = 'InvalidArgument,NoProgressTimeout'; Message = '*out of range: use 1 second to 24 hours*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'NoProgressTimeout'; Case = 'negative'; Arguments = @{ NoProgressTimeout = -5 }; ErrorId = 'InvalidArgument,NoProgressTimeout'; Message = '*use 1 second to 24 hours*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'NoProgressTimeout'; Case = 'over a day'; Arguments = @{ NoProgressTimeout = 100000 }; ErrorId = 'InvalidArgument,NoProgressTimeout'; Message = '*use 1 second to 24 hours*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'FixedConcurrency'; Case = 'without -Concurrency'; Arguments = @{ FixedConcurrency = $true }; ErrorId = 'InvalidArgument,FixedConcurrency'; Message = '*give -Concurrency too*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'StorageClass'; Case = 'a number'; Arguments = @{ StorageClass = 5 }; ErrorId = 'InvalidArgument,StorageClass'; Message = '*takes a class name (STANDARD_IA) or a hashtable*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'StorageClass'; Case = 'lower case'; Arguments = @{ StorageClass = 'standard_ia' }; ErrorId = 'InvalidArgument,StorageClass'; Message = '*give the target''s class names in upper case*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'StorageClass'; Case = 'empty'; Arguments = @{ StorageClass = '' }; ErrorId = 'InvalidArgument,StorageClass'; Message = '*in upper case*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'StorageClass'; Case = 'a map to an empty class'; Arguments = @{ StorageClass = @{ GLACIER = '' } }; ErrorId = 'InvalidArgument,StorageClass'; Message = "*maps 'GLACIER' to ''*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'StorageClass'; Case = 'given to an Update'; Base = 'Update'; Arguments = @{ StorageClass = 'STANDARD_IA' }; ErrorId = 'InvalidArgument,StorageClass'; Message = '*use -SetStorageClass*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Detached'; Case = 'with -AsJob'; Arguments = @{ Detached = $true; AsJob = $true }; ErrorId = 'InvalidArgument,Detached'; Message = '*use one of them*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'AsJob'; Case = 'with -Detached'; Arguments = @{ AsJob = $true; Detached = $true }; ErrorId = 'InvalidArgument,Detached'; Message = '*use one of them*'; Names = 'Detached' }
        @{ Command = 'New-MigrationJob'; Parameter = 'Deep'; Case = 'on a Migrate job'; Arguments = @{ Deep = $true }; ErrorId = 'InvalidArgument,Deep'; Message = '*Verify jobs only: add -Type Verify, or leave -Deep out*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'CompareMetadata'; Case = 'on a Migrate job'; Arguments = @{ CompareMetadata = $true }; ErrorId = 'InvalidArgument,CompareMetadata'; Message = '*Verify jobs only*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SetStorageClass'; Case = 'on a Migrate job'; Arguments = @{ SetStorageClass = 'STANDARD_IA' }; ErrorId = 'InvalidArgument,SetStorageClass'; Message = '*applies to Update jobs only: add -Type Update*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SetStorageClass'; Case = 'not a class name'; Base = 'Update'; Arguments = @{ SetStorageClass = 'cold storage' }; ErrorId = 'InvalidArgument,SetStorageClass'; Message = '*give it in upper case, e.g. STANDARD_IA*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SetStorageClass'; Case = 'empty'; Base = 'Update'; Arguments = @{ SetStorageClass = '' }; ErrorId = 'InvalidArgument,SetStorageClass'; Message = '*upper case*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SetTags'; Case = 'eleven tags'; Base = 'Update'; Remove = 'AddTags'; Arguments = @{ SetTags = [ordered]@{ t1 = 1; t2 = 2; t3 = 3; t4 = 4; t5 = 5; t6 = 6; t7 = 7; t8 = 8; t9 = 9; t10 = 10; t11 = 11 } }; ErrorId = 'InvalidArgument,SetTags'; Message = '*S3 keeps at most 10 per object*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SetTags'; Case = 'with -AddTags'; Base = 'Update'; Arguments = @{ SetTags = @{ a = 'b' } }; ErrorId = 'InvalidArgument,SetTags'; Message = '*use -SetTags alone, or -AddTags/-RemoveTags*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'AddTags'; Case = 'an empty tag name'; Base = 'Update'; Arguments = @{ AddTags = @{ '' = 'x' } }; ErrorId = 'InvalidArgument,AddTags'; Message = '*must be 1 to 128 characters*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'AddTags'; Case = 'a tag without a value'; Base = 'Update'; Arguments = @{ AddTags = @{ owner = $null } }; ErrorId = 'InvalidArgument,AddTags'; Message = "*gives the tag 'owner' no value: give a value*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'AddTags'; Case = 'a value longer than 256'; Base = 'Update'; Arguments = @{ AddTags = @{ owner = 'v' * 257 } }; ErrorId = 'InvalidArgument,AddTags'; Message = '*longer than 256 characters*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'AddTags'; Case = 'a line break in a value'; Base = 'Update'; Arguments = @{ AddTags = @{ owner = "a`nb" } }; ErrorId = 'InvalidArgument,AddTags'; Message = '*control characters: tags are one line*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'RemoveTags'; Case = 'an empty name'; Base = 'Update'; Arguments = @{ RemoveTags = '' }; ErrorId = 'InvalidArgument,RemoveTags'; Message = '*give the names of the tags to remove*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'RemoveTags'; Case = 'a tag -AddTags sets'; Base = 'Update'; Arguments = @{ RemoveTags = 'owner' }; ErrorId = 'InvalidArgument,RemoveTags'; Message = '*give it to one of them*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SetMetadata'; Case = 'a name with a space'; Base = 'Update'; Arguments = @{ SetMetadata = @{ 'build id' = 'x' } }; ErrorId = 'InvalidArgument,SetMetadata'; Message = '*is not a header name: use letters, digits and*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SetMetadata'; Case = 'an empty content type'; Base = 'Update'; Arguments = @{ SetMetadata = @{ 'Content-Type' = '' } }; ErrorId = 'InvalidArgument,SetMetadata'; Message = "*give a value such as 'text/html'*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'SetMetadata'; Case = 'a line break in a value'; Base = 'Update'; Arguments = @{ SetMetadata = @{ owner = "a`r`nX-Injected: 1" } }; ErrorId = 'InvalidArgument,SetMetadata'; Message = '*metadata values are one line*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'SetMetadata'; Case = 'a header that cannot be set'; Base = 'Update'; Arguments = @{ SetMetadata = @{ 'Content-Length' = '5' } }; ErrorId = 'InvalidArgument,SetMetadata'; Message = "*cannot set 'Content-Length': give Content-Type*" }
        @{ Command = 'New-MigrationJob'; Parameter = 'FromVerify'; Case = 'an id no job has'; Base = 'None'; Arguments = @{ FromVerify = '<random-guid>' }; ErrorId = 'InvalidArgument,FromVerify'; Message = '*no migration job has that id. See Get-MigrationJob*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'FromVerify'; Case = 'a Migrate job'; Base = 'None'; Arguments = @{ FromVerify = '<done>' }; ErrorId = 'InvalidArgument,FromVerify'; Message = '*a Migrate job: give the id of a Verify job*' }
        @{ Command = 'New-MigrationJob'; Parameter = 'FromVerify'; Case = 'with -Type'; Base = 'None'; Arguments = @{ FromVerify = '<done>'; Type = 'Verify' }; ErrorId = 'InvalidArgument,Type'; Message = '*-Type cannot be given with -FromVerify*'; Names = 'Type' }
        @{ Command = 'New-MigrationJob'; Parameter = 'FromVerify'; Case = 'an empty id'; Base = 'None'; Arguments = @{ FromVerify = '' }; ErrorId = 'ParameterArgumentTransformationError'; Message = "*'' is not a migration job id: give the GUID*" }

        # ---- New-CloudConnector
        @{ Command = 'New-CloudConnector'; Parameter = 'Name'; Case = 'empty'; Arguments = @{ Name = '' }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'Name'*null or empty*" }
        @{ Command = 'New-CloudConnector'; Parameter = 'Name'; Case = 'white space'; Arguments = @{ Name = '   ' }; ErrorId = 'InvalidArgument,Name'; Message = "*-Name is empty: give the connector a name*" }
        @{ Command = 'New-CloudConnector'; Parameter = 'Name'; Case = 'too long (129)'; Arguments = @{ Name = 'c' * 129 }; ErrorId = 'InvalidArgument,Name'; Message = '*use at most 128*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Name'; Case = 'a line break'; Arguments = @{ Name = "prod`nbackup" }; ErrorId = 'InvalidArgument,Name'; Message = '*control characters*use printable characters*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Name'; Case = 'an escape sequence'; Arguments = @{ Name = "prod$([char]27)[2J" }; ErrorId = 'InvalidArgument,Name'; Message = '*control characters*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Name'; Case = 'a name in use (other case)'; Arguments = @{ Name = 'SRC' }; ErrorId = 'NameAlreadyExists'; Message = "*already exists: choose another -Name*"; Names = '' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Endpoint'; Case = 'no scheme'; Arguments = @{ Endpoint = 'localhost:9000' }; ErrorId = 'InvalidArgument,Endpoint'; Message = "*'localhost:9000' is not a valid -Endpoint: give an http:// or https:// URL*" }
        @{ Command = 'New-CloudConnector'; Parameter = 'Endpoint'; Case = 'a host name alone'; Arguments = @{ Endpoint = 's3.example.com' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Endpoint'; Case = 'file://'; Arguments = @{ Endpoint = 'file:///var/lib/data' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Endpoint'; Case = 'a Windows path'; Arguments = @{ Endpoint = 'C:\data' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Endpoint'; Case = 'ftp://'; Arguments = @{ Endpoint = 'ftp://files.example.com' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Endpoint'; Case = 'a scheme and no host'; Arguments = @{ Endpoint = 'https://' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Endpoint'; Case = 'empty (S3 has no default)'; Arguments = @{ Endpoint = '' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*needs -Endpoint, the URL of the S3 service*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Endpoint'; Case = 'white space'; Arguments = @{ Endpoint = '   ' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*needs -Endpoint*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Endpoint'; Case = 'a line break in the host'; Arguments = @{ Endpoint = "http://s3`n.example.com" }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Endpoint'; Case = 'a host name longer than DNS allows'; Arguments = @{ Endpoint = 'http://' + ('h' * 3000) }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Region'; Case = 'a line break'; Arguments = @{ Region = "eu-west-1`n" }; ErrorId = 'InvalidArgument,Region'; Message = '*is not a region name: use letters, digits*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Region'; Case = 'white space'; Arguments = @{ Region = '  ' }; ErrorId = 'InvalidArgument,Region'; Message = '*not a region name*leave it out for the provider''s default*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Region'; Case = 'spaces inside'; Arguments = @{ Region = 'eu west 1' }; ErrorId = 'InvalidArgument,Region'; Message = '*not a region name*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Region'; Case = 'too long'; Arguments = @{ Region = 'r' * 65 }; ErrorId = 'InvalidArgument,Region'; Message = '*at most 64*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'AccountId'; Case = 'R2 without one'; Arguments = @{ Provider = 'R2'; AccountId = '' }; Remove = 'Endpoint'; ErrorId = 'InvalidArgument,AccountId'; Message = '*needs -AccountId (the Cloudflare account id)*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'AccountId'; Case = 'a slash (would change the host)'; Arguments = @{ Provider = 'R2'; AccountId = 'abc/evil.example.com#' }; Remove = 'Endpoint'; ErrorId = 'InvalidArgument,AccountId'; Message = '*is not an account id: use the letters and digits*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'AccountId'; Case = 'too long'; Arguments = @{ Provider = 'R2'; AccountId = 'a' * 64 }; Remove = 'Endpoint'; ErrorId = 'InvalidArgument,AccountId'; Message = '*not an account id*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Jurisdiction'; Case = 'unknown'; Arguments = @{ Provider = 'R2'; AccountId = 'abc123'; Jurisdiction = 'mars' }; Remove = 'Endpoint'; ErrorId = 'ParameterArgumentValidationError'; Message = '*does not belong to the set "default,eu,fedramp"*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Credential'; Case = 'an empty secret'; Arguments = @{ Credential = '<blank-secret>' }; ErrorId = 'InvalidArgument,Credential'; Message = '*password (the secret access key) is empty*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Credential'; Case = 'an access key id with spaces'; Arguments = @{ Credential = '<spaced-key>' }; ErrorId = 'InvalidArgument,Credential'; Message = '*has spaces or control characters*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Credential'; Case = 'none at all'; Remove = 'Credential'; ErrorId = 'InvalidArgument,Credential'; Message = '*No credential source was given: pass -Credential*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'ProfileName'; Case = 'empty'; Remove = 'Credential'; Arguments = @{ ProfileName = '' }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'ProfileName'*null or empty*" }
        @{ Command = 'New-CloudConnector'; Parameter = 'ProfileName'; Case = 'white space'; Remove = 'Credential'; Arguments = @{ ProfileName = '  ' }; ErrorId = 'InvalidArgument,ProfileName'; Message = '*-ProfileName needs the name of an AWS profile*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'ProfileName'; Case = 'with -Credential'; Arguments = @{ ProfileName = 'default' }; ErrorId = 'AmbiguousParameterSet'; Message = '*Parameter set cannot be resolved*'; Names = '' }
        @{ Command = 'New-CloudConnector'; Parameter = 'ProfileLocation'; Case = 'empty'; Remove = 'Credential'; Arguments = @{ ProfileName = 'default'; ProfileLocation = '' }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'ProfileLocation'*" }
        @{ Command = 'New-CloudConnector'; Parameter = 'ProfileLocation'; Case = 'a file that does not exist'; Remove = 'Credential'; Arguments = @{ ProfileName = 'default'; ProfileLocation = '<missing-file>' }; ErrorId = 'InvalidArgument,ProfileLocation'; Message = '*There is no AWS shared credentials file at*correct -ProfileLocation*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'UseEnvironmentCredentials'; Case = 'with -Credential'; Arguments = @{ UseEnvironmentCredentials = $true }; ErrorId = 'AmbiguousParameterSet'; Message = '*Parameter set cannot be resolved*'; Names = '' }
        @{ Command = 'New-CloudConnector'; Parameter = 'UseInstanceRole'; Case = 'with -Credential'; Arguments = @{ UseInstanceRole = $true }; ErrorId = 'AmbiguousParameterSet'; Message = '*Parameter set cannot be resolved*'; Names = '' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Proxy'; Case = 'file://'; Arguments = @{ Proxy = 'file:///tmp/proxy' }; ErrorId = 'InvalidArgument,Proxy'; Message = '*is not a valid -Proxy: give an http:// or https:// URL*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Proxy'; Case = 'no scheme'; Arguments = @{ Proxy = 'proxy.example.com:3128' }; ErrorId = 'InvalidArgument,Proxy'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'New-CloudConnector'; Parameter = 'Proxy'; Case = 'white space'; Arguments = @{ Proxy = '   ' }; ErrorId = 'InvalidArgument,Proxy'; Message = "*-Proxy is only white space: give the proxy's URL*" }

        # ---- Set-CloudConnector (a change is checked like a new connector, and nothing is half-written)
        @{ Command = 'Set-CloudConnector'; Parameter = 'Name'; Case = 'an unknown connector'; Arguments = @{ Name = 'nobody' }; ErrorId = 'ConnectorNotFound,Name'; Message = "*No cloud connector is named 'nobody'. See Get-CloudConnector*" }
        @{ Command = 'Set-CloudConnector'; Parameter = 'Name'; Case = 'empty'; Arguments = @{ Name = '' }; ErrorId = 'ParameterArgumentValidationErrorEmptyStringNotAllowed'; Message = "*parameter 'Name'*" }
        @{ Command = 'Set-CloudConnector'; Parameter = 'NewName'; Case = 'empty'; Arguments = @{ NewName = '' }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'NewName'*" }
        @{ Command = 'Set-CloudConnector'; Parameter = 'NewName'; Case = 'white space'; Arguments = @{ NewName = '  ' }; ErrorId = 'InvalidArgument,NewName'; Message = '*-NewName is empty: give the connector a name*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'NewName'; Case = 'a tab'; Arguments = @{ NewName = "a`tb" }; ErrorId = 'InvalidArgument,NewName'; Message = '*-NewName contains control characters*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'NewName'; Case = 'too long (129)'; Arguments = @{ NewName = 'c' * 129 }; ErrorId = 'InvalidArgument,NewName'; Message = '*use at most 128*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'NewName'; Case = 'a name in use'; Arguments = @{ NewName = 'dst' }; ErrorId = 'NameAlreadyExists'; Message = '*already exists: choose another -NewName*'; Names = '' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'Endpoint'; Case = 'file://'; Arguments = @{ Endpoint = 'file:///x' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'Endpoint'; Case = 'no scheme'; Arguments = @{ Endpoint = 'host:80' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'Endpoint'; Case = 'empty (S3 has no default)'; Arguments = @{ Endpoint = '' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*needs -Endpoint*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'Region'; Case = 'a line break'; Arguments = @{ Region = "a`nb" }; ErrorId = 'InvalidArgument,Region'; Message = '*not a region name*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'AccountId'; Case = 'a slash'; Arguments = @{ AccountId = 'a/b' }; ErrorId = 'InvalidArgument,AccountId'; Message = '*not an account id*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'Jurisdiction'; Case = 'unknown'; Arguments = @{ Jurisdiction = 'mars' }; ErrorId = 'ParameterArgumentValidationError'; Message = '*does not belong to the set*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'Credential'; Case = 'an empty secret'; Arguments = @{ Credential = '<blank-secret>' }; ErrorId = 'InvalidArgument,Credential'; Message = '*is empty*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'ProfileName'; Case = 'white space'; Arguments = @{ ProfileName = '  ' }; ErrorId = 'InvalidArgument,ProfileName'; Message = '*needs the name of an AWS profile*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'ProfileLocation'; Case = 'a file that does not exist'; Arguments = @{ ProfileName = 'default'; ProfileLocation = '<missing-file>' }; ErrorId = 'InvalidArgument,ProfileLocation'; Message = '*correct -ProfileLocation*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'UseEnvironmentCredentials'; Case = 'with -UseInstanceRole'; Arguments = @{ UseEnvironmentCredentials = $true; UseInstanceRole = $true }; ErrorId = 'AmbiguousParameterSet'; Message = '*Parameter set cannot be resolved*'; Names = '' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'Proxy'; Case = 'file://'; Arguments = @{ Proxy = 'file:///x' }; ErrorId = 'InvalidArgument,Proxy'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'Set-CloudConnector'; Parameter = 'Proxy'; Case = 'white space'; Arguments = @{ Proxy = ' ' }; ErrorId = 'InvalidArgument,Proxy'; Message = '*only white space*' }

        # ---- Remove-CloudConnector, Get-CloudConnector, Test-CloudConnector
        @{ Command = 'Remove-CloudConnector'; Parameter = 'Name'; Case = 'an unknown connector'; Arguments = @{ Name = 'nobody' }; ErrorId = 'ConnectorNotFound,Name'; Message = "*No cloud connector is named 'nobody'*" }
        @{ Command = 'Remove-CloudConnector'; Parameter = 'Name'; Case = 'empty'; Arguments = @{ Name = '' }; ErrorId = 'ParameterArgumentValidationErrorEmptyStringNotAllowed'; Message = "*parameter 'Name'*" }
        @{ Command = 'Remove-CloudConnector'; Parameter = 'Name'; Case = 'one a job that can resume still uses'; Arguments = @{ Name = 'busy' }; ErrorId = 'InvalidJobState'; Message = "*is used by 1 unfinished job(s)*finish or stop them, or use -Force*"; Names = '' }
        @{ Command = 'Get-CloudConnector'; Parameter = 'Name'; Case = 'empty'; Arguments = @{ Name = '' }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'Name'. An empty pattern matches nothing: give a name or wildcards*" }
        @{ Command = 'Get-CloudConnector'; Parameter = 'Name'; Case = 'an unknown connector'; Arguments = @{ Name = 'nobody' }; ErrorId = 'ConnectorNotFound,Name'; Message = "*No cloud connector is named 'nobody'. See Get-CloudConnector*" }
        @{ Command = 'Get-CloudConnector'; Parameter = 'Id'; Case = 'negative'; Arguments = @{ Id = -1 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 1*' }
        @{ Command = 'Get-CloudConnector'; Parameter = 'Id'; Case = 'an id no connector has'; Arguments = @{ Id = 987654 }; ErrorId = 'ConnectorNotFound,Id'; Message = '*No cloud connector has the id 987654. See Get-CloudConnector*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'Name'; Case = 'an unknown connector'; Arguments = @{ Name = 'nobody' }; ErrorId = 'ConnectorNotFound,Name'; Message = "*No cloud connector is named 'nobody'*" }
        @{ Command = 'Test-CloudConnector'; Parameter = 'Name'; Case = 'empty'; Arguments = @{ Name = '' }; ErrorId = 'ParameterArgumentValidationErrorEmptyStringNotAllowed'; Message = "*parameter 'Name'*" }
        @{ Command = 'Test-CloudConnector'; Parameter = 'Bucket'; Case = 'empty'; Arguments = @{ Bucket = '' }; ErrorId = 'InvalidArgument,Bucket'; Message = '*-Bucket is required: name the bucket to check*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'Bucket'; Case = 'not a bucket name'; Arguments = @{ Bucket = 'Bad_Bucket!' }; ErrorId = 'InvalidArgument,Bucket'; Message = '*not a valid S3 bucket name*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'TimeoutSec'; Case = 'zero'; Arguments = @{ TimeoutSec = 0 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 1*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'TimeoutSec'; Case = 'over an hour'; Arguments = @{ TimeoutSec = 3601 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*less than or equal to 3600*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'Endpoint'; Case = 'file://'; Base = 'Unsaved'; Arguments = @{ Endpoint = 'file:///etc/passwd' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'Endpoint'; Case = 'no scheme'; Base = 'Unsaved'; Arguments = @{ Endpoint = 'minio:9000' }; ErrorId = 'InvalidArgument,Endpoint'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'Region'; Case = 'a line break'; Base = 'Unsaved'; Arguments = @{ Region = "x`ny" }; ErrorId = 'InvalidArgument,Region'; Message = '*not a region name*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'AccountId'; Case = 'a slash'; Base = 'Unsaved'; Arguments = @{ Provider = 'R2'; AccountId = 'a/b' }; Remove = 'Endpoint'; ErrorId = 'InvalidArgument,AccountId'; Message = '*not an account id*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'Jurisdiction'; Case = 'unknown'; Base = 'Unsaved'; Arguments = @{ Jurisdiction = 'moon' }; ErrorId = 'ParameterArgumentValidationError'; Message = '*does not belong to the set*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'Credential'; Case = 'an empty secret'; Base = 'Unsaved'; Arguments = @{ Credential = '<blank-secret>' }; ErrorId = 'InvalidArgument,Credential'; Message = '*is empty*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'ProfileName'; Case = 'white space'; Base = 'Unsaved'; Remove = 'Credential'; Arguments = @{ ProfileName = '  ' }; ErrorId = 'InvalidArgument,ProfileName'; Message = '*needs the name of an AWS profile*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'ProfileLocation'; Case = 'a file that does not exist'; Base = 'Unsaved'; Remove = 'Credential'; Arguments = @{ ProfileName = 'default'; ProfileLocation = '<missing-file>' }; ErrorId = 'InvalidArgument,ProfileLocation'; Message = '*correct -ProfileLocation*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'Proxy'; Case = 'file://'; Base = 'Unsaved'; Arguments = @{ Proxy = 'file:///x' }; ErrorId = 'InvalidArgument,Proxy'; Message = '*give an http:// or https:// URL*' }
        @{ Command = 'Test-CloudConnector'; Parameter = 'Provider'; Case = 'with a saved connector''s -Name'; Arguments = @{ Provider = 'S3' }; ErrorId = 'AmbiguousParameterSet'; Message = '*Parameter set cannot be resolved*'; Names = '' }

        # ---- Jobs by id
        @{ Command = 'Get-MigrationJob'; Parameter = 'Id'; Case = 'an id no job has'; Arguments = @{ Id = '<random-guid>' }; ErrorId = 'NotFound'; Message = '*No migration job has the id*See Get-MigrationJob*'; Names = '' }
        @{ Command = 'Get-MigrationJob'; Parameter = 'Id'; Case = 'empty'; Arguments = @{ Id = '' }; ErrorId = 'ParameterArgumentTransformationError'; Message = "*'' is not a migration job id: give the GUID Get-MigrationJob shows*" }
        @{ Command = 'Get-MigrationJob'; Parameter = 'Id'; Case = 'a job name given as the id'; Arguments = @{ Id = 'nightly-copy' }; ErrorId = 'ParameterArgumentTransformationError'; Message = "*'nightly-copy' is not a migration job id*" }
        @{ Command = 'Get-MigrationJob'; Parameter = 'Id'; Case = 'a GUID cut short'; Arguments = @{ Id = '3f2b8a61-0c4e-4d4f-9a51' }; ErrorId = 'ParameterArgumentTransformationError'; Message = '*is not a migration job id*' }
        @{ Command = 'Get-MigrationJob'; Parameter = 'Name'; Case = 'empty'; Arguments = @{ Name = '' }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'Name'. An empty pattern matches nothing: give a name or wildcards*" }
        @{ Command = 'Get-MigrationJob'; Parameter = 'First'; Case = 'negative'; Arguments = @{ First = -1 }; ErrorId = 'CannotConvertArgumentNoMessage'; Message = "*parameter 'First'*UInt64*" }
        @{ Command = 'Get-MigrationJobProgress'; Parameter = 'Id'; Case = 'an id no job has'; Arguments = @{ Id = '<random-guid>' }; ErrorId = 'NotFound'; Message = '*No migration job has the id*'; Names = '' }
        @{ Command = 'Get-MigrationJobProgress'; Parameter = 'Id'; Case = 'null (a variable a failed command left empty)'; Arguments = @{ Id = $null }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'Id'*null*" }
        @{ Command = 'Get-MigrationJobLog'; Parameter = 'Key'; Case = 'an empty pattern'; Arguments = @{ Key = '' }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'Key'. An empty pattern matches nothing: give a name or wildcards*" }
        @{ Command = 'Get-MigrationJobLog'; Parameter = 'Id'; Case = 'an id no job has'; Arguments = @{ Id = '<random-guid>' }; ErrorId = 'NotFound'; Message = '*No migration job has the id*'; Names = '' }
        @{ Command = 'Get-MigrationJobReport'; Parameter = 'Depth'; Case = 'negative'; Arguments = @{ Depth = -1 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 0*' }
        @{ Command = 'Get-MigrationJobReport'; Parameter = 'Depth'; Case = 'over 64'; Arguments = @{ Depth = 65 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*less than or equal to 64*' }
        @{ Command = 'Suspend-MigrationJob'; Parameter = 'Id'; Case = 'a completed job'; ErrorId = 'InvalidJobState'; Message = '*is Completed; only a Running or Pending job can be suspended*'; Names = '' }
        @{ Command = 'Suspend-MigrationJob'; Parameter = 'Id'; Case = 'an id no job has'; Arguments = @{ Id = '<random-guid>' }; ErrorId = 'NotFound'; Message = '*No migration job has the id*'; Names = '' }
        @{ Command = 'Resume-MigrationJob'; Parameter = 'Id'; Case = 'a completed job'; ErrorId = 'InvalidJobState'; Message = '*is Completed and cannot be resumed: create a new job*'; Names = '' }
        @{ Command = 'Resume-MigrationJob'; Parameter = 'RetryFailed'; Case = 'a job with nothing failed'; Arguments = @{ RetryFailed = $true }; ErrorId = 'InvalidJobState'; Message = '*Completed*'; Names = '' }
        @{ Command = 'Resume-MigrationJob'; Parameter = 'Detached'; Case = 'with -AsJob'; Arguments = @{ Detached = $true; AsJob = $true }; ErrorId = 'InvalidArgument,Detached'; Message = '*use one of them*' }
        @{ Command = 'Stop-MigrationJob'; Parameter = 'All'; Case = 'with -Id'; Arguments = @{ All = $true }; ErrorId = 'AmbiguousParameterSet'; Message = '*Parameter set cannot be resolved*'; Names = '' }
        @{ Command = 'Stop-MigrationJob'; Parameter = 'Id'; Case = 'an id no job has'; Arguments = @{ Id = '<random-guid>' }; ErrorId = 'NotFound'; Message = '*No migration job has the id*'; Names = '' }
        @{ Command = 'Wait-MigrationJob'; Parameter = 'Timeout'; Case = 'negative'; Arguments = @{ Timeout = -1 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 0*' }
        @{ Command = 'Wait-MigrationJob'; Parameter = 'Id'; Case = 'an id no job has'; Arguments = @{ Id = '<random-guid>' }; ErrorId = 'NotFound'; Message = '*No migration job has the id*'; Names = '' }
        @{ Command = 'Remove-MigrationJob'; Parameter = 'Id'; Case = 'an id no job has'; ErrorId = 'NotFound'; Message = '*No migration job has the id*'; Names = '' }
        @{ Command = 'Remove-MigrationJob'; Parameter = 'Id'; Case = 'empty'; Arguments = @{ Id = '' }; ErrorId = 'ParameterArgumentTransformationError'; Message = '*is not a migration job id*' }
        @{ Command = 'Export-MigrationJobReport'; Parameter = 'Path'; Case = 'empty'; Arguments = @{ Path = '' }; ErrorId = 'ParameterArgumentValidationErrorEmptyStringNotAllowed'; Message = "*parameter 'Path'*" }
        @{ Command = 'Export-MigrationJobReport'; Parameter = 'Path'; Case = 'white space'; Arguments = @{ Path = '   ' }; ErrorId = 'InvalidArgument,Path'; Message = '*must end in .csv, .jsonl*or .json*' }
        @{ Command = 'Export-MigrationJobReport'; Parameter = 'Path'; Case = 'an unknown extension'; Arguments = @{ Path = '<report-dir>/report.txt' }; ErrorId = 'InvalidArgument,Path'; Message = '*the extension chooses the report format*' }
        @{ Command = 'Export-MigrationJobReport'; Parameter = 'Path'; Case = 'no extension'; Arguments = @{ Path = '<report-dir>/report' }; ErrorId = 'InvalidArgument,Path'; Message = '*must end in .csv*' }
        @{ Command = 'Export-MigrationJobReport'; Parameter = 'Path'; Case = 'a file that exists, without -Force'; Arguments = @{ Path = '<existing-report>' }; ErrorId = 'ReportFileExists,Path'; Message = '*already exists. Pass -Force to replace it, or choose another -Path*' }
        @{ Command = 'Export-MigrationJobReport'; Parameter = 'Id'; Case = 'an id no job has'; Arguments = @{ Id = '<random-guid>' }; ErrorId = 'NotFound'; Message = '*No migration job has the id*'; Names = '' }

        # ---- Workers
        @{ Command = 'Start-MigrationWorker'; Parameter = 'Concurrency'; Case = 'zero'; Arguments = @{ Concurrency = 0 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 1*' }
        @{ Command = 'Start-MigrationWorker'; Parameter = 'Concurrency'; Case = 'over 1024'; Arguments = @{ Concurrency = 1025 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*less than or equal to 1024*' }
        @{ Command = 'Start-MigrationWorker'; Parameter = 'MaxJobs'; Case = 'zero'; Arguments = @{ MaxJobs = 0 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 1*' }
        @{ Command = 'Start-MigrationWorker'; Parameter = 'MaxJobs'; Case = 'negative'; Arguments = @{ MaxJobs = -3 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 1*' }
        @{ Command = 'Start-MigrationWorker'; Parameter = 'IdleExit'; Case = 'negative'; Arguments = @{ IdleExit = -5 }; ErrorId = 'InvalidArgument,IdleExit'; Message = '*-IdleExit cannot be negative: give seconds or a TimeSpan*' }
        @{ Command = 'Get-MigrationWorker'; Parameter = 'Id'; Case = 'an id no worker has'; Arguments = @{ Id = '<random-guid>' }; ErrorId = 'NotFound'; Message = '*No running migration worker has the id*See Get-MigrationWorker*'; Names = '' }
        @{ Command = 'Get-MigrationWorker'; Parameter = 'Id'; Case = 'null (a variable a failed command left empty)'; Arguments = @{ Id = $null }; ErrorId = 'ParameterArgumentValidationError'; Message = "*parameter 'Id'*null*" }
        @{ Command = 'Stop-MigrationWorker'; Parameter = 'Id'; Case = 'an id no worker has'; ErrorId = 'NotFound'; Message = '*No running migration worker has the id*'; Names = '' }
        @{ Command = 'Stop-MigrationWorker'; Parameter = 'ProcessId'; Case = 'zero'; Remove = 'Id'; Arguments = @{ ProcessId = 0 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 1*' }
        @{ Command = 'Stop-MigrationWorker'; Parameter = 'ProcessId'; Case = 'a process that is no worker'; Remove = 'Id'; Arguments = @{ ProcessId = 1 }; ErrorId = 'NotFound'; Message = '*No migration worker runs as process 1*See Get-MigrationWorker*'; Names = '' }
        @{ Command = 'Stop-MigrationWorker'; Parameter = 'Timeout'; Case = 'negative'; Arguments = @{ Timeout = -1 }; ErrorId = 'ParameterArgumentValidationError'; Message = '*greater than or equal to 0*' }
        @{ Command = 'Stop-MigrationWorker'; Parameter = 'All'; Case = 'with -Id'; Arguments = @{ All = $true }; ErrorId = 'AmbiguousParameterSet'; Message = '*Parameter set cannot be resolved*'; Names = '' }
    )

    # Generated cases: a value of the wrong type for every parameter whose type is not text, from the cmdlets' own
    # metadata, so a parameter added later is covered too.
    $generated = foreach ($command in $Commands) {
        foreach ($parameter in $command.Parameters.Values | Where-Object Name -NotIn $common) {
            $type = $parameter.ParameterType
            if ($type.IsArray) { $type = $type.GetElementType() }
            if ([Nullable]::GetUnderlyingType($type)) { $type = [Nullable]::GetUnderlyingType($type) }
            $name = $parameter.Name
            $case = switch ($type) {
                ([System.Management.Automation.SwitchParameter]) { @{ Value = 'maybe'; ErrorId = 'CannotConvertArgument'; Message = "*type 'System.Management.Automation.SwitchParameter' required by parameter '$name'*" } }
                ([guid]) { @{ Value = 'not-a-guid'; ErrorId = 'ParameterArgumentTransformationError'; Message = "*'not-a-guid' is not a migration * id: give the GUID * shows in its Id column*" } }
                ([timespan]) { @{ Value = 'soon'; ErrorId = 'ParameterArgumentTransformationError'; Message = "*'soon' is not a duration: give seconds (300) or a TimeSpan*" } }
                ([datetime]) { @{ Value = 'the day after tomorrow'; ErrorId = 'CannotConvertArgumentNoMessage'; Message = "*parameter '$name'*to type `"System.DateTime`"*" } }
                ([hashtable]) { @{ Value = 'owner=me'; ErrorId = 'CannotConvertArgumentNoMessage'; Message = "*parameter '$name'*to type `"System.Collections.Hashtable`"*" } }
                ([pscredential]) { @{ Value = 42; ErrorId = 'ParameterArgumentTransformationError'; Message = '*is not a credential: give a PSCredential whose user name is the access key id*' } }
                { $_.IsEnum } { @{ Value = 'Bogus'; ErrorId = 'CannotConvertArgumentNoMessage'; Message = "*parameter '$name'*Specify one of the following enumerator names*" } }
                { $_ -in [int], [long], [ulong] } { @{ Value = 'ten'; ErrorId = 'CannotConvertArgumentNoMessage'; Message = "*parameter '$name'*Cannot convert value `"ten`" to type `"System.$($_.Name)`"*" } }
            }
            if ($case) {
                @{ Command = $command.Name; Parameter = $name; Case = "wrong type ($($case.Value))"; Arguments = @{ $name = $case.Value }; ErrorId = $case.ErrorId; Message = $case.Message }
            }
        }
        # Every cmdlet takes -StateStore: a mistyped one is refused, and no SQLite file is made up from it.
        @{ Command = $command.Name; Parameter = 'StateStore'; Case = 'neither a connection string nor a path'; Arguments = @{ StateStore = 'garbage' }; ErrorId = 'InvalidArgument,StateStore'; Message = '*-StateStore (or OBJECTMIGRATION_STATE) is neither a connection string*' }
        @{ Command = $command.Name; Parameter = 'StateStore'; Case = 'an unknown keyword, with a password'; Arguments = @{ StateStore = 'Host=127.0.0.1;Pasword=hunter2' }; ErrorId = 'InvalidArgument,StateStore'; Message = '*keyword that PostgreSQL connection strings do not know*' }
    }
    $script:Cases = @($hand) + @($generated)
    foreach ($case in $Cases) {
        if (-not $case.ContainsKey('Base')) { $case.Base = 'Default' }
        if (-not $case.ContainsKey('Arguments')) { $case.Arguments = @{} }
        if (-not $case.ContainsKey('Remove')) { $case.Remove = @() }
        if (-not $case.ContainsKey('Names')) { $case.Names = $case.Parameter }
    }
    # Each exported parameter and the cases that give it a bad value: the coverage test below checks none is left out.
    $script:Coverage = foreach ($command in $Commands) {
        foreach ($parameter in $command.Parameters.Values | Where-Object Name -NotIn $common) {
            @{ Command = $command.Name; Parameter = $parameter.Name; Count = @($Cases | Where-Object { $_.Command -eq $command.Name -and $_.Parameter -eq $parameter.Name }).Count }
        }
    }
}

BeforeAll {
    . (Join-Path $PSScriptRoot 'TestSetup.ps1')
    $clients = Initialize-TestSession
    $script:Source = New-TestBucket $clients.Source
    $script:Target = New-TestBucket $clients.Target
    for ($i = 0; $i -lt 3; $i++) { Write-TestObject $clients.Source $Source "c/$i.bin" (Get-TestBytes 1024 (900 + $i)) }
    $credential = New-TestCredential $Fixtures.S3rverSource
    # Another name for the source's endpoint: the same bucket through it is the same bucket.
    $null = New-CloudConnector -Name src-alias -Endpoint $Fixtures.S3rverSource.Endpoint -Credential $credential
    # A finished job for the commands that act on one, and a Failed one whose connector may not go yet.
    $script:Done = New-MigrationJob -Name done-job -SourceConnector src -SourceBucket $Source -TargetConnector dst -TargetBucket $Target -Wait
    $null = New-CloudConnector -Name busy -Endpoint $Fixtures.S3rverTarget.Endpoint -Credential (New-TestCredential $Fixtures.S3rverTarget)
    $null = New-MigrationJob -Name busy-job -SourceConnector src -SourceBucket $Source -TargetConnector busy -TargetBucket 'made-later-bucket' -Force -Wait -ErrorAction SilentlyContinue
    if ((Get-MigrationJob -Name busy-job).State -ne 'Failed') { throw 'Setup: the job to a missing bucket should have Failed.' }
    $script:ReportFolder = Join-Path ([System.IO.Path]::GetTempPath()) ('om-badinput-reports-' + [guid]::NewGuid().ToString('n').Substring(0, 8))
    $null = New-Item -ItemType Directory -Path $ReportFolder
    $script:ExistingReport = Join-Path $ReportFolder 'existing.csv'
    Set-Content -Path $ExistingReport -Value 'kept as it is'

    # Known-good arguments per command (and parameter set); each case adds its bad value to these.
    $script:Bases = @{
        'New-MigrationJob/Default'        = @{ SourceConnector = 'src'; SourceBucket = '<source>'; TargetConnector = 'dst'; TargetBucket = '<target>' }
        'New-MigrationJob/Unsaved'        = @{ SourceEndpoint = '<src-endpoint>'; SourceCredential = '<credential>'; SourceBucket = '<source>'; TargetConnector = 'dst'; TargetBucket = '<target>' }
        'New-MigrationJob/Update'         = @{ SourceConnector = 'src'; SourceBucket = '<source>'; Type = 'Update'; AddTags = @{ owner = 'me' } }
        'New-MigrationJob/None'           = @{}
        'New-CloudConnector/Default'      = @{ Name = 'fresh'; Endpoint = '<src-endpoint>'; Credential = '<credential>' }
        'Set-CloudConnector/Default'      = @{ Name = 'src' }
        'Remove-CloudConnector/Default'   = @{ Name = 'busy'; Confirm = $false }
        'Get-CloudConnector/Default'      = @{}
        'Test-CloudConnector/Default'     = @{ Name = 'src' }
        'Test-CloudConnector/Unsaved'     = @{ Provider = 'S3'; Endpoint = '<src-endpoint>'; Credential = '<credential>' }
        'Get-MigrationJob/Default'        = @{}
        'Get-MigrationJobProgress/Default' = @{ Id = '<done>' }
        'Get-MigrationJobLog/Default'     = @{ Id = '<done>' }
        'Get-MigrationJobReport/Default'  = @{ Id = '<done>' }
        'Export-MigrationJobReport/Default' = @{ Id = '<done>'; Path = '<report-dir>/report.csv' }
        'Suspend-MigrationJob/Default'    = @{ Id = '<done>' }
        'Resume-MigrationJob/Default'     = @{ Id = '<done>' }
        'Stop-MigrationJob/Default'       = @{ Id = '<done>' }
        'Wait-MigrationJob/Default'       = @{ Id = '<done>' }
        # Ids no job or worker has: a case that is wrongly accepted cannot remove or stop anything real.
        'Remove-MigrationJob/Default'     = @{ Id = '<random-guid>'; Confirm = $false }
        # A worker wrongly started by a case leaves after a second with nothing to do.
        'Start-MigrationWorker/Default'   = @{ IdleExit = 1 }
        'Get-MigrationWorker/Default'     = @{}
        'Stop-MigrationWorker/Default'    = @{ Id = '<random-guid>' }
    }

    function Resolve-Value($Value) {
        if ($Value -isnot [string]) { return $Value }
        switch ($Value) {
            '<source>' { return $Source }
            '<target>' { return $Target }
            '<done>' { return $Done.Id }
            '<random-guid>' { return [guid]::NewGuid() }
            '<src-endpoint>' { return $Fixtures.S3rverSource.Endpoint }
            '<credential>' { return New-TestCredential $Fixtures.S3rverSource }
            '<blank-secret>' { return [pscredential]::new('AKBADINPUT', (ConvertTo-SecureString ' ' -AsPlainText -Force)) }
            '<spaced-key>' { return [pscredential]::new('AK BAD INPUT', (ConvertTo-SecureString 'secret' -AsPlainText -Force)) }
            '<missing-file>' { return Join-Path $ReportFolder 'no-such-credentials' }
            '<existing-report>' { return $ExistingReport }
        }
        $Value.Replace('<report-dir>', $ReportFolder)
    }

    # Every row of every table, read through the module's own Microsoft.Data.Sqlite (already loaded, in the module's
    # load context) on a read-only connection: a logical dump, indifferent to WAL checkpoints that rewrite the files.
    # The reading is C# over DbConnection (no reference to the SQLite assembly): in PowerShell it took most of a case.
    if (-not ('BadInputState' -as [type])) {
        Add-Type -TypeDefinition @'
using System;
using System.Collections.Generic;
using System.Data.Common;
using System.Globalization;
using System.IO;
using System.Linq;
using System.Security.Cryptography;
using System.Text;

public static class BadInputState
{
    public static string Dump(DbConnection connection)
    {
        connection.Open();
        try
        {
            var tables = new List<string>();
            using (var command = connection.CreateCommand())
            {
                command.CommandText = "SELECT name FROM sqlite_master WHERE type = 'table' ORDER BY name";
                using var reader = command.ExecuteReader();
                while (reader.Read()) tables.Add(reader.GetString(0));
            }
            var text = new StringBuilder();
            foreach (var table in tables)
            {
                var rows = new List<string>();
                using var command = connection.CreateCommand();
                command.CommandText = "SELECT * FROM \"" + table + "\"";
                using var reader = command.ExecuteReader();
                while (reader.Read())
                {
                    rows.Add(string.Join("|", Enumerable.Range(0, reader.FieldCount).Select(i =>
                        reader.IsDBNull(i) ? "<null>" : reader.GetValue(i) is byte[] bytes ? Convert.ToBase64String(bytes) : Convert.ToString(reader.GetValue(i), CultureInfo.InvariantCulture))));
                }
                rows.Sort(StringComparer.Ordinal);
                text.Append(table).Append(" rows: ").Append(rows.Count).Append('\n');
                foreach (var row in rows) text.Append(table).Append('|').Append(row).Append('\n');
            }
            return text.ToString();
        }
        finally { connection.Dispose(); }
    }

    public static string[] Files(string folder) =>
        Directory.EnumerateFiles(folder, "*", SearchOption.AllDirectories)
            .Where(f => !Path.GetFileName(f).StartsWith("state.db", StringComparison.Ordinal))
            .OrderBy(f => f, StringComparer.Ordinal)
            .Select(f => f + "=" + Convert.ToHexString(SHA256.HashData(File.ReadAllBytes(f))))
            .ToArray();
}
'@
    }
    $script:SqliteConnectionType = ([AppDomain]::CurrentDomain.GetAssemblies() | Where-Object { $_.GetName().Name -eq 'Microsoft.Data.Sqlite' } | Select-Object -Last 1).
        GetType('Microsoft.Data.Sqlite.SqliteConnection')
    function Get-StateDump {
        $path = Join-Path $env:OBJECTMIGRATION_HOME 'state.db'
        [BadInputState]::Dump([Activator]::CreateInstance($SqliteConnectionType, [object[]]@("Data Source=$path;Mode=ReadOnly;Pooling=False")))
    }

    # The other files of the state folder (secret key, worker logs and locks), by content.
    function Get-StateFiles { [BadInputState]::Files($env:OBJECTMIGRATION_HOME) }

    # The cases run in a runspace of their own without a host: a command that would prompt (a missing mandatory
    # parameter, a credential given as text) fails there as it would in a runbook, instead of waiting on the console.
    $script:CaseRunspace = [runspacefactory]::CreateRunspace()
    $CaseRunspace.Open()
    function Invoke-InCaseRunspace([string] $Name, [hashtable] $Parameters) {
        $shell = [powershell]::Create()
        try {
            $shell.Runspace = $CaseRunspace
            $null = $shell.AddCommand($Name).AddParameters($Parameters)
            if ($Name -ne 'Import-Module') { $null = $shell.AddParameter('ErrorAction', 'Stop').AddParameter('WarningAction', 'SilentlyContinue').AddParameter('InformationAction', 'SilentlyContinue') }
            $shell.Invoke()
        } finally { $shell.Dispose() }
    }
    $null = Invoke-InCaseRunspace 'Import-Module' @{ Name = $ModulePath }

    # Everything a refused command must leave as it was.
    function Get-Baseline {
        @{
            Dump    = Get-StateDump
            Files   = @(Get-StateFiles)
            Jobs    = @(Invoke-InCaseRunspace 'Get-Job' @{}).Count
            Reports = [BadInputState]::Files($ReportFolder)
        }
    }
    $script:Baseline = Get-Baseline

    $script:Tried = 0
}

AfterAll {
    Write-Host "Bad input: $Tried values tried against $(@($Coverage).Count) parameters of $(@($Commands).Count) cmdlets."
    Get-MigrationJob | Where-Object State -in 'Running', 'Pending' | Stop-MigrationJob -ErrorAction SilentlyContinue
    if ($ReportFolder) { Remove-Item -Recurse -Force $ReportFolder -ErrorAction SilentlyContinue }
    if ($CaseRunspace) { $CaseRunspace.Dispose() }
    Remove-Module ObjectMigration -ErrorAction SilentlyContinue
}

Describe 'Bad input is refused before anything is written' {
    It '<Command> -<Parameter>: <Case>' -ForEach $Cases {
        $splat = @{}
        foreach ($entry in $Bases["$Command/$Base"].GetEnumerator()) { if ($entry.Key -notin $Remove) { $splat[$entry.Key] = Resolve-Value $entry.Value } }
        foreach ($entry in $Arguments.GetEnumerator()) { $splat[$entry.Key] = Resolve-Value $entry.Value }
        $implementing = (Get-Command $Command).ImplementingType.FullName
        # What the last case left (checked unchanged there), or the state after setup.
        $before = $script:Baseline

        $script:Tried++
        $record = $null
        try { $null = Invoke-InCaseRunspace $Command $splat }
        catch { $record = ($_.Exception.InnerException ?? $_.Exception).ErrorRecord }

        $record | Should -Not -BeNullOrEmpty -Because 'a bad value must be refused with an error record'
        $record.FullyQualifiedErrorId | Should -BeExactly "$ErrorId,$implementing"
        $said = $record.Exception.Message
        $said | Should -BeLike $Message
        if ($Names) {
            $named = $record.Exception.ParameterName -eq $Names -or $record.FullyQualifiedErrorId -like "*,$Names,*" -or $said -match "-$Names\b|'$Names'"
            $named | Should -BeTrue -Because "the error must name -$Names ($($record.FullyQualifiedErrorId): $said)"
        }
        # No stack trace, no exception type names, no source lines: what a person reads, nothing of the code.
        $said | Should -Not -Match '(?m)^\s*at \S+\(|:line \d+|--- End of|\bSystem\.[\w.]*Exception\b'
        # What the console shows ends with the fix, not with .NET's " (Parameter 'Name')".
        "$record" | Should -Not -Match "\(Parameter '\w+'\)\s*$"
        $script:Baseline = $after = Get-Baseline
        $after.Dump | Should -BeExactly $before.Dump -Because 'no row of the state database may change'
        $after.Files | Should -Be $before.Files -Because 'no other file of the state folder may change'
        $after.Jobs | Should -Be $before.Jobs -Because 'no PowerShell job may be started'
        $after.Reports | Should -Be $before.Reports -Because 'no report file may be written or replaced'
    }
}

Describe 'The comparison would see a write' {
    It 'a dump taken after a real change differs, in the changed row' {
        # So that "unchanged" above means something: the same dump sees a one-field change a good command makes.
        $before = Get-StateDump
        $null = Invoke-InCaseRunspace 'Set-CloudConnector' @{ Name = 'src-alias'; Region = 'eu-west-1' }
        $after = Get-StateDump
        $after | Should -Not -BeExactly $before
        @(Compare-Object ($before -split "`n") ($after -split "`n")).Count | Should -Be 2 -Because 'one connectors row changed: one line out, one in'
        $null = Invoke-InCaseRunspace 'Set-CloudConnector' @{ Name = 'src-alias'; Region = 'us-east-1' }
    }
}

Describe 'The table covers every parameter' {
    It '<Command> -<Parameter> has at least one bad value' -ForEach $Coverage {
        $Count | Should -BeGreaterThan 0 -Because 'every parameter of every exported cmdlet gets a bad value (add a case to BadInput.Tests.ps1)'
    }
}
