//go:build !unix

package bench

import "time"

// cpuTime reports 0 (unknown): there is no getrusage on this system.
func cpuTime() time.Duration { return 0 }

// rusagePeakRSS reports 0 (unknown): there is no getrusage on this system.
func rusagePeakRSS() int64 { return 0 }
