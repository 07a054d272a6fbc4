//go:build linux

package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
)

// Resource statistics on Linux, from /proc: the load average, the peak
// RSS mark (VmHWM), which can be reset so that each phase reports its own
// peak, and the CPU time of a local PostgreSQL server's processes. The
// process's own CPU time comes from getrusage (rusage_unix.go).

// phasePeakRSS tells that resetPeakRSS works, so a phase's peakRSS is its
// own.
const phasePeakRSS = true

// loadAvg returns the 1, 5 and 15 minute load averages, or "".
func loadAvg() string {
	b, err := os.ReadFile("/proc/loadavg")
	if err != nil {
		return ""
	}
	f := strings.Fields(string(b))
	if len(f) < 3 {
		return ""
	}
	return strings.Join(f[:3], " ")
}

// resetPeakRSS resets the kernel's peak RSS mark of this process (Linux
// clear_refs 5), so that each phase's peak can be read separately.
func resetPeakRSS() { _ = os.WriteFile("/proc/self/clear_refs", []byte("5"), 0) }

// peakRSS returns the peak resident set size (VmHWM) of this process, or
// getrusage's maxrss when /proc is not available.
func peakRSS() int64 {
	if v := statusHWM("/proc/self/status"); v > 0 {
		return v
	}
	return rusagePeakRSS()
}

// processPeakRSS returns the peak resident set size of another process,
// or 0 when unknown.
func processPeakRSS(pid int) int64 { return statusHWM(fmt.Sprintf("/proc/%d/status", pid)) }

// statusHWM reads VmHWM from a /proc status file, in bytes (0: unknown).
func statusHWM(path string) int64 {
	b, err := os.ReadFile(path)
	if err != nil {
		return 0
	}
	for line := range strings.SplitSeq(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmHWM:"); ok {
			if f := strings.Fields(rest); len(f) >= 1 {
				if kb, err := strconv.ParseInt(f[0], 10, 64); err == nil {
					return kb * 1024
				}
			}
		}
	}
	return 0
}

// postgresServerCPU returns the CPU seconds used so far by the PostgreSQL
// server whose backend process has the given id (postmaster, its live
// children, and its reaped children such as parallel workers), when the
// server runs on this machine; false otherwise.
func postgresServerCPU(backend int) (float64, bool) {
	st, ok := procStat(backend)
	if !ok || st.comm != "postgres" {
		return 0, false // not a local server
	}
	post, ok := procStat(st.ppid)
	if !ok {
		return 0, false
	}
	const hz = 100.0 // USER_HZ
	total := float64(post.utime + post.stime + post.cutime + post.cstime)
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		p, err := strconv.Atoi(filepath.Base(d))
		if err != nil {
			continue
		}
		if c, ok := procStat(p); ok && c.ppid == st.ppid {
			total += float64(c.utime + c.stime)
		}
	}
	return total / hz, true
}

type pstat struct {
	comm                         string
	ppid                         int
	utime, stime, cutime, cstime int64
}

func procStat(pid int) (pstat, bool) {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return pstat{}, false
	}
	s := string(b)
	open, closeIdx := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closeIdx < open {
		return pstat{}, false
	}
	f := strings.Fields(s[closeIdx+1:])
	if len(f) < 15 {
		return pstat{}, false
	}
	num := func(i int) int64 { v, _ := strconv.ParseInt(f[i], 10, 64); return v }
	// Fields after the comm: state(0) ppid(1) … utime(11) stime(12) cutime(13) cstime(14).
	return pstat{comm: s[open+1 : closeIdx], ppid: int(num(1)), utime: num(11), stime: num(12), cutime: num(13), cstime: num(14)}, true
}
