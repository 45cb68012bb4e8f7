package web

import "fmt"

// DiskStatus is the badge word for a node's disk: "degraded" while it is below its
// reserve and the node refuses writes, else "healthy".
func DiskStatus(d *NodeDisk) string {
	if d != nil && d.Full {
		return "degraded"
	}
	return "healthy"
}

// Bytes renders n in binary units (1.5 GiB), as df -h does.
func Bytes(n uint64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := uint64(unit), 0
	for m := n / unit; m >= unit && exp < 4; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTP"[exp])
}
