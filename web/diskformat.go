package web

import "github.com/dustin/go-humanize"

// DiskStatus is the badge word for a node's disk: "degraded" while it is below its
// reserve and the node refuses writes, else "healthy".
func DiskStatus(d *NodeDisk) string {
	if d != nil && d.Full {
		return "degraded"
	}
	return "healthy"
}

// Bytes renders n in binary units (1.5 GiB), as df -h does, with go-humanize.
func Bytes(n uint64) string { return humanize.IBytes(n) }
