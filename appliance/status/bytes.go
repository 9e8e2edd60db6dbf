package status

import "fmt"

// Bytes writes a byte count the way every reader of the document shows it:
// in 1024-based units with their IEC names ("1.5 GiB", "512 B"). Written
// here because the few lines do not justify a dependency; drive capacities,
// labelled by their makers in decimal units, are rotation's to write.
func Bytes(n int64) string {
	const unit = 1024
	if n < 0 {
		return "-" + Bytes(-n)
	}
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
