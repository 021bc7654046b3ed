// Package bytesize writes byte counts the way every ezrestore message does
// (1.5 MiB), so the plan, the space checks and the transfers agree.
package bytesize

import "fmt"

// Human is n in binary units with one decimal: "512 B", "31.5 MiB".
func Human(n int64) string {
	const unit = 1024
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
