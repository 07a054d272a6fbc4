//go:build unix

package bench

import (
	"runtime"
	"syscall"
	"time"
)

// cpuTime is the user+system CPU time of this process so far (getrusage).
func cpuTime() time.Duration {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// rusagePeakRSS returns getrusage's maxrss of this process in bytes (the
// kernel gives KiB, except Darwin's, which gives bytes), or 0.
func rusagePeakRSS() int64 {
	var ru syscall.Rusage
	if syscall.Getrusage(syscall.RUSAGE_SELF, &ru) != nil {
		return 0
	}
	maxrss := int64(ru.Maxrss) //nolint:unconvert // int32 on 32-bit systems
	if runtime.GOOS == "darwin" || runtime.GOOS == "ios" {
		return maxrss
	}
	return maxrss * 1024
}
