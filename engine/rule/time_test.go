package rule

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// FuzzParseRFC3339Millis checks the RFC 3339 fast path against time.Parse:
// whatever it accepts, time.Parse reads as the same instant. (The engine's
// FuzzValueHelpers compares ParseTimestamp with the decoder it replaced.)
func FuzzParseRFC3339Millis(f *testing.F) {
	for _, s := range []string{"2026-11-20T09:00:00Z", "2026-11-20T09:00:00.123456789999+14:59", "2026-02-29T00:00:00Z",
		"2028-02-29T00:00:00Z", "2026-11-20T09:00:00,5Z", "2026-11-20T09:00:00.Z", "0000-01-01T00:00:00Z",
		"9999-12-31T23:59:59.999-23:59", "2026-11-20T24:00:00Z", "2026-11-20T09:00:60Z", "2026-11-20t09:00:00z", ""} {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		if ms, ok := parseRFC3339Millis(raw); ok {
			tm, err := time.Parse(time.RFC3339Nano, string(raw))
			require.NoError(t, err, "parseRFC3339Millis(%q) accepts", raw)
			require.Equal(t, tm.UnixMilli(), ms, "parseRFC3339Millis(%q)", raw)
		}
	})
}
