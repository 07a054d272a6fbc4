//go:build !linux

package bench

// Resource statistics where there is no /proc: what getrusage tells
// (rusage_unix.go; nothing on systems without it, rusage_other.go). The
// load average is unknown, the peak RSS is the process's peak since it
// started (it cannot be reset, so phases do not report their own), and the
// CPU time of a PostgreSQL server is unknown.

// phasePeakRSS tells that resetPeakRSS does nothing: peakRSS is the
// process's peak so far, not a phase's.
const phasePeakRSS = false

// loadAvg returns "unknown": only Linux tells the load average here.
func loadAvg() string { return "unknown" }

// resetPeakRSS does nothing: only Linux can reset the peak RSS mark.
func resetPeakRSS() {}

// peakRSS returns getrusage's maxrss of this process (0 without
// getrusage).
func peakRSS() int64 { return rusagePeakRSS() }

// postgresServerCPU reports that the server's CPU time is unknown.
func postgresServerCPU(int) (float64, bool) { return 0, false }

// processPeakRSS reports another process's peak RSS as unknown (0).
func processPeakRSS(int) int64 { return 0 }
