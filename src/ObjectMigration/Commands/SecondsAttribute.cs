using System.Globalization;
using System.Management.Automation;

namespace ObjectMigration.Commands;

/// <summary>
/// Lets a TimeSpan parameter take a plain number as seconds (-NoProgressTimeout 90), as -TimeoutSec parameters do;
/// PowerShell alone would read 90 as ticks and '90' as days. TimeSpans and strings like '00:01:30' pass unchanged.
/// </summary>
[AttributeUsage(AttributeTargets.Property | AttributeTargets.Field)]
public sealed class SecondsAttribute : ArgumentTransformationAttribute
{
    public override object? Transform(EngineIntrinsics engineIntrinsics, object? inputData)
    {
        var value = inputData is PSObject wrapped ? wrapped.BaseObject : inputData;
        return value switch
        {
            int or long or short or byte => TimeSpan.FromSeconds(Convert.ToDouble(value, CultureInfo.InvariantCulture)),
            double d => TimeSpan.FromSeconds(d),
            decimal m => TimeSpan.FromSeconds((double)m),
            string text when double.TryParse(text, NumberStyles.Float, CultureInfo.InvariantCulture, out var seconds) => TimeSpan.FromSeconds(seconds),
            string text when TimeSpan.TryParse(text, CultureInfo.InvariantCulture, out var span) => span,
            string text => throw new ArgumentTransformationMetadataException(
                $"'{text}' is not a duration: give seconds (300) or a TimeSpan ('00:05:00', or (New-TimeSpan -Minutes 5))."),
            _ => inputData,
        };
    }
}
