package inventory

import (
	"fmt"
	"time"
)

// FlagStale sets each cluster's LastBackupAge at now, and Stale when its
// newest backup is older than maxAge or it has none: the clusters whose
// backups stopped, at a glance.
func FlagStale(clusters []ClusterInfo, maxAge time.Duration, now time.Time) {
	for i := range clusters {
		c := &clusters[i]
		if c.LastBackup == nil {
			c.Stale = true
			continue
		}
		c.LastBackupAge = now.Sub(*c.LastBackup)
		c.Stale = c.LastBackupAge > maxAge
	}
}

// shortAge is an age for a table: 45s, 12m, 5h10m, 3d4h.
func shortAge(d time.Duration) string {
	switch {
	case d < 0:
		return "0s"
	case d < time.Minute:
		return fmt.Sprintf("%ds", int(d.Seconds()))
	case d < time.Hour:
		return fmt.Sprintf("%dm", int(d.Minutes()))
	case d < 48*time.Hour:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	default:
		return fmt.Sprintf("%dd%dh", int(d.Hours())/24, int(d.Hours())%24)
	}
}
